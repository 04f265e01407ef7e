#include "harness/pki/detail/openssl.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>
#include <map>
#include <mutex>
#include <string>

namespace mdmc::pki::detail {

void free_x509_stack(STACK_OF(X509) * stack) noexcept { sk_X509_pop_free(stack, X509_free); }
void free_openssl_bytes(unsigned char* bytes) noexcept { OPENSSL_free(bytes); }

std::string take_openssl_errors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char text[256];  // ERR_error_string_n truncates to fit; 256 is what OpenSSL itself uses
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ")";
    }
  }
  ERR_clear_error();
  return out.empty() ? "no OpenSSL detail" : out;
}

base::Error fail(std::string message) {
  ERR_clear_error();
  return base::fail(std::move(message));
}

base::Error fail_openssl(std::string_view what) {
  std::string message(what);
  message += ": ";
  message += take_openssl_errors();
  return base::fail(std::move(message));
}

Result<BioPtr> memory_source(std::string_view bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return fail("input over 2 GiB");
  // BIO_new_mem_buf refuses a null pointer even for zero bytes.
  const char* data = bytes.empty() ? "" : bytes.data();
  BioPtr bio(BIO_new_mem_buf(data, static_cast<int>(bytes.size())));
  if (!bio) return fail_openssl("BIO_new_mem_buf");
  return bio;
}

std::string memory_contents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  if (data == nullptr || size <= 0) return {};
  return std::string(data, static_cast<std::size_t>(size));
}

namespace {

// True when the last queued error says the input held no (further) PEM block of the wanted kind.
bool queue_says_no_pem_block() {
  unsigned long e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

// Keys are never encrypted here; without this callback OpenSSL would prompt on the terminal.
int refuse_password(char*, int, int, void*) { return -1; }

Result<BioPtr> memory_sink() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return fail_openssl("BIO_new");
  return bio;
}

}  // namespace

namespace {

// Decoding a certificate's public key goes through OpenSSL 3's decoder framework too: reading
// the signer's certificate again for each Mdm-Signature made was a tenth of the handler
// fuzzer's CPU. A process signs with few certificates, so the decoded ones are kept, up to
// kKeptCertificates, keyed by the exact text, and shared: nothing here changes a certificate
// once read (they are signers and issuers), and OpenSSL allows reading one from several threads.
class DecodedCertificates {
 public:
  X509Ptr find(std::string_view pem) {
    std::lock_guard lock(mutex_);
    auto it = certs_.find(pem);
    if (it == certs_.end()) return nullptr;
    X509_up_ref(it->second.get());
    return X509Ptr(it->second.get());
  }
  void keep(std::string_view pem, X509* cert) {
    std::lock_guard lock(mutex_);
    if (certs_.size() >= kKeptCertificates) certs_.clear();  // a bound, not a policy: misses only cost time
    X509_up_ref(cert);
    certs_.emplace(std::string(pem), X509Ptr(cert));
  }

 private:
  static constexpr std::size_t kKeptCertificates = 256;
  std::mutex mutex_;
  std::map<std::string, X509Ptr, std::less<>> certs_;
};

DecodedCertificates& decoded_certificates() {
  static DecodedCertificates certs;
  return certs;
}

}  // namespace

Result<X509Ptr> read_certificate(std::string_view pem, std::string_view what) {
  if (auto kept = decoded_certificates().find(pem)) return kept;
  auto source = memory_source(pem);
  if (!source) return base::fail(std::string(what) + ": " + source.message());
  X509Ptr cert(PEM_read_bio_X509(source->get(), nullptr, nullptr, nullptr));
  if (!cert) {
    std::string context(what);
    context += queue_says_no_pem_block() ? ": no PEM certificate found" : ": bad PEM certificate";
    return fail_openssl(context);
  }
  ERR_clear_error();
  decoded_certificates().keep(pem, cert.get());
  return cert;
}

Result<X509StackPtr> read_certificates(std::string_view pem, std::string_view what) {
  X509StackPtr certs(sk_X509_new_null());
  if (!certs) return fail_openssl("sk_X509_new_null");
  auto source = memory_source(pem);
  if (!source) return base::fail(std::string(what) + ": " + source.message());
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(source->get(), nullptr, nullptr, nullptr));
    if (!cert) {
      if (queue_says_no_pem_block()) break;  // the end of the text
      return fail_openssl(std::string(what) + ": bad PEM certificate #" + std::to_string(sk_X509_num(certs.get()) + 1));
    }
    if (sk_X509_push(certs.get(), cert.get()) <= 0) return fail_openssl("sk_X509_push");
    (void)cert.release();  // owned by the stack now
  }
  ERR_clear_error();
  return certs;
}

namespace {

// Decoding a PEM private key is the slowest step of an Mdm-Signature in OpenSSL 3 (its decoder
// framework tries each format under locks): a third of a run's CPU when every message of every
// device is signed with a key decoded again (bench/results/p1_perf.md). A process uses few keys
// (a run's devices), so the decoded ones are kept, up to kKeptKeys, and shared: an EVP_PKEY is
// only read once made, which OpenSSL allows from several threads at once.
class DecodedKeys {
 public:
  PkeyPtr find(std::string_view pem) {
    std::lock_guard lock(mutex_);
    auto it = keys_.find(pem);
    if (it == keys_.end()) return nullptr;
    EVP_PKEY_up_ref(it->second.get());
    return PkeyPtr(it->second.get());
  }
  void keep(std::string_view pem, EVP_PKEY* key) {
    std::lock_guard lock(mutex_);
    if (keys_.size() >= kKeptKeys) keys_.clear();  // a bound, not a policy: misses only cost time
    EVP_PKEY_up_ref(key);
    keys_.emplace(std::string(pem), PkeyPtr(key));
  }

