#pragma once
// The synthetic fleet of a load run (docs/load.md): device i of a fleet is the same Mac in every
// process that runs that fleet with the same seed, so that shards (`--shard I/N`) split one fleet
// and never make two devices with one UDID. A device has its daemon's channel and K users: the
// first logs in locally (the console user), the others are the profile's managed network users
// while there are any, and local users after that.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::load {

struct FleetUser {
  protocol::UserFacts facts;
  emulator::UserKind kind = emulator::UserKind::local;
};

struct FleetDevice {
  int index = 0;
  std::uint64_t seed = 0;  // of this device's IdentitySource: its UDID, users and push tokens
  protocol::DeviceFacts facts;
  std::vector<FleetUser> users;
};

struct FleetShape {
  std::uint64_t seed = 1;
  int devices = 1;
  int users_per_device = 0;
  std::string topic;
  std::vector<std::string> managed_network_users;  // UserIDs the server manages
};

// Device `index` (0 <= index < shape.devices) of the fleet.
FleetDevice fleet_device(const FleetShape& shape, int index);

// Which part of a fleet one process runs: shard I of N takes the devices whose index is I modulo N.
struct Shard {
  int index = 0;
  int count = 1;
  bool holds(int device_index) const { return device_index % count == index; }
};
// "I/N" with 0 <= I < N <= 10000.
base::Result<Shard> parse_shard(std::string_view text);

}  // namespace mdmc::load
