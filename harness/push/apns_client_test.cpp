// ApnsClient against endpoints that are not a well-behaved APNs: one that never answers, one
// that speaks HTTP/1.1 only, one whose answer is over the cap. Each ends as an error value
// within the client's deadlines.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness/net/http_server.hpp"
#include "harness/push/apns_client.hpp"
#include "harness/push/push_test_support.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "harness/testing/raw_peer.hpp"

namespace mdmc::push {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::client_config;
using testing::kMagic;
using testing::kToken;
using testing::kTopic;
using testing::push_pki;

int select_h2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
              void*) {
  static constexpr unsigned char kH2[] = {2, 'h', '2'};
  return SSL_select_next_proto(const_cast<unsigned char**>(out), outlen, kH2, sizeof kH2, in, inlen) ==
                 OPENSSL_NPN_NEGOTIATED
             ? SSL_TLSEXT_ERR_OK
             : SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Completes the TLS handshake with ALPN h2, then reads and never writes a byte.
class SilentH2Server {
 public:
  SilentH2Server()
      : server_([this](mdmc::testing::RawServer& raw, int& fd, int) {
          std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free);
          load(ctx.get());
          SSL_CTX_set_alpn_select_cb(ctx.get(), select_h2, nullptr);
          std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
          SSL_set_fd(ssl.get(), fd);
          if (SSL_accept(ssl.get()) == 1) {
            handshakes_++;
            raw.stall();
          }
          ERR_clear_error();
        }) {}
  std::uint16_t port() const { return server_.port(); }
  int handshakes() const { return handshakes_.load(); }

 private:
  static void load(SSL_CTX* ctx) {
    const auto& identity = push_pki().server;
    BIO* cert = BIO_new_mem_buf(identity.cert_pem.data(), static_cast<int>(identity.cert_pem.size()));
    BIO* key = BIO_new_mem_buf(identity.key_pem.data(), static_cast<int>(identity.key_pem.size()));
    X509* x509 = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
    SSL_CTX_use_certificate(ctx, x509);
    SSL_CTX_use_PrivateKey(ctx, pkey);
    X509_free(x509);
    EVP_PKEY_free(pkey);
    BIO_free(cert);
    BIO_free(key);
  }
  std::atomic<int> handshakes_{0};
  mdmc::testing::RawServer server_;
};

TEST(ApnsClientAgainstStrangers, AnEndpointThatNeverAnswersTimesOut) {
  std::signal(SIGPIPE, SIG_IGN);
  SilentH2Server server;
  auto config = client_config(server.port());
  config.response_timeout = 300ms;
  ApnsClient client(config);
  const auto start = Clock::now();
  const auto results = client.send_all({ApnsPush::mdm(kToken, kMagic, kTopic), ApnsPush::mdm(kToken, kMagic, kTopic)});
  EXPECT_LT(Clock::now() - start, 3s);
  for (const auto& result : results) {
    EXPECT_EQ(result.error, ApnsError::response_timeout) << apns_error_name(result.error) << result.error_detail;
    EXPECT_EQ(result.status, 0);
  }
  EXPECT_EQ(server.handshakes(), 1);
}

TEST(ApnsClientAgainstStrangers, AnHttp11OnlyServerIsNoH2) {
  net::ServerTls tls;
  tls.cert_pem = push_pki().server.cert_pem;
  tls.key_pem = push_pki().server.key_pem;
  net::HttpServer server([](const net::ServerRequest&) { return net::ServerResponse{}; }, {}, tls);
  const auto port = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.message();
  server.start();
  const auto result = ApnsClient(client_config(*port)).send(ApnsPush::mdm(kToken, kMagic, kTopic));
  EXPECT_EQ(result.error, ApnsError::no_h2) << apns_error_name(result.error) << ": " << result.error_detail;
}

class ApnsClientAgainstNghttpd : public mdmc::testing::FolderTest {
 protected:
  ApnsClientAgainstNghttpd() : FolderTest("apns_client_nghttpd") {}
};

TEST_F(ApnsClientAgainstNghttpd, AnAnswerOverTheCapIsRefusedAndTheOthersStillCount) {
  if (mdmc::testing::run_shell("command -v nghttpd", 5s).exit_code != 0) GTEST_SKIP() << "nghttpd is not installed";
  ASSERT_TRUE(pki::write_identity(push_pki().server, dir_ / "server.pem", dir_ / "server.key").ok());
  std::filesystem::create_directories(dir_ / "root");
  std::ofstream(dir_ / "root" / "big") << std::string(100 * 1024, 'b');
  std::ofstream(dir_ / "root" / "small") << "{}";
  const std::uint16_t port = mdmc::testing::unused_port();
  auto nghttpd =
      mdmc::testing::Process::spawn({"nghttpd", "-a", "127.0.0.1", "-d", (dir_ / "root").string(), std::to_string(port),
                                     (dir_ / "server.key").string(), (dir_ / "server.pem").string()});
  ASSERT_TRUE(nghttpd.ok()) << nghttpd.message();
  auto config = client_config(port);
  config.max_response_bytes = 16 * 1024;
  ApnsClient client(config);
  ApnsPush big;
  big.method = "GET";
  big.path = "/big";
  ApnsPush small = big;
  small.path = "/small";
  std::vector<ApnsResult> results;
  for (int attempt = 0; attempt < 50; ++attempt) {  // until nghttpd listens
    results = client.send_all({big, small});
    if (results[0].error != ApnsError::connect_failed) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(results[0].error, ApnsError::response_too_large)
      << apns_error_name(results[0].error) << ": " << results[0].error_detail;
  EXPECT_LE(results[0].body.size(), config.max_response_bytes);
  EXPECT_EQ(results[1].error, ApnsError::none) << results[1].error_detail;
  EXPECT_EQ(results[1].status, 200);
  EXPECT_EQ(results[1].body, "{}");
  nghttpd->signal(SIGTERM);
  nghttpd->wait_or_kill(5s);
}

}  // namespace
}  // namespace mdmc::push
