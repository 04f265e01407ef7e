// The mutation self-test: the suite against the reference server in every fault mode. The
// correct server passes every case; each fault fails exactly the rules it is declared to
// break. A rule check that cannot fail, or a fault that breaks more than it says, shows here.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <set>

#include "harness/cli/suite.hpp"

namespace mdmc {
namespace {

std::set<std::string> failed_rules(const scenario::RunResult& run) {
  std::set<std::string> out;
  for (const auto& rule : run.rules) {
    if (rule.verdict == scenario::Verdict::fail || rule.verdict == scenario::Verdict::warn) out.insert(rule.id);
  }
  return out;
}

std::string case_lines(const scenario::RunResult& run) {
  std::string out;
  for (const auto& c : run.cases) {
    out += fmt::format("  {} {}: {}\n", scenario::verdict_name(c.verdict), c.id, c.reason);
  }
  return out;
}

std::vector<std::string> fault_names() {
  std::vector<std::string> names;
  for (const auto& f : server::fault_catalog()) names.emplace_back(f.name);
  return names;
}

class MutationTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MutationTest, FailsExactlyTheRulesTheFaultBreaks) {
  const auto& fault = server::fault_info(*server::fault_from_name(GetParam()));
  cli::SuiteOptions options;
  options.specs_dir = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
  options.builtin_fault = fault.fault;
  options.seed = 20261129;
  auto outcome = cli::run_suite(options);
  ASSERT_TRUE(outcome.exit_code == 0 || outcome.exit_code == 1) << outcome.message;

  std::set<std::string> expected(fault.breaks.begin(), fault.breaks.end());
  auto failed = failed_rules(outcome.run);
  EXPECT_EQ(failed, expected) << "fault " << fault.name << ":\n" << case_lines(outcome.run);
  for (const auto& c : outcome.run.cases) {
    EXPECT_NE(c.verdict, scenario::Verdict::error) << c.id << ": " << c.reason;
    if (fault.fault == server::Fault::none) {
      EXPECT_EQ(c.verdict, scenario::Verdict::pass) << c.id << ": " << c.reason;
    }
  }
  EXPECT_EQ(outcome.exit_code, expected.empty() ? 0 : 1);

  // The table for the closing note and the README, one line per fault.
  std::ofstream table("mutation_table.txt", std::ios::app);
  table << fmt::format("{:<24} expected {:<18} failed {:<18} cases failing {}\n", fault.name,
                       expected.empty() ? "-" : fmt::format("{}", fmt::join(expected, ",")),
                       failed.empty() ? "-" : fmt::format("{}", fmt::join(failed, ",")),
                       std::count_if(outcome.run.cases.begin(), outcome.run.cases.end(),
                                     [](const auto& c) { return c.verdict == scenario::Verdict::fail; }));
}

INSTANTIATE_TEST_SUITE_P(EveryFault, MutationTest, ::testing::ValuesIn(fault_names()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (auto& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace mdmc
