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
#include <vector>

#include "harness/emulator/emulator.hpp"
#include "harness/net/http_client.hpp"
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
  // A series (series steps); names refer to saved values:
  std::vector<std::string> delivered;
  std::vector<std::string> not_delivered;
  std::optional<int> delivered_count;
  std::vector<emulator::SeriesEnd> ended;  // acceptable endings; empty: any
  bool terminates = false;               // the series ended before its bound
  bool no_repeat = false;                // no CommandUUID came twice in the series
};

enum class StepKind { check_in, report, enqueue, series };

struct Step {
  StepKind kind = StepKind::report;
  int line = 0;
  std::string actor;                     // "mac" or "mac/alice"
  protocol::MessageType message = protocol::MessageType::authenticate;  // check_in
  protocol::Status status = protocol::Status::idle;                     // report
  protocol::UserFlags flags;                                            // report, series
  std::string request_type;                                             // enqueue
  emulator::SeriesOptions series;                                       // series
  std::string save;  // enqueue: the command's UUID; series: the UUIDs it answered NotNow
  // Send under another device's identity (its client certificate and Mdm-Signature), to
  // check that the server binds channels to the identity they enrolled with.
  std::string identity_of;
  std::vector<Expectation> expect;
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
// Every *.yaml under `dir`, sorted by id.
std::vector<Case> load_suite(const std::filesystem::path& dir, const RuleCatalog& rules);

// ---- target profiles ----

struct AdminEndpoint {
  std::string method = "PUT";
  std::string url;              // with {channel}, {udid}, {user_id}
  std::string basic_user;       // empty: no auth
  std::string basic_password;
  std::vector<int> expect_status{200};
};

struct TargetProfile {
  std::string name;
  std::string file;
  std::string digest;           // sha256 of the file's bytes
  std::string check_in_url;
  std::string server_url;
  std::string topic;
  net::ClientLimits limits;
  std::optional<AdminEndpoint> enqueue;
  std::vector<std::string> managed_network_users;
  std::map<std::string, bool> declares;
};

// `${builtin_port}` and `${env:NAME}` in string values are replaced; variables holds the
// former (absent when no built-in server runs, which makes its use an error).
TargetProfile load_profile(const std::filesystem::path& file,
                           const std::map<std::string, std::string>& variables);

std::string sha256_hex(std::string_view bytes);

}  // namespace mdmc::scenario
