// Push verification end to end, the way a certifier points a server of their own at the fake
// APNs: a reference server started apart from the run, pushing to a configured APNs URL, and a
// target profile whose `push:` has the run serve the fake APNs there (docs/push.md). The
// built-in server's own fake APNs is the mutation self-test's.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>

#include "harness/cli/builtin.hpp"
#include "harness/cli/suite.hpp"
#include "harness/push/provider_token.hpp"
#include "harness/server/faults.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/testing/files.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;
using scenario::Verdict;

constexpr const char* kTopic = "com.apple.mgmt.External.mdmconform";

// A loopback port nothing listens on right now: the fake APNs takes it when the run starts,
// and the server is told it beforehand, as a certifier would configure theirs.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

enum class Auth { certificate, token };

class PushRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_dir("mdmc_push_run_test");
    auto keys = cli::make_builtin_pki();
    ASSERT_TRUE(keys) << keys.message();
    keys_ = *keys;
    auto apns_ca = pki::create_test_ca("certifier's APNs CA");
    auto push_ca = pki::create_test_ca("push certificate CA");
    auto token_key = pki::issue_device_identity(*apns_ca, "provider key", pki::KeyType::ec_p256);
    ASSERT_TRUE(apns_ca && push_ca && token_key);
    apns_ca_ = *apns_ca;
    push_ca_ = *push_ca;
    token_key_ = *token_key;
    ASSERT_TRUE(pki::write_identity(keys_.ca, dir_ / "ca.crt", dir_ / "ca.key"));
    ASSERT_TRUE(pki::write_identity(apns_ca_, dir_ / "apns-ca.crt", dir_ / "apns-ca.key"));
    std::ofstream(dir_ / "push-ca.crt") << push_ca_.cert_pem;
    std::ofstream(dir_ / "provider-key.pem") << token_key_.cert_pem;
    apns_port_ = free_port();
    ASSERT_NE(apns_port_, 0);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  // The server pushes to https://127.0.0.1:<apns_port_>, trusting the certifier's APNs CA.
  // `certificate_ca`, when given, issues the server's push certificate instead of the CA the
  // profile's push.auth.certificate_ca names.
  void serve(Auth auth, server::Fault fault = server::Fault::none, const pki::Identity* certificate_ca = nullptr) {
    server::Config config;
    config.identity_mode = protocol::IdentityMode::both;
    config.client_ca_pem = keys_.ca.cert_pem;
    config.tls_ca_pem = keys_.ca.cert_pem;
    config.topic = kTopic;
    config.fault = fault;
    config.push.apns_url = fmt::format("https://127.0.0.1:{}", apns_port_);
    config.push.trusted_ca_pem = apns_ca_.cert_pem;
    if (auth == Auth::certificate) {
      auto certificate = pki::issue_push_certificate(certificate_ca ? *certificate_ca : push_ca_, kTopic);
      ASSERT_TRUE(certificate) << certificate.message();
      config.push.certificate = *certificate;
    } else {
      config.push.provider_key_pem = token_key_.key_pem;
      config.push.key_id = "ABC123DEFG";
      config.push.team_id = "DEF123GHIJ";
    }
    server_ = std::make_unique<server::ReferenceServer>(config, keys_.tls);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port) << port.message();
    port_ = *port;
    server_->start();
  }

  fs::path profile(const std::string& push) {
    auto file = dir_ / "target.yaml";
    std::ofstream(file) << fmt::format(
        "schema_version: 1\nname: push-test\n"
        "urls: {{server: https://127.0.0.1:{0}/mdm, check_in: https://127.0.0.1:{0}/checkin}}\n"
        "topic: {1}\ntls: {{ca: ca.crt}}\n"
        "identity: {{mode: both, issuer: {{cert: ca.crt, key: ca.key}}}}\n"
        "admin:\n  enqueue:\n    url: https://127.0.0.1:{0}/v1/enqueue/{{channel}}\n{2}",
        port_, kTopic, push);
    return file;
  }
  std::string push_key(Auth auth) const {
    return fmt::format(
        "push:\n  listen: 127.0.0.1:{}\n  names: [api.push.apple.com, api.sandbox.push.apple.com]\n"
        "  ca: {{cert: apns-ca.crt, key: apns-ca.key}}\n  auth:\n{}",
        apns_port_,
        auth == Auth::certificate
            ? "    certificate_ca: push-ca.crt\n"
            : "    token: {key_id: ABC123DEFG, team_id: DEF123GHIJ, public_key: provider-key.pem}\n");
  }

  cli::SuiteOutcome run(const fs::path& target, std::vector<std::string> selection = {"psh/"}) {
    cli::SuiteOptions options;
    options.specs_dir = fs::path(MDMC_SOURCE_DIR) / "specs";
    options.target = target;
    options.selection = std::move(selection);
    options.confirm = 0;
    options.seed = 20261206;
    return cli::run_suite(options);
  }

  static std::string cases_of(const scenario::RunResult& run) {
    std::string out;
    for (const auto& c : run.cases)
      out += fmt::format("  {} {}: {}\n", scenario::verdict_name(c.verdict), c.id, c.reason);
    return out;
  }

  fs::path dir_;
  cli::BuiltinPki keys_;
  pki::Identity apns_ca_, push_ca_, token_key_;
  std::unique_ptr<server::ReferenceServer> server_;
  std::uint16_t port_ = 0;
  std::uint16_t apns_port_ = 0;
};

