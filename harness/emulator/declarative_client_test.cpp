#include "harness/emulator/declarative_client.hpp"

#include <gtest/gtest.h>

#include <random>

namespace mdmc::emulator {
namespace {

using protocol::DeclarationGroup;
using protocol::Json;

const protocol::Channel kDevice{"UDID-1", ""};
const protocol::Channel kUser{"UDID-1", "USER-1"};

std::string endpoint_of(const Message& message) {
  return message.body.at("Endpoint").as_string() ? *message.body.at("Endpoint").as_string() : "";
}

// Canned answers, as a declarative server would give them for one channel: its declarations by
// group, a DeclarationsToken that changes whenever they do, and the endpoints asked for.
struct CannedServer {
  struct Served {
    DeclarationGroup group;
    std::string type;
    std::string server_token;
    Json payload;
  };
  std::map<std::string, Served> declarations;
  int version = 1;
  std::vector<std::string> asked;
  std::vector<std::string> status_reports;
  std::map<std::string, Answer> overrides;  // by endpoint: a canned bad answer

  void put(std::string identifier, DeclarationGroup group, std::string type, std::string token, Json payload) {
    declarations[std::move(identifier)] = {group, std::move(type), std::move(token), std::move(payload)};
    ++version;
  }
  std::string token() const { return "T" + std::to_string(version); }

  Answer answer(const Message& message) {
    const std::string endpoint = endpoint_of(message);
    asked.push_back(endpoint);
    if (overrides.count(endpoint)) return overrides.at(endpoint);
    if (endpoint == "tokens") {
      return {200,
              Json{{"SyncTokens", {{"DeclarationsToken", token()}, {"Timestamp", "2026-12-07T05:00:00Z"}}}}.dump()};
    }
    if (endpoint == "declaration-items") {
      Json lists = Json::object();
      for (DeclarationGroup group : protocol::kDeclarationGroups) {
        lists[std::string(protocol::declaration_items_key(group))] = Json::array();
      }
      for (const auto& [identifier, served] : declarations) {
        lists[std::string(protocol::declaration_items_key(served.group))].push_back(
            {{"Identifier", identifier}, {"ServerToken", served.server_token}});
      }
      return {200, Json{{"Declarations", lists}, {"DeclarationsToken", token()}}.dump()};
    }
    if (endpoint == "status") {
      status_reports.push_back(message.body.at("Data").as_data()->bytes);
      return {200, ""};
    }
    for (const auto& [identifier, served] : declarations) {
      if (endpoint == protocol::declaration_endpoint(served.group, identifier)) {
        return {200, Json{{"Type", served.type},
                          {"Identifier", identifier},
                          {"ServerToken", served.server_token},
                          {"Payload", served.payload}}
                         .dump()};
      }
    }
    return {404, ""};
  }

