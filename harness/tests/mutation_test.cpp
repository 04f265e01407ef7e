// The mutation self-test: the suite against the reference server in every fault mode, in
// identity mode both and, for the faults that depend on how identity is proved, in every
// identity mode; the other rows skip unless MDMC_MUTATION_MATRIX=full (docs/ci.md). The correct server
// passes every case; each fault fails exactly the rules it is declared to break. A rule check
// that cannot fail, or a fault that breaks more than it says, shows here.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <set>
#include <tuple>

#include "harness/cli/suite.hpp"
#include "harness/net/http_client.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/protocol/rules.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/testing/fake_scep_server.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace protocol {
// Test names and failure messages show the mode by name.
void PrintTo(IdentityMode mode, std::ostream* os) { *os << identity_mode_name(mode); }
}  // namespace protocol

namespace {

using protocol::IdentityMode;
using scenario::Verdict;

// A rule the server broke: a must or should rule that fails or warns, or a may rule (info) the
// server does not use. A may rule the server uses is info too, and not broken.
bool broken(const scenario::RuleResult& rule) {
  switch (rule.verdict) {
    case Verdict::fail:
    case Verdict::warn: return true;
    case Verdict::info: return rule.uses_option == false;
    case Verdict::pass:
    case Verdict::skip:
    case Verdict::error: return false;
  }
  return false;
}

std::set<std::string> failed_rules(const scenario::RunResult& run) {
  std::set<std::string> out;
  for (const auto& rule : run.rules) {
    if (broken(rule)) out.insert(rule.id);
  }
  return out;
}

long count_cases(const scenario::RunResult& run, std::initializer_list<Verdict> verdicts) {
  return std::count_if(run.cases.begin(), run.cases.end(), [&](const auto& c) {
    return std::find(verdicts.begin(), verdicts.end(), c.verdict) != verdicts.end();
  });
}

std::string case_lines(const scenario::RunResult& run) {
  std::string out;
  for (const auto& c : run.cases) {
    out += fmt::format("  {} {}: {}\n", scenario::verdict_name(c.verdict), c.id, c.reason);
  }
  return out;
}

// Cases that check identity binding, or enroll an identity through SCEP, cannot run without
// identities: they skip, with a reason.
bool needs_identity(const std::string& case_id) {
  return case_id.rfind("enr/same_identity", 0) == 0 || case_id == "enr/scep";
}

// The SCEP server the built-in server's enrollment profile names: the in-process fake (ctest
// runs each test in a process of its own, and a scepserver companion costs each a process and a
// CA). Only the enrollment cases' devices enroll
// through it (BuiltinEnrollment::cases); the others take the test CA's identities, for speed.
// Debian's scepserver itself is met by the enrollment end-to-end tests and the default run's.
std::optional<server::ScepEnrollment> shared_scep() {
  static testing::FakeScepServer fake({testing::FakeScepMode::success});
  static const auto url = fake.start();
  if (!url) return std::nullopt;
  return server::ScepEnrollment{*url, "", testing::FakeScepServer::ca().cert_pem};
}

// The faults whose expected breaks, or whose mechanism, depend on how a device proves its
// identity (harness/server/mdm_service.cpp's identity_of and check_binding, the enrollment
// profile's SignMessage, the liveness probe's enrollment): these run in every identity mode.
// Every other fault acts on what a request says, not on who sent it, and runs in mode both, the
// default run's. MDMC_MUTATION_MATRIX=full runs every fault in every mode (docs/ci.md).
bool depends_on_identity(const server::FaultInfo& fault) {
  static const std::set<server::Fault> kByMechanism = {
      server::Fault::none,                          // the correct server passes in every mode
      server::Fault::authenticate_refused,          // binding starts at Authenticate
      server::Fault::identity_not_bound,            // the binding itself
      server::Fault::unknown_device_served,         // binds a UDID it never saw to the identity it came with
      server::Fault::scep_identity_refused,         // which CA's identities count, over TLS and in Mdm-Signature
      server::Fault::enrollment_profile_malformed,  // the profile carries SignMessage by mode
      server::Fault::checkin_on_server_url_only,    // no Mac enrolls: every case skips, in every mode
      server::Fault::writes_wedged_after_no_udid,   // the liveness probe's identity and its wedge
  };
  if (kByMechanism.count(fault.fault)) return true;
  // Rules a mode without identities cannot test (their cases skip): the expected breaks differ.
  return std::any_of(fault.breaks.begin(), fault.breaks.end(), [](std::string_view rule) {
    return rule == protocol::rule::kEnrSameIdentity || rule == protocol::rule::kEnrScep;
  });
}

bool full_matrix() {
  const char* matrix = std::getenv("MDMC_MUTATION_MATRIX");
  return matrix && std::string_view(matrix) == "full";
}

std::vector<std::string> fault_names() {
  std::vector<std::string> names;
  for (const auto& f : server::fault_catalog()) names.emplace_back(f.name);
  return names;
}

class MutationTest : public ::testing::TestWithParam<std::tuple<std::string, IdentityMode>> {};

TEST_P(MutationTest, FailsExactlyTheRulesTheFaultBreaks) {
  const auto& [fault_name, mode] = GetParam();
  const auto& fault = server::fault_info(*server::fault_from_name(fault_name));
  // Every row is listed whatever the environment, so that a row is never silently missing: the
  // ones left out of the per-commit matrix say so.
  if (mode != IdentityMode::both && !depends_on_identity(fault) && !full_matrix()) {
    GTEST_SKIP() << "acts on what a request says, not on who sent it: mode both covers it "
                    "(MDMC_MUTATION_MATRIX=full runs it in every mode)";
  }
  cli::SuiteOptions options;
  options.specs_dir = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
  options.builtin_fault = fault.fault;
  options.identity_mode = mode;
  options.seed = 20261129;
  options.builtin_enrollment = cli::BuiltinEnrollment::cases;
  options.builtin_external_scep = shared_scep();
  // Cases at once, as `mdmconform run` against the built-in server: the push windows overlap. The
  // wedge is checked as --jobs 1 sees it, every case after the wedging one not run.
  options.jobs = fault.fault == server::Fault::writes_wedged_after_no_udid ? 1 : cli::kBuiltinJobs;
  ASSERT_TRUE(options.builtin_external_scep) << "the in-process SCEP server did not start";
  // Pushes do not depend on how a device proves its identity: the push cases, which wait out
  // their windows, run in one identity mode (both) only, and every push fault runs in each.
  const bool push_cases = mode == IdentityMode::both;
  if (!push_cases) options.excludes.push_back("psh/");
  auto outcome = cli::run_suite(options);
  ASSERT_TRUE(outcome.exit_code == 0 || outcome.exit_code == 1) << outcome.message;

  std::set<std::string> expected(fault.breaks.begin(), fault.breaks.end());
  if (!push_cases) std::erase_if(expected, [](const std::string& id) { return id.rfind("PSH-", 0) == 0; });
  if (mode == IdentityMode::none) {
    expected.erase("ENR-SAME-IDENTITY");
    expected.erase("ENR-SCEP");
  }
  auto failed = failed_rules(outcome.run);
  EXPECT_EQ(failed, expected) << "fault " << fault.name << ":\n" << case_lines(outcome.run);
  for (const auto& c : outcome.run.cases) {
    EXPECT_NE(c.verdict, Verdict::error) << c.id << ": " << c.reason;
    bool skips = mode == IdentityMode::none && needs_identity(c.id);
    if (skips) {
      EXPECT_EQ(c.verdict, Verdict::skip) << c.id;
      EXPECT_FALSE(c.reason.empty()) << c.id;
    } else if (fault.fault == server::Fault::none) {
      EXPECT_EQ(c.verdict, Verdict::pass) << c.id << ": " << c.reason;
    }
  }
  // Only the fault that stops the server serving writes is a wedge: blamed on the case that sent
  // the message without a UDID, with every later case not run (untested, not error).
  if (fault.fault == server::Fault::writes_wedged_after_no_udid) {
    ASSERT_TRUE(outcome.run.wedged.has_value()) << case_lines(outcome.run);
    EXPECT_EQ(outcome.run.wedged->after_case, "rob/wrong_message");
    EXPECT_NE(outcome.run.wedged->detail.find("stopped serving writes after rob/wrong_message step 2"),
              std::string::npos)
        << outcome.run.wedged->detail;
    bool after = false;
    int not_run = 0;
    for (const auto& c : outcome.run.cases) {
      if (after) {
        EXPECT_EQ(c.verdict, Verdict::skip) << c.id;
        EXPECT_EQ(c.reason, "not run: target wedged since rob/wrong_message") << c.id;
        ++not_run;
      }
      if (c.id == "rob/wrong_message") {
        after = true;
        EXPECT_EQ(c.verdict, Verdict::fail) << c.reason;
        EXPECT_FALSE(c.flaky) << "a deterministic failure, not confirmed against a wedged target";
        EXPECT_TRUE(c.attempts.empty());
      }
    }
    EXPECT_GT(not_run, 0);
    EXPECT_EQ(outcome.exit_code, 1);
  } else {
    EXPECT_FALSE(outcome.run.wedged.has_value()) << "fault " << fault.name << ": " << outcome.run.wedged->detail;
  }
  // No device can enroll where the enrollment profile sends it: only the CheckInURL case runs,
  // and every other case says why it did not.
  if (fault.fault == server::Fault::checkin_on_server_url_only) {
    for (const auto& c : outcome.run.cases) {
      if (c.id == "enr/checkin_url") continue;
      EXPECT_EQ(c.verdict, Verdict::skip) << c.id;
      EXPECT_NE(c.reason.find("no Mac could enroll"), std::string::npos) << c.id << ": " << c.reason;
    }
  }
  // Only requests that overlap meet the shared slot: chn/concurrent, whose series run at once
  // round after round, fails on every attempt; chn/concurrent_interleaved, in lockstep, passes.
  if (fault.fault == server::Fault::shared_response_slot) {
    int seen = 0;
    for (const auto& c : outcome.run.cases) {
      if (c.id == "chn/concurrent") {
        ++seen;
        EXPECT_EQ(c.verdict, Verdict::fail) << c.reason;
        EXPECT_FALSE(c.flaky) << "a confirmation re-run did not catch it: " << c.reason;
      } else if (c.id == "chn/concurrent_interleaved") {
        ++seen;
        EXPECT_EQ(c.verdict, Verdict::pass) << c.reason;
      }
    }
    EXPECT_EQ(seen, 2);
  }
  // A may rule is an option: tested, it is info whether the server uses it or not, never a warn.
  for (const auto& rule : outcome.run.rules) {
    if (rule.level != scenario::Level::may || rule.verdict == Verdict::skip) continue;
    EXPECT_EQ(rule.verdict, Verdict::info) << rule.id;
    EXPECT_TRUE(rule.uses_option.has_value()) << rule.id;
  }
  // A broken should-level rule warns and leaves the exit code 0; a broken must-level rule fails.
  bool any_fail = std::any_of(outcome.run.cases.begin(), outcome.run.cases.end(),
                              [](const auto& c) { return c.verdict == Verdict::fail; });
  EXPECT_EQ(outcome.exit_code, any_fail ? 1 : 0);

  // The table for the closing note and the README, one line per fault and mode. "broken" lists
  // the rules the run caught (a may rule when the server does not use the option); the counts
  // are of cases that fail or warn, and of cases that are info (only a may-level option unused).
  std::ofstream table("mutation_table.txt", std::ios::app);
  table << fmt::format("{:<10} {:<24} expected {:<20} broken {:<20} failing cases {} info cases {}\n",
                       protocol::identity_mode_name(mode), fault.name,
                       expected.empty() ? "-" : fmt::format("{}", fmt::join(expected, ",")),
                       failed.empty() ? "-" : fmt::format("{}", fmt::join(failed, ",")),
                       count_cases(outcome.run, {Verdict::fail, Verdict::warn}),
                       count_cases(outcome.run, {Verdict::info}));
}

INSTANTIATE_TEST_SUITE_P(EveryFaultInEveryIdentityMode, MutationTest,
                         ::testing::Combine(::testing::ValuesIn(fault_names()),
                                            ::testing::Values(IdentityMode::none, IdentityMode::mtls,
                                                              IdentityMode::signature, IdentityMode::both)),
                         [](const auto& param_info) {
                           std::string name = std::get<0>(param_info.param) + "_" +
                                              std::string(protocol::identity_mode_name(std::get<1>(param_info.param)));
                           for (auto& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

std::vector<std::string> seeded_bug_names() {
  std::vector<std::string> names;
  for (const auto& b : server::seeded_bug_catalog()) {
    if (b.bug != server::SeededBug::none) names.emplace_back(b.name);
  }
  return names;
}

// Seeded bugs are for fuzzers to find: only odd input reaches them, so the whole suite passes
// with any of them on, as it does against the correct server.
class SeededBugTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SeededBugTest, TheWholeSuiteStillPasses) {
  cli::SuiteOptions options;
  options.specs_dir = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
  options.builtin_seeded_bug = *server::seeded_bug_from_name(GetParam());
  options.seed = 20261129;
  auto outcome = cli::run_suite(options);
  ASSERT_EQ(outcome.exit_code, 0) << outcome.message << "\n" << case_lines(outcome.run);
  ASSERT_FALSE(outcome.run.cases.empty());
  for (const auto& c : outcome.run.cases) EXPECT_EQ(c.verdict, Verdict::pass) << c.id << ": " << c.reason;
  bool noted = std::any_of(outcome.run.notes.begin(), outcome.run.notes.end(),
                           [&](const std::string& note) { return note.find(GetParam()) != std::string::npos; });
  EXPECT_TRUE(noted) << "the report does not say which seeded bug the server ran with";
  EXPECT_NE(cli::reproducer_for(options, "rob/alive").find(" --seeded-bug " + GetParam() + " "), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(EverySeededBug, SeededBugTest, ::testing::ValuesIn(seeded_bug_names()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (auto& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// The seeded bugs that act on the connection do so behind the real HTTP server.
TEST(SeededBugOverHttp, DeepNestingResetsAndALongStringOutlastsTheClientDeadline) {
  auto idle_with = [](plist::Value extra) {
    auto idle =
        protocol::report({"23EB7CD8-5567-5E97-827F-06E4E4C456B2", ""}, nullptr, {protocol::Status::idle, {}, {}});
    idle["Extra"] = std::move(extra);
    return plist::to_xml(plist::Value(idle));
  };
  plist::Value deep = "leaf";
  for (int i = 0; i < 20; ++i) deep = plist::Array{deep};
  struct Probe {
    server::SeededBug bug;
    std::string body;
    net::TransportError expected;
  };
  for (const auto& probe :
       {Probe{server::SeededBug::deep_nesting_reset, idle_with(deep), net::TransportError::connection_reset},
        Probe{server::SeededBug::long_string_hang, idle_with(std::string(5000, 'x')),
              net::TransportError::header_timeout}}) {
    server::Config config;
    config.seeded_bug = probe.bug;
    server::ReferenceServer server(config);
    auto port_listening = server.listen("127.0.0.1", 0);
    ASSERT_TRUE(port_listening) << port_listening.message();
    auto port = port_listening.value_or(0);
    server.start();
    net::ClientLimits limits;
    limits.header_timeout = std::chrono::milliseconds(300);
    net::HttpClient client(limits);
    net::Request request;
    request.url = fmt::format("http://127.0.0.1:{}/mdm", port);
    request.body = probe.body;
    auto odd = client.send(request);
    EXPECT_EQ(odd.error, probe.expected) << server::seeded_bug_info(probe.bug).name << ": "
                                         << net::transport_error_name(odd.error);
    request.body = idle_with("short");
    auto plain = client.send(request);
    ASSERT_TRUE(plain.ok()) << net::transport_error_name(plain.error);
    EXPECT_EQ(plain.response->status, 403) << "an unknown device, refused as the correct server does";
  }
}

}  // namespace
}  // namespace mdmc
