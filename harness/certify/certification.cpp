#include "harness/certify/certification.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/base/files.hpp"
#include "harness/base/json_reader.hpp"
#include "harness/report/json.hpp"
#include "harness/scenario/assessment.hpp"

namespace mdmc::certify {
namespace {

using Json = nlohmann::ordered_json;
using base::JsonReader;

// Certificates and CA bundles are kilobytes; this bounds a wrong path.
constexpr std::size_t kMaxPemBytes = 1024 * 1024;

class VerifyCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "certify.verify"; }
  std::string message(int ev) const override {
    switch (static_cast<VerifyError>(ev)) {
      case VerifyError::unreadable: return "cannot read";
      case VerifyError::malformed: return "malformed record";
      case VerifyError::bad_signature: return "bad signature";
      case VerifyError::untrusted: return "chain does not reach the CA";
      case VerifyError::report_mismatch: return "report digest mismatch";
      case VerifyError::suite_mismatch: return "suite digest differs from this build's";
    }
    return "verify error";
  }
};

Json to_json(const Record& r) {
  Json rules = Json::array();
  for (const auto& rule : r.rules) {
    Json entry = {{"id", rule.id}, {"level", rule.level}, {"verdict", rule.verdict}};
    if (!rule.untested.empty()) entry["untested"] = rule.untested;
    rules.push_back(std::move(entry));
  }
  const auto& s = r.suite;
  const auto& t = r.target;
  return Json{
      {"kind", std::string(kKind)},
      {"format_version", kFormatVersion},
      {"harness",
       {{"version", r.harness.version},
        {"compiler", r.harness.compiler},
        {"build_type", r.harness.build_type},
        {"commit", r.harness.commit}}},
      {"suite",
       {{"digest", s.digest},
        {"rules_yaml_sha256", s.rules_sha256},
        {"catalog_cases", s.catalog_cases},
        {"apple_schema_revision", s.apple_schema_revision},
        {"seed_article", {{"title", s.seed_article.title}, {"url", s.seed_article.url}}}}},
      {"target",
       {{"name", t.name},
        {"builtin", t.builtin},
        {"check_in_url", t.check_in_url},
        {"server_url", t.server_url},
        {"server_certificate_sha256", t.server_certificate_sha256},
        {"tls", t.tls},
        {"identity_mode", t.identity_mode},
        {"profile_file", t.profile_file},
        {"profile_sha256", t.profile_sha256},
        {"profile", t.profile}}},
      {"run", {{"started_at", r.started_at}, {"ended_at", r.ended_at}, {"seed", r.seed}}},
      {"verdict", {{"overall", r.overall}, {"headline", r.headline}, {"rules", std::move(rules)}}},
      {"report_sha256", r.report_sha256},
      {"signed_at", r.signed_at},
  };
}

// A file's bytes, or the error verify() reports for it.
base::Result<std::string> read(const std::filesystem::path& file, std::size_t cap, std::string_view what) {
  auto bytes = base::read_file_capped(file, cap);
  if (!bytes) return base::Result<std::string>(VerifyError::unreadable, fmt::format("{}: {}", what, bytes.message()));
  return bytes;
}

}  // namespace

std::error_code make_error_code(VerifyError e) {
  static const VerifyCategory category;
  return {static_cast<int>(e), category};
}

Record make_record(const scenario::RunResult& run, Suite suite, Target target, std::string report_sha256,
                   std::string ended_at, std::string signed_at) {
  const auto assessment = scenario::assess(run);
  Record r;
  r.harness = this_build();
  r.suite = std::move(suite);
  r.target = std::move(target);
  r.target.profile = redact_profile(r.target.profile);
  r.started_at = run.started_at;
  r.ended_at = std::move(ended_at);
  r.seed = run.seed;
  r.overall = std::string(scenario::overall_name(assessment.overall));
  r.headline = assessment.headline;
  for (const auto& rule : run.rules) {
    r.rules.push_back({rule.id, std::string(scenario::level_name(rule.level)),
                       std::string(scenario::verdict_name(rule.verdict)), rule.untested});
  }
  r.report_sha256 = std::move(report_sha256);
  r.signed_at = std::move(signed_at);
  return r;
}

