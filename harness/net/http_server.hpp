#pragma once
// A small asynchronous HTTP/1.1 server over Boost.Beast (C++20 coroutines), plain or TLS, for
// the reference MDM server and for test servers. It binds loopback by default and hands each
// complete request to a handler; the handler does no I/O. It is its own target,
// mdmc::net_server, apart from the client (mdmc::net): clang 14 cannot build its coroutines
// under the fuzz preset's sanitizers, and the fuzzers need only the client and http.hpp.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "harness/base/result.hpp"
#include "harness/net/http.hpp"

namespace mdmc::net {

struct ServerLimits {
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{30000};  // an idle or slow client is dropped
};

// Serving https. Certificates and keys are PEM text; listen() reports one that does not load.
struct ServerTls {
  std::string cert_pem;                     // server certificate, then any intermediates
  std::string key_pem;                      // its private key
  std::string client_ca_pem;                // verify client certificates against these; empty: don't ask for one
  bool require_client_certificate = false;  // fail the handshake without one (needs client_ca_pem)
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

class HttpServer {
 public:
  // With `tls`, every connection starts with a TLS handshake, bounded by read_timeout; one that
  // fails is dropped and the server goes on serving.
  HttpServer(Handler handler, ServerLimits limits = {}, std::optional<ServerTls> tls = std::nullopt);
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; port 0 picks a free port. Returns the bound port, or why not ("address
  // in use", or "TLS certificate/key could not be loaded: ..." when the TLS certificate or key
  // does not load).
  base::Result<std::uint16_t> listen(const std::string& address, std::uint16_t port);
  // Serves on `threads` background threads until stop().
  void start(unsigned threads = 1);
  // Blocks the caller serving until stop() is called from elsewhere (a signal handler, say).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdmc::net
