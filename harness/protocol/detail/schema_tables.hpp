#pragma once
// The tables tools/gen_command_schema.py derives from Apple's schema, and the types they are
// made of. Private to harness/protocol: command_schema.cpp and configuration_profile.cpp read them.
#include <array>
#include <cstdint>
#include <string_view>

#include "harness/protocol/schema_types.hpp"

namespace mdmc::protocol::detail {

using protocol::SchemaType;

// SchemaKey::flags
inline constexpr std::uint8_t kRequired = 1;            // presence: required
inline constexpr std::uint8_t kOpen = 2;                // a dictionary that takes any key
inline constexpr std::uint8_t kNotOnMacOS = 4;          // the key's macOS block: n/a or removed
inline constexpr std::uint8_t kNotOnDeviceChannel = 8;  // narrower than its parent on macOS
inline constexpr std::uint8_t kNotOnUserChannel = 16;   // narrower than its parent on macOS

// One key of a Command dict, or the item type of an array. Sub-keys are kSchemaKeys[first,
// first + count): a dictionary's keys, or an array's item kinds (one, or several told apart by
// the key each pins with `fixed`).
struct SchemaKey {
  std::string_view name;
  SchemaType type;
  std::uint8_t flags;
  std::uint16_t first;
  std::uint16_t count;
  std::string_view fixed;  // the single value the schema allows for this string key, or empty
};

// SchemaCommand::channels: where macOS takes the command (0: not on macOS at all).
inline constexpr std::uint8_t kDeviceChannel = 1;
inline constexpr std::uint8_t kUserChannel = 2;

struct SchemaCommand {
  std::string_view request_type;
  std::uint8_t channels;
  std::uint16_t first;  // its Command keys, besides RequestType, in kSchemaKeys
  std::uint16_t count;
};

using T = SchemaType;
#include "harness/protocol/command_schema_data.inc"

}  // namespace mdmc::protocol::detail
