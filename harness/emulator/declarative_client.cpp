#include "harness/emulator/declarative_client.hpp"

#include <algorithm>
#include <set>

namespace mdmc::emulator {
namespace {

using protocol::DeclarationGroup;
using protocol::DeclarationStatus;
using protocol::Validity;

// Reason codes of Apple's schema (declarative/declarations/declarationbase.yaml, `reasons`).
constexpr std::string_view kInvalidPayload = "Error.InvalidPayload";
constexpr std::string_view kNotSupported = "Error.ConfigurationNotSupported";

bool same_status(const DeclarationStatus& a, const DeclarationStatus& b) {
  return a.group == b.group && a.identifier == b.identifier && a.server_token == b.server_token &&
         a.active == b.active && a.valid == b.valid && a.reasons == b.reasons;
}

std::string http_reason(std::string_view endpoint, const Answer& answer) {
  if (answer.status == 0) return std::string(endpoint) + ": no response";
  return std::string(endpoint) + ": HTTP " + std::to_string(answer.status);
}

}  // namespace

std::string_view declarative_stage_name(DeclarativeClient::Stage stage) {
  switch (stage) {
    case DeclarativeClient::Stage::idle: return "idle";
    case DeclarativeClient::Stage::tokens: return "tokens";
    case DeclarativeClient::Stage::declaration_items: return "declaration-items";
    case DeclarativeClient::Stage::declaration: return "declaration";
    case DeclarativeClient::Stage::status: return "status";
  }
  return "?";
}

DeclarativeClient declarative_client(const Device& device, DeclarativeOptions options) {
  return DeclarativeClient(device.channel(), std::nullopt, options);
}

DeclarativeClient declarative_client(const UserAgent& user, DeclarativeOptions options) {
  return DeclarativeClient(user.channel(), user.facts(), options);
}

DeclarativeClient::DeclarativeClient(protocol::Channel channel, std::optional<protocol::UserFacts> user,
                                     DeclarativeOptions options)
    : channel_(std::move(channel)), user_(std::move(user)), options_(options) {}

const HeldDeclaration* DeclarativeClient::find(std::string_view identifier) const {
  auto it = held_.find(identifier);
  return it == held_.end() ? nullptr : &it->second;
}

Message DeclarativeClient::check_in(std::string_view endpoint, std::optional<std::string> data) const {
  return Message{Endpoint::check_in, "DeclarativeManagement " + std::string(endpoint),
                 protocol::declarative_management(channel_, user_ ? &*user_ : nullptr, endpoint, data)};
}

void DeclarativeClient::start_sync() { begin(std::nullopt); }

DeclarativeClient::CommandAnswer DeclarativeClient::on_command(const protocol::Command& command) {
  auto tokens = protocol::command_sync_tokens(command, options_.limits);
  if (!tokens) return {protocol::Status::command_format_error, tokens.error().message};
  if (*tokens && synced_ && (*tokens)->declarations_token == declarations_token_ && !syncing()) {
    return {};  // nothing to fetch: the client holds what those tokens describe
  }
  begin(*tokens);
  return {};
}

void DeclarativeClient::begin(const std::optional<protocol::SyncTokens>& tokens) {
  pending_.clear();
  fetches_.clear();
  next_fetch_ = 0;
  if (tokens) {
    after_tokens(*tokens);
    return;
  }
  stage_ = Stage::tokens;
  next_ = check_in(protocol::kTokensEndpoint);
}

void DeclarativeClient::after_tokens(const protocol::SyncTokens& tokens) {
  if (synced_ && tokens.declarations_token == declarations_token_) {
    report_or_idle();
    return;
  }
  stage_ = Stage::declaration_items;
  next_ = check_in(protocol::kDeclarationItemsEndpoint);
}

std::optional<std::string> DeclarativeClient::stop(std::string reason) {
  pending_.clear();
  fetches_.clear();
  stage_ = Stage::idle;
  return reason;
}

std::optional<std::string> DeclarativeClient::on_answer(const Answer& answer) {
  switch (stage_) {
    case Stage::idle: return std::string("no check-in was sent");
    case Stage::tokens: {
      if (answer.status != 200) return stop(http_reason(protocol::kTokensEndpoint, answer));
      auto tokens = protocol::decode_tokens(answer.body, options_.limits);
      if (!tokens) return stop(std::string(protocol::kTokensEndpoint) + ": " + tokens.error().message);
      after_tokens(*tokens);
      return std::nullopt;
    }
    case Stage::declaration_items: return after_items(answer);
    case Stage::declaration: return after_declaration(answer);
    case Stage::status: {
      // The report's changes count as told only when the server takes it; otherwise the next
      // report lists them again.
      if (answer.status < 200 || answer.status > 299) return stop(http_reason(protocol::kStatusEndpoint, answer));
      if (report_is_full_) reported_.clear();
      for (auto& status : statuses()) reported_[status.identifier] = std::move(status);
      full_report_taken_ = true;
      ++reports_accepted_;
      stage_ = Stage::idle;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<std::string> DeclarativeClient::after_items(const Answer& answer) {
  const auto endpoint = protocol::kDeclarationItemsEndpoint;
  if (answer.status != 200) return stop(http_reason(endpoint, answer));
  auto items = protocol::decode_declaration_items(answer.body, options_.limits);
  if (!items) return stop(std::string(endpoint) + ": " + items.error().message);
  pending_token_ = items->declarations_token;
  // What is listed with the ServerToken the client holds stays as it is; the rest is fetched.
  // What is not listed is not carried over: the channel drops it when the sync completes.
  for (DeclarationGroup group : protocol::kDeclarationGroups) {
    for (const auto& item : items->in(group)) {
      const HeldDeclaration* held = find(item.identifier);
      if (held && held->group == group && held->server_token == item.server_token) {
        pending_.emplace(item.identifier, *held);
      } else {
        fetches_.push_back({group, item});
      }
    }
  }
  fetch_next_or_finish();
  return std::nullopt;
}

std::optional<std::string> DeclarativeClient::after_declaration(const Answer& answer) {
  const Fetch& fetch = fetches_[next_fetch_];
  const std::string endpoint = protocol::declaration_endpoint(fetch.group, fetch.item.identifier);
  if (answer.status != 200) return stop(http_reason(endpoint, answer));
  auto declaration = protocol::decode_declaration(answer.body, options_.limits);
  if (!declaration) return stop(endpoint + ": " + declaration.error().message);
  // The declaration served must be the one listed: its Identifier, ServerToken and group.
  if (declaration->identifier != fetch.item.identifier) {
    return stop(endpoint + ": Identifier is not the one listed");
  }
  if (declaration->server_token != fetch.item.server_token) {
    return stop(endpoint + ": ServerToken is not the one listed");
  }
  auto facts = protocol::declaration_facts(declaration->type);
  if (facts && facts->group != fetch.group) {
    return stop(endpoint + ": Type " + declaration->type + " is of the " +
                std::string(protocol::declaration_group_name(facts->group)) + " group, listed under " +
                std::string(protocol::declaration_items_key(fetch.group)));
  }
  std::size_t held_bytes = answer.body.size();
  for (const auto& [identifier, held] : pending_) held_bytes += held.bytes;
  if (held_bytes > options_.max_held_bytes) {
    return stop(endpoint + ": the channel's declarations would exceed " + std::to_string(options_.max_held_bytes) +
                " bytes");
  }
  HeldDeclaration held;
  held.group = fetch.group;
  held.type = std::move(declaration->type);
  held.identifier = std::move(declaration->identifier);
  held.server_token = std::move(declaration->server_token);
  held.payload = std::move(declaration->payload);
  held.bytes = answer.body.size();
  pending_[held.identifier] = std::move(held);
  ++next_fetch_;
  fetch_next_or_finish();
  return std::nullopt;
}

void DeclarativeClient::fetch_next_or_finish() {
  if (next_fetch_ < fetches_.size()) {
    const Fetch& fetch = fetches_[next_fetch_];
    stage_ = Stage::declaration;
    next_ = check_in(protocol::declaration_endpoint(fetch.group, fetch.item.identifier));
    return;
  }
  held_ = std::move(pending_);
  pending_.clear();
  fetches_.clear();
  declarations_token_ = pending_token_;
  synced_ = true;
  decide_active_and_valid();
  report_or_idle();
}

void DeclarativeClient::decide_active_and_valid() {
  // Valid: the Payload has no problems against its Type's keys, and the Type is one macOS takes
  // on this channel.
  for (auto& [identifier, held] : held_) {
    held.problems = protocol::problems_in_declaration_payload(held.type, held.payload);
    if (held.problems.empty() && !protocol::allowed_on_channel(held.type, channel_)) {
      held.problems.push_back(
          {"Type", channel_.is_user() ? "not allowed on the user channel" : "not allowed on the device channel"});
    }
    held.valid = held.problems.empty();
  }
  // Active: an activation when it is valid (predicates are not evaluated); a configuration when
  // an active activation lists it in StandardConfigurations; assets and management declarations
  // when they are valid.
  std::set<std::string, std::less<>> referenced;
  for (const auto& [identifier, held] : held_) {
    if (held.group != DeclarationGroup::activation || !held.valid) continue;
    auto list = held.payload.find("StandardConfigurations");
    if (list == held.payload.end() || !list->is_array()) continue;
    for (const auto& entry : *list) {
      if (entry.is_string()) referenced.insert(entry.get<std::string>());
    }
  }
  for (auto& [identifier, held] : held_) {
    held.active = held.valid && (held.group != DeclarationGroup::configuration || referenced.count(identifier));
  }
}

std::vector<DeclarationStatus> DeclarativeClient::statuses() const {
  std::vector<DeclarationStatus> out;
  out.reserve(held_.size());
  for (const auto& [identifier, held] : held_) {
    DeclarationStatus status{
        held.group, identifier, held.server_token, held.active, held.valid ? Validity::valid : Validity::invalid, {}};
    if (!held.valid) {
      const bool type_refused = !held.problems.empty() && held.problems.front().key_path == "Type";
      status.reasons.emplace_back(type_refused ? kNotSupported : kInvalidPayload);
    }
    out.push_back(std::move(status));
  }
  return out;
}

void DeclarativeClient::report_or_idle() {
  // A declaration the channel no longer holds is no longer told: one listed again is new.
  std::erase_if(reported_, [&](const auto& entry) { return !held_.count(entry.first); });
  auto all = statuses();
  report_is_full_ = !full_report_taken_;
  std::vector<DeclarationStatus> listed;
  if (report_is_full_) {
    listed = std::move(all);
  } else {
    for (auto& status : all) {
      auto told = reported_.find(status.identifier);
      if (told == reported_.end() || !same_status(told->second, status)) listed.push_back(std::move(status));
    }
    if (listed.empty()) {
      stage_ = Stage::idle;
      return;
    }
  }
  last_report_ = protocol::status_report(listed, report_is_full_);
  stage_ = Stage::status;
  next_ = check_in(protocol::kStatusEndpoint, last_report_);
}

}  // namespace mdmc::emulator
