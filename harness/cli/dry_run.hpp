#pragma once
// `mdmconform run --dry-run`: what a run with these options would do, worked out from the rules,
// the cases and the target profile without sending anything: the cases it would run, those it
// would skip and why, and the rules it would leave untested and why.
#include <optional>
#include <string>
#include <vector>

#include "harness/cli/suite.hpp"

namespace mdmc::cli {

struct PlannedSkip {
  std::string case_id;
  std::string reason;  // the runner's own (scenario::skip_reason)
};

struct UntestedRule {
  std::string id;
  scenario::Level level = scenario::Level::must;
  // "not selected", "no case checks it", or "skipped: <reason>".
  std::string why;
  std::vector<std::string> cases;  // the cases that check it, none of which would run
};

struct RunPlan {
  std::string target;                     // the profile's name and file, or the built-in server
  std::string identity_mode;              // after --identity-mode
  std::vector<std::string> runs;          // case ids, in run order
  std::vector<PlannedSkip> skips;         // selected cases the profile cannot run
  std::vector<std::string> not_selected;  // case ids
  std::vector<UntestedRule> untested;     // by rule id
  // Why the run would stop before its first case (a usage error, exit 2), as a pool of device
  // identities too small for it; nothing when it would start.
  std::optional<std::string> stop;
};

struct PlanOutcome {
  RunPlan plan;
  int exit_code = 0;    // 0, or 2 when the rules, cases, selection or profile are unusable
  std::string message;  // for exit code 2: what went wrong (the plan is then empty)
};

// Loads the rules, the cases and the profile `run` would use (for the built-in server, the one
// it would be reached with; the server is not started) and works out the plan. Never throws.
PlanOutcome plan_run(const SuiteOptions& options);

// The plan as `run --dry-run` prints it.
std::string render_plan(const RunPlan& plan);

}  // namespace mdmc::cli
