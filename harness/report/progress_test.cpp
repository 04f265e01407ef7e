#include "harness/report/progress.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/plist/value.hpp"
#include "harness/report/detail/text.hpp"

namespace mdmc::report {
namespace {

namespace chr = std::chrono;
using scenario::CaseResult;
using scenario::Verdict;
using ::testing::HasSubstr;
using ::testing::Not;

// A FILE* the progress writes to, read back whole.
class Captured {
 public:
  Captured() : file_(std::tmpfile()) {}
  ~Captured() { std::fclose(file_); }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    return out;
  }

 private:
  std::FILE* file_;
};

CaseResult passing(std::string id) {
  CaseResult c;
  c.id = std::move(id);
  c.verdict = Verdict::pass;
  c.elapsed = chr::milliseconds{3};
  scenario::TranscriptEntry e;
  e.actor = "mac";
  e.label = "Idle";
  net::Response r;
  r.status = 200;
  e.exchange.response = r;
  e.exchange.elapsed = chr::microseconds{840};
  c.transcript.push_back(e);
  return c;
}

CaseResult failing(std::string id) {
  CaseResult c = passing(std::move(id));
  c.verdict = Verdict::fail;
  c.reason = "SYN-EMPTY-END: expected 200 with a zero-length body, got 204";
  c.reproducer = "mdmconform run --seed 7 syn/empty_end";
  c.transcript.front().exchange.response->status = 204;
  return c;
}

TEST(ConsoleProgress, OffATerminalPrintsOnePlainLinePerCase) {
  Captured out;
  {
    ConsoleProgress progress(out.file(), false, Verbosity::normal, true);
    progress.suite_started(2);
    progress.case_started("chn/idle_empty");
    progress.case_ended(passing("chn/idle_empty"));
    progress.case_started("syn/empty_end");
    progress.case_ended(failing("syn/empty_end"));
    progress.finish();
  }
  const std::string text = out.text();
  EXPECT_EQ(text,
            "[1/2] PASS  chn/idle_empty  (3 ms)\n"
            "[2/2] FAIL  syn/empty_end  SYN-EMPTY-END: expected 200 with a zero-length body, got 204\n"
            "      replay: mdmconform run --seed 7 syn/empty_end\n");
}

CaseResult info_only(std::string id) {
  CaseResult c = passing(std::move(id));
  c.verdict = Verdict::info;
  c.reason =
      "the server does not use this option (may): UCF-DEVICECONFIGURED: expected a DeviceConfigured command; got "
      "an empty body";
  c.findings = {scenario::Finding{"UCF-DEVICECONFIGURED", scenario::Level::may, false, "a DeviceConfigured command",
                                  "an empty body", 1}};
  return c;
}

TEST(ConsoleProgress, PrintsAnInfoCaseAsInfoAndDoesNotCountItAsFailed) {
  Captured out;
  ConsoleProgress progress(out.file(), true, Verbosity::normal, true, 200);
  progress.suite_started(2);
  progress.case_started("ucf/device_configured");
  progress.case_ended(info_only("ucf/device_configured"));
  progress.case_started("syn/empty_end");
  progress.case_ended(failing("syn/empty_end"));
  progress.finish();
  const std::string text = out.text();
  EXPECT_THAT(text, HasSubstr("\r\x1b[KINFO  ucf/device_configured  the server does not use this option (may): "
                              "UCF-DEVICECONFIGURED: expected a DeviceConfigured command; got an empty body\n"));
  EXPECT_THAT(text, HasSubstr("[1/2] 0 failed"));
  EXPECT_THAT(text, HasSubstr("[2/2] 1 failed"));
  EXPECT_THAT(text, Not(HasSubstr("[1/2] 1 failed")));
}

TEST(ConsoleProgress, QuietPrintsNothingWhileTheRunGoesOn) {
  Captured out;
  ConsoleProgress progress(out.file(), true, Verbosity::quiet, true);
  progress.suite_started(1);
  progress.case_started("syn/empty_end");
  progress.case_ended(failing("syn/empty_end"));
  progress.finish();
  EXPECT_EQ(out.text(), "");
  EXPECT_FALSE(progress.summary_parts().passing_cases);
  EXPECT_FALSE(progress.summary_parts().rules);
}

TEST(ConsoleProgress, VerbosePrintsEachExchange) {
  Captured out;
  ConsoleProgress progress(out.file(), false, Verbosity::verbose, true);
  progress.suite_started(1);
  progress.case_ended(failing("syn/empty_end"));
  progress.finish();
  EXPECT_THAT(out.text(), HasSubstr("\n      mac        Idle -> 204 (0.84 ms)\n"));
}

TEST(ConsoleProgress, OnATerminalRedrawsOneLineWithCountsFailuresCaseAndTime) {
  Captured out;
  ConsoleProgress progress(out.file(), true, Verbosity::normal, true, 200);
  progress.suite_started(3);
  progress.case_started("chn/idle_empty");
  progress.case_ended(passing("chn/idle_empty"));
  progress.case_started("syn/empty_end");
  progress.case_ended(failing("syn/empty_end"));
  progress.case_started("ucf/redeliver");
  // The line is redrawn while a case runs, so the elapsed time moves (bounded: 2 s at most).
  const auto deadline = chr::steady_clock::now() + chr::seconds{2};
  std::size_t redraws = 0;
  while (chr::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(chr::milliseconds{50});
    const std::string text = out.text();
    redraws = 0;
    for (auto pos = text.find("[2/3] 1 failed"); pos != std::string::npos; pos = text.find("[2/3] 1 failed", pos + 1))
      ++redraws;
    if (redraws >= 3) break;
  }
  progress.finish();
  const std::string text = out.text();
  EXPECT_GE(redraws, 3u) << text;
  EXPECT_THAT(text, HasSubstr("\r[1/3] 0 failed \u00b7 "));
  EXPECT_THAT(text, HasSubstr(" \u00b7 ucf/redeliver\x1b[K"));
  // A failure is printed above the line as it happens; a pass is not.
  EXPECT_THAT(text, HasSubstr("\r\x1b[KFAIL  syn/empty_end  SYN-EMPTY-END"));
  EXPECT_THAT(text, Not(HasSubstr("PASS  chn/idle_empty")));
  // Finishing clears the line for the summary.
  EXPECT_EQ(text.substr(text.size() - 4), "\r\x1b[K");
  EXPECT_TRUE(progress.summary_parts().passing_cases) << "the summary then lists every case";
}

TEST(ConsoleProgress, TheTerminalLineNeverWraps) {
  Captured out;
  ConsoleProgress progress(out.file(), true, Verbosity::normal, true, 30);
  progress.suite_started(40);
  progress.case_started("a/very/long/case/id/that/goes/on/and/on");
  progress.finish();
  const std::string text = out.text();
  const auto start = text.find('\r');
  const auto end = text.find("\x1b[K");
  ASSERT_NE(start, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(detail::width_of(text.substr(start + 1, end - start - 1)), 29u) << text;
}

TEST(ConsoleProgress, RedactsSecretsAndEscapesControlCharacters) {
  Captured out;
  CaseResult c = failing("chn/\x1b[2Jevil");
  plist::Dict body{{"MessageType", plist::Value("TokenUpdate")}, {"PushMagic", plist::Value("MAGIC-SECRET-0001")}};
  c.transcript.front().exchange.request.body = plist::to_xml(plist::Value(body));
  c.reason = "the server echoed MAGIC-SECRET-0001 back";
  ConsoleProgress progress(out.file(), false, Verbosity::normal, true);
  progress.suite_started(1);
  progress.case_ended(c);
  progress.finish();
  const std::string text = out.text();
  EXPECT_THAT(text, Not(HasSubstr("MAGIC-SECRET-0001")));
  EXPECT_THAT(text, HasSubstr("<redacted: 17 chars>"));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  EXPECT_THAT(text, HasSubstr("chn/\\x1B[2Jevil"));
}

}  // namespace
}  // namespace mdmc::report
