#include "harness/scenario/spec.hpp"

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "harness/protocol/rules.hpp"
#include "harness/base/bytes.hpp"

namespace mdmc::scenario {
namespace {

constexpr int kSchemaVersion = 1;

int line_of(const YAML::Node& node) { return node.Mark().line >= 0 ? node.Mark().line + 1 : 0; }

// Reads one YAML map, remembers which keys were read, and rejects the rest: a misspelt key
// in a case must not silently weaken what the case checks.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string file, std::string path)
      : node_(node), file_(std::move(file)), path_(std::move(path)) {
    if (!node_.IsMap()) fail(node_, "must be a map");
  }

  bool has(const std::string& key) {
    used_.insert(key);
    return static_cast<bool>(node_[key]);
  }
  YAML::Node node(const std::string& key) {
    used_.insert(key);
    return node_[key];
  }
  YAML::Node required(const std::string& key) {
    auto n = node(key);
    if (!n) fail(node_, "'" + key + "' is required", key);
    return n;
  }

  template <typename T>
  T get(const std::string& key, T fallback) {
    auto n = node(key);
    if (!n) return fallback;
    return as<T>(n, key);
  }
  template <typename T>
  T get_required(const std::string& key) {
    return as<T>(required(key), key);
  }

  template <typename T>
  T as(const YAML::Node& n, const std::string& key) {
    try {
      if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<int>>) {
        if (n.IsScalar()) return T{n.as<typename T::value_type>()};
        if (!n.IsSequence()) fail(n, "must be a list", key);
      } else {
        if (!n.IsScalar()) fail(n, "must be a single value", key);
      }
      return n.as<T>();
    } catch (const YAML::Exception&) {
      fail(n, fmt::format("has the wrong type (expected {})", type_word<T>()), key);
    }
  }

  // Throws for any key that was never asked for.
  void finish() {
    for (const auto& kv : node_) {
      auto key = kv.first.as<std::string>("");
      if (!used_.count(key)) fail(kv.first, "unknown key '" + key + "'", key);
    }
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& reason, const std::string& key = {}) const {
    std::string full = path_.empty() ? key : (key.empty() ? path_ : path_ + "." + key);
    throw LoadError(file_, line_of(at), full, reason);
  }

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

 private:
  template <typename T>
  static const char* type_word() {
    if constexpr (std::is_same_v<T, int>) return "an integer";
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_same_v<T, std::vector<int>>) return "a list of integers";
    if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
    return "a string";
  }

  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::set<std::string> used_;
};

// Cases, profiles and the PEM files they name are small; the cap keeps a profile that names a
// huge file, or a case path that is a device (`--target /dev/zero`), from being read whole.
constexpr std::size_t kMaxSpecFileBytes = 8 * 1024 * 1024;

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw LoadError(file.string(), 0, "", "cannot be read");
  std::string text;
  char buffer[64 * 1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxSpecFileBytes) {
      throw LoadError(file.string(), 0, "", fmt::format("is larger than {} bytes", kMaxSpecFileBytes));
    }
  }
  return text;
}

YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp (0.7, as Debian builds it) stops at 500 nested levels rather than recurse on,
    // but says only "bad file"; no case or profile comes near that depth.
    throw LoadError(file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "",
                    fmt::format("nested more than {} levels deep", e.depth() - 1));
  } catch (const YAML::Exception& e) {
    throw LoadError(file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "", e.msg);
  }
}

void check_schema_version(MapReader& top) {
  int version = top.get_required<int>("schema_version");
  if (version != kSchemaVersion) {
    top.fail(top.node("schema_version"),
             fmt::format("schema_version {} is not supported (this harness reads {})", version,
                         kSchemaVersion),
             "schema_version");
  }
}

Level parse_level(MapReader& r, const std::string& key) {
  auto text = r.get_required<std::string>(key);
  if (text == "must") return Level::must;
  if (text == "should") return Level::should;
  if (text == "may") return Level::may;
  r.fail(r.node(key), "must be one of must, should, may", key);
}

BodyExpectation parse_body(MapReader& r) {
  auto text = r.get<std::string>("body", "any");
  if (text == "any") return BodyExpectation::any;
  if (text == "empty") return BodyExpectation::empty;
  if (text == "plist") return BodyExpectation::plist;
  if (text == "not_empty") return BodyExpectation::not_empty;
  r.fail(r.node("body"), "must be one of any, empty, plist, not_empty", "body");
}

