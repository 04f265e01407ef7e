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
  auto ca = pki::create_test_ca("t");
  ASSERT_TRUE(ca);
  auto profile = load_profile(p, BuiltinTarget{8080, *ca});
  EXPECT_EQ(profile.server_url, "http://127.0.0.1:8080/mdm");
  EXPECT_EQ(profile.check_in_url, profile.server_url);
  ASSERT_TRUE(profile.enqueue);
  EXPECT_EQ(profile.enqueue->basic_password, "s3cret");
  EXPECT_EQ(profile.digest.size(), 64u);
  EXPECT_THROW(load_profile(p), LoadError);
}

TEST_F(SpecTest, AProfileWithABadUrlNamesTheKey) {
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: ftp://x\n");
  try {
    load_profile(p);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 4);
    EXPECT_EQ(e.key(), "urls.server");
  }
}

TEST_F(SpecTest, TheNanoMdmProfileLoadsWithItsCaAndApiKeyFromTheEnvironment) {
  auto ca = pki::create_test_ca("nanomdm test CA");
  ASSERT_TRUE(ca) << ca.message();
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "ca.crt", dir_ / "ca.key"));
  ::setenv("NANOMDM_CA_CERT", (dir_ / "ca.crt").c_str(), 1);
  ::setenv("NANOMDM_CA_KEY", (dir_ / "ca.key").c_str(), 1);
  ::setenv("NANOMDM_API_KEY", "k3y", 1);
  auto p = load_profile(fs::path(MDMC_SOURCE_DIR) / "specs/targets/nanomdm.yaml");
  EXPECT_EQ(p.identity.mode, IdentityMode::signature);
  ASSERT_TRUE(p.identity.issuer);
  EXPECT_EQ(p.identity.issuer->cert_pem, ca->cert_pem);
  EXPECT_EQ(p.check_in_url, p.server_url);
  ASSERT_TRUE(p.enqueue);
  EXPECT_EQ(p.enqueue->basic_user, "nanomdm");
  EXPECT_EQ(p.enqueue->basic_password, "k3y");
  EXPECT_NE(p.enqueue->url.find("nopush=1"), std::string::npos);
  ::unsetenv("NANOMDM_API_KEY");
  EXPECT_THROW(load_profile(fs::path(MDMC_SOURCE_DIR) / "specs/targets/nanomdm.yaml"), LoadError);
}

TEST_F(SpecTest, TheMicroMdmProfileTakesIdentitiesFromAPool) {
  auto ca = pki::create_test_ca("scep CA");
  ASSERT_TRUE(ca) << ca.message();
  auto device = pki::issue_device_identity(*ca, "device-1", pki::KeyType::ec_p256);
  ASSERT_TRUE(device) << device.message();
  fs::create_directories(dir_ / "pool");
  ASSERT_TRUE(pki::write_identity(*device, dir_ / "pool/device-1.crt", dir_ / "pool/device-1.key"));
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "tls-ca.crt", dir_ / "tls-ca.key"));
  ::setenv("MICROMDM_TOPIC", "com.apple.mgmt.External.test", 1);
  ::setenv("MICROMDM_TLS_CA", (dir_ / "tls-ca.crt").c_str(), 1);
  ::setenv("MICROMDM_IDENTITIES", (dir_ / "pool").c_str(), 1);
  ::setenv("MICROMDM_P12_PASSWORD", "", 1);
  ::setenv("MICROMDM_API_KEY", "k3y", 1);
  auto p = load_profile(fs::path(MDMC_SOURCE_DIR) / "specs/targets/micromdm.yaml");
  EXPECT_EQ(p.identity.pool.size(), 1u);
  EXPECT_FALSE(p.identity.issuer);
  EXPECT_NE(p.check_in_url, p.server_url);
  ASSERT_TRUE(p.enqueue);
  EXPECT_EQ(p.enqueue->channel_style, ChannelStyle::user_id);
  EXPECT_EQ(p.enqueue->expect_status, std::vector<int>{201});
  EXPECT_GT(p.enqueue->settle.count(), 0);
  EXPECT_EQ(p.tls.ca_pem, ca->cert_pem);
  EXPECT_EQ(p.topic, "com.apple.mgmt.External.test");  // topic: ${env:MICROMDM_TOPIC}
}

