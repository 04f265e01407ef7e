#include "harness/scenario/assessment.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mdmc::scenario {
namespace {

using ::testing::HasSubstr;

// A catalog of three cases, one per rule: a1 checks the must-rule A, b1 the should-rule B, c1
// the may-rule C.
const std::map<std::string, Level> kLevels = {{"A", Level::must}, {"B", Level::should}, {"C", Level::may}};
const std::map<std::string, std::vector<std::string>> kCatalog = {{"A", {"a1"}}, {"B", {"b1"}}, {"C", {"c1"}}};

// One row of the table: how each selected case ended and how the run was asked for.
struct Row {
  std::string name;
  std::map<std::string, Verdict> cases;  // selected cases that ran, by id
  std::vector<std::string> selected;     // default: those that ran
  bool strict = false;
  bool require_complete = false;
  bool interrupted = false;
  std::optional<BaselineComparison> baseline;
  Overall overall;
  int exit_code;
  std::string headline;
};

CaseResult ended(const std::string& id, Verdict verdict) {
  CaseResult c;
  c.id = id;
  const std::string rule(1, static_cast<char>(id[0] - 'a' + 'A'));
  c.rules = {rule};
  c.verdict = verdict;
  const Level level = kLevels.at(rule);
  switch (verdict) {
    case Verdict::pass: c.findings.push_back({rule, level, true, "x", "x", 0}); break;
    case Verdict::fail:
    case Verdict::warn:
    case Verdict::info: c.findings.push_back({rule, level, false, "x", "y", 0}); break;
    case Verdict::skip: c.reason = "the target profile has no admin.enqueue adapter"; break;
    case Verdict::error: c.reason = "no answer: header_timeout"; break;
  }
  return c;
}

RunResult run_of(const Row& row) {
  RunResult run;
  for (const auto& id : {"a1", "b1", "c1"}) {
    if (auto it = row.cases.find(id); it != row.cases.end()) run.cases.push_back(ended(id, it->second));
  }
  run.rules = summarize_rules(run.cases, kLevels);
  run.conditions.catalog_cases = 3;
  run.conditions.selected_cases = row.selected;
  if (row.selected.empty()) {
    for (const auto& c : run.cases) run.conditions.selected_cases.push_back(c.id);
  }
  run.conditions.strict = row.strict;
  run.conditions.require_complete = row.require_complete;
  run.interrupted = row.interrupted;
  run.baseline = row.baseline;
  explain_untested(run, kCatalog);
  return run;
}

const auto P = Verdict::pass;
const auto F = Verdict::fail;
const auto W = Verdict::warn;
const auto I = Verdict::info;
const auto S = Verdict::skip;
const auto E = Verdict::error;

BaselineComparison baseline_with(std::vector<std::string> new_failures, std::vector<std::string> known) {
  return BaselineComparison{"base.json", "2026-12-01T00:00:00Z", std::move(new_failures), std::move(known), {}};
}

TEST(Assessment, TableOfSelectionSkipsStrictAndBaseline) {
  const std::vector<Row> rows = {
      {"whole catalog, all pass",
       {{"a1", P}, {"b1", P}, {"c1", P}},
       {},
       false,
       false,
       false,
       {},
       Overall::certified,
       0,
       "CERTIFIED: every must- and should-rule of the catalog ran and passed (3 cases)"},
      {"a may option not used",
       {{"a1", P}, {"b1", P}, {"c1", I}},
       {},
       false,
       false,
       false,
       {},
       Overall::certified,
       0,
       "CERTIFIED: every must- and should-rule of the catalog ran and passed (3 cases)"},
      {"a should warning, not strict",
       {{"a1", P}, {"b1", W}, {"c1", P}},
       {},
       false,
       false,
       false,
       {},
       Overall::certified,
       0,
       "CERTIFIED: every must- and should-rule of the catalog ran and passed (3 cases); 1 should-rule with warnings: "
       "B"},
      {"a should warning under strict",
       {{"a1", P}, {"b1", W}, {"c1", P}},
       {},
       true,
       false,
       false,
       {},
       Overall::failed,
       1,
       "FAILED: 1 rule failed: B"},
      {"one case of three selected",
       {{"a1", P}},
       {},
       false,
       false,
       false,
       {},
       Overall::incomplete,
       0,
       "PASSED, INCOMPLETE: nothing failed, but 1 of 3 cases selected; 1 must/should rule untested: B"},
      {"one case selected, --require-complete",
       {{"a1", P}},
       {},
       false,
       true,
       false,
       {},
       Overall::incomplete,
       1,
       "PASSED, INCOMPLETE: nothing failed, but 1 of 3 cases selected; 1 must/should rule untested: B"},
      {"a must rule's case skipped",
       {{"a1", S}, {"b1", P}, {"c1", P}},
       {},
       false,
       false,
       false,
       {},
       Overall::incomplete,
       0,
       "PASSED, INCOMPLETE: nothing failed, but 1 must/should rule untested: A; 1 case skipped"},
      {"a may rule's case skipped",
       {{"a1", P}, {"b1", P}, {"c1", S}},
       {},
       false,
       false,
       false,
       {},
       Overall::incomplete,
       0,
       "PASSED, INCOMPLETE: nothing failed, but 1 case skipped"},
      {"interrupted before the last case",
       {{"a1", P}, {"b1", P}},
       {"a1", "b1", "c1"},
       false,
       false,
       true,
       {},
       Overall::incomplete,
       1,
       "PASSED, INCOMPLETE: nothing failed, but interrupted: 1 selected case not run"},
      {"a must failure",
       {{"a1", F}, {"b1", P}, {"c1", P}},
       {},
       false,
       false,
       false,
       {},
       Overall::failed,
       1,
       "FAILED: 1 rule failed: A"},
      {"an error",
       {{"a1", E}, {"b1", P}, {"c1", P}},
       {},
       false,
       false,
       false,
       {},
       Overall::failed,
       1,
       "FAILED: 1 case errored (no verdict reached): a1"},
      {"a known failure",
       {{"a1", F}, {"b1", P}, {"c1", P}},
       {},
       false,
       false,
       false,
       baseline_with({}, {"a1"}),
       Overall::failed,
       0,
       "FAILED: 1 rule failed: A; against the baseline: 0 new, 1 known, 0 fixed"},
      {"a new failure",
       {{"a1", F}, {"b1", P}, {"c1", P}},
       {},
       false,
       false,
       false,
       baseline_with({"a1"}, {}),
       Overall::failed,
       1,
       "FAILED: 1 rule failed: A; against the baseline: 1 new, 0 known, 0 fixed"},
      {"a known failure, interrupted",
       {{"a1", F}},
       {"a1", "b1", "c1"},
       false,
       false,
       true,
       baseline_with({}, {"a1"}),
       Overall::failed,
       1,
       "FAILED: 1 rule failed: A; against the baseline: 0 new, 1 known, 0 fixed"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    const auto a = assess(run_of(row));
    EXPECT_EQ(overall_name(a.overall), overall_name(row.overall));
    EXPECT_EQ(a.exit_code, row.exit_code);
    EXPECT_EQ(a.headline, row.headline);
  }
}

TEST(Assessment, UntestedRulesSayWhy) {
  Row row{"", {{"a1", S}}, {"a1", "c1"}, false, false, true, {}, Overall::incomplete, 1, ""};
  auto run = run_of(row);
  const auto a = assess(run);
  ASSERT_EQ(a.untested.size(), 2u);
  EXPECT_EQ(a.untested[0].id, "A");
  EXPECT_EQ(a.untested[0].reason, "skipped: a1: the target profile has no admin.enqueue adapter");
  EXPECT_EQ(a.untested[1].id, "B");
  EXPECT_EQ(a.untested[1].reason, "not selected (checked by b1)");
  ASSERT_EQ(a.untested_may.size(), 1u);
  EXPECT_EQ(a.untested_may[0].reason, "not run: the run was interrupted");

  // A rule no case of the suite names, and one whose case errored.
  run.rules.push_back(RuleResult{"D", Level::must, Verdict::skip, {}, {}});
  run.cases = {ended("a1", E)};
  run.rules = summarize_rules(run.cases, {{"A", Level::must}, {"D", Level::must}});
  explain_untested(run, kCatalog);
  EXPECT_THAT(run.rules[0].untested, HasSubstr("error in a1: no answer: header_timeout"));
  EXPECT_EQ(run.rules[1].untested, "no case of the suite checks it");
}

TEST(Assessment, ARuleTheCaseStoppedBeforeIsNotReached) {
  RunResult run;
  CaseResult c = ended("a1", F);
  c.rules = {"A", "B"};  // failed on A before it checked B
  run.cases = {c};
  run.rules = summarize_rules(run.cases, kLevels);
  explain_untested(run, kCatalog);
  EXPECT_EQ(run.rules[1].untested, "not reached: a1 ended fail before checking it");
}

TEST(Assessment, ARecordWithoutItsCatalogSizeIsNeverCertified) {
  Row row{"", {{"a1", P}, {"b1", P}, {"c1", P}}, {}, false, false, false, {}, Overall::incomplete, 0, ""};
  auto run = run_of(row);
  run.conditions.catalog_cases = 0;
  const auto a = assess(run);
  EXPECT_EQ(a.overall, Overall::incomplete);
  EXPECT_THAT(a.headline, HasSubstr("the record does not say how many cases the catalog holds"));
}

}  // namespace
}  // namespace mdmc::scenario
