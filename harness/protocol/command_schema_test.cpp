#include "harness/protocol/command_schema.hpp"

#include <gtest/gtest.h>

#include "harness/protocol/apple_schema.hpp"
#include "harness/testing/files.hpp"

namespace mdmc::protocol {
namespace {

using testing::capture;

// A command with the given keys in its Command dict, besides RequestType.
Command command_with(std::string request_type, plist::Dict keys) {
  keys["RequestType"] = request_type;
  plist::Dict whole{{"CommandUUID", "CMD-1"}, {"Command", std::move(keys)}};
  return Command{"CMD-1", std::move(request_type), std::move(whole)};
}

std::string describe(const std::vector<SchemaViolation>& violations) {
  std::string out;
  for (const auto& v : violations) out += "\n  " + v.key_path + ": " + v.problem;
  return out;
}

// The one violation, or a failure listing what there was.
#define EXPECT_ONE_VIOLATION(violations, path, problem_text) \
  do {                                                       \
    const auto& v_ = (violations);                           \
    ASSERT_EQ(v_.size(), 1u) << describe(v_);                \
    EXPECT_EQ(v_[0].key_path, path);                         \
    EXPECT_EQ(v_[0].problem, problem_text);                  \
  } while (0)

TEST(CommandSchema, CapturedMicroMdmInstallProfileConforms) {
  auto parsed = plist::parse(capture("micromdm/InstallProfile.plist"));
  ASSERT_TRUE(parsed) << parsed.message();
  auto decoded = decode_command(*parsed);
  ASSERT_TRUE(decoded) << decoded.message();
  EXPECT_TRUE(check_command_schema(*decoded, false).empty());
  EXPECT_TRUE(check_command_schema(*decoded, true).empty());
}

TEST(CommandSchema, MadeCommandsConformOnEveryChannelMacOSTakesThemOn) {
  for (const char* type : {"ProfileList", "CertificateList", "InstalledApplicationList", "DeviceInformation",
                           "DeviceConfigured", "InstallProfile"}) {
    auto command = make_command("UUID-1", type);
    // Through the wire format and back, as a client would see it.
    auto parsed = plist::parse(plist::to_xml(plist::Value(command.body)));
    ASSERT_TRUE(parsed) << type;
    auto decoded = decode_command(*parsed);
    ASSERT_TRUE(decoded) << type;
    auto channels = mac_channels(type);
    ASSERT_TRUE(channels) << type;
    ASSERT_TRUE(channels->device) << type;
    EXPECT_TRUE(check_command_schema(*decoded, false).empty())
        << type << describe(check_command_schema(*decoded, false));
    if (channels->user) {
      EXPECT_TRUE(check_command_schema(*decoded, true).empty())
          << type << describe(check_command_schema(*decoded, true));
    }
  }
}

TEST(CommandSchema, MadeInstallProfileCarriesAProfilePlist) {
  auto command = make_command("UUID-1", "InstallProfile");
  const auto* payload = command.body.at("Command").find("Payload");
  ASSERT_TRUE(payload && payload->as_data());
  auto profile = plist::parse(payload->as_data()->bytes);
  ASSERT_TRUE(profile) << profile.message();
  EXPECT_EQ(profile->string_at("PayloadType"), "Configuration");
  ASSERT_TRUE(profile->find("PayloadContent"));
  EXPECT_TRUE(profile->find("PayloadContent")->as_array());
}

TEST(CommandSchema, RetypedKeyIsNamedByItsPath) {
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("ProfileList", {{"ManagedOnly", "yes"}}), false),
                       "Command.ManagedOnly", "must be <boolean>, is <string>");
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("InstallProfile", {{"Payload", "not data"}}), false),
                       "Command.Payload", "must be <data>, is <string>");
}

