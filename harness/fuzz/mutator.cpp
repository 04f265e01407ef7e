#include "harness/fuzz/mutator.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "harness/fuzz/detail/parse_cache.hpp"
#include "harness/fuzz/detail/schema_keys.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/declarative.hpp"

namespace mdmc::fuzz {
namespace {

using plist::Array;
using plist::Dict;
using plist::Value;

using detail::kCheckInKeys;

constexpr std::array<std::string_view, 9> kMessageTypes = {
    "Authenticate",      "TokenUpdate",           "UserAuthenticate", "CheckOut",       "SetBootstrapToken",
    "GetBootstrapToken", "DeclarativeManagement", "GetToken",         "ReturnToService"};
constexpr std::array<std::string_view, 5> kStatuses = {"Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow"};
// Report and command keys: the command report's own keys, and what a report answers with.
constexpr std::array<std::string_view, 14> kReportKeys = {"Status",
                                                          "CommandUUID",
                                                          "ErrorChain",
                                                          "ErrorCode",
                                                          "ErrorDomain",
                                                          "LocalizedDescription",
                                                          "USEnglishDescription",
                                                          "NeedSyncResponse",
                                                          "UserConfiguration",
                                                          "RequestType",
                                                          "Command",
                                                          "QueryResponses",
                                                          "ProfileList",
                                                          "InstalledApplicationList"};

// Strings that servers mishandle: empty, whitespace, unicode that changes direction or
// composes, a byte-order mark, fullwidth digits, format and path strings, injection shapes.
constexpr std::array<std::string_view, 17> kOddStrings = {
    "",
    "   ",
    "\xe2\x80\xae"
    "DIDU",  // RIGHT-TO-LEFT OVERRIDE
    "\xef\xbb\xbf"
    "Idle",                                  // byte-order mark before a real value
    "e\xcc\x81\xcc\x81\xcc\x81",             // combining accents
    "\xf0\x9f\x98\x80\xf0\x9f\x92\xa9",      // emoji outside the BMP
    "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93",  // fullwidth digits
    "\xe2\x80\x8b",                          // zero-width space alone
    "%s%s%n%x%d",
    "../../../../etc/passwd",
    "' OR '1'='1' --",
    "${jndi:ldap://127.0.0.1/a}",
    "\r\nX-Injected: 1\r\n",
    "null",
    "-1",
    "00000000-0000-0000-0000-000000000000",
    "\\u0000",
};

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  std::size_t below(std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(engine_);
  }
  bool chance(int one_in) { return below(static_cast<std::size_t>(one_in)) == 0; }
  template <typename T>
  const T& pick(const T* items, std::size_t count) {
    return items[below(count)];
  }
  std::uint64_t bits() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

// A node of the tree, with where it sits: a dict member (parent and key) or not.
struct Slot {
  Value* value;
  Dict* parent = nullptr;
  std::string key;
  int depth = 0;
};

void collect(Value& value, Dict* parent, const std::string& key, int depth, std::vector<Slot>& out) {
  out.push_back({&value, parent, key, depth});
  if (auto* dict = value.as_dict()) {
    for (auto& [k, v] : *dict) collect(v, dict, k, depth + 1, out);
  } else if (auto* array = value.as_array()) {
    for (auto& v : *array) collect(v, nullptr, {}, depth + 1, out);
  }
}

std::vector<Slot> slots_of(Value& root) {
  std::vector<Slot> out;
  collect(root, nullptr, {}, 0, out);
  return out;
}

// A node to replace: rarely the whole message, which would leave nothing of its meaning.
Slot& pick_slot(std::vector<Slot>& slots, Rng& rng) {
  if (slots.size() == 1 || rng.chance(16)) return slots[rng.below(slots.size())];
  return slots[1 + rng.below(slots.size() - 1)];
}

std::string random_uuid(Rng& rng) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    s += kHex[rng.below(16)];
  }
  return s;
}