std::vector<emulator::SeriesEnd> parse_ended(MapReader& r) {
  std::vector<emulator::SeriesEnd> out;
  for (const auto& name : r.get<std::vector<std::string>>("ended", {})) {
    bool found = false;
    for (auto end : {emulator::SeriesEnd::empty_body, emulator::SeriesEnd::empty_plist,
                     emulator::SeriesEnd::no_content, emulator::SeriesEnd::http_status,
                     emulator::SeriesEnd::bad_command, emulator::SeriesEnd::no_response,
                     emulator::SeriesEnd::bound_reached}) {
      if (emulator::series_end_name(end) == name) {
        out.push_back(end);
        found = true;
      }
    }
    if (!found) r.fail(r.node("ended"), "unknown series ending '" + name + "'", "ended");
  }
  return out;
}

struct CaseContext {
  const RuleCatalog& rules;
  std::vector<std::string> case_rules;
  std::set<std::string> actors;
  std::set<std::string> saved;
};

void check_rule(MapReader& r, const YAML::Node& at, const std::string& id, const RuleCatalog& rules,
                const std::string& key) {
  if (!rules.rules.count(id)) r.fail(at, "unknown rule id '" + id + "' (not in rules.yaml)", key);
}

void check_names(MapReader& r, const std::vector<std::string>& names, const CaseContext& ctx,
                 const std::string& key) {
  for (const auto& n : names) {
    if (!ctx.saved.count(n)) r.fail(r.node(key), "'" + n + "' was not saved by an earlier step", key);
  }
}

StatusSet parse_status_set(MapReader& r, const std::string& key) {
  StatusSet set;
  auto node = r.node(key);
  if (!node) return set;
  std::vector<YAML::Node> items;
  if (node.IsSequence()) {
    for (const auto& n : node) items.push_back(n);
  } else {
    items.push_back(node);
  }
  for (const auto& n : items) {
    auto text = n.IsScalar() ? n.Scalar() : std::string();
    if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' && text.substr(1) == "xx") {
      set.classes.push_back(text[0] - '0');
      continue;
    }
    int code = 0;
    bool numeric = !text.empty() && text.size() <= 3 &&
                   std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) code = std::stoi(text);
    if (!numeric || code < 100 || code > 599) {
      r.fail(n, "'" + text + "' is not a status code (100-599) or class (4xx)", key);
    }
    set.codes.push_back(code);
  }
  return set;
}

Expectation parse_expectation(const YAML::Node& node, const std::string& file,
                              const std::string& path, StepKind kind, CaseContext& ctx) {
  MapReader r(node, file, path);
  Expectation e;
  e.line = line_of(node);
  e.rule = r.get<std::string>("rule", ctx.case_rules.front());
  check_rule(r, r.node("rule") ? r.node("rule") : node, e.rule, ctx.rules, "rule");
  if (r.has("level")) {
    e.level = parse_level(r, "level");
    if (*e.level < ctx.rules.rules.at(e.rule).level) {
      r.fail(r.node("level"), "an expectation may lower its rule's level, never raise it", "level");
    }
  }
  bool exchange = kind != StepKind::series;
  if (exchange) {
    e.status = parse_status_set(r, "status");
    e.body = parse_body(r);
    e.has_keys = r.get<std::vector<std::string>>("has_key", {});
    e.body_contains = r.get<std::string>("body_contains", "");
  } else {
    e.delivered = r.get<std::vector<std::string>>("delivered", {});
    e.not_delivered = r.get<std::vector<std::string>>("not_delivered", {});
    check_names(r, e.delivered, ctx, "delivered");
    check_names(r, e.not_delivered, ctx, "not_delivered");
    if (r.has("delivered_count")) e.delivered_count = r.get_required<int>("delivered_count");
    e.ended = parse_ended(r);
    e.terminates = r.get("terminates", false);
    e.no_repeat = r.get("no_repeat", false);
    e.delivered_types = r.get<std::vector<std::string>>("delivered_type", {});
  }
  r.finish();
  return e;
}

std::string parse_actor(MapReader& r, const std::string& key, const CaseContext& ctx) {
  auto actor = r.get_required<std::string>(key);
  if (!ctx.actors.count(actor)) {
    r.fail(r.node(key), "'" + actor + "' is not a device or device/user of this case", key);
  }
  return actor;
}

