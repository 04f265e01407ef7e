#pragma once
// Errors of the plist module: every way a parse of untrusted bytes can end without a value.
#include <string>
#include <system_error>
#include <variant>

#include "harness/base/result.hpp"

namespace mdmc::plist {

enum class Error {
  ok = 0,
  empty,             // zero bytes: not a plist
  too_large,         // more bytes than Limits::max_bytes
  too_deep,          // containers nested deeper than Limits::max_depth
  too_many_nodes,    // more values than Limits::max_nodes
  not_a_plist,       // neither an XML plist nor a bplist00 header
  malformed_xml,     // libplist could not read the XML (it reports only "no result")
  malformed_binary,  // bad trailer, offsets or object references in a binary plist
  cyclic_reference,  // a binary plist whose object references form a cycle
  bad_utf8,          // a string that is not valid UTF-8
};

const std::error_category& plist_category();
std::error_code make_error_code(Error e);

// A parse outcome: a value, or a base::Error whose code is a plist::Error and whose message is
// a short human reason. message() reads "too_deep: nesting exceeds 64".
template <typename T>
using Result = base::Result<T>;

std::string_view error_name(Error e);

// The plist::Error of a parse outcome: Error::ok when it holds a value.
template <typename T>
Error error_of(const Result<T>& result) {
  return result.ok() ? Error::ok : static_cast<Error>(result.error().code.value());
}

}  // namespace mdmc::plist

template <>
struct std::is_error_code_enum<mdmc::plist::Error> : std::true_type {};
