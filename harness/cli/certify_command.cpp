#include "harness/cli/certify_command.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <random>

#include "harness/base/bytes.hpp"
#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/certify/certification.hpp"
#include "harness/cli/suite.hpp"
#include "harness/pki/pki.hpp"
#include "harness/report/report.hpp"
#include "harness/scenario/assessment.hpp"
#include "harness/target/session.hpp"

namespace mdmc::cli {
namespace {

namespace fs = std::filesystem;

// Profiles and rules.yaml are kilobytes; the loaders read them under the same kind of cap.
constexpr std::size_t kMaxTextBytes = 4 * 1024 * 1024;
constexpr std::size_t kMaxReportBytes = 512ull * 1024 * 1024;

int usage(const std::string& message) {
  fmt::print(stderr, "mdmconform: {}\n", message);
  return 2;
}

// Why a certification cannot rest on this profile, or nothing. A record names the server by the
// certificate it presented: one the harness did not verify, or none at all, names nothing.
// (Apple's MDM payload takes only https URLs, so a real server has one.)
std::optional<std::string> refusal(const target::TargetProfile& profile) {
  if (profile.tls.insecure) {
    return fmt::format(
        "{}: tls.insecure: a certification names the server by its verified certificate; give the "
        "server's CA in tls.ca instead",
        profile.file);
  }
  if (profile.check_in_url.rfind("https://", 0) != 0) {
    return fmt::format(
        "{}: {} is plain HTTP: a certification names the server by its TLS certificate (put the "
        "server behind TLS, as devices need it)",
        profile.file, profile.check_in_url);
  }
  return std::nullopt;
}

// What the run hook learns of the target while it serves.
struct TargetSeen {
  std::optional<std::string> refused;
  base::Result<std::string> fingerprint = base::fail("the target was not reached");
  std::string check_in_url;
  std::string server_url;
  std::string profile_file;
  std::string profile_text;
};

// SIGINT or SIGTERM during `certify`: the suite stops after the exchange in flight, and the
// record says the run was incomplete.
std::atomic<bool> g_certify_stop{false};

extern "C" void on_certify_stop(int signal) {
  g_certify_stop.store(true);
  std::signal(signal, SIG_DFL);  // a second one ends the process the default way
}

}  // namespace

int run_certify(const CertifyOptions& options) {
  // The certifier's key and certificate first: a key that does not match is found before any
  // case runs, not after an hour of them.
  auto certifier = pki::load_pem_pair(options.cert, options.key);
  if (!certifier) return usage("--cert/--key: " + certifier.message());
  scenario::RuleCatalog rules;
  try {
    rules = scenario::load_rules(options.specs_dir / "rules.yaml");
  } catch (const base::LoadError& e) {
    return usage(e.what());
  }
  if (!rules.seed) return usage((options.specs_dir / "rules.yaml").string() + ": names no seed article (seed:)");
  auto rules_bytes = base::read_file_capped(options.specs_dir / "rules.yaml", kMaxTextBytes);
  if (!rules_bytes) return usage(rules_bytes.message());
  // A profile given is checked before the run goes near the network; the built-in server's
  // (and this one again, as loaded for the run) in the hook below.
  if (options.target) {
    try {
      if (auto refused = refusal(target::load_profile(*options.target))) return usage(*refused);
    } catch (const base::LoadError& e) {
      return usage(e.what());
    }
  }

  SuiteOptions suite;
  suite.specs_dir = options.specs_dir;
  suite.target = options.target;
  suite.seed = options.seed;
  suite.jobs = options.jobs;
  suite.confirm = options.confirm;
  // As for `run`: a should-level warn is named in the verdict ("with warnings") and fails the
  // certification only under --strict; the record says which.
  suite.strict = options.strict;
  suite.stop = options.stop;
  TargetSeen seen;
  // Taken while the target serves, before the first case: the built-in server is gone after.
  suite.on_target_ready = [&seen](const target::TargetProfile& profile) -> std::optional<std::string> {
    if ((seen.refused = refusal(profile))) return seen.refused;
    seen.check_in_url = profile.check_in_url;
    seen.server_url = profile.server_url;
    seen.profile_file = profile.file;
    auto text = base::read_file_capped(profile.file, kMaxTextBytes);
    if (!text) return "the profile: " + text.message();
    seen.profile_text = *text;
    seen.fingerprint = target::server_certificate_sha256(profile);
    if (!seen.fingerprint) return "the server's certificate: " + seen.fingerprint.message();
    return std::nullopt;
  };
  report::ConsoleProgress progress(stdout, report::ConsoleProgress::is_terminal(stdout), options.verbosity,
                                   /*redact=*/true, report::ConsoleProgress::terminal_width(stdout));
  suite.on_suite_start = [&](std::size_t total) { progress.suite_started(total); };
  suite.on_case_start = [&](const std::string& id) { progress.case_started(id); };
  suite.on_case = [&](const scenario::CaseResult& c) { progress.case_ended(c); };
  auto outcome = run_suite(suite);
  progress.finish();
  if (outcome.exit_code == 2 || outcome.exit_code == 3) {
    fmt::print(stderr, "mdmconform: {}\n", outcome.message);
    return outcome.exit_code;
  }
  const std::string ended_at = base::now_rfc3339();
  // Set by the hook, which every run that got this far called.
  if (!seen.fingerprint) return usage("the server's certificate: " + seen.fingerprint.message());

  // A certification never carries secrets: no --no-redact here.
  auto& run = outcome.run;
  report::redact_secrets(run);
  std::cout << report::console_summary(run, progress.summary_parts());
  const fs::path dir = options.out ? *options.out : fs::path("reports") / report::run_folder_name(run);
  if (auto written = report::write_run(run, dir); !written) {
    return usage(fmt::format("could not write the report to {}: {}", dir.string(), written.message()));
  }
  auto report_bytes = base::read_file_capped(dir / "report.json", kMaxReportBytes);
  if (!report_bytes) return usage("could not read back report.json: " + report_bytes.message());

  certify::Suite suite_facts{run.suite_digest, base::sha256_hex(*rules_bytes), run.conditions.catalog_cases,
                             run.apple_schema_revision, *rules.seed};
  certify::Target target_facts;
  target_facts.name = run.target_name;
  target_facts.builtin = !options.target;
  target_facts.check_in_url = seen.check_in_url;
  target_facts.server_url = seen.server_url;
  target_facts.server_certificate_sha256 = *seen.fingerprint;
  target_facts.tls = run.conditions.tls;
  target_facts.identity_mode = run.identity_mode;
  target_facts.profile_file = seen.profile_file;
  target_facts.profile_sha256 = run.profile_digest;
  target_facts.profile = seen.profile_text;
  const auto record = certify::make_record(run, std::move(suite_facts), std::move(target_facts),
                                           base::sha256_hex(*report_bytes), ended_at, base::now_rfc3339());
  auto status = certify::write_signed(record, *certifier, dir);
  if (!status) return usage(fmt::format("could not write the certification to {}: {}", dir.string(), status.message()));
  // The page now says a signed record is beside it.
  if (auto page = base::write_file_atomically(dir / "report.html", report::to_html(run, *status)); !page) {
    return usage(fmt::format("could not write {}: {}", (dir / "report.html").string(), page.message()));
  }
  fmt::print("report: {}/report.html (and report.json, junit.xml, summary.md, summary.txt)\n", dir.string());
  fmt::print("certification: {}/{} signed by {}: {}{}\n", dir.string(), certify::kRecordFile, status->signer,
             status->overall, record.target.builtin ? " (of the built-in reference server)" : "");
  if (run.interrupted) fmt::print(stderr, "mdmconform: interrupted; the certification records an incomplete run\n");
  return scenario::assess(run).exit_code;
}

int run_verify(const VerifyOptions& options) {
  std::string catalog;
  try {
    catalog = catalog_digest(options.specs_dir);
  } catch (const base::LoadError& e) {
    return usage(e.what());
  }
  std::error_code ec;
  const fs::path record = fs::is_directory(options.record, ec) ? options.record / certify::kRecordFile : options.record;
  certify::VerifyInputs inputs;
  inputs.record = record;
  inputs.signature = record.string() + ".p7s";
  inputs.report = options.report ? *options.report : record.parent_path() / "report.json";
  inputs.ca = options.ca;
  inputs.suite_digest = catalog;
  auto verified = certify::verify(inputs);
  if (!verified) {
    if (verified.error().code == certify::VerifyError::unreadable) return usage(verified.message());
    fmt::print("invalid: {}\n", verified.message());
    return 1;
  }
  const auto& r = verified->record;
  const std::string target = r.target.builtin ? fmt::format("the built-in reference server ({})", r.target.check_in_url)
                                              : fmt::format("{} ({})", r.target.name, r.target.check_in_url);
  fmt::print("valid: {} for {} signed by {} at {}\n", r.overall, target, verified->signer, r.signed_at);
  return 0;
}

CertifyCommands::CertifyCommands(CLI::App& app) {
  certify_ = app.add_subcommand(
      "certify",
      "run the whole catalog against a target and sign the verdict into certification.json beside the report");
  auto& o = certify_options_;
  certify_->add_option("--target", o.target,
                       "target profile (YAML); without it, the built-in reference server, recorded as such");
  certify_->add_option("--cert", o.cert, "the certifier's certificate (PEM; intermediates may follow)")->required();
  certify_->add_option("--key", o.key, "the certifier's private key (PEM, unencrypted)")->required();
  certify_->add_option("--out", o.out, "report folder (default reports/<time>-<target>)");
  certify_->add_option("--seed", seed_, "seed for synthetic UDIDs and UserIDs (default: random, recorded)");
  certify_->add_option("--jobs", o.jobs, "cases run at once, each on its own thread")
      ->check(CLI::Range(1, scenario::kMaxJobs))
      ->capture_default_str();
  certify_->add_option("--confirm", o.confirm, "re-runs of a failing or warning case on fresh devices")
      ->check(CLI::Range(0, scenario::kMaxConfirm))
      ->capture_default_str();
  certify_->add_flag("--strict", o.strict, "a should-level break (warn) fails the certification");
  certify_->add_flag("--quiet", quiet_, "print nothing while the run goes on");
  certify_->add_flag("--verbose", verbose_, "print every case as it ends, with each of its exchanges")
      ->excludes(certify_->get_option("--quiet"));
  // Taken only to refuse them with a reason; not shown in --help.
  selection_ = {certify_->add_option("cases", refused_values_)->group(""),
                certify_->add_option("--tag", refused_values_)->group(""),
                certify_->add_option("--level", refused_values_)->group(""),
                certify_->add_option("--exclude", refused_values_)->group("")};
  overrides_ = {certify_->add_option("--fault", refused_values_)->group(""),
                certify_->add_option("--seeded-bug", refused_values_)->group(""),
                certify_->add_option("--identity-mode", refused_values_)->group("")};

  verify_ = app.add_subcommand("verify", "check a certification.json: its signature, its chain, its report and suite");
  verify_->add_option("FILE", verify_options_.record, "certification.json, or the report folder that holds it")
      ->required();
  verify_->add_option("--ca", verify_options_.ca, "the CA (PEM) a certifier's certificate must chain to")->required();
  verify_->add_option("--report", verify_options_.report, "the report.json it certifies (default: beside it)");
}

std::optional<int> CertifyCommands::dispatch(const std::filesystem::path& specs_dir) {
  if (*verify_) {
    verify_options_.specs_dir = specs_dir;
    return run_verify(verify_options_);
  }
  if (!*certify_) return std::nullopt;
  for (const auto* option : selection_) {
    if (option->count() > 0) {
      return usage(fmt::format("certify runs the whole catalog; {} selects part of it (`run` takes it)",
                               option->get_name() == "cases" ? "a case id" : option->get_name()));
    }
  }
  for (const auto* option : overrides_) {
    if (option->count() > 0) {
      return usage(
          fmt::format("certify takes the target as it is; {} changes it (`run` takes it)", option->get_name()));
    }
  }
  certify_options_.specs_dir = specs_dir;
  certify_options_.seed = seed_ ? *seed_ : std::random_device{}();
  certify_options_.verbosity = quiet_     ? report::Verbosity::quiet
                               : verbose_ ? report::Verbosity::verbose
                                          : report::Verbosity::normal;
  certify_options_.stop = &g_certify_stop;
  std::signal(SIGINT, on_certify_stop);
  std::signal(SIGTERM, on_certify_stop);
  return run_certify(certify_options_);
}

}  // namespace mdmc::cli
