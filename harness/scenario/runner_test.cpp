#include "harness/scenario/runner.hpp"
#include "harness/scenario/assessment.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "harness/net/http_server.hpp"
#include "harness/pki/pki.hpp"
#include "harness/plist/value.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc::scenario {
namespace {

namespace chr = std::chrono;

std::vector<std::string> ids_of(const std::vector<CaseResult>& cases) {
  std::vector<std::string> out;
  for (const auto& c : cases) out.push_back(c.id);
  return out;
}

std::vector<Verdict> verdicts_of(const std::vector<CaseResult>& cases) {
  std::vector<Verdict> out;
  for (const auto& c : cases) out.push_back(c.verdict);
  return out;
}

// The suite from the source tree against a plain-HTTP test server on loopback, with a handler
// each test chooses. The profile has no admin adapter, so cases that queue commands skip.
class RunSuiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto specs = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
    rules_ = load_rules(specs / "rules.yaml");
    cases_ = load_suite(specs / "scenarios", rules_);
    ASSERT_GE(cases_.size(), 4u);
  }

  void serve(net::Handler handler, unsigned threads = 1) {
    server_ = std::make_unique<net::HttpServer>(std::move(handler));
    auto port_listening = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port_listening) << port_listening.message();
    const auto port = port_listening.value_or(0);
    server_->start(threads);
    const auto base = "http://127.0.0.1:" + std::to_string(port);
    target_.name = "test";
    target_.check_in_url = base + "/checkin";
    target_.server_url = base + "/mdm";
    target_.limits.connect_timeout = chr::milliseconds{2000};
    target_.limits.header_timeout = chr::milliseconds{2000};
    target_.limits.body_timeout = chr::milliseconds{2000};
  }

  std::vector<Case> only(const std::string& id) const {
    std::vector<Case> out;
    for (const auto& c : cases_) {
      if (c.id == id) out.push_back(c);
    }
    return out;
  }

  RuleCatalog rules_;
  std::vector<Case> cases_;
  TargetProfile target_;
  std::unique_ptr<net::HttpServer> server_;
};

// Answers everything 200 with a zero-length body: some cases pass, the 410 ones fail.
net::ServerResponse always_empty(const net::ServerRequest&) { return net::ServerResponse{}; }

TEST(AttemptSeed, TheFirstAttemptUsesTheRunSeedAndEachReRunOneOfItsOwn) {
  EXPECT_EQ(attempt_seed(42, "chn/user_only", 0), 42u);
  std::set<std::uint64_t> seeds;
  for (const char* id : {"chn/user_only", "syn/all_queued"}) {
    for (int attempt = 1; attempt <= 3; ++attempt) seeds.insert(attempt_seed(42, id, attempt));
  }
  seeds.insert(42);
  EXPECT_EQ(seeds.size(), 7u) << "every attempt at every case has its own seed";
  EXPECT_EQ(attempt_seed(42, "chn/user_only", 2), attempt_seed(42, "chn/user_only", 2));
  EXPECT_NE(attempt_seed(42, "chn/user_only", 1), attempt_seed(43, "chn/user_only", 1));
}

TEST_F(RunSuiteTest, FourJobsGiveTheVerdictsOfOneInTheCasesOrder) {
  serve(always_empty, 2);
  RunOptions options;
  options.seed = 99;
  const auto one = run_suite(cases_, target_, rules_, options);

  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::mutex seen_mutex;
  std::vector<std::string> seen;
  options.jobs = 4;
  options.on_case = [&](const CaseResult& c) {
    if (inside.fetch_add(1) != 0) overlapped = true;
    std::this_thread::sleep_for(chr::milliseconds{2});  // widens the window an overlap would need
    {
      std::lock_guard lock(seen_mutex);
      seen.push_back(c.id);
    }
    inside.fetch_sub(1);
  };
  const auto four = run_suite(cases_, target_, rules_, options);

  EXPECT_EQ(ids_of(four.cases), ids_of(one.cases));
  EXPECT_EQ(verdicts_of(four.cases), verdicts_of(one.cases));
  EXPECT_EQ(ids_of(one.cases).size(), cases_.size());
  EXPECT_FALSE(overlapped) << "on_case is called one call at a time";
  std::sort(seen.begin(), seen.end());
  auto expected = ids_of(one.cases);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected) << "on_case is called once per case";
  EXPECT_FALSE(four.interrupted);
  const auto verdicts = verdicts_of(one.cases);
  EXPECT_NE(std::count(verdicts.begin(), verdicts.end(), Verdict::fail), 0)
      << "the comparison covers failing cases too";
}

