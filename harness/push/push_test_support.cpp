#include "harness/push/push_test_support.hpp"

#include <stdexcept>

namespace mdmc::push::testing {
namespace {

template <typename T>
T check(base::Result<T> result) {
  if (!result.ok()) throw std::runtime_error(result.message());
  return std::move(*result);
}

}  // namespace

const PushPki& push_pki() {
  static const PushPki pki = [] {
    PushPki p;
    p.ca = check(pki::create_test_ca("mdmconform run CA"));
    p.server = check(pki::issue_server_identity(
        p.ca, {"127.0.0.1", "localhost", "api.push.apple.com", "api.sandbox.push.apple.com"}));
    p.push_ca = check(pki::create_test_ca("fake Apple push CA"));
    p.push_certificate = check(pki::issue_push_certificate(p.push_ca, kTopic));
    const auto stranger_ca = check(pki::create_test_ca("stranger push CA"));
    p.stranger_push = check(pki::issue_push_certificate(stranger_ca, kTopic));
    p.token_key = check(pki::create_test_ca("provider token key"));
    return p;
  }();
  return pki;
}

FakeApnsConfig endpoint_config() {
  const auto& p = push_pki();
  FakeApnsConfig config;
  config.tls = p.server;
  config.push_ca_pem = p.push_ca.cert_pem;
  config.policy.token_policy = ProviderTokenPolicy{kKeyId, kTeamId, p.token_key.cert_pem};
  return config;
}

ApnsClientConfig client_config(std::uint16_t port) {
  ApnsClientConfig config;
  config.url = "https://127.0.0.1:" + std::to_string(port);
  config.trusted_ca_pem = push_pki().ca.cert_pem;
  config.connect_timeout = std::chrono::milliseconds(3000);
  config.handshake_timeout = std::chrono::milliseconds(3000);
  config.response_timeout = std::chrono::milliseconds(5000);
  return config;
}

}  // namespace mdmc::push::testing
