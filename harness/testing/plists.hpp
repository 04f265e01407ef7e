#pragma once
// Plist builders for tests: the configuration profiles that profile and InstallProfile tests
// wrap, sign and count, built one way in every test that needs one.
#include <string>

#include "harness/plist/value.hpp"

namespace mdmc::testing {

// One payload of a configuration profile: PayloadType `type`, PayloadIdentifier
// org.example.<id>, PayloadUUID <id>, PayloadVersion 1.
plist::Dict profile_payload(std::string type, std::string id);

// A configuration profile holding `content` (identifier org.example.profile, UUID P). Content
// is any array, so that tests can put non-dicts in it too.
plist::Value configuration_profile(plist::Array content);

}  // namespace mdmc::testing
