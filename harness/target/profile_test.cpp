#include "harness/target/profile.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "harness/base/load_error.hpp"
#include "harness/testing/files.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc::target {
namespace {

namespace fs = std::filesystem;
using base::LoadError;

// Each test writes its profiles into a folder of its own.
class ProfileTest : public testing::FolderTest {
 protected:
  ProfileTest() : FolderTest("mdmc_profile_test") {}
};

TEST_F(ProfileTest, ProfileSubstitutesTheBuiltinPortAndEnvironment) {
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

TEST_F(ProfileTest, TheDeclarationsAdapterNeedsPutAndAssignAndTakesUpToEightRequestsEach) {
  auto ca = pki::create_test_ca("t");
  ASSERT_TRUE(ca);
  auto p = load_profile(fs::path(MDMC_SOURCE_DIR) / "specs/targets/reference.yaml", BuiltinTarget{8443, *ca});
  ASSERT_TRUE(p.declarations);
  EXPECT_EQ(p.declarations->put.url, "https://127.0.0.1:8443/v1/declarations");
  ASSERT_EQ(p.declarations->assign.size(), 2u);
  EXPECT_EQ(p.declarations->assign[1].url, "https://127.0.0.1:8443/v1/enrollment-sets/{channel}?set={set}");
  ASSERT_EQ(p.declarations->unassign.size(), 1u);
  EXPECT_EQ(p.declarations->unassign[0].method, "DELETE");

  auto without_assign = write("a.yaml", R"(schema_version: 1
name: t
urls: {server: "http://127.0.0.1:1/mdm"}
admin:
  declarations:
    put: {url: "http://127.0.0.1:1/v1/declarations"}
)");
  try {
    load_profile(without_assign);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.key(), "admin.declarations.assign");
  }
  auto not_a_list = write("b.yaml", R"(schema_version: 1
name: t
urls: {server: "http://127.0.0.1:1/mdm"}
admin:
  declarations:
    put: {url: "http://127.0.0.1:1/v1/declarations"}
    assign: {url: "http://127.0.0.1:1/v1/x"}
)");
  EXPECT_THROW(load_profile(not_a_list), LoadError);
}

TEST_F(ProfileTest, AProfileWithABadUrlNamesTheKey) {
  auto p = write("target.yaml", "schema_version: 1\nname: t\nurls:\n  server: ftp://x\n");
  try {
    load_profile(p);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 4);
    EXPECT_EQ(e.key(), "urls.server");
  }
}

TEST_F(ProfileTest, TheNanoMdmProfileLoadsWithItsCaAndApiKeyFromTheEnvironment) {
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

TEST_F(ProfileTest, TheMicroMdmProfileLeavesUrlsTopicAndIdentitiesToItsEnrollmentProfile) {
  auto ca = pki::create_test_ca("micromdm TLS CA");
  ASSERT_TRUE(ca) << ca.message();
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "tls-ca.crt", dir_ / "tls-ca.key"));
  ::setenv("MICROMDM_TLS_CA", (dir_ / "tls-ca.crt").c_str(), 1);
  ::setenv("MICROMDM_API_KEY", "k3y", 1);
  auto p = load_profile(fs::path(MDMC_SOURCE_DIR) / "specs/targets/micromdm.yaml");
  ASSERT_TRUE(p.enrollment);
  EXPECT_EQ(p.enrollment->profile_url, "https://127.0.0.1:8080/mdm/enroll");
  EXPECT_TRUE(p.enrollment->trust_profile_cas);
  // Nothing the enrollment profile gives is stated: no identity files, no CA key.
  EXPECT_TRUE(p.stated.empty());
  EXPECT_FALSE(p.identity.issuer);
  EXPECT_TRUE(p.identity.pool.empty());
  EXPECT_EQ(p.origins.at("urls.check_in"), "default");
  ASSERT_TRUE(p.enqueue);
  EXPECT_EQ(p.enqueue->channel_style, ChannelStyle::user_id);
  EXPECT_EQ(p.enqueue->expect_status, std::vector<int>{201});
  EXPECT_GT(p.enqueue->settle.count(), 0);
  EXPECT_EQ(p.tls.ca_pem, ca->cert_pem);
}