Step parse_step(const YAML::Node& node, const std::string& file, const std::string& path,
                CaseContext& ctx) {
  MapReader r(node, file, path);
  Step step;
  step.line = line_of(node);
  int actions = 0;
  for (const char* action : {"checkin", "report", "enqueue", "series", "raw", "parallel"}) actions += r.has(action) ? 1 : 0;
  if (actions != 1) r.fail(node, "a step has exactly one of checkin, report, enqueue, series, raw, parallel");
  if (r.has("parallel")) {
    step.kind = StepKind::parallel;
    auto list = r.node("parallel");
    if (!list.IsSequence() || list.size() < 2) r.fail(list, "must be a list of at least two steps", "parallel");
    step.interleave = r.get("interleave", false);
    std::set<std::string> actors;
    for (std::size_t i = 0; i < list.size(); ++i) {
      // Checked before parsing the sub-step, so that parallel nested in parallel is refused at
      // the first level instead of recursing as deep as the YAML goes.
      const YAML::Node item = list[i];
      if (item.IsMap() && (item["parallel"] || item["enqueue"])) {
        r.fail(item, "a parallel step holds checkin, report, series or raw steps", "parallel");
      }
      auto sub = parse_step(item, file, fmt::format("{}.parallel[{}]", path, i), ctx);
      if (step.interleave && sub.kind != StepKind::series) r.fail(list[i], "interleave runs series only", "parallel");
      if (!actors.insert(sub.actor).second) {
        r.fail(list[i], "'" + sub.actor + "' appears twice: each parallel step is another client", "parallel");
      }
      step.parallel.push_back(std::move(sub));
    }
    r.finish();
    return step;
  }

  if (r.has("checkin")) {
    step.kind = StepKind::check_in;
    auto name = r.get_required<std::string>("checkin");
    auto type = protocol::message_type_from_name(name);
    if (!type) r.fail(r.node("checkin"), "unknown MessageType '" + name + "'", "checkin");
    step.message = *type;
    step.actor = parse_actor(r, "as", ctx);
    step.save = r.get<std::string>("save", "");
    if (!step.save.empty() && step.message != protocol::MessageType::user_authenticate) {
      r.fail(r.node("save"), "a checkin saves only UserAuthenticate's DigestChallenge", "save");
    }
  } else if (r.has("report")) {
    step.kind = StepKind::report;
    auto name = r.get_required<std::string>("report");
    auto status = protocol::status_from_name(name);
    if (!status) r.fail(r.node("report"), "unknown Status '" + name + "'", "report");
    step.status = *status;
    step.actor = parse_actor(r, "as", ctx);
    step.command = r.get<std::string>("command", "");
    if ((step.status == protocol::Status::idle) != step.command.empty()) {
      r.fail(node, "a report other than Idle names the command it answers (command: NAME or unknown); Idle names none");
    }
    if (!step.command.empty() && step.command != "unknown" && !ctx.saved.count(step.command)) {
      r.fail(r.node("command"), "'" + step.command + "' was not saved by an earlier step", "command");
    }
  } else if (r.has("raw")) {
    step.kind = StepKind::raw;
    step.raw = r.get_required<std::string>("raw");
    step.actor = parse_actor(r, "as", ctx);
    auto to = r.get<std::string>("to", "check_in");
    if (to == "check_in") step.endpoint = emulator::Endpoint::check_in;
    else if (to == "server") step.endpoint = emulator::Endpoint::server;
    else r.fail(r.node("to"), "must be check_in or server", "to");
    int pad = r.get("pad_to", 0);
    // 64 MiB: far past any server's cap, and still a bound on what a case can make the harness hold.
    if (pad < 0 || pad > 64 * 1024 * 1024) r.fail(r.node("pad_to"), "must be between 0 and 67108864", "pad_to");
    step.pad_to = static_cast<std::size_t>(pad);
    for (auto pos = step.raw.find("${command_uuid:"); pos != std::string::npos;
         pos = step.raw.find("${command_uuid:", pos + 1)) {
      auto end = step.raw.find('}', pos);
      auto name = end == std::string::npos ? "" : step.raw.substr(pos + 15, end - pos - 15);
      if (!ctx.saved.count(name)) r.fail(r.node("raw"), "${command_uuid:" + name + "}: not saved by an earlier step", "raw");
    }
  } else if (r.has("enqueue")) {
    step.kind = StepKind::enqueue;
    step.request_type = r.get_required<std::string>("enqueue");
    step.accounts = r.get<std::vector<std::string>>("accounts", {});
    if (!step.accounts.empty() && step.request_type != "InstallProfile") {
      r.fail(r.node("accounts"), "accounts go with InstallProfile only", "accounts");
    }
    step.actor = parse_actor(r, "to", ctx);
    step.save = r.get<std::string>("save", "");
  } else {
    step.kind = StepKind::series;
    auto name = r.get_required<std::string>("series");
    auto policy = emulator::answer_policy_from_name(name);
    if (!policy) {
      r.fail(r.node("series"),
             "unknown answer policy '" + name +
                 "' (acknowledge, not_now, not_now_until_device_configured, error)",
             "series");
    }
    step.series.policy = *policy;
    step.actor = parse_actor(r, "as", ctx);
    step.series.max_exchanges = r.get("max_exchanges", step.series.max_exchanges);
    if (step.series.max_exchanges < 1 || step.series.max_exchanges > 10000) {
      r.fail(r.node("max_exchanges"), "must be between 1 and 10000", "max_exchanges");
    }
    step.save = r.get<std::string>("save", "");
  }
  if (auto ov = r.node("override")) {
    if (step.kind != StepKind::check_in && step.kind != StepKind::report) {
      r.fail(ov, "override goes with checkin and report steps", "override");
    }
    MapReader o(ov, file, path + ".override");
    step.override_keys.drop = o.get<std::vector<std::string>>("drop", {});
    step.override_keys.as_channel = o.get<std::string>("as_channel", "");
    if (!step.override_keys.as_channel.empty() && !ctx.actors.count(step.override_keys.as_channel)) {
      o.fail(o.node("as_channel"), "'" + step.override_keys.as_channel + "' is not a device or device/user of this case", "as_channel");
    }
    if (auto set = o.node("set")) {
      if (!set.IsMap()) o.fail(set, "must be a map of key: value", "set");
      for (const auto& kv : set) step.override_keys.set[kv.first.as<std::string>("")] = kv.second.as<std::string>("");
    }
    if (auto retype = o.node("retype")) {
      if (!retype.IsMap()) o.fail(retype, "must be a map of key: type", "retype");
      for (const auto& kv : retype) {
        auto type_name = kv.second.as<std::string>("");
        std::optional<plist::Type> type;
        for (auto t : {plist::Type::boolean, plist::Type::integer, plist::Type::real, plist::Type::string,
                       plist::Type::data, plist::Type::date, plist::Type::array, plist::Type::dict}) {
          if (plist::type_name(t) == type_name) type = t;
        }
        if (!type) o.fail(kv.second, "'" + type_name + "' is not a plist type (boolean, integer, real, string, data, date, array, dict)", "retype");
        step.override_keys.retype[kv.first.as<std::string>("")] = *type;
      }
    }
    o.finish();
  }
  if (step.kind == StepKind::series && r.has("enqueue_during")) {
    MapReader d(r.node("enqueue_during"), file, path + ".enqueue_during");
    step.enqueue_during = d.get_required<std::string>("enqueue");
    step.enqueue_after = d.get("after", 1);
    if (step.enqueue_after < 1 || step.enqueue_after > step.series.max_exchanges) {
      d.fail(d.node("after"), "must be between 1 and max_exchanges", "after");
    }
    step.enqueue_during_save = d.get<std::string>("save", "");
    if (!step.enqueue_during_save.empty()) ctx.saved.insert(step.enqueue_during_save);
    d.finish();
  }
  if (step.kind == StepKind::series) {
    for (const auto& name : r.get<std::vector<std::string>>("answers", {})) {
      std::optional<protocol::Status> status;
      if (name == "acknowledge") status = protocol::Status::acknowledged;
      else if (name == "not_now") status = protocol::Status::not_now;
      else if (name == "error") status = protocol::Status::error;
      if (!status) r.fail(r.node("answers"), "'" + name + "' is not acknowledge, not_now or error", "answers");
      step.series.answers.push_back(*status);
    }
  }
  if (step.kind != StepKind::enqueue) {
    step.identity_of = r.get<std::string>("identity_of", "");
    if (!step.identity_of.empty() && (!ctx.actors.count(step.identity_of) || step.identity_of.find('/') != std::string::npos)) {
      r.fail(r.node("identity_of"), "'" + step.identity_of + "' is not a device of this case", "identity_of");
    }
  }
  if (step.kind == StepKind::report || step.kind == StepKind::series) {
    step.flags.need_sync_response = r.get("need_sync", false);
    step.flags.user_configuration = r.get("user_configuration", false);
    bool on_user = step.actor.find('/') != std::string::npos;
    if ((step.flags.need_sync_response || step.flags.user_configuration) && !on_user) {
      r.fail(node, "need_sync and user_configuration are user-channel keys; 'as' must be device/user");
    }
    step.series.flags = step.flags;
  }
  if (auto expect = r.node("expect")) {
    std::vector<YAML::Node> items;
    if (expect.IsSequence()) {
      for (const auto& item : expect) items.push_back(item);
    } else {
      items.push_back(expect);
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      step.expect.push_back(parse_expectation(items[i], file, fmt::format("{}.expect[{}]", path, i), step.kind, ctx));
    }
  }
  if (!step.save.empty()) ctx.saved.insert(step.save);
  r.finish();
  return step;
}

}  // namespace

