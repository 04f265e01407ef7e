#include "harness/protocol/declarative.hpp"

#include <gtest/gtest.h>

#include "harness/protocol/apple_schema.hpp"

namespace mdmc::protocol {
namespace {

std::string describe(const std::vector<SchemaViolation>& violations) {
  std::string out;
  for (const auto& v : violations) out += "\n  " + v.key_path + ": " + v.problem;
  return out;
}

#define EXPECT_ONE_PROBLEM(problems, path, problem_text) \
  do {                                                   \
    const auto& p_ = (problems);                         \
    ASSERT_EQ(p_.size(), 1u) << describe(p_);            \
    EXPECT_EQ(p_[0].key_path, path);                     \
    EXPECT_EQ(p_[0].problem, problem_text);              \
  } while (0)

const Channel kDevice{"UDID-1", ""};
const Channel kUser{"UDID-1", "USER-1"};

TEST(DeclarativeFacts, TablesComeFromTheRevisionTheHarnessFollows) {
  EXPECT_EQ(declarative_schema_revision(), kAppleSchemaRevision);
}

TEST(DeclarativeFacts, KnowPasscodeSettingsAndWhereMacOSTakesIt) {
  auto facts = declaration_facts("com.apple.configuration.passcode.settings");
  ASSERT_TRUE(facts);
  EXPECT_EQ(facts->group, DeclarationGroup::configuration);
  EXPECT_TRUE(facts->on_macos);
  EXPECT_TRUE(facts->device_channel);  // allowed-scopes: system, user
  EXPECT_TRUE(facts->user_channel);
  EXPECT_TRUE(allowed_on_channel("com.apple.configuration.passcode.settings", kDevice));
  EXPECT_TRUE(allowed_on_channel("com.apple.configuration.passcode.settings", kUser));
}

TEST(DeclarativeFacts, ChannelsFollowTheScopes) {
  // account.caldav: allowed-scopes user only; softwareupdate.settings: system only.
  EXPECT_FALSE(allowed_on_channel("com.apple.configuration.account.caldav", kDevice));
  EXPECT_TRUE(allowed_on_channel("com.apple.configuration.account.caldav", kUser));
  EXPECT_TRUE(allowed_on_channel("com.apple.configuration.softwareupdate.settings", kDevice));
  EXPECT_FALSE(allowed_on_channel("com.apple.configuration.softwareupdate.settings", kUser));
  // No scopes: activations, assets and management declarations go on either channel.
  EXPECT_TRUE(allowed_on_channel("com.apple.activation.simple", kUser));
  EXPECT_EQ(declaration_facts("com.apple.asset.data")->group, DeclarationGroup::asset);
  EXPECT_EQ(declaration_facts("com.apple.management.properties")->group, DeclarationGroup::management);
  // app.managed: macOS introduced n/a.
  auto app = declaration_facts("com.apple.configuration.app.managed");
  ASSERT_TRUE(app);
  EXPECT_FALSE(app->on_macos);
  EXPECT_FALSE(allowed_on_channel("com.apple.configuration.app.managed", kDevice));
  EXPECT_FALSE(declaration_facts("com.example.nothing"));
  EXPECT_FALSE(allowed_on_channel("com.example.nothing", kDevice));
}

TEST(DeclarativeFacts, KnowStatusItems) {
  auto declarations = status_item_channels("management.declarations");
  ASSERT_TRUE(declarations);
  EXPECT_TRUE(declarations->device);
  EXPECT_TRUE(declarations->user);
  EXPECT_FALSE(status_item_channels("device.power.battery-health")->user);
  EXPECT_FALSE(status_item_channels("no.such.item"));
}

TEST(DeclarativePayload, PasscodeSettingsKeysAndTypes) {
  const std::string type = "com.apple.configuration.passcode.settings";
  EXPECT_TRUE(problems_in_declaration_payload(type, Json{{"MinimumLength", 6}, {"RequirePasscode", true}}).empty());
  EXPECT_TRUE(problems_in_declaration_payload(type, Json::object()).empty());
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload(type, Json{{"MinimumLength", "6"}}), "Payload.MinimumLength",
                     "must be <integer>, is <string>");
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload(type, Json{{"MinimumLength", 6.5}}), "Payload.MinimumLength",
                     "must be <integer>, is <real>");
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload(type, Json{{"NoSuchKey", 1}}), "Payload.NoSuchKey", "unknown key");
  // CustomRegex is a dictionary whose Regex is required.
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload(type, Json{{"CustomRegex", Json::object()}}),
                     "Payload.CustomRegex.Regex", "missing (required)");
  EXPECT_TRUE(problems_in_declaration_payload(
                  type, Json{{"CustomRegex", {{"Regex", "^.{8,}$"}, {"Description", {{"default", "8 or more"}}}}}})
                  .empty());
}

