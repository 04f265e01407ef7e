#pragma once
// The tables tools/gen_declarative_schema.py derives from Apple's declarative schema. Private to
// harness/protocol: declarative.cpp reads them. Keys are rows of the same shape as the command
// tables' (detail/schema_tables.hpp), with the same flags.
#include <array>
#include <cstdint>
#include <string_view>

#include "harness/protocol/declarative.hpp"
#include "harness/protocol/detail/schema_tables.hpp"

namespace mdmc::protocol::detail {

struct DeclarationSchema {
  std::string_view type;
  DeclarationGroup group;
  std::uint8_t channels;  // kDeviceChannel | kUserChannel; 0: not on macOS
  std::uint16_t first;    // its Payload keys in kDeclarativeKeys
  std::uint16_t count;
};

// A JSON document of the protocol (TokensResponse, DeclarationItemsResponse, StatusReport), or
// DeclarationBase, the keys every declaration has.
struct DocumentSchema {
  std::string_view name;
  std::uint16_t first;
  std::uint16_t count;
};

struct StatusItemSchema {
  std::string_view name;  // "management.declarations": also its path in StatusItems
  std::uint8_t channels;
  std::uint16_t key;  // the item's value, a key named as the item
};

using G = DeclarationGroup;
#include "harness/protocol/declarative_schema_data.inc"

}  // namespace mdmc::protocol::detail
