#pragma once
// Checks on a plist's raw bytes before libplist sees them.
//
// libplist 2.2 has no nesting limit, reports errors only by a NULL result, and frees its
// trees recursively: a deep enough document overflows the stack, in its binary parser or in
// plist_free (on success and on its own error path alike). So the limits are enforced here,
// on the bytes, by scanners that never recurse and that read the input the way libplist
// 2.2.0 will read it.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "harness/plist/error.hpp"
#include "harness/plist/value.hpp"

namespace mdmc::plist::detail {

struct Prescan {
  Error error = Error::ok;         // ok: libplist may be given the bytes
  std::string detail;              // why not, with a byte offset or an object index
  std::size_t depth = 0;           // deepest container nesting seen; the top level is 1
  std::size_t nodes = 0;           // values seen; for binary, after expanding shared references
  std::size_t expanded_bytes = 0;  // binary: string and data bytes after expansion
};

// An XML plist (after any BOM). Mirrors the tokenizer of libplist 2.2.0's xplist.c: the same
// handling of comments, CDATA, <?...?>, DOCTYPE, quoted attribute values, empty elements and
// text content, so that the depth it counts is the depth libplist builds. Where libplist
// would fail on the syntax, this fails first (malformed_xml), so libplist's error path never
// frees a tree deeper than the limit. Rejects NUL bytes, which XML does not allow and which
// libplist's C-string handling would read differently.
Prescan prescan_xml(std::string_view bytes, const Limits& limits);

// A bplist00: validates the trailer and the offset table with checked arithmetic, then walks
// the object graph from the top object with an explicit stack: references in range
// (malformed_binary), no object its own ancestor (cyclic_reference), depth and expanded
// node count within limits (too_deep, too_many_nodes), and the bytes that expansion of
// shared objects would allocate within Limits::max_bytes (too_large). libplist expands a
// shared object once per reference, so a small DAG can stand for an exponential tree.
Prescan prescan_binary(std::string_view bytes, const Limits& limits);

// The bytes of a binary plist from its top object's marker up to the offset table, or
// nothing when the trailer is not valid. Used to read back what libplist wrote.
std::optional<std::string_view> binary_top_object(std::string_view bytes);

}  // namespace mdmc::plist::detail
