#include "harness/load/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mdmc::load {
namespace {

namespace chr = std::chrono;
using ::testing::HasSubstr;
using Json = Figures::Json;

chr::nanoseconds us(double v) { return chr::nanoseconds(static_cast<std::int64_t>(v * 1e3)); }
chr::nanoseconds seconds(double v) { return chr::nanoseconds(static_cast<std::int64_t>(v * 1e9)); }

// The nearest-rank sample quantile of sorted samples (what a histogram's bin brackets).
double true_quantile(const std::vector<double>& sorted, double q) {
  const auto rank =
      std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

// The documented bound: never below the true quantile, at most kLatencyRelativeError above it.
// (1e-9 relative for the exp/log round trip of a bin edge.)
void expect_within(double reported_ms, double true_ms, double relative_error, const char* what) {
  EXPECT_GE(reported_ms, true_ms * (1 - 1e-9)) << what;
  EXPECT_LE(reported_ms, true_ms * (1 + relative_error) * (1 + 1e-9)) << what;
}

void expect_quantiles_of(const std::vector<double>& samples_ms, const Quantiles& q) {
  std::vector<double> sorted = samples_ms;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(q.count, sorted.size());
  expect_within(q.p50_ms, true_quantile(sorted, 0.5), kLatencyRelativeError, "p50");
  expect_within(q.p90_ms, true_quantile(sorted, 0.9), kLatencyRelativeError, "p90");
  expect_within(q.p99_ms, true_quantile(sorted, 0.99), kLatencyRelativeError, "p99");
  expect_within(q.p999_ms, true_quantile(sorted, 0.999), kLatencyRelativeError, "p99.9");
  EXPECT_DOUBLE_EQ(q.max_ms, sorted.back());
}

TEST(Figures, EmptyIsZeros) {
  const Figures f;
  EXPECT_EQ(f.exchanges(), 0u);
  EXPECT_EQ(f.errors(), 0u);
  EXPECT_TRUE(f.latency().empty());
  EXPECT_TRUE(f.errors_by_kind().empty());
  EXPECT_TRUE(f.timeline().empty());
  const Quantiles q = f.overall();
  EXPECT_EQ(q.count, 0u);
  EXPECT_EQ(q.p50_ms, 0);
  EXPECT_EQ(q.p90_ms, 0);
  EXPECT_EQ(q.p99_ms, 0);
  EXPECT_EQ(q.p999_ms, 0);
  EXPECT_EQ(q.max_ms, 0);
}

TEST(Figures, QuantilesOfAUniformDistributionAreWithinTheDocumentedError) {
  Figures f;
  std::vector<double> samples_ms;
  // 1 us to 100 ms in 1 us steps, shuffled so that order cannot matter.
  for (int v = 1; v <= 100'000; ++v) samples_ms.push_back(v / 1e3);
  std::shuffle(samples_ms.begin(), samples_ms.end(), std::mt19937_64(7));
  for (double ms : samples_ms) f.record({"Idle", 200}, us(ms * 1e3), seconds(0));
  expect_quantiles_of(samples_ms, f.overall());
  expect_quantiles_of(samples_ms, f.latency().at(ExchangeKey{"Idle", 200}));
}

TEST(Figures, QuantilesOfLogNormalAndExponentialDistributionsAreWithinTheDocumentedError) {
  std::mt19937_64 random(16);
  std::lognormal_distribution<double> log_normal(std::log(20.0), 1.0);  // median 20 ms, a long tail
  std::exponential_distribution<double> exponential(1 / 3.0);           // mean 3 ms
  Figures f;
  std::vector<double> idle_ms, ack_ms;
  for (int i = 0; i < 200'000; ++i) {
    // Whole nanoseconds, as the engine measures them.
    const auto idle = chr::nanoseconds(static_cast<std::int64_t>(log_normal(random) * 1e6));
    const auto ack = chr::nanoseconds(static_cast<std::int64_t>(exponential(random) * 1e6));
    f.record({"Idle", 200}, idle, seconds(i / 1000.0));
    f.record({"Acknowledged", 200}, ack, seconds(i / 1000.0));
    idle_ms.push_back(static_cast<double>(idle.count()) / 1e6);
    ack_ms.push_back(static_cast<double>(ack.count()) / 1e6);
  }
  expect_quantiles_of(idle_ms, f.latency().at(ExchangeKey{"Idle", 200}));
  expect_quantiles_of(ack_ms, f.latency().at(ExchangeKey{"Acknowledged", 200}));
  std::vector<double> all = idle_ms;
  all.insert(all.end(), ack_ms.begin(), ack_ms.end());
  expect_quantiles_of(all, f.overall());
}

TEST(Figures, TheMaximumIsExactAndTheQuantilesNeverExceedIt) {
  Figures f;
  f.record({"Idle", 200}, chr::nanoseconds(1'234'567), seconds(0));
  const Quantiles q = f.overall();
  EXPECT_EQ(q.count, 1u);
  EXPECT_DOUBLE_EQ(q.max_ms, 1.234567);
  // One sample: every quantile is it; its bin's upper edge is above it, the maximum caps it.
  EXPECT_DOUBLE_EQ(q.p50_ms, 1.234567);
  EXPECT_DOUBLE_EQ(q.p999_ms, 1.234567);
}

TEST(Figures, SamplesOutsideTheAxisCountInTheUnderAndOverflowBins) {
  Figures f;
  for (int i = 0; i < 11; ++i) f.record({"Idle", 200}, chr::nanoseconds(0), seconds(0));  // below 1 us
  for (int i = 0; i < 9; ++i) f.record({"Idle", 200}, chr::seconds(2000), seconds(0));    // above 1000 s
  f.record({"Idle", 200}, chr::seconds(3000), seconds(0));
  const Quantiles q = f.overall();
  EXPECT_EQ(q.count, 21u);
  // The underflow bin's upper edge is the axis' lower end, 1 us.
  EXPECT_NEAR(q.p50_ms, 0.001, 1e-12);
  // The overflow bin has no upper edge: its quantiles read as the exact maximum.
  EXPECT_DOUBLE_EQ(q.p90_ms, 3'000'000);
  EXPECT_DOUBLE_EQ(q.max_ms, 3'000'000);
  f.record({"Idle", 200}, chr::nanoseconds(-5), seconds(-1));  // a clock that went back counts as zero
  EXPECT_EQ(f.overall().count, 22u);
}

TEST(Figures, FilesEachExchangeByMessageAndStatusAndCountsErrorsByKind) {
  Figures f;
  f.record({"Idle", 200}, chr::milliseconds(3), seconds(0.1));
  f.record({"Idle", 500}, chr::milliseconds(9), seconds(0.2));
  f.record({"Idle", 0}, chr::seconds(30), seconds(0.3));
  f.record_error("5xx", seconds(0.2));
  f.record_error("timeout", seconds(0.3));
  f.record_error("timeout", seconds(1.3));
  EXPECT_EQ(f.exchanges(), 3u);
  EXPECT_EQ(f.errors(), 3u);
  const auto latency = f.latency();
  ASSERT_EQ(latency.size(), 3u);
  EXPECT_EQ(latency.at(ExchangeKey{"Idle", 0}).count, 1u);
  EXPECT_DOUBLE_EQ(latency.at(ExchangeKey{"Idle", 0}).max_ms, 30'000);
  EXPECT_EQ(f.errors_by_kind(), (std::map<std::string, std::uint64_t>{{"5xx", 1}, {"timeout", 2}}));
  const auto timeline = f.timeline();
  ASSERT_EQ(timeline.size(), 2u);
  EXPECT_EQ(timeline[0].exchanges, 3u);
  EXPECT_EQ(timeline[0].errors, 2u);
  EXPECT_EQ(timeline[1].exchanges, 0u);
  EXPECT_EQ(timeline[1].errors, 1u);
  EXPECT_DOUBLE_EQ(timeline[1].start_s, 1.0);
}

TEST(Figures, KeysAndErrorKindsAreCappedSoThatAHostileServerCannotGrowThem) {
  Figures f;
  for (int status = 100; status < 1000; ++status) f.record({"Idle", status}, chr::milliseconds(1), seconds(0));
  f.record({"Idle", 12345}, chr::milliseconds(1), seconds(0));  // not an HTTP status
  for (int k = 0; k < 500; ++k) f.record_error("kind-" + std::to_string(k), seconds(0));
  f.record_error(std::string(1000, 'x'), seconds(0));
  EXPECT_EQ(f.exchanges(), 901u);
  EXPECT_EQ(f.errors(), 501u);
  const auto latency = f.latency();
  EXPECT_EQ(latency.size(), kMaxKeys);
  EXPECT_EQ(latency.at(kOtherKey).count, 901u - (kMaxKeys - 1));
  const auto kinds = f.errors_by_kind();
  EXPECT_EQ(kinds.size(), kMaxErrorKinds);
  std::uint64_t total = 0;
  for (const auto& [kind, n] : kinds) {
    EXPECT_LE(kind.size(), kMaxErrorKindBytes);
    total += n;
  }
  EXPECT_EQ(total, 501u);
}

TEST(Figures, ALongRunCoarsensItsTimelineInsteadOfGrowingIt) {
  Figures f(chr::seconds(1));
  for (int s = 0; s < 5000; ++s) f.record({"Idle", 200}, chr::milliseconds(1 + s % 7), seconds(s + 0.5));
  EXPECT_EQ(f.base_interval(), chr::seconds(1));
  EXPECT_EQ(f.interval(), chr::seconds(8));  // 5000 s in at most 1024 intervals
  const auto timeline = f.timeline(5000);
  EXPECT_LE(timeline.size(), kMaxTimelineIntervals);
  std::uint64_t total = 0;
  for (const auto& interval : timeline) total += interval.exchanges;
  EXPECT_EQ(total, 5000u);
  EXPECT_EQ(timeline.front().exchanges, 8u);
  // The last interval, 4992 s to 5000 s, holds the last 8 exchanges.
  EXPECT_EQ(timeline.back().exchanges, 8u);
  EXPECT_DOUBLE_EQ(timeline.back().start_s, 4992);
  // A time far beyond any run neither overflows nor grows the timeline past its cap.
  f.record({"Idle", 200}, chr::milliseconds(1), chr::hours(24 * 365 * 100));
  EXPECT_LE(f.timeline().size(), kMaxTimelineIntervals);
  EXPECT_EQ(f.exchanges(), 5001u);
}

TEST(Figures, TheLastIntervalsLengthIsCutAtTheRunsEnd) {
  Figures f(chr::seconds(1));
  f.record({"Idle", 200}, chr::milliseconds(1), seconds(0.2));
  f.record({"Idle", 200}, chr::milliseconds(1), seconds(1.2));
  const auto timeline = f.timeline(1.5);
  ASSERT_EQ(timeline.size(), 2u);
  EXPECT_DOUBLE_EQ(timeline[0].length_s, 1.0);
  EXPECT_DOUBLE_EQ(timeline[1].length_s, 0.5);
}

// Two streams of exchanges and errors: the same events recorded into one Figures, or into
// two that are merged, must give the same counts in every bin, key, kind and interval.
struct Event {
  ExchangeKey key;
  chr::nanoseconds latency;
  chr::nanoseconds at;
  std::string error;  // an error instead of an exchange when set
};

std::vector<Event> stream(std::uint64_t seed, double seconds_long, std::size_t n) {
  std::mt19937_64 random(seed);
  std::lognormal_distribution<double> latency_ms(std::log(8.0), 1.5);
  std::uniform_real_distribution<double> at(0, seconds_long);
  const char* messages[] = {"Authenticate", "TokenUpdate", "Idle", "Acknowledged", "NotNow", "enqueue"};
  const int statuses[] = {200, 200, 200, 401, 500, 0};
  const char* kinds[] = {"timeout", "reset", "5xx"};
  std::vector<Event> out;
  for (std::size_t i = 0; i < n; ++i) {
    Event e{{messages[random() % 6], statuses[random() % 6]},
            chr::nanoseconds(static_cast<std::int64_t>(latency_ms(random) * 1e6)),
            chr::nanoseconds(static_cast<std::int64_t>(at(random) * 1e9)),
            random() % 10 == 0 ? kinds[random() % 3] : ""};
    out.push_back(e);
  }
  return out;
}

void play(Figures& f, const std::vector<Event>& events) {
  for (const Event& e : events) {
    if (e.error.empty()) {
      f.record(e.key, e.latency, e.at);
    } else {
      f.record_error(e.error, e.at);
    }
  }
}

TEST(Figures, MergingTwoEqualsOneThatRecordedBothStreams) {
  // The second stream runs ten times longer, so that its timeline coarsens and the first's
  // must be coarsened to match.
  const auto a = stream(1, 60, 20'000);
  const auto b = stream(2, 3000, 20'000);
  Figures first, second, both;
  play(first, a);
  play(second, b);
  play(both, a);
  play(both, b);
  ASSERT_NE(first.interval(), second.interval());

  Figures merged = first;
  merged.merge(second);
  EXPECT_TRUE(merged == both);
  EXPECT_EQ(merged.to_json().dump(), both.to_json().dump());
  EXPECT_EQ(merged.exchanges(), both.exchanges());
  EXPECT_EQ(merged.errors_by_kind(), both.errors_by_kind());
  const auto merged_latency = merged.latency();
  const auto both_latency = both.latency();
  ASSERT_EQ(merged_latency.size(), both_latency.size());
  for (const auto& [key, q] : both_latency) {
    const Quantiles& m = merged_latency.at(key);
    EXPECT_EQ(m.count, q.count) << key.message << " " << key.status;
    EXPECT_EQ(m.p50_ms, q.p50_ms);
    EXPECT_EQ(m.p99_ms, q.p99_ms);
    EXPECT_EQ(m.p999_ms, q.p999_ms);
    EXPECT_EQ(m.max_ms, q.max_ms);
  }
  // Merging the other way round gives the same.
  Figures reverse = second;
  reverse.merge(first);
  EXPECT_TRUE(reverse == both);
  // A merge with nothing changes nothing.
  Figures unchanged = both;
  unchanged.merge(Figures{});
  EXPECT_TRUE(unchanged == both);
}

TEST(Figures, JsonRoundTripKeepsEveryCount) {
  Figures f;
  play(f, stream(3, 2000, 5000));
  base::JsonReader r;
  const Figures back = Figures::from_json(r, Json::parse(f.to_json().dump()), "figures");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(back == f);
  EXPECT_EQ(back.to_json().dump(), f.to_json().dump());
}

// The JSON of a small Figures, changed by `edit`, read back: the error, or "" when it read.
template <typename Edit>
std::string read_edited(Edit edit) {
  Figures f;
  f.record({"Idle", 200}, chr::milliseconds(5), seconds(0.5));
  f.record({"Idle", 200}, chr::milliseconds(50), seconds(2.5));
  f.record_error("timeout", seconds(2.5));
  Json j = Json::parse(f.to_json().dump());
  edit(j);
  base::JsonReader r;
  (void)Figures::from_json(r, j, "figures");
  return r.error();
}

TEST(Figures, FromJsonRefusesFiguresThatDoNotAddUp) {
  EXPECT_EQ(read_edited([](Json&) {}), "");
  EXPECT_THAT(read_edited([](Json& j) { j["latency"][0]["count"] = 3; }), HasSubstr("bins hold 2"));
  EXPECT_THAT(read_edited([](Json& j) { j["exchanges"] = 7; }), HasSubstr("figures.exchanges"));
  EXPECT_THAT(read_edited([](Json& j) { j["errors_by_kind"]["timeout"] = 2; }), HasSubstr("figures.errors"));
  EXPECT_THAT(read_edited([](Json& j) { j["timeline"][1]["errors"] = 0; }), HasSubstr("figures.timeline"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency"][0]["max_ns"] = 1; }), HasSubstr("highest bin"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency_axis"]["bins_per_decade"] = 100; }),
              HasSubstr("another histogram axis"));
  EXPECT_THAT(read_edited([](Json& j) { j["interval_ms"] = 3000; }), HasSubstr("not 1000 doubled"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency"][0]["bins"][0][0] = 99999; }), HasSubstr("bins[0]"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency"][0]["bins"].push_back(j["latency"][0]["bins"][0]); }),
              HasSubstr("out of order"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency"].push_back(j["latency"][0]); }), HasSubstr("listed twice"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency"][0]["bins"][0][1] = -4; }), HasSubstr("count out of range"));
  EXPECT_THAT(read_edited([](Json& j) { j["latency"][0]["bins"][0] = "x"; }), HasSubstr("[bin index, count]"));
  EXPECT_THAT(read_edited([](Json& j) { j["timeline"] = Json::array(); }), HasSubstr("figures.timeline"));
  EXPECT_THAT(read_edited([](Json& j) { j["timeline"][0]["index"] = 5000; }), HasSubstr("out of range"));
  EXPECT_THAT(read_edited([](Json& j) { j["errors_by_kind"] = 4; }), HasSubstr("expected an object"));
}

