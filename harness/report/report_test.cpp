#include "harness/report/report.hpp"
#include "harness/scenario/assessment.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness/base/files.hpp"
#include "harness/plist/value.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/report/html.hpp"
#include "harness/testing/sample_run.hpp"

namespace mdmc::report {
namespace {

namespace chr = std::chrono;
namespace fs = std::filesystem;
using scenario::CaseResult;
using scenario::Finding;
using scenario::Level;
using scenario::RunResult;
using scenario::TranscriptEntry;
using scenario::Verdict;
using ::testing::HasSubstr;
using ::testing::Not;

// The error a reader gave, or empty when it read.
std::string error_of(const base::Result<RunResult>& read) { return read ? std::string() : read.error().message; }

// The sample record and its parts come from harness/testing, shared by every report test.
using testing::sample_run;
using testing::sample_time;
TranscriptEntry exchange(std::string label, std::string request_body, int status, std::string response_body) {
  return testing::sample_exchange(std::move(label), std::move(request_body), status, std::move(response_body));
}

// A fresh directory under the system's temp directory, removed when the test ends.
class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("mdmc_report_test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    ASSERT_TRUE(fs::create_directories(dir_));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

TEST(ReportJson, RoundTripsARunWithAFailingCaseAndATranscript) {
  const RunResult run = sample_run();
  const std::string text = to_json_text(run);
  std::string error;
  const auto back = from_json_text(text);
  ASSERT_TRUE(back) << back.message();

  // Every field is written, so writing the copy again must give the same bytes.
  EXPECT_EQ(to_json_text(*back), text);
  EXPECT_EQ(back->seed, run.seed);
  EXPECT_EQ(back->builtin_fault, "syn_drop_last");
  ASSERT_EQ(back->cases.size(), 3u);
  const CaseResult& c = back->cases[1];
  EXPECT_EQ(c.verdict, Verdict::fail);
  EXPECT_EQ(c.reason, run.cases[1].reason);
  ASSERT_EQ(c.findings.size(), 2u);
  EXPECT_FALSE(c.findings[0].passed);
  EXPECT_EQ(c.findings[0].step, 4);
  ASSERT_EQ(c.transcript.size(), 2u);
  EXPECT_EQ(c.transcript[0].exchange.started, sample_time());
  EXPECT_EQ(c.transcript[0].exchange.elapsed, chr::microseconds{1834});
  ASSERT_TRUE(c.transcript[0].exchange.response);
  EXPECT_EQ(c.transcript[0].exchange.response->body, "<plist>cmd</plist>");
  EXPECT_EQ(c.transcript[0].exchange.request.headers, run.cases[1].transcript[0].exchange.request.headers);
  // The last transport error reads back too: the reader walks the whole enum.
  EXPECT_EQ(c.transcript[1].exchange.error, net::TransportError::tls_client_certificate_rejected);
  EXPECT_TRUE(c.transcript[1].exchange.tls);
  EXPECT_EQ(back->identity_mode, "both");
  ASSERT_TRUE(c.transcript[0].response_body_cut);
  EXPECT_EQ(c.transcript[0].response_body_cut->bytes, 9'000'000u);
  EXPECT_EQ(c.transcript[0].exchange.redirects, run.cases[1].transcript[0].exchange.redirects);
  EXPECT_EQ(back->notes, run.notes);
  EXPECT_FALSE(c.transcript[1].exchange.response);
  ASSERT_EQ(back->rules.size(), 3u);
  EXPECT_EQ(back->rules[1].failed_cases, std::vector<std::string>{"syn/all"});
  // The info grade and whether the server uses the option read back; rules without a may-level
  // finding have no option to report.
  EXPECT_EQ(back->cases[2].verdict, Verdict::info);
  EXPECT_EQ(back->cases[2].findings.at(0).level, Level::may);
  EXPECT_EQ(back->rules[2].verdict, Verdict::info);
  EXPECT_EQ(back->rules[2].uses_option, false);
  EXPECT_FALSE(back->rules[0].uses_option.has_value());
  EXPECT_FALSE(back->rules[1].uses_option.has_value());
  // Microseconds survive, so exchanges made at once keep their order; so do step numbers.
  EXPECT_EQ(c.transcript[1].exchange.started, sample_time() + chr::microseconds{5});
  EXPECT_EQ(c.transcript[0].step, 4);
  EXPECT_EQ(c.transcript[1].step, -1);
  EXPECT_FALSE(back->cases[0].transcript[0].step);
  EXPECT_EQ(back->rules[0].apple, run.rules[0].apple);
  EXPECT_EQ(back->rules[1].grounding, "http");
}

TEST(ReportJson, ReadsARecordWrittenBeforeStepsAndRuleTexts) {
  auto j = nlohmann::json::parse(to_json_text(sample_run()));
  for (auto& c : j["cases"]) {
    for (auto& e : c["transcript"]) e.erase("step");
  }
  for (auto& r : j["rules"]) {
    for (const char* key : {"summary", "apple", "source", "grounding", "uses_option"}) r.erase(key);
  }
  j["cases"][1]["transcript"][0]["started"] = "2026-11-29T08:51:55.123Z";  // milliseconds, as then
  const auto back = from_json_text(j.dump());
  ASSERT_TRUE(back) << back.message();
  EXPECT_FALSE(back->cases[1].transcript[0].step);
  EXPECT_EQ(back->rules[0].apple, "");
  EXPECT_FALSE(back->rules[2].uses_option.has_value()) << "a record from before uses_option";
  EXPECT_EQ(back->cases[1].transcript[0].exchange.started, sample_time() - chr::microseconds{456});
}

TEST(ReportJson, RefusesAStepBelowMinusOne) {
  auto j = nlohmann::json::parse(to_json_text(sample_run()));
  j["cases"][1]["transcript"][0]["step"] = -7;
  std::string error;
  error = error_of(from_json_text(j.dump()));
  EXPECT_FALSE(error.empty());
  EXPECT_THAT(error, HasSubstr("cases[1].transcript[0].step: out of range"));
}

TEST(ReportJson, RoundTripsEachDeviceOfEveryAttemptWithTheIdentityItPresented) {
  RunResult run = sample_run();
  run.cases[1].devices.push_back({"mac", "9A8B7C6D-0000-4000-8000-000000000003", 2, {"issued", "", ""}});
  run.cases[1].devices.push_back({"mac", "9A8B7C6D-0000-4000-8000-000000000004", 1, {"none", "", ""}});
  const std::string text = to_json_text(run);
  EXPECT_THAT(text, HasSubstr("\"devices\": [\n        {\n          \"name\": \"mac\",\n          \"udid\": "
                              "\"5E1F0A2B-6C3D-4E5F-8A9B-0C1D2E3F4A5B\",\n          \"attempt\": 0,\n          "
                              "\"identity\": {\n            \"source\": \"pool:device-01.p12\","));
  const auto back = from_json_text(text);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(to_json_text(*back), text);
  ASSERT_EQ(back->cases[1].devices.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& want = run.cases[1].devices[i];
    const auto& got = back->cases[1].devices[i];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.udid, want.udid);
    EXPECT_EQ(got.attempt, want.attempt);
    EXPECT_EQ(got.identity.source, want.identity.source);
    EXPECT_EQ(got.identity.sha256, want.identity.sha256);
    EXPECT_EQ(got.identity.common_name, want.identity.common_name);
  }
  EXPECT_EQ(back->cases[1].devices[1].identity.common_name, "device-02");
  EXPECT_EQ(back->cases[1].devices[2].attempt, 2);
}

TEST(ReportJson, RoundTripsWhatEachChannelHeldOfDeclarations) {
  RunResult run = sample_run();
  run.cases[0].declarations.push_back(
      {"mac", "tok-1", {{"mdmconform.passcode", "com.apple.configuration.passcode.settings", "st-1", true, true}}});
  run.cases[0].declarations.push_back({"mac/alice", "tok-2", {}});
  const std::string text = to_json_text(run);
  EXPECT_THAT(text, HasSubstr("\"declarations_token\": \"tok-1\""));
  const auto back = from_json_text(text);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(to_json_text(*back), text);
  ASSERT_EQ(back->cases[0].declarations.size(), 2u);
  const auto& held = back->cases[0].declarations[0].held;
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].type, "com.apple.configuration.passcode.settings");
  EXPECT_TRUE(held[0].active);
  EXPECT_TRUE(back->cases[0].declarations[1].held.empty());
  // A case that synced nothing writes no key at all.
  EXPECT_EQ(to_json_text(sample_run()).find("\"declarations\""), std::string::npos);
}