TEST_F(RunSuiteTest, TheStopFlagStopsEveryWorker) {
  // 150 ms per answer: the whole suite would take seconds.
  serve(
      [](const net::ServerRequest&) {
        std::this_thread::sleep_for(chr::milliseconds{150});
        return net::ServerResponse{};
      },
      4);
  std::atomic<bool> stop{false};
  RunOptions options;
  options.seed = 5;
  options.jobs = 4;
  options.stop = &stop;
  // Stops once cases are under way: past the liveness probe before the first case, and past
  // the first cases to start (bounded: 20 s), however slow the build.
  std::atomic<int> started{0};
  options.on_case_start = [&](const Case&) { ++started; };
  RunResult run;
  std::thread runner([&] { run = run_suite(cases_, target_, rules_, options); });
  for (int waited = 0; started.load() < 6 && waited < 2000; ++waited)
    std::this_thread::sleep_for(chr::milliseconds{10});
  std::this_thread::sleep_for(chr::milliseconds{200});
  const auto stopped_at = chr::steady_clock::now();
  stop = true;
  runner.join();
  EXPECT_LT(chr::steady_clock::now() - stopped_at, chr::milliseconds{1500})
      << "each worker ends after its exchange in flight";
  EXPECT_TRUE(run.interrupted);
  ASSERT_LT(run.cases.size(), cases_.size());
  ASSERT_FALSE(run.cases.empty());
  EXPECT_TRUE(std::any_of(run.cases.begin(), run.cases.end(), [](const CaseResult& c) {
    return c.verdict == Verdict::error;
  })) << "a case cut short is an error, not a verdict";
  // Cases are claimed in order: the ones that ran are the first ones, in order.
  for (std::size_t i = 0; i < run.cases.size(); ++i) EXPECT_EQ(run.cases[i].id, cases_[i].id);
}

// A server that gets CHN-IDLE-EMPTY wrong on the first `bad_idles` Idles of the cases' devices,
// then right, and keeps the Authenticate bodies it saw (each holds its device's UDID). The
// runner's liveness probe (its device named so in its Authenticate) is answered right.
class FlakyIdleServer {
 public:
  explicit FlakyIdleServer(int bad_idles) : bad_idles_(bad_idles) {}
  net::ServerResponse operator()(const net::ServerRequest& request) {
    std::lock_guard lock(mutex_);
    auto parsed = plist::parse(request.body);
    auto udid = parsed ? parsed->string_at("UDID").value_or("") : "";
    if (request.body.find("Authenticate") != std::string::npos) {
      if (request.body.find("liveness probe") != std::string::npos) {
        probes_.insert(udid);
      } else {
        authenticates_.insert(request.body);
      }
    }
    if (probes_.count(udid)) return net::ServerResponse{};
    if (request.target == "/mdm" && idles_++ < bad_idles_) {
      return net::ServerResponse{200, {}, "<plist version=\"1.0\"><dict/></plist>", false};
    }
    return net::ServerResponse{};
  }
  std::size_t distinct_authenticates() {
    std::lock_guard lock(mutex_);
    return authenticates_.size();
  }

 private:
  std::mutex mutex_;
  int bad_idles_;
  int idles_ = 0;
  std::set<std::string> authenticates_;
  std::set<std::string> probes_;  // the liveness probes' UDIDs
};

TEST_F(RunSuiteTest, AFailureThatDoesNotRepeatIsFlakyAndStaysAFailure) {
  auto flaky = std::make_shared<FlakyIdleServer>(1);
  serve([flaky](const net::ServerRequest& r) { return (*flaky)(r); });
  RunOptions options;
  options.seed = 3;
  const auto run = run_suite(only("chn/idle_empty_device"), target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 1u);
  const auto& c = run.cases[0];
  EXPECT_EQ(c.verdict, Verdict::fail);
  EXPECT_TRUE(c.flaky);
  EXPECT_EQ(c.attempts, (std::vector<std::string>{"fail", "pass", "pass"}));
  // The first attempt's evidence is what the record keeps.
  ASSERT_FALSE(c.findings.empty());
  EXPECT_FALSE(c.findings.back().passed);
  EXPECT_NE(c.reason.find("CHN-IDLE-EMPTY"), std::string::npos) << c.reason;
  EXPECT_EQ(flaky->distinct_authenticates(), 3u) << "each attempt enrolls a fresh device";
}