std::string random_bytes(Rng& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

// A size for a big string or blob that still leaves room in max_size. Smaller sizes come more
// often: every later input made from a big one is as big, and big inputs slow the fuzzer (with
// -max_len=4096 it ran a quarter faster than with 65536; docs/fuzzing.md#throughput).
std::size_t big_size(Rng& rng, std::size_t max_size) {
  static constexpr std::size_t kSizes[] = {256,  256,  256,  256,   1024,  1024,  1024,
                                           4096, 4096, 4096, 16384, 16384, 65536, 262144};
  std::size_t size = rng.pick(kSizes, std::size(kSizes));
  return std::min(size, max_size > 512 ? max_size - 512 : 0);
}

Value convert(const Value& from, plist::Type to, Rng& rng) {
  std::string text;
  if (auto* s = from.as_string())
    text = *s;
  else if (auto* i = from.as_integer())
    text = std::to_string(*i);
  else if (auto* r = from.as_real())
    text = std::to_string(*r);
  else if (auto* b = from.as_bool())
    text = *b ? "true" : "false";
  else if (auto* d = from.as_data())
    text = d->bytes;
  std::int64_t number = 0;
  if (auto* i = from.as_integer())
    number = *i;
  else if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
           text.size() < 18)
    number = std::stoll(text);
  else
    number = static_cast<std::int64_t>(text.size());
  switch (to) {
    case plist::Type::boolean: return Value(number != 0 || text == "true");
    case plist::Type::integer: return Value(number);
    case plist::Type::real: return Value(static_cast<double>(number) + 0.5);
    case plist::Type::string: return Value(text);
    case plist::Type::data: return Value(plist::Data{text});
    case plist::Type::date: return Value(plist::Date{static_cast<double>(number)});
    case plist::Type::array: return Value(Array{from});
    case plist::Type::dict: return Value(Dict{{"Value", from}});
    case plist::Type::uid: return Value(plist::Uid{static_cast<std::uint64_t>(rng.below(1000))});
  }
  return from;
}

// Each mutation returns false when it does not apply to this tree.
bool retype(Value& root, Rng& rng) {
  auto slots = slots_of(root);
  auto& slot = pick_slot(slots, rng);
  static constexpr plist::Type kTypes[] = {plist::Type::boolean, plist::Type::integer, plist::Type::real,
                                           plist::Type::string,  plist::Type::data,    plist::Type::date,
                                           plist::Type::array,   plist::Type::dict};
  plist::Type to = slot.value->type();
  for (int i = 0; i < 8 && to == slot.value->type(); ++i) to = rng.pick(kTypes, std::size(kTypes));
  if (to == slot.value->type()) return false;
  *slot.value = convert(*slot.value, to, rng);
  return true;
}

std::vector<Slot> members(Value& root) {
  std::vector<Slot> out;
  for (auto& s : slots_of(root)) {
    if (s.parent) out.push_back(s);
  }
  return out;
}

bool drop_key(Value& root, Rng& rng) {
  auto m = members(root);
  if (m.empty()) return false;
  auto& slot = m[rng.below(m.size())];
  slot.parent->erase(slot.key);
  return true;
}

std::string renamed(const std::string& key, Rng& rng) {
  switch (rng.below(6)) {
    case 0: {
      const auto& keys = known_keys();
      return std::string(keys[rng.below(keys.size())]);
    }
    case 1: {
      std::string lower = key;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return lower == key ? key + "s" : lower;
    }
    case 2: return key + " ";
    case 3: return "\xe2\x80\x8b" + key;  // zero-width space first: looks the same
    case 4: return "";
    default: return key + "2";
  }
}

bool rename_key(Value& root, Rng& rng) {
  auto m = members(root);
  if (m.empty()) return false;
  auto& slot = m[rng.below(m.size())];
  auto to = renamed(slot.key, rng);
  if (to == slot.key) return false;
  Value moved = std::move(*slot.value);
  slot.parent->erase(slot.key);
  (*slot.parent)[to] = std::move(moved);
  return true;
}

bool swap_message_type(Value& root, Rng& rng) {
  auto* top = root.as_dict();
  if (!top) return false;
  // Mostly a real value of the same kind; sometimes a check-in becomes a report or back.
  bool check_in = top->count("MessageType") > 0;
  bool report = top->count("Status") > 0;
  if (!check_in && !report) check_in = rng.chance(2);
  if (rng.chance(8)) {
    top->erase(check_in ? "MessageType" : "Status");
    check_in = !check_in;
  }
  const char* key = check_in ? "MessageType" : "Status";
  std::string_view const* values = check_in ? kMessageTypes.data() : kStatuses.data();
  std::size_t count = check_in ? kMessageTypes.size() : kStatuses.size();
  std::size_t index = rng.below(count);
  const std::string* current = top->count(key) ? (*top)[key].as_string() : nullptr;
  if (current && *current == values[index]) index = (index + 1 + rng.below(count - 1)) % count;
  (*top)[key] = Value(std::string(values[index]));
  if (!check_in && values[index] != "Idle" && !top->count("CommandUUID"))
    (*top)["CommandUUID"] = Value(random_uuid(rng));
  return true;
}

