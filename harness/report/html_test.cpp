#include "harness/report/html.hpp"

#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "harness/fuzz/campaign.hpp"
#include "harness/plist/value.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/report/report.hpp"
#include "harness/testing/sample_run.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc::report {
namespace {

namespace chr = std::chrono;
using scenario::CaseResult;
using scenario::Finding;
using scenario::Level;
using scenario::RuleResult;
using scenario::RunResult;
using scenario::TranscriptEntry;
using scenario::Verdict;
using ::testing::HasSubstr;
using ::testing::Not;

chr::system_clock::time_point t0() { return chr::sys_days{chr::year{2026} / 11 / 29} + chr::hours{8}; }

TranscriptEntry entry(std::string actor, std::string label, int step, chr::microseconds start, chr::microseconds took,
                      std::optional<int> status, std::string response_body = "") {
  TranscriptEntry e;
  e.actor = std::move(actor);
  e.label = std::move(label);
  e.step = step;
  e.exchange.request.method = "PUT";
  e.exchange.request.url = "https://127.0.0.1:8443/mdm";
  e.exchange.request.headers = {{"Content-Type", "application/x-apple-aspen-mdm; charset=UTF-8"}};
  plist::Dict idle{{"Status", plist::Value("Idle")}, {"UDID", plist::Value("UDID-1")}};
  e.exchange.request.body = plist::to_xml(plist::Value(idle));
  e.exchange.started = t0() + start;
  e.exchange.elapsed = took;
  if (status) {
    net::Response r;
    r.status = *status;
    r.reason = *status == 410 ? "Gone" : "OK";
    r.body = std::move(response_body);
    e.exchange.response = std::move(r);
  } else {
    e.exchange.error = net::TransportError::header_timeout;
    e.exchange.error_detail = "no header in 1000 ms";
  }
  return e;
}

std::string command_plist(std::string_view type) {
  plist::Dict command{{"RequestType", plist::Value(std::string(type))}};
  plist::Dict top{{"CommandUUID", plist::Value("C-1")}, {"Command", plist::Value(command)}};
  return plist::to_binary(plist::Value(top));
}

// A case with a device, a user, the admin API, two requests in flight at once (the device's
// and the user's), a 410, an answer that never came, and a broken rule at step 2.
CaseResult sample_case() {
  CaseResult c;
  c.id = "chn/concurrent";
  c.title = "device and user series at once";
  c.rules = {"CHN-CONCURRENT"};
  c.verdict = Verdict::fail;
  c.reason = "CHN-CONCURRENT: expected 200 with a zero-length body, got 204";
  c.reproducer = "mdmconform run --seed 7 --fault series-end-204 chn/concurrent";
  c.findings = {Finding{"ENR-AUTH", Level::must, true, "200", "200", -1},
                Finding{"CHN-CONCURRENT", Level::must, false, "200 with a zero-length body", "204", 2}};
  using us = chr::microseconds;
  c.transcript = {
      entry("mac", "Authenticate", -1, us{0}, us{400}, 200),
      entry("admin", "enqueue ProfileList C-1 for mac", 0, us{1000}, us{300}, 200),
      // Recorded in the order they finished: the user's answer came first.
      entry("mac/alice", "Idle", 2, us{2100}, us{500}, 204),
      entry("mac", "Idle", 2, us{2000}, us{900}, 200, command_plist("ProfileList")),
      entry("mac", "NotNow C-1", 2, us{3000}, us{300}, 200),
      entry("mac/bob", "UserAuthenticate", 3, us{4000}, us{300}, 410),
      entry("mac", "Idle", 4, us{5000}, us{1000}, std::nullopt),
  };
  c.elapsed = chr::milliseconds{6};
  return c;
}

RunResult sample_run() {
  RunResult run;
  run.harness_version = "0.1.0";
  run.target_name = "reference";
  run.target_url = "https://127.0.0.1:8443/checkin";
  run.profile_digest = "sha256:1111";
  run.suite_digest = "sha256:2222";
  run.apple_schema_revision = "apple-schema-rev-3333";
  run.started_at = "2026-11-29T08:00:00Z";
  run.seed = 7;
  run.redacted = true;
  CaseResult pass;
  pass.id = "chn/idle_empty";
  pass.title = "Idle with nothing queued";
  pass.rules = {"CHN-IDLE-EMPTY"};
  pass.transcript = {entry("mac", "Idle", 0, chr::microseconds{0}, chr::microseconds{100}, 200)};
  CaseResult skipped;
  skipped.id = "net/manage";
  skipped.rules = {"NET-MANAGE"};
  skipped.verdict = Verdict::skip;
  skipped.reason = "the profile manages no network user";
  run.cases = {pass, sample_case(), skipped};
  run.rules = {RuleResult{"CHN-CONCURRENT",
                          Level::must,
                          Verdict::fail,
                          {"chn/concurrent"},
                          {"chn/concurrent"},
                          "concurrent device and user requests are served independently",
                          "When enrollment occurs in this manner, the MDM server receives separate requests for "
                          "the device and each logged-in user.",
                          "Apple, Managing MDM Devices and Users in macOS",
                          "apple",
                          std::nullopt,
                          ""},
               RuleResult{"ROB-MALFORMED",
                          Level::should,
                          Verdict::skip,
                          {},
                          {},
                          "4xx for a malformed plist",
                          "",
                          "RFC 9110 15.5",
                          "http",
                          std::nullopt,
                          ""}};
  return run;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// The y coordinate of each arrow of a kind, in document order (= exchange number order).
std::vector<int> arrow_rows(const std::string& svg, const std::string& kind) {
  std::vector<int> out;
  const std::regex re("<g class=\"arrow " + kind + "[^\"]*\"><title>[^<]*</title><line x1=\"\\d+\" y1=\"(\\d+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back(std::stoi((*it)[1]));
  }
  return out;
}

TEST(SequenceDiagram, HasALaneForTheServerTheDeviceEachUserAndTheAdminApi) {
  const std::string svg = sequence_diagram_svg(sample_case(), "c1");
  EXPECT_EQ(occurrences(svg, "<g class=\"lane "), 5u) << svg;
  // Users sit beside their device, the server after them, the admin API last.
  const auto mac = svg.find("data-actor=\"mac\"");
  const auto alice = svg.find("data-actor=\"mac/alice\"");
  const auto bob = svg.find("data-actor=\"mac/bob\"");
  const auto server = svg.find("data-actor=\"server\"");
  const auto admin = svg.find("data-actor=\"admin\"");
  ASSERT_NE(admin, std::string::npos);
  EXPECT_LT(mac, alice);
  EXPECT_LT(alice, bob);
  EXPECT_LT(bob, server);
  EXPECT_LT(server, admin);
}

TEST(SequenceDiagram, DrawsARequestPerExchangeAndAnAnswerPerResponse) {
  const std::string svg = sequence_diagram_svg(sample_case(), "c1");
  EXPECT_EQ(occurrences(svg, "class=\"arrow request"), 7u);
  EXPECT_EQ(occurrences(svg, "class=\"arrow response"), 6u);
  EXPECT_EQ(occurrences(svg, "class=\"no-answer\""), 1u);
  EXPECT_THAT(svg, HasSubstr("no answer: header_timeout"));
  // Status and what the answer held, at a glance.
  EXPECT_THAT(svg, HasSubstr(">410 Gone<"));
  EXPECT_THAT(svg, HasSubstr("arrow response s-410"));
  EXPECT_THAT(svg, HasSubstr("arrow response s-204"));
  EXPECT_THAT(svg, HasSubstr(">200 ProfileList<"));
  EXPECT_THAT(svg, HasSubstr(">200 empty<"));
  EXPECT_THAT(svg, HasSubstr("arrow request notnow"));
  // Each exchange links to its transcript entry.
  EXPECT_THAT(svg, HasSubstr("<a href=\"#c1//x7\">"));
}

TEST(SequenceDiagram, InterleavesRequestsInFlightAtOnceInTimeOrder) {
  const std::string svg = sequence_diagram_svg(sample_case(), "c1");
  const auto requests = arrow_rows(svg, "request");
  const auto responses = arrow_rows(svg, "response");
  ASSERT_EQ(requests.size(), 7u);
  ASSERT_EQ(responses.size(), 6u);
  // In time order: exchange 3 is the device's Idle (started at 2.0 ms), 4 the user's (2.1 ms).
  // Both requests come before either answer; the user's answer (2.6 ms) before the device's (2.9 ms).
  EXPECT_LT(requests[2], requests[3]);
  EXPECT_LT(requests[3], responses[3]);
  EXPECT_LT(responses[3], responses[2]);
  for (std::size_t k = 0; k + 1 < requests.size(); ++k) EXPECT_LT(requests[k], requests[k + 1]);
}

TEST(SequenceDiagram, ShadesTheStepThatBrokeARule) {
  const std::string svg = sequence_diagram_svg(sample_case(), "c1");
  EXPECT_THAT(svg, HasSubstr("class=\"step bad\" data-step=\"2\""));
  EXPECT_THAT(svg, HasSubstr("\u2717 CHN-CONCURRENT"));
  EXPECT_EQ(occurrences(svg, "step bad"), 1u);
  EXPECT_THAT(svg, HasSubstr(">enroll<"));
}

TEST(SequenceDiagram, EscapesWhatTheTargetSent) {
  CaseResult c = sample_case();
  c.transcript[0].exchange.response->reason = "<script>alert(1)</script>";
  c.transcript[0].exchange.response->status = 418;
  c.transcript[0].label = "Idle \x1b[2J";
  const std::string svg = sequence_diagram_svg(c, "c1");
  EXPECT_THAT(svg, Not(HasSubstr("<script")));
  EXPECT_THAT(svg, Not(HasSubstr("\x1b")));
  EXPECT_THAT(svg, HasSubstr("&lt;script&gt;"));
}

TEST(Html, IsOneSelfContainedFileThatFetchesNothing) {
  const std::string html = to_html(sample_run());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THAT(html, HasSubstr("Content-Security-Policy\" content=\"default-src 'none'"));
  for (const char* fetch : {"<link", "<script src", " src=\"", "url(", "@import", "<iframe", "<img"}) {
    EXPECT_THAT(html, Not(HasSubstr(fetch))) << fetch;
  }
  EXPECT_EQ(occurrences(html, "<script>"), 1u);
  EXPECT_EQ(occurrences(html, "<style>"), 1u);
}

TEST(Html, ShowsTheCertificationRecordAndTheOverallResult) {
  const std::string html = to_html(sample_run());
  for (const char* field :
       {"reference", "sha256:1111", "sha256:2222", "apple-schema-rev-3333", "0.1.0", "2026-11-29T08:00:00Z"}) {
    EXPECT_THAT(html, HasSubstr(field)) << field;
  }
  EXPECT_THAT(html, HasSubstr("id=\"overall\" class=\"result r-fail\" data-result=\"failed\""));
}

TEST(Html, CountsByVerdictAndByArea) {
  const std::string html = to_html(sample_run());
  EXPECT_THAT(html, HasSubstr("id=\"count-pass\" data-verdict=\"pass\">1<"));
  EXPECT_THAT(html, HasSubstr("id=\"count-fail\" data-verdict=\"fail\">1<"));
  EXPECT_THAT(html, HasSubstr("id=\"count-skip\" data-verdict=\"skip\">1<"));
  EXPECT_THAT(html, HasSubstr("id=\"count-error\" data-verdict=\"error\">0<"));
  EXPECT_THAT(html, HasSubstr("id=\"count-total\">3<"));
  EXPECT_THAT(html, HasSubstr("<tr data-area=\"CHN\">"));
  EXPECT_THAT(html, HasSubstr("<tr data-area=\"NET\">"));
}

TEST(Html, QuotesTheAppleSentenceOfEachRule) {
  const std::string html = to_html(sample_run());
  EXPECT_THAT(html, HasSubstr("<blockquote>When enrollment occurs in this manner, the MDM server receives"));
  EXPECT_THAT(html, HasSubstr("rests on HTTP semantics (RFC 9110)"));
  EXPECT_THAT(
      html,
      HasSubstr(
          "<tr id=\"rule-CHN-CONCURRENT\" data-verdict=\"fail\"><td><code>CHN-CONCURRENT</code></td><td>must</td>"));
}

TEST(Html, ACaseShowsWhatEachChannelHeldOfDeclarations) {
  auto run = sample_run();
  run.cases[0].declarations.push_back(
      {"mac", "tok-1", {{"mdmconform.passcode", "com.apple.configuration.passcode.settings", "st-1", true, false}}});
  run.cases[0].declarations.push_back({"mac/alice", "tok-2", {}});
  const std::string html = to_html(run);
  EXPECT_THAT(html,
              HasSubstr("<td title=\"DeclarationsToken tok-1\">mac</td><td><code>mdmconform.passcode</code></td>"
                        "<td><code>com.apple.configuration.passcode.settings</code></td><td><code>st-1</code></td>"
                        "<td>yes</td><td>no</td>"));
  EXPECT_THAT(html, HasSubstr("mac/alice</td><td colspan=\"5\">holds no declaration</td>"));
  EXPECT_EQ(occurrences(to_html(sample_run()), "class=\"devices declarations\""), 0u);
}

TEST(Html, EachCaseHasFindingsReproducerDiagramAndTranscript) {
  const std::string html = to_html(sample_run());
  EXPECT_EQ(occurrences(html, "<details class=\"case\""), 3u);
  EXPECT_THAT(html, HasSubstr("id=\"chn/concurrent\" data-verdict=\"fail\""));
  EXPECT_THAT(html,
              HasSubstr("<pre class=\"repro\">mdmconform run --seed 7 --fault series-end-204 chn/concurrent</pre>"));
  EXPECT_THAT(html, HasSubstr("<td>200 with a zero-length body</td><td>204</td>"));
  EXPECT_EQ(occurrences(html, "<svg class=\"seq\""), 2u);  // the skipped case has no exchange
  EXPECT_EQ(occurrences(html, "<details class=\"exchange"), 8u);
  // Exchanges of the broken step are open, the others closed.
  EXPECT_EQ(occurrences(html, "<details class=\"exchange bad\""), 3u);
  EXPECT_THAT(html, HasSubstr("id=\"chn/concurrent//x1\"><summary>"));
  // Headers, and a binary plist body pretty-printed as XML.
  EXPECT_THAT(html, HasSubstr("<td class=\"mono\">Content-Type</td>"));
  EXPECT_THAT(html, HasSubstr("binary plist, "));
  EXPECT_THAT(html, HasSubstr("&lt;key&gt;RequestType&lt;/key&gt;"));
  EXPECT_THAT(html, HasSubstr("took 0.90 ms"));
  EXPECT_THAT(html, HasSubstr("no answer: header_timeout (no header in 1000 ms)"));
}

// chn/concurrent (the failing case) with a device per attempt: its first attempt's from the
// pool, a re-run's issued (the CN is then the UDID).
RunResult run_with_devices() {
  RunResult run = sample_run();
  run.cases[1].devices = {{"mac",
                           "5E1F0A2B-6C3D-4E5F-8A9B-0C1D2E3F4A5B",
                           0,
                           {"pool:device-01.p12", "0123456789abcdef" + std::string(48, 'b'), "device-01"}},
                          {"mac",
                           "7C2D9E1F-0A3B-4C5D-9E6F-1A2B3C4D5E6F",
                           1,
                           {"issued", std::string(64, 'c'), "7C2D9E1F-0A3B-4C5D-9E6F-1A2B3C4D5E6F"}}};
  return run;
}

TEST(Html, ListsEachDeviceOfEachAttemptWithItsIdentity) {
  const std::string html = to_html(run_with_devices());
  EXPECT_EQ(occurrences(html, "<table class=\"devices\">"), 1u) << "only the case that has devices";
  EXPECT_THAT(html, HasSubstr("<th>attempt</th><th>device</th><th>UDID</th><th>identity</th><th>SHA-256</th>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>first</td><td>mac</td><td><code>5E1F0A2B-6C3D-4E5F-8A9B-0C1D2E3F4A5B</code></td>"
                              "<td>pool:device-01.p12</td><td><code title=\"0123456789abcdef" +
                              std::string(48, 'b') + "\">0123456789abcdef</code></td><td>device-01</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>re-run 1</td><td>mac</td>"));
  // A fingerprint or a UDID finds the case in the text filter.
  EXPECT_THAT(html, HasSubstr(" 5e1f0a2b-6c3d-4e5f-8a9b-0c1d2e3f4a5b 0123456789abcdef"));

  RunResult first_only = run_with_devices();
  first_only.cases[1].devices.pop_back();
  EXPECT_THAT(to_html(first_only), Not(HasSubstr("<th>attempt</th>"))) << "no attempt column without re-runs";
}

TEST(Markdown, NamesTheFirstAttemptsDevicesAndCountsTheReRuns) {
  const std::string md = to_markdown(run_with_devices());
  EXPECT_THAT(md, HasSubstr("  devices: `mac` `5E1F0A2B-6C3D-4E5F-8A9B-0C1D2E3F4A5B` pool:device-01.p12 "
                            "`0123456789ab` (CN device-01); 1 more on re-runs (report.html lists them)\n"));
}

TEST(Html, HasFiltersByVerdictAndByText) {
  const std::string html = to_html(sample_run());
  for (const char* v : {"pass", "fail", "warn", "info", "skip", "error"}) {
    EXPECT_THAT(html, HasSubstr(std::string("class=\"verdict-filter\" value=\"") + v + "\" checked")) << v;
  }
  EXPECT_THAT(html, HasSubstr("id=\"text-filter\""));
  EXPECT_THAT(html, HasSubstr("data-search=\"chn/concurrent device and user series at once chn-concurrent"));
}

TEST(Html, ShowsAnInfoCaseAndItsRuleAsAnOptionTheServerDoesNotUse) {
  const std::string html = to_html(mdmc::testing::sample_run());
  EXPECT_THAT(html, HasSubstr(".v-info{background:var(--info)}"));
  EXPECT_THAT(html, HasSubstr("id=\"count-info\" data-verdict=\"info\">1<"));
  EXPECT_THAT(html,
              HasSubstr("class=\"verdict-filter\" value=\"info\" checked> <span class=\"v v-info\">INFO</span> 1"));
  EXPECT_THAT(html, HasSubstr("id=\"ucf/device_configured\" data-verdict=\"info\""));
  EXPECT_THAT(html, HasSubstr("<div class=\"case-body\"><p class=\"info-note\"><b>INFO \u2014 the server does not use "
                              "this option (a may-level rule: informational, not a defect)</b></p>"));
  EXPECT_EQ(occurrences(html, "<p class=\"info-note\"><b>INFO"), 1u) << "only the info case says so";
  EXPECT_THAT(html, HasSubstr("<tr class=\"finding-info\"><td>info</td><td><a href=\"#rule-UCF-DEVICECONFIGURED\">"));
  EXPECT_THAT(html,
              HasSubstr("<tr id=\"rule-UCF-DEVICECONFIGURED\" data-verdict=\"info\"><td><code>UCF-DEVICECONFIGURED"
                        "</code></td><td>may</td><td><span class=\"v v-info\">INFO</span></td><td><p "
                        "class=\"info-note\">the server does not use this option</p>"));
  // A broken must finding is still a failure.
  EXPECT_THAT(html, HasSubstr("<tr class=\"finding-fail\"><td>fail</td><td><a href=\"#rule-SYN-ALL\">"));

  RunResult used = mdmc::testing::sample_run();
  used.rules[2].uses_option = true;
  EXPECT_THAT(to_html(used), HasSubstr("<p class=\"info-note\">the server uses this option</p>"));
}

TEST(Html, ShowsSecretsAsTheRedactedRecordHoldsThem) {
  RunResult run = sample_run();
  plist::Dict token{{"MessageType", plist::Value("TokenUpdate")},
                    {"Token", plist::Value(plist::Data{"PUSH-TOKEN-SECRET-BYTES"})},
                    {"PushMagic", plist::Value("MAGIC-SECRET-1234")}};
  run.cases[1].transcript[0].exchange.request.body = plist::to_xml(plist::Value(token));
  run.cases[1].transcript[0].exchange.request.headers.push_back({"Mdm-Signature", "MIAGCSqGSIb3DQEHAqCAMIACAQE"});
  redact_secrets(run);
  const std::string html = to_html(run);
  EXPECT_THAT(html, Not(HasSubstr("MAGIC-SECRET-1234")));
  EXPECT_THAT(html, Not(HasSubstr("MIAGCSqGSIb3DQEHAqCAMIACAQE")));
  // The XML plist escapes the marker's angle brackets, and the page escapes the XML.
  EXPECT_THAT(html, HasSubstr("&amp;lt;redacted: 17 chars&amp;gt;"));
  run.redacted = false;
  EXPECT_THAT(to_html(run), HasSubstr("NOT redacted"));
}

TEST(Html, EscapesTargetTextAndCutsLongBodies) {
  RunResult run = sample_run();
  auto& response = *run.cases[1].transcript[3].exchange.response;
  response.headers.push_back({"X-Evil", "\"><script>alert(1)</script>"});
  response.body = std::string(kHtmlBodyCap + 5000, 'A');
  run.cases[1].reason = "<img src=x onerror=alert(1)>";
  const std::string html = to_html(run);
  EXPECT_EQ(occurrences(html, "<script"), 1u);
  EXPECT_THAT(html, Not(HasSubstr("<img")));
  EXPECT_THAT(html, HasSubstr("&lt;img src=x onerror=alert(1)&gt;"));
  EXPECT_THAT(html, HasSubstr("the first 32.0 KiB shown, the whole body is in report.json"));
  EXPECT_THAT(html, Not(HasSubstr(std::string(kHtmlBodyCap + 1, 'A'))));
}

TEST(Html, ShowsBytesThatAreNotTextAsHex) {
  RunResult run = sample_run();
  run.cases[1].transcript[0].exchange.response->body = std::string("\xff\xfe\x00\x01", 4);
  EXPECT_THAT(to_html(run), HasSubstr("ff fe 00 01"));
}

TEST(Markdown, GivesTheCountsThenEachFailureWithItsRuleAndReproducer) {
  const std::string md = to_markdown(sample_run());
  EXPECT_THAT(md, HasSubstr("## mdmconform: FAILED against `reference`"));
  EXPECT_THAT(md, HasSubstr("3 cases: 1 pass, 1 fail, 0 warn, 0 info, 1 skip, 0 error"));
  EXPECT_THAT(md, HasSubstr("| pass | fail | warn | info | skip | error |"));
  EXPECT_THAT(md, HasSubstr("| 1 | 1 | 0 | 0 | 1 | 0 |"));
  EXPECT_THAT(md, HasSubstr("- **FAIL** `chn/concurrent` \u2014 CHN-CONCURRENT (must): "));
  EXPECT_THAT(md, HasSubstr("  replay: `mdmconform run --seed 7 --fault series-end-204 chn/concurrent`"));
  // A skip is not a failure.
  EXPECT_THAT(md, Not(HasSubstr("net/manage")));
}

TEST(Markdown, ListsAnInfoCaseApartAsAnOptionTheServerDoesNotUse) {
  const std::string md = to_markdown(mdmc::testing::sample_run());
  EXPECT_THAT(md, HasSubstr("3 cases: 1 pass, 1 fail, 0 warn, 1 info, 0 skip, 0 error"));
  EXPECT_THAT(md, HasSubstr("| 1 | 1 | 0 | 1 | 0 | 0 |"));
  EXPECT_THAT(md, HasSubstr("### Not passing (1)\n\n- **FAIL** `syn/all`"));
  EXPECT_THAT(md, HasSubstr("### Info: options the server does not use (1)\n\n"
                            "May-level rules (RFC 2119): informational, not a defect.\n\n"
                            "- **INFO** `ucf/device_configured` \u2014 UCF-DEVICECONFIGURED (may): the server does not "
                            "use this option (may): UCF-DEVICECONFIGURED: expected a DeviceConfigured command on "
                            "mac/alice; got an empty body\n"));
  EXPECT_EQ(occurrences(md, "ucf/device_configured"), 1u) << "not among the cases that do not pass";
}

TEST(Markdown, StaysShortForAManyFailures) {
  RunResult run = sample_run();
  for (int i = 0; i < 200; ++i) {
    CaseResult c = run.cases[1];
    c.id = "gen/case" + std::to_string(i);
    c.transcript.clear();
    run.cases.push_back(c);
  }
  const std::string md = to_markdown(run);
  EXPECT_EQ(occurrences(md, "- **FAIL**"), kMarkdownMaxListed);
  EXPECT_THAT(md, HasSubstr("- and 151 more: see report.html"));
  EXPECT_LT(md.size(), 32u * 1024);
}

TEST(Markdown, EscapesWhatCouldBreakTheSummary) {
  RunResult run = sample_run();
  run.cases[1].reason = "a | b <b>bold</b> *x*\nnext";
  run.cases[1].reproducer = "mdmconform run `rm -rf` x";
  const std::string md = to_markdown(run);
  EXPECT_THAT(md, HasSubstr("a \\| b &lt;b&gt;bold&lt;/b&gt; \\*x\\* next"));
  EXPECT_THAT(md, HasSubstr("``mdmconform run `rm -rf` x``"));
}

TEST(MarkdownCode, FencesWithMoreBackticksThanItHolds) {
  EXPECT_EQ(detail::markdown_code("a``b"), "```a``b```");
  EXPECT_EQ(detail::markdown_code("`x"), "`` `x ``");
  EXPECT_EQ(detail::markdown_code("plain"), "`plain`");
}

// The record a summary.json holds, as the page gets it.
fuzz::FuzzRun as_run(const nlohmann::json& summary) {
  return fuzz::fuzz_run_from_json(nlohmann::ordered_json::parse(summary.dump()));
}

nlohmann::json fuzz_summary(std::size_t timeline_entries) {
  nlohmann::json j = {{"kind", "mdmconform-fuzz"},
                      {"harness_version", "0.1.0"},
                      {"target_name", "reference"},
                      {"target_url", "https://127.0.0.1:4443/checkin"},
                      {"started_at", "2026-11-29T08:00:00Z"},
                      {"elapsed_s", 12.3},
                      {"max_time_s", 60},
                      {"jobs", 1},
                      {"interrupted", false},
                      {"executions", 12345},
                      {"exec_per_sec", 800.5},
                      {"corpus_size", 321},
                      {"features", 77}};
  j["timeline"] = nlohmann::json::array();
  for (std::size_t i = 0; i < timeline_entries; ++i) {
    j["timeline"].push_back({{"t_s", static_cast<double>(i + 1)},
                             {"executions", 900 * (i + 1)},
                             {"exec_per_sec", 900 - static_cast<double>(i)},
                             {"corpus_size", 40 + 10 * i},
                             {"features", 30 + i}});
  }
  j["findings"] = {{{"file", "findings/finding-abc.json"},
                    {"path", "/tmp/run/fuzz/findings/finding-abc.json"},
                    {"oracle", "status-5xx"},
                    {"endpoint", "checkin"},
                    {"summary", "500 to a TokenUpdate with <UDID> of type integer"},
                    {"input_phrase", "TokenUpdate whose UDID is an integer (expected string)"},
                    {"minimised", true},
                    {"minimise_note", "minimised from 600 to 200 bytes in 12 tries on fresh devices"},
                    {"hits", 41},
                    {"input", "<dict><key>UDID</key><integer>5</integer></dict>"},
                    {"original_input", "<dict>the whole input</dict>"},
                    {"answer", "HTTP 500 Internal Server Error"}},
                   {{"file", "findings/finding-def.json"},
                    {"oracle", "transport"},
                    {"endpoint", "server"},
                    {"summary", "reset"},
                    {"known", true}}};
  j["seeded_bug"] = "wrong-type-500";
  j["exclusions"] = {{{"rule", "SYN-EMPTY-END"}, {"reason", "the liveness probe's Acknowledged got HTTP 204"}}};
  return j;
}

TEST(FuzzPage, PlotsOnePointPerTimelineEntryInEachChart) {
  const std::string html = render_fuzz_html(as_run(fuzz_summary(7)));
  EXPECT_THAT(html, HasSubstr("<svg class=\"chart\" data-field=\"exec_per_sec\" data-points=\"7\""));
  EXPECT_THAT(html, HasSubstr("<svg class=\"chart\" data-field=\"corpus_size\" data-points=\"7\""));
  EXPECT_EQ(occurrences(html, "<circle class=\"point\""), 14u);
  EXPECT_THAT(html, HasSubstr("<title>7 s: 100</title>"));  // the last corpus size: 40 + 10 * 6
  EXPECT_THAT(html, HasSubstr("<title>1 s: 900</title>"));  // the first exec/s
}

TEST(FuzzPage, ShowsTheRecordCountsAndFindings) {
  const std::string html = render_fuzz_html(as_run(fuzz_summary(3)));
  for (const char* text : {"reference", "https://127.0.0.1:4443/checkin", "12345", "800.5", "321", "77",
                           "findings/finding-abc.json", "status-5xx"}) {
    EXPECT_THAT(html, HasSubstr(text)) << text;
  }
  EXPECT_THAT(html, HasSubstr("500 to a TokenUpdate with &lt;UDID&gt; of type integer"));
  EXPECT_THAT(html, HasSubstr("data-findings=\"2\" data-new=\"1\">2 finding(s): 1 new, 1 known"));
  // The seeded bug, the exclusion, and for a finding: what was wrong, the input minimised and
  // as found, the answer, and the commands.
  for (const char* text : {"wrong-type-500", "SYN-EMPTY-END", "TokenUpdate whose UDID is an integer (expected string)",
                           "&lt;integer&gt;5&lt;/integer&gt;", "the whole input", "HTTP 500 Internal Server Error",
                           "mdmconform replay /tmp/run/fuzz/findings/finding-abc.json --as-case", "41 hit(s)",
                           "data-standing=\"known\""}) {
    EXPECT_THAT(html, HasSubstr(text)) << text;
  }
  EXPECT_THAT(html, HasSubstr("default-src 'none'"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
}

TEST(FuzzPage, CapsTheChartsOfALongRun) {
  const std::string html = render_fuzz_html(as_run(fuzz_summary(kFuzzChartMaxPoints + 500)));
  EXPECT_EQ(occurrences(html, "<circle class=\"point\""), 2 * kFuzzChartMaxPoints);
  // The last point is still the last entry.
  EXPECT_THAT(html, HasSubstr(fmt::format("<title>{} s: ", kFuzzChartMaxPoints + 500)));
}

TEST(FuzzPage, RendersAMalformedSummaryWithoutThrowing) {
  nlohmann::json j = {
      {"kind", "mdmconform-fuzz"}, {"executions", "lots"}, {"timeline", "nope"}, {"findings", {1, "two", nullptr}}};
  std::string html;
  ASSERT_NO_THROW(html = render_fuzz_html(as_run(j)));
  EXPECT_THAT(html, HasSubstr("data-points=\"0\""));
  EXPECT_THAT(html, HasSubstr("no timeline in summary.json"));
  EXPECT_THAT(html, HasSubstr("data-findings=\"3\""));
  ASSERT_NO_THROW(render_fuzz_markdown(as_run(j)));
  ASSERT_NO_THROW(render_fuzz_html(as_run(nlohmann::json::array())));
  nlohmann::json entries = {{"timeline", {{{"t_s", 1}}, {{"t_s", "x"}, {"exec_per_sec", 3}}, 5}}};
  EXPECT_THAT(render_fuzz_html(as_run(entries)), HasSubstr("data-field=\"exec_per_sec\" data-points=\"0\""));
}

TEST(FuzzMarkdown, GivesTheCountsAndTheFindings) {
  const std::string md = render_fuzz_markdown(as_run(fuzz_summary(2)));
  EXPECT_THAT(md, HasSubstr("## mdmconform fuzz: 2 finding(s), 1 new, 1 known against `reference`"));
  EXPECT_THAT(md, HasSubstr("12345 executions (800.5/s) in 12.3 s \u00b7 corpus 321 \u00b7 features 77"));
  EXPECT_THAT(md, HasSubstr("- **new** `status-5xx` on checkin: 500 to a TokenUpdate with &lt;UDID&gt; of type integer "
                            "(41 hit(s))"));
  EXPECT_THAT(md, HasSubstr("  replay: `mdmconform replay /tmp/run/fuzz/findings/finding-abc.json`"));
  EXPECT_THAT(md, HasSubstr("- **known** `transport`"));
  EXPECT_THAT(md, HasSubstr("`SYN-EMPTY-END`"));
}

TEST(FuzzJunit, HasOneCasePerUniqueFindingNewFailingKnownSkipped) {
  const std::string xml = render_fuzz_junit(as_run(fuzz_summary(2)));
  EXPECT_THAT(xml, HasSubstr("tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\""));
  EXPECT_THAT(xml, HasSubstr("<failure message=\"500 to a TokenUpdate with &lt;UDID&gt; of type integer\""));
  EXPECT_THAT(xml, HasSubstr("<skipped message=\"known finding"));
  EXPECT_THAT(xml, HasSubstr("name=\"excluded SYN-EMPTY-END\""));
  nlohmann::json clean = fuzz_summary(1);
  clean["findings"] = nlohmann::json::array();
  EXPECT_THAT(render_fuzz_junit(as_run(clean)), HasSubstr("<testcase classname=\"fuzz\" name=\"no oracle fired\"/>"));
}

// specs/rules.yaml is the one source of rule ids: the page's area order is the order in
// which the catalog first names each area, every area in it.
TEST(HtmlReport, AreaOrderIsTheRuleCatalogs) {
  const YAML::Node catalog = YAML::LoadFile(std::string(MDMC_SOURCE_DIR) + "/specs/rules.yaml");
  std::vector<std::string> from_catalog;
  for (const auto& rule : catalog["rules"]) {
    const auto id = rule["id"].as<std::string>();
    const auto area = id.substr(0, id.find('-'));
    if (std::find(from_catalog.begin(), from_catalog.end(), area) == from_catalog.end()) from_catalog.push_back(area);
  }
  std::vector<std::string> in_page(rule_area_order().begin(), rule_area_order().end());
  EXPECT_EQ(in_page, from_catalog);
}

TEST(Html, SaysWhetherASignedCertificationRecordIsBesideIt) {
  const RunResult run = sample_run();
  EXPECT_THAT(to_html(run), HasSubstr("no signed certification record"));
  const auto signed_page =
      to_html(run, CertificationStatus{"certification.json", "CN=Example Certifier", "failed", "2026-12-06T12:00:00Z"});
  EXPECT_THAT(signed_page,
              HasSubstr("certification.json signed by CN=Example Certifier at 2026-12-06T12:00:00Z: failed"));
}

// A case of the given verdict, with one finding of the given level on its rule.
CaseResult graded(std::string id, std::string rule, Verdict verdict, Level level = Level::must) {
  CaseResult c;
  c.id = std::move(id);
  c.rules = {rule};
  c.verdict = verdict;
  c.findings = {Finding{rule, level, verdict == Verdict::pass, "200", verdict == Verdict::pass ? "200" : "500", 1}};
  return c;
}

// Where a case's <details> starts on the page.
std::size_t position_of_case(const std::string& html, const std::string& id) {
  return html.find("<details class=\"case\" id=\"" + id + "\"");
}

// The opening tag of a case's <details>.
std::string case_tag(const std::string& html, const std::string& id) {
  const auto at = position_of_case(html, id);
  if (at == std::string::npos) return "";
  return html.substr(at, html.find('>', at) - at + 1);
}

// In run order: a pass, a warn, an error, a fail, a pass of an earlier area, a skip.
RunResult mixed_run() {
  RunResult run = sample_run();
  run.cases = {graded("chn/idle_empty", "CHN-IDLE-EMPTY", Verdict::pass),
               graded("rob/malformed", "ROB-MALFORMED", Verdict::warn, Level::should),
               graded("syn/all", "SYN-ALL", Verdict::error),
               graded("chn/concurrent", "CHN-CONCURRENT", Verdict::fail),
               graded("enr/authenticate", "ENR-AUTH", Verdict::pass),
               graded("net/manage", "NET-MANAGE", Verdict::skip)};
  return run;
}

TEST(Html, PutsFailingAndErroringCasesFirstAndOpenThenWarningsThenTheRestByArea) {
  const std::string html = to_html(mixed_run());
  std::vector<std::size_t> at;
  // Failures and errors in run order, then the warning; then ENR, NET, CHN: the catalog's order.
  for (const char* id :
       {"syn/all", "chn/concurrent", "rob/malformed", "enr/authenticate", "net/manage", "chn/idle_empty"}) {
    at.push_back(position_of_case(html, id));
    ASSERT_NE(at.back(), std::string::npos) << id;
  }
  for (std::size_t i = 0; i + 1 < at.size(); ++i) EXPECT_LT(at[i], at[i + 1]) << i;
  EXPECT_LT(html.find("id=\"attention\""), at[0]);
  EXPECT_LT(at[2], html.find("id=\"area-ENR\""));
  // Each case once: its id is its anchor.
  EXPECT_EQ(occurrences(html, "<details class=\"case\""), 6u);
  EXPECT_THAT(html, HasSubstr("<h3>CHN \u00b7 2 cases <span class=\"legend\">(1 in <a href=\"#attention\">"));

  EXPECT_THAT(case_tag(html, "syn/all"), HasSubstr(" open>"));
  EXPECT_THAT(case_tag(html, "chn/concurrent"), HasSubstr(" open>"));
  for (const char* closed : {"rob/malformed", "chn/idle_empty", "net/manage"}) {
    EXPECT_THAT(case_tag(html, closed), Not(HasSubstr(" open"))) << closed;
  }
  // Under --strict a warning fails the run, and is open like a failure.
  RunResult strict = mixed_run();
  strict.conditions.strict = true;
  EXPECT_THAT(case_tag(to_html(strict), "rob/malformed"), HasSubstr(" open>"));

  // Nothing to attend to: no such group.
  RunResult passing = sample_run();
  passing.cases = {graded("chn/idle_empty", "CHN-IDLE-EMPTY", Verdict::pass)};
  EXPECT_THAT(to_html(passing), Not(HasSubstr("id=\"attention\"")));
}

TEST(Html, EachCasesAnchorIsItsCaseIdAndEveryLinkToItUsesIt) {
  const std::string html = to_html(sample_run());
  EXPECT_THAT(html, HasSubstr("<details class=\"case\" id=\"chn/concurrent\""));
  EXPECT_THAT(html, HasSubstr("<details class=\"case\" id=\"chn/idle_empty\""));
  EXPECT_FALSE(std::regex_search(html, std::regex("id=\"c\\d"))) << "no numbered anchor left";
  EXPECT_FALSE(std::regex_search(html, std::regex("href=\"#c\\d")));
  // From the rule table, and from each exchange's arrow to its transcript entry.
  EXPECT_THAT(html, HasSubstr("<a href=\"#chn/concurrent\"><code>chn/concurrent</code></a> \u2717"));
  EXPECT_THAT(html, HasSubstr("<a href=\"#chn/concurrent//x3\">"));
  EXPECT_THAT(html, HasSubstr("id=\"chn/concurrent//x3\""));
  // The page opens the case a link or the URL names, whether it passed or not.
  EXPECT_THAT(html, HasSubstr("addEventListener('hashchange'"));
}

TEST(Html, EscapesCaseAnchorsAndNeverLetsTwoElementsShareAnId) {
  RunResult run = sample_run();
  CaseResult odd = graded("odd/50%#\"q\"", "CHN-IDLE-EMPTY", Verdict::pass);
  odd.transcript = {entry("mac", "Idle", 0, chr::microseconds{0}, chr::microseconds{100}, 200)};
  run.cases.push_back(odd);
  run.cases.push_back(graded("record", "CHN-IDLE-EMPTY", Verdict::pass));          // a fixed id's name
  run.cases.push_back(graded("a/b c", "CHN-IDLE-EMPTY", Verdict::pass));           // no spaces in an id
  run.cases.push_back(graded("chn/idle_empty", "CHN-IDLE-EMPTY", Verdict::pass));  // a second time
  run.rules[0].cases.push_back("odd/50%#\"q\"");
  const std::string html = to_html(run);
  EXPECT_THAT(html, HasSubstr("id=\"odd/50%#&quot;q&quot;\""));
  EXPECT_THAT(html, HasSubstr("<a href=\"#odd/50%25%23%22q%22\"><code>odd/50%#&quot;q&quot;</code></a>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"#odd/50%25%23%22q%22//x1\">"));
  // A case whose id is not a suite path, or is taken, gets "case:N" (0-based N + 1 in the run).
  EXPECT_THAT(html, HasSubstr("<details class=\"case\" id=\"case:5\""));
  EXPECT_THAT(html, HasSubstr("<details class=\"case\" id=\"case:6\""));
  EXPECT_THAT(html, HasSubstr("<details class=\"case\" id=\"case:7\""));
  std::map<std::string, int> ids;
  const std::regex id_attr(" id=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), id_attr); it != std::sregex_iterator(); ++it) {
    ++ids[(*it)[1]];
  }
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(ids.count("record"), 1u);
}

TEST(Html, HeadsThePageWithTheOverallVerdictAndTheConditionsOfTheRun) {
  RunResult run = sample_run();
  run.identity_mode = "pool";
  run.conditions.selected_cases = {"chn/idle_empty", "chn/concurrent", "net/manage"};
  run.conditions.catalog_cases = 39;
  run.conditions.tls = "verified against the profile's CA (tls.ca)";
  run.conditions.strict = true;
  run.conditions.require_complete = true;
  run.baseline = scenario::BaselineComparison{
      "reports/last/report.json", "2026-11-28T08:00:00Z", {"chn/concurrent"}, {}, {"chn/idle_empty"}};
  const std::string html = to_html(run);
  EXPECT_THAT(html, HasSubstr("id=\"overall\" class=\"result r-fail\" data-result=\"failed\">FAILED</div>"));
  EXPECT_THAT(html, HasSubstr("<p id=\"headline\" class=\"headline\">FAILED: "));
  for (const char* row : {"<tr><td>cases</td><td>3 of 39 selected</td></tr>",
                          "<tr><td>TLS</td><td>verified against the profile&#39;s CA (tls.ca)</td></tr>",
                          "<tr><td>identity mode</td><td>pool</td></tr>",
                          "<tr><td>strict</td><td>yes: should-level breaks fail the run</td></tr>",
                          "<tr><td>require complete</td><td>yes: an incomplete run exits 1</td></tr>",
                          "<tr><td>baseline</td><td>reports/last/report.json (run 2026-11-28T08:00:00Z): 1 new "
                          "failure(s), 0 known, 1 fixed</td></tr>",
                          "<tr><td>certification</td><td>no signed certification record"}) {
    EXPECT_THAT(html, HasSubstr(row)) << row;
  }
  // The verdict comes before the record it rests on.
  EXPECT_LT(html.find("id=\"overall\""), html.find("<tr><td>target</td>"));

  // Nothing failed, not everything ran: its own badge, neither pass's nor fail's.
  RunResult incomplete = run;
  incomplete.cases = {run.cases[0]};
  incomplete.rules.clear();
  incomplete.baseline.reset();
  const std::string partial = to_html(incomplete);
  EXPECT_THAT(partial,
              HasSubstr("id=\"overall\" class=\"result r-incomplete\" data-result=\"passed-incomplete\">PASSED, "
                        "INCOMPLETE</div>"));
  EXPECT_THAT(partial, HasSubstr(".r-incomplete{background:#fff;"));
  EXPECT_THAT(partial, HasSubstr("<tr><td>baseline</td><td>none</td></tr>"));
}

TEST(Html, MarksEachFailureNewOrKnownAndLinksWhatTheBaselineSaysWasFixed) {
  RunResult run = mixed_run();
  run.baseline = scenario::BaselineComparison{
      "base.json", "2026-11-28T08:00:00Z", {"chn/concurrent"}, {"syn/all"}, {"enr/authenticate"}};
  const std::string html = to_html(run);
  EXPECT_THAT(html, HasSubstr("<code>chn/concurrent</code> <span class=\"mark mark-new\" "));
  EXPECT_THAT(html, HasSubstr("<code>syn/all</code> <span class=\"mark mark-known\" "));
  EXPECT_THAT(html, HasSubstr("<code>enr/authenticate</code> <span class=\"mark mark-fixed\" "));
  EXPECT_EQ(occurrences(html, "<span class=\"mark mark-"), 3u) << "no mark on a case the baseline did not judge";
  EXPECT_THAT(html,
              HasSubstr("<li>fixed since the baseline: <a href=\"#enr/authenticate\"><code>enr/authenticate</code></a>"
                        "</li>"));
  EXPECT_THAT(html, HasSubstr("<li>new failures since the baseline: <a href=\"#chn/concurrent\">"));
  EXPECT_THAT(to_html(mixed_run()), Not(HasSubstr("<span class=\"mark mark-"))) << "no baseline, no marks";
}

TEST(Html, SaysARuleNoCaseTestedIsUntestedAndWhyLinkingTheCase) {
  RunResult run = sample_run();
  // Not a link for net/managed, a longer word than the case's id.
  run.rules[1].untested = "skipped: net/manage: the profile manages no network user (net/managed is not a case)";
  const std::string html = to_html(run);
  EXPECT_THAT(html, HasSubstr("<td>should</td><td><span class=\"v v-untested\">UNTESTED</span></td><td><p "
                              "class=\"untested-note\">untested: skipped: <a href=\"#net/manage\"><code>net/manage"
                              "</code></a>: the profile manages no network user (net/managed is not a case)</p>"));
  EXPECT_THAT(html, HasSubstr("<li>untested: <a href=\"#rule-ROB-MALFORMED\"><b>ROB-MALFORMED</b></a> (should): "
                              "skipped: <a href=\"#net/manage\">"));
  EXPECT_EQ(occurrences(html, "href=\"#net/manage\""), 2u);
  EXPECT_THAT(html, HasSubstr("<details class=\"untested\" open><summary class=\"notes\">1 rule untested</summary>"
                              "<ul id=\"untested\""));

  // A run of a few cases leaves most rules untested: the list starts closed.
  for (int i = 0; i < 9; ++i) {
    run.rules.push_back(run.rules[1]);
    run.rules.back().id = fmt::format("ROB-OTHER-{}", i);
  }
  EXPECT_THAT(to_html(run), HasSubstr("<details class=\"untested\"><summary class=\"notes\">10 rules untested"));
}

}  // namespace
}  // namespace mdmc::report
