#include "harness/scenario/result.hpp"

#include "harness/scenario/assessment.hpp"

#include <gtest/gtest.h>

namespace mdmc::scenario {
namespace {

CaseResult case_with(std::string id, std::string rule, bool passed, Verdict verdict, Level level = Level::must) {
  CaseResult c;
  c.id = std::move(id);
  c.rules = {rule};
  c.verdict = verdict;
  c.findings.push_back(Finding{rule, level, passed, "x", "y", 0});
  return c;
}

TEST(SummarizeRules, AFailedMustFindingFailsItsRuleOnly) {
  std::vector<CaseResult> cases = {case_with("a", "SYN-ALL", false, Verdict::fail),
                                   case_with("b", "SYN-EMPTY-END", true, Verdict::pass)};
  auto rules = summarize_rules(
      cases, {{"SYN-ALL", Level::must}, {"SYN-EMPTY-END", Level::must}, {"CHN-IDLE-EMPTY", Level::must}});
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].id, "CHN-IDLE-EMPTY");
  EXPECT_EQ(rules[0].verdict, Verdict::skip);
  EXPECT_EQ(rules[1].verdict, Verdict::fail);
  EXPECT_EQ(rules[1].failed_cases, std::vector<std::string>{"a"});
  EXPECT_EQ(rules[2].verdict, Verdict::pass);
}

TEST(SummarizeRules, AFailedShouldFindingWarns) {
  auto rules = summarize_rules({case_with("a", "ROB-MALFORMED", false, Verdict::warn, Level::should)},
                               {{"ROB-MALFORMED", Level::should}});
  EXPECT_EQ(rules[0].verdict, Verdict::warn);
}

TEST(SummarizeRules, AMustRuleWithOnlyAShouldPartBrokenWarns) {
  auto rules = summarize_rules({case_with("a", "ENR-SAME-IDENTITY", false, Verdict::warn, Level::should)},
                               {{"ENR-SAME-IDENTITY", Level::must}});
  EXPECT_EQ(rules[0].verdict, Verdict::warn);
}

Finding finding(std::string rule, Level level, bool passed) {
  return Finding{std::move(rule), level, passed, "expected-" + std::string(level_name(level)), "actual", 0};
}

CaseResult graded(std::vector<Finding> findings) {
  CaseResult c;
  c.id = "x/y";
  c.verdict = Verdict::error;  // grade_findings replaces it
  c.reason = "stale";
  c.findings = std::move(findings);
  grade_findings(c);
  return c;
}

TEST(VerdictOrder, RunsBySeverityWithInfoBelowSkip) {
  EXPECT_LT(Verdict::pass, Verdict::info);
  EXPECT_LT(Verdict::info, Verdict::skip);
  EXPECT_LT(Verdict::skip, Verdict::warn);
  EXPECT_LT(Verdict::warn, Verdict::fail);
  EXPECT_LT(Verdict::fail, Verdict::error);
  EXPECT_EQ(verdict_name(Verdict::info), "info");
}

TEST(GradeFindings, EveryFindingPassedIsAPass) {
  auto c = graded({finding("SYN-ALL", Level::must, true), finding("UCF-DEVICECONFIGURED", Level::may, true)});
  EXPECT_EQ(c.verdict, Verdict::pass);
  EXPECT_EQ(c.reason, "");
}

TEST(GradeFindings, ABrokenMustFailsAShouldWarnsAMayIsInfo) {
  EXPECT_EQ(graded({finding("SYN-ALL", Level::must, false)}).verdict, Verdict::fail);
  EXPECT_EQ(graded({finding("ROB-MALFORMED", Level::should, false)}).verdict, Verdict::warn);
  auto info = graded({finding("UCF-DEVICECONFIGURED", Level::may, false)});
  EXPECT_EQ(info.verdict, Verdict::info);
  EXPECT_EQ(info.reason,
            "the server does not use this option (may): UCF-DEVICECONFIGURED: expected expected-may; got actual");
}

TEST(GradeFindings, TheWorstBreakDecidesAndNamesTheReason) {
  auto c = graded({finding("UCF-DEVICECONFIGURED", Level::may, false), finding("ROB-MALFORMED", Level::should, false),
                   finding("ROB-ALIVE", Level::should, false)});
  EXPECT_EQ(c.verdict, Verdict::warn);
  EXPECT_EQ(c.reason, "ROB-MALFORMED: expected expected-should; got actual");
}

