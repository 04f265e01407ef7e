#include "harness/enroll/scep_client.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "harness/base/bytes.hpp"
#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"
#include "harness/testing/fake_scep_server.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "harness/testing/raw_peer.hpp"

namespace mdmc::enroll {
namespace {

namespace fs = std::filesystem;
using testing::FakeScepMode;
using testing::FakeScepServer;
using ::testing::HasSubstr;

const char* const kScepserver = "/usr/bin/scepserver";
const char* const kScepclient = "/usr/bin/scepclient";
const char* const kChallenge = "s3cret";

// Whether the certificate chains to `ca_pem` for TLS-client use, checked by OpenSSL through
// pki: a Mdm-Signature made with the identity holds only when its signer chains to the CA.
void expect_chains_to(const pki::Identity& identity, const std::string& ca_pem) {
  auto header = pki::mdm_signature(identity, "body");
  ASSERT_TRUE(header.ok()) << header.message();
  auto verified = pki::verify_mdm_signature(*header, "body", ca_pem);
  EXPECT_TRUE(verified.ok()) << verified.message();
}

ScepRequest request_for(const std::string& url, const std::string& cn, int key_size = 2048) {
  ScepRequest request;
  request.url = url;
  request.subject = {{{"O", "mdmconform"}}, {{"CN", cn}}};
  request.challenge = kChallenge;
  request.key_size = key_size;
  request.key_usage = 5;
  return request;
}

// One scepserver for the whole suite: `scepserver ca -init`, then the server on a free port,
// ready once GetCACaps answers. Killed when the suite ends (Process kills on destruction).
class RealScepserver : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kScepserver)) return;
    dir_ = fs::temp_directory_path() / ("mdmc_scepserver_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto init = testing::run_process({kScepserver, "ca", "-init", "-depot", (dir_ / "depot").string(), "-keySize",
                                      "2048", "-years", "1", "-organization", "mdmconform-test"},
                                     std::chrono::seconds(30));
    ASSERT_EQ(init.exit_code, 0) << init.output;
    std::uint16_t port = testing::unused_port();
    auto server = testing::Process::spawn({kScepserver, "-depot", (dir_ / "depot").string(), "-port",
                                           std::to_string(port), "-challenge", kChallenge, "-allowrenew", "0"});
    ASSERT_TRUE(server.ok()) << server.message();
    server_.emplace(std::move(*server));
    url_ = "http://127.0.0.1:" + std::to_string(port) + "/scep";
    net::ClientLimits quick;
    quick.connect_timeout = std::chrono::milliseconds(200);
    quick.header_timeout = std::chrono::milliseconds(1000);
    for (int attempt = 0; attempt < 100; ++attempt) {  // 10 s at most
      net::HttpClient client(quick);
      auto exchange = client.send({"GET", url_ + "?operation=GetCACaps", {}, {}});
      if (exchange.ok() && exchange.response->status == 200) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(ready_) << "scepserver did not answer GetCACaps within 10 s: " << server_->output();
    ca_pem_ = testing::read_text(dir_ / "depot" / "ca.pem");
  }
  static void TearDownTestSuite() {
    server_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!fs::exists(kScepserver)) GTEST_SKIP() << kScepserver << " is absent (Debian package scep)";
    ASSERT_TRUE(ready_);
  }

  static inline fs::path dir_;
  static inline std::optional<testing::Process> server_;
  static inline std::string url_;
  static inline std::string ca_pem_;
  static inline bool ready_ = false;
};

TEST_F(RealScepserver, EnrollsRsa2048WithAesSha256ByPost) {
  auto enrolled = scep_enroll(request_for(url_, "mdmc-rsa2048"), {});
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_EQ(enrolled->capabilities, "Renewal SHA-1 SHA-256 AES DES3 SCEPStandard POSTPKIOperation");
  EXPECT_EQ(enrolled->cipher, "aes-128-cbc");
  EXPECT_EQ(enrolled->digest, "sha256");
  EXPECT_TRUE(enrolled->post);
  EXPECT_EQ(enrolled->polls, 0);
  EXPECT_EQ(enrolled->exchanges.size(), 3u);  // GetCACaps, GetCACert, PKIOperation
  const pki::Identity& id = enrolled->identity;
  EXPECT_EQ(pki::common_name(id.cert_pem).value_or(""), "mdmc-rsa2048");
  EXPECT_THAT(pki::subject_name(id.cert_pem).value_or(""), HasSubstr("O=mdmconform"));
  EXPECT_TRUE(pki::key_matches_certificate(id.cert_pem, id.key_pem).ok());
  EXPECT_EQ(pki::certificate_der(enrolled->ca_pem).value_or("x"), pki::certificate_der(ca_pem_).value_or("y"));
  expect_chains_to(id, ca_pem_);
}

