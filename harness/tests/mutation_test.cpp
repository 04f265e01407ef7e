// The mutation self-test: the suite against the reference server in every fault mode and every
// identity mode. The correct server passes every case; each fault fails exactly the rules it is
// declared to break. A rule check that cannot fail, or a fault that breaks more than it says,
// shows here.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <set>
#include <tuple>

#include "harness/cli/suite.hpp"

namespace mdmc {
namespace scenario {
// Test names and failure messages show the mode by name.
void PrintTo(IdentityMode mode, std::ostream* os) { *os << identity_mode_name(mode); }
}  // namespace scenario

namespace {

using scenario::IdentityMode;
using scenario::Verdict;

std::set<std::string> failed_rules(const scenario::RunResult& run) {
  std::set<std::string> out;
  for (const auto& rule : run.rules) {
    if (rule.verdict == Verdict::fail || rule.verdict == Verdict::warn) out.insert(rule.id);
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

// Cases that check identity binding cannot run without identities: they skip, with a reason.
bool needs_identity(const std::string& case_id) { return case_id.rfind("enr/same_identity", 0) == 0; }

std::vector<std::string> fault_names() {
  std::vector<std::string> names;
  for (const auto& f : server::fault_catalog()) names.emplace_back(f.name);
  return names;
}

class MutationTest : public ::testing::TestWithParam<std::tuple<std::string, IdentityMode>> {};

TEST_P(MutationTest, FailsExactlyTheRulesTheFaultBreaks) {
  const auto& [fault_name, mode] = GetParam();
  const auto& fault = server::fault_info(*server::fault_from_name(fault_name));
  cli::SuiteOptions options;
  options.specs_dir = std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
  options.builtin_fault = fault.fault;
  options.identity_mode = mode;
  options.seed = 20261129;
  auto outcome = cli::run_suite(options);
  ASSERT_TRUE(outcome.exit_code == 0 || outcome.exit_code == 1) << outcome.message;

  std::set<std::string> expected(fault.breaks.begin(), fault.breaks.end());
  if (mode == IdentityMode::none) expected.erase("ENR-SAME-IDENTITY");
  auto failed = failed_rules(outcome.run);
  EXPECT_EQ(failed, expected) << "fault " << fault.name << ":\n" << case_lines(outcome.run);
  for (const auto& c : outcome.run.cases) {
    EXPECT_NE(c.verdict, Verdict::error) << c.id << ": " << c.reason;
    bool skips = mode == IdentityMode::none && needs_identity(c.id);
    if (skips) {
      EXPECT_EQ(c.verdict, Verdict::skip) << c.id;
      EXPECT_FALSE(c.reason.empty()) << c.id;
    } else if (fault.fault == server::Fault::none) {
      EXPECT_EQ(c.verdict, Verdict::pass) << c.id << ": " << c.reason;
    }
  }
  // A broken should-level rule warns and leaves the exit code 0; a broken must-level rule fails.
  bool any_fail = std::any_of(outcome.run.cases.begin(), outcome.run.cases.end(),
                              [](const auto& c) { return c.verdict == Verdict::fail; });
  EXPECT_EQ(outcome.exit_code, any_fail ? 1 : 0);

  // The table for the closing note and the README, one line per fault and mode.
  std::ofstream table("mutation_table.txt", std::ios::app);
  table << fmt::format("{:<10} {:<24} expected {:<20} failed {:<20} failing cases {}\n",
                       scenario::identity_mode_name(mode), fault.name,
                       expected.empty() ? "-" : fmt::format("{}", fmt::join(expected, ",")),
                       failed.empty() ? "-" : fmt::format("{}", fmt::join(failed, ",")),
                       std::count_if(outcome.run.cases.begin(), outcome.run.cases.end(), [](const auto& c) {
                         return c.verdict == Verdict::fail || c.verdict == Verdict::warn;
                       }));
}

INSTANTIATE_TEST_SUITE_P(EveryFaultInEveryIdentityMode, MutationTest,
                         ::testing::Combine(::testing::ValuesIn(fault_names()),
                                            ::testing::Values(IdentityMode::none, IdentityMode::mtls,
                                                              IdentityMode::signature, IdentityMode::both)),
                         [](const auto& param_info) {
                           std::string name = std::get<0>(param_info.param) + "_" +
                                              std::string(scenario::identity_mode_name(std::get<1>(param_info.param)));
                           for (auto& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace mdmc
