#pragma once
// The conformance suite as data: the rule catalog (specs/rules.yaml), cases
// (specs/scenarios/**/*.yaml) and target profiles (specs/targets/*.yaml), loaded and checked.
// The format is documented in specs/README.md. Loading throws LoadError, which names the
// file, the line and the key; nothing else in the harness throws.
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "harness/emulator/emulator.hpp"
#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/scenario/result.hpp"

namespace mdmc::scenario {

class LoadError : public std::runtime_error {
 public:
  LoadError(std::string file, int line, std::string key, const std::string& reason);
  const std::string& file() const { return file_; }
  int line() const { return line_; }  // from 1; 0 when the file could not be read at all
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  int line_;
  std::string key_;
};

struct RuleSpec {
  std::string id;
  Level level = Level::must;
  std::string summary;    // the rule in one line
  std::string apple;      // the sentence of Apple's text it enforces, quoted
  std::string source;     // where that sentence is
  std::string grounding;  // "apple" or "http" (RFC 9110, where Apple is silent)
};

struct RuleCatalog {
  std::map<std::string, RuleSpec> rules;
  std::map<std::string, Level> levels() const;
};

RuleCatalog load_rules(const std::filesystem::path& file);
// The *_text loaders take YAML already in memory (fuzzers, tests); `name` stands for the file
// in errors, which keep their line numbers.
RuleCatalog load_rules_text(std::string_view yaml, const std::string& name);

// ---- cases ----

struct UserSpec {
  std::string name;
  emulator::UserKind kind = emulator::UserKind::local;
  bool managed = false;  // network users: one the target's policy says it manages
};

struct DeviceSpec {
  std::string name;
  std::vector<UserSpec> users;
};

enum class BodyExpectation { any, empty, plist, not_empty };

// Acceptable status codes: exact codes (410) and classes ("4xx").
struct StatusSet {
  std::vector<int> codes;
  std::vector<int> classes;  // 4 for "4xx"
  bool empty() const { return codes.empty() && classes.empty(); }
  bool contains(int status) const;
  std::string describe() const;  // "410", "4xx or 5xx"
};

// A deliberately wrong message: keys dropped, set to a given value, or given another type.
struct Override {
  std::vector<std::string> drop;
  std::map<std::string, std::string> set;     // value as written; true/false and integers typed
  std::map<std::string, plist::Type> retype;  // replaced by a value of this type
  // The wrong channel: the message names this actor's UDID and UserID, while it is sent on the
  // step's own connection and identity.
  std::string as_channel;
  bool empty() const { return drop.empty() && set.empty() && retype.empty() && as_channel.empty(); }
};

struct Expectation {
  int line = 0;
  std::string rule;
  // A lower level than the rule's, for the graded part of a rule ("refused: must; by a 4xx
  // rather than a 5xx: should"); never higher.
  std::optional<Level> level;
  // One exchange (checkin, report steps):
  StatusSet status;                      // acceptable status codes; empty: any
  BodyExpectation body = BodyExpectation::any;
  std::vector<std::string> has_keys;     // keys the plist body must hold
  std::string body_contains;             // a substring the body must hold
  // A series (series steps); names refer to saved values:
  std::vector<std::string> delivered;
  std::vector<std::string> not_delivered;
  std::optional<int> delivered_count;
  std::vector<emulator::SeriesEnd> ended;  // acceptable endings; empty: any
  bool terminates = false;               // the series ended before its bound
  bool no_repeat = false;                // no CommandUUID came twice in the series
  std::vector<std::string> delivered_types;  // a command of each of these RequestTypes came
};

enum class StepKind { check_in, report, enqueue, series, raw, parallel };

struct Step {
  StepKind kind = StepKind::report;
  int line = 0;
  std::string actor;                     // "mac" or "mac/alice"
  protocol::MessageType message = protocol::MessageType::authenticate;  // check_in
  protocol::Status status = protocol::Status::idle;                     // report
  // report with a status other than Idle: the saved command it answers, or "unknown" for a
  // CommandUUID the server never sent.
  std::string command;
  protocol::UserFlags flags;                                            // report, series
  std::string request_type;                                             // enqueue
  std::vector<std::string> accounts;  // enqueue InstallProfile: account PayloadTypes in its profile
  emulator::SeriesOptions series;                                       // series
  // enqueue: the command's UUID; series: the UUIDs it answered NotNow; checkin UserAuthenticate:
  // the DigestChallenge, usable as ${saved:NAME} in raw bytes and override values.
  std::string save;
  // raw: bytes sent as they are (after ${udid}, ${user_id} and ${command_uuid:NAME} are
  // filled in), to the check-in or the server URL, padded with spaces to pad_to bytes.
  std::string raw;
  emulator::Endpoint endpoint = emulator::Endpoint::check_in;
  std::size_t pad_to = 0;
  // Send under another device's identity (its client certificate and Mdm-Signature), to
  // check that the server binds channels to the identity they enrolled with.
  std::string identity_of;
  Override override_keys;  // checkin and report: change the message before it is sent
  std::vector<Expectation> expect;
  // parallel: steps run at once, each on its own thread and connection; with interleave, series
  // run in lockstep instead, one exchange each in turn.
  std::vector<Step> parallel;
  bool interleave = false;
  // series: a command queued for the same channel after this many exchanges (0: none), to
  // check that a command queued during a series still comes in it.
  int enqueue_after = 0;
  std::string enqueue_during;       // its RequestType
  std::string enqueue_during_save;  // the name its CommandUUID is saved under
};

// What a case needs of the target; a profile without it skips the case.
enum class Requirement { enqueue, managed_network_user };

struct Case {
  std::string id;          // path under the scenarios folder, without .yaml
  std::string file;
  std::string title;
  std::vector<std::string> rules;
  std::string apple;       // the sentence the case checks
  std::vector<std::string> tags;
  std::vector<Requirement> requirements;
  std::vector<DeviceSpec> devices;
  bool enroll = true;      // Authenticate, the device's TokenUpdate, each local user's TokenUpdate
  std::vector<Step> steps;
};

Case load_case(const std::filesystem::path& file, const std::string& id, const RuleCatalog& rules);
Case load_case_text(std::string_view yaml, const std::string& name, const std::string& id,
                    const RuleCatalog& rules);
// Every *.yaml under `dir`, sorted by id.
std::vector<Case> load_suite(const std::filesystem::path& dir, const RuleCatalog& rules);

// ---- target profiles ----

// How the target authenticates devices: a TLS client certificate, an Mdm-Signature header
// over each body, or both. Every device and its users use that device's one identity.
enum class IdentityMode { none, mtls, signature, both };
std::string_view identity_mode_name(IdentityMode mode);
std::optional<IdentityMode> identity_mode_from_name(std::string_view name);

struct IdentityConfig {
  IdentityMode mode = IdentityMode::none;
  pki::KeyType key_type = pki::KeyType::ec_p256;
  // Either the harness issues each device an identity from this CA...
  std::optional<pki::Identity> issuer;
  // ...or takes them, in order, from pre-issued ones (for servers with their own SCEP CA).
  std::vector<pki::Identity> pool;
};

struct TlsTrust {
  std::string ca_pem;     // the CA(s) the server's certificate must chain to; empty: system store
  bool insecure = false;  // only when the profile says so; the report then says so too
};

// How a server names a channel in its API: NanoMDM "UDID" and "UDID:UserID"; MicroMDM "UDID"
// and the bare "UserID".
enum class ChannelStyle { udid_colon_user_id, user_id };

struct AdminEndpoint {
  std::string method = "PUT";
  std::string url;              // with {channel}, {udid}, {user_id}
  ChannelStyle channel_style = ChannelStyle::udid_colon_user_id;
  std::string basic_user;       // empty: no auth
  std::string basic_password;
  std::vector<int> expect_status{200};
  // The server queues asynchronously (MicroMDM answers 201 and queues later): wait this long
  // after each enqueue before relying on it.
  std::chrono::milliseconds settle{0};
};

struct TargetProfile {
  std::string name;
  std::string file;
  std::string digest;           // sha256 of the file's bytes
  std::string check_in_url;
  std::string server_url;
  std::string topic;
  net::ClientLimits limits;
  plist::Limits plist_limits;   // bounds on every plist the target sends
  IdentityConfig identity;
  TlsTrust tls;
  std::optional<AdminEndpoint> enqueue;
  std::vector<std::string> managed_network_users;
  std::map<std::string, bool> declares;
};

// What the built-in reference server lends a profile: its port and its test CA. A profile
// names them as ${builtin_port} and as `builtin` for a CA or issuer.
struct BuiltinTarget {
  std::uint16_t port = 0;
  pki::Identity ca;
};

// `${builtin_port}` and `${env:NAME}` in string values are replaced; file paths are relative to
// the profile's folder. Using a built-in value without a built-in server is an error.
TargetProfile load_profile(const std::filesystem::path& file,
                           const std::optional<BuiltinTarget>& builtin = std::nullopt);
// Relative paths in the profile are taken from `base`, as from the profile's folder.
TargetProfile load_profile_text(std::string_view yaml, const std::string& name,
                                const std::filesystem::path& base,
                                const std::optional<BuiltinTarget>& builtin = std::nullopt);


}  // namespace mdmc::scenario
