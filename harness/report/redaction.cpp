#include "harness/report/redaction.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "harness/base/bytes.hpp"
#include "harness/plist/value.hpp"
#include "harness/report/detail/text.hpp"

namespace mdmc::report {
namespace {

using namespace detail;
using scenario::RunResult;

// Plist keys whose string and data values are secrets, wherever they sit in a body. From Apple's
// check-in and command schemas (apple/device-management: mdm/checkin, mdm/commands), plus
// AuthToken, which no request schema lists: it is the server's answer to a UserAuthenticate
// that carried a DigestResponse, and the device presents it for that user afterwards, so a
// transcript of the server's side holds a live credential under that key. Left out on
// purpose: DigestChallenge (the server's nonce, public by design and needed to read the
// exchange), EncryptedNewRecoveryKey and FDE_PersonalRecoveryKeyCMS (already encrypted to the
// server's certificate), certificates (public), and profile keys such as the SCEP Challenge,
// which travel inside InstallProfile's Payload data and are not opened here.
constexpr std::array<std::string_view, 19> kSecretKeys = {
    // Check-in.
    "Token",           // TokenUpdate: the push token
    "PushMagic",       // TokenUpdate: what a push must carry to wake the device
    "UnlockToken",     // TokenUpdate; ClearPasscode command; UnlockToken command response
    "BootstrapToken",  // SetBootstrapToken request; GetBootstrapToken response
    "DigestResponse",  // UserAuthenticate: the answer to the DigestChallenge
    "AuthToken",       // the server's answer to UserAuthenticate with DigestResponse
    "TokenData",       // GetToken response
    "SecurityToken",   // GetToken TokenParameters (watch pairing)
    // Commands and their results.
    "PushToken",                 // DeviceInformation: the push token again
    "ActivationLockBypassCode",  // ActivationLockBypassCode result
    "Password",                  // RequestMirroring, RotateFileVaultKey, Verify*Password/Lock
    "CurrentPassword",           // SetFirmwarePassword, SetRecoveryLock
    "NewPassword",               // SetFirmwarePassword, SetRecoveryLock
    "PrivateKeyExport",          // RotateFileVaultKey: a .p12 with the private key
    "PrivateKeyExportPassword",  // RotateFileVaultKey
    "passwordHash",              // AccountConfiguration, SetAutoAdminPassword: crackable offline
    "PIN",                       // DeviceLock, EraseDevice: unlocks the Mac
    "RedemptionCode",            // ApplyRedemptionCode: a paid App Store code
    "UnusedRedemptionCode",      // ManagedApplicationList
};

bool is_secret_key(std::string_view key) {
  return std::find(kSecretKeys.begin(), kSecretKeys.end(), key) != kSecretKeys.end();
}

// Shorter secrets are not searched for in free text: they would match by chance (a six-digit
// PIN inside a timestamp) and scrub text that holds no secret.
constexpr std::size_t kMinSecretText = 8;
// Containers below this depth are not walked; plist::parse already refuses deeper nesting (64).
constexpr std::size_t kMaxWalkDepth = 256;
constexpr std::string_view kRedacted = "<redacted>";  // fits the small-string buffer: no allocation
constexpr std::string_view kPemBegin = "-----BEGIN ";
constexpr std::string_view kPemDashes = "-----";
constexpr std::string_view kPemRedacted = "-----REDACTED PRIVATE KEY-----";

bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

std::string string_marker(std::string_view s) { return fmt::format("<redacted: {} chars>", width_of(s)); }
std::string data_marker(std::string_view bytes) { return fmt::format("<redacted: {} bytes>", bytes.size()); }

// "<redacted: 44 chars>" (unit "chars") or "<redacted: 32 bytes>" (unit "bytes"): what an earlier
// redaction left. Recognizing it keeps redaction idempotent.
bool is_marker(std::string_view s, std::string_view unit) {
  constexpr std::string_view kOpen = "<redacted: ";
  if (!s.starts_with(kOpen) || !s.ends_with(">")) return false;
  s.remove_prefix(kOpen.size());
  s.remove_suffix(1);
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  return digits > 0 && s.substr(digits) == fmt::format(" {}", unit);
}

// Replaces each PEM private key block (BEGIN line to the matching END line) by kPemRedacted.
// A block without its END line (a truncated excerpt) is redacted to the end of the text.
std::string scrub_pem(std::string_view text) {
  if (text.find(kPemBegin) == std::string_view::npos) return std::string(text);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t begin = text.find(kPemBegin, pos);
    if (begin == std::string_view::npos) break;
    const std::size_t label_start = begin + kPemBegin.size();
    const std::size_t label_end = text.find(kPemDashes, label_start);
    const std::string_view label =
        label_end == std::string_view::npos ? std::string_view() : text.substr(label_start, label_end - label_start);
    // "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY",
    // "PGP PRIVATE KEY BLOCK"; a label is one short line.
    if (label.empty() || label.size() > 64 || label.find('\n') != std::string_view::npos ||
        label.find("PRIVATE KEY") == std::string_view::npos) {
      out.append(text.substr(pos, label_start - pos));
      pos = label_start;
      continue;
    }
    out.append(text.substr(pos, begin - pos));
    out.append(kPemRedacted);
    const std::string end_line = fmt::format("-----END {}-----", label);
    const std::size_t end = text.find(end_line, label_end + kPemDashes.size());
    pos = end == std::string_view::npos ? text.size() : end + end_line.size();
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

std::string ascii_upper(std::string s) {
  for (char& ch : s) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return s;
}

// What one run's redaction found: the secrets' text, to scrub from free text later.
class Redactor {
 public:
  // A string secret as it may be quoted: itself and as XML element text.
  void remember_string(std::string_view s) {
    remember(s);
    remember(xml_text(s));
  }
  // A data secret as it may be quoted: raw, base64 (XML plists, JSON) and hex (push tokens).
  void remember_data(std::string_view bytes) {
    remember(bytes);
    remember(base::base64_encode(bytes));
    const std::string hex = base::hex_encode(bytes);
    remember(hex);
    remember(ascii_upper(hex));
  }
  void remember(std::string_view text) {
    if (text.size() < kMinSecretText || text == kRedacted || is_marker(text, "chars") || is_marker(text, "bytes")) {
      return;
    }
    secrets_.emplace_back(text);
  }

  // Longest first, so that a secret containing another is replaced whole.
  void finish() {
    std::sort(secrets_.begin(), secrets_.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() > b.size() : a < b;
    });
    secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
  }

  // PEM keys and every remembered secret taken out of free text. Each secret (8 bytes or more)
  // becomes a marker of at most about 25 bytes.
  std::string scrub_text(std::string_view text) const {
    std::string out = scrub_pem(text);
    for (const auto& secret : secrets_) {
      std::size_t at = out.find(secret);
      if (at == std::string::npos) continue;
      const std::string marker = string_marker(secret);
      while (at != std::string::npos) {
        out.replace(at, secret.size(), marker);
        at = out.find(secret, at + marker.size());
      }
    }
    return out;
  }

  // Replaces secrets below value; `secret` says whether value sits under a secret key (then
  // every string and data inside it is one). Returns how many values were replaced.
  std::size_t redact_value(plist::Value& value, bool secret, std::size_t depth) {
    if (depth > kMaxWalkDepth) return 0;
    std::size_t replaced = 0;
    if (auto* dict = value.as_dict()) {
      for (auto& [key, child] : *dict) {
        replaced += redact_value(child, secret || is_secret_key(key), depth + 1);
      }
    } else if (auto* array = value.as_array()) {
      for (auto& child : *array) replaced += redact_value(child, secret, depth + 1);
    } else if (const std::string* s = value.as_string()) {
      // An empty value hides nothing and may mean something ("remove the bootstrap token").
      if (s->empty() || is_marker(*s, "chars")) return 0;
      if (secret) {
        remember_string(*s);
        value = plist::Value(string_marker(*s));
        return 1;
      }
      std::string scrubbed = scrub_pem(*s);
      if (scrubbed == *s) return 0;
      value = plist::Value(std::move(scrubbed));
      return 1;
    } else if (const plist::Data* d = value.as_data()) {
      if (d->bytes.empty() || is_marker(d->bytes, "bytes")) return 0;
      if (secret) {
        remember_data(d->bytes);
        value = plist::Value(plist::Data{data_marker(d->bytes)});
        return 1;
      }
      std::string scrubbed = scrub_pem(d->bytes);
      if (scrubbed == d->bytes) return 0;
      value = plist::Value(plist::Data{std::move(scrubbed)});
      return 1;
    }
    // Booleans, numbers, dates and UIDs are left: Apple's schema types no secret that way.
    return replaced;
  }

  // A body that parses as a plist is redacted and written again in its own format; returns
  // false for a body that is not a plist (scrubbed as text later, once every secret is known).
  bool redact_plist_body(std::string& body) {
    const auto format = plist::sniff(body);
    if (!format) return false;
    auto parsed = plist::parse(body);
    if (!parsed) return false;
    plist::Value value = std::move(parsed).value();
    const std::size_t replaced = redact_value(value, false, 0);
    // Untouched bodies keep their exact bytes: writing a plist again changes its layout.
    if (replaced == 0) return true;
    std::string out = *format == plist::Format::xml ? plist::to_xml(value) : plist::to_binary(value);
    if (out.empty() || out.size() > body.size() + kRedactionGrowthPerValue * replaced) {
      out = fmt::format("<redacted: a {}-byte plist holding secrets>", body.size());
    }
    body = std::move(out);
    return true;
  }

  // Authorization and Proxy-Authorization keep their scheme ("Basic <redacted>"), which says how
  // the client authenticated; Mdm-Signature becomes "<redacted: N chars>".
  void redact_header(net::Header& h) {
    if (iequals(h.name, "Authorization") || iequals(h.name, "Proxy-Authorization")) {
      std::string_view v = h.value;
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      if (v.empty()) return;
      const std::size_t space = v.find_first_of(" \t");
      const std::string_view scheme = space == std::string_view::npos ? std::string_view() : v.substr(0, space);
      std::string_view credentials = space == std::string_view::npos ? v : v.substr(space);
      while (!credentials.empty() && (credentials.front() == ' ' || credentials.front() == '\t')) {
        credentials.remove_prefix(1);
      }
      remember(credentials);
      h.value = scheme.empty() ? std::string(kRedacted) : fmt::format("{} {}", scheme, kRedacted);
    } else if (iequals(h.name, "Mdm-Signature")) {
      if (h.value.empty() || is_marker(h.value, "chars")) return;
      remember(h.value);
      h.value = string_marker(h.value);
    }
  }

 private:
  std::vector<std::string> secrets_;
};

// Runs f on target; if it throws (only std::bad_alloc can), target is emptied down to
// kRedacted, so that a failure never leaves a secret behind and never throws itself.
template <typename F>
void guarded(std::string& target, F&& f) noexcept {
  try {
    f();
  } catch (...) {
    target.clear();
    target.assign(kRedacted);  // within the capacity every std::string has: cannot throw
  }
}

}  // namespace

void redact_secrets(RunResult& run) {
  Redactor redactor;
  // Bodies that are not plists wait for the second pass, when every secret is known.
  std::vector<std::string*> text_bodies;
  auto redact_body = [&](std::string& body) {
    guarded(body, [&] {
      if (!redactor.redact_plist_body(body)) text_bodies.push_back(&body);
    });
  };
  for (auto& c : run.cases) {
    for (auto& entry : c.transcript) {
      net::Exchange& x = entry.exchange;
      for (auto& h : x.request.headers) guarded(h.value, [&] { redactor.redact_header(h); });
      redact_body(x.request.body);
      if (x.response) {
        for (auto& h : x.response->headers) guarded(h.value, [&] { redactor.redact_header(h); });
        redact_body(x.response->body);
      }
    }
  }
  redactor.finish();
  auto scrub = [&](std::string& text) { guarded(text, [&] { text = redactor.scrub_text(text); }); };
  for (std::string* body : text_bodies) scrub(*body);
  for (auto& c : run.cases) {
    scrub(c.reason);
    for (auto& f : c.findings) {
      scrub(f.expected);
      scrub(f.actual);
    }
  }
  run.redacted = true;
}

}  // namespace mdmc::report
