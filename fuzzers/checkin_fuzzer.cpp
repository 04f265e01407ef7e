// Check-in plist bytes to the message model: whatever the bytes, parsing and decoding end in
// a value or an error, within the limits, and a decoded message survives a write and re-read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "harness/protocol/messages.hpp"

namespace {

// Small enough that libFuzzer explores breadth, not size; depth and nodes as for a server.
const mdmc::plist::Limits kLimits{256 * 1024, 64, 20'000};

[[noreturn]] void invariant_broken() { std::abort(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = mdmc::plist::parse(bytes, kLimits);
  if (!parsed) return 0;

  auto check_in = mdmc::protocol::decode_check_in(*parsed);
  auto report = mdmc::protocol::decode_report(*parsed);
  auto command = mdmc::protocol::decode_command(*parsed);
  (void)report;
  (void)command;

  if (const auto* message = check_in ? &*check_in : nullptr) {
    // What the reference server stores must be what it read: the message written as XML
    // parses back to the same value and decodes to the same channel.
    auto again = mdmc::plist::parse(mdmc::plist::to_xml(mdmc::plist::Value(message->fields)), kLimits);
    if (!again) invariant_broken();
    auto redecoded = mdmc::protocol::decode_check_in(*again);
    const auto* second = redecoded ? &*redecoded : nullptr;
    if (!second || second->channel != message->channel || second->type != message->type) invariant_broken();
  }
  return 0;
}