TEST_F(PushRun, AServerPushingWithACertificateToTheProfilesFakeApnsPassesEveryPushCase) {
  serve(Auth::certificate);
  auto outcome = run(profile(push_key(Auth::certificate)));
  ASSERT_EQ(outcome.exit_code, 0) << outcome.message << "\n" << cases_of(outcome.run);
  ASSERT_EQ(outcome.run.cases.size(), 7U);
  for (const auto& c : outcome.run.cases) {
    EXPECT_EQ(c.verdict, Verdict::pass) << c.id << ": " << c.reason;
    // The pushes are the evidence: each case's transcript holds what the server sent APNs
    // (none after CheckOut).
    if (c.id == "psh/checkout") continue;
    const bool evidence =
        std::any_of(c.transcript.begin(), c.transcript.end(), [](const auto& entry) { return entry.actor == "apns"; });
    EXPECT_TRUE(evidence) << c.id << " keeps no push in its transcript";
  }
}

TEST_F(PushRun, AServerPushingWithProviderTokensPassesAndOneStoringAUsersTokenOverItsDevicesFailsPshUser) {
  serve(Auth::token);
  auto outcome = run(profile(push_key(Auth::token)));
  ASSERT_EQ(outcome.exit_code, 0) << outcome.message << "\n" << cases_of(outcome.run);

  server_.reset();
  serve(Auth::token, server::Fault::push_user_token_on_device);
  outcome = run(profile(push_key(Auth::token)));
  EXPECT_EQ(outcome.exit_code, 1) << cases_of(outcome.run);
  for (const auto& c : outcome.run.cases) {
    if (c.id == "psh/user") {
      EXPECT_EQ(c.verdict, Verdict::fail);
      EXPECT_NE(c.reason.find("PSH-USER: expected no push to mac/alice"), std::string::npos) << c.reason;
    } else {
      EXPECT_EQ(c.verdict, Verdict::pass) << c.id << ": " << c.reason;
    }
  }
}

// APNs answers a push signed with a certificate it does not know 403 BadCertificate, and that
// push never reaches the Mac: the command woke nothing, whatever its token and PushMagic.
TEST_F(PushRun, APushApnsRefusesForItsCertificateWakesNothingAndFailsPshDevice) {
  auto stranger = pki::create_test_ca("a CA the profile does not name");
  ASSERT_TRUE(stranger) << stranger.message();
  serve(Auth::certificate, server::Fault::none, &*stranger);
  auto outcome = run(profile(push_key(Auth::certificate)), {"psh/device"});
  EXPECT_EQ(outcome.exit_code, 1) << outcome.message << "\n" << cases_of(outcome.run);
  ASSERT_EQ(outcome.run.cases.size(), 1U) << cases_of(outcome.run);
  const auto& c = outcome.run.cases.front();
  EXPECT_EQ(c.verdict, Verdict::fail) << c.reason;
  EXPECT_NE(c.reason.find("refused by APNs: 403 BadCertificate"), std::string::npos) << c.reason;
}

TEST_F(PushRun, WithoutPushInTheProfileThePushCasesAreUntestedAndSayWhy) {
  serve(Auth::certificate);
  auto outcome = run(profile(""));
  EXPECT_EQ(outcome.exit_code, 0) << cases_of(outcome.run);
  ASSERT_EQ(outcome.run.cases.size(), 7U);
  for (const auto& c : outcome.run.cases) {
    EXPECT_EQ(c.verdict, Verdict::skip) << c.id;
    EXPECT_NE(c.reason.find("the target profile has no push:"), std::string::npos) << c.reason;
  }
  for (const auto& rule : outcome.run.rules) {
    if (rule.id.rfind("PSH-", 0) == 0) EXPECT_EQ(rule.verdict, Verdict::skip) << rule.id;
  }
}

TEST_F(PushRun, AListenAddressThatIsTakenStopsTheRunBeforeItsFirstCaseNamingTheKey) {
  serve(Auth::certificate);
  // The server's own port is taken.
  auto text = push_key(Auth::certificate);
  text.replace(text.find(std::to_string(apns_port_)), std::to_string(apns_port_).size(), std::to_string(port_));
  auto outcome = run(profile(text));
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("push.listen"), std::string::npos) << outcome.message;
}

}  // namespace
}  // namespace mdmc
