// Issuing, loading and writing identities. The Mdm-Signature half is in signature.cpp.
#include "harness/pki/pki.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <ctime>
#include <map>
#include <optional>

#include "harness/base/files.hpp"
#include "harness/pki/detail/openssl.hpp"

namespace mdmc::pki {

using detail::fail;
using detail::fail_openssl;

namespace {

// Certificates, keys and PKCS#12 files are a few KiB; a cap keeps a wrong path (a disk image,
// /dev/zero) from being read whole.
constexpr std::size_t kMaxCredentialFileBytes = 1024 * 1024;

// Prefixes a failure with the public function (and file) it came from.
base::Error in(std::string_view where, const std::string& error) {
  return base::fail(std::string(where) + ": " + error);
}

Result<detail::PkeyPtr> generate_key(KeyType type) {
  const bool rsa = type == KeyType::rsa2048;
  detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, rsa ? "RSA" : "EC", nullptr));
  if (!ctx) return fail_openssl("EVP_PKEY_CTX_new_from_name");
  if (EVP_PKEY_keygen_init(ctx.get()) <= 0) return fail_openssl("EVP_PKEY_keygen_init");
  if (rsa) {
    if (EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) <= 0) {
      return fail_openssl("EVP_PKEY_CTX_set_rsa_keygen_bits");
    }
  } else if (EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") <= 0) {
    return fail_openssl("EVP_PKEY_CTX_set_group_name");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) <= 0) return fail_openssl("EVP_PKEY_generate");
  return detail::PkeyPtr(raw);
}

// 16 random bytes as a positive INTEGER. 128 bits stays well inside the 20 octets RFC 5280
// allows (DER adds a leading zero octet when the top bit is set).
bool set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  detail::BignumPtr serial(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!serial) return false;
  // A zero serial is forbidden; 2^-128 odds, but cheap to rule out.
  if (BN_is_zero(serial.get()) && BN_one(serial.get()) != 1) return false;
  return BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr;
}

// A thousand years either way is far beyond any test and keeps day counts inside an int.
constexpr std::chrono::seconds kMaxValiditySpan = std::chrono::hours(24 * 366 * 1000);

bool set_time(ASN1_TIME* field, std::time_t now, std::chrono::seconds offset) {
  constexpr long long kSecondsPerDay = 86400;
  const long long total = offset.count();
  const long long days = total / kSecondsPerDay;
  const long seconds = static_cast<long>(total % kSecondsPerDay);
  return ASN1_TIME_adj(field, now, static_cast<int>(days), seconds) != nullptr;
}

struct Extension {
  int nid;
  std::string value;  // in openssl.cnf syntax
};

struct CertificateRequest {
  std::string common_name;
  std::string user_id;  // a UID attribute before the CN when not empty (an MDM push certificate's topic)
  EVP_PKEY* subject_key = nullptr;
  X509* issuer = nullptr;  // null: self-signed with subject_key
  EVP_PKEY* issuer_key = nullptr;
  Validity validity;
  std::vector<Extension> extensions;
  GENERAL_NAMES* alt_names = nullptr;  // optional subjectAltName
};

