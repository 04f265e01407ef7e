#include "harness/pki/pki.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "harness/pki/signed_profile.hpp"

namespace mdmc::pki {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;

// OpenSSL objects in the tests, freed like in the module.
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
void free_certs(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
void free_names(GENERAL_NAMES* n) { GENERAL_NAMES_free(n); }
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using CertsPtr = std::unique_ptr<STACK_OF(X509), Deleter<free_certs>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<free_names>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, Deleter<CMS_ContentInfo_free>>;

BioPtr source(const std::string& text) { return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))); }
X509Ptr parse_cert(const std::string& pem) {
  return X509Ptr(PEM_read_bio_X509(source(pem).get(), nullptr, nullptr, nullptr));
}
KeyPtr parse_key(const std::string& pem) {
  return KeyPtr(PEM_read_bio_PrivateKey(source(pem).get(), nullptr, nullptr, nullptr));
}
CertsPtr parse_certs(const std::string& pem) {
  CertsPtr out(sk_X509_new_null());
  BioPtr bio = source(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) sk_X509_push(out.get(), cert);
  ERR_clear_error();
  return out;
}

// X509_verify_cert of `leaf` against `ca` as the only anchor, for TLS-client use; X509_V_OK
// when it verifies.
int verify_with_openssl(const Identity& ca, const Identity& leaf) {
  X509Ptr anchor = parse_cert(ca.cert_pem);
  X509Ptr cert = parse_cert(leaf.cert_pem);
  CertsPtr chain = parse_certs(leaf.chain_pem);
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), anchor.get());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), chain.get());
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  int rc = X509_verify_cert(ctx.get());
  int error = rc == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return error;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string unbase64(const std::string& text) {
  std::string out(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(n < 0 ? 0 : n));
  // EVP_DecodeBlock decodes the padding as zero bytes; drop them.
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && !out.empty(); --i) out.pop_back();
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::error_code ec;
    std::string pattern = (fs::temp_directory_path(ec) / "mdmc_pki_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// A .p12 made by OpenSSL itself (PKCS12_create, OpenSSL 3 defaults: AES-256, SHA-256 MAC).
std::string make_p12(const Identity& id, const char* password) {
  X509Ptr cert = parse_cert(id.cert_pem);
  KeyPtr key = parse_key(id.key_pem);
  CertsPtr chain = parse_certs(id.chain_pem);
  Pkcs12Ptr p12(PKCS12_create(password, "test", key.get(), cert.get(), chain.get(), 0, 0, 0, 0, 0));
  if (!p12) return {};
  unsigned char* der = nullptr;
  int n = i2d_PKCS12(p12.get(), &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

Identity must(Result<Identity> r) {
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? std::move(r).value() : Identity{};
}

bool has_client_auth(X509* cert) {
  return (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0 &&
         (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) != 0;
}

std::string serial_hex(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out(hex);
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

const std::string kBody =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n"
    "\t<key>MessageType</key>\n\t<string>Authenticate</string>\n</dict>\n</plist>\n";

// --- Result -------------------------------------------------------------------------------

// --- issuing ------------------------------------------------------------------------------

TEST(TestCa, IsSelfSignedWithCaTrueAndKeyCertSign) {
  Identity ca = must(create_test_ca("mdmconform test CA"));
  X509Ptr cert = parse_cert(ca.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  EXPECT_EQ(X509_self_signed(cert.get(), 1), 1);
  EXPECT_NE(X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN, 0u);
  EXPECT_TRUE(ca.chain_pem.empty());
  EXPECT_NE(ca.key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(*common_name(ca.cert_pem), "mdmconform test CA");
}

TEST(DeviceIdentity, EcIdentityVerifiesAgainstItsCaWithClientAuth) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "device-ec", KeyType::ec_p256));
  EXPECT_EQ(verify_with_openssl(ca, device), X509_V_OK);
  X509Ptr cert = parse_cert(device.cert_pem);
  EXPECT_TRUE(has_client_auth(cert.get()));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(*common_name(device.cert_pem), "device-ec");
}

TEST(DeviceIdentity, RsaIdentityVerifiesAgainstItsCaWithClientAuth) {
  Identity ca = must(create_test_ca("CA", KeyType::rsa2048));
  Identity device = must(issue_device_identity(ca, "device-rsa", KeyType::rsa2048));
  EXPECT_EQ(verify_with_openssl(ca, device), X509_V_OK);
  X509Ptr cert = parse_cert(device.cert_pem);
  EXPECT_TRUE(has_client_auth(cert.get()));
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_sha256WithRSAEncryption);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  KeyPtr key = parse_key(device.key_pem);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 2048);
}

TEST(DeviceIdentity, SerialsAreRandomAndUpTo128Bits) {
  Identity ca = must(create_test_ca("CA"));
  std::set<std::string> serials;
  for (int i = 0; i < 4; ++i) {
    Identity device = must(issue_device_identity(ca, "d", KeyType::ec_p256));
    X509Ptr cert = parse_cert(device.cert_pem);
    std::string serial = serial_hex(cert.get());
    EXPECT_LE(serial.size(), 32u);
    EXPECT_GT(serial.size(), 16u);  // 2^-64 odds of a false failure
    serials.insert(serial);
  }
  EXPECT_EQ(serials.size(), 4u);
}

TEST(DeviceIdentity, IssuerThatIsNotACaIsRefused) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "d", KeyType::ec_p256));
  auto r = issue_device_identity(device, "d2", KeyType::ec_p256);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("not a CA"), std::string::npos) << r.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(DeviceIdentity, CaKeyThatDoesNotMatchIsRefused) {
  Identity ca = must(create_test_ca("CA"));
  Identity other = must(create_test_ca("other"));
  ca.key_pem = other.key_pem;
  auto r = issue_device_identity(ca, "d", KeyType::ec_p256);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("does not match"), std::string::npos) << r.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(DeviceIdentity, NonPositiveLifetimeAndEmptyNameAreRefused) {
  Identity ca = must(create_test_ca("CA"));
  auto zero = issue_device_identity(ca, "d", KeyType::ec_p256, Validity{hours(0), hours(0)});
  EXPECT_FALSE(zero.ok());
  EXPECT_NE(zero.message().find("lifetime"), std::string::npos) << zero.message();
  auto unnamed = issue_device_identity(ca, "", KeyType::ec_p256);
  EXPECT_FALSE(unnamed.ok());
  auto too_long = issue_device_identity(ca, std::string(65, 'x'), KeyType::ec_p256);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("too long"), std::string::npos) << too_long.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(ServerIdentity, HasDnsAndIpSubjectAltNamesAndServerAuth) {
  Identity ca = must(create_test_ca("CA"));
  Identity server = must(issue_server_identity(ca, {"mdm.example.test", "127.0.0.1", "::1"}));
  X509Ptr cert = parse_cert(server.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_NE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER, 0u);
  EXPECT_EQ(X509_check_host(cert.get(), "mdm.example.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.example.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  NamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(names);
  ASSERT_EQ(sk_GENERAL_NAME_num(names.get()), 3);
  EXPECT_EQ(sk_GENERAL_NAME_value(names.get(), 0)->type, GEN_DNS);
  EXPECT_EQ(sk_GENERAL_NAME_value(names.get(), 1)->type, GEN_IPADD);
  EXPECT_EQ(sk_GENERAL_NAME_value(names.get(), 2)->type, GEN_IPADD);
  EXPECT_EQ(*common_name(server.cert_pem), "mdm.example.test");
  // A server identity is no TLS client identity.
  EXPECT_EQ(verify_with_openssl(ca, server), X509_V_ERR_INVALID_PURPOSE);
}

TEST(ServerIdentity, NameThatIsNeitherDnsNorIpIsRefused) {
  Identity ca = must(create_test_ca("CA"));
  EXPECT_FALSE(issue_server_identity(ca, {}).ok());
  auto r = issue_server_identity(ca, {"ok.test", "bad name,DNS:evil.test"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("neither a DNS name nor an IP address"), std::string::npos) << r.message();
}

TEST(ExpiredIdentity, FailsVerificationWithAnExpiredReason) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "old", KeyType::ec_p256, Validity{-hours(48), hours(24)}));
  int error = verify_with_openssl(ca, device);
  EXPECT_EQ(error, X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_NE(std::string(X509_verify_cert_error_string(error)).find("expired"), std::string::npos);

  auto header = mdm_signature(device, kBody);
  ASSERT_TRUE(header.ok()) << header.message();
  auto check = verify_mdm_signature(*header, kBody, ca.cert_pem);
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.message(), "signer certificate expired");
}

