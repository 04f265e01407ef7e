#pragma once
// One table per enum of its names as they appear on the wire, in files and in reports, read in
// both directions. A table lists every value once; enum_names_test checks the ones it is given.
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace mdmc::base {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

template <typename E, std::size_t N>
using EnumNames = std::array<EnumName<E>, N>;

// The name of `value`, or `fallback` when the table lacks it (a value cast from a number).
template <typename E, std::size_t N>
constexpr std::string_view name_of(const EnumNames<E, N>& table, E value, std::string_view fallback = "?") {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return fallback;
}

// The value named `name` (exact, case-sensitive), or nothing.
template <typename E, std::size_t N>
constexpr std::optional<E> value_of(const EnumNames<E, N>& table, std::string_view name) {
  for (const auto& entry : table) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

}  // namespace mdmc::base
