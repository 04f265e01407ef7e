#include "harness/fuzz/campaign.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/base/utf8.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/fuzz/detail/libfuzzer.hpp"
#include "harness/fuzz/triage.hpp"
#include "harness/net/http.hpp"
#include "harness/target/profile.hpp"
#include "harness/target/session.hpp"

namespace mdmc::fuzz {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Bounds on what the parent keeps of the fuzzer's output.
constexpr std::size_t kMaxLineBytes = 4096;
constexpr std::size_t kTailLines = 20;
// After SIGINT, libFuzzer prints its statistics and exits; past this it is killed.
constexpr auto kStopGrace = std::chrono::seconds(15);

class CampaignCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fuzz.campaign"; }
  std::string message(int ev) const override {
    switch (static_cast<CampaignError>(ev)) {
      case CampaignError::configuration: return "configuration";
      case CampaignError::unreachable: return "unreachable";
    }
    return "unknown";
  }
};

// ---------------------------------------------------------------------------------------------
// Reading a summary: every value is optional and checked for its type.

std::optional<double> number_at(const Json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> count_at(const Json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  // A count written as 12.0, or by hand: whole and not negative.
  const auto v = number_at(j, key);
  if (!v || *v < 0 || *v != std::floor(*v) || *v >= 1.8e19) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

std::optional<int> int_at(const Json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  const auto v = it->get<std::int64_t>();
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(v);
}

std::string string_at(const Json& j, std::string_view key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<bool> bool_at(const Json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

const Json* array_at(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

template <typename T>
void put(Json& j, std::string_view key, const std::optional<T>& value) {
  if (value) j[std::string(key)] = *value;
}

double round_to(double v, double steps) { return std::round(v * steps) / steps; }

// ---------------------------------------------------------------------------------------------
// The campaign's pieces.

std::vector<FuzzFinding> collect_findings(const fs::path& fuzz_dir, const fs::path& dir,
                                          const std::map<std::string, double>& seen_at, double fallback_t,
                                          const std::vector<std::string>& known_keys) {
  std::vector<FuzzFinding> out;
  const auto hits = read_hit_counts(dir);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    auto reproducer = read_finding(it->path());
    if (!reproducer) continue;
    auto at = seen_at.find(it->path().filename().string());
    FuzzFinding f{fs::relative(it->path(), fuzz_dir).string(),
                  it->path().string(),
                  reproducer->oracle,
                  reproducer->endpoint,
                  reproducer->detail,
                  at == seen_at.end() ? fallback_t : at->second};
    f.key = reproducer->key;
    f.input_phrase = reproducer->input_phrase;
    f.answer_shape = reproducer->answer_shape;
    f.minimise_note = reproducer->minimise_note;
    f.input_text = describe_body(reproducer->request.body, kFindingTextChars);
    if (reproducer->original) f.original_text = describe_body(*reproducer->original, kFindingTextChars);
    if (reproducer->response) {
      f.answer_text = fmt::format("HTTP {} {}\n{}", reproducer->response->status, reproducer->response->reason,
                                  describe_body(reproducer->response->body, kFindingTextChars));
    } else {
      f.answer_text = "no answer: " + reproducer->transport_error;
    }
    if (!reproducer->key.empty()) {
      f.minimised = reproducer->minimised;
      auto h = hits.find(finding_key_hash(reproducer->key));
      f.hits = h == hits.end() ? 1 : std::max<std::uint64_t>(1, h->second);
      f.known = std::find(known_keys.begin(), known_keys.end(), reproducer->key) != known_keys.end();
    }
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.t_s < b.t_s; });
  for (auto& f : out) f.t_s = round_to(*f.t_s, 10);
  return out;
}

}  // namespace

std::error_code make_error_code(CampaignError e) {
  static const CampaignCategory category;
  return {static_cast<int>(e), category};
}

std::string fuzz_run_to_json_text(const FuzzRun& run) {
  Json j = Json::object();
  j["kind"] = std::string(kFuzzRunKind);
  j["harness_version"] = run.harness_version;
  j["target_name"] = run.target_name;
  j["target_url"] = run.target_url;
  j["target_file"] = run.target_file;
  put(j, "builtin_fault", run.builtin_fault);
  put(j, "seeded_bug", run.seeded_bug);
  j["started_at"] = run.started_at;
  put(j, "elapsed_s", run.elapsed_s);
  put(j, "max_time_s", run.max_time_s);
  put(j, "jobs", run.jobs);
  j["mutator"] = run.mutator;
  put(j, "feedback", run.feedback);
  put(j, "interrupted", run.interrupted);
  put(j, "fuzzer_exit", run.fuzzer_exit);
  put(j, "executions", run.executions);
  put(j, "exec_per_sec", run.exec_per_sec);
  put(j, "corpus_size", run.corpus_size);
  put(j, "corpus_files", run.corpus_files);
  j["corpus_dir"] = run.corpus_dir;
  put(j, "features", run.features);
  Json timeline = Json::array();
  for (const auto& s : run.timeline) {
    Json entry = Json::object();
    put(entry, "t_s", s.t_s);
    put(entry, "executions", s.executions);
    put(entry, "exec_per_sec", s.exec_per_sec);
    put(entry, "corpus_size", s.corpus_size);
    put(entry, "features", s.features);
    timeline.push_back(std::move(entry));
  }
  j["timeline"] = std::move(timeline);
  Json findings = Json::array();
  for (const auto& f : run.findings) {
    Json entry = {
        {"file", f.file}, {"path", f.path}, {"oracle", f.oracle}, {"endpoint", f.endpoint}, {"summary", f.summary}};
    put(entry, "t_s", f.t_s);
    if (!f.key.empty()) entry["key"] = f.key;
    if (!f.input_phrase.empty()) entry["input_phrase"] = f.input_phrase;
    if (!f.answer_shape.empty()) entry["answer_shape"] = f.answer_shape;
    put(entry, "minimised", f.minimised);
    if (!f.minimise_note.empty()) entry["minimise_note"] = f.minimise_note;
    put(entry, "hits", f.hits);
    put(entry, "known", f.known);
    if (!f.input_text.empty()) entry["input"] = base::sanitize_utf8(f.input_text);
    if (!f.original_text.empty()) entry["original_input"] = base::sanitize_utf8(f.original_text);
    if (!f.answer_text.empty()) entry["answer"] = base::sanitize_utf8(f.answer_text);
    findings.push_back(std::move(entry));
  }
  j["findings"] = std::move(findings);
  if (!run.exclusions.empty()) {
    Json exclusions = Json::array();
    for (const auto& e : run.exclusions) exclusions.push_back({{"rule", e.rule}, {"reason", e.reason}});
    j["exclusions"] = std::move(exclusions);
  }
  if (!run.target_down.empty()) j["target_down"] = run.target_down;
  put(j, "max_findings", run.max_findings);
  put(j, "stopped_at_max_findings", run.stopped_at_max_findings);
  if (!run.known_file.empty()) j["known_file"] = run.known_file;
  put(j, "devices_broken", run.devices_broken);
  // Paths and the target's name are the user's and may hold any bytes: never throw on them.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

FuzzRun fuzz_run_from_json(const Json& j) {
  FuzzRun run;
  run.harness_version = string_at(j, "harness_version");
  run.target_name = string_at(j, "target_name");
  run.target_url = string_at(j, "target_url");
  run.target_file = string_at(j, "target_file");
  if (auto fault = string_at(j, "builtin_fault"); !fault.empty()) run.builtin_fault = fault;
  if (auto bug = string_at(j, "seeded_bug"); !bug.empty()) run.seeded_bug = bug;
  run.started_at = string_at(j, "started_at");
  run.elapsed_s = number_at(j, "elapsed_s");
  run.max_time_s = number_at(j, "max_time_s");
  run.jobs = int_at(j, "jobs");
  run.mutator = string_at(j, "mutator");
  run.feedback = bool_at(j, "feedback");
  run.interrupted = bool_at(j, "interrupted");
  run.fuzzer_exit = int_at(j, "fuzzer_exit");
  run.executions = count_at(j, "executions");
  run.exec_per_sec = number_at(j, "exec_per_sec");
  run.corpus_size = count_at(j, "corpus_size");
  run.corpus_files = count_at(j, "corpus_files");
  run.corpus_dir = string_at(j, "corpus_dir");
  run.features = count_at(j, "features");
  if (const Json* timeline = array_at(j, "timeline")) {
    for (const auto& e : *timeline) {
      run.timeline.push_back({number_at(e, "t_s"), count_at(e, "executions"), number_at(e, "exec_per_sec"),
                              count_at(e, "corpus_size"), count_at(e, "features")});
    }
  }
  if (const Json* findings = array_at(j, "findings")) {
    for (const auto& e : *findings) {
      FuzzFinding f{string_at(e, "file"),     string_at(e, "path"),    string_at(e, "oracle"),
                    string_at(e, "endpoint"), string_at(e, "summary"), number_at(e, "t_s")};
      f.key = string_at(e, "key");
      f.input_phrase = string_at(e, "input_phrase");
      f.answer_shape = string_at(e, "answer_shape");
      f.minimised = bool_at(e, "minimised");
      f.minimise_note = string_at(e, "minimise_note");
      f.hits = count_at(e, "hits");
      f.known = bool_at(e, "known");
      f.input_text = string_at(e, "input");
      f.original_text = string_at(e, "original_input");
      f.answer_text = string_at(e, "answer");
      run.findings.push_back(std::move(f));
    }
  }
  if (const Json* exclusions = array_at(j, "exclusions")) {
    for (const auto& e : *exclusions) run.exclusions.push_back({string_at(e, "rule"), string_at(e, "reason")});
  }
  run.target_down = string_at(j, "target_down");
  run.max_findings = count_at(j, "max_findings");
  run.stopped_at_max_findings = bool_at(j, "stopped_at_max_findings");
  run.known_file = string_at(j, "known_file");
  run.devices_broken = count_at(j, "devices_broken");
  return run;
}

std::size_t new_finding_count(const FuzzRun& run) {
  return static_cast<std::size_t>(std::count_if(run.findings.begin(), run.findings.end(),
                                                [](const FuzzFinding& f) { return !f.known.value_or(false); }));
}

base::Result<std::vector<std::string>> read_known_keys(const fs::path& summary) {
  auto text = base::read_file_capped(summary, kMaxFindingBytes);
  if (!text)
    return base::Result<std::vector<std::string>>(CampaignError::configuration,
                                                  "--known: cannot read " + summary.string());
  auto j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || string_at(j, "kind") != kFuzzRunKind) {
    return base::Result<std::vector<std::string>>(
        CampaignError::configuration,
        fmt::format("--known: {} is not a fuzz run's summary.json (kind {})", summary.string(), kFuzzRunKind));
  }
  std::vector<std::string> keys;
  if (const Json* findings = array_at(j, "findings")) {
    for (const auto& f : *findings) {
      if (auto key = string_at(f, "key"); !key.empty()) keys.push_back(std::move(key));
    }
  }
  return keys;
}

Campaign::Campaign(CampaignOptions options, CampaignObserver observer)
    : options_(std::move(options)), observer_(std::move(observer)) {}

base::Result<FuzzRun> Campaign::run() {
  const CampaignOptions& o = options_;
  const fs::path findings_dir = o.fuzz_dir / "findings";
  std::error_code ec;
  for (const auto& d : {o.fuzz_dir, findings_dir, o.corpus_dir, o.fuzz_dir / "artifacts"}) {
    fs::create_directories(d, ec);
    if (ec)
      return base::Result<FuzzRun>(CampaignError::configuration,
                                   fmt::format("cannot create {}: {}", d.string(), ec.message()));
  }
  auto loaded = load_fuzz_target(o.profile_file, o.allow_remote, "fuzzing");
  if (!loaded) return loaded.error();
  const target::TargetProfile& profile = *loaded;
  // Each job is a device of its own: from a pool, an identity of its own (a server binds a
  // certificate to the first UDID it sees it with).
  if (profile.identity.mode != target::IdentityMode::none && !profile.identity.issuer &&
      !profile.identity.pool.empty() && profile.identity.pool.size() < static_cast<std::size_t>(o.jobs)) {
    return base::Result<FuzzRun>(
        CampaignError::configuration,
        fmt::format("--jobs {} needs {} device identities, one per job, and the profile's pool has {}", o.jobs, o.jobs,
                    profile.identity.pool.size()));
  }
  if (auto unreachable = target::probe_reachable(profile)) {
    return base::Result<FuzzRun>(CampaignError::unreachable, "target unreachable: " + *unreachable);
  }

  // One input may take every deadline of the exchange and of the liveness probe after it.
  auto per_exchange = profile.limits.connect_timeout + profile.limits.tls_handshake_timeout +
                      profile.limits.write_timeout + profile.limits.header_timeout + profile.limits.body_timeout;
  // A finding adds its minimisation (10 s and the exchange under way) and the checks that the
  // device is still served (three rounds of enrollment and probe).
  auto input_timeout_s = std::chrono::duration_cast<std::chrono::seconds>(per_exchange * 30).count() + 60;
  const auto max_time_s = std::max<long>(1, std::lround(o.max_time_s));
  std::vector<std::string> args = {o.fuzzer.string(), o.corpus_dir.string()};
  // The seeds go into an empty corpus folder, so that a kept corpus stands on its own; libFuzzer
  // adds what it finds there.
  if (!o.seeds_dir.empty() && fs::is_directory(o.seeds_dir) && detail::count_files(o.corpus_dir) == 0) {
    // recursive: without it (and with any other option) std::filesystem::copy copies none of
    // a directory's files.
    fs::copy(o.seeds_dir, o.corpus_dir, fs::copy_options::skip_existing | fs::copy_options::recursive, ec);
  }
  if (!o.dictionary.empty() && fs::is_regular_file(o.dictionary))
    args.push_back("-dict=" + fs::absolute(o.dictionary).string());
  args.push_back(fmt::format("-max_total_time={}", max_time_s));
  args.push_back(fmt::format("-timeout={}", input_timeout_s));
  args.push_back("-max_len=65536");
  args.push_back("-print_final_stats=1");
  // Each input changes the session's state (history, connections), which libFuzzer would take
  // for a leak and answer with a full LeakSanitizer scan, every time: that cut the rate to a
  // fifth. The harness's leaks are the sanitizer test suite's and the in-process fuzzers' job.
  args.push_back("-detect_leaks=0");
  // The entropic schedule updates a frequency for every feature of every run; with the
  // harness's own 20 000 or so it took 43 % of the time (perf). The plain schedule doubles the
  // rate (43 to 96 inputs/s, same load).
  args.push_back("-entropic=0");
  // Rereading the corpus folder every second (for inputs that other processes put there) listed
  // and stat-ed every file; nothing else writes there during a run, and new inputs come fast
  // with the target's features, so that was 5 % of the rate.
  args.push_back("-reload=0");
  args.push_back("-artifact_prefix=" + (o.fuzz_dir / "artifacts").string() + "/");
  std::vector<std::string> env = {
      "MDMC_FUZZ_TARGET=" + o.profile_file.string(),
      "MDMC_FUZZ_FINDINGS=" + findings_dir.string(),
      fmt::format("MDMC_FUZZ_RATE={}", o.rate),
      std::string("MDMC_FUZZ_ALLOW_REMOTE=") + (o.allow_remote ? "1" : "0"),
      std::string("MDMC_FUZZ_FEEDBACK=") + (o.feedback ? "1" : "0"),
      std::string("MDMC_FUZZ_MUTATOR=") + (o.byte_mutator ? "bytes" : "plist"),
      fmt::format("MDMC_FUZZ_DISABLE={}", fmt::join(o.disabled_oracles, ",")),
      std::string("MDMC_FUZZ_MINIMISE=") + (o.minimise ? "1" : "0"),
  };
  // ASan's quarantine would hold 256 MB of freed memory; a long run needs none of it.
  if (!std::getenv("ASAN_OPTIONS")) env.push_back("ASAN_OPTIONS=quarantine_size_mb=16:detect_leaks=0");

  FuzzRun run;
  run.harness_version = MDMC_VERSION;
  run.target_name = profile.name;
  run.target_url = profile.check_in_url;
  run.target_file = o.profile_file.string();
  run.builtin_fault = o.builtin_fault;
  run.seeded_bug = o.seeded_bug;
  run.started_at = base::now_rfc3339();
  const auto start = Clock::now();
  // --jobs N: N fuzzing processes side by side, each on a device of its own (job 0 the fixed
  // fuzz device its seeds name, the others one each, their inputs retargeted), all adding to
  // one corpus folder and one findings folder. Not libFuzzer's -fork: its jobs ran seconds each
  // (a process, an enrollment and a corpus subset every time) and shared one device, so that two
  // made fewer inputs a second than one (docs/fuzzing.md, "Jobs").
  const int jobs = std::clamp(o.jobs, 1, kMaxJobs);
  struct Job {
    detail::Child child;
    std::string pending{};
    detail::StatusLine last{};
    bool eof = false;
    bool reaped = false;
    int status = 0;
  };
  std::vector<Job> running;
  auto stop_all = [&](int signal) {
    for (const auto& job : running) kill(-job.child.pid, signal);
  };
  for (int k = 0; k < jobs; ++k) {
    auto job_args = args;
    if (o.seed) job_args.push_back(fmt::format("-seed={}", o.seed + static_cast<std::uint64_t>(k)));
    auto job_env = env;
    job_env.push_back(fmt::format("MDMC_FUZZ_JOB={}", k));
    auto child = detail::spawn(job_args, job_env, o.fuzz_dir);
    if (!child) {
      stop_all(SIGKILL);
      for (auto& job : running) {
        waitpid(job.child.pid, nullptr, 0);
        close(job.child.output);
      }
      return base::Result<FuzzRun>(CampaignError::configuration,
                                   fmt::format("cannot start {}: {}", o.fuzzer.string(), child.error().message));
    }
    running.push_back({*child});
  }
  if (observer_.on_start) observer_.on_start(profile.check_in_url, max_time_s);

  std::ofstream log(o.fuzz_dir / "fuzzer.log", std::ios::binary);
  detail::StatusLine last;  // all jobs': executions and rates summed, corpus and features the largest
  std::map<std::string, double> finding_times;  // reproducer file name -> seconds from start
  std::string stop_for;                         // "max-findings", "target-down": stopped before the time
  std::uint64_t devices_broken = 0;
  bool interrupted = false;
  std::optional<Clock::time_point> kill_at;
  const auto hard_stop = start + std::chrono::seconds(max_time_s + 60);
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  tail_.clear();
  auto handle_line = [&](std::size_t from, std::string line) {
    if (line.size() > kMaxLineBytes) line.resize(kMaxLineBytes);
    const std::string shown = jobs > 1 ? fmt::format("[job {}] {}", from, line) : line;
    log << shown << '\n';
    tail_.push_back(shown);
    if (tail_.size() > kTailLines) tail_.erase(tail_.begin());
    if (auto s = detail::parse_status(line)) {
      running[from].last = *s;
      last = {};
      for (const auto& job : running) {
        last.executions += job.last.executions;
        last.exec_per_sec += job.last.exec_per_sec;
        last.corpus = std::max(last.corpus, job.last.corpus);
        last.features = std::max(last.features, job.last.features);
      }
      const double now = seconds();
      FuzzSample sample{round_to(now, 10), last.executions, last.exec_per_sec, last.corpus, last.features};
      run.timeline.push_back(sample);
      if (run.timeline.size() > kMaxTimelinePoints) {
        // Every other point goes: a long run keeps its whole span at half the resolution.
        std::vector<FuzzSample> thinned;
        for (std::size_t i = 0; i < run.timeline.size(); i += 2) thinned.push_back(run.timeline[i]);
        run.timeline = std::move(thinned);
      }
      if (observer_.on_sample) observer_.on_sample(now, sample);
    }
    if (auto at = line.find("target_fuzzer: reproducer "); at != std::string::npos) {
      auto name = fs::path(line.substr(at + 26)).filename().string();
      // Two jobs may find the same finding at once: the file is one.
      if (finding_times.emplace(name, seconds()).second && o.max_findings > 0 &&
          finding_times.size() >= o.max_findings) {
        stop_for = "max-findings";
      }
    }
    if (auto at = line.find("target_fuzzer: EXCLUDED "); at != std::string::npos) {
      auto rest = line.substr(at + 24);
      auto colon = rest.find(": ");
      FuzzExclusion e{rest.substr(0, colon), colon == std::string::npos ? "" : rest.substr(colon + 2)};
      bool seen = std::any_of(run.exclusions.begin(), run.exclusions.end(),
                              [&](const FuzzExclusion& x) { return x.rule == e.rule; });
      if (!seen && run.exclusions.size() < 64) {
        run.exclusions.push_back(e);
        if (observer_.on_notice) observer_.on_notice(shown);
      }
    }
    if (line.find("target_fuzzer: DEVICE BROKEN") != std::string::npos) {
      ++devices_broken;
      if (observer_.on_notice) observer_.on_notice(shown);
    }
    constexpr std::string_view kTargetDown = "target_fuzzer: TARGET DOWN: ";
    if (auto at = line.find(kTargetDown); at != std::string::npos) {
      run.target_down = line.substr(at + kTargetDown.size());
      stop_for = "target-down";
      if (observer_.on_notice) observer_.on_notice(shown);
    }
    if (line.find("target_fuzzer: FINDING") != std::string::npos ||
        line.find("ERROR: AddressSanitizer") != std::string::npos) {
      if (observer_.on_notice) observer_.on_notice(shown);
    }
  };
  auto take = [&](std::size_t from, const char* data, std::size_t n) {
    auto& pending = running[from].pending;
    pending.append(data, n);
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      handle_line(from, pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
    if (pending.size() > kMaxLineBytes) {
      handle_line(from, pending);
      pending.clear();
    }
  };
  auto all_reaped = [&] {
    return std::all_of(running.begin(), running.end(), [](const Job& job) { return job.reaped; });
  };

  while (!all_reaped()) {
    std::vector<pollfd> fds;
    std::vector<std::size_t> owners;
    for (std::size_t k = 0; k < running.size(); ++k) {
      if (!running[k].eof) {
        fds.push_back({running[k].child.output, POLLIN, 0});
        owners.push_back(k);
      }
    }
    if (fds.empty()) {
      usleep(100 * 1000);
    } else if (poll(fds.data(), fds.size(), 200) > 0) {
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[8192];
        ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          running[owners[i]].eof = true;
        } else {
          take(owners[i], buf, static_cast<std::size_t>(n));
        }
      }
    }
    for (auto& job : running) {
      if (!job.reaped && waitpid(job.child.pid, &job.status, WNOHANG) == job.child.pid) job.reaped = true;
    }
    // One job that fails (a crash of the harness, the target gone) ends the run: the others
    // would only go on without it. A job whose time is up exits 0.
    const bool a_job_failed = std::any_of(running.begin(), running.end(), [](const Job& job) {
      return job.reaped && !(WIFEXITED(job.status) && WEXITSTATUS(job.status) == 0);
    });
    const bool stop_now =
        (o.stop && o.stop->load()) || Clock::now() > hard_stop || !stop_for.empty() || (jobs > 1 && a_job_failed);
    if (stop_now && !kill_at) {
      interrupted = o.stop && o.stop->load();
      stop_all(SIGINT);
      kill_at = Clock::now() + kStopGrace;
    } else if (kill_at && Clock::now() > *kill_at) {
      stop_all(SIGKILL);
    }
  }
  // Anything a job started goes with it.
  stop_all(SIGKILL);
  // What is left in the pipes after the exits (the final statistics).
  for (std::size_t k = 0; k < running.size(); ++k) {
    for (int rounds = 0; rounds < 64; ++rounds) {
      pollfd pfd{running[k].child.output, POLLIN, 0};
      if (poll(&pfd, 1, 50) <= 0) break;
      char buf[8192];
      ssize_t n = read(running[k].child.output, buf, sizeof buf);
      if (n <= 0) break;
      take(k, buf, static_cast<std::size_t>(n));
    }
    if (!running[k].pending.empty()) handle_line(k, running[k].pending);
    close(running[k].child.output);
  }
  log.close();
  const double elapsed = seconds();
  elapsed_ = elapsed;
  // The first job's status that is not a clean exit, else 0.
  int exit_code = 0;
  for (const auto& job : running) {
    const int code =
        WIFEXITED(job.status) ? WEXITSTATUS(job.status) : 128 + (WIFSIGNALED(job.status) ? WTERMSIG(job.status) : 0);
    if (code != 0) {
      exit_code = code;
      break;
    }
  }

  run.elapsed_s = round_to(elapsed, 100);
  run.max_time_s = o.max_time_s;
  run.jobs = jobs;
  run.mutator = o.byte_mutator ? "bytes" : "plist";
  run.feedback = o.feedback;
  run.interrupted = interrupted;
  run.fuzzer_exit = exit_code;
  run.executions = last.executions;
  run.exec_per_sec = elapsed > 0 ? round_to(static_cast<double>(last.executions) / elapsed, 10) : 0.0;
  run.corpus_size = last.corpus;
  run.corpus_files = detail::count_files(o.corpus_dir);
  run.corpus_dir = o.corpus_dir.string();
  run.features = last.features;
  run.findings = collect_findings(o.fuzz_dir, findings_dir, finding_times, elapsed, o.known_keys);
  if (o.max_findings > 0) {
    run.max_findings = o.max_findings;
    run.stopped_at_max_findings = stop_for == "max-findings";
  }
  run.known_file = o.known_file;
  run.devices_broken = devices_broken;
  // A crash of the fuzzer without a reproducer is a crash of the harness itself: a finding
  // against mdmconform, kept as libFuzzer's artifact.
  std::vector<fs::path> artifacts;
  for (fs::directory_iterator it(o.fuzz_dir / "artifacts", ec), end; !ec && it != end; it.increment(ec)) {
    artifacts.push_back(it->path());
  }
  const bool harness_crash = run.findings.empty() && !interrupted && stop_for.empty() && exit_code != 0 &&
                             exit_code != 2 && exit_code != 3 && !artifacts.empty();
  if (harness_crash) {
    run.findings.push_back({fs::relative(artifacts.front(), o.fuzz_dir).string(), artifacts.front().string(),
                            "harness-crash", "", "target_fuzzer itself crashed (see fuzzer.log): a bug in mdmconform",
                            elapsed});
  }
  return run;
}

base::Result<target::TargetProfile> load_fuzz_target(const fs::path& profile_file, bool allow_remote,
                                                     std::string_view doing) {
  target::TargetProfile profile;
  // Loaders throw LoadError (their one convention); it ends here, as a value.
  try {
    profile = target::load_profile(profile_file);
  } catch (const std::exception& e) {
    return base::Result<target::TargetProfile>(CampaignError::configuration, e.what());
  }
  for (const auto& url : {profile.check_in_url, profile.server_url}) {
    auto parsed = net::parse_url(url);
    if (!allow_remote && (!parsed || !net::is_loopback_host(parsed->host))) {
      return base::Result<target::TargetProfile>(
          CampaignError::configuration,
          fmt::format("{} is not a loopback address; {} a remote server needs --allow-remote", url, doing));
    }
  }
  return profile;
}

base::Result<Reproducer> read_finding(const fs::path& path) {
  auto text = base::read_file_capped(path, kMaxFindingBytes);
  if (!text) return text.error();
  return reproducer_from_json(*text);
}

base::Result<Replay> replay_finding(const Reproducer& finding, target::TargetProfile target, bool allow_remote) {
  SessionOptions session_options;
  session_options.target = std::move(target);
  session_options.udid = finding.udid;
  session_options.user_id = finding.user_id;
  // A minimised finding fired alone on a fresh device: it is replayed on one.
  emulator::IdentitySource ids(static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  if (finding.minimised) {
    session_options.udid = ids.uuid();
    session_options.user_id = ids.uuid();
  }
  session_options.allow_remote = allow_remote;
  session_options.probe_every = 1;
  auto opened = Session::open(session_options);
  if (!opened) return base::Result<Replay>(CampaignError::unreachable, opened.error().message);
  auto session = std::move(opened).value();
  Replay replay;
  for (const auto& input : finding.history) {
    replay.history.push_back(
        {input.size(), session->send(retarget_input(input, {finding.udid, finding.user_id},
                                                    {session_options.udid, session_options.user_id}))});
  }
  // The same bytes and headers, to the same endpoint of this target; the Mdm-Signature is made
  // anew, by this session's device identity.
  net::Request request = finding.request;
  request.body =
      retarget_input(request.body, {finding.udid, finding.user_id}, {session_options.udid, session_options.user_id});
  request.url =
      finding.endpoint == "check_in" ? session_options.target.check_in_url : session_options.target.server_url;
  replay.outcome = session->send_request(request, request.body);
  return replay;
}

}  // namespace mdmc::fuzz