bool confuse_channel(Value& root, Rng& rng) {
  auto* top = root.as_dict();
  if (!top) return false;
  auto* udid = top->count("UDID") ? (*top)["UDID"].as_string() : nullptr;
  std::string user_id =
      top->count("UserID") && (*top)["UserID"].as_string() ? *(*top)["UserID"].as_string() : random_uuid(rng);
  switch (rng.below(7)) {
    case 0:  // a user's keys on what was a device message
      (*top)["UserID"] = Value(user_id);
      (*top)["UserShortName"] = Value(std::string("fuzz"));
      (*top)["UserLongName"] = Value(std::string("Fuzz User"));
      return true;
    case 1:  // no UDID
      return top->erase("UDID") > 0;
    case 2:  // a user message that lost its UserID but kept the names
      return top->erase("UserID") > 0;
    case 3: {  // the UDID names the user, some other device, or none (blank: a device record's empty key)
      const auto which = rng.below(3);
      (*top)["UDID"] = Value(which == 0 ? user_id : which == 1 ? random_uuid(rng) : std::string());
      return true;
    }
    case 4:  // User Enrollment's identifiers beside the UDID
      (*top)["EnrollmentID"] = Value(udid ? *udid : random_uuid(rng));
      (*top)["EnrollmentUserID"] = Value(user_id);
      return true;
    case 5:  // user-only flags on a device message
      (*top)["NotOnConsole"] = Value(rng.chance(2));
      (*top)["UserConfiguration"] = Value(true);
      return true;
    default: (*top)["NeedSyncResponse"] = Value(true); return true;
  }
}

bool odd_string(Value& root, Rng& rng, std::size_t max_size) {
  auto slots = slots_of(root);
  std::vector<Slot*> strings;
  for (auto& s : slots) {
    if (s.value->as_string()) strings.push_back(&s);
  }
  Slot& slot = strings.empty() ? pick_slot(slots, rng) : *strings[rng.below(strings.size())];
  std::string value;
  switch (rng.below(3)) {
    case 0: value = std::string(kOddStrings[rng.below(kOddStrings.size())]); break;
    case 1: {
      auto* s = slot.value->as_string();
      std::string unit = s && !s->empty() ? *s : "A";
      auto size = big_size(rng, max_size);
      while (value.size() + unit.size() <= size) value += unit;
      break;
    }
    default: {
      auto* s = slot.value->as_string();
      value = (s ? *s : std::string()) + std::string(kOddStrings[rng.below(kOddStrings.size())]);
    }
  }
  *slot.value = Value(value);
  return true;
}

bool numeric_extreme(Value& root, Rng& rng) {
  auto slots = slots_of(root);
  std::vector<Slot*> numbers;
  for (auto& s : slots) {
    if (s.value->as_integer() || s.value->as_real() || s.value->as_date()) numbers.push_back(&s);
  }
  Slot& slot = numbers.empty() ? pick_slot(slots, rng) : *numbers[rng.below(numbers.size())];
  constexpr double kInf = std::numeric_limits<double>::infinity();
  static const Value kExtremes[] = {Value(std::numeric_limits<std::int64_t>::min()),
                                    Value(std::numeric_limits<std::int64_t>::max()),
                                    Value(std::int64_t{-1}),
                                    Value(std::int64_t{0}),
                                    Value(std::int64_t{1} << 32),
                                    Value((std::int64_t{1} << 53) + 1),
                                    Value(std::numeric_limits<double>::quiet_NaN()),
                                    Value(kInf),
                                    Value(-kInf),
                                    Value(-0.0),
                                    Value(1e308),
                                    Value(5e-324),
                                    Value(plist::Date{-1e12}),
                                    Value(plist::Date{1e12})};
  *slot.value = rng.pick(kExtremes, std::size(kExtremes));
  return true;
}

bool data_blob(Value& root, Rng& rng, std::size_t max_size) {
  auto slots = slots_of(root);
  auto& slot = pick_slot(slots, rng);
  std::size_t size = rng.chance(4) ? 0 : rng.chance(2) ? 1 + rng.below(64) : big_size(rng, max_size) / 2;
  *slot.value = Value(plist::Data{random_bytes(rng, size)});
  return true;
}

