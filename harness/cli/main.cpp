// mdmconform: conformance and fuzz testing for Apple MDM servers.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <random>
#include <set>

#include "harness/base/files.hpp"
#include "harness/cli/builtin.hpp"
#include "harness/cli/certify_command.hpp"
#include "harness/cli/dry_run.hpp"
#include "harness/cli/fuzz_command.hpp"
#include "harness/cli/load_command.hpp"
#include "harness/cli/preflight.hpp"
#include "harness/cli/report_command.hpp"
#include "harness/cli/suite.hpp"
#include "harness/pki/pki.hpp"
#include "harness/report/progress.hpp"
#include "harness/report/report.hpp"
#include "harness/scenario/assessment.hpp"
#include "harness/server/reference_server.hpp"

namespace {

using namespace mdmc;

// Set by SIGINT or SIGTERM during `run`: the suite stops after the exchange in flight and the
// report is still written, marked interrupted. Only an atomic store happens in the handler.
std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int signal) {
  g_stop.store(true);
  // A second signal ends the process the default way, for someone who really wants out.
  std::signal(signal, SIG_DFL);
}

// Whether `dir` can take a run's report: made (with its parents) if missing, then a file written
// there as the report's files are, and removed. A folder that cannot must stop the run before
// any case, not be found after the last with the results lost.
base::Result<void> check_report_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return base::fail("cannot create it: " + ec.message());
  const auto probe = dir / fmt::format(".mdmconform-write-check-{}", ::getpid());
  if (auto written = base::write_file_atomically(probe, ""); !written) return written;
  std::filesystem::remove(probe, ec);
  return {};
}

// A run that stopped before its cases (exit code 2 or 3) still leaves report.json and junit.xml,
// holding one errored case with the reason, so that CI finds its artifacts.
int stopped_run(cli::SuiteOutcome outcome, const cli::SuiteOptions& options, const std::string& out_dir, bool redact) {
  fmt::print(stderr, "mdmconform: {}\n", outcome.message);
  cli::record_stopped_run(outcome, options);
  if (redact) report::redact_secrets(outcome.run);
  std::filesystem::path dir = out_dir.empty() ? std::filesystem::path("reports") / report::run_folder_name(outcome.run)
                                              : std::filesystem::path(out_dir);
  if (auto written = report::write_run(outcome.run, dir); !written) {
    fmt::print(stderr, "mdmconform: could not write the report to {}: {}\n", dir.string(), written.message());
  } else {
    fmt::print("report: {}/report.json and junit.xml (one errored case, {})\n", dir.string(), cli::kPreflightCaseId);
  }
  return outcome.exit_code;
}

