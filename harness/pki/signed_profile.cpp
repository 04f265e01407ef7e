#include "harness/pki/signed_profile.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>

#include <memory>
#include <optional>

#include "harness/pki/detail/openssl.hpp"

namespace mdmc::pki {
namespace {

void free_stack_only(STACK_OF(X509) * stack) noexcept { sk_X509_free(stack); }

// Why `signer` does not chain to the anchors in `trusted_ca_pem` (to the system's default store
// when it is empty), or nothing when it does. Intermediates come from the SignedData only.
std::optional<std::string> chain_problem(X509* signer, CMS_ContentInfo* cms, const std::string& trusted_ca_pem) {
  detail::StorePtr store(X509_STORE_new());
  if (!store) return "X509_STORE_new: " + detail::take_openssl_errors();
  if (trusted_ca_pem.empty()) {
    if (X509_STORE_set_default_paths(store.get()) != 1) {
      return "the system's certificate store does not load: " + detail::take_openssl_errors();
    }
  } else {
    auto anchors = detail::read_certificates(trusted_ca_pem, "trusted CA");
    if (!anchors) return anchors.message();
    if (sk_X509_num(anchors->get()) < 1) return "no trusted CA certificate given";
    for (int i = 0; i < sk_X509_num(anchors->get()); ++i) {
      if (X509_STORE_add_cert(store.get(), sk_X509_value(anchors->get(), i)) != 1) {
        return "X509_STORE_add_cert: " + detail::take_openssl_errors();
      }
    }
    // Every given certificate is an anchor, root or not, as verify_detached has it.
    if (X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN) != 1) {
      return "X509_STORE_set_flags: " + detail::take_openssl_errors();
    }
  }
  detail::X509StackPtr intermediates(CMS_get1_certs(cms));
  detail::StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), signer, intermediates.get()) != 1) {
    return "X509_STORE_CTX_init: " + detail::take_openssl_errors();
  }
  const int verified = X509_verify_cert(ctx.get());
  if (verified == 1) return std::nullopt;
  if (verified < 0) return "chain not checked: " + detail::take_openssl_errors();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  ERR_clear_error();
  std::string reason = "signer not trusted: ";
  reason += X509_verify_cert_error_string(error);
  if (depth > 0) reason += " (chain depth " + std::to_string(depth) + ")";
  return reason;
}

}  // namespace

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

Result<SignedProfile> verify_signed_profile(std::string_view der, const std::string& trusted_ca_pem) {
  if (der.size() > kMaxProfileBytes) {
    return base::fail("verify_signed_profile: " + std::to_string(der.size()) + " bytes, limit " +
                      std::to_string(kMaxProfileBytes));
  }
  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  const auto* end = cursor + der.size();
  detail::CmsPtr cms(der.empty() ? nullptr : d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
  if (!cms) return detail::fail_openssl("verify_signed_profile: not CMS");
  ERR_clear_error();
  const int type = OBJ_obj2nid(CMS_get0_type(cms.get()));
  if (type != NID_pkcs7_signed) {
    return detail::fail("verify_signed_profile: CMS " + std::string(OBJ_nid2sn(type)) + ", not SignedData");
  }
  ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
  if (content == nullptr || *content == nullptr) {
    return detail::fail("verify_signed_profile: CMS SignedData without content (detached signature)");
  }
  SignedProfile out;
  out.content.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(*content)),
                     static_cast<std::size_t>(ASN1_STRING_length(*content)));
  if (cursor != end) {
    out.detail = std::to_string(end - cursor) + " bytes after the SignedData";
    return out;
  }
  // The signature (over the signed attributes, which carry the content's digest, or over the
  // content itself) and the content's digest; binary, as signed. The chain is checked below,
  // for any purpose, not CMS_verify's S/MIME signing. With the content attached, CMS_verify
  // makes its own content BIO (none of the caller's to leak, see signature.cpp).
  if (CMS_verify(cms.get(), nullptr, nullptr, nullptr, nullptr, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
    out.detail = "signature does not hold: " + detail::take_openssl_errors();
    return out;
  }
  // CMS_get0_signers' stack refers to certificates the SignedData owns: only the stack is freed.
  std::unique_ptr<STACK_OF(X509), detail::Deleter<free_stack_only>> signers(CMS_get0_signers(cms.get()));
  X509* signer = signers && sk_X509_num(signers.get()) > 0 ? sk_X509_value(signers.get(), 0) : nullptr;
  if (signer == nullptr) {
    out.detail = "signature does not hold: no signer certificate";
    ERR_clear_error();
    return out;
  }
  if (auto subject = detail::subject_line(signer)) out.signer_subject = *std::move(subject);
  if (auto problem = chain_problem(signer, cms.get(), trusted_ca_pem)) {
    out.status = ProfileSignatureStatus::untrusted;
    out.detail = *std::move(problem);
    return out;
  }
  ERR_clear_error();
  out.status = ProfileSignatureStatus::verified;
  return out;
}

}  // namespace mdmc::pki
