#include "harness/server/mdm_service.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness/pki/pki.hpp"
#include "harness/protocol/messages.hpp"

#include <chrono>
#include <latch>
#include <map>
#include <set>
#include <thread>
#include <utility>

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
    return service_.handle(
        put("/v1/enqueue/" + id, {}, plist::to_xml(plist::Value(protocol::make_command(uuid, "ProfileList").body))));
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
    return cmd ? cmd->uuid : "";
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

TEST_F(ServiceTest, EnqueueToAnUnknownChannelIs404) { EXPECT_EQ(enqueue("NOPE", "C1").status, 404); }

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

// The handler fuzzer resumes sessions from copies: a copy must answer as the original would,
// and the two must not share what they hold.
TEST_F(ServiceTest, ACopyAnswersAsTheOriginalWouldAndHoldsItsOwnState) {
  enroll();
  ASSERT_EQ(enqueue(kUdid, "C1").status, 200);
  ASSERT_EQ(enqueue(kUdid, "C2").status, 200);
  EXPECT_EQ(uuid_in(report(Status::idle)), "C1");
  MdmService copy(service_);
  auto report_to = [](MdmService& service, Status status, const std::string& uuid) {
    auto body = protocol::report(protocol::Channel{kUdid, ""}, nullptr, {status, uuid, {}}, {});
    return service.handle(put("/mdm", {}, plist::to_xml(plist::Value(body))));
  };
  // The copy finishes the series; the original still has both commands to give.
  EXPECT_EQ(uuid_in(report_to(copy, Status::acknowledged, "C1")), "C2");
  EXPECT_TRUE(report_to(copy, Status::acknowledged, "C2").body.empty());
  EXPECT_TRUE(report_to(copy, Status::idle, {}).body.empty());
  EXPECT_EQ(copy.footprint().queued_commands, 0U);
  EXPECT_EQ(service_.footprint().queued_commands, 2U);
  EXPECT_EQ(uuid_in(report(Status::acknowledged, "C1")), "C2");
  // What the original holds after the copy is its own: a device it enrolls is not the copy's.
  EXPECT_EQ(copy.footprint().devices, 1U);
  protocol::DeviceFacts other;
  other.udid = "0E5C0A1D-0000-4000-8000-00000000000B";
  other.topic = "topic";
  ASSERT_EQ(check_in(protocol::authenticate(other)).status, 200);
  EXPECT_EQ(service_.footprint().devices, 2U);
  EXPECT_EQ(copy.footprint().devices, 1U);
}

// The declarative side: a declaration put, put in a set, the set assigned to the device channel.
class DeclarativeTest : public ServiceTest {
 protected:
  net::ServerResponse admin(std::string method, std::string target, std::string body = {}) {
    auto r = put(std::move(target), {}, std::move(body));
    r.method = std::move(method);
    return service_.handle(r);
  }
  net::ServerResponse declarative(const std::string& endpoint, bool user = false,
                                  std::optional<std::string> data = {}) {
    plist::Dict body{{"MessageType", plist::Value(std::string("DeclarativeManagement"))},
                     {"Endpoint", plist::Value(endpoint)},
                     {"UDID", plist::Value(kUdid)}};
    if (user) body["UserID"] = plist::Value(kAlice.user_id);
    if (data) body["Data"] = plist::Value(plist::Data{*data});
    return check_in(body);
  }
  static nlohmann::json json_of(const net::ServerResponse& r) { return nlohmann::json::parse(r.body, nullptr, false); }
  void put_and_assign(const std::string& id, const std::string& channel) {
    auto declared = admin("PUT", "/v1/declarations",
                          nlohmann::json{{"Type", "com.apple.configuration.passcode.settings"},
                                         {"Identifier", id},
                                         {"Payload", {{"MinimumLength", 6}}}}
                              .dump());
    ASSERT_EQ(declared.status, 200) << declared.body;
    ASSERT_EQ(admin("PUT", "/v1/set-declarations/" + id + "-set?declaration=" + id).status, 200);
    ASSERT_EQ(admin("PUT", "/v1/enrollment-sets/" + channel + "?set=" + id + "-set").status, 200);
  }
};

TEST_F(DeclarativeTest, AChannelSyncsWhatItsSetsHoldAndIsToldOfChanges) {
  enroll();
  const auto before = json_of(declarative("tokens"))["SyncTokens"]["DeclarationsToken"];
  put_and_assign("passcode", kUdid);

  // Told: a DeclarativeManagement command carrying the new tokens waits on the device channel.
  auto command = report(Status::idle);
  auto parsed = plist::parse(command.body);
  ASSERT_TRUE(parsed) << command.body;
  auto decoded = protocol::decode_command(*parsed);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->request_type, "DeclarativeManagement");
  const auto* data = parsed->find("Command")->as_dict()->find("Data")->second.as_data();
  ASSERT_TRUE(data);
  auto tokens = declarative("tokens");
  EXPECT_EQ(tokens.status, 200);
  EXPECT_EQ(net::find_header(tokens.headers, "Content-Type"), "application/json");
  const auto token = json_of(tokens)["SyncTokens"]["DeclarationsToken"];
  EXPECT_NE(token, before);
  EXPECT_EQ(nlohmann::json::parse(data->bytes)["SyncTokens"]["DeclarationsToken"], token);
  // The user channel was told nothing and holds nothing.
  EXPECT_TRUE(report(Status::idle, {}, true).body.empty());
  EXPECT_TRUE(json_of(declarative("declaration-items", true))["Declarations"]["Configurations"].empty());

  auto items = json_of(declarative("declaration-items"));
  ASSERT_EQ(items["Declarations"]["Configurations"].size(), 1u);
  EXPECT_EQ(items["DeclarationsToken"], token);
  auto served = declarative("declaration/configuration/passcode");
  ASSERT_EQ(served.status, 200);
  EXPECT_EQ(json_of(served)["ServerToken"], items["Declarations"]["Configurations"][0]["ServerToken"]);
  EXPECT_EQ(declarative("declaration/configuration/other").status, 404);
  EXPECT_EQ(declarative("declaration/asset/passcode").status, 404);
  EXPECT_EQ(declarative("declaration/configuration/passcode", true).status, 404);
  EXPECT_EQ(declarative("nonsense").status, 404);
}

