#pragma once
// Runs cases against a target: builds each case's fresh synthetic devices and users, sends
// their messages over HTTP, checks every expectation, and returns verdicts with transcripts.
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "harness/scenario/result.hpp"
#include "harness/scenario/spec.hpp"

namespace mdmc::scenario {

struct RunOptions {
  std::uint64_t seed = 0;  // every synthetic UDID, UserID and token derives from it and the case id
  // Called after each case, for progress output.
  std::function<void(const CaseResult&)> on_case;
  // Set from elsewhere (a signal) to stop the run: the exchange in flight finishes or hits its
  // deadline, the case ends as an error, and no further case starts.
  const std::atomic<bool>* stop = nullptr;
};

CaseResult run_case(const Case& c, const TargetProfile& target, const RuleCatalog& rules,
                    std::uint64_t seed, const std::atomic<bool>* stop = nullptr);

RunResult run_suite(const std::vector<Case>& cases, const TargetProfile& target,
                    const RuleCatalog& rules, const RunOptions& options);

// A short reason when the target's check-in URL does not accept a TCP connection.
std::optional<std::string> probe_reachable(const TargetProfile& target);

}  // namespace mdmc::scenario
