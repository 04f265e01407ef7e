// FakeApns against a client this project did not write: nghttp (Debian nghttp2-client). The
// endpoint must accept and record its pushes, with a push certificate and with a provider
// token, and answer its malformed ones as APNs does. Skipped only when nghttp is not installed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "harness/pki/pki.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/push/provider_token.hpp"
#include "harness/push/push_test_support.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"

namespace mdmc::push {
namespace {

using namespace std::chrono_literals;
using testing::endpoint_config;
using testing::kKeyId;
using testing::kMagic;
using testing::kTeamId;
using testing::kToken;
using testing::kTopic;
using testing::push_pki;

class NghttpCrossCheck : public mdmc::testing::FolderTest {
 protected:
  NghttpCrossCheck() : FolderTest("nghttp_cross") {}
  void SetUp() override {
    if (mdmc::testing::run_shell("command -v nghttp", 5s).exit_code != 0) GTEST_SKIP() << "nghttp is not installed";
    FolderTest::SetUp();
    endpoint = std::make_unique<FakeApns>(endpoint_config());
    auto started = endpoint->start();
    ASSERT_TRUE(started.ok()) << started.message();
    port = *started;
    body = write("body.json", std::string(R"({"mdm":")") + kMagic + "\"}");
    ASSERT_TRUE(pki::write_identity(push_pki().push_certificate, dir_ / "push.pem", dir_ / "push.key").ok());
  }
  // nghttp's verbose transcript of one POST to `path`.
  mdmc::testing::Ran nghttp(const std::string& path, std::vector<std::string> extra) {
    std::vector<std::string> argv = {"nghttp",           "-v", "-d", body.string(), "-H", "apns-push-type: mdm", "-H",
                                     "apns-priority: 10"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("https://127.0.0.1:" + std::to_string(port) + path);
    return mdmc::testing::run_process(argv, 20s);
  }
  std::unique_ptr<FakeApns> endpoint;
  std::uint16_t port = 0;
  std::filesystem::path body;
};

TEST_F(NghttpCrossCheck, APushWithThePushCertificateIsAcceptedAndRecorded) {
  const auto ran = nghttp(std::string("/3/device/") + kToken,
                          {"--cert", (dir_ / "push.pem").string(), "--key", (dir_ / "push.key").string()});
  EXPECT_NE(ran.output.find("The negotiated protocol: h2"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find(":status: 200"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("apns-id: "), std::string::npos) << ran.output;
  const auto pushes = endpoint->pushes_since(0);
  ASSERT_EQ(pushes.size(), 1u) << ran.output;
  EXPECT_EQ(pushes.front().status, 200) << pushes.front().reason << ": " << pushes.front().detail;
  EXPECT_EQ(pushes.front().auth, AuthMethod::certificate);
  EXPECT_EQ(pushes.front().device_token, kToken);
  EXPECT_EQ(pushes.front().topic, kTopic);  // from the certificate: nghttp sent no apns-topic
  EXPECT_EQ(pushes.front().push_magic, kMagic);
  EXPECT_EQ(net::find_header(pushes.front().headers, "content-length"),
            std::to_string(std::filesystem::file_size(body)));
}

TEST_F(NghttpCrossCheck, APushWithAProviderTokenIsAccepted) {
  auto token = make_provider_token(push_pki().token_key.key_pem, kKeyId, kTeamId, std::chrono::system_clock::now());
  ASSERT_TRUE(token.ok()) << token.message();
  const auto ran = nghttp(std::string("/3/device/") + kToken,
                          {"-H", "authorization: bearer " + *token, "-H", std::string("apns-topic: ") + kTopic});
  EXPECT_NE(ran.output.find(":status: 200"), std::string::npos) << ran.output;
  const auto pushes = endpoint->pushes_since(0);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes.front().auth, AuthMethod::token);
}

TEST_F(NghttpCrossCheck, MalformedPushesGetApnsReasons) {
  auto ran =
      nghttp("/3/device/not-hex", {"--cert", (dir_ / "push.pem").string(), "--key", (dir_ / "push.key").string()});
  EXPECT_NE(ran.output.find(":status: 400"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find(R"({"reason":"BadDeviceToken"})"), std::string::npos) << ran.output;
  ran = nghttp(std::string("/3/device/") + kToken, {});
  EXPECT_NE(ran.output.find(":status: 403"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("MissingProviderToken"), std::string::npos) << ran.output;
  EXPECT_EQ(endpoint->pushes_since(0).size(), 2u);
}

}  // namespace
}  // namespace mdmc::push
