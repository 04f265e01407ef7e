// The mdmconform binary's contract: exit codes, clear messages, reports on disk, and no crash
// whatever the target answers.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/cli/selection.hpp"
#include "harness/net/http_client.hpp"
#include "harness/net/http_server.hpp"
#include "harness/pki/pki.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/report/report.hpp"
#include "harness/scenario/spec.hpp"
#include "harness/server/mdm_service.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "harness/testing/raw_peer.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;

using Ran = testing::Ran;

// Runs the binary with a hard time limit, so a hang fails the test instead of the CI job. The
// shell reads `args`, as it reads a command a user types (a reproducer is run as written).
Ran run_mdmconform_env(const std::string& env, const std::string& args) {
  testing::ProcessOptions options;
  if (!env.empty()) options.env = {env};
  return testing::run_shell("exec " + std::string(MDMC_BINARY) + " " + args, std::chrono::seconds(120), options);
}

Ran run_mdmconform(const std::string& args) { return run_mdmconform_env("", args); }

// The record a run wrote: report.json in `dir`, read back the way `diff` reads it.
scenario::RunResult read_report(const fs::path& dir) {
  auto run = report::read_run_file(dir / "report.json");
  EXPECT_TRUE(run) << run.message();
  return run ? *run : scenario::RunResult{};
}

// A run that stopped before its cases: its record holds one errored case, "preflight", whose
// reason says why, and junit.xml names it; `says` must be in the reason.
void expect_stopped_run_recorded(const fs::path& dir, const std::string& says) {
  auto run = read_report(dir);
  ASSERT_EQ(run.cases.size(), 1u);
  EXPECT_EQ(run.cases[0].id, "preflight");
  EXPECT_EQ(run.cases[0].verdict, scenario::Verdict::error);
  EXPECT_NE(run.cases[0].reason.find(says), std::string::npos) << run.cases[0].reason;
  const auto junit = testing::read_text(dir / "junit.xml");
  EXPECT_NE(junit.find("name=\"preflight\""), std::string::npos) << junit;
  EXPECT_NE(junit.find("<error message="), std::string::npos) << junit;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::fresh_test_dir("mdmc_cli_test"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }
  static std::string specs() { return std::string(MDMC_SOURCE_DIR) + "/specs"; }
  std::string profile_for(int port) {
    return write("target.yaml",
                 "schema_version: 1\nname: test\nurls:\n  check_in: http://127.0.0.1:" + std::to_string(port) +
                     "/checkin\n  server: http://127.0.0.1:" + std::to_string(port) +
                     "/mdm\nlimits:\n  connect_timeout_ms: 1000\n"
                     "  header_timeout_ms: 1000\n  body_timeout_ms: 1000\nadmin:\n  enqueue:\n"
                     "    url: http://127.0.0.1:" +
                     std::to_string(port) + "/v1/enqueue/{channel}\n")
        .string();
  }

  fs::path dir_;
};

TEST_F(CliTest, RunAgainstTheBuiltinServerPassesAndWritesReports) {
  auto ran = run_mdmconform("--specs " + specs() + " run --seed 7 --out " + dir_.string());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_TRUE(fs::exists(dir_ / "report.json"));
  EXPECT_TRUE(fs::exists(dir_ / "junit.xml"));
  EXPECT_NE(ran.output.find("PASS"), std::string::npos);
}

TEST_F(CliTest, AFaultyBuiltinServerExitsOneAndNamesTheRule) {
  // The cases that meet the fault; the whole suite's run is RunAgainstTheBuiltinServer's.
  auto ran = run_mdmconform("--specs " + specs() + " run --fault series-end-204 --out " + dir_.string() + " syn/");
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_NE(ran.output.find("SYN-EMPTY-END"), std::string::npos) << ran.output;
}

