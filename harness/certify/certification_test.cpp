#include "harness/certify/certification.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/base/files.hpp"
#include "harness/scenario/assessment.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/sample_run.hpp"

namespace mdmc::certify {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::ordered_json;

const std::string kProfile =
    "# a comment that is not kept\n"
    "schema_version: 1\n"
    "name: example\n"
    "urls:\n"
    "  check_in: https://mdm.example.test/checkin\n"
    "  server: https://mdm.example.test/mdm\n"
    "identity:\n"
    "  mode: signature\n"
    "  issuer: {cert: ca.crt, key: ca.key}\n"
    "admin:\n"
    "  enqueue:\n"
    "    url: https://admin:hunter2-admin@mdm.example.test/v1/enqueue/{channel}\n"
    "    basic_auth: {user: nanomdm, password: s3cret-api-key}\n";

pki::Identity must(base::Result<pki::Identity> made) {
  EXPECT_TRUE(made.ok()) << made.message();
  return made.ok() ? *made : pki::Identity{};
}

std::string read(const fs::path& p) { return base::read_file_capped(p, 64 << 20).value_or(""); }
void write(const fs::path& p, const std::string& text) { ASSERT_TRUE(base::write_file_atomically(p, text).ok()); }

// A certified sample run's record, signed into a folder of its own, with a report.json beside it.
class CertificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_dir("mdmc_certify_test");
    ca_ = must(pki::create_test_ca("Certifiers CA"));
    certifier_ = must(pki::issue_device_identity(ca_, "Example Certifier", pki::KeyType::ec_p256));
    write(dir_ / "ca.pem", ca_.cert_pem);
    write(dir_ / "report.json", "{\"kind\": \"a report\"}\n");
    record_ = make_record(testing::sample_run(), suite(), target(), base::sha256_hex(read(dir_ / "report.json")),
                          "2026-11-29T08:52:10Z", "2026-11-29T08:52:11Z");
    auto status = write_signed(record_, certifier_, dir_);
    ASSERT_TRUE(status.ok()) << status.message();
    status_ = *status;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Suite suite() {
    return Suite{"suite-digest", "rules-digest", 3, "apple/device-management b6202ca",
                 scenario::SeedArticle{"Managing MDM Devices and Users in macOS", "https://developer.apple.com/x"}};
  }
  static Target target() {
    Target t;
    t.name = "example";
    t.check_in_url = "https://mdm.example.test/checkin";
    t.server_url = "https://mdm.example.test/mdm";
    t.server_certificate_sha256 = std::string(64, 'a');
    t.tls = "verified against the profile's CA (tls.ca)";
    t.identity_mode = "signature";
    t.profile_file = "/etc/mdm/example.yaml";
    t.profile_sha256 = std::string(64, 'b');
    t.profile = kProfile;
    return t;
  }

  VerifyInputs inputs() const {
    return {dir_ / kRecordFile, dir_ / kSignatureFile, dir_ / "report.json", dir_ / "ca.pem", "suite-digest"};
  }
  // The error code of verify(inputs()), or nothing when it holds.
  std::optional<VerifyError> problem() const {
    auto verified = verify(inputs());
    if (verified.ok()) return std::nullopt;
    return static_cast<VerifyError>(verified.error().code.value());
  }

  fs::path dir_;
  pki::Identity ca_;
  pki::Identity certifier_;
  Record record_;
  report::CertificationStatus status_;
};

TEST_F(CertificationTest, ASignedRecordVerifiesAndNamesItsSigner) {
  auto verified = verify(inputs());
  ASSERT_TRUE(verified.ok()) << verified.message();
  EXPECT_EQ(verified->signer, "CN=Example Certifier");
  EXPECT_EQ(verified->record.target.name, "example");
  EXPECT_EQ(verified->record.overall, record_.overall);
  EXPECT_EQ(status_.file, "certification.json");
  EXPECT_EQ(status_.signer, "CN=Example Certifier");
  EXPECT_EQ(status_.overall, record_.overall);
  EXPECT_EQ(status_.signed_at, "2026-11-29T08:52:11Z");
  // The signature is over the file's exact bytes, which are the record's canonical text.
  EXPECT_EQ(read(dir_ / kRecordFile), to_json_text(record_));
  auto again = from_json_text(read(dir_ / kRecordFile));
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(to_json_text(*again), to_json_text(record_));
}