TEST_F(ProfileTest, AnEnrollmentProfileStandsWhereTheTargetProfileIsSilent) {
  auto p = write("target.yaml", R"(schema_version: 1
name: t
enrollment:
  profile_url: https://127.0.0.1:1/enroll
  basic_auth: {user: admin, password: pw}
  headers: {X-Tenant: "42"}
topic: com.apple.mgmt.External.stated
)");
  auto profile = load_profile(p);
  ASSERT_TRUE(profile.enrollment);
  EXPECT_EQ(profile.enrollment->basic_user, "admin");
  EXPECT_EQ(profile.enrollment->headers.at("X-Tenant"), "42");
  EXPECT_EQ(profile.stated, std::set<std::string>{"topic"});
  EXPECT_EQ(profile.origins.at("topic"), "target profile");
  EXPECT_EQ(profile.origins.at("urls.server"), "default");
  EXPECT_EQ(profile.identity.mode, IdentityMode::none);

  // Without an enrollment profile, urls are required; with both sources, one is refused.
  EXPECT_THROW(load_profile(write("none.yaml", "schema_version: 1\nname: t\n")), LoadError);
  auto both = write("both.yaml",
                    "schema_version: 1\nname: t\nenrollment:\n  profile_url: https://127.0.0.1:1/e\n"
                    "  profile_file: x.mobileconfig\n");
  try {
    load_profile(both);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("profile_url or profile_file"), std::string::npos) << e.what();
  }
}

TEST_F(ProfileTest, TheReferenceProfileEnrollsThroughTheBuiltinScepServerOnlyWhenOneRuns) {
  auto ca = pki::create_test_ca("t");
  ASSERT_TRUE(ca);
  const auto reference = fs::path(MDMC_SOURCE_DIR) / "specs/targets/reference.yaml";
  // No SCEP companion: the reference profile's own URLs, topic and issuer.
  auto plain = load_profile(reference, BuiltinTarget{8443, *ca, "", true});
  EXPECT_FALSE(plain.enrollment);
  EXPECT_TRUE(plain.identity.issuer);
  EXPECT_EQ(plain.check_in_url, "https://127.0.0.1:8443/checkin");
  // A companion, devices through it: everything but the policy comes from /enroll.
  auto scep = load_profile(reference, BuiltinTarget{8443, *ca, ca->cert_pem, true});
  ASSERT_TRUE(scep.enrollment);
  EXPECT_EQ(scep.enrollment->profile_url, "https://127.0.0.1:8443/enroll");
  EXPECT_FALSE(scep.identity.issuer);
  EXPECT_TRUE(scep.stated.empty());
  // A companion for the enrollment cases only: the issuer and URLs stay stated.
  auto cases = load_profile(reference, BuiltinTarget{8443, *ca, ca->cert_pem, false});
  ASSERT_TRUE(cases.enrollment);
  EXPECT_TRUE(cases.identity.issuer);
  EXPECT_TRUE(cases.stated.count("urls.check_in"));
  EXPECT_TRUE(cases.stated.count("identity.source"));
}

TEST_F(ProfileTest, AnIdentityModeWithoutIssuerOrPoolIsRejected) {
  auto p = write("target.yaml",
                 "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\nidentity:\n  mode: mtls\n");
  try {
    load_profile(p);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 6);
    EXPECT_NE(std::string(e.what()).find("needs an issuer, a pool, or an enrollment profile"), std::string::npos)
        << e.what();
  }
}

