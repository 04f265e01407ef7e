#include "harness/cli/fuzz_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include "harness/cli/suite.hpp"
#include "harness/fuzz/session.hpp"
#include "harness/pki/pki.hpp"
#include "harness/report/html.hpp"
#include "harness/report/report.hpp"
#include "harness/server/reference_server.hpp"

namespace mdmc::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Bounds on what the parent keeps of the fuzzer's output.
constexpr std::size_t kMaxLineBytes = 4096;
constexpr std::size_t kMaxTimelinePoints = 2000;
// After SIGINT, libFuzzer prints its statistics and exits; past this it is killed.
constexpr auto kStopGrace = std::chrono::seconds(15);

// A finding holds at most a 64 KiB answer and 4 MiB of history, base64'd; anything far larger
// (or endless, like /dev/zero) is not one, and reading stops there.
constexpr std::size_t kMaxReadBytes = 64 * 1024 * 1024;

// The file's bytes, or nothing when it cannot be read or holds more than kMaxReadBytes.
std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > kMaxReadBytes) return std::nullopt;
  }
  return out;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
}

fs::path executable_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// The built-in reference server, and a profile on disk that a child process can load: the
// reference profile with the port filled in and the run's test CA written beside it.
struct BuiltinTarget {
  std::unique_ptr<server::ReferenceServer> server;
  fs::path profile;
};

std::optional<BuiltinTarget> start_builtin(const fs::path& specs_dir, server::Fault fault, server::SeededBug bug,
                                           const fs::path& dir, std::string* error) {
  auto reference = specs_dir / "targets" / "reference.yaml";
  auto ca = pki::create_test_ca("mdmconform reference CA");
  if (!ca) {
    *error = "could not create the test CA: " + ca.error();
    return std::nullopt;
  }
  auto server_identity = pki::issue_server_identity(*ca, {"127.0.0.1", "localhost"});
  if (!server_identity) {
    *error = "could not issue the server certificate: " + server_identity.error();
    return std::nullopt;
  }
  scenario::TargetProfile policy;
  try {
    policy = scenario::load_profile(reference, scenario::BuiltinTarget{1, *ca});
  } catch (const std::exception& e) {
    *error = e.what();
    return std::nullopt;
  }
  server::Config config;
  config.fault = fault;
  config.seeded_bug = bug;
  config.identity_mode = policy.identity.mode;
  config.client_ca_pem = ca->cert_pem;
  config.managed_network_users.insert(policy.managed_network_users.begin(), policy.managed_network_users.end());
  net::ServerTls tls{server_identity->cert_pem + ca->cert_pem, server_identity->key_pem, ca->cert_pem, false};
  BuiltinTarget out;
  out.server = std::make_unique<server::ReferenceServer>(config, tls);
  auto port = out.server->listen("127.0.0.1", 0, error);
  if (port == 0) return std::nullopt;
  out.server->start();

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!pki::write_identity(*ca, dir / "ca.crt", dir / "ca.key", error)) return std::nullopt;
  std::string text = read_file(reference).value_or("");
  replace_all(text, "${builtin_port}", std::to_string(port));
  replace_all(text, "ca: builtin", "ca: ca.crt");
  replace_all(text, "issuer: builtin", "issuer: {cert: ca.crt, key: ca.key}");
  out.profile = dir / "profile.yaml";
  Json builtin = {{"fault", server::fault_info(fault).name}, {"seeded_bug", server::seeded_bug_info(bug).name}};
  if (!report::write_file_atomically(out.profile, text, error) ||
      !report::write_file_atomically(dir / "builtin.json", builtin.dump(2) + "\n", error)) {
    return std::nullopt;
  }
  return out;
}

// One libFuzzer status line: "#4096 pulse cov: 310 ft: 900 corp: 57/6Kb lim: 4096 exec/s: 1365 rss: 60Mb",
// or in fork mode "#8000: cov: 310 ft: 900 corp: 57 exec/s 1365 oom/timeout/crash: 0/0/0 time: 6s".
struct StatusLine {
  std::uint64_t executions = 0;
  double exec_per_sec = 0;
  std::uint64_t corpus = 0;
  std::uint64_t features = 0;
};

