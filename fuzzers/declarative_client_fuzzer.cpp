// The emulator's declarative client fed any sequence of server answers: a sync started by a case
// or by a DeclarativeManagement command (with or without Data), each check-in it sends answered
// by the next piece of the input. Oracles, beyond no crash and no undefined behaviour:
// - the client never holds a half-applied sync: what it holds changes only when a sync
//   completes, and then it is exactly the last declaration-items answer's list (each Identifier
//   with its ServerToken and group) with that answer's DeclarationsToken; an answer it refuses
//   leaves what it holds as it was;
// - what it holds is within max_held_bytes;
// - every check-in it sends is well-formed: a DeclarativeManagement check-in of its channel,
//   with the Endpoint its stage asks for (a declaration path of a listed declaration), and at
//   `status` a report that conforms to Apple's schema.
//
// Input: an optional first line "user" (a user channel; otherwise the device's), then pieces
// separated by a line holding only "--". While the client is idle, a piece starts a sync: empty,
// start_sync(); "-", the DeclarativeManagement command without Data; anything else, the command
// with that Data. While it syncs, a piece answers its check-in: "NNN\n" then the body sets the
// HTTP status, otherwise 200 and the whole piece. build/dev/fuzzers/make_corpus writes seeds from
// the reference server's answers (corpus/declarative_client_fuzzer).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "harness/emulator/declarative_client.hpp"
#include "harness/protocol/declarative.hpp"

