#pragma once
// The overall verdict of a run, the one every view and the exit code take
// (docs/verdicts.md#the-overall-verdict): certified only when the whole catalog ran and every
// must- and should-rule passed; passed, incomplete when nothing failed but something was not
// tested; failed otherwise. Untested is never a pass.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "harness/scenario/result.hpp"

namespace mdmc::scenario {

enum class Overall { certified, incomplete, failed };
// "certified", "passed-incomplete", "failed": the machine form, in report.json.
std::string_view overall_name(Overall overall);
// "CERTIFIED", "PASSED, INCOMPLETE", "FAILED": the form every view leads with.
std::string_view overall_title(Overall overall);

// A rule no case tested, and why.
struct UntestedRule {
  std::string id;
  Level level = Level::must;
  std::string reason;
};

struct Assessment {
  Overall overall = Overall::failed;
  int exit_code = 1;
  std::vector<std::string> failed_rules;  // must-rules broken; with strict, should-rules too
  std::vector<std::string> warned_rules;  // should-rules broken, when not strict
  std::vector<std::string> failed_cases;  // cases that count as failures (counts_as_failure)
  std::vector<std::string> errored_cases;
  std::vector<std::string> skipped_cases;  // their reasons are in the run's cases
  std::size_t selected_cases = 0;          // as the conditions record them (else the cases run)
  std::size_t catalog_cases = 0;           // 0: the record does not say
  std::size_t not_run_cases = 0;           // selected, but the run stopped before them
  std::vector<UntestedRule> untested;      // must- and should-rules not tested
  std::vector<UntestedRule> untested_may;  // may-rules not tested: informational
  std::string headline;                    // "FAILED: ...", one line, the same in every view
  // Why the exit code is what it is, for a reader who expected the other one: "no new failure
  // against the baseline", "--require-complete", "interrupted".
  std::string exit_reason;
};

// Judges a run from its cases, rules, conditions and baseline comparison.
Assessment assess(const RunResult& run);

// Sets RuleResult::untested on every rule no case tested: not selected (when a catalog case
// checks it), no case of the suite checks it, skipped (with the case's reason), error, or not run
// (interrupted). `catalog_cases_by_rule` maps each rule to the ids of every catalog case naming it.
void explain_untested(RunResult& run, const std::map<std::string, std::vector<std::string>>& catalog_cases_by_rule);

// Whether a rule's verdict means it was not tested: skip (no case checked it) or error.
bool untested(const RuleResult& rule);

}  // namespace mdmc::scenario
