#pragma once
// The types of Apple's device-management schema (its docs/schema.md "Type Values"), which every
// table generated from it is made of (protocol's command tables, enroll's profile tables), and
// their names as problems quote them, so that a message compares like with like; and what the
// checks and lookups over those tables share.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "harness/plist/value.hpp"

namespace mdmc::protocol {

enum class SchemaType : std::uint8_t { string, integer, real, boolean, data, date, array, dictionary, any };

// "<string>", "<integer>", ...: the schema's words.
std::string_view schema_type_name(SchemaType type);
// The schema's word for what a plist value is ("<dictionary>" for a dict).
std::string_view value_type_name(const plist::Value& value);
// Whether `value` is of `type`. An <integer> serves where a <real> is asked: CFPropertyList reads
// both as a CFNumber, and a plist writer may well write 5.0 as <integer>5</integer>.
bool has_schema_type(const plist::Value& value, SchemaType type);

// A generated table's rows sorted by a name (`name`: the member holding it), without repeats,
// as find_by_name needs; checked by static_assert where the table is read.
template <typename Row, std::size_t N>
constexpr bool sorted_by_name(const std::array<Row, N>& rows, std::string_view Row::*name) {
  for (std::size_t i = 1; i < N; ++i) {
    if (!(rows[i - 1].*name < rows[i].*name)) return false;
  }
  return true;
}

// Whether each row's children, keys [first, first + count) of a table of `keys` rows, lie in it.
template <typename Row, std::size_t N>
constexpr bool children_within(const std::array<Row, N>& rows, std::size_t keys) {
  for (const auto& row : rows) {
    if (row.first + row.count > keys) return false;
  }
  return true;
}

// The row of `rows` (sorted_by_name) named `wanted`, or null.
template <typename Row, std::size_t N>
const Row* find_by_name(const std::array<Row, N>& rows, std::string_view Row::*name, std::string_view wanted) {
  auto it = std::lower_bound(rows.begin(), rows.end(), wanted,
                             [name](const Row& row, std::string_view value) { return row.*name < value; });
  if (it == rows.end() || (*it).*name != wanted) return nullptr;
  return &*it;
}

}  // namespace mdmc::protocol
