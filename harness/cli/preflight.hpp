#pragma once
// What `mdmconform run` checks once the target answers and before any case runs: that one fresh
// device enrolls (Authenticate, then its TokenUpdate) with the profile's identity and TLS trust.
// Every case enrolls its devices the same way, so a profile the server refuses would fail every
// case alike and say less than one message naming the exchange and the profile key that likely
// explains it. A failure the server alone is to blame for (a 5xx, a hang, bytes that are not
// HTTP, a refused TokenUpdate) does not stop the run: the cases judge it, as the mutation
// self-test requires (fault authenticate-refused must fail ENR-AUTH, not exit 3).
//
// And the record of a run that stopped before its cases (exit code 2 or 3): one errored case,
// so that report.json and junit.xml exist for CI whatever happened.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/cli/suite.hpp"
#include "harness/net/http.hpp"
#include "harness/scenario/result.hpp"
#include "harness/target/identity_pool.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::cli {

struct PreflightOutcome {
  // 0: the run goes on; 2: the profile's identities cannot be used (an identity could not be
  // issued, a body could not be signed); 3: the server refused the enrollment in a way the
  // profile likely explains.
  int exit_code = 0;
  std::string message;              // for exit codes 2 and 3: what failed, and the likely profile key
  std::optional<std::string> note;  // the run goes on after a failed enrollment: what failed, for the record
  std::vector<scenario::TranscriptEntry> transcript;  // the enrollment's exchanges, labelled "preflight: ..."
  // The server takes no check-in at the CheckInURL its enrollment profile names, and takes one
  // at its ServerURL: no Mac could enroll. Then only the cases checking ENR-CHECKIN-URL run, and
  // this says why the others did not.
  std::optional<std::string> check_in_url_refused;
};

// Enrolls one fresh device, whose identity comes from `identities` (the run's: it is one more
// device of the run, counted in pool_shortfall) and whose UDID derives from `seed`. Every request
// is bounded by the profile's deadlines; `stop` (may be null) ends it early, and the run then
// goes on to its interrupted end.
PreflightOutcome preflight_enrollment(const target::TargetProfile& profile, target::IdentityPool& identities,
                                      std::uint64_t seed, const std::atomic<bool>* stop);

// The profile key that most likely explains why the server answered `status` to the preflight's
// Authenticate (`authenticate`) or TokenUpdate, with why; nothing when the answer is the
// server's own failure, for the cases to judge.
std::optional<std::string> likely_profile_key_for_status(int status, bool authenticate,
                                                         const target::TargetProfile& profile);

// The id of the one case a stopped run's record holds.
inline constexpr const char* kPreflightCaseId = "preflight";

// The case that stands for a run stopped before its cases: id kPreflightCaseId, verdict error,
// `reason`, and the exchanges that showed it.
scenario::CaseResult stopped_case(std::string reason, std::vector<scenario::TranscriptEntry> transcript = {});

// Makes the record of an outcome with exit code 2 or 3 one CI can read: one case "preflight",
// verdict error, whose reason is the outcome's message (kept when run_suite already made it,
// with the enrollment's exchanges: stopped_case); and what is known of the run: its start, seed, harness version,
// and its target (the profile's name, URL and digest once loaded; else the profile's file name,
// or "reference" for the built-in server).
void record_stopped_run(SuiteOutcome& outcome, const SuiteOptions& options);

}  // namespace mdmc::cli
