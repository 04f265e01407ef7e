#pragma once
// A keep-alive HTTP/1.1 client over Boost.Beast, plain or TLS, with a deadline on every
// operation and a cap on every read. The server on the other end is under test: it may stall,
// lie about lengths, reset, send garbage or present a bad certificate, and every one of those
// ends as an Exchange with an error, in time.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "harness/net/http.hpp"

namespace mdmc::net {

struct ClientLimits {
  std::chrono::milliseconds connect_timeout{5000};        // TCP connect, per attempt
  std::chrono::milliseconds tls_handshake_timeout{5000};  // TLS handshake, after the TCP connect
  std::chrono::milliseconds write_timeout{10000};         // sending the whole request
  std::chrono::milliseconds header_timeout{10000};        // from request sent to complete header
  std::chrono::milliseconds body_timeout{30000};          // from header to complete body
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 8 * 1024 * 1024;  // a large InstallApplication manifest fits
  int max_redirects = 5;                         // 301/302/303/307/308 hops followed per send; 0: a 3xx is the response
  bool redirects_off_loopback = false;  // follow a redirect to a host that is not loopback (refused by default)
};

// How https URLs are spoken. Certificates and keys are PEM text, so that this module needs no
// file or keychain access; a PEM that does not load is reported by send(), never thrown.
// The trust (trusted_ca_pem and insecure) is loaded once per process, by the first client that
// needs it, and shared by every client with the same trust, on every thread: loading the
// system's store costs tens of milliseconds, a run makes hundreds of connections. The client
// identity is each client's own.
struct TlsClientConfig {
  std::string trusted_ca_pem;    // PEM certificates to verify the server against; empty: system default store
  bool insecure = false;         // skip verification (only when a profile explicitly says so)
  std::string client_cert_pem;   // mTLS identity, with client_key_pem; empty: no client certificate
  std::string client_key_pem;    // the client certificate's private key, PEM (PKCS#8 or traditional)
  std::string client_chain_pem;  // optional intermediates sent after the client certificate
};

// How many times this process has loaded the trust of a TlsClientConfig (a trusted_ca_pem, or
// the system's store); a client with insecure and no trusted_ca_pem loads none. For tests: a
// new client or connection with a trust already loaded leaves it as it was.
std::uint64_t trust_loads();

// Sends requests one at a time, reusing the connection while the server keeps it open.
// Not thread-safe: one client per emulated channel or per thread.
class HttpClient {
 public:
  explicit HttpClient(ClientLimits limits = {}, TlsClientConfig tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Blocks until the response is complete or a deadline passes. Never throws for anything
  // the peer does. A request to another host:port than the open connection reconnects.
  // Redirects are followed within ClientLimits (same method, same body: see http_client.cpp);
  // each hop has its own deadlines.
  Exchange send(const Request& request);
  // Drops the kept-alive connection, if any; a TLS one after a close_notify (bounded wait).
  void close();
  // The certificate (DER) the server presented in this client's latest successful TLS
  // handshake, verified as the TLS configuration says; empty before any and after a failed one.
  const std::string& server_certificate_der() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdmc::net
