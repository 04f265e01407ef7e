// The reference server as a push provider, against a real FakeApns on loopback over TLS with a
// test CA, authenticated by a push certificate or by a provider token. Every wait is bounded by
// FakeApns::wait_for's deadline or a count.
#include "harness/server/push_sender.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/net/http_client.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/push/push_test_support.hpp"
#include "harness/server/reference_server.hpp"

namespace mdmc::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using push::testing::kKeyId;
using push::testing::kTeamId;
using push::testing::kTopic;
using push::testing::push_pki;

const std::string kUdid = "5A1B7C3D-0E2F-4A6B-8C9D-1E2F3A4B5C6D";
const protocol::UserFacts kAlice{"A11CE000-0000-4000-8000-000000000001", "alice", "Alice"};
const protocol::UserFacts kBob{"B0B00000-0000-4000-8000-000000000002", "bob", "Bob"};
// Tokens are 32 bytes, as APNs' (the fake APNs checks the length of their hex).
const std::string kDeviceToken(32, '\x11');
const std::string kAliceToken(32, '\x22');
const std::string kBobToken(32, '\x33');
const std::string kNewDeviceToken(32, '\x44');
const std::string kDeviceMagic = "DEVICE-MAGIC-0001";
const std::string kAliceMagic = "ALICE-MAGIC-0002";
const std::string kBobMagic = "BOB-MAGIC-0003";

std::string hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : bytes) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xf];
  }
  return out;
}

net::ServerRequest put(std::string target, std::string body, bool check_in = false) {
  net::ServerRequest r;
  r.method = "PUT";
  r.target = std::move(target);
  if (check_in) r.headers = {{"Content-Type", "application/x-apple-aspen-mdm-checkin"}};
  r.body = std::move(body);
  r.peer = "test";
  return r;
}

enum class Auth { certificate, token };

PushSettings settings_for(std::uint16_t port, Auth auth) {
  PushSettings push;
  push.apns_url = "https://127.0.0.1:" + std::to_string(port);
  push.trusted_ca_pem = push_pki().ca.cert_pem;
  if (auth == Auth::certificate) {
    push.certificate = push_pki().push_certificate;
  } else {
    push.provider_key_pem = push_pki().token_key.key_pem;
    push.key_id = kKeyId;
    push.team_id = kTeamId;
  }
  push.first_backoff = 200ms;
  push.max_backoff = 2000ms;
  push.max_retries = 3;
  push.timeout = 2000ms;
  return push;
}

// MdmService wired to a PushSender as ReferenceServer wires them, pushing to a FakeApns.
class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto port = apns_.start();
    ASSERT_TRUE(port.ok()) << port.message();
    port_ = *port;
  }

  // Builds the service and the sender; `start` false leaves the worker off (a flood test).
  void make(Auth auth = Auth::certificate, PushFault fault = PushFault::none, bool start = true,
            std::size_t max_queued = 4096) {
    Config config;
    config.push = settings_for(port_, auth);
    config.push.fault = fault;
    config.push.max_queued = max_queued;
    service_ = std::make_unique<MdmService>(config);
    sender_ = std::make_unique<PushSender>(
        config.push, [this](const std::string& id) { return service_->push_target(id); },
        [this](const std::string& line) {
          std::lock_guard lock(log_mutex_);
          log_.push_back(line);
        });
    service_->set_push_requester([this](const PushTarget& target) { sender_->request(target); });
    if (start) sender_->start();
  }
  void TearDown() override {
    if (sender_) sender_->stop();
  }

  int check_in(const plist::Dict& body) {
    return service_->handle(put("/checkin", plist::to_xml(plist::Value(body)), true)).status;
  }
  protocol::DeviceFacts device() const {
    protocol::DeviceFacts d;
    d.udid = kUdid;
    d.topic = kTopic;
    return d;
  }
  void enroll(bool with_users = true) {
    ASSERT_EQ(check_in(protocol::authenticate(device())), 200);
    ASSERT_EQ(check_in(protocol::token_update(device(), {kDeviceToken, kDeviceMagic})), 200);
    if (!with_users) return;
    ASSERT_EQ(check_in(protocol::token_update(device(), {kAliceToken, kAliceMagic}, &kAlice)), 200);
    ASSERT_EQ(check_in(protocol::token_update(device(), {kBobToken, kBobMagic}, &kBob)), 200);
  }
  int enqueue(const std::string& id, const std::string& uuid, const std::string& query = {}) {
    auto body = plist::to_xml(plist::Value(protocol::make_command(uuid, "ProfileList").body));
    return service_->handle(put("/v1/enqueue/" + id + query, body)).status;
  }
  std::optional<push::Push> next_push(std::uint64_t from, std::chrono::milliseconds within = 3000ms,
                                      const std::string& token = {}) {
    return apns_.wait_for([&](const push::Push& p) { return token.empty() || p.device_token == token; }, from,
                          Clock::now() + within);
  }
  static std::string header(const push::Push& p, const std::string& name) {
    for (const auto& h : p.headers) {
      if (h.name == name) return h.value;
    }
    return "<absent>";
  }

  push::FakeApns apns_{push::testing::endpoint_config()};
  std::uint16_t port_ = 0;
  std::unique_ptr<MdmService> service_;
  std::unique_ptr<PushSender> sender_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