TEST(ReportJson, ReadsARecordWrittenBeforeDevicesWereRecordedAndNamesABadOne) {
  auto json = nlohmann::json::parse(to_json_text(sample_run()));
  for (auto& c : json["cases"]) c.erase("devices");
  const auto back = from_json_text(json.dump());
  ASSERT_TRUE(back) << back.message();
  EXPECT_TRUE(back->cases[0].devices.empty());
  EXPECT_TRUE(back->cases[1].devices.empty());

  json = nlohmann::json::parse(to_json_text(sample_run()));
  json["cases"][1]["devices"][1]["identity"].erase("sha256");
  EXPECT_THAT(error_of(from_json_text(json.dump())), HasSubstr("cases[1].devices[1].identity.sha256"));
  json = nlohmann::json::parse(to_json_text(sample_run()));
  json["cases"][0]["devices"][0]["attempt"] = -1;
  EXPECT_THAT(error_of(from_json_text(json.dump())), HasSubstr("cases[0].devices[0].attempt"));
}

TEST(ReportJson, WritesTheDocumentedLayout) {
  const std::string text = to_json_text(sample_run());
  EXPECT_EQ(text.rfind("{\n  \"schema_version\": 1,\n  \"harness\": {", 0), 0u) << text;
  EXPECT_THAT(text, HasSubstr("\"seed\": \"18446744073709551615\""));
  EXPECT_THAT(text, HasSubstr("\"counts\": {\n    \"pass\": 1,\n    \"fail\": 1,\n    \"warn\": 0,\n    \"info\": 1,\n"
                              "    \"skip\": 0,\n    \"error\": 0\n  }"));
  EXPECT_THAT(text,
              HasSubstr("\"verdict\": \"info\",\n      \"reason\": \"the server does not use this option (may): "));
  EXPECT_THAT(text, HasSubstr("\"failed_cases\": [\n        \"ucf/device_configured\"\n      ],\n"
                              "      \"uses_option\": false,\n"));
  EXPECT_EQ(text.find("\"uses_option\": true"), std::string::npos) << "left out where there is no option";
  EXPECT_THAT(text, HasSubstr("\"started\": \"2026-11-29T08:51:55.123456Z\""));
  EXPECT_THAT(text, HasSubstr("\"error\": \"tls_client_certificate_rejected\""));
  EXPECT_THAT(text, HasSubstr("\"response\": null"));
  // "error" is left out of an exchange that had none.
  EXPECT_EQ(text.find("\"error\": \"none\""), std::string::npos);
}

TEST(ReportJson, WritesABodyThatIsNotUtf8AsBase64WithoutThrowing) {
  RunResult run = sample_run();
  const std::string bytes("bplist00\xff\xfe\x00\x01\xc0\xaf", 14);  // \xc0\xaf: overlong '/'
  run.cases[0].transcript[0].exchange.response->body = bytes;
  run.cases[0].transcript[0].exchange.response->headers.push_back({"X-Bad", "\xe9t\xe9"});
  run.cases[0].reason = "half a code point: \xe2\x82";

  std::string text;
  ASSERT_NO_THROW(text = to_json_text(run));
  EXPECT_THAT(text, HasSubstr("\"body\": {\n"));
  EXPECT_THAT(text, HasSubstr("\"base64\": \"YnBsaXN0MDD//gABwK8=\""));

  const auto back = from_json_text(text);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(back->cases[0].transcript[0].exchange.response->body, bytes);
  EXPECT_EQ(back->cases[0].transcript[0].exchange.response->headers.back().value, "\xe9t\xe9");
  // Free text is for people: its broken bytes become U+FFFD rather than base64.
  EXPECT_EQ(back->cases[0].reason, "half a code point: \xef\xbf\xbd\xef\xbf\xbd");
}

TEST(ReportJson, RefusesAnotherSchemaVersion) {
  std::string error;
  error = error_of(from_json_text(R"({"schema_version": 2})"));
  EXPECT_FALSE(error.empty());
  EXPECT_THAT(error, HasSubstr("schema_version"));
}

TEST(ReportJson, NamesThePathOfAMalformedField) {
  std::string text = to_json_text(sample_run());
  const std::string good = "\"verdict\": \"fail\",\n      \"reason\"";
  const auto at = text.find(good);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, good.size(), "\"verdict\": \"ok\",\n      \"reason\"");
  std::string error;
  error = error_of(from_json_text(text));
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error, "cases[1].verdict: unknown verdict \"ok\"");

  error = error_of(from_json_text("{\"schema_version\": 1,"));
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error, "not valid JSON");
  EXPECT_FALSE(from_json_text("[]"));
}

