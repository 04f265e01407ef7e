#pragma once
// Runs cases against a target: builds each case's fresh synthetic devices and users, sends
// their messages through a target::TargetSession, checks every expectation, and returns
// verdicts with transcripts.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/result.hpp"
#include "harness/scenario/spec.hpp"

namespace mdmc::scenario {

// Bounds on RunOptions::jobs and RunOptions::confirm.
inline constexpr int kMaxJobs = 64;
inline constexpr int kMaxConfirm = 10;

struct RunOptions {
  std::uint64_t seed = 0;  // every synthetic UDID, UserID and token derives from it and the case id
  // Called after each case (with its confirmation re-runs), for progress output. With several
  // jobs it is called from the workers, one call at a time, in the order cases finish.
  std::function<void(const CaseResult&)> on_case;
  // Called as each case starts (before its confirmation re-runs), serialized with on_case; for
  // a progress line that names the case in flight.
  std::function<void(const Case&)> on_case_start;
  // Set from elsewhere (a signal) to stop the run: the exchange in flight finishes or hits its
  // deadline, the case ends as an error, and no further case or re-run starts, on any worker.
  const std::atomic<bool>* stop = nullptr;
  // Cases run at once, each on its own thread (clamped to 1..kMaxJobs). Every case has its own
  // synthetic devices and connections, so the verdicts do not depend on it.
  int jobs = 1;
  // A case that ends fail or warn is run again this many times on fresh devices (clamped to
  // 0..kMaxConfirm); a verdict that does not repeat is labelled flaky. See fold_attempts.
  int confirm = 2;
  // After a case that leaves the target no longer serving writes (the liveness probe between
  // cases fails), later cases are not run; with this, they run all the same.
  bool continue_after_wedge = false;
};

// The seed of one attempt at a case: the run's seed for the first attempt (attempt 0), so that
// `--seed` replays it; for a confirmation re-run, one derived from the seed, the case id and the
// attempt number, which gives the re-run devices of its own.
std::uint64_t attempt_seed(std::uint64_t seed, const std::string& case_id, int attempt);

CaseResult run_case(const Case& c, const TargetProfile& target, const RuleCatalog& rules, std::uint64_t seed,
                    const std::atomic<bool>* stop = nullptr);

// Every case in order, on options.jobs threads, each failure confirmed by options.confirm
// re-runs. The result keeps the cases' order whatever order they finished in. A liveness probe
// (liveness.hpp) runs before the first case and after every case and re-run: the first one to
// fail after the first passed marks the run wedged (RunResult::wedged) and blames the case just
// run; a re-run that leaves the target wedged does not count towards flakiness.
RunResult run_suite(const std::vector<Case>& cases, const TargetProfile& target, const RuleCatalog& rules,
                    const RunOptions& options);

}  // namespace mdmc::scenario