bool deep_nesting(Value& root, Rng& rng) {
  auto slots = slots_of(root);
  auto& slot = pick_slot(slots, rng);
  static constexpr int kDepths[] = {8, 32, 63, 100, 500};
  int depth = rng.pick(kDepths, std::size(kDepths));
  Value inner = std::move(*slot.value);
  for (int i = 0; i < depth; ++i) inner = i % 2 ? Value(Array{std::move(inner)}) : Value(Dict{{"a", std::move(inner)}});
  *slot.value = std::move(inner);
  return true;
}

// The same key twice in one dict: a std::map cannot hold it, so the XML text gets it. A
// second <key>K</key> with a value of another type goes right before the first one.
std::optional<std::string> duplicate_key_xml(const Value& root, Rng& rng) {
  std::string xml = plist::to_xml(root);
  std::vector<std::size_t> keys;
  for (auto at = xml.find("<key>"); at != std::string::npos; at = xml.find("<key>", at + 5)) keys.push_back(at);
  if (keys.empty()) return std::nullopt;
  auto at = keys[rng.below(keys.size())];
  auto end = xml.find("</key>", at);
  if (end == std::string::npos) return std::nullopt;
  std::string key = xml.substr(at + 5, end - at - 5);
  static constexpr std::string_view kValues[] = {
      "<string>mdmconform</string>", "<integer>0</integer>", "<true/>", "<data>AA==</data>", "<dict/>", "<array/>"};
  xml.insert(at, "<key>" + key + "</key>" + std::string(kValues[rng.below(std::size(kValues))]));
  return xml;
}

// ---- Declarative Device Management ----------------------------------------------------------

// A declaration's `valid` value: the schema's three, or near them.
std::string validity_word(Rng& rng) {
  static constexpr std::string_view kWords[] = {"valid", "invalid", "unknown", "Valid", "maybe", ""};
  return std::string(kWords[rng.below(std::size(kWords))]);
}

using protocol::Json;

bool is_declarative(const Value& root) {
  const auto* top = root.as_dict();
  if (!top) return false;
  auto it = top->find("MessageType");
  return it != top->end() && it->second.as_string() && *it->second.as_string() == "DeclarativeManagement";
}

// Endpoint values: the real ones, declaration paths (real groups with odd identifiers, odd
// groups), and path shapes a server might resolve wrongly.
constexpr std::array<std::string_view, 24> kOddEndpoints = {
    "",
    "Tokens",
    "tokens/",
    "/tokens",
    "declaration-items?x=1",
    "declaration",
    "declaration/",
    "declaration/configuration",
    "declaration/configuration/",
    "declaration//com.example",
    "declaration/configuration/../../tokens",
    "declaration/configuration/%2e%2e%2ftokens",
    "declaration/Configuration/com.example.passcode",
    "declaration/configurations/com.example.passcode",
    "declaration/status/com.example.passcode",
    "declaration/activation/com.example.passcode/extra",
    "declaration/management/\xe2\x80\xae"
    "x",
    "declaration/asset/%00",
    "declaration/activation/ space ",
    "status/../declaration-items",
    "tokens\r\nX-Injected: 1",
    "declaration-items ",
    "DeclarationItems",
    "statuses",
};
constexpr std::array<std::string_view, 6> kDeclarationIdentifiers = {"com.example.passcode",
                                                                     "com.example.activation",
                                                                     "mdmconform.fuzz",
                                                                     "",
                                                                     "*",
                                                                     "00000000-0000-0000-0000-000000000000"};

std::string some_endpoint(Rng& rng, std::size_t max_size) {
  switch (rng.below(4)) {
    case 0: {
      static constexpr std::string_view kReal[] = {protocol::kTokensEndpoint, protocol::kDeclarationItemsEndpoint,
                                                   protocol::kStatusEndpoint};
      return std::string(kReal[rng.below(std::size(kReal))]);
    }
    case 1: {
      auto group = protocol::kDeclarationGroups[rng.below(protocol::kDeclarationGroups.size())];
      std::string identifier(kDeclarationIdentifiers[rng.below(kDeclarationIdentifiers.size())]);
      if (rng.chance(4)) identifier = std::string(kOddStrings[rng.below(kOddStrings.size())]);
      if (rng.chance(8)) identifier.append(std::min<std::size_t>(big_size(rng, max_size), 8192), 'A');
      return protocol::declaration_endpoint(group, identifier);
    }
    default: return std::string(kOddEndpoints[rng.below(kOddEndpoints.size())]);
  }
}