TEST_F(DeclarativeTest, StatusReportsAreKeptAndMalformedOnesRefusedWith400) {
  enroll();
  const std::string report_json = R"({"StatusItems":{"management":{"declarations":{}}},"Errors":[]})";
  EXPECT_EQ(declarative("status", false, report_json).status, 200);
  auto kept = admin("GET", "/v1/status-report/" + kUdid);
  EXPECT_EQ(kept.status, 200);
  EXPECT_EQ(kept.body, report_json);
  EXPECT_EQ(declarative("status", false, std::string("{not json")).status, 400);
  EXPECT_EQ(declarative("status", false, std::string(R"({"Errors":[]})")).status, 400);
  EXPECT_EQ(declarative("status").status, 400);  // no Data
  EXPECT_EQ(admin("GET", "/v1/status-report/" + kUdid + ":" + kAlice.user_id).status, 404);
}

TEST_F(DeclarativeTest, TheAdminApiSaysWhatItRefusesAndWhatChanged) {
  enroll();
  EXPECT_EQ(admin("PUT", "/v1/declarations", "[]").status, 400);
  EXPECT_EQ(admin("PUT", "/v1/set-declarations/s?declaration=missing").status, 400);
  EXPECT_EQ(admin("PUT", "/v1/set-declarations/s").status, 400);
  EXPECT_EQ(admin("PATCH", "/v1/declarations").status, 405);
  put_and_assign("passcode", kUdid);
  EXPECT_EQ(json_of(admin("GET", "/v1/declarations")), nlohmann::json::array({"passcode"}));
  EXPECT_EQ(json_of(admin("GET", "/v1/enrollment-sets/" + kUdid)), nlohmann::json::array({"passcode-set"}));
  // A change with ?nonotify=1 moves the token and queues nothing more.
  (void)report(Status::idle);  // takes the first DeclarativeManagement command
  auto removed = admin("DELETE", "/v1/set-declarations/passcode-set?declaration=passcode&nonotify=1");
  ASSERT_EQ(removed.status, 200);
  EXPECT_EQ(json_of(removed)["channels"], nlohmann::json::array({kUdid}));
  EXPECT_TRUE(json_of(removed)["notified"].empty());
  EXPECT_EQ(admin("DELETE", "/v1/declarations/passcode").status, 200);
  EXPECT_EQ(admin("GET", "/v1/declarations/passcode").status, 404);
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
  EXPECT_EQ(service_.handle(signed_put("/checkin", xml(protocol::token_update(device(), {"t", "m"})), mine_)).status,
            200);
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
  ASSERT_EQ(service_.handle(signed_put("/checkin", xml(protocol::token_update(device(), {"t", "m"})), mine_)).status,
            200);
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

// Enrollment through the profile: GET /enroll, and identities from the SCEP server's CA. A
// second test CA stands in for scepserver's (scep_server_process_test.cpp runs the real one).
class EnrollmentTest : public ::testing::Test {
 protected:
  EnrollmentTest()
      : own_ca_(*pki::create_test_ca("own CA")),
        scep_ca_(*pki::create_test_ca("SCEP CA", pki::KeyType::rsa2048)),
        tls_ca_(*pki::create_test_ca("TLS CA")) {
    own_device_ = *pki::issue_device_identity(own_ca_, "own device", pki::KeyType::ec_p256);
    scep_device_ = *pki::issue_device_identity(scep_ca_, "mdmconform device 1234", pki::KeyType::rsa2048);
  }
  Config config(Fault fault = Fault::none, IdentityMode mode = IdentityMode::signature) const {
    Config c;
    c.fault = fault;
    c.identity_mode = mode;
    c.client_ca_pem = own_ca_.cert_pem;
    c.scep = ScepEnrollment{"http://127.0.0.1:18089/scep", "s3cret", scep_ca_.cert_pem};
    c.public_url = "https://127.0.0.1:8443";
    c.tls_ca_pem = tls_ca_.cert_pem;
    return c;
  }
  static net::ServerRequest get(const std::string& target) {
    net::ServerRequest r;
    r.method = "GET";
    r.target = target;
    r.peer = "test";
    return r;
  }
  // The profile /enroll serves, parsed; its payloads by PayloadType.
  struct Profile {
    plist::Value top;
    std::map<std::string, plist::Value> payloads;
  };
  static Profile enroll_profile(MdmService& service) {
    auto r = service.handle(get("/enroll"));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(net::find_header(r.headers, "Content-Type"), "application/x-apple-aspen-config");
    auto parsed = plist::parse(r.body);
    EXPECT_TRUE(parsed.ok()) << parsed.message();
    Profile out;
    if (!parsed) return out;
    out.top = *parsed;
    if (const auto* content = out.top.find("PayloadContent"); content && content->as_array()) {
      for (const auto& p : *content->as_array()) {
        if (p.as_dict() && p.string_at("PayloadType")) out.payloads[*p.string_at("PayloadType")] = p;
      }
    }
    return out;
  }
  static net::ServerRequest authenticate(const pki::Identity& id, const std::string& path = "/checkin") {
    protocol::DeviceFacts d;
    d.udid = kUdid;
    d.topic = "com.apple.mgmt.External.mdmconform";
    auto body = plist::to_xml(plist::Value(protocol::authenticate(d)));
    return put(
        path,
        {{"Content-Type", "application/x-apple-aspen-mdm-checkin"}, {"Mdm-Signature", *pki::mdm_signature(id, body)}},
        body);
  }

  pki::Identity own_ca_;
  pki::Identity scep_ca_;
  pki::Identity tls_ca_;
  pki::Identity own_device_;
  pki::Identity scep_device_;
};

TEST_F(EnrollmentTest, TheProfileNamesTheScepServerTheMdmUrlsAndTheTlsCa) {
  MdmService service(config());
  auto profile = enroll_profile(service);
  EXPECT_EQ(profile.top.string_at("PayloadType"), "Configuration");
  EXPECT_EQ(profile.top.find("PayloadVersion")->as_integer() ? *profile.top.find("PayloadVersion")->as_integer() : 0,
            1);
  EXPECT_TRUE(profile.top.string_at("PayloadUUID"));
  EXPECT_TRUE(profile.top.string_at("PayloadIdentifier"));
  ASSERT_EQ(profile.payloads.size(), 3u);

  plist::Value scep = profile.payloads["com.apple.security.scep"];
  const auto* scep_content = scep.find("PayloadContent");
  ASSERT_TRUE(scep_content && scep_content->as_dict());
  EXPECT_EQ(scep_content->string_at("URL"), "http://127.0.0.1:18089/scep");
  EXPECT_EQ(scep_content->string_at("Challenge"), "s3cret");
  EXPECT_EQ(scep_content->string_at("Key Type"), "RSA");
  EXPECT_TRUE(scep_content->string_at("Name"));
  EXPECT_EQ(*scep_content->find("Keysize")->as_integer(), 2048);
  EXPECT_EQ(*scep_content->find("Key Usage")->as_integer(), 5);
  const auto* subject = scep_content->find("Subject");
  ASSERT_TRUE(subject && subject->as_array() && subject->as_array()->size() == 2);
  const auto& cn = (*(*subject->as_array())[1].as_array())[0];
  EXPECT_EQ(*(*cn.as_array())[0].as_string(), "CN");
  EXPECT_NE(cn.as_array()->at(1).as_string()->find("%HardwareUUID%"), std::string::npos);

  plist::Value mdm = profile.payloads["com.apple.mdm"];
  EXPECT_EQ(mdm.string_at("ServerURL"), "https://127.0.0.1:8443/mdm");
  EXPECT_EQ(mdm.string_at("CheckInURL"), "https://127.0.0.1:8443/checkin");
  EXPECT_EQ(mdm.string_at("Topic"), "com.apple.mgmt.External.mdmconform");
  EXPECT_EQ(mdm.string_at("IdentityCertificateUUID"), scep.string_at("PayloadUUID"));
  EXPECT_EQ(mdm.bool_at("SignMessage"), true);
  EXPECT_EQ(mdm.bool_at("CheckOutWhenRemoved"), true);
  EXPECT_EQ(*mdm.find("AccessRights")->as_integer(), 8191);
  EXPECT_EQ(*mdm.find("PayloadVersion")->as_integer(), 1);
  ASSERT_TRUE(mdm.find("ServerCapabilities") && mdm.find("ServerCapabilities")->as_array());
  EXPECT_EQ(*mdm.find("ServerCapabilities")->as_array(), plist::Array{"com.apple.mdm.per-user-connections"});

  plist::Value root = profile.payloads["com.apple.security.root"];
  ASSERT_TRUE(root.find("PayloadContent") && root.find("PayloadContent")->as_data());
  EXPECT_EQ(root.find("PayloadContent")->as_data()->bytes, *pki::certificate_der(tls_ca_.cert_pem));
}

TEST_F(EnrollmentTest, SignMessageFollowsTheIdentityMode) {
  for (auto [mode, signs] : {std::pair{IdentityMode::none, false}, std::pair{IdentityMode::mtls, false},
                             std::pair{IdentityMode::signature, true}, std::pair{IdentityMode::both, true}}) {
    MdmService service(config(Fault::none, mode));
    plist::Value mdm = enroll_profile(service).payloads["com.apple.mdm"];
    EXPECT_EQ(mdm.bool_at("SignMessage"), signs) << protocol::identity_mode_name(mode);
  }
}

TEST_F(EnrollmentTest, WithoutAScepServerEnrollIs404AndOnlyGetIsServed) {
  Config without = config();
  without.scep.reset();
  MdmService service(without);
  auto r = service.handle(get("/enroll"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("SCEP"), std::string::npos) << r.body;
  MdmService with(config());
  EXPECT_EQ(with.handle(put("/enroll", {}, "")).status, 405);
  EXPECT_EQ(with.handle(get("/enroll?x=1")).status, 200);
  EXPECT_EQ(with.handle(get("/mdm")).status, 405);
}

TEST_F(EnrollmentTest, ThePublicUrlCanBeSetOnceThePortIsKnown) {
  Config c = config();
  c.public_url.clear();
  MdmService service(c);
  service.set_public_url("https://127.0.0.1:1234");
  plist::Value mdm = enroll_profile(service).payloads["com.apple.mdm"];
  EXPECT_EQ(mdm.string_at("ServerURL"), "https://127.0.0.1:1234/mdm");
}

// A public URL set on a copy or on the original is that service's alone.
TEST_F(EnrollmentTest, APublicUrlSetOnACopyIsNotTheOriginals) {
  Config c = config();
  c.public_url = "https://127.0.0.1:1111";
  MdmService original(c);
  MdmService copy(original);
  copy.set_public_url("https://127.0.0.1:2222");
  EXPECT_EQ(enroll_profile(copy).payloads["com.apple.mdm"].string_at("ServerURL"), "https://127.0.0.1:2222/mdm");
  EXPECT_EQ(enroll_profile(original).payloads["com.apple.mdm"].string_at("ServerURL"), "https://127.0.0.1:1111/mdm");
  original.set_public_url("https://127.0.0.1:3333");
  EXPECT_EQ(enroll_profile(copy).payloads["com.apple.mdm"].string_at("ServerURL"), "https://127.0.0.1:2222/mdm");
}

TEST_F(EnrollmentTest, IdentitiesFromTheScepCaAndFromItsOwnCaAreBothTaken) {
  MdmService service(config());
  EXPECT_EQ(service.handle(authenticate(scep_device_)).status, 200);
  EXPECT_EQ(service.handle(authenticate(own_device_)).status, 200);
  auto stranger_ca = *pki::create_test_ca("stranger CA");
  auto stranger = *pki::issue_device_identity(stranger_ca, "stranger", pki::KeyType::ec_p256);
  EXPECT_EQ(service.handle(authenticate(stranger)).status, 400);

  MdmService mtls(config(Fault::none, IdentityMode::mtls));
  auto request = authenticate(scep_device_);
  request.peer_certificate_der = *pki::certificate_der(scep_device_.cert_pem);
  EXPECT_EQ(mtls.handle(request).status, 200);
}

TEST_F(EnrollmentTest, ScepIdentityRefusedAnswers403ToScepIdentitiesOnly) {
  for (auto mode : {IdentityMode::signature, IdentityMode::mtls, IdentityMode::both}) {
    SCOPED_TRACE(protocol::identity_mode_name(mode));
    MdmService service(config(Fault::scep_identity_refused, mode));
    auto scep = authenticate(scep_device_);
    scep.peer_certificate_der = *pki::certificate_der(scep_device_.cert_pem);
    auto refused = service.handle(scep);
    EXPECT_EQ(refused.status, 403);
    EXPECT_NE(refused.body.find("SCEP"), std::string::npos) << refused.body;
    auto own = authenticate(own_device_);
    own.peer_certificate_der = *pki::certificate_der(own_device_.cert_pem);
    EXPECT_EQ(service.handle(own).status, 200);
  }
  // The profile still names the SCEP server: the fault is in what the server takes.
  MdmService service(config(Fault::scep_identity_refused));
  EXPECT_EQ(enroll_profile(service).payloads.count("com.apple.security.scep"), 1u);
}

TEST_F(EnrollmentTest, EnrollmentProfileMalformedBreaksTheSchemaButKeepsTheUrls) {
  MdmService service(config(Fault::enrollment_profile_malformed));
  plist::Value mdm = enroll_profile(service).payloads["com.apple.mdm"];
  ASSERT_TRUE(mdm.find("AccessRights"));
  EXPECT_EQ(mdm.string_at("AccessRights"), "8191");
  EXPECT_FALSE(mdm.find("PayloadVersion"));
  EXPECT_EQ(mdm.string_at("ServerURL"), "https://127.0.0.1:8443/mdm");
  EXPECT_EQ(mdm.string_at("CheckInURL"), "https://127.0.0.1:8443/checkin");
  EXPECT_EQ(mdm.string_at("Topic"), "com.apple.mgmt.External.mdmconform");
  EXPECT_TRUE(mdm.string_at("IdentityCertificateUUID"));
  EXPECT_EQ(service.handle(authenticate(scep_device_)).status, 200);
}

TEST_F(EnrollmentTest, PerUserUndeclaredLeavesTheCapabilityOutAndStillServesUsers) {
  MdmService service(config(Fault::per_user_undeclared));
  plist::Value mdm = enroll_profile(service).payloads["com.apple.mdm"];
  EXPECT_FALSE(mdm.find("ServerCapabilities"));
  EXPECT_EQ(mdm.string_at("ServerURL"), "https://127.0.0.1:8443/mdm");
  ASSERT_EQ(service.handle(authenticate(scep_device_)).status, 200);
  protocol::DeviceFacts d;
  d.udid = kUdid;
  auto token = plist::to_xml(plist::Value(protocol::token_update(d, {"utok", "umagic"}, &kAlice)));
  auto r = service.handle(put("/checkin",
                              {{"Content-Type", "application/x-apple-aspen-mdm-checkin"},
                               {"Mdm-Signature", *pki::mdm_signature(scep_device_, token)}},
                              token));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(EnrollmentTest, CheckinOnServerUrlOnlyRefusesTheCheckInUrlAndServesCheckInsOnTheServerUrl) {
  MdmService service(config(Fault::checkin_on_server_url_only));
  auto on_checkin_url = service.handle(authenticate(scep_device_));
  EXPECT_EQ(on_checkin_url.status, 404);
  // The profile still names /checkin: the server does not serve what it says.
  EXPECT_EQ(enroll_profile(service).payloads["com.apple.mdm"].string_at("CheckInURL"),
            "https://127.0.0.1:8443/checkin");
  ASSERT_EQ(service.handle(authenticate(scep_device_, "/mdm")).status, 200);
  protocol::DeviceFacts d;
  d.udid = kUdid;
  auto signed_put = [&](const std::string& path, const std::string& type, const std::string& body) {
    return service.handle(
        put(path, {{"Content-Type", type}, {"Mdm-Signature", *pki::mdm_signature(scep_device_, body)}}, body));
  };
  auto token = plist::to_xml(plist::Value(protocol::token_update(d, {"tok", "magic"})));
  EXPECT_EQ(signed_put("/checkin", "application/x-apple-aspen-mdm-checkin", token).status, 404);
  EXPECT_EQ(signed_put("/mdm", "application/x-apple-aspen-mdm-checkin", token).status, 200);
  auto idle = plist::to_xml(plist::Value(protocol::report({kUdid, ""}, nullptr, {Status::idle, {}, {}})));
  EXPECT_EQ(signed_put("/mdm", "application/x-apple-aspen-mdm", idle).status, 200);
  // The correct server takes the same check-in on both URLs.
  MdmService correct(config());
  EXPECT_EQ(correct.handle(authenticate(scep_device_)).status, 200);
  EXPECT_EQ(correct.handle(authenticate(scep_device_, "/mdm")).status, 200);
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

// The shared-response-slot fault, with the slot held `kHoldMs` per request so that an overlap
// is certain: each test starts a second request well inside the first one's hold.
template <int kHoldMs>
class SharedSlot : public ServiceTest {
 protected:
  SharedSlot() : ServiceTest(config()) {}
  static Config config() {
    Config c;
    c.fault = Fault::shared_response_slot;
    c.slot_hold = std::chrono::milliseconds(kHoldMs);
    return c;
  }
  void queue_one_each() {
    enroll();
    ASSERT_EQ(enqueue(kUdid, "C-DEVICE").status, 200);
    ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C-USER").status, 200);
  }
  // The device's Idle on a thread of its own, and the user's Idle 50 ms after it began.
  std::pair<net::ServerResponse, net::ServerResponse> overlapping_idles() {
    net::ServerResponse device;
    std::latch started(1);
    std::thread first([&] {
      started.count_down();
      device = report(Status::idle);
    });
    started.wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto user = report(Status::idle, {}, true);
    first.join();
    return {std::move(device), std::move(user)};
  }
};

using SharedSlotTest = SharedSlot<150>;
TEST_F(SharedSlotTest, AUsersRequestDuringTheDevicesGetsTheDevicesAnswer) {
  queue_one_each();
  auto [device, user] = overlapping_idles();
  EXPECT_EQ(uuid_in(device), "C-DEVICE");
  EXPECT_EQ(uuid_in(user), "C-DEVICE") << "the user's Idle was sent the device's command";
  // Its own Idle was never handled: the user's command is still there for the next one.
  EXPECT_EQ(uuid_in(report(Status::idle, {}, true)), "C-USER");
}

// The fault's own hold (5 ms), requests in lockstep as chn/concurrent_interleaved sends them:
// none overlaps another, and each gets its own answer.
using SharedSlotInTurn = SharedSlot<5>;
TEST_F(SharedSlotInTurn, RequestsInTurnGetTheirOwnAnswers) {
  queue_one_each();
  EXPECT_EQ(uuid_in(report(Status::idle)), "C-DEVICE");
  EXPECT_EQ(uuid_in(report(Status::idle, {}, true)), "C-USER");
  EXPECT_TRUE(report(Status::acknowledged, "C-DEVICE").body.empty());
  EXPECT_TRUE(report(Status::acknowledged, "C-USER", true).body.empty());
}

// Past the wait's bound (1 s) the waiting request gets no answer of any request: an empty 200.
// The device is unknown, so that only the two overlapping requests pay the long hold: the
// first is refused 403, the second, never handled, does not even get that.
using SharedSlotLongHold = SharedSlot<1100>;
TEST_F(SharedSlotLongHold, ARequestThatWaitsPastTheBoundGetsAnEmptyAnswer) {
  auto [device, user] = overlapping_idles();
  EXPECT_EQ(device.status, 403);
  EXPECT_EQ(user.status, 200);
  EXPECT_TRUE(user.body.empty());
}

// The correct server, called from several threads at once, gives every channel its own command.
TEST_F(ServiceTest, ConcurrentRequestsOfOneDeviceGetTheirOwnAnswers) {
  enroll();
  for (int round = 0; round < 20; ++round) {
    const auto d = fmt::format("D-{}", round);
    const auto u = fmt::format("U-{}", round);
    ASSERT_EQ(enqueue(kUdid, d).status, 200);
    ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, u).status, 200);
    std::string device_got;
    std::string device_end = "unset";
    std::thread device([&] {
      device_got = uuid_in(report(Status::idle));
      device_end = report(Status::acknowledged, device_got).body;
    });
    auto user_got = uuid_in(report(Status::idle, {}, true));
    auto user_end = report(Status::acknowledged, user_got, true).body;
    device.join();
    EXPECT_EQ(device_got, d);
    EXPECT_EQ(user_got, u);
    EXPECT_TRUE(device_end.empty());
    EXPECT_TRUE(user_end.empty());
  }
}

// Seeded bugs: each fires on its odd input and on nothing a well-formed client sends.
Config with_seeded_bug(SeededBug bug) {
  Config config;
  config.seeded_bug = bug;
  return config;
}

bool misbehaves(const net::ServerResponse& r) {
  return r.status >= 500 || r.reset || r.stall > std::chrono::milliseconds::zero();
}

template <SeededBug kBug>
class WithSeededBug : public ServiceTest {
 protected:
  WithSeededBug() : ServiceTest(with_seeded_bug(kBug)) {}

  static protocol::DeviceFacts device() {
    protocol::DeviceFacts d;
    d.udid = kUdid;
    d.topic = "topic";
    return d;
  }
  net::ServerResponse raw(const std::string& path, std::string body) {
    std::string type = path == "/checkin" ? "application/x-apple-aspen-mdm-checkin" : "application/x-apple-aspen-mdm";
    return service_.handle(put(path, {{"Content-Type", type}}, std::move(body)));
  }
  net::ServerResponse report_dict(const plist::Dict& body) { return raw("/mdm", plist::to_xml(plist::Value(body))); }
  static plist::Dict idle(bool user = false) {
    return protocol::report({kUdid, user ? kAlice.user_id : ""}, user ? &kAlice : nullptr, {Status::idle, {}, {}});
  }
  // Enrollment, a command on each channel, acknowledged: every answer as from the correct server.
  void well_formed_traffic_is_served() {
    enroll();
    ASSERT_EQ(enqueue(kUdid, "C-DEVICE").status, 200);
    ASSERT_EQ(enqueue(kUdid + ":" + kAlice.user_id, "C-USER").status, 200);
    for (bool user : {false, true}) {
      auto first = report(Status::idle, {}, user);
      EXPECT_FALSE(misbehaves(first)) << first.status;
      EXPECT_EQ(uuid_in(first), user ? "C-USER" : "C-DEVICE");
      auto end = report(Status::acknowledged, user ? "C-USER" : "C-DEVICE", user);
      EXPECT_EQ(end.status, 200);
      EXPECT_FALSE(misbehaves(end));
      EXPECT_TRUE(end.body.empty());
    }
  }
};

TEST(SeededBugs, EveryBugHasAUniqueNameAndABehaviour) {
  std::set<std::string_view> names;
  for (const auto& info : seeded_bug_catalog()) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_EQ(seeded_bug_from_name(info.name), info.bug);
    EXPECT_EQ(seeded_bug_info(info.bug).name, info.name);
    EXPECT_FALSE(info.behaviour.empty()) << info.name;
  }
  EXPECT_GE(names.size(), 9U) << "issue 5 asks for at least 8 seeded bugs, besides none";
  EXPECT_EQ(seeded_bug_info(SeededBug::none).name, "none");
  EXPECT_FALSE(seeded_bug_from_name("no-such-bug"));
}

using WrongType500 = WithSeededBug<SeededBug::wrong_type_500>;
TEST_F(WrongType500, AnIntegerTopicGets500WhereTheCorrectServerSays400) {
  well_formed_traffic_is_served();
  auto token = protocol::token_update(device(), {"tok", "magic"});
  token["Topic"] = 7;
  EXPECT_EQ(check_in(token).status, 500);
  MdmService correct({});
  EXPECT_EQ(correct.handle(put("/checkin", {}, plist::to_xml(plist::Value(token)))).status, 400);
  token["Topic"] = plist::Data{"7"};  // another wrong type: the correct answer
  EXPECT_EQ(check_in(token).status, 400);
}

using LongStringHang = WithSeededBug<SeededBug::long_string_hang>;
TEST_F(LongStringHang, AStringOver4KiBStallsPastEveryClientDeadline) {
  well_formed_traffic_is_served();
  auto message = idle();
  message["Detail"] = std::string(4096, 'x');
  EXPECT_FALSE(misbehaves(report_dict(message)));
  message["Detail"] = std::string(4097, 'x');
  EXPECT_GE(report_dict(message).stall, std::chrono::seconds(30));
}

using UserKeyCorrupts = WithSeededBug<SeededBug::user_key_corrupts>;
TEST_F(UserKeyCorrupts, AnAuthenticateWithAUserIdBreaksTheDevicesLaterIdle) {
  well_formed_traffic_is_served();
  auto authenticate = protocol::authenticate(device());
  authenticate["UserID"] = kAlice.user_id;
  EXPECT_EQ(check_in(authenticate).status, 200) << "the correct server refuses it with 400";
  EXPECT_EQ(report(Status::idle).status, 500);
  EXPECT_EQ(report(Status::idle, {}, true).status, 200) << "the user's channel is not touched";
}

using DeepNestingReset = WithSeededBug<SeededBug::deep_nesting_reset>;
TEST_F(DeepNestingReset, ContainersSixteenDeepResetTheConnection) {
  well_formed_traffic_is_served();
  auto nested = [](int depth) {
    auto message = idle();
    plist::Value inner = "leaf";
    for (int i = 0; i < depth - 1; ++i) inner = plist::Array{inner};  // the message itself is depth 1
    message["Nested"] = inner;
    return message;
  };
  EXPECT_FALSE(report_dict(nested(15)).reset);
  EXPECT_TRUE(report_dict(nested(16)).reset);
}

using BinaryPlist500 = WithSeededBug<SeededBug::binary_plist_500>;
TEST_F(BinaryPlist500, ABinaryCheckInWithADateGets500) {
  well_formed_traffic_is_served();
  auto token = protocol::token_update(device(), {"tok2", "magic2"});
  EXPECT_EQ(raw("/checkin", plist::to_binary(plist::Value(token))).status, 200) << "binary alone is fine";
  token["SignedAt"] = plist::Date{800000000};
  EXPECT_EQ(raw("/checkin", plist::to_xml(plist::Value(token))).status, 200) << "a date in XML is fine";
  EXPECT_EQ(raw("/checkin", plist::to_binary(plist::Value(token))).status, 500);
  auto report = idle();
  report["SignedAt"] = plist::Date{800000000};
  EXPECT_EQ(raw("/mdm", plist::to_binary(plist::Value(report))).status, 200) << "only check-ins";
}

using NegativeInteger500 = WithSeededBug<SeededBug::negative_integer_500>;
TEST_F(NegativeInteger500, AReportWithANegativeErrorCodeGets500) {
  well_formed_traffic_is_served();
  ASSERT_EQ(enqueue(kUdid, "C-ERR").status, 200);
  ASSERT_EQ(uuid_in(report(Status::idle)), "C-ERR");
  protocol::ReportSpec failed{Status::error, "C-ERR", {{-1, "MCMDMErrorDomain", "failed"}}};
  auto error_report = protocol::report({kUdid, ""}, nullptr, failed);
  EXPECT_EQ(report_dict(error_report).status, 500);
  failed.error_chain.front().code = 12021;
  EXPECT_EQ(report_dict(protocol::report({kUdid, ""}, nullptr, failed)).status, 200);
}

using EmptyUdidWedge = WithSeededBug<SeededBug::empty_udid_wedge>;
TEST_F(EmptyUdidWedge, AnEmptyUdidWedgesTheServerForEveryLaterRequest) {
  well_formed_traffic_is_served();
  auto no_udid = idle();
  no_udid.erase("UDID");
  EXPECT_EQ(report_dict(no_udid).status, 400) << "a missing UDID is refused correctly";
  EXPECT_EQ(report(Status::idle).status, 200);
  auto empty = idle();
  empty["UDID"] = "";
  EXPECT_EQ(report_dict(empty).status, 503);
  EXPECT_EQ(report(Status::idle).status, 503);
  EXPECT_EQ(check_in(protocol::token_update(device(), {"tok", "magic"})).status, 503);
}

using UnicodeName500 = WithSeededBug<SeededBug::unicode_name_500>;
TEST_F(UnicodeName500, AUserShortNameOutsideAsciiGets500) {
  well_formed_traffic_is_served();
  protocol::UserFacts zoe{"20E00000-0000-4000-8000-000000000002", "zoe", "Zoe"};
  EXPECT_EQ(check_in(protocol::token_update(device(), {"ztok", "zmagic"}, &zoe)).status, 200);
  zoe.short_name = "zo\xc3\xab";  // "zoë" in UTF-8
  EXPECT_EQ(check_in(protocol::token_update(device(), {"ztok", "zmagic"}, &zoe)).status, 500);
}

using DuplicateKey500 = WithSeededBug<SeededBug::duplicate_key_500>;
TEST_F(DuplicateKey500, TheSameKeyTwiceInOneDictGets500) {
  well_formed_traffic_is_served();
  auto xml = plist::to_xml(plist::Value(idle()));
  auto at = xml.find("<dict>") + 6;
  // Nested dicts may reuse their parent's keys: only twice in one dict is odd.
  auto nested = xml;
  nested.insert(at, "<key>Inner</key><dict><key>Status</key><string>Idle</string></dict>");
  EXPECT_EQ(raw("/mdm", nested).status, 200);
  auto twice = xml;
  twice.insert(at, "<key>Status</key><string>Idle</string>");
  EXPECT_EQ(raw("/mdm", twice).status, 500);
}

using DataTopicReset = WithSeededBug<SeededBug::data_topic_reset>;
TEST_F(DataTopicReset, ADataTopicResetsTheConnectionWhereTheCorrectServerSays400) {
  well_formed_traffic_is_served();
  auto token = protocol::token_update(device(), {"tok", "magic"});
  token["Topic"] = plist::Data{"topic"};
  EXPECT_TRUE(check_in(token).reset);
  token["Topic"] = 7;
  auto wrong_type = check_in(token);
  EXPECT_FALSE(wrong_type.reset);
  EXPECT_EQ(wrong_type.status, 400);
}

// ---- bounds on what the server remembers (Config::bounds) ----

// Small bounds, so that the tests reach them in a few requests; the defaults differ only in size.
Config small_bounds() {
  Config config;
  config.bounds.devices = 3;
  config.bounds.users_per_device = 2;
  config.bounds.kept_field_bytes = 64;
  config.bounds.queued_per_channel = 3;
  config.bounds.queued_commands = 5;
  config.bounds.queued_bytes = 4096;
  config.bounds.remembered_commands = 2;
  return config;
}

class BoundsTest : public ::testing::Test {
 protected:
  explicit BoundsTest(Config config = small_bounds()) : service_(std::move(config)) {}

  static protocol::UserFacts user(int n) {
    return {fmt::format("USER-{}", n), fmt::format("user{}", n), fmt::format("User {}", n)};
  }
  int check_in(const plist::Dict& body) {
    return service_.handle(put("/checkin", {}, plist::to_xml(plist::Value(body)))).status;
  }
  int authenticate(const std::string& udid) {
    protocol::DeviceFacts d;
    d.udid = udid;
    d.topic = "topic";
    return check_in(protocol::authenticate(d));
  }
  int token_update(const std::string& udid, const protocol::UserFacts* u = nullptr, std::string token = "tok") {
    protocol::DeviceFacts d;
    d.udid = udid;
    d.topic = "topic";
    return check_in(protocol::token_update(d, {std::move(token), "magic"}, u));
  }
  void enroll(const std::string& udid) {
    ASSERT_EQ(authenticate(udid), 200);
    ASSERT_EQ(token_update(udid), 200);
  }
  net::ServerResponse send_report(const std::string& udid, Status status, const std::string& uuid = {}) {
    auto body = protocol::report({udid, ""}, nullptr, {status, uuid, {}});
    return service_.handle(put("/mdm", {}, plist::to_xml(plist::Value(body))));
  }
  // A ProfileList padded to about `bytes` of plist.
  int enqueue(const std::string& id, const std::string& uuid, std::size_t bytes = 0) {
    auto command = protocol::make_command(uuid, "ProfileList").body;
    if (bytes) (*command["Command"].as_dict())["Padding"] = std::string(bytes, 'p');
    return service_.handle(put("/v1/enqueue/" + id, {}, plist::to_xml(plist::Value(command)))).status;
  }

  MdmService service_;
};

TEST_F(BoundsTest, PastTheDeviceBoundTheDeviceHeardFromLeastRecentlyIsForgotten) {
  enroll("A");
  enroll("B");
  enroll("C");
  EXPECT_EQ(send_report("A", Status::idle).status, 200);  // B is now the least recent
  enroll("D");
  EXPECT_EQ(send_report("B", Status::idle).status, 403);
  for (const char* udid : {"A", "C", "D"}) EXPECT_EQ(send_report(udid, Status::idle).status, 200) << udid;
  EXPECT_EQ(service_.footprint().devices, 3u);
  EXPECT_EQ(service_.footprint().channels, 3u);
}

TEST_F(BoundsTest, AUserChannelPastTheBoundIsRefusedAndKnownOnesStillUpdate) {
  enroll("A");
  auto u1 = user(1), u2 = user(2), u3 = user(3);
  EXPECT_EQ(token_update("A", &u1), 200);
  EXPECT_EQ(token_update("A", &u2), 200);
  EXPECT_EQ(token_update("A", &u3), 403);
  EXPECT_EQ(token_update("A", &u1, "new token"), 200);
  EXPECT_EQ(service_.footprint().channels, 3u);
}

TEST_F(BoundsTest, FieldsLongerThanTheServerKeepsAreRefused) {
  EXPECT_EQ(authenticate(std::string(64, 'U')), 200);
  EXPECT_EQ(authenticate(std::string(65, 'U')), 400);
  enroll("A");
  EXPECT_EQ(token_update("A", nullptr, std::string(65, 't')), 400);
  auto long_user = protocol::UserFacts{std::string(65, 'u'), "u", "U"};
  EXPECT_EQ(token_update("A", &long_user), 400);
  EXPECT_EQ(enqueue("A", std::string(65, 'c')), 400);
  EXPECT_EQ(service_.footprint().devices, 2u);
}

TEST_F(BoundsTest, AFullQueueRefusesTheNextCommandUntilOneIsDone) {
  enroll("A");
  for (const char* uuid : {"C1", "C2", "C3"}) EXPECT_EQ(enqueue("A", uuid), 200) << uuid;
  EXPECT_EQ(enqueue("A", "C4"), 429);
  EXPECT_EQ(send_report("A", Status::idle).status, 200);
  EXPECT_EQ(send_report("A", Status::acknowledged, "C1").status, 200);
  EXPECT_EQ(enqueue("A", "C4"), 200);
  EXPECT_EQ(service_.footprint().queued_commands, 3u);
}

TEST_F(BoundsTest, AllQueuesTogetherHoldAtMostTheBoundInCommands) {
  for (const char* udid : {"A", "B"}) enroll(udid);
  for (const char* uuid : {"A1", "A2", "A3"}) EXPECT_EQ(enqueue("A", uuid), 200) << uuid;
  EXPECT_EQ(enqueue("B", "B1"), 200);
  EXPECT_EQ(enqueue("B", "B2"), 200);
  EXPECT_EQ(enqueue("B", "B3"), 429);
  EXPECT_EQ(service_.footprint().queued_commands, 5u);
  EXPECT_EQ(send_report("A", Status::idle).status, 200);
  EXPECT_EQ(send_report("A", Status::acknowledged, "A1").status, 200);
  EXPECT_EQ(enqueue("B", "B3"), 200);
}

TEST_F(BoundsTest, ARequestTypeLongerThanTheServerKeepsIsRefused) {
  enroll("A");
  auto command = protocol::make_command("C1", std::string(65, 'R')).body;
  EXPECT_EQ(service_.handle(put("/v1/enqueue/A", {}, plist::to_xml(plist::Value(command)))).status, 400);
}

TEST_F(BoundsTest, QueuedBytesNeverPassTheBudgetAndFreeUpWhenCommandsAreDone) {
  enroll("A");
  enroll("B");
  EXPECT_EQ(enqueue("A", "BIG-1", 1500), 200);
  EXPECT_EQ(enqueue("B", "BIG-2", 1500), 200);
  EXPECT_EQ(enqueue("B", "BIG-3", 1500), 429);  // 3 x ~1.8 KiB of plist > 4 KiB
  EXPECT_LE(service_.footprint().queued_bytes, 4096u);
  EXPECT_EQ(send_report("A", Status::idle).status, 200);
  EXPECT_EQ(send_report("A", Status::acknowledged, "BIG-1").status, 200);
  EXPECT_EQ(enqueue("B", "BIG-3", 1500), 200);
  EXPECT_LE(service_.footprint().queued_bytes, 4096u);
}

TEST_F(BoundsTest, RememberedCommandsStopAtTheBoundAndADuplicateStillGets200) {
  enroll("A");
  for (const char* uuid : {"C1", "C2", "C3"}) {
    ASSERT_EQ(enqueue("A", uuid), 200);
    ASSERT_EQ(send_report("A", Status::idle).status, 200);
    ASSERT_EQ(send_report("A", Status::acknowledged, uuid).status, 200);
  }
  EXPECT_EQ(service_.footprint().remembered_commands, 2u);
  EXPECT_EQ(send_report("A", Status::acknowledged, "C3").status, 200);
  // A new Authenticate forgets the device's channels, and what they remembered with them.
  enroll("A");
  EXPECT_EQ(service_.footprint().remembered_commands, 0u);
}

TEST_F(BoundsTest, NetworkUsersPastTheBoundAreStillRefusedButNotRemembered) {
  enroll("A");
  for (int n = 1; n <= 4; ++n) {
    EXPECT_EQ(check_in(protocol::user_authenticate("A", user(n), std::nullopt)), 410) << n;
  }
  EXPECT_EQ(service_.footprint().largest_user_set, 2u);
}

// Channels are found by their device's UDID as a prefix of the channel id: "A" must not take
// "AB" and its users along.
TEST_F(BoundsTest, ForgettingADeviceLeavesADeviceWhoseUdidItPrefixes) {
  enroll("A");
  enroll("AB");
  auto u1 = user(1);
  EXPECT_EQ(token_update("AB", &u1), 200);
  protocol::DeviceFacts a;
  a.udid = "A";
  EXPECT_EQ(check_in(protocol::check_out(a)), 200);
  EXPECT_EQ(service_.footprint().channels, 2u);
  EXPECT_EQ(send_report("AB", Status::idle).status, 200);
  EXPECT_EQ(send_report("A", Status::idle).status, 403);
}

// Such a UDID's channel would not be found by its device again, and outlive it.
TEST_F(BoundsTest, AUdidThatCannotNameAChannelIsRefused) {
  EXPECT_EQ(authenticate(""), 400);
  EXPECT_EQ(authenticate("A:B"), 400);
  EXPECT_EQ(service_.footprint().devices, 0u);
}

class DefaultBoundsTest : public BoundsTest {
 protected:
  DefaultBoundsTest() : BoundsTest(Config{}) {}
};

TEST_F(DefaultBoundsTest, AFloodOfNewDevicesLeavesAtMostTheBound) {
  const std::size_t most = Config{}.bounds.devices;
  for (std::size_t i = 0; i < most + 200; ++i) ASSERT_EQ(authenticate(fmt::format("FLOOD-{}", i)), 200);
  EXPECT_EQ(service_.footprint().devices, most);
  EXPECT_EQ(token_update(fmt::format("FLOOD-{}", most + 199)), 200);
  EXPECT_EQ(token_update("FLOOD-0"), 403);  // forgotten: unknown to the server again
  EXPECT_EQ(authenticate("FLOOD-0"), 200);  // and welcome to enroll anew
}

}  // namespace
}  // namespace mdmc::server
