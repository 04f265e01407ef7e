#include "harness/server/seeded_bugs.hpp"

#include <array>

namespace mdmc::server {
namespace {

// In enum order, so that seeded_bug_info is an index.
constexpr std::array<SeededBugInfo, 11> kCatalog = {{
    {SeededBug::none, "none", "no seeded bug"},
    {SeededBug::wrong_type_500, "wrong-type-500",
     "answers 500 (not 400) to a check-in whose MessageType, Topic, UDID, UserID, UserShortName, "
     "UserLongName or PushMagic is an <integer>"},
    {SeededBug::long_string_hang, "long-string-hang",
     "stalls 30 s before answering a check-in or report holding a string longer than 4 KiB"},
    {SeededBug::user_key_corrupts, "user-key-corrupts",
     "takes an Authenticate that carries a UserID (200, not 400) and marks the device corrupt: "
     "its device-channel reports get 500 from then on"},
    {SeededBug::deep_nesting_reset, "deep-nesting-reset",
     "resets the connection instead of answering a message with containers nested 16 deep or more"},
    {SeededBug::binary_plist_500, "binary-plist-500",
     "answers 500 to a check-in in binary plist encoding that holds a <date> anywhere"},
    {SeededBug::negative_integer_500, "negative-integer-500",
     "answers 500 to a command report holding a negative <integer> anywhere"},
    {SeededBug::empty_udid_wedge, "empty-udid-wedge",
     "wedges on a message whose UDID is an empty string: it and every later check-in and report get 503"},
    {SeededBug::unicode_name_500, "unicode-name-500",
     "answers 500 to a message whose UserShortName holds a character outside ASCII"},
    {SeededBug::duplicate_key_500, "duplicate-key-500",
     "answers 500 to an XML message with the same key twice in one dict"},
    {SeededBug::data_topic_reset, "data-topic-reset",
     "resets the connection instead of answering a check-in whose Topic is <data>, not <string>"},
}};

}  // namespace

std::span<const SeededBugInfo> seeded_bug_catalog() { return kCatalog; }

std::optional<SeededBug> seeded_bug_from_name(std::string_view name) {
  for (const auto& info : kCatalog) {
    if (info.name == name) return info.bug;
  }
  return std::nullopt;
}

const SeededBugInfo& seeded_bug_info(SeededBug bug) {
  for (const auto& info : kCatalog) {
    if (info.bug == bug) return info;
  }
  return kCatalog.front();
}

}  // namespace mdmc::server
