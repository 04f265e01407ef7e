// SCEP messages on OpenSSL 3's CMS API. A pkiMessage is a CMS SignedData whose signed attributes
// carry SCEP's fields (RFC 8894 3.2.1) and whose content is a CMS EnvelopedData (the
// pkcsPKIEnvelope); CMS and PKCS#7 share the wire format for both, and CMS also decrypts key
// agreement, which an EC requester needs (docs/scep.md).
#include "harness/pki/scep.hpp"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <mutex>

#include "harness/base/bytes.hpp"
#include "harness/base/utf8.hpp"
#include "harness/pki/detail/openssl.hpp"

namespace mdmc::pki::scep {
namespace {

using detail::BioPtr;
using detail::CmsPtr;
using detail::fail;
using detail::fail_openssl;
using detail::NamePtr;
using detail::PkeyPtr;
using detail::X509Ptr;
using detail::X509StackPtr;
using ObjectPtr = std::unique_ptr<ASN1_OBJECT, detail::Deleter<ASN1_OBJECT_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, detail::Deleter<X509_REQ_free>>;
using Pkcs7Ptr = std::unique_ptr<PKCS7, detail::Deleter<PKCS7_free>>;
using StringPtr = std::unique_ptr<ASN1_STRING, detail::Deleter<ASN1_STRING_free>>;
using ExtensionsPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), detail::Deleter<+[](STACK_OF(X509_EXTENSION) * s) {
                                        sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
                                      }>>;

// RFC 8894 3.2.1's signed attributes, under id-VeriSign pki attributes, and RFC 8894's
// failInfoText under id-pkix-attr.
constexpr const char* kMessageType = "2.16.840.1.113733.1.9.2";
constexpr const char* kPkiStatus = "2.16.840.1.113733.1.9.3";
constexpr const char* kFailInfo = "2.16.840.1.113733.1.9.4";
constexpr const char* kSenderNonce = "2.16.840.1.113733.1.9.5";
constexpr const char* kRecipientNonce = "2.16.840.1.113733.1.9.6";
constexpr const char* kTransactionId = "2.16.840.1.113733.1.9.7";
constexpr const char* kFailInfoText = "1.3.6.1.5.5.7.24.1";
constexpr const char* kNtPrincipalName = "1.3.6.1.4.1.311.20.2.3";

ObjectPtr object(const char* dotted) { return ObjectPtr(OBJ_txt2obj(dotted, 1)); }

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string as_string(const ASN1_STRING* s) {
  if (s == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

Result<int> checked_length(std::string_view bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return fail("input over 2 GiB");
  return static_cast<int>(bytes.size());
}

const unsigned char* data_of(std::string_view bytes) { return reinterpret_cast<const unsigned char*>(bytes.data()); }

Result<X509Ptr> certificate_from_der(std::string_view der, std::string_view what) {
  auto length = checked_length(der);
  if (!length) return length.error();
  const unsigned char* p = data_of(der);
  X509Ptr cert(d2i_X509(nullptr, &p, *length));
  if (!cert) return fail_openssl(std::string(what) + " is not a DER certificate");
  if (p != data_of(der) + der.size()) return fail(std::string(what) + ": bytes after the certificate");
  return cert;
}

std::string name_line(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    ERR_clear_error();
    return "(unprintable name)";
  }
  return detail::memory_contents(bio.get());
}

std::string time_line(const ASN1_TIME* time) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), time) != 1) {
    ERR_clear_error();
    return "(unprintable time)";
  }
  return detail::memory_contents(bio.get());
}

Result<std::string> to_der(CMS_ContentInfo* cms, std::string_view what) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || i2d_CMS_bio(out.get(), cms) != 1) return fail_openssl(what);
  return detail::memory_contents(out.get());
}

Result<CmsPtr> cms_from_der(std::string_view der, std::string_view what) {
  if (der.size() > kMaxMessageBytes)
    return fail(std::string(what) + ": over " + std::to_string(kMaxMessageBytes) + " bytes");
  if (der.empty()) return fail(std::string(what) + ": empty");
  auto length = checked_length(der);
  if (!length) return length.error();
  const unsigned char* p = data_of(der);
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, *length));
  if (!cms) return fail_openssl(std::string(what) + ": not DER CMS");
  return cms;
}

const EVP_CIPHER* evp_cipher(Cipher cipher) {
  switch (cipher) {
    case Cipher::aes_128_cbc: return EVP_aes_128_cbc();
    case Cipher::des_ede3_cbc: return EVP_des_ede3_cbc();
    case Cipher::des_cbc: return EVP_des_cbc();
  }
  return EVP_aes_128_cbc();
}

const EVP_MD* evp_digest(Digest digest) { return digest == Digest::sha1 ? EVP_sha1() : EVP_sha256(); }

// The envelope: `content` encrypted to `recipient` (key transport to RSA, key agreement to EC).
Result<std::string> envelope(std::string_view content, X509* recipient, Cipher cipher) {
  X509StackPtr recipients(sk_X509_new_null());
  if (!recipients || X509_up_ref(recipient) != 1) return fail_openssl("recipient list");
  if (sk_X509_push(recipients.get(), recipient) <= 0) {
    X509_free(recipient);
    return fail_openssl("recipient list");
  }
  auto source = detail::memory_source(content);
  if (!source) return source.error();
  if (cipher == Cipher::des_cbc) load_legacy_provider();
  CmsPtr cms(CMS_encrypt(recipients.get(), source->get(), evp_cipher(cipher), CMS_BINARY));
  if (!cms) return fail_openssl(std::string("encrypting to the recipient with ") + std::string(cipher_name(cipher)));
  return to_der(cms.get(), "writing the envelope");
}

struct Attribute {
  const char* oid;
  int type;  // V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING or V_ASN1_UTF8STRING
  std::string value;
};

