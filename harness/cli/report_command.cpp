#include "harness/cli/report_command.hpp"

#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "harness/base/files.hpp"
#include "harness/fuzz/campaign.hpp"
#include "harness/report/html.hpp"
#include "harness/report/report.hpp"

namespace mdmc::cli {
namespace {

// A record is read whole; none the harness writes comes near this (a full suite is a few MiB).
constexpr std::size_t kMaxRecordBytes = 512ull * 1024 * 1024;

int fail(const std::string& message) {
  fmt::print(stderr, "mdmconform: {}\n", message);
  return 2;
}

}  // namespace

int run_report(const ReportOptions& options) {
  auto read = base::read_file_capped(options.file, kMaxRecordBytes);
  if (!read) return fail(read.message());
  const std::string& text = *read;
  std::string view;
  // Parsed once, keeping the file's key order: the fuzz views read it, the json view sorts it.
  const auto parsed = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool fuzz_summary = !parsed.is_discarded() && parsed.is_object() && parsed.contains("kind") &&
                            parsed["kind"].is_string() && parsed["kind"].get<std::string>() == "mdmconform-fuzz";
  if (fuzz_summary) {
    if (options.format == "html") {
      view = report::render_fuzz_html(fuzz::fuzz_run_from_json(parsed));
    } else if (options.format == "md") {
      view = report::render_fuzz_markdown(fuzz::fuzz_run_from_json(parsed));
    } else if (options.format == "json") {
      // The summary as it is, pretty-printed with sorted keys: a view of the file, not of the
      // fields this version knows.
      view = nlohmann::json(parsed).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      return fail(
          fmt::format("{}: a fuzz summary has html, md and json views, not {}", options.file.string(), options.format));
    }
  } else {
    auto run = report::from_json_text(text);
    if (!run) return fail(fmt::format("{}: {}", options.file.string(), run.message()));
    // A record kept with --no-redact is redacted for any view, unless asked again.
    if (options.redact) report::redact_secrets(*run);
    if (options.format == "html")
      view = report::to_html(*run);
    else if (options.format == "md")
      view = report::to_markdown(*run);
    else if (options.format == "junit")
      view = report::to_junit_xml(*run);
    else
      view = report::to_json_text(*run);
  }
  if (!options.out) {
    std::cout << view << std::flush;
    return std::cout ? 0 : fail("cannot write to standard output");
  }
  if (auto written = base::write_file_atomically(*options.out, view); !written) return fail(written.message());
  return 0;
}

ReportCommand::ReportCommand(CLI::App& app) {
  report_ = app.add_subcommand("report", "make a view again from a saved report.json (or a fuzz summary.json)");
  report_->add_option("FILE", options_.file, "report.json, or fuzz/summary.json")->required();
  report_->add_option("--format", options_.format, "html, junit, md or json")
      ->check(CLI::IsMember({"html", "junit", "md", "json"}))
      ->capture_default_str();
  report_->add_option("--out", options_.out, "write here (atomically) instead of to standard output");
  report_->add_flag("--no-redact", no_redact_, "keep secrets a record written with --no-redact holds");
}

std::optional<int> ReportCommand::dispatch() {
  if (!*report_) return std::nullopt;
  options_.redact = !no_redact_;
  return run_report(options_);
}

}  // namespace mdmc::cli
