// summary.md: short enough for a CI job summary page: the result and the counts, then each case
// that did not pass, with its rule and the command that replays it.
#include <algorithm>
#include <array>
#include <initializer_list>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/report/detail/text.hpp"
#include "harness/report/html.hpp"
#include "harness/scenario/assessment.hpp"

namespace mdmc::report {
namespace {

using namespace detail;
using scenario::CaseResult;
using scenario::Verdict;

// Longer reasons are cut: the whole is in report.html and report.json.
constexpr std::size_t kReasonCodePoints = 300;

std::string cut_text(std::string_view s, std::size_t n) {
  if (width_of(s) <= n) return std::string(s);
  std::string out;
  std::size_t i = 0;
  for (std::size_t shown = 0; shown < n && i < s.size(); ++shown) {
    append_utf8(out, next_code_point(s, i).value_or(kReplacement));
  }
  return out + "...";
}

// The broken rules of a case with their level ("SYN-EMPTY-END (must)"), else the rules it names.
std::string rules_of(const CaseResult& c) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& f : c.findings) {
    if (!f.passed && seen.insert(f.rule).second) {
      out.push_back(fmt::format("{} ({})", f.rule, scenario::level_name(f.level)));
    }
  }
  if (out.empty()) out = c.rules;
  return fmt::format("{}", fmt::join(out, ", "));
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return out;
}

// The first attempt's devices and the identities they presented, on one line: "`mac`
// `5E1F...` pool:device-1.p12 `ab12cd34ef56` (CN device-1)". The CN is left out when it is the
// UDID (an issued identity's); re-runs' devices are only counted (report.html lists them).
std::string devices_line(const CaseResult& c) {
  std::vector<std::string> parts;
  std::size_t reruns = 0;
  for (const auto& d : c.devices) {
    if (d.attempt != 0) {
      ++reruns;
      continue;
    }
    auto part = fmt::format("{} {} {}", markdown_code(d.name), markdown_code(d.udid), markdown_text(d.identity.source));
    if (!d.identity.sha256.empty()) part += " " + markdown_code(d.identity.sha256.substr(0, 12));
    if (!d.identity.common_name.empty() && d.identity.common_name != d.udid) {
      part += " (CN " + markdown_text(d.identity.common_name) + ")";
    }
    parts.push_back(std::move(part));
  }
  auto out = fmt::format("{}", fmt::join(parts, "; "));
  if (reruns > 0) out += fmt::format("; {} more on re-runs (report.html lists them)", reruns);
  return out;
}

std::vector<const CaseResult*> cases_with(const scenario::RunResult& run, std::initializer_list<Verdict> verdicts) {
  std::vector<const CaseResult*> out;
  for (Verdict v : verdicts) {
    for (const auto& c : run.cases) {
      if (c.verdict == v) out.push_back(&c);
    }
  }
  return out;
}

// A heading, a note under it when given, and a line per case: verdict, id, broken rules, reason
// and reproducer.
void append_listed(std::string& out, const scenario::RunResult& run, std::string_view heading, std::string_view note,
                   const std::vector<const CaseResult*>& listed) {
  if (listed.empty()) return;
  out += fmt::format("\n### {} ({})\n\n", heading, listed.size());
  if (!note.empty()) out += fmt::format("{}\n\n", note);
  const std::size_t shown = std::min(listed.size(), kMarkdownMaxListed);
  for (std::size_t i = 0; i < shown; ++i) {
    const CaseResult& c = *listed[i];
    const auto mark = baseline_mark(run, c.id);
    out += fmt::format("- **{}**{}{} {} \u2014 {}", upper(scenario::verdict_name(c.verdict)), c.flaky ? " (flaky)" : "",
                       mark.empty() ? "" : fmt::format(" ({})", mark), markdown_code(c.id), markdown_text(rules_of(c)));
    if (!c.reason.empty()) out += ": " + markdown_text(cut_text(c.reason, kReasonCodePoints));
    out += "\n";
    if (!c.reproducer.empty()) out += "  replay: " + markdown_code(c.reproducer) + "\n";
    if (!c.devices.empty()) out += "  devices: " + devices_line(c) + "\n";
  }
  if (shown < listed.size()) {
    out += fmt::format("- and {} more: see report.html\n", listed.size() - shown);
  }
}

}  // namespace

