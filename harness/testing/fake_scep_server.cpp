#include "harness/testing/fake_scep_server.hpp"

#include <map>

#include "harness/base/bytes.hpp"
#include "harness/net/http_server.hpp"
#include "harness/pki/scep.hpp"

namespace mdmc::testing {
namespace {

namespace scep = pki::scep;

const char* const kAllCaps = "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation";

// The RA's and the other CA's identities, made once: RSA key generation is the slow part.
const pki::Identity& registration_authority() {
  static const pki::Identity ra =
      pki::issue_device_identity(FakeScepServer::ca(), "fake SCEP RA", pki::KeyType::rsa2048).value();
  return ra;
}
const pki::Identity& other_ca() {
  static const pki::Identity ca = pki::create_test_ca("fake SCEP other CA", pki::KeyType::ec_p256).value();
  return ca;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_of(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    out[std::string(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

net::ServerResponse answer(int status, std::string body, std::string content_type = "text/plain") {
  net::ServerResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers.push_back({"Content-Type", std::move(content_type)});
  return response;
}

}  // namespace

std::string_view fake_scep_mode_name(FakeScepMode mode) {
  switch (mode) {
    case FakeScepMode::success: return "success";
    case FakeScepMode::success_aes_sha256_only: return "success_aes_sha256_only";
    case FakeScepMode::pending_then_success: return "pending_then_success";
    case FakeScepMode::pending_forever: return "pending_forever";
    case FakeScepMode::failure_bad_request: return "failure_bad_request";
    case FakeScepMode::failure_bad_message_check: return "failure_bad_message_check";
    case FakeScepMode::garbage_body: return "garbage_body";
    case FakeScepMode::html_body: return "html_body";
    case FakeScepMode::huge_body: return "huge_body";
    case FakeScepMode::stall: return "stall";
    case FakeScepMode::http_500: return "http_500";
    case FakeScepMode::cacert_garbage: return "cacert_garbage";
    case FakeScepMode::wrong_subject: return "wrong_subject";
    case FakeScepMode::expired_certificate: return "expired_certificate";
    case FakeScepMode::signed_by_other_ca: return "signed_by_other_ca";
    case FakeScepMode::wrong_recipient_nonce: return "wrong_recipient_nonce";
    case FakeScepMode::ra_and_ca: return "ra_and_ca";
    case FakeScepMode::get_only: return "get_only";
    case FakeScepMode::des3_sha1_only: return "des3_sha1_only";
  }
  return "unknown";
}

std::vector<FakeScepMode> all_fake_scep_modes() {
  std::vector<FakeScepMode> modes;
  for (int m = 0; m <= static_cast<int>(FakeScepMode::des3_sha1_only); ++m)
    modes.push_back(static_cast<FakeScepMode>(m));
  return modes;
}

const pki::Identity& FakeScepServer::ca() {
  static const pki::Identity ca = pki::create_test_ca("fake SCEP CA", pki::KeyType::rsa2048).value();
  return ca;
}

struct FakeScepServer::Impl {
  explicit Impl(FakeScepOptions o)
      : options(std::move(o)), server([this](const net::ServerRequest& r) { return handle(r); }) {}

  net::ServerResponse handle(const net::ServerRequest& request) {
    std::string_view target = request.target;
    if (target.substr(0, target.find('?')) != "/scep") return answer(404, "not found");
    auto query = query_of(target);
    const std::string& operation = query["operation"];
    {
      std::lock_guard lock(mutex);
      log.operations.push_back(request.method + " " + operation);
    }
    FakeScepMode mode = options.mode;
    if (mode == FakeScepMode::http_500) return answer(500, "internal error");
    if (operation == "GetCACaps") {
      if (mode == FakeScepMode::success_aes_sha256_only) return answer(200, "AES\nSHA-256\nPOSTPKIOperation");
      if (mode == FakeScepMode::get_only) return answer(200, "AES\nSHA-256");
      if (mode == FakeScepMode::des3_sha1_only) return answer(200, "DES3\nSHA-1\nPOSTPKIOperation");
      return answer(200, kAllCaps);
    }
    std::string ca_der = pki::certificate_der(ca().cert_pem).value();
    if (operation == "GetCACert") {
      if (mode == FakeScepMode::cacert_garbage)
        return answer(200, "\x01\x02 not a certificate", "application/x-x509-ca-cert");
      if (mode == FakeScepMode::ra_and_ca) {
        std::string ra_der = pki::certificate_der(registration_authority().cert_pem).value();
        return answer(200, scep::degenerate_pkcs7({ra_der, ca_der}).value(), "application/x-x509-ca-ra-cert");
      }
      return answer(200, ca_der, "application/x-x509-ca-cert");
    }
    if (operation != "PKIOperation") return answer(500, "operation not implemented");
    if (mode == FakeScepMode::get_only && request.method == "POST") return answer(405, "method not allowed");
    std::string message = request.body;
    if (request.method == "GET") {
      auto decoded = base::base64_decode(query["message"]);
      if (!decoded) return answer(400, "message is not base64");
      message = std::move(*decoded);
    }
    if (mode == FakeScepMode::garbage_body)
      return answer(200, std::string("\x00\x01\x02garbage\xff", 11), "application/x-pki-message");
    if (mode == FakeScepMode::html_body) return answer(200, "<html><body><h1>Welcome</h1></body></html>", "text/html");
    if (mode == FakeScepMode::huge_body)
      return answer(200, std::string(4 * 1024 * 1024, '\x30'), "application/x-pki-message");
    if (mode == FakeScepMode::stall) {
      auto response = answer(200, "late");
      response.stall = net::kMaxServerStall;
      return response;
    }
    const pki::Identity& recipient = mode == FakeScepMode::ra_and_ca ? registration_authority() : ca();
    auto parsed = scep::parse_pki_request(message, recipient);
    if (!parsed) return answer(400, parsed.error().message);
    {
      std::lock_guard lock(mutex);
      log.operations.back() += " " + std::to_string(static_cast<int>(parsed->type));
      log.ciphers.push_back(parsed->cipher);
      log.digests.push_back(parsed->digest);
      log.transaction_ids.push_back(parsed->transaction_id);
    }
    scep::CertRepSpec spec;
    spec.cipher = parsed->cipher == "des-ede3-cbc" ? scep::Cipher::des_ede3_cbc : scep::Cipher::aes_128_cbc;
    spec.digest = parsed->digest == "sha1" ? scep::Digest::sha1 : scep::Digest::sha256;
    const pki::Identity& signer = mode == FakeScepMode::ra_and_ca            ? registration_authority()
                                  : mode == FakeScepMode::signed_by_other_ca ? other_ca()
                                                                             : ca();
    auto fail_with = [&](int info, std::string text) {
      spec.status = scep::PkiStatus::failure;
      spec.fail_info = info;
      spec.fail_info_text = std::move(text);
      return answer(200, scep::build_cert_rep(*parsed, spec, signer).value(), "application/x-pki-message");
    };
    bool strict_modern = mode == FakeScepMode::success_aes_sha256_only;
    bool strict_legacy = mode == FakeScepMode::des3_sha1_only;
    if ((strict_modern && (parsed->cipher != "aes-128-cbc" || parsed->digest != "sha256")) ||
        (strict_legacy && (parsed->cipher != "des-ede3-cbc" || parsed->digest != "sha1")))
      return fail_with(0, "unsupported algorithm " + parsed->cipher + "/" + parsed->digest);
    if (mode == FakeScepMode::failure_bad_request) return fail_with(2, "the request is refused");
    if (mode == FakeScepMode::failure_bad_message_check) return fail_with(1, "");

    std::string csr;
    if (parsed->type == scep::MessageType::pkcs_req) {
      if (!options.challenge.empty() && parsed->challenge != options.challenge)
        return fail_with(2, "invalid challenge");
      csr = parsed->csr_der;
      std::lock_guard lock(mutex);
      requests[parsed->transaction_id] = csr;
      polls[parsed->transaction_id] = 0;
    } else {
      std::lock_guard lock(mutex);
      auto known = requests.find(parsed->transaction_id);
      if (known == requests.end()) return fail_with(4, "no such transaction");
      csr = known->second;
      ++polls[parsed->transaction_id];
    }
    bool pending = mode == FakeScepMode::pending_forever;
    if (mode == FakeScepMode::pending_then_success) {
      std::lock_guard lock(mutex);
      pending = polls[parsed->transaction_id] < options.pending_rounds;
    }
    if (pending) {
      spec.status = scep::PkiStatus::pending;
      return answer(200, scep::build_cert_rep(*parsed, spec, signer).value(), "application/x-pki-message");
    }
    pki::Validity validity;
    if (mode == FakeScepMode::expired_certificate) validity = {std::chrono::hours(-48), std::chrono::hours(24)};
    scep::Name subject;
    if (mode == FakeScepMode::wrong_subject) subject = {{{"CN", "someone-else"}}};
    auto issued = scep::issue_certificate(ca(), csr, validity, subject);
    if (!issued) return fail_with(2, issued.error().message);
    spec.certificates_der = {*issued, ca_der};
    if (mode == FakeScepMode::wrong_recipient_nonce) spec.recipient_nonce = scep::new_nonce();
    auto reply = scep::build_cert_rep(*parsed, spec, signer);
    if (!reply) return answer(500, reply.error().message);
    return answer(200, *reply, "application/x-pki-message");
  }

  FakeScepOptions options;
  mutable std::mutex mutex;
  FakeScepLog log;
  std::map<std::string, std::string> requests;  // transactionID → CSR
  std::map<std::string, int> polls;             // transactionID → CertPolls so far
  net::HttpServer server;
};

FakeScepServer::FakeScepServer(FakeScepOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  (void)ca();  // made before serving, so that the first request is not slow
  if (impl_->options.mode == FakeScepMode::ra_and_ca) (void)registration_authority();
  if (impl_->options.mode == FakeScepMode::signed_by_other_ca) (void)other_ca();
}

FakeScepServer::~FakeScepServer() { impl_->server.stop(); }

base::Result<std::string> FakeScepServer::start() {
  auto port = impl_->server.listen("127.0.0.1", 0);
  if (!port) return port.error();
  impl_->server.start(2);
  return "http://127.0.0.1:" + std::to_string(*port) + "/scep";
}

FakeScepLog FakeScepServer::log() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->log;
}

}  // namespace mdmc::testing
