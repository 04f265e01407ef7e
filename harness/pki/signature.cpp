// Apple's Mdm-Signature header: made for the emulated devices, checked by the reference server.
//
// Apple: "Mdm-Signature: a base64-encoded CMS Signature of the HTTP body", sent when the
// enrollment profile sets SignMessage. The signature is detached (the body travels as the HTTP
// body) and covers the exact bytes sent, so it is made in binary mode: in text mode OpenSSL would
// rewrite LF as CRLF before hashing and no server would ever see the bytes that were signed.
#include <openssl/err.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>

#include "harness/pki/detail/openssl.hpp"
#include "harness/pki/pki.hpp"

namespace mdmc::pki {
namespace {

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

base::Error rejected(std::string reason) {
  ERR_clear_error();
  return base::fail(std::move(reason));
}

// What a signature check found wrong, in words and as a SignatureError.
struct Rejection {
  SignatureError kind;
  std::string reason;
};

// Compares the signed messageDigest attribute with the body's digest, so that a changed body is
// reported as such rather than as OpenSSL's generic "verification failure". Nothing when they
// match or there are no signed attributes (then the signature covers the body directly).
std::optional<Rejection> digest_problem(CMS_SignerInfo* signer_info, X509_ALGOR* digest_algorithm,
                                        std::string_view body) {
  if (CMS_signed_get_attr_count(signer_info) <= 0) return std::nullopt;
  const ASN1_OBJECT* digest_oid = nullptr;
  X509_ALGOR_get0(&digest_oid, nullptr, nullptr, digest_algorithm);
  const EVP_MD* md = EVP_get_digestbyobj(digest_oid);
  if (md == nullptr) {
    char name[80];
    OBJ_obj2txt(name, sizeof name, digest_oid, 0);
    return Rejection{SignatureError::bad_signature, "unsupported digest algorithm " + std::string(name)};
  }
  // -3: the attribute must occur exactly once.
  const auto* expected = static_cast<const ASN1_OCTET_STRING*>(
      CMS_signed_get0_data_by_OBJ(signer_info, OBJ_nid2obj(NID_pkcs9_messageDigest), -3, V_ASN1_OCTET_STRING));
  if (expected == nullptr) {
    return Rejection{SignatureError::bad_signature, "bad signed attributes: no single messageDigest"};
  }
  unsigned char actual[EVP_MAX_MD_SIZE];
  unsigned int actual_size = 0;
  if (EVP_Digest(body.data(), body.size(), actual, &actual_size, md, nullptr) != 1) {
    return Rejection{SignatureError::bad_signature, "cannot digest the body: " + detail::take_openssl_errors()};
  }
  if (static_cast<int>(actual_size) != ASN1_STRING_length(expected) ||
      std::memcmp(actual, ASN1_STRING_get0_data(expected), actual_size) != 0) {
    return Rejection{SignatureError::content_changed, "digest mismatch (body tampered)"};
  }
  return std::nullopt;
}

// The signature itself: over the signed attributes (which carry the body's digest), or over
// the body when there are none; and the body against the digests the SignedData announces.
//
// What CMS_verify(CMS_NO_SIGNER_CERT_VERIFY) does, step by step, for two reasons: CMS_verify
// would check the chain for S/MIME signing (the chain is checked below, for a TLS client, with
// the caller's anchors), and OpenSSL 3.0's CMS_verify leaks the copy of a memory BIO it makes
// when CMS_dataInit fails (an unknown algorithm in the SignedData's digestAlgorithms, which any
// peer can send). Here the content BIO is ours until CMS_dataInit takes it into its chain.
std::optional<std::string> signature_problem(CMS_ContentInfo* cms, CMS_SignerInfo* signer_info, std::string_view body) {
  if (CMS_signed_get_attr_count(signer_info) >= 0 && CMS_SignerInfo_verify(signer_info) != 1) {
    return "bad signature: " + detail::take_openssl_errors();
  }
  auto content = detail::memory_source(body);
  if (!content) return "body: " + content.message();
  detail::BioPtr digests(CMS_dataInit(cms, content->get()));
  if (!digests) return "bad signature: cannot digest the body: " + detail::take_openssl_errors();
  (void)content.value().release();  // the end of the digests chain now; freed with it
  char buffer[4096];
  while (BIO_read(digests.get(), buffer, sizeof buffer) > 0) {}
  if (CMS_SignerInfo_verify_content(signer_info, digests.get()) != 1) {
    return "bad signature: " + detail::take_openssl_errors();
  }
  return std::nullopt;
}

// Whether every certificate of `chain` is within its validity now, as X509_verify_cert checks
// each one (notBefore strictly before now, notAfter strictly after).
bool valid_now(const STACK_OF(X509) * chain) {
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* cert = sk_X509_value(chain, i);
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) return false;
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) return false;
  }
  return true;
}

