#pragma once
// Configuration profiles as InstallProfile carries them: often a CMS SignedData (DER) with the
// profile plist inside. PRF-ONE-ACCOUNT needs the plist; the reference server and the tests need
// to make signed ones.
#include <cstddef>
#include <string>
#include <string_view>

#include "harness/pki/pki.hpp"

namespace mdmc::pki {

// Payloads above this are refused: Apple's profiles are kilobytes; 16 MiB leaves room for one
// with large embedded certificates or fonts and still bounds what a peer can make us hold.
inline constexpr std::size_t kMaxProfileBytes = 16 * 1024 * 1024;

// The profile inside an InstallProfile Payload: when `payload` is a DER CMS SignedData with
// encapsulated content, that content; when it is not CMS at all, `payload` unchanged (an
// unsigned profile). The signature is NOT verified: PRF-ONE-ACCOUNT only reads what the profile
// configures, and the device, not the harness, decides whether to trust the signer.
// Fails for inputs over kMaxProfileBytes, for a SignedData without content (detached), and for
// CMS of another type (EnvelopedData: encrypted to the device, unreadable here).
Result<std::string> profile_content(std::string_view payload);

// `content` (a profile plist) as a DER CMS SignedData with the content attached: SHA-256, binary
// (the bytes signed as they are), with the signer's certificate and chain_pem; what macOS accepts
// as a signed profile.
Result<std::string> sign_profile(const Identity& signer, std::string_view content);

}  // namespace mdmc::pki