TEST_F(RealScepserver, EnrollsRsa1024AppleDefaultKeySize) {
  auto enrolled = scep_enroll(request_for(url_, "mdmc-rsa1024", 1024), {});
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_EQ(pki::common_name(enrolled->identity.cert_pem).value_or(""), "mdmc-rsa1024");
  expect_chains_to(enrolled->identity, ca_pem_);
}

TEST_F(RealScepserver, CaFingerprintIsChecked) {
  std::string ca_der = pki::certificate_der(ca_pem_).value();
  std::string hex = base::sha256_hex(ca_der);
  std::string raw;
  for (std::size_t i = 0; i < hex.size(); i += 2) raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  auto request = request_for(url_, "mdmc-fingerprint");
  request.ca_fingerprint = raw;
  auto enrolled = scep_enroll(request, {});
  EXPECT_TRUE(enrolled.ok()) << enrolled.message();
  request.ca_fingerprint[0] = static_cast<char>(request.ca_fingerprint[0] ^ 1);
  auto refused = scep_enroll(request, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ScepError::ca_certificate);
  EXPECT_THAT(refused.error().message, HasSubstr("CAFingerprint"));
}

TEST_F(RealScepserver, WrongChallengeIsFailureBadRequest) {
  auto request = request_for(url_, "mdmc-wrong-challenge");
  request.challenge = "not-the-challenge";
  auto refused = scep_enroll(request, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ScepError::failure);
  EXPECT_THAT(refused.error().message, HasSubstr("FAILURE badRequest (2)"));
}

// Our measuring extension: scepserver cannot encrypt its answer to an EC requester.
TEST_F(RealScepserver, EcKeyIsRefusedAndTheErrorSaysWhy) {
  auto request = request_for(url_, "mdmc-ec");
  request.key_type = "ECSECPrimeRandom";
  request.key_size = 256;
  auto refused = scep_enroll(request, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("our key is EC")) << refused.message();
  std::printf("scepserver and an EC key: %s\n", refused.message().c_str());
}

TEST_F(RealScepserver, ScepclientAndWeChainToTheSameCa) {
  fs::path out = dir_ / "scepclient";
  fs::create_directories(out);
  auto ran = testing::run_process(
      {kScepclient, "-server-url", url_, "-challenge", kChallenge, "-private-key", (out / "key.pem").string(),
       "-certificate", (out / "cert.pem").string(), "-cn", "mdmc-scepclient", "-keySize", "2048"},
      std::chrono::seconds(60));
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  auto theirs = pki::load_pem_pair(out / "cert.pem", out / "key.pem");
  ASSERT_TRUE(theirs.ok()) << theirs.message();
  auto ours = scep_enroll(request_for(url_, "mdmc-beside-scepclient"), {});
  ASSERT_TRUE(ours.ok()) << ours.message();
  expect_chains_to(*theirs, ca_pem_);
  expect_chains_to(ours->identity, ca_pem_);
  expect_chains_to(ours->identity, ours->ca_pem);
  expect_chains_to(*theirs, ours->ca_pem);  // the CA we got from GetCACert is the one scepclient's chains to
}

ScepLimits quick_limits() {
  ScepLimits limits;
  limits.deadline = std::chrono::milliseconds(3000);
  limits.max_polls = 3;
  limits.max_poll_delay = std::chrono::milliseconds(100);
  limits.http.max_body_bytes = 1024 * 1024;
  return limits;
}

base::Result<ScepEnrollment> enroll_fake(FakeScepServer& server, const std::string& cn,
                                         const std::string& key_type = "RSA") {
  auto url = server.start();
  if (!url) return url.error();
  auto request = request_for(*url, cn, key_type == "RSA" ? 1024 : 256);
  request.key_type = key_type;
  request.retry_delay_seconds = 1;
  return scep_enroll(request, quick_limits());
}

TEST(FakeScep, AesSha256OnlyServerGetsAesAndSha256) {
  FakeScepServer server({.mode = FakeScepMode::success_aes_sha256_only});
  auto enrolled = enroll_fake(server, "aes-only");
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  auto log = server.log();
  EXPECT_EQ(log.ciphers, std::vector<std::string>{"aes-128-cbc"});
  EXPECT_EQ(log.digests, std::vector<std::string>{"sha256"});
  expect_chains_to(enrolled->identity, FakeScepServer::ca().cert_pem);
}

TEST(FakeScep, CertPollKeepsTheTransactionUntilSuccess) {
  FakeScepServer server({.mode = FakeScepMode::pending_then_success, .pending_rounds = 2});
  auto enrolled = enroll_fake(server, "polled");
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_EQ(enrolled->polls, 2);
  auto log = server.log();
  ASSERT_EQ(log.transaction_ids.size(), 3u);
  EXPECT_EQ(log.transaction_ids[0], log.transaction_ids[1]);
  EXPECT_EQ(log.transaction_ids[1], log.transaction_ids[2]);
  EXPECT_THAT(log.operations, ::testing::Contains("POST PKIOperation 20"));
}

