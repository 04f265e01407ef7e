#include "harness/net/http_client.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/net/http.hpp"
#include "harness/net/http_server.hpp"
#include "harness/testing/raw_peer.hpp"
#include "harness/testing/test_certs.hpp"

// Real TLS handshakes between HttpClient and HttpServer (and the raw peers) on 127.0.0.1, with
// certificates made for the occasion by harness/testing/test_certs.hpp.

namespace mdmc::net {
namespace {

using namespace std::chrono_literals;
using testing::RawServer;
using testing::test_pki;
using testing::TestIdentity;

ClientLimits short_limits() {
  ClientLimits limits;
  limits.connect_timeout = 1000ms;
  limits.tls_handshake_timeout = 1000ms;
  limits.write_timeout = 1000ms;
  limits.header_timeout = 1000ms;
  limits.body_timeout = 1000ms;
  return limits;
}

ServerLimits short_server_limits() {
  ServerLimits limits;
  limits.read_timeout = 1000ms;
  return limits;
}

ServerTls serving(const TestIdentity& identity) {
  ServerTls tls;
  tls.cert_pem = identity.cert_pem;
  tls.key_pem = identity.key_pem;
  return tls;
}

ServerTls requiring_client_certificates(const TestIdentity& identity) {
  ServerTls tls = serving(identity);
  tls.client_ca_pem = test_pki().ca.cert_pem;
  tls.require_client_certificate = true;
  return tls;
}

TlsClientConfig trusting_test_ca() {
  TlsClientConfig tls;
  tls.trusted_ca_pem = test_pki().ca.cert_pem;
  return tls;
}

TlsClientConfig with_identity(const TestIdentity& identity) {
  TlsClientConfig tls = trusting_test_ca();
  tls.client_cert_pem = identity.cert_pem;
  tls.client_key_pem = identity.key_pem;
  return tls;
}

Request put(const std::string& url, std::string body = "<plist/>") {
  Request r;
  r.url = url;
  r.headers.push_back({"Content-Type", "application/x-apple-aspen-mdm"});
  r.body = std::move(body);
  return r;
}

std::string https(std::uint16_t port, const std::string& host = "127.0.0.1") {
  return "https://" + host + ":" + std::to_string(port) + "/mdm";
}

std::string describe(const Exchange& ex) {
  return std::string(transport_error_name(ex.error)) + ": " + ex.error_detail;
}

// An HttpServer, plain or TLS, that echoes the body and remembers every request it saw.
struct RecordingServer {
  std::mutex mutex;
  std::vector<ServerRequest> requests;
  std::set<std::string> peers;
  HttpServer server;
  std::uint16_t port = 0;
  std::string error;

  explicit RecordingServer(std::optional<ServerTls> tls, ServerLimits limits = short_server_limits(),
                           bool close_each = false)
      : server(
            [this, close_each](const ServerRequest& request) {
              std::lock_guard lock(mutex);
              requests.push_back(request);
              peers.insert(request.peer);
              ServerResponse response;
              response.body = request.body;
              response.close = close_each;
              return response;
            },
            limits, std::move(tls)) {
    port = server.listen("127.0.0.1", 0).value_or(0);
    server.start(1);
  }

