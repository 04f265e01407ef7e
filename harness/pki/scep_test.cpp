#include "harness/pki/scep.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "harness/base/bytes.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc::pki::scep {
namespace {

using ::testing::HasSubstr;

// Wire captures of Debian's scepclient and scepserver 2.1.0 (docs/scep.md).
std::string fixture(const std::string& name) {
  std::ifstream in(std::string(MDMC_SOURCE_DIR) + "/testdata/scep/" + name, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One RSA CA for the whole binary: RSA key generation is the slow part.
const Identity& rsa_ca() {
  static const Identity ca = create_test_ca("scep test CA", KeyType::rsa2048).value();
  return ca;
}

struct Requester {
  std::string key_pem;
  std::string csr_der;
  Identity signer;
  std::string transaction_id;
  std::string nonce = new_nonce();
};

Requester requester(const CsrSpec& spec, const std::string& key_type = "RSA", int bits = 1024) {
  Requester r;
  r.key_pem = generate_key(key_type, bits).value();
  r.csr_der = make_csr(spec, r.key_pem).value();
  r.signer = Identity{make_signer_certificate(r.csr_der, r.key_pem).value(), r.key_pem, {}};
  r.transaction_id = transaction_id_for(r.key_pem).value();
  return r;
}

TEST(ScepCapabilities, ScepserversAnswerPicksAesSha256AndPost) {
  auto caps = parse_capabilities("Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation");
  ASSERT_TRUE(caps.ok()) << caps.message();
  EXPECT_EQ(caps->keywords.size(), 7u);
  EXPECT_EQ(caps->cipher(), Cipher::aes_128_cbc);
  EXPECT_EQ(caps->digest(), Digest::sha256);
  EXPECT_TRUE(caps->use_post());
  EXPECT_TRUE(caps->renewal);
}

TEST(ScepCapabilities, CrlfAndCaseAreTolerated) {
  auto caps = parse_capabilities("aes\r\nsha-256\r\n");
  ASSERT_TRUE(caps.ok()) << caps.message();
  EXPECT_EQ(caps->cipher(), Cipher::aes_128_cbc);
  EXPECT_EQ(caps->digest(), Digest::sha256);
  EXPECT_FALSE(caps->use_post());
}

TEST(ScepCapabilities, NoneMeansTheRfcFallback) {
  auto caps = parse_capabilities("");
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(caps->cipher(), Cipher::des_ede3_cbc);
  EXPECT_EQ(caps->digest(), Digest::sha1);
  EXPECT_FALSE(caps->use_post());
  auto implied = parse_capabilities("SCEPStandard\n");
  ASSERT_TRUE(implied.ok());
  EXPECT_EQ(implied->cipher(), Cipher::aes_128_cbc);
  EXPECT_TRUE(implied->use_post());
}

TEST(ScepCapabilities, HtmlAndOversizedBodiesAreNotCapabilities) {
  auto html = parse_capabilities("<html><body>Welcome</body></html>");
  ASSERT_FALSE(html.ok());
  EXPECT_THAT(html.error().message, HasSubstr("not capability keywords"));
  EXPECT_FALSE(parse_capabilities(std::string(kMaxCapabilitiesBytes + 1, 'A')).ok());
}

TEST(ScepCaCertificates, ScepserversSingleDerCertificate) {
  auto ca = parse_ca_certificates(fixture("getcacert-single.der"));
  ASSERT_TRUE(ca.ok()) << ca.message();
  EXPECT_FALSE(ca->ra);
  EXPECT_EQ(ca->ca_der, fixture("getcacert-single.der"));
  EXPECT_EQ(ca->recipient_der, ca->ca_der);
  EXPECT_EQ(ca->verifier_ders, std::vector<std::string>{ca->ca_der});
  EXPECT_EQ(count_certificates(ca->pem()).value_or(0), 1u);
}

TEST(ScepCaCertificates, PemIsSniffed) {
  auto ca = parse_ca_certificates(fixture("ca.pem"));
  ASSERT_TRUE(ca.ok()) << ca.message();
  EXPECT_EQ(ca->ca_der, fixture("getcacert-single.der"));
}

TEST(ScepCaCertificates, DegeneratePkcs7WithRaAndCaSortsOutTheirRoles) {
  Identity ra = issue_device_identity(rsa_ca(), "scep test RA", KeyType::rsa2048).value();
  std::string ca_der = certificate_der(rsa_ca().cert_pem).value();
  std::string ra_der = certificate_der(ra.cert_pem).value();
  // The RA first or last: the roles come from the certificates, not their order.
  for (const auto& order : {std::vector{ra_der, ca_der}, std::vector{ca_der, ra_der}}) {
    auto ca = parse_ca_certificates(degenerate_pkcs7(order).value());
    ASSERT_TRUE(ca.ok()) << ca.message();
    EXPECT_TRUE(ca->ra);
    EXPECT_EQ(ca->ca_der, ca_der);
    EXPECT_EQ(ca->recipient_der, ra_der);
    EXPECT_EQ(ca->verifier_ders, std::vector<std::string>{ra_der});
  }
}

TEST(ScepCaCertificates, GarbageIsRefused) {
  for (std::string body : {std::string("garbage"), std::string("\x30\x03\x02\x01\x01", 5), std::string()}) {
    auto ca = parse_ca_certificates(body);
    EXPECT_FALSE(ca.ok()) << base::hex_encode(body);
  }
}

TEST(ScepCaCertificates, FingerprintByLength) {
  auto ca = parse_ca_certificates(fixture("getcacert-single.der")).value();
  std::string der = ca.ca_der;
  std::string sha256 = base::sha256_hex(der);
  std::string raw;
  for (std::size_t i = 0; i < sha256.size(); i += 2)
    raw += static_cast<char>(std::stoi(sha256.substr(i, 2), nullptr, 16));
  EXPECT_TRUE(check_ca_fingerprint(ca, raw).ok());
  raw[0] = static_cast<char>(raw[0] ^ 1);
  auto wrong = check_ca_fingerprint(ca, raw);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message, HasSubstr("is not the CA's"));
  EXPECT_FALSE(check_ca_fingerprint(ca, std::string(20, '\0')).ok());  // SHA-1 length, wrong value
  EXPECT_FALSE(check_ca_fingerprint(ca, std::string(7, '\0')).ok());
}

TEST(ScepCertRep, ScepserversSuccessVerifiesAndDecryptsFromDesCbc) {
  std::string ca_der = fixture("getcacert-single.der");
  auto rep = parse_cert_rep(fixture("certrep-success.der"), {ca_der});
  ASSERT_TRUE(rep.ok()) << rep.message();
  EXPECT_EQ(rep->status, PkiStatus::success);
  EXPECT_EQ(rep->recipient_nonce.size(), 16u);
  EXPECT_EQ(rep->signer_der, ca_der);
  Identity requester{fixture("client-signer.pem"), fixture("client-key.pem"), {}};
  std::string cipher;
  auto certs = decrypt_issued_certificates(rep->envelope_der, requester, &cipher);
  ASSERT_TRUE(certs.ok()) << certs.message();
  EXPECT_EQ(cipher, "des-cbc");  // why the legacy provider is loaded
  ASSERT_EQ(certs->size(), 1u);
}

TEST(ScepCertRep, ScepserversFailureNamesBadRequest) {
  auto rep = parse_cert_rep(fixture("certrep-failure-badRequest.der"), {fixture("getcacert-single.der")});
  ASSERT_TRUE(rep.ok()) << rep.message();
  EXPECT_EQ(rep->status, PkiStatus::failure);
  ASSERT_TRUE(rep->fail_info.has_value());
  EXPECT_EQ(fail_info_name(static_cast<FailInfo>(*rep->fail_info)), "badRequest");
}

TEST(ScepCertRep, SignedByAnotherCaIsRefused) {
  std::string other = certificate_der(rsa_ca().cert_pem).value();
  auto rep = parse_cert_rep(fixture("certrep-success.der"), {other});
  ASSERT_FALSE(rep.ok());
  EXPECT_THAT(rep.error().message, HasSubstr("not the CA's or RA's"));
}

TEST(ScepCertRep, TamperedBytesDoNotVerify) {
  std::string der = fixture("certrep-success.der");
  der.back() = static_cast<char>(der.back() ^ 0x01);  // the signature's last byte
  EXPECT_FALSE(parse_cert_rep(der, {fixture("getcacert-single.der")}).ok());
}

TEST(ScepMessages, ScepclientsPkcsReqIsReadable) {
  // Encrypted to scepserver's CA, whose key the capture does not hold: the envelope stops it.
  auto request = parse_pki_request(fixture("pkcsreq-scepclient-2.1.0.der"), rsa_ca());
  ASSERT_FALSE(request.ok());
  EXPECT_THAT(request.error().message, HasSubstr("decrypting"));
}

TEST(ScepMessages, CsrCarriesSubjectChallengeUsageAndAltNames) {
  CsrSpec spec;
  spec.subject = {
      {{"C", "US"}}, {{"O", "Example"}, {"OU", "Macs"}}, {{"CN", "mac-1"}}, {{"0.9.2342.19200300.100.1.1", "uid-7"}}};
  spec.challenge = "s3cret";
  spec.key_usage = 5;
  spec.subject_alt_names = {{"dNSName", {"mac-1.example"}}, {"ntPrincipalName", {"mac@example"}}};
  Requester r = requester(spec);
  auto subject = csr_subject(r.csr_der);
  ASSERT_TRUE(subject.ok());
  EXPECT_EQ(*subject, "UID=uid-7,CN=mac-1,O=Example+OU=Macs,C=US");
  // In the DER: extensionRequest (1.2.840.113549.1.9.14), keyUsage (2.5.29.15) with
  // digitalSignature and keyEncipherment (BIT STRING 05 a0), subjectAltName (2.5.29.17).
  const std::string der = r.csr_der;
  EXPECT_NE(der.find("\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e"), std::string::npos);
  EXPECT_NE(der.find("\x06\x03\x55\x1d\x0f"), std::string::npos);
  EXPECT_NE(der.find("\x03\x02\x05\xa0"), std::string::npos);
  EXPECT_NE(der.find("\x06\x03\x55\x1d\x11"), std::string::npos);
  EXPECT_NE(der.find("mac-1.example"), std::string::npos);
  auto parsed = parse_pki_request(
      build_pkcs_req(r.csr_der, r.signer, certificate_der(rsa_ca().cert_pem).value(), r.transaction_id, r.nonce, {})
          .value(),
      rsa_ca());
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ(parsed->challenge, "s3cret");
  EXPECT_EQ(parsed->cipher, "aes-128-cbc");
  EXPECT_EQ(parsed->digest, "sha256");
  EXPECT_EQ(parsed->transaction_id, r.transaction_id);
  EXPECT_EQ(parsed->sender_nonce, r.nonce);
  EXPECT_FALSE(make_csr({.subject = {{{"NoSuchName", "x"}}}}, r.key_pem).ok());
  EXPECT_FALSE(make_csr({.subject = {}, .subject_alt_names = {{"x400Address", {"x"}}}}, r.key_pem).ok());
}

// PKCSReq → CertRep SUCCESS → the issued certificate, both sides here.
void round_trip(const std::string& key_type, int bits, Envelope envelope) {
  Name subject{{{"O", "Example"}}, {{"CN", "device-" + key_type}}};
  Requester r = requester({.subject = subject, .challenge = "pw"}, key_type, bits);
  std::string ca_der = certificate_der(rsa_ca().cert_pem).value();
  auto request = parse_pki_request(
      build_pkcs_req(r.csr_der, r.signer, ca_der, r.transaction_id, r.nonce, envelope).value(), rsa_ca());
  ASSERT_TRUE(request.ok()) << request.message();
  EXPECT_EQ(request->cipher, cipher_name(envelope.cipher));
  EXPECT_EQ(request->digest, digest_name(envelope.digest));
  std::string issued = issue_certificate(rsa_ca(), request->csr_der, {}).value();
  auto reply = build_cert_rep(*request, {.certificates_der = {issued, ca_der}, .cipher = envelope.cipher}, rsa_ca());
  ASSERT_TRUE(reply.ok()) << reply.message();
  auto rep = parse_cert_rep(*reply, {ca_der});
  ASSERT_TRUE(rep.ok()) << rep.message();
  EXPECT_EQ(rep->status, PkiStatus::success);
  EXPECT_EQ(rep->recipient_nonce, r.nonce);
  EXPECT_EQ(rep->transaction_id, r.transaction_id);
  auto certs = decrypt_issued_certificates(rep->envelope_der, r.signer);
  ASSERT_TRUE(certs.ok()) << certs.message();
  auto pem = check_issued_certificate(*certs, {r.key_pem, subject, rsa_ca().cert_pem});
  ASSERT_TRUE(pem.ok()) << pem.message();
  EXPECT_EQ(common_name(*pem).value_or(""), "device-" + key_type);
}

TEST(ScepMessages, RoundTripRsaAesSha256) { round_trip("RSA", 1024, {}); }
TEST(ScepMessages, RoundTripRsaDes3Sha1) { round_trip("RSA", 1024, {Cipher::des_ede3_cbc, Digest::sha1}); }
// Our extension: an EC requester, answered by key agreement.
TEST(ScepMessages, RoundTripEcByKeyAgreement) { round_trip("ECSECPrimeRandom", 256, {}); }

TEST(ScepMessages, CertPollCarriesIssuerAndSubject) {
  Requester r = requester({.subject = {{{"CN", "polling-mac"}}}});
  std::string ca_der = certificate_der(rsa_ca().cert_pem).value();
  auto poll = build_cert_poll(ca_der, r.csr_der, r.signer, ca_der, r.transaction_id, new_nonce(), {});
  ASSERT_TRUE(poll.ok()) << poll.message();
  auto request = parse_pki_request(*poll, rsa_ca());
  ASSERT_TRUE(request.ok()) << request.message();
  EXPECT_EQ(request->type, MessageType::cert_poll);
  EXPECT_EQ(request->subject, "CN=polling-mac");
  EXPECT_EQ(request->transaction_id, r.transaction_id);
  auto pending = parse_cert_rep(build_cert_rep(*request, {.status = PkiStatus::pending}, rsa_ca()).value(), {ca_der});
  ASSERT_TRUE(pending.ok()) << pending.message();
  EXPECT_EQ(pending->status, PkiStatus::pending);
}

TEST(ScepMessages, FailureCarriesFailInfoAndText) {
  Requester r = requester({.subject = {{{"CN", "refused-mac"}}}});
  std::string ca_der = certificate_der(rsa_ca().cert_pem).value();
  auto request =
      parse_pki_request(build_pkcs_req(r.csr_der, r.signer, ca_der, r.transaction_id, r.nonce, {}).value(), rsa_ca());
  ASSERT_TRUE(request.ok());
  auto rep = parse_cert_rep(
      build_cert_rep(*request, {.status = PkiStatus::failure, .fail_info = 1, .fail_info_text = "digest mismatch"},
                     rsa_ca())
          .value(),
      {ca_der});
  ASSERT_TRUE(rep.ok()) << rep.message();
  EXPECT_EQ(rep->fail_info, 1);
  EXPECT_EQ(rep->fail_info_text, "digest mismatch");
}

TEST(ScepIssued, WrongSubjectExpiredAndForeignAreRefused) {
  Name subject{{{"CN", "right-mac"}}};
  Requester r = requester({.subject = subject});
  auto expect_refused = [&](const std::string& issued_der, const std::string& words) {
    auto checked = check_issued_certificate({issued_der}, {r.key_pem, subject, rsa_ca().cert_pem});
    ASSERT_FALSE(checked.ok());
    EXPECT_THAT(checked.error().message, HasSubstr(words));
  };
  expect_refused(issue_certificate(rsa_ca(), r.csr_der, {}, {{{"CN", "other-mac"}}}).value(), "lacks CN=right-mac");
  expect_refused(issue_certificate(rsa_ca(), r.csr_der, {std::chrono::hours(-48), std::chrono::hours(24)}).value(),
                 "expired on");
  Identity other = create_test_ca("other CA", KeyType::ec_p256).value();
  expect_refused(issue_certificate(other, r.csr_der, {}).value(), "does not chain to the CA");
  Requester someone_else = requester({.subject = subject});
  expect_refused(issue_certificate(rsa_ca(), someone_else.csr_der, {}).value(), "for our key");
}

TEST(ScepKeys, UnsupportedTypesAndSizesAreRefused) {
  EXPECT_FALSE(generate_key("DSA", 2048).ok());
  EXPECT_FALSE(generate_key("RSA", 100).ok());
  EXPECT_FALSE(generate_key("ECSECPrimeRandom", 1024).ok());
}

}  // namespace
}  // namespace mdmc::pki::scep