class PushBothAuthTest : public PushTest, public ::testing::WithParamInterface<Auth> {};

TEST_P(PushBothAuthTest, ADeviceCommandPushesToTheDeviceTokenWithItsMagicAndTopic) {
  make(GetParam());
  enroll();
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p) << "no push within 3 s";
  EXPECT_EQ(p->status, 200) << p->reason << " " << p->detail;
  EXPECT_EQ(p->device_token, hex(kDeviceToken));
  EXPECT_EQ(p->push_magic, kDeviceMagic);
  EXPECT_EQ(p->body, R"({"mdm":")" + kDeviceMagic + R"("})");
  EXPECT_EQ(header(*p, "apns-topic"), kTopic);
  EXPECT_EQ(header(*p, "apns-push-type"), "mdm");
  EXPECT_EQ(header(*p, "apns-priority"), "10");
  EXPECT_EQ(header(*p, "apns-expiration"), "0");
  EXPECT_EQ(p->auth, GetParam() == Auth::certificate ? push::AuthMethod::certificate : push::AuthMethod::token);
  // One push for one command, and nothing more.
  EXPECT_FALSE(next_push(p->index + 1, 300ms));
}

TEST_P(PushBothAuthTest, AUserCommandPushesToThatUsersTokenOnly) {
  make(GetParam());
  enroll();
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200) << p->reason;
  EXPECT_EQ(p->device_token, hex(kAliceToken));
  EXPECT_EQ(p->push_magic, kAliceMagic);
  EXPECT_FALSE(next_push(from, 400ms, hex(kDeviceToken)));
  EXPECT_FALSE(next_push(from, 10ms, hex(kBobToken)));
  EXPECT_EQ(apns_.pushes_since(from).size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Auth, PushBothAuthTest, ::testing::Values(Auth::certificate, Auth::token),
                         [](const auto& param_info) {
                           return param_info.param == Auth::certificate ? "certificate" : "token";
                         });

TEST_F(PushTest, ANewTokenUpdateMovesPushesToTheNewToken) {
  make();
  enroll(false);
  ASSERT_EQ(check_in(protocol::token_update(device(), {kNewDeviceToken, "NEW-MAGIC"})), 200);
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kNewDeviceToken));
  EXPECT_EQ(p->push_magic, "NEW-MAGIC");
}

TEST_F(PushTest, NoPushQueuesWithoutPushing) {
  make();
  enroll(false);
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1", "?nopush=1"), 200);
  EXPECT_FALSE(next_push(from, 500ms));
  EXPECT_EQ(sender_->stats().requested, 0u);
  // The command is queued all the same: the next Idle gets it.
  ASSERT_EQ(enqueue(kUdid, "C2"), 200);
  EXPECT_TRUE(next_push(from));
}

TEST_F(PushTest, UnregisteredStopsPushesUntilTheNextTokenUpdate) {
  make();
  enroll(false);
  apns_.script(hex(kDeviceToken), push::ScriptedAnswer::unregistered(std::chrono::system_clock::now()));
  auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto first = next_push(from);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 410);
  // Further commands push nothing, however many, and 410 is not retried.
  from = apns_.next_index();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(enqueue(kUdid, "D" + std::to_string(i)), 200);
  EXPECT_FALSE(next_push(from, 600ms));
  EXPECT_GE(sender_->stats().skipped_unregistered, 1u);
  // The same token again in a new TokenUpdate: pushes resume.
  apns_.clear_script(hex(kDeviceToken));
  ASSERT_EQ(check_in(protocol::token_update(device(), {kDeviceToken, kDeviceMagic})), 200);
  ASSERT_EQ(enqueue(kUdid, "E1"), 200);
  auto again = next_push(from);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