// A SignedData over `content` (left out when detached: a CertRep without content) signed by
// `signer` with SCEP's attributes (contentType, messageDigest and signingTime come from CMS).
Result<std::string> signed_message(std::string_view content, bool detached, const Identity& signer, Digest digest,
                                   const std::vector<Attribute>& attributes) {
  auto parsed = detail::parse_identity(signer, "SCEP signer");
  if (!parsed) return parsed.error();
  unsigned flags = CMS_PARTIAL | CMS_BINARY | (detached ? CMS_DETACHED : 0u);
  CmsPtr cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
  if (!cms) return fail_openssl("CMS_sign");
  CMS_SignerInfo* si = CMS_add1_signer(cms.get(), parsed->cert.get(), parsed->key.get(), evp_digest(digest),
                                       CMS_BINARY | CMS_NOSMIMECAP);
  if (si == nullptr) return fail_openssl("adding the signer");
  for (const auto& a : attributes) {
    auto oid = object(a.oid);
    auto length = checked_length(a.value);
    if (!oid || !length) return fail_openssl(a.oid);
    if (CMS_signed_add1_attr_by_OBJ(si, oid.get(), a.type, a.value.data(), *length) != 1)
      return fail_openssl(std::string("adding attribute ") + a.oid);
  }
  auto source = detail::memory_source(content);
  if (!source) return source.error();
  if (CMS_final(cms.get(), source->get(), nullptr, flags) != 1) return fail_openssl("signing the message");
  return to_der(cms.get(), "writing the message");
}

std::string printable(int number) { return std::to_string(number); }

// A signed attribute's single value, or nothing when absent; an error when it has the wrong type.
Result<std::optional<std::string>> signed_attribute(CMS_SignerInfo* si, const char* oid, int type, const char* name) {
  auto obj = object(oid);
  if (!obj) return fail_openssl(oid);
  int index = CMS_signed_get_attr_by_OBJ(si, obj.get(), -1);
  if (index < 0) return std::optional<std::string>();
  X509_ATTRIBUTE* attribute = CMS_signed_get_attr(si, index);
  if (attribute == nullptr || X509_ATTRIBUTE_count(attribute) != 1)
    return fail(std::string(name) + ": not exactly one value");
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attribute, 0);
  if (value == nullptr || ASN1_TYPE_get(value) != type) return fail(std::string(name) + ": wrong ASN.1 type");
  return std::optional<std::string>(as_string(value->value.asn1_string));
}

Result<std::string> required_attribute(CMS_SignerInfo* si, const char* oid, int type, const char* name) {
  auto value = signed_attribute(si, oid, type, name);
  if (!value) return value.error();
  if (!value->has_value()) return fail(std::string("no ") + name + " attribute");
  return **value;
}

Result<int> small_number(std::string_view text, const char* name) {
  if (text.empty() || text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail(std::string(name) + " is not a number: \"" + std::string(text.substr(0, 32)) + "\"");
  return std::stoi(std::string(text));
}

// The one signer of a SignedData; SCEP messages have exactly one.
Result<CMS_SignerInfo*> only_signer(CMS_ContentInfo* cms, std::string_view what) {
  if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) return fail(std::string(what) + ": not a SignedData");
  STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(cms);
  if (signers == nullptr || sk_CMS_SignerInfo_num(signers) != 1)
    return fail(std::string(what) + ": not exactly one signer");
  return sk_CMS_SignerInfo_value(signers, 0);
}

std::string digest_of(CMS_SignerInfo* si) {
  X509_ALGOR* digest = nullptr;
  CMS_SignerInfo_get0_algs(si, nullptr, nullptr, &digest, nullptr);
  if (digest == nullptr) return "unknown";
  const ASN1_OBJECT* obj = nullptr;
  X509_ALGOR_get0(&obj, nullptr, nullptr, digest);
  const char* name = OBJ_nid2sn(OBJ_obj2nid(obj));
  return name == nullptr ? "unknown" : lower(name);
}

// The content cipher of an EnvelopedData (PKCS#7's structures say it; CMS has no getter).
std::string envelope_cipher(std::string_view der) {
  auto length = checked_length(der);
  if (!length) return "unknown";
  const unsigned char* p = data_of(der);
  Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, *length));
  if (!p7 || !PKCS7_type_is_enveloped(p7.get()) || p7->d.enveloped == nullptr || p7->d.enveloped->enc_data == nullptr ||
      p7->d.enveloped->enc_data->algorithm == nullptr) {
    ERR_clear_error();
    return "unknown";
  }
  const char* name = OBJ_nid2sn(OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm));
  return name == nullptr ? "unknown" : lower(name);
}

Result<std::string> decrypt(std::string_view envelope_der, X509* cert, EVP_PKEY* key, std::string* cipher) {
  load_legacy_provider();
  auto cms = cms_from_der(envelope_der, "pkcsPKIEnvelope");
  if (!cms) return cms.error();
  if (OBJ_obj2nid(CMS_get0_type(cms->get())) != NID_pkcs7_enveloped)
    return fail("pkcsPKIEnvelope: not an EnvelopedData");
  if (cipher != nullptr) *cipher = envelope_cipher(envelope_der);
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out) return fail_openssl("BIO_new");
  if (CMS_decrypt(cms->get(), key, cert, nullptr, out.get(), CMS_BINARY) != 1)
    return fail_openssl("decrypting the pkcsPKIEnvelope");
  return detail::memory_contents(out.get());
}

Result<std::vector<std::string>> certificates_of_pkcs7(std::string_view der) {
  auto length = checked_length(der);
  if (!length) return length.error();
  const unsigned char* p = data_of(der);
  Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, *length));
  if (!p7) return fail_openssl("not a DER PKCS#7");
  if (!PKCS7_type_is_signed(p7.get()) || p7->d.sign == nullptr) return fail("PKCS#7 is not a SignedData");
  STACK_OF(X509)* certs = p7->d.sign->cert;
  std::vector<std::string> out;
  for (int i = 0; certs != nullptr && i < sk_X509_num(certs); ++i) {
    if (out.size() >= kMaxCaCertificates)
      return fail("PKCS#7 with over " + std::to_string(kMaxCaCertificates) + " certificates");
    auto der_cert = detail::certificate_der(sk_X509_value(certs, i));
    if (!der_cert) return der_cert.error();
    out.push_back(std::move(*der_cert));
  }
  return out;
}