  // Runs the client's sync to its end; the first reason an answer was refused, if any.
  std::optional<std::string> drive(DeclarativeClient& client) {
    for (int i = 0; i < 100 && client.syncing(); ++i) {
      if (auto reason = client.on_answer(answer(client.next()))) return reason;
    }
    return std::nullopt;
  }
};

// An activation of one passcode configuration, and an unreferenced one.
CannedServer typical_server() {
  CannedServer server;
  server.put("act", DeclarationGroup::activation, "com.apple.activation.simple", "a1",
             Json{{"StandardConfigurations", {"pass"}}});
  server.put("pass", DeclarationGroup::configuration, "com.apple.configuration.passcode.settings", "p1",
             Json{{"MinimumLength", 6}});
  server.put("spare", DeclarationGroup::configuration, "com.apple.configuration.management.test", "s1",
             Json{{"Echo", "hello"}});
  return server;
}

Json status_lists(const std::string& report) {
  return Json::parse(report)["StatusItems"]["management"]["declarations"];
}

TEST(DeclarativeClient, FullSyncFetchesEverythingAndReportsInFull) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  EXPECT_FALSE(client.syncing());
  client.start_sync();
  ASSERT_TRUE(client.syncing());
  EXPECT_EQ(client.next().endpoint, Endpoint::check_in);
  EXPECT_EQ(client.next().label, "DeclarativeManagement tokens");
  EXPECT_FALSE(client.next().body.count("UserID"));
  auto reason = server.drive(client);
  ASSERT_FALSE(reason) << *reason;
  EXPECT_EQ(server.asked,
            (std::vector<std::string>{"tokens", "declaration-items", "declaration/activation/act",
                                      "declaration/configuration/pass", "declaration/configuration/spare", "status"}));
  EXPECT_EQ(client.declarations_token(), server.token());
  ASSERT_EQ(client.held().size(), 3u);
  const HeldDeclaration* pass = client.find("pass");
  ASSERT_TRUE(pass);
  EXPECT_EQ(pass->type, "com.apple.configuration.passcode.settings");
  EXPECT_EQ(pass->server_token, "p1");
  EXPECT_EQ(pass->payload, (Json{{"MinimumLength", 6}}));
  EXPECT_TRUE(pass->active);
  EXPECT_TRUE(pass->valid);
  EXPECT_TRUE(client.find("act")->active);
  EXPECT_TRUE(client.find("spare")->valid);
  EXPECT_FALSE(client.find("spare")->active);  // no activation lists it

  ASSERT_EQ(server.status_reports.size(), 1u);
  EXPECT_EQ(client.status_reports_accepted(), 1);
  Json report = Json::parse(server.status_reports[0]);
  EXPECT_TRUE(protocol::problems_in_status_report(report).empty());
  EXPECT_EQ(report["FullReport"], true);
  Json lists = status_lists(server.status_reports[0]);
  EXPECT_EQ(lists["activations"].size(), 1u);
  ASSERT_EQ(lists["configurations"].size(), 2u);
  EXPECT_EQ(lists["configurations"][0],
            (Json{{"identifier", "pass"}, {"server-token", "p1"}, {"active", true}, {"valid", "valid"}}));
  EXPECT_EQ(lists["configurations"][1]["active"], false);
}

TEST(DeclarativeClient, UnchangedTokenSkipsTheFetch) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  server.asked.clear();
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  EXPECT_EQ(server.asked, (std::vector<std::string>{"tokens"}));  // nothing changed, nothing to report
  EXPECT_EQ(client.held().size(), 3u);
}

TEST(DeclarativeClient, CommandWithTheHeldTokensIsAcknowledgedWithoutAFetch) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  server.asked.clear();

  auto tokens = Json{{"SyncTokens", {{"DeclarationsToken", server.token()}, {"Timestamp", "2026-12-07T05:00:00Z"}}}};
  auto command = protocol::make_command("C1", "DeclarativeManagement");
  command.body["Command"].as_dict()->emplace("Data", plist::Data{tokens.dump()});
  auto answer = client.on_command(command);
  EXPECT_EQ(answer.status, protocol::Status::acknowledged);
  EXPECT_FALSE(client.syncing());

  // New tokens in the Data: straight to declaration-items, no `tokens` check-in.
  server.put("pass", DeclarationGroup::configuration, "com.apple.configuration.passcode.settings", "p2",
             Json{{"MinimumLength", 8}});
  tokens["SyncTokens"]["DeclarationsToken"] = server.token();
  command.body["Command"].as_dict()->insert_or_assign("Data", plist::Data{tokens.dump()});
  EXPECT_EQ(client.on_command(command).status, protocol::Status::acknowledged);
  ASSERT_TRUE(client.syncing());
  EXPECT_EQ(endpoint_of(client.next()), "declaration-items");
  ASSERT_FALSE(server.drive(client));
  EXPECT_EQ(client.find("pass")->server_token, "p2");

  // Without Data: a sync from `tokens`.
  auto bare = protocol::make_command("C2", "DeclarativeManagement");
  EXPECT_EQ(client.on_command(bare).status, protocol::Status::acknowledged);
  EXPECT_EQ(endpoint_of(client.next()), "tokens");

  // Data that is not a TokensResponse: CommandFormatError, and no sync begins.
  DeclarativeClient fresh(kDevice, std::nullopt);
  bare.body["Command"].as_dict()->emplace("Data", plist::Data{"{"});
  auto refused = fresh.on_command(bare);
  EXPECT_EQ(refused.status, protocol::Status::command_format_error);
  EXPECT_EQ(refused.reason, "Command.Data: not JSON");
  EXPECT_FALSE(fresh.syncing());
}