int command_run(cli::SuiteOptions options, const std::string& out_dir, bool redact, const std::string& baseline_file,
                report::Verbosity verbosity) {
  const std::filesystem::path report_root =
      out_dir.empty() ? std::filesystem::path("reports") : std::filesystem::path(out_dir);
  if (auto writable = check_report_folder(report_root); !writable) {
    fmt::print(stderr,
               "mdmconform: the report folder {} cannot be written: {}; nothing was run, and no report "
               "could be left there\n",
               report_root.string(), writable.message());
    return 2;
  }
  // The baseline is read before anything runs: an unreadable one is a usage error.
  std::optional<scenario::RunResult> baseline;
  if (!baseline_file.empty()) {
    auto read = report::read_run_file(baseline_file);
    if (!read) return stopped_run({{}, 2, "--baseline: " + read.message()}, options, out_dir, redact);
    baseline = *std::move(read);
  }
  options.stop = &g_stop;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  report::ConsoleProgress progress(stdout, report::ConsoleProgress::is_terminal(stdout), verbosity, redact,
                                   report::ConsoleProgress::terminal_width(stdout));
  options.on_suite_start = [&](std::size_t total) { progress.suite_started(total); };
  options.on_case_start = [&](const std::string& id) { progress.case_started(id); };
  options.on_case = [&](const scenario::CaseResult& c) { progress.case_ended(c); };
  auto outcome = cli::run_suite(options);
  progress.finish();
  if (outcome.exit_code == 2 || outcome.exit_code == 3)
    return stopped_run(std::move(outcome), options, out_dir, redact);
  // The comparison is part of the record: every view marks each failure new or known.
  if (baseline)
    outcome.run.baseline = report::compare_to_baseline(outcome.run, *baseline, options.strict, baseline_file);
  if (redact) report::redact_secrets(outcome.run);  // before any view is printed or written
  std::cout << report::console_summary(outcome.run, progress.summary_parts());
  std::filesystem::path dir = out_dir.empty() ? std::filesystem::path("reports") / report::run_folder_name(outcome.run)
                                              : std::filesystem::path(out_dir);
  if (auto written = report::write_run(outcome.run, dir); !written) {
    fmt::print(stderr, "mdmconform: could not write the report to {}: {}\n", dir.string(), written.message());
    return 2;
  }
  fmt::print("report: {}/report.html (and report.json, junit.xml, summary.md, summary.txt)\n", dir.string());
  if (outcome.run.interrupted) {
    fmt::print(stderr, "mdmconform: interrupted; the report holds the {} case(s) that ran\n", outcome.run.cases.size());
  }
  if (baseline) {
    // Every view marks each failure new or known; the verdict changes are printed here too.
    int shown = 0;
    const auto& news = outcome.run.baseline->new_failures;
    for (const auto& change : report::verdict_changes(*baseline, outcome.run)) {
      if (!change.after) continue;  // a baseline case this run did not select
      const bool is_new = std::find(news.begin(), news.end(), change.id) != news.end();
      fmt::print("baseline: {}{}\n", report::describe_change(change), is_new ? " (new failure)" : "");
      ++shown;
    }
    fmt::print("baseline: {} case(s) changed against {}\n", shown, baseline_file);
  }
  return scenario::assess(outcome.run).exit_code;
}

// `run --dry-run`: the plan, and nothing sent. Exit 0, or 2 when the run could not start.
int command_dry_run(const cli::SuiteOptions& options) {
  auto outcome = cli::plan_run(options);
  if (outcome.exit_code != 0) {
    fmt::print(stderr, "mdmconform: {}\n", outcome.message);
    return outcome.exit_code;
  }
  fmt::print("{}", cli::render_plan(outcome.plan));
  return outcome.plan.stop ? 2 : 0;
}

// `diff A B`: the cases whose verdict changed from A to B. Exit 0 when none did, 1 when some
// did, 2 when a file cannot be read.
int command_diff(const std::string& a_file, const std::string& b_file) {
  auto a = report::read_run_file(a_file);
  if (!a) {
    fmt::print(stderr, "mdmconform: {}\n", a.message());
    return 2;
  }
  auto b = report::read_run_file(b_file);
  if (!b) {
    fmt::print(stderr, "mdmconform: {}\n", b.message());
    return 2;
  }
  auto changes = report::verdict_changes(*a, *b);
  for (const auto& change : changes) fmt::print("{}\n", report::describe_change(change));
  fmt::print("{} case(s) changed\n", changes.size());
  return changes.empty() ? 0 : 1;
}

// A test CA and a server certificate for `serve --tls-dir`, written where other tools (and
// a target profile) can find them. Keys are written 0600.
std::optional<net::ServerTls> make_serve_tls(const std::filesystem::path& dir, server::Config& config) {
  auto keys = cli::make_builtin_pki();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  base::Result<void> written =
      keys ? pki::write_identity(keys->ca, dir / "ca.crt", dir / "ca.key") : base::Result<void>(keys.error());
  if (written) written = pki::write_identity(keys->server, dir / "server.crt", dir / "server.key");
  if (!written) {
    fmt::print(stderr, "mdmconform: could not set up TLS in {}: {}\n", dir.string(), written.message());
    return std::nullopt;
  }
  config.client_ca_pem = keys->ca.cert_pem;
  config.tls_ca_pem = keys->ca.cert_pem;
  return keys->tls;
}

