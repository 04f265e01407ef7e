#include "harness/server/declaration_store.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "harness/base/bytes.hpp"

namespace mdmc::server {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxIdentifierBytes = 256;
constexpr std::size_t kMaxSetNameBytes = 128;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Bounded as every JSON from a peer is (protocol::parse_bounded_json), within this store's caps;
// an error says what it was of.
base::Result<Json> parse_bounded(std::string_view text, std::size_t max_bytes, int max_depth, std::string_view what) {
  protocol::JsonLimits limits;
  limits.max_bytes = max_bytes;
  limits.max_depth = static_cast<std::size_t>(max_depth);
  auto j = protocol::parse_bounded_json(text, limits);
  if (!j) return base::fail(fmt::format("{}: {}", what, j.message()));
  return j;
}

// A name the admin API takes in a path: not empty, bounded, and no '/' (it would name another
// endpoint) nor control characters.
bool acceptable_name(std::string_view name, std::size_t max) {
  return !name.empty() && name.size() <= max && std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || static_cast<unsigned char>(c) < 0x20;
  });
}

}  // namespace

std::optional<DeclarationGroup> group_of_type(std::string_view type) {
  for (auto group : protocol::kDeclarationGroups) {
    const auto prefix = "com.apple." + std::string(protocol::declaration_group_name(group)) + ".";
    if (type.size() > prefix.size() && type.starts_with(prefix)) return group;
  }
  return std::nullopt;
}

DeclarationStore::DeclarationStore(DeclarationBounds bounds, std::string started_at, DeclarationStoreFaults faults)
    : bounds_(bounds), started_at_(std::move(started_at)), faults_(faults) {}

base::Result<DeclarationStore::Put> DeclarationStore::put(std::string_view json_text, const std::string& now) {
  auto parsed = parse_bounded(json_text, bounds_.declaration_bytes, bounds_.max_json_depth, "the declaration");
  if (!parsed) return parsed.error();
  Json& d = *parsed;
  if (!d.is_object()) return base::fail("the declaration is not a JSON object");
  auto type = d.find("Type");
  auto identifier = d.find("Identifier");
  auto payload = d.find("Payload");
  if (type == d.end() || !type->is_string()) return base::fail("the declaration's Type is not a string");
  if (identifier == d.end() || !identifier->is_string())
    return base::fail("the declaration's Identifier is not a string");
  if (payload == d.end() || !payload->is_object()) return base::fail("the declaration's Payload is not an object");
  const auto type_text = type->get<std::string>();
  const auto id = identifier->get<std::string>();
  auto group = group_of_type(type_text);
  if (!group) {
    return base::fail(
        fmt::format("the declaration's Type \"{}\" names none of com.apple.activation, .configuration, "
                    ".asset, .management",
                    type_text));
  }
  if (!acceptable_name(id, kMaxIdentifierBytes)) {
    return base::fail(
        fmt::format("the declaration's Identifier must be 1 to {} bytes without '/'", kMaxIdentifierBytes));
  }
  // The token follows the content, so that putting the same declaration twice changes nothing.
  d.erase("ServerToken");
  const std::string token = base::sha256_hex(dump(d)).substr(0, 16);
  d["ServerToken"] = token;

  auto existing = declarations_.find(id);
  if (existing != declarations_.end() && existing->second.server_token == token) return Put{{}, id, token};
  if (existing == declarations_.end() && declarations_.size() >= bounds_.declarations) {
    return base::fail(fmt::format("the reference server keeps at most {} declarations", bounds_.declarations));
  }
  const auto before = snapshot();
  declarations_[id] = Declaration{type_text, *group, token, std::move(d)};
  return Put{settle(before, now), id, token};
}

DeclarationStore::Change DeclarationStore::remove(const std::string& identifier, const std::string& now) {
  auto found = declarations_.find(identifier);
  if (found == declarations_.end()) return {};
  const auto before = snapshot();
  declarations_.erase(found);
  for (auto& [name, members] : sets_) members.erase(identifier);
  return settle(before, now);
}

std::optional<std::string> DeclarationStore::declaration_json(const std::string& identifier) const {
  auto found = declarations_.find(identifier);
  if (found == declarations_.end()) return std::nullopt;
  return dump(found->second.document);
}

std::vector<std::string> DeclarationStore::identifiers() const {
  std::vector<std::string> out;
  for (const auto& [id, d] : declarations_) out.push_back(id);
  return out;
}