TEST_F(RunSuiteTest, AFailureThatRepeatsIsConfirmed) {
  auto broken = std::make_shared<FlakyIdleServer>(1000);
  serve([broken](const net::ServerRequest& r) { return (*broken)(r); });
  RunOptions options;
  options.seed = 3;
  auto run = run_suite(only("chn/idle_empty_device"), target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 1u);
  EXPECT_EQ(run.cases[0].verdict, Verdict::fail);
  EXPECT_FALSE(run.cases[0].flaky);
  EXPECT_EQ(run.cases[0].attempts, (std::vector<std::string>{"fail", "fail", "fail"}));

  options.confirm = 0;
  run = run_suite(only("chn/idle_empty_device"), target_, rules_, options);
  EXPECT_EQ(run.cases[0].verdict, Verdict::fail);
  EXPECT_TRUE(run.cases[0].attempts.empty()) << "--confirm 0 runs a case once";
}

// The enrollment cases need the enrollment profile read first (target::apply_enrollment, as
// `run` does): a caller that skips it gets an error, no verdict and no crash.
TEST_F(RunSuiteTest, EnrollmentCasesWithoutTheProfileReadEndInAnError) {
  serve(always_empty);
  target_.enrollment = target::EnrollmentSource{};
  RunOptions options;
  options.confirm = 0;
  const auto run = run_suite(only("enr/profile"), target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 1u);
  EXPECT_EQ(run.cases[0].verdict, Verdict::error);
  EXPECT_NE(run.cases[0].reason.find("was not read"), std::string::npos) << run.cases[0].reason;
}

TEST_F(RunSuiteTest, RecordsTheAppleSchemaRevisionAndWhatTheTargetDeclares) {
  serve(always_empty);
  target_.declares = {{"per_user_connections", true}};
  const auto run = run_suite(only("chn/idle_empty_device"), target_, rules_, RunOptions{});
  EXPECT_NE(run.apple_schema_revision.find("apple/device-management"), std::string::npos);
  EXPECT_EQ(run.declares, target_.declares);
}

TEST_F(RunSuiteTest, TranscriptEntriesNameTheirStepAndRulesCarryTheirText) {
  auto broken = std::make_shared<FlakyIdleServer>(1000);
  serve([broken](const net::ServerRequest& r) { return (*broken)(r); });
  RunOptions options;
  options.confirm = 0;
  std::vector<std::string> events;
  options.on_case_start = [&](const Case& c) { events.push_back("start " + c.id); };
  options.on_case = [&](const CaseResult& c) { events.push_back("end " + c.id); };
  const auto run = run_suite(only("chn/idle_empty_device"), target_, rules_, options);
  EXPECT_EQ(events, (std::vector<std::string>{"start chn/idle_empty_device", "end chn/idle_empty_device"}));
  ASSERT_EQ(run.cases.size(), 1u);
  const auto& c = run.cases[0];
  ASSERT_FALSE(c.transcript.empty());
  EXPECT_EQ(c.transcript.front().step, -1) << "enrollment comes before step 0";
  // The failed finding points at a step whose exchanges the transcript holds.
  const auto failed = std::find_if(c.findings.begin(), c.findings.end(), [](const Finding& f) { return !f.passed; });
  ASSERT_NE(failed, c.findings.end());
  EXPECT_TRUE(std::any_of(c.transcript.begin(), c.transcript.end(),
                          [&](const TranscriptEntry& e) { return e.step == failed->step; }));
  for (const auto& e : c.transcript) EXPECT_TRUE(e.step.has_value()) << e.label;
  const auto rule =
      std::find_if(run.rules.begin(), run.rules.end(), [](const RuleResult& r) { return r.id == "CHN-IDLE-EMPTY"; });
  ASSERT_NE(rule, run.rules.end());
  EXPECT_EQ(rule->apple, rules_.rules.at("CHN-IDLE-EMPTY").apple);
  EXPECT_FALSE(rule->apple.empty());
  EXPECT_EQ(rule->source, rules_.rules.at("CHN-IDLE-EMPTY").source);
}

