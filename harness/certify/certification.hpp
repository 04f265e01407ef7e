#pragma once
// A certification: a signed statement that one run of the whole catalog against one server came
// to a verdict. `mdmconform certify` writes it beside the run's report as certification.json and
// its detached CMS signature, certification.json.p7s (DER); `mdmconform verify` checks it. The
// record names the harness build, the suite, the server (its URLs, the certificate it presented,
// its redacted profile), the overall and per-rule verdicts, the run's times and the SHA-256 of
// report.json; the signature covers the exact bytes of certification.json. See
// docs/certification.md.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/pki/pki.hpp"
#include "harness/report/html.hpp"
#include "harness/scenario/result.hpp"
#include "harness/scenario/spec.hpp"

namespace mdmc::certify {

inline constexpr std::string_view kRecordFile = "certification.json";
inline constexpr std::string_view kSignatureFile = "certification.json.p7s";
inline constexpr std::string_view kKind = "mdmconform-certification";
inline constexpr int kFormatVersion = 1;
// A record is a few hundred KiB at most (the profile and one line per rule).
inline constexpr std::size_t kMaxRecordBytes = 16 * 1024 * 1024;

// The harness that made a record: its version, and the compiler, build type and git commit
// CMake saw when it configured the build (commit empty outside a git checkout).
struct Build {
  std::string version;
  std::string compiler;
  std::string build_type;
  std::string commit;
};
Build this_build();

// What the record says of the suite that ran.
struct Suite {
  std::string digest;        // RunResult::suite_digest: rules.yaml and every case file
  std::string rules_sha256;  // SHA-256 of specs/rules.yaml
  std::size_t catalog_cases = 0;
  std::string apple_schema_revision;
  scenario::SeedArticle seed_article;  // the Apple article the rules are drawn from
};

// Which server was certified, and how the harness reached it.
struct Target {
  std::string name;
  bool builtin = false;  // the built-in reference server, not a server under test
  std::string check_in_url;
  std::string server_url;
  // SHA-256 of the leaf certificate's DER the check-in URL presented, verified with the profile's trust.
  std::string server_certificate_sha256;
  std::string tls;            // how its certificate was checked (RunConditions::tls)
  std::string identity_mode;  // none, mtls, signature, both
  std::string profile_file;   // the profile's path as given
  std::string profile_sha256;
  std::string profile;  // the profile file's text with its secrets taken out (redact_profile)
};

// A rule's verdict, as the run's rule record has it.
struct RuleVerdict {
  std::string id;
  std::string level;
  std::string verdict;
  std::string untested;  // why it was not tested; empty when it was
};

struct Record {
  Build harness;
  Suite suite;
  Target target;
  std::string started_at;  // RFC 3339, UTC
  std::string ended_at;
  std::uint64_t seed = 0;
  std::string overall;   // scenario::overall_name: certified, passed-incomplete, failed
  std::string headline;  // the assessment's one line
  std::vector<RuleVerdict> rules;
  std::string report_sha256;  // SHA-256 of report.json's bytes
  std::string signed_at;      // RFC 3339, UTC
};

// The record of a run (redacted already: report::redact_secrets), with what the run record does
// not hold. The verdicts are scenario::assess's; the profile text is redacted here.
Record make_record(const scenario::RunResult& run, Suite suite, Target target, std::string report_sha256,
                   std::string ended_at, std::string signed_at);

// The bytes of certification.json: the record as JSON, keys in a fixed order, two-space indent,
// a final newline. The signature is over exactly these bytes.
std::string to_json_text(const Record& record);
// Every field checked present and of its type; an error names the first that is not.
base::Result<Record> from_json_text(std::string_view text);

// A target profile's YAML with its secrets taken out: the value of every key whose name says it
// holds one (password, p12_password, api_key, token, secret, ...) unless it is only an
// `${env:NAME}` reference, any private key block, and the password of a URL's user info. File
// paths (a CA's or issuer key's) stay: they name a secret, they do not hold it. Comments are not
// kept. Text that is not YAML is replaced whole.
std::string redact_profile(std::string_view yaml);

// Writes certification.json and certification.json.p7s (its detached signature by
// `certifier`, DER) into `dir`, each atomically; what report.html then says of them.
base::Result<report::CertificationStatus> write_signed(const Record& record, const pki::Identity& certifier,
                                                       const std::filesystem::path& dir);

// Why a certification does not hold.
enum class VerifyError {
  unreadable = 1,   // a file cannot be read (a usage error: exit code 2)
  malformed,        // signed, but not a record this harness reads
  bad_signature,    // the record or its signature changed since it was signed
  untrusted,        // the signer's chain does not reach the given CA
  report_mismatch,  // report.json is not the report that was certified
  suite_mismatch,   // the record's suite is not this build's
};
std::error_code make_error_code(VerifyError e);

struct VerifyInputs {
  std::filesystem::path record;     // certification.json
  std::filesystem::path signature;  // certification.json.p7s
  std::filesystem::path report;     // report.json
  std::filesystem::path ca;         // PEM: the CA (or CAs) a certifier must chain to
  std::string suite_digest;         // this build's, over the whole catalog
};

struct Verified {
  Record record;
  std::string signer;  // the signer certificate's subject
};

// Checks, in order: the signature over the record's bytes, the signer's chain to the CA, the
// record's form, report.json's digest, and the suite digest against this build's. The first
// that fails is the error, with its VerifyError.
base::Result<Verified> verify(const VerifyInputs& inputs);

}  // namespace mdmc::certify

template <>
struct std::is_error_code_enum<mdmc::certify::VerifyError> : std::true_type {};