// 429 and 503 until cleared: the first push and max_retries (3) retries, 200, 400 and 800 ms
// apart, then it gives up; a new command meanwhile adds no push.
void expect_backoff(push::FakeApns& apns, push::ScriptedAnswer answer,
                    const std::function<int(const std::string&)>& enqueue, const PushSender& sender) {
  apns.script(hex(kDeviceToken), answer);
  const auto from = apns.next_index();
  ASSERT_EQ(enqueue("C1"), 200);
  ASSERT_TRUE(apns.wait_for([](const push::Push&) { return true; }, from, Clock::now() + 3s));
  ASSERT_EQ(enqueue("C2"), 200);
  // The schedule takes 0.2 + 0.4 + 0.8 s; the fourth push, then nothing for longer than the
  // next step (1.6 s) would have been.
  ASSERT_TRUE(apns.wait_for([&](const push::Push& p) { return p.index >= from + 3; }, from, Clock::now() + 6s));
  EXPECT_FALSE(apns.wait_for([&](const push::Push& p) { return p.index >= from + 4; }, from, Clock::now() + 2000ms));
  const auto pushes = apns.pushes_since(from);
  ASSERT_EQ(pushes.size(), 4u);
  const std::chrono::milliseconds least[] = {200ms, 400ms, 800ms};
  for (std::size_t i = 1; i < pushes.size(); ++i) {
    EXPECT_GE(pushes[i].received - pushes[i - 1].received, least[i - 1] - 20ms) << "retry " << i;
  }
  const auto settled = Clock::now() + 3s;
  while (sender.stats().given_up == 0 && Clock::now() < settled) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(sender.stats().given_up, 1u);
}

TEST_F(PushTest, TooManyRequestsBacksOffExponentiallyWithBoundedRetries) {
  make();
  enroll(false);
  expect_backoff(
      apns_, push::ScriptedAnswer::too_many_requests(),
      [this](const std::string& uuid) { return enqueue(kUdid, uuid); }, *sender_);
}

TEST_F(PushTest, ServiceUnavailableBacksOffExponentiallyWithBoundedRetries) {
  make(Auth::token);
  enroll(false);
  expect_backoff(
      apns_, push::ScriptedAnswer::service_unavailable(),
      [this](const std::string& uuid) { return enqueue(kUdid, uuid); }, *sender_);
}

TEST_F(PushTest, CheckOutStopsPushesToTheDeviceAndItsUsers) {
  make();
  enroll();
  apns_.script(hex(kDeviceToken), push::ScriptedAnswer::service_unavailable());
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  ASSERT_TRUE(next_push(from));
  ASSERT_EQ(check_in(protocol::check_out(device())), 200);
  // The retry pending at CheckOut is dropped; commands for the device or its users are refused.
  EXPECT_EQ(enqueue(kUdid, "C2"), 404);
  EXPECT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C3"), 404);
  EXPECT_FALSE(next_push(from + 1, 1000ms));
  EXPECT_EQ(sender_->stats().skipped_gone, 1u);
}

TEST_F(PushTest, TheQueueBoundHoldsUnderAFloodOfEnqueues) {
  make(Auth::certificate, PushFault::none, /*start=*/false, /*max_queued=*/2);
  enroll();
  // Three channels, 300 commands: one push per channel waits at most, and only 2 fit.
  const std::string ids[] = {kUdid, kUdid + ":" + kAlice.user_id, kUdid + ":" + kBob.user_id};
  for (int i = 0; i < 300; ++i) ASSERT_EQ(enqueue(ids[i % 3], "F" + std::to_string(i)), 200);
  EXPECT_EQ(sender_->queued(), 2u);
  const auto stats = sender_->stats();
  EXPECT_EQ(stats.requested, 300u);
  EXPECT_EQ(stats.dropped_full, 100u);
  EXPECT_EQ(stats.coalesced, 198u);
  {
    std::lock_guard lock(log_mutex_);
    ASSERT_EQ(log_.size(), 1u);  // one line for the first drop, not one per drop
    EXPECT_NE(log_.front().find("queue full"), std::string::npos);
  }
  const auto from = apns_.next_index();
  sender_->start();
  ASSERT_TRUE(next_push(from));
  EXPECT_FALSE(next_push(from + 2, 500ms));
  EXPECT_EQ(apns_.pushes_since(from).size(), 2u);
}

