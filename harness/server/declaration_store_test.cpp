#include "harness/server/declaration_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mdmc::server {
namespace {

using Json = nlohmann::json;

constexpr const char* kT0 = "2026-12-07T06:00:00Z";
constexpr const char* kT1 = "2026-12-07T06:01:00Z";
const std::string kDevice = "6A8E9A3C-1F7B-4C1E-9D2B-5F0E4C3A2B10";
const std::string kUser = kDevice + ":B1A2C3D4-0000-4000-8000-00000000A001";

std::string passcode(int min_length) {
  return Json{{"Type", "com.apple.configuration.passcode.settings"},
              {"Identifier", "passcode"},
              {"Payload", {{"MinimumLength", min_length}}}}
      .dump();
}
std::string activation() {
  return Json{{"Type", "com.apple.activation.simple"},
              {"Identifier", "activate-passcode"},
              {"Payload", {{"StandardConfigurations", {"passcode"}}}}}
      .dump();
}

Json parsed(const std::string& text) { return Json::parse(text); }

DeclarationStore store_with_device_set() {
  DeclarationStore store({}, kT0);
  EXPECT_TRUE(store.put(passcode(6), kT0).ok());
  EXPECT_TRUE(store.put(activation(), kT0).ok());
  EXPECT_TRUE(store.add_to_set("base", "passcode", kT0).ok());
  EXPECT_TRUE(store.add_to_set("base", "activate-passcode", kT0).ok());
  EXPECT_TRUE(store.assign(kDevice, "base", kT0).ok());
  return store;
}

TEST(DeclarationStore, GroupsFollowTheTypePrefix) {
  EXPECT_EQ(group_of_type("com.apple.configuration.passcode.settings"), DeclarationGroup::configuration);
  EXPECT_EQ(group_of_type("com.apple.activation.simple"), DeclarationGroup::activation);
  EXPECT_EQ(group_of_type("com.apple.asset.data"), DeclarationGroup::asset);
  EXPECT_EQ(group_of_type("com.apple.management.server-capabilities"), DeclarationGroup::management);
  EXPECT_EQ(group_of_type("com.apple.configuration."), std::nullopt);
  EXPECT_EQ(group_of_type("com.example.configuration.x"), std::nullopt);
}

TEST(DeclarationStore, AChannelIsServedTheDeclarationsOfItsSets) {
  auto store = store_with_device_set();
  auto items = parsed(store.items_json(kDevice));
  ASSERT_EQ(items["Declarations"]["Configurations"].size(), 1u);
  EXPECT_EQ(items["Declarations"]["Configurations"][0]["Identifier"], "passcode");
  ASSERT_EQ(items["Declarations"]["Activations"].size(), 1u);
  EXPECT_TRUE(items["Declarations"]["Assets"].empty());
  EXPECT_TRUE(items["Declarations"]["Management"].empty());
  // The items' token is the tokens endpoint's.
  auto tokens = parsed(store.tokens_json(kDevice));
  EXPECT_EQ(items["DeclarationsToken"], tokens["SyncTokens"]["DeclarationsToken"]);
  EXPECT_EQ(tokens["SyncTokens"]["Timestamp"], kT0);

  auto served = store.served_declaration(kDevice, DeclarationGroup::configuration, "passcode");
  ASSERT_TRUE(served);
  auto d = parsed(*served);
  EXPECT_EQ(d["Type"], "com.apple.configuration.passcode.settings");
  EXPECT_EQ(d["ServerToken"], items["Declarations"]["Configurations"][0]["ServerToken"]);
  // Under another group, on another channel, or unknown: nothing (a 404).
  EXPECT_FALSE(store.served_declaration(kDevice, DeclarationGroup::asset, "passcode"));
  EXPECT_FALSE(store.served_declaration(kUser, DeclarationGroup::configuration, "passcode"));
  EXPECT_FALSE(store.served_declaration(kDevice, DeclarationGroup::configuration, "nope"));
  EXPECT_TRUE(parsed(store.items_json(kUser))["Declarations"]["Configurations"].empty());
}

TEST(DeclarationStore, AChangeMovesTheTokenOfTheChannelsThatHoldItAndNoOther) {
  auto store = store_with_device_set();
  ASSERT_TRUE(store
                  .put(Json{{"Type", "com.apple.configuration.management.test"},
                            {"Identifier", "user-only"},
                            {"Payload", {{"Echo", "hi"}}}}
                           .dump(),
                       kT0)
                  .ok());
  ASSERT_TRUE(store.add_to_set("user", "user-only", kT0).ok());
  ASSERT_TRUE(store.assign(kUser, "user", kT0).ok());
  const auto device_token = store.declarations_token(kDevice);
  const auto user_token = store.declarations_token(kUser);
  EXPECT_NE(device_token, user_token);

  auto put = store.put(passcode(8), kT1);
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->identifier, "passcode");
  auto* change = &put->change;
  EXPECT_TRUE(change->changed);
  EXPECT_EQ(change->channels, std::vector<std::string>{kDevice});
  EXPECT_NE(store.declarations_token(kDevice), device_token);
  EXPECT_EQ(store.declarations_token(kUser), user_token);
  EXPECT_EQ(parsed(store.tokens_json(kDevice))["SyncTokens"]["Timestamp"], kT1);

