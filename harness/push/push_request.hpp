#pragma once
// Apple's provider API as the fake APNs judges it: one request (method, path, headers, body,
// and how the connection authenticated) in, the answer APNs would give out. Pure: no sockets,
// no HTTP/2, no clock of its own, so that the fuzzer (fuzzers/push_request_fuzzer.cpp) and the
// endpoint (apns_endpoint.hpp) run the same code. The rules and reasons are in docs/push.md.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/clock.hpp"
#include "harness/net/http.hpp"
#include "harness/push/provider_token.hpp"

namespace mdmc::push {

// APNs refuses larger payloads with 413 PayloadTooLarge (VoIP's 5120 does not apply to MDM).
inline constexpr std::size_t kMaxPayloadBytes = 4096;
inline constexpr std::size_t kMaxCollapseIdBytes = 64;
inline constexpr std::string_view kDevicePathPrefix = "/3/device/";

enum class AuthMethod { none, certificate, token };
std::string_view auth_method_name(AuthMethod method);  // "none", "certificate", "token"

// What the TLS handshake established about the client.
struct ConnectionAuth {
  bool certificate_presented = false;           // the client sent a certificate
  bool certificate_verified = false;            // ... and it chains to the configured push CA, now
  std::string certificate_subject;              // RFC 2253, for the record
  std::vector<std::string> certificate_topics;  // the subject's UID values: an MDM push certificate has one
  std::string verified_token;                   // the provider token whose signature this connection already checked
};

// How the fake APNs judges requests.
struct PushPolicy {
  bool accept_certificates = true;                  // certificate auth on (needs a push CA on the endpoint)
  std::optional<ProviderTokenPolicy> token_policy;  // token auth on, with this key
  std::vector<std::string> allowed_topics;          // empty: any well-formed topic
  std::size_t device_token_bytes = 32;              // the token in the path: 2x this many hex digits
};

// A request as HTTP/2 delivered it. Header names are lower case (HTTP/2 requires it).
struct PushRequest {
  std::string method;           // :method
  std::string path;             // :path
  net::Headers headers;         // every regular header, in order, repeats included
  std::string body;             // at most kMaxPayloadBytes of it
  bool body_too_large = false;  // more than kMaxPayloadBytes arrived
};

struct Verdict {
  int status = 200;
  std::string reason;        // the APNs reason; empty for 200
  std::string detail;        // for people: which header, which value
  std::string device_token;  // from the path, lower case; empty when the path has none
  std::string topic;         // apns-topic, or the certificate's single topic when absent
  AuthMethod auth = AuthMethod::none;
  std::string apns_id;         // the request's apns-id when well-formed; else empty (the endpoint makes one)
  std::string provider_token;  // with token auth: the token that held (the connection remembers it)
};

Verdict judge_push(const PushRequest& request, const ConnectionAuth& auth, const PushPolicy& policy,
                   base::SystemTime now);

// The body's "mdm" string (the PushMagic) when the body is a JSON object carrying one.
std::optional<std::string> push_magic_of(std::string_view body);

// What makes a push APNs accepts unfit as an MDM push (Apple: push type mdm, priority 10 or
// 5, a body that is {"mdm": "<PushMagic>"} and nothing else), in words; empty when it is fit.
// For PSH-WELL-FORMED, beside judge_push's verdict.
std::vector<std::string> mdm_push_problems(const net::Headers& headers, std::string_view body);

// The error body APNs sends: {"reason":"BadTopic"}, with "timestamp" (ms since the epoch) for 410.
std::string reason_body(std::string_view reason, std::optional<std::int64_t> timestamp_ms = std::nullopt);

// Parsed from an error body; empty when it is not APNs' JSON.
struct ReasonBody {
  std::string reason;
  std::optional<std::int64_t> timestamp_ms;
};
ReasonBody parse_reason_body(std::string_view body);

// apns-id's shape: a UUID, 8-4-4-4-12 hex digits.
bool is_uuid(std::string_view text);
// A random (version 4) UUID, lower case.
std::string random_uuid();

}  // namespace mdmc::push
