#include "harness/protocol/declarative.hpp"

#include <algorithm>
#include <set>
#include <span>

#include "harness/base/clock.hpp"
#include "harness/protocol/apple_schema.hpp"
#include "harness/protocol/detail/declarative_tables.hpp"
#include "harness/protocol/detail/violation_list.hpp"

namespace mdmc::protocol {
namespace {

using detail::DeclarationSchema;
using detail::DocumentSchema;
using detail::kDeclarationSchemas;
using detail::kDeclarativeKeys;
using detail::kDocumentSchemas;
using detail::kStatusItemSchemas;
using detail::SchemaKey;
using detail::StatusItemSchema;

static_assert(detail::kDeclarativeDataRevision == kAppleSchemaRevision,
              "declarative_schema_data.inc comes from another schema revision than apple_schema.hpp "
              "names: regenerate it, or move both together");
static_assert(sorted_by_name(kDeclarationSchemas, &DeclarationSchema::type),
              "kDeclarationSchemas must be sorted by Type, without repeats");
static_assert(sorted_by_name(kDocumentSchemas, &DocumentSchema::name));
static_assert(sorted_by_name(kStatusItemSchemas, &StatusItemSchema::name));
static_assert(children_within(kDeclarativeKeys, kDeclarativeKeys.size()) &&
              children_within(kDeclarationSchemas, kDeclarativeKeys.size()) &&
              children_within(kDocumentSchemas, kDeclarativeKeys.size()));
static_assert(std::all_of(kStatusItemSchemas.begin(), kStatusItemSchemas.end(),
                          [](const StatusItemSchema& item) { return item.key < kDeclarativeKeys.size(); }));

struct GroupNames {
  DeclarationGroup group;
  std::string_view name;        // the path segment
  std::string_view items_key;   // in DeclarationItemsResponse.Declarations
  std::string_view status_key;  // in management.declarations
};
constexpr std::array<GroupNames, 4> kGroupNames = {{
    {DeclarationGroup::activation, "activation", "Activations", "activations"},
    {DeclarationGroup::configuration, "configuration", "Configurations", "configurations"},
    {DeclarationGroup::asset, "asset", "Assets", "assets"},
    {DeclarationGroup::management, "management", "Management", "management"},
}};
const GroupNames& names_of(DeclarationGroup group) { return kGroupNames[static_cast<std::size_t>(group)]; }

std::span<const SchemaKey> children(std::uint16_t first, std::uint16_t count) {
  return std::span<const SchemaKey>(kDeclarativeKeys).subspan(first, count);
}

const DocumentSchema& document(std::string_view name) {
  return *find_by_name(kDocumentSchemas, &DocumentSchema::name, name);
}

// What the peer sent, quoted in a message: bounded, so a megabyte Type stays out of the report.
std::string shown(std::string_view text) {
  constexpr std::size_t kMaxQuoted = 64;
  if (text.size() <= kMaxQuoted) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kMaxQuoted)) + "...' (" + std::to_string(text.size()) + " bytes)";
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// The schema's word for what a JSON value is; <data> and <date> travel as strings.
std::string_view json_type_name(const Json& value) {
  if (value.is_string()) return "<string>";
  if (value.is_boolean()) return "<boolean>";
  if (value.is_number_integer()) return "<integer>";
  if (value.is_number()) return "<real>";
  if (value.is_array()) return "<array>";
  if (value.is_object()) return "<dictionary>";
  return "<null>";
}

bool has_json_type(const Json& value, SchemaType type) {
  switch (type) {
    case SchemaType::string:
    case SchemaType::data:  // base64 in JSON
    case SchemaType::date: return value.is_string();
    case SchemaType::integer: return value.is_number_integer();
    case SchemaType::real: return value.is_number();
    case SchemaType::boolean: return value.is_boolean();
    case SchemaType::array: return value.is_array();
    case SchemaType::dictionary: return value.is_object();
    case SchemaType::any: return true;
  }
  return false;
}

// The JSON counterpart of command_schema.cpp's plist walk: keys, types, presence, recursively.
class Checker : public detail::ViolationList {
 public:
  void object(const Json& object, std::span<const SchemaKey> keys, const std::string& path, std::size_t depth) {
    for (const auto& member : object.items()) {
      if (full()) return;
      const std::string& name = member.key();
      auto known = std::find_if(keys.begin(), keys.end(), [&](const SchemaKey& k) { return k.name == name; });
      if (known == keys.end()) {
        add(join(path, name), "unknown key");
        continue;
      }
      key(member.value(), *known, join(path, name), depth);
    }
    for (const auto& k : keys) {
      if (full()) return;
      if ((k.flags & detail::kRequired) && !(k.flags & detail::kNotOnMacOS) && !object.contains(k.name)) {
        add(join(path, k.name), "missing (required)");
      }
    }
  }

