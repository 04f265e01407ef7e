#include "harness/cli/suite.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>

#include "harness/base/bytes.hpp"
#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/cli/apns_log.hpp"
#include "harness/cli/builtin.hpp"
#include "harness/cli/preflight.hpp"
#include "harness/pki/pki.hpp"
#include "harness/pki/scep.hpp"
#include "harness/protocol/rules.hpp"
#include "harness/scenario/assessment.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/target/enrollment.hpp"
#include "harness/target/profile.hpp"
#include "harness/target/session.hpp"
#include "harness/target/yaml_reader.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc::cli {
namespace {

// A case or rule file's bytes, for the suite digest; the loader has just read it under the same cap.
std::string file_bytes(const std::filesystem::path& p) {
  return base::read_file_capped(p, target::kMaxSpecFileBytes).value_or(std::string());
}

SuiteOutcome& fail(SuiteOutcome& out, int code, std::string message) {
  out.exit_code = code;
  out.message = std::move(message);
  return out;
}

// An argument as a POSIX shell reads it back: as is when it holds only characters the shell
// leaves alone, else single-quoted (a quote inside becomes '\'').
std::string shell_quote(std::string_view arg) {
  bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           std::string_view("_-./:=@%+,").find(ch) != std::string_view::npos;
  });
  if (plain) return std::string(arg);
  std::string out = "'";
  for (char ch : arg) {
    if (ch == '\'')
      out += "'\\''";
    else
      out += ch;
  }
  return out + "'";
}

// How the server's certificate was checked, in the words every view uses.
std::string tls_condition(const target::TargetProfile& profile) {
  if (profile.check_in_url.rfind("https://", 0) != 0) return "none (plain HTTP)";
  if (profile.tls.insecure) return "not verified (tls.insecure)";
  if (!profile.tls.ca_pem.empty()) return "verified against the profile's CA (tls.ca)";
  return "verified against the system store";
}

// What the run met at the enrollment profile's URL or file, in one line.
std::string enrollment_condition(const target::TargetProfile& profile) {
  if (!profile.enrolled) return {};
  const auto& record = *profile.enrolled;
  if (!record.profile) return fmt::format("{}: not read ({})", record.source, record.error);
  const auto& p = *record.profile;
  std::string signature = "unsigned";
  if (p.signature == enroll::ProfileSignature::verified) signature = "signed by " + p.signer_subject + ", verified";
  if (p.signature == enroll::ProfileSignature::untrusted) signature = "signed by " + p.signer_subject + ", untrusted";
  if (p.signature == enroll::ProfileSignature::invalid) signature = "signature does not hold";
  return fmt::format("{} ({}; sha256 {}; {} schema problem(s))", record.source, signature, p.sha256.substr(0, 16),
                     p.problems.size());
}

void record_conditions(scenario::RunResult& run, const SuiteOptions& options, std::size_t catalog_cases,
                       const std::vector<scenario::Case>& selected, const target::TargetProfile& profile) {
  auto& conditions = run.conditions;
  conditions.selection = options.selection;
  conditions.tags = options.tags;
  for (auto level : options.levels) conditions.levels.emplace_back(scenario::level_name(level));
  conditions.catalog_cases = catalog_cases;
  conditions.excluded = options.excludes;
  // Every selected case, run or not: an interrupted run's record still says what it was asked.
  conditions.selected_cases.clear();
  for (const auto& c : selected) conditions.selected_cases.push_back(c.id);
  conditions.strict = options.strict;
  conditions.require_complete = options.require_complete;
  conditions.tls = tls_condition(profile);
  conditions.value_origins.clear();
  if (profile.enrollment) {
    for (const auto& [key, origin] : profile.origins) conditions.value_origins.push_back(key + ": " + origin);
  }
  conditions.enrollment = enrollment_condition(profile);
}

}  // namespace

std::optional<BuiltinEnrollment> builtin_enrollment_from_name(std::string_view name) {
  if (name == "scep") return BuiltinEnrollment::scep;
  if (name == "cases") return BuiltinEnrollment::cases;
  if (name == "off") return BuiltinEnrollment::off;
  return std::nullopt;
}

std::string_view builtin_enrollment_name(BuiltinEnrollment e) {
  switch (e) {
    case BuiltinEnrollment::scep: return "scep";
    case BuiltinEnrollment::cases: return "cases";
    case BuiltinEnrollment::off: return "off";
  }
  return "scep";
}

