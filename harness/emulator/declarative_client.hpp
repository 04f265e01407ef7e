#pragma once
// The declarative client of one channel, as macOS runs one for the device and one for each
// user: a state machine with no I/O, like Device and UserAgent. On a DeclarativeManagement
// command, or when a case asks, it syncs: `tokens`, then `declaration-items` when the
// DeclarationsToken is not the one it holds, then each declaration whose ServerToken is new or
// changed at declaration/<group>/<identifier>; it drops what is no longer listed, decides what is
// active and valid, and sends a status report (the first full, later ones with what changed).
// Every answer goes through protocol's bounded decoding; a sync commits what it fetched only
// when it completes, so a bad answer leaves what the channel holds as it was.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/emulator/emulator.hpp"
#include "harness/protocol/declarative.hpp"

namespace mdmc::emulator {

// What a channel holds of one declaration.
struct HeldDeclaration {
  protocol::DeclarationGroup group{};
  std::string type;
  std::string identifier;
  std::string server_token;
  protocol::Json payload;
  bool active = false;
  bool valid = false;
  // Why it is invalid: its Payload against its Type's keys, or its Type on this channel.
  std::vector<protocol::SchemaViolation> problems;
  std::size_t bytes = 0;  // the size of the answer it came in, counted against max_held_bytes
};

struct DeclarativeOptions {
  protocol::JsonLimits limits;
  // The declarations a channel holds, together (their answers' sizes): a server that serves
  // hundreds of megabyte declarations must not grow the harness without bound.
  std::size_t max_held_bytes = std::size_t{16} << 20;
};

class DeclarativeClient {
 public:
  enum class Stage { idle, tokens, declaration_items, declaration, status };

  // `user` is set on a user channel (its check-ins carry the user's UserID and names).
  DeclarativeClient(protocol::Channel channel, std::optional<protocol::UserFacts> user,
                    DeclarativeOptions options = {});

  const protocol::Channel& channel() const { return channel_; }

  // A sync a case asks for: it starts at `tokens`. A sync already running starts over.
  void start_sync();

  // The DeclarativeManagement command: the status the client reports it with, and why when it
  // is not Acknowledged. Without Data the client syncs from `tokens`; with Data (a
  // TokensResponse) it takes those tokens and goes on to `declaration-items`, unless the
  // DeclarationsToken is the one it holds: then it acknowledges and fetches nothing. Data that
  // is not a TokensResponse gets CommandFormatError and no sync.
  struct CommandAnswer {
    protocol::Status status = protocol::Status::acknowledged;
    std::string reason;
  };
  CommandAnswer on_command(const protocol::Command& command);

  bool syncing() const { return stage_ != Stage::idle; }
  Stage stage() const { return stage_; }
  // The check-in to send next; only while syncing().
  const Message& next() const { return next_; }
  // Takes the server's answer to next(). A reason when the answer is not one the client can act
  // on: the sync stops there, and what the channel holds is as it was before the sync.
  std::optional<std::string> on_answer(const Answer& answer);

  // What the channel holds, by Identifier.
  const std::map<std::string, HeldDeclaration, std::less<>>& held() const { return held_; }
  const HeldDeclaration* find(std::string_view identifier) const;
  // The DeclarationsToken of the manifest it holds; empty before its first sync.
  const std::string& declarations_token() const { return declarations_token_; }
  // Status reports the server took (a 2xx), and the last one sent (JSON), taken or not.
  int status_reports_accepted() const { return reports_accepted_; }
  const std::string& last_status_report() const { return last_report_; }

 private:
  // A declaration listed in the manifest whose ServerToken the client does not hold.
  struct Fetch {
    protocol::DeclarationGroup group;
    protocol::DeclarationItem item;
  };

  Message check_in(std::string_view endpoint, std::optional<std::string> data = std::nullopt) const;
  void begin(const std::optional<protocol::SyncTokens>& tokens);
  void after_tokens(const protocol::SyncTokens& tokens);
  std::optional<std::string> after_items(const Answer& answer);
  std::optional<std::string> after_declaration(const Answer& answer);
  void fetch_next_or_finish();
  void decide_active_and_valid();
  std::vector<protocol::DeclarationStatus> statuses() const;
  void report_or_idle();
  std::optional<std::string> stop(std::string reason);

  protocol::Channel channel_;
  std::optional<protocol::UserFacts> user_;
  DeclarativeOptions options_;

  Stage stage_ = Stage::idle;
  Message next_;

  std::map<std::string, HeldDeclaration, std::less<>> held_;
  std::string declarations_token_;
  bool synced_ = false;

  // The sync in progress: what it will hold when it completes.
  std::map<std::string, HeldDeclaration, std::less<>> pending_;
  std::string pending_token_;
  std::vector<Fetch> fetches_;
  std::size_t next_fetch_ = 0;

  // What the server took in status reports, by Identifier: an incremental report lists what
  // differs from it.
  std::map<std::string, protocol::DeclarationStatus, std::less<>> reported_;
  bool full_report_taken_ = false;
  bool report_is_full_ = false;
  int reports_accepted_ = 0;
  std::string last_report_;
};

std::string_view declarative_stage_name(DeclarativeClient::Stage stage);

// The declarative client of the device's channel, and of a user agent's (with its user).
DeclarativeClient declarative_client(const Device& device, DeclarativeOptions options = {});
DeclarativeClient declarative_client(const UserAgent& user, DeclarativeOptions options = {});

}  // namespace mdmc::emulator
