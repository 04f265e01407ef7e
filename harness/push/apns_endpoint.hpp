#pragma once
// A fake APNs provider endpoint: Apple's provider API (POST /3/device/<token>) over HTTP/2 and
// TLS (ALPN h2 only), framed by nghttp2, on Asio. It judges each push as APNs would
// (push_request.hpp), answers, and records it, so that a test or a scenario sees whether a
// server under test woke the right channel with the right token, PushMagic and topic.
// docs/push.md says what it checks and answers, and its bounds.
//
// Every client is untrusted: malformed frames, a huge header block, an oversized body, streams
// never finished or a flood end as a refused stream, a GOAWAY or a closed connection, within
// the deadlines below, and never grow memory past the limits.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/base/clock.hpp"
#include "harness/base/result.hpp"
#include "harness/net/http.hpp"
#include "harness/pki/pki.hpp"
#include "harness/push/push_request.hpp"

namespace mdmc::push {

struct FakeApnsLimits {
  std::size_t max_pushes_kept = 10000;         // the log keeps the latest this many; older ones are dropped and counted
  std::size_t max_header_list_bytes = 8192;    // per request, counted as HTTP/2 does (name + value + 32 per field)
  std::uint32_t max_concurrent_streams = 100;  // per connection; more are refused
  std::size_t max_connections = 64;            // more are closed on accept
  std::chrono::milliseconds handshake_timeout{5000};
  // A connection that completes no request for this long gets a GOAWAY (APNs: IdleTimeout)
  // and is closed; so does one that holds streams open without finishing them.
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds write_timeout{5000};  // a client that does not read its answers
};

// The names servers push to: production, sandbox, and the sandbox's older name (NanoMDM's).
inline const std::vector<std::string> kApnsHostNames = {"api.push.apple.com", "api.sandbox.push.apple.com",
                                                        "api.development.push.apple.com"};

// The endpoint's TLS identity from the run's CA: for kApnsHostNames and `extra_names` (the
// listen address, names a profile adds), duplicates dropped.
base::Result<pki::Identity> issue_endpoint_identity(const pki::Identity& run_ca,
                                                    const std::vector<std::string>& extra_names);

struct FakeApnsConfig {
  pki::Identity tls;  // the endpoint's certificate: issue it for api.push.apple.com, api.sandbox.push.apple.com, ...
  std::string push_ca_pem;  // push certificates must chain to one of these; empty: certificate auth off
  PushPolicy policy;        // token auth, topics, token length (policy.accept_certificates follows push_ca_pem)
  FakeApnsLimits limits;
};

// An answer a test scripts for a device token, given instead of 200 to pushes APNs would accept.
struct ScriptedAnswer {
  int status = 410;
  std::string reason = "Unregistered";
  std::optional<std::int64_t> timestamp_ms;  // for 410: when the token stopped being valid
  std::size_t times = 0;                     // answer this many pushes so, then 200 again; 0: until cleared

  static ScriptedAnswer unregistered(base::SystemTime since);
  static ScriptedAnswer too_many_requests();
  static ScriptedAnswer service_unavailable();
};

// One request the endpoint answered, as it arrived.
struct Push {
  std::uint64_t index = 0;  // 0, 1, 2, ... in arrival order, over the endpoint's life
  std::chrono::steady_clock::time_point received;
  base::SystemTime received_wall;
  std::uint64_t connection = 0;  // 1, 2, ... per accepted connection
  std::string peer;              // "127.0.0.1:53412"
  std::string method;
  std::string path;
  std::string authority;
  net::Headers headers;  // the regular headers as sent, lower case; a bearer token without its signature
  std::string body;      // at most kMaxPayloadBytes
  bool body_too_large = false;
  std::string device_token;               // lower-case hex from the path; empty when the path had none
  std::string topic;                      // apns-topic, or the push certificate's topic
  std::optional<std::string> push_magic;  // the body's "mdm" string
  AuthMethod auth = AuthMethod::none;
  std::string certificate_subject;  // the push certificate's subject, when one was presented
  int status = 0;                   // what the endpoint answered
  std::string reason;               // with it; empty for 200
  std::string detail;               // why, for people
  std::string apns_id;              // the apns-id answered
  bool scripted = false;            // the answer came from a ScriptedAnswer
};

struct FakeApnsStats {
  std::uint64_t pushes = 0;               // answered requests, kept or not
  std::uint64_t pushes_dropped = 0;       // answered but no longer in the log (max_pushes_kept)
  std::uint64_t connections = 0;          // accepted
  std::uint64_t connections_refused = 0;  // over max_connections, or failed their handshake
  std::uint64_t streams_refused = 0;      // reset: a header list over the cap, too many streams
  std::uint64_t connections_broken = 0;   // ended by a protocol error, a GOAWAY of ours or a deadline
};

class FakeApns {
 public:
  explicit FakeApns(FakeApnsConfig config);
  ~FakeApns();  // stops
  FakeApns(const FakeApns&) = delete;
  FakeApns& operator=(const FakeApns&) = delete;

  // Binds and serves on a thread of its own; port 0 picks one. The bound port, or why not (the
  // address, the certificate, the push CA or the token key does not load).
  base::Result<std::uint16_t> start(const std::string& address = "127.0.0.1", std::uint16_t port = 0);
  void stop();

  // Scripted answers, per lower-case device token.
  void script(const std::string& device_token, ScriptedAnswer answer);
  void clear_script(const std::string& device_token);
  void clear_scripts();

  // The pushes still in the log with index >= `index`, in order.
  std::vector<Push> pushes_since(std::uint64_t index) const;
  // The index the next push will get: a case notes it before acting, then asks pushes_since.
  std::uint64_t next_index() const;
  // The first push with index >= `index` that `predicate` accepts, waiting until `deadline`;
  // nothing when none came in time. The predicate runs under the log's lock: keep it short.
  std::optional<Push> wait_for(const std::function<bool(const Push&)>& predicate, std::uint64_t index,
                               std::chrono::steady_clock::time_point deadline) const;
  FakeApnsStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mdmc::push