// A status report the check-in did not carry: one configuration, valid and active.
std::string a_status_report(Rng& rng) {
  protocol::DeclarationStatus status{protocol::DeclarationGroup::configuration,
                                     std::string(kDeclarationIdentifiers[rng.below(3)]),
                                     random_uuid(rng),
                                     true,
                                     protocol::Validity::valid,
                                     {}};
  return protocol::status_report({status}, rng.chance(2));
}

bool ddm_endpoint(Value& root, Rng& rng, std::size_t max_size) {
  if (!is_declarative(root)) return false;
  auto& top = *root.as_dict();
  const std::string* current = top.count("Endpoint") ? top["Endpoint"].as_string() : nullptr;
  std::string to = some_endpoint(rng, max_size);
  for (int i = 0; i < 4 && current && *current == to; ++i) to = some_endpoint(rng, max_size);
  if (current && *current == to) return false;
  switch (rng.below(8)) {
    case 0: top.erase("Endpoint"); break;  // none at all
    case 1: top["Endpoint"] = Value(Array{Value(to)}); break;
    default: top["Endpoint"] = Value(to);
  }
  // A status check-in without its report, or another endpoint with one: now and then.
  if (to == protocol::kStatusEndpoint && !top.count("Data") && !rng.chance(4)) {
    top["Data"] = Value(plist::Data{a_status_report(rng)});
  } else if (to != protocol::kStatusEndpoint && top.count("Data") && rng.chance(2)) {
    top.erase("Data");
  }
  return true;
}

// Key names of the status report and of the declarative answers (Apple's schema,
// declarative/protocol and declarative/status), and status items' names.
constexpr std::array<std::string_view, 40> kDeclarativeKeys = {
    "StatusItems",
    "Errors",
    "FullReport",
    "management",
    "declarations",
    "activations",
    "configurations",
    "assets",
    "identifier",
    "server-token",
    "active",
    "valid",
    "reasons",
    "code",
    "description",
    "details",
    "client-capabilities",
    "push-token",
    "device",
    "identifier",
    "serial-number",
    "udid",
    "operating-system",
    "version",
    "build-version",
    "model",
    "family",
    "passcode",
    "is-compliant",
    "is-present",
    "softwareupdate",
    "pending-version",
    "StatusPath",
    "ErrorCode",
    "SyncTokens",
    "DeclarationsToken",
    "Timestamp",
    "Declarations",
    "ServerToken",
    "Identifier",
};

// A JSON node with where it sits: an object member (parent and key), an array element, or the root.
struct JsonSlot {
  Json* value;
  Json* parent = nullptr;
  std::string key;
  int depth = 0;
};

void collect_json(Json& value, Json* parent, const std::string& key, int depth, std::vector<JsonSlot>& out) {
  out.push_back({&value, parent, key, depth});
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) collect_json(*it, &value, it.key(), depth + 1, out);
  } else if (value.is_array()) {
    for (auto& element : value) collect_json(element, &value, {}, depth + 1, out);
  }
}

Json odd_json_value(Rng& rng) {
  switch (rng.below(12)) {
    case 0: return nullptr;
    case 1: return rng.chance(2);
    case 2: return std::numeric_limits<std::int64_t>::min();
    case 3: return std::numeric_limits<std::uint64_t>::max();
    case 4: return -1;
    case 5: return 1e308;
    case 6: return 0.5;
    case 7: return Json::array();
    case 8: return Json::object();
    case 9: return std::string(kOddStrings[rng.below(kOddStrings.size())]);
    case 10: return validity_word(rng);
    default: return std::string(kDeclarativeKeys[rng.below(kDeclarativeKeys.size())]);
  }
}

// One declaration's entry in management.declarations, real in shape, odd in parts.
Json a_declaration_entry(Rng& rng) {
  Json entry{{"identifier", std::string(kDeclarationIdentifiers[rng.below(kDeclarationIdentifiers.size())])},
             {"server-token", random_uuid(rng)},
             {"active", rng.chance(2)},
             {"valid", validity_word(rng)}};
  if (rng.chance(2)) entry["reasons"] = Json::array({{{"code", "Error.InvalidPayload"}}});
  if (rng.chance(4)) entry.erase(std::string(rng.chance(2) ? "identifier" : "server-token"));
  return entry;
}

