#pragma once
// Seeded bugs of the reference server: defects that only odd input reaches, for measuring how
// fast a fuzzer finds them (bench/fuzz_bench.sh). Unlike the fault modes (faults.hpp), none of
// them shows in the conformance suite: well-formed messages never trigger them.
#include <optional>
#include <span>
#include <string_view>

namespace mdmc::server {

enum class SeededBug {
  none,
  wrong_type_500,        // 500 (not 400) when a check-in key Apple types as a string holds an integer
  long_string_hang,      // no answer for 30 s (past any client deadline) to a string longer than 4 KiB
  user_key_corrupts,     // an Authenticate with a UserID is taken and corrupts the device: its reports get 500 after
  deep_nesting_reset,    // the connection is reset on containers nested 16 deep
  binary_plist_500,      // 500 to a binary-encoded check-in holding a date
  negative_integer_500,  // 500 to a negative integer anywhere in a report
  empty_udid_wedge,      // an empty-string UDID wedges the server: it and every later request get 503
  unicode_name_500,      // 500 to a UserShortName outside ASCII
  duplicate_key_500,     // 500 when a key appears twice in one dict (XML)
  data_topic_reset,      // reset when a check-in's Topic is <data> instead of <string>
};

struct SeededBugInfo {
  SeededBug bug;
  std::string_view name;       // the --seeded-bug value
  std::string_view behaviour;  // what the server then does, and on what input
};

std::span<const SeededBugInfo> seeded_bug_catalog();
std::optional<SeededBug> seeded_bug_from_name(std::string_view name);
const SeededBugInfo& seeded_bug_info(SeededBug bug);

}  // namespace mdmc::server
