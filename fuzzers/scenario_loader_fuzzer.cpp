// The scenario loader: any bytes as a case file, and as rules.yaml, either load or raise a
// LoadError naming a line. Any other exception, a crash, a hang or an unbounded allocation is
// a bug in the loader (or in yaml-cpp, which the loader must then guard against).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "harness/protocol/rules.hpp"
#include "harness/scenario/spec.hpp"

namespace {

// The catalog is built from the rule ids rather than read from specs/rules.yaml, so the
// fuzzer runs from any folder. Levels cycle so that "an expectation may lower its rule's
// level, never raise it" is reachable both ways.
const mdmc::scenario::RuleCatalog& catalog() {
  static const mdmc::scenario::RuleCatalog rules = [] {
    mdmc::scenario::RuleCatalog built;
    const mdmc::scenario::Level levels[] = {mdmc::scenario::Level::must, mdmc::scenario::Level::should,
                                            mdmc::scenario::Level::may};
    std::size_t i = 0;
    for (auto id : mdmc::protocol::kRuleIds) {
      mdmc::scenario::RuleSpec rule;
      rule.id = std::string(id);
      rule.level = levels[i++ % 3];
      built.rules[rule.id] = rule;
    }
    return built;
  }();
  return rules;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  try {
    (void)mdmc::scenario::load_case_text(yaml, "fuzz.yaml", "fuzz/case", catalog());
  } catch (const mdmc::base::LoadError& e) {
    if (e.file() != "fuzz.yaml") __builtin_trap();  // every error names the file it is about
  }
  try {
    (void)mdmc::scenario::load_rules_text(yaml, "rules.yaml");
  } catch (const mdmc::base::LoadError&) {}
  return 0;
}
