#include "harness/cli/report_command.hpp"

#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "harness/base/files.hpp"
#include "harness/fuzz/campaign.hpp"
#include "harness/load/load_report.hpp"
#include "harness/report/html.hpp"
#include "harness/report/load_page.hpp"
#include "harness/report/report.hpp"

namespace mdmc::cli {
namespace {

// A record is read whole; none the harness writes comes near this (a full suite is a few MiB).
constexpr std::size_t kMaxRecordBytes = 512ull * 1024 * 1024;

int fail(const std::string& message) {
  fmt::print(stderr, "mdmconform: {}\n", message);
  return 2;
}

// The record's "kind", or "" when it has none (a conformance run's report.json).
std::string record_kind(const nlohmann::ordered_json& parsed) {
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("kind") || !parsed["kind"].is_string()) {
    return {};
  }
  return parsed["kind"].get<std::string>();
}

// `report --merge`: the shards' load records merged into one run, written to --out DIR or printed.
int run_merge(const ReportOptions& options) {
  std::vector<load::LoadReport> shards;
  std::string names;
  for (const auto& path : options.merge) {
    auto read = base::read_file_capped(path, load::kMaxLoadRecordBytes);
    if (!read) return fail(read.message());
    auto record = load::load_report_from_json(*read);
    if (!record) return fail(fmt::format("{}: not a load record: {}", path.string(), record.message()));
    shards.push_back(*std::move(record));
    names += (names.empty() ? "" : ", ") + path.string();
  }
  auto merged = load::merge(shards);
  // The merge numbers the records as given: say which file is which.
  if (!merged) {
    return fail(
        fmt::format("cannot merge {} (records 1 to {}, in that order): {}", names, shards.size(), merged.message()));
  }
  if (!options.out) {
    std::cout << load::to_json(*merged) << std::flush;
    return std::cout ? 0 : fail("cannot write to standard output");
  }
  if (auto written = report::write_load_run(*merged, *options.out); !written) return fail(written.message());
  return 0;
}

}  // namespace

int run_report(const ReportOptions& options) {
  if (!options.merge.empty()) return run_merge(options);
  auto read = base::read_file_capped(options.file, kMaxRecordBytes);
  if (!read) return fail(read.message());
  const std::string& text = *read;
  std::string view;
  // Parsed once, keeping the file's key order: the fuzz views read it, the json view sorts it.
  const auto parsed = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string kind = record_kind(parsed);
  if (kind == "mdmconform-load") {
    auto record = load::load_report_from_json(text);
    if (!record) return fail(fmt::format("{}: {}", options.file.string(), record.message()));
    if (options.format == "html") {
      view = report::render_load_html(*record);
    } else if (options.format == "md") {
      view = report::render_load_markdown(*record);
    } else if (options.format == "json") {
      // The record as this version reads it: checked, with its summary made again from the bins.
      view = load::to_json(*record);
    } else {
      return fail(
          fmt::format("{}: a load record has html, md and json views, not {}", options.file.string(), options.format));
    }
  } else if (kind == "mdmconform-fuzz") {
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
  report_ = app.add_subcommand(
      "report", "make a view again from a saved report.json (a run's, a load run's, or a fuzz summary.json)");
  file_option_ =
      report_->add_option("FILE", options_.file, "a run's or a load run's report.json, or fuzz/summary.json");
  format_option_ = report_->add_option("--format", options_.format, "html, junit, md or json")
                       ->check(CLI::IsMember({"html", "junit", "md", "json"}))
                       ->capture_default_str();
  report_->add_option("--out", options_.out,
                      "write here (atomically) instead of to standard output; with --merge, the merged run's folder");
  report_->add_flag("--no-redact", no_redact_, "keep secrets a record written with --no-redact holds");
  report_->add_option("--merge", options_.merge,
                      "merge the load records of the shards of one fleet (report.json of each `load --shard I/N`)");
}

std::optional<int> ReportCommand::dispatch() {
  if (!*report_) return std::nullopt;
  options_.redact = !no_redact_;
  if (options_.merge.empty() && file_option_->count() == 0) {
    return fail("report: give a FILE, or --merge A.json B.json ...");
  }
  if (!options_.merge.empty() && file_option_->count() != 0) {
    return fail("report: give a FILE or --merge, not both");
  }
  if (!options_.merge.empty() && format_option_->count() != 0) {
    return fail(
        "report: --format does not apply to --merge, which writes report.json, report.html and summary.md to "
        "--out DIR, or prints the merged report.json");
  }
  return run_report(options_);
}

}  // namespace mdmc::cli