Result<detail::X509Ptr> build_certificate(const CertificateRequest& req) {
  if (req.common_name.empty()) return fail("the common name is empty");
  if (req.validity.lifetime.count() <= 0) return fail("validity lifetime must be positive");
  if (std::chrono::abs(req.validity.not_before_offset) > kMaxValiditySpan || req.validity.lifetime > kMaxValiditySpan) {
    return fail("validity offset or lifetime beyond 1000 years");
  }

  detail::X509Ptr cert(X509_new());
  if (!cert) return fail_openssl("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return fail_openssl("X509_set_version");
  if (!set_random_serial(cert.get())) return fail_openssl("serial number");

  const std::time_t now = std::time(nullptr);
  if (!set_time(X509_getm_notBefore(cert.get()), now, req.validity.not_before_offset) ||
      !set_time(X509_getm_notAfter(cert.get()), now, req.validity.not_before_offset + req.validity.lifetime)) {
    return fail_openssl("validity");
  }

  detail::NamePtr subject(X509_NAME_new());
  if (!subject) return fail_openssl("X509_NAME_new");
  if (!req.user_id.empty() && (req.user_id.size() > static_cast<std::size_t>(INT_MAX) ||
                               X509_NAME_add_entry_by_NID(subject.get(), NID_userId, MBSTRING_UTF8,
                                                          reinterpret_cast<const unsigned char*>(req.user_id.data()),
                                                          static_cast<int>(req.user_id.size()), -1, 0) != 1)) {
    return fail_openssl("user id \"" + req.user_id + "\"");
  }
  if (req.common_name.size() > static_cast<std::size_t>(INT_MAX) ||
      X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(req.common_name.data()),
                                 static_cast<int>(req.common_name.size()), -1, 0) != 1) {
    return fail_openssl("common name \"" + req.common_name + "\"");
  }
  if (X509_set_subject_name(cert.get(), subject.get()) != 1) {
    return fail_openssl("X509_set_subject_name");
  }
  X509_NAME* issuer_name = req.issuer ? X509_get_subject_name(req.issuer) : subject.get();
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1) return fail_openssl("X509_set_issuer_name");
  if (X509_set_pubkey(cert.get(), req.subject_key) != 1) return fail_openssl("X509_set_pubkey");

  // The context lets subjectKeyIdentifier=hash and authorityKeyIdentifier=keyid see the keys.
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, req.issuer ? req.issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const Extension& e : req.extensions) {
    detail::ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, e.nid, e.value.c_str()));
    if (!ext) return fail_openssl(std::string(OBJ_nid2sn(e.nid)) + "=" + e.value);
    if (X509_add_ext(cert.get(), ext.get(), -1) != 1) return fail_openssl("X509_add_ext");
  }
  if (req.alt_names != nullptr &&
      X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, req.alt_names, 0, X509V3_ADD_DEFAULT) != 1) {
    return fail_openssl("subjectAltName");
  }

  EVP_PKEY* signing_key = req.issuer ? req.issuer_key : req.subject_key;
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) <= 0) return fail_openssl("X509_sign");
  return cert;
}

// PEM texts of a certificate, its key and chain[first_chain_index..].
Result<Identity> make_identity(X509* cert, EVP_PKEY* key, const STACK_OF(X509) * chain, int first_chain_index) {
  Identity out;
  auto cert_pem = detail::certificate_pem(cert);
  if (!cert_pem) return base::fail(cert_pem.message());
  out.cert_pem = std::move(cert_pem).value();
  auto key_pem = detail::private_key_pem(key);
  if (!key_pem) return base::fail(key_pem.message());
  out.key_pem = std::move(key_pem).value();
  for (int i = first_chain_index; chain != nullptr && i < sk_X509_num(chain); ++i) {
    auto pem = detail::certificate_pem(sk_X509_value(chain, i));
    if (!pem) return base::fail(pem.message());
    out.chain_pem += *pem;
  }
  return out;
}

// Issues a leaf from `ca`: a fresh key, the given extensions, and a chain that leads to the root.
Result<Identity> issue_leaf(const Identity& ca, std::string common_name, KeyType key_type, Validity validity,
                            std::vector<Extension> extensions, GENERAL_NAMES* alt_names, std::string user_id = {}) {
  auto issuer = detail::parse_identity(ca, "CA");
  if (!issuer) return base::fail(issuer.message());
  if (X509_check_ca(issuer->cert.get()) == 0) {
    return fail("the CA certificate is not a CA (no basicConstraints CA:TRUE)");
  }
  const int self_signed = X509_self_signed(issuer->cert.get(), 0);
  if (self_signed < 0) return fail_openssl("X509_self_signed");

  auto key = generate_key(key_type);
  if (!key) return base::fail(key.message());
  CertificateRequest req;
  req.common_name = std::move(common_name);
  req.user_id = std::move(user_id);
  req.subject_key = key->get();
  req.issuer = issuer->cert.get();
  req.issuer_key = issuer->key.get();
  req.validity = validity;
  req.extensions = std::move(extensions);
  req.alt_names = alt_names;
  auto cert = build_certificate(req);
  if (!cert) return base::fail(cert.message());

  auto out = make_identity(cert->get(), key->get(), nullptr, 0);
  if (!out) return out;
  // An intermediate CA passes itself on: a verifier holding only the root needs it.
  if (self_signed == 0) {
    auto ca_pem = detail::certificate_pem(issuer->cert.get());
    if (!ca_pem) return base::fail(ca_pem.message());
    out.value().chain_pem = *ca_pem;
  }
  auto rest = detail::certificates_pem(issuer->chain.get());
  if (!rest) return base::fail(rest.message());
  out.value().chain_pem += *rest;
  return out;
}

