#pragma once
// A channel is who speaks: the device (the mdmclient daemon) or one user on it (an mdmclient
// agent). Both carry the device's UDID; a user channel adds the user's UserID.
#include <optional>
#include <string>
#include <string_view>

namespace mdmc::protocol {

struct Channel {
  std::string udid;
  std::string user_id;  // empty on the device channel

  bool is_user() const { return !user_id.empty(); }
  // "UDID" for the device, "UDID:UserID" for a user: NanoMDM's naming, used by the admin API.
  std::string id() const { return is_user() ? udid + ":" + user_id : udid; }
  static std::optional<Channel> from_id(std::string_view id);
  bool operator==(const Channel&) const = default;
  auto operator<=>(const Channel&) const = default;
};

}  // namespace mdmc::protocol
