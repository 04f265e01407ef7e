// `mdmconform fuzz` and `mdmconform replay` end to end: the real libFuzzer binary
// (fuzzers/target_fuzzer, built by the fuzz preset with clang) against the built-in reference
// server. Skipped, saying why, where target_fuzzer is not built; scripts/test.sh builds it and
// runs these tests again.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) { return testing::read_text(p); }

using Ran = testing::Ran;

class FuzzCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("MDMC_TARGET_FUZZER");
    fuzzer_ = env ? fs::path(env) : fs::path(MDMC_SOURCE_DIR) / "build" / "fuzz" / "fuzzers" / "target_fuzzer";
    if (::access(fuzzer_.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "target_fuzzer is not built (" << fuzzer_.string()
                   << "): scripts/build.sh fuzz --target target_fuzzer, or set MDMC_TARGET_FUZZER";
    }
    dir_ = testing::fresh_test_dir("mdmc_fuzz_cli_test");
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // Runs mdmconform with a hard time limit, so that a hang fails the test, not the CI job.
  Ran run(const std::string& args, int limit_s = 180) {
    return testing::run_shell("exec " + std::string(MDMC_BINARY) + " --specs " + std::string(MDMC_SOURCE_DIR) +
                                  "/specs " + args + " --fuzzer " + fuzzer_.string(),
                              std::chrono::seconds(limit_s));
  }
  // A command line of its own, which bounds itself (`timeout`); the limit here is a backstop.
  static Ran run_raw(const std::string& command) { return testing::run_shell(command, std::chrono::seconds(300)); }
  nlohmann::json summary() { return nlohmann::json::parse(read(dir_ / "fuzz" / "summary.json")); }

  fs::path fuzzer_;
  fs::path dir_;
};

TEST_F(FuzzCliTest, ACorrectServerYieldsNoFindingAndASummary) {
  auto ran = run("fuzz --max-time 20 --seed 1 --out " + dir_.string());
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  auto s = summary();
  EXPECT_EQ(s["kind"], "mdmconform-fuzz");
  EXPECT_TRUE(s["findings"].empty()) << s.dump(2);
  EXPECT_GT(s["executions"].get<long>(), 100) << ran.output;
  EXPECT_GT(s["corpus_size"].get<long>(), 0);
  // The seed corpus was copied in: every seed is there, beside what the run added.
  const auto seeds = std::distance(fs::directory_iterator(fs::path(MDMC_SOURCE_DIR) / "corpus" / "target_fuzzer"),
                                   fs::directory_iterator{});
  EXPECT_GE(s["corpus_files"].get<long>(), seeds);
  EXPECT_FALSE(s["timeline"].empty());
  EXPECT_FALSE(s["interrupted"].get<bool>());
  EXPECT_TRUE(fs::exists(dir_ / "fuzz" / "summary.md"));
  EXPECT_TRUE(fs::exists(dir_ / "fuzz" / "report.html"));
  EXPECT_TRUE(fs::exists(dir_ / "fuzz" / "fuzzer.log"));
}

// --jobs 2: two fuzzing processes for the whole run, each enrolled as a device of its own,
// their counts summed and their lines marked in the log.
TEST_F(FuzzCliTest, TwoJobsFuzzAsTwoDevicesForTheWholeRun) {
  auto ran = run("fuzz --jobs 2 --max-time 15 --seed 1 --out " + dir_.string());
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  auto s = summary();
  EXPECT_EQ(s["jobs"], 2);
  EXPECT_TRUE(s["findings"].empty()) << s.dump(2);
  EXPECT_GT(s["executions"].get<long>(), 100) << ran.output;
  const auto log = read(dir_ / "fuzz" / "fuzzer.log");
  std::vector<std::string> devices;
  for (int job = 0; job < 2; ++job) {
    const std::string mark = "[job " + std::to_string(job) + "] target_fuzzer: enrolled ";
    auto at = log.find(mark);
    ASSERT_NE(at, std::string::npos) << log.substr(0, 4000);
    devices.push_back(log.substr(at + mark.size(), 36));
    // Each ran for the whole run: its last status line is its final one.
    EXPECT_NE(log.find("[job " + std::to_string(job) + "] Done "), std::string::npos) << log.substr(0, 4000);
  }
  EXPECT_EQ(devices[0], "23EB7CD8-5567-5E97-827F-06E4E4C456B2");
  EXPECT_NE(devices[1], devices[0]);
  EXPECT_EQ(log.find("-fork"), std::string::npos);
}

