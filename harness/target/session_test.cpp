#include "harness/target/session.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/base/bytes.hpp"
#include "harness/net/http_server.hpp"
#include "harness/pki/pki.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/testing/test_certs.hpp"

namespace mdmc::target {
namespace {

namespace chr = std::chrono;

// The real HTTP server on loopback port 0, keeping every request it got.
class SessionTest : public ::testing::Test {
 protected:
  void serve(int status = 200) {
    server_ = std::make_unique<net::HttpServer>([this, status](const net::ServerRequest& request) {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      return net::ServerResponse{status, {}, "", false};
    });
    auto port_listening = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port_listening) << port_listening.message();
    port_ = port_listening.value_or(0);
    server_->start(2);
    const auto base = "http://127.0.0.1:" + std::to_string(port_);
    profile_.name = "test";
    profile_.check_in_url = base + "/checkin";
    profile_.server_url = base + "/mdm";
    profile_.limits.connect_timeout = chr::milliseconds{2000};
    profile_.limits.header_timeout = chr::milliseconds{2000};
    profile_.limits.body_timeout = chr::milliseconds{2000};
  }

  std::vector<net::ServerRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

  TargetProfile profile_;
  std::unique_ptr<net::HttpServer> server_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<net::ServerRequest> requests_;
};

TEST_F(SessionTest, SendsACheckInToTheCheckInUrlAndAReportToTheServerUrlWithTheirContentTypes) {
  serve();
  TargetSession session(profile_);
  ASSERT_TRUE(session.add_device("mac", "UDID-1").ok());
  auto check_in = session.send({"mac", "mac"}, protocol::Endpoint::check_in, "<plist/>");
  ASSERT_TRUE(check_in.ok()) << check_in.message();
  ASSERT_TRUE(check_in->ok());
  emulator::Message idle{protocol::Endpoint::server, "Idle", plist::Dict{{"Status", "Idle"}}};
  auto report = session.send({"mac", "mac"}, idle);
  ASSERT_TRUE(report.ok() && report->ok());
  auto got = requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].method, "PUT");
  EXPECT_EQ(got[0].target, "/checkin");
  EXPECT_EQ(net::find_header(got[0].headers, "Content-Type"), std::string(protocol::kCheckInContentType));
  EXPECT_EQ(got[1].target, "/mdm");
  EXPECT_EQ(net::find_header(got[1].headers, "Content-Type"), std::string(protocol::kCommandContentType));
  EXPECT_EQ(got[1].body, idle.bytes());
  EXPECT_FALSE(net::find_header(got[0].headers, "Mdm-Signature")) << "identity mode none signs nothing";
}

TEST_F(SessionTest, SignsEachBodyWithTheSendersDeviceIdentity) {
  serve();
  auto ca = pki::create_test_ca("session test CA");
  ASSERT_TRUE(ca);
  profile_.identity.mode = IdentityMode::signature;
  profile_.identity.issuer = *ca;
  TargetSession session(profile_);
  ASSERT_TRUE(session.add_device("mac", "UDID-1").ok());
  auto sent = session.send({"mac", "mac"}, protocol::Endpoint::check_in, "body bytes");
  ASSERT_TRUE(sent.ok() && sent->ok());
  auto got = requests();
  ASSERT_EQ(got.size(), 1u);
  auto signature = net::find_header(got[0].headers, "Mdm-Signature");
  ASSERT_TRUE(signature);
  auto check = pki::verify_mdm_signature(*signature, got[0].body, ca->cert_pem);
  EXPECT_TRUE(check.ok()) << check.message();

  // A request that already carries a signature (a replayed one) is signed anew, once.
  auto request = session.request_to(protocol::Endpoint::server, "other bytes");
  request.headers.push_back({"Mdm-Signature", "stale"});
  ASSERT_TRUE(session.send({"mac", "mac"}, request).ok());
  got = requests();
  ASSERT_EQ(got.size(), 2u);
  int signatures = 0;
  for (const auto& h : got[1].headers) signatures += h.name == "Mdm-Signature" ? 1 : 0;
  EXPECT_EQ(signatures, 1);
  EXPECT_TRUE(
      pki::verify_mdm_signature(*net::find_header(got[1].headers, "Mdm-Signature"), got[1].body, ca->cert_pem).ok());
}