std::string to_markdown(const scenario::RunResult& run) {
  const auto counts = count_verdicts(run);
  auto n = [&](Verdict v) { return count_of(counts, v); };

  const auto assessment = scenario::assess(run);
  std::string out =
      fmt::format("## mdmconform: {} against {}\n\n", markdown_text(scenario::overall_title(assessment.overall)),
                  markdown_code(run.target_name));
  out += "**" + markdown_text(assessment.headline) + "**\n\n";
  if (!assessment.exit_reason.empty()) {
    out += fmt::format("Exit code {}: {}.\n\n", assessment.exit_code, markdown_text(assessment.exit_reason));
  }
  out += fmt::format("{} {}: {} pass, {} fail, {} warn, {} info, {} skip, {} error in {:.2f} s", run.cases.size(),
                     run.cases.size() == 1 ? "case" : "cases", n(Verdict::pass), n(Verdict::fail), n(Verdict::warn),
                     n(Verdict::info), n(Verdict::skip), n(Verdict::error),
                     static_cast<double>(run.elapsed.count()) / 1000.0);
  if (!run.builtin_fault.empty() && run.builtin_fault != "none") {
    out += " \u00b7 built-in server in fault mode " + markdown_code(run.builtin_fault);
  }
  out += fmt::format(" \u00b7 harness {} \u00b7 suite {} \u00b7 seed {}\n\n", markdown_text(run.harness_version),
                     markdown_code(run.suite_digest.substr(0, 12)), run.seed);
  out += "| pass | fail | warn | info | skip | error |\n|---:|---:|---:|---:|---:|---:|\n";
  out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", n(Verdict::pass), n(Verdict::fail), n(Verdict::warn),
                     n(Verdict::info), n(Verdict::skip), n(Verdict::error));
  if (run.interrupted) out += "\n**Interrupted**: the run stopped early; these results are partial.\n";
  if (!run.redacted) out += "\n**Secrets are not redacted** in this record (`--no-redact`).\n";
  for (const auto& note : run.notes) out += "\nNote: " + markdown_text(note) + "\n";
  out += "\n| condition | |\n|---|---|\n";
  for (const auto& [label, value] : condition_rows(run)) {
    out += fmt::format("| {} | {} |\n", markdown_text(label), markdown_text(value));
  }
  if (!assessment.untested.empty() || !assessment.untested_may.empty()) {
    out += fmt::format("\n### Untested rules ({})\n\n", assessment.untested.size() + assessment.untested_may.size());
    for (const auto* list : {&assessment.untested, &assessment.untested_may}) {
      for (const auto& u : *list) {
        out += fmt::format("- {} ({}): {}\n", markdown_code(u.id), scenario::level_name(u.level),
                           markdown_text(cut_text(u.reason, kReasonCodePoints)));
      }
    }
  }
  if (run.baseline && !run.baseline->fixed.empty()) {
    out += fmt::format("\n### Fixed since the baseline ({})\n\n", run.baseline->fixed.size());
    for (const auto& id : run.baseline->fixed) out += "- " + markdown_code(id) + "\n";
  }

  // Failures and errors first, then warnings, each in the run's order; then, apart, the info
  // cases: options (may) the server does not use, which are no defect.
  append_listed(out, run, "Not passing", "", cases_with(run, {Verdict::fail, Verdict::error, Verdict::warn}));
  append_listed(out, run, "Info: options the server does not use",
                "May-level rules (RFC 2119): informational, not a defect.", cases_with(run, {Verdict::info}));
  return out;
}

}  // namespace mdmc::report
