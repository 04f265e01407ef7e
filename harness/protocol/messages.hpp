#pragma once
// The MDM check-in messages and command reports that macOS clients send, and the commands a
// server sends back, as built by the emulator and decoded by the reference server and the
// fuzzers. Key names and types follow Apple's schema (mdm/checkin/*.yaml in
// apple/device-management); where a real client sends fewer keys than the schema marks
// required (captured Authenticate messages lack DeviceName and Model), decoding follows the
// client, and only keys needed to route a message are mandatory.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/channel.hpp"
#include "harness/protocol/endpoint.hpp"

namespace mdmc::protocol {

// Content-Types, from Apple's protocol reference: check-in vs. command (ServerURL) requests.
inline constexpr std::string_view kCheckInContentType = endpoint_content_type(Endpoint::check_in);
inline constexpr std::string_view kCommandContentType = endpoint_content_type(Endpoint::server);
// What a server sends a command with.
inline constexpr std::string_view kPlistContentType = "application/xml";

enum class MessageType {
  authenticate,
  token_update,
  user_authenticate,
  check_out,
  set_bootstrap_token,
  get_bootstrap_token,
  declarative_management,
  get_token,
  return_to_service,
};
std::string_view message_type_name(MessageType type);
std::optional<MessageType> message_type_from_name(std::string_view name);

enum class Status { idle, acknowledged, error, command_format_error, not_now };
std::string_view status_name(Status status);
std::optional<Status> status_from_name(std::string_view name);

// What a device says about itself at Authenticate.
struct DeviceFacts {
  std::string udid;
  std::string topic;  // the APNs topic of the enrollment profile
  std::string serial_number;
  std::string model = "MacBookPro18,3";
  std::string model_name = "MacBook Pro";
  std::string device_name = "mdmconform Mac";
  std::string product_name = "MacBookPro18,3";
  std::string os_version = "14.6";
  std::string build_version = "23G80";
};

struct UserFacts {
  std::string user_id;  // the user's GUID
  std::string short_name;
  std::string long_name;
};

// A push token as a TokenUpdate carries it.
struct PushIdentity {
  std::string token;  // raw bytes, sent as <data>
  std::string push_magic;
};

// Builders: each returns the message as the client sends it.
plist::Dict authenticate(const DeviceFacts& device);
plist::Dict token_update(const DeviceFacts& device, const PushIdentity& push, const UserFacts* user = nullptr);
plist::Dict user_authenticate(const std::string& udid, const UserFacts& user,
                              const std::optional<std::string>& digest_response);
plist::Dict check_out(const DeviceFacts& device);

// Flags a user channel adds to its reports.
struct UserFlags {
  bool need_sync_response = false;  // the user waits at login for the whole series
  bool user_configuration = false;  // the user is in Setup Assistant; answers NotNow
};
struct ErrorChainItem {
  std::int64_t code = 0;
  std::string domain;
  std::string description;
};
struct ReportSpec {
  Status status = Status::idle;
  std::string command_uuid;                 // required for every status but Idle
  std::vector<ErrorChainItem> error_chain;  // with Status::error
};
plist::Dict report(const Channel& channel, const UserFacts* user, const ReportSpec& spec, const UserFlags& flags = {});

// A decode outcome. The error's message names the key and what was wrong with it, "UDID:
// missing", "MessageType: unknown MessageType 'Foo'", or holds the reason alone when the whole
// message is at fault ("command must be a <dict>").
template <typename T>
using Decoded = base::Result<T>;
base::Error decode_failure(std::string_view key, std::string reason);
// The key a decode error names ("UDID"); empty when the whole message is at fault.
std::string_view decode_error_key(const base::Error& error);

struct CheckIn {
  MessageType type{};
  Channel channel;
  plist::Dict fields;  // the whole message, for whatever a handler needs beyond routing
  // TokenUpdate
  std::optional<std::string> token;
  std::optional<std::string> push_magic;
  std::optional<std::string> topic;
  // UserAuthenticate
  std::optional<std::string> digest_response;
};

struct Report {
  Status status{};
  Channel channel;
  std::string command_uuid;  // empty for Idle
  UserFlags flags;
  plist::Dict fields;
};

// A command as the server sends it: CommandUUID, and Command.RequestType (CMD-SHAPE).
struct Command {
  std::string uuid;
  std::string request_type;
  plist::Dict body;  // the whole command plist
};

Decoded<CheckIn> decode_check_in(const plist::Value& message);
Decoded<Report> decode_report(const plist::Value& message);
Decoded<Command> decode_command(const plist::Value& command);

// A new command of a given RequestType with the keys that type needs at the least: schema-valid
// (check_command_schema) for ProfileList, CertificateList, InstalledApplicationList,
// DeviceInformation (a few Queries), DeviceConfigured and InstallProfile (an empty profile).
// Other types get RequestType alone.
// For InstallProfile, `accounts` are the PayloadTypes of the account payloads its profile holds.
Command make_command(std::string uuid, std::string request_type, const std::vector<std::string>& accounts = {});

}  // namespace mdmc::protocol
