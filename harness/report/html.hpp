#pragma once
// The views people read, derived from the same record as every other view: a self-contained
// HTML page (inline CSS, JS and SVG; it fetches nothing and works opened from disk) and a short
// Markdown summary for a CI job page, for a conformance run (report.json) and for a fuzz run
// (fuzz/summary.json). Text from the target is escaped everywhere; nothing here throws on it.
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "harness/scenario/result.hpp"

namespace mdmc::fuzz {
struct FuzzRun;
}  // namespace mdmc::fuzz

namespace mdmc::report {

// Rule areas (the id's prefix, "ENR") in the order the rule catalog first names them: the
// order of the page's counts and cases. Areas not listed follow, sorted.
std::span<const std::string_view> rule_area_order();

// report.html: the overall verdict and its headline, the certification record and the run's
// conditions, counts by verdict and by rule area, the rules with the Apple sentence each
// enforces (an untested rule says why), then every case, expandable, with its findings, its
// reproducer, a sequence diagram and the full transcript (headers, plist bodies pretty-printed,
// timings), and filters by verdict and by text. Failing and erroring cases come first, open,
// then warnings, then the rest by rule area; each case's element id is its case id
// ("syn/empty_end"), so that "report.html#syn/empty_end" links it, and with --baseline each
// failure says whether it is new or known. Shows what the record holds: redact first. Bodies
// longer than kHtmlBodyCap are shown cut, with the size of the whole.
std::string to_html(const scenario::RunResult& run);
// What report.html says of a signed certification record beside the report (certification.json,
// made by `mdmconform certify`). Without one, the page says the run carries no signed record.
struct CertificationStatus {
  std::string file;       // the record's file name, "certification.json"
  std::string signer;     // the subject of the certificate that signed it
  std::string overall;    // the overall verdict it certifies (scenario::overall_name)
  std::string signed_at;  // RFC 3339, UTC
};
std::string to_html(const scenario::RunResult& run, const std::optional<CertificationStatus>& certification);
inline constexpr std::size_t kHtmlBodyCap = 32 * 1024;

// A case's sequence diagram, as an inline SVG element: one lane per device and per user (by
// transcript actor, in order of first appearance, each user beside its device), one for the
// server and, when the case queued commands, one for the admin API. Every exchange is a
// request arrow (<g class="arrow request">) and, when it got an answer, a response arrow
// (<g class="arrow response">), else a cross (<g class="no-answer">); each event takes its
// own row in time order, so exchanges made at once interleave. Steps with a failed finding
// are shaded, with the rules they broke. Each exchange links to "#<anchor_prefix>//x<n>", the
// page's id of its transcript entry.
std::string sequence_diagram_svg(const scenario::CaseResult& c, const std::string& anchor_prefix);

// What an exchange's answer was, in a few words: "200 empty", "200 ProfileList" (a command),
// "410 Gone", "200 plist (1.2 KiB)", "no answer: header_timeout".
std::string describe_answer(const scenario::TranscriptEntry& entry);

// summary.md: the result, the counts, then each case that did not pass (fail, error, warn),
// with its rule, the reason and its reproducer, then the info cases (options the server does
// not use); at most kMarkdownMaxListed of each.
std::string to_markdown(const scenario::RunResult& run);
inline constexpr std::size_t kMarkdownMaxListed = 50;

// The page and the summary of a fuzz run (fuzz/campaign.hpp; what fuzz/summary.json holds): the
// record, the counts, the findings, and two line charts (executions per second, corpus size,
// over time), one point per timeline entry up to kFuzzChartMaxPoints (evenly chosen beyond).
// Values the record lacks are shown as "-"; never throws.
std::string render_fuzz_html(const fuzz::FuzzRun& run);
std::string render_fuzz_markdown(const fuzz::FuzzRun& run);
// junit.xml of a fuzz run: one test case per unique finding (new: a failure, with the input, the
// answer and the replay command; known: skipped); one passing case when nothing was found.
std::string render_fuzz_junit(const fuzz::FuzzRun& run);
inline constexpr std::size_t kFuzzChartMaxPoints = 2000;

}  // namespace mdmc::report
