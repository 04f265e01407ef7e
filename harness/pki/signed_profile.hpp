#pragma once
// Configuration profiles as InstallProfile carries them: often a CMS SignedData (DER) with the
// profile plist inside. PRF-ONE-ACCOUNT needs the plist; the reference server and the tests need
// to make signed ones.
#include <cstddef>
#include <cstdint>
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

// What a Mac would make of a signed profile's signature.
enum class ProfileSignatureStatus : std::uint8_t {
  verified,   // the signature holds and its signer chains to a trusted CA
  untrusted,  // the signature holds, but the signer chains to nothing trusted (macOS: "Unverified")
  invalid,    // the signature does not hold: the content or the signature was changed, or is damaged
};
struct SignedProfile {
  ProfileSignatureStatus status = ProfileSignatureStatus::invalid;
  std::string content;         // the profile inside, whatever the status
  std::string signer_subject;  // RFC 2253, when the SignedData carries the signer's certificate
  std::string detail;          // why untrusted or invalid, in words; empty when verified
};

// Checks a DER CMS SignedData with attached content (a signed .mobileconfig): the signature over
// the content, then the signer's chain, at the current time and for any purpose (profiles are
// signed with TLS server certificates as often as with S/MIME ones), to one of the certificates
// in `trusted_ca_pem` (each one an anchor, as for verify_detached), or, when it is empty, to the
// system's default store; intermediates come from the SignedData. Fails, as profile_content
// does, only when there is nothing to check: over kMaxProfileBytes, not CMS, CMS of another type,
// or without content (detached).
Result<SignedProfile> verify_signed_profile(std::string_view der, const std::string& trusted_ca_pem);

}  // namespace mdmc::pki
