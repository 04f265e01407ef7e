// FakeApns against clients that misbehave on purpose: garbage after the preface, a header
// block over the cap, a body over the cap, streams opened and never finished, a flood of
// streams, silence, too many connections. The frames are written by hand here (and only here)
// because no well-behaved HTTP/2 library sends them. Each case is bounded in time and ends in
// a refused stream, a GOAWAY or a closed connection, and the endpoint serves on afterwards.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness/push/apns_client.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/push/push_test_support.hpp"
#include "harness/testing/raw_peer.hpp"

namespace mdmc::push {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::client_config;
using testing::endpoint_config;
using testing::kMagic;
using testing::kToken;
using testing::kTopic;
using testing::push_pki;

constexpr std::uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kGoaway = 0x7;
constexpr std::uint8_t kEndStream = 0x1, kEndHeaders = 0x4;
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, std::string_view payload) {
  std::string out;
  const auto length = static_cast<std::uint32_t>(payload.size());
  out += static_cast<char>(length >> 16);
  out += static_cast<char>(length >> 8);
  out += static_cast<char>(length);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  for (int shift = 24; shift >= 0; shift -= 8)
    out += static_cast<char>((stream >> shift) & (shift == 24 ? 0x7f : 0xff));
  out += payload;
  return out;
}

// HPACK integer with a 7-bit prefix (RFC 7541 §5.1), Huffman off.
void hpack_length(std::string& out, std::size_t n) {
  if (n < 127) {
    out += static_cast<char>(n);
    return;
  }
  out += static_cast<char>(127);
  n -= 127;
  while (n >= 128) {
    out += static_cast<char>((n % 128) | 128);
    n /= 128;
  }
  out += static_cast<char>(n);
}

// A header block of "literal without indexing, new name" fields.
std::string header_block(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    out += '\0';
    hpack_length(out, name.size());
    out += name;
    hpack_length(out, value.size());
    out += value;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> request_fields() {
  return {{":method", "POST"},
          {":scheme", "https"},
          {":authority", "api.push.apple.com"},
          {":path", std::string("/3/device/") + kToken},
          {"apns-topic", kTopic}};
}

struct Frame {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;
  std::string payload;
  std::uint32_t error_code() const {  // RST_STREAM's, or GOAWAY's
    const std::size_t at = type == kGoaway ? 4 : 0;
    if (payload.size() < at + 4) return 0xffffffff;
    std::uint32_t code = 0;
    for (std::size_t i = 0; i < 4; ++i) code = code << 8 | static_cast<unsigned char>(payload[at + i]);
    return code;
  }
};

// A TLS client on plain OpenSSL, with ALPN h2 and optionally a client certificate, that sends
// whatever it is told and reads frames back, every read bounded by the socket's timeouts.
class RawH2 {
 public:
  RawH2(std::uint16_t port, const pki::Identity* certificate = nullptr) {
    // A write to a connection the endpoint closed must fail here, not kill the test binary.
    std::signal(SIGPIPE, SIG_IGN);
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    static constexpr unsigned char kH2[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx_.get(), kH2, sizeof kH2);
    if (certificate != nullptr) load(*certificate);
    fd_ = mdmc::testing::connect_raw(port);
    if (fd_ < 0) return;
    mdmc::testing::set_io_timeouts(fd_);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    connected_ = SSL_connect(ssl_.get()) == 1;
    ERR_clear_error();
  }
  ~RawH2() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const int n = SSL_write(ssl_.get(), bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20)));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The next frame, or nothing when the connection closed or `limit` passed.
  std::optional<Frame> next(std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (buffer_.size() >= 9) {
        const std::size_t length = (static_cast<unsigned char>(buffer_[0]) << 16) |
                                   (static_cast<unsigned char>(buffer_[1]) << 8) |
                                   static_cast<unsigned char>(buffer_[2]);
        if (buffer_.size() >= 9 + length) {
          Frame f;
          f.type = static_cast<std::uint8_t>(buffer_[3]);
          f.flags = static_cast<std::uint8_t>(buffer_[4]);
          for (int i = 5; i < 9; ++i) f.stream = f.stream << 8 | static_cast<unsigned char>(buffer_[i]);
          f.stream &= 0x7fffffff;
          f.payload = buffer_.substr(9, length);
          buffer_.erase(0, 9 + length);
          return f;
        }
      }
      char chunk[16384];
      const int n = SSL_read(ssl_.get(), chunk, sizeof chunk);
      if (n <= 0) {
        ERR_clear_error();
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    return std::nullopt;
  }

  // Frames until one matches, the connection closes or `limit` passes.
  std::optional<Frame> find(const std::function<bool(const Frame&)>& match, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto f = next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      if (!f) return std::nullopt;
      if (match(*f)) return f;
    }
    return std::nullopt;
  }

  // True when the endpoint closes the connection within `limit` (frames before that are skipped).
  bool closed_within(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (!next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
        return Clock::now() < deadline;
      }
    }
    return false;
  }

  void start_session() { send(std::string(kPreface) + frame(kSettings, 0, 0, "")); }

 private:
  void load(const pki::Identity& identity) {
    std::unique_ptr<BIO, decltype(&BIO_free)> cert(
        BIO_new_mem_buf(identity.cert_pem.data(), static_cast<int>(identity.cert_pem.size())), &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> key(
        BIO_new_mem_buf(identity.key_pem.data(), static_cast<int>(identity.key_pem.size())), &BIO_free);
    X509* x509 = PEM_read_bio_X509(cert.get(), nullptr, nullptr, nullptr);
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr);
    SSL_CTX_use_certificate(ctx_.get(), x509);
    SSL_CTX_use_PrivateKey(ctx_.get(), pkey);
    X509_free(x509);
    EVP_PKEY_free(pkey);
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, &SSL_CTX_free};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, &SSL_free};
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