// Checks that held, each kept with the chain it held with (signer first) and, for a signature,
// its signer's certificate (DER); at most `bound` of them. What such a check depends on besides
// its key's bytes and the anchors is the time, for each certificate of the chain must be valid
// now: a kept check is given again only while its whole chain is, and is otherwise forgotten,
// so that the check is made in full and says why it fails.
class KeptChecks {
 public:
  explicit KeptChecks(std::size_t bound) : bound_(bound) {}

  // The kept check's chain (a copy) and signer, or nothing.
  std::optional<std::pair<detail::X509StackPtr, std::string>> find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = kept_.find(key);
    if (it == kept_.end()) return std::nullopt;
    if (!valid_now(it->second.chain.get())) {
      kept_.erase(it);
      return std::nullopt;
    }
    return std::pair{detail::X509StackPtr(X509_chain_up_ref(it->second.chain.get())), it->second.signer_der};
  }
  void keep(std::string key, const STACK_OF(X509) * chain, std::string signer_der = {}) const {
    detail::X509StackPtr copy(X509_chain_up_ref(const_cast<STACK_OF(X509)*>(chain)));
    if (!copy) return;
    std::lock_guard lock(mutex_);
    // A bound, not a policy: a miss only costs time. Any entry goes (clearing them all would
    // have every device's next message checked in full).
    if (kept_.size() >= bound_ && !kept_.contains(key)) kept_.erase(kept_.begin());
    kept_.insert_or_assign(std::move(key), Kept{std::move(copy), std::move(signer_der)});
  }

 private:
  struct Kept {
    detail::X509StackPtr chain;
    std::string signer_der;
  };
  const std::size_t bound_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, Kept, std::less<>> kept_;
};

// Trust anchors read from one PEM text, in a store that takes each of them as an anchor, and
// the checks that held against them.
//
// Checking a good Mdm-Signature (its CMS parsed, two signatures verified, a chain built) was a
// third of the handler fuzzer's CPU, and a server hears the same signed bytes again when a
// device resends a message: a good signature's signer is kept, keyed by the exact header text
// and the body's SHA-256 (kKeptSignatures, headers of at most kMaxKeptHeaderBytes). A device's
// every message is signed by the same certificate, and building its chain (a signature by the
// CA verified) was a twentieth: a chain that held is kept too, keyed by the purpose and the
// exact certificates it was built from (kKeptChains). About 10 MB at worst.
class Anchors {
 public:
  detail::StorePtr store;
  static constexpr std::size_t kKeptSignatures = 1024;
  static constexpr std::size_t kMaxKeptHeaderBytes = 8 * 1024;
  static constexpr std::size_t kKeptChains = 256;
  KeptChecks signatures{kKeptSignatures};
  KeptChecks chains{kKeptChains};
};

// The key of a kept signer: the body's SHA-256, then the header text. Empty when the body
// cannot be digested (then nothing is kept).
std::string signature_key(std::string_view header_text, std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(body.data(), body.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    ERR_clear_error();
    return {};
  }
  std::string key(reinterpret_cast<const char*>(digest), size);
  key += header_text;
  return key;
}

// Reading the anchors' PEM was a fifth of the handler fuzzer's CPU (OpenSSL 3 decodes each
// certificate's public key through its decoder framework): the reference server checks every
// request against the same CA text. A process trusts few such texts, so each is read once and
// its store kept, up to kKeptAnchors, and shared: an X509_STORE set up once may verify from
// several threads at once. The key is the exact text, so a kept store is the one it would read.
class KeptAnchors {
 public:
  std::shared_ptr<const Anchors> find(const std::string& pem) {
    std::lock_guard lock(mutex_);
    auto it = anchors_.find(pem);
    return it == anchors_.end() ? nullptr : it->second;
  }
  void keep(const std::string& pem, std::shared_ptr<const Anchors> anchors) {
    std::lock_guard lock(mutex_);
    if (anchors_.size() >= kKeptAnchors) anchors_.clear();  // a bound, not a policy: misses only cost time
    anchors_.emplace(pem, std::move(anchors));
  }

