// Writes seed corpora from the emulator's own messages and the reference server's answers, each
// seed named by the SHA-256 of its bytes. Run it when the messages change; the seeds are committed.
//   make_corpus DIR                        checkin_fuzzer: every check-in and report the emulator
//                                          sends, device and user, XML and binary
//   make_corpus --declarative DIR          target_fuzzer: the DeclarativeManagement check-ins of
//                                          a real sync (every endpoint, a full and an incremental
//                                          status report), XML and binary
//   make_corpus --declarative-answers DIR  declarative_client_fuzzer: the reference server's
//                                          answers to those syncs, in that fuzzer's input format
// The declarative ones come from emulator::DeclarativeClient syncing against
// server::DeclarationStore, the reference server's store, with declarations of each group.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/emulator/declarative_client.hpp"
#include "harness/pki/pki.hpp"
#include "harness/protocol/declarative.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/server/declaration_store.hpp"

namespace {

using namespace mdmc;
using nlohmann::json;

constexpr const char* kUdid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";                              // fuzz::kFuzzUdid
const protocol::UserFacts kUser{"F17C470A-3ADC-47EC-A7CC-D432867F4793", "jimmys", "Jimmy Smith"};  // kFuzzUserId
constexpr const char* kNow = "2026-12-07T06:00:00Z";
constexpr const char* kLater = "2026-12-07T06:05:00Z";

void write(const std::filesystem::path& dir, const std::string& bytes, int& written) {
  std::ofstream(dir / base::sha256_hex(bytes), std::ios::binary) << bytes;
  ++written;
}

// One declaration of each group, assigned to both channels; the passcode's MinimumLength is the
// change a second sync fetches.
std::string passcode(int minimum_length) {
  return json{{"Type", "com.apple.configuration.passcode.settings"},
              {"Identifier", "com.example.passcode"},
              {"Payload", {{"MinimumLength", minimum_length}}}}
      .dump();
}

server::DeclarationStore a_store(const std::vector<std::string>& channels) {
  server::DeclarationStore store({}, kNow);
  const std::vector<std::string> declarations = {
      passcode(6),
      json{{"Type", "com.apple.activation.simple"},
           {"Identifier", "com.example.activation"},
           {"Payload", {{"StandardConfigurations", {"com.example.passcode"}}}}}
          .dump(),
      json{{"Type", "com.apple.asset.data"},
           {"Identifier", "com.example.asset"},
           {"Payload", {{"Reference", {{"DataURL", "https://mdm.example/asset"}, {"ContentType", "text/plain"}}}}}}
          .dump(),
      json{{"Type", "com.apple.management.server-capabilities"},
           {"Identifier", "com.example.capabilities"},
           {"Payload", {{"Version", "1.0"}}}}
          .dump()};
  for (const auto& text : declarations) {
    auto put = store.put(text, kNow);
    if (!put) {
      std::fprintf(stderr, "make_corpus: the store refused a declaration: %s\n", put.message().c_str());
      std::exit(1);
    }
    (void)store.add_to_set("fuzz", put->identifier, kNow);
  }
  for (const auto& channel : channels) (void)store.assign(channel, "fuzz", kNow);
  return store;
}

// The reference server's answer to a declarative check-in (as MdmService::declarative gives it).
emulator::Answer answer(server::DeclarationStore& store, const std::string& channel, const plist::Dict& check_in) {
  const std::string endpoint = *check_in.at("Endpoint").as_string();
  if (endpoint == protocol::kTokensEndpoint) return {200, store.tokens_json(channel)};
  if (endpoint == protocol::kDeclarationItemsEndpoint) return {200, store.items_json(channel)};
  if (endpoint == protocol::kStatusEndpoint) {
    return store.take_status(channel, check_in.at("Data").as_data()->bytes) ? emulator::Answer{200, ""}
                                                                            : emulator::Answer{400, "refused\n"};
  }
  const std::string rest = endpoint.substr(std::strlen("declaration/"));
  const auto slash = rest.find('/');
  auto group = protocol::declaration_group_from_name(rest.substr(0, slash));
  if (group) {
    if (auto served = store.served_declaration(channel, *group, rest.substr(slash + 1))) return {200, *served};
  }
  return {404, ""};
}

// A recorded sync: the check-ins the client sent, and the answers, as the fuzzer's pieces.
struct Recording {
  std::vector<plist::Dict> check_ins;
  std::vector<std::string> pieces;
};

std::string piece_of(const emulator::Answer& answer) {
  return answer.status == 200 ? answer.body : std::to_string(answer.status) + "\n" + answer.body;
}

// Runs one sync to its end; `fault` replaces the answer to the check-in of that index.
void sync(emulator::DeclarativeClient& client, server::DeclarationStore& store, const std::string& channel,
          Recording& out, int fault_at = -1, const emulator::Answer& fault = {}) {
  for (int i = 0; i < 32 && client.syncing(); ++i) {
    out.check_ins.push_back(client.next().body);
    auto a = i == fault_at ? fault : answer(store, channel, client.next().body);
    out.pieces.push_back(piece_of(a));
    (void)client.on_answer(a);
  }
}

std::string join(const std::string& header, const std::vector<std::string>& pieces) {
  std::string out = header;
  for (std::size_t i = 0; i < pieces.size(); ++i) out += (i ? "\n--\n" : "") + pieces[i];
  return out;
}

// The declarative syncs the seeds come from: on each channel, a sync a case starts, the
// command with its tokens, the command without, a second sync after a change (an incremental
// report), and syncs a server breaks (a 404 declaration, a 500 tokens answer).
struct DeclarativeSeeds {
  std::vector<plist::Dict> check_ins;
  std::vector<std::string> inputs;  // declarative_client_fuzzer's
};

DeclarativeSeeds declarative_seeds() {
  DeclarativeSeeds seeds;
  const protocol::Channel device{kUdid, ""};
  const protocol::Channel user{kUdid, kUser.user_id};
  for (bool on_user : {false, true}) {
    const std::string channel = on_user ? std::string(kUdid) + ":" + kUser.user_id : std::string(kUdid);
    const std::string header = on_user ? "user\n" : "";
    auto client_of = [&] {
      return on_user ? emulator::DeclarativeClient(user, kUser) : emulator::DeclarativeClient(device, std::nullopt);
    };
    auto keep = [&](const std::vector<std::string>& pieces, const Recording& recording) {
      seeds.check_ins.insert(seeds.check_ins.end(), recording.check_ins.begin(), recording.check_ins.end());
      seeds.inputs.push_back(join(header, pieces));
    };
    {  // a sync, then a change and a second sync: a full report, then an incremental one
      auto store = a_store({channel});
      auto client = client_of();
      Recording r;
      std::vector<std::string> pieces{""};
      client.start_sync();
      sync(client, store, channel, r);
      (void)store.put(passcode(8), kLater);
      pieces.insert(pieces.end(), r.pieces.begin(), r.pieces.end());
      pieces.push_back("");
      Recording second;
      client.start_sync();
      sync(client, store, channel, second);
      pieces.insert(pieces.end(), second.pieces.begin(), second.pieces.end());
      r.check_ins.insert(r.check_ins.end(), second.check_ins.begin(), second.check_ins.end());
      keep(pieces, r);
    }
    {  // the DeclarativeManagement command with its tokens, and without Data
      auto store = a_store({channel});
      for (bool with_data : {true, false}) {
        auto client = client_of();
        Recording r;
        std::string data = with_data ? store.tokens_json(channel) : "-";
        plist::Dict inner{{"RequestType", plist::Value(std::string("DeclarativeManagement"))}};
        if (with_data) inner["Data"] = plist::Value(plist::Data{data});
        protocol::Command command{
            "6F1C2A3B-0000-4000-8000-0000000000DD", "DeclarativeManagement", {{"Command", plist::Value(inner)}}};
        (void)client.on_command(command);
        sync(client, store, channel, r);
        std::vector<std::string> pieces{data};
        pieces.insert(pieces.end(), r.pieces.begin(), r.pieces.end());
        keep(pieces, r);
      }
    }
    {  // a server that breaks the sync: a declaration it lists is 404, the tokens a 500
      auto store = a_store({channel});
      for (int fault_at : {0, 2}) {
        auto client = client_of();
        Recording r;
        client.start_sync();
        sync(client, store, channel, r, fault_at, {fault_at == 0 ? 500 : 404, ""});
        std::vector<std::string> pieces{""};
        pieces.insert(pieces.end(), r.pieces.begin(), r.pieces.end());
        keep(pieces, r);
      }
    }
  }
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  const bool declarative = argc == 3 && std::strcmp(argv[1], "--declarative") == 0;
  const bool answers = argc == 3 && std::strcmp(argv[1], "--declarative-answers") == 0;
  if (argc != 2 && !declarative && !answers) {
    std::fprintf(stderr, "usage: make_corpus [--declarative | --declarative-answers] DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[argc - 1];
  std::filesystem::create_directories(dir);
  int written = 0;
  auto ddm = declarative_seeds();
  if (answers) {
    for (const auto& input : ddm.inputs) write(dir, input, written);
    std::printf("make_corpus: %d seeds in %s\n", written, dir.c_str());
    return 0;
  }
  if (declarative) {
    std::set<std::string> seen;
    for (const auto& m : ddm.check_ins) {
      plist::Value value(m);
      if (!seen.insert(plist::to_xml(value)).second) continue;
      for (const auto& bytes : {plist::to_xml(value), plist::to_binary(value)}) write(dir, bytes, written);
    }
    std::printf("make_corpus: %d seeds in %s\n", written, dir.c_str());
    return 0;
  }
  using namespace mdmc::protocol;
  DeviceFacts device;
  device.udid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
  device.topic = "com.apple.mgmt.External.mdmconform";
  device.serial_number = "C02XL0000000";
  UserFacts user{"F17C470A-3ADC-47EC-A7CC-D432867F4793", "jimmys", "Jimmy Smith"};
  Channel device_channel{device.udid, ""};
  Channel user_channel{device.udid, user.user_id};
  PushIdentity push{std::string("\x1b\xa7\xc9\x00\x66\xc5\x0f\x77", 8), "888CEB39-BFFA-40F6-89FA-B60752EB63C2"};

  std::vector<mdmc::plist::Dict> messages = {
      authenticate(device),
      token_update(device, push),
      token_update(device, push, &user),
      user_authenticate(device.udid, user, std::nullopt),
      user_authenticate(device.udid, user, std::string("Digest username=\"jimmys\"")),
      check_out(device),
      report(device_channel, nullptr, {Status::idle, {}, {}}),
      report(user_channel, &user, {Status::idle, {}, {}}, {true, false}),
      report(user_channel, &user, {Status::not_now, "6F1C2A3B-0000-4000-8000-000000000001", {}}, {false, true}),
      report(device_channel, nullptr, {Status::acknowledged, "6F1C2A3B-0000-4000-8000-000000000002", {}}),
      report(device_channel, nullptr,
             {Status::error, "6F1C2A3B-0000-4000-8000-000000000003", {{12021, "MCMDMErrorDomain", "failed"}}}),
      make_command("6F1C2A3B-0000-4000-8000-000000000004", "ProfileList").body,
  };
  // The declarative check-ins, once each endpoint and report kind.
  std::set<std::string> kinds;
  for (const auto& m : ddm.check_ins) {
    std::string endpoint = *m.at("Endpoint").as_string();
    std::string kind = m.count("UserID") ? "user " : "device ";
    kind += endpoint;
    if (endpoint == kStatusEndpoint) {
      const bool full = m.at("Data").as_data()->bytes.find("\"FullReport\":true") != std::string::npos;
      kind += full ? " full" : " incremental";
    }
    if (kinds.insert(kind).second) messages.push_back(m);
  }
  for (const auto& m : messages) {
    mdmc::plist::Value value(m);
    for (const auto& bytes : {mdmc::plist::to_xml(value), mdmc::plist::to_binary(value)}) write(dir, bytes, written);
  }
  std::printf("make_corpus: %d seeds in %s\n", written, dir.c_str());
  return 0;
}
