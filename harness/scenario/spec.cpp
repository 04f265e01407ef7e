#include "harness/scenario/spec.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <set>

#include "harness/base/bytes.hpp"
#include "harness/protocol/rules.hpp"
#include "harness/target/yaml_reader.hpp"

namespace mdmc::scenario {
namespace {

using target::check_schema_version;
using target::line_of;
using target::MapReader;
using target::parse_yaml;
using target::read_spec_file;

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
    for (auto end : {emulator::SeriesEnd::empty_body, emulator::SeriesEnd::empty_plist, emulator::SeriesEnd::no_content,
                     emulator::SeriesEnd::http_status, emulator::SeriesEnd::bad_command,
                     emulator::SeriesEnd::no_response, emulator::SeriesEnd::bound_reached}) {
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

void check_names(MapReader& r, const std::vector<std::string>& names, const CaseContext& ctx, const std::string& key) {
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

// What a step's expectations are about.
enum class Expecting { exchange, series, profile, push, declarative };

Expectation parse_expectation(const YAML::Node& node, const std::string& file, const std::string& path, Expecting kind,
                              CaseContext& ctx) {
  const bool series = kind == Expecting::series;
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
  if (kind == Expecting::push) {
    auto check = r.get<std::string>("push", "delivered");
    if (check == "delivered")
      e.push = PushCheck::delivered;
    else if (check == "token")
      e.push = PushCheck::token;
    else if (check == "well_formed")
      e.push = PushCheck::well_formed;
    else
      r.fail(r.node("push"), "must be delivered, token or well_formed", "push");
  } else if (kind == Expecting::profile) {
    auto check = r.get_required<std::string>("profile");
    if (check == "valid")
      e.profile = ProfileCheck::valid;
    else if (check == "per_user")
      e.profile = ProfileCheck::per_user;
    else
      r.fail(r.node("profile"), "must be valid or per_user", "profile");
  } else if (kind == Expecting::declarative) {
    static const std::pair<std::string_view, DeclarativeCheck> kChecks[] = {
        {"tokens", DeclarativeCheck::tokens},
        {"items", DeclarativeCheck::items},
        {"fetch", DeclarativeCheck::fetch},
        {"schema", DeclarativeCheck::schema},
        {"channel", DeclarativeCheck::channel},
        {"references", DeclarativeCheck::references},
        {"status", DeclarativeCheck::status},
        {"token_changed", DeclarativeCheck::token_changed},
        {"token_unchanged", DeclarativeCheck::token_unchanged},
    };
    auto check = r.get_required<std::string>("declarative");
    for (const auto& [name, value] : kChecks) {
      if (check == name) e.declarative = value;
    }
    if (e.declarative == DeclarativeCheck::none) {
      r.fail(r.node("declarative"),
             "must be tokens, items, fetch, schema, channel, references, status, token_changed or token_unchanged",
             "declarative");
    }
    e.holds = r.get<std::vector<std::string>>("holds", {});
    e.not_holds = r.get<std::vector<std::string>>("not_holds", {});
    e.active = r.get<std::vector<std::string>>("active", {});
    e.valid = r.get<std::vector<std::string>>("valid", {});
    for (const char* key : {"holds", "not_holds", "active", "valid"}) {
      if (r.has(key) && e.declarative != DeclarativeCheck::channel) {
        r.fail(r.node(key), "holds, not_holds, active and valid go with declarative: channel", key);
      }
    }
    e.since = r.get<std::string>("since", "");
    const bool token_check =
        e.declarative == DeclarativeCheck::token_changed || e.declarative == DeclarativeCheck::token_unchanged;
    if (token_check != !e.since.empty()) {
      r.fail(node, "token_changed and token_unchanged name the token they compare with (since: NAME), and only they");
    }
    if (!e.since.empty() && !ctx.saved.count(e.since)) {
      r.fail(r.node("since"), "'" + e.since + "' was not saved by an earlier step", "since");
    }
  } else if (!series) {
    e.status = parse_status_set(r, "status");
    e.routed = r.get("routed", false);
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

// What the kinds of step read alike, each called by the kinds that have the key, in the order
// the checks have always run, so that a file with several mistakes reports the same one first.

Override parse_override(MapReader& r, const std::string& file, const std::string& path, const CaseContext& ctx) {
  Override out;
  auto ov = r.node("override");
  if (!ov) return out;
  MapReader o(ov, file, path + ".override");
  out.drop = o.get<std::vector<std::string>>("drop", {});
  out.as_channel = o.get<std::string>("as_channel", "");
  if (!out.as_channel.empty() && !ctx.actors.count(out.as_channel)) {
    o.fail(o.node("as_channel"), "'" + out.as_channel + "' is not a device or device/user of this case", "as_channel");
  }
  if (auto set = o.node("set")) {
    if (!set.IsMap()) o.fail(set, "must be a map of key: value", "set");
    for (const auto& kv : set) out.set[kv.first.as<std::string>("")] = kv.second.as<std::string>("");
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
      if (!type)
        o.fail(kv.second,
               "'" + type_name + "' is not a plist type (boolean, integer, real, string, data, date, array, dict)",
               "retype");
      out.retype[kv.first.as<std::string>("")] = *type;
    }
  }
  o.finish();
  const std::size_t changes = out.drop.size() + out.set.size() + out.retype.size() + (out.as_channel.empty() ? 0 : 1);
  if (changes != 1) {
    r.fail(ov,
           "an override makes exactly one change (one key dropped, set or retyped, or as_channel), so that the "
           "step tests one fault",
           "override");
  }
  return out;
}

// The 64 MiB bound on pad_to: far past any server's cap, and still a bound on what a case can
// make the harness hold.
constexpr int kMaxPadTo = 64 * 1024 * 1024;

BodyFault parse_fault(MapReader& r, const std::string& file, const std::string& path) {
  BodyFault out;
  auto node = r.node("fault");
  if (!node) return out;
  MapReader f(node, file, path + ".fault");
  int kinds = 0;
  if (f.has("pad_to")) {
    int pad = f.get_required<int>("pad_to");
    if (pad < 1 || pad > kMaxPadTo) f.fail(f.node("pad_to"), "must be between 1 and 67108864", "pad_to");
    out.pad_to = static_cast<std::size_t>(pad);
    ++kinds;
  }
  if (f.has("cut_after")) {
    out.cut_after = f.get_required<std::string>("cut_after");
    if (out.cut_after.empty()) f.fail(f.node("cut_after"), "must not be empty", "cut_after");
    ++kinds;
  }
  if (f.has("replace_with")) {
    out.replace_with = f.get_required<std::string>("replace_with");
    ++kinds;
  }
  if (f.has("replace_with_base64")) {
    auto decoded = base::base64_decode_strict(f.get_required<std::string>("replace_with_base64"));
    if (!decoded) f.fail(f.node("replace_with_base64"), "must be base64 (RFC 4648)", "replace_with_base64");
    out.replace_with = decoded ? *decoded : std::string();
    out.replace_is_bytes = true;
    ++kinds;
  }
  if (kinds != 1) f.fail(node, "a fault is exactly one of pad_to, cut_after, replace_with, replace_with_base64");
  f.finish();
  if (r.has("override")) r.fail(node, "a step has an override or a fault, not both: one fault per step", "fault");
  return out;
}

// Kinds without an override say so rather than ignore it.
void refuse_override(MapReader& r) {
  if (auto ov = r.node("override")) r.fail(ov, "override goes with checkin and report steps", "override");
  if (auto fault = r.node("fault")) r.fail(fault, "fault goes with checkin and report steps", "fault");
}

std::string parse_identity_of(MapReader& r, const CaseContext& ctx) {
  auto identity_of = r.get<std::string>("identity_of", "");
  if (!identity_of.empty() && (!ctx.actors.count(identity_of) || identity_of.find('/') != std::string::npos)) {
    r.fail(r.node("identity_of"), "'" + identity_of + "' is not a device of this case", "identity_of");
  }
  return identity_of;
}

protocol::UserFlags parse_flags(MapReader& r, const YAML::Node& node, const std::string& actor) {
  protocol::UserFlags flags;
  flags.need_sync_response = r.get("need_sync", false);
  flags.user_configuration = r.get("user_configuration", false);
  bool on_user = actor.find('/') != std::string::npos;
  if ((flags.need_sync_response || flags.user_configuration) && !on_user) {
    r.fail(node, "need_sync and user_configuration are user-channel keys; 'as' must be device/user");
  }
  return flags;
}

std::vector<Expectation> parse_expect(MapReader& r, const std::string& file, const std::string& path, Expecting kind,
                                      CaseContext& ctx) {
  std::vector<Expectation> out;
  auto expect = r.node("expect");
  if (!expect) return out;
  std::vector<YAML::Node> items;
  if (expect.IsSequence()) {
    for (const auto& item : expect) items.push_back(item);
  } else {
    items.push_back(expect);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    out.push_back(parse_expectation(items[i], file, fmt::format("{}.expect[{}]", path, i), kind, ctx));
  }
  return out;
}

// Where a step is read: its map, its file and key path, the case so far.
struct StepSource {
  MapReader& r;
  const YAML::Node& node;
  const std::string& file;
  const std::string& path;
  CaseContext& ctx;
};

void remember_save(const std::string& save, CaseContext& ctx) {
  if (!save.empty()) ctx.saved.insert(save);
}

CheckInStep parse_check_in(StepSource in) {
  auto& r = in.r;
  CheckInStep step;
  step.line = line_of(in.node);
  auto name = r.get_required<std::string>("checkin");
  auto type = protocol::message_type_from_name(name);
  if (!type) r.fail(r.node("checkin"), "unknown MessageType '" + name + "'", "checkin");
  step.message = *type;
  step.actor = parse_actor(r, "as", in.ctx);
  step.save = r.get<std::string>("save", "");
  if (!step.save.empty() && step.message != protocol::MessageType::user_authenticate) {
    r.fail(r.node("save"), "a checkin saves only UserAuthenticate's DigestChallenge", "save");
  }
  step.override_keys = parse_override(r, in.file, in.path, in.ctx);
  step.fault = parse_fault(r, in.file, in.path);
  step.identity_of = parse_identity_of(r, in.ctx);
  step.new_token = r.get("new_token", false);
  if (step.new_token && step.message != protocol::MessageType::token_update) {
    r.fail(r.node("new_token"), "new_token goes with TokenUpdate", "new_token");
  }
  step.expect = parse_expect(r, in.file, in.path, Expecting::exchange, in.ctx);
  remember_save(step.save, in.ctx);
  return step;
}

ReportStep parse_report(StepSource in) {
  auto& r = in.r;
  ReportStep step;
  step.line = line_of(in.node);
  auto name = r.get_required<std::string>("report");
  auto status = protocol::status_from_name(name);
  if (!status) r.fail(r.node("report"), "unknown Status '" + name + "'", "report");
  step.status = *status;
  step.actor = parse_actor(r, "as", in.ctx);
  step.command = r.get<std::string>("command", "");
  if ((step.status == protocol::Status::idle) != step.command.empty()) {
    r.fail(in.node,
           "a report other than Idle names the command it answers (command: NAME or unknown); Idle names none");
  }
  if (!step.command.empty() && step.command != "unknown" && !in.ctx.saved.count(step.command)) {
    r.fail(r.node("command"), "'" + step.command + "' was not saved by an earlier step", "command");
  }
  step.override_keys = parse_override(r, in.file, in.path, in.ctx);
  step.fault = parse_fault(r, in.file, in.path);
  step.identity_of = parse_identity_of(r, in.ctx);
  step.flags = parse_flags(r, in.node, step.actor);
  step.expect = parse_expect(r, in.file, in.path, Expecting::exchange, in.ctx);
  return step;
}

EnqueueStep parse_enqueue(StepSource in) {
  auto& r = in.r;
  EnqueueStep step;
  step.line = line_of(in.node);
  step.request_type = r.get_required<std::string>("enqueue");
  step.accounts = r.get<std::vector<std::string>>("accounts", {});
  if (!step.accounts.empty() && step.request_type != "InstallProfile") {
    r.fail(r.node("accounts"), "accounts go with InstallProfile only", "accounts");
  }
  step.actor = parse_actor(r, "to", in.ctx);
  step.save = r.get<std::string>("save", "");
  step.may_refuse = r.get("may_refuse", false);
  refuse_override(r);
  step.expect = parse_expect(r, in.file, in.path, Expecting::exchange, in.ctx);
  if (step.may_refuse && !step.expect.empty()) {
    r.fail(r.node("may_refuse"), "an enqueue that may be refused expects nothing of its answer", "may_refuse");
  }
  remember_save(step.save, in.ctx);
  return step;
}

SeriesStep parse_series(StepSource in) {
  auto& r = in.r;
  SeriesStep step;
  step.line = line_of(in.node);
  auto name = r.get_required<std::string>("series");
  auto policy = emulator::answer_policy_from_name(name);
  if (!policy) {
    r.fail(r.node("series"),
           "unknown answer policy '" + name + "' (acknowledge, not_now, not_now_until_device_configured, error)",
           "series");
  }
  step.series.policy = *policy;
  step.actor = parse_actor(r, "as", in.ctx);
  step.series.max_exchanges = r.get("max_exchanges", step.series.max_exchanges);
  if (step.series.max_exchanges < 1 || step.series.max_exchanges > 10000) {
    r.fail(r.node("max_exchanges"), "must be between 1 and 10000", "max_exchanges");
  }
  step.save = r.get<std::string>("save", "");
  refuse_override(r);
  if (r.has("enqueue_during")) {
    MapReader d(r.node("enqueue_during"), in.file, in.path + ".enqueue_during");
    step.enqueue_during = d.get_required<std::string>("enqueue");
    step.enqueue_after = d.get("after", 1);
    if (step.enqueue_after < 1 || step.enqueue_after > step.series.max_exchanges) {
      d.fail(d.node("after"), "must be between 1 and max_exchanges", "after");
    }
    step.enqueue_during_save = d.get<std::string>("save", "");
    remember_save(step.enqueue_during_save, in.ctx);
    d.finish();
  }
  for (const auto& answer : r.get<std::vector<std::string>>("answers", {})) {
    std::optional<protocol::Status> status;
    if (answer == "acknowledge")
      status = protocol::Status::acknowledged;
    else if (answer == "not_now")
      status = protocol::Status::not_now;
    else if (answer == "error")
      status = protocol::Status::error;
    if (!status) r.fail(r.node("answers"), "'" + answer + "' is not acknowledge, not_now or error", "answers");
    step.series.answers.push_back(*status);
  }
  step.identity_of = parse_identity_of(r, in.ctx);
  step.series.flags = parse_flags(r, in.node, step.actor);
  step.expect = parse_expect(r, in.file, in.path, Expecting::series, in.ctx);
  remember_save(step.save, in.ctx);
  return step;
}

EnrollmentProfileStep parse_enrollment_profile(StepSource in) {
  auto& r = in.r;
  EnrollmentProfileStep step;
  step.line = line_of(in.node);
  if (r.get_required<std::string>("enrollment_profile") != "judge") {
    r.fail(r.node("enrollment_profile"), "must be judge", "enrollment_profile");
  }
  refuse_override(r);
  step.expect = parse_expect(r, in.file, in.path, Expecting::profile, in.ctx);
  if (step.expect.empty()) r.fail(in.node, "an enrollment_profile step expects something of the profile");
  return step;
}

// "2s", "500ms": a duration from `least` to `most`.
std::chrono::milliseconds parse_duration(MapReader& r, const std::string& key, std::chrono::milliseconds least,
                                         std::chrono::milliseconds most) {
  auto text = r.get_required<std::string>(key);
  std::size_t digits = 0;
  while (digits < text.size() && digits < 6 && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const auto unit = text.substr(digits);
  std::chrono::milliseconds window{-1};
  if (digits > 0 && (unit == "ms" || unit == "s")) {
    window = std::chrono::milliseconds(std::stoi(text.substr(0, digits)) * (unit == "s" ? 1000 : 1));
  }
  if (window < least || window > most) {
    const auto top =
        most.count() % 1000 == 0 ? fmt::format("{}s", most.count() / 1000) : fmt::format("{}ms", most.count());
    r.fail(r.node(key), fmt::format("'{}' is not a duration from {} ms to {} (500ms, 2s)", text, least.count(), top),
           key);
  }
  return window;
}

// A push step's window, from `least` to 30 s.
std::chrono::milliseconds parse_window(MapReader& r, const std::string& key, std::chrono::milliseconds least) {
  return parse_duration(r, key, least, std::chrono::seconds(30));
}

PushStep parse_push(StepSource in, PushWatch watch) {
  auto& r = in.r;
  PushStep step;
  step.line = line_of(in.node);
  step.watch = watch;
  const char* key = watch == PushWatch::one    ? "expect_push"
                    : watch == PushWatch::none ? "expect_no_push"
                                               : "expect_pushes";
  MapReader w(r.node(key), in.file, in.path + "." + key);
  step.actor = parse_actor(w, "to", in.ctx);
  if (watch == PushWatch::one) {
    step.window = parse_window(w, "within", std::chrono::milliseconds(1));
  } else {
    step.window = parse_window(w, "for", std::chrono::milliseconds(0));
  }
  if (watch == PushWatch::at_most) {
    step.at_most = w.get_required<int>("at_most");
    if (step.at_most < 1 || step.at_most > 1000) w.fail(w.node("at_most"), "must be between 1 and 1000", "at_most");
  }
  w.finish();
  refuse_override(r);
  step.expect = parse_expect(r, in.file, in.path, Expecting::push, in.ctx);
  if (step.expect.empty()) r.fail(in.node, std::string("a ") + key + " step expects something: name its rule");
  for (const auto& e : step.expect) {
    if (e.push != PushCheck::delivered && watch != PushWatch::one) {
      r.fail(in.node, "push: token and push: well_formed go with expect_push, which judges the push that came");
    }
  }
  return step;
}

ApnsStep parse_apns(StepSource in) {
  auto& r = in.r;
  ApnsStep step;
  step.line = line_of(in.node);
  MapReader a(r.node("apns"), in.file, in.path + ".apns");
  auto answer = a.get_required<std::string>("answer");
  if (answer == "accept")
    step.answer = ApnsAnswer::accept;
  else if (answer == "unregistered")
    step.answer = ApnsAnswer::unregistered;
  else if (answer == "too_many_requests")
    step.answer = ApnsAnswer::too_many_requests;
  else if (answer == "service_unavailable")
    step.answer = ApnsAnswer::service_unavailable;
  else
    a.fail(a.node("answer"), "must be accept, unregistered, too_many_requests or service_unavailable", "answer");
  step.actor = parse_actor(a, "for", in.ctx);
  step.times = a.get("times", 0);
  if (step.times < 0 || step.times > 1000) a.fail(a.node("times"), "must be between 0 and 1000", "times");
  a.finish();
  refuse_override(r);
  if (r.has("expect"))
    r.fail(r.node("expect"), "an apns step sets how the fake APNs answers; it expects nothing", "expect");
  return step;
}

// A YAML map as JSON: a quoted scalar is a string; a plain one true/false, null, an integer, a
// number, or else a string. Nested at most kMaxDeclarationDepth deep.
constexpr int kMaxDeclarationDepth = 16;
nlohmann::json yaml_to_json(MapReader& r, const YAML::Node& node, int depth) {
  if (depth > kMaxDeclarationDepth) r.fail(node, fmt::format("nests deeper than {}", kMaxDeclarationDepth));
  if (node.IsMap()) {
    auto out = nlohmann::json::object();
    for (const auto& item : node) out[item.first.Scalar()] = yaml_to_json(r, item.second, depth + 1);
    return out;
  }
  if (node.IsSequence()) {
    auto out = nlohmann::json::array();
    for (const auto& item : node) out.push_back(yaml_to_json(r, item, depth + 1));
    return out;
  }
  if (!node.IsScalar() || node.Tag() == "!") return node.IsScalar() ? nlohmann::json(node.Scalar()) : nlohmann::json();
  const auto& text = node.Scalar();
  if (text == "true") return true;
  if (text == "false") return false;
  if (text == "null" || text == "~") return nullptr;
  std::int64_t integer = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
  if (ec == std::errc() && end == text.data() + text.size()) return integer;
  // A number as YAML writes one ("1.5", "-2e3"); strtod alone would also take "nan" and "0x1p3".
  if (!text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-' || text[0] == '.')) {
    char* stop = nullptr;
    const double number = std::strtod(text.c_str(), &stop);
    if (stop == text.c_str() + text.size()) return number;
  }
  return text;
}

DeclareStep parse_declare(StepSource in, bool remove) {
  auto& r = in.r;
  DeclareStep step;
  step.line = line_of(in.node);
  step.remove = remove;
  step.actor = parse_actor(r, "to", in.ctx);
  if (remove) {
    step.identifier = r.get_required<std::string>("undeclare");
  } else {
    auto declaration = r.node("declare");
    if (!declaration.IsMap()) r.fail(declaration, "must be a map: Type, Identifier, Payload", "declare");
    auto json = yaml_to_json(r, declaration, 1);
    auto identifier = json.find("Identifier");
    if (identifier == json.end() || !identifier->is_string() || identifier->get<std::string>().empty()) {
      r.fail(declaration, "a declaration has an Identifier (a string)", "declare");
    }
    step.identifier = identifier->get<std::string>();
    step.declaration_json = json.dump();
    step.assign = r.get("assign", true);
  }
  refuse_override(r);
  return step;
}

DeclarativeSyncStep parse_declarative_sync(StepSource in) {
  auto& r = in.r;
  DeclarativeSyncStep step;
  step.line = line_of(in.node);
  const auto mode = r.get_required<std::string>("declarative_sync");
  if (mode != "full" && mode != "command") {
    r.fail(r.node("declarative_sync"), "must be full or command", "declarative_sync");
  }
  step.on_command = mode == "command";
  step.actor = parse_actor(r, "as", in.ctx);
  step.save = r.get<std::string>("save", "");
  step.malformed_status = r.get("malformed_status", false);
  refuse_override(r);
  step.expect = parse_expect(r, in.file, in.path, Expecting::declarative, in.ctx);
  remember_save(step.save, in.ctx);
  return step;
}

Step parse_step(const YAML::Node& node, const std::string& file, const std::string& path, CaseContext& ctx);

ParallelStep parse_parallel(StepSource in) {
  auto& r = in.r;
  ParallelStep step;
  step.line = line_of(in.node);
  auto list = r.node("parallel");
  if (!list.IsSequence() || list.size() < 2) r.fail(list, "must be a list of at least two steps", "parallel");
  step.interleave = r.get("interleave", false);
  if (r.has("jitter")) {
    step.jitter = parse_duration(r, "jitter", std::chrono::milliseconds(0), kMaxJitter);
    if (step.interleave) r.fail(r.node("jitter"), "interleave runs in lockstep: it has no jitter", "jitter");
  }
  std::set<std::string> actors;
  for (std::size_t i = 0; i < list.size(); ++i) {
    // Checked before parsing the sub-step, so that parallel nested in parallel is refused at
    // the first level instead of recursing as deep as the YAML goes.
    const YAML::Node item = list[i];
    if (item.IsMap() && (item["parallel"] || item["enqueue"] || item["enrollment_profile"] || item["expect_push"] ||
                         item["expect_no_push"] || item["expect_pushes"] || item["apns"] || item["declare"] ||
                         item["undeclare"] || item["declarative_sync"])) {
      r.fail(item, "a parallel step holds checkin, report or series steps", "parallel");
    }
    auto sub = parse_step(item, in.file, fmt::format("{}.parallel[{}]", in.path, i), in.ctx);
    if (step.interleave && !std::holds_alternative<SeriesStep>(sub.kind)) {
      r.fail(list[i], "interleave runs series only", "parallel");
    }
    if (!actors.insert(sub.actor()).second) {
      r.fail(list[i], "'" + sub.actor() + "' appears twice: each parallel step is another client", "parallel");
    }
    step.steps.push_back(std::move(sub));
  }
  return step;
}

Step parse_step(const YAML::Node& node, const std::string& file, const std::string& path, CaseContext& ctx) {
  MapReader r(node, file, path);
  int actions = 0;
  for (const char* action : {"checkin", "report", "enqueue", "series", "parallel", "enrollment_profile", "expect_push",
                             "expect_no_push", "expect_pushes", "apns", "declare", "undeclare", "declarative_sync"}) {
    actions += r.has(action) ? 1 : 0;
  }
  if (r.has("raw")) {
    r.fail(r.node("raw"),
           "raw steps are gone: a checkin or report step with a fault (pad_to, cut_after, "
           "replace_with) sends a message with exactly one thing wrong",
           "raw");
  }
  if (actions != 1) {
    r.fail(node,
           "a step has exactly one of checkin, report, enqueue, series, parallel, enrollment_profile, expect_push, "
           "expect_no_push, expect_pushes, apns, declare, undeclare, declarative_sync");
  }
  StepSource in{r, node, file, path, ctx};
  Step step;
  if (r.has("parallel"))
    step.kind = parse_parallel(in);
  else if (r.has("checkin"))
    step.kind = parse_check_in(in);
  else if (r.has("report"))
    step.kind = parse_report(in);
  else if (r.has("enqueue"))
    step.kind = parse_enqueue(in);
  else if (r.has("enrollment_profile"))
    step.kind = parse_enrollment_profile(in);
  else if (r.has("expect_push"))
    step.kind = parse_push(in, PushWatch::one);
  else if (r.has("expect_no_push"))
    step.kind = parse_push(in, PushWatch::none);
  else if (r.has("expect_pushes"))
    step.kind = parse_push(in, PushWatch::at_most);
  else if (r.has("apns"))
    step.kind = parse_apns(in);
  else if (r.has("declare"))
    step.kind = parse_declare(in, false);
  else if (r.has("undeclare"))
    step.kind = parse_declare(in, true);
  else if (r.has("declarative_sync"))
    step.kind = parse_declarative_sync(in);
  else
    step.kind = parse_series(in);
  r.finish();
  return step;
}

}  // namespace

int Step::line() const {
  return std::visit([](const auto& s) { return s.line; }, kind);
}

const std::string& Step::actor() const {
  static const std::string kNone;
  return std::visit(
      [](const auto& s) -> const std::string& {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, ParallelStep>)
          return kNone;
        else
          return s.actor;
      },
      kind);
}

const std::string& Step::identity_of() const {
  static const std::string kNone;
  return std::visit(
      [](const auto& s) -> const std::string& {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, CheckInStep> || std::is_same_v<S, ReportStep> ||
                      std::is_same_v<S, SeriesStep>) {
          return s.identity_of;
        } else {
          return kNone;
        }
      },
      kind);
}

bool Step::watches_pushes() const {
  return std::holds_alternative<PushStep>(kind) || std::holds_alternative<ApnsStep>(kind);
}

bool Step::faulted() const {
  return std::visit(
      [](const auto& s) {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, CheckInStep> || std::is_same_v<S, ReportStep>) {
          return !s.override_keys.empty() || !s.fault.empty();
        } else if constexpr (std::is_same_v<S, ParallelStep>) {
          return std::any_of(s.steps.begin(), s.steps.end(), [](const Step& sub) { return sub.faulted(); });
        } else {
          return false;
        }
      },
      kind);
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

std::map<std::string, Level> RuleCatalog::levels() const {
  std::map<std::string, Level> out;
  for (const auto& [id, rule] : rules) out[id] = rule.level;
  return out;
}

RuleCatalog load_rules(const std::filesystem::path& file) {
  return load_rules_text(read_spec_file(file), file.string());
}

RuleCatalog load_rules_text(std::string_view yaml, const std::string& name) {
  auto root = parse_yaml(std::string(yaml), name);
  MapReader top(root, name, "");
  check_schema_version(top);
  RuleCatalog catalog;
  if (auto seed = top.node("seed")) {
    MapReader article(seed, name, "seed");
    catalog.seed = SeedArticle{article.get_required<std::string>("title"), article.get_required<std::string>("url")};
    article.finish();
  }
  auto list = top.required("rules");
  if (!list.IsSequence()) top.fail(list, "must be a list", "rules");
  for (std::size_t i = 0; i < list.size(); ++i) {
    MapReader r(list[i], name, fmt::format("rules[{}]", i));
    RuleSpec rule;
    rule.id = r.get_required<std::string>("id");
    if (!protocol::is_known_rule(rule.id))
      r.fail(r.node("id"), "'" + rule.id + "' is not a rule id of the catalog", "id");
    if (catalog.rules.count(rule.id)) r.fail(r.node("id"), "duplicate rule id '" + rule.id + "'", "id");
    rule.level = parse_level(r, "level");
    rule.summary = r.get_required<std::string>("summary");
    rule.apple = r.get<std::string>("apple", "");
    rule.source = r.get_required<std::string>("source");
    rule.grounding = r.get<std::string>("grounding", "apple");
    if (rule.grounding != "apple" && rule.grounding != "http") {
      r.fail(r.node("grounding"), "must be apple or http", "grounding");
    }
    if (rule.grounding == "apple" && rule.apple.empty())
      r.fail(list[i], "a rule grounded in Apple's text quotes it in 'apple'");
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
  return load_case_text(read_spec_file(file), file.string(), id, rules);
}

Case load_case_text(std::string_view yaml, const std::string& name, const std::string& id, const RuleCatalog& rules) {
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
    if (req == "enqueue")
      c.requirements.push_back(Requirement::enqueue);
    else if (req == "managed_network_user")
      c.requirements.push_back(Requirement::managed_network_user);
    else if (req == "enrollment")
      c.requirements.push_back(Requirement::enrollment);
    else if (req == "push")
      c.requirements.push_back(Requirement::push);
    else if (req == "declarations")
      c.requirements.push_back(Requirement::declarations);
    else
      top.fail(top.node("requires"),
               "unknown requirement '" + req + "' (enqueue, managed_network_user, enrollment, push, declarations)",
               "requires");
  }
  c.enroll = top.get("enroll", true);
  c.rounds = top.get("rounds", 1);
  if (c.rounds < 1 || c.rounds > kMaxRounds) {
    top.fail(top.node("rounds"), fmt::format("must be between 1 and {}", kMaxRounds), "rounds");
  }

  CaseContext ctx{rules, c.rules, {}, {}};
  auto devices = top.required("devices");
  if (!devices.IsSequence() || devices.size() == 0) top.fail(devices, "must be a non-empty list", "devices");
  for (std::size_t i = 0; i < devices.size(); ++i) {
    MapReader d(devices[i], name, fmt::format("devices[{}]", i));
    DeviceSpec device{d.get_required<std::string>("name"), {}, false};
    if (d.has("identity")) {
      if (d.get_required<std::string>("identity") != "scep") d.fail(d.node("identity"), "must be scep", "identity");
      device.scep = true;
    }
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
        if (kind == "local")
          user.kind = emulator::UserKind::local;
        else if (kind == "network")
          user.kind = emulator::UserKind::network;
        else
          u.fail(u.node("kind"), "must be local or network", "kind");
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
  // A case that watches pushes needs the fake APNs, said or not.
  const bool watches = std::any_of(c.steps.begin(), c.steps.end(), [](const Step& s) { return s.watches_pushes(); });
  if (watches && std::find(c.requirements.begin(), c.requirements.end(), Requirement::push) == c.requirements.end()) {
    c.requirements.push_back(Requirement::push);
  }
  const bool declares = std::any_of(c.steps.begin(), c.steps.end(),
                                    [](const Step& s) { return std::holds_alternative<DeclareStep>(s.kind); });
  if (declares &&
      std::find(c.requirements.begin(), c.requirements.end(), Requirement::declarations) == c.requirements.end()) {
    c.requirements.push_back(Requirement::declarations);
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

}  // namespace mdmc::scenario