  std::vector<ServerRequest> seen() {
    std::lock_guard lock(mutex);
    return requests;
  }
  std::size_t connections() {
    std::lock_guard lock(mutex);
    return peers.size();
  }
};

// ---- Names --------------------------------------------------------------------------------

TEST(TransportErrorName, NamesEveryTlsValueAsItIsSpelled) {
  EXPECT_EQ(transport_error_name(TransportError::tls_handshake_failed), "tls_handshake_failed");
  EXPECT_EQ(transport_error_name(TransportError::tls_untrusted_certificate), "tls_untrusted_certificate");
  EXPECT_EQ(transport_error_name(TransportError::tls_name_mismatch), "tls_name_mismatch");
  EXPECT_EQ(transport_error_name(TransportError::tls_certificate_expired), "tls_certificate_expired");
  EXPECT_EQ(transport_error_name(TransportError::tls_client_certificate_rejected), "tls_client_certificate_rejected");
  // The redirect values come after these (http_client_test.cpp checks the last one).
  EXPECT_EQ(static_cast<int>(TransportError::tls_client_certificate_rejected), 17);
  // The values before TLS keep their numbers: transcripts and other modules rely on them.
  EXPECT_EQ(static_cast<int>(TransportError::bad_response), 12);
  EXPECT_EQ(static_cast<int>(TransportError::tls_handshake_failed), 13);
  for (int i = 0; i <= static_cast<int>(kLastTransportError); ++i) {
    EXPECT_NE(transport_error_name(static_cast<TransportError>(i)), "unknown") << i;
  }
}

// ---- A verified server -------------------------------------------------------------------

TEST(TlsClient, RoundTripsOverAVerifiedConnectionAndKeepsItAlive) {
  RecordingServer tls_server(serving(test_pki().server));
  ASSERT_NE(tls_server.port, 0) << tls_server.error;
  HttpClient client(short_limits(), trusting_test_ca());

  const auto first = client.send(put(https(tls_server.port), "<plist>one</plist>"));
  ASSERT_TRUE(first.ok()) << describe(first);
  EXPECT_EQ(first.response->body, "<plist>one</plist>");
  EXPECT_TRUE(first.tls);
  EXPECT_TRUE(first.tls_verified);
  EXPECT_FALSE(first.reused_connection);
  // The default https port is left out of Host; any other is written.
  EXPECT_EQ(find_header(first.request.headers, "Host"), "127.0.0.1:" + std::to_string(tls_server.port));

  const auto second = client.send(put(https(tls_server.port), "<plist>two</plist>"));
  ASSERT_TRUE(second.ok()) << describe(second);
  EXPECT_EQ(second.response->body, "<plist>two</plist>");
  EXPECT_TRUE(second.reused_connection);
  EXPECT_TRUE(second.tls_verified);
  EXPECT_EQ(tls_server.connections(), 1U) << "the server saw more than one connection";

  const auto seen = tls_server.seen();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_TRUE(seen[0].tls);
  EXPECT_TRUE(seen[0].peer_certificate_der.empty()) << "no client certificate was asked for";
}

TEST(TlsClient, VerifiesAHostNameFromTheUrl) {
  RecordingServer tls_server(serving(test_pki().server));
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(tls_server.port, "localhost")));
  ASSERT_TRUE(ex.ok()) << describe(ex);
  EXPECT_TRUE(ex.tls_verified);
}

TEST(TlsClient, MarksPlainExchangesAsNotTls) {
  RecordingServer plain_server(std::nullopt);
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put("http://127.0.0.1:" + std::to_string(plain_server.port) + "/mdm"));
  ASSERT_TRUE(ex.ok()) << describe(ex);
  EXPECT_FALSE(ex.tls);
  EXPECT_FALSE(ex.tls_verified);
  EXPECT_FALSE(plain_server.seen().at(0).tls);
}

TEST(TlsClient, KeepsTheCertificateTheServerPresented) {
  RecordingServer tls_server(serving(test_pki().server));
  RecordingServer plain_server(std::nullopt);
  HttpClient client(short_limits(), trusting_test_ca());
  EXPECT_TRUE(client.server_certificate_der().empty());
  ASSERT_TRUE(client.send(put(https(tls_server.port))).ok());
  EXPECT_EQ(client.server_certificate_der(), test_pki().server.cert_der);
  // Kept until the next handshake, which a plain connection does not make...
  ASSERT_TRUE(client.send(put("http://127.0.0.1:" + std::to_string(plain_server.port) + "/mdm")).ok());
  EXPECT_EQ(client.server_certificate_der(), test_pki().server.cert_der);
  // ...and a failed one clears it.
  RecordingServer untrusted(serving(test_pki().untrusted_server));
  EXPECT_FALSE(client.send(put(https(untrusted.port))).ok());
  EXPECT_TRUE(client.server_certificate_der().empty());
}

