#pragma once
// Views of a run. Every run writes one machine-readable record, report.json (json.hpp), and
// every other view is derived from the same scenario::RunResult: JUnit XML for CI (junit.hpp),
// the console summary (console.hpp), and the HTML page and the Markdown summary (html.hpp).
// baseline.hpp judges a run against an earlier one; redaction.hpp takes secrets out first.
// Text that came from the target (bodies, headers, reasons) is untrusted: nothing here throws
// on it, and every view stays valid whatever bytes it holds. This header includes them all and
// writes a run's folder.
#include <filesystem>
#include <string>

#include "harness/base/result.hpp"
#include "harness/report/baseline.hpp"
#include "harness/report/console.hpp"
#include "harness/report/html.hpp"
#include "harness/report/json.hpp"
#include "harness/report/junit.hpp"
#include "harness/report/redaction.hpp"
#include "harness/scenario/result.hpp"

namespace mdmc::report {

// Creates dir (and its parents) and writes report.json, junit.xml, summary.txt, summary.md
// and report.html into it, each atomically (an interrupted run never leaves a half-written
// file); report.json first, so the record survives if a later view fails.
base::Result<void> write_run(const scenario::RunResult& run, const std::filesystem::path& dir);

// The folder name of a run: its UTC start time and target, e.g. "20261129T085155Z-reference".
// Only [A-Za-z0-9._-] appear in it.
std::string run_folder_name(const scenario::RunResult& run);

}  // namespace mdmc::report