// --- loading and writing ------------------------------------------------------------------

TEST(PemPair, RoundTripsThroughWriteIdentityAndLoadPemPair) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "pem-device", KeyType::rsa2048));
  std::string error;
  ASSERT_TRUE(write_identity(device, dir.path() / "d.crt", dir.path() / "d.key"));
  struct stat cert_st {
  }, key_st{};
  ASSERT_EQ(::stat((dir.path() / "d.crt").c_str(), &cert_st), 0);
  ASSERT_EQ(::stat((dir.path() / "d.key").c_str(), &key_st), 0);
  EXPECT_EQ(cert_st.st_mode & 07777, 0644u);
  EXPECT_EQ(key_st.st_mode & 07777, 0600u);

  Identity loaded = must(load_pem_pair(dir.path() / "d.crt", dir.path() / "d.key"));
  EXPECT_EQ(loaded.cert_pem, device.cert_pem);
  EXPECT_EQ(loaded.key_pem, device.key_pem);
  EXPECT_EQ(loaded.chain_pem, device.chain_pem);
}

TEST(PemPair, CertificateFileWithChainSplitsLeafFromChain) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "d", KeyType::ec_p256));
  write_file(dir.path() / "d.pem", device.cert_pem + ca.cert_pem);
  write_file(dir.path() / "d.key", device.key_pem);
  Identity loaded = must(load_pem_pair(dir.path() / "d.pem", dir.path() / "d.key"));
  EXPECT_EQ(loaded.cert_pem, device.cert_pem);
  EXPECT_EQ(loaded.chain_pem, ca.cert_pem);
}