TEST(FakeScep, PayloadRetriesBoundThePolls) {
  FakeScepServer server({.mode = FakeScepMode::pending_forever});
  auto url = server.start();
  ASSERT_TRUE(url.ok());
  auto request = request_for(*url, "few-retries", 1024);
  request.retries = 1;
  request.retry_delay_seconds = 0;
  auto refused = scep_enroll(request, quick_limits());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ScepError::pending_timeout);
  EXPECT_THAT(refused.error().message, HasSubstr("PENDING after 1 polls"));
}

TEST(FakeScep, RaEncryptsAndSignsForTheCa) {
  FakeScepServer server({.mode = FakeScepMode::ra_and_ca});
  auto enrolled = enroll_fake(server, "via-ra");
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_EQ(pki::count_certificates(enrolled->ca_pem).value_or(0), 2u);
  expect_chains_to(enrolled->identity, FakeScepServer::ca().cert_pem);
}

TEST(FakeScep, WithoutPostPkiOperationTheMessageGoesByGet) {
  FakeScepServer server({.mode = FakeScepMode::get_only});
  auto enrolled = enroll_fake(server, "by-get");
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_FALSE(enrolled->post);
  EXPECT_THAT(server.log().operations, ::testing::Contains("GET PKIOperation 19"));
}

TEST(FakeScep, Des3Sha1IsTheFallback) {
  FakeScepServer server({.mode = FakeScepMode::des3_sha1_only});
  auto enrolled = enroll_fake(server, "legacy");
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_EQ(enrolled->cipher, "des-ede3-cbc");
  EXPECT_EQ(enrolled->digest, "sha1");
  EXPECT_EQ(server.log().ciphers, std::vector<std::string>{"des-ede3-cbc"});
}

TEST(FakeScep, EcEnrollsByKeyAgreementOurExtension) {
  FakeScepServer server({.mode = FakeScepMode::success});
  auto enrolled = enroll_fake(server, "ec-device", "ECSECPrimeRandom");
  ASSERT_TRUE(enrolled.ok()) << enrolled.message();
  EXPECT_TRUE(pki::key_matches_certificate(enrolled->identity.cert_pem, enrolled->identity.key_pem).ok());
}

TEST(FakeScep, ChallengeIsChecked) {
  FakeScepServer server({.mode = FakeScepMode::success, .challenge = "other"});
  auto refused = enroll_fake(server, "wrong-pw");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ScepError::failure);
  EXPECT_THAT(refused.error().message, HasSubstr("FAILURE badRequest (2): invalid challenge"));
}

TEST(ScepClient, UnknownKeyTypeAndSilentPortAreTold) {
  auto request = request_for("http://127.0.0.1:" + std::to_string(testing::unused_port()) + "/scep", "x", 1024);
  auto refused = scep_enroll(request, quick_limits());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ScepError::unreachable);
  EXPECT_THAT(refused.error().message, HasSubstr("GetCACaps: connect_failed"));
  request.key_type = "DSA";
  auto unsupported = scep_enroll(request, quick_limits());
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.error().code, ScepError::unsupported);
}

