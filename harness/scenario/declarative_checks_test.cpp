#include "harness/scenario/declarative_checks.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness/protocol/rules.hpp"
#include "harness/server/declaration_store.hpp"

namespace mdmc::scenario {
namespace {

using Json = nlohmann::json;
using Stage = emulator::DeclarativeClient::Stage;
constexpr const char* kNow = "2026-12-07T08:00:00Z";
const protocol::Channel kChannel{"6A8E9A3C-1F7B-4C1E-9D2B-5F0E4C3A2B10", ""};

// The client syncs against the reference server's DeclarationStore for kChannel, and the record
// keeps each answer as the runner's does.
struct Synced {
  emulator::DeclarativeClient client{kChannel, std::nullopt};
  DeclarativeSyncRecord record;
};

Synced sync_with(const server::DeclarationStore& store) {
  Synced s;
  s.client.start_sync();
  for (int n = 0; s.client.syncing() && n < 64; ++n) {
    const auto stage = s.client.stage();
    const auto endpoint = *plist::Value(s.client.next().body).string_at("Endpoint");
    DeclarativeSyncRecord::Answer answer{200, ""};
    if (stage == Stage::tokens) {
      answer.body = store.tokens_json(kChannel.id());
      s.record.tokens = answer;
    } else if (stage == Stage::declaration_items) {
      answer.body = store.items_json(kChannel.id());
      s.record.items = answer;
    } else if (stage == Stage::declaration) {
      const auto rest = endpoint.substr(std::string("declaration/").size());
      const auto slash = rest.find('/');
      const auto group = *protocol::declaration_group_from_name(rest.substr(0, slash));
      const auto id = rest.substr(slash + 1);
      auto served = store.served_declaration(kChannel.id(), group, id);
      answer = served ? DeclarativeSyncRecord::Answer{200, *served} : DeclarativeSyncRecord::Answer{404, ""};
      s.record.fetched.push_back({group, id, "", answer});
    } else {
      s.record.status_report = answer;
    }
    EXPECT_FALSE(s.client.on_answer({answer.status, answer.body})) << endpoint;
  }
  return s;
}

void put(server::DeclarationStore& store, const Json& declaration) {
  ASSERT_TRUE(store.put(declaration.dump(), kNow).ok());
  ASSERT_TRUE(store.add_to_set("s", declaration["Identifier"].get<std::string>(), kNow).ok());
}

Expectation expect(DeclarativeCheck check, std::string_view rule) {
  Expectation e;
  e.rule = std::string(rule);
  e.declarative = check;
  return e;
}

TEST(DeclarativeChecks, ActiveValidAndReferencesPassOnWhatTheChannelHoldsAndFailOnWhatItDoesNot) {
  server::DeclarationStore store({}, kNow);
  ASSERT_TRUE(store.assign(kChannel.id(), "s", kNow).ok());
  put(store, {{"Type", "com.apple.asset.data"},
              {"Identifier", "asset"},
              {"Payload", {{"Reference", {{"DataURL", "https://mdm.example.com/a"}}}}}});
  put(store, {{"Type", "com.apple.configuration.management.test"},
              {"Identifier", "echo"},
              {"Payload", {{"Echo", "x"}, {"EchoDataAssetReference", "asset"}}}});
  put(store, {{"Type", "com.apple.configuration.passcode.settings"},
              {"Identifier", "bad-passcode"},
              {"Payload", {{"MinimumLength", "eight"}}}});
  put(store, {{"Type", "com.apple.activation.simple"},
              {"Identifier", "act"},
              {"Payload", {{"StandardConfigurations", {"echo"}}}}});
  auto s = sync_with(store);
  ASSERT_FALSE(s.client.syncing());

  auto channel = expect(DeclarativeCheck::channel, protocol::rule::kDdmChannel);
  channel.holds = {"echo", "asset"};
  channel.active = {"act", "echo", "asset"};
  channel.valid = {"echo"};
  auto held = check_declarative(channel, s.record, s.client, kChannel, std::nullopt);
  EXPECT_TRUE(held.judged);
  EXPECT_TRUE(held.passed) << held.actual;

  // Not named by the activation: not active. A Payload against its schema: not valid.
  channel.active = {"bad-passcode"};
  channel.valid = {};
  auto inactive = check_declarative(channel, s.record, s.client, kChannel, std::nullopt);
  EXPECT_FALSE(inactive.passed);
  EXPECT_NE(inactive.actual.find("\"bad-passcode\" reported not active"), std::string::npos) << inactive.actual;
  channel.active = {};
  channel.valid = {"bad-passcode"};
  auto invalid = check_declarative(channel, s.record, s.client, kChannel, std::nullopt);
  EXPECT_FALSE(invalid.passed);
  EXPECT_NE(invalid.actual.find("\"bad-passcode\" reported invalid (Payload.MinimumLength"), std::string::npos)
      << invalid.actual;

  auto references = expect(DeclarativeCheck::references, protocol::rule::kDdmReferences);
  auto named = check_declarative(references, s.record, s.client, kChannel, std::nullopt);
  EXPECT_TRUE(named.passed) << named.actual;
  EXPECT_EQ(named.actual, "2 reference(s), every one listed");

  // The asset leaves the set: the configuration still names it.
  store.remove_from_set("s", "asset", kNow);
  auto again = sync_with(store);
  auto dangling = check_declarative(references, again.record, again.client, kChannel, std::nullopt);
  EXPECT_FALSE(dangling.passed);
  EXPECT_NE(dangling.actual.find("configuration \"echo\" names asset \"asset\""), std::string::npos) << dangling.actual;
}

TEST(DeclarativeChecks, ASyncThatStoppedJudgesWhatCameBeforeAndNotWhatCameAfter) {
  server::DeclarationStore store({}, kNow);
  DeclarativeSyncRecord record;
  record.tokens = DeclarativeSyncRecord::Answer{200, store.tokens_json(kChannel.id())};
  record.stopped_at = Stage::declaration_items;
  record.stop_reason = "not JSON";
  emulator::DeclarativeClient client{kChannel, std::nullopt};
  EXPECT_TRUE(
      check_declarative(expect(DeclarativeCheck::tokens, protocol::rule::kDdmTokens), record, client, kChannel, {})
          .judged);
  EXPECT_FALSE(
      check_declarative(expect(DeclarativeCheck::fetch, protocol::rule::kDdmFetch), record, client, kChannel, {})
          .judged);
  EXPECT_FALSE(
      check_declarative(expect(DeclarativeCheck::channel, protocol::rule::kDdmChannel), record, client, kChannel, {})
          .judged);
  EXPECT_EQ(rule_of_stage(*record.stopped_at), protocol::rule::kDdmItems);
}

}  // namespace
}  // namespace mdmc::scenario
