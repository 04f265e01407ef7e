#include "harness/report/baseline.hpp"

#include <map>
#include <set>

#include <fmt/format.h>

#include "harness/report/detail/text.hpp"

namespace mdmc::report {

using detail::console_text;
using scenario::CaseResult;
using scenario::RunResult;
using scenario::Verdict;

std::vector<VerdictChange> verdict_changes(const RunResult& before, const RunResult& after) {
  std::map<std::string, Verdict> earlier;
  for (const auto& c : before.cases) earlier.emplace(c.id, c.verdict);
  std::vector<VerdictChange> out;
  std::set<std::string> seen;
  for (const auto& c : after.cases) {
    seen.insert(c.id);
    auto it = earlier.find(c.id);
    if (it == earlier.end()) {
      out.push_back({c.id, std::nullopt, c.verdict});
    } else if (it->second != c.verdict) {
      out.push_back({c.id, it->second, c.verdict});
    }
  }
  for (const auto& c : before.cases) {
    if (seen.insert(c.id).second) out.push_back({c.id, c.verdict, std::nullopt});
  }
  return out;
}

std::string describe_change(const VerdictChange& change) {
  auto name = [](const std::optional<Verdict>& v) {
    return v ? std::string(scenario::verdict_name(*v)) : std::string("absent");
  };
  return fmt::format("{}: {} -> {}", console_text(change.id, 120), name(change.before), name(change.after));
}

bool is_new_failure(const CaseResult& now, const RunResult& baseline, bool strict) {
  if (!scenario::counts_as_failure(now, strict)) return false;
  for (const auto& before : baseline.cases) {
    if (before.id == now.id) return !scenario::counts_as_failure(before, strict);
  }
  return true;  // a case the baseline does not hold: nothing says its failure is known
}

scenario::BaselineComparison compare_to_baseline(const RunResult& run, const RunResult& baseline, bool strict,
                                                 std::string file) {
  scenario::BaselineComparison out;
  out.file = std::move(file);
  out.started_at = baseline.started_at;
  std::map<std::string, const CaseResult*> before;
  for (const auto& c : baseline.cases) before.emplace(c.id, &c);
  for (const auto& c : run.cases) {
    auto it = before.find(c.id);
    const bool failed_before = it != before.end() && scenario::counts_as_failure(*it->second, strict);
    if (scenario::counts_as_failure(c, strict)) {
      (failed_before ? out.known_failures : out.new_failures).push_back(c.id);
    } else if (failed_before && c.verdict != Verdict::skip) {
      out.fixed.push_back(c.id);  // a skipped case says nothing about the fix
    }
  }
  return out;
}

}  // namespace mdmc::report
