#pragma once
// SCEP's messages (RFC 8894) without any I/O: what a client sends (PKCSReq, CertPoll), what it
// reads back (GetCACaps, GetCACert, CertRep), and, for test servers, the other side (reading a
// PKCSReq or CertPoll, answering SUCCESS, PENDING or FAILURE). The HTTP conversation is
// harness/enroll/scep_client.cpp's. Every byte a server sends may be hostile: parsing ends in a
// value or an Error, never a crash. OpenSSL stays out of this header: DER and PEM as strings.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/pki/pki.hpp"

namespace mdmc::pki::scep {

// messageType (2.16.840.1.113733.1.9.2), as PrintableString decimal on the wire.
enum class MessageType { cert_rep = 3, renewal_req = 17, pkcs_req = 19, cert_poll = 20, get_cert = 21, get_crl = 22 };
// pkiStatus (…9.3).
enum class PkiStatus { success = 0, failure = 2, pending = 3 };
// failInfo (…9.4): RFC 8894 section 3.2.1.4.
enum class FailInfo { bad_alg = 0, bad_message_check = 1, bad_request = 2, bad_time = 3, bad_cert_id = 4 };
// "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId".
std::string_view fail_info_name(FailInfo info);

// The content cipher of a pkcsPKIEnvelope. des_cbc is what Debian's scepserver answers with; a
// client never asks for it, but reads it (with OpenSSL's legacy provider loaded).
enum class Cipher { aes_128_cbc, des_ede3_cbc, des_cbc };
enum class Digest { sha256, sha1 };
// OpenSSL's names: "aes-128-cbc", "des-ede3-cbc", "des-cbc"; "sha256", "sha1".
std::string_view cipher_name(Cipher cipher);
std::string_view digest_name(Digest digest);

// Loads OpenSSL's legacy provider beside the default one, once per process: single DES, which
// micromdm's scepserver encrypts its CertRep with, lives only there (docs/scep.md).
void load_legacy_provider();

// GetCACaps' answer: keywords one a line (LF or CRLF, last line maybe unterminated), matched
// case-insensitively.
struct Capabilities {
  std::vector<std::string> keywords;  // as the server spelled them
  bool aes = false;                   // AES
  bool des3 = false;                  // DES3
  bool sha256 = false;                // SHA-256
  bool sha1 = false;                  // SHA-1
  bool post = false;                  // POSTPKIOperation
  bool scep_standard = false;         // SCEPStandard: AES, SHA-256 and POST all implied
  bool renewal = false;               // Renewal
  // What a client picks: AES-128-CBC and SHA-256 when offered (or implied by SCEPStandard),
  // otherwise the RFC's fallback DES3 and SHA-1; POST when POSTPKIOperation or SCEPStandard.
  Cipher cipher() const;
  Digest digest() const;
  bool use_post() const;
};
inline constexpr std::size_t kMaxCapabilitiesBytes = 4096;
// An empty body is no capabilities (RFC 8894: a server may answer none). A body over
// kMaxCapabilitiesBytes, or with a line that is not a keyword (letters, digits, '-', '_', '.'),
// is not a GetCACaps answer: an HTML page or garbage.
Result<Capabilities> parse_capabilities(std::string_view body);

// GetCACert's answer, sorted out: which certificate a request is encrypted to, which may sign the
// answer, and the CA. With one certificate all three are it; with a degenerate PKCS#7 of an RA
// and its CA, the RA certificates are the recipient (keyEncipherment) and the verifiers
// (digitalSignature), the CA the one that is a CA.
struct CaCertificates {
  std::string ca_der;                      // the CA: CAFingerprint is of it, the issued certificate chains to it
  std::string recipient_der;               // the PKCSReq's envelope is encrypted to it
  std::vector<std::string> verifier_ders;  // a CertRep must be signed by one of these
  std::vector<std::string> all_der;        // every certificate GetCACert gave, in its order
  bool ra = false;                         // a registration authority answers for the CA
  std::string pem() const;                 // every certificate, PEM, in order
};
inline constexpr std::size_t kMaxCaCertificates = 16;
// `body` may be one DER certificate, a degenerate PKCS#7 SignedData (certificates only), or PEM
// (one or more CERTIFICATE blocks, or a PKCS7 block); the bytes decide, not the content type.
Result<CaCertificates> parse_ca_certificates(std::string_view body);
// Whether `fingerprint` (raw bytes: 16 MD5, 20 SHA-1, 32 SHA-256) is the CA's; why not otherwise.
Result<void> check_ca_fingerprint(const CaCertificates& ca, std::string_view fingerprint);

// One RDN attribute: a short name (CN, C, L, ST, O, OU, and the others OpenSSL knows) or a
// dotted OID, and its value.
using NameAttribute = std::pair<std::string, std::string>;
using Name = std::vector<std::vector<NameAttribute>>;  // RDNs in order, each one or more attributes

// A new private key, PKCS#8 PEM: "RSA" with `bits` (512 to 8192), or "ECSECPrimeRandom" with
// 256, 384 or 521 bits (0 means 256).
Result<std::string> generate_key(std::string_view key_type, int bits);

struct CsrSpec {
  Name subject{};
  std::string challenge{};  // challengePassword; empty: none
  int key_usage = 0;        // Apple's bits: 1 digitalSignature, 4 keyEncipherment (keyAgreement for EC)
  // rfc822Name, dNSName, uniformResourceIdentifier, ntPrincipalName → extensionRequest subjectAltName.
  std::map<std::string, std::vector<std::string>> subject_alt_names{};
};
// A PKCS#10 request, DER, signed with SHA-256 by `key_pem`.
Result<std::string> make_csr(const CsrSpec& spec, const std::string& key_pem);
// The transient self-signed certificate a client signs its requests with (RFC 8894 2.3): the
// CSR's subject (or CN=mdmconform SCEP client when it has none), valid from 5 minutes back for
// a day. PEM.
Result<std::string> make_signer_certificate(std::string_view csr_der, const std::string& key_pem);
// The CSR's subject, one line RFC 2253.
Result<std::string> csr_subject(std::string_view csr_der);

// Hex SHA-256 of the key's SubjectPublicKeyInfo: the transactionID (RFC 8894 3.2.1.1).
Result<std::string> transaction_id_for(const std::string& key_pem);
// 16 random bytes.
std::string new_nonce();

struct Envelope {
  Cipher cipher = Cipher::aes_128_cbc;
  Digest digest = Digest::sha256;
};
// A PKCSReq: the CSR encrypted to `recipient_der`, in a SignedData signed by `signer` (the
// transient certificate and its key) with messageType 19, transactionID and senderNonce. DER.
Result<std::string> build_pkcs_req(std::string_view csr_der, const Identity& signer, std::string_view recipient_der,
                                   std::string_view transaction_id, std::string_view sender_nonce, Envelope envelope);
// A CertPoll (messageType 20): IssuerAndSubject (the CA's subject, the CSR's subject) encrypted
// to `recipient_der`, with the PKCSReq's transactionID and a new senderNonce. DER.
Result<std::string> build_cert_poll(std::string_view ca_der, std::string_view csr_der, const Identity& signer,
                                    std::string_view recipient_der, std::string_view transaction_id,
                                    std::string_view sender_nonce, Envelope envelope);

inline constexpr std::size_t kMaxMessageBytes = 1024 * 1024;

// A CertRep as read, its signature checked against one of `verifier_ders` only (never a
// certificate the message carries itself).
struct CertRep {
  PkiStatus status = PkiStatus::failure;
  std::optional<int> fail_info;  // the number as sent; fail_info_name for the known ones
  std::string fail_info_text;    // failInfoText (1.3.6.1.5.5.7.24.1), when present
  std::string transaction_id;
  std::string sender_nonce;
  std::string recipient_nonce;
  std::string envelope_der;  // SUCCESS: the encrypted degenerate PKCS#7 with the issued certificate
  std::string signer_der;    // which verifier signed it
};
// Reads the signed attributes first and verifies last, so that an answer that does not verify
// still says what it claimed in the error ("signature does not verify (claims FAILURE ...)").
Result<CertRep> parse_cert_rep(std::string_view der, const std::vector<std::string>& verifier_ders);
// The degenerate PKCS#7 inside a SUCCESS envelope, decrypted with the requester's transient
// certificate and key (key transport for RSA; key agreement when the certificate is EC), as
// DER certificates; `cipher` gets the envelope's content cipher name.
Result<std::vector<std::string>> decrypt_issued_certificates(std::string_view envelope_der, const Identity& recipient,
                                                             std::string* cipher = nullptr);

// What a certificate issued to us must be; checked by check_issued_certificate.
struct IssuedExpectation {
  std::string key_pem;  // ours
  Name subject;         // every attribute asked for must be in the certificate's subject
  std::string ca_pem;   // GetCACert's certificates: the CA a trust anchor, the rest intermediates
};
// Picks, among `certificates_der`, the one for our key, and checks its subject, its chain to the
// CA and its validity now. The certificate's PEM, or why not in words ("expired on ...",
// "subject lacks CN=mac-1 (has CN=other)", "does not chain to the CA: ...").
Result<std::string> check_issued_certificate(const std::vector<std::string>& certificates_der,
                                             const IssuedExpectation& expected);

// ---- The server's side, for test servers (harness/testing/fake_scep_server.hpp) and fuzzers.

// A PKCSReq or CertPoll as a server reads it: signature verified with the signer certificate it
// carries, envelope decrypted with `recipient` (the CA's or RA's certificate and key).
struct PkiRequest {
  MessageType type = MessageType::pkcs_req;
  std::string transaction_id;
  std::string sender_nonce;
  std::string signer_cert_der;  // the requester's transient certificate: the CertRep is encrypted to it
  std::string cipher;           // the envelope's content cipher, OpenSSL's name
  std::string digest;           // the signature's digest, OpenSSL's name
  std::string csr_der;          // PKCSReq: the request
  std::string challenge;        // PKCSReq: challengePassword, empty when none
  std::string subject;          // PKCSReq: the CSR's subject; CertPoll: IssuerAndSubject's subject (RFC 2253)
};
Result<PkiRequest> parse_pki_request(std::string_view der, const Identity& recipient);

// A certificate for the CSR's key, signed by `ca` with SHA-256: the CSR's subject unless
// `subject` is given (a broken server's), CA:FALSE, digitalSignature and clientAuth, within
// `validity`. DER.
Result<std::string> issue_certificate(const Identity& ca, std::string_view csr_der, Validity validity,
                                      const Name& subject = {});
// A degenerate PKCS#7 SignedData holding `certificates_der` and nothing else. DER.
Result<std::string> degenerate_pkcs7(const std::vector<std::string>& certificates_der);

struct CertRepSpec {
  PkiStatus status = PkiStatus::success;
  int fail_info = 2;                            // FAILURE only
  std::string fail_info_text{};                 // FAILURE only; empty: not sent
  std::vector<std::string> certificates_der{};  // SUCCESS: the issued certificate first, then any chain
  Cipher cipher = Cipher::aes_128_cbc;          // SUCCESS: the envelope's
  Digest digest = Digest::sha256;
  std::optional<std::string> recipient_nonce{};  // instead of the request's senderNonce (a broken server)
};
// A CertRep answering `request`, signed by `signer` (the CA or RA). With an EC requester the
// envelope uses key agreement (our extension: RFC 8894 knows key transport only). DER.
Result<std::string> build_cert_rep(const PkiRequest& request, const CertRepSpec& spec, const Identity& signer);

}  // namespace mdmc::pki::scep
