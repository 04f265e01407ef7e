// The robustness cases test what their rules name and nothing else: every deliberately wrong
// message is the actor's own well-formed message with exactly one fault, so the same message
// without its fault is one the reference server accepts; and a fault in a key touches only a
// key the server needs, never an optional one it may ignore whatever its type (docs/verdicts.md).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <set>

#include "harness/cli/builtin.hpp"
#include "harness/cli/suite.hpp"
#include "harness/net/http_server.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/scenario/runner.hpp"
#include "harness/scenario/spec.hpp"
#include "harness/server/faults.hpp"
#include "harness/server/mdm_service.hpp"
#include "harness/testing/files.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;
using scenario::Case;
using scenario::Verdict;

struct Suite {
  scenario::RuleCatalog rules = scenario::load_rules(fs::path(MDMC_SOURCE_DIR) / "specs/rules.yaml");
  std::vector<Case> cases = scenario::load_suite(fs::path(MDMC_SOURCE_DIR) / "specs/scenarios", rules);
};

// The case up to its step `k`, that step without its fault and expecting a 2xx.
Case control_of(const Case& c, std::size_t k) {
  Case control = c;
  control.id = fmt::format("{} (step {} without its fault)", c.id, k + 1);
  control.steps.resize(k + 1);
  scenario::Expectation accepted;
  accepted.rule = c.rules.front();
  accepted.status.classes = {2};
  std::visit(
      [&](auto& step) {
        using S = std::decay_t<decltype(step)>;
        if constexpr (std::is_same_v<S, scenario::CheckInStep> || std::is_same_v<S, scenario::ReportStep>) {
          step.override_keys = {};
          step.fault = {};
          step.expect = {accepted};
        }
      },
      control.steps[k].kind);
  return control;
}

TEST(RobustnessCases, EveryFaultedMessageWithoutItsFaultIsAccepted) {
  Suite suite;
  cli::BuiltinOptions options{fs::path(MDMC_SOURCE_DIR) / "specs"};
  options.scep = false;  // the controls are no enrollment cases
  auto builtin = cli::start_builtin(options);
  ASSERT_TRUE(builtin) << builtin.error().message;
  int controls = 0;
  std::set<std::string> robustness_cases;
  for (const auto& c : suite.cases) {
    for (std::size_t k = 0; k < c.steps.size(); ++k) {
      const auto& step = c.steps[k];
      if (!step.faulted()) continue;
      ASSERT_FALSE(std::holds_alternative<scenario::ParallelStep>(step.kind))
          << c.id << ": a fault inside a parallel step has no control here; add one";
      auto control = control_of(c, k);
      auto result = scenario::run_case(control, builtin->profile, suite.rules, 20261206);
      EXPECT_EQ(result.verdict, Verdict::pass) << control.id << " (line " << step.line() << "): " << result.reason;
      ++controls;
      robustness_cases.insert(c.id);
    }
  }
  EXPECT_GE(controls, 10) << "every robustness step has its control";
  for (const auto& c : suite.cases) {
    if (c.id.rfind("rob/", 0) == 0) EXPECT_TRUE(robustness_cases.count(c.id)) << c.id << " sends no faulted message";
  }
}

// The keys a server needs to act on a message at all: those naming its kind, its channel and
// its command, and what a TokenUpdate stores. Each is required by Apple's schema; a message
// without one (or with one of another type) cannot be handled, so refusing it is the server's
// responsibility. A key outside this list may be one the server does not use, and a server may
// ignore it, whatever its type.
const std::set<std::string> kKeysTheServerNeeds = {"MessageType", "Status", "UDID",  "UserID",
                                                   "CommandUUID", "Topic",  "Token", "PushMagic"};

