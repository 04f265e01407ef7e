#pragma once
// The one way a module reports an expected failure: a Result<T> holds a value or an Error.
// Bytes from a peer, a file or a fuzzer never throw; they come back as a Result. An Error
// carries a line for people and, where the module has an error enum (plist::Error), its code,
// so that callers can branch on what went wrong without parsing text.
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace mdmc::base {

struct Error {
  std::string message;   // one line: what was being done and why it failed
  std::error_code code;  // the module's error enum, where it has one; empty otherwise

  // "too_deep: nesting exceeds 64" with a code, the message alone without one.
  std::string text() const;
};

// An Error with a message only.
inline Error fail(std::string message) { return Error{std::move(message), {}}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}
  // A module's error enum (one registered with std::is_error_code_enum) and a detail.
  template <typename E>
  requires std::is_error_code_enum_v<E> Result(E code, std::string detail = {})
      : state_(std::in_place_index<1>, Error{std::move(detail), make_error_code(code)}) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<0>(state_); }
  T& value() & { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const T* operator->() const { return &std::get<0>(state_); }
  T* operator->() { return &std::get<0>(state_); }
  const T& operator*() const& { return std::get<0>(state_); }
  T& operator*() & { return std::get<0>(state_); }
  T&& operator*() && { return std::get<0>(std::move(state_)); }
  // The value, or `fallback` when there is none.
  T value_or(T fallback) const& { return ok() ? std::get<0>(state_) : std::move(fallback); }
  // Only when !ok().
  const Error& error() const { return std::get<1>(state_); }
  // The error's text, or "ok".
  std::string message() const { return ok() ? std::string("ok") : error().text(); }

 private:
  std::variant<T, Error> state_;
};

// Success without a value.
struct Ok {};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Ok) {}
  Result(Error error) : error_(std::move(error)), ok_(false) {}
  template <typename E>
  requires std::is_error_code_enum_v<E> Result(E code, std::string detail = {})
      : error_{std::move(detail), make_error_code(code)}, ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  std::string message() const { return ok_ ? std::string("ok") : error_.text(); }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace mdmc::base