TEST(JunitXml, CountsVerdictsAndEscapesTheReason) {
  RunResult run = sample_run();
  run.cases[1].reason = "a <&\"> b\x01 c";
  run.cases[1].findings[0].actual = "<dict/> & \x1b[2J";
  CaseResult skipped;
  skipped.id = "net/refuse_410";
  skipped.rules = {"NET-REFUSE-410"};
  skipped.verdict = Verdict::skip;
  skipped.reason = "the profile names no network user";
  CaseResult errored;
  errored.id = "chk/checkout";
  errored.verdict = Verdict::error;
  errored.reason = "target unreachable";
  run.cases.push_back(skipped);
  run.cases.push_back(errored);

  const std::string xml = to_junit_xml(run);
  EXPECT_THAT(xml, HasSubstr("<testsuite name=\"mdmconform\" tests=\"5\" failures=\"1\" "
                             "errors=\"1\" skipped=\"1\" time=\"0.410\">"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"SYN\" name=\"syn/all\" time=\"0.057\">"));
  EXPECT_THAT(xml, HasSubstr("<failure message=\"a &lt;&amp;&quot;&gt; b c\" type=\"fail\">"
                             "SYN-ALL: expected 3 commands, got &lt;dict/&gt; &amp; [2J\n"
                             "</failure>"));
  EXPECT_THAT(xml, HasSubstr("<skipped message=\"the profile names no network user\"/>"));
  // A case without rules is classed by its id's first segment.
  EXPECT_THAT(xml, HasSubstr("classname=\"CHK\" name=\"chk/checkout\""));
  EXPECT_THAT(xml, HasSubstr("<error message=\"target unreachable\""));
  EXPECT_THAT(xml, Not(HasSubstr("\x01")));
  EXPECT_THAT(xml, Not(HasSubstr("\x1b")));
}

TEST(JunitXml, TurnsAWarnIntoAPassWithItsWarningsInSystemOut) {
  RunResult run = sample_run();
  run.cases[1].verdict = Verdict::warn;
  run.cases[1].findings[0].level = Level::should;
  const std::string xml = to_junit_xml(run);
  EXPECT_THAT(xml, HasSubstr("failures=\"0\""));
  EXPECT_THAT(xml, HasSubstr("<system-out>warning: SYN-ALL: expected 3 commands, got 2\n</system-out>"));
  EXPECT_THAT(xml, Not(HasSubstr("<failure")));
}

TEST(JunitXml, TurnsAnInfoIntoAPassThatSaysWhichOptionTheServerDoesNotUse) {
  const std::string xml = to_junit_xml(sample_run());
  EXPECT_THAT(xml, HasSubstr("failures=\"1\" errors=\"0\" skipped=\"0\""));  // syn/all's alone
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"UCF\" name=\"ucf/device_configured\" time=\"0.009\">\n"
                             "    <system-out>info: the server does not use this option (may): UCF-DEVICECONFIGURED: "
                             "expected a DeviceConfigured command on mac/alice, got an empty body\n</system-out>\n"
                             "  </testcase>"));
  EXPECT_EQ(xml.find("<failure message=\"the server does not use"), std::string::npos);
}

TEST(ConsoleSummary, ListsEachCaseAndEndsWithTheTotals) {
  const std::string text = console_summary(sample_run());
  EXPECT_THAT(text, HasSubstr("PASS  chn/idle_empty         (12 ms)\n"));
  EXPECT_THAT(text, HasSubstr("FAIL  syn/all                SYN-ALL: expected 3 commands, got 2\n"));
  EXPECT_THAT(text, HasSubstr("SYN-ALL               must    fail          1       1\n"));
  EXPECT_THAT(text, HasSubstr("\n3 cases: 1 pass, 1 fail, 0 warn, 1 info, 0 skip, 0 error in 0.41 s\n"));
  EXPECT_EQ(text.substr(text.size() - 1), "\n");
}

TEST(ConsoleSummary, ShowsAnUnusedMayOptionAsInfoAndSaysSo) {
  RunResult run = sample_run();
  std::string text = console_summary(run);
  EXPECT_THAT(text, HasSubstr("INFO  ucf/device_configured  the server does not use this option (may): "
                              "UCF-DEVICECONFIGURED: expected a DeviceConfigured command on mac/alice; got an empty "
                              "body\n"));
  EXPECT_THAT(
      text, HasSubstr("UCF-DEVICECONFIGURED  may     info          1       1  the server does not use this option\n"));
  run.rules[2].uses_option = true;
  run.rules[2].failed_cases.clear();
  text = console_summary(run);
  EXPECT_THAT(text, HasSubstr("UCF-DEVICECONFIGURED  may     info          1       0  the server uses this option\n"));
  // No replay line: an info case is not a failure to reproduce.
  EXPECT_EQ(text.find("replay:"), std::string::npos);
}

TEST(ConsoleSummary, ShowsControlCharactersFromTheTargetEscaped) {
  RunResult run = sample_run();
  run.cases[1].reason =
      "got \x1b[2J\nand \xc2\x9b"
      "31m";
  run.interrupted = true;
  const std::string text = console_summary(run);
  EXPECT_THAT(text, HasSubstr("got \\x1B[2J\\nand \\u009B31m\n"));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  EXPECT_THAT(text, HasSubstr("interrupted"));
}

using WriteRun = TempDir;

TEST_F(WriteRun, CreatesTheFolderAndItsFiveFiles) {
  const RunResult run = sample_run();
  const fs::path folder = dir_ / "reports" / run_folder_name(run);
  const auto written = write_run(run, folder);
  ASSERT_TRUE(written) << written.message();
  EXPECT_EQ(read(folder / "report.json"), to_json_text(run));
  EXPECT_EQ(read(folder / "junit.xml"), to_junit_xml(run));
  EXPECT_EQ(read(folder / "summary.txt"), console_summary(run));
  EXPECT_EQ(read(folder / "summary.md"), to_markdown(run));
  EXPECT_EQ(read(folder / "report.html"), to_html(run));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(folder)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"junit.xml", "report.html", "report.json", "summary.md", "summary.txt"}));
}

TEST(RunFolderName, IsTheUtcStartTimeAndAFilesystemSafeTarget) {
  RunResult run;
  run.started_at = "2026-11-29T08:51:55Z";
  run.target_name = "reference";
  EXPECT_EQ(run_folder_name(run), "20261129T085155Z-reference");

  run.started_at = "2026-11-29T09:51:55.999+01:00";
  run.target_name = "../nano mdm/\xe9";
  EXPECT_EQ(run_folder_name(run), "20261129T085155Z-.._nano_mdm__");

  run.started_at = "yesterday";
  run.target_name.clear();
  EXPECT_EQ(run_folder_name(run), "unknown-time-target");
}

// ---------------------------------------------------------------------------------------------
// Redaction.

