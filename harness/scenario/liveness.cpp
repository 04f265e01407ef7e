#include "harness/scenario/liveness.hpp"

#include <fmt/format.h>

#include "harness/plist/value.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::scenario {
namespace {

// The command the probe has queued: any will do; ProfileList has no side effect on a device.
constexpr const char* kProbeCommand = "ProfileList";

class Probe {
 public:
  Probe(target::TargetSession& session, const std::string& device_name, const emulator::Device& device,
        emulator::IdentitySource& ids, int step)
      : session_(session), sender_{"probe", device_name}, device_(device), ids_(ids), step_(step) {}

  ProbeOutcome run() {
    if (!enroll() || !command_round_trip()) return std::move(outcome_);
    outcome_.alive = true;
    return std::move(outcome_);
  }

 private:
  // Sends and keeps the exchange; on no answer or a status outside 2xx, says why and fails.
  std::optional<net::Response> exchange(const std::string& label, protocol::Endpoint to, std::string body) {
    auto sent = session_.send(sender_, to, std::move(body));
    if (!sent) {
      outcome_.detail = label + ": " + sent.error().message;
      return std::nullopt;
    }
    outcome_.transcript.push_back(transcript_entry("probe", "liveness probe: " + label, *sent, step_));
    if (!sent->ok()) {
      outcome_.detail =
          fmt::format("{}: no answer: {} ({})", label, net::transport_error_name(sent->error), sent->error_detail);
      return std::nullopt;
    }
    const auto& response = *sent->response;
    if (response.status < 200 || response.status > 299) {
      outcome_.detail = fmt::format("{}: {}", label, target::describe_answer(response));
      return std::nullopt;
    }
    return response;
  }

  bool enroll() {
    for (const auto& message : {device_.authenticate(), device_.token_update()}) {
      if (!exchange(message.label, message.endpoint, message.bytes())) return false;
    }
    return true;
  }

  std::string report(protocol::Status status, const std::string& uuid) const {
    return plist::to_xml(plist::Value(protocol::report(device_.channel(), nullptr, {status, uuid, {}})));
  }

  // The write paths a queue touches: the command is marked sent when delivered, and done when
  // acknowledged. Without an admin adapter nothing can be queued, and an Idle stands in.
  bool command_round_trip() {
    const auto& profile = session_.profile();
    if (!profile.enqueue) {
      if (!exchange("Idle", protocol::Endpoint::server, report(protocol::Status::idle, ""))) return false;
      outcome_.detail = "enrolled and answered an Idle (the profile has no admin adapter to queue a command with)";
      return true;
    }
    auto command = protocol::make_command(ids_.uuid(), kProbeCommand);
    auto admin = session_.enqueue(device_.channel(), command.body);
    outcome_.transcript.push_back(
        transcript_entry("admin", "liveness probe: enqueue " + std::string(kProbeCommand), admin.exchange, step_));
    if (!admin.accepted) {
      outcome_.detail = "enqueue " + std::string(kProbeCommand) + ": " + admin.accepted.error().message;
      return false;
    }
    session_.settle();
    auto idle = exchange("Idle", protocol::Endpoint::server, report(protocol::Status::idle, ""));
    if (!idle) return false;
    // Only the CommandUUID is looked at: the command's shape is other rules' business.
    auto parsed = plist::parse(idle->body, profile.plist_limits);
    auto uuid = parsed ? parsed->string_at("CommandUUID") : std::nullopt;
    if (uuid != command.uuid) {
      outcome_.detail = fmt::format("Idle: the queued {} {} was not delivered; got {}", kProbeCommand, command.uuid,
                                    target::describe_answer(*idle));
      return false;
    }
    if (!exchange("Acknowledged " + command.uuid, protocol::Endpoint::server,
                  report(protocol::Status::acknowledged, command.uuid))) {
      return false;
    }
    outcome_.detail = fmt::format("enrolled; {} {} delivered and acknowledged", kProbeCommand, command.uuid);
    return true;
  }

  target::TargetSession& session_;
  target::Sender sender_;
  const emulator::Device& device_;
  emulator::IdentitySource& ids_;
  int step_;
  ProbeOutcome outcome_;
};

}  // namespace

std::string probe_expectation(const target::TargetProfile& target) {
  return target.enqueue ? "a fresh device enrolls, gets a queued command and acknowledges it (writes still served)"
                        : "a fresh device enrolls and is answered an Idle (writes still served)";
}

ProbeOutcome probe_liveness(target::TargetSession& session, const std::string& device_name,
                            const emulator::Device& device, emulator::IdentitySource& ids, int step) {
  return Probe(session, device_name, device, ids, step).run();
}

}  // namespace mdmc::scenario
