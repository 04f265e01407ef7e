#pragma once
// What `mdmconform run` does, as a function the end-to-end tests call too: find the specs,
// start the built-in reference server when no target is given, load and select the suite,
// run it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/cli/selection.hpp"
#include "harness/protocol/identity_mode.hpp"
#include "harness/scenario/runner.hpp"
#include "harness/server/mdm_service.hpp"
#include "harness/server/scep_server_process.hpp"

namespace mdmc::cli {

// How the built-in server's devices get their identities (`run --builtin-enrollment`).
enum class BuiltinEnrollment {
  scep,   // every device through the enrollment profile at /enroll and its SCEP companion, as a Mac
  cases,  // the enrollment cases through them; every other device issued by the test CA (faster)
  off,    // no SCEP companion: no enrollment profile, and the enrollment cases are skipped
};
std::optional<BuiltinEnrollment> builtin_enrollment_from_name(std::string_view name);
std::string_view builtin_enrollment_name(BuiltinEnrollment e);

// Cases at once against the built-in server unless told otherwise: its cases spend most of
// their wall time waiting (push windows, jitter, the SCEP companion), and verdicts do not depend
// on the job count (CliTest.OneJobAndFourJobsGiveTheSameVerdictsCaseByCase).
inline constexpr int kBuiltinJobs = 4;

struct SuiteOptions {
  std::filesystem::path specs_dir;              // holds rules.yaml, scenarios/, targets/
  std::optional<std::filesystem::path> target;  // absent: the built-in reference server
  server::Fault builtin_fault = server::Fault::none;
  // A seeded bug of the built-in server (seeded_bugs.hpp): the suite passes with any of them.
  server::SeededBug builtin_seeded_bug = server::SeededBug::none;
  // Overrides the profile's identity mode (the mutation self-test runs every mode).
  std::optional<protocol::IdentityMode> identity_mode;
  // The built-in server's enrollment; `mdmconform run` defaults to scep. Without scepserver
  // installed, scep and cases run as off.
  BuiltinEnrollment builtin_enrollment = BuiltinEnrollment::cases;
  // A SCEP companion already running, for the built-in server to name instead of starting one:
  // a test that runs the suite many times shares one. Null: start_builtin starts its own.
  std::shared_ptr<server::ScepServerProcess> builtin_scep;
  // Or a SCEP server that is no process of ours (the mutation self-test's in-process one).
  std::optional<server::ScepEnrollment> builtin_external_scep;
  // Case id prefixes (a whole case id selects that case alone); empty: all.
  std::vector<std::string> selection;
  std::vector<std::string> excludes;    // case id prefixes or whole ids left out (see Selection)
  std::vector<std::string> tags;        // cases with any of these tags; empty: any
  std::vector<scenario::Level> levels;  // cases naming a rule at one of these levels; empty: any
  std::uint64_t seed = 0;
  // Cases at once (scenario::RunOptions::jobs); 0: kBuiltinJobs against the built-in server,
  // 1 against a target (one case at a time singles out the case that wedges a server).
  int jobs = 0;
  int confirm = 2;                                                // see scenario::RunOptions::confirm
  bool continue_after_wedge = false;                              // see scenario::RunOptions
  bool strict = false;                                            // a should-level break (warn) counts as a failure
  bool require_complete = false;                                  // a passed but incomplete run exits 1
  std::function<void(const scenario::CaseResult&)> on_case;       // see scenario::RunOptions
  std::function<void(const std::string& case_id)> on_case_start;  // see scenario::RunOptions
  std::function<void(std::size_t cases)> on_suite_start;          // once, with how many cases were selected
  const std::atomic<bool>* stop = nullptr;                        // see scenario::RunOptions::stop
  // Once the target answered the reachability probe, before the first case, with the profile
  // the run uses (the built-in server's too, while it serves): `certify` takes the server's
  // certificate here. A reason returned stops the run there, with exit code 2.
  std::function<std::optional<std::string>(const target::TargetProfile&)> on_target_ready;
};

struct SuiteOutcome {
  scenario::RunResult run;
  int exit_code = 0;    // 0 pass, 1 a failure, 2 configuration, 3 unreachable (the README's table)
  std::string message;  // for exit codes 2 and 3: what went wrong, in words
};

// RunResult::suite_digest: SHA-256 over rules.yaml's bytes and each case's id and file bytes,
// in order.
std::string suite_digest(const std::filesystem::path& specs_dir, const std::vector<scenario::Case>& cases);
// The suite digest a run of the whole catalog in `specs_dir` records: what `verify` holds a
// certification's against. Throws base::LoadError when the catalog does not load.
std::string catalog_digest(const std::filesystem::path& specs_dir);

// The specs folder: ./specs when it holds rules.yaml, else the one in the source tree.
std::filesystem::path default_specs_dir();

// The cases `options` select, as cli::select_cases takes them.
Selection selection_of(const SuiteOptions& options);

// Every device of a run gets an identity no other device of it had (target::IdentityPool),
// the preflight's device too. With a pool, why the run cannot be sure of one for each: the worst
// case is every case failing and every re-run with it. Nothing when the pool is large enough, or
// is not used.
std::optional<std::string> pool_shortfall(const target::TargetProfile& profile,
                                          const std::vector<scenario::Case>& cases, int confirm);

// Never throws: configuration errors come back as exit code 2 with file and line. Every case
// that ends fail or warn gets its reproducer.
SuiteOutcome run_suite(const SuiteOptions& options);

// The one-line command that replays one case of a run made with these options:
// `mdmconform [--specs DIR] run --seed S [--target PROFILE] [--fault F] [--seeded-bug B]
// [--identity-mode M] ID`,
// with --specs only when the specs folder is not the default one, the profile's path made
// absolute, and any argument that the shell would read otherwise single-quoted.
std::string reproducer_for(const SuiteOptions& options, const std::string& case_id);

}  // namespace mdmc::cli