Result<NamePtr> build_name(const Name& subject) {
  NamePtr name(X509_NAME_new());
  if (!name) return fail_openssl("X509_NAME_new");
  for (const auto& rdn : subject) {
    bool first = true;
    for (const auto& [type, value] : rdn) {
      ObjectPtr obj(OBJ_txt2obj(type.c_str(), 0));
      if (!obj) return fail("subject attribute \"" + type + "\" is neither a known name nor a dotted OID");
      auto length = checked_length(value);
      if (!length) return length.error();
      // A new RDN for the first attribute, the previous one (a multi-valued RDN) for the rest.
      if (X509_NAME_add_entry_by_OBJ(name.get(), obj.get(), MBSTRING_UTF8, data_of(value), *length, -1,
                                     first ? 0 : -1) != 1)
        return fail_openssl("subject " + type + "=" + value);
      first = false;
    }
  }
  return name;
}

Result<ReqPtr> csr_from_der(std::string_view der) {
  auto length = checked_length(der);
  if (!length) return length.error();
  const unsigned char* p = data_of(der);
  ReqPtr req(d2i_X509_REQ(nullptr, &p, *length));
  if (!req) return fail_openssl("not a DER PKCS#10 request");
  return req;
}

Result<void> add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  detail::ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return fail_openssl(std::string("extension ") + value);
  return {};
}

Result<std::string> der_sequence(std::string_view content) {
  std::string out(1, '\x30');
  std::size_t n = content.size();
  if (n < 0x80) {
    out += static_cast<char>(n);
  } else {
    std::string length;
    for (; n > 0; n >>= 8) length.insert(length.begin(), static_cast<char>(n & 0xff));
    out += static_cast<char>(0x80 | length.size());
    out += length;
  }
  out += content;
  return out;
}

Result<std::string> name_der(const X509_NAME* name) {
  unsigned char* out = nullptr;
  int length = i2d_X509_NAME(name, &out);
  if (length <= 0) return fail_openssl("i2d_X509_NAME");
  detail::OpensslBytesPtr owned(out);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length));
}

bool is_ca(X509* cert) { return X509_check_ca(cert) > 0; }

bool key_usage_allows(X509* cert, std::uint32_t bit) {
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return true;  // no keyUsage: any use
  return (X509_get_key_usage(cert) & bit) != 0;
}

}  // namespace

std::string_view fail_info_name(FailInfo info) {
  switch (info) {
    case FailInfo::bad_alg: return "badAlg";
    case FailInfo::bad_message_check: return "badMessageCheck";
    case FailInfo::bad_request: return "badRequest";
    case FailInfo::bad_time: return "badTime";
    case FailInfo::bad_cert_id: return "badCertId";
  }
  return "unknown";
}

std::string_view cipher_name(Cipher cipher) {
  switch (cipher) {
    case Cipher::aes_128_cbc: return "aes-128-cbc";
    case Cipher::des_ede3_cbc: return "des-ede3-cbc";
    case Cipher::des_cbc: return "des-cbc";
  }
  return "unknown";
}

std::string_view digest_name(Digest digest) { return digest == Digest::sha1 ? "sha1" : "sha256"; }

void load_legacy_provider() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Loading any provider explicitly turns the implicit default off, so both are loaded; a
    // system without the legacy module still reads AES and DES3 answers.
    // Kept for the life of the process (a leak checker sees them reachable).
    static OSSL_PROVIDER* default_provider = OSSL_PROVIDER_load(nullptr, "default");
    static OSSL_PROVIDER* legacy_provider = OSSL_PROVIDER_load(nullptr, "legacy");
    (void)default_provider;
    (void)legacy_provider;
    ERR_clear_error();
  });
}

Cipher Capabilities::cipher() const { return aes || scep_standard ? Cipher::aes_128_cbc : Cipher::des_ede3_cbc; }
Digest Capabilities::digest() const { return sha256 || scep_standard ? Digest::sha256 : Digest::sha1; }
bool Capabilities::use_post() const { return post || scep_standard; }

Result<Capabilities> parse_capabilities(std::string_view body) {
  if (body.size() > kMaxCapabilitiesBytes)
    return fail("GetCACaps answer over " + std::to_string(kMaxCapabilitiesBytes) + " bytes");
  Capabilities caps;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = body.find('\n', start);
    std::string_view line = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty()) {
      bool keyword = line.size() <= 64 && std::all_of(line.begin(), line.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
                     });
      if (!keyword) {
        std::string shown(line.substr(0, 40));
        for (char& c : shown)
          if (std::isprint(static_cast<unsigned char>(c)) == 0) c = '?';
        return fail("GetCACaps answer is not capability keywords: \"" + shown + "\"");
      }
      caps.keywords.emplace_back(line);
      std::string k = lower(line);
      if (k == "aes") caps.aes = true;
      if (k == "des3") caps.des3 = true;
      if (k == "sha-256") caps.sha256 = true;
      if (k == "sha-1") caps.sha1 = true;
      if (k == "postpkioperation") caps.post = true;
      if (k == "scepstandard") caps.scep_standard = true;
      if (k == "renewal") caps.renewal = true;
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return caps;
}

std::string CaCertificates::pem() const {
  std::string out;
  for (const auto& der : all_der) {
    auto cert = certificate_from_der(der, "CA certificate");
    if (!cert) continue;
    auto pem_text = detail::certificate_pem(cert->get());
    if (pem_text) out += *pem_text;
  }
  return out;
}

