#include "harness/scenario/liveness.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "harness/plist/value.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::scenario {
namespace {

// The command the probe has queued: any will do; ProfileList has no side effect on a device.
constexpr const char* kProbeCommand = "ProfileList";

class Probe {
 public:
  // `ids` makes the queued command's UUID; null when the probe only enrolls. `labels` begin
  // every transcript label ("liveness probe: ").
  Probe(target::TargetSession& session, const std::string& device_name, const emulator::Device& device,
        emulator::IdentitySource* ids, int step, const std::atomic<bool>* stop, std::string labels)
      : session_(session),
        sender_{"probe", device_name},
        device_(device),
        ids_(ids),
        step_(step),
        stop_(stop),
        labels_(std::move(labels)) {}

  ProbeOutcome run() {
    if (!enroll() || !command_round_trip()) return std::move(outcome_);
    outcome_.alive = true;
    return std::move(outcome_);
  }

  ProbeOutcome enroll_only() {
    if (!enroll()) return std::move(outcome_);
    outcome_.alive = true;
    outcome_.detail = "enrolled";
    return std::move(outcome_);
  }

 private:
  // Sends and keeps the exchange; on no answer or a status outside 2xx, says why and fails.
  std::optional<net::Response> exchange(const std::string& label, protocol::Endpoint to, std::string body) {
    if (stop_ && stop_->load()) return unjudged("interrupted before the probe finished");
    auto sent = session_.send(sender_, to, std::move(body));
    if (!sent) return unjudged(label + ": " + sent.error().message);
    outcome_.transcript.push_back(transcript_entry("probe", labels_ + label, *sent, step_));
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

  std::nullopt_t unjudged(std::string why) {
    outcome_.judged = false;
    outcome_.detail = std::move(why);
    return std::nullopt;
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
    auto command = protocol::make_command(ids_->uuid(), kProbeCommand);
    auto admin = session_.enqueue(device_.channel(), command.body);
    outcome_.transcript.push_back(
        transcript_entry("admin", labels_ + "enqueue " + std::string(kProbeCommand), admin.exchange, step_));
    if (!admin.accepted) {
      unjudged("enqueue " + std::string(kProbeCommand) + ": " + admin.accepted.error().message);
      return false;
    }
    session_.settle();
    std::string label = "Idle";
    std::string body = report(protocol::Status::idle, "");
    auto wait = std::chrono::milliseconds(50);
    std::vector<std::string> others;
    for (int sent = 0; sent < kProbeExchanges; ++sent) {
      auto answer = exchange(label, protocol::Endpoint::server, body);
      if (!answer) return false;
      // Only the CommandUUID is looked at: the command's shape is other rules' business.
      std::optional<std::string> uuid;
      if (!answer->body.empty()) {
        if (auto parsed = plist::parse(answer->body, profile.plist_limits)) uuid = parsed->string_at("CommandUUID");
      }
      if (uuid == command.uuid) {
        if (!exchange("Acknowledged " + command.uuid, protocol::Endpoint::server,
                      report(protocol::Status::acknowledged, command.uuid))) {
          return false;
        }
        outcome_.detail = fmt::format("enrolled; {} {} delivered and acknowledged", kProbeCommand, command.uuid);
        if (!others.empty()) outcome_.detail += fmt::format(" ({} other command(s) answered NotNow)", others.size());
        return true;
      }
      if (uuid && !uuid->empty() && others.size() < kProbeExchanges) {
        // Another command the server holds for the device: it keeps it, and sends the next.
        others.push_back(*uuid);
        label = "NotNow " + *uuid;
        body = report(protocol::Status::not_now, *uuid);
        continue;
      }
      // Nothing (yet): a queue that fills asynchronously gets a little longer, then a new Idle.
      if (stop_ && stop_->load()) {
        unjudged("interrupted before the probe finished");
        return false;
      }
      std::this_thread::sleep_for(wait);
      wait = std::min(wait * 2, std::chrono::milliseconds(800));
      label = "Idle";
      body = report(protocol::Status::idle, "");
    }
    outcome_.detail =
        fmt::format("the queued {} {} was not delivered in {} exchanges{}", kProbeCommand, command.uuid,
                    kProbeExchanges, others.empty() ? "" : fmt::format(" ({} other command(s) came)", others.size()));
    return false;
  }

  target::TargetSession& session_;
  target::Sender sender_;
  const emulator::Device& device_;
  emulator::IdentitySource* ids_;
  int step_;
  const std::atomic<bool>* stop_;
  std::string labels_;
  ProbeOutcome outcome_;
};

}  // namespace

std::string probe_expectation(const target::TargetProfile& target) {
  return target.enqueue ? "a fresh device enrolls, gets a queued command and acknowledges it (writes still served)"
                        : "a fresh device enrolls and is answered an Idle (writes still served)";
}

ProbeOutcome probe_liveness(target::TargetSession& session, const std::string& device_name,
                            const emulator::Device& device, emulator::IdentitySource& ids, int step,
                            const std::atomic<bool>* stop) {
  return Probe(session, device_name, device, &ids, step, stop, "liveness probe: ").run();
}

ProbeOutcome probe_enrollment(target::TargetSession& session, const std::string& device_name,
                              const emulator::Device& device, const std::string& labels,
                              const std::atomic<bool>* stop) {
  return Probe(session, device_name, device, nullptr, -1, stop, labels).enroll_only();
}

}  // namespace mdmc::scenario