namespace {

using namespace mdmc;

[[noreturn]] void fail(const char* why) {
  std::fprintf(stderr, "declarative_client_fuzzer: %s\n", why);
  __builtin_trap();
}

// What the channel holds, as the oracles compare it.
struct HeldView {
  std::map<std::string, std::pair<std::string, protocol::DeclarationGroup>> declarations;  // by Identifier
  std::string token;
  bool operator==(const HeldView&) const = default;
};

HeldView view_of(const emulator::DeclarativeClient& client) {
  HeldView view;
  for (const auto& [identifier, held] : client.held()) {
    if (identifier != held.identifier) fail("held under another Identifier");
    view.declarations[identifier] = {held.server_token, held.group};
  }
  view.token = client.declarations_token();
  return view;
}

std::size_t held_bytes(const emulator::DeclarativeClient& client) {
  std::size_t total = 0;
  for (const auto& [identifier, held] : client.held()) total += held.bytes;
  return total;
}

// The check-in the client is to send, judged against its stage and the manifest it took.
void check_next(const emulator::DeclarativeClient& client, const std::optional<protocol::DeclarationItems>& manifest) {
  const auto& message = client.next();
  const auto& body = message.body;
  auto string_at = [&](const char* key) -> const std::string* {
    auto it = body.find(key);
    return it == body.end() ? nullptr : it->second.as_string();
  };
  const auto* type = string_at("MessageType");
  if (!type || *type != "DeclarativeManagement") fail("a check-in that is not DeclarativeManagement");
  const auto* udid = string_at("UDID");
  if (!udid || *udid != client.channel().udid) fail("a check-in without the channel's UDID");
  const auto* user = string_at("UserID");
  if (client.channel().is_user() != (user != nullptr) || (user && *user != client.channel().user_id)) {
    fail("a check-in with another channel's UserID");
  }
  const auto* endpoint = string_at("Endpoint");
  if (!endpoint) fail("a check-in without an Endpoint");
  using Stage = emulator::DeclarativeClient::Stage;
  switch (client.stage()) {
    case Stage::tokens:
      if (*endpoint != protocol::kTokensEndpoint) fail("tokens stage, another Endpoint");
      break;
    case Stage::declaration_items:
      if (*endpoint != protocol::kDeclarationItemsEndpoint) fail("declaration-items stage, another Endpoint");
      break;
    case Stage::declaration: {
      if (!manifest) fail("a declaration fetched before any declaration-items answer");
      bool listed = false;
      for (auto group : protocol::kDeclarationGroups) {
        for (const auto& item : manifest->in(group)) {
          listed = listed || *endpoint == protocol::declaration_endpoint(group, item.identifier);
        }
      }
      if (!listed) fail("a declaration fetched that the manifest does not list");
      break;
    }
    case Stage::status: {
      if (*endpoint != protocol::kStatusEndpoint) fail("status stage, another Endpoint");
      auto data = body.find("Data");
      if (data == body.end() || !data->second.as_data()) fail("a status check-in without Data");
      auto report = protocol::parse_bounded_json(data->second.as_data()->bytes);
      if (!report) fail("a status report that is not JSON");
      if (!protocol::problems_in_status_report(*report).empty()) fail("a status report against the schema");
      break;
    }
    case Stage::idle: fail("next() while idle");
  }
  // It travels as a plist: it must read back as one.
  auto round_trip = plist::parse(plist::to_xml(plist::Value(body)));
  if (!round_trip || !round_trip->as_dict() || *round_trip->as_dict() != body)
    fail("a check-in that does not round-trip");
}

protocol::Command declarative_command(std::optional<std::string> data) {
  plist::Dict inner{{"RequestType", plist::Value(std::string("DeclarativeManagement"))}};
  if (data) inner["Data"] = plist::Value(plist::Data{std::move(*data)});
  protocol::Command command;
  command.uuid = "6F1C2A3B-0000-4000-8000-0000000000DD";
  command.request_type = "DeclarativeManagement";
  command.body = {{"CommandUUID", plist::Value(command.uuid)}, {"Command", plist::Value(std::move(inner))}};
  return command;
}

emulator::Answer answer_of(std::string_view piece) {
  if (piece.size() >= 4 && piece[3] == '\n' && piece[0] >= '0' && piece[0] <= '9' && piece[1] >= '0' &&
      piece[1] <= '9' && piece[2] >= '0' && piece[2] <= '9') {
    return {(piece[0] - '0') * 100 + (piece[1] - '0') * 10 + (piece[2] - '0'), std::string(piece.substr(4))};
  }
  return {200, std::string(piece)};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const protocol::Channel device{"23EB7CD8-5567-5E97-827F-06E4E4C456B2", ""};
  std::optional<protocol::UserFacts> user;
  protocol::Channel channel = device;
  if (bytes.substr(0, 5) == "user\n") {
    bytes.remove_prefix(5);
    user = protocol::UserFacts{"F17C470A-3ADC-47EC-A7CC-D432867F4793", "jimmys", "Jimmy Smith"};
    channel.user_id = user->user_id;
  }
  emulator::DeclarativeOptions options;
  options.max_held_bytes = 8192;  // small, so that inputs reach the bound
  emulator::DeclarativeClient client(channel, user, options);

  std::optional<protocol::DeclarationItems> manifest;
  std::size_t start = 0;
  for (int pieces = 0; pieces < 64; ++pieces) {
    auto end = bytes.find("\n--\n", start);
    auto piece = bytes.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!client.syncing()) {
      manifest.reset();
      const HeldView held_before = view_of(client);
      if (piece.empty()) {
        client.start_sync();
      } else {
        auto command = declarative_command(piece == "-" ? std::nullopt : std::optional<std::string>(piece));
        const bool had_data = piece != "-";
        auto answer = client.on_command(command);
        if (answer.status != protocol::Status::acknowledged) {
          if (!had_data) fail("a command without Data not acknowledged");
          if (client.syncing()) fail("a refused command started a sync");
        }
      }
      if (view_of(client) != held_before) fail("starting a sync changed what the channel holds");
    } else {
      using Stage = emulator::DeclarativeClient::Stage;
      const auto stage = client.stage();
      const auto answer = answer_of(piece);
      if (stage == Stage::declaration_items) {
        manifest.reset();
        if (answer.status == 200) {
          auto decoded = protocol::decode_declaration_items(answer.body, options.limits);
          if (decoded) manifest = std::move(*decoded);
        }
      }
      const HeldView held_before = view_of(client);
      auto refused = client.on_answer(answer);
      const HeldView held_after = view_of(client);
      // A sync commits when an answer at declaration-items or at a declaration ends its fetching.
      const bool committed = !refused && (stage == Stage::declaration_items || stage == Stage::declaration) &&
                             (client.stage() == Stage::status || client.stage() == Stage::idle);
      if (refused) {
        if (client.syncing()) fail("a refused answer left the sync running");
        if (held_after != held_before) fail("a refused answer changed what the channel holds");
      } else if (committed) {
        if (!manifest) fail("a sync completed without a declaration-items answer");
        HeldView expected;
        for (auto group : protocol::kDeclarationGroups) {
          for (const auto& item : manifest->in(group))
            expected.declarations[item.identifier] = {item.server_token, group};
        }
        expected.token = manifest->declarations_token;
        if (held_after != expected) fail("a completed sync holds other than the manifest it took");
      } else if (held_after != held_before) {
        fail("what the channel holds changed in the middle of a sync");
      }
    }
    if (held_bytes(client) > options.max_held_bytes) fail("held bytes over max_held_bytes");
    if (client.syncing()) check_next(client, manifest);
    if (end == std::string_view::npos) break;
    start = end + 4;
  }
  return 0;
}
