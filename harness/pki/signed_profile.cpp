#include "harness/pki/signed_profile.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>

#include "harness/pki/detail/openssl.hpp"

namespace mdmc::pki {

Result<std::string> profile_content(std::string_view payload) {
  if (payload.size() > kMaxProfileBytes) {
    return base::fail("profile_content: " + std::to_string(payload.size()) + " bytes, limit " +
                      std::to_string(kMaxProfileBytes));
  }
  // A DER ContentInfo is a SEQUENCE (0x30); a plist starts with '<', "bplist" or a BOM. Anything
  // else is handed back as it is, for the plist parser to judge.
  if (payload.empty() || static_cast<unsigned char>(payload[0]) != 0x30) {
    return std::string(payload);
  }
  const auto* cursor = reinterpret_cast<const unsigned char*>(payload.data());
  detail::CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(payload.size())));
  if (!cms) {
    ERR_clear_error();
    return std::string(payload);  // 0x30 by chance, not CMS
  }
  ERR_clear_error();
  const int type = OBJ_obj2nid(CMS_get0_type(cms.get()));
  if (type != NID_pkcs7_signed) {
    return detail::fail("profile_content: CMS " + std::string(OBJ_nid2sn(type)) +
                        ", not SignedData: the profile inside cannot be read");
  }
  // The encapsulated content; null for a detached signature. Not verified, on purpose (see the
  // header): no certificate store, no CMS_verify.
  ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
  if (content == nullptr || *content == nullptr) {
    return detail::fail("profile_content: CMS SignedData without content (detached signature)");
  }
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(*content)),
                     static_cast<std::size_t>(ASN1_STRING_length(*content)));
}

Result<std::string> sign_profile(const Identity& signer, std::string_view content) {
  // As mdm_signature, but attached: the profile travels inside the SignedData.
  return detail::signed_data_der(signer, content, /*detached=*/false, "sign_profile");
}

}  // namespace mdmc::pki
