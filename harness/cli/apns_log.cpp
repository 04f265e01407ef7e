#include "harness/cli/apns_log.hpp"

#include <fmt/format.h>

#include <chrono>

namespace mdmc::cli {
namespace {

scenario::SeenPush seen(const push::Push& p) {
  scenario::SeenPush out;
  out.index = p.index;
  out.received = p.received;
  out.path = p.path;
  out.device_token = p.device_token;
  out.topic = p.topic;
  out.push_magic = p.push_magic;
  out.headers = p.headers;
  out.body = p.body;
  out.status = p.status;
  out.reason = p.reason;
  out.detail = p.detail;
  out.scripted = p.scripted;
  return out;
}

}  // namespace

std::uint64_t ApnsLog::next_index() const { return apns_.next_index(); }

std::vector<scenario::SeenPush> ApnsLog::pushes_since(std::uint64_t index) const {
  std::vector<scenario::SeenPush> out;
  for (const auto& p : apns_.pushes_since(index)) out.push_back(seen(p));
  return out;
}

std::optional<scenario::SeenPush> ApnsLog::wait_for_token(const std::set<std::string>& device_tokens,
                                                          std::uint64_t index,
                                                          std::chrono::steady_clock::time_point deadline) const {
  auto found =
      apns_.wait_for([&](const push::Push& p) { return device_tokens.count(p.device_token) > 0; }, index, deadline);
  if (!found) return std::nullopt;
  return seen(*found);
}

void ApnsLog::answer(const std::string& device_token, scenario::ApnsAnswer answer, int times) {
  push::ScriptedAnswer scripted;
  switch (answer) {
    case scenario::ApnsAnswer::accept: apns_.clear_script(device_token); return;
    case scenario::ApnsAnswer::unregistered:
      scripted = push::ScriptedAnswer::unregistered(std::chrono::system_clock::now());
      break;
    case scenario::ApnsAnswer::too_many_requests: scripted = push::ScriptedAnswer::too_many_requests(); break;
    case scenario::ApnsAnswer::service_unavailable: scripted = push::ScriptedAnswer::service_unavailable(); break;
  }
  scripted.times = static_cast<std::size_t>(times);
  apns_.script(device_token, scripted);
}

base::Result<StartedApns> start_fake_apns(const target::PushEndpoint& endpoint) {
  using R = base::Result<StartedApns>;
  std::vector<std::string> names = endpoint.names;
  names.push_back(endpoint.address);
  if (endpoint.address == "127.0.0.1") names.emplace_back("localhost");
  auto tls = push::issue_endpoint_identity(endpoint.ca, names);
  if (!tls) return R(base::fail("push.ca: the fake APNs' certificate could not be issued: " + tls.message()));
  push::FakeApnsConfig config;
  config.tls = *std::move(tls);
  config.push_ca_pem = endpoint.certificate_ca_pem;
  if (!endpoint.token_public_key_pem.empty()) {
    config.policy.token_policy =
        push::ProviderTokenPolicy{endpoint.token_key_id, endpoint.token_team_id, endpoint.token_public_key_pem};
  }
  auto apns = std::make_unique<push::FakeApns>(std::move(config));
  auto port = apns->start(endpoint.address, endpoint.port);
  if (!port) {
    return R(base::fail(fmt::format("push.listen: the fake APNs could not serve on {}:{}: {}", endpoint.address,
                                    endpoint.port, port.message())));
  }
  return R(StartedApns{std::move(apns), *port});
}

}  // namespace mdmc::cli
