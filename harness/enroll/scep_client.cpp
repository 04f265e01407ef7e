// The SCEP conversation (RFC 8894 section 4): GetCACaps, GetCACert, PKCSReq, CertPoll while
// PENDING. Every request runs under what is left of the enrollment's deadline; every answer is
// checked before the next step uses it. The messages are pki/scep.hpp's.
#include "harness/enroll/scep_client.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <thread>

#include "harness/base/bytes.hpp"
#include "harness/pki/scep.hpp"

namespace mdmc::enroll {
namespace {

namespace scep = pki::scep;
using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

class ScepErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "scep"; }
  std::string message(int value) const override {
    switch (static_cast<ScepError>(value)) {
      case ScepError::unreachable: return "unreachable";
      case ScepError::http_status: return "http_status";
      case ScepError::not_scep: return "not_scep";
      case ScepError::ca_certificate: return "ca_certificate";
      case ScepError::bad_response: return "bad_response";
      case ScepError::failure: return "failure";
      case ScepError::pending_timeout: return "pending_timeout";
      case ScepError::wrong_certificate: return "wrong_certificate";
      case ScepError::unsupported: return "unsupported";
    }
    return "unknown";
  }
};

// RFC 3986 unreserved characters stay, everything else is %XX: base64's '+', '/' and '='
// would otherwise reach the server as a space, a path separator or a parameter (docs/scep.md).
std::string percent_encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// Bytes a server sent, shown in an error: printable ASCII kept, the rest '?'.
std::string shown_bytes(std::string_view bytes) {
  std::string out(bytes);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

std::string seconds_text(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

std::string fail_info_words(const scep::CertRep& rep) {
  std::string words = "FAILURE";
  if (rep.fail_info) {
    int n = *rep.fail_info;
    words += " ";
    words += n >= 0 && n <= 4 ? std::string(scep::fail_info_name(static_cast<scep::FailInfo>(n))) : "failInfo";
    words += " (" + std::to_string(n) + ")";
  } else {
    words += " without failInfo";
  }
  if (!rep.fail_info_text.empty()) words += ": " + rep.fail_info_text;
  return words;
}

class Enrollment {
 public:
  Enrollment(const ScepRequest& request, const ScepLimits& limits, const std::string& given_key)
      : request_(request),
        limits_(limits),
        given_key_(given_key),
        started_(Clock::now()),
        deadline_(started_ + limits.deadline) {}

  base::Result<ScepEnrollment> run() {
    auto result = steps();
    out_.wall = duration_cast<milliseconds>(Clock::now() - started_);
    if (!result) return result.error();
    return std::move(out_);
  }

 private:
  base::Result<void> steps() {
    auto url = net::parse_url(request_.url);
    if (!url) return {ScepError::unsupported, "URL \"" + request_.url + "\" is not an http or https URL"};
    if (request_.key_type != "RSA" && request_.key_type != "ECSECPrimeRandom")
      return {ScepError::unsupported,
              "Key Type \"" + request_.key_type + "\" (RSA; ECSECPrimeRandom is ours, for measuring)"};
    ec_ = request_.key_type == "ECSECPrimeRandom";

    // GetCACaps. A server that does not answer it is spoken to with the RFC's defaults.
    auto caps_answer = send("GET", operation_url("GetCACaps", {}), {}, "GetCACaps");
    if (!caps_answer) return caps_answer.error();
    scep::Capabilities caps;
    if (caps_answer->status == 200) {
      auto parsed = scep::parse_capabilities(caps_answer->body);
      if (!parsed) return {ScepError::not_scep, "GetCACaps: " + parsed.error().message};
      caps = std::move(*parsed);
    }
    for (const auto& k : caps.keywords) out_.capabilities += (out_.capabilities.empty() ? "" : " ") + k;
    scep::Envelope envelope{caps.cipher(), caps.digest()};
    out_.cipher = std::string(scep::cipher_name(envelope.cipher));
    out_.digest = std::string(scep::digest_name(envelope.digest));
    out_.post = caps.use_post();

    // GetCACert.
    auto ca_answer = send("GET", operation_url("GetCACert", request_.ca_name), {}, "GetCACert");
    if (!ca_answer) return ca_answer.error();
    if (auto status = expect_200(*ca_answer, "GetCACert"); !status) return status;
    auto ca = scep::parse_ca_certificates(ca_answer->body);
    if (!ca) return {ScepError::ca_certificate, "GetCACert: " + ca.error().message};
    if (!request_.ca_fingerprint.empty()) {
      auto matches = scep::check_ca_fingerprint(*ca, request_.ca_fingerprint);
      if (!matches) return {ScepError::ca_certificate, "GetCACert: " + matches.error().message};
    }
    out_.ca_pem = ca->pem();
    ca_ = std::move(*ca);

    // Our key, the request and the transient certificate that signs our messages.
    int bits = ec_ && request_.key_size == 1024 ? 256 : request_.key_size;  // 1024 is Apple's RSA default
    auto key = given_key_.empty() ? scep::generate_key(request_.key_type, bits) : base::Result<std::string>(given_key_);
    if (!key) return {ScepError::unsupported, key.error().message};
    scep::CsrSpec spec{request_.subject, request_.challenge, request_.key_usage, request_.subject_alt_names};
    auto csr = scep::make_csr(spec, *key);
    if (!csr) return {ScepError::unsupported, "the request: " + csr.error().message};
    auto signer_cert = scep::make_signer_certificate(*csr, *key);
    if (!signer_cert) return {ScepError::unsupported, signer_cert.error().message};
    auto tid = scep::transaction_id_for(*key);
    if (!tid) return {ScepError::unsupported, tid.error().message};
    key_pem_ = std::move(*key);
    csr_der_ = std::move(*csr);
    signer_ = pki::Identity{std::move(*signer_cert), key_pem_, {}};
    transaction_id_ = std::move(*tid);

    // PKCSReq, then CertPoll while PENDING.
    std::string nonce = scep::new_nonce();
    auto message = scep::build_pkcs_req(csr_der_, signer_, ca_.recipient_der, transaction_id_, nonce, envelope);
    if (!message) return {ScepError::unsupported, "PKCSReq: " + message.error().message};
    auto rep = pki_operation(*message, nonce, "PKCSReq");
    if (!rep) return rep.error();
    int max_polls = std::max(0, std::min(request_.retries, limits_.max_polls));
    auto delay = std::min<milliseconds>(milliseconds(std::max(0, request_.retry_delay_seconds) * 1000LL),
                                        limits_.max_poll_delay);
    while (rep->status == scep::PkiStatus::pending) {
      if (out_.polls >= max_polls)
        return {ScepError::pending_timeout, "PENDING after " + std::to_string(out_.polls) + " polls in " +
                                                seconds_text(Clock::now() - started_) + " (Retries " +
                                                std::to_string(request_.retries) + ", at most " +
                                                std::to_string(limits_.max_polls) + ")"};
      if (Clock::now() + delay >= deadline_)
        return {ScepError::pending_timeout, "PENDING after " + std::to_string(out_.polls) + " polls in " +
                                                seconds_text(Clock::now() - started_) + ": the next poll is past the " +
                                                std::to_string(limits_.deadline.count()) + " ms deadline"};
      std::this_thread::sleep_for(delay);
      nonce = scep::new_nonce();
      auto poll =
          scep::build_cert_poll(ca_.ca_der, csr_der_, signer_, ca_.recipient_der, transaction_id_, nonce, envelope);
      if (!poll) return {ScepError::unsupported, "CertPoll: " + poll.error().message};
      ++out_.polls;
      rep = pki_operation(*poll, nonce, "CertPoll");
      if (!rep) return rep.error();
    }
    const char* step = out_.polls > 0 ? "CertPoll" : "PKCSReq";
    if (rep->status == scep::PkiStatus::failure) {
      std::string words = std::string(step) + ": " + fail_info_words(*rep);
      return {ScepError::failure, words + ec_note()};
    }
    auto certificates = scep::decrypt_issued_certificates(rep->envelope_der, signer_);
    if (!certificates)
      return {ScepError::bad_response, std::string(step) + ": SUCCESS, but " + certificates.error().message};
    auto issued = scep::check_issued_certificate(*certificates, {key_pem_, request_.subject, out_.ca_pem});
    if (!issued) return {ScepError::wrong_certificate, std::string(step) + ": SUCCESS, but " + issued.error().message};
    scep::CaCertificates ca_only;
    ca_only.all_der = {ca_.ca_der};
    out_.identity = pki::Identity{std::move(*issued), key_pem_, ca_only.pem()};
    return {};
  }

  // What RFC 8894 cannot do for an EC requester, said wherever the server balks.
  std::string ec_note() const {
    if (!ec_) return {};
    return " (our key is EC, our measuring extension: RFC 8894 encrypts the CertRep to the requester's "
           "certificate by key transport, which an EC key cannot receive)";
  }

  std::string operation_url(std::string_view operation, std::string_view message) const {
    std::string url = request_.url;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += "operation=";
    url += operation;
    if (!message.empty()) url += "&message=" + percent_encode(message);
    return url;
  }

  base::Result<void> expect_200(const net::Response& response, const char* step) {
    if (response.status == 200) return {};
    std::string words = std::string(step) + ": HTTP " + std::to_string(response.status);
    if (!response.reason.empty()) words += " " + response.reason;
    return {ScepError::http_status, words + (std::string_view(step) == "GetCACert" ? "" : ec_note())};
  }

  base::Result<net::Response> send(const std::string& method, const std::string& url, std::string body,
                                   const char* step) {
    auto left = duration_cast<milliseconds>(deadline_ - Clock::now());
    if (left <= milliseconds(0))
      return {ScepError::unreachable, std::string(step) + ": the " + std::to_string(limits_.deadline.count()) +
                                          " ms deadline passed before it was sent"};
    net::ClientLimits bounded = limits_.http;
    for (auto* timeout : {&bounded.connect_timeout, &bounded.tls_handshake_timeout, &bounded.write_timeout,
                          &bounded.header_timeout, &bounded.body_timeout})
      *timeout = std::min(*timeout, left);
    net::HttpClient client(bounded, limits_.tls);
    net::Request request{method, url, {}, std::move(body)};
    if (method == "POST") request.headers.push_back({"Content-Type", "application/x-pki-message"});
    out_.exchanges.push_back(client.send(request));
    const net::Exchange& exchange = out_.exchanges.back();
    if (!exchange.ok()) {
      std::string words = std::string(step) + ": " + std::string(net::transport_error_name(exchange.error));
      if (!exchange.error_detail.empty()) words += " (" + exchange.error_detail + ")";
      if (exchange.error == net::TransportError::body_too_large ||
          exchange.error == net::TransportError::header_too_large)
        return {ScepError::http_status, words + ": over " + std::to_string(bounded.max_body_bytes) + " bytes"};
      return {ScepError::unreachable, words};
    }
    return *exchange.response;
  }

  base::Result<scep::CertRep> pki_operation(const std::string& message, const std::string& nonce, const char* step) {
    base::Result<net::Response> answer = net::Response{};
    {
      std::unique_lock<std::mutex> turn;
      if (limits_.one_at_a_time) turn = std::unique_lock(*limits_.one_at_a_time);
      if (out_.post) {
        answer = send("POST", operation_url("PKIOperation", {}), message, step);
      } else {
        answer = send("GET", operation_url("PKIOperation", base::base64_encode(message)), {}, step);
      }
    }
    if (!answer) return answer.error();
    if (auto status = expect_200(*answer, step); !status) return status.error();
    const std::string& body = answer->body;
    // A DER SEQUENCE starts with 0x30; anything else (an HTML page, text) is not a CertRep at all.
    if (body.empty() || body[0] != '\x30') {
      std::string shown = shown_bytes(body.substr(0, 32));
      return {ScepError::not_scep, std::string(step) + ": the answer is not a CertRep (" + std::to_string(body.size()) +
                                       " bytes: \"" + shown + "\")" + ec_note()};
    }
    auto rep = scep::parse_cert_rep(body, ca_.verifier_ders);
    if (!rep) return {ScepError::bad_response, std::string(step) + ": " + rep.error().message + ec_note()};
    if (rep->transaction_id != transaction_id_)
      return {ScepError::bad_response, std::string(step) + ": CertRep transactionID \"" +
                                           shown_bytes(rep->transaction_id.substr(0, 80)) + "\" is not ours"};
    if (rep->recipient_nonce != nonce)
      return {ScepError::bad_response, std::string(step) + ": CertRep recipientNonce " +
                                           base::hex_encode(rep->recipient_nonce.substr(0, 32)) +
                                           " is not our senderNonce " + base::hex_encode(nonce)};
    return rep;
  }

  const ScepRequest& request_;
  const ScepLimits& limits_;
  const std::string& given_key_;  // the caller's key for the request; empty: generate one
  Clock::time_point started_;
  Clock::time_point deadline_;
  ScepEnrollment out_;
  bool ec_ = false;
  scep::CaCertificates ca_;
  std::string key_pem_;
  std::string csr_der_;
  pki::Identity signer_;
  std::string transaction_id_;
};

}  // namespace

std::error_code make_error_code(ScepError e) {
  static const ScepErrorCategory category;
  return {static_cast<int>(e), category};
}

base::Result<ScepEnrollment> scep_enroll(const ScepRequest& request, const ScepLimits& limits,
                                         const std::string& key_pem) {
  scep::load_legacy_provider();
  return Enrollment(request, limits, key_pem).run();
}

}  // namespace mdmc::enroll
