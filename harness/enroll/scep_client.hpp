#pragma once
// A SCEP client (RFC 8894) as a Mac runs one for a com.apple.security.scep payload: GetCACaps,
// GetCACert, then PKCSReq (POST or GET, as the capabilities say), CertPoll while the server
// answers PENDING, bounded in count and time. The messages themselves (CMS on OpenSSL) are
// pki/scep.hpp's; this file is the HTTP conversation and what is checked about its outcome.
// The server is under test: whatever it answers ends as a value, under the HTTP client's caps
// and deadlines, never as an exception.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/net/http.hpp"
#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"

namespace mdmc::enroll {

// One relative distinguished name's attribute: ("CN", "mac-1"), ("O", "Example"), or a dotted
// OID ("0.9.2342.19200300.100.1.1", "x").
using SubjectAttribute = std::pair<std::string, std::string>;

// What a com.apple.security.scep payload's PayloadContent asks for (Apple's schema:
// mdm/profiles/com.apple.security.scep.yaml), with device variables already filled in.
struct ScepRequest {
  std::string url;                                     // URL
  std::string ca_name;                                 // Name: GetCACert's message=
  std::vector<std::vector<SubjectAttribute>> subject;  // Subject: RDNs, each one or more attributes
  std::string challenge;                               // Challenge: the CSR's challengePassword
  int key_size = 1024;                                 // Keysize (Apple's default)
  std::string key_type = "RSA";                        // Key Type: RSA; "ECSECPrimeRandom" is ours, for measuring
  int key_usage = 0;                                   // Key Usage: 1 signing, 4 encryption; 0 none asked
  std::string ca_fingerprint;                          // CAFingerprint, raw bytes (16: MD5, 20: SHA-1, 32: SHA-256)
  int retries = 3;                                     // Retries: CertPoll rounds after PENDING
  int retry_delay_seconds = 10;                        // RetryDelay
  // SubjectAltName: rfc822Name, dNSName, uniformResourceIdentifier, ntPrincipalName.
  std::map<std::string, std::vector<std::string>> subject_alt_names;
};

// The harness's own bounds on one enrollment, on top of the payload's Retries and RetryDelay:
// a certifier's run must end even when the server answers PENDING forever.
struct ScepLimits {
  net::ClientLimits http;                          // every request's deadlines and caps
  net::TlsClientConfig tls;                        // for an https SCEP URL: the trust (no client certificate)
  int max_polls = 5;                               // CertPoll requests at most, whatever Retries says
  std::chrono::milliseconds max_poll_delay{2000};  // RetryDelay is capped at this
  std::chrono::milliseconds deadline{30000};       // the whole enrollment, every request included
  // Held for each PKIOperation when set: enrollments that share it reach the server one at a time.
  // The built-in server's scepserver companion needs it: its file depot races two requests for
  // the serial number and answers one FAILURE badRequest ("open depot/serial: file exists").
  std::shared_ptr<std::mutex> one_at_a_time;
};

// Why an enrollment failed, for a caller that tells the cases apart; the Error's message says it
// in words ("FAILURE badRequest (2): ...", "PENDING after 5 polls in 10.2 s").
enum class ScepError {
  unreachable = 1,    // no HTTP answer at all (connect, TLS, deadline, reset)
  http_status,        // an answer other than 200, or a body over the cap
  not_scep,           // 200 with bytes that are not what the operation answers (HTML, garbage)
  ca_certificate,     // GetCACert unusable: no CA, no certificate to encrypt to, fingerprint mismatch
  bad_response,       // a CertRep that does not verify, or whose transactionID or recipientNonce is not ours
  failure,            // pkiStatus FAILURE; the message names failInfo
  pending_timeout,    // still PENDING when the polls or the deadline ran out
  wrong_certificate,  // issued, but not for our key or subject, not chained to the CA, expired or not yet valid
  unsupported,        // a request the client cannot make (an unknown Key Type, a key size out of range)
};
std::error_code make_error_code(ScepError e);

// What an enrollment came to: the identity, and what a report shows as evidence.
struct ScepEnrollment {
  pki::Identity identity;                // the issued certificate (chain_pem: the CA chain from GetCACert) and our key
  std::string ca_pem;                    // the CA (and RA) certificates GetCACert gave
  std::string capabilities;              // GetCACaps' keywords, one line, space-separated
  std::string cipher;                    // "aes-128-cbc", "des-ede3-cbc" (the RFC's fallback)
  std::string digest;                    // "sha256", "sha1"
  bool post = false;                     // PKIOperation by POST (POSTPKIOperation) rather than GET
  int polls = 0;                         // CertPoll requests sent after PENDING
  std::vector<net::Exchange> exchanges;  // every HTTP exchange, bodies capped as the client caps them
  std::chrono::milliseconds wall{0};
};

// Enrolls one identity from the SCEP server `request` names, within `limits`. Fails with a
// ScepError and words naming the step (GetCACaps, GetCACert, PKCSReq, CertPoll) and what the
// server did.
// `key_pem`, when given, is the requester's key (the built-in server's runs make one for all their
// devices, target::IdentityConfig::scep_key_pem); empty: a new key of the request's Key Type and
// Keysize, as a Mac makes.
base::Result<ScepEnrollment> scep_enroll(const ScepRequest& request, const ScepLimits& limits,
                                         const std::string& key_pem = {});

}  // namespace mdmc::enroll

template <>
struct std::is_error_code_enum<mdmc::enroll::ScepError> : std::true_type {};