  void key(const Json& value, const SchemaKey& key, const std::string& path, std::size_t depth) {
    if (key.flags & detail::kNotOnMacOS) {
      add(path, "not supported on macOS");
      return;
    }
    if (!has_json_type(value, key.type)) {
      add(path, "must be " + std::string(schema_type_name(key.type)) + ", is " + std::string(json_type_name(value)));
      return;
    }
    if (key.type == SchemaType::date && !base::parse_rfc3339(value.get_ref<const std::string&>())) {
      add(path, "must be an RFC 3339 date-time, is " + shown(value.get_ref<const std::string&>()));
      return;
    }
    if (!key.fixed.empty() && value.get_ref<const std::string&>() != key.fixed) {
      add(path, "must be " + shown(key.fixed) + ", is " + shown(value.get_ref<const std::string&>()));
      return;
    }
    if (key.type != SchemaType::dictionary && key.type != SchemaType::array) return;
    if (depth + 1 > kMaxSchemaDepth) {
      add(path, "nested deeper than " + std::to_string(kMaxSchemaDepth));
      return;
    }
    if (key.type == SchemaType::dictionary) {
      if (key.flags & detail::kOpen) return;
      object(value, children(key.first, key.count), path, depth + 1);
      return;
    }
    const auto kinds = children(key.first, key.count);
    if (kinds.empty()) return;  // items of any type
    for (std::size_t i = 0; i < value.size() && !full(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      // Several item kinds (none in the declarative schema at b6202ca): the first whose pinned
      // keys match, else the first.
      const SchemaKey* kind = &kinds[0];
      for (const auto& candidate : kinds) {
        bool matches = value[i].is_object();
        for (const auto& sub : children(candidate.first, candidate.count)) {
          if (sub.fixed.empty() || !matches) continue;
          auto it = value[i].find(sub.name);
          matches = it != value[i].end() && it->is_string() && it->get_ref<const std::string&>() == sub.fixed;
        }
        if (matches) {
          kind = &candidate;
          break;
        }
      }
      this->key(value[i], *kind, item_path, depth + 1);
    }
  }
};

// A whole document against its schema; a document that is not an object is one problem.
void check_document(Checker& checker, const Json& doc, std::string_view schema) {
  if (!doc.is_object()) {
    checker.add("", "must be <dictionary>, is " + std::string(json_type_name(doc)));
    return;
  }
  const DocumentSchema& d = document(schema);
  checker.object(doc, children(d.first, d.count), "", 0);
}

// Reads a string member the client cannot do without.
base::Result<std::string> required_string(const Json& object, std::string_view key, std::string_view path) {
  auto it = object.find(key);
  if (it == object.end()) return base::fail(std::string(path) + ": missing");
  if (!it->is_string()) {
    return base::fail(std::string(path) + ": must be <string>, is " + std::string(json_type_name(*it)));
  }
  return it->get<std::string>();
}

base::Result<Json> parse_object(std::string_view body, const JsonLimits& limits) {
  auto doc = parse_bounded_json(body, limits);
  if (!doc) return doc.error();
  if (!doc->is_object()) return base::fail("must be a JSON object, is " + std::string(json_type_name(*doc)));
  return doc;
}

}  // namespace

std::string_view declaration_group_name(DeclarationGroup group) { return names_of(group).name; }
std::string_view declaration_items_key(DeclarationGroup group) { return names_of(group).items_key; }
std::string_view declaration_status_key(DeclarationGroup group) { return names_of(group).status_key; }

std::optional<DeclarationGroup> declaration_group_from_name(std::string_view name) {
  for (const auto& names : kGroupNames) {
    if (names.name == name) return names.group;
  }
  return std::nullopt;
}

std::string declaration_endpoint(DeclarationGroup group, std::string_view identifier) {
  return "declaration/" + std::string(declaration_group_name(group)) + "/" + std::string(identifier);
}

std::size_t DeclarationItems::size() const {
  std::size_t total = 0;
  for (const auto& items : groups) total += items.size();
  return total;
}

base::Result<Json> parse_bounded_json(std::string_view bytes, const JsonLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return base::fail("JSON of " + std::to_string(bytes.size()) + " bytes, over the bound of " +
                      std::to_string(limits.max_bytes));
  }
  // Depth and size first, outside strings: the parser would build whatever it is given.
  std::size_t depth = 0;
  std::size_t values = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : bytes) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limits.max_depth) return base::fail("JSON nested deeper than " + std::to_string(limits.max_depth));
      ++values;
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    } else if (c == ',') {
      ++values;
    }
    if (values > limits.max_values)
      return base::fail("JSON of more than " + std::to_string(limits.max_values) + " values");
  }
  Json doc = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return base::fail(bytes.empty() ? "empty body, not JSON" : "not JSON");
  return doc;
}

