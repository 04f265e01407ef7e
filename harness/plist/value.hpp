#pragma once
// A property-list value type over libplist, for bytes nobody vouches for.
//
// mdmconform reads plists from servers under test and from fuzzers, so parsing never throws,
// never recurses without a bound, and never allocates without a cap: the limits are checked
// on the raw bytes before libplist sees them (libplist 2.2 has neither error codes nor a
// nesting limit of its own). Writing produces XML (what MDM clients send) or binary.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "harness/plist/error.hpp"

namespace mdmc::plist {

class Value;
using Array = std::vector<Value>;
// Sorted keys: libplist keeps insertion order, but protocol logic never depends on it, and a
// sorted map makes writing deterministic (reproducible corpora and reports).
using Dict = std::map<std::string, Value, std::less<>>;
struct Data {
  std::string bytes;  // raw bytes, not base64
  bool operator==(const Data&) const = default;
};
struct Date {
  double seconds_since_2001 = 0;  // Apple's epoch, 2001-01-01T00:00:00Z, as libplist stores it
  bool operator==(const Date&) const = default;
};
struct Uid {
  std::uint64_t value = 0;  // only in NSKeyedArchiver binaries; kept so nothing is lost
  bool operator==(const Uid&) const = default;
};

enum class Type { boolean, integer, real, string, data, date, array, dict, uid };
std::string_view type_name(Type type);

class Value {
 public:
  using Storage = std::variant<bool, std::int64_t, double, std::string, Data, Date, Array, Dict, Uid>;

  Value() : storage_(Dict{}) {}
  Value(bool b) : storage_(b) {}
  Value(int i) : storage_(std::int64_t{i}) {}
  Value(std::int64_t i) : storage_(i) {}
  Value(double d) : storage_(d) {}
  Value(const char* s) : storage_(std::string(s)) {}
  Value(std::string s) : storage_(std::move(s)) {}
  Value(Data d) : storage_(std::move(d)) {}
  Value(Date d) : storage_(d) {}
  Value(Array a) : storage_(std::move(a)) {}
  Value(Dict d) : storage_(std::move(d)) {}
  Value(Uid u) : storage_(u) {}

  Type type() const { return static_cast<Type>(storage_.index()); }
  bool is(Type t) const { return type() == t; }

  // Typed access: nullptr when the value is of another type.
  const bool* as_bool() const { return std::get_if<bool>(&storage_); }
  const std::int64_t* as_integer() const { return std::get_if<std::int64_t>(&storage_); }
  const double* as_real() const { return std::get_if<double>(&storage_); }
  const std::string* as_string() const { return std::get_if<std::string>(&storage_); }
  const Data* as_data() const { return std::get_if<Data>(&storage_); }
  const Date* as_date() const { return std::get_if<Date>(&storage_); }
  const Array* as_array() const { return std::get_if<Array>(&storage_); }
  const Dict* as_dict() const { return std::get_if<Dict>(&storage_); }
  Array* as_array() { return std::get_if<Array>(&storage_); }
  Dict* as_dict() { return std::get_if<Dict>(&storage_); }

  // Dict member lookup; nullptr when this is not a dict or the key is absent.
  const Value* find(std::string_view key) const;
  // Dict member of a given type, or nothing: the common "read a key the peer may have
  // omitted or mistyped" case.
  std::optional<std::string> string_at(std::string_view key) const;
  std::optional<bool> bool_at(std::string_view key) const;

  const Storage& storage() const { return storage_; }
  bool operator==(const Value&) const = default;

 private:
  Storage storage_;
};

// Bounds on what a parse may consume. The defaults fit every real MDM message with a wide
// margin: the largest captured InstallProfile command is about 20 KiB, with nesting 6.
struct Limits {
  std::size_t max_bytes = 4 * 1024 * 1024;
  std::size_t max_depth = 64;       // containers inside containers; the top level is depth 1
  std::size_t max_nodes = 100'000;  // every value, containers and leaves alike
};

enum class Format { xml, binary };

// Parses XML or binary (detected from the bytes) within limits. Never throws.
Result<Value> parse(std::string_view bytes, const Limits& limits = {});
// The format the bytes claim to be, or nothing for neither.
std::optional<Format> sniff(std::string_view bytes);

// Serializes to XML or binary. Never fails for a Value built in memory.
std::string to_xml(const Value& value);
std::string to_binary(const Value& value);

}  // namespace mdmc::plist
