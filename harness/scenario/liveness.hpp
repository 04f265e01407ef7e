#pragma once
// The liveness probe: whether the target still serves writes. A device enrolls (Authenticate,
// TokenUpdate), gets a command queued for it through the admin adapter, and acknowledges it.
// A server can still answer an Idle with nothing queued while every request that writes hangs
// (docs/verdicts.md, "Wedged"); only writes show it. The runner probes after each robustness
// step (ROB-ALIVE) and between cases, to blame the case after which the target stopped serving.
#include <atomic>
#include <string>
#include <vector>

#include "harness/emulator/emulator.hpp"
#include "harness/scenario/result.hpp"
#include "harness/target/session.hpp"

namespace mdmc::scenario {

struct ProbeOutcome {
  // False when the harness could not set the probe up (the admin adapter refused the command, an
  // identity could not be issued, the run was stopped): nothing was learned about the target.
  bool judged = true;
  bool alive = false;
  // What the device got, in words: "enrolled; ProfileList 5E1F... delivered and acknowledged",
  // or the first thing that failed: "TokenUpdate: no answer: header_timeout (...)".
  std::string detail;
  std::vector<TranscriptEntry> transcript;  // actor "probe", labels "liveness probe: ..." (or as given)
};

// What ROB-ALIVE's finding says was expected of a probe against `target`.
std::string probe_expectation(const target::TargetProfile& target);

// Probes with `device`, whose identity `device_name` already has in `session` (add_device). Every
// request is bounded by the profile's deadlines, and the exchanges by kProbeExchanges; `stop`
// (may be null) is checked before each. `step` is what the transcript entries record (-1
// outside a case's steps). `ids` makes the command's UUID.
//
// A server may hold other commands for the device, or queue asynchronously: commands other than
// the probe's are answered NotNow (the server keeps them), and an Idle answered with nothing is
// sent again after a short wait, until the probe's command comes or the bound is reached.
ProbeOutcome probe_liveness(target::TargetSession& session, const std::string& device_name,
                            const emulator::Device& device, emulator::IdentitySource& ids, int step,
                            const std::atomic<bool>* stop = nullptr);

// Enrollment alone (Authenticate, then the device's TokenUpdate), with the probe's bounds and
// its account of what failed: `run`'s preflight tries one fresh device so before any case.
// Transcript labels begin with `labels` ("preflight: "); on a failure the last entry is the
// exchange that failed. `detail` is "enrolled" when both were answered 2xx.
ProbeOutcome probe_enrollment(target::TargetSession& session, const std::string& device_name,
                              const emulator::Device& device, const std::string& labels,
                              const std::atomic<bool>* stop = nullptr);

// The most Idle and report exchanges one probe sends while waiting for its command.
inline constexpr int kProbeExchanges = 8;

}  // namespace mdmc::scenario
