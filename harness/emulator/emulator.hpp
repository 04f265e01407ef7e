#pragma once
// Emulated macOS MDM clients as protocol state machines: a Device (the mdmclient daemon) and
// its UserAgents (one mdmclient agent per logged-in user). They do no I/O: each offers the
// next message to send, and takes the server's answer to decide what comes next. Transport
// and scenario code move the bytes; unit tests and fuzzers drive these directly.
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "harness/plist/value.hpp"
#include "harness/protocol/command_schema.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::emulator {

// Which URL a message goes to: CheckInURL or ServerURL (they may be the same).
using protocol::Endpoint;

struct Message {
  Endpoint endpoint = Endpoint::server;
  std::string label;  // "Authenticate", "Idle", "NotNow 6F1C..."
  plist::Dict body;

  std::string content_type() const;
  std::string bytes() const { return plist::to_xml(plist::Value(body)); }
};

// The server's answer as the client sees it.
struct Answer {
  int status = 0;  // 0 when no response arrived
  std::string body;
};

// Deterministic synthetic identities, so a run can be replayed with its seed.
class IdentitySource {
 public:
  explicit IdentitySource(std::uint64_t seed) : rng_(seed) {}
  std::string uuid();  // upper-case RFC 4122 v4 form, as macOS writes UDIDs
  std::string hex(std::size_t bytes);
  std::string bytes(std::size_t count);
  // A number from the same stream: seeds what else a run draws (a parallel step's jitter).
  std::uint64_t number() { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

enum class UserKind { local, network };

class UserAgent {
 public:
  enum class State { logged_in, refused, challenged, authenticated, enrolled };

  UserAgent(std::string udid, protocol::UserFacts facts, UserKind kind, IdentitySource& ids);

  const protocol::UserFacts& facts() const { return facts_; }
  protocol::Channel channel() const { return {udid_, facts_.user_id}; }
  UserKind kind() const { return kind_; }
  State state() const { return state_; }
  const std::string& digest_challenge() const { return challenge_; }
  const std::string& auth_token() const { return auth_token_; }

  // UserAuthenticate: without DigestResponse first, with it once a challenge arrived.
  Message user_authenticate() const;
  // Takes the answer to user_authenticate(); returns a reason when the answer is not one a
  // client can act on (the state is then unchanged). The body is parsed within `limits`.
  std::optional<std::string> on_user_authenticate(const Answer& answer, const plist::Limits& limits = {});
  Message token_update(const protocol::DeviceFacts& device) const;
  void on_token_update(const Answer& answer);
  // The user's push token and PushMagic, as its TokenUpdate carries them.
  const protocol::PushIdentity& push() const { return push_; }
  // A fresh token (the PushMagic stays), as when macOS renews it; the next TokenUpdate sends it.
  void renew_push_token(IdentitySource& ids);

 private:
  std::string udid_;
  protocol::UserFacts facts_;
  UserKind kind_;
  protocol::PushIdentity push_;
  State state_ = State::logged_in;
  std::string challenge_;
  std::string auth_token_;
};

class Device {
 public:
  Device(protocol::DeviceFacts facts, IdentitySource& ids);

  const protocol::DeviceFacts& facts() const { return facts_; }
  protocol::Channel channel() const { return {facts_.udid, ""}; }

  Message authenticate() const;
  Message token_update() const;
  Message check_out() const;
  // The device's push token and PushMagic, as its TokenUpdate carries them.
  const protocol::PushIdentity& push() const { return push_; }
  // A fresh token (the PushMagic stays), as when macOS renews it; the next TokenUpdate sends it.
  void renew_push_token(IdentitySource& ids);

 private:
  protocol::DeviceFacts facts_;
  protocol::PushIdentity push_;
};

// The enrollment sequence of one device: Authenticate, the device's TokenUpdate, then one
// TokenUpdate for each enrolling local user (Apple: "After that request completes, the client
// sends one TokenUpdate request for the device and another for the user performing the
// enrollment."). A step answered with anything but 200 stops the sequence there.
class Enrollment {
 public:
  enum class Stage { authenticate, device_token, user_token };

  Enrollment(const Device& device, std::vector<UserAgent*> local_users);

  bool done() const { return failed_ || index_ >= steps_; }
  bool failed() const { return failed_; }
  Stage stage() const;
  // The user whose TokenUpdate is next (stage user_token), else null.
  UserAgent* user() const;
  Message next() const;
  void on_answer(const Answer& answer);

 private:
  const Device& device_;
  std::vector<UserAgent*> users_;
  std::size_t index_ = 0;
  std::size_t steps_;
  bool failed_ = false;
};

// How a client answers each command in a series.
enum class AnswerPolicy {
  acknowledge,                      // Acknowledged to every command
  not_now,                          // NotNow to every command
  not_now_until_device_configured,  // NotNow until a DeviceConfigured, then Acknowledged
  error,                            // Error to every command
};
std::optional<AnswerPolicy> answer_policy_from_name(std::string_view name);
std::string_view answer_policy_name(AnswerPolicy policy);

struct SeriesOptions {
  AnswerPolicy policy = AnswerPolicy::acknowledge;
  protocol::UserFlags flags;
  // A series that has not ended after this many exchanges is stopped: a server that loops
  // must not hang the harness. Apple sets no number; 64 is far beyond any real series here.
  int max_exchanges = 64;
  // Bounds on each command plist the server sends.
  plist::Limits limits;
  // When set, overrides `policy`: the n-th distinct command gets answers[n % size]; a command
  // sent again gets the answer it got before.
  std::vector<protocol::Status> answers;
};

// How a series ended.
enum class SeriesEnd {
  running,
  empty_body,     // 200 with zero bytes: the only correct end
  empty_plist,    // 200 with a plist that holds no command (Apple: not an empty plist)
  no_content,     // 204
  http_status,    // any other status
  bad_command,    // a body that is neither empty nor a command (reason in end_detail)
  no_response,    // transport failure (reason in end_detail)
  bound_reached,  // max_exchanges without an end
};
std::string_view series_end_name(SeriesEnd end);

struct DeliveredCommand {
  std::string uuid;
  std::string request_type;
  protocol::Status answered = protocol::Status::acknowledged;
  int exchange = 0;  // which exchange of the series brought it, from 0
  // Where the command departs from Apple's schema for its RequestType and channel.
  std::vector<protocol::SchemaViolation> schema_violations;
  // InstallProfile: the account payload types of the profile it carries (signed or plain).
  std::vector<std::string> account_payloads;
  // DeclarativeManagement: the command itself, for the channel's declarative client.
  std::optional<protocol::Command> declarative;
};

struct SeriesOutcome {
  std::vector<DeliveredCommand> delivered;
  SeriesEnd end = SeriesEnd::running;
  int end_status = 0;
  std::string end_detail;
  int exchanges = 0;

  bool delivered_uuid(std::string_view uuid) const;
  // UUIDs delivered more than once in this series.
  std::vector<std::string> repeated() const;
};

// One Idle/Acknowledged/Error/NotNow series on one channel.
class Series {
 public:
  Series(protocol::Channel channel, std::optional<protocol::UserFacts> user, SeriesOptions options);

  bool done() const { return outcome_.end != SeriesEnd::running; }
  // The report to send next; only while !done().
  const Message& next() const { return next_; }
  // Takes the answer to next(): either the series ends or next() changes.
  void on_answer(const Answer& answer, std::string_view transport_error = {});
  const SeriesOutcome& outcome() const { return outcome_; }

 private:
  protocol::Status answer_for(const protocol::Command& command);
  std::vector<std::string> profile_accounts(const protocol::Command& command) const;
  Message make_report(const protocol::ReportSpec& spec) const;
  void finish(SeriesEnd end, int status, std::string detail);

  protocol::Channel channel_;
  std::optional<protocol::UserFacts> user_;
  SeriesOptions options_;
  bool device_configured_ = false;
  std::map<std::string, protocol::Status> answered_;  // by CommandUUID, for `answers`
  Message next_;
  SeriesOutcome outcome_;
};

}  // namespace mdmc::emulator