base::Result<SyncTokens> decode_tokens(std::string_view body, const JsonLimits& limits) {
  auto doc = parse_object(body, limits);
  if (!doc) return doc.error();
  auto sync = doc->find("SyncTokens");
  if (sync == doc->end()) return base::fail("SyncTokens: missing");
  if (!sync->is_object())
    return base::fail("SyncTokens: must be <dictionary>, is " + std::string(json_type_name(*sync)));
  auto token = required_string(*sync, "DeclarationsToken", "SyncTokens.DeclarationsToken");
  if (!token) return token.error();
  SyncTokens tokens{*token, ""};
  auto timestamp = sync->find("Timestamp");
  if (timestamp != sync->end() && timestamp->is_string()) tokens.timestamp = timestamp->get<std::string>();
  return tokens;
}

base::Result<DeclarationItems> decode_declaration_items(std::string_view body, const JsonLimits& limits) {
  auto doc = parse_object(body, limits);
  if (!doc) return doc.error();
  auto declarations = doc->find("Declarations");
  if (declarations == doc->end()) return base::fail("Declarations: missing");
  if (!declarations->is_object()) {
    return base::fail("Declarations: must be <dictionary>, is " + std::string(json_type_name(*declarations)));
  }
  DeclarationItems items;
  auto token = required_string(*doc, "DeclarationsToken", "DeclarationsToken");
  if (!token) return token.error();
  items.declarations_token = *token;
  std::set<std::string, std::less<>> seen;
  for (DeclarationGroup group : kDeclarationGroups) {
    const std::string key(declaration_items_key(group));
    auto list = declarations->find(key);
    if (list == declarations->end()) continue;  // the judge says it is required; nothing to fetch
    const std::string path = "Declarations." + key;
    if (!list->is_array()) return base::fail(path + ": must be <array>, is " + std::string(json_type_name(*list)));
    auto& out = items.groups[static_cast<std::size_t>(group)];
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      const Json& item = (*list)[i];
      if (!item.is_object())
        return base::fail(item_path + ": must be <dictionary>, is " + std::string(json_type_name(item)));
      auto identifier = required_string(item, "Identifier", item_path + ".Identifier");
      if (!identifier) return identifier.error();
      auto server_token = required_string(item, "ServerToken", item_path + ".ServerToken");
      if (!server_token) return server_token.error();
      if (identifier->empty()) return base::fail(item_path + ".Identifier: empty");
      if (!seen.insert(*identifier).second) {
        return base::fail(item_path + ".Identifier: " + shown(*identifier) + " listed more than once");
      }
      if (seen.size() > limits.max_declarations) {
        return base::fail("more than " + std::to_string(limits.max_declarations) + " declarations listed");
      }
      out.push_back({*identifier, *server_token});
    }
  }
  return items;
}

base::Result<Declaration> decode_declaration(std::string_view body, const JsonLimits& limits) {
  auto doc = parse_object(body, limits);
  if (!doc) return doc.error();
  Declaration declaration;
  for (auto [key, out] : {std::pair{"Type", &declaration.type}, std::pair{"Identifier", &declaration.identifier},
                          std::pair{"ServerToken", &declaration.server_token}}) {
    auto value = required_string(*doc, key, key);
    if (!value) return value.error();
    *out = std::move(*value);
  }
  auto payload = doc->find("Payload");
  if (payload == doc->end()) return base::fail("Payload: missing");
  if (!payload->is_object())
    return base::fail("Payload: must be <dictionary>, is " + std::string(json_type_name(*payload)));
  declaration.payload = std::move(*payload);
  return declaration;
}

