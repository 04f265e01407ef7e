// ApnsClient against FakeApns on loopback: every answer, both ways to authenticate, the log.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "harness/push/apns_client.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/push/push_test_support.hpp"

namespace mdmc::push {
namespace {

using namespace std::chrono_literals;
using testing::client_config;
using testing::endpoint_config;
using testing::kKeyId;
using testing::kMagic;
using testing::kTeamId;
using testing::kToken;
using testing::kTopic;
using testing::push_pki;

struct Loopback : ::testing::Test {
  void SetUp() override {
    endpoint = std::make_unique<FakeApns>(endpoint_config());
    auto started = endpoint->start();
    ASSERT_TRUE(started.ok()) << started.message();
    port = *started;
  }
  ApnsClientConfig certificate_client() const {
    auto config = client_config(port);
    config.certificate = push_pki().push_certificate;
    return config;
  }
  ApnsClientConfig token_client() const {
    auto config = client_config(port);
    config.provider_key = ProviderKey{push_pki().token_key.key_pem, kKeyId, kTeamId};
    return config;
  }
  std::unique_ptr<FakeApns> endpoint;
  std::uint16_t port = 0;
};

TEST_F(Loopback, CertificatePushIsAcceptedAndRecorded) {
  ApnsClient client(certificate_client());
  const ApnsResult result = client.send(ApnsPush::mdm(kToken, kMagic, kTopic));
  ASSERT_TRUE(result.ok()) << apns_error_name(result.error) << ": " << result.error_detail << " " << result.reason;
  EXPECT_TRUE(is_uuid(result.apns_id));
  const auto pushes = endpoint->pushes_since(0);
  ASSERT_EQ(pushes.size(), 1u);
  const Push& push = pushes.front();
  EXPECT_EQ(push.device_token, kToken);
  EXPECT_EQ(push.push_magic, kMagic);
  EXPECT_EQ(push.topic, kTopic);
  EXPECT_EQ(push.auth, AuthMethod::certificate);
  EXPECT_NE(push.certificate_subject.find("APSP:"), std::string::npos) << push.certificate_subject;
  EXPECT_EQ(push.status, 200);
  EXPECT_EQ(push.apns_id, result.apns_id);
  EXPECT_EQ(push.authority, "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(*net::find_header(push.headers, "apns-push-type"), "mdm");
}

TEST_F(Loopback, TokenPushIsAcceptedAndTheApnsIdEchoed) {
  ApnsClient client(token_client());
  auto push = ApnsPush::mdm(kToken, kMagic, kTopic);
  push.apns_id = "123e4567-e89b-12d3-a456-426614174000";
  const ApnsResult result = client.send(push);
  ASSERT_TRUE(result.ok()) << apns_error_name(result.error) << ": " << result.error_detail << " " << result.reason;
  EXPECT_EQ(result.apns_id, push.apns_id);
  const auto pushes = endpoint->pushes_since(0);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes.front().auth, AuthMethod::token);
  const auto authorization = net::find_header(pushes.front().headers, "authorization");
  ASSERT_TRUE(authorization.has_value());
  EXPECT_TRUE(authorization->ends_with(".<signature withheld>")) << *authorization;
  EXPECT_TRUE(authorization->starts_with("bearer ey")) << *authorization;
}

TEST_F(Loopback, APortInUseIsAnErrorAndTheEndpointCanStartElsewhere) {
  FakeApns second(endpoint_config());
  const auto taken = second.start("127.0.0.1", port);
  EXPECT_FALSE(taken.ok());
  const auto elsewhere = second.start();
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.message();
  EXPECT_NE(*elsewhere, port);
}

TEST_F(Loopback, MalformedPushesGetApnsStatusAndReason) {
  ApnsClient client(certificate_client());
  struct Case {
    std::function<void(ApnsPush&)> change;
    int status;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {[](ApnsPush& p) { p.device_token = "abc"; }, 400, "BadDeviceToken"},
      {[](ApnsPush& p) { p.topic = "com.apple.mgmt.External.someone-else"; }, 400, "TopicDisallowed"},
      {[](ApnsPush& p) { p.topic = "no spaces"; }, 400, "BadTopic"},
      {[](ApnsPush& p) { p.priority = "11"; }, 400, "BadPriority"},
      {[](ApnsPush& p) { p.push_type = "fax"; }, 400, "InvalidPushType"},
      {[](ApnsPush& p) { p.expiration = "-1"; }, 400, "BadExpirationDate"},
      {[](ApnsPush& p) { p.collapse_id = std::string(65, 'x'); }, 400, "BadCollapseId"},
      {[](ApnsPush& p) { p.apns_id = "42"; }, 400, "BadMessageId"},
      {[](ApnsPush& p) { p.body.clear(); }, 400, "PayloadEmpty"},
      {[](ApnsPush& p) { p.body = std::string(5000, ' ') + "{}"; }, 413, "PayloadTooLarge"},
      {[](ApnsPush& p) { p.path = "/3/other"; }, 404, "BadPath"},
      {[](ApnsPush& p) { p.method = "PUT"; }, 405, "MethodNotAllowed"},
  };
  std::vector<ApnsPush> pushes;
  for (const auto& c : cases) {
    auto push = ApnsPush::mdm(kToken, kMagic, kTopic);
    c.change(push);
    pushes.push_back(push);
  }
  // All at once on one connection: the answers come back per stream.
  const auto results = client.send_all(pushes);
  ASSERT_EQ(results.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(results[i].error, ApnsError::none) << i << ": " << results[i].error_detail;
    EXPECT_EQ(results[i].status, cases[i].status) << cases[i].reason;
    EXPECT_EQ(results[i].reason, cases[i].reason);
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(endpoint->pushes_since(0).size(), cases.size());
}

TEST_F(Loopback, MissingOrBadCredentialsAre403) {
  ApnsClient anonymous(client_config(port));
  auto result = anonymous.send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.status, 403) << result.error_detail;
  EXPECT_EQ(result.reason, "MissingProviderToken");

  auto stranger = client_config(port);
  stranger.certificate = push_pki().stranger_push;
  result = ApnsClient(stranger).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.status, 403) << result.error_detail;
  EXPECT_EQ(result.reason, "BadCertificate");

