#pragma once
// What a load run measures (docs/load.md, docs/reports.md#load-runs): every exchange filed by
// the message sent and the status answered, with its latency in a Boost.Histogram, errors by
// kind, and a timeline of fixed intervals (exchanges, errors and a coarser latency histogram
// each). Quantiles are read from a histogram's cumulative counts, never from kept samples, so
// memory does not grow with the run: a Figures holds at most kMaxKeys histograms and
// kMaxTimelineIntervals intervals (a longer run doubles its interval, adding neighbours). Two
// Figures merge by adding bin by bin, so the figures of threads, or of shards, merge exactly.
#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/histogram.hpp>
#include <nlohmann/json.hpp>

#include "harness/base/json_reader.hpp"

namespace mdmc::load {

// What one exchange is filed under: the message the harness sent and the HTTP status answered
// (0: no response; the error kind says why).
struct ExchangeKey {
  std::string message;  // "Authenticate", "TokenUpdate", "UserAuthenticate", "Idle", "Acknowledged", "NotNow", "Error",
                        // "enqueue"
  int status = 0;
  auto operator<=>(const ExchangeKey&) const = default;
};

// Where the exchanges go once a Figures holds kMaxKeys keys (a server answering with many
// different statuses): one key for the rest, so that memory stays bounded.
inline const ExchangeKey kOtherKey{"(other)", -1};

// Latency quantiles of one distribution, in milliseconds. Each quantile is the upper edge of the
// histogram bin it falls in (never below the true sample quantile, and at most
// kLatencyRelativeError above it), capped by the exact maximum; all zero when count is 0.
struct Quantiles {
  std::uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};

// The latency axis: logarithmic, in microseconds, from 1 us to 1000 s, kLatencyBinsPerDecade
// bins per decade. Below 1 us and above 1000 s fall into an underflow and an overflow bin,
// which count as any other (the overflow's quantile reads as the exact maximum).
inline constexpr double kLatencyLowerUs = 1;
inline constexpr double kLatencyUpperUs = 1e9;
inline constexpr int kLatencyDecades = 9;
inline constexpr int kLatencyBinsPerDecade = 116;  // a bin spans a factor 10^(1/116) = 1.0200
inline constexpr double kLatencyRelativeError = 0.02;
// Each timeline interval's histogram: the same range, coarser (a factor 10^(1/24) = 1.10).
inline constexpr int kTimelineBinsPerDecade = 24;
inline constexpr double kTimelineRelativeError = 0.10;

inline constexpr std::size_t kMaxKeys = 256;
inline constexpr std::size_t kMaxTimelineIntervals = 1024;
inline constexpr std::size_t kMaxErrorKinds = 64;
inline constexpr std::size_t kMaxErrorKindBytes = 64;

// One interval of the timeline, as the views read it.
struct IntervalFigures {
  double start_s = 0;   // since the run started
  double length_s = 0;  // the interval (the last may have been cut short by the run's end)
  std::uint64_t exchanges = 0;
  std::uint64_t errors = 0;
  Quantiles latency;  // from the interval's coarser histogram (kTimelineRelativeError)
};

// One thread's (or one run's) measurements. Not thread-safe: the engine keeps one per thread
// and merges them. Memory is bounded whatever the run's length (the timeline coarsens).
class Figures {
 public:
  using Json = nlohmann::ordered_json;

  explicit Figures(std::chrono::milliseconds interval = std::chrono::seconds(1));

  // `at` is the time since the run started; negative latencies and times count as zero.
  void record(const ExchangeKey& key, std::chrono::nanoseconds latency, std::chrono::nanoseconds at);
  // "timeout", "connect", "tls", "reset", "5xx", "unexpected-status", "bad-body",
  // "enqueue-refused", ...; a kind is cut to kMaxErrorKindBytes, and kinds beyond
  // kMaxErrorKinds are counted as "(other)".
  void record_error(std::string_view kind, std::chrono::nanoseconds at);
  // Adds other's counts bin by bin, key by key, and its timeline interval by interval (by start
  // time: the finer of the two timelines is coarsened to the other's interval first, which is
  // exact when both started from the same interval, as a run's threads and shards do).
  void merge(const Figures& other);

  std::uint64_t exchanges() const { return exchanges_; }
  std::uint64_t errors() const { return errors_; }
  std::map<std::string, std::uint64_t> errors_by_kind() const { return errors_by_kind_; }
  std::map<ExchangeKey, Quantiles> latency() const;  // per message and status
  Quantiles overall() const;

  // The timeline's interval now (the one asked for, doubled as often as the run's length made
  // it), and the one asked for.
  std::chrono::milliseconds interval() const { return interval_; }
  std::chrono::milliseconds base_interval() const { return base_interval_; }
  // Every interval from the first to the last that saw an exchange or an error, empty ones
  // included. `elapsed_s` cuts the last interval's length (0: whole intervals).
  std::vector<IntervalFigures> timeline(double elapsed_s = 0) const;

  // The JSON form (docs/reports.md#loadjson): counts and sparse bins, with the quantiles beside
  // them for people (a reader recomputes them from the bins).
  Json to_json() const;
  // Reads what to_json wrote; on a problem `r` records it (with its JSON path) and the result
  // is empty. Refuses another histogram axis, more keys, kinds or intervals than the caps,
  // and counts that do not add up (a key's bins and its count, the timeline and the totals).
  static Figures from_json(base::JsonReader& r, const Json& j, const std::string& path);

  // The same counts in every bin, key, kind and interval (and the same interval).
  bool operator==(const Figures& other) const;

 private:
  using Axis = boost::histogram::axis::regular<double, boost::histogram::axis::transform::log>;
  using Histogram =
      boost::histogram::histogram<std::tuple<Axis>, boost::histogram::storage_adaptor<std::vector<std::uint64_t>>>;
  struct Distribution {
    Histogram histogram;
    std::int64_t max_ns = 0;
  };
  struct Interval {
    std::uint64_t exchanges = 0;
    std::uint64_t errors = 0;
    Distribution latency;
  };

  static Distribution fine_distribution();
  static Distribution coarse_distribution();
  static void add_sample(Distribution& d, std::int64_t latency_ns);
  static void add(Distribution& into, const Distribution& from);
  static Quantiles quantiles(const Distribution& d);
  static Json distribution_json(const Distribution& d);
  static Distribution distribution_from_json(base::JsonReader& r, const Json& j, const std::string& path, bool fine,
                                             std::uint64_t& count);

  // The interval `at` falls in, coarsening the timeline until it is below the cap.
  Interval& interval_at(std::int64_t at_ns);
  void coarsen();
  Distribution& key_distribution(const ExchangeKey& key);

  std::chrono::milliseconds base_interval_;
  std::chrono::milliseconds interval_;
  std::uint64_t exchanges_ = 0;
  std::uint64_t errors_ = 0;
  std::map<ExchangeKey, Distribution> by_key_;
  Distribution overall_;
  std::map<std::string, std::uint64_t> errors_by_kind_;
  std::vector<Interval> timeline_;  // index i covers [i, i+1) intervals since the start
};

}  // namespace mdmc::load
