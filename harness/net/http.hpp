#pragma once
// HTTP messages and exchanges as plain values: what every transcript, verdict and reproducer
// is made of. No Beast or Asio here, so that protocol and scenario code compiles fast.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mdmc::net {

struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

// First value of a header, matched case-insensitively, or nothing.
std::optional<std::string> find_header(const Headers& headers, std::string_view name);

struct Request {
  std::string method = "PUT";
  std::string url;  // absolute: http://127.0.0.1:8080/mdm
  Headers headers;  // Host, Content-Length and Connection are added by the client
  std::string body;
};

struct Response {
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;
};

// A request as a server receives it, and the response its handler gives back: what the
// reference server's logic (MdmService) and test servers work on, without the HTTP server.
struct ServerRequest {
  std::string method;
  std::string target;  // path and query as received
  Headers headers;
  std::string body;
  std::string peer;                  // "127.0.0.1:53412"
  bool tls = false;                  // the request arrived over TLS
  std::string peer_certificate_der;  // the verified client certificate, DER; empty when none
};

struct ServerResponse {
  int status = 200;
  Headers headers;  // Content-Length is set by the server
  std::string body;
  bool close = false;  // close the connection after this response
  // Misbehaviour on purpose, for the reference server's seeded bugs (server/seeded_bugs.hpp).
  // The HTTP server waits this long before answering, at most kMaxServerStall, and gives up
  // the wait when it stops.
  std::chrono::milliseconds stall{0};
  bool reset = false;  // reset the connection (TCP RST) instead of answering
};
// The longest stall a handler may ask for: past every client deadline the harness uses.
inline constexpr std::chrono::seconds kMaxServerStall{30};

// Why an exchange produced no usable response. Every value is something a hostile or broken
// server can cause; none of them is a harness crash.
enum class TransportError {
  none = 0,
  bad_url,                 // the URL could not be parsed or uses an unsupported scheme
  resolve_failed,          // the host name did not resolve
  connect_failed,          // connection refused or unreachable
  connect_timeout,         // no connection within Limits::connect_timeout
  write_failed,            // the request could not be sent (peer closed or reset)
  header_timeout,          // no complete response header within Limits::header_timeout
  body_timeout,            // no complete body within Limits::body_timeout
  closed_before_response,  // the peer closed without answering
  connection_reset,        // the peer reset the connection
  header_too_large,        // response header beyond Limits::max_header_bytes
  body_too_large,          // response body beyond Limits::max_body_bytes
  bad_response,            // bytes that are not an HTTP/1.1 response
  // TLS. Appended after bad_response so that the numbering of the values above never changes.
  tls_handshake_failed,             // the TLS handshake failed for another reason (protocol, timeout, bad client PEM)
  tls_untrusted_certificate,        // the server's chain does not lead to a trusted CA (unknown CA, self-signed)
  tls_name_mismatch,                // the server's certificate is not for the host name or address in the URL
  tls_certificate_expired,          // a certificate in the server's chain is expired or not yet valid
  tls_client_certificate_rejected,  // the server refused our client certificate, or its absence, by an alert
  // Redirects. Appended after the TLS values, for the same reason.
  redirect_refused,    // a redirect the client will not follow: off loopback, or not to an http(s) URL
  too_many_redirects,  // still redirected after ClientLimits::max_redirects hops
};
// The last value of TransportError, for code that walks all of them.
inline constexpr TransportError kLastTransportError = TransportError::too_many_redirects;
std::string_view transport_error_name(TransportError e);

// One request and its outcome, with timings: the unit of every transcript.
struct Exchange {
  Request request;
  std::optional<Response> response;  // absent when error != none
  TransportError error = TransportError::none;
  std::string error_detail;  // the system's words, e.g. "Connection refused"
  std::chrono::system_clock::time_point started;
  std::chrono::microseconds elapsed{0};
  bool reused_connection = false;  // sent on a kept-alive connection
  bool tls = false;                // an https URL: the exchange ran, or tried to run, over TLS
  bool tls_verified = false;       // the server's certificate was verified and matched the host
  // The URLs a redirect led to and that were requested, in order; `request` keeps the URL
  // first asked for, and `response` (or `error`) comes from the last of these. With redirects,
  // `tls` says some hop ran over TLS and `tls_verified` that every hop ran over verified TLS.
  std::vector<std::string> redirects;

  bool ok() const { return error == TransportError::none && response.has_value(); }
};

// A parsed absolute URL: http or https.
struct Url {
  std::string scheme;  // "http" or "https", lower case
  std::string host;
  std::uint16_t port = 0;
  std::string target;  // path and query, at least "/"
};
std::optional<Url> parse_url(std::string_view url);
// True for 127.0.0.0/8, ::1 and "localhost": the only hosts tests may target.
bool is_loopback_host(std::string_view host);

}  // namespace mdmc::net
