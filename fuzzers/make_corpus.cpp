// Writes the seed corpus of checkin_fuzzer: every check-in and report the emulator sends,
// device and user, as XML and binary, named by the SHA-256 of their bytes. Run it when the
// messages change; the seeds are committed.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness/base/bytes.hpp"
#include "harness/pki/pki.hpp"
#include "harness/protocol/messages.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
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
  std::filesystem::create_directories(argv[1]);
  int written = 0;
  for (const auto& m : messages) {
    mdmc::plist::Value value(m);
    for (const auto& bytes : {mdmc::plist::to_xml(value), mdmc::plist::to_binary(value)}) {
      std::ofstream(std::filesystem::path(argv[1]) / mdmc::base::sha256_hex(bytes), std::ios::binary) << bytes;
      ++written;
    }
  }
  std::printf("make_corpus: %d seeds in %s\n", written, argv[1]);
  return 0;
}
