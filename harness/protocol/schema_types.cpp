#include "harness/protocol/schema_types.hpp"

namespace mdmc::protocol {

std::string_view schema_type_name(SchemaType type) {
  switch (type) {
    case SchemaType::string: return "<string>";
    case SchemaType::integer: return "<integer>";
    case SchemaType::real: return "<real>";
    case SchemaType::boolean: return "<boolean>";
    case SchemaType::data: return "<data>";
    case SchemaType::date: return "<date>";
    case SchemaType::array: return "<array>";
    case SchemaType::dictionary: return "<dictionary>";
    case SchemaType::any: return "<any>";
  }
  return "<?>";
}

std::string_view value_type_name(const plist::Value& value) {
  switch (value.type()) {
    case plist::Type::boolean: return "<boolean>";
    case plist::Type::integer: return "<integer>";
    case plist::Type::real: return "<real>";
    case plist::Type::string: return "<string>";
    case plist::Type::data: return "<data>";
    case plist::Type::date: return "<date>";
    case plist::Type::array: return "<array>";
    case plist::Type::dict: return "<dictionary>";
    case plist::Type::uid: return "<uid>";
  }
  return "<?>";
}

bool has_schema_type(const plist::Value& value, SchemaType type) {
  switch (type) {
    case SchemaType::string: return value.is(plist::Type::string);
    case SchemaType::integer: return value.is(plist::Type::integer);
    case SchemaType::real: return value.is(plist::Type::real) || value.is(plist::Type::integer);
    case SchemaType::boolean: return value.is(plist::Type::boolean);
    case SchemaType::data: return value.is(plist::Type::data);
    case SchemaType::date: return value.is(plist::Type::date);
    case SchemaType::array: return value.is(plist::Type::array);
    case SchemaType::dictionary: return value.is(plist::Type::dict);
    case SchemaType::any: return true;
  }
  return false;
}

}  // namespace mdmc::protocol
