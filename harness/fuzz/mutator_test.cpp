#include "harness/fuzz/mutator.hpp"

#include <gtest/gtest.h>

#include <set>

#include "harness/plist/value.hpp"
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

}  // namespace
}  // namespace mdmc::fuzz
