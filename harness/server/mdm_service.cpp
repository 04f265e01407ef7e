#include "harness/server/mdm_service.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "harness/base/clock.hpp"
#include "harness/pki/pki.hpp"
#include "harness/protocol/command_schema.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::server {
namespace {

using protocol::Channel;
using protocol::MessageType;
using protocol::Status;

struct QueuedCommand {
  std::string uuid;
  std::string request_type;
  std::string xml;
};

struct ChannelState {
  std::string token;  // the push token (raw bytes), stored per channel: a user's apart from its device's
  std::string push_magic;
  std::string topic;
  std::uint64_t enrollment = 0;    // PushTarget::enrollment
  std::uint64_t token_update = 0;  // PushTarget::token_update
  std::deque<QueuedCommand> queue;
  bool in_series = false;
  // Commands answered NotNow in the current series: held back until the next one.
  std::set<std::string> held_back;
  std::set<std::string> resent;  // for the not-now-resent fault
  // Commands this channel finished (Acknowledged, Error): a report for one again is a retry.
  std::set<std::string> done;
  bool device_configured_sent = false;  // in this series, to a user in UserConfiguration
};

// The seeded bugs' thresholds (seeded_bugs.hpp): far beyond any well-formed message, which
// holds strings of at most a few hundred bytes and nests 3 deep (an ErrorChain).
constexpr std::size_t kSeededLongString = 4096;
constexpr std::size_t kSeededDeepNesting = 16;
// Past every client deadline the harness uses (5 s to 10 s for a response header).
constexpr std::chrono::seconds kSeededHang{30};
// Bounds the devices the user-key-corrupts bug remembers.
constexpr std::size_t kMaxCorruptedDevices = 4096;

struct DeviceState {
  std::string topic;
  std::string identity;                 // fingerprint of the identity it authenticated with; empty in mode none
  std::set<std::string> refused_users;  // network users answered 410
  std::set<std::string> challenged_users;
  std::uint64_t last_seen = 0;  // State::clock when it last sent anything: the oldest is forgotten first
};

// The shared-response-slot fault's slot of one device.
struct ResponseSlot {
  bool busy = false;           // a request holds it
  std::uint64_t answered = 0;  // answers put in it so far: a waiter waits for the next
  int waiting = 0;             // requests waiting for its answer
  net::ServerResponse answer;  // the last answer put in it
};
// How long a request waits for a slot's answer before it gets an empty 200: far past any
// slot_hold, and within every client deadline the harness uses.
constexpr std::chrono::seconds kSlotWait{1};

// The shared-response-slot fault's slots, one per device with a request in flight, under their
// own lock. A copy of the service has no request in flight: it starts with none.
struct ResponseSlots {
  std::mutex mutex;
  std::condition_variable freed;
  std::map<std::string, ResponseSlot> by_udid;

  ResponseSlots() = default;
  ResponseSlots(const ResponseSlots&) {}
  ResponseSlots& operator=(const ResponseSlots&) = delete;
};

// The service's lock. A copy of the service is made under the original's lock and gets a lock
// of its own.
struct StateMutex : std::mutex {
  StateMutex() = default;
  StateMutex(const StateMutex&) : std::mutex() {}
  StateMutex& operator=(const StateMutex&) = delete;
};

// The check-in field the server would keep that is longer than it keeps, if any.
std::optional<std::string_view> overlong_field(const protocol::CheckIn& msg, std::size_t most) {
  const std::pair<std::string_view, const std::optional<std::string>*> optional_fields[] = {
      {"Topic", &msg.topic}, {"Token", &msg.token}, {"PushMagic", &msg.push_magic}};
  if (msg.channel.udid.size() > most) return "UDID";
  if (msg.channel.user_id.size() > most) return "UserID";
  for (const auto& [name, value] : optional_fields) {
    if (*value && (*value)->size() > most) return name;
  }
  return std::nullopt;
}

bool holds_command(const ChannelState& channel, const std::string& uuid) {
  return std::any_of(channel.queue.begin(), channel.queue.end(), [&](const auto& c) { return c.uuid == uuid; });
}

net::ServerResponse text(int status, std::string body) {
  return net::ServerResponse{status, {{"Content-Type", "text/plain; charset=utf-8"}}, std::move(body), false};
}

net::ServerResponse empty_ok() { return net::ServerResponse{200, {}, "", false}; }

net::ServerResponse json_text(int status, std::string body) {
  return net::ServerResponse{status, {{"Content-Type", "application/json"}}, std::move(body), false};
}

net::ServerResponse json_answer(int status, const nlohmann::json& j) {
  return json_text(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

net::ServerResponse plist_bytes(std::string xml) {
  return net::ServerResponse{200, {{"Content-Type", std::string(protocol::kPlistContentType)}}, std::move(xml), false};
}

net::ServerResponse plist_ok(const plist::Value& value) { return plist_bytes(plist::to_xml(value)); }

// Apple asks servers to refuse an unknown device this way (not 401, which unenrolls).
net::ServerResponse unrecognized_device() {
  return net::ServerResponse{
      403, {{"Content-Type", "application/json"}}, R"({"code":"com.apple.unrecognized.device"})", false};
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The value of a query parameter ("" for a bare name), or nothing when the target has none.
std::optional<std::string_view> query_value(std::string_view target, std::string_view name) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto equals = pair.find('=');
    if (pair.substr(0, equals) == name) {
      return equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1);
    }
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return std::nullopt;
}

// A flag such as NanoMDM's ?nopush=1: any value but 0 or false counts, a bare name too.
bool query_flag(std::string_view target, std::string_view name) {
  auto value = query_value(target, name);
  return value && *value != "0" && *value != "false";
}

// NanoMDM's ?nopush=1: queue without pushing.
bool asks_no_push(std::string_view target) { return query_flag(target, "nopush"); }

std::string lower_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xf];
  }
  return out;
}

std::string path_of(std::string_view target) { return std::string(target.substr(0, target.find('?'))); }

