#pragma once
// The reference MDM server on a socket: MdmService behind the project's Beast HTTP server.
// A target of its own (mdmc::reference_server), so that mdmc::server stays free of the
// coroutine HTTP server and the APNs client, and the fuzzers can link it. With
// Config::push.apns_url it is a push provider too (push_sender.hpp).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "harness/net/http_server.hpp"
#include "harness/server/mdm_service.hpp"
#include "harness/server/push_sender.hpp"

namespace mdmc::server {

class ReferenceServer {
 public:
  // With `tls`, it serves HTTPS, asking for (not requiring) a client certificate verified
  // against tls->client_ca_pem: the admin API takes none, and the MDM endpoints refuse a
  // request without one in mode mtls.
  explicit ReferenceServer(Config config, std::optional<net::ServerTls> tls = std::nullopt);
  ~ReferenceServer();

  // Binds (port 0 for any free port). Returns the bound port, or why not. Without a
  // Config::public_url, the enrollment profile then names this address and port.
  base::Result<std::uint16_t> listen(const std::string& address, std::uint16_t port);
  // Serves on `threads` background threads, until stop(). Several, so that a device's channels,
  // each on its own connection, are served at the same time, as by a server with a thread pool:
  // a race between them (the shared-response-slot fault) can only happen so. The service's
  // state has one lock, so the correct server stays correct with any number.
  static constexpr unsigned kThreads = 4;
  void start(unsigned threads = kThreads);
  // Serves on the caller's thread, and kThreads - 1 more, until stop().
  void run();
  // Stops the HTTP server, then the push sender (docs/push.md: bounded by its timeouts).
  void stop();
  // The push sender, when Config::push.apns_url is set.
  const PushSender* pushes() const { return pushes_.get(); }

 private:
  bool fill_public_url_;
  bool https_;
  MdmService service_;
  std::unique_ptr<PushSender> pushes_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace mdmc::server
