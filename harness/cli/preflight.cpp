#include "harness/cli/preflight.hpp"

#include <fmt/format.h>

#include "harness/base/clock.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/protocol/apple_schema.hpp"
#include "harness/scenario/liveness.hpp"
#include "harness/target/enrollment.hpp"
#include "harness/target/session.hpp"

namespace mdmc::cli {
namespace {

// The preflight device's name in its session, and how its transcript labels begin.
constexpr const char* kDeviceName = "preflight";
constexpr const char* kLabels = "preflight: ";
// Mixed into the run's seed for the preflight device's UDID, so that it is no case's device.
constexpr std::uint64_t kSeedSalt = 0x707265666c696768ull;  // "prefligh"

}  // namespace

std::optional<std::string> likely_profile_key_for_status(int status, bool authenticate,
                                                         const target::TargetProfile& profile) {
  const bool proves_identity = profile.identity.mode != target::IdentityMode::none;
  auto identity = fmt::format("identity.mode ({})", protocol::identity_mode_name(profile.identity.mode));
  if (proves_identity) identity += " or " + target::identity_source_key(profile);
  if (status == 401 || status == 403) {
    return identity + (proves_identity ? ": the server refused the device's identity"
                                       : ": the server refused a device that proves no identity");
  }
  // A TokenUpdate refused after an accepted Authenticate is ENR-TOKEN-DEVICE's to judge.
  if (!authenticate) return std::nullopt;
  if (status == 404 || status == 405) return "urls.check_in: the server has no check-in endpoint there";
  // A conforming server enrolls a device it accepts; a refusal of a plain Authenticate is most
  // often about how the device proved who it is.
  if (status >= 400 && status <= 499) {
    return identity +
           ": the server refused the Authenticate, as one does that wants an Mdm-Signature or a TLS client "
           "certificate the profile does not send";
  }
  return std::nullopt;
}

PreflightOutcome preflight_enrollment(const target::TargetProfile& profile, target::IdentityPool& identities,
                                      std::uint64_t seed, const std::atomic<bool>* stop) {
  PreflightOutcome out;
  emulator::IdentitySource ids(seed ^ kSeedSalt);
  protocol::DeviceFacts facts;
  facts.udid = ids.uuid();
  facts.topic = profile.topic;
  facts.serial_number = "C02" + ids.hex(4);
  facts.device_name = "mdmconform preflight";
  const emulator::Device device(facts, ids);
  target::TargetSession session(profile, identities);
  if (auto added = session.add_device(kDeviceName, facts.udid); !added) {
    out.exit_code = 2;
    out.message = fmt::format("preflight: the device could not be given an identity ({}): {}",
                              target::identity_source_key(profile), added.message());
    return out;
  }
  auto enrolled = scenario::probe_enrollment(session, kDeviceName, device, kLabels, stop);
  out.transcript = std::move(enrolled.transcript);
  if (enrolled.alive || (stop && stop->load())) return out;
  // A body excerpt ends in a space where the server's text ended in a newline.
  while (!enrolled.detail.empty() && enrolled.detail.back() == ' ') enrolled.detail.pop_back();
  if (!enrolled.judged) {
    // Nothing was sent: the harness could not sign the body with the device's identity.
    out.exit_code = 2;
    out.message = fmt::format("preflight: {} ({})", enrolled.detail, target::identity_source_key(profile));
    return out;
  }
  // The CheckInURL the server's own enrollment profile names, with no check-in endpoint behind
  // it, is the server's failure (ENR-CHECKIN-URL), not the target profile's: say so when the
  // ServerURL takes the Authenticate the CheckInURL would not.
  const enroll::MdmPayload* mdm = profile.enrolled && profile.enrolled->profile && profile.enrolled->profile->mdm
                                      ? &*profile.enrolled->profile->mdm
                                      : nullptr;
  const bool named_by_enrollment = mdm && mdm->check_in_url.value_or(mdm->server_url) == profile.check_in_url;
  if (!out.transcript.empty() && out.transcript.back().exchange.ok() && named_by_enrollment &&
      profile.check_in_url != profile.server_url &&
      out.transcript.back().label == kLabels + device.authenticate().label) {
    const int status = out.transcript.back().exchange.response->status;
    if (status == 404 || status == 405) {
      auto message = device.authenticate();
      auto request = session.request_to(protocol::Endpoint::check_in, message.bytes());
      request.url = profile.server_url;
      if (auto sent = session.send({kDeviceName, kDeviceName}, std::move(request)); sent) {
        out.transcript.push_back(scenario::transcript_entry(
            kDeviceName, std::string(kLabels) + "Authenticate to the ServerURL instead", *sent, -1));
        if (sent->ok() && sent->response->status == 200) {
          out.check_in_url_refused = fmt::format(
              "the server answered {} to Authenticate at the CheckInURL its enrollment profile names ({}) and 200 "
              "at its ServerURL ({}): no Mac could enroll",
              status, profile.check_in_url, profile.server_url);
          return out;
        }
      }
    }
  }
  std::optional<std::string> key;
  if (!out.transcript.empty()) {
    const auto& failed = out.transcript.back().exchange;
    const bool authenticate = out.transcript.back().label == kLabels + device.authenticate().label;
    key = failed.ok() ? likely_profile_key_for_status(failed.response->status, authenticate, profile)
                      : target::likely_profile_key(failed.error, profile, protocol::uses_mtls(profile.identity.mode));
  }
  if (!key) {
    out.note =
        fmt::format("a fresh device did not enroll before the first case ({}); the cases judge it", enrolled.detail);
    return out;
  }
  out.exit_code = 3;
  out.message = fmt::format(
      "preflight: a fresh device could not enroll: {}; likely profile key: {}. No case was run: each enrolls its "
      "devices the same way",
      enrolled.detail, *key);
  return out;
}

scenario::CaseResult stopped_case(std::string reason, std::vector<scenario::TranscriptEntry> transcript) {
  scenario::CaseResult c;
  c.id = kPreflightCaseId;
  c.title = "the checks before the first case";
  c.verdict = scenario::Verdict::error;
  c.reason = std::move(reason);
  c.transcript = std::move(transcript);
  return c;
}

void record_stopped_run(SuiteOutcome& outcome, const SuiteOptions& options) {
  auto& run = outcome.run;
  run.harness_version = MDMC_VERSION;
  run.apple_schema_revision = std::string(protocol::kAppleSchemaRevision);
  run.seed = options.seed;
  if (run.started_at.empty()) run.started_at = base::now_rfc3339();
  if (run.target_name.empty()) run.target_name = options.target ? options.target->stem().string() : "reference";
  if (run.identity_mode.empty() && options.identity_mode) {
    run.identity_mode = std::string(protocol::identity_mode_name(*options.identity_mode));
  }
  if (!options.target) run.builtin_fault = std::string(server::fault_info(options.builtin_fault).name);
  if (run.cases.empty()) run.cases.push_back(stopped_case(outcome.message));
  // What was asked for, so that the record of a stopped run reads like any other's.
  run.conditions.selection = options.selection;
  run.conditions.excluded = options.excludes;
  run.conditions.tags = options.tags;
  for (auto level : options.levels) run.conditions.levels.emplace_back(scenario::level_name(level));
  run.conditions.strict = options.strict;
  run.conditions.require_complete = options.require_complete;
}

}  // namespace mdmc::cli
