#pragma once
// The record of a load run (`mdmconform load`, docs/load.md): how the fleet was asked for, what
// it measured (figures.hpp), the commands queued and what became of them, the invariants it saw
// broken with the exchanges around each, and the harness's own CPU and memory. It is written as
// report.json (kind "mdmconform-load"), every view is made from it (harness/report/load_page.hpp),
// and the records of the shards of one fleet merge into one (merge below). Records are read as
// untrusted input: reading never throws and is bounded in size and depth.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/load/figures.hpp"

namespace mdmc::load {

// One exchange around a finding, as the finding keeps it.
struct ExchangeRecord {
  double at_s = 0;                                // seconds since the run started
  std::string channel;                            // "UDID" or "UDID:UserID"
  std::string message;                            // as in ExchangeKey
  int status = 0;                                 // 0: no response
  std::string request_excerpt, response_excerpt;  // bytes, each at most kMaxExcerptBytes
};

// An invariant the run saw broken.
struct Finding {
  std::string invariant;     // "delivered-to-other-channel", "delivered-twice", "lost-after-not-now", "not-delivered",
                             // "series-end-not-empty", "server-error", ...
  std::string channel;       // "UDID" or "UDID:UserID"
  std::string command_uuid;  // may be empty
  std::string detail;        // one sentence
  double at_s = 0;           // seconds since the run started
  std::vector<ExchangeRecord> exchanges;  // the exchanges around it, at most kMaxFindingExchanges
};

struct CommandCounts {
  std::uint64_t queued = 0, refused = 0, delivered = 0, acknowledged = 0, not_now = 0, error = 0, outstanding = 0;
  // Commands delivered that this run never queued (a server may queue its own, at enrollment
  // say): counted, not a violation.
  std::uint64_t not_queued = 0;
  bool operator==(const CommandCounts&) const = default;
};

// A process's CPU time and peak resident memory.
struct Usage {
  double cpu_user_s = 0, cpu_system_s = 0;
  std::uint64_t peak_rss_kib = 0;
  // This process's, from getrusage(2) (ru_maxrss is in KiB on Linux).
  static Usage of_this_process();
};

inline constexpr std::size_t kMaxFindings = 1000;
inline constexpr std::size_t kMaxFindingExchanges = 8;
inline constexpr std::size_t kMaxExcerptBytes = 2048;
// A record read back is at most this large (1000 findings with their exchanges are ~40 MiB).
inline constexpr std::size_t kMaxLoadRecordBytes = 256ull * 1024 * 1024;
// JSON nesting a record is read to; the record itself nests 6 deep.
inline constexpr int kMaxLoadRecordDepth = 32;
inline constexpr std::size_t kMaxShards = 4096;

struct LoadReport {
  std::string harness_version = MDMC_VERSION;
  std::string target;       // profile name
  std::string target_url;   // where the fleet checked in
  std::string started_utc;  // "2026-12-06T23:30:00Z"
  std::uint64_t seed = 0;
  int shard_index = 0, shard_count = 1;
  // After a merge: the indices of the shards it holds, in order (empty for one process's record).
  std::vector<int> merged_shards;
  int devices = 0, users_per_device = 0;  // the whole fleet's, not the shard's
  std::uint64_t channels = 0;             // this shard's (summed by merge)
  double duration_s = 0;                  // asked for
  double elapsed_s = 0;                   // measured
  double rate = 0;                        // --rate (0: unlimited)
  double commands_per_minute = 0;
  bool interrupted = false;
  std::string interrupted_reason;  // "SIGINT"
  Figures figures;
  CommandCounts commands;
  std::vector<Finding> findings;     // kept up to kMaxFindings
  std::uint64_t findings_total = 0;  // all of them
  Usage harness;                     // after a merge: CPU summed, peak RSS the largest
  std::vector<Usage> shards_usage;   // after a merge: each shard's, in merged_shards' order
};

// The shard indices a record holds: merged_shards, or its own index.
std::vector<int> shards_held(const LoadReport& report);

// report.json of a load run: "kind": "mdmconform-load", "version": 1 (docs/reports.md#load-runs).
// Keeps at most kMaxFindings findings, kMaxFindingExchanges exchanges each, and excerpts cut to
// kMaxExcerptBytes; bytes that are not UTF-8 are written as {"base64": ...}. Never throws.
std::string to_json(const LoadReport& report);
// Untrusted input: never throws; more than kMaxLoadRecordBytes, nesting beyond
// kMaxLoadRecordDepth, arrays beyond their caps, wrong types and figures that do not add up are
// an error naming the JSON path.
base::Result<LoadReport> load_report_from_json(std::string_view text);

// Merges shard records of one fleet: same target, seed, devices, users_per_device,
// shard_count, duration, rate and commands per minute, and no shard twice (an error in words
// otherwise). Counts summed, histograms added bin by bin, findings concatenated in shard order
// (cap kept, totals summed), started the earliest, elapsed the longest, interrupted if any was.
base::Result<LoadReport> merge(const std::vector<LoadReport>& shards);

// What the engine knows as the run goes on, for the live progress line.
struct LoadProgress {
  double elapsed_s = 0;
  double duration_s = 0;
  std::uint64_t exchanges = 0;
  double exchanges_per_s = 0;  // over the last interval
  std::uint64_t in_flight = 0;
  std::uint64_t errors = 0;
  std::uint64_t findings = 0;
  bool stopping = false;  // SIGINT seen or the duration over; waiting for what is in flight
};
// One line, at most `width` columns, no newline: "load 12.0/60 s | 34512 exchanges | 2880/s |
// 41 in flight | 0 errors | 0 findings". The engine prints it after "\r" on a terminal.
std::string load_progress_line(const LoadProgress& progress, std::size_t width = 80);

}  // namespace mdmc::load
