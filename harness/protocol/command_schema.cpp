#include "harness/protocol/command_schema.hpp"

#include <algorithm>
#include <span>

#include "harness/protocol/apple_schema.hpp"
#include "harness/protocol/detail/schema_tables.hpp"
#include "harness/protocol/detail/violation_list.hpp"

namespace mdmc::protocol {
namespace {

using detail::kSchemaCommands;
using detail::kSchemaKeys;
using detail::SchemaCommand;
using detail::SchemaKey;
using detail::SchemaType;

static_assert(detail::kSchemaDataRevision == kAppleSchemaRevision,
              "command_schema_data.inc comes from another schema revision than apple_schema.hpp "
              "names: regenerate it, or move both together");

static_assert(sorted_by_name(kSchemaCommands, &SchemaCommand::request_type),
              "kSchemaCommands must be sorted by RequestType, without repeats");
static_assert(children_within(kSchemaKeys, kSchemaKeys.size()) && children_within(kSchemaCommands, kSchemaKeys.size()));

std::span<const SchemaKey> children(std::uint16_t first, std::uint16_t count) {
  return std::span<const SchemaKey>(kSchemaKeys).subspan(first, count);
}

const SchemaCommand* find_command(std::string_view request_type) {
  return find_by_name(kSchemaCommands, &SchemaCommand::request_type, request_type);
}

// What the peer sent, quoted in a message: bounded, so a megabyte RequestType stays out of the
// report.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxQuoted = 64;  // enough for any real RequestType or Item value
  if (text.size() <= kMaxQuoted) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kMaxQuoted)) + "...' (" + std::to_string(text.size()) + " bytes)";
}

class Checker : public detail::ViolationList {
 public:
  explicit Checker(bool on_user_channel) : on_user_channel_(on_user_channel) {}

  // A dict against the keys the schema lists for it. `skip` is a key checked elsewhere
  // (RequestType at the top).
  void dict(const plist::Dict& dict, std::span<const SchemaKey> keys, const std::string& path, std::size_t depth,
            std::string_view skip = {}) {
    for (const auto& entry : dict) {
      if (full()) return;
      const std::string& name = entry.first;  // not a structured binding: clang 14 can't capture one
      if (!skip.empty() && name == skip) continue;
      auto known = std::find_if(keys.begin(), keys.end(), [&](const SchemaKey& k) { return k.name == name; });
      if (known == keys.end()) {
        add(path + "." + name, "unknown key");
        continue;
      }
      key(entry.second, *known, path + "." + name, depth);
    }
    for (const auto& k : keys) {
      if (full()) return;
      if ((k.flags & detail::kRequired) && suits_here(k) && !dict.count(k.name)) {
        add(path + "." + std::string(k.name), "missing (required)");
      }
    }
  }