Result<CaCertificates> parse_ca_certificates(std::string_view body) {
  if (body.size() > kMaxMessageBytes) return fail("the answer is over " + std::to_string(kMaxMessageBytes) + " bytes");
  if (body.empty()) return fail("the answer is empty");
  std::vector<std::string> ders;
  if (body.substr(0, 64).find("-----BEGIN") != std::string_view::npos) {
    if (body.find("-----BEGIN PKCS7-----") != std::string_view::npos) {
      auto source = detail::memory_source(body);
      if (!source) return source.error();
      Pkcs7Ptr p7(PEM_read_bio_PKCS7(source->get(), nullptr, nullptr, nullptr));
      if (!p7) return fail_openssl("PEM PKCS7");
      unsigned char* out = nullptr;
      int length = i2d_PKCS7(p7.get(), &out);
      if (length <= 0) return fail_openssl("PEM PKCS7");
      detail::OpensslBytesPtr owned(out);
      auto certs =
          certificates_of_pkcs7(std::string_view(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length)));
      if (!certs) return fail("PEM PKCS7: " + certs.error().message);
      ders = std::move(*certs);
    } else {
      auto certs = detail::read_certificates(body, "PEM certificates");
      if (!certs) return certs.error();
      for (int i = 0; i < sk_X509_num(certs->get()) && ders.size() < kMaxCaCertificates; ++i) {
        auto der = detail::certificate_der(sk_X509_value(certs->get(), i));
        if (!der) return der.error();
        ders.push_back(std::move(*der));
      }
    }
  } else {
    auto single = certificate_from_der(body, "the answer");
    if (single) {
      ders.emplace_back(body);
    } else {
      ERR_clear_error();
      auto certs = certificates_of_pkcs7(body);
      if (!certs)
        return fail("the answer is neither a DER certificate nor a PKCS#7 of certificates (" + certs.error().message +
                    ")");
      ders = std::move(*certs);
    }
  }
  if (ders.empty()) return fail("the answer holds no certificate");

  std::vector<X509Ptr> certs;
  for (const auto& der : ders) {
    auto cert = certificate_from_der(der, "a certificate");
    if (!cert) return cert.error();
    certs.push_back(std::move(*cert));
  }
  CaCertificates out;
  out.all_der = ders;
  if (certs.size() == 1) {
    out.ca_der = ders[0];
    out.recipient_der = ders[0];
    out.verifier_ders = {ders[0]};
    return out;
  }
  // Several: the non-CA certificates are the RA's; the CA is the one that issued them (or,
  // without an RA, the CA that issued none of the others: the one closest to the requester).
  std::vector<std::size_t> ra;
  std::vector<std::size_t> cas;
  for (std::size_t i = 0; i < certs.size(); ++i) (is_ca(certs[i].get()) ? cas : ra).push_back(i);
  ERR_clear_error();
  if (cas.empty())
    return fail("the answer gave " + std::to_string(certs.size()) + " certificates and no CA among them");
  auto issued_by = [&](std::size_t issuer, std::size_t subject) {
    return issuer != subject && X509_check_issued(certs[issuer].get(), certs[subject].get()) == X509_V_OK;
  };
  std::size_t ca = cas.front();
  if (!ra.empty()) {
    for (std::size_t c : cas)
      if (issued_by(c, ra.front())) ca = c;
  } else {
    for (std::size_t c : cas) {
      bool issued_another = std::any_of(cas.begin(), cas.end(), [&](std::size_t other) { return issued_by(c, other); });
      if (!issued_another) ca = c;
    }
  }
  out.ca_der = ders[ca];
  out.ra = !ra.empty();
  if (ra.empty()) {
    out.recipient_der = ders[ca];
    out.verifier_ders = {ders[ca]};
    return out;
  }
  for (std::size_t r : ra) {
    bool rsa = EVP_PKEY_is_a(X509_get0_pubkey(certs[r].get()), "RSA") == 1;
    if (out.recipient_der.empty() && rsa && key_usage_allows(certs[r].get(), KU_KEY_ENCIPHERMENT))
      out.recipient_der = ders[r];
    if (key_usage_allows(certs[r].get(), KU_DIGITAL_SIGNATURE)) out.verifier_ders.push_back(ders[r]);
  }
  ERR_clear_error();
  if (out.recipient_der.empty()) return fail("no RA certificate with an RSA key for keyEncipherment");
  if (out.verifier_ders.empty()) return fail("no RA certificate for digitalSignature");
  return out;
}

Result<void> check_ca_fingerprint(const CaCertificates& ca, std::string_view fingerprint) {
  const EVP_MD* md = nullptr;
  switch (fingerprint.size()) {
    case 16: md = EVP_md5(); break;
    case 20: md = EVP_sha1(); break;
    case 32: md = EVP_sha256(); break;
    default:
      return fail("CAFingerprint of " + std::to_string(fingerprint.size()) + " bytes (16 MD5, 20 SHA-1 or 32 SHA-256)");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(ca.ca_der.data(), ca.ca_der.size(), digest, &length, md, nullptr) != 1)
    return fail_openssl("CAFingerprint digest");
  std::string actual(reinterpret_cast<const char*>(digest), length);
  if (actual != fingerprint)
    return fail(std::string("CAFingerprint ") + EVP_MD_get0_name(md) + " " + base::hex_encode(fingerprint) +
                " is not the CA's (" + base::hex_encode(actual) + ")");
  return {};
}

Result<std::string> generate_key(std::string_view key_type, int bits) {
  PkeyPtr key;
  if (key_type == "RSA") {
    if (bits < 512 || bits > 8192) return fail("RSA key size " + std::to_string(bits) + " out of range (512 to 8192)");
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)));
  } else if (key_type == "ECSECPrimeRandom") {
    const char* curve = bits == 0 || bits == 256 ? "P-256" : bits == 384 ? "P-384" : bits == 521 ? "P-521" : nullptr;
    if (curve == nullptr) return fail("EC key size " + std::to_string(bits) + " (256, 384 or 521)");
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  } else {
    return fail("Key Type \"" + std::string(key_type) + "\" (RSA, or ECSECPrimeRandom)");
  }
  if (!key) return fail_openssl("generating the key");
  return detail::private_key_pem(key.get());
}