TEST(DeclarativePayload, RequiredKeysArraysAndTypesOutsideMacOS) {
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload("com.apple.activation.simple", Json::object()),
                     "Payload.StandardConfigurations", "missing (required)");
  EXPECT_ONE_PROBLEM(
      problems_in_declaration_payload("com.apple.activation.simple", Json{{"StandardConfigurations", {"a", 2}}}),
      "Payload.StandardConfigurations[1]", "must be <string>, is <integer>");
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload("com.example.nothing", Json::object()), "Type",
                     "unknown declaration Type 'com.example.nothing'");
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload("com.apple.configuration.app.managed", Json::object()), "Type",
                     "not supported on macOS");
  EXPECT_ONE_PROBLEM(problems_in_declaration_payload("com.apple.activation.simple", Json::array()), "Payload",
                     "must be <dictionary>, is <array>");
}

TEST(DeclarativeTokens, JudgedAgainstSynchronizationTokens) {
  Json good{{"SyncTokens", {{"DeclarationsToken", "T1"}, {"Timestamp", "2026-12-07T05:00:00Z"}}}};
  EXPECT_TRUE(problems_in_tokens(good).empty()) << describe(problems_in_tokens(good));
  EXPECT_ONE_PROBLEM(problems_in_tokens(Json{{"SyncTokens", {{"DeclarationsToken", "T1"}}}}), "SyncTokens.Timestamp",
                     "missing (required)");
  EXPECT_ONE_PROBLEM(
      problems_in_tokens(Json{{"SyncTokens", {{"DeclarationsToken", 7}, {"Timestamp", "2026-12-07T05:00:00Z"}}}}),
      "SyncTokens.DeclarationsToken", "must be <string>, is <integer>");
  EXPECT_ONE_PROBLEM(
      problems_in_tokens(Json{{"SyncTokens", {{"DeclarationsToken", "T1"}, {"Timestamp", "yesterday"}}}}),
      "SyncTokens.Timestamp", "must be an RFC 3339 date-time, is 'yesterday'");
  // A year the clock cannot hold is refused, not overflowed (found by fuzzing the judges).
  EXPECT_ONE_PROBLEM(
      problems_in_tokens(Json{{"SyncTokens", {{"DeclarationsToken", "T1"}, {"Timestamp", "1014-01-01T00:00:00Z"}}}}),
      "SyncTokens.Timestamp", "must be an RFC 3339 date-time, is '1014-01-01T00:00:00Z'");
  EXPECT_ONE_PROBLEM(problems_in_tokens(Json::object()), "SyncTokens", "missing (required)");
  EXPECT_ONE_PROBLEM(problems_in_tokens(Json::array()), "", "must be <dictionary>, is <array>");
}