// A PKIOperation answer whose chunked body never ends: flooded, the body cap stops it; trickled,
// the deadline does. GetCACaps and GetCACert are answered properly, so that the PKCSReq is sent.
void endless_body(bool trickle, ScepError expected, const std::string& words) {
  std::string ca_der = pki::certificate_der(FakeScepServer::ca().cert_pem).value();
  testing::RawServer server([&](testing::RawServer&, int& fd, int) {
    std::string request = testing::read_request(fd);
    auto respond = [&](const std::string& body) {
      (void)testing::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                                       "\r\nConnection: close\r\n\r\n" + body);
    };
    if (request.find("operation=GetCACaps") != std::string::npos) return respond("AES\nSHA-256\nPOSTPKIOperation");
    if (request.find("operation=GetCACert") != std::string::npos) return respond(ca_der);
    if (!testing::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    std::string chunk = "1000\r\n" + std::string(0x1000, '\x30') + "\r\n";
    for (int i = 0; i < 2000; ++i) {  // 8 MiB, or 100 s of trickle, at most
      if (!testing::write_all(fd, chunk)) return;
      if (trickle) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  ScepLimits limits = quick_limits();
  limits.deadline = std::chrono::milliseconds(2000);
  auto started = std::chrono::steady_clock::now();
  auto result =
      scep_enroll(request_for("http://127.0.0.1:" + std::to_string(server.port()) + "/scep", "endless", 1024), limits);
  auto wall = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, expected) << result.message();
  EXPECT_THAT(result.error().message, HasSubstr(words));
  EXPECT_LT(wall, limits.deadline + std::chrono::milliseconds(500));
  std::printf("endless body, %s: %s in %lld ms\n", trickle ? "trickled" : "flooded", result.message().c_str(),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(wall).count()));
}

TEST(ScepClient, EndlessFloodedBodyStopsAtTheCap) {
  endless_body(false, ScepError::http_status, "PKCSReq: body_too_large");
}
TEST(ScepClient, EndlessTrickledBodyStopsAtTheDeadline) {
  endless_body(true, ScepError::unreachable, "PKCSReq: body_timeout");
}

struct Expectation {
  FakeScepMode mode;
  std::optional<ScepError> error;  // nothing: enrolled
  std::string words;
};

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Every misbehaviour ends in its ScepError, with words, before the deadline. The table goes
// to a file (docs/scep.md shows it) and to the test's output.
TEST(FakeScep, HostileServerTable) {
  const std::vector<Expectation> table{
      {FakeScepMode::success, std::nullopt, ""},
      {FakeScepMode::success_aes_sha256_only, std::nullopt, ""},
      {FakeScepMode::pending_then_success, std::nullopt, ""},
      {FakeScepMode::pending_forever, ScepError::pending_timeout, "PENDING after 3 polls"},
      {FakeScepMode::failure_bad_request, ScepError::failure, "FAILURE badRequest (2): the request is refused"},
      {FakeScepMode::failure_bad_message_check, ScepError::failure, "FAILURE badMessageCheck (1)"},
      {FakeScepMode::garbage_body, ScepError::not_scep, "not a CertRep"},
      {FakeScepMode::html_body, ScepError::not_scep, "<html>"},
      {FakeScepMode::huge_body, ScepError::http_status, "body_too_large"},
      {FakeScepMode::stall, ScepError::unreachable, "PKCSReq: header_timeout"},
      {FakeScepMode::http_500, ScepError::http_status, "GetCACert: HTTP 500"},
      {FakeScepMode::cacert_garbage, ScepError::ca_certificate, "GetCACert: the answer is neither"},
      {FakeScepMode::wrong_subject, ScepError::wrong_certificate, "lacks O=mdmconform (has CN=someone-else)"},
      {FakeScepMode::expired_certificate, ScepError::wrong_certificate, "expired on"},
      {FakeScepMode::signed_by_other_ca, ScepError::bad_response, "not the CA's or RA's"},
      {FakeScepMode::wrong_recipient_nonce, ScepError::bad_response, "recipientNonce"},
      {FakeScepMode::ra_and_ca, std::nullopt, ""},
      {FakeScepMode::get_only, std::nullopt, ""},
      {FakeScepMode::des3_sha1_only, std::nullopt, ""},
  };
  ASSERT_EQ(table.size(), testing::all_fake_scep_modes().size());
  const ScepLimits limits = quick_limits();
  std::string report = "| mode | verdict | message | wall ms | peak RSS KiB |\n|---|---|---|---|---|\n";
  for (const auto& row : table) {
    SCOPED_TRACE(std::string(testing::fake_scep_mode_name(row.mode)));
    FakeScepServer server({.mode = row.mode});
    auto url = server.start();
    ASSERT_TRUE(url.ok()) << url.message();
    auto request = request_for(*url, "hostile", 1024);
    request.retry_delay_seconds = 1;
    auto started = std::chrono::steady_clock::now();
    auto result = scep_enroll(request, limits);
    auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    EXPECT_LT(wall, limits.deadline + std::chrono::milliseconds(500));
    std::string verdict = result.ok() ? "enrolled" : result.error().code.message();
    std::string message = result.ok() ? "" : result.error().message;
    if (row.error) {
      EXPECT_FALSE(result.ok());
      if (!result.ok()) {
        EXPECT_EQ(result.error().code, *row.error) << message;
        EXPECT_THAT(message, HasSubstr(row.words));
      }
    } else {
      EXPECT_TRUE(result.ok()) << message;
    }
    for (char& c : message)
      if (c == '|') c = '/';
    if (message.size() > 140) message = message.substr(0, 140) + "…";
    report += "| " + std::string(testing::fake_scep_mode_name(row.mode)) + " | " + verdict + " | " + message + " | " +
              std::to_string(wall.count()) + " | " + std::to_string(peak_rss_kb()) + " |\n";
  }
  fs::path file = fs::temp_directory_path() / "mdmc_scep_hostile_table.md";
  std::ofstream(file) << report;
  std::printf("hostile SCEP table (%s):\n%s", file.c_str(), report.c_str());
}

}  // namespace
}  // namespace mdmc::enroll