// A YAML scalar: plain when nothing in it means anything to YAML, else single-quoted.
std::string yaml_scalar(const std::string& text) {
  bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || std::string_view("/._-+").find(ch) != std::string_view::npos;
  });
  if (plain) return text;
  std::string out = "'";
  for (char ch : text) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

// A target profile that reaches `serve`'s server, for the user to paste: the issuer and the
// trusted CA are the files --tls-dir wrote, named absolutely so the profile works from anywhere.
std::string serve_profile(const std::string& address, std::uint16_t port, const std::filesystem::path& tls_dir,
                          protocol::IdentityMode mode, const std::set<std::string>& managed_users, bool enrolls) {
  std::error_code ec;
  const auto dir = std::filesystem::absolute(tls_dir, ec);
  const auto base = fmt::format("https://{}:{}", address, port);
  std::string out = fmt::format(
      "schema_version: 1\nname: serve\nurls:\n  check_in: {}{}\n  server: {}{}\ntls:\n  ca: {}\n"
      "identity:\n  mode: {}\n  issuer: {{cert: {}, key: {}}}\nadmin:\n  enqueue:\n    url: {}{}{{channel}}\n",
      base, server::kCheckInPath, base, server::kServerPath, yaml_scalar((dir / "ca.crt").string()),
      protocol::identity_mode_name(mode), yaml_scalar((dir / "ca.crt").string()),
      yaml_scalar((dir / "ca.key").string()), base, server::kEnqueuePrefix);
  // Its declarations adapter, in KMFDDM's shape (docs/profiles.md#admindeclarations).
  out += fmt::format(
      "  declarations:\n    put: {{url: {0}{1}}}\n    assign:\n"
      "      - {{url: '{0}{2}{{set}}?declaration={{identifier}}'}}\n      - {{url: '{0}{3}{{channel}}?set={{set}}'}}\n"
      "    unassign:\n      - {{method: DELETE, url: '{0}{2}{{set}}?declaration={{identifier}}'}}\n",
      base, server::kDeclarationsPath, server::kSetDeclarationsPrefix, server::kEnrollmentSetsPrefix);
  // Its enrollment profile, for the enrollment cases; the URLs and issuer above still stand.
  if (enrolls) out += fmt::format("enrollment:\n  profile_url: {}{}\n", base, server::kEnrollPath);
  if (!managed_users.empty()) {
    std::vector<std::string> ids;
    for (const auto& id : managed_users) ids.push_back(yaml_scalar(id));
    out += fmt::format("policy:\n  network_users:\n    managed: [{}]\n", fmt::join(ids, ", "));
  }
  return out;
}

// The files `serve --apns-*` names, read into Config::push. A PEM is small: 1 MiB caps a wrong path.
struct ServePushFiles {
  std::string ca;
  std::string cert;
  std::string key;
  std::string provider_key;
};

bool load_push_files(const ServePushFiles& files, server::PushSettings& push) {
  constexpr std::size_t kMaxPemBytes = 1024 * 1024;
  auto read = [&](const std::string& path, std::string& into) {
    if (path.empty()) return true;
    auto text = base::read_file_capped(path, kMaxPemBytes);
    if (!text) {
      fmt::print(stderr, "mdmconform: cannot read {}: {}\n", path, text.message());
      return false;
    }
    into = std::move(*text);
    return true;
  };
  if (push.apns_url.empty()) {
    if (!files.ca.empty() || !files.cert.empty() || !files.key.empty() || !files.provider_key.empty()) {
      fmt::print(stderr, "mdmconform: the --apns-* and --push-* options need --apns-url\n");
      return false;
    }
    return true;
  }
  if (files.cert.empty() != files.key.empty()) {
    fmt::print(stderr, "mdmconform: --push-cert and --push-key go together\n");
    return false;
  }
  if (files.cert.empty() == files.provider_key.empty()) {
    fmt::print(stderr,
               "mdmconform: --apns-url needs one way to authenticate: --push-cert and --push-key (a push "
               "certificate), or --push-provider-key with --push-key-id and --push-team-id (a provider token)\n");
    return false;
  }
  if (!files.provider_key.empty() && (push.key_id.empty() || push.team_id.empty())) {
    fmt::print(stderr, "mdmconform: --push-provider-key needs --push-key-id and --push-team-id\n");
    return false;
  }
  if (!read(files.ca, push.trusted_ca_pem) || !read(files.provider_key, push.provider_key_pem)) return false;
  if (!files.cert.empty()) {
    pki::Identity identity;
    if (!read(files.cert, identity.cert_pem) || !read(files.key, identity.key_pem)) return false;
    push.certificate = std::move(identity);
  }
  return true;
}

