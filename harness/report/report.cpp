#include "harness/report/report.hpp"

#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/report/detail/text.hpp"

namespace mdmc::report {

namespace fs = std::filesystem;
using detail::filesystem_safe;

base::Result<void> write_run(const scenario::RunResult& run, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return base::fail(fmt::format("{}: cannot create: {}", dir.string(), ec.message()));
  // report.json first: it is the record every other view can be made from again.
  const std::pair<const char*, std::string (*)(const scenario::RunResult&)> views[] = {
      {"report.json", &to_json_text},
      {"junit.xml", &to_junit_xml},
      {"summary.txt", [](const scenario::RunResult& r) { return console_summary(r); }},
      {"summary.md", &to_markdown},
      {"report.html", &to_html},
  };
  for (const auto& [name, render] : views) {
    if (auto written = base::write_file_atomically(dir / name, render(run)); !written) return written;
  }
  return base::Ok{};
}

std::string run_folder_name(const scenario::RunResult& run) {
  const auto started = base::parse_rfc3339(run.started_at);
  std::string target = filesystem_safe(run.target_name, 64);
  if (target.empty()) target = "target";
  return (started ? base::compact_utc(*started) : std::string("unknown-time")) + "-" + target;
}

}  // namespace mdmc::report
