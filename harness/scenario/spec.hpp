#pragma once
// The conformance suite as data: the rule catalog (specs/rules.yaml) and cases
// (specs/scenarios/**/*.yaml), loaded and checked. The format is documented in docs/cases.md,
// which tools/check_case_docs.py (the CaseDocs test) holds to every key read here.
// Loading throws base::LoadError, which names the file, the line and the key; nothing else in
// the harness throws. Target profiles are harness/target's.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "harness/base/load_error.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/scenario/result.hpp"
#include "harness/target/profile.hpp"
#include "harness/target/session.hpp"

namespace mdmc::scenario {

// The loaders' one error (base/load_error.hpp), by the name scenario's callers know.
using LoadError = base::LoadError;

// Target profiles live in harness/target; these names stay for the callers that know them here.
using protocol::identity_mode_from_name;
using protocol::identity_mode_name;
using target::AdminEndpoint;
using target::BuiltinTarget;
using target::ChannelStyle;
using target::IdentityConfig;
using target::IdentityMode;
using target::load_profile;
using target::load_profile_text;
using target::probe_reachable;
using target::TargetProfile;
using target::TlsTrust;

struct RuleSpec {
  std::string id;
  Level level = Level::must;
  std::string summary;    // the rule in one line
  std::string apple;      // the sentence of Apple's text it enforces, quoted
  std::string source;     // where that sentence is
  std::string grounding;  // "apple" or "http" (RFC 9110, where Apple is silent)
};

// The Apple article the catalog's rules are drawn from (rules.yaml's `seed:`), which a
// certification names.
struct SeedArticle {
  std::string title;
  std::string url;
};

struct RuleCatalog {
  std::map<std::string, RuleSpec> rules;
  std::optional<SeedArticle> seed;  // absent when the file names none
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
  // `identity: scep`: the device enrolls its own identity from the SCEP server the target's
  // enrollment profile names, whatever the profile's identity source (ENR-SCEP).
  bool scep = false;
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
// A step's override makes one change (the loader refuses more), so that a case tests one fault.
struct Override {
  std::vector<std::string> drop;
  std::map<std::string, std::string> set;     // value as written; true/false and integers typed
  std::map<std::string, plist::Type> retype;  // replaced by a value of this type
  // The wrong channel: the message names this actor's UDID and UserID, while it is sent on the
  // step's own connection and identity.
  std::string as_channel;
  bool empty() const { return drop.empty() && set.empty() && retype.empty() && as_channel.empty(); }
};

// A deliberately wrong body: the step's well-formed message, encoded, then changed in one way.
// Every other property of the message stays valid, so a verdict on the step is a verdict on how
// the server treats this one fault (docs/verdicts.md).
struct BodyFault {
  // Padded with whitespace before its closing </plist> to this many bytes: still a valid plist
  // carrying every key, only too large.
  std::size_t pad_to = 0;
  // Cut right after the first occurrence of this text: a truncated plist.
  std::string cut_after;
  // Replaced by this text (a body that is not the message: not a plist at all, or a fuzzing
  // finding's input), with ${udid} and ${user_id} filled in with the actor's channel; or, from
  // replace_with_base64, by these exact bytes.
  std::optional<std::string> replace_with;
  bool replace_is_bytes = false;
  bool empty() const { return pad_to == 0 && cut_after.empty() && !replace_with; }
};

// What an enrollment_profile step checks of the target's enrollment profile.
enum class ProfileCheck {
  none,
  valid,     // read, its signature holds, and Apple's schema holds for it (ENR-PROFILE)
  per_user,  // lists com.apple.mdm.per-user-connections exactly when the server serves user channels (ENR-PER-USER)
};

// What an expect_push step judges of the push that came.
enum class PushCheck {
  delivered,    // to the actor's latest token, with its PushMagic and the enrollment topic
  token,        // to the actor's latest token (PSH-TOKEN-UPDATE: what else it carries is other rules')
  well_formed,  // every push to any channel of the case is one APNs accepts and a Mac acts on
};

// What a declarative_sync step judges (docs/cases.md#declarative_sync): each answer of the
// sync against Apple's declarative schema, what the channel holds after it, and its token.
enum class DeclarativeCheck {
  none,
  tokens,           // the tokens answer: SyncTokens with the keys and types the schema requires
  items,            // the declaration-items answer, its DeclarationsToken the tokens answer's
  fetch,            // each listed declaration served as listed; an unlisted path 404
  schema,           // each served declaration's Payload against its Type
  channel,          // what the channel holds: `holds`, not `not_holds`, only Types allowed on it
  references,       // each held activation's StandardConfigurations held by the same channel
  status,           // the status report answered 2xx (and a malformed one 4xx, with malformed_status)
  token_changed,    // the DeclarationsToken is not the one saved as `since`
  token_unchanged,  // it is the one saved as `since`
};

struct Expectation {
  int line = 0;
  std::string rule;
  // A lower level than the rule's, for the graded part of a rule ("refused: must; by a 4xx
  // rather than a 5xx: should"); never higher.
  std::optional<Level> level;
  // One exchange (checkin, report steps):
  StatusSet status;  // acceptable status codes; empty: any
  // The URL has an endpoint for the message: any answer but 404, 405 or 501 (ENR-CHECKIN-URL
  // judges where a message is taken; other rules judge what the server makes of it).
  bool routed = false;
  BodyExpectation body = BodyExpectation::any;
  std::vector<std::string> has_keys;  // keys the plist body must hold
  std::string body_contains;          // a substring the body must hold
  // A series (series steps); names refer to saved values:
  std::vector<std::string> delivered;
  std::vector<std::string> not_delivered;
  std::optional<int> delivered_count;
  std::vector<emulator::SeriesEnd> ended;    // acceptable endings; empty: any
  bool terminates = false;                   // the series ended before its bound
  bool no_repeat = false;                    // no CommandUUID came twice in the series
  std::vector<std::string> delivered_types;  // a command of each of these RequestTypes came
  // The enrollment profile (enrollment_profile steps):
  ProfileCheck profile = ProfileCheck::none;
  // A push (expect_push steps): what of it is judged.
  PushCheck push = PushCheck::delivered;
  // A declarative sync (declarative_sync steps):
  DeclarativeCheck declarative = DeclarativeCheck::none;
  std::vector<std::string> holds;      // identifiers the channel must hold
  std::vector<std::string> not_holds;  // identifiers it must not
  // Identifiers its status report (the client's own judgement) must say are active, or valid.
  std::vector<std::string> active;
  std::vector<std::string> valid;
  std::string since;  // a DeclarationsToken saved by an earlier sync
};

// What every step but a parallel one has.
struct StepBase {
  int line = 0;
  std::string actor;  // "mac" or "mac/alice"
  std::vector<Expectation> expect;
};

// checkin: a check-in message from the actor.
struct CheckInStep : StepBase {
  protocol::MessageType message = protocol::MessageType::authenticate;
  // UserAuthenticate: the DigestChallenge is saved under this name, usable as ${saved:NAME} in
  // override values.
  std::string save;
  // Send under another device's identity (its client certificate and Mdm-Signature), to
  // check that the server binds channels to the identity they enrolled with.
  std::string identity_of;
  Override override_keys;  // change the message before it is sent
  BodyFault fault;         // or change its body after it is encoded (never both)
  // TokenUpdate: the actor's push token changes first, as when macOS renews it (PSH-TOKEN-UPDATE).
  bool new_token = false;
};

// report: a command report (or Idle) from the actor.
struct ReportStep : StepBase {
  protocol::Status status = protocol::Status::idle;
  // With a status other than Idle: the saved command it answers, or "unknown" for a
  // CommandUUID the server never sent.
  std::string command;
  protocol::UserFlags flags;
  std::string identity_of;  // as CheckInStep::identity_of
  Override override_keys;
  BodyFault fault;
};

// enqueue: a command queued for the actor's channel through the admin adapter.
struct EnqueueStep : StepBase {
  std::string request_type;
  std::vector<std::string> accounts;  // InstallProfile: account PayloadTypes in its profile
  std::string save;                   // the name the command's UUID is saved under
  // The admin adapter may refuse it (a command for a device that checked out): the refusal is
  // kept as evidence, and the case goes on to what the server does next.
  bool may_refuse = false;
};

// series: Idle, then a report for each command, until the server ends the series.
struct SeriesStep : StepBase {
  emulator::SeriesOptions series;  // its flags are the series' NeedSyncResponse and UserConfiguration
  std::string save;                // the UUIDs it answered NotNow are saved under this name
  std::string identity_of;         // as CheckInStep::identity_of
  // A command queued for the same channel after this many exchanges (0: none), to check that a
  // command queued during a series still comes in it.
  int enqueue_after = 0;
  std::string enqueue_during;       // its RequestType
  std::string enqueue_during_save;  // the name its CommandUUID is saved under
};

// expect_push, expect_no_push, expect_pushes: what the run's fake APNs saw for the actor (its
// tokens, latest and earlier) since the last step that was not one of these or an apns step.
enum class PushWatch {
  one,      // expect_push: a push comes within the window
  none,     // expect_no_push: none comes for the window
  at_most,  // expect_pushes: at most `at_most` come in the window
};
struct PushStep : StepBase {
  PushWatch watch = PushWatch::one;
  std::chrono::milliseconds window{2000};  // `within` (expect_push), `for` (the others)
  int at_most = 0;
};

// How the fake APNs answers pushes to the actor's latest token (an apns step).
enum class ApnsAnswer { accept, unregistered, too_many_requests, service_unavailable };
struct ApnsStep : StepBase {
  ApnsAnswer answer = ApnsAnswer::accept;
  int times = 0;  // answer this many pushes so, then accept again; 0: until the case ends or another apns step
};

// declare: a declaration stored on the server through the profile's admin.declarations and given
// to the actor's channel (assign: false only stores it); undeclare: one taken from the channel.
struct DeclareStep : StepBase {
  std::string declaration_json;  // declare: the declaration, from the case's YAML map
  std::string identifier;        // its Identifier; undeclare: the one taken away
  bool assign = true;
  bool remove = false;  // undeclare
};

// declarative_sync: the actor's declarative client syncs (tokens, declaration-items, each new or
// changed declaration, a status report), each check-in kept in the transcript.
struct DeclarativeSyncStep : StepBase {
  // `full`: the client starts at tokens, as when a case asks; `command`: it takes the last
  // DeclarativeManagement command a series of the actor delivered (its SyncTokens Data, or none)
  // and syncs as that command says.
  bool on_command = false;
  std::string save;               // the DeclarationsToken afterwards is saved under this name
  bool malformed_status = false;  // then a status report that is not one is sent too
};

// enrollment_profile: judges the target's enrollment profile, as the run fetched or read it
// (target/enrollment.hpp); with no actor.
struct EnrollmentProfileStep : StepBase {};

struct Step;

// parallel: steps run at once, each on its own thread and connection; with interleave, series
// run in lockstep instead, one exchange each in turn.
struct ParallelStep {
  int line = 0;
  std::vector<Step> steps;
  bool interleave = false;
  // Each step waits a random time from 0 to this before each of its exchanges, drawn from the
  // case's seeded source (the same seed, the same pauses), so that rounds of the case meet the
  // server in ever other interleavings. Zero: none. Not with interleave.
  std::chrono::milliseconds jitter{0};
};

using StepKind = std::variant<CheckInStep, ReportStep, EnqueueStep, SeriesStep, ParallelStep, EnrollmentProfileStep,
                              PushStep, ApnsStep, DeclareStep, DeclarativeSyncStep>;

struct Step {
  StepKind kind;