std::string_view identity_mode_name(IdentityMode mode) {
  switch (mode) {
    case IdentityMode::none: return "none";
    case IdentityMode::mtls: return "mtls";
    case IdentityMode::signature: return "signature";
    case IdentityMode::both: return "both";
  }
  return "?";
}

std::optional<IdentityMode> identity_mode_from_name(std::string_view name) {
  for (auto m : {IdentityMode::none, IdentityMode::mtls, IdentityMode::signature, IdentityMode::both}) {
    if (identity_mode_name(m) == name) return m;
  }
  return std::nullopt;
}

bool StatusSet::contains(int status) const {
  return std::find(codes.begin(), codes.end(), status) != codes.end() ||
         std::find(classes.begin(), classes.end(), status / 100) != classes.end();
}

std::string StatusSet::describe() const {
  std::vector<std::string> parts;
  for (int c : codes) parts.push_back(std::to_string(c));
  for (int c : classes) parts.push_back(std::to_string(c) + "xx");
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? " or " : "") + parts[i];
  return out;
}

LoadError::LoadError(std::string file, int line, std::string key, const std::string& reason)
    : std::runtime_error(fmt::format("{}:{}: {}{}", file, line, key.empty() ? "" : key + ": ", reason)),
      file_(std::move(file)),
      line_(line),
      key_(std::move(key)) {}