TEST(TlsClient, SwitchesBetweenPlainAndTlsServers) {
  RecordingServer tls_server(serving(test_pki().server));
  RecordingServer plain_server(std::nullopt);
  HttpClient client(short_limits(), trusting_test_ca());
  const std::string plain_url = "http://127.0.0.1:" + std::to_string(plain_server.port) + "/mdm";
  for (int round = 0; round < 2; ++round) {
    const auto secure = client.send(put(https(tls_server.port)));
    ASSERT_TRUE(secure.ok()) << describe(secure);
    EXPECT_TRUE(secure.tls_verified);
    const auto plain = client.send(put(plain_url));
    ASSERT_TRUE(plain.ok()) << describe(plain);
    EXPECT_FALSE(plain.tls);
  }
}

TEST(TlsClient, OpensANewConnectionAfterTheServerSaidCloseWithoutWaitingLong) {
  RecordingServer tls_server(serving(test_pki().server), short_server_limits(), /*close_each=*/true);
  HttpClient client(short_limits(), trusting_test_ca());
  const auto first = client.send(put(https(tls_server.port)));
  ASSERT_TRUE(first.ok()) << describe(first);
  // The close_notify exchange after "Connection: close" is quick with a server that answers.
  EXPECT_LT(first.elapsed, 500ms);
  const auto second = client.send(put(https(tls_server.port)));
  ASSERT_TRUE(second.ok()) << describe(second);
  EXPECT_FALSE(second.reused_connection);
  EXPECT_EQ(tls_server.connections(), 2U);
}

TEST(TlsClient, ReconnectsOnceWhenTheServerClosedAnIdleTlsConnection) {
  ServerLimits limits;
  limits.read_timeout = 150ms;  // the server drops the idle connection well before the next send
  RecordingServer tls_server(serving(test_pki().server), limits);
  HttpClient client(short_limits(), trusting_test_ca());
  ASSERT_TRUE(client.send(put(https(tls_server.port))).ok());
  std::this_thread::sleep_for(400ms);
  const auto second = client.send(put(https(tls_server.port)));
  ASSERT_TRUE(second.ok()) << describe(second);
  EXPECT_FALSE(second.reused_connection);
  EXPECT_TRUE(second.tls_verified);
}

TEST(TlsServer, RefusesAnOversizedBodyOverTls) {
  ServerLimits limits = short_server_limits();
  limits.max_body_bytes = 100;
  RecordingServer tls_server(serving(test_pki().server), limits);
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(tls_server.port), std::string(1000, 'x')));
  ASSERT_TRUE(ex.ok()) << describe(ex);
  EXPECT_EQ(ex.response->status, 413);
  EXPECT_LT(ex.elapsed, 2s);
  EXPECT_TRUE(tls_server.seen().empty());
}

// ---- Servers a device must refuse --------------------------------------------------------

TEST(TlsClient, ReportsACertificateFromAnUnknownCa) {
  RecordingServer tls_server(serving(test_pki().untrusted_server));
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(tls_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_untrusted_certificate) << describe(ex);
  EXPECT_NE(ex.error_detail.find("unable to get local issuer certificate"), std::string::npos) << ex.error_detail;
  EXPECT_FALSE(ex.response);
  EXPECT_TRUE(ex.tls);
  EXPECT_FALSE(ex.tls_verified);
  EXPECT_LT(ex.elapsed, 2s);
  EXPECT_TRUE(tls_server.seen().empty());
}

