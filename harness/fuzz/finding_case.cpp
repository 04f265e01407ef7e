// A finding as a regression case (finding.hpp: reproducer_as_case).
#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include "harness/base/bytes.hpp"
#include "harness/base/utf8.hpp"
#include "harness/fuzz/finding.hpp"
#include "harness/protocol/rules.hpp"

namespace mdmc::fuzz {
namespace {

// What the answer to the input must be for the oracle that fired not to fire, and the rule
// that says so: a 5xx, a reset or a stall breaks ROB-MALFORMED (a client's bad input gets a
// 4xx); the rule oracles are their rules.
struct Demand {
  std::string_view rule;
  std::vector<std::string> statuses;
};

Demand demand_for(std::string_view oracle) {
  if (oracle == protocol::rule::kRobUnknownType) return {protocol::rule::kRobUnknownType, {"4xx"}};
  if (oracle == protocol::rule::kRobMalformed) return {protocol::rule::kRobMalformed, {"4xx"}};
  if (oracle == protocol::rule::kCmdShape) return {protocol::rule::kCmdShape, {"2xx"}};
  return {protocol::rule::kRobMalformed, {"2xx", "3xx", "4xx"}};
}

std::string with_placeholders(std::string body, const Reproducer& r) {
  auto swap = [&](const std::string& from, std::string_view to) {
    if (from.empty()) return;
    for (auto at = body.find(from); at != std::string::npos; at = body.find(from, at + to.size()))
      body.replace(at, from.size(), to);
  };
  swap(r.udid, "${udid}");
  swap(r.user_id, "${user_id}");
  return body;
}

}  // namespace

std::string reproducer_as_case(const Reproducer& r, std::string_view hash) {
  const Demand demand = demand_for(r.oracle);
  const std::string& body = r.request.body;
  bool names_user = !r.user_id.empty() && body.find(r.user_id) != std::string::npos;
  for (const auto& input : r.history)
    names_user = names_user || (!r.user_id.empty() && input.find(r.user_id) != std::string::npos);
  const std::string actor = names_user ? "mac/alice" : "mac";
  const std::string what = r.input_phrase.empty() ? r.detail : r.input_phrase;

  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "schema_version" << YAML::Value << 1;
  out << YAML::Key << "title" << YAML::Value
      << base::sanitize_utf8(fmt::format("Fuzzing finding {}: {} ({})", hash, what, r.oracle));
  out << YAML::Key << "rules" << YAML::Flow << YAML::BeginSeq << std::string(demand.rule)
      << std::string(protocol::rule::kRobAlive) << YAML::EndSeq;
  out << YAML::Key << "apple" << YAML::Value
      << "[http] RFC 9110 15.5 and 15.6: a 4xx says the client erred, a 5xx that the server failed; and after any "
         "input the server still serves its devices";
  out << YAML::Key << "tags" << YAML::Flow << YAML::BeginSeq << "robustness"
      << "fuzz-regression" << YAML::EndSeq;
  out << YAML::Key << "devices" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << "mac";
  if (names_user) {
    out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::Flow << YAML::BeginMap << YAML::Key << "name"
        << YAML::Value << "alice" << YAML::EndMap << YAML::EndSeq;
  }
  out << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
  auto send_as_is = [&](const std::string& input, bool check_in) {
    out << YAML::Key << (check_in ? "checkin" : "report") << YAML::Value << (check_in ? "TokenUpdate" : "Idle");
    out << YAML::Key << "as" << YAML::Value << actor;
    out << YAML::Key << "fault" << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (base::is_valid_utf8(input) && input.find('\0') == std::string::npos) {
      out << YAML::Key << "replace_with" << YAML::Value << YAML::DoubleQuoted << with_placeholders(input, r);
    } else {
      out << YAML::Key << "replace_with_base64" << YAML::Value << base::base64_encode(input);
    }
    out << YAML::EndMap;
  };
  // A finding that needed the inputs before it (not minimised) gets them first.
  for (const auto& input : r.history) {
    out << YAML::BeginMap;
    send_as_is(input, endpoint_for(input) == Endpoint::check_in);
    out << YAML::EndMap;
  }
  // The finding's input, on the endpoint it went to.
  out << YAML::BeginMap;
  send_as_is(body, r.endpoint == "check_in");
  out << YAML::Key << "expect" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "status" << YAML::Value
      << YAML::Flow << YAML::BeginSeq;
  for (const auto& s : demand.statuses) out << s;
  out << YAML::EndSeq << YAML::EndMap;
  out << YAML::EndMap;
  // Then the device's own Idle: the target still serves it.
  out << YAML::BeginMap << YAML::Key << "report" << YAML::Value << "Idle" << YAML::Key << "as" << YAML::Value << "mac";
  out << YAML::Key << "expect" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "rule" << YAML::Value
      << std::string(protocol::rule::kRobAlive) << YAML::Key << "status" << YAML::Value << YAML::Flow << YAML::BeginSeq
      << 200 << YAML::EndSeq << YAML::EndMap;
  out << YAML::EndMap;
  out << YAML::EndSeq << YAML::EndMap;
  std::string found = base::sanitize_utf8(r.detail.substr(0, 300));
  for (auto& c : found) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string header = fmt::format(
      "# Written by `mdmconform replay --as-case` from a fuzzing finding ({}).\n"
      "# Found: {}\n# Oracle: {}; {}\n",
      hash, found, r.oracle, r.minimised ? "minimised" : "as found (not minimised), after the inputs before it");
  return header + out.c_str() + "\n";
}

}  // namespace mdmc::fuzz
