#include "harness/server/mdm_service.hpp"

#include <gtest/gtest.h>

#include "harness/pki/pki.hpp"
#include "harness/protocol/messages.hpp"

#include <set>

namespace mdmc::server {
namespace {

using protocol::Status;

const std::string kUdid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
const protocol::UserFacts kAlice{"A11CE000-0000-4000-8000-000000000001", "alice", "Alice"};

net::ServerRequest put(std::string target, net::Headers headers, std::string body) {
  net::ServerRequest r;
  r.method = "PUT";
  r.target = std::move(target);
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.peer = "test";
  return r;
}

class ServiceTest : public ::testing::Test {
 protected:
  explicit ServiceTest(Config config = {}) : service_(std::move(config)) {}

  net::ServerResponse check_in(const plist::Dict& body) {
    return service_.handle(put("/checkin", {{"Content-Type", "application/x-apple-aspen-mdm-checkin"}},
                            plist::to_xml(plist::Value(body))));
  }
  net::ServerResponse report(Status status, const std::string& uuid = {}, bool user = false,
                             protocol::UserFlags flags = {}) {
    protocol::Channel channel{kUdid, user ? kAlice.user_id : ""};
    auto body = protocol::report(channel, user ? &kAlice : nullptr, {status, uuid, {}}, flags);
    return service_.handle(put("/mdm", {}, plist::to_xml(plist::Value(body))));
  }
  net::ServerResponse enqueue(const std::string& id, const std::string& uuid) {
    return service_.handle(put("/v1/enqueue/" + id, {},
                            plist::to_xml(plist::Value(protocol::make_command(uuid, "ProfileList").body))));
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
  auto r = service_.handle(put("/mdm", {}, "<plist><dict><key>x"));
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
  ManagedNetworkUserTest() : ServiceTest(managed_config()) {}
  static Config managed_config() {
    Config config;
    config.managed_network_users = {"N1CK"};
    config.digest_challenge = "challenge-1";
    return config;
  }
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

// Identity binding, as the server sees it: Mdm-Signature in signature mode, the verified
// client certificate in mtls mode.
class IdentityTest : public ::testing::Test {
 protected:
  IdentityTest() : ca_(*pki::create_test_ca("test CA")), service_(config(IdentityMode::signature)) {
    mine_ = *pki::issue_device_identity(ca_, kUdid, pki::KeyType::ec_p256);
    other_ = *pki::issue_device_identity(ca_, "other", pki::KeyType::ec_p256);
  }
  Config config(IdentityMode mode) {
    Config c;
    c.identity_mode = mode;
    c.client_ca_pem = ca_.cert_pem;
    return c;
  }
  static net::ServerRequest signed_put(const std::string& target, const std::string& body, const pki::Identity& id,
                                       const std::string& content_type = "application/x-apple-aspen-mdm-checkin") {
    return put(target, {{"Content-Type", content_type}, {"Mdm-Signature", *pki::mdm_signature(id, body)}}, body);
  }
  protocol::DeviceFacts device() const {
    protocol::DeviceFacts d;
    d.udid = kUdid;
    d.topic = "topic";
    return d;
  }
  static std::string xml(const plist::Dict& d) { return plist::to_xml(plist::Value(d)); }

  pki::Identity ca_;
  pki::Identity mine_;
  pki::Identity other_;
  MdmService service_;
};

TEST_F(IdentityTest, SignedRequestsFromTheEnrolledIdentityAreServed) {
  EXPECT_EQ(service_.handle(signed_put("/checkin", xml(protocol::authenticate(device())), mine_)).status, 200);
  EXPECT_EQ(service_.handle(signed_put("/checkin", xml(protocol::token_update(device(), {"t", "m"})), mine_)).status, 200);
  auto idle = xml(protocol::report({kUdid, ""}, nullptr, {Status::idle, {}, {}}));
  EXPECT_EQ(service_.handle(signed_put("/mdm", idle, mine_, "application/x-apple-aspen-mdm")).status, 200);
}

TEST_F(IdentityTest, ATamperedBodyIsRefused) {
  auto body = xml(protocol::authenticate(device()));
  auto request = signed_put("/checkin", body, mine_);
  request.body[request.body.size() / 2] ^= 0x01;
  auto r = service_.handle(request);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("digest mismatch"), std::string::npos) << r.body;
}

TEST_F(IdentityTest, AMissingSignatureIsRefused) {
  EXPECT_EQ(service_.handle(put("/checkin", {}, xml(protocol::authenticate(device())))).status, 400);
}

TEST_F(IdentityTest, ARequestUnderAnotherDevicesIdentityIsRefused) {
  ASSERT_EQ(service_.handle(signed_put("/checkin", xml(protocol::authenticate(device())), mine_)).status, 200);
  ASSERT_EQ(service_.handle(signed_put("/checkin", xml(protocol::token_update(device(), {"t", "m"})), mine_)).status, 200);
  auto idle = xml(protocol::report({kUdid, ""}, nullptr, {Status::idle, {}, {}}));
  auto r = service_.handle(signed_put("/mdm", idle, other_, "application/x-apple-aspen-mdm"));
  EXPECT_EQ(r.status, 403);
  auto token = xml(protocol::token_update(device(), {"t2", "m2"}, &kAlice));
  EXPECT_EQ(service_.handle(signed_put("/checkin", token, other_)).status, 403);
}

TEST_F(IdentityTest, InMtlsModeTheClientCertificateIsTheIdentity) {
  MdmService mtls(config(IdentityMode::mtls));
  auto request = put("/checkin", {}, xml(protocol::authenticate(device())));
  EXPECT_EQ(mtls.handle(request).status, 403) << "no client certificate";
  request.peer_certificate_der = *pki::certificate_der(mine_.cert_pem);
  EXPECT_EQ(mtls.handle(request).status, 200);
  auto token = put("/checkin", {}, xml(protocol::token_update(device(), {"t", "m"})));
  token.peer_certificate_der = *pki::certificate_der(other_.cert_pem);
  EXPECT_EQ(mtls.handle(token).status, 403);
  token.peer_certificate_der = *pki::certificate_der(mine_.cert_pem);
  EXPECT_EQ(mtls.handle(token).status, 200);
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