TEST(DeclarativeClient, ChangedServerTokenRefetchesOnlyThatDeclarationAndReportsIncrementally) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  server.asked.clear();

  server.put("spare", DeclarationGroup::configuration, "com.apple.configuration.management.test", "s2",
             Json{{"Echo", "again"}});
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  EXPECT_EQ(server.asked,
            (std::vector<std::string>{"tokens", "declaration-items", "declaration/configuration/spare", "status"}));
  EXPECT_EQ(client.find("spare")->payload, (Json{{"Echo", "again"}}));
  ASSERT_EQ(server.status_reports.size(), 2u);
  Json report = Json::parse(server.status_reports[1]);
  EXPECT_EQ(report["FullReport"], false);
  EXPECT_TRUE(protocol::problems_in_status_report(report).empty());
  Json lists = status_lists(server.status_reports[1]);
  EXPECT_EQ(lists["activations"], Json::array());
  ASSERT_EQ(lists["configurations"].size(), 1u);
  EXPECT_EQ(lists["configurations"][0]["identifier"], "spare");
  EXPECT_EQ(lists["configurations"][0]["server-token"], "s2");
  EXPECT_EQ(client.status_reports_accepted(), 2);
}

TEST(DeclarativeClient, DeclarationNoLongerListedIsDropped) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  server.asked.clear();

  server.declarations.erase("act");
  ++server.version;
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  EXPECT_FALSE(client.find("act"));
  EXPECT_EQ(client.held().size(), 2u);
  // With its activation gone, pass is no longer active: that change is reported.
  EXPECT_FALSE(client.find("pass")->active);
  EXPECT_EQ(server.asked, (std::vector<std::string>{"tokens", "declaration-items", "status"}));
  Json lists = status_lists(server.status_reports.back());
  ASSERT_EQ(lists["configurations"].size(), 1u);
  EXPECT_EQ(lists["configurations"][0]["identifier"], "pass");
  EXPECT_EQ(lists["configurations"][0]["active"], false);
}

TEST(DeclarativeClient, BadAnswersAreRefusedWithoutChangingWhatTheChannelHolds) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  const auto held_before = client.held().size();
  const auto token_before = client.declarations_token();
  server.put("pass", DeclarationGroup::configuration, "com.apple.configuration.passcode.settings", "p2",
             Json{{"MinimumLength", 8}});

  struct Case {
    std::string endpoint;
    Answer answer;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"tokens", {200, "not json"}, "tokens: not JSON"},
      {"tokens", {500, ""}, "tokens: HTTP 500"},
      {"declaration-items", {200, R"({"Declarations":{}})"}, "declaration-items: DeclarationsToken: missing"},
      {"declaration-items",
       {200, std::string(2 << 20, ' ')},
       "declaration-items: JSON of 2097152 bytes, over the bound of 1048576"},
      {"declaration/configuration/pass",
       {200, "[]"},
       "declaration/configuration/pass: must be a JSON object, is <array>"},
      {"declaration/configuration/pass",
       {200,
        R"({"Type":"com.apple.configuration.passcode.settings","Identifier":"pass","ServerToken":"p1","Payload":{}})"},
       "declaration/configuration/pass: ServerToken is not the one listed"},
      {"declaration/configuration/pass",
       {200, R"({"Type":"com.apple.activation.simple","Identifier":"pass","ServerToken":"p2","Payload":{}})"},
       "declaration/configuration/pass: Type com.apple.activation.simple is of the activation group, listed under "
       "Configurations"},
      {"declaration/configuration/pass", {404, ""}, "declaration/configuration/pass: HTTP 404"},
  };
  for (const auto& c : cases) {
    server.overrides = {{c.endpoint, c.answer}};
    client.start_sync();
    auto reason = server.drive(client);
    ASSERT_TRUE(reason) << c.endpoint;
    EXPECT_EQ(*reason, c.reason);
    EXPECT_FALSE(client.syncing());
    EXPECT_EQ(client.held().size(), held_before);
    EXPECT_EQ(client.find("pass")->server_token, "p1") << c.reason;
    EXPECT_EQ(client.declarations_token(), token_before);
  }
  // A good answer after all that: the change lands.
  server.overrides.clear();
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  EXPECT_EQ(client.find("pass")->server_token, "p2");
}