std::string leaf_key_usage(KeyType key) {
  // keyEncipherment only means something for RSA key transport; an EC key cannot do it.
  return key == KeyType::rsa2048 ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
}

// An IPv4 or IPv6 literal (IPv6 optionally in brackets) as its 4 or 16 address bytes.
std::optional<std::string> ip_address_bytes(std::string_view name) {
  std::string text(name);
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  unsigned char bytes[16];
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) return std::string(reinterpret_cast<char*>(bytes), 4);
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) return std::string(reinterpret_cast<char*>(bytes), 16);
  return std::nullopt;
}

// Letters, digits, '-', '_', '.', and '*' for a wildcard label; at most 253 characters.
bool plausible_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' || c == '*';
  });
}

Result<detail::GeneralNamesPtr> alt_names_for(const std::vector<std::string>& names) {
  detail::GeneralNamesPtr out(GENERAL_NAMES_new());
  if (!out) return fail_openssl("GENERAL_NAMES_new");
  for (const std::string& name : names) {
    detail::GeneralNamePtr entry(GENERAL_NAME_new());
    if (!entry) return fail_openssl("GENERAL_NAME_new");
    if (auto ip = ip_address_bytes(name)) {
      detail::OctetStringPtr octets(ASN1_OCTET_STRING_new());
      if (!octets) return fail_openssl("ASN1_OCTET_STRING_new");
      if (ASN1_OCTET_STRING_set(octets.get(), reinterpret_cast<const unsigned char*>(ip->data()),
                                static_cast<int>(ip->size())) != 1) {
        return fail_openssl("ASN1_OCTET_STRING_set");
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, octets.release());
    } else if (plausible_dns_name(name)) {
      detail::Ia5StringPtr dns(ASN1_IA5STRING_new());
      if (!dns) return fail_openssl("ASN1_IA5STRING_new");
      if (ASN1_STRING_set(dns.get(), name.data(), static_cast<int>(name.size())) != 1) {
        return fail_openssl("ASN1_STRING_set");
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_DNS, dns.release());
    } else {
      return fail("\"" + name + "\" is neither a DNS name nor an IP address");
    }
    if (sk_GENERAL_NAME_push(out.get(), entry.get()) <= 0) return fail_openssl("sk_GENERAL_NAME_push");
    (void)entry.release();  // owned by the stack now
  }
  return out;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

Result<Identity> create_test_ca(const std::string& common_name, KeyType key, Validity validity) {
  auto pkey = generate_key(key);
  if (!pkey) return in("create_test_ca", pkey.message());
  CertificateRequest req;
  req.common_name = common_name;
  req.subject_key = pkey->get();
  req.validity = validity;
  req.extensions = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,keyCertSign,cRLSign"},
      {NID_subject_key_identifier, "hash"},
  };
  auto cert = build_certificate(req);
  if (!cert) return in("create_test_ca", cert.message());
  auto out = make_identity(cert->get(), pkey->get(), nullptr, 0);
  if (!out) return in("create_test_ca", out.message());
  return out;
}

Result<Identity> issue_device_identity(const Identity& ca, const std::string& common_name, KeyType key,
                                       Validity validity) {
  auto out = issue_leaf(ca, common_name, key, validity,
                        {
                            {NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, leaf_key_usage(key)},
                            {NID_ext_key_usage, "clientAuth"},
                            {NID_subject_key_identifier, "hash"},
                            // keyid when the CA has one, else issuer name and serial
                            {NID_authority_key_identifier, "keyid,issuer"},
                        },
                        nullptr);
  if (!out) return in("issue_device_identity", out.message());
  return out;
}

Result<Identity> issue_push_certificate(const Identity& ca, const std::string& topic, Validity validity) {
  if (topic.empty()) return in("issue_push_certificate", "the topic is empty");
  // As Apple's: CN "APSP:<the topic's last part>" (the whole topic may pass CN's 64 characters).
  const std::string common_name = "APSP:" + topic.substr(topic.rfind('.') + 1).substr(0, 59);
  auto out = issue_leaf(ca, common_name, KeyType::ec_p256, validity,
                        {
                            {NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, leaf_key_usage(KeyType::ec_p256)},
                            {NID_ext_key_usage, "clientAuth"},
                            {NID_subject_key_identifier, "hash"},
                            {NID_authority_key_identifier, "keyid,issuer"},
                        },
                        nullptr, topic);
  if (!out) return in("issue_push_certificate", out.message());
  return out;
}