TEST(GradeFindings, AnExpectationLoweredToMayIsInfoOnAMustRule) {
  // enr/unknown_device: refused (must) holds; "in Apple's 403 form" is lowered to may.
  auto c = graded({finding("ENR-UNKNOWN-DEVICE", Level::must, true), finding("ENR-UNKNOWN-DEVICE", Level::may, false)});
  EXPECT_EQ(c.verdict, Verdict::info);
  EXPECT_NE(c.reason.find("does not use this option"), std::string::npos) << c.reason;
}

TEST(SummarizeRules, ATestedMayRuleIsInfoAndSaysWhetherTheServerUsesIt) {
  const std::map<std::string, Level> levels = {{"UCF-DEVICECONFIGURED", Level::may}};
  auto unused =
      summarize_rules({case_with("a", "UCF-DEVICECONFIGURED", false, Verdict::info, Level::may)}, levels).at(0);
  EXPECT_EQ(unused.verdict, Verdict::info);
  EXPECT_EQ(unused.uses_option, false);
  EXPECT_EQ(unused.failed_cases, std::vector<std::string>{"a"});

  auto used = summarize_rules({case_with("a", "UCF-DEVICECONFIGURED", true, Verdict::pass, Level::may)}, levels).at(0);
  EXPECT_EQ(used.verdict, Verdict::info);
  EXPECT_EQ(used.uses_option, true);
  EXPECT_TRUE(used.failed_cases.empty());

  // Used in one case and not in another: the server does not use it reliably.
  auto mixed = summarize_rules({case_with("a", "UCF-DEVICECONFIGURED", true, Verdict::pass, Level::may),
                                case_with("b", "UCF-DEVICECONFIGURED", false, Verdict::info, Level::may)},
                               levels)
                   .at(0);
  EXPECT_EQ(mixed.verdict, Verdict::info);
  EXPECT_EQ(mixed.uses_option, false);

  auto untested = summarize_rules({case_with("a", "SYN-ALL", true, Verdict::pass)}, levels).at(0);
  EXPECT_EQ(untested.verdict, Verdict::skip);
  EXPECT_FALSE(untested.uses_option.has_value());
}

TEST(SummarizeRules, AMustRuleWithOnlyItsMayPartUnusedIsInfo) {
  CaseResult c = case_with("a", "ENR-UNKNOWN-DEVICE", true, Verdict::info);
  c.findings.push_back(Finding{"ENR-UNKNOWN-DEVICE", Level::may, false, "403", "401", 0});
  auto rule = summarize_rules({c}, {{"ENR-UNKNOWN-DEVICE", Level::must}}).at(0);
  EXPECT_EQ(rule.verdict, Verdict::info);
  EXPECT_EQ(rule.uses_option, false);

  c.findings.front().passed = false;  // and the must part broken too
  rule = summarize_rules({c}, {{"ENR-UNKNOWN-DEVICE", Level::must}}).at(0);
  EXPECT_EQ(rule.verdict, Verdict::fail);
}

TEST(SummarizeRules, RulesWithoutMayFindingsHaveNoOptionToReport) {
  auto rules = summarize_rules({case_with("a", "SYN-ALL", false, Verdict::fail)}, {{"SYN-ALL", Level::must}});
  EXPECT_FALSE(rules.at(0).uses_option.has_value());
}

// The exit code the overall verdict gives (assessment.hpp), with or without --strict.
int exit_code_for(RunResult run, bool strict = false) {
  run.conditions.strict = strict;
  return assess(run).exit_code;
}

TEST(ExitCode, AnInfoCaseNeverCountsEvenUnderStrict) {
  RunResult run;
  run.cases = {case_with("a", "UCF-DEVICECONFIGURED", false, Verdict::info, Level::may)};
  EXPECT_FALSE(counts_as_failure(run.cases[0], /*strict=*/false));
  EXPECT_FALSE(counts_as_failure(run.cases[0], /*strict=*/true));
  EXPECT_EQ(exit_code_for(run), 0);
  EXPECT_EQ(exit_code_for(run, /*strict=*/true), 0);
  // Beside a should-level warn, strict fails the run for the warn alone.
  run.cases.push_back(case_with("b", "ROB-MALFORMED", false, Verdict::warn, Level::should));
  EXPECT_EQ(exit_code_for(run), 0);
  EXPECT_EQ(exit_code_for(run, /*strict=*/true), 1);
}