int command_serve(server::Config config, const std::string& address, std::uint16_t port, const std::string& tls_dir,
                  bool scep_wanted, unsigned threads) {
  if (!net::is_loopback_host(address)) {
    fmt::print(stderr, "mdmconform: serve binds loopback addresses only, not {}\n", address);
    return 2;
  }
  std::optional<net::ServerTls> tls;
  if (!tls_dir.empty()) {
    tls = make_serve_tls(tls_dir, config);
    if (!tls) return 2;
  } else if (config.identity_mode != server::IdentityMode::none) {
    fmt::print(stderr, "mdmconform: --identity-mode {} needs --tls-dir (the CA that issues device identities)\n",
               protocol::identity_mode_name(config.identity_mode));
    return 2;
  }
  // The SCEP companion its enrollment profile names: with --tls-dir (the profile's URLs are
  // https), when scepserver is installed.
  auto scep = cli::attach_scep(config, tls, scep_wanted && tls.has_value(), nullptr);
  if (!scep) {
    fmt::print(stderr, "mdmconform: {}\n", scep.message());
    return 2;
  }
  const auto mode = config.identity_mode;
  const auto managed_users = config.managed_network_users;
  const auto push_line =
      config.push.apns_url.empty()
          ? std::string("pushes: none (--apns-url sets where to)")
          : fmt::format(
                "pushes: to {}{} with {}", config.push.apns_url,
                config.push.connect_to.empty() ? "" : fmt::format(" (connecting to {})", config.push.connect_to),
                config.push.certificate ? "a push certificate" : "provider tokens");
  auto fault_name = server::fault_info(config.fault).name;
  auto seeded_bug_name = server::seeded_bug_info(config.seeded_bug).name;
  // Signals are taken by sigwait on this thread, not by a handler: stopping the server is not
  // async-signal-safe. Blocked before the server makes any thread (its push sender, its I/O),
  // so that every thread inherits the mask, and before the lines a caller waits for are printed:
  // a SIGTERM sent on seeing them is taken by sigwait, not by the default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  server::ReferenceServer server(std::move(config), tls);
  auto listening = server.listen(address, port);
  if (!listening) {
    fmt::print(stderr, "mdmconform: cannot listen on {}:{}: {}\n", address, port, listening.message());
    return 3;
  }
  const auto bound = *listening;
  fmt::print("reference MDM server on {}://{}:{} (check-in {}, commands {}, queue PUT {}{{id}}), fault: {}{}{}\n",
             tls ? "https" : "http", address, bound, server::kCheckInPath, server::kServerPath, server::kEnqueuePrefix,
             fault_name, seeded_bug_name == "none" ? std::string() : fmt::format(", seeded bug: {}", seeded_bug_name),
             tls ? fmt::format(", CA and keys in {}", tls_dir) : std::string());
  // Said outright: a profile in another mode than the server's fails ENR-SAME-IDENTITY.
  fmt::print("identity mode: {}{}\n", protocol::identity_mode_name(mode),
             mode == protocol::IdentityMode::none
                 ? " (devices prove no identity; --tls-dir with --identity-mode mtls, signature or both asks for one)"
                 : "");
  fmt::print("{}\n", push_line);
  if (*scep) {
    fmt::print("enrollment profile: https://{}:{}{} (SCEP server {}, listening on every interface)\n", address, bound,
               server::kEnrollPath, (*scep)->url());
  } else if (tls && scep_wanted) {
    fmt::print("no enrollment profile: scepserver (Debian package scep) is not installed\n");
  }
  if (tls) {
    fmt::print("a target profile for this server:\n{}",
               serve_profile(address, bound, tls_dir, mode, managed_users, *scep != nullptr));
  }
  std::fflush(stdout);
  server.start(threads);
  int signal = 0;
  sigwait(&signals, &signal);
  server.stop();
  return 0;
}

