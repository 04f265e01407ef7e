#pragma once
// Spawn-and-signal for end-to-end tests: runs a program (the mdmconform binary, chromedriver)
// with its arguments and environment, captures what it prints, signals it, and waits for it
// with a deadline every time, so that a hang fails the test instead of stalling the CI job.
// A Process still running when it goes out of scope is killed and reaped: no test leaves one
// behind, whichever assertion returned early.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/result.hpp"

namespace mdmc::testing {

struct ProcessOptions {
  // Set on top of this process's environment, "NAME=value" each.
  std::vector<std::string> env{};
  // stderr into the same capture as stdout, in the order written (the shell's 2>&1).
  bool merge_stderr = true;
  // A log file to keep instead of capturing in memory: stdout and stderr both go there.
  std::filesystem::path output_file{};
};

// How a process ended.
struct Exit {
  int exit_code = -1;                     // its exit status, or 128 + N when signal N ended it (the shell's way)
  int signal = 0;                         // the signal that ended it; 0 when it exited by itself
  bool timed_out = false;                 // the deadline passed and it was killed
  std::chrono::duration<double> wall{0};  // from spawn to end
  long peak_rss_kb = 0;                   // its largest resident set, or a waited-for child's
};

class Process {
 public:
  // Starts argv[0] (a path, or a name looked up in PATH) with stdin from /dev/null. Uses
  // posix_spawn, not fork: test processes have server threads running.
  static base::Result<Process> spawn(std::vector<std::string> argv, ProcessOptions options = {});

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  ~Process();

  pid_t pid() const;
  // Sends `signal`; false when the process has already been reaped or kill() failed.
  bool signal(int signal);

  // What it printed so far: stdout (with stderr too under merge_stderr), or the log file.
  std::string output() const;
  // What it printed to stderr so far, when it was captured apart.
  std::string error_output() const;
  // Waits up to `limit` for `text` to appear in output(); false when it did not.
  bool wait_for_output(std::string_view text, std::chrono::milliseconds limit);

  // Waits up to `limit` for it to end; nothing when it still runs (it is left running).
  std::optional<Exit> wait_for(std::chrono::milliseconds limit);
  // Waits up to `limit`, then kills it with SIGKILL: always returns, timed_out says which.
  Exit wait_or_kill(std::chrono::milliseconds limit);

 private:
  struct State;
  explicit Process(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A finished run: how it ended and what it printed.
struct Ran : Exit {
  std::string output;        // stdout, with stderr under merge_stderr
  std::string error_output;  // stderr, when captured apart
};

// Runs argv to its end, killed after `limit`. A program that cannot be started is exit code -1,
// with the reason in output.
Ran run_process(std::vector<std::string> argv, std::chrono::milliseconds limit, ProcessOptions options = {});
// Runs a command line through /bin/sh -c, read as a user would type it, killed after `limit`.
Ran run_shell(const std::string& command, std::chrono::milliseconds limit, ProcessOptions options = {});

}  // namespace mdmc::testing
