#include "harness/push/push_test_support.hpp"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace mdmc::push::testing {
namespace {

template <typename T>
T check(base::Result<T> result) {
  if (!result.ok()) throw std::runtime_error(result.message());
  return std::move(*result);
}

std::string pem_of(int (*write)(BIO*, void*), void* object) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (write(bio.get(), object) != 1) throw std::runtime_error("PEM write failed");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

pki::Identity issue_push_certificate(const pki::Identity& issuer, const std::string& topic) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(issuer.cert_pem.data(), static_cast<int>(issuer.cert_pem.size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> ca(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr),
                                                 &X509_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(issuer.key_pem.data(), static_cast<int>(issuer.key_pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ca_key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  if (!ca || !ca_key || !key || !cert) throw std::runtime_error("push certificate: setup failed");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(std::hash<std::string>{}(topic)&0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600L * 24 * 30);
  X509_NAME* name = X509_get_subject_name(cert.get());
  // As Apple's: "APSP:<uuid>" (the whole topic would pass commonName's 64 characters).
  const std::string common_name = "APSP:" + topic.substr(topic.rfind('.') + 1).substr(0, 59);
  if (X509_NAME_add_entry_by_NID(name, NID_userId, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(topic.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) != 1) {
    throw std::runtime_error("push certificate: subject " + topic + " does not fit");
  }
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get()));
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_ext_key_usage, "clientAuth"}}) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
  }
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) <= 0) throw std::runtime_error("push certificate: sign failed");
  pki::Identity out;
  out.cert_pem = pem_of([](BIO* b, void* x) { return PEM_write_bio_X509(b, static_cast<X509*>(x)); }, cert.get());
  out.key_pem = pem_of(
      [](BIO* b, void* k) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr, nullptr);
      },
      key.get());
  return out;
}

const PushPki& push_pki() {
  static const PushPki pki = [] {
    PushPki p;
    p.ca = check(pki::create_test_ca("mdmconform run CA"));
    p.server = check(pki::issue_server_identity(
        p.ca, {"127.0.0.1", "localhost", "api.push.apple.com", "api.sandbox.push.apple.com"}));
    p.push_ca = check(pki::create_test_ca("fake Apple push CA"));
    p.push_certificate = issue_push_certificate(p.push_ca, kTopic);
    const auto stranger_ca = check(pki::create_test_ca("stranger push CA"));
    p.stranger_push = issue_push_certificate(stranger_ca, kTopic);
    p.token_key = check(pki::create_test_ca("provider token key"));
    return p;
  }();
  return pki;
}

FakeApnsConfig endpoint_config() {
  const auto& p = push_pki();
  FakeApnsConfig config;
  config.tls = p.server;
  config.push_ca_pem = p.push_ca.cert_pem;
  config.policy.token_policy = ProviderTokenPolicy{kKeyId, kTeamId, p.token_key.cert_pem};
  return config;
}

ApnsClientConfig client_config(std::uint16_t port) {
  ApnsClientConfig config;
  config.url = "https://127.0.0.1:" + std::to_string(port);
  config.trusted_ca_pem = push_pki().ca.cert_pem;
  config.connect_timeout = std::chrono::milliseconds(3000);
  config.handshake_timeout = std::chrono::milliseconds(3000);
  config.response_timeout = std::chrono::milliseconds(5000);
  return config;
}

}  // namespace mdmc::push::testing
