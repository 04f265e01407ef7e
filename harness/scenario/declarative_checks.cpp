#include "harness/scenario/declarative_checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "harness/protocol/rules.hpp"

namespace mdmc::scenario {
namespace {

using Stage = emulator::DeclarativeClient::Stage;
namespace rule = protocol::rule;

// At most this many problems are named in a finding; the rest are counted.
constexpr std::size_t kNamed = 4;

std::string words(const std::vector<protocol::SchemaViolation>& problems) {
  std::string out;
  for (std::size_t i = 0; i < problems.size() && i < kNamed; ++i) {
    if (!out.empty()) out += "; ";
    out += problems[i].key_path + ": " + problems[i].problem;
  }
  if (problems.size() > kNamed) out += fmt::format("; and {} more", problems.size() - kNamed);
  return out;
}

std::string answer_words(const DeclarativeSyncRecord::Answer& a) {
  return a.body.empty() ? fmt::format("HTTP {} with an empty body", a.status)
                        : fmt::format("HTTP {} ({} bytes)", a.status, a.body.size());
}

CheckOutcome not_judged(std::string why) { return CheckOutcome{false, true, {}, std::move(why)}; }
CheckOutcome outcome(bool passed, std::string expected, std::string actual) {
  return CheckOutcome{true, passed, std::move(expected), std::move(actual)};
}

// A JSON answer judged by `judge`: 200, bounded JSON, no problems.
template <class Judge>
CheckOutcome judge_answer(const std::optional<DeclarativeSyncRecord::Answer>& answer, std::string_view what,
                          std::string expected, const Judge& judge) {
  if (!answer) return not_judged(fmt::format("the sync sent no {} request", what));
  if (answer->status != 200) return outcome(false, std::move(expected), answer_words(*answer));
  auto json = protocol::parse_bounded_json(answer->body);
  if (!json) return outcome(false, std::move(expected), fmt::format("a body that is not JSON: {}", json.message()));
  auto problems = judge(*json);
  return outcome(problems.empty(), std::move(expected), problems.empty() ? "as Apple's schema says" : words(problems));
}

CheckOutcome check_fetch(const DeclarativeSyncRecord& r) {
  const std::string expected =
      "every listed declaration served with the Identifier, ServerToken and Type it was listed with; an unlisted path "
      "404";
  if (!r.items) return not_judged("the sync fetched no declaration-items");
  std::vector<std::string> wrong;
  for (const auto& f : r.fetched) {
    const auto where = protocol::declaration_endpoint(f.group, f.identifier);
    if (f.answer.status != 200) {
      wrong.push_back(fmt::format("{}: {}", where, answer_words(f.answer)));
      continue;
    }
    auto d = protocol::decode_declaration(f.answer.body);
    if (!d) {
      wrong.push_back(fmt::format("{}: {}", where, d.message()));
      continue;
    }
    if (d->identifier != f.identifier) wrong.push_back(fmt::format("{}: Identifier \"{}\"", where, d->identifier));
    if (d->server_token != f.listed_token) {
      wrong.push_back(fmt::format("{}: ServerToken \"{}\", listed \"{}\"", where, d->server_token, f.listed_token));
    }
    const auto prefix = "com.apple." + std::string(protocol::declaration_group_name(f.group)) + ".";
    if (!d->type.starts_with(prefix)) {
      wrong.push_back(
          fmt::format("{}: Type \"{}\" is no {}", where, d->type, protocol::declaration_group_name(f.group)));
    }
  }
  if (!r.unlisted) {
    wrong.push_back("no unlisted path was asked for");
  } else if (r.unlisted->status != 404) {
    wrong.push_back(fmt::format("an unlisted declaration path: {}", answer_words(*r.unlisted)));
  }
  if (wrong.size() > kNamed) {
    const auto more = wrong.size() - kNamed;
    wrong.resize(kNamed);
    wrong.push_back(fmt::format("and {} more", more));
  }
  return outcome(wrong.empty(), expected,
                 wrong.empty() ? fmt::format("{} declaration(s) as listed, an unlisted path 404", r.fetched.size())
                               : fmt::format("{}", fmt::join(wrong, "; ")));
}

CheckOutcome check_schema(const DeclarativeSyncRecord& r) {
  const std::string expected = "each served declaration's Payload as Apple's schema gives its Type";
  if (r.fetched.empty()) return not_judged("the sync fetched no declaration");
  std::vector<protocol::SchemaViolation> problems;
  for (const auto& f : r.fetched) {
    if (f.answer.status != 200) continue;
    auto json = protocol::parse_bounded_json(f.answer.body);
    if (!json) continue;  // DDM-FETCH's to judge
    for (auto& p : protocol::problems_in_declaration(*json)) {
      p.key_path = f.identifier + ": " + p.key_path;
      problems.push_back(std::move(p));
    }
  }
  return outcome(problems.empty(), expected, problems.empty() ? "as Apple's schema says" : words(problems));
}

CheckOutcome check_channel(const Expectation& e, const emulator::DeclarativeClient& client,
                           const protocol::Channel& channel) {
  std::vector<std::string> wrong;
  for (const auto& id : e.holds) {
    if (!client.find(id)) wrong.push_back(fmt::format("\"{}\" not served", id));
  }
  for (const auto& id : e.not_holds) {
    if (client.find(id)) wrong.push_back(fmt::format("\"{}\", another channel's, served", id));
  }
  for (const auto& id : e.active) {
    const auto* held = client.find(id);
    if (held && !held->active) wrong.push_back(fmt::format("\"{}\" reported not active", id));
    if (!held && std::find(e.holds.begin(), e.holds.end(), id) == e.holds.end()) {
      wrong.push_back(fmt::format("\"{}\" not served", id));
    }
  }
  for (const auto& id : e.valid) {
    const auto* held = client.find(id);
    if (held && !held->valid) {
      std::string why;
      for (const auto& p : held->problems) why += (why.empty() ? "" : "; ") + p.key_path + ": " + p.problem;
      wrong.push_back(fmt::format("\"{}\" reported invalid ({})", id, why));
    }
    if (!held && std::find(e.holds.begin(), e.holds.end(), id) == e.holds.end() &&
        std::find(e.active.begin(), e.active.end(), id) == e.active.end()) {
      wrong.push_back(fmt::format("\"{}\" not served", id));
    }
  }
  for (const auto& [id, held] : client.held()) {
    if (!protocol::allowed_on_channel(held.type, channel)) {
      wrong.push_back(fmt::format("\"{}\" of Type {}, which macOS does not take on this channel", id, held.type));
    }
  }
  std::vector<std::string> held_ids;
  for (const auto& [id, held] : client.held()) held_ids.push_back(id);
  return outcome(wrong.empty(),
                 fmt::format("the channel's own declarations ({}), none of another channel's ({})",
                             fmt::join(e.holds, ", "), fmt::join(e.not_holds, ", ")),
                 wrong.empty() ? fmt::format("it holds {}", fmt::join(held_ids, ", "))
                               : fmt::format("{}", fmt::join(wrong, "; ")));
}

CheckOutcome check_references(const emulator::DeclarativeClient& client) {
  std::vector<std::string> wrong;
  int references = 0;
  auto listed_as = [&](const std::string& name, protocol::DeclarationGroup group) {
    const auto* target = client.find(name);
    return target && target->group == group;
  };
  for (const auto& [id, held] : client.held()) {
    if (held.group == protocol::DeclarationGroup::activation) {
      auto configurations = held.payload.find("StandardConfigurations");
      if (configurations == held.payload.end() || !configurations->is_array()) continue;  // DDM-SCHEMA's
      for (const auto& ref : *configurations) {
        if (!ref.is_string()) continue;
        ++references;
        if (!listed_as(ref.get<std::string>(), protocol::DeclarationGroup::configuration)) {
          wrong.push_back(fmt::format(
              "activation \"{}\" names \"{}\", which the channel's declaration-items do not list as a configuration",
              id, ref.get<std::string>()));
        }
      }
    } else if (held.group == protocol::DeclarationGroup::configuration) {
      for (const auto& asset : protocol::asset_references(held.payload)) {
        ++references;
        if (!listed_as(asset, protocol::DeclarationGroup::asset)) {
          wrong.push_back(fmt::format(
              "configuration \"{}\" names asset \"{}\", which the channel's declaration-items do not list as an asset",
              id, asset));
        }
      }
    }
  }
  if (references == 0)
    return not_judged("the channel holds no activation or configuration that names another declaration");
  return outcome(wrong.empty(),
                 "each activation's StandardConfigurations, and each asset a configuration names, listed on the same "
                 "channel",
                 wrong.empty() ? fmt::format("{} reference(s), every one listed", references)
                               : fmt::format("{}", fmt::join(wrong, "; ")));
}

CheckOutcome check_status(const DeclarativeSyncRecord& r) {
  if (!r.status_report) return not_judged("the sync sent no status report");
  const std::string kind = !r.full_report   ? "status report"
                           : *r.full_report ? "full status report"
                                            : "incremental status report";
  const bool taken = r.status_report->status >= 200 && r.status_report->status < 300;
  const auto report = fmt::format("the {}: {}", kind, answer_words(*r.status_report));
  if (!taken) return outcome(false, fmt::format("the {} answered 2xx", kind), report);
  if (!r.malformed_status_report) return outcome(true, fmt::format("the {} answered 2xx", kind), report);
  const int refused = r.malformed_status_report->status;
  return outcome(refused >= 400 && refused < 500,
                 fmt::format("the {} answered 2xx, one that is not a report 4xx", kind),
                 fmt::format("{}; the one that is not: {}", report, answer_words(*r.malformed_status_report)));
}

// The last stage of a sync a check needs: the channel and references checks need all of it.
Stage needed_stage(DeclarativeCheck check) {
  switch (check) {
    case DeclarativeCheck::tokens:
    case DeclarativeCheck::token_changed:
    case DeclarativeCheck::token_unchanged: return Stage::tokens;
    case DeclarativeCheck::items: return Stage::declaration_items;
    case DeclarativeCheck::fetch:
    case DeclarativeCheck::schema: return Stage::declaration;
    case DeclarativeCheck::channel:
    case DeclarativeCheck::references:
    case DeclarativeCheck::status:
    case DeclarativeCheck::none: break;
  }
  return Stage::status;
}

}  // namespace

std::string_view rule_of_stage(Stage stage) {
  switch (stage) {
    case Stage::tokens: return rule::kDdmTokens;
    case Stage::declaration_items: return rule::kDdmItems;
    case Stage::declaration: return rule::kDdmFetch;
    case Stage::status: return rule::kDdmStatus;
    case Stage::idle: break;
  }
  return rule::kDdmTokens;
}

std::optional<std::string> synced_token(const DeclarativeSyncRecord& record) {
  if (!record.tokens && record.command_token) return record.command_token;
  if (!record.tokens || record.tokens->status != 200) return std::nullopt;
  auto tokens = protocol::decode_tokens(record.tokens->body);
  if (!tokens) return std::nullopt;
  return tokens->declarations_token;
}

CheckOutcome check_declarative(const Expectation& e, const DeclarativeSyncRecord& record,
                               const emulator::DeclarativeClient& client, const protocol::Channel& channel,
                               const std::optional<std::string>& saved_token) {
  // A sync that stopped breaks the rule of the answer it stopped at (the runner records that);
  // what came before is judged, what it never reached is not.
  if (record.stopped_at) {
    const int stopped = static_cast<int>(*record.stopped_at);
    const int needed = static_cast<int>(needed_stage(e.declarative));
    if (needed > stopped || (needed == stopped && e.rule != rule_of_stage(*record.stopped_at))) {
      return not_judged("the sync stopped before it: " + record.stop_reason);
    }
  }
  switch (e.declarative) {
    case DeclarativeCheck::tokens:
      return judge_answer(record.tokens, "tokens", "SyncTokens with the keys and types Apple's schema requires",
                          [](const protocol::Json& j) { return protocol::problems_in_tokens(j); });
    case DeclarativeCheck::items: {
      auto token = synced_token(record);
      return judge_answer(record.items, "declaration-items",
                          "Declarations with its four groups, each item's Identifier and ServerToken, and the tokens "
                          "endpoint's DeclarationsToken",
                          [&](const protocol::Json& j) {
                            return protocol::problems_in_items(
                                j, token ? std::optional<std::string_view>(*token) : std::nullopt);
                          });
    }
    case DeclarativeCheck::fetch: return check_fetch(record);
    case DeclarativeCheck::schema: return check_schema(record);
    case DeclarativeCheck::channel: return check_channel(e, client, channel);
    case DeclarativeCheck::references: return check_references(client);
    case DeclarativeCheck::status: return check_status(record);
    case DeclarativeCheck::token_changed:
    case DeclarativeCheck::token_unchanged: {
      const bool want_change = e.declarative == DeclarativeCheck::token_changed;
      auto now = synced_token(record);
      if (!now || !saved_token) return not_judged("no DeclarationsToken to compare");
      const bool changed = *now != *saved_token;
      return outcome(changed == want_change,
                     want_change ? fmt::format("a DeclarationsToken other than \"{}\" ({})", *saved_token, e.since)
                                 : fmt::format("the DeclarationsToken \"{}\" ({}) still", *saved_token, e.since),
                     fmt::format("\"{}\"", *now));
    }
    case DeclarativeCheck::none: break;
  }
  return not_judged("nothing to check");
}

}  // namespace mdmc::scenario