  auto wrong_kid = token_client();
  wrong_kid.provider_key->key_id = "ZZZZZZZZZZ";
  result = ApnsClient(wrong_kid).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.status, 403);
  EXPECT_EQ(result.reason, "InvalidProviderToken");

  auto push = ApnsPush::mdm(kToken, kMagic, kTopic);
  push.extra_headers.push_back({"authorization", "bearer e30.e30.AA"});
  result = anonymous.send(push);
  EXPECT_EQ(result.reason, "InvalidProviderToken");
}

TEST_F(Loopback, ScriptedAnswersPerToken) {
  ApnsClient client(certificate_client());
  const auto since = std::chrono::system_clock::now() - 5min;
  endpoint->script(kToken, ScriptedAnswer::unregistered(since));
  auto result = client.send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.status, 410);
  EXPECT_EQ(result.reason, "Unregistered");
  EXPECT_EQ(result.timestamp_ms,
            std::chrono::duration_cast<std::chrono::milliseconds>(since.time_since_epoch()).count());

  // Another token is untouched.
  const std::string other(64, 'a');
  EXPECT_EQ(client.send(ApnsPush::mdm(other, kMagic, kTopic)).status, 200);

  auto busy = ScriptedAnswer::too_many_requests();
  busy.times = 2;
  endpoint->script(kToken, busy);
  EXPECT_EQ(client.send(ApnsPush::mdm(kToken, kMagic, kTopic)).reason, "TooManyRequests");
  EXPECT_EQ(client.send(ApnsPush::mdm(kToken, kMagic, kTopic)).status, 429);
  EXPECT_EQ(client.send(ApnsPush::mdm(kToken, kMagic, kTopic)).status, 200);

  endpoint->script(kToken, ScriptedAnswer::service_unavailable());
  result = client.send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.status, 503);
  EXPECT_EQ(result.reason, "ServiceUnavailable");
  // A malformed push is judged before any script: APNs would refuse it first.
  auto malformed = ApnsPush::mdm(kToken, kMagic, kTopic);
  malformed.priority = "3";
  EXPECT_EQ(client.send(malformed).reason, "BadPriority");
  endpoint->clear_scripts();
  EXPECT_EQ(client.send(ApnsPush::mdm(kToken, kMagic, kTopic)).status, 200);
  EXPECT_EQ(client.connections_opened(), 1u);

  const auto pushes = endpoint->pushes_since(0);
  ASSERT_EQ(pushes.size(), 8u);
  EXPECT_TRUE(pushes[0].scripted);
  EXPECT_FALSE(pushes[1].scripted);
}