// 32 bytes of push token, with a zero and high bytes, as a device sends it.
const std::string kPushToken(
    "\x7f\x3a\x00\x9c\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08"
    "\x11\x12\x13\x14\x15\x16\x17\x18\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7",
    32);
const std::string kPushMagic = "6C2D3E4F-5A6B-4C7D-8E9F-0A1B2C3D4E5F";
const std::string kUnlockToken = "unlock-token-bytes-0123456789";

plist::Value token_update() {
  return plist::Value(plist::Dict{{"MessageType", "TokenUpdate"},
                                  {"Topic", "com.apple.mgmt.External.1"},
                                  {"UDID", "0000FE00-5D1C9A2A2B3C4D5E"},
                                  {"Token", plist::Data{kPushToken}},
                                  {"PushMagic", kPushMagic},
                                  {"UnlockToken", plist::Data{kUnlockToken}}});
}

std::vector<std::string> keys_of(const plist::Value& v) {
  std::vector<std::string> out;
  if (const auto* d = v.as_dict()) {
    for (const auto& [k, child] : *d) out.push_back(k);
  }
  return out;
}

// One case whose transcript is the single exchange given.
RunResult run_with(TranscriptEntry entry) {
  RunResult run = sample_run();
  run.cases[0].transcript = {std::move(entry)};
  return run;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

TEST(RedactSecrets, TakesTheTokensOutOfATokenUpdateAndKeepsItAnXmlPlistWithTheSameKeys) {
  const std::string body = plist::to_xml(token_update());
  ASSERT_TRUE(contains(body, kPushMagic));
  RunResult run = run_with(exchange("TokenUpdate (device)", body, 200, ""));
  redact_secrets(run);
  EXPECT_TRUE(run.redacted);

  const std::string& out = run.cases[0].transcript[0].exchange.request.body;
  EXPECT_FALSE(contains(out, kPushMagic));
  EXPECT_FALSE(contains(out, kPushToken));
  EXPECT_FALSE(contains(out, kUnlockToken));
  // What the XML carried the data as: base64.
  const auto original = plist::parse(body);
  ASSERT_TRUE(original);
  EXPECT_EQ(plist::sniff(out), plist::Format::xml);
  const auto parsed = plist::parse(out);
  ASSERT_TRUE(parsed) << parsed.message();
  EXPECT_EQ(keys_of(*parsed), keys_of(*original));
  EXPECT_EQ(parsed->string_at("PushMagic"), "<redacted: 36 chars>");
  ASSERT_TRUE(parsed->find("Token") && parsed->find("Token")->as_data());
  EXPECT_EQ(parsed->find("Token")->as_data()->bytes, "<redacted: 32 bytes>");
  EXPECT_EQ(parsed->find("UnlockToken")->as_data()->bytes, "<redacted: 29 bytes>");
  // What is not a secret stays.
  EXPECT_EQ(parsed->string_at("UDID"), "0000FE00-5D1C9A2A2B3C4D5E");
  EXPECT_EQ(parsed->string_at("MessageType"), "TokenUpdate");
  // The marker costs less than the secret it replaces here.
  EXPECT_LE(out.size(), body.size() + 3 * kRedactionGrowthPerValue);
}

TEST(RedactSecrets, KeepsABinaryPlistBinary) {
  const std::string body = plist::to_binary(token_update());
  RunResult run = run_with(exchange("TokenUpdate (device)", body, 200, ""));
  redact_secrets(run);
  const std::string& out = run.cases[0].transcript[0].exchange.request.body;
  EXPECT_EQ(plist::sniff(out), plist::Format::binary);
  EXPECT_FALSE(contains(out, kPushToken));
  EXPECT_FALSE(contains(out, kPushMagic));
  EXPECT_FALSE(contains(out, kUnlockToken));
  const auto parsed = plist::parse(out);
  ASSERT_TRUE(parsed) << parsed.message();
  EXPECT_EQ(parsed->string_at("PushMagic"), "<redacted: 36 chars>");
  EXPECT_EQ(parsed->string_at("Topic"), "com.apple.mgmt.External.1");
}

TEST(RedactSecrets, FindsADigestResponseNestedInAUserAuthenticateAndAnAuthTokenInTheAnswer) {
  const std::string digest = "digest-response-for-alice-0f1e2d3c";
  const std::string auth_token = "auth-token-issued-by-server-99";
  plist::Dict inner{{"DigestResponse", digest}, {"UserID", "A1B2"}};
  const plist::Value request(plist::Dict{{"MessageType", "UserAuthenticate"},
                                         {"UDID", "0000FE00-5D1C9A2A2B3C4D5E"},
                                         {"Extra", plist::Array{plist::Value(inner)}},
                                         {"DigestResponse", digest}});
  const plist::Value answer(plist::Dict{{"AuthToken", auth_token}});
  RunResult run = run_with(exchange("UserAuthenticate", plist::to_xml(request), 200, plist::to_xml(answer)));
  redact_secrets(run);
  const net::Exchange& x = run.cases[0].transcript[0].exchange;
  EXPECT_FALSE(contains(x.request.body, digest));
  EXPECT_FALSE(contains(x.response->body, auth_token));
  const auto parsed = plist::parse(x.request.body);
  ASSERT_TRUE(parsed);
  const plist::Value& nested = parsed->find("Extra")->as_array()->front();
  EXPECT_EQ(nested.string_at("DigestResponse"), "<redacted: 34 chars>");
  EXPECT_EQ(nested.string_at("UserID"), "A1B2");
}

TEST(RedactSecrets, KeepsAnEmptyBootstrapTokenBecauseEmptyMeansRemoveIt) {
  const std::string body =
      plist::to_xml(plist::Value(plist::Dict{{"MessageType", "SetBootstrapToken"}, {"BootstrapToken", plist::Data{}}}));
  RunResult run = run_with(exchange("SetBootstrapToken", body, 200, ""));
  redact_secrets(run);
  EXPECT_EQ(run.cases[0].transcript[0].exchange.request.body, body);
}

TEST(RedactSecrets, RedactsAuthorizationKeepingTheSchemeAndMdmSignature) {
  TranscriptEntry e = exchange("enqueue ProfileList", "{}", 200, "");
  const std::string signature(120, 'M');
  e.exchange.request.headers.push_back({"authorization", "Basic YWRtaW46c2VjcmV0LXBhc3N3b3Jk"});
  e.exchange.request.headers.push_back({"Mdm-Signature", signature});
  e.exchange.response->headers.push_back({"Proxy-Authorization", "opaque-token-without-scheme"});
  RunResult run = run_with(e);
  run.cases[0].findings[0].actual = "sent Authorization: Basic YWRtaW46c2VjcmV0LXBhc3N3b3Jk";
  redact_secrets(run);
  const net::Exchange& x = run.cases[0].transcript[0].exchange;
  EXPECT_EQ(net::find_header(x.request.headers, "Authorization"), "Basic <redacted>");
  EXPECT_EQ(net::find_header(x.request.headers, "Mdm-Signature"), "<redacted: 120 chars>");
  EXPECT_EQ(net::find_header(x.response->headers, "Proxy-Authorization"), "<redacted>");
  // Other headers stay as they were.
  EXPECT_EQ(x.request.headers.front(), e.exchange.request.headers.front());
  EXPECT_EQ(run.cases[0].findings[0].actual, "sent Authorization: Basic <redacted: 28 chars>");
}

TEST(RedactSecrets, RemovesAPemPrivateKeyFromABodyThatIsNotAPlist) {
  const std::string key =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretsecret\nAAAA\n-----END RSA PRIVATE KEY-----";
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----";
  const std::string body = "{\"identity\": \"" + cert + "\n" + key + "\", \"ok\": true}";
  RunResult run = run_with(exchange("admin", "", 200, body));
  redact_secrets(run);
  EXPECT_EQ(run.cases[0].transcript[0].exchange.response->body,
            "{\"identity\": \"" + cert + "\n-----REDACTED PRIVATE KEY-----\", \"ok\": true}");
}

TEST(RedactSecrets, RemovesAPemPrivateKeyFromAPlistStringAndACutOffOneFromAReason) {
  const std::string key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
  const std::string body = plist::to_xml(plist::Value(plist::Dict{{"Note", "before\n" + key + "after"}}));
  RunResult run = run_with(exchange("Idle", "", 200, body));
  run.cases[0].reason = "body began: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB";
  redact_secrets(run);
  const auto parsed = plist::parse(run.cases[0].transcript[0].exchange.response->body);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->string_at("Note"), "before\n-----REDACTED PRIVATE KEY-----\nafter");
  EXPECT_EQ(run.cases[0].reason, "body began: -----REDACTED PRIVATE KEY-----");
}