base::Result<DeclarationStore::Change> DeclarationStore::add_to_set(const std::string& set,
                                                                    const std::string& identifier,
                                                                    const std::string& now) {
  if (!acceptable_name(set, kMaxSetNameBytes)) {
    return base::fail(fmt::format("a set's name must be 1 to {} bytes without '/'", kMaxSetNameBytes));
  }
  if (!declarations_.count(identifier)) return base::fail(fmt::format("no declaration \"{}\"", identifier));
  auto found = sets_.find(set);
  if (found == sets_.end() && sets_.size() >= bounds_.sets) {
    return base::fail(fmt::format("the reference server keeps at most {} sets", bounds_.sets));
  }
  if (found != sets_.end() && found->second.count(identifier)) return Change{};
  if (found != sets_.end() && found->second.size() >= bounds_.declarations_per_set) {
    return base::fail(fmt::format("a set holds at most {} declarations", bounds_.declarations_per_set));
  }
  const auto before = snapshot();
  sets_[set].insert(identifier);
  return settle(before, now);
}

DeclarationStore::Change DeclarationStore::remove_from_set(const std::string& set, const std::string& identifier,
                                                           const std::string& now) {
  auto found = sets_.find(set);
  if (found == sets_.end() || !found->second.count(identifier)) return {};
  const auto before = snapshot();
  found->second.erase(identifier);
  if (found->second.empty()) sets_.erase(found);
  return settle(before, now);
}

std::vector<std::string> DeclarationStore::set_members(const std::string& set) const {
  auto found = sets_.find(set);
  if (found == sets_.end()) return {};
  return {found->second.begin(), found->second.end()};
}

base::Result<DeclarationStore::Change> DeclarationStore::assign(const std::string& channel, const std::string& set,
                                                                const std::string& now) {
  if (!acceptable_name(set, kMaxSetNameBytes)) {
    return base::fail(fmt::format("a set's name must be 1 to {} bytes without '/'", kMaxSetNameBytes));
  }
  if (!acceptable_name(channel, kMaxIdentifierBytes)) return base::fail("bad channel id");
  auto found = assignments_.find(channel);
  if (found == assignments_.end() && assignments_.size() >= bounds_.assigned_channels) {
    return base::fail(
        fmt::format("the reference server assigns sets to at most {} channels", bounds_.assigned_channels));
  }
  if (found != assignments_.end() && found->second.count(set)) return Change{};
  if (found != assignments_.end() && found->second.size() >= bounds_.sets_per_channel) {
    return base::fail(fmt::format("a channel has at most {} sets", bounds_.sets_per_channel));
  }
  const auto before = snapshot();
  assignments_[channel].insert(set);
  auto change = settle(before, now);
  // A set assigned before it has members changes no token, but it is a change.
  change.changed = true;
  return change;
}

DeclarationStore::Change DeclarationStore::unassign(const std::string& channel, const std::string& set,
                                                    const std::string& now) {
  auto found = assignments_.find(channel);
  if (found == assignments_.end() || !found->second.count(set)) return {};
  const auto before = snapshot();
  found->second.erase(set);
  if (found->second.empty()) assignments_.erase(found);
  auto change = settle(before, now);
  change.changed = true;
  return change;
}

std::vector<std::string> DeclarationStore::sets_of(const std::string& channel) const {
  auto found = assignments_.find(channel);
  if (found == assignments_.end()) return {};
  return {found->second.begin(), found->second.end()};
}

std::map<std::string, const DeclarationStore::Declaration*> DeclarationStore::view_of(
    const std::string& channel) const {
  std::map<std::string, const Declaration*> view;
  auto add_sets_of = [&](const std::string& holder) {
    auto assigned = assignments_.find(holder);
    if (assigned == assignments_.end()) return;
    for (const auto& set : assigned->second) {
      auto members = sets_.find(set);
      if (members == sets_.end()) continue;
      for (const auto& id : members->second) {
        if (auto d = declarations_.find(id); d != declarations_.end()) view.emplace(id, &d->second);
      }
    }
  };
  add_sets_of(channel);
  // The fault: a user channel ("UDID:UserID") is served its device's ("UDID") too.
  if (auto colon = channel.find(':'); faults_.users_see_device && colon != std::string::npos) {
    add_sets_of(channel.substr(0, colon));
  }
  return view;
}

