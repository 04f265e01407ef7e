#pragma once
// Facts of Apple's device-management schema the fuzzer needs: each check-in message's keys with
// their types and presence (generated from mdm/checkin/*.yaml into checkin_keys.inc), and the
// command report's own keys. Shared by the mutator (what to mutate into) and the diagnosis
// (what an input got wrong).
#include <array>
#include <optional>
#include <string_view>

#include "harness/plist/value.hpp"

namespace mdmc::fuzz::detail {

struct KeyFact {
  std::string_view message_type;  // the check-in's MessageType, or "report" for a command report
  std::string_view key;
  plist::Type type;
  bool required;               // on a Mac, outside User Enrollment, on a channel it goes on
  bool device_channel = true;  // a Mac's device channel sends it
  bool user_channel = true;    // a Mac's user channels send it
};

inline constexpr KeyFact kCheckInKeys[] = {
#include "harness/fuzz/checkin_keys.inc"
};

// A command report's keys (Apple's MDM protocol: the client's reply to a command, or Idle).
inline constexpr KeyFact kReportKeys[] = {
    {"report", "Status", plist::Type::string, true},
    {"report", "UDID", plist::Type::string, false},
    {"report", "EnrollmentID", plist::Type::string, false},
    {"report", "UserID", plist::Type::string, false},
    {"report", "EnrollmentUserID", plist::Type::string, false},
    {"report", "CommandUUID", plist::Type::string, false},
    {"report", "ErrorChain", plist::Type::array, false},
    {"report", "NeedSyncResponse", plist::Type::boolean, false},
    {"report", "UserConfiguration", plist::Type::boolean, false},
};

// The fact for `key` of a message kind ("TokenUpdate", or "report"), when the schema has it.
inline std::optional<KeyFact> key_fact(std::string_view kind, std::string_view key) {
  if (kind == "report") {
    for (const auto& f : kReportKeys)
      if (f.key == key) return f;
    return std::nullopt;
  }
  for (const auto& f : kCheckInKeys)
    if (f.message_type == kind && f.key == key) return f;
  return std::nullopt;
}

}  // namespace mdmc::fuzz::detail
