#include "harness/scenario/result.hpp"

#include <gtest/gtest.h>

namespace mdmc::scenario {
namespace {

CaseResult case_with(std::string id, std::string rule, bool passed, Verdict verdict,
                     Level level = Level::must) {
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
  auto rules = summarize_rules(cases, {{"SYN-ALL", Level::must},
                                       {"SYN-EMPTY-END", Level::must},
                                       {"CHN-IDLE-EMPTY", Level::must}});
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

}  // namespace
}  // namespace mdmc::scenario