 private:
  static constexpr std::size_t kKeptAnchors = 16;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Anchors>, std::less<>> anchors_;
};

// The anchors in a PEM text, or why they cannot be used ("signer not trusted: ...").
using AnchorsOrWhy = std::variant<std::shared_ptr<const Anchors>, std::string>;
AnchorsOrWhy anchors_for(const std::string& trusted_ca_pem) {
  static KeptAnchors kept;
  if (auto found = kept.find(trusted_ca_pem)) return found;
  auto certs = detail::read_certificates(trusted_ca_pem, "trusted CA");
  if (!certs) return "signer not trusted: " + certs.message();
  if (sk_X509_num(certs->get()) < 1) return "signer not trusted: no trusted CA certificate given";
  auto anchors = std::make_shared<Anchors>();
  anchors->store.reset(X509_STORE_new());
  if (!anchors->store) return "X509_STORE_new: " + detail::take_openssl_errors();
  for (int i = 0; i < sk_X509_num(certs->get()); ++i) {
    if (X509_STORE_add_cert(anchors->store.get(), sk_X509_value(certs->get(), i)) != 1) {
      return "X509_STORE_add_cert: " + detail::take_openssl_errors();
    }
  }
  // Every given certificate is an anchor, root or not: "chains to one of these" is the promise.
  if (X509_STORE_set_flags(anchors->store.get(), X509_V_FLAG_PARTIAL_CHAIN) != 1) {
    return "X509_STORE_set_flags: " + detail::take_openssl_errors();
  }
  kept.keep(trusted_ca_pem, anchors);
  return anchors;
}

// The key of a kept chain: the purpose, then each certificate it may be built from (DER, with
// its length), the signer first. Empty when one cannot be encoded (then nothing is kept).
std::string chain_key(X509* signer, STACK_OF(X509) * untrusted, int purpose) {
  std::string key = std::to_string(purpose);
  const int count = untrusted == nullptr ? 0 : sk_X509_num(untrusted);
  for (int i = -1; i < count; ++i) {
    auto der = detail::certificate_der(i < 0 ? signer : sk_X509_value(untrusted, i));
    if (!der) return {};
    key += ' ' + std::to_string(der->size()) + ':' + *der;
  }
  return key;
}

// Why the signer does not chain to the anchors, or nothing when it does, and then the chain
// built in `chain` (when given). `purpose`: an X509_PURPOSE_* the signer must be fit for, or 0
// for any.
std::optional<std::string> trust_problem(X509* signer, STACK_OF(X509) * untrusted, const AnchorsOrWhy& anchors,
                                         int purpose, detail::X509StackPtr* chain = nullptr) {
  if (const auto* why = std::get_if<std::string>(&anchors)) return *why;
  const Anchors& kept = *std::get<std::shared_ptr<const Anchors>>(anchors);
  const std::string key = chain_key(signer, untrusted, purpose);
  if (!key.empty()) {
    if (auto found = kept.chains.find(key)) {
      if (chain != nullptr) *chain = std::move(found->first);
      return std::nullopt;
    }
  }
  X509_STORE* store = kept.store.get();
  detail::StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx) return "X509_STORE_CTX_new: " + detail::take_openssl_errors();
  if (X509_STORE_CTX_init(ctx.get(), store, signer, untrusted) != 1) {
    return "X509_STORE_CTX_init: " + detail::take_openssl_errors();
  }
  if (purpose != 0 && X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1) {
    return "X509_STORE_CTX_set_purpose: " + detail::take_openssl_errors();
  }
  const int verified = X509_verify_cert(ctx.get());
  if (verified == 1) {
    detail::X509StackPtr built(X509_STORE_CTX_get1_chain(ctx.get()));
    if (!key.empty() && built) kept.chains.keep(key, built.get());
    if (chain != nullptr) *chain = std::move(built);
    return std::nullopt;
  }
  if (verified < 0) return "signer not trusted: " + detail::take_openssl_errors();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  ERR_clear_error();
  if (depth == 0 && error == X509_V_ERR_CERT_HAS_EXPIRED) return "signer certificate expired";
  if (depth == 0 && error == X509_V_ERR_CERT_NOT_YET_VALID) return "signer certificate not yet valid";
  std::string reason = "signer not trusted: ";
  reason += X509_verify_cert_error_string(error);
  if (depth > 0) reason += " (chain depth " + std::to_string(depth) + ")";
  return reason;
}

