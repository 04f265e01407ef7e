#include "harness/protocol/rules.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "harness/scenario/spec.hpp"
#include "mdmc/source_dir.hpp"

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

// A certification names the Apple article the rules come from; rules.yaml says which.
TEST(RuleCatalog, NamesItsSeedArticle) {
  auto catalog = load_rules(std::filesystem::path(MDMC_SOURCE_DIR) / "specs" / "rules.yaml");
  ASSERT_TRUE(catalog.seed);
  EXPECT_EQ(catalog.seed->title, "Managing MDM Devices and Users in macOS");
  EXPECT_EQ(catalog.seed->url,
            "https://developer.apple.com/documentation/devicemanagement/managing-mdm-devices-and-users-in-macos");
  EXPECT_FALSE(load_rules_text("schema_version: 1\nrules: []\n", "r.yaml").seed);
  EXPECT_THROW(load_rules_text("schema_version: 1\nseed: {title: t}\nrules: []\n", "r.yaml"), base::LoadError);
  EXPECT_THROW(load_rules_text("schema_version: 1\nseed: {title: t, url: u, year: 1}\nrules: []\n", "r.yaml"),
               base::LoadError);
}

}  // namespace
}  // namespace mdmc::scenario
