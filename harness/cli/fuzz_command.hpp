#pragma once
// `mdmconform fuzz` and `mdmconform replay` on the command line: the flags, the built-in
// reference server when no target is given, and what is printed. The work is fuzz::Campaign
// (the network fuzzer run against a target, its corpus, findings and summary under <run>/fuzz/)
// and fuzz::replay_finding (a finding re-sent and shown decoded).
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/server/faults.hpp"
#include "harness/server/seeded_bugs.hpp"

namespace CLI {
class App;
}

namespace mdmc::cli {

struct FuzzOptions {
  std::filesystem::path specs_dir;
  std::optional<std::filesystem::path> target;  // absent: the built-in reference server
  server::Fault builtin_fault = server::Fault::none;
  server::SeededBug seeded_bug = server::SeededBug::none;
  double max_time_s = 60;
  int jobs = 1;     // libFuzzer -fork=N when above 1
  double rate = 0;  // requests per second at most, per job; 0: no cap
  bool allow_remote = false;
  std::filesystem::path out_dir;                    // the run folder; everything goes to out_dir/fuzz
  std::optional<std::filesystem::path> corpus_dir;  // kept between runs; default out_dir/fuzz/corpus
  std::optional<std::filesystem::path> fuzzer;      // the target_fuzzer binary; default: searched
  bool byte_mutator = false;                        // libFuzzer's byte mutations only (for comparison)
  bool feedback = true;                             // feed the target's answers back as coverage
  std::uint64_t seed = 0;                           // libFuzzer -seed; 0: libFuzzer picks one
  std::vector<std::string> disabled_oracles;
  const std::atomic<bool>* stop = nullptr;  // SIGINT/SIGTERM: stop the fuzzer, keep what it found
  bool quiet = false;
  std::uint64_t max_findings = 0;              // stop after this many unique findings; 0: no limit
  std::optional<std::filesystem::path> known;  // a previous run's summary.json: its findings are known
  bool minimise = true;
};

// Exit codes as for `run`: 0 nothing new found, 1 a new finding (one not in --known) or
// interrupted, 2 usage or configuration, 3 the target could not be reached or refused enrollment.
int run_fuzz(const FuzzOptions& options);

struct ReplayOptions {
  std::filesystem::path finding;
  std::optional<std::filesystem::path> target;  // default: the profile the finding records
  std::filesystem::path specs_dir;
  bool allow_remote = false;
  // Write the finding as a YAML case under this specs folder (scenarios/fuzz/) instead of
  // sending it; rules.yaml and targets/ are copied there when the folder has none.
  std::optional<std::filesystem::path> as_case;
};

// 1 when the finding reproduces, 0 when it does not, 2 and 3 as for run_fuzz. With as_case: 0
// when the case was written, 2 when it could not be.
int run_replay(const ReplayOptions& options);

// Where target_fuzzer is: `given`, else $MDMC_TARGET_FUZZER, else build/fuzz/fuzzers/ beside
// this binary's build folder or under the source tree. Nothing, with the places tried, when absent.
std::optional<std::filesystem::path> find_target_fuzzer(const std::optional<std::filesystem::path>& given,
                                                        std::string* tried);

// `fuzz` and `replay` on the command line: registered on the app before parsing; after it,
// dispatch() runs whichever was chosen (nothing when neither was).
class FuzzCommands {
 public:
  explicit FuzzCommands(CLI::App& app);
  std::optional<int> dispatch(const std::filesystem::path& specs_dir);

 private:
  CLI::App* fuzz_ = nullptr;
  CLI::App* replay_ = nullptr;
  FuzzOptions fuzz_options_;
  ReplayOptions replay_options_;
  std::optional<std::filesystem::path> out_;
  std::string fault_ = "none";
  std::string seeded_bug_ = "none";
  std::string mutator_ = "plist";
  bool no_feedback_ = false;
};

}  // namespace mdmc::cli