TEST(FoldAttempts, AnInfoFirstAttemptAndAWarnReRunKeepTheWarn) {
  auto first = case_with("a", "UCF-DEVICECONFIGURED", false, Verdict::info, Level::may);
  fold_attempts(first, {case_with("a", "ROB-MALFORMED", false, Verdict::warn, Level::should)});
  EXPECT_EQ(first.verdict, Verdict::warn);
  EXPECT_TRUE(first.flaky);
  EXPECT_EQ(first.attempts, (std::vector<std::string>{"info", "warn"}));
}

TEST(ExitCode, IsOneWhenACaseFailsOrErrorsAndZeroOtherwise) {
  RunResult run;
  run.cases = {case_with("a", "SYN-ALL", true, Verdict::pass)};
  EXPECT_EQ(exit_code_for(run), 0);
  run.cases.push_back(case_with("b", "SYN-ALL", true, Verdict::skip));
  EXPECT_EQ(exit_code_for(run), 0);
  run.cases.push_back(case_with("c", "SYN-ALL", false, Verdict::fail));
  EXPECT_EQ(exit_code_for(run), 1);
  run.cases.back().verdict = Verdict::error;
  EXPECT_EQ(exit_code_for(run), 1);
}

TEST(ExitCode, UnderStrictAShouldLevelBreakFailsButAMayLevelOneNever) {
  RunResult run;
  run.cases = {case_with("a", "ENR-UNKNOWN-DEVICE", false, Verdict::warn, Level::should)};
  EXPECT_EQ(exit_code_for(run), 0);
  EXPECT_EQ(exit_code_for(run, /*strict=*/true), 1);
  run.cases = {case_with("b", "UCF-DEVICECONFIGURED", false, Verdict::info, Level::may)};
  EXPECT_EQ(exit_code_for(run, /*strict=*/true), 0);
  run.interrupted = true;
  EXPECT_EQ(exit_code_for(run), 1);
}

TEST(FoldAttempts, AVerdictThatRepeatsIsConfirmedAndNotFlaky) {
  auto first = case_with("a", "SYN-ALL", false, Verdict::fail);
  first.reason = "SYN-ALL: expected 2, got 1";
  fold_attempts(first,
                {case_with("a", "SYN-ALL", false, Verdict::fail), case_with("a", "SYN-ALL", false, Verdict::fail)});
  EXPECT_EQ(first.verdict, Verdict::fail);
  EXPECT_FALSE(first.flaky);
  EXPECT_EQ(first.attempts, (std::vector<std::string>{"fail", "fail", "fail"}));
  EXPECT_EQ(first.reason, "SYN-ALL: expected 2, got 1");
}

TEST(FoldAttempts, AFailureThatDoesNotRepeatIsFlakyAndNeverAPass) {
  auto first = case_with("a", "SYN-ALL", false, Verdict::fail);
  auto findings = first.findings;
  fold_attempts(first,
                {case_with("a", "SYN-ALL", true, Verdict::pass), case_with("a", "SYN-ALL", true, Verdict::pass)});
  EXPECT_EQ(first.verdict, Verdict::fail);
  EXPECT_TRUE(first.flaky);
  EXPECT_EQ(first.attempts, (std::vector<std::string>{"fail", "pass", "pass"}));
  EXPECT_EQ(first.findings.size(), findings.size()) << "the first attempt's evidence stays";
}

TEST(FoldAttempts, AWorseLaterAttemptSetsTheVerdictAndSaysWhy) {
  auto first = case_with("a", "ENR-UNKNOWN-DEVICE", false, Verdict::warn, Level::should);
  first.reason = "should break";
  auto worse = case_with("a", "ENR-UNKNOWN-DEVICE", false, Verdict::fail);
  worse.reason = "must break";
  fold_attempts(first, {case_with("a", "ENR-UNKNOWN-DEVICE", false, Verdict::warn, Level::should), worse});
  EXPECT_EQ(first.verdict, Verdict::fail);
  EXPECT_TRUE(first.flaky);
  EXPECT_EQ(first.attempts, (std::vector<std::string>{"warn", "warn", "fail"}));
  EXPECT_EQ(first.reason, "should break; attempt 3 was fail: must break");
}

TEST(FoldAttempts, NoReRunsLeavesTheResultAsItWas) {
  auto first = case_with("a", "SYN-ALL", false, Verdict::fail);
  fold_attempts(first, {});
  EXPECT_TRUE(first.attempts.empty());
  EXPECT_FALSE(first.flaky);
}

}  // namespace
}  // namespace mdmc::scenario