TEST(PemPair, KeyOfAnotherCertificateOrMissingFileIsAClearError) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity a = must(issue_device_identity(ca, "a", KeyType::ec_p256));
  Identity b = must(issue_device_identity(ca, "b", KeyType::ec_p256));
  write_file(dir.path() / "a.crt", a.cert_pem);
  write_file(dir.path() / "b.key", b.key_pem);
  auto mismatch = load_pem_pair(dir.path() / "a.crt", dir.path() / "b.key");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.message().find("is not the key of this certificate"), std::string::npos) << mismatch.message();
  auto missing = load_pem_pair(dir.path() / "none.crt", dir.path() / "b.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("No such file"), std::string::npos) << missing.message();
  write_file(dir.path() / "junk.crt", "not a certificate\n");
  auto junk = load_pem_pair(dir.path() / "junk.crt", dir.path() / "b.key");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.message().find("no PEM certificate"), std::string::npos) << junk.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(PemPair, EncryptedKeyIsRefusedWithoutPrompting) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "d", KeyType::ec_p256));
  KeyPtr key = parse_key(device.key_pem);
  BioPtr out(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out.get(), key.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                          const_cast<char*>("secret")),
            1);
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  write_file(dir.path() / "d.crt", device.cert_pem);
  write_file(dir.path() / "d.key", std::string(data, static_cast<std::size_t>(n)));
  auto r = load_pem_pair(dir.path() / "d.crt", dir.path() / "d.key");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("encrypted"), std::string::npos) << r.message();
}

TEST(Pkcs12, RoundTripsWithTheRightPassword) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "p12-device", KeyType::ec_p256));
  std::string p12 = make_p12(device, "hunter2");
  ASSERT_FALSE(p12.empty());
  write_file(dir.path() / "d.p12", p12);
  Identity loaded = must(load_pkcs12(dir.path() / "d.p12", "hunter2"));
  EXPECT_EQ(loaded.cert_pem, device.cert_pem);
  EXPECT_EQ(loaded.key_pem, device.key_pem);
  EXPECT_EQ(*common_name(loaded.cert_pem), "p12-device");
}

TEST(Pkcs12, EmptyPasswordRoundTrips) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "d", KeyType::ec_p256));
  write_file(dir.path() / "d.p12", make_p12(device, ""));
  Identity loaded = must(load_pkcs12(dir.path() / "d.p12", ""));
  EXPECT_EQ(loaded.cert_pem, device.cert_pem);
}

TEST(Pkcs12, WrongPasswordGivesAClearError) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "d", KeyType::ec_p256));
  write_file(dir.path() / "d.p12", make_p12(device, "right"));
  auto r = load_pkcs12(dir.path() / "d.p12", "wrong");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("wrong password"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("d.p12"), std::string::npos) << r.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(Pkcs12, FileThatIsNotPkcs12IsAClearError) {
  TempDir dir;
  write_file(dir.path() / "junk.p12", "this is not DER");
  auto r = load_pkcs12(dir.path() / "junk.p12", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("not a PKCS#12 file"), std::string::npos) << r.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(IdentityPool, LoadsTwoP12AndOnePemPairSortedByFileName) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity a = must(issue_device_identity(ca, "a", KeyType::ec_p256));
  Identity b = must(issue_device_identity(ca, "b", KeyType::rsa2048));
  Identity c = must(issue_device_identity(ca, "c", KeyType::ec_p256));
  write_file(dir.path() / "c-device.p12", make_p12(c, "pool"));
  write_file(dir.path() / "a-device.p12", make_p12(a, "pool"));
  std::string error;
  ASSERT_TRUE(write_identity(b, dir.path() / "b-device.crt", dir.path() / "b-device.key"));
  write_file(dir.path() / "ca.pem", ca.cert_pem);  // a lone CA certificate: skipped
  write_file(dir.path() / "README", "not an identity");
  write_file(dir.path() / "._a-device.p12", "macOS AppleDouble litter");

  auto pool = load_identity_pool(dir.path(), "pool");
  ASSERT_TRUE(pool.ok()) << pool.message();
  ASSERT_EQ(pool->size(), 3u);
  EXPECT_EQ(*common_name((*pool)[0].identity.cert_pem), "a");
  EXPECT_EQ(*common_name((*pool)[1].identity.cert_pem), "b");
  EXPECT_EQ(*common_name((*pool)[2].identity.cert_pem), "c");
  // Each names the file it came from, for the report.
  EXPECT_EQ((*pool)[0].file, "a-device.p12");
  EXPECT_EQ((*pool)[1].file, "b-device.crt");
  EXPECT_EQ((*pool)[2].file, "c-device.p12");
}

TEST(IdentityPool, KeyWithoutCertificateOrBadFileFailsNamingTheFile) {
  TempDir dir;
  Identity ca = must(create_test_ca("CA"));
  Identity a = must(issue_device_identity(ca, "a", KeyType::ec_p256));
  write_file(dir.path() / "orphan.key", a.key_pem);
  auto orphan = load_identity_pool(dir.path(), "");
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.message().find("orphan.key has no orphan.crt or orphan.pem"), std::string::npos) << orphan.message();

  fs::remove(dir.path() / "orphan.key");
  write_file(dir.path() / "a.p12", make_p12(a, "right"));
  auto wrong = load_identity_pool(dir.path(), "wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("a.p12"), std::string::npos) << wrong.message();
  EXPECT_NE(wrong.message().find("wrong password"), std::string::npos) << wrong.message();

  auto missing = load_identity_pool(dir.path() / "absent", "");
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(SecretFile, IsWrittenWithMode0600AndLeavesNoTemporaryFile) {
  TempDir dir;
  const fs::path path = dir.path() / "device.key";
  const mode_t old_umask = ::umask(0);  // the widest umask: the mode must not depend on it
  auto written = write_secret_file(path, "secret bytes");
  ::umask(old_umask);
  ASSERT_TRUE(written) << written.message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(dir.names(), std::vector<std::string>{"device.key"});
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "secret bytes");
}

