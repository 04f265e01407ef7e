#pragma once
// The views of a load run (`mdmconform load`, docs/load.md), made from its record
// (load::LoadReport, what report.json holds, harness/load/load_report.hpp): a self-contained
// HTML page with charts over time, a Markdown summary for a CI job page, and the run's folder.
// Text from the target (finding details, exchange excerpts) is escaped everywhere; nothing here
// throws on it.
#include <cstddef>
#include <filesystem>
#include <string>

#include "harness/base/result.hpp"
#include "harness/load/load_report.hpp"

namespace mdmc::report {

// report.html of a load run: "interrupted" first and prominently (<p id="interrupted">) when the
// run stopped early; the record (target, seed, shard or merged shards, fleet, duration asked
// and elapsed, rate); a result badge (findings or none); the totals (exchanges, exchanges per
// second, errors, latency quantiles); three inline SVG charts over time, exchanges/s and
// errors/s per interval (<svg id="chart-throughput">, <svg id="chart-errors">, each on its own
// scale) and latency (p50 and p99 per interval, log scale: <svg id="chart-latency">), each with
// data-points="N" (its first line's points); the latency table per message
// and status; errors by kind; command counts; the findings with the exchanges around each; the
// harness's CPU and peak RSS (and each shard's after a merge). Never throws.
std::string render_load_html(const load::LoadReport& report);

// summary.md of a load run: the result, the totals and the latency quantiles, the commands,
// errors by kind, then the findings (at most kMarkdownMaxListed, see html.hpp).
std::string render_load_markdown(const load::LoadReport& report);

// Creates dir (and its parents) and writes report.json, report.html and summary.md into it,
// each atomically, report.json first (the record every view is made from again).
base::Result<void> write_load_run(const load::LoadReport& report, const std::filesystem::path& dir);

// The folder name of a load run: "<UTC start>-load-<target>", e.g.
// "20261206T233000Z-load-reference", with "-shard<I>of<N>" for a shard's record. Only
// [A-Za-z0-9._-] appear in it.
std::string load_run_folder_name(const load::LoadReport& report);

// Findings listed on the page; the rest are counted (findings_total).
inline constexpr std::size_t kLoadPageMaxFindings = 1000;
// Charts draw a marker per point up to this many points; a line only beyond.
inline constexpr std::size_t kLoadChartMaxMarkers = 120;

}  // namespace mdmc::report
