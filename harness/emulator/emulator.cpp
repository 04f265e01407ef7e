#include "harness/emulator/emulator.hpp"

#include "harness/pki/signed_profile.hpp"
#include "harness/protocol/configuration_profile.hpp"
#include "harness/protocol/judge.hpp"

#include <fmt/format.h>

#include <array>
#include <map>

namespace mdmc::emulator {

using protocol::Status;

std::string Message::content_type() const { return std::string(protocol::endpoint_content_type(endpoint)); }

std::string IdentitySource::uuid() {
  std::uint64_t hi = rng_();
  std::uint64_t lo = rng_();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  return fmt::format("{:08X}-{:04X}-{:04X}-{:04X}-{:012X}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                     lo & 0xFFFFFFFFFFFFull);
}

std::string IdentitySource::hex(std::size_t bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) out += fmt::format("{:02X}", rng_() & 0xFF);
  return out;
}

std::string IdentitySource::bytes(std::size_t count) {
  std::string out(count, '\0');
  for (auto& c : out) c = static_cast<char>(rng_() & 0xFF);
  return out;
}

UserAgent::UserAgent(std::string udid, protocol::UserFacts facts, UserKind kind, IdentitySource& ids)
    : udid_(std::move(udid)),
      facts_(std::move(facts)),
      kind_(kind),
      push_{ids.bytes(32), ids.uuid()},
      // The enrolling local user is managed from the start: it never sends UserAuthenticate.
      state_(kind == UserKind::local ? State::authenticated : State::logged_in) {}

Message UserAgent::user_authenticate() const {
  std::optional<std::string> digest;
  // The client proves the password with a digest over the challenge. The reference server
  // and the rules only need a DigestResponse to be present, so its form is a stand-in.
  if (state_ == State::challenged) digest = "Digest username=\"" + facts_.short_name + "\"";
  return Message{Endpoint::check_in,
                 state_ == State::challenged ? "UserAuthenticate (DigestResponse)" : "UserAuthenticate",
                 protocol::user_authenticate(udid_, facts_, digest)};
}

std::optional<std::string> UserAgent::on_user_authenticate(const Answer& answer, const plist::Limits& limits) {
  if (state_ == State::logged_in && answer.status == 410) {
    // Apple: a 410 declines the network user; the client sends nothing more for them.
    state_ = State::refused;
    return std::nullopt;
  }
  if (answer.status != 200) return fmt::format("HTTP {}", answer.status);
  if (state_ == State::challenged) {
    if (!answer.body.empty()) {
      auto parsed = plist::parse(answer.body, limits);
      if (!parsed) return "answer to DigestResponse is not a plist: " + parsed.message();
      if (auto token = parsed->string_at("AuthToken")) auth_token_ = *token;
    }
    state_ = State::authenticated;
    return std::nullopt;
  }
  if (state_ != State::logged_in) return "UserAuthenticate in state that does not send it";
  if (answer.body.empty()) return "200 without a DigestChallenge";
  auto parsed = plist::parse(answer.body, limits);
  if (!parsed) return "body is not a plist: " + parsed.message();
  auto challenge = parsed->string_at("DigestChallenge");
  if (!challenge) return "no DigestChallenge string in the answer";
  challenge_ = *challenge;
  state_ = State::challenged;
  return std::nullopt;
}

Message UserAgent::token_update(const protocol::DeviceFacts& device) const {
  return Message{Endpoint::check_in, "TokenUpdate (user)", protocol::token_update(device, push_, &facts_)};
}

void UserAgent::on_token_update(const Answer& answer) {
  if (answer.status == 200 && state_ == State::authenticated) state_ = State::enrolled;
}

Device::Device(protocol::DeviceFacts facts, IdentitySource& ids)
    : facts_(std::move(facts)), push_{ids.bytes(32), ids.uuid()} {}

Message Device::authenticate() const {
  return Message{Endpoint::check_in, "Authenticate", protocol::authenticate(facts_)};
}

Message Device::token_update() const {
  return Message{Endpoint::check_in, "TokenUpdate (device)", protocol::token_update(facts_, push_, nullptr)};
}

void UserAgent::renew_push_token(IdentitySource& ids) { push_.token = ids.bytes(32); }

void Device::renew_push_token(IdentitySource& ids) { push_.token = ids.bytes(32); }

Message Device::check_out() const { return Message{Endpoint::check_in, "CheckOut", protocol::check_out(facts_)}; }

Enrollment::Enrollment(const Device& device, std::vector<UserAgent*> local_users)
    : device_(device), users_(std::move(local_users)), steps_(2 + users_.size()) {}

Enrollment::Stage Enrollment::stage() const {
  if (index_ == 0) return Stage::authenticate;
  if (index_ == 1) return Stage::device_token;
  return Stage::user_token;
}

UserAgent* Enrollment::user() const { return index_ >= 2 && index_ < steps_ ? users_[index_ - 2] : nullptr; }

Message Enrollment::next() const {
  switch (stage()) {
    case Stage::authenticate: return device_.authenticate();
    case Stage::device_token: return device_.token_update();
    case Stage::user_token: break;
  }
  return user()->token_update(device_.facts());
}

void Enrollment::on_answer(const Answer& answer) {
  if (done()) return;
  if (auto* u = user()) u->on_token_update(answer);
  if (answer.status != 200) {
    failed_ = true;
    return;
  }
  ++index_;
}

namespace {
constexpr std::array<std::pair<AnswerPolicy, std::string_view>, 4> kPolicyNames = {{
    {AnswerPolicy::acknowledge, "acknowledge"},
    {AnswerPolicy::not_now, "not_now"},
    {AnswerPolicy::not_now_until_device_configured, "not_now_until_device_configured"},
    {AnswerPolicy::error, "error"},
}};
}  // namespace

std::optional<AnswerPolicy> answer_policy_from_name(std::string_view name) {
  for (const auto& [p, n] : kPolicyNames) {
    if (n == name) return p;
  }
  return std::nullopt;
}

std::string_view answer_policy_name(AnswerPolicy policy) {
  for (const auto& [p, n] : kPolicyNames) {
    if (p == policy) return n;
  }
  return "?";
}

std::string_view series_end_name(SeriesEnd end) {
  switch (end) {
    case SeriesEnd::running: return "running";
    case SeriesEnd::empty_body: return "empty_body";
    case SeriesEnd::empty_plist: return "empty_plist";
    case SeriesEnd::no_content: return "no_content";
    case SeriesEnd::http_status: return "http_status";
    case SeriesEnd::bad_command: return "bad_command";
    case SeriesEnd::no_response: return "no_response";
    case SeriesEnd::bound_reached: return "bound_reached";
  }
  return "?";
}

bool SeriesOutcome::delivered_uuid(std::string_view uuid) const {
  for (const auto& d : delivered) {
    if (d.uuid == uuid) return true;
  }
  return false;
}

std::vector<std::string> SeriesOutcome::repeated() const {
  std::map<std::string, int> seen;
  std::vector<std::string> out;
  for (const auto& d : delivered) {
    if (++seen[d.uuid] == 2) out.push_back(d.uuid);
  }
  return out;
}

Series::Series(protocol::Channel channel, std::optional<protocol::UserFacts> user, SeriesOptions options)
    : channel_(std::move(channel)), user_(std::move(user)), options_(options) {
  next_ = make_report(protocol::ReportSpec{Status::idle, {}, {}});
}

Message Series::make_report(const protocol::ReportSpec& spec) const {
  std::string label(protocol::status_name(spec.status));
  if (!spec.command_uuid.empty()) label += " " + spec.command_uuid;
  return Message{Endpoint::server, label, protocol::report(channel_, user_ ? &*user_ : nullptr, spec, options_.flags)};
}

void Series::finish(SeriesEnd end, int status, std::string detail) {
  outcome_.end = end;
  outcome_.end_status = status;
  outcome_.end_detail = std::move(detail);
}

std::vector<std::string> Series::profile_accounts(const protocol::Command& command) const {
  const auto* inner =
      command.body.find("Command") != command.body.end() ? command.body.at("Command").as_dict() : nullptr;
  const auto* payload = inner && inner->count("Payload") ? inner->at("Payload").as_data() : nullptr;
  if (!payload) return {};
  // A signed profile is CMS; its content is read, not verified: the rule is about what it holds.
  auto content = pki::profile_content(payload->bytes);
  if (!content) return {};
  auto profile = plist::parse(*content, options_.limits);
  if (!profile) return {};
  return protocol::account_payloads(*profile).types;
}

Status Series::answer_for(const protocol::Command& command) {
  if (!options_.answers.empty()) {
    auto [it, fresh] = answered_.try_emplace(command.uuid, Status::acknowledged);
    if (fresh) it->second = options_.answers[(answered_.size() - 1) % options_.answers.size()];
    return it->second;
  }
  switch (options_.policy) {
    case AnswerPolicy::acknowledge: return Status::acknowledged;
    case AnswerPolicy::not_now: return Status::not_now;
    case AnswerPolicy::error: return Status::error;
    case AnswerPolicy::not_now_until_device_configured:
      // Apple: the client answers NotNow until a DeviceConfigured arrives on the user
      // channel; that command itself is carried out.
      if (protocol::ends_user_configuration(command.request_type)) device_configured_ = true;
      return device_configured_ ? Status::acknowledged : Status::not_now;
  }
  return Status::acknowledged;
}

void Series::on_answer(const Answer& answer, std::string_view transport_error) {
  if (done()) return;
  ++outcome_.exchanges;
  if (!transport_error.empty()) return finish(SeriesEnd::no_response, 0, std::string(transport_error));
  if (answer.status == 204) return finish(SeriesEnd::no_content, 204, "204 No Content");
  if (answer.status != 200) {
    return finish(SeriesEnd::http_status, answer.status, fmt::format("HTTP {}", answer.status));
  }
  if (answer.body.empty()) return finish(SeriesEnd::empty_body, 200, "");

  // CMD-SHAPE is judged by how the body reads (protocol/judge.hpp); the runner records a
  // bad_command ending as its failure.
  auto read = protocol::read_command_answer(answer.body, options_.limits);
  switch (read.kind) {
    case protocol::CommandAnswerKind::none:
    case protocol::CommandAnswerKind::command: break;
    case protocol::CommandAnswerKind::not_plist:
      return finish(SeriesEnd::bad_command, 200, "body is not a plist: " + read.problem);
    case protocol::CommandAnswerKind::empty_dict:
      return finish(SeriesEnd::empty_plist, 200, "an empty <dict/> instead of a zero-length body");
    case protocol::CommandAnswerKind::not_command:
      return finish(SeriesEnd::bad_command, 200, "not a command: " + read.problem);
  }
  const auto& command = *read.command;
  Status status = answer_for(command);
  DeliveredCommand delivered{command.uuid,
                             command.request_type,
                             status,
                             outcome_.exchanges - 1,
                             protocol::check_command_schema(command, channel_.is_user()),
                             {},
                             std::nullopt};
  if (command.request_type == "InstallProfile") delivered.account_payloads = profile_accounts(command);
  if (command.request_type == "DeclarativeManagement") delivered.declarative = command;
  outcome_.delivered.push_back(std::move(delivered));
  if (outcome_.exchanges >= options_.max_exchanges) {
    return finish(SeriesEnd::bound_reached, 200,
                  fmt::format("still sending commands after {} exchanges", outcome_.exchanges));
  }
  protocol::ReportSpec spec{status, command.uuid, {}};
  if (status == Status::error) {
    spec.error_chain.push_back({12345, "MCMDMErrorDomain", "mdmconform answer policy: error"});
  }
  next_ = make_report(spec);
}

}  // namespace mdmc::emulator
