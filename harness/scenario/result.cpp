#include "harness/scenario/result.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "harness/base/bytes.hpp"

namespace mdmc::scenario {

std::string_view level_name(Level level) {
  switch (level) {
    case Level::must: return "must";
    case Level::should: return "should";
    case Level::may: return "may";
  }
  return "?";
}

std::string_view verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::pass: return "pass";
    case Verdict::info: return "info";
    case Verdict::skip: return "skip";
    case Verdict::warn: return "warn";
    case Verdict::fail: return "fail";
    case Verdict::error: return "error";
  }
  return "?";
}

Verdict verdict_for_broken(Level level) {
  switch (level) {
    case Level::must: return Verdict::fail;
    case Level::should: return Verdict::warn;
    case Level::may: return Verdict::info;
  }
  return Verdict::fail;
}

void grade_findings(CaseResult& c) {
  c.verdict = Verdict::pass;
  c.reason.clear();
  const Finding* worst = nullptr;
  for (const auto& f : c.findings) {
    if (f.passed) continue;
    // The first finding of the worst grade names the reason: the break that decided it.
    if (!worst || verdict_for_broken(f.level) > verdict_for_broken(worst->level)) worst = &f;
  }
  if (!worst) return;
  c.verdict = verdict_for_broken(worst->level);
  c.reason = fmt::format("{}: expected {}; got {}", worst->rule, worst->expected, worst->actual);
  if (c.verdict == Verdict::info) c.reason = "the server does not use this option (may): " + c.reason;
}

std::vector<RuleResult> summarize_rules(const std::vector<CaseResult>& cases,
                                        const std::map<std::string, Level>& levels) {
  std::vector<RuleResult> out;
  for (const auto& [id, level] : levels) {
    RuleResult rule;
    rule.id = id;
    rule.level = level;
    for (const auto& c : cases) {
      bool checked = false;
      bool failed = false;
      Verdict worst = Verdict::pass;
      for (const auto& f : c.findings) {
        if (f.rule != id) continue;
        checked = true;
        if (f.level == Level::may) rule.uses_option = rule.uses_option.value_or(true) && f.passed;
        if (f.passed) continue;
        failed = true;
        // The finding's level, not the rule's: a rule can grade its outcomes.
        worst = std::max(worst, verdict_for_broken(f.level));
      }
      // A case that names the rule but errored before checking it still counts as covering it.
      bool names_rule = std::find(c.rules.begin(), c.rules.end(), id) != c.rules.end();
      if (!checked && !(names_rule && c.verdict == Verdict::error)) continue;
      rule.cases.push_back(c.id);
      Verdict v = Verdict::pass;
      if (failed) {
        rule.failed_cases.push_back(c.id);
        v = worst;
      } else if (!checked) {
        v = Verdict::error;
      } else if (level == Level::may) {
        v = Verdict::info;  // a tested option: whether the server uses it is uses_option
      }
      if (rule.verdict == Verdict::skip)
        rule.verdict = v;
      else
        rule.verdict = std::max(rule.verdict, v);
    }
    out.push_back(std::move(rule));
  }
  return out;
}

bool counts_as_failure(const CaseResult& c, bool strict) {
  if (c.verdict == Verdict::fail || c.verdict == Verdict::error) return true;
  if (!strict || c.verdict != Verdict::warn) return false;
  return std::any_of(c.findings.begin(), c.findings.end(),
                     [](const Finding& f) { return !f.passed && f.level == Level::should; });
}

void fold_attempts(CaseResult& first, const std::vector<CaseResult>& reruns) {
  if (reruns.empty()) return;
  first.attempts = {std::string(verdict_name(first.verdict))};
  const Verdict first_verdict = first.verdict;
  const CaseResult* worst = nullptr;
  std::size_t worst_attempt = 0;
  for (std::size_t i = 0; i < reruns.size(); ++i) {
    const CaseResult& again = reruns[i];
    first.attempts.emplace_back(verdict_name(again.verdict));
    if (again.verdict != first_verdict) first.flaky = true;
    if (again.verdict > first.verdict) {
      first.verdict = again.verdict;
      worst = &again;
      worst_attempt = i + 2;  // attempts are counted from 1, and the first is not in reruns
    }
  }
  if (worst) {
    first.reason += fmt::format("{}attempt {} was {}: {}", first.reason.empty() ? "" : "; ", worst_attempt,
                                verdict_name(worst->verdict), worst->reason);
  }
}

TranscriptEntry transcript_entry(std::string actor, std::string label, const net::Exchange& exchange, int step) {
  TranscriptEntry entry{std::move(actor), std::move(label), exchange, std::nullopt, step};
  if (entry.exchange.response && entry.exchange.response->body.size() > kTranscriptBodyCap) {
    auto& body = entry.exchange.response->body;
    entry.response_body_cut = CutBody{body.size(), base::sha256_hex(body)};
    body.resize(kTranscriptBodyCap);
    body.shrink_to_fit();
  }
  return entry;
}

std::string not_run_reason(const Wedge& wedge) { return "not run: target wedged since " + wedge.after_case; }

}  // namespace mdmc::scenario