TEST(RedactSecrets, ScrubsATokenThatAFindingOrAReasonQuoted) {
  const std::string body = plist::to_xml(token_update());
  RunResult run = run_with(exchange("TokenUpdate (device)", body, 500, ""));
  Finding& f = run.cases[1].findings[0];
  f.actual = "500; the server logged PushMagic " + kPushMagic + " for token " +
             "7f3a009cdeadbeef0102030405060708111213141516171"
             "8f0f1f2f3f4f5f6f7";
  run.cases[1].reason = "request was: " + body.substr(0, 400);
  ASSERT_TRUE(contains(run.cases[1].reason, kPushMagic));
  redact_secrets(run);
  EXPECT_EQ(f.actual,
            "500; the server logged PushMagic <redacted: 36 chars> for token "
            "<redacted: 64 chars>");
  EXPECT_FALSE(contains(run.cases[1].reason, kPushMagic));
  EXPECT_FALSE(contains(to_json_text(run), kPushMagic));
}

TEST(RedactSecrets, IsIdempotent) {
  TranscriptEntry e = exchange("TokenUpdate (device)", plist::to_binary(token_update()), 200,
                               "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
  e.exchange.request.headers.push_back({"Authorization", "Bearer abcdefghijklmnop"});
  e.exchange.request.headers.push_back({"Mdm-Signature", std::string(64, 'S')});
  RunResult run = run_with(e);
  run.cases[0].transcript.push_back(exchange("TokenUpdate (user)", plist::to_xml(token_update()), 200, ""));
  run.cases[1].findings[0].actual = "quoted " + kPushMagic;
  redact_secrets(run);
  const std::string once = to_json_text(run);
  redact_secrets(run);
  EXPECT_EQ(to_json_text(run), once);
}

TEST(RedactSecrets, LeavesARunWithoutSecretsByteForByteExceptTheFlag) {
  RunResult run = sample_run();
  // A real plist without secrets is not written again (that would change its layout).
  run.cases[0].transcript[0].exchange.request.body =
      "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>MessageType</key>"
      "<string>Authenticate</string><key>DigestChallenge</key><string>nonce-1234567</string>"
      "</dict></plist>";
  run.cases[0].transcript[0].exchange.request.headers.push_back({"Content-Length", "12"});
  RunResult expected = run;
  expected.redacted = true;
  redact_secrets(run);
  EXPECT_EQ(to_json_text(run), to_json_text(expected));
}

TEST(RedactSecrets, ReplacesABodyWholeWhenWritingItAgainWouldGrowItTooMuch) {
  // Compact XML: libplist writes every value on its own indented line, so writing this again
  // would add several bytes per value, far beyond the allowance for one replaced value.
  std::string body = "<plist version=\"1.0\"><dict><key>Token</key><data>c2VjcmV0LXRva2Vu</data>";
  for (int i = 0; i < 2000; ++i) body += fmt::format("<key>k{}</key><true/>", i);
  body += "</dict></plist>";
  ASSERT_TRUE(plist::parse(body));
  RunResult run = run_with(exchange("TokenUpdate", body, 200, ""));
  redact_secrets(run);
  const std::string& out = run.cases[0].transcript[0].exchange.request.body;
  EXPECT_EQ(out, fmt::format("<redacted: a {}-byte plist holding secrets>", body.size()));
}

TEST(RedactSecrets, NeverThrowsOnGarbageBodies) {
  std::vector<std::string> bodies = {
      std::string("bplist00\xff\xff\xff", 11),
      std::string("bplist00", 8) + std::string(64, '\0'),
      "<?xml version=\"1.0\"?><plist><dict><key>Token</key><data>!!!</data>",
      "<plist>" + std::string(5000, '\x01') + "</plist>",
      std::string(70, '[') + "<plist>",
      "<plist><array>" +
          [] {
            std::string deep;
            for (int i = 0; i < 200; ++i) deep += "<array>";
            return deep;
          }(),
      "-----BEGIN PRIVATE KEY-----",
      "-----BEGIN -----BEGIN PRIVATE KEY----------END PRIVATE KEY-----",
      "-----BEGIN \n PRIVATE KEY-----",
      std::string("\xc0\xaf\xed\xa0\x80", 5),
  };
  std::mt19937 rng(6);
  for (int i = 0; i < 200; ++i) {
    std::string b = plist::to_binary(token_update());
    for (int k = 0; k < 4; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    bodies.push_back(b);
  }
  RunResult run = sample_run();
  for (const auto& b : bodies) {
    TranscriptEntry e = exchange("garbage", b, 200, b);
    e.exchange.request.headers.push_back({"Authorization", b});
    e.exchange.request.headers.push_back({"Mdm-Signature", b});
    run.cases[0].transcript.push_back(e);
    run.cases[0].findings.push_back(Finding{"X", Level::must, false, b, b, 0});
  }
  ASSERT_NO_THROW(redact_secrets(run));
  const std::string once = to_json_text(run);
  ASSERT_NO_THROW(redact_secrets(run));
  EXPECT_EQ(to_json_text(run), once);
}

TEST(ReportJson, RecordsWhetherTheRunWasRedacted) {
  RunResult run = sample_run();
  run.redacted = true;
  const std::string text = to_json_text(run);
  EXPECT_THAT(text, HasSubstr("\"interrupted\": false,\n  \"redacted\": true,"));
  const auto back = from_json_text(text);
  ASSERT_TRUE(back) << back.message();
  EXPECT_TRUE(back->redacted);

  // A record from before the field existed was not redacted.
  std::string old = text;
  old.erase(old.find("  \"redacted\": true,\n"), std::string("  \"redacted\": true,\n").size());
  const auto older = from_json_text(old);
  ASSERT_TRUE(older) << older.message();
  EXPECT_FALSE(older->redacted);
}

TEST(ConsoleSummary, SaysSecretsAreKeptOnlyWhenTheRunWasNotRedacted) {
  RunResult run = sample_run();
  EXPECT_THAT(console_summary(run), HasSubstr("note: secrets are NOT redacted (--no-redact)\n"));
  run.redacted = true;
  EXPECT_THAT(console_summary(run), Not(HasSubstr("redacted")));
}

// sample_run with what a run now certifies, and a failing case that was confirmed flaky.
RunResult certified_run() {
  RunResult run = sample_run();
  run.apple_schema_revision = "apple/device-management b6202ca (iOS 18.1 / macOS 15.1)";
  run.declares = {{"per_user_connections", true}, {"sync_response", false}};
  CaseResult& failed = run.cases[1];
  failed.flaky = true;
  failed.attempts = {"fail", "pass", "fail"};
  failed.reproducer = "mdmconform run --seed 7 --fault not-now-dropped syn/all";
  return run;
}

TEST(ReportJson, RecordsWhatItCertifiesAndHowEachFailureWasConfirmed) {
  const RunResult run = certified_run();
  const std::string text = to_json_text(run);
  EXPECT_THAT(
      text, HasSubstr("\"declares\": {\n      \"per_user_connections\": true,\n      \"sync_response\": false\n    }"));
  EXPECT_THAT(text,
              HasSubstr("\"apple_schema_revision\": \"apple/device-management b6202ca (iOS 18.1 / macOS 15.1)\""));
  EXPECT_THAT(text, HasSubstr("\"flaky\": true,\n      \"attempts\": [\n        \"fail\",\n        \"pass\","));
  const auto back = from_json_text(text);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(to_json_text(*back), text);
  EXPECT_EQ(back->apple_schema_revision, run.apple_schema_revision);
  EXPECT_EQ(back->declares, run.declares);
  EXPECT_TRUE(back->cases[1].flaky);
  EXPECT_EQ(back->cases[1].attempts, run.cases[1].attempts);
  EXPECT_EQ(back->cases[1].reproducer, run.cases[1].reproducer);
  EXPECT_FALSE(back->cases[0].flaky);
}

TEST(ReportJson, ReadsARecordFromBeforeConfirmationReproducersAndDeclares) {
  auto json = nlohmann::json::parse(to_json_text(certified_run()));
  json.erase("apple_schema_revision");
  json["target"].erase("declares");
  for (auto& c : json["cases"]) {
    c.erase("flaky");
    c.erase("attempts");
    c.erase("reproducer");
  }
  const auto back = from_json_text(json.dump());
  ASSERT_TRUE(back) << back.message();
  EXPECT_TRUE(back->apple_schema_revision.empty());
  EXPECT_TRUE(back->declares.empty());
  EXPECT_FALSE(back->cases[1].flaky);
  EXPECT_TRUE(back->cases[1].reproducer.empty());
}

TEST(ReportJson, NamesAMalformedDeclaration) {
  auto json = nlohmann::json::parse(to_json_text(certified_run()));
  json["target"]["declares"]["per_user_connections"] = "yes";
  std::string error;
  error = error_of(from_json_text(json.dump()));
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error, "target.declares.per_user_connections: expected true or false");
}

TEST(ConsoleSummary, MarksAFlakyVerdictAndPrintsTheReproducerUnderTheCase) {
  const std::string text = console_summary(certified_run());
  EXPECT_THAT(text, HasSubstr("PASS        chn/idle_empty         (12 ms)\n"));
  EXPECT_THAT(text, HasSubstr("FAIL FLAKY  syn/all                SYN-ALL: expected 3 commands, got 2\n"
                              "            attempts: fail, pass, fail\n"
                              "            replay: mdmconform run --seed 7 --fault not-now-dropped syn/all\n"));
  EXPECT_THAT(text, HasSubstr("1 flaky: "));
}

TEST(JunitXml, CarriesTheReproducerAndTheAttemptsOfAFailure) {
  const std::string xml = to_junit_xml(certified_run());
  EXPECT_THAT(xml, HasSubstr("flaky: attempts fail, pass, fail\nreplay: mdmconform run --seed 7 "
                             "--fault not-now-dropped syn/all\n</failure>"));
  EXPECT_THAT(xml, HasSubstr("name=\"apple_schema_revision\""));
}

RunResult verdicts(std::vector<std::pair<std::string, Verdict>> cases) {
  RunResult run;
  for (auto& [id, v] : cases) {
    CaseResult c;
    c.id = id;
    c.verdict = v;
    if (v == Verdict::warn) c.findings = {Finding{"ENR-UNKNOWN-DEVICE", Level::should, false, "4xx", "200", 0}};
    if (v == Verdict::info) {
      c.findings = {Finding{"UCF-DEVICECONFIGURED", Level::may, false, "DeviceConfigured", "an empty body", 0}};
    }
    run.cases.push_back(std::move(c));
  }
  return run;
}

TEST(VerdictChanges, ListsChangedNewAndMissingCasesOnly) {
  const auto a = verdicts({{"a", Verdict::pass}, {"b", Verdict::fail}, {"c", Verdict::pass}, {"gone", Verdict::pass}});
  const auto b = verdicts({{"a", Verdict::pass}, {"b", Verdict::pass}, {"c", Verdict::fail}, {"new", Verdict::warn}});
  std::vector<std::string> lines;
  for (const auto& change : verdict_changes(a, b)) lines.push_back(describe_change(change));
  EXPECT_EQ(lines, (std::vector<std::string>{"b: fail -> pass", "c: pass -> fail", "new: absent -> warn",
                                             "gone: pass -> absent"}));
  EXPECT_TRUE(verdict_changes(a, a).empty());
}

// The exit code of `run` judged against `baseline`, as `run --baseline` decides it.
int exit_code_against(RunResult run, const RunResult& baseline, bool strict) {
  run.conditions.strict = strict;
  run.baseline = compare_to_baseline(run, baseline, strict, "baseline.json");
  return scenario::assess(run).exit_code;
}

TEST(BaselineExitCode, CountsOnlyNewFailures) {
  const auto baseline = verdicts({{"known", Verdict::fail}, {"warned", Verdict::warn}, {"fine", Verdict::pass}});
  // Failing now and in the baseline: known, exit 0.
  EXPECT_EQ(exit_code_against(verdicts({{"known", Verdict::fail}, {"fine", Verdict::pass}}), baseline, false), 0);
  // A case that passed in the baseline and fails now.
  EXPECT_EQ(exit_code_against(verdicts({{"known", Verdict::fail}, {"fine", Verdict::fail}}), baseline, false), 1);
  // A failing case the baseline does not hold.
  EXPECT_EQ(exit_code_against(verdicts({{"unheard", Verdict::error}}), baseline, false), 1);
  // A passing case the baseline does not hold is no failure.
  EXPECT_EQ(exit_code_against(verdicts({{"unheard", Verdict::pass}}), baseline, false), 0);
  // A wedged target that ended the run: cases went untested, whatever the baseline knew.
  auto wedged = verdicts({{"known", Verdict::fail}, {"fine", Verdict::pass}});
  wedged.wedged = scenario::Wedge{"known", "the server stopped serving writes after known"};
  EXPECT_EQ(exit_code_against(wedged, baseline, false), 1);
  wedged.continued_after_wedge = true;
  EXPECT_EQ(exit_code_against(wedged, baseline, false), 0);
  // A warn that became a fail is new, unless --strict already counted the warn.
  EXPECT_EQ(exit_code_against(verdicts({{"warned", Verdict::fail}}), baseline, false), 1);
  EXPECT_EQ(exit_code_against(verdicts({{"warned", Verdict::fail}}), baseline, true), 0);
  // Under --strict a should-level warn is a failure: new when the baseline passed.
  EXPECT_EQ(exit_code_against(verdicts({{"fine", Verdict::warn}}), baseline, false), 0);
  EXPECT_EQ(exit_code_against(verdicts({{"fine", Verdict::warn}}), baseline, true), 1);
  // An info (a may-level option the server does not use) is never a failure, new or not.
  EXPECT_EQ(exit_code_against(verdicts({{"fine", Verdict::info}}), baseline, false), 0);
  EXPECT_EQ(exit_code_against(verdicts({{"fine", Verdict::info}}), baseline, true), 0);
  EXPECT_EQ(exit_code_against(verdicts({{"unheard", Verdict::info}}), baseline, true), 0);
  auto interrupted = verdicts({{"known", Verdict::fail}});
  interrupted.interrupted = true;
  EXPECT_EQ(exit_code_against(interrupted, baseline, false), 1);
}

using ReadRunFile = TempDir;

TEST_F(ReadRunFile, ReadsAReportAndNamesTheFileWhenItCannot) {
  ASSERT_TRUE(base::write_file_atomically(dir_ / "report.json", to_json_text(sample_run())));
  const auto run = read_run_file(dir_ / "report.json");
  ASSERT_TRUE(run) << run.message();
  EXPECT_EQ(run->cases.size(), 3u);

  EXPECT_THAT(error_of(read_run_file(dir_ / "missing.json")), HasSubstr("missing.json: cannot read"));
  ASSERT_TRUE(base::write_file_atomically(dir_ / "broken.json", "{\"schema_version\": 1"));
  EXPECT_THAT(error_of(read_run_file(dir_ / "broken.json")), HasSubstr("broken.json: not valid JSON"));
}

// Every view tells the same story as the exit code: one row per kind of run, each view checked
// for the overall verdict's words, the marks of a baseline, and strict's failures.
struct ViewRow {
  std::string name;
  std::function<void(RunResult&)> shape;  // from the sample: three cases, all of a catalog of three
  std::string overall;                    // scenario::overall_name
  std::string headline;
  int exit_code;
  int junit_failures;
  std::string mark;  // "new" or "known" on syn/all in every view; empty: none
};

RunResult judged(const ViewRow& row) {
  RunResult run = sample_run();
  run.conditions.catalog_cases = 3;
  run.conditions.tls = "verified against the profile's CA (tls.ca)";
  row.shape(run);
  for (const auto& c : run.cases) run.conditions.selected_cases.push_back(c.id);
  run.rules = scenario::summarize_rules(run.cases, {{"CHN-IDLE-EMPTY", Level::must},
                                                    {"SYN-ALL", Level::must},
                                                    {"SYN-EMPTY-END", Level::must},
                                                    {"UCF-DEVICECONFIGURED", Level::may}});
  scenario::explain_untested(run, {{"CHN-IDLE-EMPTY", {"chn/idle_empty"}},
                                   {"SYN-ALL", {"syn/all"}},
                                   {"SYN-EMPTY-END", {"syn/all"}},
                                   {"UCF-DEVICECONFIGURED", {"ucf/device_configured"}}});
  return run;
}

void syn_all_passes(RunResult& run) {
  auto& c = run.cases[1];
  c.verdict = Verdict::pass;
  c.reason.clear();
  for (auto& f : c.findings) f.passed = true;
}

void syn_all_warns(RunResult& run) {
  auto& c = run.cases[1];
  c.verdict = Verdict::warn;
  c.findings[0].level = Level::should;
}

TEST(EveryView, TellsTheSameStoryAsTheExitCode) {
  const RunResult known_baseline = [] {
    RunResult b = sample_run();
    b.started_at = "2026-11-28T00:00:00Z";
    return b;
  }();
  const std::vector<ViewRow> rows = {
      {"a must failure", [](RunResult&) {}, "failed", "FAILED: 1 rule failed: SYN-ALL", 1, 1, ""},
      {"all passed, whole catalog", syn_all_passes, "certified",
       "CERTIFIED: every must- and should-rule of the catalog ran and passed (3 cases)", 0, 0, ""},
      {"all passed, 3 of 5 cases selected",
       [](RunResult& run) {
         syn_all_passes(run);
         run.conditions.catalog_cases = 5;
         run.conditions.selection = {"chn/", "syn/", "ucf/"};
       },
       "passed-incomplete", "PASSED, INCOMPLETE: nothing failed, but 3 of 5 cases selected", 0, 0, ""},
      {"the same, --require-complete",
       [](RunResult& run) {
         syn_all_passes(run);
         run.conditions.catalog_cases = 5;
         run.conditions.require_complete = true;
       },
       "passed-incomplete", "PASSED, INCOMPLETE: nothing failed, but 3 of 5 cases selected", 1, 0, ""},
      {"a case skipped",
       [](RunResult& run) {
         syn_all_passes(run);
         run.cases[0].verdict = Verdict::skip;
         run.cases[0].reason = "the target profile has no admin.enqueue adapter";
         run.cases[0].findings.clear();
       },
       "passed-incomplete",
       "PASSED, INCOMPLETE: nothing failed, but 1 must/should rule untested: CHN-IDLE-EMPTY; 1 case skipped", 0, 0, ""},
      {"a should warning", syn_all_warns, "certified",
       "CERTIFIED: every must- and should-rule of the catalog ran and passed (3 cases); 1 should-rule with "
       "warnings: SYN-ALL",
       0, 0, ""},
      {"a should warning under --strict",
       [](RunResult& run) {
         syn_all_warns(run);
         run.conditions.strict = true;
       },
       "failed", "FAILED: 1 rule failed: SYN-ALL", 1, 1, ""},
      {"a known failure",
       [&](RunResult& run) { run.baseline = compare_to_baseline(run, known_baseline, false, "base/report.json"); },
       "failed", "FAILED: 1 rule failed: SYN-ALL; against the baseline: 0 new, 1 known, 0 fixed", 0, 1, "known"},
      {"a new failure",
       [&](RunResult& run) {
         RunResult passing = known_baseline;
         syn_all_passes(passing);
         run.baseline = compare_to_baseline(run, passing, false, "base/report.json");
       },
       "failed", "FAILED: 1 rule failed: SYN-ALL; against the baseline: 1 new, 0 known, 0 fixed", 1, 1, "new"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    const RunResult run = judged(row);
    const auto assessment = scenario::assess(run);
    EXPECT_EQ(scenario::overall_name(assessment.overall), row.overall);
    EXPECT_EQ(assessment.headline, row.headline);
    EXPECT_EQ(assessment.exit_code, row.exit_code);

    const std::string console = console_summary(run);
    EXPECT_THAT(console, HasSubstr("\n" + row.headline + "\n"));
    const auto json = nlohmann::json::parse(to_json_text(run));
    EXPECT_EQ(json["assessment"]["overall"], row.overall);
    EXPECT_EQ(json["assessment"]["headline"], row.headline);
    EXPECT_EQ(json["assessment"]["exit_code"], row.exit_code);
    EXPECT_EQ(json["conditions"]["strict"], run.conditions.strict);
    const std::string junit = to_junit_xml(run);
    EXPECT_THAT(junit, HasSubstr(fmt::format("failures=\"{}\"", row.junit_failures)));
    EXPECT_THAT(junit, HasSubstr(fmt::format("<property name=\"verdict\" value=\"{}\"/>", row.overall)));
    EXPECT_THAT(junit, HasSubstr(fmt::format("<property name=\"exit_code\" value=\"{}\"/>", row.exit_code)));
    const std::string md = to_markdown(run);
    EXPECT_THAT(md, HasSubstr(fmt::format("## mdmconform: {} against", scenario::overall_title(assessment.overall))));
    const std::string html = to_html(run);
    EXPECT_THAT(html, HasSubstr(fmt::format("data-result=\"{}\"", row.overall)));
    EXPECT_THAT(html, HasSubstr(detail::html_escape(row.headline)));
    for (const auto& view : {console, junit, md, html}) {
      EXPECT_THAT(view, HasSubstr("3 of"));  // cases selected of the catalog, in every view
    }
    if (!row.mark.empty()) {
      EXPECT_THAT(console, HasSubstr("syn/all (" + row.mark + ")"));
      EXPECT_THAT(junit, HasSubstr("(" + row.mark + " failure)"));
      EXPECT_THAT(md, HasSubstr("(" + row.mark + ") `syn/all`"));
      EXPECT_EQ(json["baseline"][row.mark + "_failures"][0], "syn/all");
    }
  }
}

TEST(EveryView, ListsWhatTheBaselineFailedAndThisRunFixed) {
  RunResult before = sample_run();
  RunResult now = sample_run();
  syn_all_passes(now);
  now.baseline = compare_to_baseline(now, before, false, "base/report.json");
  EXPECT_EQ(now.baseline->fixed, std::vector<std::string>{"syn/all"});
  EXPECT_THAT(console_summary(now), HasSubstr("fixed since the baseline: syn/all"));
  EXPECT_THAT(to_markdown(now), HasSubstr("### Fixed since the baseline (1)"));
  EXPECT_THAT(to_junit_xml(now), HasSubstr("<property name=\"fixed since the baseline\" value=\"syn/all\"/>"));
  EXPECT_THAT(to_html(now), HasSubstr("fixed since the baseline"));
  // And it survives the record.
  auto again = from_json_text(to_json_text(now));
  ASSERT_TRUE(again) << again.message();
  ASSERT_TRUE(again->baseline);
  EXPECT_EQ(again->baseline->fixed, now.baseline->fixed);
  EXPECT_EQ(again->baseline->file, "base/report.json");
}

TEST(EveryView, ConditionsSurviveTheRecord) {
  RunResult run = sample_run();
  run.conditions.selection = {"syn/"};
  run.conditions.excluded = {"syn/all"};
  run.conditions.tags = {"fast"};
  run.conditions.levels = {"must"};
  run.conditions.selected_cases = {"chn/idle_empty"};
  run.conditions.catalog_cases = 38;
  run.conditions.strict = true;
  run.conditions.require_complete = true;
  run.conditions.tls = "verified against the system store";
  run.rules.push_back(scenario::RuleResult{"NET-MANAGE", Level::must, Verdict::skip, {}, {}});
  run.rules.back().untested = "not selected (checked by net/manage)";
  auto again = from_json_text(to_json_text(run));
  ASSERT_TRUE(again) << again.message();
  const auto& c = again->conditions;
  EXPECT_EQ(c.selection, run.conditions.selection);
  EXPECT_EQ(c.excluded, run.conditions.excluded);
  EXPECT_EQ(c.tags, run.conditions.tags);
  EXPECT_EQ(c.levels, run.conditions.levels);
  EXPECT_EQ(c.selected_cases, run.conditions.selected_cases);
  EXPECT_EQ(c.catalog_cases, 38u);
  EXPECT_TRUE(c.strict);
  EXPECT_TRUE(c.require_complete);
  EXPECT_EQ(c.tls, run.conditions.tls);
  EXPECT_EQ(again->rules.back().untested, "not selected (checked by net/manage)");
}

}  // namespace
}  // namespace mdmc::report