std::string percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]);
      int lo = hex(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

// Containers inside containers, the top level being depth 1 (as plist::Limits counts).
std::size_t nesting_depth(const plist::Value& value) {
  std::size_t deepest = 0;
  if (const auto* dict = value.as_dict()) {
    for (const auto& [key, member] : *dict) deepest = std::max(deepest, nesting_depth(member));
    return deepest + 1;
  }
  if (const auto* array = value.as_array()) {
    for (const auto& member : *array) deepest = std::max(deepest, nesting_depth(member));
    return deepest + 1;
  }
  return 0;
}

// True when `match` holds for some value in the tree. Recursion is bounded by the parse limits.
template <class Match>
bool any_value(const plist::Value& value, const Match& match) {
  if (match(value)) return true;
  if (const auto* dict = value.as_dict()) {
    return std::any_of(dict->begin(), dict->end(), [&](const auto& member) { return any_value(member.second, match); });
  }
  if (const auto* array = value.as_array()) {
    return std::any_of(array->begin(), array->end(), [&](const auto& member) { return any_value(member, match); });
  }
  return false;
}

// True when some dict of an XML plist names the same key twice. plist::parse keeps the last
// one, so only the text shows it. A scan of the tags, not a parser: the text has parsed already.
bool xml_has_duplicate_key(std::string_view xml) {
  std::vector<std::set<std::string_view>> open_dicts;
  for (std::size_t at = xml.find('<'); at != std::string_view::npos; at = xml.find('<', at + 1)) {
    auto tag_end = xml.find('>', at);
    if (tag_end == std::string_view::npos) break;
    auto tag = xml.substr(at + 1, tag_end - at - 1);
    if (tag == "dict") {
      if (open_dicts.size() >= 1024) return false;  // deeper than any parse limit allows
      open_dicts.emplace_back();
    } else if (tag == "/dict") {
      if (!open_dicts.empty()) open_dicts.pop_back();
    } else if (tag == "key" && !open_dicts.empty()) {
      auto key_end = xml.find("</key>", tag_end);
      if (key_end == std::string_view::npos) break;
      if (!open_dicts.back().insert(xml.substr(tag_end + 1, key_end - tag_end - 1)).second) return true;
      at = key_end;
    }
  }
  return false;
}

net::ServerResponse reset_connection() {
  net::ServerResponse r{500, {}, "", true};
  r.reset = true;
  return r;
}

// A request that never completes, as far as any client deadline can tell.
net::ServerResponse held_forever() {
  net::ServerResponse r = empty_ok();
  r.stall = net::kMaxServerStall;
  return r;
}

// The enrollment profile's payload UUIDs: fixed, so that a device enrolling again updates the
// same profile, as a server's one enrollment profile does.
constexpr std::string_view kProfileUuid = "6D3F0C1E-2B7A-4F59-8E14-0A9C5B7D3E21";
constexpr std::string_view kScepPayloadUuid = "1B8E4D6A-9C2F-4A73-B5E0-7F3D2C1A9E84";
constexpr std::string_view kMdmPayloadUuid = "A4C7E2F9-5D1B-4E68-9F30-2B6A8D4C1E57";
constexpr std::string_view kRootPayloadUuid = "E9B2D5A1-7C4F-4B86-A3E0-5D1F9C2B7A36";
constexpr std::string_view kProfileIdentifier = "com.github.mdmconform.enroll";
// Every access right Apple defines (1 to 4096), as MicroMDM and NanoMDM's profiles grant.
constexpr std::int64_t kAllAccessRights = 8191;
// Key Usage 5: digital signature (1) and key encipherment (4).
constexpr std::int64_t kScepKeyUsage = 5;

plist::Dict payload(std::string_view type, std::string_view suffix, std::string_view uuid, std::string_view name) {
  return plist::Dict{{"PayloadType", std::string(type)},
                     {"PayloadVersion", 1},
                     {"PayloadIdentifier", fmt::format("{}.{}", kProfileIdentifier, suffix)},
                     {"PayloadUUID", std::string(uuid)},
                     {"PayloadDisplayName", std::string(name)}};
}

// The enrollment profile (docs/reference-server.md#enrollment): a SCEP payload for the device
// identity, the MDM payload naming it, and the server's TLS CA as a root payload. The fault
// modes that break ENR-PROFILE and ENR-PER-USER change what it says.
// public_url: where devices reach this server (Config::public_url, or what set_public_url set).
std::string enrollment_profile_xml(const Config& config, const std::string& public_url) {
  const auto& scep = *config.scep;
  plist::Dict scep_payload = payload("com.apple.security.scep", "scep", kScepPayloadUuid, "Device identity (SCEP)");
  // Apple substitutes %HardwareUUID% with the device's: every device asks for its own subject.
  // An RDN is an array of [type, value] pairs. Each level is a Value: an Array braced around one
  // Array is a copy under clang 14 and a nesting under g++ (tools/check_array_nesting.py).
  auto rdn = [](const char* type, const char* value) {
    return plist::Value(plist::Array{plist::Value(plist::Array{type, value})});
  };
  plist::Array subject{rdn("O", "mdmconform"), rdn("CN", "mdmconform device %HardwareUUID%")};
  scep_payload["PayloadContent"] = plist::Dict{{"URL", scep.url},
                                               {"Name", "mdmconform-scep"},
                                               {"Subject", std::move(subject)},
                                               {"Challenge", scep.challenge},
                                               {"Keysize", config.scep->key_size},
                                               {"Key Type", "RSA"},
                                               {"Key Usage", kScepKeyUsage}};

  const bool signs = config.identity_mode == IdentityMode::signature || config.identity_mode == IdentityMode::both;
  plist::Dict mdm = payload("com.apple.mdm", "mdm", kMdmPayloadUuid, "Device management");
  mdm["IdentityCertificateUUID"] = std::string(kScepPayloadUuid);
  mdm["Topic"] = config.topic;
  mdm["ServerURL"] = public_url + std::string(kServerPath);
  mdm["CheckInURL"] = public_url + std::string(kCheckInPath);
  mdm["SignMessage"] = signs;
  mdm["CheckOutWhenRemoved"] = true;
  mdm["AccessRights"] = kAllAccessRights;
  // A server without per-user connections (user-token-refused) does not declare them either.
  if (config.fault != Fault::per_user_undeclared && config.fault != Fault::user_token_refused) {
    mdm["ServerCapabilities"] = plist::Array{"com.apple.mdm.per-user-connections"};
  }
  if (config.fault == Fault::enrollment_profile_malformed) {
    // Mistakes a device shrugs off but Apple's schema does not allow: a string for an integer,
    // and a required key left out.
    mdm["AccessRights"] = std::to_string(kAllAccessRights);
    mdm.erase("PayloadVersion");
  }

  plist::Array content{std::move(scep_payload), std::move(mdm)};
  if (!config.tls_ca_pem.empty()) {
    // Devices trust the server's certificate through it; a CA that does not read is left out
    // (Config is the caller's, who made the CA).
    if (auto der = pki::certificate_der(config.tls_ca_pem)) {
      plist::Dict root = payload("com.apple.security.root", "root", kRootPayloadUuid, "mdmconform reference CA");
      root["PayloadCertificateFileName"] = "mdmconform-reference-ca.cer";
      root["PayloadContent"] = plist::Data{*std::move(der)};
      content.push_back(std::move(root));
    }
  }
  plist::Dict profile{{"PayloadType", "Configuration"},
                      {"PayloadVersion", 1},
                      {"PayloadIdentifier", std::string(kProfileIdentifier)},
                      {"PayloadUUID", std::string(kProfileUuid)},
                      {"PayloadDisplayName", "mdmconform reference server"},
                      {"PayloadOrganization", "mdmconform"},
                      {"PayloadScope", "System"},
                      {"PayloadContent", std::move(content)}};
  return plist::to_xml(plist::Value(std::move(profile)));
}

}  // namespace

struct MdmService::State {
  // Shared with copies of the service (the handler fuzzer keeps hundreds), and read without the
  // lock: nothing changes it. Its public_url is copied into `public_url`, which set_public_url
  // changes under the lock.
  std::shared_ptr<const Config> shared_config;
  const Config& config() const { return *shared_config; }
  std::string public_url;
  StateMutex mutex;
  std::map<std::string, DeviceState> devices;    // by UDID, once authenticated
  std::map<std::string, ChannelState> channels;  // by channel id, once a TokenUpdate arrived
  std::uint64_t generated = 0;                   // commands the not-now-endless fault made up
  std::set<std::string> wedged;                  // peers the wedged-after-garbage fault refuses
  std::map<std::string, std::string> last_idle;  // by UDID: the channel id of the last Idle (a fault)
  bool wedged_by_empty_udid = false;             // the empty-udid-wedge seeded bug fired
  bool writes_wedged = false;                    // the writes-wedged-after-no-udid fault fired
  std::set<std::string> corrupted_devices;       // UDIDs the user-key-corrupts seeded bug marked
  std::uint64_t clock = 0;                       // counts requests from known devices, for last_seen
  std::size_t remembered = 0;                    // finished commands in every channel's `done`
  // At least the number and the plist bytes of the queued commands: they grow as commands are
  // queued, and are made exact (by counting the queues) only when they reach their bounds.
  std::size_t queued_count_bound = 0;
  std::size_t queued_bytes_bound = 0;
  std::uint64_t push_serial = 0;  // numbers enrollments and TokenUpdates (PushTarget)
  MdmService::PushRequester push_requester;
  DeclarationStore declarations;
  std::uint64_t declarative_commands = 0;  // numbers the DeclarativeManagement commands it queues
  // The push-after-checkout fault: push records of channels that checked out, by channel id.
  std::map<std::string, PushTarget> checked_out_push;
  // The shared-response-slot fault: a slot per device with a request in flight, by UDID, under
  // their own lock (requests wait for a slot without holding `mutex`).
  ResponseSlots slots;