// A signature that holds: its signer's certificate and the chain it was checked with.
struct Checked {
  detail::X509Ptr signer;
  detail::X509StackPtr chain;
};

// A detached signature (DER) over `body`: parsed, its digest, its signature and its signer's
// chain checked, in that order.
std::variant<Checked, Rejection> check_detached(std::string_view der, std::string_view body,
                                                const AnchorsOrWhy& anchors, int purpose) {
  auto reject = [](SignatureError kind, std::string reason) -> std::variant<Checked, Rejection> {
    ERR_clear_error();
    return Rejection{kind, std::move(reason)};
  };
  if (der.empty()) return reject(SignatureError::malformed, "not CMS: no bytes");
  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  const auto* end = cursor + der.size();
  detail::CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
  if (!cms) return reject(SignatureError::malformed, "not CMS: " + detail::take_openssl_errors());
  if (cursor != end) {
    return reject(SignatureError::malformed,
                  "not CMS: " + std::to_string(end - cursor) + " bytes after the DER structure");
  }
  if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
    return reject(SignatureError::malformed, "not CMS SignedData");
  }
  if (CMS_is_detached(cms.get()) != 1) {
    return reject(SignatureError::malformed, "not detached (the signature carries its own content)");
  }
  STACK_OF(CMS_SignerInfo)* signer_infos = CMS_get0_SignerInfos(cms.get());
  const int signer_count = sk_CMS_SignerInfo_num(signer_infos);
  if (signer_count != 1) {
    return reject(SignatureError::malformed, "expected one signer, found " + std::to_string(std::max(signer_count, 0)));
  }
  CMS_SignerInfo* signer_info = sk_CMS_SignerInfo_value(signer_infos, 0);
  // Finds the signer's certificate among those the signature carries.
  if (CMS_set1_signers_certs(cms.get(), nullptr, 0) < 0) {
    return reject(SignatureError::malformed, "not CMS: " + detail::take_openssl_errors());
  }
  X509* signer = nullptr;
  X509_ALGOR* digest_algorithm = nullptr;
  CMS_SignerInfo_get0_algs(signer_info, nullptr, &signer, &digest_algorithm, nullptr);
  if (signer == nullptr) return reject(SignatureError::malformed, "signer certificate not included");
  ERR_clear_error();

  if (auto problem = digest_problem(signer_info, digest_algorithm, body)) {
    return reject(problem->kind, std::move(problem->reason));
  }
  if (auto problem = signature_problem(cms.get(), signer_info, body)) {
    return reject(SignatureError::bad_signature, *std::move(problem));
  }
  // Intermediates may come only from the signature itself; they are never anchors.
  detail::X509StackPtr untrusted(CMS_get1_certs(cms.get()));
  detail::X509StackPtr chain;
  if (auto problem = trust_problem(signer, untrusted.get(), anchors, purpose, &chain)) {
    return reject(SignatureError::untrusted, *std::move(problem));
  }
  ERR_clear_error();
  X509_up_ref(signer);
  return Checked{detail::X509Ptr(signer), std::move(chain)};
}

class SignatureCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pki.signature"; }
  std::string message(int ev) const override {
    switch (static_cast<SignatureError>(ev)) {
      case SignatureError::malformed: return "malformed signature";
      case SignatureError::content_changed: return "content changed";
      case SignatureError::bad_signature: return "bad signature";
      case SignatureError::untrusted: return "signer not trusted";
    }
    return "signature error";
  }
};

}  // namespace

std::error_code make_error_code(SignatureError e) {
  static const SignatureCategory category;
  return {static_cast<int>(e), category};
}

