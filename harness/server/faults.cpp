#include "harness/server/faults.hpp"

#include <array>

#include "harness/protocol/rules.hpp"

namespace mdmc::server {
namespace {

namespace rule = protocol::rule;

const std::vector<FaultInfo>& catalog() {
  static const std::vector<FaultInfo> kCatalog = {
      {Fault::none, "none", "the correct server", {}},
      {Fault::authenticate_refused, "authenticate-refused", "answers Authenticate with 500", {rule::kEnrAuth}},
      {Fault::device_token_refused,
       "device-token-refused",
       "answers the device's TokenUpdate with 400",
       {rule::kEnrTokenDevice}},
      {Fault::user_token_refused,
       "user-token-refused",
       "answers a user's TokenUpdate with 400, as a server without per-user connections does (and, like one, "
       "leaves com.apple.mdm.per-user-connections out of its enrollment profile)",
       {rule::kEnrTokenUser}},
      {Fault::network_user_accepted,
       "network-user-accepted",
       "answers UserAuthenticate of every network user with a DigestChallenge instead of 410",
       {rule::kNetRefuse410}},
      {Fault::user_command_on_device,
       "user-command-on-device",
       "serves a user's queued commands to the device channel when the device has none",
       // Interleaved series meet it too: the device, done first, is handed the user's command.
       {rule::kChnUserOnly, rule::kChnConcurrent}},
      {Fault::idle_empty_plist,
       "idle-empty-plist",
       "answers an Idle with nothing queued with an empty <dict/> plist",
       {rule::kChnIdleEmpty}},
      {Fault::one_command_per_series,
       "one-command-per-series",
       "ends every series after one command and relies on push for the rest",
       {rule::kSynAll}},
      {Fault::series_end_204,
       "series-end-204",
       "ends a series after a command report with 204 No Content",
       {rule::kSynEmptyEnd}},
      {Fault::not_now_resent,
       "not-now-resent",
       "sends a NotNow'd command once more in the same series",
       {rule::kUcfNoRepeat}},
      {Fault::not_now_endless,
       "not-now-endless",
       "queues a new status query for each NotNow from a user in UserConfiguration, so the "
       "series never ends",
       {rule::kUcfTerminates}},
      {Fault::not_now_dropped,
       "not-now-dropped",
       "deletes a command when the client answers NotNow",
       {rule::kUcfRedeliver}},
      {Fault::identity_not_bound,
       "identity-not-bound",
       "accepts a device's or user's requests under any valid identity, not only the one the "
       "device enrolled with",
       {rule::kEnrSameIdentity}},
      {Fault::unknown_device_served,
       "unknown-device-served",
       "answers requests for a UDID that never authenticated as if it had",
       {rule::kEnrUnknownDevice}},
      {Fault::checkout_refused, "checkout-refused", "answers CheckOut with 400", {rule::kChkCheckout}},
      {Fault::acked_redelivered,
       "acked-redelivered",
       "keeps an Acknowledged command queued and sends it again in the next series",
       // A duplicate report's command must stay done too, so this breaks both.
       {rule::kCmdAckedGone, rule::kCmdDuplicateReport}},
      {Fault::duplicate_report_conflict,
       "duplicate-report-conflict",
       "answers a second Acknowledged for the same command with 409",
       {rule::kCmdDuplicateReport}},
      {Fault::unknown_uuid_500,
       "unknown-uuid-500",
       "answers a report for a CommandUUID it never sent with 500",
       {rule::kCmdUnknownUuid}},
      {Fault::device_command_on_user,
       "device-command-on-user",
       "serves the device's queued commands to a user channel when the user has none",
       // Concurrent series meet it too: a user done before its device is handed the device's command.
       {rule::kChnDeviceOnly, rule::kChnConcurrent}},
      {Fault::digest_challenge_missing,
       "digest-challenge-missing",
       "manages a network user but answers its UserAuthenticate with an empty 200, no "
       "DigestChallenge",
       {rule::kNetManage}},
      {Fault::refused_user_enrollable,
       "refused-user-enrollable",
       "forgets a 410: takes the refused network user's TokenUpdate and serves its channel",
       {rule::kNetRefusedStaysOut}},
      {Fault::command_without_request_type,
       "command-without-request-type",
       "sends commands without Command.RequestType",
       {rule::kCmdShape}},
      {Fault::malformed_500, "malformed-500", "answers a body that is not a plist with 500", {rule::kRobMalformed}},
      {Fault::wedged_after_garbage,
       "wedged-after-garbage",
       "after a malformed body on a connection, answers every well-formed request on it with 500",
       {rule::kRobAlive}},
      {Fault::writes_wedged_after_no_udid,
       "writes-wedged-after-no-udid",
       "after a check-in or report without a UDID, never completes a request that writes (Authenticate, "
       "TokenUpdate, a report, an Idle with a command queued) while still answering an Idle with nothing queued",
       {rule::kRobAlive}},
      {Fault::unknown_status_acks,
       "unknown-status-acks",
       "takes a report with an unknown Status as Acknowledged: 200, and the command is gone",
       {rule::kRobUnknownType}},
      {Fault::oversize_500, "oversize-500", "answers a body over its size cap with 500", {rule::kRobOversize}},
      {Fault::no_device_configured,
       "no-device-configured",
       "never sends DeviceConfigured to a user in UserConfiguration; the series just ends",
       {rule::kUcfDeviceConfigured}},
      {Fault::last_idle_channel,
       "last-idle-channel",
       "answers every command report from the queue of whichever channel sent the last Idle, "
       "as a server with one series per device would; concurrent device and user series mix",
       {rule::kChnConcurrent}},
      {Fault::shared_response_slot,
       "shared-response-slot",
       "keeps one response slot per device: a request of a device that arrives while another of its requests (any "
       "channel) holds the slot, for 5 ms of simulated work, waits and gets that request's answer instead of its own, "
       "or an empty 200 after 1 s; requests that never overlap, as in lockstep, are answered right",
       {rule::kChnConcurrent}},
      {Fault::command_unknown_key,
       "command-unknown-key",
       "adds a key Apple's schema does not have to every command it sends",
       {rule::kCmdSchema}},
      {Fault::profiles_bundled,
       "profiles-bundled",
       "merges the account payloads of InstallProfile commands queued together into one profile",
       {rule::kPrfOneAccount}},
      {Fault::enrollment_profile_malformed,
       "enrollment-profile-malformed",
       "serves an enrollment profile whose MDM payload has AccessRights as a string and no PayloadVersion",
       {rule::kEnrProfile}},
      {Fault::per_user_undeclared,
       "per-user-undeclared",
       "leaves com.apple.mdm.per-user-connections out of the profile's ServerCapabilities, while it serves "
       "user channels",
       {rule::kEnrPerUser}},
      {Fault::scep_identity_refused,
       "scep-identity-refused",
       "refuses with 403 every identity the SCEP server its profile names issued; only its own test CA's count",
       {rule::kEnrScep}},
      {Fault::checkin_on_server_url_only,
       "checkin-on-server-url-only",
       "serves check-in messages on the ServerURL (/mdm) only: the profile's CheckInURL (/checkin) answers 404",
       {rule::kEnrCheckinUrl}},
      // Push misbehaviours: each sets the PushFault of push_faults.hpp.
      {Fault::ddm_tokens_without_timestamp,
       "ddm-tokens-without-timestamp",
       "answers the declarative tokens endpoint with SyncTokens that lack Timestamp",
       {rule::kDdmTokens}},
      {Fault::ddm_items_token_stale,
       "ddm-items-token-stale",
       "gives declaration-items a DeclarationsToken other than the tokens endpoint's",
       {rule::kDdmItems}},
      {Fault::ddm_fetch_wrong_token,
       "ddm-fetch-wrong-token",
       "serves each declaration with a ServerToken other than the one declaration-items lists",
       {rule::kDdmFetch}},
      {Fault::ddm_payload_stringified,
       "ddm-payload-stringified",
       "serves each declaration's Payload with every number and boolean turned into a string",
       {rule::kDdmSchema}},
      {Fault::ddm_device_declarations_on_user,
       "ddm-device-declarations-on-user",
       "serves a user channel the declarations of its device's channel as well as its own",
       {rule::kDdmChannel}},
      {Fault::ddm_references_unlisted,
       "ddm-references-unlisted",
       "lists an activation but not the configurations it activates, and a configuration but not the assets it names "
       "(they are still served when asked)",
       {rule::kDdmReferences}},
      {Fault::ddm_token_unchanged,
       "ddm-token-unchanged",
       "makes a channel's DeclarationsToken from the identifiers it holds only: a changed declaration moves no "
       "token, and no channel is told",
       {rule::kDdmTokenChange}},
      {Fault::ddm_status_500, "ddm-status-500", "answers a status report that is not one with 500", {rule::kDdmStatus}},
      {Fault::push_user_token_on_device,
       "push-user-token-on-device",
       "stores a user's TokenUpdate over its device's token and PushMagic as well: the device's commands push to the "
       "user's token",
       {rule::kPshUser}},
      {Fault::push_first_token_only,
       "push-first-token-only",
       "keeps a channel's first token and PushMagic and ignores the ones later TokenUpdates bring",
       {rule::kPshTokenUpdate}},
      {Fault::push_wrong_magic,
       "push-wrong-magic",
       "pushes a device's commands with its PushMagic reversed",
       {rule::kPshDevice}},
      {Fault::push_wrong_type,
       "push-wrong-type",
       "pushes with apns-push-type alert, as for a notification a person sees, instead of mdm (APNs takes it; a Mac "
       "does not act on it)",
       {rule::kPshWellFormed}},
      {Fault::push_after_unregistered,
       "push-after-unregistered",
       "ignores 410 Unregistered and keeps pushing to the token",
       {rule::kPshUnregistered}},
      {Fault::push_tight_retry,
       "push-tight-retry",
       "retries a push answered 429 or 503 at once, up to 50 times",
       {rule::kPshBackoff}},
      {Fault::push_after_checkout,
       "push-after-checkout",
       "keeps the push records of a device that checked out: a command queued for it or its users afterwards is "
       "refused 404 but pushed all the same, and retries pending at CheckOut go on",
       {rule::kPshCheckout}},
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