Result<std::string> make_csr(const CsrSpec& spec, const std::string& key_pem) {
  auto key = detail::read_private_key(key_pem, "request key");
  if (!key) return key.error();
  auto name = build_name(spec.subject);
  if (!name) return name.error();
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name->get()) != 1 || X509_REQ_set_pubkey(req.get(), key->get()) != 1)
    return fail_openssl("building the request");
  if (!spec.challenge.empty() &&
      X509_REQ_add1_attr_by_NID(req.get(), NID_pkcs9_challengePassword, MBSTRING_UTF8, data_of(spec.challenge),
                                static_cast<int>(spec.challenge.size())) != 1)
    return fail_openssl("challengePassword");
  ExtensionsPtr extensions(sk_X509_EXTENSION_new_null());
  if (!extensions) return fail_openssl("extensions");
  if (spec.key_usage != 0) {
    bool ec = EVP_PKEY_is_a(key->get(), "EC") == 1;
    std::string usage = "critical";
    if (spec.key_usage & 1) usage += ",digitalSignature";
    if (spec.key_usage & 4) usage += ec ? ",keyAgreement" : ",keyEncipherment";
    if (usage == "critical") return fail("Key Usage " + std::to_string(spec.key_usage) + " (1 signing, 4 encryption)");
    detail::ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, nullptr, NID_key_usage, usage.c_str()));
    if (!ext || sk_X509_EXTENSION_push(extensions.get(), ext.get()) <= 0) return fail_openssl("keyUsage");
    (void)ext.release();
  }
  if (!spec.subject_alt_names.empty()) {
    detail::GeneralNamesPtr names(GENERAL_NAMES_new());
    if (!names) return fail_openssl("GENERAL_NAMES_new");
    for (const auto& [kind, values] : spec.subject_alt_names) {
      for (const auto& value : values) {
        detail::GeneralNamePtr general(GENERAL_NAME_new());
        if (!general) return fail_openssl("GENERAL_NAME_new");
        if (kind == "ntPrincipalName") {
          ObjectPtr oid = object(kNtPrincipalName);
          StringPtr utf8(ASN1_UTF8STRING_new());
          ASN1_TYPE* any = ASN1_TYPE_new();
          if (!oid || !utf8 || any == nullptr ||
              ASN1_STRING_set(utf8.get(), value.data(), static_cast<int>(value.size())) != 1) {
            ASN1_TYPE_free(any);
            return fail_openssl("ntPrincipalName");
          }
          ASN1_TYPE_set(any, V_ASN1_UTF8STRING, utf8.release());
          if (GENERAL_NAME_set0_othername(general.get(), oid.get(), any) != 1) {
            ASN1_TYPE_free(any);
            return fail_openssl("ntPrincipalName");
          }
          (void)oid.release();
        } else {
          int type = kind == "rfc822Name"                  ? GEN_EMAIL
                     : kind == "dNSName"                   ? GEN_DNS
                     : kind == "uniformResourceIdentifier" ? GEN_URI
                                                           : -1;
          if (type < 0)
            return fail("SubjectAltName key \"" + kind +
                        "\" (rfc822Name, dNSName, uniformResourceIdentifier or ntPrincipalName)");
          detail::Ia5StringPtr ia5(ASN1_IA5STRING_new());
          if (!ia5 || ASN1_STRING_set(ia5.get(), value.data(), static_cast<int>(value.size())) != 1)
            return fail_openssl(kind);
          GENERAL_NAME_set0_value(general.get(), type, ia5.release());
        }
        if (sk_GENERAL_NAME_push(names.get(), general.get()) <= 0) return fail_openssl("subjectAltName");
        (void)general.release();
      }
    }
    if (X509V3_add1_i2d(reinterpret_cast<STACK_OF(X509_EXTENSION)**>(&extensions), NID_subject_alt_name, names.get(), 0,
                        X509V3_ADD_APPEND) != 1)
      return fail_openssl("subjectAltName");
  }
  if (sk_X509_EXTENSION_num(extensions.get()) > 0 && X509_REQ_add_extensions(req.get(), extensions.get()) != 1)
    return fail_openssl("extensionRequest");
  if (X509_REQ_sign(req.get(), key->get(), EVP_sha256()) <= 0) return fail_openssl("signing the request");
  unsigned char* out = nullptr;
  int length = i2d_X509_REQ(req.get(), &out);
  if (length <= 0) return fail_openssl("i2d_X509_REQ");
  detail::OpensslBytesPtr owned(out);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length));
}

Result<std::string> csr_subject(std::string_view csr_der) {
  auto req = csr_from_der(csr_der);
  if (!req) return req.error();
  return name_line(X509_REQ_get_subject_name(req->get()));
}

Result<std::string> make_signer_certificate(std::string_view csr_der, const std::string& key_pem) {
  auto req = csr_from_der(csr_der);
  if (!req) return req.error();
  auto key = detail::read_private_key(key_pem, "signer key");
  if (!key) return key.error();
  X509Ptr cert(X509_new());
  NamePtr fallback;
  const X509_NAME* subject = X509_REQ_get_subject_name(req->get());
  if (X509_NAME_entry_count(subject) == 0) {
    auto name = build_name({{{"CN", "mdmconform SCEP client"}}});
    if (!name) return name.error();
    fallback = std::move(*name);
    subject = fallback.get();
  }
  unsigned char serial[8];
  if (!cert || RAND_bytes(serial, sizeof serial) != 1) return fail_openssl("signer certificate");
  serial[0] &= 0x7f;
  detail::BignumPtr bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_set_version(cert.get(), X509_VERSION_3) != 1 || X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), subject) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24L * 3600) == nullptr ||
      X509_set_pubkey(cert.get(), key->get()) != 1 || X509_sign(cert.get(), key->get(), EVP_sha256()) <= 0)
    return fail_openssl("signer certificate");
  return detail::certificate_pem(cert.get());
}

Result<std::string> transaction_id_for(const std::string& key_pem) {
  auto key = detail::read_private_key(key_pem, "request key");
  if (!key) return key.error();
  unsigned char* out = nullptr;
  int length = i2d_PUBKEY(key->get(), &out);
  if (length <= 0) return fail_openssl("i2d_PUBKEY");
  detail::OpensslBytesPtr owned(out);
  return base::sha256_hex(std::string_view(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length)));
}

std::string new_nonce() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    ERR_clear_error();
    std::memset(bytes, 0, sizeof bytes);
  }
  return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
}