TEST(TlsClient, ReportsAnUnknownCaAgainstTheSystemStoreToo) {
  RecordingServer tls_server(serving(test_pki().server));
  HttpClient client(short_limits());  // trusts the system's CAs, which never issued the test CA
  const auto ex = client.send(put(https(tls_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_untrusted_certificate) << describe(ex);
}

TEST(TlsClient, InsecureAcceptsAnyCertificateButSaysItDidNotVerify) {
  RecordingServer tls_server(serving(test_pki().untrusted_server));
  TlsClientConfig tls;
  tls.insecure = true;
  HttpClient client(short_limits(), tls);
  const auto ex = client.send(put(https(tls_server.port)));
  ASSERT_TRUE(ex.ok()) << describe(ex);
  EXPECT_TRUE(ex.tls);
  EXPECT_FALSE(ex.tls_verified);
}

TEST(TlsClient, ReportsACertificateForAnotherName) {
  RecordingServer tls_server(serving(test_pki().other_name));
  HttpClient client(short_limits(), trusting_test_ca());

  const auto by_address = client.send(put(https(tls_server.port)));
  EXPECT_EQ(by_address.error, TransportError::tls_name_mismatch) << describe(by_address);
  EXPECT_NE(by_address.error_detail.find("IP address mismatch"), std::string::npos) << by_address.error_detail;
  EXPECT_NE(by_address.error_detail.find("127.0.0.1"), std::string::npos) << by_address.error_detail;

  const auto by_name = client.send(put(https(tls_server.port, "localhost")));
  EXPECT_EQ(by_name.error, TransportError::tls_name_mismatch) << describe(by_name);
  EXPECT_NE(by_name.error_detail.find("hostname mismatch"), std::string::npos) << by_name.error_detail;
}

TEST(TlsClient, ReportsAnExpiredCertificate) {
  RecordingServer tls_server(serving(test_pki().expired));
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(tls_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_certificate_expired) << describe(ex);
  EXPECT_NE(ex.error_detail.find("certificate has expired"), std::string::npos) << ex.error_detail;
}

// ---- Client certificates -----------------------------------------------------------------

TEST(MutualTls, HandsTheVerifiedClientCertificateToTheHandler) {
  RecordingServer tls_server(requiring_client_certificates(test_pki().server));
  ASSERT_NE(tls_server.port, 0) << tls_server.error;
  HttpClient client(short_limits(), with_identity(test_pki().client));
  const auto ex = client.send(put(https(tls_server.port)));
  ASSERT_TRUE(ex.ok()) << describe(ex);
  EXPECT_TRUE(ex.tls_verified);
  const auto seen = tls_server.seen();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_TRUE(seen[0].tls);
  ASSERT_FALSE(seen[0].peer_certificate_der.empty());
  EXPECT_EQ(seen[0].peer_certificate_der, test_pki().client.cert_der);
}

TEST(MutualTls, RejectsAClientWithoutACertificate) {
  RecordingServer tls_server(requiring_client_certificates(test_pki().server));
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(tls_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_client_certificate_rejected) << describe(ex);
  EXPECT_NE(ex.error_detail.find("certificate required"), std::string::npos) << ex.error_detail;
  EXPECT_LT(ex.elapsed, 2s);
  EXPECT_TRUE(tls_server.seen().empty()) << "the handler ran for an unauthenticated client";
}

TEST(MutualTls, RejectsAClientCertificateFromAnotherCa) {
  RecordingServer tls_server(requiring_client_certificates(test_pki().server));
  HttpClient client(short_limits(), with_identity(test_pki().foreign_client));
  const auto ex = client.send(put(https(tls_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_client_certificate_rejected) << describe(ex);
  EXPECT_NE(ex.error_detail.find("unknown ca"), std::string::npos) << ex.error_detail;
  EXPECT_TRUE(tls_server.seen().empty());
}

TEST(MutualTls, AsksForButDoesNotRequireAClientCertificate) {
  ServerTls tls = requiring_client_certificates(test_pki().server);
  tls.require_client_certificate = false;
  RecordingServer tls_server(tls);

  HttpClient anonymous(short_limits(), trusting_test_ca());
  const auto without = anonymous.send(put(https(tls_server.port)));
  ASSERT_TRUE(without.ok()) << describe(without);
  HttpClient device(short_limits(), with_identity(test_pki().client));
  const auto with = device.send(put(https(tls_server.port)));
  ASSERT_TRUE(with.ok()) << describe(with);

  const auto seen = tls_server.seen();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_TRUE(seen[0].peer_certificate_der.empty());
  EXPECT_EQ(seen[1].peer_certificate_der, test_pki().client.cert_der);
}

TEST(MutualTls, SendsAndAcceptsIntermediatesOnBothSides) {
  ServerTls tls = requiring_client_certificates(test_pki().server_via_intermediate);
  tls.cert_pem += test_pki().intermediate.cert_pem;  // the server's chain follows its certificate
  RecordingServer tls_server(tls);
  ASSERT_NE(tls_server.port, 0) << tls_server.error;

  TlsClientConfig config = with_identity(test_pki().client_via_intermediate);
  HttpClient without_chain(short_limits(), config);
  const auto refused = without_chain.send(put(https(tls_server.port)));
  EXPECT_EQ(refused.error, TransportError::tls_client_certificate_rejected) << describe(refused);

  config.client_chain_pem = test_pki().intermediate.cert_pem;
  HttpClient device(short_limits(), config);
  const auto ex = device.send(put(https(tls_server.port)));
  ASSERT_TRUE(ex.ok()) << describe(ex);
  EXPECT_TRUE(ex.tls_verified);
  const auto seen = tls_server.seen();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].peer_certificate_der, test_pki().client_via_intermediate.cert_der);
}

// ---- Trust loaded once --------------------------------------------------------------------

// A server certificate for 127.0.0.1 and localhost from a CA made for the calling test alone,
// so that no other test of this binary has loaded that CA's trust before it.
struct FreshCa {
  TestIdentity ca = testing::make_test_identity({.common_name = "fresh CA", .subject_alt_names = {}, .ca = true});
  TestIdentity server =
      testing::make_test_identity({.common_name = "127.0.0.1", .subject_alt_names = "IP:127.0.0.1,DNS:localhost"}, &ca);
};

// Loading the trust per connection cost 36 to 106 ms for the system's store; a run makes
// hundreds. Every client of the process with the same trust shares the one loaded first.
TEST(SharedTrust, LoadsACaOnceForEveryClientAndConnectionOnEveryThread) {
  const FreshCa fresh;
  RecordingServer tls_server(serving(fresh.server));
  TlsClientConfig config;
  config.trusted_ca_pem = fresh.ca.cert_pem;
  const auto before = trust_loads();
  std::mutex mutex;
  std::vector<std::string> failures;
  auto run_client = [&](const std::string& name) {
    HttpClient client(short_limits(), config);
    for (int r = 0; r < 2; ++r) {
      const auto ex = client.send(put(https(tls_server.port)));
      client.close();  // the next send makes a new connection
      if (!ex.ok() || !ex.tls_verified) {
        std::lock_guard lock(mutex);
        failures.push_back(name + ": " + describe(ex));
      }
    }
  };
  run_client("first");
  std::vector<std::thread> threads;
  for (int c = 0; c < 4; ++c) threads.emplace_back(run_client, "thread " + std::to_string(c));
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << (failures.empty() ? std::string() : failures.front());
  EXPECT_EQ(tls_server.connections(), 10U);
  EXPECT_EQ(trust_loads() - before, 1U) << "the CA was loaded again for another client or connection";
}

TEST(SharedTrust, LoadsTheSystemStoreOnceAndNothingWhenInsecure) {
  RecordingServer tls_server(serving(test_pki().server));
  {
    HttpClient first(short_limits());  // the system's store, unless an earlier test loaded it
    EXPECT_EQ(first.send(put(https(tls_server.port))).error, TransportError::tls_untrusted_certificate);
  }
  const auto loaded = trust_loads();
  for (int c = 0; c < 3; ++c) {
    HttpClient client(short_limits());
    const auto ex = client.send(put(https(tls_server.port)));
    EXPECT_EQ(ex.error, TransportError::tls_untrusted_certificate) << describe(ex);
  }
  TlsClientConfig insecure;
  insecure.insecure = true;
  HttpClient unverified(short_limits(), insecure);
  EXPECT_TRUE(unverified.send(put(https(tls_server.port))).ok());
  EXPECT_EQ(trust_loads(), loaded) << "a client loaded the system's store again, or an insecure one loaded any";
}

// The shared context holds the trust only: each connection still verifies its own server's
// certificate, chain and name.
TEST(SharedTrust, EveryConnectionStillVerifiesItsServer) {
  RecordingServer trusted(serving(test_pki().server));
  RecordingServer unknown_ca(serving(test_pki().untrusted_server));
  RecordingServer other_name(serving(test_pki().other_name));
  HttpClient a(short_limits(), trusting_test_ca());
  HttpClient b(short_limits(), trusting_test_ca());
  for (int round = 0; round < 2; ++round) {
    for (HttpClient* client : {&a, &b}) {
      const auto ok = client->send(put(https(trusted.port)));
      ASSERT_TRUE(ok.ok()) << describe(ok);
      EXPECT_TRUE(ok.tls_verified);
      const auto refused = client->send(put(https(unknown_ca.port)));
      EXPECT_EQ(refused.error, TransportError::tls_untrusted_certificate) << describe(refused);
      EXPECT_FALSE(refused.tls_verified);
      const auto misnamed = client->send(put(https(other_name.port)));
      EXPECT_EQ(misnamed.error, TransportError::tls_name_mismatch) << describe(misnamed);
    }
  }
  EXPECT_EQ(trusted.seen().size(), 4U);
  EXPECT_TRUE(unknown_ca.seen().empty());
  EXPECT_TRUE(other_name.seen().empty());
}

// Client certificates go on each connection, not on the shared context: clients on several
// threads present their own at once, one with its intermediate, one the server refuses.
TEST(SharedTrust, EachClientPresentsItsOwnCertificate) {
  ServerTls tls = requiring_client_certificates(test_pki().server);
  RecordingServer tls_server(tls);
  tls_server.server.start(2);
  struct Device {
    const TestIdentity* identity;
    std::string chain_pem;
    bool accepted;
  };
  const std::vector<Device> devices = {{&test_pki().client, "", true},
                                       {&test_pki().client_via_intermediate, test_pki().intermediate.cert_pem, true},
                                       {&test_pki().foreign_client, "", false},
                                       {&test_pki().client, "", true}};
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (std::size_t d = 0; d < devices.size(); ++d) {
    threads.emplace_back([&, d] {
      TlsClientConfig config = with_identity(*devices[d].identity);
      config.client_chain_pem = devices[d].chain_pem;
      HttpClient client(short_limits(), config);
      for (int r = 0; r < 3; ++r) {
        const std::string body = std::to_string(d) + "/" + std::to_string(r);
        const auto ex = client.send(put(https(tls_server.port), body));
        client.close();
        const bool as_expected =
            devices[d].accepted ? ex.ok() : ex.error == TransportError::tls_client_certificate_rejected;
        if (!as_expected) {
          std::lock_guard lock(mutex);
          failures.push_back(body + ": " + describe(ex));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << (failures.empty() ? std::string() : failures.front());
  const auto seen = tls_server.seen();
  EXPECT_EQ(seen.size(), 9U);
  for (const auto& request : seen) {
    const auto d = static_cast<std::size_t>(request.body[0] - '0');
    ASSERT_LT(d, devices.size()) << request.body;
    EXPECT_EQ(request.peer_certificate_der, devices[d].identity->cert_der) << request.body;
  }
}

// ---- Many clients, and stopping -----------------------------------------------------------

TEST(TlsServer, ServesManyTlsClientsAtOnceOnSeveralThreads) {
  RecordingServer tls_server(requiring_client_certificates(test_pki().server));
  tls_server.server.start(3);  // three more threads next to the one RecordingServer started
  constexpr int kClients = 8;
  constexpr int kRequests = 5;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::vector<std::string> failures;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client(short_limits(), with_identity(test_pki().client));
      for (int r = 0; r < kRequests; ++r) {
        const std::string body = std::to_string(c) + "/" + std::to_string(r);
        const auto ex = client.send(put(https(tls_server.port), body));
        if (!ex.ok() || ex.response->body != body || (r > 0 && !ex.reused_connection)) {
          std::lock_guard lock(mutex);
          failures.push_back(body + ": " + describe(ex));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << (failures.empty() ? std::string() : failures.front());
  EXPECT_EQ(tls_server.seen().size(), static_cast<std::size_t>(kClients * kRequests));
  EXPECT_EQ(tls_server.connections(), static_cast<std::size_t>(kClients));
}

TEST(TlsServer, StopClosesOpenTlsConnectionsAndHalfDoneHandshakes) {
  auto tls_server = std::make_unique<RecordingServer>(serving(test_pki().server));
  HttpClient client(short_limits(), trusting_test_ca());
  ASSERT_TRUE(client.send(put(https(tls_server->port))).ok());  // leaves a kept-alive connection
  const int silent = testing::connect_raw(tls_server->port);    // a handshake that never starts
  ASSERT_GE(silent, 0);
  std::this_thread::sleep_for(50ms);  // let the server accept it
  const auto port = tls_server->port;
  tls_server.reset();

  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(testing::read_until_close(silent).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "the server left a connection open";
  ::close(silent);
  const auto after = client.send(put(https(port)));
  EXPECT_FALSE(after.ok());
  EXPECT_EQ(after.error, TransportError::connect_failed) << describe(after);
}

// ---- Wrong protocol, silence and bad configuration ---------------------------------------

TEST(TlsServer, DropsAPlainHttpClientAndKeepsServing) {
  RecordingServer tls_server(serving(test_pki().server));
  HttpClient plain_client(short_limits());
  const auto plain = plain_client.send(put("http://127.0.0.1:" + std::to_string(tls_server.port) + "/mdm"));
  EXPECT_FALSE(plain.ok());
  EXPECT_TRUE(plain.error == TransportError::closed_before_response ||
              plain.error == TransportError::connection_reset || plain.error == TransportError::bad_response)
      << describe(plain);
  EXPECT_LT(plain.elapsed, 2s);

  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(tls_server.port)));
  EXPECT_TRUE(ex.ok()) << describe(ex);
}

TEST(TlsClient, FailsTheHandshakeWithAPlainServerInTime) {
  RecordingServer plain_server(std::nullopt);
  HttpClient client(short_limits(), trusting_test_ca());
  const auto ex = client.send(put(https(plain_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_handshake_failed) << describe(ex);
  EXPECT_FALSE(ex.error_detail.empty());
  EXPECT_LT(ex.elapsed, 2s);
  EXPECT_TRUE(plain_server.seen().empty());
}

TEST(TlsClient, GivesUpOnAHandshakeThatStalls) {
  RawServer raw([](RawServer& server, int&, int) { server.stall(); });
  auto limits = short_limits();
  limits.tls_handshake_timeout = 300ms;
  HttpClient client(limits, trusting_test_ca());
  const auto ex = client.send(put(https(raw.port())));
  EXPECT_EQ(ex.error, TransportError::tls_handshake_failed) << describe(ex);
  EXPECT_NE(ex.error_detail.find("timed out"), std::string::npos) << ex.error_detail;
  EXPECT_GE(ex.elapsed, 250ms);
  EXPECT_LT(ex.elapsed, 2s);
}

TEST(TlsServer, DropsAClientThatNeverStartsTheHandshake) {
  ServerLimits limits;
  limits.read_timeout = 300ms;
  RecordingServer tls_server(serving(test_pki().server), limits);
  const int fd = testing::connect_raw(tls_server.port);
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  const auto answer = testing::read_until_close(fd);  // the server hangs up; bounded at 5 s anyway
  const auto waited = std::chrono::steady_clock::now() - start;
  ::close(fd);
  EXPECT_TRUE(answer.empty());
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 2s);

  HttpClient client(short_limits(), trusting_test_ca());
  EXPECT_TRUE(client.send(put(https(tls_server.port))).ok());
}

TEST(TlsClient, ReportsAClientPemThatDoesNotLoadWithoutThrowing) {
  RecordingServer tls_server(serving(test_pki().server));
  TlsClientConfig tls = trusting_test_ca();
  tls.client_cert_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  tls.client_key_pem = "garbage";
  HttpClient client(short_limits(), tls);
  for (int i = 0; i < 2; ++i) {  // every https exchange fails alike, not only the first
    const auto ex = client.send(put(https(tls_server.port)));
    EXPECT_EQ(ex.error, TransportError::tls_handshake_failed) << describe(ex);
    EXPECT_EQ(ex.error_detail.rfind("client certificate/key PEM could not be loaded: ", 0), 0U) << ex.error_detail;
    EXPECT_FALSE(ex.response);
  }
  EXPECT_TRUE(tls_server.seen().empty());

  // A well-formed certificate with another certificate's key.
  tls = with_identity(test_pki().client);
  tls.client_key_pem = test_pki().foreign_client.key_pem;
  HttpClient mismatched(short_limits(), tls);
  const auto ex = mismatched.send(put(https(tls_server.port)));
  EXPECT_EQ(ex.error, TransportError::tls_handshake_failed);
  EXPECT_NE(ex.error_detail.find("mismatch"), std::string::npos) << ex.error_detail;
}

TEST(TlsClient, ReportsATrustedCaPemThatDoesNotLoad) {
  TlsClientConfig tls;
  tls.trusted_ca_pem = "not a certificate";
  HttpClient client(short_limits(), tls);
  const auto ex = client.send(put(https(1)));  // nothing is connected to: the PEM fails first
  EXPECT_EQ(ex.error, TransportError::tls_handshake_failed);
  EXPECT_EQ(ex.error_detail.rfind("trusted CA PEM could not be loaded: ", 0), 0U) << ex.error_detail;
}

TEST(TlsServer, ListenReportsACertificateOrKeyThatDoesNotLoad) {
  ServerTls broken;
  broken.cert_pem = "garbage";
  broken.key_pem = test_pki().server.key_pem;
  HttpServer server([](const ServerRequest&) { return ServerResponse{}; }, {}, broken);
  std::string error;
  const auto refused3 = server.listen("127.0.0.1", 0);
  EXPECT_FALSE(refused3);
  error = refused3 ? std::string() : refused3.error().message;
  EXPECT_EQ(error.rfind("TLS certificate/key could not be loaded: ", 0), 0U) << error;

  ServerTls mismatched = serving(test_pki().server);
  mismatched.key_pem = test_pki().client.key_pem;
  HttpServer other([](const ServerRequest&) { return ServerResponse{}; }, {}, mismatched);
  error.clear();
  const auto refused4 = other.listen("127.0.0.1", 0);
  EXPECT_FALSE(refused4);
  error = refused4 ? std::string() : refused4.error().message;
  EXPECT_EQ(error.rfind("TLS certificate/key could not be loaded: ", 0), 0U) << error;

  ServerTls bad_ca = serving(test_pki().server);
  bad_ca.client_ca_pem = "garbage";
  HttpServer third([](const ServerRequest&) { return ServerResponse{}; }, {}, bad_ca);
  error.clear();
  const auto refused5 = third.listen("127.0.0.1", 0);
  EXPECT_FALSE(refused5);
  error = refused5 ? std::string() : refused5.error().message;
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace mdmc::net