Result<Identity> issue_server_identity(const Identity& ca, const std::vector<std::string>& names, Validity validity) {
  if (names.empty()) return in("issue_server_identity", "no names given");
  auto alt_names = alt_names_for(names);
  if (!alt_names) return in("issue_server_identity", alt_names.message());
  // CN is limited to 64 characters (RFC 5280 ub-common-name); clients match the SANs anyway.
  std::string cn = names.front().size() <= 64 ? names.front() : "mdmconform test server";
  auto out = issue_leaf(ca, cn, KeyType::ec_p256, validity,
                        {
                            {NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, leaf_key_usage(KeyType::ec_p256)},
                            {NID_ext_key_usage, "serverAuth"},
                            {NID_subject_key_identifier, "hash"},
                            {NID_authority_key_identifier, "keyid,issuer"},
                        },
                        alt_names->get());
  if (!out) return in("issue_server_identity", out.message());
  return out;
}

Result<Identity> load_pem_pair(const std::filesystem::path& cert, const std::filesystem::path& key) {
  const std::string where = "load_pem_pair " + cert.string();
  auto cert_text = base::read_file_capped(cert, kMaxCredentialFileBytes);
  if (!cert_text) return in(where, cert_text.message());
  auto key_text = base::read_file_capped(key, kMaxCredentialFileBytes);
  if (!key_text) return in(where, key_text.message());
  auto certs = detail::read_certificates(*cert_text, cert.string());
  if (!certs) return in(where, certs.message());
  if (sk_X509_num(certs->get()) < 1) return in(where, "no PEM certificate in the file");
  auto pkey = detail::read_private_key(*key_text, key.string());
  if (!pkey) return in(where, pkey.message());
  X509* leaf = sk_X509_value(certs->get(), 0);
  if (X509_check_private_key(leaf, pkey->get()) != 1) {
    return in(where, fail_openssl(key.string() + " is not the key of this certificate").message);
  }
  auto out = make_identity(leaf, pkey->get(), certs->get(), 1);
  if (!out) return in(where, out.message());
  return out;
}

Result<Identity> load_pkcs12(const std::filesystem::path& file, const std::string& password) {
  const std::string where = "load_pkcs12 " + file.string();
  auto bytes = base::read_file_capped(file, kMaxCredentialFileBytes);
  if (!bytes) return in("load_pkcs12", bytes.message());
  const auto* cursor = reinterpret_cast<const unsigned char*>(bytes->data());
  if (bytes->size() > static_cast<std::size_t>(LONG_MAX)) return in(where, "too large");
  detail::Pkcs12Ptr p12(d2i_PKCS12(nullptr, &cursor, static_cast<long>(bytes->size())));
  if (!p12) return in(where, fail_openssl("not a PKCS#12 file").message);

  // Check the MAC first: PKCS12_parse's own error for a wrong password is "mac verify failure",
  // which says nothing to someone who just typed the password.
  if (PKCS12_mac_present(p12.get()) == 1) {
    bool good = PKCS12_verify_mac(p12.get(), password.c_str(), -1) == 1;
    // An empty password may have been applied as "no password" (NULL) by the exporting tool.
    if (!good && password.empty()) good = PKCS12_verify_mac(p12.get(), nullptr, 0) == 1;
    if (!good) return in(where, fail_openssl("wrong password (MAC verification failed)").message);
    ERR_clear_error();
  }

  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_chain = nullptr;
  const int parsed = PKCS12_parse(p12.get(), password.c_str(), &raw_key, &raw_cert, &raw_chain);
  detail::PkeyPtr key(raw_key);
  detail::X509Ptr cert(raw_cert);
  detail::X509StackPtr chain(raw_chain);
  if (parsed != 1) {
    std::string message = fail_openssl("cannot decrypt the contents").message;
    if (message.find("unsupported") != std::string::npos) {
      message +=
          " (OpenSSL 3 reads legacy ciphers such as RC2-40 only with its legacy provider;"
          " re-export with AES, e.g. openssl pkcs12 -export -certpbe AES-256-CBC"
          " -keypbe AES-256-CBC)";
    }
    return in(where, message);
  }
  if (!key || !cert) return in(where, fail("no private key with its certificate in the file").message);
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return in(where, fail_openssl("the private key does not match the certificate").message);
  }
  auto out = make_identity(cert.get(), key.get(), chain.get(), 0);
  if (!out) return in(where, out.message());
  return out;
}

