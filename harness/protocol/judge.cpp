#include "harness/protocol/judge.hpp"

#include <fmt/format.h>

#include "harness/protocol/rules.hpp"

namespace mdmc::protocol {
namespace {

bool accepted(int status) { return status >= 200 && status < 300; }

}  // namespace

std::optional<Breach> judge_malformed_answer(int status, bool input_is_plist, bool input_over_limits,
                                             std::size_t input_bytes, std::string_view sent_as) {
  if (!accepted(status) || input_is_plist || input_over_limits) return std::nullopt;
  return Breach{rule::kRobMalformed,
                fmt::format("HTTP {} to {} bytes that are not a plist, sent as a {}", status, input_bytes, sent_as)};
}

std::optional<Breach> judge_unknown_type_answer(int status, std::string_view unknown_key) {
  if (!accepted(status) || unknown_key.empty()) return std::nullopt;
  return Breach{rule::kRobUnknownType, fmt::format("HTTP {} to a message with an unknown {}", status, unknown_key)};
}

CommandAnswer read_command_answer(std::string_view body, const plist::Limits& limits) {
  CommandAnswer out;
  if (body.empty()) return out;
  auto parsed = plist::parse(body, limits);
  if (!parsed) {
    out.kind = CommandAnswerKind::not_plist;
    out.problem = parsed.message();
    return out;
  }
  const auto* dict = parsed->as_dict();
  if (dict && dict->empty()) {
    out.kind = CommandAnswerKind::empty_dict;
    return out;
  }
  auto decoded = decode_command(*parsed);
  if (!decoded) {
    out.kind = CommandAnswerKind::not_command;
    out.names_command = dict && dict->count("CommandUUID");
    out.problem = decoded.message();
    return out;
  }
  out.kind = CommandAnswerKind::command;
  out.command = std::move(decoded).value();
  return out;
}

std::optional<Breach> judge_command_answer(int status, bool answers_report, std::size_t body_bytes,
                                           const CommandAnswer& answer, std::string_view where) {
  if (status != 200 || !answers_report) return std::nullopt;
  switch (answer.kind) {
    case CommandAnswerKind::none:
    case CommandAnswerKind::command: return std::nullopt;
    case CommandAnswerKind::not_command:
      if (answer.names_command) {
        return Breach{rule::kCmdShape,
                      fmt::format("a command without CommandUUID or Command.RequestType, answering a {}", where)};
      }
      break;
    case CommandAnswerKind::empty_dict:
    case CommandAnswerKind::not_plist: break;
  }
  return Breach{rule::kCmdShape, fmt::format("a {}-byte body that is no command, answering a {}", body_bytes, where)};
}

}  // namespace mdmc::protocol
