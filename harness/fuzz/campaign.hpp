#pragma once
// A fuzz campaign: the network fuzzer (fuzzers/target_fuzzer, a libFuzzer binary) run against
// one target profile for a while, with its corpus, findings, artifacts and log under one fuzz
// folder, and the typed record of how it went, FuzzRun, which is what <run>/fuzz/summary.json
// holds and what the fuzz page is made from. Also the replay of one finding.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "harness/base/result.hpp"
#include "harness/fuzz/finding.hpp"
#include "harness/fuzz/session.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::fuzz {

// Why a campaign or a replay did not run: the CLI's exit codes 2 and 3.
enum class CampaignError {
  configuration = 1,  // a bad profile, a remote target without allow_remote, a folder or process that cannot be made
  unreachable,        // the target did not answer, or refused enrollment
};
std::error_code make_error_code(CampaignError e);

// ---------------------------------------------------------------------------------------------
// The record. Read back from files another version (or a person) may have written, so every
// value may be absent (an empty string counts as absent); the campaign sets them all.

// summary.json's "kind".
inline constexpr std::string_view kFuzzRunKind = "mdmconform-fuzz";

// libFuzzer's counts at one moment, from one of its status lines.
struct FuzzSample {
  std::optional<double> t_s;                 // seconds from the start, to 0.1 s
  std::optional<std::uint64_t> executions;   // inputs run so far
  std::optional<double> exec_per_sec;        // as libFuzzer reports it
  std::optional<std::uint64_t> corpus_size;  // inputs in the corpus
  std::optional<std::uint64_t> features;     // coverage features seen
};

struct FuzzFinding {
  std::string file;           // relative to the fuzz folder: findings/finding-<hash>.json
  std::string path;           // absolute
  std::string oracle;         // oracle_name(), or "harness-crash" when target_fuzzer itself crashed
  std::string endpoint;       // "check_in" or "server"
  std::string summary;        // what happened, in words
  std::optional<double> t_s;  // seconds from the start when it was found
  std::string key;            // the deduplication key (Reproducer::key)
  std::string input_phrase;   // what was wrong with the input
  std::string answer_shape;
  std::optional<bool> minimised;
  std::string minimise_note;
  std::optional<std::uint64_t> hits;  // times an oracle fired with this key (at least)
  std::optional<bool> known;          // in the --known file
  // For people, each cut to kFindingTextChars: the input as sent (minimised when it was), decoded;
  // the input as first found, when it was minimised; the answer (status line and body).
  std::string input_text;
  std::string original_text;
  std::string answer_text;
};

inline constexpr std::size_t kFindingTextChars = 4096;

// A rule the oracles tolerated because the target broke it before any fuzz input.
struct FuzzExclusion {
  std::string rule;
  std::string reason;
};

struct FuzzRun {
  std::string harness_version;
  std::string target_name;
  std::string target_url;                     // the check-in URL
  std::string target_file;                    // the profile target_fuzzer loaded
  std::optional<std::string> builtin_fault;   // when the target was the built-in server: its fault mode
  std::optional<std::string> seeded_bug;      // and its seeded bug
  std::string started_at;                     // RFC 3339 UTC
  std::optional<double> elapsed_s;            // to 0.01 s
  std::optional<double> max_time_s;           // as asked
  std::optional<int> jobs;                    // fuzzing processes at once
  std::string mutator;                        // "plist" (structure-aware) or "bytes"
  std::optional<bool> feedback;               // the target's answers fed back as coverage
  std::optional<bool> interrupted;            // stopped by SIGINT or SIGTERM
  std::optional<int> fuzzer_exit;             // target_fuzzer's exit status (128 + signal when killed)
  std::optional<std::uint64_t> executions;    // from libFuzzer's last status line
  std::optional<double> exec_per_sec;         // executions over elapsed_s, to 0.1
  std::optional<std::uint64_t> corpus_size;   // what libFuzzer keeps: the inputs that brought something new
  std::optional<std::uint64_t> corpus_files;  // files in the corpus folder at the end
  std::string corpus_dir;
  std::optional<std::uint64_t> features;
  std::vector<FuzzSample> timeline;  // at most kMaxTimelinePoints, thinned evenly
  // Every unique finding; an element of a summary that is not an object reads as an empty one.
  std::vector<FuzzFinding> findings;
  std::vector<FuzzExclusion> exclusions;
  std::string target_down;                    // why the fuzzer stopped early: the target no longer answered
  std::optional<std::uint64_t> max_findings;  // as asked; 0 or absent: no limit
  std::optional<bool> stopped_at_max_findings;
  std::string known_file;                       // the --known file the findings were compared with
  std::optional<std::uint64_t> devices_broken;  // times the fuzz device broke and a new one took over
};

