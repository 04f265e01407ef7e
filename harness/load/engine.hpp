#pragma once
// `mdmconform load`: a fleet of emulated Macs at once against one MDM server (docs/load.md).
// Each device's daemon and each of its users' agents is a channel with its own keep-alive
// connection, enrolling (Authenticate, TokenUpdates, UserAuthenticate for network users) and
// then running command series on Idle with think time, answering Acknowledged, some NotNow and
// some Error, while an admin loop queues commands on random channels through the profile's
// admin adapter. Every queued command is followed: delivered to its own channel, exactly once
// after its final answer, none lost after NotNow; every series must end with an empty body and
// no answer may be a 5xx. Each violation is a Finding with the exchanges around it.
//
// One process, one thread per core, each running an Asio io_context of C++20 coroutines. What
// is in flight is bounded (requests on the wire, open connections, the finding list), so a slow
// server meets backpressure, never an unbounded queue.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "harness/base/result.hpp"
#include "harness/load/fleet.hpp"
#include "harness/load/load_report.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::load {

// What the progress line shows, about once a second.
struct Progress {
  double elapsed_s = 0;
  std::uint64_t exchanges = 0;
  double per_second = 0;  // over the last second or so
  std::uint64_t in_flight = 0;
  std::uint64_t errors = 0;
  std::uint64_t findings = 0;
  std::uint64_t channels_enrolled = 0;
  std::uint64_t channels = 0;
  bool draining = false;
};

struct LoadOptions {
  int devices = 10;
  int users_per_device = 1;
  Shard shard;
  std::uint64_t seed = 1;
  std::chrono::milliseconds duration{10000};
  // Exchanges per second this process starts at most, spread over its threads; 0: as many as
  // the server answers within the in-flight bound.
  double rate = 0;
  // Commands queued per minute over this process's channels; 0: none (no admin adapter needed).
  double commands_per_minute = 60;
  unsigned threads = 0;                   // 0: one per core
  std::size_t max_in_flight = 512;        // requests on the wire at once, over all threads
  std::size_t max_connections = 0;        // open at once; 0: what the open-file limit leaves
  std::chrono::milliseconds think{1000};  // mean pause between a channel's series (exponential)
  std::chrono::milliseconds ramp{-1};     // devices start spread over this; -1: min(5 s, duration / 4)
  // After --duration: no more commands are queued, and channels with outstanding commands run
  // series (answering Acknowledged) for at most this long, so that a command queued just
  // before the end is not reported lost because the run stopped.
  std::chrono::milliseconds drain{10000};
  // A fixed amount of work instead of a steady state, for counts that do not depend on timing
  // (shards against a single run): each channel runs this many series and stops (0: until the
  // end of --duration), and has this many commands queued for it right after it enrolls.
  int series_per_channel = 0;
  int commands_per_channel = 0;
  double not_now_ratio = 0.10;  // of commands answered NotNow
  double error_ratio = 0.05;    // of commands answered Error
  // Set by a signal handler: stop now; the report says interrupted.
  const std::atomic<bool>* stop = nullptr;
  std::function<void(const Progress&)> on_progress;  // from the calling thread
};

// Runs the load and returns what was measured. Fails before the run (exit 2 material) when the
// profile cannot be used for it: no admin adapter while commands are asked for, identities that
// cannot be had, a URL that does not parse.
base::Result<LoadReport> run_load(const target::TargetProfile& target, const LoadOptions& options);

}  // namespace mdmc::load
