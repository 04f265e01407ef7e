#include "harness/protocol/configuration_profile.hpp"

#include <algorithm>

#include "harness/protocol/detail/schema_tables.hpp"

namespace mdmc::protocol {
namespace {

constexpr bool account_types_sorted() {
  for (std::size_t i = 1; i < detail::kAccountPayloadTypes.size(); ++i) {
    if (!(detail::kAccountPayloadTypes[i - 1] < detail::kAccountPayloadTypes[i])) return false;
  }
  return true;
}
static_assert(account_types_sorted());

}  // namespace

bool is_account_payload_type(std::string_view payload_type) {
  return std::binary_search(detail::kAccountPayloadTypes.begin(), detail::kAccountPayloadTypes.end(), payload_type);
}

std::span<const std::string_view> account_payload_types() { return detail::kAccountPayloadTypes; }

AccountPayloads account_payloads(const plist::Value& profile) {
  AccountPayloads out;
  const plist::Dict* dict = profile.as_dict();
  if (!dict) return out;
  // Apple's TopLevel.yaml: an encrypted profile carries EncryptedPayloadContent (CMS enveloped to
  // the device) in place of PayloadContent; only the device can read what is inside.
  if (const auto* encrypted = profile.find("EncryptedPayloadContent"); encrypted && encrypted->as_data()) {
    out.is_profile = true;
    out.encrypted = true;
  }
  const plist::Value* content = profile.find("PayloadContent");
  if (!content || !content->as_array()) return out;
  out.is_profile = true;
  for (const auto& payload : *content->as_array()) {
    auto type = payload.string_at("PayloadType");
    if (type && is_account_payload_type(*type)) out.types.push_back(std::move(*type));
  }
  return out;
}

}  // namespace mdmc::protocol
