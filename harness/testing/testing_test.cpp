// The test support's own contract: a Process reports how its program ended, captures what it
// printed, and never waits past its deadline.
#include "harness/testing/process.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>

#include "harness/testing/files.hpp"

namespace mdmc::testing {
namespace {

using namespace std::chrono_literals;

TEST(Process, ReportsTheExitCodeAndWhatWasPrinted) {
  const auto ran = run_shell("echo out; echo err >&2; exit 3", 10s);
  EXPECT_EQ(ran.exit_code, 3);
  EXPECT_EQ(ran.signal, 0);
  EXPECT_FALSE(ran.timed_out);
  EXPECT_EQ(ran.output, "out\nerr\n");
}

TEST(Process, KeepsStderrApartWhenAsked) {
  const auto ran = run_process({"/bin/sh", "-c", "echo out; echo err >&2"}, 10s, {.merge_stderr = false});
  EXPECT_EQ(ran.exit_code, 0);
  EXPECT_EQ(ran.output, "out\n");
  EXPECT_EQ(ran.error_output, "err\n");
}

TEST(Process, PassesTheEnvironmentGiven) {
  const auto ran = run_shell("printf %s \"$MDMC_PROCESS_TEST\"", 10s, {.env = {"MDMC_PROCESS_TEST=yes"}});
  EXPECT_EQ(ran.output, "yes");
}

TEST(Process, KillsAHangAtTheDeadline) {
  const auto started = std::chrono::steady_clock::now();
  const auto ran = run_process({"sleep", "30"}, 200ms);
  EXPECT_TRUE(ran.timed_out);
  EXPECT_EQ(ran.signal, SIGKILL);
  EXPECT_EQ(ran.exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(Process, ASignalEndsItAndTheWaitSaysWhich) {
  auto process = Process::spawn({"sleep", "30"});
  ASSERT_TRUE(process) << process.message();
  EXPECT_FALSE(process->wait_for(50ms)) << "still running";
  ASSERT_TRUE(process->signal(SIGTERM));
  const auto exit = process->wait_for(5s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_EQ(exit->exit_code, 128 + SIGTERM);
  EXPECT_FALSE(process->signal(SIGTERM)) << "already reaped";
}

TEST(Process, WaitsForOutputWithinItsLimit) {
  auto process = Process::spawn({"/bin/sh", "-c", "echo ready; sleep 30"});
  ASSERT_TRUE(process) << process.message();
  EXPECT_TRUE(process->wait_for_output("ready", 5s));
  EXPECT_FALSE(process->wait_for_output("never", 100ms));
}  // the destructor kills the sleeping shell

TEST(Process, WritesToALogFileWhenGivenOne) {
  const auto dir = fresh_test_dir("mdmc_testing_test");
  const auto ran = run_shell("echo one; echo two >&2", 10s, {.output_file = dir / "log.txt"});
  EXPECT_EQ(ran.exit_code, 0);
  EXPECT_EQ(read_text(dir / "log.txt"), "one\ntwo\n");
  EXPECT_EQ(ran.output, "one\ntwo\n");
  std::filesystem::remove_all(dir);
}

TEST(Process, AProgramThatCannotStartSaysWhy) {
  const auto ran = run_process({"/nonexistent/mdmc-no-such-program"}, 10s);
  EXPECT_EQ(ran.exit_code, -1);
  EXPECT_NE(ran.output.find("cannot run /nonexistent/mdmc-no-such-program"), std::string::npos) << ran.output;
}

}  // namespace
}  // namespace mdmc::testing