TEST(SecretFile, ReplacesAWorldReadableFileAndEndsAt0600) {
  TempDir dir;
  const fs::path path = dir.path() / "device.key";
  write_file(path, "old");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto written = write_secret_file(path, "new");
  ASSERT_TRUE(written) << written.message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(dir.names(), std::vector<std::string>{"device.key"});
}

TEST(SecretFile, FailureIsReportedAndLeavesNothingBehind) {
  TempDir dir;
  auto absent = write_secret_file(dir.path() / "absent" / "device.key", "x");
  EXPECT_FALSE(absent);
  EXPECT_NE(absent.message().find("No such file"), std::string::npos) << absent.message();
  // A folder in the way of the rename: the temporary file must be removed again.
  fs::create_directory(dir.path() / "taken");
  fs::create_directory(dir.path() / "taken" / "inner");
  auto taken = write_secret_file(dir.path() / "taken", "x");
  EXPECT_FALSE(taken);
  EXPECT_NE(taken.message().find("rename"), std::string::npos) << taken.message();
  EXPECT_EQ(dir.names(), std::vector<std::string>{"taken"});
  EXPECT_TRUE(write_secret_file(dir.path() / "x.key", "x"));
}

// --- certificate helpers -------------------------------------------------------------------

TEST(Fingerprint, IsLowerCaseHexSha256OfTheDer) {
  EXPECT_EQ(sha256_fingerprint(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Identity ca = must(create_test_ca("CA"));
  auto der = certificate_der(ca.cert_pem);
  ASSERT_TRUE(der.ok()) << der.message();
  X509Ptr cert = parse_cert(ca.cert_pem);
  unsigned char md[32];
  unsigned int n = 0;
  ASSERT_EQ(X509_digest(cert.get(), EVP_sha256(), md, &n), 1);
  char hex[65];
  for (unsigned i = 0; i < n; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
  EXPECT_EQ(sha256_fingerprint(*der), std::string(hex));
}

TEST(CertificateHelpers, GarbagePemIsAnErrorNotACrash) {
  EXPECT_FALSE(certificate_der("").ok());
  EXPECT_FALSE(common_name("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CertificateHelpers, CountsTheCertificatesOfABundleAndRefusesADamagedOne) {
  Identity ca = must(create_test_ca("CA"));
  Identity other = must(create_test_ca("other CA"));
  EXPECT_EQ(*count_certificates(ca.cert_pem), 1u);
  EXPECT_EQ(*count_certificates(ca.cert_pem + other.cert_pem), 2u);
  EXPECT_EQ(*count_certificates("not a certificate at all\n"), 0u);
  auto damaged = count_certificates(ca.cert_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.message().find("bad PEM certificate #2"), std::string::npos) << damaged.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CertificateHelpers, AKeyMatchesOnlyItsOwnCertificate) {
  Identity ca = must(create_test_ca("CA"));
  Identity other = must(create_test_ca("other CA", KeyType::rsa2048));
  EXPECT_TRUE(key_matches_certificate(ca.cert_pem, ca.key_pem).ok());
  auto mismatch = key_matches_certificate(ca.cert_pem, other.key_pem);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.message().find("does not match the certificate"), std::string::npos) << mismatch.message();
  auto not_a_key = key_matches_certificate(ca.cert_pem, ca.cert_pem);
  ASSERT_FALSE(not_a_key.ok());
  EXPECT_NE(not_a_key.message().find("private key"), std::string::npos) << not_a_key.message();
  EXPECT_FALSE(key_matches_certificate("", ca.key_pem).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- Mdm-Signature -------------------------------------------------------------------------

class MdmSignatureTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(MdmSignatureTest, SignatureVerifiesAgainstTheCa) {
  Identity ca = must(create_test_ca("CA", GetParam()));
  Identity device = must(issue_device_identity(ca, "signer", GetParam()));
  auto header = mdm_signature(device, kBody);
  ASSERT_TRUE(header.ok()) << header.message();
  auto check = verify_mdm_signature(*header, kBody, ca.cert_pem);
  EXPECT_TRUE(check.ok()) << check.message();
  EXPECT_EQ(*check, *certificate_der(device.cert_pem));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_P(MdmSignatureTest, OneByteBodyChangeIsADigestMismatch) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", GetParam()));
  auto header = mdm_signature(device, kBody);
  ASSERT_TRUE(header.ok()) << header.message();
  std::string tampered = kBody;
  tampered[tampered.size() / 2] ^= 0x01;
  auto check = verify_mdm_signature(*header, tampered, ca.cert_pem);
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.message(), "digest mismatch (body tampered)");
  // One byte more or less, too.
  EXPECT_EQ(verify_mdm_signature(*header, kBody + "\n", ca.cert_pem).message(), "digest mismatch (body tampered)");
}

INSTANTIATE_TEST_SUITE_P(RsaAndEc, MdmSignatureTest, ::testing::Values(KeyType::rsa2048, KeyType::ec_p256),
                         [](const auto& name_info) {
                           return std::string(name_info.param == KeyType::rsa2048 ? "Rsa2048" : "EcP256");
                         });

TEST(MdmSignature, HeaderIsOneLineOfBase64) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::rsa2048));
  auto header = mdm_signature(device, std::string(4096, 'x'));  // long enough to wrap if it would
  ASSERT_TRUE(header.ok()) << header.message();
  EXPECT_EQ(header->find_first_of("\r\n "), std::string::npos);
  EXPECT_EQ(header->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
            std::string::npos);
  EXPECT_EQ(header->size() % 4, 0u);
}

TEST(MdmSignature, IsDetachedSha256SignedDataCarryingTheSignerCertificate) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  auto header = mdm_signature(device, kBody);
  ASSERT_TRUE(header.ok()) << header.message();
  std::string der = unbase64(*header);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_TRUE(cms);
  EXPECT_EQ(OBJ_obj2nid(CMS_get0_type(cms.get())), NID_pkcs7_signed);
  EXPECT_EQ(CMS_is_detached(cms.get()), 1);
  CMS_SignerInfo* si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms.get()), 0);
  X509_ALGOR* digest = nullptr;
  CMS_SignerInfo_get0_algs(si, nullptr, nullptr, &digest, nullptr);
  const ASN1_OBJECT* oid = nullptr;
  X509_ALGOR_get0(&oid, nullptr, nullptr, digest);
  EXPECT_EQ(OBJ_obj2nid(oid), NID_sha256);
  CertsPtr certs(CMS_get1_certs(cms.get()));
  ASSERT_EQ(sk_X509_num(certs.get()), 1);
  X509Ptr signer = parse_cert(device.cert_pem);
  EXPECT_EQ(X509_cmp(sk_X509_value(certs.get(), 0), signer.get()), 0);
  // Binary: the LF line ends of the body are signed as they are, not as CRLF.
  BioPtr content = source(kBody);
  EXPECT_EQ(CMS_verify(cms.get(), nullptr, nullptr, content.get(), nullptr, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY), 1);
  ERR_clear_error();
}

