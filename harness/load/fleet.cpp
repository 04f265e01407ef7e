#include "harness/load/fleet.hpp"

#include <charconv>

namespace mdmc::load {
namespace {

// splitmix64: spreads (seed, index) over the whole 64-bit range, so that neighbouring devices'
// identity streams are unrelated.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

FleetDevice fleet_device(const FleetShape& shape, int index) {
  FleetDevice device;
  device.index = index;
  device.seed = mix(shape.seed ^ mix(static_cast<std::uint64_t>(index)));
  emulator::IdentitySource ids(device.seed);
  device.facts.udid = ids.uuid();
  device.facts.topic = shape.topic;
  device.facts.serial_number = "LOAD" + std::to_string(index);
  device.facts.device_name = "mdmconform load Mac " + std::to_string(index);
  std::size_t network = 0;
  for (int u = 0; u < shape.users_per_device; ++u) {
    FleetUser user;
    const bool as_network = u > 0 && network < shape.managed_network_users.size();
    if (as_network) {
      user.kind = emulator::UserKind::network;
      user.facts.user_id = shape.managed_network_users[network++];
      user.facts.short_name = "net" + std::to_string(u);
    } else {
      user.facts.user_id = ids.uuid();
      user.facts.short_name = "user" + std::to_string(u);
    }
    user.facts.long_name = "Load User " + std::to_string(u);
    device.users.push_back(std::move(user));
  }
  return device;
}

base::Result<Shard> parse_shard(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos)
    return base::fail("--shard wants I/N (say 0/3), not '" + std::string(text) + "'");
  auto index = parse_int(text.substr(0, slash));
  auto count = parse_int(text.substr(slash + 1));
  if (!index || !count || *count < 1 || *count > 10000 || *index < 0 || *index >= *count) {
    return base::fail("--shard wants I/N with 0 <= I < N <= 10000, not '" + std::string(text) + "'");
  }
  return Shard{*index, *count};
}

}  // namespace mdmc::load