Result<std::string> mdm_signature(const Identity& identity, std::string_view body) {
  auto der = detail::signed_data_der(identity, body, /*detached=*/true, "mdm_signature");
  if (!der) return der.error();
  return base::base64_encode(*der);
}

Result<std::string> sign_detached(const Identity& signer, std::string_view content) {
  return detail::signed_data_der(signer, content, /*detached=*/true, "sign_detached");
}

Result<std::string> verify_mdm_signature(std::string_view header_value, std::string_view body,
                                         const std::string& trusted_ca_pem) {
  // The cap comes before any decoding: the header is the peer's to make as large as it likes.
  if (header_value.size() > kMaxSignatureHeaderBytes) {
    return rejected("header too large (" + std::to_string(header_value.size()) + " bytes, limit " +
                    std::to_string(kMaxSignatureHeaderBytes) + ")");
  }
  const std::string_view text = trim_blanks(header_value);
  if (text.empty()) return rejected("empty header");
  const auto anchors = anchors_for(trusted_ca_pem);
  const auto* kept_by = std::get_if<std::shared_ptr<const Anchors>>(&anchors);
  std::string key;
  if (kept_by != nullptr && text.size() <= Anchors::kMaxKeptHeaderBytes) key = signature_key(text, body);
  if (!key.empty()) {
    if (auto found = (*kept_by)->signatures.find(key)) return std::move(found->second);
  }
  auto der = base::base64_decode(text);
  if (!der) return rejected("not base64: " + der.message());
  // A device identity is a TLS client identity; one without extendedKeyUsage also qualifies.
  auto checked = check_detached(*der, body, anchors, X509_PURPOSE_SSL_CLIENT);
  if (auto* rejection = std::get_if<Rejection>(&checked)) return rejected(std::move(rejection->reason));
  auto& good = std::get<Checked>(checked);
  auto signer_der = detail::certificate_der(good.signer.get());
  if (!signer_der) return rejected("signer certificate unreadable: " + signer_der.message());
  if (!key.empty() && good.chain) (*kept_by)->signatures.keep(std::move(key), good.chain.get(), *signer_der);
  return signer_der;
}

Result<Signer> verify_detached(std::string_view signature_der, std::string_view content,
                               const std::string& trusted_ca_pem) {
  if (signature_der.size() > kMaxSignatureBytes) {
    return Result<Signer>(SignatureError::malformed,
                          std::to_string(signature_der.size()) + " bytes, limit " + std::to_string(kMaxSignatureBytes));
  }
  auto checked = check_detached(signature_der, content, anchors_for(trusted_ca_pem), /*purpose=*/0);
  if (auto* rejection = std::get_if<Rejection>(&checked)) {
    return Result<Signer>(rejection->kind, std::move(rejection->reason));
  }
  X509* signer = std::get<Checked>(checked).signer.get();
  auto der = detail::certificate_der(signer);
  if (!der) return Result<Signer>(SignatureError::malformed, "signer certificate unreadable: " + der.message());
  auto subject = detail::subject_line(signer);
  if (!subject) return Result<Signer>(SignatureError::malformed, "signer subject unreadable: " + subject.message());
  return Signer{*std::move(der), *std::move(subject)};
}

Result<void> verify_client_certificate(std::string_view cert_der, const std::string& trusted_ca_pem) {
  const auto* cursor = reinterpret_cast<const unsigned char*>(cert_der.data());
  detail::X509Ptr cert(d2i_X509(nullptr, &cursor, static_cast<long>(cert_der.size())));
  if (!cert || cursor != reinterpret_cast<const unsigned char*>(cert_der.data()) + cert_der.size()) {
    return rejected("not a DER certificate");
  }
  if (auto problem = trust_problem(cert.get(), nullptr, anchors_for(trusted_ca_pem), X509_PURPOSE_SSL_CLIENT)) {
    return rejected(*std::move(problem));
  }
  ERR_clear_error();
  return {};
}

Result<std::string> subject_name(const std::string& cert_pem) {
  auto cert = detail::read_certificate(cert_pem, "subject_name");
  if (!cert) return base::fail(cert.message());
  auto subject = detail::subject_line(cert->get());
  if (!subject) return base::fail("subject_name: " + subject.message());
  return subject;
}

}  // namespace mdmc::pki
