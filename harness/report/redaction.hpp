#pragma once
// Secrets taken out of a run before any view shows it or any file keeps it: push tokens,
// passwords, bootstrap tokens and the like in transcript bodies, credentials in headers, and
// copies of them in free text.
#include <cstddef>

#include "harness/scenario/result.hpp"

namespace mdmc::report {

// Replaces the secrets in a run, in place, and sets run.redacted. In every transcript body that
// parses as a plist, the string and data values under a secret key (at any depth) become
// "<redacted: N chars>" (strings) or the bytes "<redacted: N bytes>" (data), and the body is
// written again in its own format (XML stays XML, binary stays binary). The keys, from Apple's
// check-in and command schemas, plus AuthToken (the credential a server hands back for a
// UserAuthenticate; see redaction.cpp): Token, PushMagic, UnlockToken, BootstrapToken,
// DigestResponse, AuthToken, TokenData, SecurityToken, PushToken, ActivationLockBypassCode,
// Password, CurrentPassword, NewPassword, PrivateKeyExport, PrivateKeyExportPassword,
// passwordHash, PIN, RedemptionCode, UnusedRedemptionCode. PEM private key blocks anywhere in
// a body (in a plist's string and data values, or in a body that is not a plist) become
// "-----REDACTED PRIVATE KEY-----". Authorization and Proxy-Authorization header values keep
// their scheme ("Basic <redacted>"); Mdm-Signature becomes "<redacted: N chars>". Findings'
// expected and actual text and case reasons lose PEM keys and any verbatim copy (8 bytes or
// more; data also as base64 and hex) of a secret redacted from a body or header, as do bodies
// that are not plists. Never throws; idempotent; a rewritten body grows by at most
// kRedactionGrowthPerValue bytes per replaced value, else it is replaced whole by
// "<redacted: a N-byte plist holding secrets>". Plists nested in data (InstallProfile's
// Payload) are not opened.
void redact_secrets(scenario::RunResult& run);

// How much a plist body may grow per replaced value when it is written again (libplist's own
// layout: indentation and a DOCTYPE that a compact body may lack, besides the marker).
inline constexpr std::size_t kRedactionGrowthPerValue = 1024;

}  // namespace mdmc::report