std::optional<std::string> pool_shortfall(const target::TargetProfile& profile,
                                          const std::vector<scenario::Case>& cases, int confirm) {
  const auto& id = profile.identity;
  // Through SCEP every device enrolls an identity of its own: no pool to run out.
  if (id.mode == target::IdentityMode::none || id.issuer || (id.pool.empty() && profile.enrollment)) {
    return std::nullopt;
  }
  auto need = scenario::identities_needed(cases, confirm);
  need.preflight = 1;  // preflight_enrollment's device
  if (need.total() <= id.pool.size()) return std::nullopt;
  return fmt::format(
      "the run needs up to {} device identities ({}); the profile's pool has {}: add identities to "
      "identity.pool, give an identity.issuer, or {}",
      need.total(), need.explain(), id.pool.size(), need.confirm > 0 ? "lower --confirm" : "select fewer cases");
}

std::string reproducer_for(const SuiteOptions& options, const std::string& case_id) {
  std::string out = "mdmconform";
  std::error_code ec;
  if (!std::filesystem::equivalent(options.specs_dir, default_specs_dir(), ec)) {
    out += " --specs " + shell_quote(std::filesystem::absolute(options.specs_dir, ec).string());
  }
  out += fmt::format(" run --seed {}", options.seed);
  if (options.target) {
    out += " --target " + shell_quote(std::filesystem::absolute(*options.target, ec).string());
  }
  if (options.builtin_fault != server::Fault::none) {
    out += " --fault " + shell_quote(server::fault_info(options.builtin_fault).name);
  }
  if (options.builtin_seeded_bug != server::SeededBug::none) {
    out += " --seeded-bug " + shell_quote(server::seeded_bug_info(options.builtin_seeded_bug).name);
  }
  if (options.identity_mode) {
    out += " --identity-mode " + shell_quote(protocol::identity_mode_name(*options.identity_mode));
  }
  // The enrollment cases' devices enroll through SCEP either way; every other device's
  // identity, and so its certificate's key type, depends on it.
  if (!options.target && options.builtin_enrollment != BuiltinEnrollment::scep) {
    out += " --builtin-enrollment " + std::string(builtin_enrollment_name(options.builtin_enrollment));
  }
  return out + " " + shell_quote(case_id);
}

Selection selection_of(const SuiteOptions& options) {
  return {options.selection, options.excludes, options.tags, options.levels};
}

std::string suite_digest(const std::filesystem::path& specs_dir, const std::vector<scenario::Case>& cases) {
  std::string bytes = file_bytes(specs_dir / "rules.yaml");
  for (const auto& c : cases) bytes += c.id + "\n" + file_bytes(c.file);
  return base::sha256_hex(bytes);
}

std::string catalog_digest(const std::filesystem::path& specs_dir) {
  const auto rules = scenario::load_rules(specs_dir / "rules.yaml");
  return suite_digest(specs_dir, scenario::load_suite(specs_dir / "scenarios", rules));
}

std::filesystem::path default_specs_dir() {
  std::error_code ec;
  if (std::filesystem::exists("specs/rules.yaml", ec)) return "specs";
  return std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
}