TEST(MdmSignature, EmptyBodyCanBeSignedAndVerified) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  auto header = mdm_signature(device, "");
  ASSERT_TRUE(header.ok()) << header.message();
  EXPECT_TRUE(verify_mdm_signature(*header, "", ca.cert_pem).ok());
  EXPECT_EQ(verify_mdm_signature(*header, "x", ca.cert_pem).message(), "digest mismatch (body tampered)");
}

TEST(MdmSignature, SignerFromAnotherCaIsNotTrusted) {
  Identity ca = must(create_test_ca("CA"));
  Identity other_ca = must(create_test_ca("Other CA"));
  Identity stranger = must(issue_device_identity(other_ca, "stranger", KeyType::ec_p256));
  auto header = mdm_signature(stranger, kBody);
  ASSERT_TRUE(header.ok()) << header.message();
  auto check = verify_mdm_signature(*header, kBody, ca.cert_pem);
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.message().rfind("signer not trusted: ", 0), 0u) << check.message();
  EXPECT_NE(check.message().find("unable to get local issuer certificate"), std::string::npos) << check.message();
  // Either CA of a bundle is an anchor.
  EXPECT_TRUE(verify_mdm_signature(*header, kBody, ca.cert_pem + other_ca.cert_pem).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(ClientCertificate, ChainsOnlyToTheCasGivenAndOnlyForTlsClientUse) {
  Identity ca = must(create_test_ca("CA"));
  Identity other_ca = must(create_test_ca("Other CA"));
  Identity device = must(issue_device_identity(other_ca, "device", KeyType::ec_p256));
  auto device_der = certificate_der(device.cert_pem);
  ASSERT_TRUE(device_der.ok()) << device_der.message();
  const std::string& der = *device_der;
  EXPECT_TRUE(verify_client_certificate(der, other_ca.cert_pem).ok());
  EXPECT_TRUE(verify_client_certificate(der, ca.cert_pem + other_ca.cert_pem).ok());
  auto refused = verify_client_certificate(der, ca.cert_pem);
  EXPECT_EQ(refused.message().rfind("signer not trusted: ", 0), 0u) << refused.message();
  Identity server = must(issue_server_identity(ca, {"mdm.example.test"}));
  auto server_der = certificate_der(server.cert_pem);
  ASSERT_TRUE(server_der.ok()) << server_der.message();
  EXPECT_FALSE(verify_client_certificate(*server_der, ca.cert_pem).ok());
  EXPECT_EQ(verify_client_certificate(der.substr(0, der.size() - 1), other_ca.cert_pem).message(),
            "not a DER certificate");
  EXPECT_EQ(verify_client_certificate("", other_ca.cert_pem).message(), "not a DER certificate");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(MdmSignature, ServerIdentityIsNotADeviceSigner) {
  Identity ca = must(create_test_ca("CA"));
  Identity server = must(issue_server_identity(ca, {"mdm.example.test"}));
  auto header = mdm_signature(server, kBody);
  ASSERT_TRUE(header.ok()) << header.message();
  auto check = verify_mdm_signature(*header, kBody, ca.cert_pem);
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.message(), "signer not trusted: unsuitable certificate purpose");
}

TEST(MdmSignature, GarbageHeadersGetClearReasonsAndNoCrash) {
  Identity ca = must(create_test_ca("CA"));
  auto reason = [&](std::string_view header) {
    auto check = verify_mdm_signature(header, kBody, ca.cert_pem);
    EXPECT_FALSE(check.ok());
    return check.message();
  };
  EXPECT_EQ(reason(""), "empty header");
  EXPECT_EQ(reason(" \t "), "empty header");
  EXPECT_EQ(reason("not base64!"), "not base64: byte 0x20 at offset 3");
  EXPECT_EQ(reason("QUJD\nREVG"), "not base64: byte 0x0a at offset 4");
  EXPECT_EQ(reason("QUJDR"), "not base64: truncated (length leaves a lone character)");
  EXPECT_EQ(reason("QUJDRA="), "not base64: bad padding");
  EXPECT_EQ(reason("QQ=="), reason("QQ"));  // padding is optional; both decode to "A"
  EXPECT_EQ(reason("aGVsbG8gd29ybGQ=").rfind("not CMS: ", 0), 0u);
  EXPECT_EQ(reason(std::string(kMaxSignatureHeaderBytes + 1, 'A')), "header too large (65537 bytes, limit 65536)");
  // Every proper prefix of a real header is refused, and every single-byte corruption of its
  // DER is handled: refused with a reason, or accepted when the byte is one nobody signs (the
  // SignedData version, say, which OpenSSL does not check either). Under ASan this also guards
  // a leak: with a corrupted digestAlgorithms OID, OpenSSL 3.0's CMS_verify loses a BIO.
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  std::string der = unbase64(*mdm_signature(device, kBody));
  ASSERT_TRUE(verify_mdm_signature(base64(der), kBody, ca.cert_pem).ok());
  for (std::size_t n = 0; n < der.size(); n += 5) {
    auto check = verify_mdm_signature(base64(der.substr(0, n)), kBody, ca.cert_pem);
    EXPECT_FALSE(check.ok()) << "prefix " << n;
    EXPECT_FALSE(check.message().empty());
  }
  int refused = 0;
  for (std::size_t i = 0; i < der.size(); ++i) {
    std::string bad = der;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    auto check = verify_mdm_signature(base64(bad), kBody, ca.cert_pem);
    // A refusal always says why.
    if (!check.ok()) {
      EXPECT_FALSE(check.error().message.empty()) << "byte " << i;
    }
    refused += check.ok() ? 0 : 1;
  }
  EXPECT_GT(refused, static_cast<int>(der.size() * 9 / 10));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(MdmSignature, SurroundingBlanksAreIgnoredAndTrailingBytesRefused) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  auto header = mdm_signature(device, kBody);
  ASSERT_TRUE(header.ok());
  EXPECT_TRUE(verify_mdm_signature(" " + *header + "\t", kBody, ca.cert_pem).ok());
  std::string der = unbase64(*header) + std::string("\0\0\0", 3);
  auto check = verify_mdm_signature(base64(der), kBody, ca.cert_pem);
  EXPECT_EQ(check.message(), "not CMS: 3 bytes after the DER structure");
}

TEST(MdmSignature, SignatureThatEmbedsItsContentIsNotDetached) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  X509Ptr cert = parse_cert(device.cert_pem);
  KeyPtr key = parse_key(device.key_pem);
  BioPtr content = source(kBody);
  CmsPtr cms(CMS_sign(cert.get(), key.get(), nullptr, content.get(), CMS_BINARY));
  ASSERT_TRUE(cms);
  unsigned char* der = nullptr;
  int n = i2d_CMS_ContentInfo(cms.get(), &der);
  std::string bytes(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  auto check = verify_mdm_signature(base64(bytes), kBody, ca.cert_pem);
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.message(), "not detached (the signature carries its own content)");
}