namespace {

Result<std::string> request_message(MessageType type, std::string_view inner, const Identity& signer,
                                    std::string_view recipient_der, std::string_view transaction_id,
                                    std::string_view sender_nonce, Envelope options) {
  auto recipient = certificate_from_der(recipient_der, "recipient certificate");
  if (!recipient) return recipient.error();
  auto sealed = envelope(inner, recipient->get(), options.cipher);
  if (!sealed) return sealed.error();
  return signed_message(*sealed, false, signer, options.digest,
                        {{kMessageType, V_ASN1_PRINTABLESTRING, printable(static_cast<int>(type))},
                         {kTransactionId, V_ASN1_PRINTABLESTRING, std::string(transaction_id)},
                         {kSenderNonce, V_ASN1_OCTET_STRING, std::string(sender_nonce)}});
}

}  // namespace

Result<std::string> build_pkcs_req(std::string_view csr_der, const Identity& signer, std::string_view recipient_der,
                                   std::string_view transaction_id, std::string_view sender_nonce, Envelope envelope) {
  return request_message(MessageType::pkcs_req, csr_der, signer, recipient_der, transaction_id, sender_nonce, envelope);
}

Result<std::string> build_cert_poll(std::string_view ca_der, std::string_view csr_der, const Identity& signer,
                                    std::string_view recipient_der, std::string_view transaction_id,
                                    std::string_view sender_nonce, Envelope envelope) {
  auto ca = certificate_from_der(ca_der, "CA certificate");
  if (!ca) return ca.error();
  auto req = csr_from_der(csr_der);
  if (!req) return req.error();
  auto issuer = name_der(X509_get_subject_name(ca->get()));
  auto subject = name_der(X509_REQ_get_subject_name(req->get()));
  if (!issuer) return issuer.error();
  if (!subject) return subject.error();
  auto issuer_and_subject = der_sequence(*issuer + *subject);
  if (!issuer_and_subject) return issuer_and_subject.error();
  return request_message(MessageType::cert_poll, *issuer_and_subject, signer, recipient_der, transaction_id,
                         sender_nonce, envelope);
}

Result<CertRep> parse_cert_rep(std::string_view der, const std::vector<std::string>& verifier_ders) {
  auto cms = cms_from_der(der, "CertRep");
  if (!cms) return cms.error();
  auto si = only_signer(cms->get(), "CertRep");
  if (!si) return si.error();
  auto type = required_attribute(*si, kMessageType, V_ASN1_PRINTABLESTRING, "messageType");
  if (!type) return fail("CertRep: " + type.error().message);
  if (*type != "3") return fail("CertRep: messageType " + type->substr(0, 8) + ", not 3 (CertRep)");
  auto status_text = required_attribute(*si, kPkiStatus, V_ASN1_PRINTABLESTRING, "pkiStatus");
  if (!status_text) return fail("CertRep: " + status_text.error().message);
  auto status = small_number(*status_text, "pkiStatus");
  if (!status) return fail("CertRep: " + status.error().message);
  CertRep rep;
  if (*status == 0) {
    rep.status = PkiStatus::success;
  } else if (*status == 2) {
    rep.status = PkiStatus::failure;
  } else if (*status == 3) {
    rep.status = PkiStatus::pending;
  } else {
    return fail("CertRep: pkiStatus " + std::to_string(*status) + " (0, 2 or 3)");
  }
  auto tid = required_attribute(*si, kTransactionId, V_ASN1_PRINTABLESTRING, "transactionID");
  if (!tid) return fail("CertRep: " + tid.error().message);
  rep.transaction_id = *tid;
  auto recipient_nonce = required_attribute(*si, kRecipientNonce, V_ASN1_OCTET_STRING, "recipientNonce");
  if (!recipient_nonce) return fail("CertRep: " + recipient_nonce.error().message);
  rep.recipient_nonce = *recipient_nonce;
  auto sender_nonce = signed_attribute(*si, kSenderNonce, V_ASN1_OCTET_STRING, "senderNonce");
  if (!sender_nonce) return fail("CertRep: " + sender_nonce.error().message);
  rep.sender_nonce = sender_nonce->value_or("");
  if (rep.status == PkiStatus::failure) {
    auto info = signed_attribute(*si, kFailInfo, V_ASN1_PRINTABLESTRING, "failInfo");
    if (!info) return fail("CertRep: " + info.error().message);
    if (info->has_value()) {
      auto number = small_number(**info, "failInfo");
      if (!number) return fail("CertRep: " + number.error().message);
      rep.fail_info = *number;
    }
    auto text = signed_attribute(*si, kFailInfoText, V_ASN1_UTF8STRING, "failInfoText");
    if (text && text->has_value()) rep.fail_info_text = base::sanitize_utf8(text->value().substr(0, 512));
  }
  const char* claim = rep.status == PkiStatus::success   ? "SUCCESS"
                      : rep.status == PkiStatus::pending ? "PENDING"
                                                         : "FAILURE";

  // The signature last, with the verifiers only: the certificates the answer carries are not trusted.
  X509StackPtr verifiers(sk_X509_new_null());
  if (!verifiers) return fail_openssl("verifier list");
  for (const auto& v : verifier_ders) {
    auto cert = certificate_from_der(v, "verifier certificate");
    if (!cert) return cert.error();
    if (sk_X509_push(verifiers.get(), cert->get()) <= 0) return fail_openssl("verifier list");
    X509* pushed = cert->release();
    if (rep.signer_der.empty() && CMS_SignerInfo_cert_cmp(*si, pushed) == 0) rep.signer_der = v;
  }
  if (rep.signer_der.empty())
    return fail(std::string("CertRep (claims ") + claim + ") is signed by a certificate that is not the CA's or RA's");
  detail::StorePtr store(X509_STORE_new());
  BioPtr out(BIO_new(BIO_s_mem()));
  // A CertRep without content (FAILURE, PENDING) signs the empty content; a read-only memory
  // BIO says end of file where an empty writable one says "retry".
  auto empty = detail::memory_source({});
  if (!store || !out || !empty) return fail_openssl("verifying the CertRep");
  bool detached = CMS_is_detached(cms->get()) == 1;
  if (CMS_verify(cms->get(), verifiers.get(), store.get(), detached ? empty->get() : nullptr, out.get(),
                 CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY) != 1)
    return fail_openssl(std::string("CertRep (claims ") + claim + ") signature does not verify");
  if (rep.status == PkiStatus::success) {
    rep.envelope_der = detail::memory_contents(out.get());
    if (rep.envelope_der.empty()) return fail("CertRep SUCCESS without a pkcsPKIEnvelope");
  }
  return rep;
}

