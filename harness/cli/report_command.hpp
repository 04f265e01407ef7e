#pragma once
// `mdmconform report FILE --format html|junit|md|json`: any view made again from a saved record.
// FILE is a run's report.json, a fuzz run's fuzz/summary.json (kind "mdmconform-fuzz"), or a
// load run's report.json (kind "mdmconform-load"); the last two have html, md and json views.
// `mdmconform report --merge A.json B.json ... [--out DIR]` merges the load records of the
// shards of one fleet (load::merge) into one run's folder, or prints the merged record.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace mdmc::cli {

struct ReportOptions {
  std::filesystem::path file;
  std::string format = "html";               // html, junit, md, json
  std::optional<std::filesystem::path> out;  // absent: standard output; with merge, a folder
  bool redact = true;                        // redact a record written with --no-redact
  std::vector<std::filesystem::path> merge;  // load records to merge instead of `file`
};

// 0 on success; 2 when the file cannot be read or parsed, the format does not apply to it, or
// the output cannot be written (the reason on standard error). With `merge`: 2 as well when the
// records are not shards of one fleet, saying why (load::merge).
int run_report(const ReportOptions& options);

// `report` on the command line: registered before parsing; dispatch() runs it when chosen.
class ReportCommand {
 public:
  explicit ReportCommand(CLI::App& app);
  std::optional<int> dispatch();

 private:
  CLI::App* report_ = nullptr;
  CLI::Option* file_option_ = nullptr;
  CLI::Option* format_option_ = nullptr;
  ReportOptions options_;
  bool no_redact_ = false;
};

}  // namespace mdmc::cli