TEST_F(FuzzCliTest, ASeededBugIsFoundWrittenFirstAndReplays) {
  auto ran = run("fuzz --seeded-bug wrong-type-500 --max-time 120 --seed 1 --max-findings 1 --out " + dir_.string());
  ASSERT_EQ(ran.exit_code, 1) << ran.output;
  auto s = summary();
  ASSERT_FALSE(s["findings"].empty()) << ran.output;
  const auto& finding = s["findings"][0];
  EXPECT_EQ(finding["oracle"], "status-5xx") << finding.dump();
  fs::path file = finding["path"].get<std::string>();
  ASSERT_TRUE(fs::exists(file));
  auto record = nlohmann::json::parse(read(file));
  EXPECT_EQ(record["kind"], "mdmconform-finding");
  EXPECT_EQ(record["response"]["status"], 500);
  // No temporary file beside the finding: it was written atomically. And it says what was
  // wrong with the input, minimised on a fresh device.
  int files = 0;
  for (const auto& e : fs::directory_iterator(file.parent_path())) files += e.path().extension() == ".json" ? 1 : 0;
  EXPECT_EQ(files, static_cast<int>(s["findings"].size()));
  // The bug answers 500 to an <integer> in one of seven string keys: the finding says which.
  EXPECT_NE(finding["summary"].get<std::string>().find("is an integer (expected string"), std::string::npos)
      << finding.dump();
  EXPECT_NE(finding["answer"].get<std::string>().find("HTTP 500"), std::string::npos) << finding.dump();
  EXPECT_TRUE(record["minimised"].get<bool>()) << record.dump(2);
  EXPECT_GE(finding["hits"].get<long>(), 1);
  EXPECT_NE(read(dir_ / "fuzz" / "junit.xml").find("<failure"), std::string::npos);

  auto replay = run_raw("timeout 60 " + std::string(MDMC_BINARY) + " --specs " + std::string(MDMC_SOURCE_DIR) +
                        "/specs replay " + file.string() + " 2>&1");
  EXPECT_EQ(replay.exit_code, 1) << replay.output;
  EXPECT_NE(replay.output.find("reproduced: status-5xx"), std::string::npos) << replay.output;
  EXPECT_NE(replay.output.find("< 500"), std::string::npos) << replay.output;
}

// The fuzzer goes on after a finding: --max-findings ends the run, and an earlier run's
// findings given as --known are known, not new (exit 0 when nothing new is found).
TEST_F(FuzzCliTest, FindingsKeepComingUpToMaxFindingsAndKnownOnesDoNotFail) {
  auto first = run("fuzz --seeded-bug wrong-type-500 --max-time 150 --seed 1 --max-findings 2 --out " +
                   (dir_ / "first").string());
  ASSERT_EQ(first.exit_code, 1) << first.output;
  auto s1 = nlohmann::json::parse(read(dir_ / "first" / "fuzz" / "summary.json"));
  ASSERT_EQ(s1["findings"].size(), 2u) << s1.dump(2);
  EXPECT_TRUE(s1["stopped_at_max_findings"].get<bool>());
  EXPECT_NE(s1["findings"][0]["key"], s1["findings"][1]["key"]);
  auto junit = read(dir_ / "first" / "fuzz" / "junit.xml");
  EXPECT_NE(junit.find("tests=\"2\" failures=\"2\""), std::string::npos) << junit;

  auto again = run("fuzz --seeded-bug wrong-type-500 --max-time 150 --seed 1 --max-findings 1 --known " +
                   (dir_ / "first" / "fuzz" / "summary.json").string() + " --out " + (dir_ / "again").string());
  auto s2 = nlohmann::json::parse(read(dir_ / "again" / "fuzz" / "summary.json"));
  ASSERT_EQ(s2["findings"].size(), 1u) << s2.dump(2);
  if (s2["findings"][0]["known"].get<bool>()) {
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(read(dir_ / "again" / "fuzz" / "junit.xml").find("<skipped"), std::string::npos);
  } else {
    EXPECT_EQ(again.exit_code, 1) << again.output;  // a third kind of the same bug: new
  }
}

