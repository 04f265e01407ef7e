#pragma once
// How a device proves who it is to an MDM server, as Apple's enrollment profile allows: a TLS
// client certificate (mTLS), an Mdm-Signature header over each body (SignMessage), or both.
// The target profile, the emulated client and the reference server share this one vocabulary.
#include <optional>
#include <string_view>

#include "harness/base/enum_names.hpp"

namespace mdmc::protocol {

enum class IdentityMode { none, mtls, signature, both };

// "none", "mtls", "signature", "both": the words of target profiles, --identity-mode and reports.
inline constexpr base::EnumNames<IdentityMode, 4> kIdentityModeNames = {{
    {IdentityMode::none, "none"},
    {IdentityMode::mtls, "mtls"},
    {IdentityMode::signature, "signature"},
    {IdentityMode::both, "both"},
}};
constexpr std::string_view identity_mode_name(IdentityMode mode) { return base::name_of(kIdentityModeNames, mode); }
constexpr std::optional<IdentityMode> identity_mode_from_name(std::string_view name) {
  return base::value_of(kIdentityModeNames, name);
}

// Whether the identity is shown in the TLS handshake, and whether each body is signed with it.
constexpr bool uses_mtls(IdentityMode mode) { return mode == IdentityMode::mtls || mode == IdentityMode::both; }
constexpr bool signs_bodies(IdentityMode mode) { return mode == IdentityMode::signature || mode == IdentityMode::both; }

}  // namespace mdmc::protocol
