#pragma once
// What a run produced, as values: the one record every report view is derived from.
// A conformance failure is a value here (a Finding with what was expected and what happened),
// never an exception.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/net/http.hpp"

namespace mdmc::scenario {

// The level of a rule, from specs/rules.yaml: how a break counts.
enum class Level { must, should, may };
std::string_view level_name(Level level);

// The grades, after RFC 2119 (docs/verdicts.md): pass; info (only a may-level expectation was
// not met: the server does not use an option, which is no defect); skip (the target lacks what
// the case requires); warn (a should-level expectation broken); fail (a must-level one broken);
// error (no verdict could be reached: target down, no answer, bad profile). Ordered by severity,
// so the worst of several is their max; info sits below skip because it says less against the
// server than an unchecked case does.
enum class Verdict { pass, info, skip, warn, fail, error };
std::string_view verdict_name(Verdict verdict);
// The grade a failed finding of this level gives: must → fail, should → warn, may → info.
Verdict verdict_for_broken(Level level);

// One checked expectation.
struct Finding {
  std::string rule;  // rule id, e.g. "SYN-ALL"
  Level level = Level::must;
  bool passed = false;
  std::string expected;  // "200 with a zero-length body"
  std::string actual;    // "200 with 38 bytes: <?xml ..."
  int step = 0;          // index of the step in the case, from 0
};

// Response bodies beyond this are kept cut short in transcripts: a server that answers every
// report with megabytes must not grow the harness's memory or report.json without bound.
inline constexpr std::size_t kTranscriptBodyCap = 64 * 1024;

// What was cut from a response body kept in a transcript.
struct CutBody {
  std::size_t bytes = 0;  // the full body's size
  std::string sha256;     // the full body's digest, lower-case hex
};

// One HTTP exchange in a case, with who sent it and what it was.
struct TranscriptEntry {
  std::string actor;  // "mac" or "mac/alice", "admin" for the admin adapter, "apns" for a push the server sent
  std::string label;  // "Authenticate", "Idle", "Acknowledged 5E1F...", "enqueue ProfileList"
  net::Exchange exchange;
  std::optional<CutBody> response_body_cut;  // set when the response body was cut to the cap
  // The case step it belongs to, from 0 (as Finding::step); -1 for enrollment before the steps.
  // Absent in records written before it existed. Lets a report point at the failing exchanges.
  std::optional<int> step;
};

// A transcript entry for an exchange, its response body cut to kTranscriptBodyCap.
TranscriptEntry transcript_entry(std::string actor, std::string label, const net::Exchange& exchange, int step);

// The identity a device presented: its TLS client certificate and/or the key of its
// Mdm-Signature. Which certificate a server saw from which UDID, so that a refusal tied to an
// identity can be read from the report.
struct IdentityUsed {
  std::string source;       // "issued" (from the profile's issuer), "pool:<file name>", or "none"
  std::string sha256;       // SHA-256 fingerprint of the certificate's DER, lower-case hex; empty for none
  std::string common_name;  // the certificate's subject CN; empty for none
};

// A synthetic device of a case, as one attempt made it.
struct CaseDevice {
  std::string name;  // the case's name for it: "mac"
  std::string udid;
  int attempt = 0;  // 0 the first attempt; 1, 2... its confirmation re-runs (as CaseResult::attempts)
  IdentityUsed identity;
};

// What one channel's declarative client held after its last declarative_sync of the case.
struct HeldDeclarationRecord {
  std::string identifier;
  std::string type;
  std::string server_token;
  bool active = false;
  bool valid = false;
};
struct ChannelDeclarations {
  std::string actor;  // "mac", "mac/alice"
  std::string declarations_token;
  std::vector<HeldDeclarationRecord> held;
};

struct CaseResult {
  std::string id;  // path under specs/scenarios without .yaml: "net/refuse_410"
  std::string title;
  std::vector<std::string> rules;
  Verdict verdict = Verdict::pass;
  std::string reason;  // why: the worst failed finding, the skip reason, or the error
  std::vector<Finding> findings;
  std::vector<TranscriptEntry> transcript;
  std::chrono::milliseconds elapsed{0};
  bool flaky = false;                 // confirmation re-runs did not all give the first attempt's verdict
  std::vector<std::string> attempts;  // verdict names of every attempt, first first; empty: ran once
  std::string reproducer;             // a fail or warn: the one-line command that replays this case
  // Every attempt's devices with their identities, first attempt's first; a device whose
  // identity could not be given is not listed (the reason says why). Empty when the case ended
  // before it made devices, and in records written before devices were recorded.
  std::vector<CaseDevice> devices;
  // Each channel that synced declarations, in the order it first did; empty without any.
  std::vector<ChannelDeclarations> declarations;
};

// A rule's verdict over every case that checked it.
struct RuleResult {
  std::string id;
  Level level = Level::must;
  Verdict verdict = Verdict::skip;
  std::vector<std::string> cases;         // ids of cases with a finding on this rule
  std::vector<std::string> failed_cases;  // ids of cases where a finding on it failed
  // From specs/rules.yaml, so that every view of a saved record can quote the rule.
  std::string summary;    // the rule in one line
  std::string apple;      // the sentence of Apple's text it enforces
  std::string source;     // where that sentence (or the HTTP grounding) is
  std::string grounding;  // "apple" or "http"
  // Whether the server uses the option, for a rule with may-level findings (a may rule, or a
  // rule's part lowered to may): true when every such finding passed, false when any failed;
  // absent when no may-level finding was checked.
  std::optional<bool> uses_option;
  // Why the rule was not tested, when it was not (verdict skip or error): "not selected (...)",
  // "skipped: <the profile lacks ...>", "error in <case>: ...", "not run: ...". Empty when tested.
  std::string untested;
};

// How the run was asked for: what every view shows beside the verdict, since a verdict means
// little without it (docs/verdicts.md#the-overall-verdict).
struct RunConditions {
  // The selection as asked: case ids or prefixes, exclusions, tags and levels; all empty: the
  // whole catalog.
  std::vector<std::string> selection;
  std::vector<std::string> excluded;
  std::vector<std::string> tags;
  std::vector<std::string> levels;
  std::vector<std::string> selected_cases;  // ids of the cases the selection chose, in run order
  std::size_t catalog_cases = 0;            // cases in the suite; 0 in records written before it
  bool strict = false;                      // a should-level break fails the run (--strict)
  bool require_complete = false;            // an incomplete run exits 1 (--require-complete)
  // How the server's TLS certificate was checked: "verified against the profile's CA (tls.ca)",
  // "verified against the system store", "not verified (tls.insecure)", "none (plain HTTP)".
  std::string tls;
  // The server's enrollment profile: "https://host/mdm/enroll (unsigned; sha256 ab12…)", what
  // could not be read there, or empty without one.
  std::string enrollment;
  // Where each value the enrollment profile could give came from, one line each:
  // "urls.check_in: enrollment profile", "topic: target profile".
  std::vector<std::string> value_origins;
};

// A run judged against an earlier record (--baseline): each failure is new or known.
struct BaselineComparison {
  std::string file;                         // the baseline's report.json, as given
  std::string started_at;                   // when the baseline ran
  std::vector<std::string> new_failures;    // failing now, not failing in the baseline
  std::vector<std::string> known_failures;  // failing now and in the baseline
  std::vector<std::string> fixed;           // failing in the baseline, run now and not failing
};

// The target stopped serving writes: a liveness probe failed after an earlier one had passed.
struct Wedge {
  std::string after_case;  // the case run just before: the one blamed
  std::string detail;      // what the failed probe (or the case's ROB-ALIVE finding) saw
};

// The reason a case that was not run because of a wedge gives: "not run: target wedged since C".
std::string not_run_reason(const Wedge& wedge);

struct RunResult {
  std::string harness_version;
  std::string target_name;               // profile name
  std::string target_url;                // the check-in URL
  std::string profile_digest;            // sha256 of the profile file
  std::string suite_digest;              // sha256 over rules.yaml and every selected case file
  std::string apple_schema_revision;     // the Apple schema the protocol model follows
  std::map<std::string, bool> declares;  // what the target profile declares (its `declares:`)
  std::string started_at;                // RFC 3339, UTC
  std::chrono::milliseconds elapsed{0};
  std::uint64_t seed = 0;     // seeds every synthetic UDID and UserID; --seed replays it
  std::string builtin_fault;  // the fault mode when the built-in server ran with one
  std::string identity_mode;  // how devices proved identity: none, mtls, signature, both
  // What a reader must know to trust the record, e.g. that TLS verification was off.
  std::vector<std::string> notes;
  bool interrupted = false;
  // Set when the target stopped serving writes; later cases were not run (skip, with
  // not_run_reason) unless the run went on (--continue-after-wedge).
  std::optional<Wedge> wedged;
  bool continued_after_wedge = false;
  bool redacted = false;  // secrets were replaced by report::redact_secrets (no --no-redact)
  RunConditions conditions;
  std::optional<BaselineComparison> baseline;
  std::vector<CaseResult> cases;
  std::vector<RuleResult> rules;
};

// Grades a case that ran to its end from its findings: pass when every finding passed, else the
// worst failed finding's grade (verdict_for_broken) with that finding as the reason; a case
// whose only broken findings are may-level is info, its reason saying the server does not use
// the option.
void grade_findings(CaseResult& c);
// Per-rule verdicts from the cases' findings; rules with no finding are skip. A tested may rule
// is info whether or not the server uses the option; uses_option says which.
std::vector<RuleResult> summarize_rules(const std::vector<CaseResult>& cases,
                                        const std::map<std::string, Level>& levels);
// Whether a case counts against the exit code: fail or error; under strict, also a warn that
// breaks a should-level expectation (info, a may-level break, never counts).
bool counts_as_failure(const CaseResult& c, bool strict);
// Folds confirmation re-runs into a case's first result: `attempts` gets every attempt's
// verdict, the verdict becomes the worst seen (a flaky failure is never turned into a pass), and
// `flaky` is set when they differ. Findings, transcript and elapsed stay the first attempt's;
// when a later attempt was worse, the reason says which and why.
void fold_attempts(CaseResult& first, const std::vector<CaseResult>& reruns);

}  // namespace mdmc::scenario
