#pragma once
// Fault modes of the reference server: each one a realistic way a server breaks the rules,
// and the rules it is expected to break. The mutation self-test runs the suite against every
// mode and checks that exactly those rules fail.
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace mdmc::server {

enum class Fault {
  none,
  authenticate_refused,
  device_token_refused,
  user_token_refused,
  network_user_accepted,
  user_command_on_device,
  idle_empty_plist,
  one_command_per_series,
  series_end_204,
  not_now_resent,
  not_now_endless,
  not_now_dropped,
  identity_not_bound,
  unknown_device_served,
  checkout_refused,
  acked_redelivered,
  duplicate_report_conflict,
  unknown_uuid_500,
  device_command_on_user,
  digest_challenge_missing,
  refused_user_enrollable,
  command_without_request_type,
  malformed_500,
  wedged_after_garbage,
  writes_wedged_after_no_udid,
  unknown_status_acks,
  oversize_500,
  no_device_configured,
  last_idle_channel,
  shared_response_slot,
  command_unknown_key,
  profiles_bundled,
  enrollment_profile_malformed,
  per_user_undeclared,
  scep_identity_refused,
  checkin_on_server_url_only,
  // Declarative management (declaration_store.hpp and MdmService::State::declarative).
  ddm_tokens_without_timestamp,
  ddm_items_token_stale,
  ddm_fetch_wrong_token,
  ddm_payload_stringified,
  ddm_device_declarations_on_user,
  ddm_references_unlisted,
  ddm_token_unchanged,
  ddm_status_500,
  // Push misbehaviours: push_faults.hpp maps each to the PushFault it sets.
  push_user_token_on_device,
  push_first_token_only,
  push_wrong_magic,
  push_wrong_type,
  push_after_unregistered,
  push_tight_retry,
  push_after_checkout,
};

struct FaultInfo {
  Fault fault;
  std::string_view name;                 // the --fault value
  std::string_view behaviour;            // what the server then does wrong
  std::vector<std::string_view> breaks;  // rule ids that must fail, and only these
};

std::span<const FaultInfo> fault_catalog();
std::optional<Fault> fault_from_name(std::string_view name);
const FaultInfo& fault_info(Fault fault);

}  // namespace mdmc::server
