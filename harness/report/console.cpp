#include "harness/report/console.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/report/detail/text.hpp"
#include "harness/report/html.hpp"
#include "harness/scenario/assessment.hpp"

namespace mdmc::report {
namespace {

using namespace detail;
using scenario::CaseResult;
using scenario::RuleResult;
using scenario::RunResult;
using scenario::TranscriptEntry;
using scenario::Verdict;

std::string upper_verdict(Verdict v) {
  std::string s(scenario::verdict_name(v));
  for (char& ch : s) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return s;
}

void pad_to(std::string& out, std::string_view cell, std::size_t width) {
  out += cell;
  for (std::size_t w = width_of(cell); w < width; ++w) out += ' ';
}

// A case's console lines: verdict, id, and the reason or the time; under a case that did not
// pass, its attempts and its reproducer, indented past the verdict column.
void append_case_lines(std::string& out, const CaseResult& c, std::size_t id_width, std::size_t verdict_width,
                       std::string_view baseline = {}) {
  std::string id = console_text(c.id, 120);
  // Against a baseline, a failure says whether it is new or known.
  if (!baseline.empty()) id += fmt::format(" ({})", baseline);
  pad_to(out, upper_verdict(c.verdict) + (c.flaky ? " FLAKY" : ""), verdict_width);
  if (c.verdict == Verdict::pass) {
    pad_to(out, id, id_width);
    out += fmt::format("  ({} ms)\n", c.elapsed.count());
    return;
  }
  std::string why = c.reason;
  if (why.empty()) {
    const auto failed = failed_findings(c);
    if (!failed.empty()) why = describe_finding(*failed.front());
  }
  if (why.empty()) {
    out += id + "\n";
  } else {
    pad_to(out, id, id_width);
    out += "  " + console_text(why) + "\n";
  }
  // How its attempts went (a confirmed failure repeats on fresh devices), and how to replay it.
  const std::string indent(verdict_width, ' ');
  if (!c.attempts.empty())
    out += indent + console_text(fmt::format("attempts: {}", fmt::join(c.attempts, ", "))) + "\n";
  if (!c.reproducer.empty()) out += indent + "replay: " + console_text(c.reproducer, 1000) + "\n";
}

}  // namespace

std::string console_case_lines(const CaseResult& c, std::size_t id_width) {
  std::string out;
  append_case_lines(out, c, id_width, c.flaky ? 12 : 6);
  return out;
}

std::string console_exchange_line(const TranscriptEntry& entry) {
  return fmt::format("{:<10} {} -> {} ({:.2f} ms)", console_text(entry.actor, 40), console_text(entry.label, 120),
                     console_text(describe_answer(entry), 120),
                     static_cast<double>(entry.exchange.elapsed.count()) / 1000.0);
}

std::string console_summary(const RunResult& run, ConsoleSummaryParts parts) {
  std::string out;
  std::size_t id_width = 0;
  for (const auto& c : run.cases) {
    if (parts.passing_cases || c.verdict != Verdict::pass) {
      const auto mark = baseline_mark(run, c.id);
      id_width = std::max(id_width, width_of(console_text(c.id, 120)) + (mark.empty() ? 0 : mark.size() + 3));
    }
  }
  // "PASS  " and "ERROR ": the verdict column is six wide, twelve when a verdict is flaky
  // ("ERROR FLAKY ").
  const bool any_flaky = std::any_of(run.cases.begin(), run.cases.end(), [](const CaseResult& c) { return c.flaky; });
  const std::size_t verdict_width = any_flaky ? 12 : 6;
  int flaky = 0;
  for (const CaseResult& c : run.cases) {
    flaky += c.flaky ? 1 : 0;
    if (parts.passing_cases || c.verdict != Verdict::pass)
      append_case_lines(out, c, id_width, verdict_width, baseline_mark(run, c.id));
  }

  if (parts.rules && !run.rules.empty()) {
    std::vector<std::string> rule_ids;
    std::size_t rule_width = 4;  // "rule"
    for (const auto& r : run.rules) {
      rule_ids.push_back(console_text(r.id, 60));
      rule_width = std::max(rule_width, width_of(rule_ids.back()));
    }
    out += "\n";
    pad_to(out, "rule", rule_width);
    out += "  level   verdict   cases  failed\n";
    for (std::size_t i = 0; i < run.rules.size(); ++i) {
      const RuleResult& r = run.rules[i];
      pad_to(out, rule_ids[i], rule_width);
      out += fmt::format("  {:<6}  {:<8}  {:>5}  {:>6}", scenario::level_name(r.level), rule_verdict_word(r),
                         r.cases.size(), r.failed_cases.size());
      // An info rule is an option (may): say whether the server uses it, not that it failed.
      if (r.verdict == Verdict::info && r.uses_option) out += fmt::format("  {}", option_use(r.uses_option));
      if (scenario::untested(r) && !r.untested.empty()) out += "  " + console_text(r.untested, 160);
      out += "\n";
    }
  }

  const auto counts = count_verdicts(run);
  out += fmt::format("\n{} {}: {} pass, {} fail, {} warn, {} info, {} skip, {} error in {:.2f} s\n", run.cases.size(),
                     run.cases.size() == 1 ? "case" : "cases", count_of(counts, Verdict::pass),
                     count_of(counts, Verdict::fail), count_of(counts, Verdict::warn), count_of(counts, Verdict::info),
                     count_of(counts, Verdict::skip), count_of(counts, Verdict::error),
                     static_cast<double>(run.elapsed.count()) / 1000.0);
  if (flaky > 0) {
    out += fmt::format("{} flaky: their verdict did not repeat on fresh devices; each keeps the worst seen\n", flaky);
  }
  if (run.interrupted) out += "interrupted: the run stopped early, these results are partial\n";
  for (const auto& note : run.notes) out += "note: " + note + "\n";
  if (!run.redacted) out += "note: secrets are NOT redacted (--no-redact)\n";
  // The overall verdict last, where a reader's eye lands, with what it was judged under.
  std::vector<std::string> conditions;
  for (const auto& [label, value] : condition_rows(run)) conditions.push_back(label + " " + value);
  out += console_text(fmt::format("conditions: {}", fmt::join(conditions, "; ")), 1000) + "\n";
  const auto assessment = scenario::assess(run);
  for (const auto* list : {&assessment.untested, &assessment.untested_may}) {
    for (const auto& u : *list) {
      out +=
          console_text(fmt::format("untested: {} ({}): {}", u.id, scenario::level_name(u.level), u.reason), 400) + "\n";
    }
  }
  if (run.baseline && !run.baseline->fixed.empty()) {
    out += console_text(fmt::format("fixed since the baseline: {}", fmt::join(run.baseline->fixed, ", ")), 1000) + "\n";
  }
  out += console_text(assessment.headline, 1000) + "\n";
  if (!assessment.exit_reason.empty()) {
    out += console_text(fmt::format("exit code {}: {}", assessment.exit_code, assessment.exit_reason), 400) + "\n";
  }
  return out;
}

}  // namespace mdmc::report
