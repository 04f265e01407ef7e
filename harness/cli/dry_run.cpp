#include "harness/cli/dry_run.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>
#include <type_traits>
#include <variant>

#include "harness/cli/builtin.hpp"
#include "harness/protocol/rules.hpp"

namespace mdmc::cli {
namespace {

void add_expectation_rules(const scenario::Step& step, std::set<std::string>& out) {
  if (const auto* parallel = std::get_if<scenario::ParallelStep>(&step.kind)) {
    for (const auto& sub : parallel->steps) add_expectation_rules(sub, out);
    return;
  }
  std::visit(
      [&](const auto& s) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, scenario::ParallelStep>) {
          for (const auto& e : s.expect) out.insert(e.rule);
        }
      },
      step.kind);
}

// The rules a case records findings on when it runs to its end: those it names, those its
// expectations name, and ROB-ALIVE after a robustness step. The checks every case gets (command
// shape and schema, enrollment) record a passing finding only in a case that names their rule,
// so they are counted by the first term.
std::set<std::string> rules_checked_by(const scenario::Case& c) {
  std::set<std::string> out(c.rules.begin(), c.rules.end());
  for (const auto& step : c.steps) {
    add_expectation_rules(step, out);
    if (step.faulted()) out.insert(std::string(protocol::rule::kRobAlive));
  }
  return out;
}

std::string builtin_description(const SuiteOptions& options) {
  std::string out = "the built-in reference server (targets/reference.yaml; not started)";
  if (options.builtin_fault != server::Fault::none) {
    out += fmt::format(", fault {}", server::fault_info(options.builtin_fault).name);
  }
  if (options.builtin_seeded_bug != server::SeededBug::none) {
    out += fmt::format(", seeded bug {}", server::seeded_bug_info(options.builtin_seeded_bug).name);
  }
  return out;
}

RunPlan plan_for(const SelectedCases& split, const target::TargetProfile& profile, const scenario::RuleCatalog& rules) {
  RunPlan plan;
  plan.identity_mode = std::string(protocol::identity_mode_name(profile.identity.mode));
  // Each rule's cases by what would become of them.
  std::map<std::string, std::vector<std::string>> run_by, skipped_by, unselected_by;
  std::map<std::string, std::string> skip_reason_of;
  for (const auto& c : split.selected) {
    auto reason = scenario::skip_reason(c, profile);
    if (reason) {
      plan.skips.push_back({c.id, *reason});
      skip_reason_of[c.id] = *reason;
    } else {
      plan.runs.push_back(c.id);
    }
    for (const auto& rule : rules_checked_by(c)) (reason ? skipped_by : run_by)[rule].push_back(c.id);
  }
  for (const auto& c : split.not_selected) {
    plan.not_selected.push_back(c.id);
    for (const auto& rule : rules_checked_by(c)) unselected_by[rule].push_back(c.id);
  }
  for (const auto& [id, rule] : rules.rules) {
    if (run_by.count(id)) continue;
    UntestedRule untested{id, rule.level, "no case checks it", {}};
    if (auto it = skipped_by.find(id); it != skipped_by.end()) {
      // Each reason once: the cases were skipped for one reason or several.
      std::vector<std::string> reasons;
      for (const auto& case_id : it->second) {
        const auto& reason = skip_reason_of.at(case_id);
        if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) reasons.push_back(reason);
      }
      untested.why = fmt::format("skipped: {}", fmt::join(reasons, "; "));
      untested.cases = it->second;
    } else if (auto unselected = unselected_by.find(id); unselected != unselected_by.end()) {
      untested.why = "not selected";
      untested.cases = unselected->second;
    }
    plan.untested.push_back(std::move(untested));
  }
  return plan;
}

}  // namespace

PlanOutcome plan_run(const SuiteOptions& options) {
  PlanOutcome out;
  auto fail = [&](std::string message) {
    out.exit_code = 2;
    out.message = std::move(message);
    return out;
  };
  try {
    auto rules = scenario::load_rules(options.specs_dir / "rules.yaml");
    auto split =
        select_cases(scenario::load_suite(options.specs_dir / "scenarios", rules), selection_of(options), rules);
    if (!split) return fail(split.error().message);
    target::TargetProfile profile;
    std::string target;
    if (options.target) {
      profile = target::load_profile(*options.target);
      target = fmt::format("{} ({})", profile.name, options.target->string());
    } else {
      BuiltinOptions builtin_options{options.specs_dir, options.builtin_fault, options.builtin_seeded_bug,
                                     options.identity_mode};
      builtin_options.scep = options.builtin_enrollment != BuiltinEnrollment::off;
      builtin_options.devices_through_scep = options.builtin_enrollment == BuiltinEnrollment::scep;
      auto loaded = builtin_profile(builtin_options);
      if (!loaded) return fail(loaded.error().message);
      profile = *std::move(loaded);
      target = builtin_description(options);
    }
    if (options.identity_mode) profile.identity.mode = *options.identity_mode;
    out.plan = plan_for(*split, profile, rules);
    out.plan.target = std::move(target);
    out.plan.stop = pool_shortfall(profile, split->selected, options.confirm);
  } catch (const base::LoadError& e) {
    return fail(e.what());
  }
  return out;
}

std::string render_plan(const RunPlan& plan) {
  std::string out = "dry run: nothing is sent\n";
  out += fmt::format("target: {}\nidentity mode: {}\n", plan.target, plan.identity_mode);
  out += fmt::format("would run {} case(s):\n", plan.runs.size());
  for (const auto& id : plan.runs) out += fmt::format("  {}\n", id);
  out += fmt::format("would skip {} case(s):\n", plan.skips.size());
  for (const auto& skip : plan.skips) out += fmt::format("  {:<32} {}\n", skip.case_id, skip.reason);
  // Several to a line: with a narrow selection they are most of the suite.
  out += fmt::format("not selected: {} case(s)\n", plan.not_selected.size());
  std::string line;
  for (const auto& id : plan.not_selected) {
    if (!line.empty() && line.size() + id.size() > 96) {
      out += "  " + line + "\n";
      line.clear();
    }
    line += line.empty() ? id : " " + id;
  }
  if (!line.empty()) out += "  " + line + "\n";
  out += fmt::format("would leave {} rule(s) untested:\n", plan.untested.size());
  for (const auto& rule : plan.untested) {
    out += fmt::format("  {:<22} {:<6} {}{}\n", rule.id, scenario::level_name(rule.level), rule.why,
                       rule.cases.empty() ? std::string() : fmt::format(" ({})", fmt::join(rule.cases, ", ")));
  }
  if (plan.stop) out += fmt::format("the run would stop before its first case: {}\n", *plan.stop);
  return out;
}

}  // namespace mdmc::cli
