#include "harness/server/reference_server.hpp"

#include <fmt/format.h>

namespace mdmc::server {

ReferenceServer::ReferenceServer(Config config, std::optional<net::ServerTls> tls)
    : fill_public_url_(config.public_url.empty()), https_(tls.has_value()), service_(config) {
  if (auto push = push_fault_of(config.fault); push != PushFault::none) config.push.fault = push;
  if (!config.push.apns_url.empty()) {
    auto log = config.push.log;
    pushes_ = std::make_unique<PushSender>(
        std::move(config.push), [this](const std::string& id) { return service_.push_target(id); }, std::move(log));
    service_.set_push_requester([this](const PushTarget& target) { pushes_->request(target); });
  }
  http_ =
      std::make_unique<net::HttpServer>([this](const net::ServerRequest& request) { return service_.handle(request); },
                                        net::ServerLimits{}, std::move(tls));
}

ReferenceServer::~ReferenceServer() { stop(); }

base::Result<std::uint16_t> ReferenceServer::listen(const std::string& address, std::uint16_t port) {
  auto bound = http_->listen(address, port);
  if (bound && fill_public_url_) {
    // An IPv6 literal is bracketed in a URL.
    const bool bracket = address.find(':') != std::string::npos;
    service_.set_public_url(fmt::format("{}://{}{}{}:{}", https_ ? "https" : "http", bracket ? "[" : "", address,
                                        bracket ? "]" : "", *bound));
  }
  return bound;
}

void ReferenceServer::start(unsigned threads) {
  if (pushes_) pushes_->start();
  http_->start(threads);
}

void ReferenceServer::run() {
  if (pushes_) pushes_->start();
  http_->start(kThreads - 1);
  http_->run();
}

void ReferenceServer::stop() {
  if (http_) http_->stop();
  if (pushes_) pushes_->stop();
}

}  // namespace mdmc::server
