#pragma once
// Views of a run. Every run writes one machine-readable record, report.json, and every other
// view (JUnit XML for CI, the console summary, and in html.hpp the HTML page and the Markdown
// summary) is derived from the same scenario::RunResult. Text that came from the target (bodies, headers, reasons) is
// untrusted: nothing here throws on it, and every view stays valid whatever bytes it holds.
// Files are written atomically, so an interrupted run never leaves a half-written report.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/scenario/result.hpp"

namespace mdmc::report {

// The current layout of report.json; from_json_text refuses any other.
inline constexpr int kSchemaVersion = 1;

// report.json: pretty-printed (2-space indent), keys in a fixed order. Wire bytes (bodies,
// header names and values, reason phrase, method, URL) that are not valid UTF-8 are written as
// {"base64": "..."} instead of a string, so they survive exactly; other free text (reasons,
// expected/actual, labels) has invalid UTF-8 replaced by U+FFFD. The seed is a string of decimal
// digits, so that JavaScript readers do not round it. Never throws on what the target sent.
std::string to_json_text(const scenario::RunResult& run);

// Reads report.json back. On malformed input returns nothing and, when error is non-null, sets
// it to the JSON path and what was wrong ("cases[2].verdict: unknown verdict \"ok\""). The
// "counts" object is derived data and is not read back. Transcript times keep microseconds.
std::optional<scenario::RunResult> from_json_text(std::string_view text, std::string* error);

// Reads report.json from a file: nothing when it cannot be read or parsed, and then error (when
// non-null) names the file and what was wrong.
std::optional<scenario::RunResult> read_run_file(const std::filesystem::path& path, std::string* error);

// A case whose verdict differs between two runs, or that only one of them holds.
struct VerdictChange {
  std::string id;
  std::optional<scenario::Verdict> before;  // absent: the earlier run does not hold the case
  std::optional<scenario::Verdict> after;   // absent: the later run does not hold it
};

// The cases whose verdict changed from `before` to `after`: those `after` holds, in its order,
// then those only `before` holds.
std::vector<VerdictChange> verdict_changes(const scenario::RunResult& before,
                                           const scenario::RunResult& after);

// "syn/all: pass -> fail", with "absent" for a run that does not hold the case.
std::string describe_change(const VerdictChange& change);

// Whether a case of `run` is a new failure against a baseline: it counts as a failure now
// (scenario::counts_as_failure) and the baseline does not hold it or did not count it as one.
bool is_new_failure(const scenario::CaseResult& now, const scenario::RunResult& baseline, bool strict);

// The exit code of a run judged against a baseline: 1 when some case is a new failure or the run
// was interrupted, else 0. Known failures (failing in both) do not count.
int exit_code_against(const scenario::RunResult& run, const scenario::RunResult& baseline, bool strict);

// JUnit XML: one <testsuite name="mdmconform">, one <testcase> per case, classed by rule area
// ("SYN"). fail -> <failure>, error -> <error>, skip -> <skipped>, warn -> a pass with the
// warnings in <system-out>. Characters invalid in XML 1.0 are dropped.
std::string to_junit_xml(const scenario::RunResult& run);

// Which parts of the console summary to print; summary.txt holds them all.
struct ConsoleSummaryParts {
  bool passing_cases = true;  // a line per passing case (the others always get theirs)
  bool rules = true;          // the per-rule table
};

// The plain-text summary printed after a run (and kept as summary.txt): one line per case,
// a per-rule table, and a totals line. Control characters from the target are shown escaped,
// never sent to the terminal.
std::string console_summary(const scenario::RunResult& run, ConsoleSummaryParts parts = {});

// One case's lines as the summary shows them, with the id padded to id_width: "PASS  id  (12 ms)",
// or the verdict, id and reason, then its attempts and its reproducer indented.
std::string console_case_lines(const scenario::CaseResult& c, std::size_t id_width = 0);

// One exchange on one line, for --verbose: actor, label, and the answer ("200 ProfileList",
// "410 Gone", "no answer: header_timeout"), with its time. Terminal-safe.
std::string console_exchange_line(const scenario::TranscriptEntry& entry);

// Writes contents to a temporary file next to path, fsyncs it, and renames it over path.
// On failure the temporary file is removed, path is untouched, and error (when non-null)
// says what failed.
bool write_file_atomically(const std::filesystem::path& path, std::string_view contents,
                           std::string* error);

// Creates dir (and its parents) and writes report.json, junit.xml, summary.txt, summary.md
// and report.html into it (see html.hpp), each atomically; report.json first, so the record
// survives if a later view fails.
bool write_run(const scenario::RunResult& run, const std::filesystem::path& dir,
               std::string* error);

// Replaces the secrets in a run, in place, and sets run.redacted. In every transcript body that
// parses as a plist, the string and data values under a secret key (at any depth) become
// "<redacted: N chars>" (strings) or the bytes "<redacted: N bytes>" (data), and the body is
// written again in its own format (XML stays XML, binary stays binary). The keys, from Apple's
// check-in and command schemas and DESIGN.md: Token, PushMagic, UnlockToken, BootstrapToken,
// DigestResponse, AuthToken, TokenData, SecurityToken, PushToken, ActivationLockBypassCode,
// Password, CurrentPassword, NewPassword, PrivateKeyExport, PrivateKeyExportPassword,
// passwordHash, PIN, RedemptionCode, UnusedRedemptionCode. PEM private key blocks anywhere in
// a body (in a plist's string and data values, or in a body that is not a plist) become
// "-----REDACTED PRIVATE KEY-----". Authorization and Proxy-Authorization header values keep
// their scheme ("Basic <redacted>"); Mdm-Signature becomes "<redacted: N chars>". Findings'
// expected and actual text and case reasons lose PEM keys and any verbatim copy (8 bytes or
// more; data also as base64 and hex) of a secret redacted from a body or header, as do bodies
// that are not plists. Never throws; idempotent; a rewritten body grows by at most
// kRedactionGrowthPerValue bytes per replaced value, else it is replaced whole by
// "<redacted: a N-byte plist holding secrets>". Plists nested in data (InstallProfile's
// Payload) are not opened.
void redact_secrets(scenario::RunResult& run);

// How much a plist body may grow per replaced value when it is written again (libplist's own
// layout: indentation and a DOCTYPE that a compact body may lack, besides the marker).
inline constexpr std::size_t kRedactionGrowthPerValue = 1024;

// The folder name of a run: its UTC start time and target, e.g. "20261129T085155Z-reference".
// Only [A-Za-z0-9._-] appear in it.
std::string run_folder_name(const scenario::RunResult& run);

// Now, in UTC, as RFC 3339 to the second ("2026-11-29T08:51:55Z"): the time stamp of records.
std::string now_rfc3339();

}  // namespace mdmc::report
