#pragma once
// `mdmconform report FILE --format html|junit|md|json`: any view made again from a saved record.
// FILE is a run's report.json, or a fuzz run's fuzz/summary.json (kind "mdmconform-fuzz"),
// which has html, md and json views.
#include <filesystem>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace mdmc::cli {

struct ReportOptions {
  std::filesystem::path file;
  std::string format = "html";               // html, junit, md, json
  std::optional<std::filesystem::path> out;  // absent: standard output
  bool redact = true;                        // redact a record written with --no-redact
};

// 0 on success; 2 when the file cannot be read or parsed, the format does not apply to it, or
// the output cannot be written (the reason on standard error).
int run_report(const ReportOptions& options);

// `report` on the command line: registered before parsing; dispatch() runs it when chosen.
class ReportCommand {
 public:
  explicit ReportCommand(CLI::App& app);
  std::optional<int> dispatch();

 private:
  CLI::App* report_ = nullptr;
  ReportOptions options_;
  bool no_redact_ = false;
};

}  // namespace mdmc::cli
