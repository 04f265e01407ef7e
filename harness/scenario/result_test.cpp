#include "harness/scenario/result.hpp"

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
  run.cases = {case_with("b", "UCF-DEVICECONFIGURED", false, Verdict::warn, Level::may)};
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
