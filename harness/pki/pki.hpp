#pragma once
// Test PKI for the harness: a throwaway CA, device and server identities issued from it,
// identities loaded from PEM, PKCS#12 or a folder of pre-issued ones, keys written 0600, and
// Apple's Mdm-Signature header (a detached CMS signature of the request body) made and checked.
//
// Nothing here throws and nothing prints. A failure is a value whose text names what was being
// done and carries OpenSSL's own error text; OpenSSL's error queue is left empty after it.
// OpenSSL stays out of this header: callers see PEM and DER as strings.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "harness/base/bytes.hpp"
#include "harness/base/result.hpp"

namespace mdmc::pki {

// Every fallible function returns a base::Result whose message names what was being done, e.g.
// "load_pkcs12 dev.p12: wrong password (MAC verification failed)".
template <typename T>
using Result = base::Result<T>;

enum class KeyType { rsa2048, ec_p256 };

// A certificate and its private key, PEM. Keys are unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
struct Identity {
  std::string cert_pem;   // the leaf certificate, one PEM block
  std::string key_pem;    // its private key
  std::string chain_pem;  // intermediates up to (not including) the root; may be empty
};

// Validity relative to now: notBefore = now + not_before_offset, notAfter = notBefore + lifetime.
// For an expired certificate use not_before_offset = -48h, lifetime = 24h. lifetime must be > 0.
struct Validity {
  std::chrono::seconds not_before_offset{-3600};  // an hour back, to absorb clock skew
  std::chrono::seconds lifetime{std::chrono::hours(24 * 365)};
};

// A self-signed CA: CA:TRUE, keyUsage keyCertSign and cRLSign, SHA-256, random 128-bit serial.
Result<Identity> create_test_ca(const std::string& common_name, KeyType key = KeyType::ec_p256, Validity validity = {});
// A device identity from `ca`: CA:FALSE, digitalSignature (+ keyEncipherment for RSA),
// extendedKeyUsage clientAuth, random 128-bit serial, SHA-256. chain_pem is `ca`'s chain, plus
// `ca` itself when it is not self-signed.
Result<Identity> issue_device_identity(const Identity& ca, const std::string& common_name, KeyType key,
                                       Validity validity = {});
// An MDM push certificate (EC P-256) from `ca`, shaped as Apple's: subject UID=<topic>,
// CN=APSP:<the topic's last part>, extendedKeyUsage clientAuth. The fake APNs takes the topic
// from the UID, as APNs does.
Result<Identity> issue_push_certificate(const Identity& ca, const std::string& topic, Validity validity = {});
// A TLS server identity (EC P-256) from `ca`: extendedKeyUsage serverAuth; each name becomes
// subjectAltName IP: when it is an IPv4 or IPv6 literal, DNS: otherwise; CN is the first name.
Result<Identity> issue_server_identity(const Identity& ca, const std::vector<std::string>& names,
                                       Validity validity = {});

// The cert file may hold the leaf followed by intermediates (they become chain_pem). The key
// must match the certificate and must not be encrypted.
Result<Identity> load_pem_pair(const std::filesystem::path& cert, const std::filesystem::path& key);
Result<Identity> load_pkcs12(const std::filesystem::path& file, const std::string& password);
// One identity of a pool, with the file it came from.
struct PoolIdentity {
  std::string file;  // the .p12's or the certificate's file name, without its folder: "device-1.p12"
  Identity identity;
};

// A pool of pre-issued identities: every *.p12 (opened with p12_password) and every NAME.key
// with its NAME.crt or NAME.pem, sorted by file name (of the .p12 or the certificate). A .crt or
// .pem without a .key (a CA certificate, say) is skipped, and so are names starting with a dot
// (macOS "._x.p12" litter); a .key without a certificate, or with both a .crt and a .pem, is an
// error. Any file that fails to load fails the whole pool, naming the file. An existing folder
// with none of these gives an empty pool. Extensions match case-insensitively.
Result<std::vector<PoolIdentity>> load_identity_pool(const std::filesystem::path& dir, const std::string& p12_password);

// Writes a private key (or any secret) with mode 0600 from the start: a temporary file in the
// same folder created O_CREAT|O_EXCL with mode 0600, written, fsync'd and renamed over `path`;
// never briefly readable by others, and no temporary file is left behind on failure.
Result<void> write_secret_file(const std::filesystem::path& path, std::string_view contents);
// Writes cert_pem followed by chain_pem to cert_path (0644) and key_pem to key_path (0600), each
// atomically as above; load_pem_pair reads them back.
Result<void> write_identity(const Identity& identity, const std::filesystem::path& cert_path,
                            const std::filesystem::path& key_path);

// DER of the first certificate in `cert_pem`.
Result<std::string> certificate_der(const std::string& cert_pem);
// How many certificates `pem` holds (a CA bundle); 0 when it holds no PEM certificate block,
// and an error naming the block when one is damaged.
Result<std::size_t> count_certificates(const std::string& pem);
// Whether `key_pem` is the private key of the first certificate in `cert_pem`; why not
// otherwise ("the private key does not match the certificate", or what does not parse).
Result<void> key_matches_certificate(const std::string& cert_pem, const std::string& key_pem);
// SHA-256 of a certificate's DER: the identity the reference server binds a device to.
inline std::string sha256_fingerprint(std::string_view der) { return base::sha256_hex(der); }
// The subject's commonName, UTF-8.
Result<std::string> common_name(const std::string& cert_pem);

// Apple's Mdm-Signature header value: base64 on one line of a DER CMS SignedData over the exact
// body bytes: detached, binary (no MIME canonicalisation), SHA-256, with the signer certificate
// and chain_pem included.
Result<std::string> mdm_signature(const Identity& identity, std::string_view body);

inline constexpr std::size_t kMaxSignatureHeaderBytes = 64 * 1024;

// Checks an Mdm-Signature header value against the body. The signer must chain, at the current
// time and for TLS-client use (a certificate without extendedKeyUsage qualifies), to one of the
// certificates in trusted_ca_pem (one or more PEM blocks; each one is a trust anchor, so an
// intermediate CA may be given alone). Headers over kMaxSignatureHeaderBytes are rejected before
// decoding; surrounding spaces and tabs are ignored.
// The signer's certificate (DER) when the signature holds; otherwise why not: "header too
// large", "empty header", "not base64: ...", "not CMS: ...", "not CMS SignedData", "not
// detached", "signer certificate not included", "digest mismatch (body tampered)", "bad
// signature: ...", "signer not trusted: <reason>", "signer certificate expired", "signer
// certificate not yet valid".
// Each trusted_ca_pem text is read once per process, and signatures and chains that held are
// kept for it (bounded; signature.cpp): a kept one is given again only for the same bytes and
// while its chain is valid, so every answer is the one a full check would give.
Result<std::string> verify_mdm_signature(std::string_view header_value, std::string_view body,
                                         const std::string& trusted_ca_pem);

// Whether a certificate (DER) chains, at the current time and for TLS-client use, to one of the
// certificates in trusted_ca_pem, as verify_mdm_signature checks a signer (no intermediates are
// taken from anywhere but trusted_ca_pem); why not otherwise, in the same words. The reference
// server tells apart device identities from its own CA and from the SCEP server's with it.
Result<void> verify_client_certificate(std::string_view cert_der, const std::string& trusted_ca_pem);

// The subject of the first certificate in `cert_pem`, one line in RFC 2253 form:
// "CN=Example Certifier,O=Example".
Result<std::string> subject_name(const std::string& cert_pem);

// A detached CMS SignedData, DER, over `content` exactly as it is: binary, SHA-256, with the
// signer's certificate and chain_pem included. What `openssl cms -verify -binary -inform DER
// -content FILE -in FILE.p7s` checks; a signed file (certification.json) keeps its bytes.
Result<std::string> sign_detached(const Identity& signer, std::string_view content);

// Why a detached signature does not hold, for a caller that tells the cases apart.
enum class SignatureError {
  malformed = 1,    // not a DER CMS SignedData, detached, with one signer whose certificate it carries
  content_changed,  // the content's digest is not the one that was signed
  bad_signature,    // the signature does not verify with the signer's certificate
  untrusted,        // the signer does not chain to the trusted CAs now (expired and not yet valid too)
};
std::error_code make_error_code(SignatureError e);

// Who made a signature that holds.
struct Signer {
  std::string cert_der;
  std::string subject;  // as subject_name gives it
};

// Checks a detached signature (DER, as sign_detached makes it) over `content`. The signer must
// chain, at the current time and for any purpose, to one of the certificates in trusted_ca_pem
// (each one a trust anchor, as for verify_mdm_signature); intermediates come from the signature.
// Signatures over kMaxSignatureBytes are refused before parsing. An error carries its
// SignatureError and says why in words.
Result<Signer> verify_detached(std::string_view signature_der, std::string_view content,
                               const std::string& trusted_ca_pem);
inline constexpr std::size_t kMaxSignatureBytes = 1024 * 1024;

}  // namespace mdmc::pki

template <>
struct std::is_error_code_enum<mdmc::pki::SignatureError> : std::true_type {};
