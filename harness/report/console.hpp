#pragma once
// What a run prints: the summary after a run (kept as summary.txt), a case's lines as they come,
// and one line per exchange for --verbose. Everything a target sent is shown terminal-safe.
#include <cstddef>
#include <string>

#include "harness/scenario/result.hpp"

namespace mdmc::report {

// Which parts of the console summary to print; summary.txt holds them all.
struct ConsoleSummaryParts {
  bool passing_cases = true;  // a line per passing case (the others always get theirs)
  bool rules = true;          // the per-rule table
};

// The plain-text summary printed after a run (and kept as summary.txt): one line per case,
// a per-rule table, and a totals line. Control characters from the target are shown escaped,
// never sent to the terminal.
std::string console_summary(const scenario::RunResult& run, ConsoleSummaryParts parts = {});

// One case's lines as the summary shows them, with the id padded to id_width: "PASS  id  (12 ms)",
// or the verdict, id and reason, then its attempts and its reproducer indented.
std::string console_case_lines(const scenario::CaseResult& c, std::size_t id_width = 0);

// One exchange on one line, for --verbose: actor, label, and the answer ("200 ProfileList",
// "410 Gone", "no answer: header_timeout"), with its time. Terminal-safe.
std::string console_exchange_line(const scenario::TranscriptEntry& entry);

}  // namespace mdmc::report
