// The target profile as a certification shows it: what was tested and how, without what would let
// a reader of the record act as the harness did. A profile holds secrets in a few places
// (docs/profiles.md): the admin adapter's basic_auth password, a pool's p12_password, user info in
// a URL; a file path names a secret (an issuer's key) without holding it. The key names below
// also catch what a later profile key may add.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <regex>
#include <string>

#include "harness/certify/certification.hpp"

namespace mdmc::certify {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool names_a_secret(const std::string& key) {
  static constexpr std::array<std::string_view, 8> kWords = {"password", "passphrase", "secret", "token",
                                                             "api_key",  "apikey",     "bearer", "credential"};
  const std::string k = lower(key);
  return std::any_of(kWords.begin(), kWords.end(), [&](std::string_view w) { return k.find(w) != std::string::npos; });
}

// `${env:NAME}` and nothing else: where the secret comes from, not the secret.
bool is_env_reference(const std::string& value) {
  static const std::regex kEnv(R"(\$\{env:[A-Za-z_][A-Za-z0-9_]*\})");
  return std::regex_match(value, kEnv);
}

// A private key block anywhere in the value, or a URL's user info password.
std::string redact_value(std::string value) {
  if (value.find("PRIVATE KEY-----") != std::string::npos) return "<redacted: private key>";
  static const std::regex kUserInfo(R"(^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@)");
  return std::regex_replace(value, kUserInfo, "$1:<redacted>@", std::regex_constants::format_first_only);
}

void redact(YAML::Node node) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const bool secret = it->first.IsScalar() && names_a_secret(it->first.Scalar());
      if (secret && it->second.IsScalar()) {
        if (!is_env_reference(it->second.Scalar())) it->second = std::string(kRedacted);
      } else if (secret && (it->second.IsMap() || it->second.IsSequence())) {
        it->second = std::string(kRedacted);
      } else {
        redact(it->second);
      }
    }
  } else if (node.IsSequence()) {
    for (auto child : node) redact(child);
  } else if (node.IsScalar()) {
    const std::string& before = node.Scalar();
    std::string after = redact_value(before);
    if (after != before) node = after;
  }
}

}  // namespace

std::string redact_profile(std::string_view yaml) {
  YAML::Emitter out;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    redact(root);
    out << root;
  } catch (const YAML::Exception&) {
    return "<redacted: the profile is not YAML>";
  }
  return std::string(out.c_str()) + "\n";
}

}  // namespace mdmc::certify