int command_list(const std::filesystem::path& specs, const cli::Selection& selection, bool rules_only, bool faults_only,
                 bool seeded_bugs_only) {
  if (seeded_bugs_only) {
    for (const auto& bug : server::seeded_bug_catalog()) {
      if (bug.bug != server::SeededBug::none) fmt::print("{:<22} {}\n", bug.name, bug.behaviour);
    }
    return 0;
  }
  if (faults_only) {
    for (const auto& f : server::fault_catalog()) {
      fmt::print("{:<24} breaks {:<18} {}\n", f.name,
                 f.breaks.empty() ? "-" : fmt::format("{}", fmt::join(f.breaks, ",")), f.behaviour);
    }
    return 0;
  }
  try {
    auto rules = scenario::load_rules(specs / "rules.yaml");
    auto split = cli::select_cases(scenario::load_suite(specs / "scenarios", rules), selection, rules);
    if (!split) {
      fmt::print(stderr, "mdmconform: {}\n", split.error().message);
      return 2;
    }
    const auto& cases = split->selected;
    if (rules_only) {
      for (const auto& [id, rule] : rules.rules) {
        std::vector<std::string> ids;
        for (const auto& c : cases) {
          if (std::find(c.rules.begin(), c.rules.end(), id) != c.rules.end()) ids.push_back(c.id);
        }
        std::vector<std::string_view> faults;
        for (const auto& f : server::fault_catalog()) {
          if (std::find(f.breaks.begin(), f.breaks.end(), id) != f.breaks.end()) faults.push_back(f.name);
        }
        fmt::print("{:<22} {:<7} cases: {:<40} fault: {}\n", id, scenario::level_name(rule.level),
                   ids.empty() ? "-" : fmt::format("{}", fmt::join(ids, ",")),
                   faults.empty() ? "-" : fmt::format("{}", fmt::join(faults, ",")));
      }
      return 0;
    }
    // Each rule with its level, so that what --level selects is visible; columns as wide as
    // their widest entry.
    std::vector<std::array<std::string, 4>> rows;
    std::array<std::size_t, 3> width{};
    for (const auto& c : cases) {
      std::vector<std::string> named;
      for (const auto& r : c.rules)
        named.push_back(fmt::format("{}:{}", r, scenario::level_name(rules.rules.at(r).level)));
      rows.push_back({c.id, fmt::format("{}", fmt::join(named, ",")),
                      "tags: " + (c.tags.empty() ? std::string("-") : fmt::format("{}", fmt::join(c.tags, ","))),
                      c.title});
      for (std::size_t i = 0; i < width.size(); ++i) width[i] = std::max(width[i], rows.back()[i].size());
    }
    for (const auto& row : rows) {
      fmt::print("{:<{}}  {:<{}}  {:<{}}  {}\n", row[0], width[0], row[1], width[1], row[2], width[2], row[3]);
    }
  } catch (const base::LoadError& e) {
    fmt::print(stderr, "mdmconform: {}\n", e.what());
    return 2;
  }
  return 0;
}