  bool push_faulty(PushFault f) const { return config().push.fault == f; }
  std::optional<PushTarget> push_target_of(const std::string& id) const {
    auto found = channels.find(id);
    if (found == channels.end() || found->second.token.empty()) {
      auto kept = checked_out_push.find(id);
      if (push_faulty(PushFault::push_after_checkout) && kept != checked_out_push.end()) return kept->second;
      return std::nullopt;
    }
    const auto& channel = found->second;
    PushTarget target{
        id, lower_hex(channel.token), channel.push_magic, channel.topic, channel.enrollment, channel.token_update};
    if (push_faulty(PushFault::wrong_magic) && !Channel::from_id(id).value_or(Channel{}).is_user()) {
      std::reverse(target.push_magic.begin(), target.push_magic.end());
    }
    return target;
  }
  void request_push(const std::string& id) {
    if (!push_requester) return;
    if (auto target = push_target_of(id)) push_requester(*target);
  }

  // The channels of one device: its own, "UDID", and its users', "UDID:UserID".
  template <class Visit>
  void for_each_channel_of(const std::string& udid, const Visit& visit) {
    for (auto it = channels.lower_bound(udid); it != channels.end() && it->first.starts_with(udid);) {
      auto parsed = Channel::from_id(it->first);
      auto next = std::next(it);
      if (parsed && parsed->udid == udid) visit(it);
      it = next;
    }
  }
  void forget_channels(const std::string& udid) {
    for_each_channel_of(udid, [this](auto it) {
      if (push_faulty(PushFault::push_after_checkout) && !it->second.token.empty() &&
          checked_out_push.size() < config().bounds.devices * (config().bounds.users_per_device + 1)) {
        checked_out_push[it->first] = *push_target_of(it->first);
      }
      remembered -= it->second.done.size();
      channels.erase(it);
    });
  }
  void forget_device(const std::string& udid) {
    forget_channels(udid);
    devices.erase(udid);
    last_idle.erase(udid);
  }
  std::size_t user_channels_of(const std::string& udid) {
    std::size_t users = 0;
    for_each_channel_of(udid, [&](auto it) { users += it->first.size() > udid.size() ? 1 : 0; });
    return users;
  }
  // Takes a device in, bound to `fresh`; past the bound, the device heard from least recently
  // is forgotten, as if it had checked out.
  DeviceState& admit_device(const std::string& udid, DeviceState fresh) {
    if (!devices.count(udid) && devices.size() >= config().bounds.devices) {
      auto oldest = std::min_element(devices.begin(), devices.end(), [](const auto& a, const auto& b) {
        return a.second.last_seen < b.second.last_seen;
      });
      forget_device(std::string(oldest->first));
    }
    fresh.last_seen = ++clock;
    return devices[udid] = std::move(fresh);
  }
  // The queued commands and their plist bytes, counted.
  std::pair<std::size_t, std::size_t> queue_totals() const {
    std::size_t count = 0;
    std::size_t bytes = 0;
    for (const auto& [id, channel] : channels) {
      count += channel.queue.size();
      for (const auto& c : channel.queue) bytes += c.xml.size();
    }
    return {count, bytes};
  }
  // True when `commands` more commands (0 or 1) of `bytes` more plist bytes fit in the queues'
  // bounds; they are then counted as queued.
  bool make_room(std::size_t commands, std::size_t bytes) {
    auto fits = [&] {
      return queued_count_bound + commands <= config().bounds.queued_commands &&
             queued_bytes_bound + bytes <= config().bounds.queued_bytes;
    };
    if (!fits()) std::tie(queued_count_bound, queued_bytes_bound) = queue_totals();
    if (!fits()) return false;
    queued_count_bound += commands;
    queued_bytes_bound += bytes;
    return true;
  }

  // The profiles-bundled fault: moves a new profile's payloads into a queued InstallProfile.
  bool bundle_into_queued_profile(ChannelState& channel, const protocol::Command& incoming) {
    auto payload_of = [](const plist::Dict& command) -> std::optional<plist::Value> {
      auto inner = command.find("Command");
      const auto* dict = inner == command.end() ? nullptr : inner->second.as_dict();
      auto payload = dict ? dict->find("Payload") : plist::Dict::const_iterator{};
      if (!dict || payload == dict->end() || !payload->second.as_data()) return std::nullopt;
      auto parsed = plist::parse(payload->second.as_data()->bytes);
      if (!parsed) return std::nullopt;
      return std::move(parsed).value();
    };
    auto extra = payload_of(incoming.body);
    if (!extra || !extra->find("PayloadContent") || !extra->find("PayloadContent")->as_array()) return false;
    for (auto& queued : channel.queue) {
      if (queued.request_type != "InstallProfile") continue;
      auto command = plist::parse(queued.xml);
      if (!command || !command->as_dict()) continue;
      auto profile = payload_of(*command->as_dict());
      auto* content = profile && profile->as_dict() ? (*profile->as_dict())["PayloadContent"].as_array() : nullptr;
      if (!content) continue;
      for (const auto& p : *extra->find("PayloadContent")->as_array()) content->push_back(p);
      plist::Dict whole = *command->as_dict();
      (*whole["Command"].as_dict())["Payload"] = plist::Data{plist::to_xml(*profile)};
      auto merged = plist::to_xml(plist::Value(std::move(whole)));
      if (merged.size() > queued.xml.size() && !make_room(0, merged.size() - queued.xml.size())) return false;
      queued.xml = std::move(merged);
      return true;
    }
    return false;
  }

  // The unknown-status-acks fault: removes the command a malformed report names.
  void take_as_acknowledged(const plist::Value& message) {
    auto udid = message.string_at("UDID");
    auto uuid = message.string_at("CommandUUID");
    if (!udid || !uuid) return;
    auto id = protocol::Channel{*udid, message.string_at("UserID").value_or("")}.id();
    if (auto found = channels.find(id); found != channels.end()) {
      std::erase_if(found->second.queue, [&](const auto& c) { return c.uuid == *uuid; });
    }
  }

  bool faulty(Fault f) const { return config().fault == f; }
  bool seeded(SeededBug b) const { return config().seeded_bug == b; }

  // The seeded bug's answer to a message that parsed, when the message reaches it.
  bool writes(const plist::Value& message, bool is_check_in) const;
  std::optional<net::ServerResponse> seeded_bug_answer(std::string_view body, const plist::Value& message,
                                                       bool is_check_in);

  // The fingerprint of the identity a request proves, or a refusal.
  std::variant<std::string, net::ServerResponse> identity_of(const net::ServerRequest& request) const;
  // Refuses a request for an enrolled device made under another identity (ENR-SAME-IDENTITY).
  std::optional<net::ServerResponse> check_binding(const std::string& udid, const std::string& identity);

  // A check-in or report that parsed, from a peer proving `fingerprint`: the answer, under the lock.
  net::ServerResponse answer_message(std::string_view body, const plist::Value& parsed, bool is_check_in,
                                     const std::string& fingerprint);
  // The shared-response-slot fault: `answer` for the first of a device's overlapping requests,
  // and its answer for the others too.
  net::ServerResponse through_shared_slot(const std::string& udid, const std::function<net::ServerResponse()>& answer);
  net::ServerResponse check_in(const protocol::CheckIn& msg, const std::string& identity);
  net::ServerResponse user_authenticate(DeviceState& device, const protocol::CheckIn& msg);
  net::ServerResponse command_report(const protocol::Report& report);
  net::ServerResponse next_command(ChannelState& channel, const Channel& who, const protocol::Report& report);
  net::ServerResponse enqueue(const std::string& id, const std::string& body, bool push);
  // The declarative side: the admin API, the channels told of a change, the check-in's endpoints.
  net::ServerResponse declarations_admin(const net::ServerRequest& request, const std::string& path);
  std::vector<std::string> tell_channels(const DeclarationStore::Change& change, bool notify);
  net::ServerResponse declarative(const protocol::CheckIn& msg);
};

