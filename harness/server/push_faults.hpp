#pragma once
// The reference server's push misbehaviours (docs/push.md#how-the-reference-server-pushes): each
// a realistic way a push provider gets one PSH rule wrong, set by a fault mode (faults.hpp:
// `--fault push-wrong-magic`; what each does is said there) through Config::push.fault. The
// push unit tests set Config::push.fault directly (harness/server/push_sender_test.cpp).
#include "harness/server/faults.hpp"

namespace mdmc::server {

enum class PushFault {
  none,
  user_token_on_device,     // PSH-USER
  first_token_only,         // PSH-TOKEN-UPDATE
  wrong_magic,              // PSH-DEVICE
  wrong_type,               // PSH-WELL-FORMED
  push_after_unregistered,  // PSH-UNREGISTERED
  tight_retry,              // PSH-BACKOFF
  push_after_checkout,      // PSH-CHECKOUT
};

// The push misbehaviour a fault mode sets; none for the others.
constexpr PushFault push_fault_of(Fault fault) {
  switch (fault) {
    case Fault::push_user_token_on_device: return PushFault::user_token_on_device;
    case Fault::push_first_token_only: return PushFault::first_token_only;
    case Fault::push_wrong_magic: return PushFault::wrong_magic;
    case Fault::push_wrong_type: return PushFault::wrong_type;
    case Fault::push_after_unregistered: return PushFault::push_after_unregistered;
    case Fault::push_tight_retry: return PushFault::tight_retry;
    case Fault::push_after_checkout: return PushFault::push_after_checkout;
    default: return PushFault::none;
  }
}

}  // namespace mdmc::server
