#pragma once
// The libFuzzer process a campaign runs: started in its own process group with its output on
// a pipe, and its status lines read as numbers.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/result.hpp"

namespace mdmc::fuzz::detail {

// One libFuzzer status line: "#4096 pulse cov: 310 ft: 900 corp: 57/6Kb lim: 4096 exec/s: 1365 rss: 60Mb",
// or in fork mode "#8000: cov: 310 ft: 900 corp: 57 exec/s 1365 oom/timeout/crash: 0/0/0 time: 6s".
struct StatusLine {
  std::uint64_t executions = 0;
  double exec_per_sec = 0;
  std::uint64_t corpus = 0;
  std::uint64_t features = 0;
};
std::optional<StatusLine> parse_status(std::string_view line);

struct Child {
  pid_t pid = -1;
  int output = -1;  // the read end of the pipe that holds its stdout and stderr
};

// Starts args[0] in its own process group (so that a stop reaches whatever it started too), in
// `cwd`, with the environment minus any MDMC_FUZZ_* plus `env_add`, stdin from /dev/null.
base::Result<Child> spawn(const std::vector<std::string>& args, const std::vector<std::string>& env_add,
                          const std::filesystem::path& cwd);

// Regular files directly in dir.
std::size_t count_files(const std::filesystem::path& dir);

}  // namespace mdmc::fuzz::detail