TEST(DeclarativeTokens, Decoded) {
  auto tokens = decode_tokens(R"({"SyncTokens":{"DeclarationsToken":"T1","Timestamp":"2026-12-07T05:00:00Z"}})");
  ASSERT_TRUE(tokens) << tokens.message();
  EXPECT_EQ(tokens->declarations_token, "T1");
  EXPECT_EQ(tokens->timestamp, "2026-12-07T05:00:00Z");
  EXPECT_FALSE(decode_tokens(R"({"SyncTokens":{}})"));
  EXPECT_EQ(decode_tokens(R"({"SyncTokens":{"DeclarationsToken":1}})").message(),
            "SyncTokens.DeclarationsToken: must be <string>, is <integer>");
  EXPECT_FALSE(decode_tokens("<plist/>"));
  EXPECT_FALSE(decode_tokens(""));
}

Json items_json(std::string token = "T1") {
  return Json{{"Declarations",
               {{"Activations", {{{"Identifier", "act"}, {"ServerToken", "a1"}}}},
                {"Configurations", {{{"Identifier", "pass"}, {"ServerToken", "p1"}}}},
                {"Assets", Json::array()},
                {"Management", Json::array()}}},
              {"DeclarationsToken", std::move(token)}};
}

TEST(DeclarativeItems, JudgedAgainstTheManifestAndTheTokens) {
  EXPECT_TRUE(problems_in_items(items_json(), "T1").empty()) << describe(problems_in_items(items_json(), "T1"));
  EXPECT_ONE_PROBLEM(problems_in_items(items_json("T2"), "T1"), "DeclarationsToken",
                     "is 'T2', the tokens endpoint said 'T1'");
  Json missing_group = items_json();
  missing_group["Declarations"].erase("Assets");
  EXPECT_ONE_PROBLEM(problems_in_items(missing_group), "Declarations.Assets", "missing (required)");
  Json no_token = items_json();
  no_token["Declarations"]["Configurations"][0].erase("ServerToken");
  EXPECT_ONE_PROBLEM(problems_in_items(no_token), "Declarations.Configurations[0].ServerToken", "missing (required)");
  Json unknown_group = items_json();
  unknown_group["Declarations"]["Profiles"] = Json::array();
  EXPECT_ONE_PROBLEM(problems_in_items(unknown_group), "Declarations.Profiles", "unknown key");
  Json twice = items_json();
  twice["Declarations"]["Assets"].push_back({{"Identifier", "pass"}, {"ServerToken", "x"}});
  EXPECT_ONE_PROBLEM(problems_in_items(twice), "Declarations.Assets[0].Identifier", "'pass' listed more than once");
}

TEST(DeclarativeItems, Decoded) {
  auto items = decode_declaration_items(items_json().dump());
  ASSERT_TRUE(items) << items.message();
  EXPECT_EQ(items->declarations_token, "T1");
  EXPECT_EQ(items->size(), 2u);
  ASSERT_EQ(items->in(DeclarationGroup::configuration).size(), 1u);
  EXPECT_EQ(items->in(DeclarationGroup::configuration)[0].identifier, "pass");
  EXPECT_EQ(items->in(DeclarationGroup::configuration)[0].server_token, "p1");

  Json twice = items_json();
  twice["Declarations"]["Assets"].push_back({{"Identifier", "pass"}, {"ServerToken", "x"}});
  EXPECT_EQ(decode_declaration_items(twice.dump()).message(),
            "Declarations.Assets[0].Identifier: 'pass' listed more than once");
  Json not_object = items_json();
  not_object["Declarations"]["Activations"][0] = "act";
  EXPECT_EQ(decode_declaration_items(not_object.dump()).message(),
            "Declarations.Activations[0]: must be <dictionary>, is <string>");
  JsonLimits few;
  few.max_declarations = 1;
  EXPECT_EQ(decode_declaration_items(items_json().dump(), few).message(), "more than 1 declarations listed");
}