Result<std::vector<std::string>> decrypt_issued_certificates(std::string_view envelope_der, const Identity& recipient,
                                                             std::string* cipher) {
  auto parsed = detail::parse_identity(recipient, "requester");
  if (!parsed) return parsed.error();
  auto inner = decrypt(envelope_der, parsed->cert.get(), parsed->key.get(), cipher);
  if (!inner) return inner.error();
  auto certs = certificates_of_pkcs7(*inner);
  if (!certs) return fail("the decrypted CertRep content: " + certs.error().message);
  if (certs->empty()) return fail("the decrypted CertRep content holds no certificate");
  return certs;
}

Result<std::string> check_issued_certificate(const std::vector<std::string>& certificates_der,
                                             const IssuedExpectation& expected) {
  auto key = detail::read_private_key(expected.key_pem, "our key");
  if (!key) return key.error();
  X509Ptr mine;
  for (const auto& der : certificates_der) {
    auto cert = certificate_from_der(der, "issued certificate");
    if (!cert) return cert.error();
    if (X509_check_private_key(cert->get(), key->get()) == 1) {
      mine = std::move(*cert);
      break;
    }
  }
  ERR_clear_error();
  if (!mine)
    return fail("none of the " + std::to_string(certificates_der.size()) + " certificates returned is for our key");
  std::string has = name_line(X509_get_subject_name(mine.get()));
  const X509_NAME* subject = X509_get_subject_name(mine.get());
  for (const auto& rdn : expected.subject) {
    for (const auto& [type, value] : rdn) {
      ObjectPtr obj(OBJ_txt2obj(type.c_str(), 0));
      bool found = false;
      for (int i = -1; obj && !found;) {
        i = X509_NAME_get_index_by_OBJ(subject, obj.get(), i);
        if (i < 0) break;
        unsigned char* utf8 = nullptr;
        int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
        if (length >= 0) {
          detail::OpensslBytesPtr owned(utf8);
          found = std::string_view(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length)) == value;
        }
      }
      ERR_clear_error();
      if (!found) return fail("the issued certificate's subject lacks " + type + "=" + value + " (has " + has + ")");
    }
  }
  if (X509_cmp_current_time(X509_get0_notAfter(mine.get())) <= 0)
    return fail("the issued certificate expired on " + time_line(X509_get0_notAfter(mine.get())));
  if (X509_cmp_current_time(X509_get0_notBefore(mine.get())) > 0)
    return fail("the issued certificate is not valid before " + time_line(X509_get0_notBefore(mine.get())));
  auto anchors = detail::read_certificates(expected.ca_pem, "CA certificates");
  if (!anchors) return anchors.error();
  detail::StorePtr store(X509_STORE_new());
  detail::StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx) return fail_openssl("X509_STORE_new");
  for (int i = 0; i < sk_X509_num(anchors->get()); ++i)
    if (X509_STORE_add_cert(store.get(), sk_X509_value(anchors->get(), i)) != 1) return fail_openssl("CA store");
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), mine.get(), nullptr) != 1) return fail_openssl("X509_STORE_CTX_init");
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return fail(std::string("the issued certificate does not chain to the CA: ") +
                X509_verify_cert_error_string(error));
  }
  return detail::certificate_pem(mine.get());
}

Result<PkiRequest> parse_pki_request(std::string_view der, const Identity& recipient) {
  auto cms = cms_from_der(der, "pkiMessage");
  if (!cms) return cms.error();
  auto si = only_signer(cms->get(), "pkiMessage");
  if (!si) return si.error();
  PkiRequest request;
  auto type = required_attribute(*si, kMessageType, V_ASN1_PRINTABLESTRING, "messageType");
  if (!type) return type.error();
  if (*type == "19") {
    request.type = MessageType::pkcs_req;
  } else if (*type == "20") {
    request.type = MessageType::cert_poll;
  } else if (*type == "17") {
    request.type = MessageType::renewal_req;
  } else {
    return fail("messageType " + type->substr(0, 8) + " (19 PKCSReq, 17 RenewalReq or 20 CertPoll)");
  }
  auto tid = required_attribute(*si, kTransactionId, V_ASN1_PRINTABLESTRING, "transactionID");
  if (!tid) return tid.error();
  request.transaction_id = *tid;
  auto nonce = required_attribute(*si, kSenderNonce, V_ASN1_OCTET_STRING, "senderNonce");
  if (!nonce) return nonce.error();
  request.sender_nonce = *nonce;
  request.digest = digest_of(*si);
  // The requester's transient certificate is the one it carries: self-signed, trusted for this
  // signature only (RFC 8894 2.3).
  STACK_OF(X509)* carried = CMS_get1_certs(cms->get());
  X509StackPtr owned(carried);
  X509* signer = nullptr;
  for (int i = 0; carried != nullptr && i < sk_X509_num(carried); ++i)
    if (CMS_SignerInfo_cert_cmp(*si, sk_X509_value(carried, i)) == 0) signer = sk_X509_value(carried, i);
  if (signer == nullptr) return fail("pkiMessage does not carry its signer's certificate");
  auto signer_der = detail::certificate_der(signer);
  if (!signer_der) return signer_der.error();
  request.signer_cert_der = *signer_der;
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out) return fail_openssl("BIO_new");
  if (CMS_verify(cms->get(), nullptr, nullptr, nullptr, out.get(), CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1)
    return fail_openssl("pkiMessage signature does not verify");
  auto parsed = detail::parse_identity(recipient, "SCEP recipient");
  if (!parsed) return parsed.error();
  auto inner = decrypt(detail::memory_contents(out.get()), parsed->cert.get(), parsed->key.get(), &request.cipher);
  if (!inner) return inner.error();
  if (request.type == MessageType::cert_poll) {
    const unsigned char* p = data_of(*inner);
    long length = 0;
    int tag = 0;
    int cls = 0;
    if (ASN1_get_object(&p, &length, &tag, &cls, static_cast<long>(inner->size())) & 0x80 || tag != V_ASN1_SEQUENCE)
      return fail("CertPoll: IssuerAndSubject is not a SEQUENCE");
    const unsigned char* end = p + length;
    NamePtr issuer(d2i_X509_NAME(nullptr, &p, end - p));
    NamePtr subject(issuer ? d2i_X509_NAME(nullptr, &p, end - p) : nullptr);
    if (!issuer || !subject) return fail_openssl("CertPoll: IssuerAndSubject");
    request.subject = name_line(subject.get());
    return request;
  }
  auto req = csr_from_der(*inner);
  if (!req) return req.error();
  PkeyPtr key(X509_REQ_get_pubkey(req->get()));
  if (!key || X509_REQ_verify(req->get(), key.get()) != 1) return fail_openssl("the CSR's signature does not verify");
  request.csr_der = *inner;
  request.subject = name_line(X509_REQ_get_subject_name(req->get()));
  int index = X509_REQ_get_attr_by_NID(req->get(), NID_pkcs9_challengePassword, -1);
  if (index >= 0) {
    ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(req->get(), index), 0);
    if (value != nullptr &&
        (ASN1_TYPE_get(value) == V_ASN1_PRINTABLESTRING || ASN1_TYPE_get(value) == V_ASN1_UTF8STRING ||
         ASN1_TYPE_get(value) == V_ASN1_IA5STRING || ASN1_TYPE_get(value) == V_ASN1_T61STRING))
      request.challenge = as_string(value->value.asn1_string);
  }
  ERR_clear_error();
  return request;
}

