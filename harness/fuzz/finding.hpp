#pragma once
// A fuzzing finding on disk (findings/finding-<hash>.json): what the network fuzzer sent when an
// oracle fired, what came back, and the inputs before it, enough to send it again with
// `mdmconform replay` and to see what happened. The exchange's parts are written in net's one
// JSON form of HTTP (net/exchange_json.hpp), the same as in a run's report.json.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/fuzz/session.hpp"
#include "harness/net/http.hpp"

namespace mdmc::fuzz {

// The "kind" of a finding file.
inline constexpr std::string_view kFindingKind = "mdmconform-finding";

struct Reproducer {
  std::string oracle;    // oracle_name(): "status-5xx"
  std::string detail;    // what happened, in words
  std::string endpoint;  // "check_in" or "server"
  std::string target_name;
  std::string target_file;  // absolute path of the profile used
  std::string udid;
  std::string user_id;
  std::string found_at;                   // RFC 3339 UTC
  net::Request request;                   // exactly as sent (url, headers, body bytes)
  std::optional<net::Response> response;  // body cut to kReproducerBodyCap
  std::string transport_error;            // when there was no response
  std::vector<std::string> history;       // inputs sent before it since the last good probe
  std::optional<net::Exchange> probe;     // the liveness probe after it, when one ran
  // Deduplication and minimisation (empty in findings written before them).
  std::string key;            // oracle|endpoint|kind|key paths|answer shape
  std::string input_phrase;   // what was wrong with the input: "TokenUpdate whose UDID is an integer (expected string)"
  std::string key_paths;      // "UDID:type"
  std::string answer_shape;   // "500:empty"
  bool minimised = false;     // it fired on a fresh device: `request` shrunk and alone, or after the
                              // one input of `history` that made it fire, shrunk (its cause)
  std::string minimise_note;  // how the minimisation went, in words
  std::optional<std::string> original;  // the input as the fuzzer first sent it, when it was shrunk
};

// Whose message an input is: a device's UDID and its user's UserID.
struct InputOwner {
  std::string udid;
  std::string user_id;
};
// The input as `to` would send it: `from`'s UDID and UserID replaced by `to`'s where they have
// the same length (UUIDs do), so that a binary plist stays valid; unchanged otherwise.
std::string retarget_input(std::string_view input, const InputOwner& from, const InputOwner& to);

// The deduplication key of a finding, and the 16 hex digits its file is named by.
std::string finding_key(std::string_view oracle, std::string_view endpoint, std::string_view kind,
                        std::string_view key_paths, std::string_view answer_shape);
std::string finding_key_hash(std::string_view key);

// Answers kept in a finding are cut to this: enough to see what the target said.
inline constexpr std::size_t kReproducerBodyCap = 64 * 1024;

Reproducer make_reproducer(const Session& session, const Outcome& outcome, std::string_view input);
std::string reproducer_to_json(const Reproducer& reproducer);
// Reads a finding; also the form written before findings shared report.json's encoding of
// exchanges (bodies as {"base64", "bytes", "plist"}). The error names the JSON path.
base::Result<Reproducer> reproducer_from_json(std::string_view json);
// Writes dir/finding-<sha256 of the body, 16 hex>.json atomically; the path written.
base::Result<std::filesystem::path> write_reproducer(const std::filesystem::path& dir, const Reproducer& reproducer);

// The finding as a YAML case of the scenario language (docs/cases.md): a device sends the
// finding's input on the same endpoint (`fault: replace_with`, the fuzz device's UDID and UserID
// as ${udid} and ${user_id}; binary bodies as replace_with_base64), expecting what the oracle
// demanded (not 5xx, a 4xx, an answer at all), and then its own well-formed Idle answered 200
// (ROB-ALIVE). Run with `mdmconform run --specs`, it fails on the server that had the bug and
// passes on one without. `hash` names the case.
std::string reproducer_as_case(const Reproducer& reproducer, std::string_view hash);

// A plist body as indented XML for people; other bytes as an escaped excerpt.
std::string describe_body(std::string_view body, std::size_t max_chars = 4096);

}  // namespace mdmc::fuzz