TEST_F(SessionTest, SendsUnsignedOnlyWhenAskedTo) {
  serve();
  auto ca = pki::create_test_ca("session test CA");
  ASSERT_TRUE(ca);
  profile_.identity.mode = IdentityMode::both;
  profile_.identity.issuer = *ca;
  profile_.tls.insecure = true;
  TargetSession session(profile_);
  ASSERT_TRUE(session.add_device("mac", "UDID-1").ok());
  auto sent = session.send_unsigned({"mac", "mac"}, session.request_to(protocol::Endpoint::server, "bytes"));
  ASSERT_TRUE(sent.ok());
  auto got = requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(net::find_header(got[0].headers, "Mdm-Signature"));
  EXPECT_EQ(got[0].body, "bytes");
}

TEST_F(SessionTest, KeepsOneConnectionPerActorAndIdentity) {
  serve();
  TargetSession session(profile_);
  ASSERT_TRUE(session.add_device("mac", "UDID-1").ok());
  auto first = session.send({"mac", "mac"}, protocol::Endpoint::server, "a");
  auto again = session.send({"mac", "mac"}, protocol::Endpoint::server, "b");
  auto agent = session.send({"mac/alice", "mac"}, protocol::Endpoint::server, "c");
  ASSERT_TRUE(first.ok() && again.ok() && agent.ok());
  EXPECT_FALSE(first->reused_connection);
  EXPECT_TRUE(again->reused_connection);
  EXPECT_FALSE(agent->reused_connection) << "each actor has a connection of its own";
}

TEST_F(SessionTest, NoAnswerIsAnExchangeWithItsTransportErrorNotAFailure) {
  serve();
  server_->stop();
  TargetSession session(profile_);
  ASSERT_TRUE(session.add_device("mac", "UDID-1").ok());
  auto sent = session.send({"mac", "mac"}, protocol::Endpoint::check_in, "x");
  ASSERT_TRUE(sent.ok());
  EXPECT_FALSE(sent->ok());
  EXPECT_NE(sent->error, net::TransportError::none);
  EXPECT_TRUE(probe_reachable(profile_).has_value());
}

TEST(ServerCertificate, IsTheCheckInUrlsLeafSeenWithTheProfilesTrust) {
  const auto& pki = testing::test_pki();
  net::HttpServer server(
      [](const net::ServerRequest&) {
        return net::ServerResponse{400, {}, "", false};
      },
      {}, net::ServerTls{pki.server.cert_pem, pki.server.key_pem, "", false});
  auto port = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(port) << port.message();
  server.start(1);
  TargetProfile profile;
  profile.check_in_url = "https://127.0.0.1:" + std::to_string(*port) + "/checkin";
  profile.limits.connect_timeout = chr::milliseconds{2000};
  profile.limits.tls_handshake_timeout = chr::milliseconds{2000};
  profile.limits.header_timeout = chr::milliseconds{2000};
  profile.tls.ca_pem = pki.ca.cert_pem;
  auto fingerprint = server_certificate_sha256(profile);
  ASSERT_TRUE(fingerprint.ok()) << fingerprint.message();
  EXPECT_EQ(*fingerprint, base::sha256_hex(pki.server.cert_der));
  // Not trusted by the profile: no fingerprint of a server nobody checked.
  profile.tls.ca_pem = pki.other_ca.cert_pem;
  auto untrusted = server_certificate_sha256(profile);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.message().find("tls_untrusted_certificate"), std::string::npos) << untrusted.message();
  profile.check_in_url = "http://127.0.0.1:" + std::to_string(*port) + "/checkin";
  EXPECT_FALSE(server_certificate_sha256(profile).ok());
}

TEST_F(SessionTest, EnqueueFillsTheChannelInTheUrlAndSendsBasicAuth) {
  serve(201);
  AdminEndpoint admin;
  admin.url = "http://127.0.0.1:" + std::to_string(port_) + "/v1/enqueue/{channel}?u={udid}&id={user_id}";
  admin.basic_user = "nanomdm";
  admin.basic_password = "secret";
  admin.expect_status = {201};
  profile_.enqueue = admin;
  TargetSession session(profile_);
  auto command = protocol::make_command("CMD-1", "ProfileList");
  auto queued = session.enqueue({"UDID-1", "USER-1"}, command.body);
  ASSERT_TRUE(queued.exchange.ok());
  EXPECT_TRUE(queued.accepted.ok()) << queued.accepted.message();
  auto got = requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/v1/enqueue/UDID-1:USER-1?u=UDID-1&id=USER-1");
  EXPECT_EQ(net::find_header(got[0].headers, "Authorization"), std::string("Basic bmFub21kbTpzZWNyZXQ="));
  EXPECT_NE(got[0].body.find("ProfileList"), std::string::npos);

  // A status the profile does not expect is an error in words, with the exchange kept.
  profile_.enqueue->expect_status = {200};
  auto refused = session.enqueue({"UDID-1", ""}, command.body);
  ASSERT_FALSE(refused.accepted.ok());
  EXPECT_EQ(refused.accepted.error().message,
            "admin adapter: PUT http://127.0.0.1:" + std::to_string(port_) +
                "/v1/enqueue/UDID-1?u=UDID-1&id= answered 201 with a zero-length body");
  EXPECT_TRUE(refused.exchange.ok());
}

