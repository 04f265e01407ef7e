#include "harness/testing/test_certs.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace mdmc::testing {
namespace {

// Tests fail loudly on a broken OpenSSL; throwing is fine here, in test code only.
void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  // BIO_get_mem_data spelled out: the macro hides an old-style cast.
  const long size = BIO_ctrl(bio, BIO_CTRL_INFO, 0, static_cast<void*>(&data));
  return std::string(data, static_cast<std::size_t>(size));
}

void add_extension(X509* cert, X509V3_CTX& ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  check(added == 1, "X509_add_ext");
}

}  // namespace

TestIdentity make_test_identity(const TestCertSpec& spec, const TestIdentity* issuer) {
  // EVP_EC_gen("P-256") spelled out: the macro hides an old-style cast.
  std::shared_ptr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  check(key != nullptr, "EVP_PKEY_Q_keygen");
  std::shared_ptr<X509> cert(X509_new(), &X509_free);
  check(cert != nullptr, "X509_new");
  X509* x = cert.get();

  check(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
  // A random 64-bit serial: every test CA issues with the same names, never the same serial.
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), &BN_free);
  check(serial && BN_rand(serial.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1, "BN_rand");
  check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x)) != nullptr, "BN_to_ASN1_INTEGER");
  constexpr long kDay = 24 * 60 * 60;
  check(X509_gmtime_adj(X509_getm_notBefore(x), spec.valid_from_days * kDay) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(x), spec.valid_until_days * kDay) != nullptr, "notAfter");
  check(X509_set_pubkey(x, key.get()) == 1, "X509_set_pubkey");

  X509_NAME* name = X509_get_subject_name(x);
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mdmconform tests"),
                                   -1, -1, 0) == 1,
        "O");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0) == 1,
        "CN");
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : key.get();
  check(X509_set_issuer_name(x, X509_get_subject_name(issuer_cert)) == 1, "X509_set_issuer_name");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert, x, nullptr, nullptr, 0);
  if (spec.ca) {
    add_extension(x, ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(x, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(x, ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(x, ctx, NID_key_usage, "critical,digitalSignature");
    add_extension(x, ctx, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  }
  if (!spec.subject_alt_names.empty()) add_extension(x, ctx, NID_subject_alt_name, spec.subject_alt_names);
  add_extension(x, ctx, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add_extension(x, ctx, NID_authority_key_identifier, "keyid:always");
  check(X509_sign(x, signing_key, EVP_sha256()) > 0, "X509_sign");

  TestIdentity out;
  out.cert = cert;
  out.key = key;
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), &BIO_free);
  check(cert_bio && PEM_write_bio_X509(cert_bio.get(), x) == 1, "PEM_write_bio_X509");
  out.cert_pem = drain(cert_bio.get());
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), &BIO_free);
  check(key_bio && PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  out.key_pem = drain(key_bio.get());
  const int der_size = i2d_X509(x, nullptr);
  check(der_size > 0, "i2d_X509");
  out.cert_der.resize(static_cast<std::size_t>(der_size));
  auto* der = reinterpret_cast<unsigned char*>(out.cert_der.data());
  check(i2d_X509(x, &der) == der_size, "i2d_X509");
  return out;
}

const TestPki& test_pki() {
  static const TestPki pki;
  return pki;
}

}  // namespace mdmc::testing
