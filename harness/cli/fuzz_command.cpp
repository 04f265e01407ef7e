#include "harness/cli/fuzz_command.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/cli/builtin.hpp"
#include "harness/cli/suite.hpp"
#include "harness/fuzz/campaign.hpp"
#include "harness/report/html.hpp"
#include "harness/report/report.hpp"

namespace mdmc::cli {
namespace {

namespace fs = std::filesystem;

fs::path executable_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// The exit code of a campaign that could not run: 3 when the target could not be reached, else 2.
int exit_code_of(const base::Error& error) { return error.code == fuzz::CampaignError::unreachable ? 3 : 2; }

}  // namespace

std::optional<fs::path> find_target_fuzzer(const std::optional<fs::path>& given, std::string* tried) {
  std::vector<fs::path> candidates;
  if (given) {
    candidates.push_back(*given);
  } else {
    if (const char* env = std::getenv("MDMC_TARGET_FUZZER")) candidates.emplace_back(env);
    // The throughput build (coverage only) before the sanitizer build: against a target the
    // fuzzer's rate is what counts, and ASan's checks are the in-process fuzzers' job.
    auto exe = executable_dir();
    if (!exe.empty()) {
      candidates.push_back(exe / "fuzzers" / "target_fuzzer");  // a fuzz build's own tree
      for (const char* preset : {"fuzz-fast", "fuzz"})
        candidates.push_back(exe.parent_path() / preset / "fuzzers" / "target_fuzzer");  // build/dev -> build/<preset>
    }
    for (const char* preset : {"fuzz-fast", "fuzz"})
      candidates.push_back(default_specs_dir().parent_path() / "build" / preset / "fuzzers" / "target_fuzzer");
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
               "mdmconform: the network fuzzer is not built (looked for {}); build it with: scripts/build.sh fuzz-fast "
               "--target target_fuzzer\n",
               tried);
    return 2;
  }
  const fs::path fuzz_dir = fs::absolute(options.out_dir / "fuzz");
  fuzz::CampaignOptions campaign;
  campaign.fuzzer = *fuzzer;
  campaign.fuzz_dir = fuzz_dir;
  campaign.corpus_dir = fs::absolute(options.corpus_dir.value_or(fuzz_dir / "corpus"));
  campaign.seeds_dir = options.specs_dir.parent_path() / "corpus" / "target_fuzzer";
  campaign.dictionary = options.specs_dir.parent_path() / "fuzzers" / "target_fuzzer.dict";
  campaign.max_time_s = options.max_time_s;
  campaign.jobs = options.jobs;
  campaign.rate = options.rate;
  campaign.allow_remote = options.allow_remote;
  campaign.byte_mutator = options.byte_mutator;
  campaign.feedback = options.feedback;
  campaign.seed = options.seed;
  campaign.disabled_oracles = options.disabled_oracles;
  campaign.stop = options.stop;
  campaign.max_findings = options.max_findings;
  campaign.minimise = options.minimise;
  if (options.known) {
    auto keys = fuzz::read_known_keys(*options.known);
    if (!keys) {
      fmt::print(stderr, "mdmconform: {}\n", keys.message());
      return 2;
    }
    campaign.known_keys = *std::move(keys);
    campaign.known_file = fs::absolute(*options.known).string();
  }

  // The built-in server serves until the campaign is over; target_fuzzer loads the profile
  // written beside the CA.
  std::optional<Builtin> builtin;
  if (options.target) {
    campaign.profile_file = fs::absolute(*options.target);
  } else {
    BuiltinOptions builtin_options{options.specs_dir, options.builtin_fault, options.seeded_bug, std::nullopt};
    // The fuzzer issues its devices identities from the test CA: no SCEP companion; and it
    // watches no pushes: no fake APNs.
    builtin_options.scep = false;
    builtin_options.push = false;
    auto started = start_builtin(builtin_options);
    auto written = started ? write_builtin_profile(*started, builtin_options, fuzz_dir / "target")
                           : base::Result<fs::path>(started.error());
    if (!written) {
      fmt::print(stderr, "mdmconform: the built-in reference server: {}\n", written.message());
      return 2;
    }
    builtin = std::move(started).value();
    campaign.profile_file = *written;
    campaign.builtin_fault = std::string(server::fault_info(options.builtin_fault).name);
    campaign.seeded_bug = std::string(server::seeded_bug_info(options.seeded_bug).name);
  }

