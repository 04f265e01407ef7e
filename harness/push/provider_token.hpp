#pragma once
// APNs provider tokens: the ES256 JSON Web Tokens a provider sends as `authorization: bearer
// <token>` (docs/push.md). Header {"alg":"ES256","kid":<key id>}, claims {"iss":<team id>,
// "iat":<epoch seconds>}, each base64url without padding, and the signature as JWS wants it:
// raw R||S, 64 bytes, not the DER that OpenSSL makes. Nothing here throws; a token from a peer
// or a fuzzer is untrusted text.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "harness/base/clock.hpp"
#include "harness/base/result.hpp"

namespace mdmc::push {

// Apple's rule: a token is good for an hour from its iat.
inline constexpr std::chrono::seconds kProviderTokenLifetime{3600};
// Longer tokens are refused before any decoding.
inline constexpr std::size_t kMaxProviderTokenBytes = 2048;

// Base64url (RFC 4648 §5) without padding, as JWS writes it.
std::string base64url_encode(std::string_view bytes);
// Base64url; padding refused, as JWS does; the error names the offending byte.
base::Result<std::string> base64url_decode(std::string_view text);

// A provider token signed with `private_key_pem` (an EC P-256 key, PEM, PKCS#8 or SEC1, as in
// Apple's .p8 files).
base::Result<std::string> make_provider_token(std::string_view private_key_pem, std::string_view key_id,
                                              std::string_view team_id, base::SystemTime issued_at);

// What the fake APNs checks a token against.
struct ProviderTokenPolicy {
  std::string key_id;          // the `kid` the token must name
  std::string team_id;         // the `iss` it must carry
  std::string public_key_pem;  // the EC P-256 public key (or a certificate holding it) it must verify with
  std::chrono::seconds max_age = kProviderTokenLifetime;  // older: ExpiredProviderToken
  std::chrono::seconds clock_skew{60};                    // iat this far ahead of now still counts as now
};

// Why a token is refused, as the APNs reason it earns: InvalidProviderToken (shape, alg, kid,
// iss, signature, iat in the future) or ExpiredProviderToken (iat older than max_age).
struct ProviderTokenRejection {
  std::string reason;  // the APNs reason string
  std::string detail;  // what exactly, for people: "kid is \"X\", expected \"Y\""
};

// Checks `token` (without "bearer "); empty `reason` means it holds. A token equal to
// `verified_before` (one whose signature this connection already checked) skips the signature,
// not the rest: APNs too checks a token once per connection, and an ECDSA verification per
// push would cap the endpoint at a few thousand pushes a second.
ProviderTokenRejection check_provider_token(std::string_view token, const ProviderTokenPolicy& policy,
                                            base::SystemTime now, std::string_view verified_before = {});

}  // namespace mdmc::push
