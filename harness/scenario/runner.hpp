#pragma once
// Runs cases against a target: builds each case's fresh synthetic devices and users, sends
// their messages through a target::TargetSession, checks every expectation, and returns
// verdicts with transcripts.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/push_log.hpp"
#include "harness/scenario/result.hpp"
#include "harness/scenario/spec.hpp"
#include "harness/target/identity_pool.hpp"

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
  // Where every device of the run gets its identity, each one no other device of the run got:
  // shared by every case and re-run, on every worker. Null: run_suite makes one for the call.
  // Made from the target profile's identity config, and must outlive the run.
  target::IdentityPool* identities = nullptr;
  // The run's fake APNs (the profile's push:), shared by every case; null: the cases that watch
  // pushes end in an error (a profile without push: skips them before).
  PushLog* pushes = nullptr;
};

// The most device identities a run can use, term by term: every synthetic device is fresh and
// gets an identity no other device of the run had (target::IdentityPool), so a pool must hold
// at least total() or the run fails before any case starts. A new kind of fresh device is one
// more field here, counted in total() and named in explain().
struct IdentityNeed {
  std::size_t cases = 0;    // the cases of the run
  std::size_t devices = 0;  // their devices, summed over the cases: what one attempt at each makes
  // ROB-ALIVE's probes: a fresh device after each (top-level) robustness step, per attempt.
  std::size_t probes = 0;
  int confirm = 0;  // re-runs of a failing case, each on fresh devices (clamped as RunOptions::confirm)
  // The run's own liveness probe device, probed between cases: 1 when there is a case.
  std::size_t watch = 0;
  // The device `mdmconform run` enrolls before any case (cli/preflight.hpp): set by the caller
  // that runs the preflight, as identities_needed does not know of it.
  std::size_t preflight = 0;

  // (devices + probes) × (1 + confirm) + watch + preflight: every case failing, and every re-run too.
  std::size_t total() const;
  // The terms in words: "38 cases, 41 devices, 12 liveness probes after robustness steps, each
  // failing case re-run up to 2 times on fresh devices, 1 probe device between cases, and 1
  // device enrolled before the first case".
  std::string explain() const;
};
// What a run of `cases` with `confirm` re-runs may need at most.
IdentityNeed identities_needed(const std::vector<Case>& cases, int confirm);

// The seed of one attempt at a case: the run's seed for the first attempt (attempt 0), so that
// `--seed` replays it; for a confirmation re-run, one derived from the seed, the case id and the
// attempt number, which gives the re-run devices of its own.
std::uint64_t attempt_seed(std::uint64_t seed, const std::string& case_id, int attempt);

// Why `target` cannot run `c` (no admin adapter for a case that queues commands, identity mode
// none for one that checks identity binding, too few managed network users), or nothing. The
// runner skips the case with this reason; `run --dry-run` shows it before anything is sent.
std::optional<std::string> skip_reason(const Case& c, const TargetProfile& target);

// One attempt at one case. Its devices take their identities from `identities`, the run's;
// null: from a pool of the call's own, as when the case is the whole run.
CaseResult run_case(const Case& c, const TargetProfile& target, const RuleCatalog& rules, std::uint64_t seed,
                    const std::atomic<bool>* stop = nullptr, target::IdentityPool* identities = nullptr,
                    PushLog* pushes = nullptr);

// Every case in order, on options.jobs threads, each failure confirmed by options.confirm
// re-runs. The result keeps the cases' order whatever order they finished in. A liveness probe
// (liveness.hpp) runs before the first case and after every case and re-run: the first one to
// fail after the first passed marks the run wedged (RunResult::wedged) and blames the case just
// run; a re-run that leaves the target wedged does not count towards flakiness.
RunResult run_suite(const std::vector<Case>& cases, const TargetProfile& target, const RuleCatalog& rules,
                    const RunOptions& options);

}  // namespace mdmc::scenario
