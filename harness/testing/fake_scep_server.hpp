#pragma once
// A SCEP server for what Debian's scepserver cannot be made to do: answer PENDING, refuse with a
// chosen failInfo, speak through an RA, insist on AES and SHA-256 (or on DES3 and SHA-1), or
// misbehave (garbage, HTML, a huge body, a stall, a wrong certificate, a wrong signer or nonce).
// It speaks the messages of harness/pki/scep.hpp over harness/net/http_server.hpp, on loopback,
// at /scep. Test support only.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/pki/pki.hpp"

namespace mdmc::testing {

enum class FakeScepMode {
  success,                    // every capability scepserver offers; issues what is asked
  success_aes_sha256_only,    // offers AES, SHA-256 and POST only; a request with anything else gets FAILURE badAlg
  pending_then_success,       // PENDING to the PKCSReq and the first pending_rounds - 1 CertPolls, then SUCCESS
  pending_forever,            // PENDING to everything
  failure_bad_request,        // FAILURE badRequest with a failInfoText
  failure_bad_message_check,  // FAILURE badMessageCheck
  garbage_body,               // PKIOperation: 200 with bytes that are no CMS
  html_body,                  // PKIOperation: 200 with an HTML page
  huge_body,                  // PKIOperation: 200 with 4 MiB
  stall,                      // PKIOperation: no answer until the server's longest stall
  http_500,                   // every operation: 500
  cacert_garbage,             // GetCACert: 200 with garbage
  wrong_subject,              // SUCCESS with a certificate for another subject
  expired_certificate,        // SUCCESS with a certificate that expired yesterday
  signed_by_other_ca,         // SUCCESS signed by a CA that is not the one GetCACert gave
  wrong_recipient_nonce,      // SUCCESS whose recipientNonce is not the request's senderNonce
  ra_and_ca,                  // GetCACert: degenerate PKCS#7 of an RA and the CA; the RA decrypts and signs
  get_only,                   // no POSTPKIOperation: a POSTed PKIOperation gets 405
  des3_sha1_only,             // offers DES3 and SHA-1 only, and insists on them (FAILURE badAlg otherwise)
};
std::string_view fake_scep_mode_name(FakeScepMode mode);
// Every mode, in declaration order.
std::vector<FakeScepMode> all_fake_scep_modes();

struct FakeScepOptions {
  FakeScepMode mode = FakeScepMode::success;
  int pending_rounds = 2;   // pending_then_success: the CertPoll that gets SUCCESS
  std::string challenge{};  // when set, a PKCSReq with another challengePassword gets FAILURE badRequest
};

// What the server saw, for tests to assert on.
struct FakeScepLog {
  std::vector<std::string> operations;  // "GET GetCACaps", "POST PKIOperation 19", "GET PKIOperation 20"
  std::vector<std::string> ciphers;     // each PKIOperation's envelope cipher
  std::vector<std::string> digests;     // each PKIOperation's signature digest
  std::vector<std::string> transaction_ids;
};

class FakeScepServer {
 public:
  explicit FakeScepServer(FakeScepOptions options);
  ~FakeScepServer();
  FakeScepServer(const FakeScepServer&) = delete;
  FakeScepServer& operator=(const FakeScepServer&) = delete;

  // Listens on 127.0.0.1 (a free port) and serves; the SCEP URL, or why not.
  base::Result<std::string> start();
  // The CA GetCACert names (shared by every FakeScepServer of the process), PEM.
  static const pki::Identity& ca();
  FakeScepLog log() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdmc::testing
