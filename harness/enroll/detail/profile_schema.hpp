#pragma once
// The tables tools/gen_profile_schema.py derives from Apple's schema for the payloads of an
// enrollment profile, and the checks made with them. Private to harness/enroll:
// enrollment_profile.cpp judges a profile with them; the tests check the tables themselves.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "harness/plist/value.hpp"
#include "harness/protocol/schema_types.hpp"

namespace mdmc::enroll::detail {

using protocol::schema_type_name;
using protocol::SchemaType;
using protocol::value_type_name;

// ProfileKey::flags
inline constexpr std::uint8_t kRequired = 1;  // presence: required
inline constexpr std::uint8_t kOpen = 2;      // a dictionary that takes any key; its values are not checked

// One key of a payload, or the item type of an array. Sub-keys are kProfileKeys[first, first +
// count): a dictionary's keys, or an array's one item type.
struct ProfileKey {
  std::string_view name;
  SchemaType type;
  std::uint8_t flags;
  std::uint16_t first;
  std::uint16_t count;
  std::string_view format;     // a pattern a string must match (matches_format's subset), or empty
  std::uint16_t values_first;  // rangelist: the values a string or integer may take, in kProfileValues
  std::uint16_t values_count;  // 0: any value
  std::uint16_t min_items;     // for an array's item type: how many items the array holds at least
  std::uint16_t max_items;     // ... and at most; 0: unbounded
};

struct ProfilePayloadSchema {
  std::string_view payload_type;  // "com.apple.mdm"; "TopLevel" and "CommonPayloadKeys" for those two files
  bool multiple;                  // macOS takes more than one payload of the type in a profile
  std::uint16_t first;            // its keys in kProfileKeys
  std::uint16_t count;
};

// AccessRights: `bit` set needs `needed` set too.
struct AccessRightsNeed {
  std::int64_t bit;
  std::int64_t needed;
};

using T = SchemaType;
#include "harness/enroll/profile_schema_data.inc"

inline constexpr std::string_view kTopLevel = "TopLevel";
inline constexpr std::string_view kCommonPayloadKeys = "CommonPayloadKeys";

// The schema of a payload type, or null for one the tables do not hold.
const ProfilePayloadSchema* find_payload_schema(std::string_view payload_type);
std::span<const ProfileKey> keys_of(const ProfilePayloadSchema& payload);
std::span<const ProfileKey> children(const ProfileKey& key);
std::span<const std::string_view> allowed_values(const ProfileKey& key);

// Whether `text` matches `pattern` (anchored, with literals, ., [classes] and the quantifiers
// *, +, ?, {n}, {n,m}: the subset the generator admits); nothing when the pattern is outside it.
// The pattern comes from the tables, never from a peer; the text may be anything, and the time
// taken grows with its length, not faster, for the tables' patterns (one unbounded quantifier).
std::optional<bool> matches_format(std::string_view pattern, std::string_view text);

// A value for a problem sentence: quoted, control characters escaped, cut after 80 bytes.
std::string quote_value(std::string_view text);

// Problems, one sentence each, capped so that a hostile profile cannot make the list grow
// without bound: past kMaxProblems, one last sentence says how many more were found.
class Problems {
 public:
  static constexpr std::size_t kMaxProblems = 200;
  void add(std::string sentence);
  std::vector<std::string> take() &&;

 private:
  std::vector<std::string> sentences_;
  std::size_t dropped_ = 0;
};

// Checks `dict` against `keys`: every required key present, every present key of its type
// (an <integer> passes for a <real>), matching its format, one of its allowed values, and
// the dictionaries and arrays inside it in turn. Keys the schema does not name are not
// problems (Apple ignores them). Each sentence starts "<label>: " and names the key by its path
// ("PayloadContent.Subject[0][1]").
void check_keys(const plist::Dict& dict, std::span<const ProfileKey> keys, std::string_view label,
                std::string_view path, Problems& problems);

}  // namespace mdmc::enroll::detail
