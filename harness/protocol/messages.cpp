#include "harness/protocol/messages.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace mdmc::protocol {
namespace {

using plist::Type;

constexpr std::array<std::pair<MessageType, std::string_view>, 9> kMessageTypeNames = {{
    {MessageType::authenticate, "Authenticate"},
    {MessageType::token_update, "TokenUpdate"},
    {MessageType::user_authenticate, "UserAuthenticate"},
    {MessageType::check_out, "CheckOut"},
    {MessageType::set_bootstrap_token, "SetBootstrapToken"},
    {MessageType::get_bootstrap_token, "GetBootstrapToken"},
    {MessageType::declarative_management, "DeclarativeManagement"},
    {MessageType::get_token, "GetToken"},
    {MessageType::return_to_service, "ReturnToService"},
}};

constexpr std::array<std::pair<Status, std::string_view>, 5> kStatusNames = {{
    {Status::idle, "Idle"},
    {Status::acknowledged, "Acknowledged"},
    {Status::error, "Error"},
    {Status::command_format_error, "CommandFormatError"},
    {Status::not_now, "NotNow"},
}};

// Key types from Apple's schema (mdm/checkin/*.yaml). A key present with another type is a
// malformed message whatever its presence rule says.
struct KeyType {
  std::string_view key;
  Type type;
};
constexpr std::array<KeyType, 24> kKnownKeyTypes = {{
    {"MessageType", Type::string},
    {"Topic", Type::string},
    {"UDID", Type::string},
    {"EnrollmentID", Type::string},
    {"EnrollmentUserID", Type::string},
    {"UserID", Type::string},
    {"UserShortName", Type::string},
    {"UserLongName", Type::string},
    {"Token", Type::data},
    {"PushMagic", Type::string},
    {"UnlockToken", Type::data},
    {"AwaitingConfiguration", Type::boolean},
    {"NotOnConsole", Type::boolean},
    {"DigestResponse", Type::string},
    {"DeviceName", Type::string},
    {"Model", Type::string},
    {"ModelName", Type::string},
    {"OSVersion", Type::string},
    {"BuildVersion", Type::string},
    {"ProductName", Type::string},
    {"SerialNumber", Type::string},
    {"Status", Type::string},
    {"CommandUUID", Type::string},
    {"NeedSyncResponse", Type::boolean},
}};

std::string must_be(Type type) { return "must be <" + std::string(plist::type_name(type)) + ">"; }

// Checks every known key that is present has its schema type.
std::optional<base::Error> check_key_types(const plist::Dict& dict) {
  for (const auto& known : kKnownKeyTypes) {
    auto it = dict.find(known.key);
    if (it != dict.end() && !it->second.is(known.type)) {
      return decode_failure(std::string(known.key), must_be(known.type));
    }
  }
  if (auto it = dict.find("UserConfiguration"); it != dict.end() && !it->second.is(Type::boolean)) {
    return decode_failure("UserConfiguration", must_be(Type::boolean));
  }
  return std::nullopt;
}

std::optional<std::string> string_key(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  if (it == dict.end()) return std::nullopt;
  if (const auto* s = it->second.as_string()) return *s;
  return std::nullopt;
}

std::optional<std::string> data_key(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  if (it == dict.end()) return std::nullopt;
  if (const auto* d = it->second.as_data()) return d->bytes;
  return std::nullopt;
}

bool bool_key(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  return it != dict.end() && it->second.as_bool() && *it->second.as_bool();
}

}  // namespace

base::Error decode_failure(std::string_view key, std::string reason) {
  return base::fail(key.empty() ? std::move(reason) : std::string(key) + ": " + reason);
}

std::string_view decode_error_key(const base::Error& error) {
  // Keys hold no space; a whole-message reason has one before any ": ".
  std::string_view text = error.message;
  auto colon = text.find(": ");
  if (colon == std::string_view::npos || text.substr(0, colon).find(' ') != std::string_view::npos) return {};
  return text.substr(0, colon);
}

namespace {

base::Error missing(std::string_view key) { return decode_failure(key, "missing"); }

// The channel a message speaks for: UDID always, UserID on a user channel.
Decoded<Channel> decode_channel(const plist::Dict& dict) {
  auto udid = string_key(dict, "UDID");
  if (!udid || udid->empty()) return missing("UDID");
  Channel channel{*udid, string_key(dict, "UserID").value_or("")};
  return channel;
}

void put_user(plist::Dict& dict, const UserFacts& user) {
  dict["UserID"] = user.user_id;
  dict["UserShortName"] = user.short_name;
  dict["UserLongName"] = user.long_name;
}

}  // namespace