  const bool tty = isatty(STDOUT_FILENO);
  double last_print = -10;
  fuzz::CampaignObserver observer;
  observer.on_start = [&](const std::string& url, long seconds) {
    if (options.quiet) return;
    fmt::print("fuzz: {} against {} for {} s{}; output in {}\n", fuzzer->filename().string(), url, seconds,
               options.jobs > 1 ? fmt::format(" with {} jobs", options.jobs) : "", fuzz_dir.string());
    std::fflush(stdout);
  };
  observer.on_sample = [&](double seconds, const fuzz::FuzzSample& s) {
    // On a terminal one line redrawn; in a log a line every ten seconds.
    if (options.quiet || !(tty || seconds - last_print >= 10)) return;
    last_print = seconds;
    fmt::print("{}fuzz: {:>5.0f} s  {:>9} runs  {:>6.0f} exec/s  corpus {:>5}  features {:>5}{}", tty ? "\r" : "",
               seconds, s.executions.value_or(0), s.exec_per_sec.value_or(0), s.corpus_size.value_or(0),
               s.features.value_or(0), tty ? "" : "\n");
    std::fflush(stdout);
  };
  observer.on_notice = [&](const std::string& line) {
    if (!options.quiet) fmt::print("{}{}\n", tty ? "\n" : "", line);
  };
  fuzz::Campaign job(campaign, observer);
  auto ran = job.run();
  if (!ran) {
    fmt::print(stderr, "mdmconform: {}\n", ran.message());
    return exit_code_of(ran.error());
  }
  const fuzz::FuzzRun& run = *ran;
  if (tty && !options.quiet) fmt::print("\n");
  for (const auto& [name, text] : {std::pair{"summary.json", fuzz::fuzz_run_to_json_text(run)},
                                   std::pair{"summary.md", report::render_fuzz_markdown(run)},
                                   std::pair{"report.html", report::render_fuzz_html(run)},
                                   std::pair{"junit.xml", report::render_fuzz_junit(run)}}) {
    if (auto written = base::write_file_atomically(fuzz_dir / name, text); !written) {
      fmt::print(stderr, "mdmconform: could not write the fuzz summary: {}\n", written.message());
      return 2;
    }
  }
  const bool interrupted = run.interrupted.value_or(false);
  if (!options.quiet) {
    const auto fresh = fuzz::new_finding_count(run);
    fmt::print("fuzz: {} runs in {:.0f} s ({:.0f}/s), corpus {} in {}, {} unique finding(s){}{}\n",
               run.executions.value_or(0), job.elapsed_seconds(), run.exec_per_sec.value_or(0),
               run.corpus_size.value_or(0), run.corpus_dir, run.findings.size(),
               options.known ? fmt::format(" ({} new, {} known)", fresh, run.findings.size() - fresh) : "",
               interrupted ? ", interrupted" : "");
    for (const auto& e : run.exclusions) fmt::print("  excluded {}: {}\n", e.rule, e.reason);
    for (const auto& f : run.findings) {
      fmt::print("  {}{}: {} ({} hit(s))\n    mdmconform replay {}\n", f.known.value_or(false) ? "known " : "",
                 f.oracle, f.summary, f.hits.value_or(1), f.path);
    }
    if (!run.target_down.empty()) fmt::print("  stopped early: the target no longer answers: {}\n", run.target_down);
    if (run.stopped_at_max_findings.value_or(false))
      fmt::print("  stopped early: {} unique findings (--max-findings)\n", run.findings.size());
    fmt::print("summary: {}/report.html (and summary.json, summary.md, junit.xml, fuzzer.log)\n", fuzz_dir.string());
  }
  if (fuzz::new_finding_count(run) > 0 || interrupted) return 1;
  const int fuzzer_exit = run.fuzzer_exit.value_or(0);
  if (fuzzer_exit == 2 || fuzzer_exit == 3) {
    // target_fuzzer says why it gave up (a profile it could not load, a target it could not reach).
    for (const auto& line : job.log_tail()) {
      if (line.starts_with("target_fuzzer:")) fmt::print(stderr, "mdmconform: {}\n", line);
    }
    return fuzzer_exit;
  }
  // Stopped on purpose (--max-findings), libFuzzer exits as when interrupted: not a failure.
  if (fuzzer_exit != 0 && !run.stopped_at_max_findings.value_or(false)) {
    fmt::print(stderr, "mdmconform: target_fuzzer exited with {} (see {}/fuzzer.log)\n", fuzzer_exit,
               fuzz_dir.string());
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

namespace {

// `replay FILE --as-case DIR`: the finding as DIR/scenarios/fuzz/finding-<hash>.yaml, with
// DIR/rules.yaml and DIR/targets/ copied from the bundled specs when missing, so that
// `run --specs DIR` runs it.
int write_finding_case(const fuzz::Reproducer& finding, const ReplayOptions& options) {
  const fs::path dir = *options.as_case;
  std::string hash = options.finding.stem().string();
  if (hash.starts_with("finding-")) hash = hash.substr(8);
  const fs::path file = dir / "scenarios" / "fuzz" / ("finding-" + hash + ".yaml");
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  // A specs folder of its own: the rule catalog and the target profiles (the built-in server's
  // among them) come from the bundled specs when it has none.
  if (!ec && !fs::exists(dir / "rules.yaml")) fs::copy_file(options.specs_dir / "rules.yaml", dir / "rules.yaml", ec);
  if (!ec && !fs::exists(dir / "targets"))
    fs::copy(options.specs_dir / "targets", dir / "targets", fs::copy_options::recursive, ec);
  if (ec) {
    fmt::print(stderr, "mdmconform: cannot write the case under {}: {}\n", dir.string(), ec.message());
    return 2;
  }
  if (auto written = base::write_file_atomically(file, fuzz::reproducer_as_case(finding, hash)); !written) {
    fmt::print(stderr, "mdmconform: {}\n", written.message());
    return 2;
  }
  fmt::print("replay: wrote {}\n  run it: mdmconform run --specs {} fuzz/finding-{}\n", file.string(), dir.string(),
             hash);
  return 0;
}

}  // namespace

int run_replay(const ReplayOptions& options) {
  auto text = base::read_file_capped(options.finding, fuzz::kMaxFindingBytes);
  if (!text || text->empty()) {
    fmt::print(stderr, "mdmconform: cannot read {}, or it is larger than {} MiB\n", options.finding.string(),
               fuzz::kMaxFindingBytes >> 20);
    return 2;
  }
  auto reproducer = fuzz::reproducer_from_json(*text);
  if (!reproducer) {
    fmt::print(stderr, "mdmconform: {}: {}\n", options.finding.string(), reproducer.message());
    return 2;
  }
  if (options.as_case) return write_finding_case(*reproducer, options);
  // The target: the one given, else the recorded profile; a finding made against the built-in
  // server gets a fresh one, with the same fault mode and seeded bug.
  std::optional<Builtin> builtin;
  target::TargetProfile target;
  auto record = options.target ? std::nullopt : read_builtin_record(reproducer->target_file);
  if (record) {
    if (!*record) {
      fmt::print(stderr, "mdmconform: cannot set up the built-in server the finding was made against\n");
      return 2;
    }
    BuiltinOptions builtin_options{options.specs_dir, (*record)->fault, (*record)->seeded_bug, std::nullopt};
    // The fuzzer issues its devices identities from the test CA: no SCEP companion; and it
    // watches no pushes: no fake APNs.
    builtin_options.scep = false;
    builtin_options.push = false;
    auto started = start_builtin(builtin_options);
    if (!started) {
      fmt::print(stderr, "mdmconform: the built-in reference server: {}\n", started.message());
      return 2;
    }
    builtin = std::move(started).value();
    target = builtin->profile;
    fmt::print("replay: against a fresh built-in reference server (fault {}, seeded bug {})\n",
               server::fault_info(builtin_options.fault).name,
               server::seeded_bug_info(builtin_options.seeded_bug).name);
  } else {
    auto loaded = fuzz::load_fuzz_target(options.target ? *options.target : fs::path(reproducer->target_file),
                                         options.allow_remote, "replaying against");
    if (!loaded) {
      fmt::print(stderr, "mdmconform: {}\n", loaded.message());
      return 2;
    }
    target = *std::move(loaded);
  }
  auto replay = fuzz::replay_finding(*reproducer, std::move(target), options.allow_remote);
  if (!replay) {
    fmt::print(stderr, "mdmconform: {}\n", replay.message());
    return exit_code_of(replay.error());
  }
  fmt::print("replay: {} ({}), found {} against {}\n", reproducer->oracle, reproducer->detail, reproducer->found_at,
             reproducer->target_name);
  const auto& history = replay->history;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& outcome = history[i].outcome;
    fmt::print("history {}/{}: {} bytes -> {}\n", i + 1, history.size(), history[i].bytes,
               outcome.exchange.ok() ? std::to_string(outcome.exchange.response->status)
                                     : std::string(net::transport_error_name(outcome.exchange.error)));
    if (outcome.oracle != fuzz::Oracle::none) {
      fmt::print("history {}: {} fired already: {}\n", i + 1, fuzz::oracle_name(outcome.oracle), outcome.detail);
    }
  }
  const auto& outcome = replay->outcome;
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
  fmt::print("replay: {}: {}: {}\n", same ? "reproduced" : "a different oracle fired",
             fuzz::oracle_name(outcome.oracle), outcome.detail);
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
  run.started_at = base::now_rfc3339();
  run.target_name = label;
  return report::run_folder_name(run);
}

}  // namespace

