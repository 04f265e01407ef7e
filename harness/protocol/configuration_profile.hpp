#pragma once
// PRF-ONE-ACCOUNT: which account payloads a configuration profile carries.
//
// Apple, "Managing MDM Devices and Users in macOS": "Don't group multiple accounts together into
// a single profile. Create a separate profile for each account." A profile here is the plist an
// InstallProfile command carries in Payload, once any CMS signature is taken off
// (pki::profile_content). Plist only: no I/O, no OpenSSL.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "harness/plist/value.hpp"

namespace mdmc::protocol {

struct AccountPayloads {
  std::vector<std::string> types;  // PayloadType of each account payload, in PayloadContent order
  bool is_profile = false;         // a dict with a PayloadContent array (or encrypted content)
  bool encrypted = false;          // EncryptedPayloadContent: the payloads can't be read here
};

// The account payloads among the profile's PayloadContent entries. Entries that are not dicts
// or have no string PayloadType are not counted. Anything but a profile gives is_profile false.
AccountPayloads account_payloads(const plist::Value& profile);

// Whether a PayloadType configures an account (exact, case-sensitive match).
bool is_account_payload_type(std::string_view payload_type);
// Every such PayloadType, sorted: generated from Apple's mdm/profiles/*.yaml (every type ending
// in ".account", and com.apple.mail.managed and com.apple.google-oauth).
std::span<const std::string_view> account_payload_types();

}  // namespace mdmc::protocol