// --level's names, which CLI11 has already checked.
std::vector<scenario::Level> levels_named(const std::vector<std::string>& names) {
  std::vector<scenario::Level> out;
  for (const auto& name : names) {
    out.push_back(name == "must"     ? scenario::Level::must
                  : name == "should" ? scenario::Level::should
                                     : scenario::Level::may);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mdmconform: conformance and fuzz testing for Apple MDM servers"};
  app.set_version_flag("--version", std::string("mdmconform ") + MDMC_VERSION);
  app.require_subcommand(1);

  std::string specs = cli::default_specs_dir().string();
  app.add_option("--specs", specs, "folder with rules.yaml, scenarios/ and targets/")->capture_default_str();
  // `mdmconform run --specs DIR` as well as `mdmconform --specs DIR run`: a subcommand hands the
  // options it does not know to the app (subcommands made after this inherit it).
  app.fallthrough();

  cli::SuiteOptions run_options;
  std::string target;
  std::string out_dir;
  std::string run_fault = "none";
  std::string run_seeded_bug = "none";
  std::optional<std::uint64_t> seed;
  bool no_redact = false;
  auto* run =
      app.add_subcommand("run", "run the conformance suite (against the built-in reference server unless --target)");
  run->add_option("--target", target, "target profile (YAML); without it, the built-in reference server");
  run->add_option("--out", out_dir, "report folder (default reports/<time>-<target>)");
  run->add_option("--seed", seed, "seed for synthetic UDIDs and UserIDs (default: random, recorded in report.json)");
  run->add_option("--fault", run_fault, "fault mode of the built-in server (see `list --faults`)");
  run->add_option("--seeded-bug", run_seeded_bug,
                  "seeded bug of the built-in server, reached only by odd input (see `list --seeded-bugs`)");
  run->add_option("cases", run_options.selection, "case id prefixes to run (default: all)");
  run->add_option("--exclude", run_options.excludes,
                  "leave out the cases with this id or id prefix (repeatable; a whole id: that case alone)");
  bool dry_run = false;
  run->add_flag("--dry-run", dry_run,
                "send nothing: list the cases that would run or be skipped, and the rules left untested, and why");
  run->add_flag("--no-redact", no_redact, "keep secrets in reports and transcripts");
  run->add_option(
         "--jobs", run_options.jobs,
         "cases run at once, each on its own thread (default: 4 against the built-in server, 1 against a target)")
      ->check(CLI::Range(1, scenario::kMaxJobs));
  run->add_option(
         "--confirm", run_options.confirm,
         "re-runs of a failing or warning case on fresh devices (0: none); a verdict that does not repeat is flaky")
      ->check(CLI::Range(0, scenario::kMaxConfirm))
      ->capture_default_str();
  run->add_flag("--continue-after-wedge", run_options.continue_after_wedge,
                "run the later cases even after the target stopped serving writes (by default they are not run)");
  run->add_option("--tag", run_options.tags, "run the cases with this tag (repeatable: any of them)");
  std::vector<std::string> run_levels;
  run->add_option("--level", run_levels, "run the cases naming a rule at this level: must, should, may (repeatable)")
      ->check(CLI::IsMember({"must", "should", "may"}));
  run->add_flag("--strict", run_options.strict, "count should-level breaks (warn) as failures in the exit code");
  run->add_flag("--require-complete", run_options.require_complete,
                "exit 1 when nothing failed but the run was incomplete (not the whole catalog, or a rule untested)");
  std::string baseline_file;
  bool quiet = false;
  bool verbose = false;
  run->add_flag("--quiet", quiet,
                "print nothing while the run goes on; then the cases that did not pass and the totals");
  run->add_flag("--verbose", verbose, "print every case as it ends, with each of its exchanges")
      ->excludes(run->get_option("--quiet"));
  run->add_option("--baseline", baseline_file,
                  "an earlier report.json: only new failures against it make the exit code non-zero");

  server::Config serve_config;
  unsigned serve_threads = server::ReferenceServer::kThreads;
  std::string serve_fault = "none";
  std::string serve_seeded_bug = "none";
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::vector<std::string> managed_users;
  std::string tls_dir;
  std::string serve_identity = "none";
  std::string run_identity;
  run->add_option("--identity-mode", run_identity, "override the profile's identity mode: none, mtls, signature, both");
  std::string builtin_enrollment = "scep";
  run->add_option("--builtin-enrollment", builtin_enrollment,
                  "the built-in server: every device enrolls through its enrollment profile and SCEP server (scep), "
                  "only the enrollment cases do (cases), or it serves no enrollment profile (off)")
      ->envname("MDMCONFORM_BUILTIN_ENROLLMENT")
      ->capture_default_str();
  auto* serve = app.add_subcommand("serve", "run the reference MDM server");
  serve->add_option("--tls-dir", tls_dir, "serve HTTPS with a new test CA, written (ca.crt, ca.key) to this folder");
  serve->add_option("--identity-mode", serve_identity, "how devices prove identity: none, mtls, signature, both");
  serve->add_option("--fault", serve_fault, "fault mode (see `list --faults`)");
  serve->add_option("--seeded-bug", serve_seeded_bug,
                    "seeded bug, reached only by odd input (see `list --seeded-bugs`)");
  serve->add_option("--port", port, "port (0: any free port, printed)");
  serve->add_option("--address", address, "loopback address to bind")->capture_default_str();
  serve->add_option("--manage-network-user", managed_users, "UserID of a network user to manage (repeatable)");
  serve->add_option("--digest-challenge", serve_config.digest_challenge, "DigestChallenge for managed network users");
  // The defaults bound a test server's memory; a load run (docs/load.md) raises them.
  serve
      ->add_option("--max-devices", serve_config.bounds.devices,
                   "devices held at once (past it, the least recent is forgotten)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  serve->add_option("--max-queued-commands", serve_config.bounds.queued_commands, "commands queued over all channels")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  serve->add_option("--threads", serve_threads, "threads serving requests")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  ServePushFiles push_files;
  serve->add_option("--apns-url", serve_config.push.apns_url,
                    "push to this APNs provider API base URL (https://127.0.0.1:PORT for a fake APNs) when a command "
                    "is queued without ?nopush=1; without it, no pushes");
  serve->add_option("--apns-connect-to", serve_config.push.connect_to,
                    "connect to this host:port instead of resolving the --apns-url host");
  serve->add_option("--apns-ca", push_files.ca, "PEM file of the CA(s) to trust for APNs' TLS (default: the system's)");
  serve->add_option("--push-cert", push_files.cert, "PEM file of the push certificate (TLS client certificate)");
  serve->add_option("--push-key", push_files.key, "PEM file of the push certificate's private key");
  serve->add_option("--push-provider-key", push_files.provider_key,
                    "PEM file of a provider token key (Apple's .p8: an EC P-256 key), used without --push-cert");
  serve->add_option("--push-key-id", serve_config.push.key_id, "the provider key's key id (the JWT's kid)");
  serve->add_option("--push-team-id", serve_config.push.team_id, "the team id (the JWT's iss)");
  bool serve_no_scep = false;
  serve->add_flag("--no-scep", serve_no_scep,
                  "start no scepserver companion: GET /enroll then answers 404 (with --tls-dir it starts one when "
                  "scepserver is installed)");

  bool list_rules = false;
  bool list_faults = false;
  bool list_seeded_bugs = false;
  std::string diff_a;
  std::string diff_b;
  auto* diff = app.add_subcommand("diff", "list the cases whose verdict changed between two report.json files");
  diff->add_option("A", diff_a, "the earlier report.json")->required();
  diff->add_option("B", diff_b, "the later report.json")->required();

  cli::FuzzCommands fuzz_commands(app);
  cli::ReportCommand report_command(app);
  cli::LoadCommand load_command(app);
  cli::CertifyCommands certify_commands(app);
  auto* list = app.add_subcommand("list", "list the cases, the rules, or the fault modes");
  list->add_flag("--rules", list_rules, "rules with level, cases and the fault mode that breaks each");
  list->add_flag("--faults", list_faults, "fault modes of the reference server and the rules each breaks");
  list->add_flag("--seeded-bugs", list_seeded_bugs, "seeded bugs of the reference server, for measuring fuzzers");
  cli::Selection list_selection;
  std::vector<std::string> list_levels;
  list->add_option("cases", list_selection.ids, "case id prefixes to list (default: all)");
  list->add_option("--exclude", list_selection.excludes, "leave out the cases with this id or id prefix (repeatable)");
  list->add_option("--tag", list_selection.tags, "list the cases with this tag (repeatable: any of them)");
  list->add_option("--level", list_levels, "list the cases naming a rule at this level: must, should, may (repeatable)")
      ->check(CLI::IsMember({"must", "should", "may"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // usage errors exit 2, as every command's do
  }

  auto fault_named = [](const std::string& name) -> std::optional<server::Fault> {
    auto fault = server::fault_from_name(name);
    if (!fault)
      fmt::print(stderr, "mdmconform: unknown fault mode '{}'; `mdmconform list --faults` lists them\n", name);
    return fault;
  };
  auto seeded_bug_named = [](const std::string& name) -> std::optional<server::SeededBug> {
    auto bug = server::seeded_bug_from_name(name);
    if (!bug)
      fmt::print(stderr, "mdmconform: unknown seeded bug '{}'; `mdmconform list --seeded-bugs` lists them\n", name);
    return bug;
  };

  if (*run) {
    run_options.specs_dir = specs;
    if (!target.empty()) run_options.target = target;
    auto fault = fault_named(run_fault);
    if (!fault) return 2;
    if (*fault != server::Fault::none && !target.empty()) {
      fmt::print(stderr, "mdmconform: --fault applies to the built-in server, not to --target\n");
      return 2;
    }
    run_options.builtin_fault = *fault;
    auto seeded_bug = seeded_bug_named(run_seeded_bug);
    if (!seeded_bug) return 2;
    if (*seeded_bug != server::SeededBug::none && !target.empty()) {
      fmt::print(stderr, "mdmconform: --seeded-bug applies to the built-in server, not to --target\n");
      return 2;
    }
    run_options.builtin_seeded_bug = *seeded_bug;
    if (!run_identity.empty()) {
      auto mode = protocol::identity_mode_from_name(run_identity);
      if (!mode) {
        fmt::print(stderr, "mdmconform: unknown identity mode '{}' (none, mtls, signature, both)\n", run_identity);
        return 2;
      }
      run_options.identity_mode = *mode;
    }
    auto enrollment = cli::builtin_enrollment_from_name(builtin_enrollment);
    if (!enrollment) {
      fmt::print(stderr, "mdmconform: unknown --builtin-enrollment '{}' (scep, cases, off)\n", builtin_enrollment);
      return 2;
    }
    run_options.builtin_enrollment = *enrollment;
    run_options.levels = levels_named(run_levels);
    if (dry_run) return command_dry_run(run_options);
    run_options.seed = seed ? *seed : std::random_device{}();
    const auto verbosity = quiet     ? report::Verbosity::quiet
                           : verbose ? report::Verbosity::verbose
                                     : report::Verbosity::normal;
    return command_run(run_options, out_dir, !no_redact, baseline_file, verbosity);
  }
  if (*serve) {
    auto fault = fault_named(serve_fault);
    if (!fault) return 2;
    serve_config.fault = *fault;
    auto seeded_bug = seeded_bug_named(serve_seeded_bug);
    if (!seeded_bug) return 2;
    serve_config.seeded_bug = *seeded_bug;
    serve_config.managed_network_users.insert(managed_users.begin(), managed_users.end());
    auto mode = protocol::identity_mode_from_name(serve_identity);
    if (!mode) {
      fmt::print(stderr, "mdmconform: unknown identity mode '{}' (none, mtls, signature, both)\n", serve_identity);
      return 2;
    }
    serve_config.identity_mode = *mode;
    if (!load_push_files(push_files, serve_config.push)) return 2;
    return command_serve(serve_config, address, port, tls_dir, !serve_no_scep, serve_threads);
  }
  if (auto code = fuzz_commands.dispatch(specs)) return *code;
  if (auto code = report_command.dispatch()) return *code;
  if (load_command.was_chosen()) {
    // SIGINT or SIGTERM ends the load early: the report is written with what was measured.
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    if (auto code = load_command.dispatch(&g_stop)) return *code;
  }
  if (auto code = certify_commands.dispatch(specs)) return *code;
  if (*diff) return command_diff(diff_a, diff_b);
  list_selection.levels = levels_named(list_levels);
  return command_list(specs, list_selection, list_rules, list_faults, list_seeded_bugs);
}