Result<std::vector<PoolIdentity>> load_identity_pool(const std::filesystem::path& dir,
                                                     const std::string& p12_password) {
  namespace fs = std::filesystem;
  const std::string where = "load_identity_pool " + dir.string();
  struct Pair {
    std::optional<fs::path> crt, pem, key;
  };
  std::vector<fs::path> p12_files;
  std::map<std::string, Pair> pairs;  // by stem

  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return in(where, ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return in(where, ec.message());
    const fs::path& path = it->path();
    const std::string name = path.filename().string();
    if (name.empty() || name.front() == '.') continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const std::string ext = lower(path.extension().string());
    const std::string stem = path.stem().string();
    if (ext == ".p12")
      p12_files.push_back(path);
    else if (ext == ".crt")
      pairs[stem].crt = path;
    else if (ext == ".pem")
      pairs[stem].pem = path;
    else if (ext == ".key")
      pairs[stem].key = path;
  }
  if (ec) return in(where, ec.message());

  // (sort key, loader input): a .p12 alone, or a certificate with its key.
  struct Source {
    fs::path primary;
    std::optional<fs::path> key;
  };
  std::vector<Source> sources;
  for (fs::path& p : p12_files) sources.push_back({std::move(p), std::nullopt});
  for (auto& [stem, pair] : pairs) {
    if (!pair.key) continue;  // a lone certificate: a CA, say
    if (pair.crt && pair.pem) {
      return in(where, stem + ".key has both " + stem + ".crt and " + stem + ".pem; keep one");
    }
    if (!pair.crt && !pair.pem) {
      return in(where, stem + ".key has no " + stem + ".crt or " + stem + ".pem");
    }
    sources.push_back({pair.crt ? *pair.crt : *pair.pem, pair.key});
  }
  std::sort(sources.begin(), sources.end(), [](const Source& a, const Source& b) {
    return a.primary.filename().string() < b.primary.filename().string();
  });

  std::vector<PoolIdentity> pool;
  pool.reserve(sources.size());
  for (const Source& source : sources) {
    auto identity = source.key ? load_pem_pair(source.primary, *source.key) : load_pkcs12(source.primary, p12_password);
    if (!identity) return in(where, identity.message());
    pool.push_back({source.primary.filename().string(), std::move(identity).value()});
  }
  return pool;
}

Result<void> write_secret_file(const std::filesystem::path& path, std::string_view contents) {
  return base::write_file_atomically(path, contents, 0600);
}

Result<void> write_identity(const Identity& identity, const std::filesystem::path& cert_path,
                            const std::filesystem::path& key_path) {
  if (auto key = write_secret_file(key_path, identity.key_pem); !key) return key;
  std::string certs = identity.cert_pem;
  if (!certs.empty() && certs.back() != '\n') certs += '\n';
  certs += identity.chain_pem;
  return base::write_file_atomically(cert_path, certs, 0644);
}

Result<std::string> certificate_der(const std::string& cert_pem) {
  auto cert = detail::read_certificate(cert_pem, "certificate_der");
  if (!cert) return base::fail(cert.message());
  auto der = detail::certificate_der(cert->get());
  if (!der) return in("certificate_der", der.message());
  return der;
}

Result<std::size_t> count_certificates(const std::string& pem) {
  auto certs = detail::read_certificates(pem, "certificate bundle");
  if (!certs) return base::fail(certs.message());
  return static_cast<std::size_t>(sk_X509_num(certs->get()));
}

Result<void> key_matches_certificate(const std::string& cert_pem, const std::string& key_pem) {
  auto cert = detail::read_certificate(cert_pem, "certificate");
  if (!cert) return base::fail(cert.message());
  auto key = detail::read_private_key(key_pem, "private key");
  if (!key) return base::fail(key.message());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return fail_openssl("the private key does not match the certificate");
  }
  return {};
}

Result<std::string> common_name(const std::string& cert_pem) {
  auto cert = detail::read_certificate(cert_pem, "common_name");
  if (!cert) return base::fail(cert.message());
  X509_NAME* subject = X509_get_subject_name(cert->get());
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return in("common_name", fail("the subject has no commonName").message);
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* raw = nullptr;
  const int size = ASN1_STRING_to_UTF8(&raw, data);
  detail::OpensslBytesPtr utf8(raw);
  if (size < 0 || !utf8) return in("common_name", fail_openssl("ASN1_STRING_to_UTF8").message);
  return std::string(reinterpret_cast<const char*>(utf8.get()), static_cast<std::size_t>(size));
}

}  // namespace mdmc::pki
