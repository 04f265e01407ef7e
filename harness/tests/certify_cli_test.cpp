// `mdmconform certify` and `mdmconform verify` end to end: a signed record beside the report,
// every kind of tampering caught with its reason, and the refusals that come before any case runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/pki/pki.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// The binary, killed after two minutes: a hang fails the test instead of the CI job.
testing::Ran mdmconform(const std::string& args) {
  return testing::run_shell("exec " + std::string(MDMC_BINARY) + " " + args, std::chrono::seconds(120));
}

std::string specs() { return std::string(MDMC_SOURCE_DIR) + "/specs"; }

bool has(const testing::Ran& ran, const std::string& text) { return ran.output.find(text) != std::string::npos; }

class CertifyCliTest : public testing::FolderTest {
 protected:
  CertifyCliTest() : FolderTest("mdmc_certify_cli_test") {}
  void SetUp() override {
    FolderTest::SetUp();
    certifiers_ = *pki::create_test_ca("Example Certifiers CA");
    auto certifier = *pki::issue_device_identity(certifiers_, "Example Certifier", pki::KeyType::ec_p256);
    ASSERT_TRUE(pki::write_identity(certifier, dir_ / "certifier.crt", dir_ / "certifier.key"));
    write("certifiers-ca.pem", certifiers_.cert_pem);
  }

  std::string certify(const std::string& args) {
    return "--specs " + specs() + " certify --seed 7 --cert " + (dir_ / "certifier.crt").string() + " --key " +
           (dir_ / "certifier.key").string() + " --out " + out().string() + " " + args;
  }
  testing::Ran verify(const std::string& args = "", const std::string& specs_dir = specs()) {
    return mdmconform("--specs " + specs_dir + " verify " + (out() / "certification.json").string() + " --ca " +
                      (dir_ / "certifiers-ca.pem").string() + " " + args);
  }
  fs::path out() const { return dir_ / "out"; }
  Json record() const { return Json::parse(testing::read_text(out() / "certification.json")); }

  pki::Identity certifiers_;
};

