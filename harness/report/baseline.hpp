#pragma once
// A run judged against an earlier one (--baseline, `mdmconform diff`): which verdicts changed,
// which failures are new, and the exit code that follows. Known failures do not fail a build.
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/result.hpp"

namespace mdmc::report {

// A case whose verdict differs between two runs, or that only one of them holds.
struct VerdictChange {
  std::string id;
  std::optional<scenario::Verdict> before;  // absent: the earlier run does not hold the case
  std::optional<scenario::Verdict> after;   // absent: the later run does not hold it
};

// The cases whose verdict changed from `before` to `after`: those `after` holds, in its order,
// then those only `before` holds.
std::vector<VerdictChange> verdict_changes(const scenario::RunResult& before, const scenario::RunResult& after);

// "syn/all: pass -> fail", with "absent" for a run that does not hold the case.
std::string describe_change(const VerdictChange& change);

// Whether a case of `run` is a new failure against a baseline: it counts as a failure now
// (scenario::counts_as_failure) and the baseline does not hold it or did not count it as one.
bool is_new_failure(const scenario::CaseResult& now, const scenario::RunResult& baseline, bool strict);

// Which of `run`'s failures are new against `baseline` and which known, and which of the
// baseline's failures this run fixed (only cases both hold: an unselected case is not fixed).
// The record goes into RunResult::baseline; scenario::assess then exits 0 when nothing is new.
scenario::BaselineComparison compare_to_baseline(const scenario::RunResult& run, const scenario::RunResult& baseline,
                                                 bool strict, std::string file);

}  // namespace mdmc::report