TEST(DeclarativeDeclaration, DecodedAndJudged) {
  Json served{{"Type", "com.apple.configuration.passcode.settings"},
              {"Identifier", "pass"},
              {"ServerToken", "p1"},
              {"Payload", {{"MinimumLength", 6}}}};
  auto declaration = decode_declaration(served.dump());
  ASSERT_TRUE(declaration) << declaration.message();
  EXPECT_EQ(declaration->type, "com.apple.configuration.passcode.settings");
  EXPECT_EQ(declaration->identifier, "pass");
  EXPECT_EQ(declaration->server_token, "p1");
  EXPECT_EQ(declaration->payload, (Json{{"MinimumLength", 6}}));
  EXPECT_TRUE(problems_in_declaration(served).empty()) << describe(problems_in_declaration(served));

  Json wrong = served;
  wrong["Payload"]["MinimumLength"] = true;
  wrong.erase("ServerToken");
  auto problems = problems_in_declaration(wrong);
  ASSERT_EQ(problems.size(), 2u) << describe(problems);
  EXPECT_EQ(problems[0].key_path, "ServerToken");
  EXPECT_EQ(problems[1].key_path, "Payload.MinimumLength");

  EXPECT_EQ(decode_declaration(R"({"Type":"t","Identifier":"i","ServerToken":"s"})").message(), "Payload: missing");
  EXPECT_EQ(decode_declaration(R"({"Type":"t","Identifier":"i","ServerToken":"s","Payload":[]})").message(),
            "Payload: must be <dictionary>, is <array>");
}

