#include "harness/server/reference_server.hpp"

namespace mdmc::server {

ReferenceServer::ReferenceServer(Config config, std::optional<net::ServerTls> tls) : service_(std::move(config)) {
  http_ =
      std::make_unique<net::HttpServer>([this](const net::ServerRequest& request) { return service_.handle(request); },
                                        net::ServerLimits{}, std::move(tls));
}

ReferenceServer::~ReferenceServer() { stop(); }

base::Result<std::uint16_t> ReferenceServer::listen(const std::string& address, std::uint16_t port) {
  return http_->listen(address, port);
}

void ReferenceServer::start() { http_->start(1); }

void ReferenceServer::run() { http_->run(); }

void ReferenceServer::stop() {
  if (http_) http_->stop();
}

}  // namespace mdmc::server