TEST_F(SpecTest, AnIdentityModeWithoutIssuerOrPoolIsRejected) {
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\nidentity:\n  mode: mtls\n");
  try {
    load_profile(p);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 6);
    EXPECT_NE(std::string(e.what()).find("needs an issuer or a pool"), std::string::npos) << e.what();
  }
}

TEST_F(SpecTest, LimitsAreReadAndCannotBeTurnedOff) {
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                                "limits:\n  header_timeout_ms: 1500\n  plist_max_depth: 32\n  plist_max_nodes: 500\n");
  auto profile = load_profile(p);
  EXPECT_EQ(profile.limits.header_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(profile.plist_limits.max_depth, 32u);
  EXPECT_EQ(profile.plist_limits.max_nodes, 500u);
  auto unbounded = write("unbounded.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                                           "limits:\n  plist_max_depth: 100000\n");
  try {
    load_profile(unbounded);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 6);
    EXPECT_EQ(e.key(), "limits.plist_max_depth");
  }
}

TEST_F(SpecTest, RedirectLimitsAreReadAndBounded) {
  auto defaults =
      load_profile(write("defaults.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"));
  EXPECT_EQ(defaults.limits.max_redirects, 5);
  EXPECT_FALSE(defaults.limits.redirects_off_loopback);
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                                "limits:\n  max_redirects: 0\n  redirects_off_loopback: true\n");
  auto profile = load_profile(p);
  EXPECT_EQ(profile.limits.max_redirects, 0);
  EXPECT_TRUE(profile.limits.redirects_off_loopback);
  for (const char* bad :
       {"max_redirects: -1", "max_redirects: 21", "max_redirects: many", "redirects_off_loopback: maybe"}) {
    auto wrong = write("wrong.yaml", std::string("schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                                                 "limits:\n  header_timeout_ms: 1500\n  ") +
                                         bad + "\n");
    try {
      load_profile(wrong);
      ADD_FAILURE() << bad;
    } catch (const LoadError& e) {
      EXPECT_EQ(e.line(), 7) << bad;
      EXPECT_EQ(e.key(), "limits." + std::string(bad).substr(0, std::string(bad).find(':'))) << bad;
    }
  }
}

TEST_F(SpecTest, BuiltinIsOnlyValidWithTheBuiltinServer) {
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\ntls:\n  ca: builtin\n");
  EXPECT_THROW(load_profile(p), LoadError);
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

TEST_F(SpecTest, TextProfilesTakeRelativePathsFromTheGivenFolder) {
  auto ca = pki::create_test_ca("text CA");
  ASSERT_TRUE(ca) << ca.message();
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "ca.crt", dir_ / "ca.key"));
  const std::string text = "schema_version: 1\nname: t\nurls: {server: 'https://127.0.0.1:1/mdm'}\ntls: {ca: ca.crt}\n";
  EXPECT_EQ(load_profile_text(text, "t.yaml", dir_).tls.ca_pem, ca->cert_pem);
  EXPECT_THROW(load_profile_text(text, "t.yaml", dir_ / "elsewhere"), LoadError);
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
  auto e = case_error("schema_version: 1\ntitle: t\nrules: [SYN-ALL]\napple: a\ndevices: [{name: mac}]\nsteps:\n" + steps + "\n");
  EXPECT_EQ(e.key(), "steps[0].parallel");
  EXPECT_NE(std::string(e.what()).find("holds checkin, report, series or raw steps"), std::string::npos) << e.what();
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

}  // namespace
}  // namespace mdmc::scenario
