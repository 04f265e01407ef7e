#include "harness/fuzz/mutator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "harness/plist/value.hpp"
#include "harness/protocol/declarative.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::fuzz {
namespace {

std::string token_update_xml() {
  protocol::DeviceFacts device;
  device.udid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
  device.topic = "com.apple.mgmt.External.mdmconform";
  protocol::UserFacts user{"F17C470A-3ADC-47EC-A7CC-D432867F4793", "jimmys", "Jimmy Smith"};
  return plist::to_xml(plist::Value(protocol::token_update(device, {"tok", "magic"}, &user)));
}

plist::Value decode(const std::string& bytes) {
  plist::Limits wide;
  wide.max_depth = 1024;
  auto parsed = plist::parse(bytes, wide);
  EXPECT_TRUE(parsed) << parsed.message();
  return parsed ? *parsed : plist::Value();
}

std::size_t depth_of(const plist::Value& v) {
  std::size_t deepest = 0;
  if (auto* d = v.as_dict())
    for (const auto& [k, c] : *d) deepest = std::max(deepest, depth_of(c));
  if (auto* a = v.as_array())
    for (const auto& c : *a) deepest = std::max(deepest, depth_of(c));
  return (v.as_dict() || v.as_array()) ? deepest + 1 : deepest;
}

// Each kind of mutation, over many seeds, does what its name says, and the result decodes.
TEST(MutatorTest, EveryMutationDoesWhatItSays) {
  const auto input = token_update_xml();
  const auto original = decode(input);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(seed);
    auto retyped = mutate_plist_as(input, Mutation::retype, seed, 1 << 20);
    ASSERT_TRUE(retyped);
    EXPECT_NE(decode(retyped->bytes), original);

    auto dropped = mutate_plist_as(input, Mutation::drop_key, seed, 1 << 20);
    ASSERT_TRUE(dropped);
    EXPECT_NE(decode(dropped->bytes), original);

    auto renamed = mutate_plist_as(input, Mutation::rename_key, seed, 1 << 20);
    if (renamed) {
      EXPECT_NE(decode(renamed->bytes), original);
    }

    auto swapped = mutate_plist_as(input, Mutation::swap_message_type, seed, 1 << 20);
    ASSERT_TRUE(swapped);
    auto s = decode(swapped->bytes);
    auto type = s.string_at("MessageType");
    auto status = s.string_at("Status");
    ASSERT_TRUE(type || status);
    if (type) {
      EXPECT_NE(*type, "TokenUpdate");
      EXPECT_TRUE(protocol::message_type_from_name(*type)) << *type;
    } else {
      EXPECT_TRUE(protocol::status_from_name(*status)) << *status;
    }

    auto confused = mutate_plist_as(input, Mutation::confuse_channel, seed, 1 << 20);
    if (confused) {
      EXPECT_NE(decode(confused->bytes), original);
    }

    auto nested = mutate_plist_as(input, Mutation::deep_nesting, seed, 1 << 20);
    ASSERT_TRUE(nested);
    EXPECT_GE(depth_of(decode(nested->bytes)), 8u);

    auto switched = mutate_plist_as(input, Mutation::switch_encoding, seed, 1 << 20);
    ASSERT_TRUE(switched);
    EXPECT_EQ(plist::sniff(switched->bytes), plist::Format::binary);
    EXPECT_EQ(decode(switched->bytes), original);
  }
}

TEST(MutatorTest, DuplicateKeyWritesOneKeyTwice) {
  const auto input = token_update_xml();
  auto out = mutate_plist_as(input, Mutation::duplicate_key, 7, 1 << 20);
  ASSERT_TRUE(out);
  std::multiset<std::string> keys;
  for (auto at = out->bytes.find("<key>"); at != std::string::npos; at = out->bytes.find("<key>", at + 5)) {
    keys.insert(out->bytes.substr(at + 5, out->bytes.find("</key>", at) - at - 5));
  }
  bool twice = false;
  for (const auto& k : keys) twice = twice || keys.count(k) > 1;
  EXPECT_TRUE(twice) << out->bytes;
}

