#include "harness/base/json_reader.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "harness/base/bytes.hpp"

namespace mdmc::base {

int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\') {
        ++i;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return deepest;
}

void JsonReader::fail(const std::string& path, std::string_view what) {
  if (error_.empty()) error_ = fmt::format("{}: {}", path.empty() ? "(top)" : path, what);
}

const JsonReader::Json* JsonReader::member(const Json& obj, std::string_view key, const std::string& path) {
  if (!obj.is_object()) {
    fail(path, "expected an object");
    return nullptr;
  }
  auto it = obj.find(key);
  if (it == obj.end()) {
    fail(join(path, key), "missing");
    return nullptr;
  }
  return &*it;
}

const JsonReader::Json* JsonReader::object(const Json& obj, std::string_view key, const std::string& path) {
  const Json* j = member(obj, key, path);
  if (j && !j->is_object()) {
    fail(join(path, key), "expected an object");
    return nullptr;
  }
  return j;
}

const JsonReader::Json* JsonReader::array(const Json& obj, std::string_view key, const std::string& path) {
  const Json* j = member(obj, key, path);
  if (j && !j->is_array()) {
    fail(join(path, key), "expected an array");
    return nullptr;
  }
  return j;
}

std::string JsonReader::string(const Json& obj, std::string_view key, const std::string& path) {
  const Json* j = member(obj, key, path);
  return j ? as_string(*j, join(path, key)) : std::string();
}

std::string JsonReader::as_string(const Json& j, const std::string& path) {
  if (!j.is_string()) {
    fail(path, "expected a string");
    return {};
  }
  return j.get_ref<const std::string&>();
}

std::string JsonReader::bytes(const Json& obj, std::string_view key, const std::string& path) {
  const Json* j = member(obj, key, path);
  return j ? as_bytes(*j, join(path, key)) : std::string();
}

std::string JsonReader::as_bytes(const Json& j, const std::string& path) {
  if (j.is_string()) return j.get_ref<const std::string&>();
  if (j.is_object() && j.size() == 1) {
    const std::string encoded = string(j, "base64", path);
    if (!ok()) return {};
    if (auto decoded = base64_decode_strict(encoded)) return *std::move(decoded);
    fail(join(path, "base64"), "not valid base64");
    return {};
  }
  fail(path, "expected a string or {\"base64\": ...}");
  return {};
}

bool JsonReader::boolean(const Json& obj, std::string_view key, const std::string& path) {
  const Json* j = member(obj, key, path);
  if (!j) return false;
  if (!j->is_boolean()) {
    fail(join(path, key), "expected true or false");
    return false;
  }
  return j->get<bool>();
}

std::int64_t JsonReader::integer(const Json& obj, std::string_view key, const std::string& path, std::int64_t min,
                                 std::int64_t max) {
  const Json* j = member(obj, key, path);
  if (!j) return 0;
  const std::string where = join(path, key);
  if (j->is_number_unsigned()) {
    const auto u = j->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(max)) {
      fail(where, "out of range");
      return 0;
    }
    return static_cast<std::int64_t>(u);
  }
  if (!j->is_number_integer()) {
    fail(where, "expected an integer");
    return 0;
  }
  const auto v = j->get<std::int64_t>();
  if (v < min || v > max) {
    fail(where, "out of range");
    return 0;
  }
  return v;
}

std::vector<std::string> JsonReader::strings(const Json& obj, std::string_view key, const std::string& path) {
  std::vector<std::string> out;
  const Json* arr = array(obj, key, path);
  if (!arr) return out;
  for (std::size_t i = 0; i < arr->size() && ok(); ++i) {
    out.push_back(as_string((*arr)[i], index(join(path, key), i)));
  }
  return out;
}

std::string JsonReader::join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string JsonReader::index(const std::string& path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

}  // namespace mdmc::base
