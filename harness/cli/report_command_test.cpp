// `mdmconform report` on load records: a saved record's views, and --merge of shard records.
#include "harness/cli/report_command.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include "harness/base/files.hpp"
#include "harness/load/load_report.hpp"

namespace mdmc::cli {
namespace {

namespace fs = std::filesystem;
namespace chr = std::chrono;
using ::testing::HasSubstr;

// Shard `index` of a 3-shard fleet; shard i made 100 * (i + 1) Idle exchanges and one 500.
load::LoadReport shard(int index) {
  load::LoadReport r;
  r.target = "reference";
  r.started_utc = "2026-12-06T23:30:00Z";
  r.seed = 42;
  r.shard_index = index;
  r.shard_count = 3;
  r.devices = 9;
  r.users_per_device = 1;
  r.channels = 6;
  r.duration_s = 5;
  r.elapsed_s = 5.1;
  for (int i = 0; i < 100 * (index + 1); ++i) {
    r.figures.record({"Idle", 200}, chr::microseconds(900 + i), chr::milliseconds(i * 10));
  }
  r.figures.record({"Idle", 500}, chr::milliseconds(40), chr::seconds(2));
  r.figures.record_error("5xx", chr::seconds(2));
  r.commands.queued = 10;
  r.commands.acknowledged = 10;
  r.harness = load::Usage{0.5, 0.25, 30'000};
  return r;
}

class ReportCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("mdmc_report_command_test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write_record(const std::string& name, const load::LoadReport& r) {
    const fs::path path = dir_ / name;
    EXPECT_TRUE(base::write_file_atomically(path, load::to_json(r)).ok());
    return path;
  }
  std::string read(const fs::path& path) { return base::read_file_capped(path, 1 << 26).value_or(""); }

  // `mdmconform report ARGS...` as main() parses and dispatches it; stderr kept in errors_.
  int command(std::vector<std::string> args) {
    CLI::App app("mdmconform");
    ReportCommand report(app);
    args.insert(args.begin(), "report");
    std::vector<const char*> argv = {"mdmconform"};
    for (const auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    ::testing::internal::CaptureStderr();
    const int code = report.dispatch().value_or(-1);
    errors_ = ::testing::internal::GetCapturedStderr();
    return code;
  }

  fs::path dir_;
  std::string errors_;
};

TEST_F(ReportCommandTest, RendersASavedLoadRecordAsHtmlMarkdownAndJson) {
  const fs::path record = write_record("report.json", shard(0));
  EXPECT_EQ(command({record.string(), "--out", (dir_ / "page.html").string()}), 0) << errors_;
  EXPECT_THAT(read(dir_ / "page.html"), HasSubstr("<h1>mdmconform load run</h1>"));
  EXPECT_THAT(read(dir_ / "page.html"), HasSubstr("id=\"chart-latency\""));
  EXPECT_EQ(command({record.string(), "--format", "md", "--out", (dir_ / "summary.md").string()}), 0) << errors_;
  EXPECT_THAT(read(dir_ / "summary.md"), HasSubstr("## mdmconform load: no invariant broken against `reference`"));
  EXPECT_EQ(command({record.string(), "--format", "json", "--out", (dir_ / "again.json").string()}), 0) << errors_;
  EXPECT_EQ(read(dir_ / "again.json"), read(record));
  EXPECT_EQ(command({record.string(), "--format", "junit"}), 2);
  EXPECT_THAT(errors_, HasSubstr("a load record has html, md and json views, not junit"));
}

TEST_F(ReportCommandTest, ABrokenLoadRecordExitsTwoSayingWhere) {
  std::string text = load::to_json(shard(0));
  // The figures' count, not the summary's beside it (which a reader makes again).
  text.replace(text.find("\"exchanges\": 101", text.find("\"figures\"")), 16, "\"exchanges\": 999");
  ASSERT_TRUE(base::write_file_atomically(dir_ / "broken.json", text).ok());
  EXPECT_EQ(command({(dir_ / "broken.json").string()}), 2);
  EXPECT_THAT(errors_, HasSubstr("broken.json: figures.exchanges"));
}

TEST_F(ReportCommandTest, MergeWritesTheMergedRunsFolder) {
  const fs::path a = write_record("a.json", shard(0));
  const fs::path b = write_record("b.json", shard(1));
  const fs::path c = write_record("c.json", shard(2));
  const fs::path out = dir_ / "merged";
  EXPECT_EQ(command({"--merge", c.string(), a.string(), b.string(), "--out", out.string()}), 0) << errors_;
  for (const char* name : {"report.json", "report.html", "summary.md"}) {
    EXPECT_TRUE(fs::is_regular_file(out / name)) << name;
  }
  auto merged = load::load_report_from_json(read(out / "report.json"));
  ASSERT_TRUE(merged.ok()) << merged.message();
  EXPECT_EQ(merged->merged_shards, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(merged->figures.exchanges(), 100u + 200u + 300u + 3u);
  EXPECT_EQ(merged->figures.errors(), 3u);
  EXPECT_EQ(merged->channels, 18u);
  EXPECT_EQ(merged->commands.queued, 30u);
  EXPECT_THAT(read(out / "report.html"), HasSubstr("shards 0, 1, 2 of 3 (merged)"));
  // Without --out, the merged record is printed: the same one.
  ::testing::internal::CaptureStdout();
  const int code = command({"--merge", a.string(), b.string(), c.string()});
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0) << errors_;
  EXPECT_EQ(printed, read(out / "report.json"));
}

TEST_F(ReportCommandTest, RecordsThatDoNotMergeExitTwoWithTheReason) {
  const fs::path a = write_record("a.json", shard(0));
  load::LoadReport other = shard(1);
  other.seed = 43;
  const fs::path b = write_record("b.json", other);
  EXPECT_EQ(command({"--merge", a.string(), b.string(), "--out", (dir_ / "m").string()}), 2);
  EXPECT_THAT(errors_, HasSubstr("cannot merge"));
  EXPECT_THAT(errors_, HasSubstr("its seed is 43, record 1's is 42"));
  EXPECT_FALSE(fs::exists(dir_ / "m"));
  EXPECT_EQ(command({"--merge", a.string(), a.string()}), 2);
  EXPECT_THAT(errors_, HasSubstr("shard 0/3 is in record 1 and in record 2"));
  // A conformance run's record is not a load record.
  ASSERT_TRUE(base::write_file_atomically(dir_ / "run.json", "{\"schema_version\": 1}").ok());
  EXPECT_EQ(command({"--merge", a.string(), (dir_ / "run.json").string()}), 2);
  EXPECT_THAT(errors_, HasSubstr("run.json: not a load record"));
  EXPECT_EQ(command({"--merge", a.string(), "--format", "md"}), 2);
  EXPECT_THAT(errors_, HasSubstr("--format does not apply to --merge"));
  EXPECT_EQ(command({}), 2);
  EXPECT_THAT(errors_, HasSubstr("give a FILE, or --merge"));
}

}  // namespace
}  // namespace mdmc::cli
