#pragma once
// What the network fuzzer does when an oracle fires, so that it can go on: the finding is
// deduplicated (by oracle, endpoint, request kind, the input's offending key paths and the
// answer's shape), a new one is minimised on a fresh device and written, and every hit is
// counted. Several fuzzing processes of one run (--jobs) share the findings folder:
// a finding's file is named by its key, and what each process saw is kept beside it in
// findings/.triage/.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "harness/base/result.hpp"
#include "harness/fuzz/minimize.hpp"
#include "harness/fuzz/session.hpp"

namespace mdmc::fuzz {

struct TriageOptions {
  std::filesystem::path findings_dir;
  MinimizeLimits minimize;  // per finding
  bool minimise = true;
};

struct Triaged {
  bool is_new = false;         // first time this key was seen in the run
  std::filesystem::path file;  // the finding's file
  std::string key;
  std::string detail;         // the finding in words (as first found)
  std::string minimise_note;  // when new
};

// The hit counts every process wrote, summed by key hash (the 16 hex digits of a finding file).
std::map<std::string, std::uint64_t> read_hit_counts(const std::filesystem::path& findings_dir);

class Triage {
 public:
  explicit Triage(TriageOptions options);
  ~Triage();
  // `session` got `input` and `outcome` (an oracle fired). Writes a new finding; counts a
  // duplicate. An error only when the finding could not be written.
  base::Result<Triaged> record(Session& session, const Outcome& outcome, std::string_view input);
  // Writes this process's hit counts (also done by record() at most once a second, and at
  // destruction).
  void write_counts();

 private:
  TriageOptions options_;
  std::map<std::string, std::uint64_t> hits_;        // key hash -> count
  std::map<std::string, std::string> raw_to_final_;  // raw key hash -> final key hash
  std::chrono::steady_clock::time_point last_write_{};
  std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration minimising_{};  // time spent minimising, for its share
  bool dirty_ = false;
};

}  // namespace mdmc::fuzz
