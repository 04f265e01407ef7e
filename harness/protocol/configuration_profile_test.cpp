#include "harness/protocol/configuration_profile.hpp"

#include <gtest/gtest.h>

#include "harness/testing/plists.hpp"

namespace mdmc::protocol {
namespace {

plist::Dict payload(std::string type, std::string id) {
  return testing::profile_payload(std::move(type), std::move(id));
}

plist::Value profile(plist::Array content) { return testing::configuration_profile(std::move(content)); }

TEST(AccountPayloads, OneMailAccountIsOne) {
  auto mail = payload("com.apple.mail.managed", "mail");
  mail["EmailAccountType"] = "EmailTypeIMAP";
  auto found = account_payloads(profile({mail}));
  EXPECT_TRUE(found.is_profile);
  EXPECT_EQ(found.types, std::vector<std::string>{"com.apple.mail.managed"});
}

TEST(AccountPayloads, MailAndExchangeAreTwo) {
  auto found =
      account_payloads(profile({payload("com.apple.mail.managed", "m"), payload("com.apple.eas.account", "e")}));
  EXPECT_EQ(found.types, (std::vector<std::string>{"com.apple.mail.managed", "com.apple.eas.account"}));
}

TEST(AccountPayloads, OtherPayloadsAreNotAccounts) {
  auto found =
      account_payloads(profile({payload("com.apple.wifi.managed", "w"), payload("com.apple.security.root", "r"),
                                payload("com.apple.caldav.account", "c"), payload("COM.APPLE.LDAP.ACCOUNT", "upper")}));
  EXPECT_EQ(found.types, std::vector<std::string>{"com.apple.caldav.account"});
}

TEST(AccountPayloads, EmptyProfileHasNone) {
  auto found = account_payloads(profile({}));
  EXPECT_TRUE(found.is_profile);
  EXPECT_TRUE(found.types.empty());
}

TEST(AccountPayloads, MalformedEntriesAreSkipped) {
  auto no_type = payload("x", "n");
  no_type.erase("PayloadType");
  auto found = account_payloads(profile(
      {3, "com.apple.mail.managed", no_type, plist::Dict{{"PayloadType", 7}}, payload("com.apple.ldap.account", "l")}));
  EXPECT_EQ(found.types, std::vector<std::string>{"com.apple.ldap.account"});
}

TEST(AccountPayloads, NotAProfile) {
  EXPECT_FALSE(account_payloads(plist::Value("com.apple.mail.managed")).is_profile);
  EXPECT_FALSE(account_payloads(plist::Value(plist::Dict{})).is_profile);
  EXPECT_FALSE(account_payloads(plist::Value(plist::Dict{{"PayloadContent", "x"}})).is_profile);
}

TEST(AccountPayloads, EncryptedProfileIsSaidToBe) {
  auto found = account_payloads(plist::Value(
      plist::Dict{{"EncryptedPayloadContent", plist::Data{"\x30\x80"}}, {"PayloadType", "Configuration"}}));
  EXPECT_TRUE(found.is_profile);
  EXPECT_TRUE(found.encrypted);
  EXPECT_TRUE(found.types.empty());
}

TEST(AccountPayloads, TypesComeFromTheSchema) {
  for (auto type :
       {"com.apple.mail.managed", "com.apple.eas.account", "com.apple.ews.account", "com.apple.caldav.account",
        "com.apple.carddav.account", "com.apple.ldap.account", "com.apple.subscribedcalendar.account",
        "com.apple.google-oauth", "com.apple.jabber.account", "com.apple.AIM.account", "com.apple.osxserver.account"}) {
    EXPECT_TRUE(is_account_payload_type(type)) << type;
  }
  EXPECT_EQ(account_payload_types().size(), 11u);
  EXPECT_FALSE(is_account_payload_type("com.apple.MCX"));
  EXPECT_FALSE(is_account_payload_type("com.apple.wifi.managed"));
  EXPECT_FALSE(is_account_payload_type(""));
}

}  // namespace
}  // namespace mdmc::protocol
