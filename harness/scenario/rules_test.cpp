#include "harness/protocol/rules.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "harness/scenario/spec.hpp"

namespace mdmc::scenario {
namespace {

// specs/rules.yaml is the one source of the rules; protocol::kRuleIds, and so every rule
// constant code names a rule by, must hold exactly its ids.
TEST(RuleIds, TheConstantsAreExactlyTheCatalogsIds) {
  auto catalog = load_rules(std::filesystem::path(MDMC_SOURCE_DIR) / "specs" / "rules.yaml");
  std::set<std::string> in_yaml;
  for (const auto& [id, rule] : catalog.rules) in_yaml.insert(id);
  std::set<std::string> in_code;
  for (auto id : protocol::kRuleIds) {
    EXPECT_TRUE(in_code.insert(std::string(id)).second) << id << " is listed twice in kRuleIds";
  }
  for (const auto& id : in_yaml) EXPECT_TRUE(in_code.count(id)) << id << " is in rules.yaml but not in kRuleIds";
  for (const auto& id : in_code) EXPECT_TRUE(in_yaml.count(id)) << id << " is in kRuleIds but not in rules.yaml";
}

TEST(RuleIds, EveryNamedConstantIsARuleOfTheCatalog) {
  namespace rule = protocol::rule;
  auto catalog = load_rules(std::filesystem::path(MDMC_SOURCE_DIR) / "specs" / "rules.yaml");
  for (auto id :
       {rule::kEnrAuth,          rule::kEnrTokenDevice,      rule::kEnrTokenUser,       rule::kEnrSameIdentity,
        rule::kEnrUnknownDevice, rule::kNetRefuse410,        rule::kNetManage,          rule::kNetRefusedStaysOut,
        rule::kChnUserOnly,      rule::kChnDeviceOnly,       rule::kChnConcurrent,      rule::kChnIdleEmpty,
        rule::kSynAll,           rule::kSynEmptyEnd,         rule::kUcfTerminates,      rule::kUcfNoRepeat,
        rule::kUcfRedeliver,     rule::kUcfDeviceConfigured, rule::kCmdShape,           rule::kCmdSchema,
        rule::kCmdAckedGone,     rule::kCmdUnknownUuid,      rule::kCmdDuplicateReport, rule::kRobMalformed,
        rule::kRobUnknownType,   rule::kRobOversize,         rule::kRobAlive,           rule::kPrfOneAccount,
        rule::kChkCheckout}) {
    EXPECT_TRUE(catalog.rules.count(std::string(id))) << id;
  }
}

}  // namespace
}  // namespace mdmc::scenario