std::string_view message_type_name(MessageType type) {
  for (const auto& [t, name] : kMessageTypeNames) {
    if (t == type) return name;
  }
  return "?";
}

std::optional<MessageType> message_type_from_name(std::string_view name) {
  for (const auto& [t, n] : kMessageTypeNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

std::string_view status_name(Status status) {
  for (const auto& [s, name] : kStatusNames) {
    if (s == status) return name;
  }
  return "?";
}

std::optional<Status> status_from_name(std::string_view name) {
  for (const auto& [s, n] : kStatusNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

std::optional<Channel> Channel::from_id(std::string_view id) {
  if (id.empty()) return std::nullopt;
  auto colon = id.find(':');
  if (colon == std::string_view::npos) return Channel{std::string(id), ""};
  if (colon == 0 || colon + 1 == id.size()) return std::nullopt;
  return Channel{std::string(id.substr(0, colon)), std::string(id.substr(colon + 1))};
}

plist::Dict authenticate(const DeviceFacts& device) {
  return plist::Dict{
      {"MessageType", "Authenticate"},
      {"Topic", device.topic},
      {"UDID", device.udid},
      {"SerialNumber", device.serial_number},
      {"Model", device.model},
      {"ModelName", device.model_name},
      {"DeviceName", device.device_name},
      {"ProductName", device.product_name},
      {"OSVersion", device.os_version},
      {"BuildVersion", device.build_version},
  };
}

plist::Dict token_update(const DeviceFacts& device, const PushIdentity& push, const UserFacts* user) {
  plist::Dict dict{
      {"MessageType", "TokenUpdate"},     {"Topic", device.topic},        {"UDID", device.udid},
      {"Token", plist::Data{push.token}}, {"PushMagic", push.push_magic}, {"AwaitingConfiguration", false},
  };
  if (user) {
    put_user(dict, *user);
    // Apple's schema: NotOnConsole is user-channel only on macOS; the enrolling user is on
    // console.
    dict["NotOnConsole"] = false;
    dict.erase("AwaitingConfiguration");
  }
  return dict;
}

plist::Dict user_authenticate(const std::string& udid, const UserFacts& user,
                              const std::optional<std::string>& digest_response) {
  plist::Dict dict{{"MessageType", "UserAuthenticate"}, {"UDID", udid}};
  put_user(dict, user);
  if (digest_response) dict["DigestResponse"] = *digest_response;
  return dict;
}

plist::Dict check_out(const DeviceFacts& device) {
  return plist::Dict{{"MessageType", "CheckOut"}, {"Topic", device.topic}, {"UDID", device.udid}};
}

plist::Dict report(const Channel& channel, const UserFacts* user, const ReportSpec& spec, const UserFlags& flags) {
  plist::Dict dict{{"Status", std::string(status_name(spec.status))}, {"UDID", channel.udid}};
  if (user) put_user(dict, *user);
  if (spec.status != Status::idle) dict["CommandUUID"] = spec.command_uuid;
  if (flags.need_sync_response) dict["NeedSyncResponse"] = true;
  if (flags.user_configuration) dict["UserConfiguration"] = true;
  if (spec.status == Status::error) {
    plist::Array chain;
    for (const auto& item : spec.error_chain) {
      chain.emplace_back(plist::Dict{
          {"ErrorCode", item.code}, {"ErrorDomain", item.domain}, {"LocalizedDescription", item.description}});
    }
    dict["ErrorChain"] = std::move(chain);
  }
  return dict;
}

Decoded<CheckIn> decode_check_in(const plist::Value& message) {
  const auto* dict = message.as_dict();
  if (!dict) return decode_failure("", "check-in message must be a <dict>");
  if (auto bad = check_key_types(*dict)) return *bad;
  auto type_name = string_key(*dict, "MessageType");
  if (!type_name) return missing("MessageType");
  auto type = message_type_from_name(*type_name);
  if (!type) return decode_failure("MessageType", "unknown MessageType '" + *type_name + "'");

  auto channel = decode_channel(*dict);
  if (!channel) return channel.error();

  CheckIn checkin{*type, *channel, *dict, {}, {}, {}, {}};
  checkin.topic = string_key(*dict, "Topic");
  switch (*type) {
    case MessageType::authenticate:
    case MessageType::check_out:
      if (!checkin.topic) return missing("Topic");
      if (checkin.channel.is_user()) return decode_failure("UserID", "not allowed on " + *type_name);
      break;
    case MessageType::token_update:
      if (!checkin.topic) return missing("Topic");
      checkin.token = data_key(*dict, "Token");
      checkin.push_magic = string_key(*dict, "PushMagic");
      if (!checkin.token) return missing("Token");
      if (!checkin.push_magic) return missing("PushMagic");
      break;
    case MessageType::user_authenticate:
      if (!checkin.channel.is_user()) return missing("UserID");
      checkin.digest_response = string_key(*dict, "DigestResponse");
      break;
    default: break;
  }
  return checkin;
}

Decoded<Report> decode_report(const plist::Value& message) {
  const auto* dict = message.as_dict();
  if (!dict) return decode_failure("", "command report must be a <dict>");
  if (auto bad = check_key_types(*dict)) return *bad;
  auto status_text = string_key(*dict, "Status");
  if (!status_text) return missing("Status");
  auto status = status_from_name(*status_text);
  if (!status) return decode_failure("Status", "unknown Status '" + *status_text + "'");
  auto channel = decode_channel(*dict);
  if (!channel) return channel.error();
  Report out{*status, *channel, string_key(*dict, "CommandUUID").value_or(""),
             UserFlags{bool_key(*dict, "NeedSyncResponse"), bool_key(*dict, "UserConfiguration")}, *dict};
  if (out.status != Status::idle && out.command_uuid.empty()) return missing("CommandUUID");
  return out;
}

Decoded<Command> decode_command(const plist::Value& command) {
  const auto* dict = command.as_dict();
  if (!dict) return decode_failure("", "command must be a <dict>");
  auto uuid = dict->find("CommandUUID");
  if (uuid == dict->end()) return missing("CommandUUID");
  if (!uuid->second.as_string()) return decode_failure("CommandUUID", must_be(Type::string));
  if (uuid->second.as_string()->empty()) return decode_failure("CommandUUID", "empty");
  auto body = dict->find("Command");
  if (body == dict->end()) return missing("Command");
  const auto* body_dict = body->second.as_dict();
  if (!body_dict) return decode_failure("Command", must_be(Type::dict));
  auto request_type = string_key(*body_dict, "RequestType");
  if (!request_type) {
    return body_dict->count("RequestType") ? decode_failure("Command.RequestType", must_be(Type::string))
                                           : missing("Command.RequestType");
  }
  return Command{*uuid->second.as_string(), *request_type, *dict};
}

Command make_command(std::string uuid, std::string request_type, const std::vector<std::string>& accounts) {
  plist::Dict body{{"RequestType", request_type}};
  if (request_type == "InstallProfile") {
    // Apple's TopLevel.yaml requires PayloadIdentifier, PayloadUUID, PayloadType, PayloadVersion
    // and PayloadContent: the least profile a Mac installs; it holds the account payloads
    // asked for, and nothing else.
    plist::Array content;
    for (std::size_t i = 0; i < accounts.size(); ++i) {
      content.emplace_back(plist::Dict{{"PayloadType", accounts[i]},
                                       {"PayloadIdentifier", "org.mdmconform.account." + std::to_string(i)},
                                       {"PayloadUUID", uuid + "-" + std::to_string(i)},
                                       {"PayloadVersion", 1}});
    }
    plist::Dict profile{
        {"PayloadContent", std::move(content)},
        {"PayloadDisplayName", "mdmconform profile"},
        {"PayloadIdentifier", "org.mdmconform." + uuid},
        {"PayloadType", "Configuration"},
        {"PayloadUUID", uuid},
        {"PayloadVersion", 1},
    };
    body["Payload"] = plist::Data{plist::to_xml(plist::Value(std::move(profile)))};
  } else if (request_type == "DeviceInformation") {
    // Queries is required (mdm/commands/information.device.yaml); these names all exist on macOS.
    body["Queries"] = plist::Array{"UDID",      "DeviceName", "OSVersion",   "BuildVersion",
                                   "ModelName", "Model",      "ProductName", "SerialNumber"};
  }
  plist::Dict whole{{"CommandUUID", uuid}, {"Command", body}};
  return Command{std::move(uuid), std::move(request_type), std::move(whole)};
}

}  // namespace mdmc::protocol