TEST_F(SessionTest, TheDeclarationsAdapterPutsThenAssignsThroughTheChannelsOwnSetAndStopsAtARefusal) {
  serve(200);
  const auto base = "http://127.0.0.1:" + std::to_string(port_);
  DeclarationsAdmin admin;
  admin.basic_user = "kmfddm";
  admin.basic_password = "secret";
  admin.put.url = base + "/v1/declarations";
  admin.assign = {{"PUT", base + "/v1/set-declarations/{set}?declaration={identifier}", {200}},
                  {"PUT", base + "/v1/enrollment-sets/{channel}?set={set}", {204}}};
  profile_.declarations = admin;
  TargetSession session(profile_);
  auto put = session.put_declaration(R"({"Type":"com.apple.configuration.x","Identifier":"a b&c","Payload":{}})");
  EXPECT_TRUE(put.accepted.ok()) << put.accepted.message();
  // The second request expects 204 and gets 200: the steps stop there, with both exchanges kept.
  auto assigned = session.assign_declaration({"UDID-1", "USER-1"}, "a b&c");
  ASSERT_FALSE(assigned.accepted.ok());
  EXPECT_EQ(assigned.exchanges.size(), 2u);
  auto unassigned = session.unassign_declaration({"UDID-1", ""}, "a b&c");
  EXPECT_EQ(unassigned.accepted.message(), "admin adapter: admin.declarations has no unassign requests");
  EXPECT_TRUE(unassigned.exchanges.empty());

  auto got = requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].target, "/v1/declarations");
  EXPECT_EQ(net::find_header(got[0].headers, "Content-Type"), std::string("application/json"));
  EXPECT_EQ(net::find_header(got[0].headers, "Authorization"), std::string("Basic a21mZGRtOnNlY3JldA=="));
  const std::string set = "mdmconform-" + base::sha256_hex("UDID-1:USER-1").substr(0, 12);
  EXPECT_EQ(got[1].target, "/v1/set-declarations/" + set + "?declaration=a%20b%26c");
  EXPECT_EQ(got[2].target, "/v1/enrollment-sets/UDID-1:USER-1?set=" + set);
}

// A run's sessions on several threads, their admin connections and the reachability probe
// verify the server against the profile's CA, loaded once for all of them; each device still
// presents its own certificate.
TEST(SharedTrust, ARunsSessionsLoadTheProfilesCaOnce) {
  auto ca = pki::create_test_ca("session test TLS CA");  // new: no earlier test loaded it
  ASSERT_TRUE(ca);
  auto server_identity = pki::issue_server_identity(*ca, {"127.0.0.1"});
  ASSERT_TRUE(server_identity);
  std::mutex mu;
  std::set<std::string> client_certificates;
  net::HttpServer server(
      [&](const net::ServerRequest& request) {
        std::lock_guard lock(mu);
        client_certificates.insert(request.peer_certificate_der);
        return net::ServerResponse{200, {}, "", false};
      },
      // Asks for a client certificate, not requires one: the probe and the admin adapter have none.
      {}, net::ServerTls{server_identity->cert_pem, server_identity->key_pem, ca->cert_pem, false});
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  ASSERT_NE(port, 0);
  server.start(2);
  const auto base = "https://127.0.0.1:" + std::to_string(port);
  TargetProfile profile;
  profile.check_in_url = base + "/checkin";
  profile.server_url = base + "/mdm";
  profile.tls.ca_pem = ca->cert_pem;
  profile.identity.mode = IdentityMode::mtls;
  profile.identity.issuer = *ca;
  AdminEndpoint admin;
  admin.url = base + "/v1/enqueue/{channel}";
  profile.enqueue = admin;

  const auto before = net::trust_loads();
  EXPECT_FALSE(probe_reachable(profile));
  IdentityPool identities(profile.identity);
  std::vector<std::string> failures;
  auto run_case = [&](int c) {
    TargetSession session(profile, identities);
    for (const std::string device : {"mac", "other"}) {
      const auto udid = "UDID-" + std::to_string(c) + "-" + device;
      ASSERT_TRUE(session.add_device(device, udid).ok());
      auto sent = session.send({device, device}, protocol::Endpoint::check_in, "<plist/>");
      auto queued = session.enqueue({udid, ""}, protocol::make_command("CMD-1", "ProfileList").body);
      std::lock_guard lock(mu);
      if (!sent || !sent->ok() || !sent->tls_verified) failures.push_back(udid + ": not sent verified");
      if (!queued.accepted) failures.push_back(udid + ": " + queued.accepted.message());
    }
  };
  run_case(0);
  std::vector<std::thread> threads;
  for (int c = 1; c <= 3; ++c) threads.emplace_back(run_case, c);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << (failures.empty() ? std::string() : failures.front());
  EXPECT_EQ(net::trust_loads() - before, 1U) << "the profile's CA was loaded again";
  // Eight devices' certificates, and the empty one of the probe and the admin connections.
  std::lock_guard lock(mu);
  EXPECT_EQ(client_certificates.size(), 9U);
}

