#pragma once
// `mdmconform load`: a fleet of emulated Macs against a target at once (docs/load.md). The work
// is load::run_load; this is the command line, the progress line, signals and the report folder.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "harness/load/engine.hpp"

namespace CLI {
class App;
}

namespace mdmc::cli {

struct LoadCommandOptions {
  std::filesystem::path target;
  std::filesystem::path out_dir;  // empty: reports/<time>-load-<target>
  load::LoadOptions load;
  std::string shard = "0/1";
  double duration_s = 10;
  double think_s = 1;
  double drain_s = 10;
  double max_error_rate = 0.01;  // of exchanges; above it the run fails
  bool allow_remote = false;
  bool quiet = false;
};

// 0: no invariant violated and errors within --max-error-rate; 1: a violation, too many errors,
// or stopped by a signal (the report says so); 2: usage or configuration; 3: the target could
// not be reached.
int run_load_command(LoadCommandOptions options, const std::atomic<bool>* stop);

class LoadCommand {
 public:
  explicit LoadCommand(CLI::App& app);
  bool was_chosen() const;
  std::optional<int> dispatch(const std::atomic<bool>* stop);

 private:
  CLI::App* load_ = nullptr;
  LoadCommandOptions options_;
};

}  // namespace mdmc::cli