std::string DeclarationStore::token_of_view(const std::map<std::string, const Declaration*>& view) const {
  std::string text;
  for (const auto& [id, d] : view) text += id + '\0' + (faults_.token_from_identifiers ? "" : d->server_token) + '\n';
  return base::sha256_hex(text).substr(0, 32);
}

std::string DeclarationStore::declarations_token(const std::string& channel) const {
  return token_of_view(view_of(channel));
}

std::map<std::string, std::string> DeclarationStore::snapshot() const {
  std::map<std::string, std::string> tokens;
  for (const auto& [channel, sets] : assignments_) tokens[channel] = declarations_token(channel);
  return tokens;
}

DeclarationStore::Change DeclarationStore::settle(const std::map<std::string, std::string>& before,
                                                  const std::string& now) {
  Change change;
  change.changed = true;
  const auto after = snapshot();
  const std::string empty_token = token_of_view({});
  auto token_in = [&](const std::map<std::string, std::string>& m, const std::string& channel) {
    auto found = m.find(channel);
    return found == m.end() ? empty_token : found->second;
  };
  std::set<std::string> channels;
  for (const auto& [channel, token] : before) channels.insert(channel);
  for (const auto& [channel, token] : after) channels.insert(channel);
  for (const auto& channel : channels) {
    const auto token = token_in(after, channel);
    if (token == token_in(before, channel)) continue;
    change.channels.push_back(channel);
    // Bounded: past twice the assigned channels, a channel with nothing assigned is forgotten
    // (its Timestamp falls back to the server's start).
    if (channel_tokens_.size() >= 2 * bounds_.assigned_channels && !channel_tokens_.count(channel)) {
      for (auto it = channel_tokens_.begin(); it != channel_tokens_.end(); ++it) {
        if (!assignments_.count(it->first)) {
          channel_tokens_.erase(it);
          break;
        }
      }
    }
    channel_tokens_[channel] = ChannelTokens{token, now};
  }
  return change;
}

std::string DeclarationStore::tokens_json(const std::string& channel) const {
  auto kept = channel_tokens_.find(channel);
  const std::string& timestamp = kept == channel_tokens_.end() ? started_at_ : kept->second.timestamp;
  Json j = {{"SyncTokens", {{"DeclarationsToken", declarations_token(channel)}, {"Timestamp", timestamp}}}};
  return dump(j);
}

std::string DeclarationStore::items_json(const std::string& channel) const {
  const auto view = view_of(channel);
  Json declarations = Json::object();
  for (auto group : protocol::kDeclarationGroups)
    declarations[std::string(protocol::declaration_items_key(group))] = Json::array();
  for (const auto& [id, d] : view) {
    declarations[std::string(protocol::declaration_items_key(d->group))].push_back(
        Json{{"Identifier", id}, {"ServerToken", d->server_token}});
  }
  return dump(Json{{"Declarations", declarations}, {"DeclarationsToken", token_of_view(view)}});
}

std::optional<std::string> DeclarationStore::served_declaration(const std::string& channel, DeclarationGroup group,
                                                                const std::string& identifier) const {
  const auto view = view_of(channel);
  auto found = view.find(identifier);
  if (found == view.end() || found->second->group != group) return std::nullopt;
  return dump(found->second->document);
}

base::Result<bool> DeclarationStore::take_status(const std::string& channel, std::string_view json_text) {
  auto parsed = parse_bounded(json_text, bounds_.status_bytes, bounds_.max_json_depth, "the status report");
  if (!parsed) return parsed.error();
  const Json& report = *parsed;
  if (!report.is_object()) return base::fail("the status report is not a JSON object");
  auto items = report.find("StatusItems");
  if (items == report.end() || !items->is_object())
    return base::fail("the status report's StatusItems is not an object");
  auto errors = report.find("Errors");
  if (errors == report.end() || !errors->is_array()) return base::fail("the status report's Errors is not an array");
  if (auto full = report.find("FullReport"); full != report.end() && !full->is_boolean()) {
    return base::fail("the status report's FullReport is not a boolean");
  }
  if (!status_.count(channel) && status_.size() >= bounds_.kept_status_reports) status_.erase(status_.begin());
  status_[channel] = std::string(json_text);
  return true;
}

std::optional<std::string> DeclarationStore::last_status(const std::string& channel) const {
  auto found = status_.find(channel);
  if (found == status_.end()) return std::nullopt;
  return found->second;
}

}  // namespace mdmc::server