base::Result<std::optional<SyncTokens>> command_sync_tokens(const Command& command, const JsonLimits& limits) {
  auto inner = command.body.find("Command");
  const plist::Dict* dict = inner == command.body.end() ? nullptr : inner->second.as_dict();
  if (!dict) return base::fail("Command: must be <dictionary>");
  auto data = dict->find("Data");
  if (data == dict->end()) return std::optional<SyncTokens>{};
  const plist::Data* bytes = data->second.as_data();
  if (!bytes) return base::fail("Command.Data: must be <data>, is " + std::string(value_type_name(data->second)));
  auto tokens = decode_tokens(bytes->bytes, limits);
  if (!tokens) return base::fail("Command.Data: " + tokens.error().message);
  return std::optional<SyncTokens>(std::move(*tokens));
}

std::vector<SchemaViolation> problems_in_tokens(const Json& tokens_response) {
  Checker checker;
  check_document(checker, tokens_response, "TokensResponse");
  return checker.take();
}

std::vector<SchemaViolation> problems_in_items(const Json& items_response,
                                               std::optional<std::string_view> tokens_declarations_token) {
  Checker checker;
  check_document(checker, items_response, "DeclarationItemsResponse");
  if (!items_response.is_object()) return checker.take();
  auto token = items_response.find("DeclarationsToken");
  // Apple: the DeclarationsToken of the manifest is the tokens endpoint's, which is how a client
  // knows the manifest it holds is current.
  if (tokens_declarations_token && token != items_response.end() && token->is_string() &&
      token->get_ref<const std::string&>() != *tokens_declarations_token) {
    checker.add("DeclarationsToken", "is " + shown(token->get_ref<const std::string&>()) +
                                         ", the tokens endpoint said " + shown(*tokens_declarations_token));
  }
  auto declarations = items_response.find("Declarations");
  if (declarations == items_response.end() || !declarations->is_object()) return checker.take();
  std::set<std::string, std::less<>> seen;
  for (DeclarationGroup group : kDeclarationGroups) {
    auto list = declarations->find(declaration_items_key(group));
    if (list == declarations->end() || !list->is_array()) continue;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Json& item = (*list)[i];
      auto identifier = item.is_object() ? item.find("Identifier") : item.end();
      if (!item.is_object() || identifier == item.end() || !identifier->is_string()) continue;
      if (!seen.insert(identifier->get<std::string>()).second) {
        checker.add(
            "Declarations." + std::string(declaration_items_key(group)) + "[" + std::to_string(i) + "].Identifier",
            shown(identifier->get_ref<const std::string&>()) + " listed more than once");
      }
    }
  }
  return checker.take();
}

std::vector<SchemaViolation> problems_in_declaration_payload(std::string_view type, const Json& payload) {
  Checker checker;
  const DeclarationSchema* schema = find_by_name(kDeclarationSchemas, &DeclarationSchema::type, type);
  if (!schema) {
    checker.add("Type", "unknown declaration Type " + shown(type));
    return checker.take();
  }
  if (schema->channels == 0) {
    checker.add("Type", "not supported on macOS");
    return checker.take();
  }
  if (!payload.is_object()) {
    checker.add("Payload", "must be <dictionary>, is " + std::string(json_type_name(payload)));
    return checker.take();
  }
  checker.object(payload, children(schema->first, schema->count), "Payload", 0);
  return checker.take();
}

std::vector<SchemaViolation> problems_in_declaration(const Json& declaration) {
  Checker checker;
  check_document(checker, declaration, "DeclarationBase");
  auto out = checker.take();
  if (!declaration.is_object()) return out;
  auto type = declaration.find("Type");
  auto payload = declaration.find("Payload");
  if (type == declaration.end() || !type->is_string() || payload == declaration.end()) return out;
  for (auto& problem : problems_in_declaration_payload(type->get_ref<const std::string&>(), *payload)) {
    if (out.size() >= kMaxSchemaViolations) break;
    out.push_back(std::move(problem));
  }
  return out;
}