// The JSON edits; each returns false when it does not apply.
bool json_edit(Json& root, Rng& rng, std::size_t max_size) {
  std::vector<JsonSlot> slots;
  collect_json(root, nullptr, {}, 0, slots);
  // Rarely the whole report, which would leave nothing of its meaning.
  JsonSlot& slot =
      slots.size() == 1 || rng.chance(16) ? slots[rng.below(slots.size())] : slots[1 + rng.below(slots.size() - 1)];
  switch (rng.below(9)) {
    case 0: {  // retype
      Json to = odd_json_value(rng);
      if (to.type() == slot.value->type() && to == *slot.value) return false;
      if (rng.chance(3) && slot.value->is_primitive()) to = slot.value->dump();  // the value as a string
      *slot.value = std::move(to);
      return true;
    }
    case 1: {  // drop a member or an element
      if (!slot.parent) return false;
      if (slot.parent->is_object()) {
        slot.parent->erase(slot.key);
      } else {
        auto& array = *slot.parent;
        for (std::size_t i = 0; i < array.size(); ++i) {
          if (&array[i] == slot.value) {
            array.erase(i);
            break;
          }
        }
      }
      return true;
    }
    case 2: {  // rename a member
      if (!slot.parent || !slot.parent->is_object()) return false;
      std::string to;
      switch (rng.below(4)) {
        case 0: to = std::string(kDeclarativeKeys[rng.below(kDeclarativeKeys.size())]); break;
        case 1:
          to = slot.key;
          for (auto& c : to) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          break;
        case 2: to = slot.key + "\xe2\x80\x8b"; break;
        default: to = "";
      }
      if (to == slot.key) return false;
      Json moved = std::move(*slot.value);
      auto* parent = slot.parent;
      parent->erase(slot.key);
      (*parent)[to] = std::move(moved);
      return true;
    }
    case 3: {  // add a declaration entry, or an unknown member, where a list or an object is
      auto at = std::find_if(slots.begin(), slots.end(), [&](const JsonSlot& s) {
        return s.value->is_array() &&
               (s.key == "configurations" || s.key == "activations" || s.key == "assets" || s.key == "management");
      });
      if (at != slots.end() && !rng.chance(4)) {
        at->value->push_back(a_declaration_entry(rng));
        return true;
      }
      if (slot.value->is_object()) {
        (*slot.value)[std::string(kDeclarativeKeys[rng.below(kDeclarativeKeys.size())])] = odd_json_value(rng);
        return true;
      }
      if (slot.value->is_array()) {
        slot.value->push_back(odd_json_value(rng));
        return true;
      }
      return false;
    }
    case 4: {  // many copies of an element
      if (!slot.parent || !slot.parent->is_array()) return false;
      static constexpr std::size_t kCopies[] = {2, 16, 256, 4096};
      const std::size_t unit = std::max<std::size_t>(slot.value->dump().size() + 1, 1);
      std::size_t copies = std::min(rng.pick(kCopies, std::size(kCopies)), max_size / 2 / unit);
      Json copy = *slot.value;
      for (std::size_t i = 0; i < copies; ++i) slot.parent->push_back(copy);
      return copies > 0;
    }
    case 5: {  // nesting: a value wrapped in arrays and objects, past the depths servers allow
      static constexpr int kDepths[] = {4, 31, 33, 64, 100};
      int depth = rng.pick(kDepths, std::size(kDepths));
      Json inner = std::move(*slot.value);
      for (int i = 0; i < depth; ++i) inner = i % 2 ? Json::array({std::move(inner)}) : Json{{"a", std::move(inner)}};
      *slot.value = std::move(inner);
      return true;
    }
    case 6: {  // a string: odd, or long
      if (rng.chance(2)) {
        *slot.value = std::string(kOddStrings[rng.below(kOddStrings.size())]);
      } else {
        *slot.value = std::string(big_size(rng, max_size) / 2, 'A');
      }
      return true;
    }
    case 7: {  // FullReport flipped, dropped, or of another type
      if (!root.is_object()) return false;
      auto it = root.find("FullReport");
      if (it == root.end() || rng.chance(4)) {
        root["FullReport"] = odd_json_value(rng);
      } else if (it->is_boolean()) {
        *it = !it->get<bool>();
      } else {
        root.erase("FullReport");
      }
      return true;
    }
    default: {  // a declaration's active or valid state, or its identifier or server-token
      std::vector<JsonSlot*> states;
      for (auto& s : slots) {
        if (s.key == "active" || s.key == "valid" || s.key == "identifier" || s.key == "server-token") {
          states.push_back(&s);
        }
      }
      if (states.empty()) return false;
      auto& state = *states[rng.below(states.size())];
      if (state.key == "active") {
        *state.value = state.value->is_boolean() ? Json(!state.value->get<bool>()) : Json(true);
      } else if (state.key == "valid") {
        *state.value = validity_word(rng);
      } else {
        *state.value = rng.chance(2) ? Json(random_uuid(rng)) : odd_json_value(rng);
      }
      return true;
    }
  }
}

