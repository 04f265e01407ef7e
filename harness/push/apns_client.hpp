#pragma once
// An APNs provider client: POST /3/device/<token> over HTTP/2 and TLS (ALPN h2), framed by
// nghttp2, authenticated by a push certificate or by a provider token (an ES256 JWT it makes
// and renews itself). It keeps its connection and multiplexes the pushes of one send_all on
// it. The endpoint is untrusted like any server: every deadline and cap below holds whatever
// it does, and every failure comes back as a value.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/net/http.hpp"
#include "harness/pki/pki.hpp"

namespace mdmc::push {

// A provider token's key: Apple's .p8 (an EC P-256 private key, PEM), its key id and team id.
struct ProviderKey {
  std::string private_key_pem;
  std::string key_id;
  std::string team_id;
};

struct ApnsClientConfig {
  // "https://api.push.apple.com", "https://api.sandbox.push.apple.com:2197",
  // "https://127.0.0.1:8443": the authority, the SNI name and the name the certificate must have.
  std::string url = "https://api.push.apple.com";
  // Where to connect instead of resolving the URL's host ("127.0.0.1:8443"): a hosts override
  // for one client. Empty: the URL's host and port.
  std::string connect_to;
  std::string trusted_ca_pem;                // verify the endpoint against these; empty: the system's store
  std::optional<pki::Identity> certificate;  // push certificate auth
  std::optional<ProviderKey> provider_key;   // token auth (used when no certificate is set)
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds response_timeout{10000};  // from a push's submission to its complete answer
  std::size_t max_response_bytes = 16 * 1024;         // header list plus body, per answer
  std::chrono::seconds token_refresh{50 * 60};        // Apple: renew no sooner than 20 and no later than 60 minutes
};

// One push. Headers left empty are not sent.
struct ApnsPush {
  std::string device_token;    // hex
  std::string body;            // the JSON payload
  std::string topic;           // apns-topic
  std::string push_type;       // apns-push-type
  std::string priority;        // apns-priority
  std::string expiration;      // apns-expiration, epoch seconds
  std::string apns_id;         // apns-id
  std::string collapse_id;     // apns-collapse-id
  net::Headers extra_headers;  // sent as given after the above (tests, fault modes)
  std::string method = "POST";
  std::string path;  // empty: /3/device/<device_token>

  // What an MDM server sends: {"mdm":"<PushMagic>"}, push type mdm, priority 10.
  static ApnsPush mdm(std::string device_token, const std::string& push_magic, std::string topic);
};

enum class ApnsError {
  none = 0,
  bad_url,          // not https://host[:port]
  bad_credentials,  // the certificate or the provider key does not load
  resolve_failed,
  connect_failed,
  connect_timeout,
  tls_handshake_failed,  // including a certificate the trust refuses, and a handshake timeout
  no_h2,                 // the endpoint did not agree to ALPN h2
  connection_lost,       // closed or reset before the answer
  response_timeout,
  response_too_large,
  stream_reset,       // the endpoint reset the stream (RST_STREAM) before answering
  refused_by_goaway,  // the endpoint's GOAWAY left this push unprocessed
  protocol_error,     // the endpoint broke HTTP/2
};
std::string_view apns_error_name(ApnsError error);

struct ApnsResult {
  ApnsError error = ApnsError::none;
  std::string error_detail;
  int status = 0;                            // :status; 0 with an error
  std::string apns_id;                       // the answer's apns-id
  std::string reason;                        // from the error body
  std::optional<std::int64_t> timestamp_ms;  // from a 410's body
  std::string body;
  bool ok() const { return error == ApnsError::none && status == 200; }
};

class ApnsClient {
 public:
  explicit ApnsClient(ApnsClientConfig config);
  ~ApnsClient();
  ApnsClient(const ApnsClient&) = delete;
  ApnsClient& operator=(const ApnsClient&) = delete;

  // Blocks until the answer or a deadline. Connects first when no connection is open.
  ApnsResult send(const ApnsPush& push);
  // Sends all at once, multiplexed on one connection (within the endpoint's stream limit), and
  // waits for every answer; results in the order of `pushes`.
  std::vector<ApnsResult> send_all(const std::vector<ApnsPush>& pushes);
  void close();
  // How many connections this client has opened: a kept connection does not add one.
  std::uint64_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdmc::push
