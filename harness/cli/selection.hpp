#pragma once
// Which cases of the loaded suite a command works on: `run`, `run --dry-run` and `list` select
// alike, by id or id prefix, by exclusion, by tag and by rule level.
#include <string>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/scenario/spec.hpp"

namespace mdmc::cli {

struct Selection {
  // Case id prefixes; a whole case id selects that case alone (net/refuse_410 is also the
  // prefix of net/refuse_410_second_user). Empty: all.
  std::vector<std::string> ids;
  // Cases left out, named as `ids` are: a whole case id leaves out that case alone.
  std::vector<std::string> excludes;
  std::vector<std::string> tags;        // cases with any of these tags; empty: any
  std::vector<scenario::Level> levels;  // cases naming a rule at one of these levels; empty: any
};

struct SelectedCases {
  std::vector<scenario::Case> selected;      // in the suite's order
  std::vector<scenario::Case> not_selected;  // the rest, in the suite's order
};

// Splits `suite` by `selection`. An error, a usage error to the CLI, when no case is selected or
// when an exclusion matches no case of the suite: a misspelt exclusion must not pass silently
// and leave the case it meant to drop in the run.
base::Result<SelectedCases> select_cases(std::vector<scenario::Case> suite, const Selection& selection,
                                         const scenario::RuleCatalog& rules);

// The selection in words, for messages: "net/, syn/ with tag network-user excluding net/x".
std::string describe(const Selection& selection);

}  // namespace mdmc::cli