TEST_F(PushTest, StopWithPushesInFlightJoinsWithinTheTimeout) {
  // A listener that never accepts: connects succeed (the backlog), the TLS handshake never ends.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  make();
  enroll();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C2"), 200);
  std::this_thread::sleep_for(200ms);  // the worker is in the handshake by now
  const auto start = Clock::now();
  sender_->stop();
  const auto took = Clock::now() - start;
  ::close(listener);
  // Bounded by PushSettings::timeout (2 s) for the step in flight.
  EXPECT_LT(took, 3000ms);
  EXPECT_EQ(sender_->queued(), 0u);
}

// How fast the sender pushes to the fake APNs: 1000 devices, a command each, all queued before
// the worker starts; recorded as pushes_per_second (--gtest_output=json:FILE).
TEST_F(PushTest, ThroughputToTheFakeApns) {
  constexpr int kDevices = 1000;
  make(Auth::certificate, PushFault::none, /*start=*/false);
  for (int i = 0; i < kDevices; ++i) {
    protocol::DeviceFacts d;
    d.udid = fmt::format("DEVICE-{:06}", i);
    d.topic = kTopic;
    ASSERT_EQ(check_in(protocol::authenticate(d)), 200);
    std::string token(32, '\0');
    std::memcpy(token.data(), &i, sizeof i);
    ASSERT_EQ(check_in(protocol::token_update(d, {token, "M"})), 200);
    ASSERT_EQ(enqueue(d.udid, "C"), 200);
  }
  const auto from = apns_.next_index();
  const auto start = Clock::now();
  sender_->start();
  auto last =
      apns_.wait_for([&](const push::Push& p) { return p.index >= from + kDevices - 1; }, from, Clock::now() + 30s);
  ASSERT_TRUE(last) << apns_.pushes_since(from).size() << " pushes in 30 s";
  const double seconds = std::chrono::duration<double>(last->received - start).count();
  RecordProperty("pushes_per_second", std::to_string(static_cast<int>(kDevices / seconds)));
  std::printf("%d pushes in %.3f s: %.0f pushes/s\n", kDevices, seconds, kDevices / seconds);
  // The last answers reach the sender just after the fake APNs logs the last push.
  const auto settled = Clock::now() + 5s;
  while (sender_->stats().accepted < kDevices && Clock::now() < settled) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(sender_->stats().accepted, static_cast<std::uint64_t>(kDevices));
}

// ReferenceServer wires the sender to the service: a command queued over HTTP pushes.
TEST_F(PushTest, TheReferenceServerPushesWhenACommandIsQueuedOverHttp) {
  Config config;
  config.push = settings_for(port_, Auth::certificate);
  ReferenceServer server(config);
  auto bound = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(bound.ok()) << bound.message();
  server.start();
  net::HttpClient client;
  const std::string base = "http://127.0.0.1:" + std::to_string(*bound);
  auto send = [&](const std::string& path, const plist::Dict& body, const std::string& type) {
    auto exchange = client.send({"PUT", base + path, {{"Content-Type", type}}, plist::to_xml(plist::Value(body))});
    return exchange.response ? exchange.response->status : 0;
  };
  const std::string check_in_type = "application/x-apple-aspen-mdm-checkin";
  ASSERT_EQ(send("/checkin", protocol::authenticate(device()), check_in_type), 200);
  ASSERT_EQ(send("/checkin", protocol::token_update(device(), {kDeviceToken, kDeviceMagic}), check_in_type), 200);
  const auto from = apns_.next_index();
  ASSERT_EQ(send("/v1/enqueue/" + kUdid, protocol::make_command("C1", "ProfileList").body, "application/xml"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kDeviceToken));
  server.stop();
  ASSERT_TRUE(server.pushes());
  EXPECT_EQ(server.pushes()->stats().accepted, 1u);
}

