#include "harness/scenario/spec.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

namespace mdmc::scenario {
namespace {

namespace fs = std::filesystem;

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mdmc_spec_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
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
  EXPECT_EQ(c.steps[1].kind, StepKind::series);
  EXPECT_TRUE(c.steps[1].flags.need_sync_response);
  ASSERT_EQ(c.steps[1].expect.size(), 1u);
  EXPECT_EQ(c.steps[1].expect[0].rule, "SYN-ALL");
  EXPECT_EQ(c.steps[1].line, 11);
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

TEST_F(SpecTest, ProfileSubstitutesTheBuiltinPortAndEnvironment) {
  ::setenv("MDMC_TEST_SECRET", "s3cret", 1);
  auto p = write("target.yaml", R"(schema_version: 1
name: t
urls:
  server: http://127.0.0.1:${builtin_port}/mdm
admin:
  enqueue:
    url: http://127.0.0.1:${builtin_port}/v1/enqueue/{channel}
    basic_auth: {user: nanomdm, password: "${env:MDMC_TEST_SECRET}"}
)");
  auto profile = load_profile(p, {{"builtin_port", "8080"}});
  EXPECT_EQ(profile.server_url, "http://127.0.0.1:8080/mdm");
  EXPECT_EQ(profile.check_in_url, profile.server_url);
  ASSERT_TRUE(profile.enqueue);
  EXPECT_EQ(profile.enqueue->basic_password, "s3cret");
  EXPECT_EQ(profile.digest.size(), 64u);
  EXPECT_THROW(load_profile(p, {}), LoadError);
}

TEST_F(SpecTest, AProfileWithABadUrlNamesTheKey) {
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: ftp://x\n");
  try {
    load_profile(p, {});
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 4);
    EXPECT_EQ(e.key(), "urls.server");
  }
}

}  // namespace
}  // namespace mdmc::scenario