// New findings (not in the --known file): what makes a run fail.
std::size_t new_finding_count(const FuzzRun& run);

inline constexpr std::size_t kMaxTimelinePoints = 2000;

// summary.json: pretty-printed (2-space indent), keys in a fixed order, absent values left out.
std::string fuzz_run_to_json_text(const FuzzRun& run);
// Any JSON value; whatever is missing or of another type is left absent. Never throws.
FuzzRun fuzz_run_from_json(const nlohmann::ordered_json& j);

// ---------------------------------------------------------------------------------------------
// The campaign.

inline constexpr int kMaxJobs = 64;

struct CampaignOptions {
  std::filesystem::path fuzzer;              // the target_fuzzer binary
  std::filesystem::path profile_file;        // the target profile; target_fuzzer loads it too
  std::filesystem::path fuzz_dir;            // findings/, artifacts/, fuzzer.log go here
  std::filesystem::path corpus_dir;          // kept between runs
  std::filesystem::path seeds_dir;           // copied into an empty corpus folder, when it exists
  std::filesystem::path dictionary;          // libFuzzer -dict, when it exists
  std::optional<std::string> builtin_fault;  // recorded when the target is the built-in server
  std::optional<std::string> seeded_bug;
  double max_time_s = 60;
  int jobs = 1;     // fuzzing processes side by side, each on a device of its own (1 to kMaxJobs)
  double rate = 0;  // requests per second at most, per job; 0: no cap
  bool allow_remote = false;
  bool byte_mutator = false;  // libFuzzer's byte mutations only (for comparison)
  bool feedback = true;       // feed the target's answers back as coverage
  std::uint64_t seed = 0;     // libFuzzer -seed; 0: libFuzzer picks one
  std::vector<std::string> disabled_oracles;
  const std::atomic<bool>* stop = nullptr;  // set: stop the fuzzer, keep what it found
  std::uint64_t max_findings = 0;           // stop after this many unique findings; 0: no limit
  std::vector<std::string> known_keys;      // a previous run's finding keys: found again, known
  std::string known_file;                   // where they came from, for the record
  bool minimise = true;
};

// The finding keys of a previous run's summary.json (--known); an error names what is wrong.
base::Result<std::vector<std::string>> read_known_keys(const std::filesystem::path& summary);

// What a campaign tells whoever watches it, as it happens.
struct CampaignObserver {
  // target_fuzzer started against `url` for `seconds`.
  std::function<void(const std::string& url, long seconds)> on_start;
  // A status line: the counts `seconds` after the start.
  std::function<void(double seconds, const FuzzSample& sample)> on_sample;
  // A line worth showing at once: a finding, or a sanitizer report.
  std::function<void(const std::string& line)> on_notice;
};

class Campaign {
 public:
  explicit Campaign(CampaignOptions options, CampaignObserver observer = {});
  // Checks the target (loopback unless allowed, reachable), runs target_fuzzer until its time
  // is up or `stop` is set, and gathers the findings. Writes fuzzer.log; summary.json is the
  // caller's to write (fuzz_run_to_json_text), beside its views.
  base::Result<FuzzRun> run();
  // The last lines target_fuzzer printed: what it said when it gave up.
  const std::vector<std::string>& log_tail() const { return tail_; }
  // Seconds from target_fuzzer's start to its end, unrounded.
  double elapsed_seconds() const { return elapsed_; }

 private:
  CampaignOptions options_;
  CampaignObserver observer_;
  std::vector<std::string> tail_;
  double elapsed_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Replay.

// A finding file, read whole up to kMaxFindingBytes.
inline constexpr std::size_t kMaxFindingBytes = 64 * 1024 * 1024;
base::Result<Reproducer> read_finding(const std::filesystem::path& path);

struct ReplayStep {
  std::size_t bytes = 0;
  Outcome outcome;
};

struct Replay {
  std::vector<ReplayStep> history;  // the inputs sent before the finding's, each judged
  Outcome outcome;                  // the finding's own request, sent again
};

// A target profile as target_fuzzer loads it; a configuration error when it cannot be loaded,
// or when it points off loopback and allow_remote is not set (`doing` says what needs it:
// "fuzzing", "replaying against").
base::Result<target::TargetProfile> load_fuzz_target(const std::filesystem::path& profile_file, bool allow_remote,
                                                     std::string_view doing);

// Sends a finding's history and then its request (same bytes and headers, to the same
// endpoint of `target`, signed anew by this session's device) and judges each answer, with a
// liveness probe after every input.
base::Result<Replay> replay_finding(const Reproducer& finding, target::TargetProfile target, bool allow_remote);

}  // namespace mdmc::fuzz

template <>
struct std::is_error_code_enum<mdmc::fuzz::CampaignError> : std::true_type {};