std::optional<StatusLine> parse_status(std::string_view line) {
  if (line.size() < 2 || line[0] != '#' || line.find("cov:") == std::string_view::npos) return std::nullopt;
  StatusLine s;
  s.executions = std::strtoull(std::string(line.substr(1, 20)).c_str(), nullptr, 10);
  auto number_after = [&](std::string_view key) -> double {
    auto at = line.find(key);
    if (at == std::string_view::npos) return 0;
    at += key.size();
    while (at < line.size() && (line[at] == ':' || line[at] == ' ')) ++at;
    return std::strtod(std::string(line.substr(at, 24)).c_str(), nullptr);
  };
  s.exec_per_sec = number_after("exec/s");
  s.corpus = static_cast<std::uint64_t>(number_after("corp"));
  s.features = static_cast<std::uint64_t>(number_after("ft"));
  return s;
}

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

struct Child {
  pid_t pid = -1;
  int output = -1;  // the read end of the pipe that holds its stdout and stderr
};

// Starts the fuzzer in its own process group, so that a stop reaches its fork-mode jobs too.
// Everything the child needs is built before fork(): the parent has threads (the built-in
// server), and only async-signal-safe calls may follow fork().
std::optional<Child> spawn(const std::vector<std::string>& args, const std::vector<std::string>& env_add,
                           const fs::path& cwd, std::string* error) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("MDMC_FUZZ_")) continue;  // ours replace any inherited ones
    env_strings.emplace_back(entry);
  }
  env_strings.insert(env_strings.end(), env_add.begin(), env_add.end());
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::string cwd_string = cwd.string();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return std::nullopt;
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    if (devnull >= 0) close(devnull);
    return std::nullopt;
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    if (chdir(cwd_string.c_str()) != 0) _exit(127);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: whichever runs first, the group exists before any kill
  close(pipe_fds[1]);
  if (devnull >= 0) close(devnull);
  return Child{pid, pipe_fds[0]};
}

struct FindingRecord {
  fs::path file;
  std::string oracle;
  std::string endpoint;
  std::string summary;
  double t_s = 0;
};

std::vector<FindingRecord> collect_findings(const fs::path& dir, const std::map<std::string, double>& seen_at,
                                            double fallback_t) {
  std::vector<FindingRecord> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    std::string error;
    auto reproducer = fuzz::reproducer_from_json(read_file(it->path()).value_or(""), &error);
    if (!reproducer) continue;
    FindingRecord f;
    f.file = it->path();
    f.oracle = reproducer->oracle;
    f.endpoint = reproducer->endpoint;
    f.summary = reproducer->detail;
    auto at = seen_at.find(it->path().filename().string());
    f.t_s = at == seen_at.end() ? fallback_t : at->second;
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.t_s < b.t_s; });
  return out;
}

}  // namespace

std::optional<fs::path> find_target_fuzzer(const std::optional<fs::path>& given, std::string* tried) {
  std::vector<fs::path> candidates;
  if (given) {
    candidates.push_back(*given);
  } else {
    if (const char* env = std::getenv("MDMC_TARGET_FUZZER")) candidates.emplace_back(env);
    auto exe = executable_dir();
    if (!exe.empty()) {
      candidates.push_back(exe / "fuzzers" / "target_fuzzer");                   // a fuzz build's own tree
      candidates.push_back(exe.parent_path() / "fuzz" / "fuzzers" / "target_fuzzer");  // build/dev -> build/fuzz
    }
    candidates.push_back(default_specs_dir().parent_path() / "build" / "fuzz" / "fuzzers" / "target_fuzzer");
  }
  tried->clear();
  for (const auto& c : candidates) {
    if (access(c.c_str(), X_OK) == 0 && fs::is_regular_file(c)) return fs::absolute(c);
    *tried += (tried->empty() ? "" : ", ") + c.string();
  }
  return std::nullopt;
}

