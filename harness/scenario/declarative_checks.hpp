#pragma once
// What a declarative_sync step saw of the server, and its checks: each answer of the sync
// judged against Apple's declarative schema (protocol/declarative.hpp), what the channel holds
// afterwards, and its token. Pure: the runner drives the emulated client and fills the record;
// these say whether a rule held, with the expected and actual words for the finding.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/emulator/declarative_client.hpp"
#include "harness/scenario/spec.hpp"

namespace mdmc::scenario {

struct DeclarativeSyncRecord {
  struct Answer {
    int status = 0;
    std::string body;
  };
  struct Fetched {
    protocol::DeclarationGroup group{};
    std::string identifier;
    std::string listed_token;  // the ServerToken declaration-items listed
    Answer answer;
  };
  // The DeclarationsToken the DeclarativeManagement command carried, when the sync began with one.
  std::optional<std::string> command_token;
  std::optional<Answer> tokens;
  std::optional<Answer> items;
  std::vector<Fetched> fetched;
  std::optional<Answer> status_report;            // the client's status report's answer
  std::optional<bool> full_report;                // the report's FullReport, as the client sent it
  std::optional<Answer> malformed_status_report;  // a status report that is not one
  std::optional<Answer> unlisted;                 // a declaration path no item lists
  // Where the client stopped, and why, when the sync did not complete.
  std::optional<emulator::DeclarativeClient::Stage> stopped_at;
  std::string stop_reason;
};

// The rule an answer at `stage` is held to: a sync that stops there breaks it.
std::string_view rule_of_stage(emulator::DeclarativeClient::Stage stage);

struct CheckOutcome {
  bool judged = true;  // false: the sync never got to what this check judges
  bool passed = true;
  std::string expected;
  std::string actual;
};

// `saved_token`: the token saved under the expectation's `since`, for the token checks.
CheckOutcome check_declarative(const Expectation& e, const DeclarativeSyncRecord& record,
                               const emulator::DeclarativeClient& client, const protocol::Channel& channel,
                               const std::optional<std::string>& saved_token);

// The DeclarationsToken the server gave in this sync: its tokens answer's, or the command's.
std::optional<std::string> synced_token(const DeclarativeSyncRecord& record);

}  // namespace mdmc::scenario
