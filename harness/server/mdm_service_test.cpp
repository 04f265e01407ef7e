#include "harness/server/mdm_service.hpp"

#include <gtest/gtest.h>

#include "harness/protocol/messages.hpp"

#include <set>

namespace mdmc::server {
namespace {

using protocol::Status;

const std::string kUdid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
const protocol::UserFacts kAlice{"A11CE000-0000-4000-8000-000000000001", "alice", "Alice"};

class ServiceTest : public ::testing::Test {
 protected:
  explicit ServiceTest(Config config = {}) : service_(std::move(config)) {}

  net::ServerResponse check_in(const plist::Dict& body) {
    return service_.handle({"PUT", "/checkin", {{"Content-Type", "application/x-apple-aspen-mdm-checkin"}},
                            plist::to_xml(plist::Value(body)), "test"});
  }
  net::ServerResponse report(Status status, const std::string& uuid = {}, bool user = false,
                             protocol::UserFlags flags = {}) {
    protocol::Channel channel{kUdid, user ? kAlice.user_id : ""};
    auto body = protocol::report(channel, user ? &kAlice : nullptr, {status, uuid, {}}, flags);
    return service_.handle({"PUT", "/mdm", {}, plist::to_xml(plist::Value(body)), "test"});
  }
  net::ServerResponse enqueue(const std::string& id, const std::string& uuid) {
    return service_.handle({"PUT", "/v1/enqueue/" + id, {},
                            plist::to_xml(plist::Value(protocol::make_command(uuid, "ProfileList").body)), "test"});
  }
  void enroll() {
    protocol::DeviceFacts d;
    d.udid = kUdid;
    d.topic = "topic";
    ASSERT_EQ(check_in(protocol::authenticate(d)).status, 200);
    ASSERT_EQ(check_in(protocol::token_update(d, {"tok", "magic"})).status, 200);
    ASSERT_EQ(check_in(protocol::token_update(d, {"utok", "umagic"}, &kAlice)).status, 200);
  }
  static std::string uuid_in(const net::ServerResponse& r) {
    auto parsed = plist::parse(r.body);
    if (!parsed) return "";
    auto cmd = protocol::decode_command(*parsed);
    return protocol::decoded_value(cmd) ? protocol::decoded_value(cmd)->uuid : "";
  }

  MdmService service_;
};

TEST_F(ServiceTest, UnknownDeviceGets403UnrecognizedDevice) {
  auto r = report(Status::idle);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("com.apple.unrecognized.device"), std::string::npos);
}

TEST_F(ServiceTest, MalformedPlistGets400) {
  auto r = service_.handle({"PUT", "/mdm", {}, "<plist><dict><key>x", "test"});
  EXPECT_EQ(r.status, 400);
}

TEST_F(ServiceTest, IdleWithNothingQueuedGetsAnEmptyBody) {
  enroll();
  auto r = report(Status::idle);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(ServiceTest, UserCommandGoesOnlyToTheUserChannel) {
  enroll();
  ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C1").status, 200);
  EXPECT_TRUE(report(Status::idle).body.empty());
  EXPECT_EQ(uuid_in(report(Status::idle, {}, true)), "C1");
}

TEST_F(ServiceTest, EnqueueToAnUnknownChannelIs404) {
  EXPECT_EQ(enqueue("NOPE", "C1").status, 404);
}

TEST_F(ServiceTest, NotNowHoldsBackForTheSeriesAndRedeliversInTheNext) {
  enroll();
  ASSERT_EQ(enqueue(kUdid, "C1").status, 200);
  ASSERT_EQ(enqueue(kUdid, "C2").status, 200);
  EXPECT_EQ(uuid_in(report(Status::idle)), "C1");
  EXPECT_EQ(uuid_in(report(Status::not_now, "C1")), "C2");
  auto end = report(Status::not_now, "C2");
  EXPECT_EQ(end.status, 200);
  EXPECT_TRUE(end.body.empty());
  EXPECT_EQ(uuid_in(report(Status::idle)), "C1");
  EXPECT_EQ(uuid_in(report(Status::acknowledged, "C1")), "C2");
  EXPECT_TRUE(report(Status::acknowledged, "C2").body.empty());
  EXPECT_TRUE(report(Status::idle).body.empty());
}

TEST_F(ServiceTest, UnmanagedNetworkUserGets410) {
  enroll();
  protocol::UserFacts nora{"N0RA", "nora", "Nora"};
  EXPECT_EQ(check_in(protocol::user_authenticate(kUdid, nora, std::nullopt)).status, 410);
}

class ManagedNetworkUserTest : public ServiceTest {
 protected:
  ManagedNetworkUserTest() : ServiceTest(Config{Fault::none, {"N1CK"}, "challenge-1", {}}) {}
};

TEST_F(ManagedNetworkUserTest, GetsDigestChallengeThenAcceptsTheResponse) {
  enroll();
  protocol::UserFacts nick{"N1CK", "nick", "Nick"};
  auto first = check_in(protocol::user_authenticate(kUdid, nick, std::nullopt));
  ASSERT_EQ(first.status, 200);
  auto parsed = plist::parse(first.body);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->string_at("DigestChallenge"), "challenge-1");
  EXPECT_EQ(check_in(protocol::user_authenticate(kUdid, nick, std::string("resp"))).status, 200);
}

TEST(Faults, EveryModeHasAUniqueNameAndTheCorrectServerBreaksNothing) {
  std::set<std::string_view> names;
  for (const auto& f : fault_catalog()) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_EQ(fault_from_name(f.name), f.fault);
    EXPECT_EQ(f.breaks.empty(), f.fault == Fault::none) << f.name;
  }
  EXPECT_FALSE(fault_from_name("no-such-fault"));
}

}  // namespace
}  // namespace mdmc::server