int run_fuzz(const FuzzOptions& options) {
  std::string tried;
  auto fuzzer = find_target_fuzzer(options.fuzzer, &tried);
  if (!fuzzer) {
    fmt::print(stderr,
               "mdmconform: the network fuzzer is not built (looked for {}); build it with: scripts/build.sh fuzz --target "
               "target_fuzzer\n",
               tried);
    return 2;
  }
  const fs::path fuzz_dir = fs::absolute(options.out_dir / "fuzz");
  const fs::path findings_dir = fuzz_dir / "findings";
  const fs::path corpus_dir = fs::absolute(options.corpus_dir.value_or(fuzz_dir / "corpus"));
  std::error_code ec;
  for (const auto& d : {fuzz_dir, findings_dir, corpus_dir, fuzz_dir / "artifacts"}) {
    fs::create_directories(d, ec);
    if (ec) {
      fmt::print(stderr, "mdmconform: cannot create {}: {}\n", d.string(), ec.message());
      return 2;
    }
  }

  std::optional<BuiltinTarget> builtin;
  fs::path profile_file;
  std::string error;
  if (options.target) {
    profile_file = fs::absolute(*options.target);
  } else {
    builtin = start_builtin(options.specs_dir, options.builtin_fault, options.seeded_bug, fuzz_dir / "target", &error);
    if (!builtin) {
      fmt::print(stderr, "mdmconform: the built-in reference server: {}\n", error);
      return 2;
    }
    profile_file = builtin->profile;
  }
  scenario::TargetProfile profile;
  try {
    profile = scenario::load_profile(profile_file);
  } catch (const std::exception& e) {
    fmt::print(stderr, "mdmconform: {}\n", e.what());
    return 2;
  }
  for (const auto& url : {profile.check_in_url, profile.server_url}) {
    auto parsed = net::parse_url(url);
    if (!options.allow_remote && (!parsed || !net::is_loopback_host(parsed->host))) {
      fmt::print(stderr, "mdmconform: {} is not a loopback address; fuzzing a remote server needs --allow-remote\n", url);
      return 2;
    }
  }
  if (auto unreachable = scenario::probe_reachable(profile)) {
    fmt::print(stderr, "mdmconform: target unreachable: {}\n", *unreachable);
    return 3;
  }

  // One input may take every deadline of the exchange and of the liveness probe after it.
  auto per_exchange = profile.limits.connect_timeout + profile.limits.tls_handshake_timeout +
                      profile.limits.write_timeout + profile.limits.header_timeout + profile.limits.body_timeout;
  auto input_timeout_s = std::chrono::duration_cast<std::chrono::seconds>(per_exchange * 8).count() + 10;
  const auto max_time_s = std::max<long>(1, std::lround(options.max_time_s));
  std::vector<std::string> args = {fuzzer->string(), corpus_dir.string()};
  // The seeds go into an empty corpus folder, so that a kept corpus stands on its own; libFuzzer
  // adds what it finds there.
  auto seeds = options.specs_dir.parent_path() / "corpus" / "target_fuzzer";
  if (fs::is_directory(seeds) && count_files(corpus_dir) == 0) {
    // recursive: without it (and with any other option) std::filesystem::copy copies none of
    // a directory's files.
    fs::copy(seeds, corpus_dir, fs::copy_options::skip_existing | fs::copy_options::recursive, ec);
  }
  auto dict = options.specs_dir.parent_path() / "fuzzers" / "target_fuzzer.dict";
  if (fs::is_regular_file(dict)) args.push_back("-dict=" + fs::absolute(dict).string());
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
  args.push_back("-artifact_prefix=" + (fuzz_dir / "artifacts").string() + "/");
  if (options.seed) args.push_back(fmt::format("-seed={}", options.seed));
  if (options.jobs > 1) args.push_back(fmt::format("-fork={}", options.jobs));
  std::vector<std::string> env = {
      "MDMC_FUZZ_TARGET=" + profile_file.string(),
      "MDMC_FUZZ_FINDINGS=" + findings_dir.string(),
      fmt::format("MDMC_FUZZ_RATE={}", options.rate),
      std::string("MDMC_FUZZ_ALLOW_REMOTE=") + (options.allow_remote ? "1" : "0"),
      std::string("MDMC_FUZZ_FEEDBACK=") + (options.feedback ? "1" : "0"),
      std::string("MDMC_FUZZ_MUTATOR=") + (options.byte_mutator ? "bytes" : "plist"),
      fmt::format("MDMC_FUZZ_DISABLE={}", fmt::join(options.disabled_oracles, ",")),
  };
  // ASan's quarantine would hold 256 MB of freed memory; a long run needs none of it.
  if (!std::getenv("ASAN_OPTIONS")) env.push_back("ASAN_OPTIONS=quarantine_size_mb=16:detect_leaks=0");

  const auto started_at = report::now_rfc3339();
  const auto start = Clock::now();
  auto child = spawn(args, env, fuzz_dir, &error);
  if (!child) {
    fmt::print(stderr, "mdmconform: cannot start {}: {}\n", fuzzer->string(), error);
    return 2;
  }
  if (!options.quiet) {
    fmt::print("fuzz: {} against {} for {} s{}; output in {}\n", fuzzer->filename().string(), profile.check_in_url,
               max_time_s, options.jobs > 1 ? fmt::format(" with {} jobs", options.jobs) : "", fuzz_dir.string());
    std::fflush(stdout);
  }

  std::ofstream log(fuzz_dir / "fuzzer.log", std::ios::binary);
  Json timeline = Json::array();
  StatusLine last;
  std::map<std::string, double> finding_times;  // reproducer file name -> seconds from start
  std::vector<std::string> tail;                // the last lines, for an error message
  std::string pending;
  bool interrupted = false;
  std::optional<Clock::time_point> kill_at;
  auto hard_stop = start + std::chrono::seconds(max_time_s + 60);
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  double last_print = -10;
  bool tty = isatty(STDOUT_FILENO);
  auto handle_line = [&](std::string line) {
    if (line.size() > kMaxLineBytes) line.resize(kMaxLineBytes);
    log << line << '\n';
    tail.push_back(line);
    if (tail.size() > 20) tail.erase(tail.begin());
    if (auto s = parse_status(line)) {
      last = *s;
      timeline.push_back({{"t_s", std::round(seconds() * 10) / 10}, {"executions", s->executions},
                          {"exec_per_sec", s->exec_per_sec}, {"corpus_size", s->corpus}, {"features", s->features}});
      if (timeline.size() > kMaxTimelinePoints) {
        Json thinned = Json::array();
        for (std::size_t i = 0; i < timeline.size(); i += 2) thinned.push_back(timeline[i]);
        timeline = std::move(thinned);
      }
      if (!options.quiet && (tty || seconds() - last_print >= 10)) {
        last_print = seconds();
        fmt::print("{}fuzz: {:>5.0f} s  {:>9} runs  {:>6.0f} exec/s  corpus {:>5}  features {:>5}{}", tty ? "\r" : "",
                   seconds(), s->executions, s->exec_per_sec, s->corpus, s->features, tty ? "" : "\n");
        std::fflush(stdout);
      }
    }
    if (auto at = line.find("target_fuzzer: reproducer "); at != std::string::npos) {
      finding_times[fs::path(line.substr(at + 26)).filename().string()] = seconds();
    }
    if (line.find("target_fuzzer: FINDING") != std::string::npos || line.find("ERROR: AddressSanitizer") != std::string::npos) {
      if (!options.quiet) fmt::print("{}{}\n", tty ? "\n" : "", line);
    }
  };

  int status = 0;
  bool reaped = false;
  bool eof = false;
  while (!reaped) {
    if (!eof) {
      pollfd pfd{child->output, POLLIN, 0};
      int ready = poll(&pfd, 1, 200);
      if (ready > 0) {
        char buf[8192];
        ssize_t n = read(child->output, buf, sizeof buf);
        if (n <= 0) {
          eof = true;
        } else {
          pending.append(buf, static_cast<std::size_t>(n));
          for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
            handle_line(pending.substr(0, nl));
            pending.erase(0, nl + 1);
          }
          if (pending.size() > kMaxLineBytes) {
            handle_line(pending);
            pending.clear();
          }
        }
      }
    } else {
      usleep(100 * 1000);
    }
    pid_t done = waitpid(child->pid, &status, WNOHANG);
    if (done == child->pid) reaped = true;
    bool stop_now = (options.stop && options.stop->load()) || Clock::now() > hard_stop;
    if (stop_now && !kill_at) {
      interrupted = options.stop && options.stop->load();
      kill(-child->pid, SIGINT);
      kill_at = Clock::now() + kStopGrace;
    } else if (kill_at && Clock::now() > *kill_at) {
      kill(-child->pid, SIGKILL);
    }
  }
  // Fork-mode jobs may outlive the parent fuzzer: the whole group goes.
  kill(-child->pid, SIGKILL);
  // What is left in the pipe after the exit (the final statistics).
  for (int rounds = 0; rounds < 64; ++rounds) {
    pollfd pfd{child->output, POLLIN, 0};
    if (poll(&pfd, 1, 50) <= 0) break;
    char buf[8192];
    ssize_t n = read(child->output, buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      handle_line(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) handle_line(pending);
  close(child->output);
  log.close();
  if (tty && !options.quiet) fmt::print("\n");
  const double elapsed = seconds();
  int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);

  auto findings = collect_findings(findings_dir, finding_times, elapsed);
  // A crash of the fuzzer without a reproducer is a crash of the harness itself: a finding
  // against mdmconform, kept as libFuzzer's artifact.
  std::vector<fs::path> artifacts;
  for (fs::directory_iterator it(fuzz_dir / "artifacts", ec), end; !ec && it != end; it.increment(ec)) artifacts.push_back(it->path());
  Json summary;
  summary["kind"] = "mdmconform-fuzz";
  summary["harness_version"] = MDMC_VERSION;
  summary["target_name"] = profile.name;
  summary["target_url"] = profile.check_in_url;
  summary["target_file"] = profile_file.string();
  if (builtin) {
    summary["builtin_fault"] = server::fault_info(options.builtin_fault).name;
    summary["seeded_bug"] = server::seeded_bug_info(options.seeded_bug).name;
  }
  summary["started_at"] = started_at;
  summary["elapsed_s"] = std::round(elapsed * 100) / 100;
  summary["max_time_s"] = options.max_time_s;
  summary["jobs"] = options.jobs;
  summary["mutator"] = options.byte_mutator ? "bytes" : "plist";
  summary["feedback"] = options.feedback;
  summary["interrupted"] = interrupted;
  summary["fuzzer_exit"] = exit_code;
  summary["executions"] = last.executions;
  summary["exec_per_sec"] = elapsed > 0 ? std::round(last.executions / elapsed * 10) / 10 : 0.0;
  summary["corpus_size"] = last.corpus;  // what libFuzzer keeps: the inputs that brought something new
  summary["corpus_files"] = count_files(corpus_dir);
  summary["corpus_dir"] = corpus_dir.string();
  summary["features"] = last.features;
  summary["timeline"] = timeline;
  Json found = Json::array();
  for (const auto& f : findings) {
    found.push_back({{"file", fs::relative(f.file, fuzz_dir).string()}, {"path", f.file.string()}, {"oracle", f.oracle},
                     {"endpoint", f.endpoint}, {"summary", f.summary}, {"t_s", std::round(f.t_s * 10) / 10}});
  }
  bool harness_crash = findings.empty() && !interrupted && exit_code != 0 && exit_code != 2 && exit_code != 3 && !artifacts.empty();
  if (harness_crash) {
    found.push_back({{"file", fs::relative(artifacts.front(), fuzz_dir).string()}, {"path", artifacts.front().string()},
                     {"oracle", "harness-crash"}, {"endpoint", ""},
                     {"summary", "target_fuzzer itself crashed (see fuzzer.log): a bug in mdmconform"}, {"t_s", elapsed}});
  }
  summary["findings"] = found;
  if (!report::write_file_atomically(fuzz_dir / "summary.json", summary.dump(2) + "\n", &error) ||
      !report::write_file_atomically(fuzz_dir / "summary.md", report::render_fuzz_markdown(summary), &error) ||
      !report::write_file_atomically(fuzz_dir / "report.html", report::render_fuzz_html(summary), &error)) {
    fmt::print(stderr, "mdmconform: could not write the fuzz summary: {}\n", error);
    return 2;
  }
  if (!options.quiet) {
    fmt::print("fuzz: {} runs in {:.0f} s ({:.0f}/s), corpus {} in {}, {} finding(s){}\n", last.executions, elapsed,
               summary["exec_per_sec"].get<double>(), summary["corpus_size"].get<std::size_t>(), corpus_dir.string(),
               found.size(), interrupted ? ", interrupted" : "");
    for (const auto& f : found) {
      fmt::print("  {}: {}\n    mdmconform replay {}\n", f["oracle"].get<std::string>(), f["summary"].get<std::string>(),
                 f["path"].get<std::string>());
    }
    fmt::print("summary: {}/report.html (and summary.json, summary.md, fuzzer.log)\n", fuzz_dir.string());
  }
  if (!found.empty() || interrupted) return 1;
  if (exit_code == 2 || exit_code == 3) {
    for (const auto& line : tail) {
      if (line.starts_with("target_fuzzer:")) fmt::print(stderr, "mdmconform: {}\n", line);
    }
    return exit_code;
  }
  if (exit_code != 0) {
    fmt::print(stderr, "mdmconform: target_fuzzer exited with {} (see {}/fuzzer.log)\n", exit_code, fuzz_dir.string());
    return 1;
  }
  return 0;
}