TEST_F(CertifyCliTest, CertifiesTheBuiltinServerAndVerifyCatchesEveryTampering) {
  auto ran = mdmconform(certify(""));
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_TRUE(has(ran, "certification: " + out().string() +
                           "/certification.json signed by CN=Example Certifier: certified (of the built-in "
                           "reference server)"))
      << ran.output;
  ASSERT_TRUE(fs::exists(out() / "certification.json.p7s"));
  const auto html = testing::read_text(out() / "report.html");
  EXPECT_NE(html.find("certification.json signed by CN=Example Certifier at "), std::string::npos);

  const Json j = record();
  EXPECT_EQ(j["verdict"]["overall"], "certified");
  EXPECT_EQ(j["target"]["builtin"], true);
  EXPECT_EQ(j["target"]["name"], "reference");
  EXPECT_EQ(j["target"]["server_certificate_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["suite"]["seed_article"]["title"], "Managing MDM Devices and Users in macOS");
  EXPECT_EQ(j["suite"]["rules_yaml_sha256"], base::sha256_hex(testing::read_text(specs() + "/rules.yaml")));
  EXPECT_EQ(j["report_sha256"], base::sha256_hex(testing::read_text(out() / "report.json")));
  EXPECT_EQ(j["harness"]["version"], MDMC_VERSION);

  auto valid = verify();
  EXPECT_EQ(valid.exit_code, 0) << valid.output;
  EXPECT_TRUE(has(valid, "valid: certified for the built-in reference server (https://127.0.0.1:")) << valid.output;
  EXPECT_TRUE(has(valid, "signed by CN=Example Certifier")) << valid.output;
  auto by_folder =
      mdmconform("--specs " + specs() + " verify " + out().string() + " --ca " + (dir_ / "certifiers-ca.pem").string());
  EXPECT_EQ(by_folder.exit_code, 0) << by_folder.output;

  // Each part of the record changed in turn (certification_test checks every value): a bad signature.
  const std::string signed_text = testing::read_text(out() / "certification.json");
  for (auto it = j.begin(); it != j.end(); ++it) {
    Json tampered = j;
    auto& value = tampered[it.key()];
    if (value.is_object()) {
      value.erase(value.begin());
    } else if (value.is_string()) {
      value = value.get<std::string>() + "x";
    } else {
      value = 2;
    }
    write("out/certification.json", tampered.dump(2) + "\n");
    auto caught = verify();
    EXPECT_EQ(caught.exit_code, 1) << it.key() << ": " << caught.output;
    EXPECT_TRUE(has(caught, "invalid: bad signature: certification.json is not what was signed")) << caught.output;
  }
  write("out/certification.json", signed_text);

  const std::string report = testing::read_text(out() / "report.json");
  write("out/report.json", report + " ");
  auto report_changed = verify();
  EXPECT_EQ(report_changed.exit_code, 1) << report_changed.output;
  EXPECT_TRUE(has(report_changed, "invalid: report digest mismatch")) << report_changed.output;
  write("out/report.json", report);

  const std::string signature = testing::read_text(out() / "certification.json.p7s");
  write("out/certification.json.p7s", signature.substr(0, signature.size() / 2));
  auto signature_cut = verify();
  EXPECT_EQ(signature_cut.exit_code, 1) << signature_cut.output;
  EXPECT_TRUE(has(signature_cut, "invalid: bad signature")) << signature_cut.output;
  write("out/certification.json.p7s", signature);

  auto other_ca = *pki::create_test_ca("Some other CA");
  write("other-ca.pem", other_ca.cert_pem);
  auto foreign = mdmconform("--specs " + specs() + " verify " + (out() / "certification.json").string() + " --ca " +
                            (dir_ / "other-ca.pem").string());
  EXPECT_EQ(foreign.exit_code, 1) << foreign.output;
  EXPECT_TRUE(has(foreign, "invalid: chain does not reach the CA")) << foreign.output;

  // The same catalog but for one case changed: this build's suite is not the certified one.
  fs::copy(specs(), dir_ / "specs", fs::copy_options::recursive);
  const auto a_case = dir_ / "specs/scenarios/chn/idle_empty_device.yaml";
  ASSERT_TRUE(fs::exists(a_case));
  write("specs/scenarios/chn/idle_empty_device.yaml", testing::read_text(a_case) + "# changed\n");
  auto other_suite = verify("", (dir_ / "specs").string());
  EXPECT_EQ(other_suite.exit_code, 1) << other_suite.output;
  EXPECT_TRUE(has(other_suite, "invalid: suite digest differs from this build's")) << other_suite.output;

  auto missing = verify("--report " + (dir_ / "no-such-report.json").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_TRUE(has(missing, "no-such-report.json")) << missing.output;
  EXPECT_EQ(verify().exit_code, 0) << "everything put back holds again";
}

TEST_F(CertifyCliTest, RefusesASelectionOrAnOverrideBeforeAnythingRuns) {
  for (const std::string args :
       {"chn/", "--tag robustness", "--level must", "--exclude chn/", "--fault checkout-refused",
        "--seeded-bug crash-on-long-udid", "--identity-mode none"}) {
    auto ran = mdmconform(certify(args));
    EXPECT_EQ(ran.exit_code, 2) << args << ": " << ran.output;
    EXPECT_TRUE(has(ran, "certify runs the whole catalog") || has(ran, "certify takes the target as it is"))
        << args << ": " << ran.output;
    EXPECT_FALSE(fs::exists(out())) << args;
  }
}

TEST_F(CertifyCliTest, AKeyThatDoesNotMatchItsCertificateExitsTwoBeforeAnyCaseRuns) {
  auto stranger = *pki::issue_device_identity(certifiers_, "Someone Else", pki::KeyType::ec_p256);
  ASSERT_TRUE(pki::write_secret_file(dir_ / "certifier.key", stranger.key_pem));
  auto ran = mdmconform(certify(""));
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_TRUE(has(ran, "is not the key of this certificate")) << ran.output;
  EXPECT_FALSE(has(ran, "PASS")) << ran.output;
  EXPECT_FALSE(fs::exists(out()));
}

TEST_F(CertifyCliTest, RefusesAnInsecureOrPlainHttpProfile) {
  const std::string head = "schema_version: 1\nname: x\nurls:\n  server: ";
  auto insecure = write("insecure.yaml", head + "https://127.0.0.1:1/mdm\ntls: {insecure: true}\n");
  auto ran = mdmconform(certify("--target " + insecure.string()));
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_TRUE(has(ran, "tls.insecure")) << ran.output;
  auto plain = write("plain.yaml", head + "http://127.0.0.1:1/mdm\n");
  ran = mdmconform(certify("--target " + plain.string()));
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_TRUE(has(ran, "plain HTTP")) << ran.output;
  EXPECT_FALSE(fs::exists(out()));
}

// A server under test, over TLS: the record names it by the certificate it presented, and holds its
// profile without the admin password.
TEST_F(CertifyCliTest, NamesATargetByItsServerCertificate) {
  auto ca = *pki::create_test_ca("server CA");
  auto server_identity = *pki::issue_server_identity(ca, {"127.0.0.1"});
  ASSERT_TRUE(pki::write_identity(ca, dir_ / "ca.crt", dir_ / "ca.key"));
  server::Config config;
  config.identity_mode = server::IdentityMode::none;
  server::ReferenceServer server(config, net::ServerTls{server_identity.cert_pem, server_identity.key_pem, "", false});
  auto port = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(port) << port.message();
  server.start();
  const auto base = "https://127.0.0.1:" + std::to_string(*port);
  auto profile = write("target.yaml", "schema_version: 1\nname: under-test\nurls:\n  check_in: " + base +
                                          "/checkin\n  server: " + base +
                                          "/mdm\ntls: {ca: ca.crt}\nadmin:\n  enqueue:\n    url: " + base +
                                          "/v1/enqueue/{channel}\n    basic_auth: {user: admin, password: "
                                          "do-not-print-me}\n");
  auto ran = mdmconform(certify("--target " + profile.string()));
  ASSERT_TRUE(ran.exit_code == 0 || ran.exit_code == 1) << ran.output;
  const Json j = record();
  EXPECT_EQ(j["target"]["builtin"], false);
  EXPECT_EQ(j["target"]["name"], "under-test");
  EXPECT_EQ(j["target"]["check_in_url"], base + "/checkin");
  EXPECT_EQ(j["target"]["server_certificate_sha256"],
            base::sha256_hex(*pki::certificate_der(server_identity.cert_pem)));
  EXPECT_EQ(j["target"]["tls"], "verified against the profile's CA (tls.ca)");
  EXPECT_EQ(testing::read_text(out() / "certification.json").find("do-not-print-me"), std::string::npos);
  EXPECT_NE(j["target"]["profile"].get<std::string>().find("password: <redacted>"), std::string::npos);
  auto valid = verify();
  EXPECT_EQ(valid.exit_code, 0) << valid.output;
  EXPECT_TRUE(has(valid, " for under-test (" + base + "/checkin) signed by CN=Example Certifier")) << valid.output;
}

}  // namespace
}  // namespace mdmc
