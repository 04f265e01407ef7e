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
};

// Answers kept in a finding are cut to this: enough to see what the target said.
inline constexpr std::size_t kReproducerBodyCap = 64 * 1024;

Reproducer make_reproducer(const Session& session, const Outcome& outcome, std::string_view input);
std::string reproducer_to_json(const Reproducer& reproducer);
// Reads a finding; also the form written before findings shared report.json's encoding of
// exchanges (bodies as {"base64", "bytes", "plist"}). The error names the JSON path.
base::Result<Reproducer> reproducer_from_json(std::string_view json);
// Writes dir/finding-<sha256 of the body, 16 hex>.json atomically; the path written.
base::Result<std::filesystem::path> write_reproducer(const std::filesystem::path& dir, const Reproducer& reproducer);

// A plist body as indented XML for people; other bytes as an escaped excerpt.
std::string describe_body(std::string_view body, std::size_t max_chars = 4096);

}  // namespace mdmc::fuzz