  // The same declaration again changes nothing; its ServerToken follows its content.
  auto again = store.put(passcode(8), kT1);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->change.changed);
  EXPECT_TRUE(again->change.channels.empty());
  EXPECT_EQ(again->server_token, put->server_token);

  auto removed = store.remove_from_set("base", "passcode", kT1);
  EXPECT_EQ(removed.channels, std::vector<std::string>{kDevice});
  auto unassigned = store.unassign(kUser, "user", kT1);
  EXPECT_EQ(unassigned.channels, std::vector<std::string>{kUser});
  EXPECT_TRUE(parsed(store.items_json(kUser))["Declarations"]["Configurations"].empty());
}

TEST(DeclarationStore, RefusesDeclarationsThatAreNotOnesAndSaysWhy) {
  DeclarationStore store({}, kT0);
  EXPECT_EQ(store.put("{", kT0).message(), "the declaration: not JSON");
  EXPECT_EQ(store.put("[]", kT0).message(), "the declaration is not a JSON object");
  EXPECT_EQ(store.put(R"({"Type":1,"Identifier":"a","Payload":{}})", kT0).message(),
            "the declaration's Type is not a string");
  EXPECT_EQ(store.put(R"({"Type":"com.apple.configuration.x","Identifier":"a"})", kT0).message(),
            "the declaration's Payload is not an object");
  EXPECT_NE(store.put(R"({"Type":"org.example.x","Identifier":"a","Payload":{}})", kT0).message().find("names none"),
            std::string::npos);
  EXPECT_NE(store.put(R"({"Type":"com.apple.configuration.x","Identifier":"a/b","Payload":{}})", kT0)
                .message()
                .find("without '/'"),
            std::string::npos);
  const std::string deep = R"({"Type":"com.apple.configuration.x","Identifier":"a","Payload":)" +
                           std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(store.put(deep, kT0).message(), "the declaration: JSON nested deeper than 32");
  EXPECT_TRUE(store.identifiers().empty());
  EXPECT_FALSE(store.add_to_set("s", "missing", kT0).ok());
}

TEST(DeclarationStore, KeepsWithinItsBounds) {
  DeclarationBounds bounds;
  bounds.declarations = 2;
  bounds.sets = 1;
  bounds.assigned_channels = 1;
  bounds.kept_status_reports = 1;
  DeclarationStore store(bounds, kT0);
  for (int i = 0; i < 3; ++i) {
    auto put = store.put(
        Json{{"Type", "com.apple.configuration.x"}, {"Identifier", std::to_string(i)}, {"Payload", Json::object()}}
            .dump(),
        kT0);
    EXPECT_EQ(put.ok(), i < 2);
  }
  EXPECT_TRUE(store.add_to_set("a", "0", kT0).ok());
  EXPECT_FALSE(store.add_to_set("b", "0", kT0).ok());
  EXPECT_TRUE(store.assign(kDevice, "a", kT0).ok());
  EXPECT_FALSE(store.assign(kUser, "a", kT0).ok());
  const std::string report = R"({"StatusItems":{},"Errors":[]})";
  EXPECT_TRUE(store.take_status(kDevice, report).ok());
  EXPECT_TRUE(store.take_status(kUser, report).ok());
  EXPECT_FALSE(store.last_status(kDevice));  // the older channel's report made room
  EXPECT_TRUE(store.last_status(kUser));
}

TEST(DeclarationStore, StatusReportsMustHaveTheShapeAppleGives) {
  DeclarationStore store({}, kT0);
  EXPECT_TRUE(store.take_status(kDevice, R"({"StatusItems":{"management":{}},"Errors":[],"FullReport":true})").ok());
  EXPECT_EQ(store.last_status(kDevice), R"({"StatusItems":{"management":{}},"Errors":[],"FullReport":true})");
  EXPECT_EQ(store.take_status(kDevice, "not json").message(), "the status report: not JSON");
  EXPECT_EQ(store.take_status(kDevice, R"({"Errors":[]})").message(),
            "the status report's StatusItems is not an object");
  EXPECT_EQ(store.take_status(kDevice, R"({"StatusItems":{},"Errors":{}})").message(),
            "the status report's Errors is not an array");
  EXPECT_EQ(store.take_status(kDevice, R"({"StatusItems":{},"Errors":[],"FullReport":"yes"})").message(),
            "the status report's FullReport is not a boolean");
}

}  // namespace
}  // namespace mdmc::server
