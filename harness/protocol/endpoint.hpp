#pragma once
// The two URLs a device talks to, from Apple's enrollment profile: CheckInURL (check-in
// messages) and ServerURL (command reports). They may be the same URL; the Content-Type tells
// the requests apart.
#include <optional>
#include <string_view>

#include "harness/base/enum_names.hpp"

namespace mdmc::protocol {

enum class Endpoint { check_in, server };

// "check_in" and "server": the words of finding and fuzz records.
inline constexpr base::EnumNames<Endpoint, 2> kEndpointNames = {{
    {Endpoint::check_in, "check_in"},
    {Endpoint::server, "server"},
}};
constexpr std::string_view endpoint_name(Endpoint endpoint) { return base::name_of(kEndpointNames, endpoint); }

// The Content-Type a macOS client sends to each (Apple's protocol reference).
constexpr std::string_view endpoint_content_type(Endpoint endpoint) {
  return endpoint == Endpoint::check_in ? "application/x-apple-aspen-mdm-checkin"
                                        : "application/x-apple-aspen-mdm; charset=UTF-8";
}

}  // namespace mdmc::protocol