TEST_F(RunSuiteTest, ParallelRequestsOverlapInTheTranscriptTimes) {
  // Every answer takes 30 ms and the server answers on two threads: requests sent at once are
  // in flight together, and their recorded start and end times must show it.
  serve(
      [](const net::ServerRequest&) {
        std::this_thread::sleep_for(chr::milliseconds{30});
        return net::ServerResponse{};
      },
      2);
  target_.enqueue = AdminEndpoint{};
  target_.enqueue->url = target_.server_url.substr(0, target_.server_url.rfind('/')) + "/v1/enqueue/{channel}";
  RunOptions options;
  options.confirm = 0;
  const auto run = run_suite(only("chn/concurrent"), target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 1u);
  const auto& t = run.cases[0].transcript;
  bool overlapped = false;
  for (const auto& a : t) {
    for (const auto& b : t) {
      if (a.actor == b.actor || a.actor == "admin" || b.actor == "admin") continue;
      const auto a_end = a.exchange.started + a.exchange.elapsed;
      if (a.exchange.started <= b.exchange.started && b.exchange.started < a_end) overlapped = true;
    }
  }
  EXPECT_TRUE(overlapped) << "the device's and the user's series ran at once";
}

// A parallel step ends the case the worst way one of its steps ended: the steps' ends are
// values handed up from each thread, and every step runs to its own end first.
TEST_F(RunSuiteTest, AParallelStepEndsTheCaseTheWorstWayOneOfItsStepsEnded) {
  serve(
      [](const net::ServerRequest& request) {
        std::this_thread::sleep_for(chr::milliseconds{20});
        if (request.body.find("fail") != std::string::npos) return net::ServerResponse{500, {}, "", false};
        if (request.body.find("drop") != std::string::npos) return net::ServerResponse{200, {}, "", false, {}, true};
        return net::ServerResponse{};
      },
      3);
  const std::string head =
      "schema_version: 1\ntitle: t\nrules: [SYN-ALL]\napple: a\nenroll: false\n"
      "devices: [{name: mac, users: [{name: alice}, {name: bob}]}]\nsteps:\n  - parallel:\n";
  auto run_one = [&](const std::string& steps) {
    auto c = load_case_text(head + steps, "parallel.yaml", "parallel", rules_);
    return run_case(c, target_, rules_, 1);
  };

  auto failed = run_one(
      "    - {report: Idle, fault: {replace_with: ok}, as: mac, expect: {status: 200}}\n"
      "    - {report: Idle, fault: {replace_with: fail}, as: mac/alice, expect: {status: 200}}\n");
  EXPECT_EQ(failed.verdict, Verdict::fail);
  EXPECT_EQ(failed.reason, "SYN-ALL: expected status 200; got 500 with a zero-length body");
  EXPECT_EQ(failed.transcript.size(), 2u) << "the step that passed ran to its end too";

  auto errored = run_one(
      "    - {report: Idle, fault: {replace_with: fail}, as: mac, expect: {status: 200}}\n"
      "    - {report: Idle, fault: {replace_with: drop}, as: mac/alice, expect: {status: 200}}\n"
      "    - {report: Idle, fault: {replace_with: ok}, as: mac/bob, expect: {status: 200}}\n");
  EXPECT_EQ(errored.verdict, Verdict::error) << "no answer is worse than a failed expectation";
  EXPECT_NE(errored.reason.find("as mac/alice: PUT"), std::string::npos) << errored.reason;
  EXPECT_NE(errored.reason.find("no answer"), std::string::npos) << errored.reason;
  EXPECT_EQ(errored.transcript.size(), 3u);

  auto passed = run_one(
      "    - {report: Idle, fault: {replace_with: ok}, as: mac, expect: {status: 200}}\n"
      "    - {report: Idle, fault: {replace_with: ok}, as: mac/alice, expect: {status: 200}}\n");
  EXPECT_EQ(passed.verdict, Verdict::pass) << passed.reason;
}