TEST(DeclarativeClient, RefusedStatusReportIsSentAgainWithTheNextChanges) {
  auto server = typical_server();
  DeclarativeClient client(kDevice, std::nullopt);
  server.overrides = {{"status", Answer{500, ""}}};
  client.start_sync();
  auto reason = server.drive(client);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "status: HTTP 500");
  EXPECT_EQ(client.held().size(), 3u);  // the declarations were taken; the report was not
  EXPECT_EQ(client.status_reports_accepted(), 0);
  server.overrides.clear();
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  // Still the first report the server took: a full one.
  EXPECT_EQ(Json::parse(server.status_reports.back())["FullReport"], true);
}

TEST(DeclarativeClient, ValidityFollowsThePayloadAndTheChannel) {
  CannedServer server;
  server.put("act", DeclarationGroup::activation, "com.apple.activation.simple", "a1",
             Json{{"StandardConfigurations", {"bad", "device-only"}}});
  server.put("bad", DeclarationGroup::configuration, "com.apple.configuration.passcode.settings", "b1",
             Json{{"MinimumLength", "six"}});
  server.put("device-only", DeclarationGroup::configuration, "com.apple.configuration.softwareupdate.settings", "d1",
             Json::object());
  protocol::UserFacts user{"USER-1", "ann", "Ann Example"};
  DeclarativeClient client(kUser, user);
  client.start_sync();
  ASSERT_FALSE(server.drive(client));
  const HeldDeclaration* bad = client.find("bad");
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->valid);
  EXPECT_FALSE(bad->active);
  ASSERT_EQ(bad->problems.size(), 1u);
  EXPECT_EQ(bad->problems[0].key_path, "Payload.MinimumLength");
  const HeldDeclaration* device_only = client.find("device-only");
  EXPECT_FALSE(device_only->valid);
  ASSERT_EQ(device_only->problems.size(), 1u);
  EXPECT_EQ(device_only->problems[0].problem, "not allowed on the user channel");
  Json lists = status_lists(server.status_reports.back());
  EXPECT_EQ(lists["configurations"][0]["valid"], "invalid");
  EXPECT_EQ(lists["configurations"][0]["reasons"][0]["code"], "Error.InvalidPayload");
  EXPECT_EQ(lists["configurations"][1]["reasons"][0]["code"], "Error.ConfigurationNotSupported");
}

TEST(DeclarativeClient, UserChannelCheckInsCarryTheUser) {
  auto server = typical_server();
  protocol::UserFacts user{"USER-1", "ann", "Ann Example"};
  DeclarativeClient client(kUser, user);
  client.start_sync();
  std::vector<std::string> endpoints;
  while (client.syncing()) {
    const Message& message = client.next();
    endpoints.push_back(endpoint_of(message));
    EXPECT_EQ(message.body.at("MessageType").as_string() ? *message.body.at("MessageType").as_string() : "",
              "DeclarativeManagement");
    EXPECT_EQ(*message.body.at("UDID").as_string(), "UDID-1");
    EXPECT_EQ(*message.body.at("UserID").as_string(), "USER-1");
    EXPECT_EQ(*message.body.at("UserShortName").as_string(), "ann");
    auto decoded = protocol::decode_check_in(plist::Value(message.body));
    ASSERT_TRUE(decoded) << decoded.message();
    EXPECT_EQ(decoded->channel, kUser);
    ASSERT_FALSE(client.on_answer(server.answer(message)));
  }
  EXPECT_EQ(endpoints.size(), 6u);
  EXPECT_EQ(endpoints.back(), "status");
  EXPECT_EQ(client.held().size(), 3u);
}

