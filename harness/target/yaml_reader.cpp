#include "harness/target/yaml_reader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>

#include <fstream>

namespace mdmc::target {
namespace {

constexpr int kSchemaVersion = 1;

}  // namespace

int line_of(const YAML::Node& node) { return node.Mark().line >= 0 ? node.Mark().line + 1 : 0; }

std::string read_spec_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw base::LoadError(file.string(), 0, "", "cannot be read");
  std::string text;
  char buffer[64 * 1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxSpecFileBytes) {
      throw base::LoadError(file.string(), 0, "", fmt::format("is larger than {} bytes", kMaxSpecFileBytes));
    }
  }
  return text;
}

YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp (0.7, as Debian builds it) stops at 500 nested levels rather than recurse on,
    // but says only "bad file"; no case or profile comes near that depth.
    throw base::LoadError(file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "",
                          fmt::format("nested more than {} levels deep", e.depth() - 1));
  } catch (const YAML::Exception& e) {
    throw base::LoadError(file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "", e.msg);
  }
}

MapReader::MapReader(const YAML::Node& node, std::string file, std::string path)
    : node_(node), file_(std::move(file)), path_(std::move(path)) {
  if (!node_.IsMap()) fail(node_, "must be a map");
}

bool MapReader::has(const std::string& key) {
  used_.insert(key);
  return static_cast<bool>(node_[key]);
}

YAML::Node MapReader::node(const std::string& key) {
  used_.insert(key);
  return node_[key];
}

YAML::Node MapReader::required(const std::string& key) {
  auto n = node(key);
  if (!n) fail(node_, "'" + key + "' is required", key);
  return n;
}

void MapReader::finish() {
  for (const auto& kv : node_) {
    auto key = kv.first.as<std::string>("");
    if (!used_.count(key)) fail(kv.first, "unknown key '" + key + "'", key);
  }
}

void MapReader::fail(const YAML::Node& at, const std::string& reason, const std::string& key) const {
  std::string full = path_.empty() ? key : (key.empty() ? path_ : path_ + "." + key);
  throw base::LoadError(file_, line_of(at), full, reason);
}

void check_schema_version(MapReader& top) {
  int version = top.get_required<int>("schema_version");
  if (version != kSchemaVersion) {
    top.fail(top.node("schema_version"),
             fmt::format("schema_version {} is not supported (this harness reads {})", version, kSchemaVersion),
             "schema_version");
  }
}

}  // namespace mdmc::target