struct Hostile : ::testing::Test {
  void SetUp() override { start(endpoint_config()); }
  void start(FakeApnsConfig config) {
    endpoint = std::make_unique<FakeApns>(std::move(config));
    auto started = endpoint->start();
    ASSERT_TRUE(started.ok()) << started.message();
    port = *started;
  }
  // The endpoint still serves a well-behaved client.
  void expect_still_serving() {
    auto config = client_config(port);
    config.certificate = push_pki().push_certificate;
    const auto result = ApnsClient(config).send(ApnsPush::mdm(kToken, kMagic, kTopic));
    EXPECT_TRUE(result.ok()) << apns_error_name(result.error) << ": " << result.error_detail;
  }
  std::unique_ptr<FakeApns> endpoint;
  std::uint16_t port = 0;
};

TEST_F(Hostile, GarbageAfterThePrefaceEndsInGoawayAndClose) {
  RawH2 client(port);
  ASSERT_TRUE(client.connected());
  client.start_session();
  client.send(std::string("\x00\x00\x05\xfe\x00\x00\x00\x00\x00garbagegarbagegarbage", 30) + std::string(100, '\xff'));
  const auto start = Clock::now();
  const auto goaway = client.find([](const Frame& f) { return f.type == kGoaway; });
  ASSERT_TRUE(goaway.has_value());
  EXPECT_NE(goaway->error_code(), 0u);
  EXPECT_TRUE(client.closed_within(3000ms));
  EXPECT_LT(Clock::now() - start, 4s);
  expect_still_serving();
}

TEST_F(Hostile, NoHttp2PrefaceIsClosed) {
  RawH2 client(port);
  ASSERT_TRUE(client.connected());
  client.send("POST /3/device/abc HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(client.closed_within(3000ms));
  EXPECT_EQ(endpoint->stats().pushes, 0u);
  expect_still_serving();
}

TEST_F(Hostile, AHeaderBlockOverTheCapResetsTheStream) {
  RawH2 client(port);
  ASSERT_TRUE(client.connected());
  client.start_session();
  auto fields = request_fields();
  fields.emplace_back("x-padding", std::string(12000, 'p'));  // over the 8 KiB cap, under one frame
  client.send(frame(kHeaders, kEndHeaders | kEndStream, 1, header_block(fields)));
  const auto reset = client.find([](const Frame& f) { return f.type == kRstStream && f.stream == 1; });
  ASSERT_TRUE(reset.has_value());
  EXPECT_EQ(reset->error_code(), 0xbu);  // ENHANCE_YOUR_CALM
  EXPECT_EQ(endpoint->stats().pushes, 0u);
  EXPECT_GE(endpoint->stats().streams_refused, 1u);
  // The connection goes on: a small request on stream 3 gets its answer (403: no credentials).
  client.send(frame(kHeaders, kEndHeaders, 3, header_block(request_fields())) + frame(kData, kEndStream, 3, "{}"));
  const auto answer = client.find([](const Frame& f) { return f.type == kHeaders && f.stream == 3; });
  EXPECT_TRUE(answer.has_value());
}

TEST_F(Hostile, ABodyOverTheCapIsAnswered413AndNotBuffered) {
  RawH2 client(port, &push_pki().push_certificate);
  ASSERT_TRUE(client.connected());
  client.start_session();
  client.send(frame(kHeaders, kEndHeaders, 1, header_block(request_fields())));
  // 15 KiB: within the stream's flow-control window, far over APNs' 4 KiB.
  for (int i = 0; i < 15; ++i) client.send(frame(kData, 0, 1, std::string(1024, 'x')));
  const auto answer = client.find([](const Frame& f) { return f.type == kHeaders && f.stream == 1; });
  ASSERT_TRUE(answer.has_value());
  const auto pushes = endpoint->pushes_since(0);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes.front().status, 413);
  EXPECT_EQ(pushes.front().reason, "PayloadTooLarge");
  EXPECT_TRUE(pushes.front().body_too_large);
  EXPECT_LE(pushes.front().body.size(), kMaxPayloadBytes);
  // The rest of the upload goes to a closed stream: nghttp2 discards it (and keeps the
  // connection's window open), nothing is kept, and the connection serves the next push.
  for (int i = 0; i < 8; ++i) client.send(frame(kData, 0, 1, std::string(16384, 'y')));
  client.send(frame(kHeaders, kEndHeaders, 3, header_block(request_fields())) +
              frame(kData, kEndStream, 3, std::string(R"({"mdm":")") + kMagic + "\"}"));
  const auto next = client.find([](const Frame& f) { return f.type == kHeaders && f.stream == 3; });
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(endpoint->pushes_since(0).size(), 2u);
  EXPECT_EQ(endpoint->pushes_since(1).front().status, 200);
  expect_still_serving();
}

