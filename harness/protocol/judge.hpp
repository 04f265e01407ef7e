#pragma once
// What answer to what input breaks ROB-MALFORMED, ROB-UNKNOWN-TYPE and CMD-SHAPE, written once
// for everything that checks them: the network fuzzer's oracles judge each answer with these,
// and the emulator's series reads every command answer with read_command_answer, whose verdict
// the scenario runner records as CMD-SHAPE. Each breach is keyed by its rule's id (rules.hpp).
// No I/O; nothing here throws.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "harness/plist/value.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::protocol {

// A rule an answer broke, and how, in words.
struct Breach {
  std::string_view rule;  // a protocol::rule constant
  std::string detail;     // "HTTP 200 to 12 bytes that are not a plist, sent as a report"
};

// ROB-MALFORMED: a body that is no plist must be refused. `status` accepted it when 2xx. A
// plist beyond the decode limits is not malformed (ROB-OVERSIZE is about those). `sent_as`:
// "check-in" or "report".
std::optional<Breach> judge_malformed_answer(int status, bool input_is_plist, bool input_over_limits,
                                             std::size_t input_bytes, std::string_view sent_as);

// ROB-UNKNOWN-TYPE: a message with a MessageType or Status Apple does not define must be
// refused. `unknown_key` is the key whose value is unknown ("MessageType" or "Status"), empty
// when both are known.
std::optional<Breach> judge_unknown_type_answer(int status, std::string_view unknown_key);

// How the body of a 200 answer to a command report reads.
enum class CommandAnswerKind {
  none,         // a zero-length body: nothing more to do
  empty_dict,   // an empty <dict/> in place of the zero-length body
  command,      // a dict with CommandUUID and Command.RequestType
  not_plist,    // bytes that are no plist (or one beyond the limits)
  not_command,  // a plist that is no command
};

struct CommandAnswer {
  CommandAnswerKind kind = CommandAnswerKind::none;
  std::optional<Command> command;  // kind command
  bool names_command = false;      // not_command: a dict with CommandUUID, so meant as one
  std::string problem;             // not_plist, not_command: what is wrong, in words
};

// The body read within `limits`.
CommandAnswer read_command_answer(std::string_view body, const plist::Limits& limits);

// CMD-SHAPE: every command is a dict with CommandUUID and Command.RequestType. A 200 answer to
// a report whose body is neither a zero-length body nor a command breaks it. `where` names the
// report answered: "Idle (report)".
std::optional<Breach> judge_command_answer(int status, bool answers_report, std::size_t body_bytes,
                                           const CommandAnswer& answer, std::string_view where);

}  // namespace mdmc::protocol