TEST_F(CertificationTest, TheRecordHoldsWhatACertificationNames) {
  const auto run = testing::sample_run();
  EXPECT_EQ(record_.overall, scenario::overall_name(scenario::assess(run).overall));
  EXPECT_EQ(record_.headline, scenario::assess(run).headline);
  ASSERT_EQ(record_.rules.size(), run.rules.size());
  EXPECT_EQ(record_.rules[0].id, run.rules[0].id);
  EXPECT_EQ(record_.seed, run.seed);  // 2^64-1, past a double's exact range
  EXPECT_EQ(record_.started_at, run.started_at);
  EXPECT_EQ(record_.harness.version, MDMC_VERSION);
  EXPECT_FALSE(record_.harness.compiler.empty());
  const auto j = Json::parse(read(dir_ / kRecordFile));
  EXPECT_EQ(j["kind"], "mdmconform-certification");
  EXPECT_EQ(j["suite"]["seed_article"]["title"], "Managing MDM Devices and Users in macOS");
  EXPECT_EQ(j["target"]["server_certificate_sha256"], std::string(64, 'a'));
  EXPECT_EQ(j["run"]["seed"].get<std::uint64_t>(), run.seed);
  EXPECT_EQ(j["report_sha256"], base::sha256_hex(read(dir_ / "report.json")));
  // The profile is in the record without its secrets.
  const std::string profile = j["target"]["profile"];
  EXPECT_THAT(profile, HasSubstr("mdm.example.test/checkin"));
  EXPECT_THAT(profile, Not(HasSubstr("s3cret-api-key")));
  EXPECT_THAT(profile, Not(HasSubstr("hunter2-admin")));
}

// Every value of the record, changed, removed, or joined by one more key: the signature no longer
// holds, and verify says so.
TEST_F(CertificationTest, TamperingWithAnyFieldIsABadSignature) {
  const auto original = Json::parse(read(dir_ / kRecordFile));
  const auto leaves = original.flatten();
  ASSERT_GT(leaves.size(), 30u);
  auto expect_caught = [&](const Json& tampered, const std::string& what) {
    write(dir_ / kRecordFile, tampered.dump(2) + "\n");
    auto verified = verify(inputs());
    ASSERT_FALSE(verified.ok()) << what;
    EXPECT_EQ(static_cast<VerifyError>(verified.error().code.value()), VerifyError::bad_signature) << what;
    EXPECT_THAT(verified.message(), HasSubstr("bad signature: certification.json is not what was signed")) << what;
  };
  for (auto it = leaves.begin(); it != leaves.end(); ++it) {
    const std::string& pointer = it.key();
    const Json& value = it.value();
    Json changed = leaves;
    if (value.is_null())
      changed[pointer] = "x";
    else if (value.is_string())
      changed[pointer] = value.get<std::string>() + "x";
    else if (value.is_boolean())
      changed[pointer] = !value.get<bool>();
    else if (value.is_number_unsigned())
      changed[pointer] = value.get<std::uint64_t>() ^ 1u;
    else
      changed[pointer] = value.get<std::int64_t>() + 1;
    expect_caught(changed.unflatten(), "changed " + pointer);
    Json removed = leaves;
    removed.erase(pointer);
    expect_caught(removed.unflatten(), "removed " + pointer);
  }
  Json added = original;
  added["note"] = "certified by someone else";
  expect_caught(added, "added a key");
  // Only the layout: the same record, its bytes otherwise.
  write(dir_ / kRecordFile, original.dump() + "\n");
  EXPECT_EQ(problem(), VerifyError::bad_signature);
  // And as it was signed, it holds again.
  write(dir_ / kRecordFile, to_json_text(record_));
  EXPECT_EQ(problem(), std::nullopt);
}

TEST_F(CertificationTest, AChangedReportIsAReportDigestMismatch) {
  write(dir_ / "report.json", "{\"kind\": \"a better report\"}\n");
  auto verified = verify(inputs());
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(static_cast<VerifyError>(verified.error().code.value()), VerifyError::report_mismatch);
  EXPECT_THAT(verified.message(), HasSubstr("report digest mismatch"));
}

TEST_F(CertificationTest, ATamperedSignatureIsABadSignature) {
  const std::string signature = read(dir_ / kSignatureFile);
  auto with_signature = [&](const std::string& bytes) {
    write(dir_ / kSignatureFile, bytes);
    return problem();
  };
  EXPECT_EQ(with_signature(""), VerifyError::bad_signature);
  EXPECT_EQ(with_signature(signature.substr(0, signature.size() - 1)), VerifyError::bad_signature);
  EXPECT_EQ(with_signature(signature + "x"), VerifyError::bad_signature);
  // The last bytes are the signature value itself.
  std::string flipped = signature;
  flipped[flipped.size() - 2] = static_cast<char>(flipped[flipped.size() - 2] ^ 0x01);
  EXPECT_EQ(with_signature(flipped), VerifyError::bad_signature);
  // A good signature of another record by the same certifier.
  Record other = record_;
  other.overall = "certified";
  EXPECT_EQ(with_signature(*pki::sign_detached(certifier_, to_json_text(other))), VerifyError::bad_signature);
  // Any byte changed is refused, but for the few that no signature covers (the SignedData's
  // version, say): those leave the record and its signer as they were.
  int refused = 0;
  for (std::size_t i = 0; i < signature.size(); ++i) {
    std::string bad = signature;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    write(dir_ / kSignatureFile, bad);
    auto verified = verify(inputs());
    if (verified.ok()) {
      EXPECT_EQ(verified->signer, "CN=Example Certifier") << "byte " << i;
      continue;
    }
    ++refused;
    const auto code = static_cast<VerifyError>(verified.error().code.value());
    EXPECT_TRUE(code == VerifyError::bad_signature || code == VerifyError::untrusted) << verified.message();
  }
  EXPECT_GT(refused, static_cast<int>(signature.size() * 9 / 10));
}