// A case of several rounds runs its steps again and again on the same devices: a failure names
// its round and ends the case there; a pass keeps the last round's findings and every exchange.
TEST_F(RunSuiteTest, RoundsRepeatTheStepsAndAFailureNamesItsRound) {
  std::atomic<int> idles{0};
  std::atomic<int> fail_at{0};  // the Idle answered 500, counted from 1; 0: none
  serve([&](const net::ServerRequest&) {
    net::ServerResponse response;
    if (++idles == fail_at.load()) response.status = 500;
    return response;
  });
  auto c = load_case_text(
      "schema_version: 1\ntitle: t\nrules: [CHN-IDLE-EMPTY]\napple: a\nenroll: false\nrounds: 3\n"
      "devices: [{name: mac}]\nsteps:\n  - {report: Idle, as: mac, expect: {status: 200, body: empty}}\n",
      "rounds.yaml", "rounds", rules_);

  auto passed = run_case(c, target_, rules_, 1);
  EXPECT_EQ(passed.verdict, Verdict::pass) << passed.reason;
  EXPECT_EQ(idles.load(), 3);
  ASSERT_EQ(passed.transcript.size(), 1u) << "the last round's exchange stands for the rounds that passed";
  EXPECT_EQ(passed.transcript[0].label, "round 3: Idle");
  EXPECT_EQ(passed.transcript[0].step, 0);
  ASSERT_EQ(passed.findings.size(), 2u) << "the last round's status and body, not every round's";
  for (const auto& f : passed.findings) {
    EXPECT_TRUE(f.passed);
    EXPECT_EQ(f.actual.rfind("in round 3 of 3: ", 0), 0u) << f.actual;
  }

  idles = 0;
  fail_at = 2;
  auto failed = run_case(c, target_, rules_, 1);
  EXPECT_EQ(failed.verdict, Verdict::fail);
  EXPECT_EQ(idles.load(), 2) << "the case ends in the round that failed";
  EXPECT_NE(failed.reason.find("in round 2 of 3: 500"), std::string::npos) << failed.reason;
  ASSERT_EQ(failed.findings.size(), 1u) << "round 1's passing findings are not kept";
  EXPECT_FALSE(failed.findings[0].passed);
  ASSERT_EQ(failed.transcript.size(), 1u) << "nor its exchange";
  EXPECT_EQ(failed.transcript[0].label, "round 2: Idle");
}

