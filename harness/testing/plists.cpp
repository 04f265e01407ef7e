#include "harness/testing/plists.hpp"

#include <utility>

namespace mdmc::testing {

plist::Dict profile_payload(std::string type, std::string id) {
  return plist::Dict{{"PayloadType", std::move(type)},
                     {"PayloadIdentifier", "org.example." + id},
                     {"PayloadUUID", id},
                     {"PayloadVersion", 1}};
}

plist::Value configuration_profile(plist::Array content) {
  return plist::Dict{{"PayloadContent", std::move(content)},
                     {"PayloadIdentifier", "org.example.profile"},
                     {"PayloadType", "Configuration"},
                     {"PayloadUUID", "P"},
                     {"PayloadVersion", 1}};
}

}  // namespace mdmc::testing