TEST(CommandSchema, RetypedKeyDeepInsideIsNamedByItsPath) {
  plist::Dict item{{"Item", "DeviceName"}, {"DeviceName", 42}};
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("Settings", {{"Settings", plist::Array{item}}}), false),
                       "Command.Settings[0].DeviceName", "must be <string>, is <integer>");
  plist::Dict update{{"InstallAction", "Default"}, {"MaxUserDeferrals", "three"}};
  EXPECT_ONE_VIOLATION(
      check_command_schema(command_with("ScheduleOSUpdate", {{"Updates", plist::Array{update}}}), false),
      "Command.Updates[0].MaxUserDeferrals", "must be <integer>, is <string>");
  EXPECT_ONE_VIOLATION(
      check_command_schema(command_with("InstalledApplicationList", {{"Identifiers", plist::Array{"a", 7}}}), false),
      "Command.Identifiers[1]", "must be <string>, is <integer>");
}

TEST(CommandSchema, IntegerMustBeAPlistInteger) {
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("RequestMirroring", {{"ScanTime", 1.5}}), false),
                       "Command.ScanTime", "must be <integer>, is <real>");
  EXPECT_TRUE(check_command_schema(command_with("RequestMirroring", {{"ScanTime", 30}}), false).empty());
}

TEST(CommandSchema, MissingRequiredKeyFails) {
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("InstallProfile", {}), false), "Command.Payload",
                       "missing (required)");
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("DeviceInformation", {}), true), "Command.Queries",
                       "missing (required)");
  plist::Dict update{{"ProductKey", "x"}};
  EXPECT_ONE_VIOLATION(
      check_command_schema(command_with("ScheduleOSUpdate", {{"Updates", plist::Array{update}}}), false),
      "Command.Updates[0].InstallAction", "missing (required)");
}

TEST(CommandSchema, UnknownKeyFails) {
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("ProfileList", {{"Foo", 1}}), false), "Command.Foo",
                       "unknown key");
  plist::Dict update{{"InstallAction", "Default"}, {"Bar", true}};
  EXPECT_ONE_VIOLATION(
      check_command_schema(command_with("ScheduleOSUpdate", {{"Updates", plist::Array{update}}}), false),
      "Command.Updates[0].Bar", "unknown key");
}

TEST(CommandSchema, OpenDictionaryTakesAnyKey) {
  plist::Dict configuration{{"anything", 1}, {"else", plist::Array{plist::Dict{}}}};
  EXPECT_TRUE(check_command_schema(
                  command_with("InstallApplication", {{"iTunesStoreID", 1}, {"Configuration", configuration}}), false)
                  .empty());
}

TEST(CommandSchema, DeviceChannelOnlyCommandOnUserChannelFails) {
  // mdm/commands/device.erase.yaml and user.list.yaml: macOS devicechannel true, userchannel false.
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("EraseDevice", {}), true), "Command.RequestType",
                       "EraseDevice is device-channel only on macOS, sent on the user channel");
  EXPECT_EQ(check_command_schema(command_with("UserList", {}), true).size(), 1u);
  EXPECT_TRUE(check_command_schema(command_with("UserList", {}), false).empty());
  // Apple's schema lists DeviceConfigured for the device channel only; the article sends it on
  // the user channel during UserConfiguration, so that one violation is the article's exemption.
  auto device_configured = check_command_schema(make_command("U", "DeviceConfigured"), true);
  ASSERT_EQ(device_configured.size(), 1u);
  EXPECT_TRUE(is_article_exemption(kDeviceConfigured, device_configured[0]));
  EXPECT_FALSE(is_article_exemption("UserList", check_command_schema(command_with("UserList", {}), true)[0]));
}

TEST(CommandSchema, UserChannelOnlyCommandOnDeviceChannelFails) {
  // mdm/commands/media.install.yaml: macOS devicechannel false, userchannel true.
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("InstallMedia", {{"MediaType", "Book"}}), false),
                       "Command.RequestType", "InstallMedia is user-channel only on macOS, sent on the device channel");
  EXPECT_TRUE(check_command_schema(command_with("InstallMedia", {{"MediaType", "Book"}}), true).empty());
}

TEST(CommandSchema, UnknownRequestTypeFails) {
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("MakeCoffee", {}), false), "Command.RequestType",
                       "unknown RequestType 'MakeCoffee'");
  auto long_name = std::string(10'000, 'X');
  auto violations = check_command_schema(command_with(long_name, {}), false);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_LT(violations[0].problem.size(), 200u) << "a peer's string is quoted within a bound";
}