MdmService::MdmService(Config config) : state_(std::make_unique<State>()) {
  // A push fault mode sets the push misbehaviour (push_faults.hpp).
  if (auto push = push_fault_of(config.fault); push != PushFault::none) config.push.fault = push;
  state_->public_url = std::exchange(config.public_url, {});  // the shared Config holds none
  state_->shared_config = std::make_shared<const Config>(std::move(config));
  DeclarationStoreFaults store_faults;
  store_faults.users_see_device = state_->faulty(Fault::ddm_device_declarations_on_user);
  store_faults.token_from_identifiers = state_->faulty(Fault::ddm_token_unchanged);
  state_->declarations = DeclarationStore(state_->config().bounds.declarative, base::now_rfc3339(), store_faults);
}

MdmService::MdmService(const MdmService& other) {
  std::lock_guard<std::mutex> lock(other.state_->mutex);
  state_ = std::make_unique<State>(*other.state_);
  // A copy is a service of its own: the original's pushes are not its to ask for.
  state_->push_requester = nullptr;
}

MdmService::~MdmService() = default;

net::ServerResponse MdmService::handle(const net::ServerRequest& request) {
  std::string path = path_of(request.target);
  if (path == kEnrollPath) {
    if (request.method != "GET") return text(405, "use GET\n");
    std::lock_guard lock(state_->mutex);
    if (!state_->config().scep) {
      return text(404,
                  "no enrollment profile: no SCEP server is configured to issue the device identity it would name "
                  "(scepserver, Debian package scep, is not installed or was turned off)\n");
    }
    return net::ServerResponse{200,
                               {{"Content-Type", std::string(kEnrollmentProfileContentType)}},
                               enrollment_profile_xml(state_->config(), state_->public_url),
                               false};
  }
  if (path == kDeclarationsPath || starts_with(path, std::string(kDeclarationsPath) + "/") ||
      starts_with(path, kSetDeclarationsPrefix) || starts_with(path, kEnrollmentSetsPrefix) ||
      starts_with(path, kStatusReportPrefix)) {
    std::lock_guard lock(state_->mutex);
    return state_->declarations_admin(request, path);
  }
  if (request.method != "PUT" && request.method != "POST") return text(405, "use PUT\n");

  if (starts_with(path, kEnqueuePrefix)) {
    std::lock_guard lock(state_->mutex);
    return state_->enqueue(percent_decode(path.substr(kEnqueuePrefix.size())), request.body,
                           !asks_no_push(request.target));
  }
  if (path != kCheckInPath && path != kServerPath) return text(404, "no such endpoint\n");
  if (path == kCheckInPath && state_->faulty(Fault::checkin_on_server_url_only)) {
    return text(404, "no such endpoint: check-ins go to /mdm\n");
  }
  if (state_->seeded(SeededBug::empty_udid_wedge)) {
    std::lock_guard lock(state_->mutex);
    if (state_->wedged_by_empty_udid) return text(503, "service unavailable\n");
  }

  if (request.body.size() > kMaxMessageBytes) {
    if (state_->faulty(Fault::oversize_500)) return text(500, "out of memory\n");
    return text(413, fmt::format("a check-in or report is at most {} bytes\n", kMaxMessageBytes));
  }
  // Who is asking comes first: bytes from an unauthenticated peer are not even parsed.
  auto identity = state_->identity_of(request);
  if (auto* refusal = std::get_if<net::ServerResponse>(&identity)) return *refusal;
  const auto& fingerprint = std::get<std::string>(identity);

  auto parsed = plist::parse(request.body, state_->config().plist_limits);
  if (!parsed) {
    std::lock_guard lock(state_->mutex);
    if (state_->faulty(Fault::wedged_after_garbage) && state_->wedged.size() < 4096)
      state_->wedged.insert(request.peer);
    if (state_->faulty(Fault::malformed_500)) return text(500, "internal error\n");
    return text(400, "body is not a plist: " + parsed.message() + "\n");
  }
  {
    std::lock_guard lock(state_->mutex);
    if (state_->wedged.count(request.peer)) return text(500, "internal error\n");
  }

  // One URL may serve both kinds; the Content-Type tells them apart, as in NanoMDM.
  auto content_type = net::find_header(request.headers, "Content-Type").value_or("");
  bool is_check_in = path == kCheckInPath || starts_with(content_type, protocol::kCheckInContentType);
  auto answer = [&] { return state_->answer_message(request.body, *parsed, is_check_in, fingerprint); };
  if (state_->faulty(Fault::shared_response_slot)) {
    if (auto udid = parsed->string_at("UDID"); udid && !udid->empty()) {
      return state_->through_shared_slot(*udid, answer);
    }
  }
  return answer();
}

net::ServerResponse MdmService::State::answer_message(std::string_view body, const plist::Value& parsed,
                                                      bool is_check_in, const std::string& fingerprint) {
  std::lock_guard lock(mutex);
  if (!seeded(SeededBug::none)) {
    if (auto odd = seeded_bug_answer(body, parsed, is_check_in)) return *odd;
  }
  if (faulty(Fault::writes_wedged_after_no_udid)) {
    // As a server that takes a lock for the message, fails on the missing UDID and never lets go:
    // from then on every request that would write hangs, while reads are still answered.
    if (!parsed.find("UDID")) writes_wedged = true;
    if (writes_wedged && writes(parsed, is_check_in)) return held_forever();
  }
  if (is_check_in) {
    auto decoded = protocol::decode_check_in(parsed);
    if (!decoded) return text(400, decoded.message() + "\n");
    const auto& msg = *decoded;
    if (msg.type != MessageType::authenticate) {
      if (auto refusal = check_binding(msg.channel.udid, fingerprint)) return *refusal;
    }
    return check_in(msg, fingerprint);
  }
  auto decoded = protocol::decode_report(parsed);
  if (!decoded) {
    const bool status_at_fault = protocol::decode_error_key(decoded.error()) == "Status";
    if (faulty(Fault::unknown_status_acks) && status_at_fault) take_as_acknowledged(parsed);
    return faulty(Fault::unknown_status_acks) && status_at_fault ? empty_ok() : text(400, decoded.message() + "\n");
  }
  const auto& report = *decoded;
  if (auto refusal = check_binding(report.channel.udid, fingerprint)) return *refusal;
  return command_report(report);
}

// The shared-response-slot fault, as a server that writes each device's answer into one slot
// and sends whatever the slot holds: the first request of a device takes the slot, works
// (slot_hold), answers, and frees it; a request of the same device that came meanwhile, on any
// channel, is never handled: it waits for the slot and is sent what is in it.
net::ServerResponse MdmService::State::through_shared_slot(const std::string& udid,
                                                           const std::function<net::ServerResponse()>& answer) {
  std::unique_lock<std::mutex> lock(slots.mutex);
  // Slots exist only while a request holds or waits for one, so there are never more than the
  // requests in flight; std::map keeps `slot` in place while others come and go.
  auto& slot = slots.by_udid[udid];
  if (slot.busy) {
    const auto ticket = slot.answered;
    ++slot.waiting;
    const bool came = slots.freed.wait_for(lock, kSlotWait, [&] { return slot.answered != ticket; });
    --slot.waiting;
    auto out = came ? slot.answer : empty_ok();
    if (!slot.busy && slot.waiting == 0) slots.by_udid.erase(udid);
    return out;
  }
  slot.busy = true;
  lock.unlock();
  std::this_thread::sleep_for(config().slot_hold);
  auto out = answer();
  lock.lock();
  slot.answer = out;
  slot.busy = false;
  ++slot.answered;
  if (slot.waiting == 0) slots.by_udid.erase(udid);
  slots.freed.notify_all();
  return out;
}