TEST(Figures, FromJsonRefusesMoreKeysKindsIntervalsOrBinsThanTheCaps) {
  EXPECT_THAT(read_edited([](Json& j) {
                while (j["latency"].size() <= kMaxKeys) j["latency"].push_back(j["latency"][0]);
              }),
              HasSubstr("more than 256 keys"));
  EXPECT_THAT(read_edited([](Json& j) {
                for (std::size_t k = 0; k <= kMaxErrorKinds; ++k) j["errors_by_kind"]["k" + std::to_string(k)] = 0;
              }),
              HasSubstr("more than 64 kinds"));
  EXPECT_THAT(read_edited([](Json& j) {
                while (j["timeline"].size() <= kMaxTimelineIntervals) j["timeline"].push_back(j["timeline"][0]);
              }),
              HasSubstr("more than 1024 intervals"));
  EXPECT_THAT(read_edited([](Json& j) {
                Json& bins = j["latency"][0]["bins"];
                for (int i = 0; i < 2000; ++i) bins.push_back(Json::array({i, 1}));
              }),
              HasSubstr("more than the axis' 1046 bins"));
  EXPECT_THAT(read_edited([](Json& j) { j["errors_by_kind"][std::string(100, 'k')] = 0; }),
              HasSubstr("a kind longer than 64 bytes"));
}

}  // namespace
}  // namespace mdmc::load
