#pragma once
// What an input the network fuzzer sent got wrong, in words and as key paths: each top-level
// key held against Apple's schema for the message (type, presence, whether the message has such
// a key), and the values servers are known to mishandle (empty, long or non-ASCII strings,
// negative integers, deep nesting, a key twice in one dict, dates in a binary plist). A finding's
// text ("HTTP 500 to TokenUpdate whose UDID is an integer (expected string)") and its
// deduplication key come from here.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/fuzz/minimize.hpp"
#include "harness/plist/value.hpp"

namespace mdmc::fuzz {

// How far the fuzzer decodes an input: well past what a parser is usually given, so that an
// input beyond a target's limits is still known for what it is.
plist::Limits fuzz_input_limits();

struct InputProblem {
  std::string path;  // "UDID", "ErrorChain[0].ErrorCode"; empty for the input as a whole
  std::string kind;  // "type", "missing", "unknown-key", "empty", "long", "non-ascii", "negative",
                     // "deep", "duplicate-key", "binary-date", "other-device", "value"
  std::string what;  // "is an integer (expected string)"
  std::optional<plist::Type> expected = std::nullopt;  // for "type": the type Apple's schema gives the key
};

struct InputDiagnosis {
  std::string kind;         // "TokenUpdate", "Idle", "?MessageType", "?Status", "dict", "array", "bytes"
  std::string schema_kind;  // what the keys were held against: a MessageType, "report", or empty
  bool is_plist = false;
  bool binary = false;
  std::size_t bytes = 0;
  // The most telling first: what the message is; a value of the wrong type; a value servers
  // trip on (a key twice, long, non-ASCII, negative, a date in a binary plist, deep nesting, an
  // empty UDID); a required key missing; a key the message does not have; another device or
  // user named. At most kMaxProblems.
  std::vector<InputProblem> problems;

  // "TokenUpdate whose UDID is an integer (expected string)", "bytes that are no plist (12 bytes)".
  std::string phrase() const;
  // The problems' paths and kinds, sorted and joined: "UDID:type,Topic:missing"; "-" for none.
  std::string key_paths() const;
  // The most telling problem's path and kind ("UDID:type"), or "-": what a finding is
  // deduplicated by, so that the noise a mutation left beside the cause does not make a
  // finding new.
  std::string primary() const;
};

inline constexpr std::size_t kMaxProblems = 8;

// `udid` and `user_id`: the fuzz device's, so that a message naming another is said to.
InputDiagnosis diagnose_input(std::string_view input, std::string_view udid, std::string_view user_id);

// For each top-level key of the wrong type, a plain value of the type Apple's schema gives it,
// one the diagnosis finds nothing odd in (the device's own UDID and UserID, not "x"): what the
// minimiser tries so that a key a mutation left beside the cause does not name the finding.
std::vector<Repair> schema_repairs(const InputDiagnosis& diagnosis, std::string_view udid, std::string_view user_id);

}  // namespace mdmc::fuzz
