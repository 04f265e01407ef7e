#include "harness/scenario/result.hpp"

#include <algorithm>

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
    case Verdict::skip: return "skip";
    case Verdict::warn: return "warn";
    case Verdict::fail: return "fail";
    case Verdict::error: return "error";
  }
  return "?";
}

std::vector<RuleResult> summarize_rules(const std::vector<CaseResult>& cases,
                                        const std::map<std::string, Level>& levels) {
  std::vector<RuleResult> out;
  for (const auto& [id, level] : levels) {
    RuleResult rule{id, level, Verdict::skip, {}, {}};
    for (const auto& c : cases) {
      bool checked = false;
      bool failed = false;
      Verdict worst = Verdict::pass;
      for (const auto& f : c.findings) {
        if (f.rule != id) continue;
        checked = true;
        if (f.passed) continue;
        failed = true;
        // The finding's level, not the rule's: a rule can grade its outcomes.
        worst = std::max(worst, f.level == Level::must ? Verdict::fail : Verdict::warn);
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
      }
      if (rule.verdict == Verdict::skip) rule.verdict = v;
      else rule.verdict = std::max(rule.verdict, v);
    }
    out.push_back(std::move(rule));
  }
  return out;
}

int exit_code_for(const RunResult& run) {
  bool failed = false;
  bool errored = false;
  for (const auto& c : run.cases) {
    failed = failed || c.verdict == Verdict::fail;
    errored = errored || c.verdict == Verdict::error;
  }
  if (failed || errored || run.interrupted) return 1;
  return 0;
}

}  // namespace mdmc::scenario