namespace {

void print_exchange(const net::Exchange& exchange) {
  const auto& request = exchange.request;
  fmt::print("> {} {}\n", request.method, request.url);
  for (const auto& h : request.headers) {
    fmt::print("> {}: {}\n", h.name, h.name == "Mdm-Signature" ? h.value.substr(0, 40) + "..." : h.value);
  }
  fmt::print("> ({} bytes)\n{}\n", request.body.size(), fuzz::describe_body(request.body));
  if (!exchange.response) {
    fmt::print("< no response: {} ({}) after {} ms\n", net::transport_error_name(exchange.error), exchange.error_detail,
               exchange.elapsed.count() / 1000);
    return;
  }
  const auto& response = *exchange.response;
  fmt::print("< {} {} after {} ms\n", response.status, response.reason, exchange.elapsed.count() / 1000);
  for (const auto& h : response.headers) fmt::print("< {}: {}\n", h.name, h.value);
  fmt::print("< ({} bytes)\n{}\n", response.body.size(), fuzz::describe_body(response.body));
}

}  // namespace

int run_replay(const ReplayOptions& options) {
  std::string error;
  auto text = read_file(options.finding);
  if (!text || text->empty()) {
    fmt::print(stderr, "mdmconform: cannot read {}, or it is larger than {} MiB\n", options.finding.string(),
               kMaxReadBytes >> 20);
    return 2;
  }
  auto reproducer = fuzz::reproducer_from_json(*text, &error);
  if (!reproducer) {
    fmt::print(stderr, "mdmconform: {}: {}\n", options.finding.string(), error);
    return 2;
  }
  // The target: the one given, else the recorded profile; a finding made against the built-in
  // server gets a fresh one, with the same fault mode and seeded bug.
  std::optional<BuiltinTarget> builtin;
  fs::path profile_file = options.target ? *options.target : fs::path(reproducer->target_file);
  auto builtin_record = fs::path(reproducer->target_file).parent_path() / "builtin.json";
  if (!options.target && fs::is_regular_file(builtin_record)) {
    auto record = Json::parse(read_file(builtin_record).value_or(""), nullptr, false);
    auto fault = server::fault_from_name(record.is_object() ? record.value("fault", "none") : "none");
    auto bug = server::seeded_bug_from_name(record.is_object() ? record.value("seeded_bug", "none") : "none");
    char dir_template[] = "/tmp/mdmconform-replay-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    if (!dir || !fault || !bug) {
      fmt::print(stderr, "mdmconform: cannot set up the built-in server the finding was made against\n");
      return 2;
    }
    builtin = start_builtin(options.specs_dir, *fault, *bug, dir, &error);
    if (!builtin) {
      fmt::print(stderr, "mdmconform: the built-in reference server: {}\n", error);
      return 2;
    }
    profile_file = builtin->profile;
    fmt::print("replay: against a fresh built-in reference server (fault {}, seeded bug {})\n", server::fault_info(*fault).name,
               server::seeded_bug_info(*bug).name);
  }
  fuzz::SessionOptions session_options;
  try {
    session_options.target = scenario::load_profile(profile_file);
  } catch (const std::exception& e) {
    fmt::print(stderr, "mdmconform: {}\n", e.what());
    return 2;
  }
  session_options.udid = reproducer->udid;
  session_options.user_id = reproducer->user_id;
  session_options.allow_remote = options.allow_remote;
  session_options.probe_every = 1;
  for (const auto& url : {session_options.target.check_in_url, session_options.target.server_url}) {
    auto parsed = net::parse_url(url);
    if (!options.allow_remote && (!parsed || !net::is_loopback_host(parsed->host))) {
      fmt::print(stderr, "mdmconform: {} is not a loopback address; replaying against a remote server needs --allow-remote\n", url);
      return 2;
    }
  }
  auto session = fuzz::Session::open(session_options, &error);
  if (!session) {
    fmt::print(stderr, "mdmconform: {}\n", error);
    return 3;
  }
  fmt::print("replay: {} ({}), found {} against {}\n", reproducer->oracle, reproducer->detail, reproducer->found_at,
             reproducer->target_name);
  for (std::size_t i = 0; i < reproducer->history.size(); ++i) {
    auto outcome = session->send(reproducer->history[i]);
    fmt::print("history {}/{}: {} bytes -> {}\n", i + 1, reproducer->history.size(), reproducer->history[i].size(),
               outcome.exchange.ok() ? std::to_string(outcome.exchange.response->status)
                                     : std::string(net::transport_error_name(outcome.exchange.error)));
    if (outcome.oracle != fuzz::Oracle::none) {
      fmt::print("history {}: {} fired already: {}\n", i + 1, fuzz::oracle_name(outcome.oracle), outcome.detail);
    }
  }
  // The same bytes and headers, to the same endpoint of this target; the Mdm-Signature is made
  // anew, by this session's device identity.
  net::Request request = reproducer->request;
  request.url = reproducer->endpoint == "check_in" ? session_options.target.check_in_url : session_options.target.server_url;
  auto outcome = session->send_request(request, request.body);
  print_exchange(outcome.exchange);
  if (outcome.probe) {
    fmt::print("liveness probe:\n");
    print_exchange(*outcome.probe);
  }
  if (outcome.oracle == fuzz::Oracle::none) {
    fmt::print("replay: not reproduced: no oracle fired\n");
    return 0;
  }
  bool same = fuzz::oracle_name(outcome.oracle) == reproducer->oracle;
  fmt::print("replay: {}: {}: {}\n", same ? "reproduced" : "a different oracle fired", fuzz::oracle_name(outcome.oracle),
             outcome.detail);
  return 1;
}

