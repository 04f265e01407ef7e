#include "harness/scenario/spec.hpp"
#include "harness/testing/files.hpp"
#include "mdmc/source_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

namespace mdmc::scenario {
namespace {

namespace fs = std::filesystem;

class SpecTest : public testing::FolderTest {
 protected:
  SpecTest() : FolderTest("mdmc_spec_test") {}

  RuleCatalog rules() { return load_rules(fs::path(MDMC_SOURCE_DIR) / "specs/rules.yaml"); }

  // The LoadError a file raises, or a failure when it loads.
  LoadError case_error(const std::string& text) {
    auto catalog = rules();
    auto p = write("case.yaml", text);
    try {
      load_case(p, "case", catalog);
    } catch (const LoadError& e) {
      return e;
    }
    ADD_FAILURE() << "loaded without error";
    return LoadError("", 0, "", "");
  }

  fs::path dir_;
};

const char* kGoodCase = R"(schema_version: 1
title: t
rules: [SYN-ALL]
apple: a sentence
devices:
  - name: mac
    users:
      - {name: alice, kind: local}
steps:
  - {enqueue: ProfileList, to: mac/alice, save: c}
  - series: acknowledge
    as: mac/alice
    need_sync: true
    expect:
      delivered: [c]
)";

TEST_F(SpecTest, TheShippedSuiteLoads) {
  auto catalog = rules();
  auto cases = load_suite(fs::path(MDMC_SOURCE_DIR) / "specs/scenarios", catalog);
  EXPECT_GE(cases.size(), 11u);
  std::set<std::string> covered;
  for (const auto& c : cases) covered.insert(c.rules.begin(), c.rules.end());
  for (const auto& [id, rule] : catalog.rules) EXPECT_TRUE(covered.count(id)) << id << " has no case";
}

TEST_F(SpecTest, AGoodCaseLoadsWithItsSteps) {
  auto catalog = rules();
  auto c = load_case(write("good.yaml", kGoodCase), "good", catalog);
  ASSERT_EQ(c.steps.size(), 2u);
  const auto* series = std::get_if<SeriesStep>(&c.steps[1].kind);
  ASSERT_NE(series, nullptr);
  EXPECT_TRUE(series->series.flags.need_sync_response);
  ASSERT_EQ(series->expect.size(), 1u);
  EXPECT_EQ(series->expect[0].rule, "SYN-ALL");
  EXPECT_EQ(c.steps[1].line(), 11);
}

TEST_F(SpecTest, AnUnknownKeyIsRejectedWithItsLine) {
  std::string text = kGoodCase;
  text.replace(text.find("need_sync"), 9, "need_snyc");
  auto e = case_error(text);
  EXPECT_EQ(e.line(), 13);
  EXPECT_NE(std::string(e.what()).find("unknown key 'need_snyc'"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("case.yaml:13"), std::string::npos) << e.what();
}

TEST_F(SpecTest, AnUnknownRuleIdIsRejected) {
  std::string text = kGoodCase;
  text.replace(text.find("[SYN-ALL]"), 9, "[SYN-NONE]");
  EXPECT_NE(std::string(case_error(text).what()).find("SYN-NONE"), std::string::npos);
}

TEST_F(SpecTest, AnUnsavedNameIsRejected) {
  std::string text = kGoodCase;
  text.replace(text.find("delivered: [c]"), 14, "delivered: [d]");
  auto e = case_error(text);
  EXPECT_EQ(e.line(), 15);
  EXPECT_NE(std::string(e.what()).find("'d' was not saved"), std::string::npos) << e.what();
}

TEST_F(SpecTest, AnActorThatIsNotInTheCaseIsRejected) {
  std::string text = kGoodCase;
  text.replace(text.find("as: mac/alice"), 13, "as: mac/bob");
  EXPECT_NE(std::string(case_error(text).what()).find("'mac/bob'"), std::string::npos);
}

TEST_F(SpecTest, BrokenYamlNamesTheLine) {
  auto e = case_error("schema_version: 1\ntitle: [unclosed\n");
  EXPECT_GE(e.line(), 2);
}

TEST_F(SpecTest, AWrongSchemaVersionIsRejected) {
  std::string text = kGoodCase;
  text.replace(0, 17, "schema_version: 9");
  EXPECT_NE(std::string(case_error(text).what()).find("schema_version 9"), std::string::npos);
}

TEST_F(SpecTest, TextLoadersNameTheGivenFileAndLine) {
  auto catalog = rules();
  EXPECT_EQ(load_case_text(kGoodCase, "mem.yaml", "mem", catalog).steps.size(), 2u);
  try {
    load_case_text(std::string(kGoodCase) + "surprise: 1\n", "mem.yaml", "mem", catalog);
    ADD_FAILURE() << "loaded without error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.file(), "mem.yaml");
    EXPECT_EQ(e.line(), 16);
    EXPECT_EQ(e.key(), "surprise");
  }
  EXPECT_EQ(load_rules_text("schema_version: 1\nrules: []\n", "r.yaml").rules.size(), 0u);
  EXPECT_THROW(load_rules_text("schema_version: 1\nrules: {}\n", "r.yaml"), LoadError);
}

// yaml-cpp 0.7 stops at 500 nested levels (its DepthGuard) instead of recursing once per level
// into a stack overflow; the loader turns that into a LoadError that says so.
TEST_F(SpecTest, DeepNestingIsALoadErrorNotAStackOverflow) {
  auto catalog = rules();
  // Each is well-formed YAML: only the depth can make it fail.
  const std::string flow = std::string(100000, '[') + std::string(100000, ']');
  std::string block;
  for (int i = 0; i < 50000; ++i) block += "- ";
  block += "x";
  std::string mapping;
  for (int i = 0; i < 30000; ++i) mapping += "{a: ";
  mapping += "x" + std::string(30000, '}');
  const std::string* inputs[] = {&flow, &block, &mapping};
  for (const auto* text : inputs) {
    try {
      load_case_text(*text, "deep.yaml", "deep", catalog);
      ADD_FAILURE() << "loaded without error";
    } catch (const LoadError& e) {
      EXPECT_NE(std::string(e.what()).find("levels deep"), std::string::npos) << e.what();
    }
    EXPECT_THROW(load_rules_text(*text, "deep.yaml"), LoadError);
    EXPECT_THROW(load_profile_text(*text, "deep.yaml", dir_), LoadError);
  }
}

TEST_F(SpecTest, ParallelNestedInParallelIsRefusedAtTheFirstLevel) {
  std::string steps = "  - ";
  // 200 levels of parallel are 400 of YAML: within yaml-cpp's bound, so the loader's own
  // check is what refuses them.
  for (int i = 0; i < 200; ++i) steps += "{parallel: [";
  steps += "{checkin: Authenticate, as: mac}";
  for (int i = 0; i < 200; ++i) steps += ", {checkin: Authenticate, as: mac}]}";
  auto e = case_error("schema_version: 1\ntitle: t\nrules: [SYN-ALL]\napple: a\ndevices: [{name: mac}]\nsteps:\n" +
                      steps + "\n");
  EXPECT_EQ(e.key(), "steps[0].parallel");
  EXPECT_NE(std::string(e.what()).find("holds checkin, report or series steps"), std::string::npos) << e.what();
}

TEST_F(SpecTest, AFileLargerThanTheCapIsRefusedWithoutReadingItAll) {
  auto catalog = rules();
  auto big = write("big.yaml", std::string(9 * 1024 * 1024, '#'));
  try {
    load_case(big, "big", catalog);
    ADD_FAILURE() << "loaded without error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("is larger than"), std::string::npos) << e.what();
  }
  // A device never ends; the cap ends the read.
  EXPECT_THROW(load_profile("/dev/zero"), LoadError);
}

TEST_F(SpecTest, DeclarativeStepsLoadWithTheirDeclarationAsTypedJson) {
  auto catalog = rules();
  const std::string head =
      "schema_version: 1\ntitle: t\nrules: [DDM-CHANNEL, DDM-TOKEN-CHANGE]\napple: a\n"
      "devices: [{name: mac}]\nsteps:\n";
  const std::string declare =
      "  - declare:\n      Type: com.apple.configuration.passcode.settings\n      Identifier: p\n"
      "      Payload: {MinimumLength: 8, RequirePasscode: true, Name: '8', Ratio: 1.5, Note: ~}\n    to: mac\n";
  auto c = load_case_text(head + declare +
                              "  - {declarative_sync: full, as: mac, save: before}\n"
                              "  - declarative_sync: full\n    as: mac\n    expect:\n"
                              "      - {rule: DDM-CHANNEL, declarative: channel, holds: [p]}\n"
                              "      - {rule: DDM-TOKEN-CHANGE, declarative: token_unchanged, since: before}\n",
                          "d.yaml", "d", catalog);
  ASSERT_EQ(c.steps.size(), 3u);
  const auto& step = std::get<DeclareStep>(c.steps[0].kind);
  EXPECT_EQ(step.identifier, "p");
  EXPECT_TRUE(step.assign);
  auto json = nlohmann::json::parse(step.declaration_json);
  EXPECT_EQ(json["Payload"]["MinimumLength"], 8);
  EXPECT_EQ(json["Payload"]["RequirePasscode"], true);
  EXPECT_EQ(json["Payload"]["Name"], "8") << "a quoted scalar stays a string";
  EXPECT_EQ(json["Payload"]["Ratio"], 1.5);
  EXPECT_TRUE(json["Payload"]["Note"].is_null());
  // A case with a declare step needs the declarations adapter whether it says so or not.
  EXPECT_NE(std::find(c.requirements.begin(), c.requirements.end(), Requirement::declarations), c.requirements.end());
  const auto& sync = std::get<DeclarativeSyncStep>(c.steps[2].kind);
  ASSERT_EQ(sync.expect.size(), 2u);
  EXPECT_EQ(sync.expect[0].declarative, DeclarativeCheck::channel);
  EXPECT_EQ(sync.expect[0].holds, std::vector<std::string>{"p"});
  EXPECT_EQ(sync.expect[1].since, "before");

  auto refused = [&](const std::string& steps) {
    try {
      load_case_text(head + steps, "r.yaml", "r", catalog);
    } catch (const LoadError& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  EXPECT_NE(refused("  - declarative_sync: full\n    as: mac\n    expect: {rule: DDM-CHANNEL, declarative: tokens, "
                    "holds: [p]}\n")
                .find("holds, not_holds, active and valid go with declarative: channel"),
            std::string::npos);
  EXPECT_NE(refused("  - declarative_sync: full\n    as: mac\n    expect: {declarative: token_changed, since: never}\n")
                .find("'never' was not saved"),
            std::string::npos);
  EXPECT_NE(refused("  - declarative_sync: full\n    as: mac\n    expect: {declarative: token_changed}\n")
                .find("since: NAME"),
            std::string::npos);
  EXPECT_NE(refused("  - declare: {Type: com.apple.configuration.x, Payload: {}}\n    to: mac\n").find("Identifier"),
            std::string::npos);
  EXPECT_NE(refused("  - declarative_sync: partial\n    as: mac\n").find("must be full or command"), std::string::npos);
}

TEST_F(SpecTest, RoundsAndJitterLoadWithinTheirBounds) {
  auto catalog = rules();
  const std::string head =
      "schema_version: 1\ntitle: t\nrules: [CHN-CONCURRENT]\napple: a\n"
      "devices: [{name: mac, users: [{name: alice}]}]\n";
  const std::string parallel =
      "steps:\n  - parallel:\n      - {series: acknowledge, as: mac}\n"
      "      - {series: acknowledge, as: mac/alice}\n";
  auto c = load_case_text(head + "rounds: 44\n" + parallel + "    jitter: 2ms\n", "r.yaml", "r", catalog);
  EXPECT_EQ(c.rounds, 44);
  EXPECT_EQ(std::get<ParallelStep>(c.steps[0].kind).jitter, std::chrono::milliseconds(2));
  auto plain = load_case_text(head + parallel, "p.yaml", "p", catalog);
  EXPECT_EQ(plain.rounds, 1) << "a case runs its steps once unless it says otherwise";
  EXPECT_EQ(std::get<ParallelStep>(plain.steps[0].kind).jitter, std::chrono::milliseconds(0));
  EXPECT_EQ(
      std::get<ParallelStep>(load_case_text(head + parallel + "    jitter: 1s\n", "s.yaml", "s", catalog).steps[0].kind)
          .jitter,
      kMaxJitter);

  struct Bad {
    std::string text, key, says;
  };
  for (const auto& bad : std::vector<Bad>{
           {head + "rounds: 0\n" + parallel, "rounds", "between 1 and 1000"},
           {head + "rounds: 1001\n" + parallel, "rounds", "between 1 and 1000"},
           {head + "rounds: many\n" + parallel, "rounds", "wrong type"},
           {head + parallel + "    jitter: 1001ms\n", "steps[0].jitter", "to 1s"},
           {head + parallel + "    jitter: 2\n", "steps[0].jitter", "not a duration"},
           {head + parallel + "    interleave: true\n    jitter: 2ms\n", "steps[0].jitter", "no jitter"},
       }) {
    auto e = case_error(bad.text);
    EXPECT_EQ(e.key(), bad.key) << bad.text << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(bad.says), std::string::npos) << bad.text << ": " << e.what();
  }
}

const char* kFaultHead =
    "schema_version: 1\ntitle: t\nrules: [ROB-MALFORMED]\napple: a\ndevices: [{name: mac}]\nsteps:\n";

TEST_F(SpecTest, AFaultIsOneChangeToAWellFormedMessage) {
  auto catalog = rules();
  auto c = load_case_text(std::string(kFaultHead) +
                              "  - {checkin: TokenUpdate, as: mac, fault: {pad_to: 4096}}\n"
                              "  - {report: Idle, as: mac, fault: {cut_after: '<key>UDID</key>'}}\n"
                              "  - {report: Idle, as: mac, fault: {replace_with: 'not a plist'}}\n"
                              "  - {report: Idle, as: mac, override: {drop: [UDID]}}\n"
                              "  - {report: Idle, as: mac}\n",
                          "f.yaml", "f", catalog);
  ASSERT_EQ(c.steps.size(), 5u);
  EXPECT_EQ(std::get<CheckInStep>(c.steps[0].kind).fault.pad_to, 4096u);
  EXPECT_EQ(std::get<ReportStep>(c.steps[1].kind).fault.cut_after, "<key>UDID</key>");
  EXPECT_EQ(std::get<ReportStep>(c.steps[2].kind).fault.replace_with, "not a plist");
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(c.steps[i].faulted()) << i;
  EXPECT_FALSE(c.steps[4].faulted());

  struct Bad {
    const char* step;
    const char* key;
    const char* says;
  };
  for (const auto& bad : {
           Bad{"{report: Idle, as: mac, override: {drop: [UDID, Topic]}}", "steps[0].override", "exactly one change"},
           Bad{"{report: Idle, as: mac, override: {drop: [UDID], set: {Status: X}}}", "steps[0].override",
               "exactly one change"},
           Bad{"{report: Idle, as: mac, fault: {pad_to: 10, cut_after: x}}", "steps[0].fault", "exactly one of"},
           Bad{"{report: Idle, as: mac, fault: {}}", "steps[0].fault", "exactly one of"},
           Bad{"{report: Idle, as: mac, fault: {pad_to: 0}}", "steps[0].fault.pad_to", "between 1 and"},
           Bad{"{report: Idle, as: mac, fault: {pad_to: 67108865}}", "steps[0].fault.pad_to", "between 1 and"},
           Bad{"{report: Idle, as: mac, fault: {cut_after: ''}}", "steps[0].fault.cut_after", "not be empty"},
           Bad{"{report: Idle, as: mac, override: {drop: [UDID]}, fault: {pad_to: 9000}}", "steps[0].fault",
               "not both"},
           Bad{"{enqueue: ProfileList, to: mac, fault: {pad_to: 9000}}", "steps[0].fault", "checkin and report"},
           Bad{"{raw: 'bytes', as: mac}", "steps[0].raw", "raw steps are gone"},
       }) {
    auto e = case_error(std::string(kFaultHead) + "  - " + bad.step + "\n");
    EXPECT_EQ(e.key(), bad.key) << bad.step << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(bad.says), std::string::npos) << bad.step << ": " << e.what();
  }
}

const char* kPushCase = R"(schema_version: 1
title: t
rules: [PSH-USER, PSH-WELL-FORMED, PSH-BACKOFF]
apple: a sentence
devices:
  - name: mac
    users:
      - {name: alice, kind: local}
steps:
  - checkin: TokenUpdate
    as: mac/alice
    new_token: true
  - apns: {answer: too_many_requests, for: mac/alice, times: 2}
  - {enqueue: ProfileList, to: mac/alice, may_refuse: true}
  - expect_push: {to: mac/alice, within: 2s}
    expect: [{rule: PSH-USER}, {rule: PSH-WELL-FORMED, push: well_formed}, {rule: PSH-USER, push: token}]
  - expect_no_push: {to: mac, for: 500ms}
    expect: {rule: PSH-USER}
  - expect_pushes: {to: mac/alice, for: 0ms, at_most: 3}
    expect: {rule: PSH-BACKOFF}
)";

TEST_F(SpecTest, PushStepsLoadAndACaseWithThemNeedsPush) {
  auto catalog = rules();
  auto c = load_case(write("case.yaml", kPushCase), "case", catalog);
  ASSERT_EQ(c.steps.size(), 6U);
  EXPECT_TRUE(std::get<CheckInStep>(c.steps[0].kind).new_token);
  const auto& apns = std::get<ApnsStep>(c.steps[1].kind);
  EXPECT_EQ(apns.answer, ApnsAnswer::too_many_requests);
  EXPECT_EQ(apns.actor, "mac/alice");
  EXPECT_EQ(apns.times, 2);
  EXPECT_TRUE(std::get<EnqueueStep>(c.steps[2].kind).may_refuse);
  const auto& one = std::get<PushStep>(c.steps[3].kind);
  EXPECT_EQ(one.watch, PushWatch::one);
  EXPECT_EQ(one.window, std::chrono::milliseconds(2000));
  ASSERT_EQ(one.expect.size(), 3U);
  EXPECT_EQ(one.expect[0].push, PushCheck::delivered);
  EXPECT_EQ(one.expect[1].push, PushCheck::well_formed);
  EXPECT_EQ(one.expect[2].push, PushCheck::token);
  const auto& none = std::get<PushStep>(c.steps[4].kind);
  EXPECT_EQ(none.watch, PushWatch::none);
  EXPECT_EQ(none.window, std::chrono::milliseconds(500));
  const auto& most = std::get<PushStep>(c.steps[5].kind);
  EXPECT_EQ(most.watch, PushWatch::at_most);
  EXPECT_EQ(most.at_most, 3);
  EXPECT_TRUE(c.steps[3].watches_pushes());
  EXPECT_FALSE(c.steps[2].watches_pushes());
  EXPECT_EQ(c.requirements, std::vector<Requirement>{Requirement::push});
}

TEST_F(SpecTest, APushStepThatCannotMeanWhatItSaysIsRefusedAtItsKey) {
  auto swap = [](std::string text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  const std::string good = kPushCase;
  struct Bad {
    std::string from, to, says;
  };
  for (const auto& bad : std::vector<Bad>{
           {"within: 2s", "within: 0ms", "not a duration from 1 ms"},
           {"within: 2s", "within: 31s", "to 30s"},
           {"within: 2s", "within: soon", "not a duration"},
           {"for: 500ms", "for: 500 ms", "not a duration"},
           {"at_most: 3", "at_most: 0", "between 1 and 1000"},
           {"answer: too_many_requests", "answer: gone", "must be accept, unregistered"},
           {"for: mac/alice, times: 2", "for: mac/bob, times: 2", "mac/bob"},
           {"    new_token: true", "    new_token: true\n  - checkin: Authenticate\n    as: mac\n    new_token: true",
            "new_token goes with TokenUpdate"},
           {"may_refuse: true}", "may_refuse: true, expect: {status: 200}}", "expects nothing of its answer"},
           {"    expect: {rule: PSH-USER}\n  - expect_pushes",
            "    expect: {rule: PSH-USER, push: token}\n  - expect_pushes", "go with expect_push"},
           {"    expect: {rule: PSH-BACKOFF}\n", "", "expects something"},
           {"{rule: PSH-USER, push: token}", "{rule: PSH-USER, push: loud}", "must be delivered, token or well_formed"},
       }) {
    auto text = swap(good, bad.from, bad.to);
    EXPECT_NE(std::string(case_error(text).what()).find(bad.says), std::string::npos)
        << bad.to << ": " << case_error(text).what();
  }
  // Push steps watch; they are no clients of a parallel step.
  auto parallel = swap(good, "  - expect_no_push: {to: mac, for: 500ms}\n    expect: {rule: PSH-USER}\n",
                       "  - parallel:\n      - expect_no_push: {to: mac, for: 500ms}\n"
                       "        expect: {rule: PSH-USER}\n      - {checkin: Authenticate, as: mac/alice}\n");
  EXPECT_NE(std::string(case_error(parallel).what()).find("holds checkin, report or series"), std::string::npos)
      << case_error(parallel).what();
}

}  // namespace
}  // namespace mdmc::scenario