TEST_F(PushTest, CredentialsThatDoNotLoadAreNotRetried) {
  make();
  enroll(false);
  PushSettings broken = settings_for(port_, Auth::certificate);
  pki::Identity garbage;
  garbage.cert_pem = "not a certificate";
  garbage.key_pem = "not a key";
  broken.certificate = garbage;
  sender_->stop();
  sender_ = std::make_unique<PushSender>(
      broken, [this](const std::string& id) { return service_->push_target(id); },
      [this](const std::string& line) {
        std::lock_guard lock(log_mutex_);
        log_.push_back(line);
      });
  sender_->start();
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  const auto settled = Clock::now() + 3s;
  while (sender_->stats().failed == 0 && Clock::now() < settled) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(sender_->stats().failed, 1u);
  EXPECT_EQ(sender_->stats().retries, 0u);
  EXPECT_EQ(sender_->queued(), 0u);
  EXPECT_TRUE(apns_.pushes_since(from).empty());
}

// Each PushFault, shown against the fake APNs.

TEST_F(PushTest, FaultUserTokenOnDevicePushesTheDevicesCommandsToTheUser) {
  make(Auth::certificate, PushFault::user_token_on_device);
  enroll(false);
  ASSERT_EQ(check_in(protocol::token_update(device(), {kAliceToken, kAliceMagic}, &kAlice)), 200);
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kAliceToken));
  EXPECT_EQ(p->push_magic, kAliceMagic);
}

TEST_F(PushTest, FaultFirstTokenOnlyKeepsPushingTheOldToken) {
  make(Auth::certificate, PushFault::first_token_only);
  enroll(false);
  ASSERT_EQ(check_in(protocol::token_update(device(), {kNewDeviceToken, "NEW-MAGIC"})), 200);
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kDeviceToken));
  EXPECT_EQ(p->push_magic, kDeviceMagic);
}

TEST_F(PushTest, FaultWrongMagicReversesTheDevicesOwnAndLeavesUsersAlone) {
  make(Auth::certificate, PushFault::wrong_magic);
  enroll();
  auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kDeviceToken));
  EXPECT_EQ(p->push_magic, std::string(kDeviceMagic.rbegin(), kDeviceMagic.rend()));
  from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C2"), 200);
  p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kAliceToken));
  EXPECT_EQ(p->push_magic, kAliceMagic);
}

TEST_F(PushTest, FaultWrongTypeIsTakenByApnsButIsNoMdmPush) {
  make(Auth::certificate, PushFault::wrong_type);
  enroll(false);
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200);
  EXPECT_EQ(header(*p, "apns-push-type"), "alert");
  EXPECT_EQ(push::mdm_push_problems(p->headers, p->body), std::vector<std::string>{"apns-push-type alert, not mdm"});
}

TEST_F(PushTest, FaultPushAfterUnregisteredKeepsPushing) {
  make(Auth::certificate, PushFault::push_after_unregistered);
  enroll(false);
  apns_.script(hex(kDeviceToken), push::ScriptedAnswer::unregistered(std::chrono::system_clock::now()));
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  auto first = next_push(from);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 410);
  ASSERT_EQ(enqueue(kUdid, "C2"), 200);
  auto second = next_push(first->index + 1);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->device_token, hex(kDeviceToken));
}

TEST_F(PushTest, FaultTightRetryHammersTheToken) {
  make(Auth::certificate, PushFault::tight_retry);
  enroll(false);
  apns_.script(hex(kDeviceToken), push::ScriptedAnswer::too_many_requests());
  const auto from = apns_.next_index();
  ASSERT_EQ(enqueue(kUdid, "C1"), 200);
  // 51 pushes (the first and 50 retries), well within a second of the first.
  auto last = apns_.wait_for([&](const push::Push& p) { return p.index >= from + 50; }, from, Clock::now() + 5s);
  ASSERT_TRUE(last);
  const auto first = apns_.pushes_since(from).front();
  EXPECT_LT(last->received - first.received, 1000ms);
}

TEST_F(PushTest, FaultPushAfterCheckoutStillPushesTheCheckedOutDevice) {
  make(Auth::certificate, PushFault::push_after_checkout);
  enroll();
  ASSERT_EQ(check_in(protocol::check_out(device())), 200);
  const auto from = apns_.next_index();
  EXPECT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C1"), 404);
  auto p = next_push(from);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device_token, hex(kAliceToken));
}

}  // namespace
}  // namespace mdmc::server
