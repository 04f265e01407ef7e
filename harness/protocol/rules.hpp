#pragma once
// The rule catalog's ids: stable names that cases, fault modes, checks and reports share.
// specs/rules.yaml is the one source of the rules (ids, levels, Apple's sentences, sources);
// this list mirrors its ids for code, and rules_test checks that the two hold the same set.
// Code names a rule through these constants, never through a string literal.
#include <array>
#include <string_view>

namespace mdmc::protocol {

namespace rule {
inline constexpr std::string_view kEnrAuth = "ENR-AUTH";
inline constexpr std::string_view kEnrTokenDevice = "ENR-TOKEN-DEVICE";
inline constexpr std::string_view kEnrTokenUser = "ENR-TOKEN-USER";
inline constexpr std::string_view kEnrSameIdentity = "ENR-SAME-IDENTITY";
inline constexpr std::string_view kEnrUnknownDevice = "ENR-UNKNOWN-DEVICE";
inline constexpr std::string_view kEnrProfile = "ENR-PROFILE";
inline constexpr std::string_view kEnrPerUser = "ENR-PER-USER";
inline constexpr std::string_view kEnrScep = "ENR-SCEP";
inline constexpr std::string_view kEnrCheckinUrl = "ENR-CHECKIN-URL";
inline constexpr std::string_view kNetRefuse410 = "NET-REFUSE-410";
inline constexpr std::string_view kNetManage = "NET-MANAGE";
inline constexpr std::string_view kNetRefusedStaysOut = "NET-REFUSED-STAYS-OUT";
inline constexpr std::string_view kChnUserOnly = "CHN-USER-ONLY";
inline constexpr std::string_view kChnDeviceOnly = "CHN-DEVICE-ONLY";
inline constexpr std::string_view kChnConcurrent = "CHN-CONCURRENT";
inline constexpr std::string_view kChnIdleEmpty = "CHN-IDLE-EMPTY";
inline constexpr std::string_view kSynAll = "SYN-ALL";
inline constexpr std::string_view kSynEmptyEnd = "SYN-EMPTY-END";
inline constexpr std::string_view kUcfTerminates = "UCF-TERMINATES";
inline constexpr std::string_view kUcfNoRepeat = "UCF-NO-REPEAT";
inline constexpr std::string_view kUcfRedeliver = "UCF-REDELIVER";
inline constexpr std::string_view kUcfDeviceConfigured = "UCF-DEVICECONFIGURED";
inline constexpr std::string_view kCmdShape = "CMD-SHAPE";
inline constexpr std::string_view kCmdSchema = "CMD-SCHEMA";
inline constexpr std::string_view kCmdAckedGone = "CMD-ACKED-GONE";
inline constexpr std::string_view kCmdUnknownUuid = "CMD-UNKNOWN-UUID";
inline constexpr std::string_view kCmdDuplicateReport = "CMD-DUPLICATE-REPORT";
inline constexpr std::string_view kRobMalformed = "ROB-MALFORMED";
inline constexpr std::string_view kRobUnknownType = "ROB-UNKNOWN-TYPE";
inline constexpr std::string_view kRobOversize = "ROB-OVERSIZE";
inline constexpr std::string_view kRobAlive = "ROB-ALIVE";
inline constexpr std::string_view kPrfOneAccount = "PRF-ONE-ACCOUNT";
inline constexpr std::string_view kChkCheckout = "CHK-CHECKOUT";
inline constexpr std::string_view kPshDevice = "PSH-DEVICE";
inline constexpr std::string_view kPshUser = "PSH-USER";
inline constexpr std::string_view kPshTokenUpdate = "PSH-TOKEN-UPDATE";
inline constexpr std::string_view kPshWellFormed = "PSH-WELL-FORMED";
inline constexpr std::string_view kPshUnregistered = "PSH-UNREGISTERED";
inline constexpr std::string_view kPshBackoff = "PSH-BACKOFF";
inline constexpr std::string_view kPshCheckout = "PSH-CHECKOUT";
inline constexpr std::string_view kDdmTokens = "DDM-TOKENS";
inline constexpr std::string_view kDdmItems = "DDM-ITEMS";
inline constexpr std::string_view kDdmFetch = "DDM-FETCH";
inline constexpr std::string_view kDdmSchema = "DDM-SCHEMA";
inline constexpr std::string_view kDdmChannel = "DDM-CHANNEL";
inline constexpr std::string_view kDdmReferences = "DDM-REFERENCES";
inline constexpr std::string_view kDdmTokenChange = "DDM-TOKEN-CHANGE";
inline constexpr std::string_view kDdmStatus = "DDM-STATUS";
}  // namespace rule

inline constexpr std::array<std::string_view, 48> kRuleIds = {
    rule::kEnrAuth,
    rule::kEnrTokenDevice,
    rule::kEnrTokenUser,
    rule::kEnrSameIdentity,
    rule::kEnrUnknownDevice,
    rule::kNetRefuse410,
    rule::kNetManage,
    rule::kNetRefusedStaysOut,
    rule::kChnUserOnly,
    rule::kChnDeviceOnly,
    rule::kChnConcurrent,
    rule::kChnIdleEmpty,
    rule::kSynAll,
    rule::kSynEmptyEnd,
    rule::kUcfTerminates,
    rule::kUcfNoRepeat,
    rule::kUcfRedeliver,
    rule::kUcfDeviceConfigured,
    rule::kCmdShape,
    rule::kCmdSchema,
    rule::kCmdAckedGone,
    rule::kCmdUnknownUuid,
    rule::kCmdDuplicateReport,
    rule::kRobMalformed,
    rule::kRobUnknownType,
    rule::kRobOversize,
    rule::kRobAlive,
    rule::kPrfOneAccount,
    rule::kEnrProfile,
    rule::kEnrPerUser,
    rule::kEnrScep,
    rule::kEnrCheckinUrl,
    rule::kChkCheckout,
    rule::kPshDevice,
    rule::kPshUser,
    rule::kPshTokenUpdate,
    rule::kPshWellFormed,
    rule::kPshUnregistered,
    rule::kPshBackoff,
    rule::kPshCheckout,
    rule::kDdmTokens,
    rule::kDdmItems,
    rule::kDdmFetch,
    rule::kDdmSchema,
    rule::kDdmChannel,
    rule::kDdmReferences,
    rule::kDdmTokenChange,
    rule::kDdmStatus,
};

constexpr bool is_known_rule(std::string_view id) {
  for (auto known : kRuleIds) {
    if (known == id) return true;
  }
  return false;
}

}  // namespace mdmc::protocol