Result<std::string> issue_certificate(const Identity& ca, std::string_view csr_der, Validity validity,
                                      const Name& subject) {
  auto issuer = detail::parse_identity(ca, "issuing CA");
  if (!issuer) return issuer.error();
  auto req = csr_from_der(csr_der);
  if (!req) return req.error();
  PkeyPtr key(X509_REQ_get_pubkey(req->get()));
  if (!key) return fail_openssl("the CSR's key");
  NamePtr other;
  const X509_NAME* name = X509_REQ_get_subject_name(req->get());
  if (!subject.empty()) {
    auto built = build_name(subject);
    if (!built) return built.error();
    other = std::move(*built);
    name = other.get();
  }
  X509Ptr cert(X509_new());
  unsigned char serial[12];
  if (!cert || RAND_bytes(serial, sizeof serial) != 1) return fail_openssl("issuing");
  serial[0] &= 0x7f;
  detail::BignumPtr bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_set_version(cert.get(), X509_VERSION_3) != 1 || X509_set_subject_name(cert.get(), name) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer->cert.get())) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(validity.not_before_offset.count())) ==
          nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      static_cast<long>((validity.not_before_offset + validity.lifetime).count())) == nullptr ||
      X509_set_pubkey(cert.get(), key.get()) != 1)
    return fail_openssl("issuing");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer->cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_key_usage, "critical,digitalSignature"},
        std::pair{NID_ext_key_usage, "clientAuth"}}) {
    auto added = add_extension(cert.get(), &ctx, nid, value);
    if (!added) return added.error();
  }
  if (X509_sign(cert.get(), issuer->key.get(), EVP_sha256()) <= 0) return fail_openssl("signing the certificate");
  return detail::certificate_der(cert.get());
}

Result<std::string> degenerate_pkcs7(const std::vector<std::string>& certificates_der) {
  Pkcs7Ptr p7(PKCS7_new());
  if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1) return fail_openssl("PKCS7_new");
  p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
  for (const auto& der : certificates_der) {
    auto cert = certificate_from_der(der, "certificate");
    if (!cert) return cert.error();
    if (PKCS7_add_certificate(p7.get(), cert->get()) != 1) return fail_openssl("PKCS7_add_certificate");
  }
  unsigned char* out = nullptr;
  int length = i2d_PKCS7(p7.get(), &out);
  if (length <= 0) return fail_openssl("i2d_PKCS7");
  detail::OpensslBytesPtr owned(out);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length));
}

Result<std::string> build_cert_rep(const PkiRequest& request, const CertRepSpec& spec, const Identity& signer) {
  std::vector<Attribute> attributes{
      {kMessageType, V_ASN1_PRINTABLESTRING, printable(static_cast<int>(MessageType::cert_rep))},
      {kPkiStatus, V_ASN1_PRINTABLESTRING, printable(static_cast<int>(spec.status))},
      {kTransactionId, V_ASN1_PRINTABLESTRING, request.transaction_id},
      {kSenderNonce, V_ASN1_OCTET_STRING, new_nonce()},
      {kRecipientNonce, V_ASN1_OCTET_STRING, spec.recipient_nonce.value_or(request.sender_nonce)},
  };
  if (spec.status == PkiStatus::failure) {
    attributes.push_back({kFailInfo, V_ASN1_PRINTABLESTRING, printable(spec.fail_info)});
    if (!spec.fail_info_text.empty()) attributes.push_back({kFailInfoText, V_ASN1_UTF8STRING, spec.fail_info_text});
  }
  if (spec.status != PkiStatus::success) return signed_message({}, true, signer, spec.digest, attributes);
  auto degenerate = degenerate_pkcs7(spec.certificates_der);
  if (!degenerate) return degenerate.error();
  auto requester = certificate_from_der(request.signer_cert_der, "requester certificate");
  if (!requester) return requester.error();
  auto sealed = envelope(*degenerate, requester->get(), spec.cipher);
  if (!sealed) return sealed.error();
  return signed_message(*sealed, false, signer, spec.digest, attributes);
}

}  // namespace mdmc::pki::scep
