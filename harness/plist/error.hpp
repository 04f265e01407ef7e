#pragma once
// Errors of the plist module: every way a parse of untrusted bytes can end without a value.
#include <string>
#include <system_error>
#include <variant>

namespace mdmc::plist {

enum class Error {
  ok = 0,
  empty,              // zero bytes: not a plist
  too_large,          // more bytes than Limits::max_bytes
  too_deep,           // containers nested deeper than Limits::max_depth
  too_many_nodes,     // more values than Limits::max_nodes
  not_a_plist,        // neither an XML plist nor a bplist00 header
  malformed_xml,      // libplist could not read the XML (it reports only "no result")
  malformed_binary,   // bad trailer, offsets or object references in a binary plist
  cyclic_reference,   // a binary plist whose object references form a cycle
  bad_utf8,           // a string that is not valid UTF-8
};

const std::error_category& plist_category();
std::error_code make_error_code(Error e);

// A parse outcome: a value or an error code with a short human reason.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error e, std::string detail = {}) : state_(Failure{e, std::move(detail)}) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<0>(state_); }
  T& value() & { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const T* operator->() const { return &std::get<0>(state_); }
  const T& operator*() const { return std::get<0>(state_); }
  Error error() const { return ok() ? Error::ok : std::get<1>(state_).error; }
  // "too_deep: nesting exceeds 64", for reports.
  std::string message() const;

 private:
  struct Failure {
    Error error;
    std::string detail;
  };
  std::variant<T, Failure> state_;
};

std::string_view error_name(Error e);

template <typename T>
std::string Result<T>::message() const {
  if (ok()) return "ok";
  const auto& f = std::get<1>(state_);
  std::string out(error_name(f.error));
  if (!f.detail.empty()) out += ": " + f.detail;
  return out;
}

}  // namespace mdmc::plist

template <>
struct std::is_error_code_enum<mdmc::plist::Error> : std::true_type {};