TEST_F(ProfileTest, LimitsAreReadAndCannotBeTurnedOff) {
  auto p = write("target.yaml",
                 "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                 "limits:\n  header_timeout_ms: 1500\n  plist_max_depth: 32\n  plist_max_nodes: 500\n");
  auto profile = load_profile(p);
  EXPECT_EQ(profile.limits.header_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(profile.plist_limits.max_depth, 32u);
  EXPECT_EQ(profile.plist_limits.max_nodes, 500u);
  auto unbounded = write("unbounded.yaml",
                         "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                         "limits:\n  plist_max_depth: 100000\n");
  try {
    load_profile(unbounded);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.line(), 6);
    EXPECT_EQ(e.key(), "limits.plist_max_depth");
  }
}

TEST_F(ProfileTest, RedirectLimitsAreReadAndBounded) {
  auto defaults =
      load_profile(write("defaults.yaml", "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"));
  EXPECT_EQ(defaults.limits.max_redirects, 5);
  EXPECT_FALSE(defaults.limits.redirects_off_loopback);
  auto p = write("target.yaml",
                 "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
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

// The line and key a profile's LoadError names, and its text; fails the test when it loads.
struct Refusal {
  int line = 0;
  std::string key;
  std::string text;
};
Refusal refusal_of(const fs::path& profile) {
  try {
    load_profile(profile);
    ADD_FAILURE() << profile << " loaded";
  } catch (const LoadError& e) {
    return {e.line(), e.key(), e.what()};
  }
  return {};
}

TEST_F(ProfileTest, AnIssuerKeyOfAnotherCertificateIsRefusedAtItsLine) {
  auto ca = pki::create_test_ca("issuer CA");
  auto other = pki::create_test_ca("another CA");
  ASSERT_TRUE(ca && other);
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "ca.crt", dir_ / "ca.key"));
  ASSERT_TRUE(pki::write_identity(*other, dir_ / "other.crt", dir_ / "other.key"));
  const std::string head =
      "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\nidentity:\n"
      "  mode: signature\n  issuer:\n    cert: ca.crt\n";
  EXPECT_TRUE(load_profile(write("good.yaml", head + "    key: ca.key\n")).identity.issuer);
  auto wrong = refusal_of(write("wrong.yaml", head + "    key: other.key\n"));
  EXPECT_EQ(wrong.line, 9);
  EXPECT_EQ(wrong.key, "identity.issuer.key");
  EXPECT_NE(wrong.text.find("wrong.yaml:9: identity.issuer.key: the private key does not match the certificate"),
            std::string::npos)
      << wrong.text;
  // A certificate where the key belongs is no key at all.
  auto not_a_key = refusal_of(write("swapped.yaml", head + "    key: other.crt\n"));
  EXPECT_EQ(not_a_key.line, 9);
  EXPECT_NE(not_a_key.text.find("identity.issuer.key: private key: "), std::string::npos) << not_a_key.text;
}

TEST_F(ProfileTest, ATlsCaThatHoldsNoCertificateIsRefusedAtItsLine) {
  auto ca = pki::create_test_ca("server CA");
  ASSERT_TRUE(ca);
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "ca.crt", dir_ / "ca.key"));
  const std::string head = "schema_version: 1\nname: t\nurls:\n  server: https://127.0.0.1:1/mdm\ntls:\n  ca: ";
  EXPECT_EQ(load_profile(write("good.yaml", head + "ca.crt\n")).tls.ca_pem, ca->cert_pem);
  write("garbage.pem", "this is not a certificate\n");
  auto garbage = refusal_of(write("garbage.yaml", head + "garbage.pem\n"));
  EXPECT_EQ(garbage.line, 6);
  EXPECT_EQ(garbage.key, "tls.ca");
  EXPECT_NE(garbage.text.find("holds no PEM certificate"), std::string::npos) << garbage.text;
  // A bundle whose second block is damaged: OpenSSL would drop it, or the whole file.
  write("damaged.pem", ca->cert_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  auto damaged = refusal_of(write("damaged.yaml", head + "damaged.pem\n"));
  EXPECT_EQ(damaged.line, 6);
  EXPECT_NE(damaged.text.find("bad PEM certificate #2"), std::string::npos) << damaged.text;
  // A private key is not a CA.
  EXPECT_EQ(refusal_of(write("key.yaml", head + "ca.key\n")).key, "tls.ca");
}

TEST_F(ProfileTest, APoolIdentityWhoseKeyIsAnotherOnesIsRefusedNamingTheFile) {
  auto ca = pki::create_test_ca("pool CA");
  ASSERT_TRUE(ca);
  auto a = pki::issue_device_identity(*ca, "a", pki::KeyType::ec_p256);
  auto b = pki::issue_device_identity(*ca, "b", pki::KeyType::ec_p256);
  ASSERT_TRUE(a && b);
  fs::create_directories(dir_ / "pool");
  ASSERT_TRUE(pki::write_identity(*a, dir_ / "pool/a.crt", dir_ / "pool/a.key"));
  ASSERT_TRUE(
      pki::write_identity(pki::Identity{b->cert_pem, a->key_pem, ""}, dir_ / "pool/b.crt", dir_ / "pool/b.key"));
  auto refused = refusal_of(write("pool.yaml",
                                  "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\nidentity:\n"
                                  "  mode: mtls\n  pool:\n    dir: pool\n"));
  EXPECT_EQ(refused.line, 8);
  EXPECT_EQ(refused.key, "identity.pool.dir");
  EXPECT_NE(refused.text.find("b.crt"), std::string::npos) << refused.text;
}

TEST_F(ProfileTest, BuiltinIsOnlyValidWithTheBuiltinServer) {
  auto p = write("target.yaml",
                 "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\ntls:\n  ca: builtin\n");
  EXPECT_THROW(load_profile(p), LoadError);
}

TEST_F(ProfileTest, TextProfilesTakeRelativePathsFromTheGivenFolder) {
  auto ca = pki::create_test_ca("text CA");
  ASSERT_TRUE(ca) << ca.message();
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "ca.crt", dir_ / "ca.key"));
  const std::string text = "schema_version: 1\nname: t\nurls: {server: 'https://127.0.0.1:1/mdm'}\ntls: {ca: ca.crt}\n";
  EXPECT_EQ(load_profile_text(text, "t.yaml", dir_).tls.ca_pem, ca->cert_pem);
  EXPECT_THROW(load_profile_text(text, "t.yaml", dir_ / "elsewhere"), LoadError);
}

