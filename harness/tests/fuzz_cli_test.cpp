// `mdmconform fuzz` and `mdmconform replay` end to end: the real libFuzzer binary
// (fuzzers/target_fuzzer, built by the fuzz preset with clang) against the built-in reference
// server. Skipped, saying why, where target_fuzzer is not built; scripts/test.sh builds it and
// runs these tests again.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
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

namespace mdmc {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Ran {
  int exit_code = -1;
  std::string output;
};

class FuzzCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("MDMC_TARGET_FUZZER");
    fuzzer_ = env ? fs::path(env) : fs::path(MDMC_SOURCE_DIR) / "build" / "fuzz" / "fuzzers" / "target_fuzzer";
    if (::access(fuzzer_.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "target_fuzzer is not built (" << fuzzer_.string()
                   << "): scripts/build.sh fuzz --target target_fuzzer, or set MDMC_TARGET_FUZZER";
    }
    dir_ = fs::temp_directory_path() / ("mdmc_fuzz_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // Runs mdmconform with a hard time limit, so that a hang fails the test, not the CI job.
  Ran run(const std::string& args, int limit_s = 180) {
    std::string command = "timeout " + std::to_string(limit_s) + " " + std::string(MDMC_BINARY) + " --specs " +
                          std::string(MDMC_SOURCE_DIR) + "/specs " + args + " --fuzzer " + fuzzer_.string() + " 2>&1";
    return run_raw(command);
  }
  static Ran run_raw(const std::string& command) {
    Ran ran;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return ran;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) ran.output.append(buf, n);
    int status = pclose(pipe);
    ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return ran;
  }
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

TEST_F(FuzzCliTest, ASeededBugIsFoundWrittenFirstAndReplays) {
  auto ran = run("fuzz --seeded-bug wrong-type-500 --max-time 120 --seed 1 --out " + dir_.string());
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
  // No temporary file beside the finding: it was written atomically.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(file.parent_path())) ++files;
  EXPECT_EQ(files, static_cast<int>(s["findings"].size()));

  auto replay = run_raw("timeout 60 " + std::string(MDMC_BINARY) + " --specs " + std::string(MDMC_SOURCE_DIR) +
                        "/specs replay " + file.string() + " 2>&1");
  EXPECT_EQ(replay.exit_code, 1) << replay.output;
  EXPECT_NE(replay.output.find("reproduced: status-5xx"), std::string::npos) << replay.output;
  EXPECT_NE(replay.output.find("< 500"), std::string::npos) << replay.output;
}

TEST_F(FuzzCliTest, SigintStopsTheFuzzerAndKeepsTheSummaryMarkedInterrupted) {
  auto log = dir_ / "log.txt";
  std::vector<std::string> args = {MDMC_BINARY, "--specs", std::string(MDMC_SOURCE_DIR) + "/specs", "fuzz",
                                   "--max-time", "300", "--out", dir_.string(), "--fuzzer", fuzzer_.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, MDMC_BINARY, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Until the fuzzer runs: its first status line is in the log.
  for (int i = 0; i < 200 && read(log).find("fuzz:") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto signalled = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 400 && done == 0; ++i) {
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "mdmconform fuzz did not stop within 20 s of SIGINT\n" << read(log);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(20));
  ASSERT_TRUE(WIFEXITED(status)) << read(log);
  EXPECT_EQ(WEXITSTATUS(status), 1) << read(log);
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
