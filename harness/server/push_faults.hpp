#pragma once
// The reference server's push misbehaviours (docs/push.md#how-the-reference-server-pushes): each
// a realistic way a push provider gets issue #15's PSH rules wrong. They are not fault modes
// (faults.hpp) yet: the suite has no case that sees a push until the scenario steps
// expect_push and expect_no_push exist, and a fault mode no case catches would fail the
// mutation self-test. Until then they are set through Config::push.fault and shown by
// harness/server/push_sender_test.cpp against the fake APNs.
#include <array>
#include <optional>
#include <string_view>

namespace mdmc::server {

enum class PushFault {
  none,
  user_token_on_device,     // PSH-USER
  first_token_only,         // PSH-TOKEN-UPDATE
  wrong_magic,              // PSH-DEVICE (and PSH-USER)
  missing_topic,            // PSH-WELL-FORMED
  push_after_unregistered,  // PSH-UNREGISTERED
  tight_retry,              // PSH-BACKOFF
  push_after_checkout,      // PSH-CHECKOUT
};

struct PushFaultInfo {
  PushFault fault;
  std::string_view name;       // the --push-fault value
  std::string_view behaviour;  // what the server then does wrong
};

inline constexpr std::array<PushFaultInfo, 8> kPushFaults = {{
    {PushFault::none, "none", "pushes as docs/push.md says"},
    {PushFault::user_token_on_device, "user-token-on-device",
     "stores a user's TokenUpdate over its device's token and PushMagic as well: the device's commands push to the "
     "user's token"},
    {PushFault::first_token_only, "first-token-only",
     "keeps a channel's first token and PushMagic and ignores the ones later TokenUpdates bring"},
    {PushFault::wrong_magic, "wrong-magic",
     "pushes a user's commands with the device's PushMagic (a device's own with its magic reversed)"},
    {PushFault::missing_topic, "missing-topic",
     "sends no apns-topic header, relying on the push certificate's single topic as NanoMDM does"},
    {PushFault::push_after_unregistered, "push-after-unregistered",
     "ignores 410 Unregistered and keeps pushing to the token"},
    {PushFault::tight_retry, "tight-retry", "retries a push answered 429 or 503 at once, up to 50 times"},
    {PushFault::push_after_checkout, "push-after-checkout",
     "keeps the push records of a device that checked out: a command queued for it or its users afterwards is "
     "refused 404 but pushed all the same, and retries pending at CheckOut go on"},
}};

constexpr std::optional<PushFault> push_fault_from_name(std::string_view name) {
  for (const auto& info : kPushFaults) {
    if (info.name == name) return info.fault;
  }
  return std::nullopt;
}

constexpr std::string_view push_fault_name(PushFault fault) {
  for (const auto& info : kPushFaults) {
    if (info.fault == fault) return info.name;
  }
  return "none";
}

}  // namespace mdmc::server
