#include "harness/server/faults.hpp"

#include <array>

namespace mdmc::server {
namespace {

const std::vector<FaultInfo>& catalog() {
  static const std::vector<FaultInfo> kCatalog = {
      {Fault::none, "none", "the correct server", {}},
      {Fault::authenticate_refused, "authenticate-refused",
       "answers Authenticate with 500", {"ENR-AUTH"}},
      {Fault::device_token_refused, "device-token-refused",
       "answers the device's TokenUpdate with 400", {"ENR-TOKEN-DEVICE"}},
      {Fault::user_token_refused, "user-token-refused",
       "answers a user's TokenUpdate with 400, as a server without per-user connections does",
       {"ENR-TOKEN-USER"}},
      {Fault::network_user_accepted, "network-user-accepted",
       "answers UserAuthenticate of every network user with a DigestChallenge instead of 410",
       {"NET-REFUSE-410"}},
      {Fault::user_command_on_device, "user-command-on-device",
       "serves a user's queued commands to the device channel when the device has none",
       {"CHN-USER-ONLY"}},
      {Fault::idle_empty_plist, "idle-empty-plist",
       "answers an Idle with nothing queued with an empty <dict/> plist", {"CHN-IDLE-EMPTY"}},
      {Fault::one_command_per_series, "one-command-per-series",
       "ends every series after one command and relies on push for the rest", {"SYN-ALL"}},
      {Fault::series_end_204, "series-end-204",
       "ends a series after a command report with 204 No Content", {"SYN-EMPTY-END"}},
      {Fault::not_now_resent, "not-now-resent",
       "sends a NotNow'd command once more in the same series", {"UCF-NO-REPEAT"}},
      {Fault::not_now_endless, "not-now-endless",
       "queues a new status query for each NotNow from a user in UserConfiguration, so the "
       "series never ends",
       {"UCF-TERMINATES"}},
      {Fault::not_now_dropped, "not-now-dropped",
       "deletes a command when the client answers NotNow", {"UCF-REDELIVER"}},
      {Fault::identity_not_bound, "identity-not-bound",
       "accepts a device's or user's requests under any valid identity, not only the one the "
       "device enrolled with",
       {"ENR-SAME-IDENTITY"}},
      {Fault::unknown_device_served, "unknown-device-served",
       "answers requests for a UDID that never authenticated as if it had", {"ENR-UNKNOWN-DEVICE"}},
  };
  return kCatalog;
}

}  // namespace

std::span<const FaultInfo> fault_catalog() { return catalog(); }

std::optional<Fault> fault_from_name(std::string_view name) {
  for (const auto& info : catalog()) {
    if (info.name == name) return info.fault;
  }
  return std::nullopt;
}

const FaultInfo& fault_info(Fault fault) {
  for (const auto& info : catalog()) {
    if (info.fault == fault) return info;
  }
  return catalog().front();
}

}  // namespace mdmc::server