SuiteOutcome run_suite(const SuiteOptions& options) {
  SuiteOutcome out;
  try {
    auto rules = scenario::load_rules(options.specs_dir / "rules.yaml");
    auto split =
        select_cases(scenario::load_suite(options.specs_dir / "scenarios", rules), selection_of(options), rules);
    if (!split) return fail(out, 2, split.error().message);
    std::vector<scenario::Case> cases = std::move(split->selected);
    std::map<std::string, std::vector<std::string>> catalog_cases_by_rule;
    for (const auto* part : {&cases, &split->not_selected}) {
      for (const auto& c : *part) {
        for (const auto& rule : c.rules) catalog_cases_by_rule[rule].push_back(c.id);
      }
    }
    const std::size_t all_ids = cases.size() + split->not_selected.size();

    // A run that stops from here on is recorded as started now (record_stopped_run).
    auto started_at = base::now_rfc3339();
    out.run.started_at = started_at;
    // The built-in server serves until the suite is over.
    std::optional<Builtin> builtin;
    target::TargetProfile profile;
    if (options.target) {
      profile = target::load_profile(*options.target);
    } else {
      BuiltinOptions builtin_options{options.specs_dir, options.builtin_fault, options.builtin_seeded_bug,
                                     options.identity_mode};
      builtin_options.scep = options.builtin_enrollment != BuiltinEnrollment::off;
      builtin_options.scep_server = options.builtin_scep;
      builtin_options.external_scep = options.builtin_external_scep;
      builtin_options.devices_through_scep = options.builtin_enrollment == BuiltinEnrollment::scep;
      auto started = start_builtin(builtin_options);
      if (!started) return fail(out, started.error().code == BuiltinError::listen ? 3 : 2, started.error().message);
      builtin = std::move(started).value();
      profile = builtin->profile;
    }
    // The server's enrollment profile fills in what the target profile leaves to it; a mode
    // given on the command line still stands over both.
    if (auto enrolled = target::apply_enrollment(profile); !enrolled) {
      out.run.target_name = profile.name;
      out.run.profile_digest = profile.digest;
      std::vector<scenario::TranscriptEntry> fetch;
      if (profile.enrolled && profile.enrolled->fetch) {
        fetch.push_back(
            scenario::transcript_entry("enrollment", "GET the enrollment profile", *profile.enrolled->fetch, -1));
      }
      out.run.cases.push_back(stopped_case(enrolled.error().message, std::move(fetch)));
      return fail(out, enrolled.error().code == target::EnrollmentError::unreachable ? 3 : 1, enrolled.error().message);
    }
    if (options.identity_mode) {
      profile.identity.mode = *options.identity_mode;
      profile.origins["identity.mode"] = "command line";
    }
    out.run.target_name = profile.name;
    out.run.target_url = profile.check_in_url;
    out.run.profile_digest = profile.digest;
    out.run.identity_mode = std::string(protocol::identity_mode_name(profile.identity.mode));
    if (auto shortfall = pool_shortfall(profile, cases, options.confirm)) return fail(out, 2, *shortfall);

    if (auto unreachable = target::probe_reachable(profile)) {
      out.exit_code = 3;
      out.message = "target unreachable: " + *unreachable;
      return out;
    }
    if (options.on_target_ready) {
      if (auto refused = options.on_target_ready(profile)) return fail(out, 2, *refused);
    }
    // The built-in server's devices enroll through SCEP with one RSA key made for the run: each
    // still gets a certificate of its own, which is what the server binds (docs/reference-server.md),
    // and the run no longer spends most of its time making a 2048-bit key per device. A target
    // keeps a key per device, as Macs have: its SCEP server may take a request with a known key
    // (and transactionID, the key's hash) for a resend.
    // Its scepserver companion takes one PKIOperation at a time (enroll::ScepLimits::one_at_a_time),
    // whatever --jobs says.
    if (builtin) profile.identity.scep_limits.one_at_a_time = std::make_shared<std::mutex>();
    if (builtin && profile.identity.scep && profile.identity.pool.empty() && !profile.identity.issuer) {
      const auto& request = *profile.identity.scep;
      auto key = pki::scep::generate_key(request.key_type, request.key_size);
      if (!key) return fail(out, 2, "the run's SCEP key: " + key.message());
      profile.identity.scep_key_pem = *std::move(key);
    }
    // The run's identities: the preflight's device takes one, and no device after it the same.
    target::IdentityPool identities(profile.identity);
    auto preflight = preflight_enrollment(profile, identities, options.seed, options.stop);
    if (preflight.exit_code != 0) {
      out.run.cases.push_back(stopped_case(preflight.message, std::move(preflight.transcript)));
      return fail(out, preflight.exit_code, preflight.message);
    }
    // No device can enroll where the enrollment profile sends it: only the cases that check
    // the CheckInURL run; the others are not run, with why.
    std::vector<scenario::Case> blocked;
    if (preflight.check_in_url_refused) {
      auto checks_url = [](const scenario::Case& c) {
        return std::find(c.rules.begin(), c.rules.end(), protocol::rule::kEnrCheckinUrl) != c.rules.end();
      };
      auto split_at = std::stable_partition(cases.begin(), cases.end(), checks_url);
      blocked.assign(std::make_move_iterator(split_at), std::make_move_iterator(cases.end()));
      cases.erase(split_at, cases.end());
    }
    // The fake APNs the server pushes to: the built-in server's own, or one serving the
    // profile's push: for the run.
    std::unique_ptr<push::FakeApns> own_apns;
    push::FakeApns* apns = builtin && builtin->apns ? builtin->apns.get() : nullptr;
    if (!apns && profile.push && !profile.push->builtin) {
      auto started = start_fake_apns(*profile.push);
      if (!started) return fail(out, 2, started.message());
      own_apns = std::move(started->apns);
      apns = own_apns.get();
    }
    std::optional<ApnsLog> push_log;
    if (apns) push_log.emplace(*apns);
    scenario::RunOptions run_options;
    run_options.pushes = push_log ? &*push_log : nullptr;
    run_options.identities = &identities;
    run_options.seed = options.seed;
    run_options.on_case = options.on_case;
    if (options.on_case_start) {
      run_options.on_case_start = [&options](const scenario::Case& c) { options.on_case_start(c.id); };
    }
    if (options.on_suite_start) options.on_suite_start(cases.size());
    run_options.stop = options.stop;
    run_options.jobs = options.jobs > 0 ? options.jobs : builtin ? kBuiltinJobs : 1;
    run_options.confirm = options.confirm;
    run_options.continue_after_wedge = options.continue_after_wedge;
    out.run = scenario::run_suite(cases, profile, rules, run_options);
    if (preflight.check_in_url_refused) {
      for (const auto& c : blocked) {
        scenario::CaseResult skipped;
        skipped.id = c.id;
        skipped.title = c.title;
        skipped.rules = c.rules;
        skipped.verdict = scenario::Verdict::skip;
        skipped.reason = "not run: " + *preflight.check_in_url_refused;
        out.run.cases.push_back(std::move(skipped));
      }
      std::stable_sort(out.run.cases.begin(), out.run.cases.end(),
                       [](const auto& a, const auto& b) { return a.id < b.id; });
      cases.insert(cases.end(), std::make_move_iterator(blocked.begin()), std::make_move_iterator(blocked.end()));
      std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      out.run.rules = scenario::summarize_rules(out.run.cases, rules.levels());
      out.run.notes.push_back(*preflight.check_in_url_refused + "; only the cases that check ENR-CHECKIN-URL ran");
    }
    if (const auto& wedge = out.run.wedged) {
      auto not_run = std::count_if(out.run.cases.begin(), out.run.cases.end(), [&](const scenario::CaseResult& c) {
        return c.verdict == scenario::Verdict::skip && c.reason == scenario::not_run_reason(*wedge);
      });
      out.run.notes.push_back(out.run.continued_after_wedge
                                  ? fmt::format("the target was wedged since {} ({}); later cases ran all the same "
                                                "(--continue-after-wedge), and their verdicts meet a wedged server",
                                                wedge->after_case, wedge->detail)
                                  : fmt::format("the target was wedged since {} ({}); {} later case(s) not run "
                                                "(--continue-after-wedge runs them)",
                                                wedge->after_case, wedge->detail, not_run));
    }
    out.run.started_at = started_at;
    if (preflight.note) out.run.notes.push_back(*preflight.note);
    out.run.suite_digest = suite_digest(options.specs_dir, cases);
    if (builtin) out.run.builtin_fault = std::string(server::fault_info(options.builtin_fault).name);
    if (builtin && options.builtin_seeded_bug != server::SeededBug::none) {
      out.run.notes.push_back(fmt::format("the built-in server ran with seeded bug {}: {}",
                                          server::seeded_bug_info(options.builtin_seeded_bug).name,
                                          server::seeded_bug_info(options.builtin_seeded_bug).behaviour));
    }
    out.run.identity_mode = std::string(protocol::identity_mode_name(profile.identity.mode));
    if (profile.tls.insecure) {
      out.run.notes.push_back(
          "TLS verification was off (tls.insecure in the profile): the server's certificate was not checked");
    }
    for (auto& c : out.run.cases) {
      if (c.verdict == scenario::Verdict::fail || c.verdict == scenario::Verdict::warn) {
        c.reproducer = reproducer_for(options, c.id);
      }
    }
    record_conditions(out.run, options, all_ids, cases, profile);
    scenario::explain_untested(out.run, catalog_cases_by_rule);
    out.exit_code = scenario::assess(out.run).exit_code;
  } catch (const base::LoadError& e) {
    out.exit_code = 2;
    out.message = e.what();
  }
  return out;
}

}  // namespace mdmc::cli
