#include "harness/protocol/messages.hpp"

#include <gtest/gtest.h>

#include "harness/testing/files.hpp"

namespace mdmc::protocol {
namespace {

using testing::capture;

DeviceFacts mac() {
  DeviceFacts d;
  d.udid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
  d.topic = "com.apple.mgmt.External.test";
  return d;
}

UserFacts jimmy() { return {"F17C470A-3ADC-47EC-A7CC-D432867F4793", "jimmys", "Jimmy Smith"}; }

TEST(Channel, UserChannelIdIsUdidColonUserId) {
  Channel c{"UDID1", "USER1"};
  EXPECT_EQ(c.id(), "UDID1:USER1");
  EXPECT_EQ(Channel::from_id("UDID1:USER1"), c);
  EXPECT_EQ(Channel::from_id("UDID1")->is_user(), false);
  EXPECT_FALSE(Channel::from_id(""));
  EXPECT_FALSE(Channel::from_id(":USER"));
  EXPECT_FALSE(Channel::from_id("UDID:"));
}

TEST(CheckIn, AuthenticateRoundTripsThroughXml) {
  auto bytes = plist::to_xml(plist::Value(authenticate(mac())));
  auto parsed = plist::parse(bytes);
  ASSERT_TRUE(parsed);
  auto decoded = decode_check_in(*parsed);
  ASSERT_TRUE(decoded) << decoded.message();
  EXPECT_EQ(decoded->type, MessageType::authenticate);
  EXPECT_EQ(decoded->channel.udid, mac().udid);
  EXPECT_FALSE(decoded->channel.is_user());
}

TEST(CheckIn, UserTokenUpdateCarriesUserKeysAndNotOnConsole) {
  auto user = jimmy();
  auto dict = token_update(mac(), PushIdentity{"\x01\x02", "magic"}, &user);
  EXPECT_EQ(dict.at("UserID"), plist::Value(user.user_id));
  EXPECT_EQ(dict.at("UserShortName"), plist::Value("jimmys"));
  EXPECT_EQ(dict.at("UserLongName"), plist::Value("Jimmy Smith"));
  EXPECT_TRUE(dict.count("NotOnConsole"));
  EXPECT_FALSE(dict.count("AwaitingConfiguration"));
  auto decoded = decode_check_in(plist::Value(dict));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->channel.id(), mac().udid + ":" + user.user_id);
  EXPECT_EQ(*decoded->token, "\x01\x02");
}

TEST(CheckIn, UserAuthenticateHasDigestResponseOnlyInTheSecondPhase) {
  auto first = user_authenticate(mac().udid, jimmy(), std::nullopt);
  EXPECT_FALSE(first.count("DigestResponse"));
  auto second = user_authenticate(mac().udid, jimmy(), std::string("digest"));
  auto decoded = decode_check_in(plist::Value(second));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->digest_response, "digest");
}

TEST(CheckIn, RealCapturedMessagesDecode) {
  for (const char* name : {"nanomdm/Authenticate.1.plist", "nanomdm/Authenticate.2.plist",
                           "nanomdm/TokenUpdate.1.plist", "nanomdm/TokenUpdate.2.plist"}) {
    auto parsed = plist::parse(capture(name));
    ASSERT_TRUE(parsed) << name << ": " << parsed.message();
    auto decoded = decode_check_in(*parsed);
    EXPECT_TRUE(decoded) << name << ": " << decoded.message();
  }
}

TEST(CheckIn, WrongTypesAndMissingKeysAreNamed) {
  auto dict = authenticate(mac());
  dict["UDID"] = std::int64_t{5};
  auto decoded = decode_check_in(plist::Value(dict));
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decode_error_key(decoded.error()), "UDID");

  auto token = token_update(mac(), PushIdentity{"t", "m"});
  token.erase("Token");
  EXPECT_EQ(decode_error_key(decode_check_in(plist::Value(token)).error()), "Token");

  auto unknown = authenticate(mac());
  unknown["MessageType"] = "Bogus";
  EXPECT_EQ(decode_error_key(decode_check_in(plist::Value(unknown)).error()), "MessageType");
  EXPECT_FALSE(decode_check_in(plist::Value(plist::Array{})));
}

TEST(Report, NotNowNeedsCommandUuidAndCarriesUserFlags) {
  Channel channel{mac().udid, jimmy().user_id};
  auto user = jimmy();
  auto dict = report(channel, &user, ReportSpec{Status::not_now, "CMD-1", {}}, UserFlags{true, true});
  auto decoded = decode_report(plist::Value(dict));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->status, Status::not_now);
  EXPECT_TRUE(decoded->flags.need_sync_response);
  EXPECT_TRUE(decoded->flags.user_configuration);
  dict.erase("CommandUUID");
  EXPECT_EQ(decode_error_key(decode_report(plist::Value(dict)).error()), "CommandUUID");
}

TEST(Report, ErrorCarriesErrorChain) {
  auto dict = report(Channel{"U", ""}, nullptr, ReportSpec{Status::error, "CMD", {{1, "Domain", "broke"}}});
  ASSERT_TRUE(dict.at("ErrorChain").as_array());
  EXPECT_EQ(dict.at("ErrorChain").as_array()->size(), 1u);
}

TEST(Command, ShapeNeedsUuidAndRequestType) {
  auto good = make_command("UUID-1", "ProfileList");
  auto decoded = decode_command(plist::Value(good.body));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->request_type, "ProfileList");

  EXPECT_EQ(decode_error_key(decode_command(plist::Value(plist::Dict{})).error()), "CommandUUID");
  EXPECT_EQ(decode_error_key(decode_command(plist::Value(plist::Dict{{"CommandUUID", "x"}})).error()), "Command");
  EXPECT_EQ(decode_error_key(
                decode_command(plist::Value(plist::Dict{{"CommandUUID", "x"}, {"Command", plist::Dict{}}})).error()),
            "Command.RequestType");
}

TEST(Command, CapturedInstallProfileDecodes) {
  auto parsed = plist::parse(capture("micromdm/InstallProfile.plist"));
  ASSERT_TRUE(parsed) << parsed.message();
  auto decoded = decode_command(*parsed);
  ASSERT_TRUE(decoded) << decoded.message();
  EXPECT_EQ(decoded->request_type, "InstallProfile");
}

}  // namespace
}  // namespace mdmc::protocol
