#pragma once
// The types of Apple's device-management schema (its docs/schema.md "Type Values"), which every
// table generated from it is made of (protocol's command tables, enroll's profile tables), and
// their names as problems quote them, so that a message compares like with like.
#include <cstdint>
#include <string_view>

#include "harness/plist/value.hpp"

namespace mdmc::protocol {

enum class SchemaType : std::uint8_t { string, integer, real, boolean, data, date, array, dictionary, any };

// "<string>", "<integer>", ...: the schema's words.
std::string_view schema_type_name(SchemaType type);
// The schema's word for what a plist value is ("<dictionary>" for a dict).
std::string_view value_type_name(const plist::Value& value);

}  // namespace mdmc::protocol