// A server that breaks a rule on well-formed input (every series ends with 204) is fuzzed all
// the same, with the rule excluded and said so; it stopped at 0 runs before.
TEST_F(FuzzCliTest, AServerBreakingARuleIsStillFuzzedWithTheRuleExcluded) {
  auto ran = run("fuzz --fault series-end-204 --max-time 20 --seed 1 --out " + dir_.string());
  auto s = summary();
  EXPECT_GT(s["executions"].get<long>(), 100) << ran.output;
  ASSERT_TRUE(s.contains("exclusions")) << s.dump(2);
  EXPECT_EQ(s["exclusions"][0]["rule"], "SYN-EMPTY-END");
  EXPECT_NE(read(dir_ / "fuzz" / "summary.md").find("SYN-EMPTY-END"), std::string::npos);
  for (const auto& f : s["findings"]) EXPECT_NE(f["oracle"], "liveness") << f.dump();
}

TEST_F(FuzzCliTest, SigintStopsTheFuzzerAndKeepsTheSummaryMarkedInterrupted) {
  auto log = dir_ / "log.txt";
  auto process = testing::Process::spawn({MDMC_BINARY, "--specs", std::string(MDMC_SOURCE_DIR) + "/specs", "fuzz",
                                          "--max-time", "300", "--out", dir_.string(), "--fuzzer", fuzzer_.string()},
                                         {.output_file = log});
  ASSERT_TRUE(process) << process.message();
  // Until the fuzzer has run inputs: its first sample line ("... runs ... exec/s") is in the
  // log. A fixed wait after its start line was too short for the sanitizer build under load.
  ASSERT_TRUE(process->wait_for_output("exec/s", std::chrono::seconds(60))) << read(log);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto signalled = std::chrono::steady_clock::now();
  ASSERT_TRUE(process->signal(SIGINT));
  // A process still running is killed when `process` goes.
  auto ended = process->wait_for(std::chrono::seconds(20));
  if (!ended) FAIL() << "mdmconform fuzz did not stop within 20 s of SIGINT\n" << read(log);
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(20));
  ASSERT_EQ(ended->signal, 0) << read(log);
  EXPECT_EQ(ended->exit_code, 1) << read(log);
  auto s = summary();
  EXPECT_TRUE(s["interrupted"].get<bool>());
  EXPECT_GT(s["executions"].get<long>(), 0);
  EXPECT_TRUE(s["findings"].empty());
  EXPECT_TRUE(fs::exists(dir_ / "fuzz" / "summary.md"));
  EXPECT_TRUE(fs::exists(dir_ / "fuzz" / "report.html"));
}

TEST_F(FuzzCliTest, ARemoteTargetIsRefusedUnlessAllowed) {
  auto profile = dir_ / "remote.yaml";
  std::ofstream(profile) << "schema_version: 1\nname: remote\nurls:\n  check_in: http://192.0.2.1/checkin\n"
                            "  server: http://192.0.2.1/mdm\n";
  auto ran = run("fuzz --target " + profile.string() + " --max-time 5 --out " + dir_.string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("--allow-remote"), std::string::npos) << ran.output;
}

}  // namespace
}  // namespace mdmc