std::map<std::string, Level> RuleCatalog::levels() const {
  std::map<std::string, Level> out;
  for (const auto& [id, rule] : rules) out[id] = rule.level;
  return out;
}

RuleCatalog load_rules(const std::filesystem::path& file) {
  return load_rules_text(read_file(file), file.string());
}

RuleCatalog load_rules_text(std::string_view yaml, const std::string& name) {
  auto root = parse_yaml(std::string(yaml), name);
  MapReader top(root, name, "");
  check_schema_version(top);
  RuleCatalog catalog;
  auto list = top.required("rules");
  if (!list.IsSequence()) top.fail(list, "must be a list", "rules");
  for (std::size_t i = 0; i < list.size(); ++i) {
    MapReader r(list[i], name, fmt::format("rules[{}]", i));
    RuleSpec rule;
    rule.id = r.get_required<std::string>("id");
    if (!protocol::is_known_rule(rule.id)) r.fail(r.node("id"), "'" + rule.id + "' is not a rule id of the catalog", "id");
    if (catalog.rules.count(rule.id)) r.fail(r.node("id"), "duplicate rule id '" + rule.id + "'", "id");
    rule.level = parse_level(r, "level");
    rule.summary = r.get_required<std::string>("summary");
    rule.apple = r.get<std::string>("apple", "");
    rule.source = r.get_required<std::string>("source");
    rule.grounding = r.get<std::string>("grounding", "apple");
    if (rule.grounding != "apple" && rule.grounding != "http") {
      r.fail(r.node("grounding"), "must be apple or http", "grounding");
    }
    if (rule.grounding == "apple" && rule.apple.empty()) r.fail(list[i], "a rule grounded in Apple's text quotes it in 'apple'");
    if (rule.grounding == "http" && rule.level == Level::must) {
      r.fail(r.node("level"), "where Apple is silent a rule is at most should-level", "level");
    }
    r.finish();
    catalog.rules[rule.id] = std::move(rule);
  }
  top.finish();
  return catalog;
}

Case load_case(const std::filesystem::path& file, const std::string& id, const RuleCatalog& rules) {
  return load_case_text(read_file(file), file.string(), id, rules);
}