TEST(DeclarativeJson, BoundedBeforeParsing) {
  JsonLimits limits;
  limits.max_bytes = 16;
  EXPECT_EQ(parse_bounded_json(std::string(17, ' '), limits).message(), "JSON of 17 bytes, over the bound of 16");
  limits = {};
  limits.max_depth = 3;
  EXPECT_TRUE(parse_bounded_json("[[[1]]]", limits));
  EXPECT_EQ(parse_bounded_json("[[[[1]]]]", limits).message(), "JSON nested deeper than 3");
  // Brackets and escaped quotes inside strings are not nesting.
  EXPECT_TRUE(parse_bounded_json(R"(["[[[[\"[[[["])", limits));
  limits = {};
  limits.max_values = 3;
  EXPECT_FALSE(parse_bounded_json("[1,2,3,4]", limits));
  EXPECT_EQ(parse_bounded_json("{", JsonLimits{}).message(), "not JSON");
  EXPECT_FALSE(parse_bounded_json("\"\xff\"", JsonLimits{}));  // not UTF-8
  // A deep document well past the default cap comes back as an error, not a crash.
  EXPECT_FALSE(parse_bounded_json(std::string(100000, '[') + std::string(100000, ']')));
}

TEST(DeclarativeCheckIn, CarriesEndpointUdidAndOnAUserChannelTheUser) {
  auto device = declarative_management(kDevice, nullptr, kTokensEndpoint);
  EXPECT_EQ(plist::Value(device).string_at("MessageType"), "DeclarativeManagement");
  EXPECT_EQ(plist::Value(device).string_at("Endpoint"), "tokens");
  EXPECT_EQ(plist::Value(device).string_at("UDID"), "UDID-1");
  EXPECT_FALSE(device.count("UserID"));
  EXPECT_FALSE(device.count("Data"));

  UserFacts user{"USER-1", "ann", "Ann Example"};
  auto for_user = declarative_management(kUser, &user, kStatusEndpoint, std::string(R"({"x":1})"));
  EXPECT_EQ(plist::Value(for_user).string_at("UserID"), "USER-1");
  EXPECT_EQ(plist::Value(for_user).string_at("UserShortName"), "ann");
  EXPECT_EQ(plist::Value(for_user).string_at("UserLongName"), "Ann Example");
  ASSERT_TRUE(for_user.at("Data").as_data());
  EXPECT_EQ(for_user.at("Data").as_data()->bytes, R"({"x":1})");
  auto decoded = decode_check_in(plist::Value(for_user));
  ASSERT_TRUE(decoded) << decoded.message();
  EXPECT_EQ(decoded->type, MessageType::declarative_management);
  EXPECT_EQ(decoded->channel, kUser);
}

TEST(DeclarativeCheckIn, DeclarationPaths) {
  EXPECT_EQ(declaration_endpoint(DeclarationGroup::configuration, "pass"), "declaration/configuration/pass");
  EXPECT_EQ(declaration_endpoint(DeclarationGroup::activation, "a"), "declaration/activation/a");
  EXPECT_EQ(declaration_group_from_name("asset"), DeclarationGroup::asset);
  EXPECT_FALSE(declaration_group_from_name("assets"));
}

TEST(DeclarativeStatus, FullAndIncrementalReportsConformToTheSchema) {
  std::vector<DeclarationStatus> all{
      {DeclarationGroup::activation, "act", "a1", true, Validity::valid, {}},
      {DeclarationGroup::configuration, "pass", "p1", false, Validity::invalid, {"Error.InvalidPayload"}},
  };
  auto full = Json::parse(status_report(all, true));
  EXPECT_TRUE(problems_in_status_report(full).empty()) << describe(problems_in_status_report(full));
  EXPECT_EQ(full["FullReport"], true);
  EXPECT_EQ(full["Errors"], Json::array());
  const Json& lists = full["StatusItems"]["management"]["declarations"];
  EXPECT_EQ(lists["activations"],
            (Json::array({{{"identifier", "act"}, {"server-token", "a1"}, {"active", true}, {"valid", "valid"}}})));
  EXPECT_EQ(lists["configurations"][0]["valid"], "invalid");
  EXPECT_EQ(lists["configurations"][0]["reasons"][0]["code"], "Error.InvalidPayload");
  EXPECT_EQ(lists["assets"], Json::array());
  EXPECT_EQ(lists["management"], Json::array());

  auto incremental = Json::parse(status_report({}, false));
  EXPECT_TRUE(problems_in_status_report(incremental).empty());
  EXPECT_EQ(incremental["FullReport"], false);

  Json wrong = full;
  wrong["StatusItems"]["management"]["declarations"]["activations"][0]["valid"] = true;
  EXPECT_ONE_PROBLEM(problems_in_status_report(wrong), "StatusItems.management.declarations.activations[0].valid",
                     "must be <string>, is <boolean>");
}

TEST(DeclarativeCommand, SyncTokensFromTheCommandsData) {
  plist::Dict inner{{"RequestType", "DeclarativeManagement"}};
  Command without{"C1", "DeclarativeManagement", plist::Dict{{"CommandUUID", "C1"}, {"Command", inner}}};
  auto none = command_sync_tokens(without);
  ASSERT_TRUE(none) << none.message();
  EXPECT_FALSE(*none);

  inner["Data"] = plist::Data{R"({"SyncTokens":{"DeclarationsToken":"T9","Timestamp":"2026-12-07T05:00:00Z"}})"};
  Command with{"C2", "DeclarativeManagement", plist::Dict{{"CommandUUID", "C2"}, {"Command", inner}}};
  auto tokens = command_sync_tokens(with);
  ASSERT_TRUE(tokens && *tokens) << tokens.message();
  EXPECT_EQ((*tokens)->declarations_token, "T9");

  inner["Data"] = plist::Data{"not json"};
  Command bad{"C3", "DeclarativeManagement", plist::Dict{{"CommandUUID", "C3"}, {"Command", inner}}};
  EXPECT_EQ(command_sync_tokens(bad).message(), "Command.Data: not JSON");
}

TEST(DeclarativeFacts, AssetReferencesAreTheKeysAppleNamesSoAtAnyDepth) {
  auto payload = Json::parse(R"({"EchoDataAssetReference": "a1", "Nested": {"UserIdentityAssetReference": "a2"},
    "AnchorCertificateAssetReferences": ["a3", 4, "a4"], "Reference": "not-an-asset", "OtherAssetReference": 5})");
  EXPECT_EQ(asset_references(payload), (std::vector<std::string>{"a3", "a4", "a1", "a2"}));
  EXPECT_TRUE(asset_references(Json::object()).empty());
}

}  // namespace
}  // namespace mdmc::protocol
