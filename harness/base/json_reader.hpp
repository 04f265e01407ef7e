#pragma once
// Typed reads from parsed JSON (nlohmann, parsed with allow_exceptions=false) that never throw
// and name where a record went wrong: the first problem is kept with its JSON path
// ("cases[2].verdict: unknown verdict \"ok\""), and later reads return placeholders that the
// caller discards. Records (report.json, findings, fuzz summaries) are read with it.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/base/result.hpp"

namespace mdmc::base {

// The deepest nesting of arrays and objects in `text`, counted up to limit + 1: a scan that
// skips strings and needs no valid JSON, run before parsing untrusted text (what nlohmann
// builds, it also destroys and dumps by recursion).
int json_nesting_depth(std::string_view text, int limit);

class JsonReader {
 public:
  using Json = nlohmann::ordered_json;

  bool ok() const { return error_.empty(); }
  // "path: what", or empty while ok().
  const std::string& error() const { return error_; }
  // Records the problem unless an earlier one is recorded; "(top)" names the top level.
  void fail(const std::string& path, std::string_view what);

  // The member `key` of the object `obj` (at `path`), or nullptr after recording why.
  const Json* member(const Json& obj, std::string_view key, const std::string& path);
  const Json* object(const Json& obj, std::string_view key, const std::string& path);
  const Json* array(const Json& obj, std::string_view key, const std::string& path);

  std::string string(const Json& obj, std::string_view key, const std::string& path);
  std::string as_string(const Json& j, const std::string& path);
  // Bytes as records write them: a string, or {"base64": "..."} (strict base64) for bytes that
  // are not UTF-8.
  std::string bytes(const Json& obj, std::string_view key, const std::string& path);
  std::string as_bytes(const Json& j, const std::string& path);
  bool boolean(const Json& obj, std::string_view key, const std::string& path);
  std::int64_t integer(const Json& obj, std::string_view key, const std::string& path,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max());
  std::vector<std::string> strings(const Json& obj, std::string_view key, const std::string& path);

  // "a.b" ("b" at the top), and "a[3]".
  static std::string join(const std::string& path, std::string_view key);
  static std::string index(const std::string& path, std::size_t i);

 private:
  std::string error_;
};

}  // namespace mdmc::base