// Each seeded bug fires only on input no well-formed message holds; the conformance suite
// passes with any of them on (SeededBugTest in harness/tests/mutation_test.cpp).
std::optional<net::ServerResponse> MdmService::State::seeded_bug_answer(std::string_view body,
                                                                        const plist::Value& message, bool is_check_in) {
  const auto* dict = message.as_dict();
  auto key = [&](std::string_view name) { return dict ? message.find(name) : nullptr; };
  switch (config().seeded_bug) {
    case SeededBug::none: return std::nullopt;
    case SeededBug::wrong_type_500: {
      if (!is_check_in) return std::nullopt;
      for (std::string_view name :
           {"MessageType", "Topic", "UDID", "UserID", "UserShortName", "UserLongName", "PushMagic"}) {
        // The bug: a string read without checking its type first.
        if (const auto* value = key(name); value && value->as_integer()) return text(500, "internal error: bad type\n");
      }
      return std::nullopt;
    }
    case SeededBug::long_string_hang: {
      bool long_string = any_value(
          message, [](const plist::Value& v) { return v.as_string() && v.as_string()->size() > kSeededLongString; });
      if (!long_string) return std::nullopt;
      net::ServerResponse hang = empty_ok();
      hang.stall = kSeededHang;
      return hang;
    }
    case SeededBug::user_key_corrupts: {
      auto udid = message.string_at("UDID");
      if (!udid) return std::nullopt;
      auto user_id = message.string_at("UserID");
      if (is_check_in && message.string_at("MessageType") == "Authenticate" && user_id && !user_id->empty()) {
        // The bug: the device record is overwritten with the user's, and the message taken.
        if (corrupted_devices.size() < kMaxCorruptedDevices) corrupted_devices.insert(*udid);
        return empty_ok();
      }
      if (!is_check_in && !user_id && corrupted_devices.count(*udid))
        return text(500, "internal error: device record corrupt\n");
      return std::nullopt;
    }
    case SeededBug::deep_nesting_reset:
      if (nesting_depth(message) >= kSeededDeepNesting) return reset_connection();
      return std::nullopt;
    case SeededBug::binary_plist_500: {
      // Binary check-ins as such are well-formed (the seed corpus holds them): the bug is in
      // the binary path's handling of a date, a type no check-in key has.
      if (!is_check_in || plist::sniff(body) != plist::Format::binary) return std::nullopt;
      if (any_value(message, [](const plist::Value& v) { return v.as_date() != nullptr; })) {
        return text(500, "internal error: binary date\n");
      }
      return std::nullopt;
    }
    case SeededBug::negative_integer_500: {
      if (is_check_in) return std::nullopt;
      bool negative = any_value(message, [](const plist::Value& v) { return v.as_integer() && *v.as_integer() < 0; });
      if (negative) return text(500, "internal error: negative value\n");
      return std::nullopt;
    }
    case SeededBug::empty_udid_wedge:
      if (message.string_at("UDID") == "") {
        wedged_by_empty_udid = true;
        return text(503, "service unavailable\n");
      }
      return std::nullopt;
    case SeededBug::unicode_name_500: {
      auto name = message.string_at("UserShortName");
      bool non_ascii =
          name && std::any_of(name->begin(), name->end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
      if (non_ascii) return text(500, "internal error: cannot encode the user name\n");
      return std::nullopt;
    }
    case SeededBug::duplicate_key_500:
      if (plist::sniff(body) == plist::Format::xml && xml_has_duplicate_key(body))
        return text(500, "internal error: duplicate key\n");
      return std::nullopt;
    case SeededBug::data_topic_reset:
      if (const auto* topic = key("Topic"); is_check_in && topic && topic->as_data()) return reset_connection();
      return std::nullopt;
  }
  return std::nullopt;
}

void MdmService::set_push_requester(PushRequester requester) {
  std::lock_guard lock(state_->mutex);
  state_->push_requester = std::move(requester);
}

std::optional<PushTarget> MdmService::push_target(const std::string& channel_id) const {
  std::lock_guard lock(state_->mutex);
  return state_->push_target_of(channel_id);
}

void MdmService::set_public_url(std::string url) {
  std::lock_guard lock(state_->mutex);
  state_->public_url = std::move(url);
}

Footprint MdmService::footprint() const {
  std::lock_guard lock(state_->mutex);
  Footprint f;
  f.devices = state_->devices.size();
  f.channels = state_->channels.size();
  for (const auto& [id, channel] : state_->channels) f.queued_commands += channel.queue.size();
  f.queued_bytes = state_->queue_totals().second;
  f.remembered_commands = state_->remembered;
  for (const auto& [udid, device] : state_->devices) {
    f.largest_user_set = std::max({f.largest_user_set, device.refused_users.size(), device.challenged_users.size()});
  }
  return f;
}

std::variant<std::string, net::ServerResponse> MdmService::State::identity_of(const net::ServerRequest& request) const {
  auto mode = config().identity_mode;
  // Devices enrolled through the profile carry an identity from the SCEP server's CA.
  const std::string trusted =
      config().scep ? config().client_ca_pem + "\n" + config().scep->ca_pem : config().client_ca_pem;
  std::string from_tls;
  std::string from_signature;
  std::string signer_der;
  if (mode == IdentityMode::mtls || mode == IdentityMode::both) {
    // The HTTP server hands over a client certificate only after verifying it against the CA.
    if (request.peer_certificate_der.empty()) return text(403, "a client certificate is required\n");
    from_tls = pki::sha256_fingerprint(request.peer_certificate_der);
  }
  if (mode == IdentityMode::signature || mode == IdentityMode::both) {
    auto header = net::find_header(request.headers, "Mdm-Signature");
    if (!header) return text(400, "Mdm-Signature header is required\n");
    auto check = pki::verify_mdm_signature(*header, request.body, trusted);
    if (!check) return text(400, "Mdm-Signature: " + check.message() + "\n");
    signer_der = *check;
    from_signature = pki::sha256_fingerprint(signer_der);
  }
  if (faulty(Fault::scep_identity_refused) && config().scep) {
    // The TLS layer still takes the SCEP CA's certificates: the refusal is an HTTP answer.
    for (const std::string* der : {&request.peer_certificate_der, static_cast<const std::string*>(&signer_der)}) {
      if (!der->empty() && !pki::verify_client_certificate(*der, config().client_ca_pem)) {
        return text(403, "this server takes identities from its own CA only, not from its SCEP server's\n");
      }
    }
  }
  if (mode == IdentityMode::both && from_tls != from_signature) {
    return text(403, "the Mdm-Signature signer is not the TLS client certificate\n");
  }
  return from_tls.empty() ? from_signature : from_tls;
}

std::optional<net::ServerResponse> MdmService::State::check_binding(const std::string& udid,
                                                                    const std::string& identity) {
  auto device = devices.find(udid);
  if (device == devices.end() || device->second.identity == identity) return std::nullopt;
  if (faulty(Fault::identity_not_bound)) return std::nullopt;
  // Apple: "The device and user connections use the same client certificate to authenticate."
  // A request for this device under another identity comes from somebody else.
  return text(403, "this identity is not the one device " + udid + " enrolled with\n");
}

net::ServerResponse MdmService::State::check_in(const protocol::CheckIn& msg, const std::string& identity) {
  const auto& ch = msg.channel;
  // Channels are named "UDID" and "UDID:UserID" (NanoMDM's ids, which the admin API takes): a
  // UDID that is empty or holds ':' would name another device's channel.
  if (ch.udid.empty() || ch.udid.find(':') != std::string::npos) {
    return text(400, "UDID must be non-empty and hold no ':'\n");
  }
  if (auto field = overlong_field(msg, config().bounds.kept_field_bytes)) {
    return text(400, fmt::format("{} is longer than the {} bytes the reference server keeps\n", *field,
                                 config().bounds.kept_field_bytes));
  }
  if (msg.type == MessageType::authenticate) {
    if (faulty(Fault::authenticate_refused)) return text(500, "internal error\n");
    // A new Authenticate starts the enrollment over, bound to the identity it came with:
    // forget the old channels.
    DeviceState fresh;
    fresh.topic = msg.topic.value_or("");
    fresh.identity = identity;
    admit_device(ch.udid, std::move(fresh));
    forget_channels(ch.udid);
    return empty_ok();
  }

  auto device = devices.find(ch.udid);
  if (device == devices.end() && faulty(Fault::unknown_device_served)) {
    DeviceState fresh;
    fresh.topic = msg.topic.value_or("");
    fresh.identity = identity;
    admit_device(ch.udid, std::move(fresh));
    device = devices.find(ch.udid);
  }
  if (device == devices.end()) return unrecognized_device();
  device->second.last_seen = ++clock;

  switch (msg.type) {
    case MessageType::token_update: {
      if (ch.is_user()) {
        if (faulty(Fault::user_token_refused)) return text(400, "user channels not supported\n");
        if (device->second.refused_users.count(ch.user_id) && !faulty(Fault::refused_user_enrollable)) {
          // Apple: a refused network user sends nothing more until the next login; a server
          // that takes its TokenUpdate anyway would manage a user it said it would not.
          return text(410, "user not managed\n");
        }
      } else if (faulty(Fault::device_token_refused)) {
        return text(400, "bad token\n");
      }
      if (ch.is_user() && !channels.count(ch.id()) && user_channels_of(ch.udid) >= config().bounds.users_per_device) {
        return text(403, fmt::format("device {} has {} user channels; the reference server takes no more\n", ch.udid,
                                     config().bounds.users_per_device));
      }
      auto [entry, fresh] = channels.try_emplace(ch.id());
      auto& channel = entry->second;
      if (fresh) channel.enrollment = ++push_serial;
      // A new enrollment's TokenUpdate supersedes what a checked-out one left (the fault's).
      if (fresh) checked_out_push.erase(ch.id());
      if (channel.token.empty() || !push_faulty(PushFault::first_token_only)) {
        channel.token = *msg.token;
        channel.push_magic = *msg.push_magic;
      }
      channel.topic = msg.topic.value_or(device->second.topic);
      channel.token_update = ++push_serial;
      if (ch.is_user() && push_faulty(PushFault::user_token_on_device)) {
        if (auto own = channels.find(ch.udid); own != channels.end()) {
          own->second.token = *msg.token;
          own->second.push_magic = *msg.push_magic;
          own->second.token_update = ++push_serial;
        }
      }
      return empty_ok();
    }
    case MessageType::user_authenticate: return user_authenticate(device->second, msg);
    case MessageType::declarative_management: return declarative(msg);
    case MessageType::check_out:
      if (faulty(Fault::checkout_refused)) return text(400, "CheckOut not supported\n");
      forget_device(ch.udid);
      return empty_ok();
    default:
      return text(400,
                  fmt::format("{} is not supported by the reference server\n", protocol::message_type_name(msg.type)));
  }
}

net::ServerResponse MdmService::State::user_authenticate(DeviceState& device, const protocol::CheckIn& msg) {
  const auto& user_id = msg.channel.user_id;
  bool managed = config().managed_network_users.count(user_id) > 0 || faulty(Fault::network_user_accepted);
  if (!managed) {
    // Apple: "If the server won't manage a network user, it returns a 410 HTTP status code."
    // Past the bound the refusal still stands; it is only not remembered.
    if (device.refused_users.size() < config().bounds.users_per_device) device.refused_users.insert(user_id);
    return text(410, "this server does not manage network user " + user_id + "\n");
  }
  if (!msg.digest_response) {
    // Past the bound the user gets a challenge it cannot answer: its DigestResponse gets 400.
    if (device.challenged_users.size() < config().bounds.users_per_device) device.challenged_users.insert(user_id);
    if (faulty(Fault::digest_challenge_missing)) return empty_ok();
    return plist_ok(plist::Dict{{"DigestChallenge", config().digest_challenge}});
  }
  if (!device.challenged_users.count(user_id)) {
    return text(400, "DigestResponse without a DigestChallenge\n");
  }
  device.refused_users.erase(user_id);
  return empty_ok();
}

// Whether answering the message writes: any check-in, a report of a command, and an Idle the
// channel has a command queued for (delivering marks it sent). An Idle with nothing queued only
// reads.
bool MdmService::State::writes(const plist::Value& message, bool is_check_in) const {
  if (is_check_in) return true;
  auto status = message.string_at("Status");
  if (status != "Idle") return true;
  auto udid = message.string_at("UDID").value_or("");
  auto user_id = message.string_at("UserID").value_or("");
  auto found = channels.find(Channel{udid, user_id}.id());
  return found != channels.end() && !found->second.queue.empty();
}

net::ServerResponse MdmService::State::command_report(const protocol::Report& report) {
  const auto& who = report.channel;
  auto found = channels.find(who.id());
  if (faulty(Fault::unknown_device_served) && (!devices.count(who.udid) || found == channels.end())) {
    return empty_ok();
  }
  // Apple: a server refuses a device it does not know with 403 and this code (not 401, which
  // makes the device unenroll itself).
  auto device = devices.find(who.udid);
  if (device == devices.end()) return unrecognized_device();
  if (found == channels.end()) return unrecognized_device();
  device->second.last_seen = ++clock;
  auto& channel = found->second;

  if (report.status == Status::idle) {
    channel.in_series = true;
    channel.held_back.clear();
    channel.resent.clear();
    channel.device_configured_sent = false;
  } else if (report.status == Status::not_now) {
    if (faulty(Fault::not_now_dropped)) {
      std::erase_if(channel.queue, [&](const auto& c) { return c.uuid == report.command_uuid; });
    } else {
      // Apple: the client answers NotNow while the user is in Setup Assistant; the server
      // resends in the next series. Holding it back also ends a series that would loop.
      // Only a queued command is held: held_back stays as small as the queue.
      if (holds_command(channel, report.command_uuid)) channel.held_back.insert(report.command_uuid);
    }
    if (faulty(Fault::not_now_resent) && !channel.resent.count(report.command_uuid)) {
      for (const auto& c : channel.queue) {
        if (c.uuid == report.command_uuid) {
          channel.resent.insert(report.command_uuid);
          return plist_bytes(c.xml);
        }
      }
    }
    if (faulty(Fault::not_now_endless) && report.flags.user_configuration &&
        channel.queue.size() < config().bounds.queued_per_channel) {
      // Queues a follow-up query for every NotNow: nothing is lost, but there is always one
      // more command, so the series never ends (up to the queue's bound).
      auto command = protocol::make_command(fmt::format("FOLLOW-UP-{:08}", ++generated), "DeviceInformation");
      auto xml = plist::to_xml(plist::Value(command.body));
      if (make_room(1, xml.size()))
        channel.queue.push_back(QueuedCommand{command.uuid, command.request_type, std::move(xml)});
    }
  } else {
    // Acknowledged, Error or CommandFormatError: the command is done. A report for a command
    // the server does not know (a retry, or a duplicate) is answered like any other: a
    // non-2xx makes the client cache the report and send it again.
    bool queued = holds_command(channel, report.command_uuid);
    bool finished = channel.done.count(report.command_uuid) > 0;
    if (finished && faulty(Fault::duplicate_report_conflict)) return text(409, "already acknowledged\n");
    if (!queued && !finished && faulty(Fault::unknown_uuid_500)) return text(500, "no such command\n");
    if (queued && faulty(Fault::acked_redelivered)) {
      channel.held_back.insert(report.command_uuid);  // not removed: sent again next series
    } else {
      std::erase_if(channel.queue, [&](const auto& c) { return c.uuid == report.command_uuid; });
      // Past the bound a later duplicate report is taken for one about an unknown command,
      // which gets the same 200.
      if (queued && remembered < config().bounds.remembered_commands &&
          channel.done.insert(report.command_uuid).second) {
        ++remembered;
      }
      if (faulty(Fault::user_command_on_device) || faulty(Fault::device_command_on_user)) {
        // These faults keep one queue per device in effect: a command is done wherever it
        // was answered.
        for (auto& [id, other] : channels) {
          auto parsed = Channel::from_id(id);
          if (!parsed || parsed->udid != who.udid) continue;
          std::erase_if(other.queue, [&](const auto& c) { return c.uuid == report.command_uuid; });
        }
      }
    }
  }
  if (faulty(Fault::last_idle_channel)) {
    // One series per device: a report is answered from the channel that last said Idle.
    if (report.status == Status::idle) {
      last_idle[who.udid] = who.id();
    } else if (auto last = last_idle.find(who.udid); last != last_idle.end() && last->second != who.id()) {
      if (auto other = channels.find(last->second); other != channels.end()) {
        auto other_channel = Channel::from_id(last->second);
        return next_command(other->second, *other_channel, report);
      }
    }
  }
  return next_command(channel, who, report);
}

net::ServerResponse MdmService::State::next_command(ChannelState& channel, const Channel& who,
                                                    const protocol::Report& report) {
  bool is_idle = report.status == Status::idle;
  if (faulty(Fault::one_command_per_series) && !is_idle) {
    channel.in_series = false;
    return empty_ok();
  }
  auto pick = [&](ChannelState& from) -> const QueuedCommand* {
    for (const auto& c : from.queue) {
      if (!from.held_back.count(c.uuid)) return &c;
    }
    return nullptr;
  };
  const QueuedCommand* next = pick(channel);
  if (!next && who.is_user() && faulty(Fault::device_command_on_user)) {
    if (auto device_channel = channels.find(who.udid); device_channel != channels.end()) {
      next = pick(device_channel->second);
    }
  }
  if (!next && !who.is_user() && faulty(Fault::user_command_on_device)) {
    for (auto& [id, other] : channels) {
      auto parsed = Channel::from_id(id);
      if (parsed && parsed->udid == who.udid && parsed->is_user() && (next = pick(other))) break;
    }
  }
  if (next) {
    return plist_bytes(next->xml);
  }
  // Apple: the client in Setup Assistant answers NotNow "until it receives a reply with no
  // additional commands (an empty body) or it receives a DeviceConfigured command on the user
  // channel". The reference server sends DeviceConfigured once its queue is exhausted, so a
  // harness can see both endings, on the user channel as the article says, though Apple's schema
  // lists it device-channel only (protocol::kDeviceConfigured says why the article wins).
  // With the queues full it ends the series with the empty body instead, the other ending
  // Apple allows.
  if (who.is_user() && report.flags.user_configuration && !channel.device_configured_sent &&
      !faulty(Fault::no_device_configured) && channel.queue.size() < config().bounds.queued_per_channel) {
    auto command = protocol::make_command(fmt::format("DEVICE-CONFIGURED-{:08}", ++generated),
                                          std::string(protocol::kDeviceConfigured));
    auto xml = plist::to_xml(plist::Value(command.body));
    if (make_room(1, xml.size())) {
      channel.device_configured_sent = true;
      channel.queue.push_front(QueuedCommand{command.uuid, command.request_type, std::move(xml)});
      return plist_bytes(channel.queue.front().xml);
    }
  }
  // Apple: the series ends with an empty response: 200 and zero bytes, not an empty plist.
  channel.in_series = false;
  channel.held_back.clear();
  if (is_idle && faulty(Fault::idle_empty_plist)) return plist_ok(plist::Dict{});
  if (!is_idle && faulty(Fault::series_end_204)) return net::ServerResponse{204, {}, "", false};
  return empty_ok();
}

net::ServerResponse MdmService::State::enqueue(const std::string& id, const std::string& body, bool push) {
  auto channel_id = Channel::from_id(id);
  if (!channel_id) return text(400, "bad channel id\n");
  auto found = channels.find(channel_id->id());
  if (found == channels.end()) {
    // The push-after-checkout fault's push service looks the id up in its own records.
    if (push && push_faulty(PushFault::push_after_checkout)) request_push(channel_id->id());
    return text(404, "no enrolled channel " + id + "\n");
  }
  if (body.size() > kMaxMessageBytes) {
    return text(413, fmt::format("a command is at most {} bytes\n", kMaxMessageBytes));
  }
  if (found->second.queue.size() >= config().bounds.queued_per_channel) {
    return text(429, fmt::format("{} commands are queued on {} already\n", config().bounds.queued_per_channel, id));
  }
  auto parsed = plist::parse(body, config().plist_limits);
  if (!parsed) return text(400, "command is not a plist: " + parsed.message() + "\n");
  auto decoded = protocol::decode_command(*parsed);
  if (!decoded) return text(400, decoded.message() + "\n");
  const auto& command = *decoded;
  if (command.uuid.size() > config().bounds.kept_field_bytes ||
      command.request_type.size() > config().bounds.kept_field_bytes) {
    return text(400,
                fmt::format("CommandUUID and RequestType are at most {} bytes\n", config().bounds.kept_field_bytes));
  }
  if (holds_command(found->second, command.uuid)) return text(409, "CommandUUID already queued\n");
  auto stored = command.body;
  if (faulty(Fault::command_without_request_type)) {
    if (auto* inner = stored["Command"].as_dict()) inner->erase("RequestType");
  }
  if (faulty(Fault::command_unknown_key)) {
    if (auto* inner = stored["Command"].as_dict()) (*inner)["ServerFlavour"] = "extra";
  }
  if (faulty(Fault::profiles_bundled) && command.request_type == "InstallProfile" &&
      bundle_into_queued_profile(found->second, command)) {
    if (push) request_push(channel_id->id());
    return net::ServerResponse{200, {{"Content-Type", "application/json"}}, "{}", false};
  }
  auto xml = plist::to_xml(plist::Value(stored));
  if (!make_room(1, xml.size())) {
    return text(429, fmt::format("the queues are full ({} commands or {} bytes in all)\n",
                                 config().bounds.queued_commands, config().bounds.queued_bytes));
  }
  found->second.queue.push_back(QueuedCommand{command.uuid, command.request_type, std::move(xml)});
  if (push) request_push(channel_id->id());
  nlohmann::json answer = {
      {"command_uuid", command.uuid}, {"request_type", command.request_type}, {"id", channel_id->id()}};
  return net::ServerResponse{200,
                             {{"Content-Type", "application/json"}},
                             answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                             false};
}

net::ServerResponse MdmService::State::declarations_admin(const net::ServerRequest& request, const std::string& path) {
  const auto& method = request.method;
  const bool writes = method == "PUT" || method == "POST" || method == "DELETE";
  if (!writes && method != "GET") return text(405, "use GET, PUT or DELETE\n");
  const bool notify = !query_flag(request.target, "nonotify");
  const auto now = base::now_rfc3339();
  auto answer_change = [&](const DeclarationStore::Change& change, nlohmann::json answer) {
    answer["changed"] = change.changed;
    answer["channels"] = change.channels;  // whose DeclarationsToken moved
    answer["notified"] = tell_channels(change, notify);
    return json_answer(200, answer);
  };
  auto refused = [](const base::Error& error) { return text(400, error.message + "\n"); };
  auto param = [&](std::string_view name) {
    auto value = query_value(request.target, name);
    return value ? percent_decode(*value) : std::string{};
  };

  if (path == kDeclarationsPath) {
    if (method == "GET") return json_answer(200, declarations.identifiers());
    if (method == "DELETE") return text(405, "DELETE /v1/declarations/{id}\n");
    if (request.body.size() > config().bounds.declarative.declaration_bytes) {
      return text(413,
                  fmt::format("a declaration is at most {} bytes\n", config().bounds.declarative.declaration_bytes));
    }
    auto put = declarations.put(request.body, now);
    if (!put) return refused(put.error());
    return answer_change(put->change, {{"Identifier", put->identifier}, {"ServerToken", put->server_token}});
  }
  if (starts_with(path, std::string(kDeclarationsPath) + "/")) {
    const auto id = percent_decode(path.substr(kDeclarationsPath.size() + 1));
    if (method == "GET") {
      auto found = declarations.declaration_json(id);
      return found ? json_text(200, *found) : text(404, "no declaration " + id + "\n");
    }
    if (method != "DELETE") return text(405, "use GET or DELETE\n");
    return answer_change(declarations.remove(id, now), {{"Identifier", id}});
  }
  if (starts_with(path, kSetDeclarationsPrefix)) {
    const auto set = percent_decode(path.substr(kSetDeclarationsPrefix.size()));
    if (method == "GET") return json_answer(200, declarations.set_members(set));
    const auto id = param("declaration");
    if (id.empty()) return text(400, "?declaration={identifier} is required\n");
    if (method == "DELETE") return answer_change(declarations.remove_from_set(set, id, now), {{"set", set}});
    auto added = declarations.add_to_set(set, id, now);
    if (!added) return refused(added.error());
    return answer_change(*added, {{"set", set}});
  }
  if (starts_with(path, kEnrollmentSetsPrefix)) {
    const auto channel = percent_decode(path.substr(kEnrollmentSetsPrefix.size()));
    if (!Channel::from_id(channel)) return text(400, "bad channel id\n");
    if (method == "GET") return json_answer(200, declarations.sets_of(channel));
    const auto set = param("set");
    if (set.empty()) return text(400, "?set={name} is required\n");
    if (method == "DELETE") return answer_change(declarations.unassign(channel, set, now), {{"id", channel}});
    auto assigned = declarations.assign(channel, set, now);
    if (!assigned) return refused(assigned.error());
    return answer_change(*assigned, {{"id", channel}});
  }
  // kStatusReportPrefix
  if (method != "GET") return text(405, "use GET\n");
  const auto channel = percent_decode(path.substr(kStatusReportPrefix.size()));
  auto report = declarations.last_status(channel);
  return report ? json_text(200, *report) : text(404, "no status report from " + channel + "\n");
}

std::vector<std::string> MdmService::State::tell_channels(const DeclarationStore::Change& change, bool notify) {
  std::vector<std::string> told;
  if (!notify) return told;
  for (const auto& id : change.channels) {
    // A channel not enrolled (yet) is told nothing: it syncs when it is.
    auto found = channels.find(id);
    if (found == channels.end()) continue;
    auto& channel = found->second;
    // One DeclarativeManagement command waiting is enough; it is brought up to date, so that
    // whichever the channel gets carries the tokens it should hold now.
    auto waiting = std::find_if(channel.queue.begin(), channel.queue.end(),
                                [](const QueuedCommand& c) { return c.request_type == "DeclarativeManagement"; });
    const std::string uuid = waiting != channel.queue.end()
                                 ? waiting->uuid
                                 : fmt::format("44444D00-0000-4000-8000-{:012X}", ++declarative_commands);
    plist::Dict command;
    command["RequestType"] = plist::Value(std::string("DeclarativeManagement"));
    command["Data"] = plist::Value(plist::Data{declarations.tokens_json(id)});
    plist::Dict body;
    body["CommandUUID"] = plist::Value(uuid);
    body["Command"] = plist::Value(std::move(command));
    auto xml = plist::to_xml(plist::Value(std::move(body)));
    if (waiting != channel.queue.end()) {
      waiting->xml = std::move(xml);  // the same size but for the token's digits: the bounds stand
    } else {
      // Queues full: the token has moved all the same, and the next sync finds it.
      if (channel.queue.size() >= config().bounds.queued_per_channel || !make_room(1, xml.size())) continue;
      channel.queue.push_back(QueuedCommand{uuid, "DeclarativeManagement", std::move(xml)});
    }
    request_push(id);
    told.push_back(id);
  }
  return told;
}

namespace {

// The ddm-payload-stringified fault: every number and boolean in `j` becomes a string.
void stringify_scalars(nlohmann::json& j, int depth = 0) {
  if (depth > 64) return;  // what the store keeps nests at most 32 deep
  if (j.is_object() || j.is_array()) {
    for (auto& child : j) stringify_scalars(child, depth + 1);
  } else if (j.is_number() || j.is_boolean()) {
    j = j.dump();
  }
}

// A JSON body the store made (so it parses) changed by `edit`, for the faults that bend one.
template <class Edit>
std::string edited(const std::string& body, const Edit& edit) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return body;
  edit(j);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

net::ServerResponse MdmService::State::declarative(const protocol::CheckIn& msg) {
  const auto& ch = msg.channel;
  if (ch.is_user() && !channels.count(ch.id())) {
    return text(400, "DeclarativeManagement from user " + ch.user_id + ", whose channel is not enrolled\n");
  }
  auto endpoint_field = msg.fields.find("Endpoint");
  const std::string* endpoint = endpoint_field == msg.fields.end() ? nullptr : endpoint_field->second.as_string();
  if (!endpoint) return text(400, "DeclarativeManagement without an Endpoint string\n");
  const std::string id = ch.id();
  if (*endpoint == "tokens") {
    auto body = declarations.tokens_json(id);
    if (faulty(Fault::ddm_tokens_without_timestamp)) {
      body = edited(body, [](nlohmann::json& j) { j["SyncTokens"].erase("Timestamp"); });
    }
    return json_text(200, std::move(body));
  }
  if (*endpoint == "declaration-items") {
    auto body = declarations.items_json(id);
    if (faulty(Fault::ddm_items_token_stale)) {
      body = edited(body, [](nlohmann::json& j) {
        j["DeclarationsToken"] = "stale-" + j["DeclarationsToken"].get<std::string>();
      });
    }
    if (faulty(Fault::ddm_references_unlisted)) {
      // The configurations an activation names are left out of the list (still served).
      body = edited(body, [&](nlohmann::json& j) {
        std::set<std::string> activated;
        for (const auto& item : j["Declarations"]["Activations"]) {
          auto served =
              declarations.served_declaration(id, DeclarationGroup::activation, item["Identifier"].get<std::string>());
          if (!served) continue;
          auto activation = nlohmann::json::parse(*served, nullptr, false);
          auto refs = activation.is_object()
                          ? activation["Payload"].value("StandardConfigurations", nlohmann::json::array())
                          : nlohmann::json::array();
          for (const auto& ref : refs) {
            if (ref.is_string()) activated.insert(ref.get<std::string>());
          }
        }
        // And the assets the listed configurations name.
        std::set<std::string> named_assets;
        for (const auto& item : j["Declarations"]["Configurations"]) {
          auto served = declarations.served_declaration(id, DeclarationGroup::configuration,
                                                        item["Identifier"].get<std::string>());
          auto configuration = served ? nlohmann::json::parse(*served, nullptr, false) : nlohmann::json();
          if (!configuration.is_object() || !configuration.contains("Payload")) continue;
          for (auto& asset : protocol::asset_references(configuration["Payload"]))
            named_assets.insert(std::move(asset));
        }
        auto drop = [](nlohmann::json& items, const std::set<std::string>& names) {
          nlohmann::json kept = nlohmann::json::array();
          for (const auto& item : items) {
            if (!names.count(item["Identifier"].get<std::string>())) kept.push_back(item);
          }
          items = kept;
        };
        drop(j["Declarations"]["Configurations"], activated);
        drop(j["Declarations"]["Assets"], named_assets);
      });
    }
    return json_text(200, std::move(body));
  }
  if (*endpoint == "status") {
    auto data_field = msg.fields.find("Data");
    const plist::Data* data = data_field == msg.fields.end() ? nullptr : data_field->second.as_data();
    if (!data) return text(400, "a status report comes as Data\n");
    auto taken = declarations.take_status(id, data->bytes);
    if (!taken) {
      if (faulty(Fault::ddm_status_500)) return text(500, "internal error\n");
      return text(400, taken.message() + "\n");
    }
    return empty_ok();
  }
  constexpr std::string_view kDeclarationPrefix = "declaration/";
  if (starts_with(*endpoint, kDeclarationPrefix)) {
    const std::string_view rest = std::string_view(*endpoint).substr(kDeclarationPrefix.size());
    const auto slash = rest.find('/');
    auto group = protocol::declaration_group_from_name(rest.substr(0, slash));
    if (group && slash != std::string_view::npos) {
      if (auto served = declarations.served_declaration(id, *group, std::string(rest.substr(slash + 1)))) {
        auto body = *served;
        if (faulty(Fault::ddm_fetch_wrong_token)) {
          body = edited(body, [](nlohmann::json& j) { j["ServerToken"] = j["ServerToken"].get<std::string>() + "-x"; });
        }
        if (faulty(Fault::ddm_payload_stringified)) {
          body = edited(body, [](nlohmann::json& j) { stringify_scalars(j["Payload"]); });
        }
        return json_text(200, std::move(body));
      }
    }
    return text(404, "no such declaration for this channel\n");
  }
  return text(404, "no declarative endpoint " + *endpoint + "\n");
}

}  // namespace mdmc::server