Case load_case_text(std::string_view yaml, const std::string& name, const std::string& id,
                    const RuleCatalog& rules) {
  auto root = parse_yaml(std::string(yaml), name);
  MapReader top(root, name, "");
  check_schema_version(top);
  Case c;
  c.id = id;
  c.file = name;
  c.title = top.get_required<std::string>("title");
  c.rules = top.get_required<std::vector<std::string>>("rules");
  if (c.rules.empty()) top.fail(top.node("rules"), "names at least one rule", "rules");
  for (const auto& rule : c.rules) check_rule(top, top.node("rules"), rule, rules, "rules");
  c.apple = top.get_required<std::string>("apple");
  c.tags = top.get<std::vector<std::string>>("tags", {});
  for (const auto& req : top.get<std::vector<std::string>>("requires", {})) {
    if (req == "enqueue") c.requirements.push_back(Requirement::enqueue);
    else if (req == "managed_network_user") c.requirements.push_back(Requirement::managed_network_user);
    else top.fail(top.node("requires"), "unknown requirement '" + req + "' (enqueue, managed_network_user)", "requires");
  }
  c.enroll = top.get("enroll", true);

  CaseContext ctx{rules, c.rules, {}, {}};
  auto devices = top.required("devices");
  if (!devices.IsSequence() || devices.size() == 0) top.fail(devices, "must be a non-empty list", "devices");
  for (std::size_t i = 0; i < devices.size(); ++i) {
    MapReader d(devices[i], name, fmt::format("devices[{}]", i));
    DeviceSpec device{d.get_required<std::string>("name"), {}};
    if (device.name.empty() || device.name.find('/') != std::string::npos || ctx.actors.count(device.name)) {
      d.fail(d.node("name"), "must be unique, non-empty, without '/'", "name");
    }
    ctx.actors.insert(device.name);
    if (auto users = d.node("users")) {
      if (!users.IsSequence()) d.fail(users, "must be a list", "users");
      for (std::size_t j = 0; j < users.size(); ++j) {
        MapReader u(users[j], name, fmt::format("devices[{}].users[{}]", i, j));
        UserSpec user;
        user.name = u.get_required<std::string>("name");
        auto actor = device.name + "/" + user.name;
        if (user.name.empty() || user.name.find('/') != std::string::npos || ctx.actors.count(actor)) {
          u.fail(u.node("name"), "must be unique on its device, non-empty, without '/'", "name");
        }
        auto kind = u.get<std::string>("kind", "local");
        if (kind == "local") user.kind = emulator::UserKind::local;
        else if (kind == "network") user.kind = emulator::UserKind::network;
        else u.fail(u.node("kind"), "must be local or network", "kind");
        user.managed = u.get("managed", false);
        if (user.managed && user.kind != emulator::UserKind::network) {
          u.fail(u.node("managed"), "only network users are managed or not by policy", "managed");
        }
        u.finish();
        ctx.actors.insert(actor);
        device.users.push_back(std::move(user));
      }
    }
    d.finish();
    c.devices.push_back(std::move(device));
  }

  auto steps = top.required("steps");
  if (!steps.IsSequence() || steps.size() == 0) top.fail(steps, "must be a non-empty list", "steps");
  for (std::size_t i = 0; i < steps.size(); ++i) {
    c.steps.push_back(parse_step(steps[i], name, fmt::format("steps[{}]", i), ctx));
  }
  top.finish();
  return c;
}

std::vector<Case> load_suite(const std::filesystem::path& dir, const RuleCatalog& rules) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw LoadError(dir.string(), 0, "", "is not a folder of cases");
  std::vector<std::pair<std::string, std::filesystem::path>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".yaml") continue;
    auto rel = std::filesystem::relative(entry.path(), dir).replace_extension("");
    files.emplace_back(rel.generic_string(), entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Case> out;
  for (const auto& [id, path] : files) out.push_back(load_case(path, id, rules));
  return out;
}

namespace {

std::string substitute(const std::string& value, const std::map<std::string, std::string>& variables,
                       MapReader& r, const YAML::Node& at, const std::string& key) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    auto start = value.find("${", pos);
    if (start == std::string::npos) break;
    auto end = value.find('}', start);
    if (end == std::string::npos) r.fail(at, "unterminated ${", key);
    out += value.substr(pos, start - pos);
    auto name = value.substr(start + 2, end - start - 2);
    if (name.rfind("env:", 0) == 0) {
      const char* env = std::getenv(name.substr(4).c_str());
      if (!env) r.fail(at, "environment variable " + name.substr(4) + " is not set", key);
      out += env;
    } else if (auto it = variables.find(name); it != variables.end()) {
      out += it->second;
    } else {
      r.fail(at, "${" + name + "} has no value here" +
                     (name == "builtin_port" ? " (only the built-in server sets it)" : ""), key);
    }
    pos = end + 1;
  }
  return out + value.substr(pos);
}

}  // namespace

TargetProfile load_profile(const std::filesystem::path& file, const std::optional<BuiltinTarget>& builtin) {
  return load_profile_text(read_file(file), file.string(), file.parent_path(), builtin);
}