TEST_F(Loopback, WaitForSeesAPushMadeLaterAndTimesOutWithoutOne) {
  const std::uint64_t mark = endpoint->next_index();
  std::thread sender([&] {
    std::this_thread::sleep_for(100ms);
    ApnsClient(certificate_client()).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  });
  const auto found = endpoint->wait_for([](const Push& p) { return p.push_magic == kMagic; }, mark,
                                        std::chrono::steady_clock::now() + 5s);
  sender.join();
  ASSERT_TRUE(found.has_value());
  EXPECT_GE(found->index, mark);

  const auto start = std::chrono::steady_clock::now();
  const auto none = endpoint->wait_for([](const Push&) { return true; }, endpoint->next_index(),
                                       std::chrono::steady_clock::now() + 200ms);
  EXPECT_FALSE(none.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(Loopback, TheLogKeepsTheLatestPushesAndCountsTheRest) {
  auto config = endpoint_config();
  config.limits.max_pushes_kept = 3;
  FakeApns small(config);
  const auto small_port = small.start();
  ASSERT_TRUE(small_port.ok());
  auto client_settings = client_config(*small_port);
  client_settings.certificate = push_pki().push_certificate;
  ApnsClient client(client_settings);
  const std::vector<ApnsPush> pushes(10, ApnsPush::mdm(kToken, kMagic, kTopic));
  for (const auto& r : client.send_all(pushes)) EXPECT_TRUE(r.ok()) << r.error_detail;
  const auto kept = small.pushes_since(0);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.front().index, 7u);
  EXPECT_EQ(small.stats().pushes, 10u);
  EXPECT_EQ(small.stats().pushes_dropped, 7u);
  EXPECT_EQ(small.next_index(), 10u);
}

TEST_F(Loopback, AConnectionTheEndpointClosedWhileIdleIsReplacedOnce) {
  auto config = endpoint_config();
  config.limits.idle_timeout = 200ms;
  FakeApns strict(config);
  const auto strict_port = strict.start();
  ASSERT_TRUE(strict_port.ok());
  auto settings = client_config(*strict_port);
  settings.certificate = push_pki().push_certificate;
  ApnsClient client(settings);
  EXPECT_TRUE(client.send(ApnsPush::mdm(kToken, kMagic, kTopic)).ok());
  std::this_thread::sleep_for(500ms);
  const auto result = client.send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_TRUE(result.ok()) << apns_error_name(result.error) << ": " << result.error_detail;
  EXPECT_EQ(client.connections_opened(), 2u);
  EXPECT_EQ(strict.stats().pushes, 2u);
}

TEST_F(Loopback, ClientErrorsAreValues) {
  // Nothing listens.
  auto config = client_config(port);
  endpoint->stop();
  auto result = ApnsClient(config).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.error, ApnsError::connect_failed) << result.error_detail;
  config.url = "http://127.0.0.1:1";
  EXPECT_EQ(ApnsClient(config).send(ApnsPush::mdm(kToken, kMagic, kTopic)).error, ApnsError::bad_url);
}

TEST_F(Loopback, AnEndpointTheClientDoesNotTrustFailsTheHandshake) {
  auto config = client_config(port);
  config.trusted_ca_pem = push_pki().push_ca.cert_pem;
  const auto result = ApnsClient(config).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.error, ApnsError::tls_handshake_failed) << result.error_detail;
  EXPECT_EQ(endpoint->stats().pushes, 0u);
}

TEST(EndpointIdentity, CoversApplesNamesAndTheExtraOnes) {
  auto identity = issue_endpoint_identity(push_pki().ca, {"127.0.0.1", "api.push.apple.com", "apns.test"});
  ASSERT_TRUE(identity.ok()) << identity.message();
  auto config = endpoint_config();
  config.tls = *identity;
  FakeApns endpoint(config);
  const auto port = endpoint.start();
  ASSERT_TRUE(port.ok());
  for (const std::string name : {"api.push.apple.com", "api.sandbox.push.apple.com", "api.development.push.apple.com",
                                 "apns.test", "127.0.0.1"}) {
    auto client = client_config(*port);
    client.url = "https://" + name;
    client.connect_to = "127.0.0.1:" + std::to_string(*port);
    client.certificate = push_pki().push_certificate;
    const auto result = ApnsClient(client).send(ApnsPush::mdm(kToken, kMagic, kTopic));
    EXPECT_TRUE(result.ok()) << name << ": " << apns_error_name(result.error) << " " << result.error_detail;
  }
  auto stranger = client_config(*port);
  stranger.url = "https://push.example.com";
  stranger.connect_to = "127.0.0.1:" + std::to_string(*port);
  EXPECT_EQ(ApnsClient(stranger).send(ApnsPush::mdm(kToken, kMagic, kTopic)).error, ApnsError::tls_handshake_failed);
}

TEST_F(Loopback, TheClientReachesApplesNameThroughConnectTo) {
  // A hosts override for one client: the name Apple's, the address loopback.
  auto config = certificate_client();
  config.url = "https://api.push.apple.com";
  config.connect_to = "127.0.0.1:" + std::to_string(port);
  const auto result = ApnsClient(config).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  ASSERT_TRUE(result.ok()) << result.error_detail;
  EXPECT_EQ(endpoint->pushes_since(0).front().authority, "api.push.apple.com");
}

}  // namespace
}  // namespace mdmc::push
