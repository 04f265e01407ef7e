#include "harness/fuzz/diagnosis.hpp"

#include <gtest/gtest.h>

#include "harness/fuzz/session.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/declarative.hpp"

namespace mdmc::fuzz {
namespace {

const std::string kUdid(kFuzzUdid);
const std::string kUser(kFuzzUserId);

std::string token_update(plist::Dict extra) {
  plist::Dict d{{"MessageType", plist::Value("TokenUpdate")},
                {"Topic", plist::Value("com.apple.mgmt.External.x")},
                {"UDID", plist::Value(kUdid)},
                {"Token", plist::Value(plist::Data{"t"})},
                {"PushMagic", plist::Value("magic")}};
  for (auto& [k, v] : extra) d[k] = std::move(v);
  return plist::to_xml(plist::Value(std::move(d)));
}

TEST(Diagnosis, NamesAKeyOfTheWrongTypeFromTheSchema) {
  auto d = diagnose_input(token_update({{"UDID", plist::Value(std::int64_t{7})}}), kUdid, kUser);
  EXPECT_EQ(d.kind, "TokenUpdate");
  EXPECT_EQ(d.phrase(), "TokenUpdate whose UDID is an integer (expected string)");
  EXPECT_EQ(d.key_paths(), "UDID:type");
}

// Every repair gives its key a value the diagnosis then finds nothing odd in.
TEST(Diagnosis, RepairsGiveKeysOfTheWrongTypeAPlainValueOfTheirSchemaType) {
  auto input = token_update({{"UDID", plist::Value(std::int64_t{7})},
                             {"Token", plist::Value(std::int64_t{8})},
                             {"AwaitingConfiguration", plist::Value("yes")}});
  auto d = diagnose_input(input, kUdid, kUser);
  ASSERT_EQ(d.key_paths(), "AwaitingConfiguration:type,Token:type,UDID:type");
  auto repairs = schema_repairs(d, kUdid, kUser);
  ASSERT_EQ(repairs.size(), 3u);
  auto root = plist::parse(input);
  ASSERT_TRUE(root);
  for (const auto& r : repairs) (*root->as_dict())[r.key] = r.value;
  EXPECT_EQ(*root->find("UDID")->as_string(), kUdid);
  EXPECT_TRUE(root->find("Token")->as_data());
  EXPECT_TRUE(root->find("AwaitingConfiguration")->as_bool());
  EXPECT_EQ(diagnose_input(plist::to_xml(*root), kUdid, kUser).key_paths(), "-");
}

TEST(Diagnosis, AKeyOfAnotherMessageIsHeldToItsTypeThere) {
  plist::Dict d{{"MessageType", plist::Value("Authenticate")},
                {"Topic", plist::Value("t")},
                {"UDID", plist::Value(kUdid)},
                {"DeviceName", plist::Value("d")},
                {"Model", plist::Value("m")},
                {"ModelName", plist::Value("n")},
                {"UserLongName", plist::Value(std::int64_t{9})},
                {"Frob", plist::Value("x")}};
  auto diagnosis = diagnose_input(plist::to_xml(plist::Value(d)), kUdid, kUser);
  EXPECT_EQ(diagnosis.phrase().substr(0, 63), "Authenticate whose UserLongName is an integer (expected string,")
      << diagnosis.phrase();
  EXPECT_NE(diagnosis.key_paths().find("Frob:unknown-key"), std::string::npos);
}

TEST(Diagnosis, AWellFormedMessageHasNoProblem) {
  auto d = diagnose_input(token_update({}), kUdid, kUser);
  EXPECT_TRUE(d.problems.empty()) << d.phrase();
  EXPECT_EQ(d.phrase(), "a well-formed TokenUpdate");
  EXPECT_EQ(d.key_paths(), "-");
}

TEST(Diagnosis, NamesMissingRequiredAndUnknownKeys) {
  plist::Dict d{
      {"MessageType", plist::Value("TokenUpdate")}, {"UDID", plist::Value(kUdid)}, {"Frobnicate", plist::Value(true)}};
  auto diagnosis = diagnose_input(plist::to_xml(plist::Value(d)), kUdid, kUser);
  auto paths = diagnosis.key_paths();
  EXPECT_NE(paths.find("Topic:missing"), std::string::npos) << paths;
  EXPECT_NE(paths.find("Frobnicate:unknown-key"), std::string::npos) << paths;
}

TEST(Diagnosis, NamesValuesServersMishandle) {
  plist::Dict report{
      {"Status", plist::Value("Acknowledged")},
      {"UDID", plist::Value(std::string())},
      {"CommandUUID", plist::Value(std::string(5000, 'x'))},
      {"ErrorChain",
       plist::Value(plist::Array{plist::Value(plist::Dict{{"ErrorCode", plist::Value(std::int64_t{-4})}})})}};
  auto d = diagnose_input(plist::to_xml(plist::Value(report)), kUdid, kUser);
  auto paths = d.key_paths();
  EXPECT_NE(paths.find("UDID:empty"), std::string::npos) << paths;
  EXPECT_NE(paths.find("CommandUUID:long"), std::string::npos) << paths;
  EXPECT_NE(paths.find("ErrorChain[0].ErrorCode:negative"), std::string::npos) << paths;
}

TEST(Diagnosis, AnOddValueCountsByTheMessagesOwnKeyItIsUnder) {
  auto report = [](plist::Dict extra) {
    plist::Dict d{{"Status", plist::Value("Error")}, {"UDID", plist::Value(kUdid)}};
    for (auto& [k, v] : extra) d[k] = std::move(v);
    return diagnose_input(plist::to_xml(plist::Value(d)), kUdid, kUser);
  };
  auto nested =
      report({{"ErrorChain",
               plist::Value(plist::Array{plist::Value(plist::Dict{{"ErrorCode", plist::Value(std::int64_t{-4})}})})}});
  EXPECT_EQ(nested.primary(), "ErrorChain:negative");
  auto odd_key = report({{"Frob", plist::Value(std::int64_t{-1})}});
  auto other_odd_key = report({{"Blah", plist::Value(plist::Array{plist::Value(std::int64_t{-9})})}});
  EXPECT_EQ(odd_key.primary(), "*:negative");
  EXPECT_EQ(other_odd_key.primary(), odd_key.primary());
}

TEST(Diagnosis, SaysWhatIsNotAMessage) {
  EXPECT_EQ(diagnose_input("garbage!", kUdid, kUser).phrase(), "bytes that are no plist (8 bytes)");
  auto array = diagnose_input(plist::to_xml(plist::Value(plist::Array{})), kUdid, kUser);
  EXPECT_EQ(array.phrase(), "a plist array, not a dict");
  plist::Dict odd{{"MessageType", plist::Value("Frob")}, {"UDID", plist::Value(kUdid)}};
  EXPECT_EQ(diagnose_input(plist::to_xml(plist::Value(odd)), kUdid, kUser).phrase(),
            "a check-in whose MessageType is 'Frob', not a check-in Apple's schema has");
}

TEST(Diagnosis, SeesAKeyTwiceInAnXmlDict) {
  std::string xml =
      "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Status</key><string>Idle</string>"
      "<key>UDID</key><string>" +
      kUdid + "</string><key>UDID</key><string>" + kUdid + "</string></dict></plist>";
  EXPECT_NE(diagnose_input(xml, kUdid, kUser).key_paths().find(":duplicate-key"), std::string::npos);
}

TEST(Diagnosis, SeesADateInABinaryPlistAndDeepNesting) {
  plist::Value deep(std::int64_t{1});
  for (int i = 0; i < 10; ++i) deep = plist::Value(plist::Array{deep});
  plist::Dict d{{"MessageType", plist::Value("Authenticate")}, {"When", plist::Value(plist::Date{5})}, {"Deep", deep}};
  auto diagnosis = diagnose_input(plist::to_binary(plist::Value(d)), kUdid, kUser);
  EXPECT_TRUE(diagnosis.binary);
  auto paths = diagnosis.key_paths();
  EXPECT_NE(paths.find("When:binary-date"), std::string::npos) << paths;
  EXPECT_NE(paths.find(":deep"), std::string::npos) << paths;
}

std::string declarative(std::string endpoint, std::optional<std::string> data) {
  return plist::to_xml(
      plist::Value(protocol::declarative_management(protocol::Channel{kUdid, ""}, nullptr, endpoint, std::move(data))));
}

// A DeclarativeManagement check-in: its keys come from the check-in schema; its Endpoint and the
// status report in its Data are held to the declarative schema.
TEST(Diagnosis, HoldsADeclarativeCheckInsEndpointAndReport) {
  const std::string report = protocol::status_report(
      {{protocol::DeclarationGroup::configuration, "com.example.p", "T1", true, protocol::Validity::valid, {}}}, true);
  for (const std::string endpoint : {"tokens", "declaration-items", "declaration/configuration/com.example.p"}) {
    auto d = diagnose_input(declarative(endpoint, std::nullopt), kUdid, kUser);
    EXPECT_EQ(d.kind, "DeclarativeManagement");
    EXPECT_EQ(d.key_paths(), "-") << endpoint;
  }
  EXPECT_EQ(diagnose_input(declarative("status", report), kUdid, kUser).key_paths(), "-");

  auto odd = diagnose_input(declarative("declaration/configurations/x", std::nullopt), kUdid, kUser);
  EXPECT_EQ(odd.primary(), "Endpoint:endpoint");
  EXPECT_EQ(
      odd.phrase(),
      "DeclarativeManagement whose Endpoint is 'declaration/configurations/x', not an endpoint of Apple's schema");
  EXPECT_EQ(diagnose_input(declarative("declaration/asset/a/b", std::nullopt), kUdid, kUser).primary(),
            "Endpoint:endpoint");

  EXPECT_EQ(diagnose_input(declarative("status", std::nullopt), kUdid, kUser).primary(), "Data:missing");
  auto not_json = diagnose_input(declarative("status", std::string("{\"StatusItems\":")), kUdid, kUser);
  EXPECT_EQ(not_json.primary(), "Data:not-json");
  auto bad = nlohmann::json::parse(report);
  bad["FullReport"] = "yes";
  auto wrong = diagnose_input(declarative("status", bad.dump()), kUdid, kUser);
  EXPECT_EQ(wrong.primary(), "Data:status-report");
  EXPECT_NE(wrong.phrase().find("FullReport"), std::string::npos) << wrong.phrase();
}

}  // namespace
}  // namespace mdmc::fuzz