TargetProfile load_profile_text(std::string_view text, const std::string& name,
                                const std::filesystem::path& base,
                                const std::optional<BuiltinTarget>& builtin) {
  std::map<std::string, std::string> variables;
  if (builtin) variables["builtin_port"] = std::to_string(builtin->port);
  auto root = parse_yaml(std::string(text), name);
  MapReader top(root, name, "");
  check_schema_version(top);
  TargetProfile p;
  p.file = name;
  p.digest = base::sha256_hex(text);
  p.name = top.get_required<std::string>("name");
  auto url = [&](MapReader& r, const std::string& key) {
    auto raw = r.get_required<std::string>(key);
    auto value = substitute(raw, variables, r, r.node(key), key);
    if (!net::parse_url(value)) r.fail(r.node(key), "'" + value + "' is not an http:// or https:// URL", key);
    return value;
  };
  {
    MapReader urls(top.required("urls"), name, "urls");
    p.server_url = url(urls, "server");
    p.check_in_url = urls.has("check_in") ? url(urls, "check_in") : p.server_url;
    urls.finish();
  }
  p.topic = substitute(top.get<std::string>("topic", "com.apple.mgmt.External.mdmconform"), variables, top,
                       top.node("topic"), "topic");
  if (auto limits = top.node("limits")) {
    MapReader l(limits, name, "limits");
    auto ms = [&](const std::string& key, std::chrono::milliseconds fallback) {
      int v = l.get(key, static_cast<int>(fallback.count()));
      if (v <= 0) l.fail(l.node(key), "must be positive", key);
      return std::chrono::milliseconds(v);
    };
    p.limits.connect_timeout = ms("connect_timeout_ms", p.limits.connect_timeout);
    p.limits.write_timeout = ms("write_timeout_ms", p.limits.write_timeout);
    p.limits.header_timeout = ms("header_timeout_ms", p.limits.header_timeout);
    p.limits.body_timeout = ms("body_timeout_ms", p.limits.body_timeout);
    int body = l.get("max_body_bytes", static_cast<int>(p.limits.max_body_bytes));
    if (body <= 0) l.fail(l.node("max_body_bytes"), "must be positive", "max_body_bytes");
    p.limits.max_body_bytes = static_cast<std::size_t>(body);
    // Every hop has its own deadlines, so one request may take (max_redirects + 1) times them;
    // 20 is the most the Fetch standard (and so every browser) follows.
    constexpr int kMostRedirects = 20;
    int redirects = l.get("max_redirects", p.limits.max_redirects);
    if (redirects < 0 || redirects > kMostRedirects) {
      l.fail(l.node("max_redirects"), fmt::format("must be between 0 and {}", kMostRedirects), "max_redirects");
    }
    p.limits.max_redirects = redirects;
    p.limits.redirects_off_loopback = l.get("redirects_off_loopback", p.limits.redirects_off_loopback);
    auto bound = [&](const std::string& key, std::size_t fallback, std::size_t most) {
      int v = l.get(key, static_cast<int>(fallback));
      if (v <= 0 || static_cast<std::size_t>(v) > most) {
        l.fail(l.node(key), fmt::format("must be between 1 and {}", most), key);
      }
      return static_cast<std::size_t>(v);
    };
    // Upper bounds keep a profile from turning the limits off: they guard the harness itself.
    p.plist_limits.max_bytes = bound("plist_max_bytes", p.plist_limits.max_bytes, 64 * 1024 * 1024);
    p.plist_limits.max_depth = bound("plist_max_depth", p.plist_limits.max_depth, 512);
    p.plist_limits.max_nodes = bound("plist_max_nodes", p.plist_limits.max_nodes, 10'000'000);
    l.finish();
  }
  if (auto admin = top.node("admin")) {
    MapReader a(admin, name, "admin");
    if (auto enqueue = a.node("enqueue")) {
      MapReader e(enqueue, name, "admin.enqueue");
      AdminEndpoint ep;
      ep.method = e.get<std::string>("method", "PUT");
      auto style = e.get<std::string>("channel_id", "udid:user_id");
      if (style == "udid:user_id") ep.channel_style = ChannelStyle::udid_colon_user_id;
      else if (style == "user_id") ep.channel_style = ChannelStyle::user_id;
      else e.fail(e.node("channel_id"), "must be 'udid:user_id' (NanoMDM) or 'user_id' (MicroMDM)", "channel_id");
      ep.url = url(e, "url");
      if (auto auth = e.node("basic_auth")) {
        MapReader b(auth, name, "admin.enqueue.basic_auth");
        ep.basic_user = b.get_required<std::string>("user");
        ep.basic_password = substitute(b.get_required<std::string>("password"), variables, b, b.node("password"), "password");
        b.finish();
      }
      ep.expect_status = e.get<std::vector<int>>("expect_status", ep.expect_status);
      int settle = e.get("settle_ms", 0);
      if (settle < 0 || settle > 60000) e.fail(e.node("settle_ms"), "must be between 0 and 60000", "settle_ms");
      ep.settle = std::chrono::milliseconds(settle);
      e.finish();
      p.enqueue = ep;
    }
    a.finish();
  }
  // A path, relative to the profile's folder, or `builtin`.
  auto pem_file = [&](MapReader& r, const std::string& key) -> std::string {
    auto value = substitute(r.get_required<std::string>(key), variables, r, r.node(key), key);
    auto path = std::filesystem::path(value);
    if (path.is_relative()) path = base / path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) r.fail(r.node(key), "no file " + path.string(), key);
    return read_file(path);
  };
  if (auto identity = top.node("identity")) {
    MapReader id(identity, name, "identity");
    auto mode = identity_mode_from_name(id.get_required<std::string>("mode"));
    if (!mode) id.fail(id.node("mode"), "must be none, mtls, signature or both", "mode");
    p.identity.mode = *mode;
    auto key = id.get<std::string>("key_type", "ec_p256");
    if (key == "ec_p256") p.identity.key_type = pki::KeyType::ec_p256;
    else if (key == "rsa2048") p.identity.key_type = pki::KeyType::rsa2048;
    else id.fail(id.node("key_type"), "must be ec_p256 or rsa2048", "key_type");
    if (auto issuer = id.node("issuer")) {
      if (issuer.IsScalar() && issuer.Scalar() == "builtin") {
        if (!builtin) id.fail(issuer, "'builtin' needs the built-in server (run without --target)", "issuer");
        p.identity.issuer = builtin->ca;
      } else {
        MapReader is(issuer, name, "identity.issuer");
        pki::Identity ca{pem_file(is, "cert"), pem_file(is, "key"), ""};
        if (!pki::certificate_der(ca.cert_pem)) is.fail(is.node("cert"), "not a PEM certificate", "cert");
        is.finish();
        p.identity.issuer = ca;
      }
    }
    if (auto pool = id.node("pool")) {
      MapReader po(pool, name, "identity.pool");
      auto dir = std::filesystem::path(substitute(po.get_required<std::string>("dir"), variables, po, po.node("dir"), "dir"));
      if (dir.is_relative()) dir = base / dir;
      auto password = substitute(po.get<std::string>("p12_password", ""), variables, po, po.node("p12_password"), "p12_password");
      auto loaded = pki::load_identity_pool(dir, password);
      if (!loaded) po.fail(po.node("dir"), loaded.message(), "dir");
      if (loaded->empty()) po.fail(po.node("dir"), "holds no identity (*.p12, or NAME.crt with NAME.key)", "dir");
      p.identity.pool = std::move(loaded).value();
      po.finish();
    }
    if (p.identity.mode != IdentityMode::none && !p.identity.issuer && p.identity.pool.empty()) {
      id.fail(identity, "mode " + std::string(identity_mode_name(p.identity.mode)) + " needs an issuer or a pool");
    }
    if (p.identity.issuer && !p.identity.pool.empty()) id.fail(identity, "give an issuer or a pool, not both");
    id.finish();
  }
  if (auto tls = top.node("tls")) {
    MapReader t(tls, name, "tls");
    if (auto ca = t.node("ca")) {
      if (ca.IsScalar() && ca.Scalar() == "builtin") {
        if (!builtin) t.fail(ca, "'builtin' needs the built-in server (run without --target)", "ca");
        p.tls.ca_pem = builtin->ca.cert_pem;
      } else {
        p.tls.ca_pem = pem_file(t, "ca");
      }
    }
    p.tls.insecure = t.get("insecure", false);
    t.finish();
  }
  if (auto policy = top.node("policy")) {
    MapReader pol(policy, name, "policy");
    if (auto users = pol.node("network_users")) {
      MapReader nu(users, name, "policy.network_users");
      p.managed_network_users = nu.get<std::vector<std::string>>("managed", {});
      nu.finish();
    }
    pol.finish();
  }
  if (auto declares = top.node("declares")) {
    if (!declares.IsMap()) top.fail(declares, "must be a map", "declares");
    for (const auto& kv : declares) {
      auto key = kv.first.as<std::string>("");
      MapReader d(declares, name, "declares");
      p.declares[key] = d.get(key, false);
    }
  }
  top.finish();
  return p;
}


}  // namespace mdmc::scenario
