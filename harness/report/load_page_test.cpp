#include "harness/report/load_page.hpp"

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/base/files.hpp"

namespace mdmc::report {
namespace {

namespace chr = std::chrono;
using load::LoadReport;
using ::testing::HasSubstr;
using ::testing::Not;

chr::nanoseconds seconds(double v) { return chr::nanoseconds(static_cast<std::int64_t>(v * 1e9)); }

// A 10-second run of two message types, a 500 and a timeout, and a finding whose detail and
// excerpts hold markup a page must not run.
LoadReport sample_load() {
  LoadReport r;
  r.target = "reference <b>";
  r.target_url = "https://127.0.0.1:8443/checkin";
  r.started_utc = "2026-12-06T23:30:00Z";
  r.seed = 7;
  r.devices = 10;
  r.users_per_device = 2;
  r.channels = 30;
  r.duration_s = 10;
  r.elapsed_s = 9.5;
  for (int i = 0; i < 950; ++i) {
    r.figures.record({"Idle", 200}, chr::microseconds(800 + (i % 50) * 40), seconds(i / 100.0));
    if (i % 10 == 0) r.figures.record({"Acknowledged", 200}, chr::milliseconds(2), seconds(i / 100.0));
  }
  r.figures.record({"Idle", 500}, chr::milliseconds(30), seconds(4.2));
  r.figures.record_error("5xx", seconds(4.2));
  r.figures.record({"Idle", 0}, chr::seconds(5), seconds(6.1));
  r.figures.record_error("timeout", seconds(6.1));
  r.commands = load::CommandCounts{40, 1, 38, 36, 2, 0, 1};
  load::Finding f;
  f.invariant = "delivered-twice";
  f.channel = "UDID-1:user-1";
  f.command_uuid = "C-1";
  f.detail = "delivered twice <script>alert(1)</script>";
  f.at_s = 4.5;
  f.exchanges = {load::ExchangeRecord{4.4, f.channel, "Idle", 200, "<plist>Idle</plist>", "</pre><script>x</script>"},
                 load::ExchangeRecord{4.5, f.channel, "Idle", 200, "", std::string("\xff\x00\x01", 3)}};
  r.findings = {f};
  r.findings_total = 1;
  r.harness = load::Usage{1.25, 0.5, 51200};
  return r;
}

// Every element opened is closed, in order (void elements and "/>" aside): enough to catch
// markup a value broke out of.
std::string unbalanced_tag(const std::string& html) {
  static const std::vector<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> open;
  const std::regex tag("<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[2];
    const std::string attributes = (*it)[3];
    if ((*it)[1].length() == 0) {
      if (std::find(kVoid.begin(), kVoid.end(), name) != kVoid.end() || attributes.ends_with("/")) continue;
      open.push_back(name);
    } else {
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? "nothing" : open.back());
      open.pop_back();
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> never closed";
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

TEST(LoadPage, IsOneWellFormedSelfContainedFileThatFetchesNothing) {
  const std::string html = render_load_html(sample_load());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THAT(html, HasSubstr("Content-Security-Policy\" content=\"default-src 'none'"));
  for (const char* fetch : {"<link", "<script", " src=\"", "url(", "@import", "<iframe", "<img"}) {
    EXPECT_THAT(html, Not(HasSubstr(fetch))) << fetch;
  }
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_EQ(occurrences(html, "<style>"), 1u);
}

TEST(LoadPage, EscapesWhatTheTargetSent) {
  const std::string html = render_load_html(sample_load());
  EXPECT_THAT(html, HasSubstr("delivered twice &lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("reference &lt;b&gt;"));
  // Bytes that are not text are shown as hex.
  EXPECT_THAT(html, HasSubstr("3 bytes that are not text:\nff 00 01"));
  EXPECT_EQ(unbalanced_tag(html), "");
}

TEST(LoadPage, ChartsThroughputAndLatencyOnePointPerInterval) {
  const std::string html = render_load_html(sample_load());
  // 9.5 s in 1-second intervals: 10 intervals, each with exchanges.
  EXPECT_THAT(html, HasSubstr("<svg class=\"chart\" id=\"chart-throughput\" data-points=\"10\""));
  EXPECT_THAT(html, HasSubstr("<svg class=\"chart\" id=\"chart-errors\" data-points=\"10\""));
  EXPECT_THAT(html, HasSubstr("<svg class=\"chart\" id=\"chart-latency\" data-points=\"10\""));
  EXPECT_THAT(html, HasSubstr("<text x=\"84\" y=\"32\">exchanges/s</text>"));
  EXPECT_THAT(html, HasSubstr(">errors/s</text>"));
  EXPECT_THAT(html, HasSubstr(">p99</text>"));
  // The first interval: 100 Idle and 10 Acknowledged in 1 s.
  EXPECT_THAT(html, HasSubstr("<title>exchanges/s at 0.5 s: 110</title>"));
  // The last interval is cut at the run's end: 9.0 to 9.5 s, 55 exchanges in half a second.
  EXPECT_THAT(html, HasSubstr("<title>exchanges/s at 9.2 s: 110</title>"));
  EXPECT_THAT(html, HasSubstr("<title>errors/s at 4.5 s: 1</title>"));
}

TEST(LoadPage, ShowsTheLatencyTableErrorsCommandsFindingsAndTheHarness) {
  const std::string html = render_load_html(sample_load());
  EXPECT_EQ(occurrences(html, "<tr class=\"latency-row\">"), 4u);  // Idle 200, Idle 500, Idle none, Acknowledged 200
  EXPECT_THAT(html, HasSubstr("<tr class=\"latency-row\"><td>Idle</td><td>no response</td><td class=\"n\">1</td>"));
  EXPECT_THAT(html, HasSubstr("<tr class=\"latency-row\"><td>Idle</td><td>500</td><td class=\"n\">1</td>"));
  EXPECT_THAT(html, HasSubstr("<td>timeout</td><td class=\"n\">1</td>"));
  EXPECT_THAT(html, HasSubstr("<td class=\"n\">40</td><td class=\"n\">1</td><td class=\"n\">38</td>"));
  EXPECT_THAT(html, HasSubstr("<b>delivered-twice</b> on <code>UDID-1:user-1</code> (command <code>C-1</code>)"));
  EXPECT_THAT(html, HasSubstr("data-findings=\"1\">1 finding</span>"));
  EXPECT_THAT(
      html, HasSubstr("<td>this run</td><td class=\"n\">1.25</td><td class=\"n\">0.50</td><td class=\"n\">50.0</td>"));
  EXPECT_THAT(html, Not(HasSubstr("id=\"interrupted\"")));
}

TEST(LoadPage, ShowsAnInterruptedRunProminently) {
  LoadReport r = sample_load();
  r.interrupted = true;
  r.interrupted_reason = "SIGINT";
  const std::string html = render_load_html(r);
  EXPECT_THAT(html, HasSubstr("<p id=\"interrupted\">Interrupted by SIGINT after 9.5 s of 10 s"));
  EXPECT_THAT(html, HasSubstr("(1) are not counted as lost"));
  EXPECT_THAT(html, HasSubstr("(interrupted)</title>"));
  // Before the record and the charts.
  EXPECT_LT(html.find("id=\"interrupted\""), html.find("id=\"record\""));
  EXPECT_THAT(render_load_markdown(r), HasSubstr("**Interrupted by SIGINT** after 9.5 s of 10 s"));
}

TEST(LoadPage, AnEmptyRunRendersWithoutMeasurements) {
  const LoadReport r;
  const std::string html = render_load_html(r);
  EXPECT_THAT(html, HasSubstr("data-points=\"0\""));
  EXPECT_THAT(html, HasSubstr("nothing measured"));
  EXPECT_THAT(html, HasSubstr("no invariant broken"));
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_THAT(render_load_markdown(r), HasSubstr("0 exchanges"));
}

TEST(LoadPage, AMergedRunShowsEachShardsUsage) {
  LoadReport a = sample_load(), b = sample_load();
  a.shard_count = b.shard_count = 3;
  b.shard_index = 2;
  b.harness.peak_rss_kib = 102400;
  auto merged = load::merge({a, b});
  ASSERT_TRUE(merged.ok()) << merged.message();
  const std::string html = render_load_html(*merged);
  EXPECT_THAT(html, HasSubstr("shards 0, 2 of 3 (merged; 1 missing)"));
  EXPECT_THAT(
      html, HasSubstr("<td>shard 2</td><td class=\"n\">1.25</td><td class=\"n\">0.50</td><td class=\"n\">100.0</td>"));
  EXPECT_THAT(html, HasSubstr("<td>all (CPU summed, RSS the largest)</td><td class=\"n\">2.50</td>"));
  EXPECT_EQ(load_run_folder_name(*merged), "20261206T233000Z-load-reference__b_");
  EXPECT_EQ(load_run_folder_name(b), "20261206T233000Z-load-reference__b_-shard2of3");
}

TEST(LoadMarkdown, GivesTheTotalsCommandsErrorsAndFindingsEscaped) {
  const std::string md = render_load_markdown(sample_load());
  EXPECT_THAT(md, HasSubstr("## mdmconform load: 1 finding against `reference <b>`"));
  EXPECT_THAT(md, HasSubstr("1047 exchanges ("));
  EXPECT_THAT(md, HasSubstr("2 errors"));
  EXPECT_THAT(md, HasSubstr("Commands: 40 queued, 1 refused, 38 delivered"));
  EXPECT_THAT(md, HasSubstr("Errors: `5xx` 1, `timeout` 1"));
  EXPECT_THAT(
      md, HasSubstr("- `delivered-twice` on `UDID-1:user-1` (command `C-1`) at 4.5 s: delivered twice &lt;script&gt;"));
  EXPECT_THAT(md, Not(HasSubstr("<script>")));
}

TEST(LoadRun, WritesTheRecordAndItsViewsIntoTheFolder) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mdmc_load_page_test-" + std::to_string(::getpid()) + "-" + info->name());
  std::filesystem::remove_all(dir);
  const auto folder = dir / "runs" / "one";
  ASSERT_TRUE(write_load_run(sample_load(), folder).ok());
  for (const char* name : {"report.json", "report.html", "summary.md"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(folder / name)) << name;
  }
  auto text = base::read_file_capped(folder / "report.json", 1 << 24);
  ASSERT_TRUE(text.ok());
  auto back = load::load_report_from_json(*text);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_TRUE(back->figures == sample_load().figures);
  auto html = base::read_file_capped(folder / "report.html", 1 << 24);
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(*html, render_load_html(*back));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mdmc::report