TEST_F(CertificationTest, ACertifierFromAnotherCaIsNotTrusted) {
  auto other_ca = must(pki::create_test_ca("Some other CA"));
  auto stranger = must(pki::issue_device_identity(other_ca, "Example Certifier", pki::KeyType::ec_p256));
  ASSERT_TRUE(write_signed(record_, stranger, dir_).ok());
  auto verified = verify(inputs());
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(static_cast<VerifyError>(verified.error().code.value()), VerifyError::untrusted);
  EXPECT_THAT(verified.message(), HasSubstr("chain does not reach the CA"));
  // The same record checked against the other CA holds.
  write(dir_ / "ca.pem", other_ca.cert_pem);
  EXPECT_EQ(problem(), std::nullopt);
}

TEST_F(CertificationTest, AnotherSuiteIsASuiteDigestMismatch) {
  auto in = inputs();
  in.suite_digest = "another-suite";
  auto verified = verify(in);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(static_cast<VerifyError>(verified.error().code.value()), VerifyError::suite_mismatch);
  EXPECT_THAT(verified.message(), HasSubstr("another-suite"));
}

TEST_F(CertificationTest, ASignedRecordOfTheWrongFormIsMalformed) {
  for (const std::string& text :
       {std::string("[]"), std::string("{\"kind\": \"mdmconform-certification\"}"), std::string("not json")}) {
    write(dir_ / kRecordFile, text);
    write(dir_ / kSignatureFile, *pki::sign_detached(certifier_, text));
    EXPECT_EQ(problem(), VerifyError::malformed) << text;
  }
  auto j = Json::parse(to_json_text(record_));
  j["format_version"] = 2;
  const std::string text = j.dump(2) + "\n";
  write(dir_ / kRecordFile, text);
  write(dir_ / kSignatureFile, *pki::sign_detached(certifier_, text));
  auto verified = verify(inputs());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(verified.message(), HasSubstr("format_version"));
}

TEST_F(CertificationTest, AMissingFileIsUnreadable) {
  for (const auto& gone : {dir_ / kSignatureFile, dir_ / "report.json", dir_ / "ca.pem", dir_ / kRecordFile}) {
    const fs::path aside = gone.string() + ".aside";
    fs::rename(gone, aside);
    auto verified = verify(inputs());
    ASSERT_FALSE(verified.ok()) << gone;
    EXPECT_EQ(static_cast<VerifyError>(verified.error().code.value()), VerifyError::unreadable) << gone;
    EXPECT_THAT(verified.message(), HasSubstr(gone.filename().string()));
    fs::rename(aside, gone);
  }
  EXPECT_EQ(problem(), std::nullopt);
}

TEST(RedactProfile, TakesOutSecretsAndKeepsWhatNamesThem) {
  const std::string out =
      redact_profile(kProfile +
                     "identity_pool:\n"
                     "  pool: {dir: /srv/identities, p12_password: hunter2-p12}\n"
                     "from_env:\n"
                     "  password: ${env:NANOMDM_API_KEY}\n"
                     "  token: [a, b]\n"
                     "inline: \"-----BEGIN PRIVATE KEY-----\\nMIGH\\n-----END PRIVATE KEY-----\\n\"\n");
  for (const auto* secret : {"s3cret-api-key", "hunter2-admin", "hunter2-p12", "MIGH", "# a comment"}) {
    EXPECT_THAT(out, Not(HasSubstr(secret))) << out;
  }
  for (const auto* kept : {"https://admin:<redacted>@mdm.example.test/v1/enqueue/{channel}", "user: nanomdm",
                           "${env:NANOMDM_API_KEY}", "key: ca.key", "/srv/identities", "mode: signature"}) {
    EXPECT_THAT(out, HasSubstr(kept)) << out;
  }
  EXPECT_EQ(redact_profile("a: [unclosed"), "<redacted: the profile is not YAML>");
}

}  // namespace
}  // namespace mdmc::certify