TEST_F(CliTest, AMalformedCaseExitsTwoWithFileAndLine) {
  fs::copy(specs(), dir_ / "specs", fs::copy_options::recursive);
  write("specs/scenarios/broken.yaml",
        "schema_version: 1\ntitle: t\nrules: [SYN-ALL]\napple: a\ndevices: [{name: mac}]\nsteps:\n"
        "  - report: Idle\n    as: mac\n    expect: {stauts: [200]}\n");
  auto ran = run_mdmconform("--specs " + (dir_ / "specs").string() + " run --out " + (dir_ / "out").string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("broken.yaml:9"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("stauts"), std::string::npos) << ran.output;
  expect_stopped_run_recorded(dir_ / "out", "broken.yaml:9");
}

TEST_F(CliTest, AMalformedProfileExitsTwoWithFileAndLine) {
  auto profile =
      write("bad.yaml", "schema_version: 1\nname: x\nurls:\n  server: http://127.0.0.1:1/mdm\nsurprise: 1\n");
  auto ran =
      run_mdmconform("--specs " + specs() + " run --target " + profile.string() + " --out " + (dir_ / "out").string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("bad.yaml:5"), std::string::npos) << ran.output;
  expect_stopped_run_recorded(dir_ / "out", "bad.yaml:5");
  EXPECT_EQ(read_report(dir_ / "out").target_name, "bad") << "the profile's file names a target that did not load";
}

TEST_F(CliTest, AnUnreachableTargetExitsThreeNamingTheUrl) {
  // A port bound, then closed: nothing listens there during the test.
  int port = testing::unused_port();
  ASSERT_NE(port, 0);
  auto ran =
      run_mdmconform("--specs " + specs() + " run --target " + profile_for(port) + " --out " + (dir_ / "out").string());
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  EXPECT_NE(ran.output.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("connect_failed"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("likely profile key: urls.check_in"), std::string::npos) << ran.output;
  // CI finds its artifacts all the same, with the reason and what is known of the run.
  expect_stopped_run_recorded(dir_ / "out", "connect_failed");
  auto run = read_report(dir_ / "out");
  EXPECT_EQ(run.target_name, "test");
  EXPECT_EQ(run.target_url, "http://127.0.0.1:" + std::to_string(port) + "/checkin");
  EXPECT_FALSE(run.started_at.empty());
  EXPECT_EQ(run.harness_version, MDMC_VERSION);
}

// A loopback server that answers every request with an empty 200 and counts them: the proof
// that a command stopped before it sent anything.
class CountingServer {
 public:
  CountingServer()
      : server_([this](const net::ServerRequest&) {
          ++requests_;
          return net::ServerResponse{};
        }) {}
  // The port it serves on; 0 when it could not listen.
  std::uint16_t start() {
    auto port = server_.listen("127.0.0.1", 0);
    if (!port) return 0;
    server_.start(1);
    return *port;
  }
  int requests() const { return requests_.load(); }

 private:
  std::atomic<int> requests_{0};
  net::HttpServer server_;
};

TEST_F(CliTest, AReportFolderThatCannotBeWrittenExitsTwoBeforeAnyCase) {
  CountingServer server;
  const std::uint16_t counted_port = server.start();
  ASSERT_NE(counted_port, 0);
  // A folder inside a file: no user, root included, can make it.
  auto file = write("a-file", "not a folder\n");
  auto ran = run_mdmconform("--specs " + specs() + " run --target " + profile_for(counted_port) + " --out " +
                            (file / "out").string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("the report folder " + (file / "out").string() + " cannot be written"), std::string::npos)
      << ran.output;
  EXPECT_NE(ran.output.find("Not a directory"), std::string::npos) << "the OS's reason\n" << ran.output;
  EXPECT_NE(ran.output.find("no report"), std::string::npos) << ran.output;
  EXPECT_EQ(server.requests(), 0) << "nothing was sent";

  // A folder the run cannot write to, unless it runs as root (which may write anywhere).
  if (::geteuid() != 0) {
    auto locked = dir_ / "locked";
    fs::create_directories(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    ran = run_mdmconform("--specs " + specs() + " run --target " + profile_for(counted_port) + " --out " +
                         locked.string());
    fs::permissions(locked, fs::perms::owner_all);
    EXPECT_EQ(ran.exit_code, 2) << ran.output;
    EXPECT_NE(ran.output.find("Permission denied"), std::string::npos) << ran.output;
    EXPECT_EQ(server.requests(), 0) << "nothing was sent";
  }
}

TEST_F(CliTest, AServerAnsweringGarbagePlistsGetsVerdictsNotACrash) {
  net::HttpServer server([](const net::ServerRequest&) {
    return net::ServerResponse{
        200, {{"Content-Type", "application/xml"}}, std::string("<plist><dict><key>\x01\xff", 20), false};
  });
  auto port_listening = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(port_listening) << port_listening.message();
  auto port = port_listening.value_or(0);
  server.start(1);
  // Every case once: a re-run would meet the same garbage through the same code.
  auto ran = run_mdmconform("--specs " + specs() + " run --confirm 0 --target " + profile_for(port) + " --out " +
                            dir_.string());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_NE(ran.output.find("FAIL"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("not a plist"), std::string::npos) << ran.output;
  EXPECT_TRUE(fs::exists(dir_ / "report.json"));
}

TEST_F(CliTest, AServerAnsweringNonHttpBytesGetsErrorVerdictsNotACrash) {
  // Every connection is answered with bytes that are not HTTP, then closed.
  testing::RawServer garbage([](testing::RawServer&, int& fd, int) {
    char buf[1024];
    (void)::recv(fd, buf, sizeof buf, 0);
    const char junk[] = "SSH-2.0-notHTTP\r\n\r\n\x00\x01\x02";
    (void)::send(fd, junk, sizeof junk, MSG_NOSIGNAL);
  });
  auto ran =
      run_mdmconform("--specs " + specs() + " run --target " + profile_for(garbage.port()) + " --out " + dir_.string());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_NE(ran.output.find("ERROR"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("bad_response"), std::string::npos) << ran.output;
}

// A reference server over real TLS on loopback, with its own CA, for the identity tests.
class TlsCliTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    ca_ = *pki::create_test_ca("server CA");
  }
  std::uint16_t start(server::IdentityMode mode, const std::vector<std::string>& names = {"127.0.0.1"},
                      pki::Validity server_validity = {}) {
    server::Config config;
    config.identity_mode = mode;
    config.client_ca_pem = ca_.cert_pem;
    auto identity = pki::issue_server_identity(ca_, names, server_validity);
    EXPECT_TRUE(identity) << identity.message();
    server_ = std::make_unique<server::ReferenceServer>(
        config, net::ServerTls{identity->cert_pem, identity->key_pem, ca_.cert_pem, false});
    auto port_listening = server_->listen("127.0.0.1", 0);
    EXPECT_TRUE(port_listening) << port_listening.message();
    auto port = port_listening.value_or(0);
    server_->start();
    std::ignore = pki::write_identity(ca_, dir_ / "ca.crt", dir_ / "ca.key");
    return port;
  }
  // A profile for the server above; `extra` holds the identity and tls sections.
  std::string profile(std::uint16_t port, const std::string& extra) {
    auto base = "https://127.0.0.1:" + std::to_string(port);
    return write("tls-target.yaml", "schema_version: 1\nname: tls-test\nurls:\n  check_in: " + base +
                                        "/checkin\n  server: " + base +
                                        "/mdm\nlimits:\n  connect_timeout_ms: 2000\n"
                                        "  header_timeout_ms: 2000\nadmin:\n  enqueue:\n    url: " +
                                        base + "/v1/enqueue/{channel}\n" + extra)
        .string();
  }
  std::string run(const std::string& profile_path, const std::string& cases = "") {
    last_ = run_mdmconform("--specs " + specs() + " run --seed 11 --target " + profile_path + " --out " +
                           (dir_ / "out").string() + " " + cases);
    return last_.output;
  }

  pki::Identity ca_;
  std::unique_ptr<server::ReferenceServer> server_;
  Ran last_;
};

TEST_F(TlsCliTest, MtlsModePassesOverARealHandshake) {
  auto port = start(server::IdentityMode::mtls);
  run(profile(port, "tls: {ca: ca.crt}\nidentity:\n  mode: mtls\n  issuer: {cert: ca.crt, key: ca.key}\n"));
  EXPECT_EQ(last_.exit_code, 0) << last_.output;
}

TEST_F(TlsCliTest, SignatureModeWithRsaIdentitiesPasses) {
  auto port = start(server::IdentityMode::signature);
  run(profile(port,
              "tls: {ca: ca.crt}\nidentity:\n  mode: signature\n  key_type: rsa2048\n"
              "  issuer: {cert: ca.crt, key: ca.key}\n"),
      "enr/ chn/");
  EXPECT_EQ(last_.exit_code, 0) << last_.output;
}

TEST_F(TlsCliTest, IdentitiesFromAnotherCaAreRefusedInMtlsAndSignatureModesBeforeAnyCase) {
  auto other = *pki::create_test_ca("some other CA");
  ASSERT_TRUE(pki::write_identity(other, dir_ / "other.crt", dir_ / "other.key"));
  for (auto mode : {server::IdentityMode::mtls, server::IdentityMode::signature}) {
    auto port = start(mode);
    auto name = mode == server::IdentityMode::mtls ? "mtls" : "signature";
    run(profile(port, std::string("tls: {ca: ca.crt}\nidentity:\n  mode: ") + name +
                          "\n  issuer: {cert: other.crt, key: other.key}\n"));
    // The preflight's device is refused, and every case's would be: one exit, not 38 failures.
    EXPECT_EQ(last_.exit_code, 3) << name << ": " << last_.output;
    EXPECT_NE(last_.output.find(std::string("likely profile key: identity.mode (") + name + ") or identity.issuer"),
              std::string::npos)
        << name << ": " << last_.output;
    EXPECT_EQ(last_.output.find("FAIL"), std::string::npos) << name << ": " << last_.output;
  }
}

// The server checks one identity mode, the profile proves identity another way: the preflight's
// enrollment is refused, and the run stops there, naming identity.mode, in well under the time
// 37 failing cases and their re-runs would take.
TEST_F(TlsCliTest, AnIdentityModeTheServerDoesNotCheckStopsTheRunNamingIdentityMode) {
  struct Mismatch {
    server::IdentityMode server;
    std::string profile;
    std::string server_says;
  };
  for (const auto& [server_mode, profile_mode, server_says] :
       {Mismatch{server::IdentityMode::both, "mtls", "Mdm-Signature header is required"},
        Mismatch{server::IdentityMode::mtls, "signature", "a client certificate is required"}}) {
    auto port = start(server_mode);
    auto started = std::chrono::steady_clock::now();
    run(profile(port,
                "tls: {ca: ca.crt}\nidentity:\n  mode: " + profile_mode + "\n  issuer: {cert: ca.crt, key: ca.key}\n"));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10)) << profile_mode;
    EXPECT_EQ(last_.exit_code, 3) << profile_mode << ": " << last_.output;
    EXPECT_NE(last_.output.find("preflight: a fresh device could not enroll: Authenticate: "), std::string::npos)
        << last_.output;
    EXPECT_NE(last_.output.find(server_says), std::string::npos) << "the server's answer, quoted\n" << last_.output;
    EXPECT_NE(last_.output.find("likely profile key: identity.mode (" + profile_mode + ")"), std::string::npos)
        << last_.output;
    EXPECT_EQ(last_.output.find("FAIL"), std::string::npos) << "no case ran\n" << last_.output;
    expect_stopped_run_recorded(dir_ / "out", "likely profile key: identity.mode");
    auto record = read_report(dir_ / "out");
    ASSERT_FALSE(record.cases.empty());
    ASSERT_EQ(record.cases[0].transcript.size(), 1u) << "the refused Authenticate, for the report to show";
    EXPECT_EQ(record.cases[0].transcript[0].label, "preflight: Authenticate");
  }
  // `run --identity-mode` overrides the profile's, and the preflight judges the result.
  auto port = start(server::IdentityMode::both);
  auto matching = profile(port, "tls: {ca: ca.crt}\nidentity:\n  mode: both\n  issuer: {cert: ca.crt, key: ca.key}\n");
  run(matching, "--identity-mode signature");
  EXPECT_EQ(last_.exit_code, 3) << last_.output;
  EXPECT_NE(last_.output.find("likely profile key: identity.mode (signature)"), std::string::npos) << last_.output;
  run(matching, "chn/idle_empty_device");
  EXPECT_EQ(last_.exit_code, 0) << "the same profile in the server's mode passes\n" << last_.output;
}

TEST_F(TlsCliTest, AnIssuerKeyOfAnotherCertificateExitsTwoWithFileAndLine) {
  auto port = start(server::IdentityMode::mtls);
  auto other = *pki::create_test_ca("some other CA");
  ASSERT_TRUE(pki::write_identity(other, dir_ / "other.crt", dir_ / "other.key"));
  auto output = run(profile(port,
                            "tls: {ca: ca.crt}\nidentity:\n  mode: mtls\n  issuer:\n    cert: ca.crt\n"
                            "    key: other.key\n"));
  EXPECT_EQ(last_.exit_code, 2) << output;
  // The profile's own 11 lines, then tls, identity, mode, issuer, cert and key on line 17.
  EXPECT_NE(output.find("tls-target.yaml:17: identity.issuer.key: the private key does not match the certificate"),
            std::string::npos)
      << output;
  expect_stopped_run_recorded(dir_ / "out", "identity.issuer.key");
}

TEST_F(TlsCliTest, ATlsCaThatIsNoCertificateExitsTwoWithFileAndLineNotThree) {
  auto port = start(server::IdentityMode::none);
  write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  auto output = run(profile(port, "tls: {ca: garbage.pem}\n"));
  EXPECT_EQ(last_.exit_code, 2) << output;
  EXPECT_NE(output.find("tls-target.yaml:12: tls.ca: certificate bundle: bad PEM certificate #1"), std::string::npos)
      << output;
  EXPECT_EQ(output.find("unreachable"), std::string::npos) << output;
  expect_stopped_run_recorded(dir_ / "out", "tls.ca");
}

TEST_F(TlsCliTest, AnUnknownServerCaExitsThreeSayingSo) {
  auto port = start(server::IdentityMode::none);
  auto other = *pki::create_test_ca("not the server's CA");
  ASSERT_TRUE(pki::write_identity(other, dir_ / "other.crt", dir_ / "other.key"));
  auto output = run(profile(port, "tls: {ca: other.crt}\n"));
  EXPECT_EQ(last_.exit_code, 3) << output;
  EXPECT_NE(output.find("tls_untrusted_certificate"), std::string::npos) << output;
  EXPECT_NE(output.find("likely profile key: tls.ca"), std::string::npos) << output;
  expect_stopped_run_recorded(dir_ / "out", "tls_untrusted_certificate");
}

TEST_F(TlsCliTest, AServerCertificateForAnotherNameExitsThree) {
  auto port = start(server::IdentityMode::none, {"mdm.other.example"});
  auto output = run(profile(port, "tls: {ca: ca.crt}\n"));
  EXPECT_EQ(last_.exit_code, 3) << output;
  EXPECT_NE(output.find("tls_name_mismatch"), std::string::npos) << output;
}

TEST_F(TlsCliTest, AnExpiredServerCertificateExitsThreeSayingSo) {
  auto port =
      start(server::IdentityMode::none, {"127.0.0.1"}, pki::Validity{std::chrono::hours(-48), std::chrono::hours(24)});
  auto output = run(profile(port, "tls: {ca: ca.crt}\n"));
  EXPECT_EQ(last_.exit_code, 3) << output;
  EXPECT_NE(output.find("tls_certificate_expired"), std::string::npos) << output;
}

TEST_F(TlsCliTest, AFailedHandshakeWithAPlainServerExitsThreeWithinTheDeadline) {
  net::HttpServer plain([](const net::ServerRequest&) { return net::ServerResponse{}; });
  auto port_listening = plain.listen("127.0.0.1", 0);
  ASSERT_TRUE(port_listening) << port_listening.message();
  auto port = port_listening.value_or(0);
  plain.start(1);
  ASSERT_TRUE(pki::write_identity(ca_, dir_ / "ca.crt", dir_ / "ca.key"));
  auto started = std::chrono::steady_clock::now();
  auto output = run(profile(port, "tls: {ca: ca.crt}\n"));
  EXPECT_EQ(last_.exit_code, 3) << output;
  EXPECT_NE(output.find("tls_handshake_failed"), std::string::npos) << output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(TlsCliTest, InsecureIsHonouredOnlyWhenAskedAndTheReportSaysSo) {
  auto port = start(server::IdentityMode::none, {"mdm.other.example"});
  auto output = run(profile(port, "tls: {ca: ca.crt, insecure: true}\n"), "chn/");
  EXPECT_EQ(last_.exit_code, 0) << output;
  EXPECT_NE(output.find("TLS verification was off"), std::string::npos) << output;
  std::ifstream json(dir_ / "out/report.json");
  std::string text((std::istreambuf_iterator<char>(json)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("TLS verification was off"), std::string::npos);
}

TEST_F(TlsCliTest, ABodyTamperedAfterSigningIsRefusedOverTls) {
  auto port = start(server::IdentityMode::signature);
  auto device = *pki::issue_device_identity(ca_, "tampered", pki::KeyType::ec_p256);
  protocol::DeviceFacts facts;
  facts.udid = "0A1B2C3D-0000-4000-8000-00000000TAMP";
  facts.topic = "com.apple.mgmt.External.test";
  auto body = plist::to_xml(plist::Value(protocol::authenticate(facts)));
  auto signature = pki::mdm_signature(device, body);
  ASSERT_TRUE(signature) << signature.message();
  net::HttpClient http(net::ClientLimits{}, net::TlsClientConfig{ca_.cert_pem, false, {}, {}, {}});
  auto url = "https://127.0.0.1:" + std::to_string(port) + "/checkin";
  auto send = [&](const std::string& bytes) {
    return http.send(net::Request{
        "PUT", url, {{"Content-Type", "application/x-apple-aspen-mdm-checkin"}, {"Mdm-Signature", *signature}}, bytes});
  };
  auto intact = send(body);
  ASSERT_TRUE(intact.ok()) << intact.error_detail;
  EXPECT_TRUE(intact.tls_verified);
  EXPECT_EQ(intact.response->status, 200);
  auto tampered_body = body;
  tampered_body.replace(tampered_body.find("TAMP"), 4, "EVIL");
  auto tampered = send(tampered_body);
  ASSERT_TRUE(tampered.ok()) << tampered.error_detail;
  EXPECT_EQ(tampered.response->status, 400);
  EXPECT_NE(tampered.response->body.find("digest mismatch"), std::string::npos) << tampered.response->body;
}

TEST_F(TlsCliTest, AnExpiredDeviceIdentityIsRefusedBeforeAnyCase) {
  auto port = start(server::IdentityMode::signature);
  std::filesystem::create_directories(dir_ / "pool");
  // Three: the preflight's device, the probe device between cases, the case's one device; enough
  // only when the failure is not re-run.
  for (std::string name : {"expired-a", "expired-b", "expired-c"}) {
    auto expired = *pki::issue_device_identity(ca_, name, pki::KeyType::ec_p256,
                                               pki::Validity{std::chrono::hours(-48), std::chrono::hours(24)});
    ASSERT_TRUE(pki::write_identity(expired, dir_ / "pool" / (name + ".crt"), dir_ / "pool" / (name + ".key")));
  }
  auto output = run(profile(port, "tls: {ca: ca.crt}\nidentity:\n  mode: signature\n  pool: {dir: pool}\n"),
                    "--confirm 0 enr/authenticate");
  EXPECT_EQ(last_.exit_code, 3) << output;
  EXPECT_NE(output.find("signer certificate expired"), std::string::npos) << output;
  EXPECT_NE(output.find("likely profile key: identity.mode (signature) or identity.pool"), std::string::npos) << output;
}

// chn/idle_empty_device has one device, enr/same_identity_user two: three in all.
constexpr const char* kThreeDeviceCases = "chn/idle_empty_device enr/same_identity_user";

TEST_F(TlsCliTest, APoolOfExactlyEnoughGivesEveryDeviceItsOwnIdentityAndTheReportSaysWhich) {
  auto port = start(server::IdentityMode::mtls);
  std::filesystem::create_directories(dir_ / "pool");
  std::set<std::string> pool_fingerprints;
  // Three devices, the run's probe device between cases and the preflight's device: five.
  for (int i = 0; i < 5; ++i) {
    auto name = "device-" + std::to_string(i);
    auto device = *pki::issue_device_identity(ca_, name, pki::KeyType::ec_p256);
    ASSERT_TRUE(pki::write_identity(device, dir_ / "pool" / (name + ".crt"), dir_ / "pool" / (name + ".key")));
    pool_fingerprints.insert(pki::sha256_fingerprint(*pki::certificate_der(device.cert_pem)));
  }
  auto output = run(profile(port, "tls: {ca: ca.crt}\nidentity:\n  mode: mtls\n  pool: {dir: pool}\n"),
                    std::string("--confirm 0 ") + kThreeDeviceCases);
  ASSERT_EQ(last_.exit_code, 0) << output;
  auto record = report::read_run_file(dir_ / "out/report.json");
  ASSERT_TRUE(record) << record.message();
  ASSERT_EQ(record->cases.size(), 2u);
  std::set<std::string> used;
  std::set<std::string> sources;
  for (const auto& c : record->cases) {
    for (const auto& d : c.devices) {
      used.insert(d.identity.sha256);
      sources.insert(d.identity.source);
      EXPECT_EQ("pool:" + d.identity.common_name + ".crt", d.identity.source);
    }
  }
  EXPECT_EQ(used.size(), 3u) << "three devices, three certificates";
  EXPECT_TRUE(std::includes(pool_fingerprints.begin(), pool_fingerprints.end(), used.begin(), used.end()));
  // The preflight's device and the probe device between cases took the first two files, before
  // any case ran.
  EXPECT_EQ(sources, (std::set<std::string>{"pool:device-2.crt", "pool:device-3.crt", "pool:device-4.crt"}));
  std::ifstream html(dir_ / "out/report.html");
  std::string page((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  EXPECT_NE(page.find("<td>pool:device-2.crt</td>"), std::string::npos);
}

TEST_F(CliTest, APoolTooSmallForTheRunExitsTwoWithTheNumbersBeforeAnyCaseRuns) {
  CountingServer server;
  const std::uint16_t counted_port = server.start();
  ASSERT_NE(counted_port, 0);
  auto ca = *pki::create_test_ca("pool CA");
  fs::create_directories(dir_ / "pool");
  for (int i = 0; i < 6; ++i) {
    auto device = *pki::issue_device_identity(ca, "device-" + std::to_string(i), pki::KeyType::ec_p256);
    ASSERT_TRUE(pki::write_identity(device, dir_ / "pool" / fmt::format("device-{}.crt", i),
                                    dir_ / "pool" / fmt::format("device-{}.key", i)));
  }
  auto base = "http://127.0.0.1:" + std::to_string(counted_port);
  auto target = write("pool-target.yaml", "schema_version: 1\nname: pool\nurls:\n  check_in: " + base +
                                              "/checkin\n  server: " + base +
                                              "/mdm\nidentity:\n  mode: signature\n  pool: {dir: pool}\n");
  // Two re-runs of each failing case: 3 devices x 3 + the probe device between cases + the
  // preflight's device = 11; one re-run: 8, two more than the pool.
  auto ran = run_mdmconform("--specs " + specs() + " run --target " + target.string() + " --confirm 1 --out " +
                            (dir_ / "out").string() + " " + kThreeDeviceCases);
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("the run needs up to 8 device identities (2 cases, 3 devices, each failing case re-run "
                            "up to 1 time on fresh devices, 1 probe device between cases, and 1 device enrolled "
                            "before the first case); the profile's pool has 6: add identities to identity.pool, give "
                            "an identity.issuer, or lower --confirm"),
            std::string::npos)
      << ran.output;
  EXPECT_EQ(server.requests(), 0) << "not even the reachability probe ran";
  expect_stopped_run_recorded(dir_ / "out", "the run needs up to 8 device identities");

  // Without re-runs five are enough: the same pool runs.
  ran = run_mdmconform("--specs " + specs() + " run --target " + target.string() + " --confirm 0 --out " +
                       (dir_ / "out").string() + " " + kThreeDeviceCases);
  EXPECT_NE(ran.exit_code, 2) << ran.output;
  EXPECT_GT(server.requests(), 0);
}

TEST_F(CliTest, SigtermDuringARunStillWritesTheReportsMarkedInterrupted) {
  // A correct server that takes 100 ms per answer: the suite then runs for several seconds.
  server::MdmService service(server::Config{});
  net::HttpServer slow(
      [&](const net::ServerRequest& request) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return service.handle(request);
      },
      net::ServerLimits{}, std::nullopt);
  auto port_listening = slow.listen("127.0.0.1", 0);
  ASSERT_TRUE(port_listening) << port_listening.message();
  auto port = port_listening.value_or(0);
  slow.start(2);

  auto out = dir_ / "out";
  auto log = dir_ / "log.txt";
  auto profile = profile_for(port);
  auto process = testing::Process::spawn(
      {MDMC_BINARY, "--specs", specs(), "run", "--target", profile, "--out", out.string()}, {.output_file = log});
  ASSERT_TRUE(process) << process.message();
  // Signalled once two cases have ended (each prints a line to the log), bounded at 20 s.
  for (int waited = 0; waited < 2000; ++waited) {
    std::ifstream so_far(log);
    std::string text((std::istreambuf_iterator<char>(so_far)), std::istreambuf_iterator<char>());
    if (text.find("[2/") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto signalled = std::chrono::steady_clock::now();
  ASSERT_TRUE(process->signal(SIGTERM));
  // Bounded wait: the exchange in flight has a 1 s header deadline in this profile. A process
  // still running is killed when `process` goes.
  auto ended = process->wait_for(std::chrono::seconds(5));
  if (!ended) FAIL() << "mdmconform did not stop within 5 s of SIGTERM";
  auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_LT(took, std::chrono::seconds(3));
  std::ifstream log_in(log);
  std::string output((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(ended->signal, 0) << output;
  EXPECT_NE(ended->exit_code, 0) << output;
  EXPECT_NE(output.find("interrupted"), std::string::npos) << output;
  for (const char* file : {"report.json", "junit.xml", "summary.txt", "summary.md", "report.html"}) {
    EXPECT_TRUE(fs::exists(out / file)) << file << "\n" << output;
  }
  std::ifstream json(out / "report.json");
  std::string text((std::istreambuf_iterator<char>(json)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"interrupted\": true"), std::string::npos);
  // Some cases ran, and not all of them: the record holds what was done.
  EXPECT_NE(text.find("\"id\": \"chn/"), std::string::npos);
  EXPECT_EQ(text.find("\"id\": \"ucf/terminates\""), std::string::npos);
}

TEST_F(CliTest, AHarnessThatDiesWhileWritingTheReportLeavesNoPartialFile) {
  // An earlier, complete report stays as it was; the new one never appears half-written.
  auto out = dir_ / "out";
  auto first = run_mdmconform("--specs " + specs() + " run --seed 5 --out " + out.string() + " chn/");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::ifstream before_in(out / "report.json");
  std::string before((std::istreambuf_iterator<char>(before_in)), std::istreambuf_iterator<char>());

  auto crashed = run_mdmconform("--specs " + specs() + " run --seed 6 --out " + out.string() + " chn/");
  ASSERT_EQ(crashed.exit_code, 0) << "sanity: the hook is off without its variable";
  auto ran = run_mdmconform_env("MDMC_TEST_CRASH_WRITING=report.json",
                                "--specs " + specs() + " run --seed 7 --out " + out.string() + " chn/");
  EXPECT_EQ(ran.exit_code, 128 + SIGABRT) << ran.output;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(out)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"junit.xml", "report.html", "report.json", "summary.md", "summary.txt"}));
  std::ifstream after_in(out / "report.json");
  std::string after((std::istreambuf_iterator<char>(after_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(after.find("\"seed\": \"6\""), std::string::npos) << "the last complete report is intact";
  EXPECT_EQ(after.back(), '\n');
}

TEST_F(CliTest, ReplayRefusesAFileThatIsNoFindingOrTooLarge) {
  auto not_json = write("finding.json", "not a finding");
  auto ran = run_mdmconform("--specs " + specs() + " replay " + not_json.string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("not JSON"), std::string::npos) << ran.output;
  // Reading stops at its cap instead of taking a sparse 65 MiB file (or /dev/zero) whole.
  auto huge = dir_ / "huge.json";
  std::ofstream(huge).put('{');
  fs::resize_file(huge, 65ull * 1024 * 1024);
  ran = run_mdmconform("--specs " + specs() + " replay " + huge.string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("larger than 64 MiB"), std::string::npos) << ran.output;
}

TEST_F(CliTest, ListShowsCasesRulesAndFaults) {
  auto cases = run_mdmconform("--specs " + specs() + " list");
  EXPECT_EQ(cases.exit_code, 0);
  EXPECT_NE(cases.output.find("ucf/redeliver"), std::string::npos);
  auto rules = run_mdmconform("--specs " + specs() + " list --rules");
  EXPECT_NE(rules.output.find("not-now-dropped"), std::string::npos) << rules.output;
  auto faults = run_mdmconform("list --faults");
  EXPECT_NE(faults.output.find("one-command-per-series"), std::string::npos);
}

TEST_F(CliTest, AnUnknownFaultOrFlagExitsTwo) {
  EXPECT_EQ(run_mdmconform("run --fault nope").exit_code, 2);
  EXPECT_EQ(run_mdmconform("run --no-such-flag").exit_code, 2);
}

TEST_F(CliTest, SeededBugsAreListedAndTheSuitePassesWithOneOn) {
  auto listed = run_mdmconform("list --seeded-bugs");
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.output.find("deep-nesting-reset"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("none"), std::string::npos) << "none is no bug";
  auto ran =
      run_mdmconform("--specs " + specs() + " run --seed 7 --seeded-bug user-key-corrupts --out " + dir_.string());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_EQ(run_mdmconform("run --seeded-bug nope").exit_code, 2);
  EXPECT_EQ(run_mdmconform("serve --seeded-bug nope").exit_code, 2);
  EXPECT_EQ(run_mdmconform("run --seeded-bug deep-nesting-reset --target " + profile_for(1)).exit_code, 2);
}

// ---- parallel cases, confirmation, reproducers, selection, baselines ----

std::vector<std::string> verdict_lines(const scenario::RunResult& run) {
  std::vector<std::string> out;
  for (const auto& c : run.cases) out.push_back(c.id + " " + std::string(scenario::verdict_name(c.verdict)));
  return out;
}

TEST_F(CliTest, OneJobAndFourJobsGiveTheSameVerdictsCaseByCase) {
  for (std::string fault : {"none", "not-now-dropped"}) {
    auto one = run_mdmconform("--specs " + specs() + " run --seed 21 --jobs 1 --fault " + fault + " --out " +
                              (dir_ / (fault + "-1")).string());
    auto four = run_mdmconform("--specs " + specs() + " run --seed 21 --jobs 4 --fault " + fault + " --out " +
                               (dir_ / (fault + "-4")).string());
    EXPECT_EQ(one.exit_code, fault == "none" ? 0 : 1) << one.output;
    EXPECT_EQ(four.exit_code, one.exit_code) << four.output;
    auto lines = verdict_lines(read_report(dir_ / (fault + "-1")));
    EXPECT_EQ(verdict_lines(read_report(dir_ / (fault + "-4"))), lines) << fault;
    EXPECT_GT(lines.size(), 10u);
    if (fault != "none") {
      EXPECT_NE(std::find(lines.begin(), lines.end(), "ucf/redeliver fail"), lines.end()) << four.output;
    }
  }
}

TEST_F(CliTest, TheReproducerOfAFailingCaseReplaysItsFailure) {
  // The cases that meet the fault (ucf/redeliver fails).
  auto ran = run_mdmconform("--specs " + specs() + " run --seed 31 --fault not-now-dropped --out " +
                            (dir_ / "run").string() + " ucf/");
  ASSERT_EQ(ran.exit_code, 1) << ran.output;
  auto run = read_report(dir_ / "run");
  auto failed = std::find_if(run.cases.begin(), run.cases.end(),
                             [](const scenario::CaseResult& c) { return c.verdict == scenario::Verdict::fail; });
  ASSERT_NE(failed, run.cases.end()) << ran.output;
  // A confirmed failure: the re-runs on fresh devices failed too.
  EXPECT_EQ(failed->attempts, (std::vector<std::string>{"fail", "fail", "fail"}));
  EXPECT_FALSE(failed->flaky);
  const std::string& command = failed->reproducer;
  ASSERT_EQ(command.rfind("mdmconform run --seed 31 ", 0), 0u) << command;
  EXPECT_NE(ran.output.find("replay: " + command), std::string::npos) << ran.output;

  // Run it as written, with the binary under test for "mdmconform".
  auto replayed =
      run_mdmconform(command.substr(std::string("mdmconform ").size()) + " --out " + (dir_ / "replay").string());
  EXPECT_EQ(replayed.exit_code, 1) << replayed.output;
  auto again = read_report(dir_ / "replay");
  ASSERT_EQ(again.cases.size(), 1u) << "a whole case id selects that case alone";
  EXPECT_EQ(again.cases[0].id, failed->id);
  EXPECT_EQ(again.cases[0].verdict, scenario::Verdict::fail);
  // The same seed makes the same devices and commands: the same reason, UUIDs and all.
  EXPECT_EQ(again.cases[0].reason, failed->reason);
}

TEST_F(CliTest, SelectsCasesByTagAndByLevel) {
  auto rules = scenario::load_rules(fs::path(specs()) / "rules.yaml");
  auto cases = scenario::load_suite(fs::path(specs()) / "scenarios", rules);
  std::vector<std::string> tagged;
  std::vector<std::string> should;
  for (const auto& c : cases) {
    if (std::find(c.tags.begin(), c.tags.end(), "network-user") != c.tags.end()) tagged.push_back(c.id);
    if (std::any_of(c.rules.begin(), c.rules.end(),
                    [&](const std::string& r) { return rules.rules.at(r).level == scenario::Level::should; })) {
      should.push_back(c.id);
    }
  }
  ASSERT_FALSE(tagged.empty());
  ASSERT_FALSE(should.empty());
  auto ids = [](const scenario::RunResult& run) {
    std::vector<std::string> out;
    for (const auto& c : run.cases) out.push_back(c.id);
    return out;
  };

  auto by_tag =
      run_mdmconform("--specs " + specs() + " run --seed 3 --tag network-user --out " + (dir_ / "tag").string());
  EXPECT_EQ(by_tag.exit_code, 0) << by_tag.output;
  EXPECT_EQ(ids(read_report(dir_ / "tag")), tagged);
  auto by_level =
      run_mdmconform("--specs " + specs() + " run --seed 3 --level should --out " + (dir_ / "level").string());
  EXPECT_EQ(by_level.exit_code, 0) << by_level.output;
  EXPECT_EQ(ids(read_report(dir_ / "level")), should);
  // Selections narrow one another.
  std::vector<std::string> both;
  for (const auto& id : tagged) {
    if (std::find(should.begin(), should.end(), id) != should.end()) both.push_back(id);
  }
  auto narrowed = run_mdmconform("--specs " + specs() + " run --seed 3 --tag network-user --level should --out " +
                                 (dir_ / "both").string());
  if (both.empty()) {
    EXPECT_EQ(narrowed.exit_code, 2) << narrowed.output;
  } else {
    EXPECT_EQ(narrowed.exit_code, 0) << narrowed.output;
    EXPECT_EQ(ids(read_report(dir_ / "both")), both);
  }
  auto none =
      run_mdmconform("--specs " + specs() + " run --tag no-such-tag --level may --out " + (dir_ / "none").string());
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("no case matches tag no-such-tag with level may"), std::string::npos) << none.output;
  EXPECT_EQ(run_mdmconform("run --level sometimes").exit_code, 2);
  EXPECT_EQ(run_mdmconform("run --jobs 0").exit_code, 2);
  EXPECT_EQ(run_mdmconform("run --jobs 65").exit_code, 2);
}

// ---- exclusion, dry runs, list's selection, serve's identity mode ----

// Cases with only what selection looks at: ids, tags and rules.
scenario::Case case_named(std::string id, std::vector<std::string> tags = {}, std::string rule = "NET-REFUSE-410") {
  scenario::Case c;
  c.id = std::move(id);
  c.tags = std::move(tags);
  c.rules = {std::move(rule)};
  return c;
}

std::vector<std::string> ids_of(const std::vector<scenario::Case>& cases) {
  std::vector<std::string> out;
  for (const auto& c : cases) out.push_back(c.id);
  return out;
}

TEST(Selection, AnExclusionNamesCasesAsTheSelectionDoes) {
  scenario::RuleCatalog rules;
  rules.rules["NET-REFUSE-410"].level = scenario::Level::must;
  rules.rules["SYN-ALL"].level = scenario::Level::must;
  const std::vector<scenario::Case> suite = {case_named("net/refuse_410", {"network-user"}),
                                             case_named("net/refuse_410_second_user", {"network-user"}),
                                             case_named("syn/all_queued", {}, "SYN-ALL")};
  // A whole id leaves out that case alone, though it is also the prefix of another.
  auto whole = cli::select_cases(suite, {{}, {"net/refuse_410"}, {}, {}}, rules);
  ASSERT_TRUE(whole) << whole.message();
  EXPECT_EQ(ids_of(whole->selected), (std::vector<std::string>{"net/refuse_410_second_user", "syn/all_queued"}));
  EXPECT_EQ(ids_of(whole->not_selected), (std::vector<std::string>{"net/refuse_410"}));
  // A prefix leaves out every case under it.
  auto prefix = cli::select_cases(suite, {{}, {"net/"}, {}, {}}, rules);
  ASSERT_TRUE(prefix) << prefix.message();
  EXPECT_EQ(ids_of(prefix->selected), (std::vector<std::string>{"syn/all_queued"}));
  // Exclusion narrows the other selections.
  auto tagged = cli::select_cases(suite, {{"net/"}, {"net/refuse_410_second_user"}, {"network-user"}, {}}, rules);
  ASSERT_TRUE(tagged) << tagged.message();
  EXPECT_EQ(ids_of(tagged->selected), (std::vector<std::string>{"net/refuse_410"}));
  // An exclusion that names no case of the suite is an error, even when the rest selects some.
  auto misspelt = cli::select_cases(suite, {{}, {"net/refuse_401"}, {}, {}}, rules);
  ASSERT_FALSE(misspelt);
  EXPECT_EQ(misspelt.error().message, "--exclude net/refuse_401 matches no case");
  // So is leaving nothing to run.
  auto nothing = cli::select_cases(suite, {{"net/"}, {"net/"}, {}, {scenario::Level::must}}, rules);
  ASSERT_FALSE(nothing);
  EXPECT_EQ(nothing.error().message, "no case matches net/ with level must excluding net/");
}

TEST_F(CliTest, ExcludeLeavesOutAWholeIdAloneOrEveryCaseUnderAPrefix) {
  auto ids = [](const scenario::RunResult& run) {
    std::vector<std::string> out;
    for (const auto& c : run.cases) out.push_back(c.id);
    return out;
  };
  auto whole = run_mdmconform("--specs " + specs() + " run --seed 5 net/ --exclude net/refuse_410 --out " +
                              (dir_ / "whole").string());
  EXPECT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_EQ(ids(read_report(dir_ / "whole")),
            (std::vector<std::string>{"net/manage", "net/refuse_410_second_user", "net/refused_stays_out"}));
  auto prefix = run_mdmconform("--specs " + specs() + " run --seed 5 net/ chk/ --exclude net/ --out " +
                               (dir_ / "prefix").string());
  EXPECT_EQ(prefix.exit_code, 0) << prefix.output;
  EXPECT_EQ(ids(read_report(dir_ / "prefix")), (std::vector<std::string>{"chk/checkout"}));

  auto misspelt = run_mdmconform("--specs " + specs() + " run --exclude net/refuse_401");
  EXPECT_EQ(misspelt.exit_code, 2) << misspelt.output;
  EXPECT_NE(misspelt.output.find("--exclude net/refuse_401 matches no case"), std::string::npos) << misspelt.output;
  auto everything = run_mdmconform("--specs " + specs() + " run chk/ --exclude chk/");
  EXPECT_EQ(everything.exit_code, 2) << everything.output;
  EXPECT_NE(everything.output.find("no case matches chk/ excluding chk/"), std::string::npos) << everything.output;
}

TEST_F(CliTest, ADryRunOfTheBuiltinServerListsEveryCaseAndStartsNothing) {
  auto rules = scenario::load_rules(fs::path(specs()) / "rules.yaml");
  auto cases = scenario::load_suite(fs::path(specs()) / "scenarios", rules);
  auto ran = run_mdmconform("--specs " + specs() + " run --dry-run");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("dry run: nothing is sent"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("the built-in reference server (targets/reference.yaml; not started)"), std::string::npos)
      << ran.output;
  EXPECT_NE(ran.output.find("identity mode: both"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find(fmt::format("would run {} case(s):", cases.size())), std::string::npos) << ran.output;
  for (const auto& c : cases) EXPECT_NE(ran.output.find("  " + c.id + "\n"), std::string::npos) << c.id;
  EXPECT_NE(ran.output.find("would skip 0 case(s)"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("would leave 0 rule(s) untested"), std::string::npos) << ran.output;
  EXPECT_EQ(ran.output.find("report:"), std::string::npos) << "a dry run writes no report";

  // A selection leaves the other cases' rules untested, and says so.
  auto narrow =
      run_mdmconform("--specs " + specs() + " run --dry-run ucf/ --exclude ucf/no_repeat --identity-mode none");
  EXPECT_EQ(narrow.exit_code, 0) << narrow.output;
  EXPECT_NE(narrow.output.find("identity mode: none"), std::string::npos) << narrow.output;
  EXPECT_NE(narrow.output.find("CHK-CHECKOUT           must   not selected (chk/checkout, psh/checkout)"),
            std::string::npos)
      << narrow.output;
  EXPECT_NE(narrow.output.find("UCF-NO-REPEAT          must   not selected (ucf/no_repeat)"), std::string::npos)
      << narrow.output;
  // ucf/mixed_error_not_now checks it and would run.
  EXPECT_EQ(narrow.output.find("UCF-REDELIVER"), std::string::npos) << narrow.output;

  // A rule no case checks.
  fs::copy(specs(), dir_ / "specs", fs::copy_options::recursive);
  fs::remove(dir_ / "specs/scenarios/chk/checkout.yaml");
  fs::remove(dir_ / "specs/scenarios/psh/checkout.yaml");
  auto uncovered = run_mdmconform("--specs " + (dir_ / "specs").string() + " run --dry-run");
  EXPECT_EQ(uncovered.exit_code, 0) << uncovered.output;
  EXPECT_NE(uncovered.output.find("CHK-CHECKOUT           must   no case checks it\n"), std::string::npos)
      << uncovered.output;

  EXPECT_EQ(run_mdmconform("--specs " + specs() + " run --dry-run --exclude nope").exit_code, 2);
  EXPECT_EQ(run_mdmconform("--specs " + specs() + " run --dry-run --fault nope").exit_code, 2);
}

TEST_F(CliTest, ADryRunAgainstAProfileWithoutAnAdminAdapterSaysWhatIsSkippedAndSendsNothing) {
  CountingServer server;
  const std::uint16_t counted_port = server.start();
  ASSERT_NE(counted_port, 0);
  auto base = "http://127.0.0.1:" + std::to_string(counted_port);
  auto target = write("no-admin.yaml", "schema_version: 1\nname: no-admin\nurls:\n  check_in: " + base +
                                           "/checkin\n  server: " + base + "/mdm\n");
  auto ran = run_mdmconform("--specs " + specs() + " run --dry-run --target " + target.string() + " ucf/ enr/");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("target: no-admin (" + target.string() + ")"), std::string::npos) << ran.output;
  const std::string no_adapter = "the target profile has no admin.enqueue adapter to queue commands with";
  EXPECT_NE(ran.output.find("  ucf/redeliver                    " + no_adapter), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("  enr/same_identity_user           the case checks identity binding; the profile's "
                            "identity mode is none"),
            std::string::npos)
      << ran.output;
  EXPECT_NE(ran.output.find("UCF-REDELIVER          must   skipped: " + no_adapter +
                            " (ucf/mixed_error_not_now, ucf/redeliver)"),
            std::string::npos)
      << ran.output;
  // The identity cases were skipped for two reasons: both are given.
  EXPECT_NE(ran.output.find("ENR-SAME-IDENTITY      must   skipped: " + no_adapter +
                            "; the case checks identity binding; the profile's identity mode is none"),
            std::string::npos)
      << ran.output;
  EXPECT_NE(ran.output.find("CHK-CHECKOUT           must   not selected (chk/checkout, psh/checkout)"),
            std::string::npos)
      << ran.output;
  // A case the profile can run is listed to run.
  auto would_run = ran.output.substr(0, ran.output.find("would skip"));
  EXPECT_NE(would_run.find("  enr/authenticate\n"), std::string::npos) << ran.output;
  EXPECT_EQ(would_run.find("ucf/redeliver"), std::string::npos) << ran.output;
  EXPECT_EQ(server.requests(), 0) << "a dry run sends nothing, not even the reachability probe";

  // A pool too small for the run stops `run` before its first case: the dry run says so, exit 2.
  auto ca = *pki::create_test_ca("pool CA");
  fs::create_directories(dir_ / "pool");
  auto device = *pki::issue_device_identity(ca, "device-0", pki::KeyType::ec_p256);
  ASSERT_TRUE(pki::write_identity(device, dir_ / "pool/device-0.crt", dir_ / "pool/device-0.key"));
  auto pooled =
      write("pool.yaml", "schema_version: 1\nname: pool\nurls:\n  check_in: " + base + "/checkin\n  server: " + base +
                             "/mdm\nidentity:\n  mode: signature\n  pool: {dir: pool}\n");
  auto short_pool = run_mdmconform("--specs " + specs() + " run --dry-run --target " + pooled.string() + " enr/");
  EXPECT_EQ(short_pool.exit_code, 2) << short_pool.output;
  EXPECT_NE(short_pool.output.find("the run would stop before its first case: the run needs up to"), std::string::npos)
      << short_pool.output;
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(CliTest, ListTakesRunsSelectionAndShowsLevelsAndTags) {
  auto listed = run_mdmconform("--specs " + specs() + " list --tag network-user --level should");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("net/refused_stays_out"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("NET-REFUSED-STAYS-OUT:should"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("tags: network-user"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("net/refuse_410 "), std::string::npos) << "a must-level case\n" << listed.output;

  auto excluded = run_mdmconform("--specs " + specs() + " list net/ --exclude net/refuse_410");
  EXPECT_EQ(excluded.exit_code, 0) << excluded.output;
  EXPECT_NE(excluded.output.find("net/refuse_410_second_user "), std::string::npos) << excluded.output;
  EXPECT_EQ(excluded.output.find("net/refuse_410 "), std::string::npos) << excluded.output;
  EXPECT_EQ(excluded.output.find("syn/"), std::string::npos) << excluded.output;
  EXPECT_NE(excluded.output.find("NET-REFUSE-410:must"), std::string::npos) << excluded.output;

  auto misspelt = run_mdmconform("--specs " + specs() + " list --exclude nope");
  EXPECT_EQ(misspelt.exit_code, 2) << misspelt.output;
  EXPECT_NE(misspelt.output.find("--exclude nope matches no case"), std::string::npos) << misspelt.output;
  EXPECT_EQ(run_mdmconform("--specs " + specs() + " list --tag no-such-tag").exit_code, 2);
  EXPECT_EQ(run_mdmconform("list --level sometimes").exit_code, 2);
}

TEST_F(CliTest, ServeRefusesAnIdentityModeWithoutTlsDirWithExitTwo) {
  auto ran = run_mdmconform("serve --identity-mode mtls");
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("--identity-mode mtls needs --tls-dir"), std::string::npos) << ran.output;
}

TEST_F(CliTest, ServeSaysItsIdentityModeAndPrintsAProfileThatPassesAgainstIt) {
  // Without --tls-dir: mode none, said outright.
  auto plain = testing::Process::spawn({MDMC_BINARY, "serve"});
  ASSERT_TRUE(plain) << plain.message();
  EXPECT_TRUE(plain->wait_for_output("identity mode: none", std::chrono::seconds(20))) << plain->output();
  ASSERT_TRUE(plain->signal(SIGTERM));
  auto plain_end = plain->wait_or_kill(std::chrono::seconds(10));
  EXPECT_EQ(plain_end.exit_code, 0) << plain->output();

  // With --tls-dir: the profile it prints names its CA files and its mode, and a run with it
  // passes, ENR-SAME-IDENTITY included.
  auto tls_dir = dir_ / "serve tls";  // a space: the profile must quote the paths
  auto served = testing::Process::spawn({MDMC_BINARY, "serve", "--tls-dir", tls_dir.string(), "--identity-mode", "both",
                                         "--manage-network-user", "7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10"});
  ASSERT_TRUE(served) << served.message();
  ASSERT_TRUE(served->wait_for_output("    managed: [", std::chrono::seconds(20))) << served->output();
  ASSERT_TRUE(served->wait_for_output("]\n", std::chrono::seconds(5))) << served->output();
  auto output = served->output();
  EXPECT_NE(output.find("identity mode: both\n"), std::string::npos) << output;
  EXPECT_NE(output.find("  ca: '" + (tls_dir / "ca.crt").string() + "'"), std::string::npos) << output;
  EXPECT_NE(output.find("  issuer: {cert: '" + (tls_dir / "ca.crt").string() + "', key: '" +
                        (tls_dir / "ca.key").string() + "'}"),
            std::string::npos)
      << output;
  auto profile_at = output.find("schema_version: 1");
  ASSERT_NE(profile_at, std::string::npos) << output;
  auto profile = write("serve-profile.yaml", output.substr(profile_at));
  auto ran = run_mdmconform("--specs " + specs() + " run --seed 9 --target " + profile.string() + " enr/ net/ --out " +
                            (dir_ / "out").string());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("enr/same_identity_user"), std::string::npos) << ran.output;
  EXPECT_EQ(ran.output.find("SKIP"), std::string::npos) << ran.output;
  ASSERT_TRUE(served->signal(SIGTERM));
  auto served_end = served->wait_or_kill(std::chrono::seconds(10));
  EXPECT_EQ(served_end.exit_code, 0) << served->output();
}

std::string file_text(const fs::path& p) { return testing::read_text(p); }

TEST_F(CliTest, StrictCountsAShouldLevelBreakAsAFailure) {
  // unknown-device-served breaks ENR-UNKNOWN-DEVICE, a should-level rule: a warn.
  auto relaxed = run_mdmconform("--specs " + specs() + " run --seed 4 --fault unknown-device-served --out " +
                                (dir_ / "relaxed").string());
  EXPECT_EQ(relaxed.exit_code, 0) << relaxed.output;
  EXPECT_NE(relaxed.output.find("WARN"), std::string::npos) << relaxed.output;
  auto strict = run_mdmconform("--specs " + specs() + " run --seed 4 --strict --fault unknown-device-served --out " +
                               (dir_ / "strict").string());
  EXPECT_EQ(strict.exit_code, 1) << strict.output;
  // Every view says what the exit code says: the warn is a failure in JUnit too, and the record
  // keeps strict.
  for (const auto& [dir, verdict] : {std::pair{"relaxed", "certified"}, std::pair{"strict", "failed"}}) {
    const bool is_strict = std::string(dir) == "strict";
    const auto record = nlohmann::json::parse(file_text(dir_ / dir / "report.json"));
    EXPECT_EQ(record["assessment"]["overall"], verdict) << dir;
    EXPECT_EQ(record["conditions"]["strict"], is_strict) << dir;
    const int warns = record["counts"]["warn"].get<int>();
    ASSERT_GT(warns, 0) << dir;
    const auto junit = file_text(dir_ / dir / "junit.xml");
    EXPECT_NE(junit.find(fmt::format("failures=\"{}\"", is_strict ? warns : 0)), std::string::npos) << dir << junit;
    EXPECT_NE(junit.find(fmt::format("<property name=\"verdict\" value=\"{}\"/>", verdict)), std::string::npos) << dir;
    const auto md = file_text(dir_ / dir / "summary.md");
    EXPECT_EQ(md.find("PASS WITH WARNINGS"), std::string::npos) << md;
  }
}

TEST_F(CliTest, OneCaseOfTheCatalogIsIncompleteNeverAPass) {
  auto one =
      run_mdmconform("--specs " + specs() + " run --seed 5 --out " + (dir_ / "one").string() + " net/refuse_410");
  EXPECT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("PASSED, INCOMPLETE: nothing failed, but 1 of "), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("untested: NET-MANAGE (must): not selected (checked by net/manage"), std::string::npos)
      << one.output;
  const auto record = nlohmann::json::parse(file_text(dir_ / "one" / "report.json"));
  EXPECT_EQ(record["assessment"]["overall"], "passed-incomplete");
  EXPECT_EQ(record["conditions"]["selection"], nlohmann::json::array({"net/refuse_410"}));
  EXPECT_EQ(record["conditions"]["selected_cases"], nlohmann::json::array({"net/refuse_410"}));
  for (const char* view : {"summary.md", "report.html", "junit.xml", "summary.txt"}) {
    const auto text = file_text(dir_ / "one" / view);
    EXPECT_NE(text.find("PASSED, INCOMPLETE"), std::string::npos) << view;
    EXPECT_NE(text.find("1 of "), std::string::npos) << view;
  }
  auto required = run_mdmconform("--specs " + specs() + " run --seed 5 --require-complete --out " +
                                 (dir_ / "required").string() + " net/refuse_410");
  EXPECT_EQ(required.exit_code, 1) << required.output;
  EXPECT_NE(required.output.find("exit code 1: --require-complete"), std::string::npos) << required.output;
}

TEST_F(CliTest, ABaselineMakesOnlyNewFailuresCount) {
  // The cases the two faults meet (not-now-dropped: ucf/redeliver; series-end-204: syn/); the
  // baseline compares case by case, so the rest of the suite would add nothing.
  const std::string cases = " ucf/ syn/";
  auto base = dir_ / "base";
  auto first =
      run_mdmconform("--specs " + specs() + " run --seed 8 --fault not-now-dropped --out " + base.string() + cases);
  ASSERT_EQ(first.exit_code, 1) << first.output;
  const std::string baseline = " --baseline " + (base / "report.json").string();

  // The same failure again: known, exit 0.
  auto known = run_mdmconform("--specs " + specs() + " run --seed 9 --fault not-now-dropped --out " +
                              (dir_ / "known").string() + baseline + cases);
  EXPECT_EQ(known.exit_code, 0) << known.output;
  EXPECT_NE(known.output.find("baseline: 0 case(s) changed"), std::string::npos) << known.output;

  // Another fault: its failure is new, and the old one is fixed; one line per changed case.
  auto other = run_mdmconform("--specs " + specs() + " run --seed 9 --fault series-end-204 --out " +
                              (dir_ / "other").string() + baseline + cases);
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("baseline: ucf/redeliver: fail -> pass\n"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("pass -> fail (new failure)\n"), std::string::npos) << other.output;

  // Against the correct server nothing is new.
  auto fixed =
      run_mdmconform("--specs " + specs() + " run --seed 9 --out " + (dir_ / "fixed").string() + baseline + cases);
  EXPECT_EQ(fixed.exit_code, 0) << fixed.output;

  // A case the baseline does not hold counts when it fails: a baseline of one passing case.
  auto narrow = dir_ / "narrow";
  ASSERT_EQ(run_mdmconform("--specs " + specs() + " run --seed 9 --out " + narrow.string() + " chn/").exit_code, 0);
  auto missing =
      run_mdmconform("--specs " + specs() + " run --seed 9 --fault not-now-dropped --out " +
                     (dir_ / "missing").string() + " --baseline " + (narrow / "report.json").string() + " ucf/");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("ucf/redeliver: absent -> fail (new failure)"), std::string::npos) << missing.output;

  auto unreadable = run_mdmconform("--specs " + specs() + " run --baseline " + (dir_ / "nope.json").string() +
                                   " --out " + (dir_ / "unreadable").string());
  EXPECT_EQ(unreadable.exit_code, 2) << unreadable.output;
  EXPECT_NE(unreadable.output.find("nope.json"), std::string::npos) << unreadable.output;
  expect_stopped_run_recorded(dir_ / "unreadable", "--baseline");
}

TEST_F(CliTest, DiffListsTheCasesWhoseVerdictChanged) {
  auto a = dir_ / "a";
  auto b = dir_ / "b";
  // The cases the fault meets: ucf/redeliver fails.
  ASSERT_EQ(run_mdmconform("--specs " + specs() + " run --seed 12 --out " + a.string() + " ucf/").exit_code, 0);
  ASSERT_EQ(
      run_mdmconform("--specs " + specs() + " run --seed 12 --fault not-now-dropped --out " + b.string() + " ucf/")
          .exit_code,
      1);
  const auto a_json = (a / "report.json").string();
  const auto b_json = (b / "report.json").string();

  auto same = run_mdmconform("diff " + a_json + " " + a_json);
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("0 case(s) changed"), std::string::npos) << same.output;

  auto changed = run_mdmconform("diff " + a_json + " " + b_json);
  EXPECT_EQ(changed.exit_code, 1) << changed.output;
  EXPECT_NE(changed.output.find("ucf/redeliver: pass -> fail\n"), std::string::npos) << changed.output;

  write("garbage.json", "{\"schema_version\": 1, \"cases\": 7}");
  auto garbage = run_mdmconform("diff " + a_json + " " + (dir_ / "garbage.json").string());
  EXPECT_EQ(garbage.exit_code, 2) << garbage.output;
  EXPECT_NE(garbage.output.find("garbage.json"), std::string::npos) << garbage.output;
  EXPECT_EQ(run_mdmconform("diff " + a_json + " " + (dir_ / "absent.json").string()).exit_code, 2);
  EXPECT_EQ(run_mdmconform("diff " + a_json).exit_code, 2);
}

// ---- views made again from a saved record, and the console ----

TEST_F(CliTest, ReportMakesEveryViewAgainFromASavedRecord) {
  const auto run_dir = dir_ / "run";
  auto ran = run_mdmconform("--specs " + specs() + " run --quiet --seed 3 --fault series-end-204 --out " +
                            run_dir.string() + " syn/ ucf/");
  ASSERT_EQ(ran.exit_code, 1) << ran.output;
  const std::string record = (run_dir / "report.json").string();
  // Each view written by `run` comes out the same from the record alone.
  for (const auto& [format, file] : {std::pair{"html", "report.html"}, std::pair{"junit", "junit.xml"},
                                     std::pair{"md", "summary.md"}, std::pair{"json", "report.json"}}) {
    const auto out = dir_ / (std::string("again.") + format);
    auto again = run_mdmconform("report " + record + " --format " + format + " --out " + out.string());
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_EQ(file_text(out), file_text(run_dir / file)) << format;
  }
  auto to_stdout = run_mdmconform("report " + record + " --format md");
  EXPECT_EQ(to_stdout.exit_code, 0);
  EXPECT_NE(to_stdout.output.find("## mdmconform: FAILED against `reference`"), std::string::npos) << to_stdout.output;
  EXPECT_NE(to_stdout.output.find("SYN-EMPTY-END (must)"), std::string::npos) << to_stdout.output;
}

TEST_F(CliTest, ReportRedactsARecordKeptWithNoRedactUnlessAskedNotTo) {
  const auto run_dir = dir_ / "run";
  ASSERT_EQ(
      run_mdmconform("--specs " + specs() + " run --quiet --no-redact --seed 4 --out " + run_dir.string() + " enr/")
          .exit_code,
      0);
  const std::string record = (run_dir / "report.json").string();
  ASSERT_NE(file_text(run_dir / "report.json").find("<key>PushMagic</key>"), std::string::npos);
  auto redacted = run_mdmconform("report " + record + " --format json");
  EXPECT_EQ(redacted.exit_code, 0);
  EXPECT_NE(redacted.output.find("\"redacted\": true"), std::string::npos);
  EXPECT_NE(redacted.output.find("&lt;redacted: "), std::string::npos) << "PushMagic is replaced";
  auto kept = run_mdmconform("report " + record + " --format json --no-redact");
  EXPECT_NE(kept.output.find("\"redacted\": false"), std::string::npos);
}

TEST_F(CliTest, ReportRendersAFuzzSummaryAndRefusesWhatItCannotRead) {
  const auto summary =
      write("fuzz/summary.json", R"({"kind": "mdmconform-fuzz", "target_name": "reference", "executions": 10,)"
                                 R"( "timeline": [{"t_s": 1, "exec_per_sec": 10, "corpus_size": 3}], "findings": []})");
  auto html = run_mdmconform("report " + summary.string() + " --format html");
  EXPECT_EQ(html.exit_code, 0) << html.output;
  EXPECT_NE(html.output.find("data-field=\"corpus_size\" data-points=\"1\""), std::string::npos);
  auto md = run_mdmconform("report " + summary.string() + " --format md");
  EXPECT_NE(md.output.find("## mdmconform fuzz: no findings"), std::string::npos) << md.output;
  EXPECT_EQ(run_mdmconform("report " + summary.string() + " --format junit").exit_code, 2);
  EXPECT_EQ(run_mdmconform("report " + write("bad.json", "{\"schema_version\": 1}").string()).exit_code, 2);
  EXPECT_EQ(run_mdmconform("report " + (dir_ / "absent.json").string()).exit_code, 2);
  EXPECT_EQ(run_mdmconform("report " + summary.string() + " --format pdf").exit_code, 2);
}

TEST_F(CliTest, OffATerminalEachCaseGetsOnePlainLineAsItEnds) {
  auto ran = run_mdmconform("--specs " + specs() + " run --seed 5 --out " + dir_.string() + " chn/");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  auto run = report::read_run_file(dir_ / "report.json");
  ASSERT_TRUE(run);
  const std::size_t total = run->cases.size();
  for (std::size_t done = 1; done <= total; ++done) {
    EXPECT_NE(ran.output.find(fmt::format("[{}/{}] PASS  chn/", done, total)), std::string::npos) << ran.output;
  }
  EXPECT_EQ(ran.output.find('\r'), std::string::npos) << "no terminal redraws in a log";
  EXPECT_EQ(ran.output.find("\x1b"), std::string::npos);
  // The summary does not repeat the passing cases the log already holds; it ends with the totals.
  EXPECT_EQ(ran.output.find("\nPASS  "), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find(fmt::format("{} cases: {} pass", total, total)), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("report: " + dir_.string() + "/report.html"), std::string::npos) << ran.output;
}

TEST_F(CliTest, QuietPrintsOnlyWhatFailedAndVerbosePrintsEachExchange) {
  auto quiet = run_mdmconform("--specs " + specs() + " run --quiet --seed 5 --fault series-end-204 --out " +
                              (dir_ / "q").string() + " syn/ chn/idle_empty_device");
  EXPECT_EQ(quiet.exit_code, 1) << quiet.output;
  EXPECT_EQ(quiet.output.find("PASS"), std::string::npos) << quiet.output;
  EXPECT_EQ(quiet.output.find("level   verdict"), std::string::npos) << "no rules table" << quiet.output;
  EXPECT_NE(quiet.output.find("FAIL  syn/empty_end"), std::string::npos) << quiet.output;
  EXPECT_NE(quiet.output.find("replay: mdmconform"), std::string::npos) << quiet.output;

  auto verbose = run_mdmconform("--specs " + specs() + " run --verbose --seed 5 --out " + (dir_ / "v").string() +
                                " chn/idle_empty_device");
  EXPECT_EQ(verbose.exit_code, 0) << verbose.output;
  EXPECT_NE(verbose.output.find("[1/1] PASS  chn/idle_empty_device"), std::string::npos) << verbose.output;
  EXPECT_NE(verbose.output.find("      mac        Authenticate -> 200 empty ("), std::string::npos) << verbose.output;
  EXPECT_NE(verbose.output.find("Idle -> 200 empty ("), std::string::npos) << verbose.output;
  EXPECT_EQ(run_mdmconform("run --quiet --verbose").exit_code, 2) << "one or the other";
}

}  // namespace
}  // namespace mdmc