// A refusal by 401 instead of Apple's 403 form: ENR-UNKNOWN-DEVICE's must part (a 4xx) holds,
// its part lowered to may (403 with com.apple.unrecognized.device) does not. That is an option
// the server does not use: info, and an info is not re-run to confirm it.
TEST_F(RunSuiteTest, AMayLevelBreakIsInfoAndIsNotConfirmed) {
  serve([](const net::ServerRequest&) {
    net::ServerResponse response;
    response.status = 401;
    return response;
  });
  RunOptions options;
  options.seed = 3;
  ASSERT_GT(options.confirm, 0);
  const auto run = run_suite(only("enr/unknown_device"), target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 1u);
  const auto& c = run.cases[0];
  EXPECT_EQ(c.verdict, Verdict::info) << c.reason;
  EXPECT_NE(c.reason.find("the server does not use this option"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("ENR-UNKNOWN-DEVICE"), std::string::npos) << c.reason;
  EXPECT_TRUE(c.attempts.empty()) << "an info case is not re-run";
  EXPECT_FALSE(c.flaky);
  const auto rule = std::find_if(run.rules.begin(), run.rules.end(),
                                 [](const RuleResult& r) { return r.id == "ENR-UNKNOWN-DEVICE"; });
  ASSERT_NE(rule, run.rules.end());
  EXPECT_EQ(rule->verdict, Verdict::info);
  EXPECT_EQ(rule->uses_option, false);
}

TEST(SkipReason, SaysWhatTheProfileLacksAndTheRunnerSkipsWithIt) {
  const auto specs = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
  const auto rules = load_rules(specs / "rules.yaml");
  const std::string head = "schema_version: 1\ntitle: t\nrules: [SYN-ALL]\napple: a\n";
  const auto queues = load_case_text(head +
                                         "requires: [enqueue]\ndevices: [{name: mac}]\n"
                                         "steps:\n  - {enqueue: ProfileList, to: mac}\n",
                                     "queues.yaml", "queues", rules);
  const auto binds = load_case_text(head +
                                        "devices: [{name: mac}, {name: other}]\n"
                                        "steps:\n  - {report: Idle, as: mac, identity_of: other}\n",
                                    "binds.yaml", "binds", rules);
  const auto managed =
      load_case_text(head +
                         "devices: [{name: mac, users: [{name: nick, kind: network, managed: true}]}]\n"
                         "steps:\n  - {checkin: UserAuthenticate, as: mac/nick}\n",
                     "managed.yaml", "managed", rules);
  TargetProfile bare;  // no admin adapter, identity mode none, no managed network users
  bare.check_in_url = "http://127.0.0.1:1/checkin";
  bare.server_url = "http://127.0.0.1:1/mdm";
  EXPECT_EQ(skip_reason(queues, bare), "the target profile has no admin.enqueue adapter to queue commands with");
  EXPECT_EQ(skip_reason(binds, bare), "the case checks identity binding; the profile's identity mode is none");
  EXPECT_EQ(skip_reason(managed, bare),
            "the case needs 1 managed network user(s); the profile's policy.network_users.managed lists 0");

  TargetProfile full = bare;
  full.enqueue = AdminEndpoint{};
  full.identity.mode = IdentityMode::signature;
  full.managed_network_users = {"7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10"};
  for (const auto* c : {&queues, &binds, &managed}) EXPECT_EQ(skip_reason(*c, full), std::nullopt) << c->id;

  // The runner skips with the same words, before it sends anything (nothing listens on port 1).
  for (const auto* c : {&queues, &binds, &managed}) {
    auto result = run_case(*c, bare, rules, 1);
    EXPECT_EQ(result.verdict, Verdict::skip) << c->id;
    EXPECT_EQ(result.reason, skip_reason(*c, bare).value_or("")) << c->id;
  }
}

TEST(IdentitiesNeeded, CountsEveryCasesDevicesOnceForEachAttempt) {
  const auto specs = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
  const auto rules = load_rules(specs / "rules.yaml");
  const std::string head = "schema_version: 1\ntitle: t\nrules: [SYN-ALL]\napple: a\nenroll: false\n";
  const std::string steps = "steps:\n  - {report: Idle, as: mac, expect: {status: 200}}\n";
  const std::vector<Case> cases{
      load_case_text(head + "devices: [{name: mac}]\n" + steps, "one.yaml", "one", rules),
      load_case_text(head + "devices: [{name: mac, users: [{name: alice}]}, {name: mini}]\n" + steps, "two.yaml", "two",
                     rules)};
  auto need = identities_needed(cases, 2);
  EXPECT_EQ(need.devices, 3u) << "users share their device's identity";
  EXPECT_EQ(need.probes, 0u);
  EXPECT_EQ(need.watch, 1u) << "the run's probe device between cases";
  EXPECT_EQ(need.total(), 3u * 3 + 1);
  EXPECT_EQ(need.explain(),
            "2 cases, 3 devices, each failing case re-run up to 2 times on fresh devices, and 1 probe device between "
            "cases");
  need = identities_needed(cases, 0);
  EXPECT_EQ(need.total(), 4u);
  EXPECT_EQ(need.explain(), "2 cases, 3 devices, and 1 probe device between cases");
  need.preflight = 1;  // as `mdmconform run` counts its preflight's device
  EXPECT_EQ(need.total(), 5u);
  EXPECT_EQ(need.explain(),
            "2 cases, 3 devices, 1 probe device between cases, and 1 device enrolled before the first case");
  EXPECT_EQ(identities_needed(cases, 99).total(), 3u * (1 + kMaxConfirm) + 1) << "clamped as the run clamps it";
  EXPECT_EQ(identities_needed({cases[0]}, 1).explain(),
            "1 case, 1 device, each failing case re-run up to 1 time on fresh devices, and 1 probe device between "
            "cases");
  EXPECT_EQ(identities_needed({}, 2).total(), 0u);

  // A robustness case: a fresh probe device after each faulted step, on every attempt.
  const auto suite = load_suite(specs / "scenarios", rules);
  const auto rob = std::find_if(suite.begin(), suite.end(), [](const Case& c) {
    return std::any_of(c.steps.begin(), c.steps.end(), [](const Step& s) { return s.faulted(); });
  });
  ASSERT_NE(rob, suite.end());
  const auto faulted = static_cast<std::size_t>(
      std::count_if(rob->steps.begin(), rob->steps.end(), [](const Step& s) { return s.faulted(); }));
  need = identities_needed({*rob}, 2);
  EXPECT_EQ(need.probes, faulted);
  EXPECT_EQ(need.total(), (rob->devices.size() + faulted) * 3 + 1);
  EXPECT_NE(need.explain().find(faulted == 1 ? "1 liveness probe after a robustness step"
                                             : fmt::format("{} liveness probes after robustness steps", faulted)),
            std::string::npos)
      << need.explain();
}

// Identities over plain HTTP: in signature mode every request carries an Mdm-Signature, from
// which this server reads the certificate the harness sent, whatever it answers.
class RunIdentitiesTest : public RunSuiteTest {
 protected:
  void SetUp() override {
    RunSuiteTest::SetUp();
    auto ca = pki::create_test_ca("device CA");
    ASSERT_TRUE(ca) << ca.message();
    ca_ = *ca;
    target_.identity.mode = IdentityMode::signature;
  }
  // A pool of `n` identities from the CA, device-000.p12 onwards.
  void use_pool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      auto name = fmt::format("device-{:03}", i);
      auto issued = pki::issue_device_identity(ca_, name, pki::KeyType::ec_p256);
      ASSERT_TRUE(issued) << issued.message();
      target_.identity.pool.push_back({name + ".p12", *issued});
    }
  }
  // Serves `answer`, and keeps the fingerprint of every certificate a request was signed with.
  void serve_recording(net::Handler answer, unsigned threads = 1) {
    serve(
        [this, answer = std::move(answer)](const net::ServerRequest& r) {
          auto header = net::find_header(r.headers, "Mdm-Signature");
          auto signer = header ? pki::verify_mdm_signature(*header, r.body, ca_.cert_pem)
                               : pki::Result<std::string>(base::fail("unsigned"));
          {
            std::lock_guard lock(seen_mu_);
            if (signer)
              seen_.insert(pki::sha256_fingerprint(*signer));
            else
              ++unsigned_;
          }
          return answer(r);
        },
        threads);
  }
  std::set<std::string> seen() {
    std::lock_guard lock(seen_mu_);
    return seen_;
  }
  // Every device of the run, with a check that each names its case's device and its identity.
  static std::vector<CaseDevice> devices_of(const RunResult& run) {
    std::vector<CaseDevice> out;
    for (const auto& c : run.cases) {
      EXPECT_EQ(c.reason.find("identit"), std::string::npos) << c.id << ": " << c.reason;
      for (const auto& d : c.devices) {
        EXPECT_FALSE(d.name.empty()) << c.id;
        EXPECT_EQ(d.udid.size(), 36u) << c.id;
        EXPECT_EQ(d.identity.sha256.size(), 64u) << c.id;
        out.push_back(d);
      }
    }
    return out;
  }
  // The server saw the certificates the report names, and one more at most: the run's liveness
  // probe device between cases, which belongs to no case.
  void expect_seen_are_reported(const std::vector<CaseDevice>& devices) {
    const auto seen_now = seen();
    const auto reported = fingerprints(devices);
    EXPECT_TRUE(std::includes(seen_now.begin(), seen_now.end(), reported.begin(), reported.end()));
    EXPECT_LE(seen_now.size(), reported.size() + 1);
  }
  static std::set<std::string> fingerprints(const std::vector<CaseDevice>& devices) {
    std::set<std::string> out;
    for (const auto& d : devices) out.insert(d.identity.sha256);
    return out;
  }

  pki::Identity ca_;
  std::mutex seen_mu_;
  std::set<std::string> seen_;
  int unsigned_ = 0;
};