std::string to_json_text(const Record& record) {
  // Text that is not UTF-8 (a profile can hold any bytes) becomes U+FFFD rather than an exception.
  return to_json(record).dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

base::Result<Record> from_json_text(std::string_view text) {
  const auto j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return base::fail("not a JSON object");
  JsonReader in;
  const std::string top;
  if (in.string(j, "kind", top) != kKind) in.fail("kind", fmt::format("not \"{}\"", kKind));
  if (in.integer(j, "format_version", top) != kFormatVersion) {
    in.fail("format_version", fmt::format("not {} (a record of another harness version)", kFormatVersion));
  }
  Record r;
  static const Json kEmpty = Json::object();
  auto object = [&](const Json& parent, std::string_view key, const std::string& path) -> const Json& {
    const Json* found = in.object(parent, key, path);
    return found != nullptr ? *found : kEmpty;
  };
  const Json& harness = object(j, "harness", top);
  r.harness = {in.string(harness, "version", "harness"), in.string(harness, "compiler", "harness"),
               in.string(harness, "build_type", "harness"), in.string(harness, "commit", "harness")};
  const Json& suite = object(j, "suite", top);
  r.suite.digest = in.string(suite, "digest", "suite");
  r.suite.rules_sha256 = in.string(suite, "rules_yaml_sha256", "suite");
  r.suite.catalog_cases = static_cast<std::size_t>(in.integer(suite, "catalog_cases", "suite", 0));
  r.suite.apple_schema_revision = in.string(suite, "apple_schema_revision", "suite");
  const Json& article = object(suite, "seed_article", "suite");
  r.suite.seed_article = {in.string(article, "title", "suite.seed_article"),
                          in.string(article, "url", "suite.seed_article")};
  const Json& target = object(j, "target", top);
  auto& t = r.target;
  t.name = in.string(target, "name", "target");
  t.builtin = in.boolean(target, "builtin", "target");
  t.check_in_url = in.string(target, "check_in_url", "target");
  t.server_url = in.string(target, "server_url", "target");
  t.server_certificate_sha256 = in.string(target, "server_certificate_sha256", "target");
  t.tls = in.string(target, "tls", "target");
  t.identity_mode = in.string(target, "identity_mode", "target");
  t.profile_file = in.string(target, "profile_file", "target");
  t.profile_sha256 = in.string(target, "profile_sha256", "target");
  t.profile = in.string(target, "profile", "target");
  const Json& run = object(j, "run", top);
  r.started_at = in.string(run, "started_at", "run");
  r.ended_at = in.string(run, "ended_at", "run");
  // A seed is any 64-bit number: read unsigned, past what JsonReader::integer takes.
  if (const Json* seed = in.member(run, "seed", "run")) {
    if (seed->is_number_unsigned())
      r.seed = seed->get<std::uint64_t>();
    else
      in.fail("run.seed", "not an unsigned integer");
  }
  const Json& verdict = object(j, "verdict", top);
  r.overall = in.string(verdict, "overall", "verdict");
  r.headline = in.string(verdict, "headline", "verdict");
  if (const Json* rules = in.array(verdict, "rules", "verdict")) {
    for (std::size_t i = 0; i < rules->size() && in.ok(); ++i) {
      const auto path = JsonReader::index("verdict.rules", i);
      const Json& rule = (*rules)[i];
      if (!rule.is_object()) {
        in.fail(path, "not an object");
        break;
      }
      RuleVerdict v{in.string(rule, "id", path), in.string(rule, "level", path), in.string(rule, "verdict", path), ""};
      if (rule.contains("untested")) v.untested = in.string(rule, "untested", path);
      r.rules.push_back(std::move(v));
    }
  }
  r.report_sha256 = in.string(j, "report_sha256", top);
  r.signed_at = in.string(j, "signed_at", top);
  if (!in.ok()) return base::fail(in.error());
  return r;
}

base::Result<report::CertificationStatus> write_signed(const Record& record, const pki::Identity& certifier,
                                                       const std::filesystem::path& dir) {
  const std::string text = to_json_text(record);
  auto signature = pki::sign_detached(certifier, text);
  if (!signature) return signature.error();
  auto subject = pki::subject_name(certifier.cert_pem);
  if (!subject) return subject.error();
  // The record first: a signature without its record is of no use, a record without its
  // signature fails verify plainly.
  if (auto written = base::write_file_atomically(dir / kRecordFile, text); !written) return written.error();
  if (auto written = base::write_file_atomically(dir / kSignatureFile, *signature); !written) return written.error();
  return report::CertificationStatus{std::string(kRecordFile), *subject, record.overall, record.signed_at};
}

base::Result<Verified> verify(const VerifyInputs& inputs) {
  auto text = read(inputs.record, kMaxRecordBytes, "the record");
  if (!text) return text.error();
  auto signature = read(inputs.signature, pki::kMaxSignatureBytes, "the signature");
  if (!signature) return signature.error();
  auto ca = read(inputs.ca, kMaxPemBytes, "the CA");
  if (!ca) return ca.error();

  auto signer = pki::verify_detached(*signature, *text, *ca);
  if (!signer) {
    const auto kind = static_cast<pki::SignatureError>(signer.error().code.value());
    const auto& detail = signer.error().message;
    switch (kind) {
      case pki::SignatureError::content_changed:
        return base::Result<Verified>(
            VerifyError::bad_signature,
            fmt::format("{} is not what was signed ({})", inputs.record.filename().string(), detail));
      case pki::SignatureError::untrusted: return base::Result<Verified>(VerifyError::untrusted, detail);
      case pki::SignatureError::malformed:
        return base::Result<Verified>(VerifyError::bad_signature,
                                      fmt::format("{}: {}", inputs.signature.filename().string(), detail));
      case pki::SignatureError::bad_signature: break;
    }
    return base::Result<Verified>(VerifyError::bad_signature, detail);
  }
  auto record = from_json_text(*text);
  if (!record) return base::Result<Verified>(VerifyError::malformed, record.error().message);

  auto report_bytes = read(inputs.report, report::kMaxRecordBytes, "the report");
  if (!report_bytes) return report_bytes.error();
  if (const auto digest = base::sha256_hex(*report_bytes); digest != record->report_sha256) {
    return base::Result<Verified>(VerifyError::report_mismatch,
                                  fmt::format("{} has SHA-256 {}; the record certifies {}", inputs.report.string(),
                                              digest, record->report_sha256));
  }
  if (record->suite.digest != inputs.suite_digest) {
    return base::Result<Verified>(
        VerifyError::suite_mismatch,
        fmt::format("the record's suite is {}, this build's catalog is {}: the rules or cases differ",
                    record->suite.digest, inputs.suite_digest));
  }
  return Verified{*std::move(record), signer->subject};
}

}  // namespace mdmc::certify