TEST(MutatorTest, StringsNumbersAndBlobsReachTheirExtremes) {
  const auto input = token_update_xml();
  bool empty = false, huge = false, odd = false, extreme = false, blob = false;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    if (auto out = mutate_plist_as(input, Mutation::odd_string, seed, 1 << 20)) {
      auto v = decode(out->bytes);
      if (!v.as_dict()) continue;
      for (const auto& [k, c] : *v.as_dict()) {
        if (auto* s = c.as_string()) {
          empty = empty || s->empty();
          huge = huge || s->size() >= 4096;
          odd = odd || s->find("\xe2\x80") != std::string::npos;
        }
      }
    }
    if (auto out = mutate_plist_as(input, Mutation::numeric_extreme, seed, 1 << 20)) {
      auto v = decode(out->bytes);
      if (!v.as_dict()) continue;
      for (const auto& [k, c] : *v.as_dict()) {
        if (auto* i = c.as_integer()) extreme = extreme || *i == INT64_MIN || *i == INT64_MAX;
      }
    }
    if (auto out = mutate_plist_as(input, Mutation::data_blob, seed, 1 << 20)) {
      auto v = decode(out->bytes);
      if (!v.as_dict()) continue;
      for (const auto& [k, c] : *v.as_dict()) blob = blob || (c.as_data() && k != "Token");
    }
  }
  EXPECT_TRUE(empty);
  EXPECT_TRUE(huge);
  EXPECT_TRUE(odd);
  EXPECT_TRUE(extreme);
  EXPECT_TRUE(blob);
}

TEST(MutatorTest, UndecodableInputIsLeftToByteMutation) {
  EXPECT_FALSE(mutate_plist("not a plist at all", 1, 4096));
  EXPECT_FALSE(mutate_plist("<?xml version=\"1.0\"?><plist><dict><key>A", 1, 4096));
  EXPECT_FALSE(cross_over_plists("garbage", token_update_xml(), 1, 4096));
}

TEST(MutatorTest, NeverExceedsMaxSizeAndIsDeterministic) {
  const auto input = token_update_xml();
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    auto a = mutate_plist(input, seed, input.size() + 600);
    auto b = mutate_plist(input, seed, input.size() + 600);
    ASSERT_EQ(a.has_value(), b.has_value());
    if (!a) continue;
    EXPECT_LE(a->bytes.size(), input.size() + 600);
    EXPECT_EQ(a->bytes, b->bytes);
  }
}

TEST(MutatorTest, CrossOverTakesPartsOfTheOther) {
  const auto a = token_update_xml();
  protocol::Channel channel{"UDID-B", ""};
  const auto b =
      plist::to_xml(plist::Value(protocol::report(channel, nullptr, {protocol::Status::not_now, "CMD-1", {}})));
  bool took = false;
  for (std::uint64_t seed = 0; seed < 20 && !took; ++seed) {
    auto out = cross_over_plists(a, b, seed, 1 << 20);
    ASSERT_TRUE(out);
    took = out->find("CMD-1") != std::string::npos || out->find("NotNow") != std::string::npos ||
           out->find("UDID-B") != std::string::npos;
  }
  EXPECT_TRUE(took);
}

TEST(MutatorTest, KnownKeysComeFromTheSchemaAndTheReports) {
  const auto& keys = known_keys();
  for (std::string_view k :
       {"UDID", "UserID", "PushMagic", "NotOnConsole", "Status", "CommandUUID", "DigestResponse"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  }
}

// A status report as the emulator sends it: a full one with a declaration of each group.
std::string status_check_in_xml(std::string_view endpoint = protocol::kStatusEndpoint) {
  using protocol::DeclarationGroup;
  std::vector<protocol::DeclarationStatus> held = {
      {DeclarationGroup::activation, "com.example.act", "T1", true, protocol::Validity::valid, {}},
      {DeclarationGroup::configuration, "com.example.passcode", "T2", true, protocol::Validity::valid, {}},
      {DeclarationGroup::asset,
       "com.example.asset",
       "T3",
       false,
       protocol::Validity::invalid,
       {"Error.InvalidPayload"}},
      {DeclarationGroup::management, "com.example.props", "T4", true, protocol::Validity::valid, {}}};
  protocol::Channel channel{"23EB7CD8-5567-5E97-827F-06E4E4C456B2", ""};
  std::optional<std::string> data;
  if (endpoint == protocol::kStatusEndpoint) data = protocol::status_report(held, true);
  return plist::to_xml(plist::Value(protocol::declarative_management(channel, nullptr, endpoint, data)));
}

// Every key path of a JSON document ("StatusItems.management.declarations.activations[].valid").
void key_paths(const nlohmann::json& j, const std::string& at, std::set<std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      out.insert(at + "." + it.key());
      key_paths(*it, at + "." + it.key(), out);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) key_paths(e, at + "[]", out);
  }
}

