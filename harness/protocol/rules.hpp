#pragma once
// The rule catalog's ids: stable names that cases, fault modes and reports share.
// The catalog's text (level, Apple's sentence, its source) lives in specs/rules.yaml.
#include <array>
#include <string_view>

namespace mdmc::protocol {

inline constexpr std::array<std::string_view, 29> kRuleIds = {
    "ENR-AUTH",          "ENR-TOKEN-DEVICE",     "ENR-TOKEN-USER",  "ENR-SAME-IDENTITY",
    "ENR-UNKNOWN-DEVICE", "NET-REFUSE-410",      "NET-MANAGE",      "NET-REFUSED-STAYS-OUT",
    "CHN-USER-ONLY",     "CHN-DEVICE-ONLY",      "CHN-CONCURRENT",  "CHN-IDLE-EMPTY",
    "SYN-ALL",           "SYN-EMPTY-END",        "UCF-TERMINATES",  "UCF-NO-REPEAT",
    "UCF-REDELIVER",     "UCF-DEVICECONFIGURED", "CMD-SHAPE",       "CMD-SCHEMA",
    "CMD-ACKED-GONE",    "CMD-UNKNOWN-UUID",     "CMD-DUPLICATE-REPORT", "ROB-MALFORMED",
    "ROB-UNKNOWN-TYPE",  "ROB-OVERSIZE",         "ROB-ALIVE",       "PRF-ONE-ACCOUNT",
    "CHK-CHECKOUT",
};

constexpr bool is_known_rule(std::string_view id) {
  for (auto known : kRuleIds) {
    if (known == id) return true;
  }
  return false;
}

}  // namespace mdmc::protocol
