#include "harness/scenario/assessment.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace mdmc::scenario {
namespace {

bool names_rule(const CaseResult& c, const std::string& rule) {
  return std::find(c.rules.begin(), c.rules.end(), rule) != c.rules.end();
}

// "A, B, C" or "A, B, C and 4 more": a headline stays one line however many there are.
std::string some_of(const std::vector<std::string>& ids, std::size_t shown = 3) {
  if (ids.size() <= shown) return fmt::format("{}", fmt::join(ids, ", "));
  std::vector<std::string> first(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(shown));
  return fmt::format("{} and {} more", fmt::join(first, ", "), ids.size() - shown);
}

std::string rule_ids(const std::vector<UntestedRule>& rules) {
  std::vector<std::string> ids;
  for (const auto& r : rules) ids.push_back(r.id);
  return some_of(ids);
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

std::string_view overall_name(Overall overall) {
  switch (overall) {
    case Overall::certified: return "certified";
    case Overall::incomplete: return "passed-incomplete";
    case Overall::failed: return "failed";
  }
  return "failed";
}

std::string_view overall_title(Overall overall) {
  switch (overall) {
    case Overall::certified: return "CERTIFIED";
    case Overall::incomplete: return "PASSED, INCOMPLETE";
    case Overall::failed: return "FAILED";
  }
  return "FAILED";
}

bool untested(const RuleResult& rule) { return rule.verdict == Verdict::skip || rule.verdict == Verdict::error; }

void explain_untested(RunResult& run, const std::map<std::string, std::vector<std::string>>& catalog_cases_by_rule) {
  std::set<std::string> ran;
  for (const auto& c : run.cases) ran.insert(c.id);
  for (auto& rule : run.rules) {
    rule.untested.clear();
    if (!untested(rule)) continue;
    const CaseResult* errored = nullptr;
    const CaseResult* skipped = nullptr;
    const CaseResult* stopped_before = nullptr;  // ran, named the rule, ended before checking it
    for (const auto& c : run.cases) {
      if (!names_rule(c, rule.id)) continue;
      if (c.verdict == Verdict::error && !errored) errored = &c;
      if (c.verdict == Verdict::skip && !skipped) skipped = &c;
      if (c.verdict != Verdict::error && c.verdict != Verdict::skip && !stopped_before) stopped_before = &c;
    }
    if (errored) {
      rule.untested = fmt::format("error in {}: {}", errored->id, errored->reason);
    } else if (skipped) {
      rule.untested = fmt::format("skipped: {}: {}", skipped->id, skipped->reason);
    } else if (stopped_before) {
      rule.untested = fmt::format("not reached: {} ended {} before checking it", stopped_before->id,
                                  verdict_name(stopped_before->verdict));
    } else {
      static const std::vector<std::string> kNone;
      auto it = catalog_cases_by_rule.find(rule.id);
      const auto& in_catalog = it == catalog_cases_by_rule.end() ? kNone : it->second;
      const auto& selected = run.conditions.selected_cases;
      bool selected_not_run = std::any_of(in_catalog.begin(), in_catalog.end(), [&](const std::string& id) {
        return ran.count(id) == 0 && std::find(selected.begin(), selected.end(), id) != selected.end();
      });
      if (selected_not_run) {
        rule.untested = run.interrupted ? "not run: the run was interrupted" : "not run";
      } else if (!in_catalog.empty()) {
        rule.untested = fmt::format("not selected (checked by {})", some_of(in_catalog));
      } else {
        rule.untested = "no case of the suite checks it";
      }
    }
  }
}

Assessment assess(const RunResult& run) {
  Assessment a;
  const bool strict = run.conditions.strict;
  for (const auto& rule : run.rules) {
    if (untested(rule)) {
      UntestedRule u{rule.id, rule.level, rule.untested.empty() ? "not tested" : rule.untested};
      (rule.level == Level::may ? a.untested_may : a.untested).push_back(std::move(u));
    } else if (rule.verdict == Verdict::fail || (strict && rule.verdict == Verdict::warn)) {
      a.failed_rules.push_back(rule.id);
    } else if (rule.verdict == Verdict::warn) {
      a.warned_rules.push_back(rule.id);
    }
  }
  std::set<std::string> ran;
  for (const auto& c : run.cases) {
    ran.insert(c.id);
    if (counts_as_failure(c, strict)) a.failed_cases.push_back(c.id);
    if (c.verdict == Verdict::error) a.errored_cases.push_back(c.id);
    if (c.verdict == Verdict::skip) a.skipped_cases.push_back(c.id);
  }
  const auto& selected = run.conditions.selected_cases;
  a.selected_cases = selected.empty() ? run.cases.size() : selected.size();
  for (const auto& id : selected) a.not_run_cases += ran.count(id) == 0 ? 1 : 0;
  a.catalog_cases = run.conditions.catalog_cases;

  const bool wedge_ended_run = run.wedged && !run.continued_after_wedge;
  std::vector<std::string> why;
  if (!a.failed_cases.empty() || wedge_ended_run) {
    a.overall = Overall::failed;
    if (!a.failed_rules.empty()) {
      why.push_back(
          fmt::format("{} failed: {}", plural(a.failed_rules.size(), "rule", "rules"), some_of(a.failed_rules)));
    }
    if (!a.errored_cases.empty()) {
      why.push_back(fmt::format("{} errored (no verdict reached): {}", plural(a.errored_cases.size(), "case", "cases"),
                                some_of(a.errored_cases)));
    }
    if (run.wedged) why.push_back("the target stopped serving writes after " + run.wedged->after_case);
    if (why.empty()) {
      why.push_back(
          fmt::format("{} failed: {}", plural(a.failed_cases.size(), "case", "cases"), some_of(a.failed_cases)));
    }
    if (run.baseline) {
      why.push_back(fmt::format("against the baseline: {} new, {} known, {} fixed", run.baseline->new_failures.size(),
                                run.baseline->known_failures.size(), run.baseline->fixed.size()));
    }
  } else {
    const std::size_t unselected = a.catalog_cases > a.selected_cases ? a.catalog_cases - a.selected_cases : 0;
    if (a.catalog_cases == 0) {
      why.push_back("the record does not say how many cases the catalog holds");
    } else if (unselected > 0) {
      why.push_back(fmt::format("{} of {} cases selected", a.selected_cases, a.catalog_cases));
    }
    if (!a.untested.empty()) {
      why.push_back(fmt::format("{} untested: {}", plural(a.untested.size(), "must/should rule", "must/should rules"),
                                rule_ids(a.untested)));
    }
    if (!a.skipped_cases.empty()) {
      why.push_back(fmt::format("{} skipped", plural(a.skipped_cases.size(), "case", "cases")));
    }
    if (run.interrupted || a.not_run_cases > 0) {
      why.push_back(fmt::format("interrupted: {} not run", plural(a.not_run_cases, "selected case", "selected cases")));
    }
    a.overall = why.empty() ? Overall::certified : Overall::incomplete;
    if (a.overall == Overall::certified) {
      why.push_back(fmt::format("every must- and should-rule of the catalog ran and passed ({})",
                                plural(a.catalog_cases, "case", "cases")));
    } else {
      why.insert(why.begin(), "nothing failed, but");
    }
    if (!a.warned_rules.empty()) {
      why.push_back(fmt::format("{} with warnings: {}", plural(a.warned_rules.size(), "should-rule", "should-rules"),
                                some_of(a.warned_rules)));
    }
  }
  std::string text;
  for (std::size_t i = 0; i < why.size(); ++i) {
    // "nothing failed, but" leads into what follows without a separator.
    text += (i == 0 ? "" : (why[i - 1] == "nothing failed, but" ? " " : "; ")) + why[i];
  }
  a.headline = fmt::format("{}: {}", overall_title(a.overall), text);

  switch (a.overall) {
    case Overall::certified: a.exit_code = 0; break;
    case Overall::incomplete:
      a.exit_code = run.interrupted || run.conditions.require_complete ? 1 : 0;
      if (run.interrupted)
        a.exit_reason = "the run was interrupted";
      else if (run.conditions.require_complete)
        a.exit_reason = "--require-complete: an incomplete run exits 1";
      break;
    case Overall::failed:
      a.exit_code = 1;
      // A wedge that ended the run left cases untested, whatever the baseline knew.
      if (run.baseline && run.baseline->new_failures.empty() && !run.interrupted && !wedge_ended_run) {
        a.exit_code = 0;
        a.exit_reason =
            fmt::format("no new failure against the baseline ({} known)", run.baseline->known_failures.size());
      }
      break;
  }
  return a;
}

}  // namespace mdmc::scenario
