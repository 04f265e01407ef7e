#pragma once
// The loaders' YAML reader, shared by target profiles (here) and by scenario's rule catalog and
// cases: bounded file reads, parsing that turns yaml-cpp's exceptions into base::LoadError, and
// a map reader that rejects unknown keys. Every failure is a LoadError naming the file, the line
// and the key path, the loaders' one throwing convention (base/load_error.hpp).
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "harness/base/load_error.hpp"

namespace mdmc::target {

// Every file a loader reads (cases, profiles, the PEM files they name) is small; the cap keeps a
// profile that names a huge file, or a path that is a device (`--target /dev/zero`), from being
// read whole.
inline constexpr std::size_t kMaxSpecFileBytes = 8 * 1024 * 1024;

// The line of a node, from 1; 0 when yaml-cpp does not know it.
int line_of(const YAML::Node& node);
// The file's bytes; LoadError when it cannot be read or is over kMaxSpecFileBytes.
std::string read_spec_file(const std::filesystem::path& file);
// The YAML document in `text`; `file` names it in errors.
YAML::Node parse_yaml(const std::string& text, const std::string& file);

// Reads one YAML map, remembers which keys were read, and rejects the rest: a misspelt key in a
// case or a profile must not silently weaken what it says.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string file, std::string path);

  bool has(const std::string& key);
  YAML::Node node(const std::string& key);
  YAML::Node required(const std::string& key);

  template <typename T>
  T get(const std::string& key, T fallback) {
    auto n = node(key);
    if (!n) return fallback;
    return as<T>(n, key);
  }
  template <typename T>
  T get_required(const std::string& key) {
    return as<T>(required(key), key);
  }

  template <typename T>
  T as(const YAML::Node& n, const std::string& key) {
    try {
      if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<int>>) {
        if (n.IsScalar()) return T{n.as<typename T::value_type>()};
        if (!n.IsSequence()) fail(n, "must be a list", key);
      } else {
        if (!n.IsScalar()) fail(n, "must be a single value", key);
      }
      return n.as<T>();
    } catch (const YAML::Exception&) {
      fail(n, std::string("has the wrong type (expected ") + type_word<T>() + ")", key);
    }
  }

  // Throws for any key that was never asked for.
  void finish();

  [[noreturn]] void fail(const YAML::Node& at, const std::string& reason, const std::string& key = {}) const;

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

 private:
  template <typename T>
  static const char* type_word() {
    if constexpr (std::is_same_v<T, int>) return "an integer";
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_same_v<T, std::vector<int>>) return "a list of integers";
    if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
    return "a string";
  }

  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::set<std::string> used_;
};

// `schema_version: 1`, required at the top of every file.
void check_schema_version(MapReader& top);

}  // namespace mdmc::target
