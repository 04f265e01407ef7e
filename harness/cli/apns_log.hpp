#pragma once
// The run's fake APNs (push::FakeApns) as the scenario runner sees it (scenario::PushLog), and
// how a run starts one from the target profile's `push:` (docs/push.md).
#include <memory>

#include "harness/base/result.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/scenario/push_log.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::cli {

class ApnsLog final : public scenario::PushLog {
 public:
  explicit ApnsLog(push::FakeApns& apns) : apns_(apns) {}
  std::uint64_t next_index() const override;
  std::vector<scenario::SeenPush> pushes_since(std::uint64_t index) const override;
  std::optional<scenario::SeenPush> wait_for_token(const std::set<std::string>& device_tokens, std::uint64_t index,
                                                   std::chrono::steady_clock::time_point deadline) const override;
  void answer(const std::string& device_token, scenario::ApnsAnswer answer, int times) override;

 private:
  push::FakeApns& apns_;
};

// A fake APNs serving `endpoint`: its certificate issued by endpoint.ca for APNs' names, the
// listen address and endpoint.names; push certificates checked against
// endpoint.certificate_ca_pem, provider tokens against the token key. Started, or why not (the
// address is taken, a key does not load).
struct StartedApns {
  std::unique_ptr<push::FakeApns> apns;
  std::uint16_t port = 0;  // the one bound: endpoint.port, or the one picked for port 0
};
base::Result<StartedApns> start_fake_apns(const target::PushEndpoint& endpoint);

}  // namespace mdmc::cli
