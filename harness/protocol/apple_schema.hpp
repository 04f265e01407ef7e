#pragma once
// The revision of Apple's MDM schema the protocol model follows, recorded in every report.json
// so that a report says what it certifies against.
#include <string_view>

namespace mdmc::protocol {

// Apple's public schema repository, github.com/apple/device-management, at commit b6202ca
// (the iOS 18.1 / macOS 15.1 release). The key facts come from there: the check-in
// MessageTypes and their keys (mdm/checkin/*.yaml: Authenticate, TokenUpdate, UserAuthenticate,
// ...), the command report Status values and keys (mdm/commands/*.yaml), and the channel keys
// (UDID, UserID, NeedSyncResponse, UserConfiguration, NotOnConsole). Where the article
// "Managing MDM Devices and Users in macOS" says otherwise, the harness follows the article and
// says so where it does (command_schema.hpp: DeviceConfigured on the user channel).
// Move it only together with what the harness derives from that revision.
inline constexpr std::string_view kAppleSchemaRevision = "apple/device-management b6202ca (iOS 18.1 / macOS 15.1)";

}  // namespace mdmc::protocol