namespace {

// SIGINT or SIGTERM during `fuzz`: the fuzzer is stopped and what it found is kept.
std::atomic<bool> g_fuzz_stop{false};

extern "C" void on_fuzz_stop(int signal) {
  g_fuzz_stop.store(true);
  std::signal(signal, SIG_DFL);  // a second one ends the process the default way
}

std::string run_folder(const std::string& label) {
  scenario::RunResult run;
  run.started_at = report::now_rfc3339();
  run.target_name = label;
  return report::run_folder_name(run);
}

}  // namespace

FuzzCommands::FuzzCommands(CLI::App& app) {
  fuzz_ = app.add_subcommand("fuzz", "fuzz a target's check-in and command endpoints (the built-in reference server unless --target)");
  fuzz_->add_option("--target", fuzz_options_.target, "target profile (YAML); without it, the built-in reference server");
  fuzz_->add_option("--max-time", fuzz_options_.max_time_s, "seconds to fuzz")->capture_default_str()->check(CLI::Range(1.0, 7.0 * 24 * 3600));
  fuzz_->add_option("--jobs", fuzz_options_.jobs, "fuzzing processes at once (libFuzzer fork mode above 1)")
      ->capture_default_str()->check(CLI::Range(1, 64));
  fuzz_->add_option("--rate", fuzz_options_.rate, "requests per second at most, per job (0: no cap)")->check(CLI::Range(0.0, 1e6));
  fuzz_->add_flag("--allow-remote", fuzz_options_.allow_remote, "allow a target that is not on a loopback address");
  fuzz_->add_option("--out", out_, "run folder (default reports/<time>-fuzz); output goes to <out>/fuzz/");
  fuzz_->add_option("--corpus", fuzz_options_.corpus_dir, "corpus folder kept between runs (default <out>/fuzz/corpus)");
  fuzz_->add_option("--fuzzer", fuzz_options_.fuzzer, "the target_fuzzer binary (default: build/fuzz/fuzzers/target_fuzzer)");
  fuzz_->add_option("--fault", fault_, "fault mode of the built-in server (see `list --faults`)");
  fuzz_->add_option("--seeded-bug", seeded_bug_, "seeded bug of the built-in server (see `list --seeded-bugs`)");
  fuzz_->add_option("--mutator", mutator_, "plist (structure-aware, default) or bytes (libFuzzer's byte mutations only)")
      ->check(CLI::IsMember({"plist", "bytes"}));
  fuzz_->add_flag("--no-feedback", no_feedback_, "feed nothing of the target's answers back as coverage");
  fuzz_->add_option("--seed", fuzz_options_.seed, "libFuzzer's random seed (default: its own)");
  fuzz_->add_option("--disable-oracle", fuzz_options_.disabled_oracles,
                    "switch an oracle off (repeatable): ROB-MALFORMED, ROB-UNKNOWN-TYPE, CMD-SHAPE, status-5xx, transport, liveness");
  fuzz_->add_flag("--quiet", fuzz_options_.quiet, "print only the result");

  replay_ = app.add_subcommand("replay", "re-send a fuzzing finding and show the exchange, decoded");
  replay_->add_option("FILE", replay_options_.finding, "a finding (findings/finding-*.json)")->required();
  replay_->add_option("--target", replay_options_.target, "target profile (default: the one the finding records)");
  replay_->add_flag("--allow-remote", replay_options_.allow_remote, "allow a target that is not on a loopback address");
}