  int line() const;
  // The actor, empty for a parallel step.
  const std::string& actor() const;
  // The device whose identity the step is sent under when not its actor's; empty otherwise.
  const std::string& identity_of() const;
  // An expect_push, expect_no_push, expect_pushes or apns step: it watches or scripts the fake
  // APNs and sends nothing to the server.
  bool watches_pushes() const;
  // A robustness step: its message carries a deliberate fault (an override or a BodyFault).
  // The runner probes the target's liveness after each one (ROB-ALIVE).
  bool faulted() const;
};

// What a case needs of the target; a profile without it skips the case.
// enrollment: the target profile has an `enrollment:` (its enrollment profile).
// push: the target profile has a `push:` (a fake APNs for the server to push to); a case with
// a push or apns step needs it without saying so.
// declarations: the target profile has an admin.declarations adapter; a case with a declare or
// undeclare step needs it without saying so.
enum class Requirement { enqueue, managed_network_user, enrollment, push, declarations };

struct Case {
  std::string id;  // path under the scenarios folder, without .yaml
  std::string file;
  std::string title;
  std::vector<std::string> rules;
  std::string apple;  // the sentence the case checks
  std::vector<std::string> tags;
  std::vector<Requirement> requirements;
  std::vector<DeviceSpec> devices;
  bool enroll = true;  // Authenticate, the device's TokenUpdate, each local user's TokenUpdate
  std::vector<Step> steps;
  // The steps run this many times in order, after enrollment, on the same devices; each round's
  // saved names hold that round's values. A race the server loses now and then is caught by
  // some round (docs/cases.md#rounds says how many rounds catch what).
  int rounds = 1;
};

// Bounds on Case::rounds and ParallelStep::jitter.
inline constexpr int kMaxRounds = 1000;
inline constexpr std::chrono::milliseconds kMaxJitter{1000};

Case load_case(const std::filesystem::path& file, const std::string& id, const RuleCatalog& rules);
Case load_case_text(std::string_view yaml, const std::string& name, const std::string& id, const RuleCatalog& rules);
// Every *.yaml under `dir`, sorted by id.
std::vector<Case> load_suite(const std::filesystem::path& dir, const RuleCatalog& rules);

}  // namespace mdmc::scenario