std::vector<SchemaViolation> problems_in_status_report(const Json& status_report) {
  Checker checker;
  check_document(checker, status_report, "StatusReport");
  if (!status_report.is_object()) return checker.take();
  auto items = status_report.find("StatusItems");
  if (items == status_report.end() || !items->is_object()) return checker.take();
  // A status item "a.b.c" sits at StatusItems.a.b.c.
  for (const auto& item : kStatusItemSchemas) {
    const Json* at = &*items;
    std::string_view rest = item.name;
    while (at && !rest.empty()) {
      auto dot = rest.find('.');
      auto part = rest.substr(0, dot);
      rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
      auto it = at->is_object() ? at->find(part) : at->end();
      at = at->is_object() && it != at->end() ? &*it : nullptr;
    }
    if (at) checker.key(*at, kDeclarativeKeys[item.key], "StatusItems." + std::string(item.name), 0);
  }
  return checker.take();
}

namespace {

void collect_asset_references(const Json& j, std::size_t depth, std::vector<std::string>& out) {
  if (depth > 32) return;
  if (j.is_array()) {
    for (const auto& item : j) collect_asset_references(item, depth + 1, out);
    return;
  }
  if (!j.is_object()) return;
  for (const auto& [key, value] : j.items()) {
    if (key.ends_with("AssetReference") && value.is_string()) {
      out.push_back(value.get<std::string>());
    } else if (key.ends_with("AssetReferences") && value.is_array()) {
      for (const auto& item : value) {
        if (item.is_string()) out.push_back(item.get<std::string>());
      }
    } else {
      collect_asset_references(value, depth + 1, out);
    }
  }
}

}  // namespace

std::vector<std::string> asset_references(const Json& payload) {
  std::vector<std::string> out;
  collect_asset_references(payload, 0, out);
  return out;
}

std::optional<DeclarationFacts> declaration_facts(std::string_view type) {
  const DeclarationSchema* schema = find_by_name(kDeclarationSchemas, &DeclarationSchema::type, type);
  if (!schema) return std::nullopt;
  return DeclarationFacts{schema->group, schema->channels != 0, (schema->channels & detail::kDeviceChannel) != 0,
                          (schema->channels & detail::kUserChannel) != 0};
}

bool allowed_on_channel(std::string_view type, const Channel& channel) {
  auto facts = declaration_facts(type);
  if (!facts) return false;
  return channel.is_user() ? facts->user_channel : facts->device_channel;
}

std::optional<MacChannels> status_item_channels(std::string_view name) {
  const StatusItemSchema* item = find_by_name(kStatusItemSchemas, &StatusItemSchema::name, name);
  if (!item) return std::nullopt;
  return MacChannels{(item->channels & detail::kDeviceChannel) != 0, (item->channels & detail::kUserChannel) != 0};
}

std::string_view declarative_schema_revision() { return detail::kDeclarativeDataRevision; }

plist::Dict declarative_management(const Channel& channel, const UserFacts* user, std::string_view endpoint,
                                   const std::optional<std::string>& data) {
  plist::Dict dict{
      {"MessageType", std::string(message_type_name(MessageType::declarative_management))},
      {"Endpoint", std::string(endpoint)},
      {"UDID", channel.udid},
  };
  if (user) {
    dict["UserID"] = user->user_id;
    dict["UserShortName"] = user->short_name;
    dict["UserLongName"] = user->long_name;
  } else if (channel.is_user()) {
    dict["UserID"] = channel.user_id;
  }
  if (data) dict["Data"] = plist::Data{*data};
  return dict;
}

std::string_view validity_name(Validity validity) {
  switch (validity) {
    case Validity::valid: return "valid";
    case Validity::invalid: return "invalid";
    case Validity::unknown: return "unknown";
  }
  return "unknown";
}

std::string status_report(const std::vector<DeclarationStatus>& declarations, bool full_report) {
  Json lists = Json::object();
  for (DeclarationGroup group : kDeclarationGroups) lists[std::string(declaration_status_key(group))] = Json::array();
  for (const auto& declaration : declarations) {
    Json entry{{"identifier", declaration.identifier},
               {"server-token", declaration.server_token},
               {"active", declaration.active},
               {"valid", validity_name(declaration.valid)}};
    if (!declaration.reasons.empty()) {
      Json reasons = Json::array();
      for (const auto& code : declaration.reasons) reasons.push_back({{"code", code}});
      entry["reasons"] = std::move(reasons);
    }
    lists[std::string(declaration_status_key(declaration.group))].push_back(std::move(entry));
  }
  Json report{{"StatusItems", {{"management", {{"declarations", std::move(lists)}}}}},
              {"Errors", Json::array()},
              {"FullReport", full_report}};
  // What a server sent is echoed (identifiers, tokens): replace, not throw, on bad UTF-8.
  return report.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace mdmc::protocol
