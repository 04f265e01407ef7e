#include "harness/report/report.hpp"

#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"

namespace mdmc::report {
namespace {

namespace fs = std::filesystem;

// s with every byte outside [A-Za-z0-9._-] replaced by '_', cut at max_len bytes.
std::string filesystem_safe(std::string_view s, std::size_t max_len) {
  std::string out;
  for (char ch : s) {
    if (out.size() == max_len) break;
    const bool keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                      ch == '_' || ch == '-';
    out += keep ? ch : '_';
  }
  return out;
}

}  // namespace

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
