#include <algorithm>
#include <bitset>
#include <limits>

#include "harness/enroll/detail/profile_schema.hpp"
#include "harness/protocol/apple_schema.hpp"

namespace mdmc::enroll::detail {
namespace {

static_assert(kProfileSchemaRevision == protocol::kAppleSchemaRevision,
              "profile_schema_data.inc comes from another schema revision than apple_schema.hpp names: "
              "regenerate it (tools/gen_profile_schema.py), or move both together");

static_assert(protocol::sorted_by_name(kProfilePayloads, &ProfilePayloadSchema::payload_type),
              "kProfilePayloads must be sorted by PayloadType, without repeats");
static_assert(protocol::children_within(kProfileKeys, kProfileKeys.size()) &&
              protocol::children_within(kProfilePayloads, kProfileKeys.size()));

constexpr bool values_in_range() {
  for (const auto& key : kProfileKeys) {
    if (key.values_first + key.values_count > kProfileValues.size()) return false;
  }
  return true;
}
static_assert(values_in_range());

// One step of a format pattern: a set of bytes, taken between min and max times.
struct PatternStep {
  std::bitset<256> bytes;
  std::size_t min = 1;
  std::size_t max = 1;
};
constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

std::optional<std::size_t> read_number(std::string_view pattern, std::size_t& i) {
  std::size_t value = 0;
  const std::size_t start = i;
  while (i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9' && i - start < 6) {
    value = value * 10 + static_cast<std::size_t>(pattern[i] - '0');
    ++i;
  }
  if (i == start) return std::nullopt;
  return value;
}

// A bracket expression from just after '[' to its ']'.
std::optional<std::bitset<256>> read_class(std::string_view pattern, std::size_t& i) {
  std::bitset<256> set;
  bool negate = false;
  if (i < pattern.size() && pattern[i] == '^') {
    negate = true;
    ++i;
  }
  bool first = true;
  while (i < pattern.size() && (pattern[i] != ']' || first)) {
    first = false;
    unsigned char low = static_cast<unsigned char>(pattern[i]);
    if (low == '\\') {
      if (++i >= pattern.size()) return std::nullopt;
      low = static_cast<unsigned char>(pattern[i]);
    }
    ++i;
    unsigned char high = low;
    if (i + 1 < pattern.size() && pattern[i] == '-' && pattern[i + 1] != ']') {
      high = static_cast<unsigned char>(pattern[i + 1]);
      i += 2;
      if (high < low) return std::nullopt;
    }
    for (unsigned c = low; c <= high; ++c) set.set(c);
  }
  if (i >= pattern.size()) return std::nullopt;
  ++i;  // ']'
  if (negate) set.flip();
  return set;
}

std::optional<std::vector<PatternStep>> compile(std::string_view pattern) {
  if (pattern.size() < 2 || pattern.front() != '^' || pattern.back() != '$') return std::nullopt;
  pattern = pattern.substr(1, pattern.size() - 2);
  std::vector<PatternStep> steps;
  std::size_t i = 0;
  while (i < pattern.size()) {
    PatternStep step;
    const char c = pattern[i++];
    if (c == '.') {
      step.bytes.set();
      step.bytes.reset('\n');
      step.bytes.reset('\r');
    } else if (c == '[') {
      auto set = read_class(pattern, i);
      if (!set) return std::nullopt;
      step.bytes = *set;
    } else if (c == '\\') {
      if (i >= pattern.size()) return std::nullopt;
      step.bytes.set(static_cast<unsigned char>(pattern[i++]));
    } else if (std::string_view("*+?{}()|^$]").find(c) != std::string_view::npos) {
      return std::nullopt;
    } else {
      step.bytes.set(static_cast<unsigned char>(c));
    }
    if (i < pattern.size()) {
      const char q = pattern[i];
      if (q == '*' || q == '+' || q == '?') {
        step.min = q == '+' ? 1 : 0;
        step.max = q == '?' ? 1 : kUnbounded;
        ++i;
      } else if (q == '{') {
        ++i;
        auto low = read_number(pattern, i);
        if (!low) return std::nullopt;
        step.min = step.max = *low;
        if (i < pattern.size() && pattern[i] == ',') {
          ++i;
          auto high = read_number(pattern, i);
          step.max = high ? *high : kUnbounded;
          if (step.max < step.min) return std::nullopt;
        }
        if (i >= pattern.size() || pattern[i] != '}') return std::nullopt;
        ++i;
      }
    }
    steps.push_back(step);
  }
  return steps;
}

// Greedy with backtracking; the recursion is as deep as the pattern has steps, whatever the text.
bool match_from(const std::vector<PatternStep>& steps, std::size_t step_index, std::string_view text,
                std::size_t position) {
  if (step_index == steps.size()) return position == text.size();
  const PatternStep& step = steps[step_index];
  std::size_t taken = 0;
  while (taken < step.max && position + taken < text.size() &&
         step.bytes.test(static_cast<unsigned char>(text[position + taken]))) {
    ++taken;
  }
  if (taken < step.min) return false;
  for (std::size_t n = taken + 1; n-- > step.min;) {
    if (match_from(steps, step_index + 1, text, position + n)) return true;
  }
  return false;
}

std::string join_values(std::span<const std::string_view> values) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out += ", ";
    out += value;
  }
  return out;
}