TEST(MdmSignature, SigningWithAMismatchedKeyIsRefused) {
  Identity ca = must(create_test_ca("CA"));
  Identity a = must(issue_device_identity(ca, "a", KeyType::ec_p256));
  Identity b = must(issue_device_identity(ca, "b", KeyType::ec_p256));
  a.key_pem = b.key_pem;
  auto header = mdm_signature(a, kBody);
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.message().find("does not match"), std::string::npos) << header.message();
  EXPECT_FALSE(mdm_signature(Identity{}, kBody).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(MdmSignature, NoTrustedCaMeansNotTrusted) {
  Identity ca = must(create_test_ca("CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  auto header = mdm_signature(device, kBody);
  ASSERT_TRUE(header.ok());
  auto check = verify_mdm_signature(*header, kBody, "");
  EXPECT_EQ(check.message(), "signer not trusted: no trusted CA certificate given");
}

// A good signature's signer is kept (signature.cpp): it must come back only for the same
// header, the same body and the same anchors, and every other check still says why it fails.
TEST(MdmSignature, AKeptSignerComesBackOnlyForTheSameHeaderBodyAndAnchors) {
  Identity ca = must(create_test_ca("CA"));
  Identity other_ca = must(create_test_ca("Other CA"));
  Identity device = must(issue_device_identity(ca, "signer", KeyType::ec_p256));
  const std::string header = *mdm_signature(device, kBody);
  const std::string der = *certificate_der(device.cert_pem);
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(verify_mdm_signature(header, kBody, ca.cert_pem).value(), der);
    EXPECT_EQ(verify_mdm_signature(" " + header + "\t", kBody, ca.cert_pem).value(), der);
    EXPECT_EQ(verify_mdm_signature(header, kBody + " ", ca.cert_pem).message(), "digest mismatch (body tampered)");
    EXPECT_EQ(verify_mdm_signature(header, "", ca.cert_pem).message(), "digest mismatch (body tampered)");
    auto stranger = verify_mdm_signature(header, kBody, other_ca.cert_pem);
    EXPECT_EQ(stranger.message().rfind("signer not trusted: ", 0), 0u) << stranger.message();
    EXPECT_EQ(verify_mdm_signature(header, kBody, "").message(), "signer not trusted: no trusted CA certificate given");
    const std::string cut = header.substr(0, header.size() - 4);  // still base64, no longer a whole DER
    EXPECT_EQ(verify_mdm_signature(cut, kBody, ca.cert_pem).message().rfind("not CMS: ", 0), 0u);
  }
  // A second signature by another device over the same body is its own.
  Identity second = must(issue_device_identity(ca, "second", KeyType::ec_p256));
  EXPECT_EQ(verify_mdm_signature(*mdm_signature(second, kBody), kBody, ca.cert_pem).value(),
            *certificate_der(second.cert_pem));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// A chain that held is kept too, for its purpose only: a server identity may certify a file,
// never sign as a device, whichever is checked first.
TEST(MdmSignature, AKeptChainHoldsOnlyForItsPurpose) {
  Identity ca = must(create_test_ca("CA"));
  Identity server = must(issue_server_identity(ca, {"mdm.example.test"}));
  for (int round = 0; round < 2; ++round) {
    EXPECT_TRUE(verify_detached(*sign_detached(server, kBody), kBody, ca.cert_pem).ok());
    EXPECT_EQ(verify_mdm_signature(*mdm_signature(server, kBody), kBody, ca.cert_pem).message(),
              "signer not trusted: unsuitable certificate purpose");
    EXPECT_FALSE(verify_client_certificate(*certificate_der(server.cert_pem), ca.cert_pem).ok());
  }
  Identity device = must(issue_device_identity(ca, "device", KeyType::ec_p256));
  for (int round = 0; round < 2; ++round) {
    EXPECT_TRUE(verify_client_certificate(*certificate_der(device.cert_pem), ca.cert_pem).ok());
    EXPECT_TRUE(verify_mdm_signature(*mdm_signature(device, kBody + std::to_string(round)),
                                     kBody + std::to_string(round), ca.cert_pem)
                    .ok());
  }
}

// What a good signature's check depends on besides its bytes, body and anchors is the time:
// once its signer expires, the kept signer is not given again.
TEST(MdmSignature, AKeptSignerIsCheckedAgainOnceItsCertificateExpires) {
  using std::chrono::seconds;
  Identity ca = must(create_test_ca("CA"));
  // Valid for two more seconds.
  Identity device =
      must(issue_device_identity(ca, "brief", KeyType::ec_p256, Validity{-hours(1), hours(1) + seconds(2)}));
  const std::string header = *mdm_signature(device, kBody);
  ASSERT_TRUE(verify_mdm_signature(header, kBody, ca.cert_pem).ok());
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(verify_mdm_signature(header, kBody, ca.cert_pem).message(), "signer certificate expired");
  EXPECT_EQ(verify_mdm_signature(header, kBody, ca.cert_pem).message(), "signer certificate expired");
}

// Past the bounds on kept anchors (16 texts), signatures (1,024 per anchors) and chains (256),
// everything is checked as it was.
TEST(MdmSignature, ChecksHoldPastTheBoundsOnWhatIsKept) {
  std::vector<Identity> cas;
  std::vector<std::string> headers;
  std::vector<std::string> ders;
  for (int i = 0; i < 20; ++i) {
    cas.push_back(must(create_test_ca("CA " + std::to_string(i))));
    Identity device = must(issue_device_identity(cas.back(), "signer", KeyType::ec_p256));
    headers.push_back(*mdm_signature(device, kBody));
    ders.push_back(*certificate_der(device.cert_pem));
  }
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < cas.size(); ++i) {
      EXPECT_EQ(verify_mdm_signature(headers[i], kBody, cas[i].cert_pem).value(), ders[i]) << i;
      const auto& other = cas[(i + 1) % cas.size()];
      EXPECT_FALSE(verify_mdm_signature(headers[i], kBody, other.cert_pem).ok()) << i;
    }
  }
  Identity device = must(issue_device_identity(cas[0], "many", KeyType::ec_p256));
  const std::string der = *certificate_der(device.cert_pem);
  for (int n = 0; n < 1030; ++n) {
    const std::string body = kBody + std::to_string(n);
    const std::string header = *mdm_signature(device, body);
    EXPECT_EQ(verify_mdm_signature(header, body, cas[0].cert_pem).value(), der) << n;
    EXPECT_FALSE(verify_mdm_signature(header, kBody, cas[0].cert_pem).ok()) << n;
  }
  EXPECT_EQ(verify_mdm_signature(headers[0], kBody, cas[0].cert_pem).value(), ders[0]);
  std::vector<Identity> devices;
  for (int n = 0; n < 260; ++n) {
    devices.push_back(must(issue_device_identity(cas[1], "device " + std::to_string(n), KeyType::ec_p256)));
    const std::string device_der = *certificate_der(devices.back().cert_pem);
    EXPECT_TRUE(verify_client_certificate(device_der, cas[1].cert_pem).ok()) << n;
    EXPECT_FALSE(verify_client_certificate(device_der, cas[2].cert_pem).ok()) << n;
  }
  EXPECT_TRUE(verify_client_certificate(*certificate_der(devices[0].cert_pem), cas[1].cert_pem).ok());
}

// --- Detached signatures over files ---------------------------------------------------------

// A signature's code, for the tests that tell the reasons apart.
SignatureError kind_of(const Result<Signer>& checked) {
  return static_cast<SignatureError>(checked.error().code.value());
}

TEST(DetachedSignature, VerifiesAgainstTheCaAndNamesTheSigner) {
  Identity ca = must(create_test_ca("Certifiers CA"));
  // A certifier's certificate need not be for TLS: any purpose is fine.
  Identity certifier = must(issue_server_identity(ca, {"certifier.example"}));
  const std::string content = "{\n  \"a\": 1\n}\n";
  auto signature = sign_detached(certifier, content);
  ASSERT_TRUE(signature.ok()) << signature.message();
  auto checked = verify_detached(*signature, content, ca.cert_pem);
  ASSERT_TRUE(checked.ok()) << checked.message();
  EXPECT_EQ(checked->subject, "CN=certifier.example");
  EXPECT_EQ(checked->subject, *subject_name(certifier.cert_pem));
  EXPECT_EQ(checked->cert_der, *certificate_der(certifier.cert_pem));
  // DER, detached, binary: OpenSSL's own verification with the content beside it agrees.
  const auto* p = reinterpret_cast<const unsigned char*>(signature->data());
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(signature->size())));
  ASSERT_TRUE(cms);
  EXPECT_EQ(CMS_is_detached(cms.get()), 1);
  BioPtr data = source(content);
  EXPECT_EQ(CMS_verify(cms.get(), nullptr, nullptr, data.get(), nullptr, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY), 1);
  ERR_clear_error();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(DetachedSignature, EachWayItFailsHasItsOwnCode) {
  Identity ca = must(create_test_ca("CA"));
  Identity other_ca = must(create_test_ca("Other CA"));
  Identity certifier = must(issue_device_identity(ca, "certifier", KeyType::ec_p256));
  Identity stranger = must(issue_device_identity(other_ca, "stranger", KeyType::rsa2048));
  const std::string content = "signed bytes\n";
  const std::string signature = *sign_detached(certifier, content);

  auto changed = verify_detached(signature, content + " ", ca.cert_pem);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(kind_of(changed), SignatureError::content_changed) << changed.message();
  EXPECT_EQ(changed.message(), "content changed: digest mismatch (body tampered)");

  auto foreign = verify_detached(*sign_detached(stranger, content), content, ca.cert_pem);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(kind_of(foreign), SignatureError::untrusted) << foreign.message();
  EXPECT_NE(foreign.message().find("unable to get local issuer certificate"), std::string::npos) << foreign.message();

  EXPECT_EQ(kind_of(verify_detached("", content, ca.cert_pem)), SignatureError::malformed);
  EXPECT_EQ(kind_of(verify_detached("garbage", content, ca.cert_pem)), SignatureError::malformed);
  EXPECT_EQ(kind_of(verify_detached(std::string(kMaxSignatureBytes + 1, '0'), content, ca.cert_pem)),
            SignatureError::malformed);
  // The last bytes of the DER are the signature value itself.
  std::string forged = signature;
  forged[forged.size() - 3] = static_cast<char>(forged[forged.size() - 3] ^ 0x01);
  auto bad = verify_detached(forged, content, ca.cert_pem);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(kind_of(bad), SignatureError::bad_signature) << bad.message();
  // An attached signature is not one over a file beside it.
  auto attached = verify_detached(*sign_profile(certifier, content), content, ca.cert_pem);
  EXPECT_EQ(kind_of(attached), SignatureError::malformed) << attached.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(DetachedSignature, AnExpiredCertifierIsNotTrusted) {
  Identity ca = must(create_test_ca("CA"));
  Identity expired =
      must(issue_device_identity(ca, "old certifier", KeyType::ec_p256, Validity{-hours(48), hours(24)}));
  const std::string content = "x";
  auto checked = verify_detached(*sign_detached(expired, content), content, ca.cert_pem);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(kind_of(checked), SignatureError::untrusted);
  EXPECT_EQ(checked.message(), "signer not trusted: signer certificate expired");
}

}  // namespace
}  // namespace mdmc::pki
