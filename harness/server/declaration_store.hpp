#pragma once
// The reference server's declarative side (docs/reference-server.md#declarative-management):
// declarations put through the admin API, grouped into sets, sets assigned to channels ("UDID"
// or "UDID:UserID"), and what each channel is served at the DeclarativeManagement check-in's
// endpoints (tokens, declaration-items, declaration/<group>/<identifier>, status). The shape of
// KMFDDM, the declarative server beside NanoMDM. No I/O and no lock: MdmService holds it under
// its own. Every input is untrusted (the admin API's bodies, the devices' status reports), so
// each is capped in size and nesting, and what the store keeps is bounded.
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/base/result.hpp"
#include "harness/protocol/declarative.hpp"

namespace mdmc::server {

using protocol::DeclarationGroup;

// The group a declaration of `type` is listed under, from its prefix ("com.apple.configuration."):
// the server stores any Type an admin gives it, known to Apple's schema or not.
std::optional<DeclarationGroup> group_of_type(std::string_view type);

struct DeclarationBounds {
  std::size_t declarations = 1024;
  std::size_t declaration_bytes = 64 * 1024;  // one declaration's JSON
  std::size_t sets = 256;
  std::size_t declarations_per_set = 1024;
  std::size_t assigned_channels = 4096;  // channels with a set assigned
  std::size_t sets_per_channel = 64;
  std::size_t status_bytes = 256 * 1024;   // one status report kept per channel
  std::size_t kept_status_reports = 1024;  // channels whose last status report is kept
  int max_json_depth = 32;
};

// Fault modes of the reference server that live in the store (faults.hpp): a user channel
// also served its device's declarations; a token made from the identifiers alone.
struct DeclarationStoreFaults {
  bool users_see_device = false;
  bool token_from_identifiers = false;
};

class DeclarationStore {
 public:
  explicit DeclarationStore(DeclarationBounds bounds = {}, std::string started_at = {},
                            DeclarationStoreFaults faults = {});

  // What a change did: whether anything changed, and the channels whose DeclarationsToken it
  // changed (each told with a DeclarativeManagement command).
  struct Change {
    bool changed = false;
    std::vector<std::string> channels;
  };

  // A declaration as JSON: an object with Type (com.apple.<group>.*), Identifier and Payload
  // (an object); its ServerToken is made from the rest (any given one is replaced). Errors say
  // what is wrong with the body, for a 400.
  struct Put {
    Change change;
    std::string identifier;
    std::string server_token;
  };
  base::Result<Put> put(std::string_view json_text, const std::string& now);
  Change remove(const std::string& identifier, const std::string& now);
  std::optional<std::string> declaration_json(const std::string& identifier) const;
  std::vector<std::string> identifiers() const;

  base::Result<Change> add_to_set(const std::string& set, const std::string& identifier, const std::string& now);
  Change remove_from_set(const std::string& set, const std::string& identifier, const std::string& now);
  std::vector<std::string> set_members(const std::string& set) const;

  base::Result<Change> assign(const std::string& channel, const std::string& set, const std::string& now);
  Change unassign(const std::string& channel, const std::string& set, const std::string& now);
  std::vector<std::string> sets_of(const std::string& channel) const;

  // What the channel is served, as JSON bodies.
  std::string declarations_token(const std::string& channel) const;
  std::string tokens_json(const std::string& channel) const;
  std::string items_json(const std::string& channel) const;
  // The declaration when the channel is served it under that group; nothing (404) otherwise.
  std::optional<std::string> served_declaration(const std::string& channel, DeclarationGroup group,
                                                const std::string& identifier) const;

  // A status report from the channel (the check-in's Data): a JSON object with StatusItems (an
  // object) and Errors (an array). Kept as the channel's last; an error says why it is refused.
  base::Result<bool> take_status(const std::string& channel, std::string_view json_text);
  std::optional<std::string> last_status(const std::string& channel) const;

 private:
  struct Declaration {
    std::string type;
    DeclarationGroup group{};
    std::string server_token;
    nlohmann::json document;  // as served, ServerToken included
  };
  struct ChannelTokens {
    std::string token;
    std::string timestamp;
  };

  // The declarations a channel is served, by identifier (sets may overlap).
  std::map<std::string, const Declaration*> view_of(const std::string& channel) const;
  std::string token_of_view(const std::map<std::string, const Declaration*>& view) const;
  // Channels with a set assigned, with their token now; then the ones whose token moved since.
  std::map<std::string, std::string> snapshot() const;
  Change settle(const std::map<std::string, std::string>& before, const std::string& now);

  DeclarationBounds bounds_;
  std::string started_at_;
  DeclarationStoreFaults faults_;
  std::map<std::string, Declaration> declarations_;
  std::map<std::string, std::set<std::string>> sets_;
  std::map<std::string, std::set<std::string>> assignments_;  // channel -> sets
  std::map<std::string, ChannelTokens> channel_tokens_;       // when each channel's token last moved
  std::map<std::string, std::string> status_;                 // channel -> last status report
};

}  // namespace mdmc::server