TEST_F(RunIdentitiesTest, TwoCasesWithAPoolOfExactlyEnoughGiveEachDeviceItsOwnIdentity) {
  serve_recording(always_empty);
  auto cases = only("chn/idle_empty_device");
  for (auto& c : only("enr/same_identity_user")) cases.push_back(c);
  ASSERT_EQ(cases.size(), 2u);
  const auto need = identities_needed(cases, 0).total();
  ASSERT_EQ(need, 4u) << "one device, then two, and the probe device between cases";
  use_pool(need);
  RunOptions options;
  options.confirm = 0;
  const auto run = run_suite(cases, target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 2u);
  const auto devices = devices_of(run);
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(fingerprints(devices).size(), 3u) << "no two devices presented the same certificate";
  // The report names the pool file each came from, and its fingerprint and CN are that file's.
  for (const auto& d : devices) {
    const auto& pooled = std::find_if(target_.identity.pool.begin(), target_.identity.pool.end(),
                                      [&](const auto& p) { return "pool:" + p.file == d.identity.source; });
    ASSERT_NE(pooled, target_.identity.pool.end()) << d.identity.source;
    EXPECT_EQ(d.identity.sha256, pki::sha256_fingerprint(*pki::certificate_der(pooled->identity.cert_pem)));
    EXPECT_EQ(d.identity.common_name + ".p12", pooled->file);
  }
  // The probe device between cases took the first; the cases the rest, in order (one job).
  EXPECT_EQ(run.cases[0].devices[0].identity.source, "pool:device-001.p12");
  EXPECT_EQ(run.cases[1].devices[0].name, "mac");
  expect_seen_are_reported(devices);
  EXPECT_EQ(unsigned_, 0);
}