// The report inside Data is mutated as JSON: most results still parse, and both its keys and
// its values change across seeds; the check-in around it stays a status check-in.
TEST(MutatorTest, StatusReportInsideDataIsMutatedAsJson) {
  const auto input = status_check_in_xml();
  const auto original_json = nlohmann::json::parse(decode(input).as_dict()->at("Data").as_data()->bytes);
  std::set<std::string> original_paths;
  key_paths(original_json, "", original_paths);
  constexpr int kRuns = 300;
  int parsed = 0, changed = 0, keys_changed = 0, values_only_changed = 0;
  for (std::uint64_t seed = 0; seed < kRuns; ++seed) {
    SCOPED_TRACE(seed);
    auto out = mutate_plist_as(input, Mutation::ddm_json, seed, 1 << 20);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->applied, Mutation::ddm_json);
    auto message = decode(out->bytes);
    EXPECT_EQ(message.string_at("MessageType").value_or(""), "DeclarativeManagement");
    EXPECT_EQ(message.string_at("Endpoint").value_or(""), "status");
    const auto* data = message.as_dict()->at("Data").as_data();
    ASSERT_NE(data, nullptr);
    auto json = nlohmann::json::parse(data->bytes, nullptr, false);
    if (json.is_discarded()) continue;
    ++parsed;
    if (json == original_json) continue;
    ++changed;
    std::set<std::string> paths;
    key_paths(json, "", paths);
    if (paths != original_paths) {
      ++keys_changed;
    } else {
      ++values_only_changed;
    }
  }
  EXPECT_GE(parsed, kRuns * 8 / 10);  // byte edits (a sixteenth, and what does not parse back) are the rest
  EXPECT_GE(changed, parsed * 9 / 10);
  EXPECT_GE(keys_changed, kRuns / 4);
  EXPECT_GE(values_only_changed, kRuns / 20);
}

// Endpoint becomes the real ones, declaration paths and odd ones; only on a declarative check-in.
TEST(MutatorTest, DeclarativeEndpointTakesRealAndOddValues) {
  const auto input = status_check_in_xml(protocol::kTokensEndpoint);
  std::set<std::string> real, paths, odd;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    auto out = mutate_plist_as(input, Mutation::ddm_endpoint, seed, 1 << 20);
    ASSERT_TRUE(out) << seed;
    auto endpoint = decode(out->bytes).string_at("Endpoint");
    if (!endpoint) continue;  // dropped, or not a string
    if (*endpoint == "tokens" || *endpoint == "declaration-items" || *endpoint == "status") {
      real.insert(*endpoint);
    } else if (endpoint->rfind("declaration/", 0) == 0 && std::count(endpoint->begin(), endpoint->end(), '/') == 2) {
      paths.insert(*endpoint);
    } else {
      odd.insert(*endpoint);
    }
  }
  EXPECT_EQ(real, (std::set<std::string>{"declaration-items", "status"}));  // never the one it had
  EXPECT_GE(paths.size(), 5u);
  EXPECT_GE(odd.size(), 8u);
  EXPECT_FALSE(mutate_plist_as(token_update_xml(), Mutation::ddm_endpoint, 1, 1 << 20));
  EXPECT_FALSE(mutate_plist_as(token_update_xml(), Mutation::ddm_json, 1, 1 << 20));
}

// mutate_plist picks the declarative mutations for a declarative check-in often, never for others.
TEST(MutatorTest, DeclarativeCheckInsGetDeclarativeMutations) {
  const auto status = status_check_in_xml();
  const auto binary = plist::to_binary(decode(status));
  int declarative = 0, binary_declarative = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    auto out = mutate_plist(status, seed, 1 << 20);
    ASSERT_TRUE(out);
    declarative += out->applied == Mutation::ddm_endpoint || out->applied == Mutation::ddm_json;
    auto bin = mutate_plist(binary, seed, 1 << 20);
    ASSERT_TRUE(bin);
    binary_declarative += bin->applied == Mutation::ddm_endpoint || bin->applied == Mutation::ddm_json;
    auto other = mutate_plist(token_update_xml(), seed, 1 << 20);
    ASSERT_TRUE(other);
    EXPECT_NE(other->applied, Mutation::ddm_endpoint);
    EXPECT_NE(other->applied, Mutation::ddm_json);
  }
  EXPECT_GE(declarative, 60);
  EXPECT_GE(binary_declarative, 60);
}

// Data that is not JSON gets byte edits; every result fits max_size and replays.
TEST(MutatorTest, DeclarativeJsonFallsBackToBytesAndStaysBounded) {
  const std::string not_json = "\x01\x02 not json {";
  int differs = 0;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    auto out = mutate_declarative_json(not_json, seed, 1 << 16);
    differs += out != not_json;
    EXPECT_EQ(out, mutate_declarative_json(not_json, seed, 1 << 16));
  }
  EXPECT_GE(differs, 40);
  const auto report = decode(status_check_in_xml()).as_dict()->at("Data").as_data()->bytes;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    auto out = mutate_declarative_json(report, seed, 2048);
    EXPECT_LE(out.size(), 2048u) << seed;
    EXPECT_EQ(out, mutate_declarative_json(report, seed, 2048)) << seed;
  }
  // The key list is what renames draw from: the report's own keys are in it.
  const auto& keys = declarative_keys();
  for (auto key : {"StatusItems", "FullReport", "server-token", "valid"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  }
}

}  // namespace
}  // namespace mdmc::fuzz