TEST(CommandSchema, CommandNotForMacOSFails) {
  // mdm/commands/passcode.unlocktoken.yaml: macOS introduced n/a.
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("RequestUnlockToken", {}), false), "Command.RequestType",
                       "RequestUnlockToken is not supported on macOS");
  EXPECT_EQ(mac_channels("RequestUnlockToken")->device, false);
  EXPECT_EQ(mac_channels("RequestUnlockToken")->user, false);
}

TEST(CommandSchema, KeyNotForMacOSFails) {
  // mdm/commands/device.erase.yaml: PreserveDataPlan has macOS introduced n/a.
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("EraseDevice", {{"PreserveDataPlan", true}}), false),
                       "Command.PreserveDataPlan", "not supported on macOS");
  EXPECT_TRUE(check_command_schema(command_with("EraseDevice", {{"PIN", "123456"}}), false).empty());
}

TEST(CommandSchema, SettingsItemsAreCheckedByTheirKind) {
  auto settings = [](plist::Dict item) {
    return command_with("Settings", {{"Settings", plist::Array{std::move(item)}}});
  };
  EXPECT_TRUE(check_command_schema(settings({{"Item", "Bluetooth"}, {"Enabled", true}}), true).empty());
  EXPECT_ONE_VIOLATION(check_command_schema(settings({{"Item", "Bluetooth"}}), false), "Command.Settings[0].Enabled",
                       "missing (required)");
  EXPECT_ONE_VIOLATION(check_command_schema(settings({{"Item", "Teleport"}}), false), "Command.Settings[0].Item",
                       "unknown value 'Teleport'");
  EXPECT_ONE_VIOLATION(check_command_schema(settings({{"Enabled", true}}), false), "Command.Settings[0].Item",
                       "missing (required)");
  EXPECT_ONE_VIOLATION(
      check_command_schema(settings({{"Item", "Wallpaper"}, {"Image", plist::Data{"x"}}, {"Where", 1}}), false),
      "Command.Settings[0]", "not supported on macOS (Wallpaper)");
  // mdm/commands/settings.yaml: ApplicationConfiguration has macOS userchannel false.
  plist::Dict app{{"Item", "ApplicationConfiguration"}, {"Identifier", "com.example.app"}};
  EXPECT_TRUE(check_command_schema(settings(app), false).empty());
  EXPECT_ONE_VIOLATION(check_command_schema(settings(app), true), "Command.Settings[0]",
                       "not supported on the user channel (ApplicationConfiguration)");
  EXPECT_ONE_VIOLATION(check_command_schema(command_with("Settings", {{"Settings", plist::Array{"Bluetooth"}}}), false),
                       "Command.Settings[0]", "must be <dictionary>, is <string>");
}

TEST(CommandSchema, ViolationsAreBounded) {
  plist::Dict keys;
  for (int i = 0; i < 1000; ++i) keys["Unknown" + std::to_string(i)] = i;
  auto violations = check_command_schema(command_with("ProfileList", keys), false);
  ASSERT_EQ(violations.size(), kMaxSchemaViolations);
  EXPECT_EQ(violations.back().problem, "more violations not listed");
}

TEST(CommandSchema, CommandThatIsNotADictIsOneViolation) {
  Command command{"U", "ProfileList", plist::Dict{{"CommandUUID", "U"}, {"Command", 3}}};
  EXPECT_ONE_VIOLATION(check_command_schema(command, false), "Command", "must be <dictionary>");
}

TEST(CommandSchema, MacChannelsComeFromTheSchema) {
  EXPECT_FALSE(mac_channels("MakeCoffee"));
  EXPECT_TRUE(mac_channels("ProfileList")->device);
  EXPECT_TRUE(mac_channels("ProfileList")->user);
  EXPECT_TRUE(mac_channels("DeviceConfigured")->device);
  EXPECT_FALSE(mac_channels("DeviceConfigured")->user);
  EXPECT_FALSE(mac_channels("InstallMedia")->device);
}

TEST(CommandSchema, RevisionIsTheOneReportsRecord) {
  EXPECT_EQ(apple_schema_revision(), "apple/device-management b6202ca (iOS 18.1 / macOS 15.1)");
  EXPECT_EQ(apple_schema_revision(), kAppleSchemaRevision);
}

}  // namespace
}  // namespace mdmc::protocol