TEST_F(ProfileTest, PushNamesTheFakeApnsTheServerPushesToAndRefusesWhatCannotServe) {
  auto ca = pki::create_test_ca("apns ca");
  ASSERT_TRUE(ca);
  ASSERT_TRUE(pki::write_identity(*ca, dir_ / "apns.crt", dir_ / "apns.key"));
  auto other = pki::create_test_ca("other");
  ASSERT_TRUE(pki::write_identity(*other, dir_ / "other.crt", dir_ / "other.key"));
  const std::string head = "schema_version: 1\nname: t\nurls: {server: http://127.0.0.1:1/mdm}\n";
  auto p = write("target.yaml", head + R"(push:
  listen: 127.0.0.1:2197
  names: [api.push.apple.com]
  ca: {cert: apns.crt, key: apns.key}
  auth:
    certificate_ca: other.crt
    token: {key_id: ABC123DEFG, team_id: DEF123GHIJ, public_key: other.crt}
)");
  auto profile = load_profile(p);
  ASSERT_TRUE(profile.push);
  EXPECT_EQ(profile.push->address, "127.0.0.1");
  EXPECT_EQ(profile.push->port, 2197);
  EXPECT_EQ(profile.push->names, std::vector<std::string>{"api.push.apple.com"});
  EXPECT_EQ(profile.push->ca.cert_pem, ca->cert_pem);
  EXPECT_EQ(profile.push->certificate_ca_pem, other->cert_pem);
  EXPECT_EQ(profile.push->token_key_id, "ABC123DEFG");
  EXPECT_FALSE(profile.push->builtin);

  auto error = [&](const std::string& push) -> std::string {
    try {
      load_profile(write("bad.yaml", head + push));
    } catch (const LoadError& e) {
      return e.what();
    }
    return "loaded";
  };
  const std::string ca_auth = "  ca: {cert: apns.crt, key: apns.key}\n  auth: {certificate_ca: other.crt}\n";
  EXPECT_NE(error("push:\n  listen: 127.0.0.1\n" + ca_auth).find("not host:port"), std::string::npos);
  EXPECT_NE(error("push:\n  listen: 127.0.0.1:70000\n" + ca_auth).find("not host:port"), std::string::npos);
  EXPECT_NE(error("push:\n  listen: '[::1]:0'\n" + ca_auth).find("not host:port"), std::string::npos);
  EXPECT_NE(error("push:\n  listen: 127.0.0.1:2197\n  ca: {cert: apns.crt, key: other.key}\n  auth: "
                  "{certificate_ca: other.crt}\n")
                .find("key"),
            std::string::npos);
  EXPECT_NE(error("push:\n  listen: 127.0.0.1:2197\n  ca: {cert: apns.crt, key: apns.key}\n  auth: {}\n")
                .find("give certificate_ca"),
            std::string::npos);
  EXPECT_NE(error("push:\n  listen: 127.0.0.1:2197\n" + ca_auth + "  sandbox: true\n").find("sandbox"),
            std::string::npos);
  EXPECT_NE(error("push: builtin\n").find("needs the built-in server"), std::string::npos);

  // `push: builtin` is the built-in server's fake APNs, when one runs.
  auto builtin = write("builtin.yaml", head + "push: builtin\n");
  auto with = load_profile(builtin, BuiltinTarget{8080, *ca, "", true, 4443});
  ASSERT_TRUE(with.push);
  EXPECT_TRUE(with.push->builtin);
  EXPECT_EQ(with.push->port, 4443);
  EXPECT_EQ(with.push->certificate_ca_pem, ca->cert_pem);
  EXPECT_FALSE(load_profile(builtin, BuiltinTarget{8080, *ca, "", true, 0}).push);
}

}  // namespace
}  // namespace mdmc::target