TEST(DeclarativeClient, OnePerChannelFromTheDeviceAndEachUserAgent) {
  IdentitySource ids(18);
  protocol::DeviceFacts facts;
  facts.udid = "UDID-1";
  Device device(facts, ids);
  UserAgent agent("UDID-1", protocol::UserFacts{"USER-1", "ann", "Ann Example"}, UserKind::local, ids);
  auto for_device = declarative_client(device);
  auto for_user = declarative_client(agent);
  EXPECT_EQ(for_device.channel(), kDevice);
  EXPECT_EQ(for_user.channel(), kUser);
  for_user.start_sync();
  EXPECT_EQ(*for_user.next().body.at("UserLongName").as_string(), "Ann Example");
  for_device.start_sync();
  EXPECT_FALSE(for_device.next().body.count("UserID"));
}

TEST(DeclarativeClient, HeldBytesAreBounded) {
  auto server = typical_server();
  DeclarativeOptions options;
  options.max_held_bytes = 200;  // room for about one declaration
  DeclarativeClient client(kDevice, std::nullopt, options);
  client.start_sync();
  auto reason = server.drive(client);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("would exceed 200 bytes"), std::string::npos) << *reason;
  EXPECT_TRUE(client.held().empty());
  EXPECT_TRUE(client.declarations_token().empty());
}

// Untrusted bytes: every answer of a sync with bytes flipped, cut or repeated is taken or
// refused, never a crash, and a refused one leaves what the channel holds as it was.
TEST(DeclarativeClient, MangledAnswersNeverCrashOrHalfApply) {
  std::mt19937_64 rng(18);
  int refusals = 0;
  for (int round = 0; round < 2000; ++round) {
    auto server = typical_server();
    DeclarativeClient client(round % 2 ? kUser : kDevice, std::nullopt);
    client.start_sync();
    ASSERT_FALSE(server.drive(client));
    auto before = client.held();
    server.put("pass", DeclarationGroup::configuration, "com.apple.configuration.passcode.settings", "p2",
               Json{{"MinimumLength", 8}, {"CustomRegex", {{"Regex", ".*"}}}});
    client.start_sync();
    const std::size_t victim = rng() % 4;  // which answer of the sync gets mangled
    bool refused = false;
    for (std::size_t step = 0; step < 16 && client.syncing(); ++step) {
      Answer answer = server.answer(client.next());
      if (step == victim && !answer.body.empty()) {
        switch (rng() % 3) {
          case 0: answer.body[rng() % answer.body.size()] = static_cast<char>(rng()); break;
          case 1: answer.body.resize(rng() % answer.body.size()); break;
          default: answer.body += answer.body; break;
        }
      }
      if (client.on_answer(answer)) {
        refused = true;
        break;
      }
    }
    EXPECT_FALSE(client.syncing());
    if (refused) {
      ++refusals;
      ASSERT_EQ(client.held().size(), before.size());
      ASSERT_EQ(client.find("pass")->server_token, "p1");
    }
  }
  // Both outcomes occur: most mangled answers are refused, some still read as a good answer.
  EXPECT_GT(refusals, 1000);
  EXPECT_LT(refusals, 2000);
}

TEST(DeclarativeClient, AnswerWhileIdleIsRefused) {
  DeclarativeClient client(kDevice, std::nullopt);
  auto reason = client.on_answer(Answer{200, "{}"});
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "no check-in was sent");
}

}  // namespace
}  // namespace mdmc::emulator