// Byte edits, for Data that is not JSON (or that the JSON mutator cannot read back).
std::string byte_edit(std::string bytes, Rng& rng, std::size_t max_size) {
  switch (rng.below(5)) {
    case 0:
      if (!bytes.empty()) bytes.resize(rng.below(bytes.size()));  // truncated
      break;
    case 1:
      if (!bytes.empty()) bytes[rng.below(bytes.size())] = static_cast<char>(rng.below(256));
      break;
    case 2: {
      static constexpr std::string_view kTokens[] = {"{", "}", "[", "]", "\"", ",", ":", "null", "\\u0000", "\xff"};
      auto token = kTokens[rng.below(std::size(kTokens))];
      bytes.insert(rng.below(bytes.size() + 1), token);
      break;
    }
    case 3: bytes = random_bytes(rng, 1 + rng.below(64)); break;
    default: bytes = a_status_report(rng);  // back to a report
  }
  if (bytes.size() > max_size) bytes.resize(max_size);
  return bytes;
}

bool ddm_json(Value& root, Rng& rng, std::size_t max_size) {
  if (!is_declarative(root)) return false;
  auto& top = *root.as_dict();
  auto it = top.find("Data");
  std::string json;
  if (it == top.end() || !it->second.as_data()) {
    json = a_status_report(rng);  // a check-in without a report gets one (or one that was not <data>)
  } else {
    json = it->second.as_data()->bytes;
  }
  // Most of the report's room stays for the plist around it.
  const std::size_t room = max_size > 1024 ? max_size - 1024 : max_size / 2;
  top["Data"] = Value(plist::Data{mutate_declarative_json(json, rng.bits(), room)});
  return true;
}

bool apply(Mutation mutation, Value& root, Rng& rng, std::size_t max_size) {
  switch (mutation) {
    case Mutation::retype: return retype(root, rng);
    case Mutation::drop_key: return drop_key(root, rng);
    case Mutation::rename_key: return rename_key(root, rng);
    case Mutation::swap_message_type: return swap_message_type(root, rng);
    case Mutation::confuse_channel: return confuse_channel(root, rng);
    case Mutation::odd_string: return odd_string(root, rng, max_size);
    case Mutation::numeric_extreme: return numeric_extreme(root, rng);
    case Mutation::data_blob: return data_blob(root, rng, max_size);
    case Mutation::deep_nesting: return deep_nesting(root, rng);
    case Mutation::switch_encoding: return true;
    case Mutation::ddm_endpoint: return ddm_endpoint(root, rng, max_size);
    case Mutation::ddm_json: return ddm_json(root, rng, max_size);
    case Mutation::duplicate_key:
    case Mutation::graft: return false;  // not tree edits
  }
  return false;
}

std::string encode(const Value& root, plist::Format format) {
  return format == plist::Format::binary ? plist::to_binary(root) : plist::to_xml(root);
}

}  // namespace

std::string_view mutation_name(Mutation mutation) {
  static constexpr std::string_view kNames[kMutationKinds] = {
      "retype",          "drop_key",     "duplicate_key",   "rename_key", "swap_message_type",
      "confuse_channel", "odd_string",   "numeric_extreme", "data_blob",  "deep_nesting",
      "switch_encoding", "ddm_endpoint", "ddm_json",        "graft"};
  return kNames[static_cast<int>(mutation)];
}