 private:
  static constexpr std::size_t kKeptKeys = 256;
  std::mutex mutex_;
  std::map<std::string, PkeyPtr, std::less<>> keys_;
};

DecodedKeys& decoded_keys() {
  static DecodedKeys keys;
  return keys;
}

}  // namespace

Result<PkeyPtr> read_private_key(std::string_view pem, std::string_view what) {
  if (pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
      pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos) {
    return fail(std::string(what) + ": the private key is encrypted; give it unencrypted");
  }
  if (auto kept = decoded_keys().find(pem)) return kept;
  auto source = memory_source(pem);
  if (!source) return base::fail(std::string(what) + ": " + source.message());
  PkeyPtr key(PEM_read_bio_PrivateKey(source->get(), nullptr, refuse_password, nullptr));
  if (!key) {
    std::string context(what);
    context += queue_says_no_pem_block() ? ": no PEM private key found" : ": bad PEM private key";
    return fail_openssl(context);
  }
  ERR_clear_error();
  decoded_keys().keep(pem, key.get());
  return key;
}

Result<std::string> certificate_pem(X509* cert) {
  auto sink = memory_sink();
  if (!sink) return base::fail(sink.message());
  if (PEM_write_bio_X509(sink->get(), cert) != 1) return fail_openssl("PEM_write_bio_X509");
  return memory_contents(sink->get());
}

Result<std::string> certificates_pem(const STACK_OF(X509) * certs) {
  std::string out;
  for (int i = 0; i < sk_X509_num(certs); ++i) {
    auto pem = certificate_pem(sk_X509_value(certs, i));
    if (!pem) return base::fail(pem.message());
    out += *pem;
  }
  return out;
}

Result<std::string> private_key_pem(EVP_PKEY* key) {
  auto sink = memory_sink();
  if (!sink) return base::fail(sink.message());
  if (PEM_write_bio_PrivateKey(sink->get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return fail_openssl("PEM_write_bio_PrivateKey");
  }
  return memory_contents(sink->get());
}

Result<std::string> certificate_der(X509* cert) {
  unsigned char* raw = nullptr;
  int size = i2d_X509(cert, &raw);
  OpensslBytesPtr der(raw);
  if (size <= 0 || !der) return fail_openssl("i2d_X509");
  return std::string(reinterpret_cast<const char*>(der.get()), static_cast<std::size_t>(size));
}

Result<std::string> subject_line(X509* cert) {
  auto sink = memory_sink();
  if (!sink) return base::fail(sink.message());
  // ASN1_STRFLGS_ESC_MSB off: names stay UTF-8 rather than \XX escapes.
  constexpr unsigned long kFlags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (X509_NAME_print_ex(sink->get(), X509_get_subject_name(cert), 0, kFlags) < 0) {
    return fail_openssl("X509_NAME_print_ex");
  }
  return memory_contents(sink->get());
}

Result<ParsedIdentity> parse_identity(const Identity& identity, std::string_view what) {
  const std::string name(what);
  auto cert = read_certificate(identity.cert_pem, name + " certificate");
  if (!cert) return base::fail(cert.message());
  auto key = read_private_key(identity.key_pem, name + " key");
  if (!key) return base::fail(key.message());
  auto chain = read_certificates(identity.chain_pem, name + " chain");
  if (!chain) return base::fail(chain.message());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return fail_openssl(name + ": the private key does not match the certificate");
  }
  return ParsedIdentity{std::move(cert).value(), std::move(key).value(), std::move(chain).value()};
}

Result<std::string> signed_data_der(const Identity& signer, std::string_view content, bool detached,
                                    std::string_view what) {
  const std::string name(what);
  auto parsed = parse_identity(signer, "signer");
  if (!parsed) return base::fail(name + ": " + parsed.message());
  auto source = memory_source(content);
  if (!source) return base::fail(name + ": content: " + source.message());
  // CMS_BINARY: no MIME canonicalisation, which would turn LF into CRLF before hashing and sign
  // bytes nobody ever sees. CMS_PARTIAL: make the structure (with the chain) now, add the signer
  // with an explicit SHA-256 next, and hash the content in CMS_final.
  const unsigned flags = CMS_BINARY | (detached ? CMS_DETACHED : 0u);
  CmsPtr cms(CMS_sign(nullptr, nullptr, parsed->chain.get(), nullptr, flags | CMS_PARTIAL));
  if (!cms) return fail_openssl(name + ": CMS_sign");
  // CMS_NOSMIMECAP: the S/MIME capabilities attribute is for mail clients.
  if (CMS_add1_signer(cms.get(), parsed->cert.get(), parsed->key.get(), EVP_sha256(), flags | CMS_NOSMIMECAP) ==
      nullptr) {
    return fail_openssl(name + ": CMS_add1_signer");
  }
  if (CMS_final(cms.get(), source->get(), nullptr, flags) != 1) return fail_openssl(name + ": CMS_final");
  unsigned char* raw = nullptr;
  const int size = i2d_CMS_ContentInfo(cms.get(), &raw);
  OpensslBytesPtr der(raw);
  if (size <= 0 || !der) return fail_openssl(name + ": i2d_CMS_ContentInfo");
  return std::string(reinterpret_cast<const char*>(der.get()), static_cast<std::size_t>(size));
}

}  // namespace mdmc::pki::detail