  // A value against one schema key (or array item kind). `kind` names the item kind when an
  // array offers several.
  void key(const plist::Value& value, const SchemaKey& key, const std::string& path, std::size_t depth,
           std::string_view kind = {}) {
    const std::string of_kind = kind.empty() ? "" : " (" + std::string(kind) + ")";
    if (key.flags & detail::kNotOnMacOS) {
      add(path, "not supported on macOS" + of_kind);
      return;
    }
    if (on_user_channel_ && (key.flags & detail::kNotOnUserChannel)) {
      add(path, "not supported on the user channel" + of_kind);
    }
    if (!on_user_channel_ && (key.flags & detail::kNotOnDeviceChannel)) {
      add(path, "not supported on the device channel" + of_kind);
    }
    if (!has_schema_type(value, key.type)) {
      add(path, "must be " + std::string(schema_type_name(key.type)) + ", is " + std::string(value_type_name(value)));
      return;
    }
    if (key.type != SchemaType::dictionary && key.type != SchemaType::array) return;
    if (depth + 1 > kMaxSchemaDepth) {
      add(path, "nested deeper than " + std::to_string(kMaxSchemaDepth));
      return;
    }
    if (key.type == SchemaType::dictionary) {
      if (key.flags & detail::kOpen) return;
      this->dict(*value.as_dict(), children(key.first, key.count), path, depth + 1);
      return;
    }
    const auto kinds = children(key.first, key.count);
    if (kinds.empty()) return;  // items of any type
    const auto& items = *value.as_array();
    for (std::size_t i = 0; i < items.size() && !full(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      if (kinds.size() == 1) {
        this->key(items[i], kinds[0], item_path, depth + 1);
      } else {
        item_of_kinds(items[i], kinds, item_path, depth + 1);
      }
    }
  }

 private:
  // Whether a key belongs in a command on this channel on macOS; a required key that doesn't
  // is not missed.
  bool suits_here(const SchemaKey& k) const {
    if (k.flags & detail::kNotOnMacOS) return false;
    return on_user_channel_ ? !(k.flags & detail::kNotOnUserChannel) : !(k.flags & detail::kNotOnDeviceChannel);
  }

  // An array item that may be one of several dictionary kinds (Settings: one per Item value).
  // The kind is the one whose pinned string keys all match; its pinned key is the
  // discriminator named in the message when none does.
  void item_of_kinds(const plist::Value& item, std::span<const SchemaKey> kinds, const std::string& path,
                     std::size_t depth) {
    if (!item.as_dict()) {
      add(path, "must be <dictionary>, is " + std::string(value_type_name(item)));
      return;
    }
    std::string_view discriminator;
    for (const auto& kind : kinds) {
      bool pinned = false;
      bool matches = true;
      for (const auto& sub : children(kind.first, kind.count)) {
        if (sub.fixed.empty()) continue;
        pinned = true;
        if (discriminator.empty()) discriminator = sub.name;
        auto value = item.string_at(sub.name);
        matches = matches && value && *value == sub.fixed;
      }
      if (pinned && matches) {
        key(item, kind, path, depth, kind.name);
        return;
      }
    }
    if (discriminator.empty()) {
      add(path, "matches none of the item kinds the schema lists");
      return;
    }
    const plist::Value* value = item.find(discriminator);
    const std::string where = path + "." + std::string(discriminator);
    if (!value) {
      add(where, "missing (required)");
    } else if (!value->as_string()) {
      add(where, "must be <string>, is " + std::string(value_type_name(*value)));
    } else {
      add(where, "unknown value " + quoted(*value->as_string()));
    }
  }

  bool on_user_channel_;
};

}  // namespace

std::string_view apple_schema_revision() { return kAppleSchemaRevision; }

std::optional<MacChannels> mac_channels(std::string_view request_type) {
  const SchemaCommand* command = find_command(request_type);
  if (!command) return std::nullopt;
  return MacChannels{(command->channels & detail::kDeviceChannel) != 0,
                     (command->channels & detail::kUserChannel) != 0};
}

bool is_article_exemption(std::string_view request_type, const SchemaViolation& violation) {
  return ends_user_configuration(request_type) && violation.key_path == "Command.RequestType";
}

std::vector<SchemaViolation> check_command_schema(const Command& command, bool on_user_channel) {
  Checker checker(on_user_channel);
  auto it = command.body.find("Command");
  const plist::Dict* dict = it == command.body.end() ? nullptr : it->second.as_dict();
  if (!dict) {
    checker.add("Command", it == command.body.end() ? "missing (required)" : "must be <dictionary>");
    return checker.take();
  }
  const SchemaCommand* schema = find_command(command.request_type);
  if (!schema) {
    checker.add("Command.RequestType", "unknown RequestType " + quoted(command.request_type));
    return checker.take();
  }
  const bool device = schema->channels & detail::kDeviceChannel;
  const bool user = schema->channels & detail::kUserChannel;
  if (!device && !user) {
    checker.add("Command.RequestType", command.request_type + " is not supported on macOS");
  } else if (on_user_channel && !user) {
    checker.add("Command.RequestType",
                command.request_type + " is device-channel only on macOS, sent on the user channel");
  } else if (!on_user_channel && !device) {
    checker.add("Command.RequestType",
                command.request_type + " is user-channel only on macOS, sent on the device channel");
  }
  checker.dict(*dict, children(schema->first, schema->count), "Command", 1, "RequestType");
  return checker.take();
}

}  // namespace mdmc::protocol