TEST_F(Hostile, StreamsNeverFinishedEndAtTheIdleDeadline) {
  auto config = endpoint_config();
  config.limits.idle_timeout = 400ms;
  start(config);
  RawH2 client(port);
  ASSERT_TRUE(client.connected());
  client.start_session();
  for (std::uint32_t stream = 1; stream < 40; stream += 2) {
    client.send(frame(kHeaders, kEndHeaders, stream, header_block(request_fields())));
  }
  const auto start_time = Clock::now();
  EXPECT_TRUE(client.closed_within(3000ms));
  EXPECT_LT(Clock::now() - start_time, 3s);
  EXPECT_EQ(endpoint->stats().pushes, 0u);
}

TEST_F(Hostile, AFloodOfStreamsIsRefusedBeyondTheLimit) {
  auto config = endpoint_config();
  config.limits.max_concurrent_streams = 10;
  config.limits.idle_timeout = 1000ms;
  start(config);
  RawH2 client(port);
  ASSERT_TRUE(client.connected());
  client.start_session();
  std::string flood;
  // Open-and-hold streams, without waiting for the endpoint's SETTINGS to apply.
  for (std::uint32_t stream = 1; stream < 2 * 500; stream += 2) {
    flood += frame(kHeaders, kEndHeaders, stream, header_block(request_fields()));
  }
  const auto start_time = Clock::now();
  client.send(flood);
  const auto refused = client.find([](const Frame& f) { return f.type == kRstStream || f.type == kGoaway; });
  EXPECT_TRUE(refused.has_value());
  EXPECT_TRUE(client.closed_within(4000ms));
  EXPECT_LT(Clock::now() - start_time, 5s);
  EXPECT_EQ(endpoint->stats().pushes, 0u);
  expect_still_serving();
}

TEST_F(Hostile, AFloodOfCompletePushesIsAnsweredAndTheLogStaysBounded) {
  auto config = endpoint_config();
  config.limits.max_pushes_kept = 50;
  start(config);
  RawH2 client(port, &push_pki().push_certificate);
  ASSERT_TRUE(client.connected());
  client.start_session();
  // 90 streams in 3 rounds of 30: within the concurrency limit, each push complete.
  std::uint32_t stream = 1;
  for (int round = 0; round < 3; ++round) {
    std::string burst;
    for (int i = 0; i < 30; ++i, stream += 2) {
      burst += frame(kHeaders, kEndHeaders, stream, header_block(request_fields()));
      burst += frame(kData, kEndStream, stream, std::string(R"({"mdm":")") + kMagic + "\"}");
    }
    client.send(burst);
    const std::uint32_t last = stream - 2;
    ASSERT_TRUE(client.find([last](const Frame& f) { return f.type == kHeaders && f.stream == last; }));
  }
  EXPECT_EQ(endpoint->stats().pushes, 90u);
  EXPECT_EQ(endpoint->pushes_since(0).size(), 50u);
  EXPECT_EQ(endpoint->stats().pushes_dropped, 40u);
}

TEST_F(Hostile, SilenceFailsTheHandshakeInTime) {
  auto config = endpoint_config();
  config.limits.handshake_timeout = 300ms;
  start(config);
  const int fd = mdmc::testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  mdmc::testing::set_io_timeouts(fd);
  const auto start_time = Clock::now();
  mdmc::testing::read_until_close(fd);
  ::close(fd);
  EXPECT_LT(Clock::now() - start_time, 3s);
  // The endpoint counts the refusal just after the socket closes.
  for (int i = 0; i < 100 && endpoint->stats().connections_refused == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(endpoint->stats().connections_refused, 1u);
}

TEST_F(Hostile, ConnectionsOverTheCapAreClosed) {
  auto config = endpoint_config();
  config.limits.max_connections = 2;
  start(config);
  RawH2 first(port);
  RawH2 second(port);
  ASSERT_TRUE(first.connected());
  ASSERT_TRUE(second.connected());
  RawH2 third(port);
  EXPECT_FALSE(third.connected());
  EXPECT_GE(endpoint->stats().connections_refused, 1u);
}

TEST_F(Hostile, AClientWithoutAlpnH2IsRefused) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx.get(), kHttp11, sizeof kHttp11);
  const int fd = mdmc::testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  mdmc::testing::set_io_timeouts(fd);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), fd);
  EXPECT_NE(SSL_connect(ssl.get()), 1);
  ERR_clear_error();
  ssl.reset();
  ::close(fd);
}

}  // namespace
}  // namespace mdmc::push