std::string mutate_declarative_json(std::string_view json, std::uint64_t seed, std::size_t max_size) {
  Rng rng(seed);
  protocol::JsonLimits limits;  // wide: the mutator reads back the deep and big reports it wrote
  limits.max_bytes = std::max<std::size_t>(max_size, json.size());
  limits.max_depth = 128;
  limits.max_values = std::size_t{1} << 20;
  auto parsed = protocol::parse_bounded_json(json, limits);
  if (!parsed || rng.chance(16)) return byte_edit(std::string(json), rng, max_size);
  Json root = std::move(*parsed);
  const int edits = 1 + static_cast<int>(rng.below(3));
  for (int edit = 0; edit < edits; ++edit) {
    for (int attempt = 0; attempt < 4 && !json_edit(root, rng, max_size); ++attempt) {}
  }
  // Invalid UTF-8 cannot be written as JSON: the mutator's strings are valid, a seed's may not be.
  std::string out = rng.chance(8) ? root.dump(2, ' ', false, Json::error_handler_t::replace)
                                  : root.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (out.size() > max_size) return byte_edit(std::string(json), rng, max_size);
  return out;
}

const std::vector<std::string_view>& declarative_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::set<std::string_view> unique(kDeclarativeKeys.begin(), kDeclarativeKeys.end());
    return std::vector<std::string_view>(unique.begin(), unique.end());
  }();
  return keys;
}

const std::vector<std::string_view>& known_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::set<std::string_view> unique;
    for (const auto& fact : kCheckInKeys) unique.insert(fact.key);
    for (auto key : kReportKeys) unique.insert(key);
    return std::vector<std::string_view>(unique.begin(), unique.end());
  }();
  return keys;
}

std::optional<Mutated> mutate_plist_as(std::string_view input, Mutation mutation, std::uint64_t seed,
                                       std::size_t max_size) {
  const auto parsed = detail::parse_input(input);
  if (!*parsed) return std::nullopt;
  auto format = plist::sniff(input).value_or(plist::Format::xml);
  Rng rng(seed);
  Value root = **parsed;
  std::optional<std::string> bytes;
  if (mutation == Mutation::duplicate_key) {
    bytes = duplicate_key_xml(root, rng);
  } else if (mutation != Mutation::graft && apply(mutation, root, rng, max_size)) {
    if (mutation == Mutation::switch_encoding) {
      format = format == plist::Format::xml ? plist::Format::binary : plist::Format::xml;
    } else if (rng.chance(16)) {
      format = rng.chance(2) ? plist::Format::xml : plist::Format::binary;
    }
    bytes = encode(root, format);
  }
  if (!bytes || bytes->size() > max_size) return std::nullopt;
  return Mutated{std::move(*bytes), mutation};
}

std::optional<Mutated> mutate_plist(std::string_view input, std::uint64_t seed, std::size_t max_size) {
  if (!plist::sniff(input)) return std::nullopt;
  Rng rng(seed);
  // A DeclarativeManagement check-in (its MessageType is in the bytes, XML or binary) gets its
  // Endpoint or its report mutated half the time; the ddm_* mutations do not apply to others.
  const bool declarative = input.find("DeclarativeManagement") != std::string_view::npos;
  // A few tries: a mutation may not apply (no dict to drop from) or may not fit.
  for (int attempt = 0; attempt < 6; ++attempt) {
    // The plist mutations: not graft (cross-over's), nor the ddm_* ones (chosen below).
    auto mutation = static_cast<Mutation>(rng.below(static_cast<std::size_t>(Mutation::switch_encoding) + 1));
    if (declarative && rng.chance(2)) mutation = rng.chance(3) ? Mutation::ddm_endpoint : Mutation::ddm_json;
    if (auto out = mutate_plist_as(input, mutation, rng.bits(), max_size)) return out;
  }
  return std::nullopt;
}

std::optional<std::string> cross_over_plists(std::string_view input, std::string_view other, std::uint64_t seed,
                                             std::size_t max_size) {
  const auto a = detail::parse_input(input);
  if (!*a) return std::nullopt;
  const auto b = detail::parse_input(other);
  if (!*b) return std::nullopt;
  Rng rng(seed);
  Value root = **a;
  const Value& donor = **b;
  if (root.as_dict() && donor.as_dict() && rng.chance(2)) {
    // Merge: some of the other message's keys, over this one's.
    for (auto& [key, value] : *donor.as_dict()) {
      if (rng.chance(2)) (*root.as_dict())[key] = value;
    }
  } else {
    // The slots are collected from a copy: the parse is shared (detail/parse_cache.hpp).
    Value graft = donor;
    auto into = slots_of(root);
    auto from = slots_of(graft);
    *into[rng.below(into.size())].value = std::move(*from[rng.below(from.size())].value);
  }
  auto bytes = encode(root, plist::sniff(input).value_or(plist::Format::xml));
  if (bytes.size() > max_size) return std::nullopt;
  return bytes;
}

}  // namespace mdmc::fuzz