TEST(AdminUrl, NamesAUserChannelAsTheServerDoes) {
  AdminEndpoint admin;
  admin.url = "https://mdm.example/{channel}";
  protocol::Channel user{"UDID-1", "USER-1"};
  EXPECT_EQ(admin_url(admin, user), "https://mdm.example/UDID-1:USER-1");
  admin.channel_style = ChannelStyle::user_id;
  EXPECT_EQ(admin_url(admin, user), "https://mdm.example/USER-1");
  EXPECT_EQ(admin_url(admin, {"UDID-1", ""}), "https://mdm.example/UDID-1");
}

TEST(FillIn, ReplacesEveryKeyAndNeverFillsAValueAgain) {
  EXPECT_EQ(fill_in("a ${udid} b ${udid}", "${udid}", "X"), "a X b X");
  EXPECT_EQ(fill_in("${k}", "${k}", "${k}${k}"), "${k}${k}");
  EXPECT_EQ(fill_in("none here", "${udid}", "X"), "none here");
  EXPECT_EQ(fill_in("abc", "", "X"), "abc");
}

TEST(LikelyProfileKey, NamesTheKeyForWhatTheProfileDecidesAndNothingForTheServersOwnFailures) {
  TargetProfile profile;
  profile.tls.ca_pem = "a CA";
  profile.identity.mode = IdentityMode::mtls;
  auto key = [&](net::TransportError error, bool presented) {
    return likely_profile_key(error, profile, presented).value_or("(none)");
  };
  EXPECT_EQ(key(net::TransportError::tls_untrusted_certificate, false).rfind("tls.ca: ", 0), 0u);
  EXPECT_EQ(key(net::TransportError::tls_name_mismatch, false).rfind("urls.check_in: ", 0), 0u);
  EXPECT_EQ(key(net::TransportError::connect_failed, false).rfind("urls.check_in ", 0), 0u);
  EXPECT_EQ(key(net::TransportError::tls_client_certificate_rejected, true),
            "identity.mode (mtls) or identity.issuer: the server refused the TLS client certificate");
  profile.identity.pool.push_back({"device-1.p12", {}});
  EXPECT_EQ(key(net::TransportError::tls_handshake_failed, true).rfind("identity.mode (mtls) or identity.pool: ", 0),
            0u);
  profile.identity.mode = IdentityMode::signature;
  EXPECT_EQ(key(net::TransportError::tls_client_certificate_rejected, false).rfind("identity.mode (signature): ", 0),
            0u);
  for (auto servers_own : {net::TransportError::header_timeout, net::TransportError::connection_reset,
                           net::TransportError::bad_response, net::TransportError::tls_certificate_expired}) {
    EXPECT_EQ(key(servers_own, true), "(none)") << net::transport_error_name(servers_own);
  }
}

TEST(Identities, ModeNoneNeedsNone) {
  TargetProfile profile;
  TargetSession session(profile);
  auto given = session.add_device("a", "UDID-A");
  ASSERT_TRUE(given.ok()) << given.message();
  EXPECT_EQ(given->source, "none");
}

}  // namespace
}  // namespace mdmc::target