TEST(RobustnessCases, FaultsInKeysTouchOnlyKeysTheServerNeeds) {
  Suite suite;
  int checked = 0;
  for (const auto& c : suite.cases) {
    for (const auto& step : c.steps) {
      const scenario::Override* o = nullptr;
      if (const auto* s = std::get_if<scenario::CheckInStep>(&step.kind)) o = &s->override_keys;
      if (const auto* s = std::get_if<scenario::ReportStep>(&step.kind)) o = &s->override_keys;
      if (!o) continue;
      std::vector<std::string> keys = o->drop;
      for (const auto& [key, value] : o->set) keys.push_back(key);
      for (const auto& [key, type] : o->retype) keys.push_back(key);
      for (const auto& key : keys) {
        EXPECT_TRUE(kKeysTheServerNeeds.count(key))
            << c.id << " line " << step.line() << ": the fault is in " << key << ", a key a server may not use";
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 4);
}

// The built-in server in `fault` mode, these cases, this seed.
cli::SuiteOptions builtin_run(server::Fault fault, std::vector<std::string> selection, std::uint64_t seed) {
  cli::SuiteOptions options;
  options.specs_dir = fs::path(MDMC_SOURCE_DIR) / "specs";
  options.builtin_fault = fault;
  options.selection = std::move(selection);
  options.seed = seed;
  return options;
}

// A server that stops serving writes is caught once and blamed on the case that broke it; the
// later cases are not run (untested), and the run exits 1, unless told to go on.
TEST(WedgedTarget, TheCaseBeforeIsBlamedAndTheLaterOnesAreNotRunUnlessAsked) {
  auto options =
      builtin_run(server::Fault::writes_wedged_after_no_udid, {"rob/wrong_message", "syn/empty_end_device"}, 7);
  // One case at a time: with several jobs the later case may run before the wedging one does.
  options.jobs = 1;
  auto stopped = cli::run_suite(options);
  ASSERT_EQ(stopped.run.cases.size(), 2u) << stopped.message;
  ASSERT_TRUE(stopped.run.wedged);
  EXPECT_EQ(stopped.run.wedged->after_case, "rob/wrong_message");
  EXPECT_EQ(stopped.run.cases[0].verdict, Verdict::fail);
  EXPECT_EQ(stopped.run.cases[1].verdict, Verdict::skip);
  EXPECT_EQ(stopped.run.cases[1].reason, "not run: target wedged since rob/wrong_message");
  EXPECT_TRUE(stopped.run.cases[1].transcript.empty()) << "nothing was sent";
  EXPECT_EQ(stopped.exit_code, 1);
  ASSERT_EQ(stopped.run.notes.size(), 1u);
  EXPECT_NE(stopped.run.notes[0].find("1 later case(s) not run"), std::string::npos) << stopped.run.notes[0];

  options.continue_after_wedge = true;
  auto went_on = cli::run_suite(options);
  ASSERT_EQ(went_on.run.cases.size(), 2u) << went_on.message;
  ASSERT_TRUE(went_on.run.wedged);
  EXPECT_TRUE(went_on.run.continued_after_wedge);
  EXPECT_FALSE(went_on.run.cases[1].transcript.empty()) << "the later case ran";
  EXPECT_NE(went_on.run.cases[1].verdict, Verdict::pass) << "its writes hang";
  EXPECT_EQ(went_on.exit_code, 1);
}

// The correct server is never called wedged, however many cases run.
TEST(WedgedTarget, TheCorrectServerIsNeverCalledWedged) {
  auto options = builtin_run(server::Fault::none, {"rob/"}, 7);
  auto run = cli::run_suite(options);
  EXPECT_EQ(run.exit_code, 0) << run.message;
  EXPECT_FALSE(run.run.wedged);
  int probes = 0;
  for (const auto& c : run.run.cases) {
    for (const auto& f : c.findings) probes += f.rule == "ROB-ALIVE" && f.passed ? 1 : 0;
  }
  EXPECT_GE(probes, 9) << "a passing ROB-ALIVE finding after each robustness step";
}

// Several jobs: a case with robustness steps runs alone, so the wedge is still blamed on the
// case that caused it, and no other case fails ROB-ALIVE for it.
TEST(WedgedTarget, SeveralJobsBlameTheSameCase) {
  auto options = builtin_run(server::Fault::writes_wedged_after_no_udid, {"rob/", "chn/"}, 1);
  options.jobs = 4;
  auto run = cli::run_suite(options);
  ASSERT_TRUE(run.run.wedged) << run.message;
  EXPECT_EQ(run.run.wedged->after_case, "rob/wrong_message");
  for (const auto& c : run.run.cases) {
    if (c.id == "rob/wrong_message") {
      EXPECT_EQ(c.verdict, Verdict::fail) << c.reason;
    } else {
      EXPECT_TRUE(c.verdict == Verdict::pass || c.verdict == Verdict::skip) << c.id << ": " << c.reason;
    }
  }
}

// A server that queues a command of its own for every device that enrolls (as servers that
// gather inventory do) is alive: the probe answers that command NotNow and gets its own.
TEST(LivenessProbe, AServerThatQueuesItsOwnCommandsAtEnrollmentIsAlive) {
  server::Config config;
  config.identity_mode = protocol::IdentityMode::none;
  server::MdmService service(config);
  net::HttpServer server([&](const net::ServerRequest& request) {
    auto answer = service.handle(request);
    auto parsed = plist::parse(request.body);
    if (answer.status == 200 && parsed && parsed->string_at("MessageType") == "TokenUpdate" &&
        !parsed->string_at("UserID")) {
      net::ServerRequest enqueue = request;
      enqueue.target = "/v1/enqueue/" + parsed->string_at("UDID").value_or("");
      auto command = protocol::make_command("INVENTORY-" + parsed->string_at("UDID").value_or(""), "DeviceInformation");
      enqueue.body = plist::to_xml(plist::Value(command.body));
      (void)service.handle(enqueue);
    }
    return answer;
  });
  auto port = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(port) << port.message();
  server.start(2);
  const auto dir = testing::fresh_test_dir("mdmc_liveness_test");
  const auto base = "http://127.0.0.1:" + std::to_string(port.value_or(0));
  const auto profile = dir / "target.yaml";
  std::ofstream(profile) << "schema_version: 1\nname: inventory\nurls:\n  check_in: " << base
                         << "/checkin\n  server: " << base << "/mdm\nadmin:\n  enqueue:\n    url: " << base
                         << "/v1/enqueue/{channel}\n";
  cli::SuiteOptions options;
  options.specs_dir = fs::path(MDMC_SOURCE_DIR) / "specs";
  options.target = profile;
  options.selection = {"rob/"};
  options.seed = 1;
  auto run = cli::run_suite(options);
  EXPECT_FALSE(run.run.wedged);
  int probes = 0;
  for (const auto& c : run.run.cases) {
    for (const auto& f : c.findings) {
      if (f.rule != "ROB-ALIVE" || f.expected.find("a fresh device") == std::string::npos) continue;
      EXPECT_TRUE(f.passed) << c.id << ": " << f.actual;
      EXPECT_NE(f.actual.find("other command(s) answered NotNow"), std::string::npos) << f.actual;
      ++probes;
    }
  }
  EXPECT_GE(probes, 5);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mdmc