// An array of strings where SubjectAltName's schema says <string>: Apple's devices take several
// names of a kind that way (docs/enrollment-profile.md).
bool is_string_array(const plist::Value& value) {
  const plist::Array* array = value.as_array();
  return array != nullptr && std::all_of(array->begin(), array->end(),
                                         [](const plist::Value& item) { return item.is(plist::Type::string); });
}

void check_value(const plist::Value& value, const ProfileKey& key, std::string_view label, const std::string& path,
                 bool in_subject_alt_name, Problems& problems);

void check_dict(const plist::Dict& dict, std::span<const ProfileKey> keys, std::string_view label,
                std::string_view path, bool subject_alt_name, Problems& problems) {
  for (const auto& key : keys) {
    const std::string key_path = path.empty() ? std::string(key.name) : std::string(path) + "." + std::string(key.name);
    auto found = dict.find(key.name);
    if (found == dict.end()) {
      if (key.flags & kRequired) {
        problems.add(std::string(label) + ": " + key_path + " is missing (Apple's schema requires it)");
      }
      continue;
    }
    check_value(found->second, key, label, key_path, subject_alt_name, problems);
  }
}

void check_array(const plist::Array& array, const ProfileKey& key, std::string_view label, const std::string& path,
                 Problems& problems) {
  if (key.count != 1) return;
  const ProfileKey& item = kProfileKeys[key.first];
  if (array.size() < item.min_items || (item.max_items != 0 && array.size() > item.max_items)) {
    const std::string bounds = item.min_items == item.max_items
                                   ? std::to_string(item.min_items)
                                   : std::to_string(item.min_items) + " to " +
                                         (item.max_items == 0 ? std::string("any") : std::to_string(item.max_items));
    problems.add(std::string(label) + ": " + path + " has " + std::to_string(array.size()) +
                 " items, Apple's schema says " + bounds);
  }
  for (std::size_t i = 0; i < array.size(); ++i) {
    check_value(array[i], item, label, path + "[" + std::to_string(i) + "]", false, problems);
  }
}

void check_value(const plist::Value& value, const ProfileKey& key, std::string_view label, const std::string& path,
                 bool in_subject_alt_name, Problems& problems) {
  if (!protocol::has_schema_type(value, key.type)) {
    if (in_subject_alt_name && key.type == SchemaType::string && is_string_array(value)) return;
    problems.add(std::string(label) + ": " + path + " is " + std::string(value_type_name(value)) +
                 ", Apple's schema says " + std::string(schema_type_name(key.type)));
    return;
  }
  if (const std::string* text = value.as_string(); text && !key.format.empty()) {
    if (matches_format(key.format, *text) == false) {
      const bool https = key.format == "^https://.*$";
      problems.add(std::string(label) + ": " + path + " " + quote_value(*text) +
                   (https ? " is not an https URL" : " does not match the format") +
                   " (Apple's schema: " + std::string(key.format) + ")");
    }
  }
  if (key.values_count > 0) {
    const auto values = allowed_values(key);
    std::string text;
    if (const std::string* s = value.as_string()) text = *s;
    if (const std::int64_t* i = value.as_integer()) text = std::to_string(*i);
    if (std::find(values.begin(), values.end(), text) == values.end()) {
      problems.add(std::string(label) + ": " + path + " is " + quote_value(text) + ", Apple's schema allows " +
                   join_values(values));
    }
  }
  if (const plist::Dict* dict = value.as_dict(); dict && key.type == SchemaType::dictionary && !(key.flags & kOpen)) {
    check_dict(*dict, children(key), label, path, key.name == "SubjectAltName", problems);
  }
  if (const plist::Array* array = value.as_array(); array && key.type == SchemaType::array) {
    check_array(*array, key, label, path, problems);
  }
}

}  // namespace

const ProfilePayloadSchema* find_payload_schema(std::string_view payload_type) {
  return protocol::find_by_name(kProfilePayloads, &ProfilePayloadSchema::payload_type, payload_type);
}

std::span<const ProfileKey> keys_of(const ProfilePayloadSchema& payload) {
  return std::span<const ProfileKey>(kProfileKeys).subspan(payload.first, payload.count);
}

std::span<const ProfileKey> children(const ProfileKey& key) {
  return std::span<const ProfileKey>(kProfileKeys).subspan(key.first, key.count);
}

std::span<const std::string_view> allowed_values(const ProfileKey& key) {
  return std::span<const std::string_view>(kProfileValues).subspan(key.values_first, key.values_count);
}

std::optional<bool> matches_format(std::string_view pattern, std::string_view text) {
  auto steps = compile(pattern);
  if (!steps) return std::nullopt;
  return match_from(*steps, 0, text, 0);
}

std::string quote_value(std::string_view text) {
  constexpr std::size_t kShown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (text.size() > kShown) out += " (" + std::to_string(text.size()) + " bytes)";
  return out;
}

void Problems::add(std::string sentence) {
  if (sentences_.size() < kMaxProblems) {
    sentences_.push_back(std::move(sentence));
  } else {
    ++dropped_;
  }
}

std::vector<std::string> Problems::take() && {
  if (dropped_ > 0) sentences_.push_back("and " + std::to_string(dropped_) + " more problems of the same kinds");
  return std::move(sentences_);
}

void check_keys(const plist::Dict& dict, std::span<const ProfileKey> keys, std::string_view label,
                std::string_view path, Problems& problems) {
  check_dict(dict, keys, label, path, false, problems);
}

}  // namespace mdmc::enroll::detail
