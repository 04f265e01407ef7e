#include "harness/fuzz/diagnosis.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "harness/fuzz/detail/parse_cache.hpp"
#include "harness/fuzz/detail/schema_keys.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/declarative.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::fuzz {
namespace {

// What servers are known to trip on; below these a value is ordinary.
constexpr std::size_t kLongString = 1024;
constexpr int kDeepNesting = 8;
constexpr std::size_t kMaxNodesWalked = 20'000;

std::string a_type(plist::Type type) {
  auto name = plist::type_name(type);
  bool vowel = !name.empty() && std::string_view("aeiou").find(name.front()) != std::string_view::npos;
  return fmt::format("{} {}", vowel ? "an" : "a", name);
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// The values anywhere in the tree that servers mishandle; bounded by kMaxNodesWalked.
struct Walker {
  InputDiagnosis* out;
  bool binary;
  std::size_t nodes = 0;
  std::set<std::string> seen_kinds;  // one problem per kind from the walk: enough to name it

  void add(std::string path, std::string kind, std::string what) {
    if (out->problems.size() >= kMaxProblems || !seen_kinds.insert(kind).second) return;
    out->problems.push_back({std::move(path), std::move(kind), std::move(what)});
  }

  int walk(const plist::Value& v, const std::string& path, int depth) {
    if (++nodes > kMaxNodesWalked) return depth;
    int deepest = depth;
    if (const auto* s = v.as_string()) {
      if (s->size() > kLongString) add(path, "long", fmt::format("is a {}-character string", s->size()));
      if (!is_ascii(*s)) add(path, "non-ascii", "holds characters outside ASCII");
    } else if (const auto* i = v.as_integer()) {
      if (*i < 0) add(path, "negative", fmt::format("is a negative integer ({})", *i));
    } else if (v.as_date() && binary) {
      add(path, "binary-date", "is a date in a binary plist");
    } else if (const auto* a = v.as_array()) {
      for (std::size_t k = 0; k < a->size(); ++k)
        deepest = std::max(deepest, walk((*a)[k], fmt::format("{}[{}]", path, k), depth + 1));
    } else if (const auto* d = v.as_dict()) {
      for (const auto& [key, child] : *d)
        deepest = std::max(deepest, walk(child, path.empty() ? key : path + "." + key, depth + 1));
    }
    return deepest;
  }
};

// An XML plist with more <key> elements than its parsed dicts hold has a key twice in a dict.
std::size_t count_dict_keys(const plist::Value& v, std::size_t budget) {
  std::size_t n = 0;
  if (const auto* a = v.as_array()) {
    for (const auto& item : *a) {
      if (n > budget) break;
      n += count_dict_keys(item, budget);
    }
  } else if (const auto* d = v.as_dict()) {
    n += d->size();
    for (const auto& [key, child] : *d) {
      if (n > budget) break;
      n += count_dict_keys(child, budget);
    }
  }
  return n;
}

// Which problems say most about an input (InputDiagnosis::problems): lower first.
int rank(std::string_view kind) {
  if (kind == "not-plist" || kind == "not-dict" || kind == "no-kind") return 0;
  if (kind == "type") return 1;
  if (kind == "missing") return 3;
  if (kind == "unknown-key") return 4;
  if (kind == "other-device" || kind == "other-user") return 5;
  return 2;  // the values servers trip on
}

bool real_endpoint(std::string_view endpoint) {
  if (endpoint == protocol::kTokensEndpoint || endpoint == protocol::kDeclarationItemsEndpoint ||
      endpoint == protocol::kStatusEndpoint)
    return true;
  constexpr std::string_view kPrefix = "declaration/";
  if (endpoint.substr(0, kPrefix.size()) != kPrefix) return false;
  const auto rest = endpoint.substr(kPrefix.size());
  const auto slash = rest.find('/');
  return slash != std::string_view::npos && protocol::declaration_group_from_name(rest.substr(0, slash)) &&
         slash + 1 < rest.size() && rest.find('/', slash + 1) == std::string_view::npos;
}

// A DeclarativeManagement check-in's own values: its Endpoint, and at `status` the report in
// Data, held to Apple's declarative schema (the check-in's keys are held like any other's).
void diagnose_declarative(const plist::Dict& dict, InputDiagnosis& d) {
  auto at = dict.find("Endpoint");
  const std::string* endpoint = at == dict.end() ? nullptr : at->second.as_string();
  if (endpoint && !real_endpoint(*endpoint)) {
    d.problems.push_back(
        {"Endpoint", "endpoint", fmt::format("is '{}', not an endpoint of Apple's schema", endpoint->substr(0, 60))});
  }
  if (!endpoint || *endpoint != protocol::kStatusEndpoint) return;
  auto data = dict.find("Data");
  if (data == dict.end()) {
    d.problems.push_back({"Data", "missing", "is missing (the status endpoint's report)"});
    return;
  }
  const auto* bytes = data->second.as_data();
  if (!bytes) return;  // its type is said already
  protocol::JsonLimits limits;
  limits.max_bytes = 16 * 1024 * 1024;
  limits.max_depth = 256;
  limits.max_values = 1'000'000;
  auto report = protocol::parse_bounded_json(bytes->bytes, limits);
  if (!report) {
    d.problems.push_back({"Data", "not-json", "is not JSON (" + report.error().message.substr(0, 80) + ")"});
    return;
  }
  auto problems = protocol::problems_in_status_report(*report);
  if (!problems.empty()) {
    const auto& p = problems.front();
    d.problems.push_back(
        {"Data" + (p.key_path.empty() ? "" : "." + p.key_path), "status-report",
         "holds a status report whose " + (p.key_path.empty() ? "document" : p.key_path) + " " + p.problem});
  }
}

std::size_t count_occurrences(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace

plist::Limits fuzz_input_limits() {
  plist::Limits limits;
  limits.max_bytes = 16 * 1024 * 1024;
  limits.max_depth = 256;
  limits.max_nodes = 1'000'000;
  return limits;
}

InputDiagnosis diagnose_input(std::string_view input, std::string_view udid, std::string_view user_id) {
  InputDiagnosis d;
  d.bytes = input.size();
  const auto cached = detail::parse_input(input);
  const auto& parsed = *cached;
  if (!parsed) {
    d.kind = "bytes";
    d.problems.push_back({"", "not-plist", fmt::format("bytes that are no plist ({} bytes)", input.size())});
    return d;
  }
  d.is_plist = true;
  d.binary = plist::sniff(input) == plist::Format::binary;
  const auto* dict = parsed->as_dict();
  if (!dict) {
    d.kind = std::string(plist::type_name(parsed->type()));
    d.problems.push_back({"", "not-dict", fmt::format("a plist {}, not a dict", d.kind)});
    return d;
  }
  const auto* type = parsed->find("MessageType");
  const auto* status = parsed->find("Status");
  std::string schema_kind;  // the schema the keys are held against
  if (type && !status) {
    const auto* name = type->as_string();
    if (name && protocol::message_type_from_name(*name)) {
      d.kind = schema_kind = *name;
    } else {
      d.kind = "?MessageType";
      d.problems.push_back({"MessageType", name ? "value" : "type",
                            name ? fmt::format("is '{}', not a check-in Apple's schema has", name->substr(0, 40))
                                 : fmt::format("is {} (expected string)", a_type(type->type()))});
    }
  } else if (status && !type) {
    const auto* name = status->as_string();
    schema_kind = "report";
    if (name && protocol::status_from_name(*name)) {
      d.kind = *name;
    } else {
      d.kind = "?Status";
      d.problems.push_back({"Status", name ? "value" : "type",
                            name ? fmt::format("is '{}', not a status a client sends", name->substr(0, 40))
                                 : fmt::format("is {} (expected string)", a_type(status->type()))});
    }
  } else {
    d.kind = type ? "MessageType+Status" : "dict";
    d.problems.push_back(
        {"", "no-kind", type ? "has both MessageType and Status" : "has neither MessageType nor Status"});
  }

  d.schema_kind = schema_kind;
  if (!schema_kind.empty()) {
    // Types and presence first: what the schema says outright.
    for (const auto& [key, value] : *dict) {
      auto fact = detail::key_fact(schema_kind, key);
      if (fact && value.type() != fact->type && key != "MessageType" && key != "Status") {
        d.problems.push_back({key, "type",
                              fmt::format("is {} (expected {})", a_type(value.type()), plist::type_name(fact->type)),
                              fact->type});
      }
    }
    const bool user_message = dict->count("UserID") > 0;
    auto check_required = [&](const detail::KeyFact& fact) {
      const bool applies = user_message ? fact.user_channel : fact.device_channel;
      if (fact.message_type == schema_kind && fact.required && applies && !dict->count(fact.key))
        d.problems.push_back({std::string(fact.key), "missing", "is missing (required)"});
    };
    for (const auto& fact : detail::kCheckInKeys) check_required(fact);
    for (const auto& fact : detail::kReportKeys) check_required(fact);
    for (const auto& [key, value] : *dict) {
      if (detail::key_fact(schema_kind, key)) continue;
      // A key of another message, of another type than Apple's schema gives it there: its
      // type is what is odd about it (a server reads a key by name, whatever the message).
      const std::string_view name = key;  // a structured binding cannot be captured (clang 14)
      auto elsewhere = std::find_if(std::begin(detail::kCheckInKeys), std::end(detail::kCheckInKeys),
                                    [&](const detail::KeyFact& f) { return f.key == name; });
      if (elsewhere != std::end(detail::kCheckInKeys) && elsewhere->type != value.type()) {
        d.problems.insert(d.problems.begin(),
                          {key, "type",
                           fmt::format("is {} (expected {}, as Apple's schema has it in {})", a_type(value.type()),
                                       plist::type_name(elsewhere->type), elsewhere->message_type),
                           elsewhere->type});
        continue;
      }
      d.problems.push_back({key, "unknown-key",
                            fmt::format("is not a key of {}", schema_kind == "report" ? "a command report" : d.kind)});
    }
  }
  if (schema_kind == "DeclarativeManagement") diagnose_declarative(*dict, d);
  if (schema_kind.empty() || d.kind == "?MessageType") {
    // A message of no known kind: its keys are held to their types wherever Apple's schema has
    // them (a server reads UDID as a string whatever the MessageType).
    for (const auto& [key, value] : *dict) {
      const std::string_view name = key;  // a structured binding cannot be captured (clang 14)
      auto fact = std::find_if(std::begin(detail::kCheckInKeys), std::end(detail::kCheckInKeys),
                               [&](const detail::KeyFact& f) { return f.key == name; });
      if (fact != std::end(detail::kCheckInKeys) && fact->type != value.type() && name != "MessageType" &&
          name != "Status") {
        d.problems.push_back({key, "type",
                              fmt::format("is {} (expected {}, as Apple's schema has it in {})", a_type(value.type()),
                                          plist::type_name(fact->type), fact->message_type),
                              fact->type});
      }
    }
  }
  // Whose message it is.
  if (const auto* u = parsed->find("UDID"); u && u->as_string()) {
    if (u->as_string()->empty())
      d.problems.push_back({"UDID", "empty", "is an empty string"});
    else if (*u->as_string() != udid)
      d.problems.push_back({"UDID", "other-device", "names a device that never enrolled"});
  }
  if (const auto* u = parsed->find("UserID"); u && u->as_string() && *u->as_string() != user_id) {
    d.problems.push_back({"UserID", u->as_string()->empty() ? "empty" : "other-user",
                          u->as_string()->empty() ? "is an empty string" : "names a user that never enrolled"});
  }
  if (!d.binary) {
    auto keys = count_occurrences(input, "<key>");
    if (keys > count_dict_keys(*parsed, keys))
      d.problems.push_back({"", "duplicate-key", "has a key twice in one dict"});
  }
  Walker walker{&d, d.binary, 0, {}};
  for (const auto& p : d.problems) walker.seen_kinds.insert(p.kind);
  int depth = walker.walk(*parsed, "", 1);
  if (depth >= kDeepNesting && d.problems.size() < kMaxProblems)
    d.problems.push_back({"", "deep", fmt::format("has containers nested {} deep", depth)});
  std::stable_sort(d.problems.begin(), d.problems.end(),
                   [](const InputProblem& a, const InputProblem& b) { return rank(a.kind) < rank(b.kind); });
  if (d.problems.size() > kMaxProblems) d.problems.resize(kMaxProblems);
  return d;
}

std::vector<Repair> schema_repairs(const InputDiagnosis& diagnosis, std::string_view udid, std::string_view user_id) {
  std::vector<Repair> repairs;
  for (const auto& p : diagnosis.problems) {
    if (p.kind != "type" || !p.expected || p.path.empty() || p.path.find_first_of(".[") != std::string::npos) continue;
    std::optional<plist::Value> plain;
    switch (*p.expected) {
      case plist::Type::string:
        plain = plist::Value(std::string(p.path == "UDID" ? udid : p.path == "UserID" ? user_id : "x"));
        break;
      case plist::Type::boolean: plain = plist::Value(true); break;
      case plist::Type::integer: plain = plist::Value(std::int64_t{1}); break;
      case plist::Type::real: plain = plist::Value(1.0); break;
      case plist::Type::data: plain = plist::Value(plist::Data{"x"}); break;
      case plist::Type::date: plain = plist::Value(plist::Date{}); break;
      case plist::Type::array: plain = plist::Value(plist::Array{}); break;
      case plist::Type::dict: plain = plist::Value(plist::Dict{}); break;
      case plist::Type::uid: break;
    }
    if (plain) repairs.push_back({p.path, std::move(*plain)});
  }
  return repairs;
}

std::string InputDiagnosis::primary() const {
  if (problems.empty()) return "-";
  const auto& p = problems.front();
  if (rank(p.kind) != 2) return p.path + ":" + p.kind;
  // An odd value counts by the message's own key it is under, wherever inside it sits; under a
  // key the message does not have, anywhere ("*"): a negative integer is one finding, not one
  // per place a mutation put it.
  const std::string top = p.path.substr(0, p.path.find_first_of(".["));
  const bool own_key = !top.empty() && detail::key_fact(schema_kind, top).has_value();
  return (own_key ? top : std::string("*")) + ":" + p.kind;
}

std::string InputDiagnosis::phrase() const {
  if (!is_plist) return problems.front().what;
  if (kind == "array" || kind == "string" || kind == "integer" || kind == "real" || kind == "boolean" ||
      kind == "data" || kind == "date" || kind == "uid")
    return problems.empty() ? fmt::format("a plist {}", kind) : problems.front().what;
  std::string subject = kind == "?MessageType"         ? "a check-in"
                        : kind == "?Status"            ? "a command report"
                        : kind == "dict"               ? "a dict"
                        : kind == "MessageType+Status" ? "a dict"
                                                       : kind;
  if (problems.empty()) return fmt::format("a well-formed {}", subject);
  std::string out = subject;
  const std::size_t shown = std::min<std::size_t>(problems.size(), 2);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& p = problems[i];
    out += i == 0 ? " " : ", and ";
    out += p.path.empty() ? "that " + p.what : fmt::format("whose {} {}", p.path, p.what);
  }
  if (problems.size() > shown) out += fmt::format(" (and {} more)", problems.size() - shown);
  return out;
}

std::string InputDiagnosis::key_paths() const {
  std::set<std::string> parts;
  for (const auto& p : problems) parts.insert(p.path + ":" + p.kind);
  if (parts.empty()) return "-";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace mdmc::fuzz