FuzzCommands::FuzzCommands(CLI::App& app) {
  fuzz_ = app.add_subcommand(
      "fuzz", "fuzz a target's check-in and command endpoints (the built-in reference server unless --target)");
  fuzz_->add_option("--target", fuzz_options_.target,
                    "target profile (YAML); without it, the built-in reference server");
  fuzz_->add_option("--max-time", fuzz_options_.max_time_s, "seconds to fuzz")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 7.0 * 24 * 3600));
  fuzz_->add_option("--jobs", fuzz_options_.jobs, "fuzzing processes at once, each on a device of its own")
      ->capture_default_str()
      ->check(CLI::Range(1, fuzz::kMaxJobs));
  fuzz_->add_option("--rate", fuzz_options_.rate, "requests per second at most, per job (0: no cap)")
      ->check(CLI::Range(0.0, 1e6));
  fuzz_->add_flag("--allow-remote", fuzz_options_.allow_remote, "allow a target that is not on a loopback address");
  fuzz_->add_option("--out", out_, "run folder (default reports/<time>-fuzz); output goes to <out>/fuzz/");
  fuzz_->add_option("--corpus", fuzz_options_.corpus_dir,
                    "corpus folder kept between runs (default <out>/fuzz/corpus)");
  fuzz_->add_option("--fuzzer", fuzz_options_.fuzzer,
                    "the target_fuzzer binary (default: build/fuzz-fast/fuzzers/target_fuzzer, else build/fuzz/...)");
  fuzz_->add_option("--fault", fault_, "fault mode of the built-in server (see `list --faults`)");
  fuzz_->add_option("--seeded-bug", seeded_bug_, "seeded bug of the built-in server (see `list --seeded-bugs`)");
  fuzz_
      ->add_option("--mutator", mutator_, "plist (structure-aware, default) or bytes (libFuzzer's byte mutations only)")
      ->check(CLI::IsMember({"plist", "bytes"}));
  fuzz_->add_flag("--no-feedback", no_feedback_, "feed nothing of the target's answers back as coverage");
  fuzz_->add_option("--seed", fuzz_options_.seed, "libFuzzer's random seed (default: its own)");
  fuzz_->add_option(
      "--disable-oracle", fuzz_options_.disabled_oracles,
      "switch an oracle off (repeatable): ROB-MALFORMED, ROB-UNKNOWN-TYPE, CMD-SHAPE, status-5xx, transport, liveness");
  fuzz_->add_flag("--quiet", fuzz_options_.quiet, "print only the result");
  fuzz_->add_option("--max-findings", fuzz_options_.max_findings, "stop after this many unique findings (0: no limit)")
      ->check(CLI::Range(0, 1'000'000));
  fuzz_->add_option("--known", fuzz_options_.known,
                    "a previous run's fuzz/summary.json: its findings count as known, not new (exit 0 when only "
                    "known ones are found again)");
  fuzz_->add_flag("--no-minimise{false}", fuzz_options_.minimise, "write findings as found, not minimised");

  replay_ = app.add_subcommand("replay", "re-send a fuzzing finding and show the exchange, decoded");
  replay_->add_option("FILE", replay_options_.finding, "a finding (findings/finding-*.json)")->required();
  replay_->add_option("--target", replay_options_.target, "target profile (default: the one the finding records)");
  replay_->add_flag("--allow-remote", replay_options_.allow_remote, "allow a target that is not on a loopback address");
  replay_->add_option("--as-case", replay_options_.as_case,
                      "write the finding as a YAML case under this specs folder (scenarios/fuzz/), to run with "
                      "`run --specs`, instead of sending it");
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
    fmt::print(stderr, "mdmconform: unknown {} '{}' (see `mdmconform list --{}`)\n",
               !fault ? "fault mode" : "seeded bug", !fault ? fault_ : seeded_bug_, !fault ? "faults" : "seeded-bugs");
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