TEST_F(RunIdentitiesTest, AnIssuerGivesEveryDeviceOfEveryCaseAndReRunACertificateOfItsOwn) {
  auto broken = std::make_shared<FlakyIdleServer>(1000);
  serve_recording([broken](const net::ServerRequest& r) { return (*broken)(r); });
  target_.identity.issuer = ca_;
  auto cases = only("chn/idle_empty_device");
  for (auto& c : only("enr/same_identity_user")) cases.push_back(c);
  RunOptions options;
  options.seed = 8;
  options.confirm = 2;
  const auto run = run_suite(cases, target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 2u);
  const auto& failing = run.cases[0];
  ASSERT_EQ(failing.attempts, (std::vector<std::string>{"fail", "fail", "fail"}));
  ASSERT_EQ(failing.devices.size(), 3u) << "one device per attempt";
  for (int attempt = 0; attempt < 3; ++attempt) EXPECT_EQ(failing.devices[attempt].attempt, attempt);
  const auto devices = devices_of(run);
  EXPECT_EQ(devices.size(), 3u + 2u * (run.cases[1].attempts.empty() ? 1 : run.cases[1].attempts.size()));
  EXPECT_EQ(fingerprints(devices).size(), devices.size()) << "a certificate of its own per device";
  std::set<std::string> udids;
  for (const auto& d : devices) {
    EXPECT_EQ(d.identity.source, "issued");
    EXPECT_EQ(d.identity.common_name, d.udid) << "issued for the device's UDID";
    udids.insert(d.udid);
  }
  EXPECT_EQ(udids.size(), devices.size());
  expect_seen_are_reported(devices);
}

TEST_F(RunIdentitiesTest, FourJobsWithAPoolNeverHandAnIdentityOutTwice) {
  serve_recording(always_empty, 4);
  RunOptions options;
  options.seed = 21;
  options.jobs = 4;
  options.confirm = 1;
  use_pool(identities_needed(cases_, options.confirm).total());
  const auto run = run_suite(cases_, target_, rules_, options);
  ASSERT_EQ(run.cases.size(), cases_.size());
  const auto devices = devices_of(run);
  ASSERT_GT(devices.size(), 10u);
  EXPECT_LE(devices.size(), target_.identity.pool.size());
  EXPECT_EQ(fingerprints(devices).size(), devices.size()) << "an identity went to two devices";
  EXPECT_TRUE(std::any_of(devices.begin(), devices.end(), [](const CaseDevice& d) { return d.attempt == 1; }))
      << "re-runs draw from the same pool";
  expect_seen_are_reported(devices);
}

// A failure that repeats is confirmed only on a live target: when the server stops answering
// during the first re-run, the case keeps its first verdict, is not flaky, and is blamed.
TEST_F(RunSuiteTest, AReRunThatMeetsAWedgedTargetIsNotCountedAndTheCaseIsBlamed) {
  struct State {
    std::mutex mutex;
    std::set<std::string> probes;  // the liveness probes' UDIDs
    int case_authenticates = 0;
  };
  auto state = std::make_shared<State>();
  serve([state](const net::ServerRequest& request) {
    std::lock_guard lock(state->mutex);
    auto parsed = plist::parse(request.body);
    auto udid = parsed ? parsed->string_at("UDID").value_or("") : "";
    const bool authenticate = request.body.find(">Authenticate<") != std::string::npos;
    if (authenticate && request.body.find("liveness probe") != std::string::npos) state->probes.insert(udid);
    if (authenticate && !state->probes.count(udid)) ++state->case_authenticates;
    // The first re-run's device enrolls: from then on nothing is answered.
    if (state->case_authenticates >= 2) return net::ServerResponse{200, {}, "", false, {}, true};
    if (state->probes.count(udid)) return net::ServerResponse{};
    if (request.target == "/mdm") return net::ServerResponse{200, {}, "<plist version=\"1.0\"><dict/></plist>", false};
    return net::ServerResponse{};
  });
  RunOptions options;
  options.seed = 3;
  const auto run = run_suite(only("chn/idle_empty_device"), target_, rules_, options);
  ASSERT_EQ(run.cases.size(), 1u);
  const auto& c = run.cases[0];
  EXPECT_EQ(c.verdict, Verdict::fail) << c.reason;
  EXPECT_FALSE(c.flaky);
  EXPECT_TRUE(c.attempts.empty()) << "the re-run that met the wedged target is not an attempt";
  ASSERT_TRUE(run.wedged);
  EXPECT_EQ(run.wedged->after_case, "chn/idle_empty_device");
  EXPECT_TRUE(std::any_of(c.transcript.begin(), c.transcript.end(), [](const TranscriptEntry& e) {
    return e.actor == "probe";
  })) << "the failed probe's exchanges are the blamed case's evidence";
  EXPECT_EQ(assess(run).exit_code, 1);
}

}  // namespace
}  // namespace mdmc::scenario
