#include "harness/cli/selection.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace mdmc::cli {
namespace {

// A prefix, or a whole case id, which names that case alone.
bool names(const std::string& id_or_prefix, const scenario::Case& c, const std::set<std::string>& ids) {
  return ids.count(id_or_prefix) != 0 ? c.id == id_or_prefix : c.id.rfind(id_or_prefix, 0) == 0;
}

bool any_names(const std::vector<std::string>& list, const scenario::Case& c, const std::set<std::string>& ids) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& p) { return names(p, c, ids); });
}

bool selected(const scenario::Case& c, const Selection& selection, const std::set<std::string>& ids,
              const scenario::RuleCatalog& rules) {
  bool by_id = selection.ids.empty() || any_names(selection.ids, c, ids);
  bool by_tag = selection.tags.empty() || std::any_of(c.tags.begin(), c.tags.end(), [&](const std::string& t) {
                  return std::find(selection.tags.begin(), selection.tags.end(), t) != selection.tags.end();
                });
  bool by_level = selection.levels.empty() || std::any_of(c.rules.begin(), c.rules.end(), [&](const std::string& r) {
                    auto it = rules.rules.find(r);
                    return it != rules.rules.end() && std::find(selection.levels.begin(), selection.levels.end(),
                                                                it->second.level) != selection.levels.end();
                  });
  return by_id && by_tag && by_level && !any_names(selection.excludes, c, ids);
}

}  // namespace

base::Result<SelectedCases> select_cases(std::vector<scenario::Case> suite, const Selection& selection,
                                         const scenario::RuleCatalog& rules) {
  std::set<std::string> ids;
  for (const auto& c : suite) ids.insert(c.id);
  for (const auto& exclude : selection.excludes) {
    bool matches =
        std::any_of(suite.begin(), suite.end(), [&](const scenario::Case& c) { return names(exclude, c, ids); });
    if (!matches) return base::fail(fmt::format("--exclude {} matches no case", exclude));
  }
  SelectedCases out;
  for (auto& c : suite) {
    auto& into = selected(c, selection, ids, rules) ? out.selected : out.not_selected;
    into.push_back(std::move(c));
  }
  if (out.selected.empty()) return base::fail(fmt::format("no case matches {}", describe(selection)));
  return out;
}

std::string describe(const Selection& selection) {
  std::vector<std::string> parts;
  if (!selection.ids.empty()) parts.push_back(fmt::format("{}", fmt::join(selection.ids, ", ")));
  if (!selection.tags.empty()) parts.push_back(fmt::format("tag {}", fmt::join(selection.tags, " or ")));
  std::vector<std::string_view> levels;
  for (auto l : selection.levels) levels.push_back(scenario::level_name(l));
  if (!levels.empty()) parts.push_back(fmt::format("level {}", fmt::join(levels, " or ")));
  std::string out = parts.empty() ? std::string("the suite") : fmt::format("{}", fmt::join(parts, " with "));
  if (!selection.excludes.empty()) out += fmt::format(" excluding {}", fmt::join(selection.excludes, ", "));
  return out;
}

}  // namespace mdmc::cli