std::optional<int> FuzzCommands::dispatch(const std::filesystem::path& specs_dir) {
  if (*replay_) {
    replay_options_.specs_dir = specs_dir;
    return run_replay(replay_options_);
  }
  if (!*fuzz_) return std::nullopt;
  auto fault = server::fault_from_name(fault_);
  auto bug = server::seeded_bug_from_name(seeded_bug_);
  if (!fault || !bug) {
    fmt::print(stderr, "mdmconform: unknown {} '{}' (see `mdmconform list --{}`)\n", !fault ? "fault mode" : "seeded bug",
               !fault ? fault_ : seeded_bug_, !fault ? "faults" : "seeded-bugs");
    return 2;
  }
  if (fuzz_options_.target && (*fault != server::Fault::none || *bug != server::SeededBug::none)) {
    fmt::print(stderr, "mdmconform: --fault and --seeded-bug apply to the built-in server, not to --target\n");
    return 2;
  }
  for (const auto& name : fuzz_options_.disabled_oracles) {
    if (!fuzz::oracle_from_name(name)) {
      fmt::print(stderr, "mdmconform: unknown oracle '{}'\n", name);
      return 2;
    }
  }
  fuzz_options_.builtin_fault = *fault;
  fuzz_options_.seeded_bug = *bug;
  fuzz_options_.byte_mutator = mutator_ == "bytes";
  fuzz_options_.feedback = !no_feedback_;
  fuzz_options_.specs_dir = specs_dir;
  std::string label = fuzz_options_.target ? fuzz_options_.target->stem().string() : "reference";
  fuzz_options_.out_dir = out_ ? *out_ : std::filesystem::path("reports") / run_folder(label + "-fuzz");
  fuzz_options_.stop = &g_fuzz_stop;
  std::signal(SIGINT, on_fuzz_stop);
  std::signal(SIGTERM, on_fuzz_stop);
  return run_fuzz(fuzz_options_);
}

}  // namespace mdmc::cli
