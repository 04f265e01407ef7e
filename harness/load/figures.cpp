#include "harness/load/figures.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include <fmt/format.h>

namespace mdmc::load {
namespace {

namespace bh = boost::histogram;
using Json = Figures::Json;

constexpr int kLatencyBins = kLatencyDecades * kLatencyBinsPerDecade;
constexpr int kTimelineBins = kLatencyDecades * kTimelineBinsPerDecade;
// Bounds a record's numbers are read within: no count of a run comes near 10^15, and no
// latency near 10^15 ns (11 days).
constexpr std::int64_t kMaxCount = 1'000'000'000'000'000;
constexpr std::int64_t kMaxLatencyNs = 1'000'000'000'000'000;
constexpr std::int64_t kMaxIntervalMs = 24LL * 3600 * 1000;
// Times beyond 10^18 ns (31 years) count as that, so that a coarsened interval stays below
// 2^32 ms and an interval's start in nanoseconds fits 64 bits.
constexpr std::int64_t kMaxAtNs = 1'000'000'000'000'000'000;
constexpr std::int64_t kMaxCoarsenedIntervalMs = std::int64_t{1} << 32;
constexpr std::size_t kMaxMessageBytes = 64;

constexpr std::int64_t kNsPerMs = 1'000'000;

double ns_to_ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

// A kind or a message as kept: at most max_bytes, cut on a UTF-8 boundary.
std::string bounded_text(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

}  // namespace

Figures::Figures(std::chrono::milliseconds interval)
    : base_interval_(std::clamp<std::chrono::milliseconds>(interval, std::chrono::milliseconds(1),
                                                           std::chrono::milliseconds(kMaxIntervalMs))),
      interval_(base_interval_),
      overall_(fine_distribution()) {}

Figures::Distribution Figures::fine_distribution() {
  return Distribution{
      bh::make_histogram_with(std::vector<std::uint64_t>(), Axis(kLatencyBins, kLatencyLowerUs, kLatencyUpperUs)), 0};
}

Figures::Distribution Figures::coarse_distribution() {
  return Distribution{
      bh::make_histogram_with(std::vector<std::uint64_t>(), Axis(kTimelineBins, kLatencyLowerUs, kLatencyUpperUs)), 0};
}

void Figures::add_sample(Distribution& d, std::int64_t latency_ns) {
  // The axis is in microseconds; zero falls into the underflow bin (log 0 is -inf).
  d.histogram(static_cast<double>(latency_ns) / 1e3);
  d.max_ns = std::max(d.max_ns, latency_ns);
}

void Figures::add(Distribution& into, const Distribution& from) {
  // Both were made by the same factory, so their axes are equal and bins add index by index
  // (histogram's own += would too, but g++ 12 warns inside its general path under the sanitizers).
  assert(into.histogram.axis() == from.histogram.axis());
  for (int i = -1; i <= from.histogram.axis().size(); ++i) into.histogram.at(i) += from.histogram.at(i);
  into.max_ns = std::max(into.max_ns, from.max_ns);
}

Quantiles Figures::quantiles(const Distribution& d) {
  // Bins by index, underflow (-1) to overflow (the axis' size), as indexed() would walk them
  // (g++ 12 warns of an uninitialised buffer inside indexed() under the sanitizers).
  const Axis& axis = d.histogram.axis();
  const int overflow = axis.size();
  Quantiles q;
  for (int i = -1; i <= overflow; ++i) q.count += d.histogram.at(i);
  if (q.count == 0) return q;
  q.max_ms = ns_to_ms(d.max_ns);
  // The rank of each quantile among the samples (1-based), and where its value goes.
  const std::pair<double, double*> wanted[] = {
      {0.5, &q.p50_ms}, {0.9, &q.p90_ms}, {0.99, &q.p99_ms}, {0.999, &q.p999_ms}};
  std::size_t next = 0;
  std::uint64_t cumulative = 0;
  for (int i = -1; i <= overflow && next < std::size(wanted); ++i) {
    cumulative += d.histogram.at(i);
    while (next < std::size(wanted)) {
      const auto rank = std::max<std::uint64_t>(
          1, static_cast<std::uint64_t>(std::ceil(wanted[next].first * static_cast<double>(q.count))));
      if (cumulative < rank) break;
      // The bin's upper edge (the underflow's is the axis' lower end): no sample in it is
      // larger, so the quantile is never understated. The overflow bin has no upper edge; the
      // exact maximum bounds every bin.
      const double upper_ms = i == overflow ? q.max_ms : axis.value(i + 1) / 1e3;
      *wanted[next].second = std::min(upper_ms, q.max_ms);
      ++next;
    }
  }
  return q;
}

Figures::Distribution& Figures::key_distribution(const ExchangeKey& key) {
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  // The last place under the cap is kept for the key that takes the rest.
  const ExchangeKey& kept = by_key_.size() + 1 < kMaxKeys ? key : kOtherKey;
  auto [it, inserted] = by_key_.try_emplace(kept, fine_distribution());
  return it->second;
}

void Figures::coarsen() {
  std::vector<Interval> coarser;
  coarser.reserve((timeline_.size() + 1) / 2);
  for (std::size_t i = 0; i < timeline_.size(); ++i) {
    if (i % 2 == 0) coarser.push_back(Interval{0, 0, coarse_distribution()});
    Interval& into = coarser.back();
    into.exchanges += timeline_[i].exchanges;
    into.errors += timeline_[i].errors;
    add(into.latency, timeline_[i].latency);
  }
  timeline_ = std::move(coarser);
  interval_ *= 2;
}

Figures::Interval& Figures::interval_at(std::int64_t at_ns) {
  at_ns = std::clamp<std::int64_t>(at_ns, 0, kMaxAtNs);
  auto index = static_cast<std::uint64_t>(at_ns / (interval_.count() * kNsPerMs));
  while (index >= kMaxTimelineIntervals) {
    coarsen();
    index = static_cast<std::uint64_t>(at_ns / (interval_.count() * kNsPerMs));
  }
  while (timeline_.size() <= index) timeline_.push_back(Interval{0, 0, coarse_distribution()});
  return timeline_[index];
}

void Figures::record(const ExchangeKey& key, std::chrono::nanoseconds latency, std::chrono::nanoseconds at) {
  const std::int64_t latency_ns = std::clamp<std::int64_t>(latency.count(), 0, kMaxLatencyNs);
  ++exchanges_;
  if (key.status < 0 || key.status > 999) {
    // Not an HTTP status (RFC 9110 15: three digits): the record keeps only those.
    add_sample(key_distribution(kOtherKey), latency_ns);
  } else if (key.message.size() > kMaxMessageBytes) {
    add_sample(key_distribution(ExchangeKey{bounded_text(key.message, kMaxMessageBytes), key.status}), latency_ns);
  } else {
    add_sample(key_distribution(key), latency_ns);
  }
  add_sample(overall_, latency_ns);
  Interval& interval = interval_at(at.count());
  ++interval.exchanges;
  add_sample(interval.latency, latency_ns);
}

void Figures::record_error(std::string_view kind, std::chrono::nanoseconds at) {
  ++errors_;
  std::string kept = bounded_text(kind, kMaxErrorKindBytes);
  if (!errors_by_kind_.contains(kept) && errors_by_kind_.size() + 1 >= kMaxErrorKinds) kept = kOtherKey.message;
  ++errors_by_kind_[kept];
  ++interval_at(at.count()).errors;
}

void Figures::merge(const Figures& other) {
  exchanges_ += other.exchanges_;
  errors_ += other.errors_;
  for (const auto& [key, d] : other.by_key_) add(key_distribution(key), d);
  add(overall_, other.overall_);
  for (const auto& [kind, n] : other.errors_by_kind_) {
    std::string kept = kind;
    if (!errors_by_kind_.contains(kept) && errors_by_kind_.size() + 1 >= kMaxErrorKinds) kept = kOtherKey.message;
    errors_by_kind_[kept] += n;
  }
  while (interval_ < other.interval_) coarsen();
  const std::int64_t other_ns = other.interval_.count() * kNsPerMs;
  for (std::size_t i = 0; i < other.timeline_.size(); ++i) {
    const Interval& from = other.timeline_[i];
    if (from.exchanges == 0 && from.errors == 0 && i + 1 != other.timeline_.size()) continue;
    Interval& into = interval_at(static_cast<std::int64_t>(i) * other_ns);
    into.exchanges += from.exchanges;
    into.errors += from.errors;
    add(into.latency, from.latency);
  }
}

std::map<ExchangeKey, Quantiles> Figures::latency() const {
  std::map<ExchangeKey, Quantiles> out;
  for (const auto& [key, d] : by_key_) out.emplace(key, quantiles(d));
  return out;
}

Quantiles Figures::overall() const { return quantiles(overall_); }

std::vector<IntervalFigures> Figures::timeline(double elapsed_s) const {
  std::vector<IntervalFigures> out;
  out.reserve(timeline_.size());
  const double length_s = static_cast<double>(interval_.count()) / 1e3;
  for (std::size_t i = 0; i < timeline_.size(); ++i) {
    IntervalFigures f;
    f.start_s = static_cast<double>(i) * length_s;
    f.length_s = length_s;
    // The run ended inside its last interval: rates over the whole interval would understate it.
    if (elapsed_s > f.start_s && elapsed_s < f.start_s + length_s) f.length_s = elapsed_s - f.start_s;
    f.exchanges = timeline_[i].exchanges;
    f.errors = timeline_[i].errors;
    f.latency = quantiles(timeline_[i].latency);
    out.push_back(f);
  }
  return out;
}

bool Figures::operator==(const Figures& other) const {
  auto same = [](const Distribution& a, const Distribution& b) {
    return a.max_ns == b.max_ns && a.histogram == b.histogram;
  };
  if (interval_ != other.interval_ || exchanges_ != other.exchanges_ || errors_ != other.errors_ ||
      errors_by_kind_ != other.errors_by_kind_ || by_key_.size() != other.by_key_.size() ||
      timeline_.size() != other.timeline_.size() || !same(overall_, other.overall_)) {
    return false;
  }
  for (auto a = by_key_.begin(), b = other.by_key_.begin(); a != by_key_.end(); ++a, ++b) {
    if (a->first != b->first || !same(a->second, b->second)) return false;
  }
  for (std::size_t i = 0; i < timeline_.size(); ++i) {
    const Interval& a = timeline_[i];
    const Interval& b = other.timeline_[i];
    if (a.exchanges != b.exchanges || a.errors != b.errors || !same(a.latency, b.latency)) return false;
  }
  return true;
}

// ---- JSON ----

Json Figures::distribution_json(const Distribution& d) {
  const Quantiles q = quantiles(d);
  Json bins = Json::array();
  for (int i = -1; i <= d.histogram.axis().size(); ++i) {
    if (const std::uint64_t n = d.histogram.at(i); n != 0) bins.push_back(Json::array({i, n}));
  }
  return Json{{"count", q.count},     {"p50_ms", q.p50_ms}, {"p90_ms", q.p90_ms}, {"p99_ms", q.p99_ms},
              {"p999_ms", q.p999_ms}, {"max_ms", q.max_ms}, {"max_ns", d.max_ns}, {"bins", std::move(bins)}};
}

Figures::Distribution Figures::distribution_from_json(base::JsonReader& r, const Json& j, const std::string& path,
                                                      bool fine, std::uint64_t& count) {
  Distribution d = fine ? fine_distribution() : coarse_distribution();
  count = 0;
  const auto declared = static_cast<std::uint64_t>(r.integer(j, "count", path, 0, kMaxCount));
  d.max_ns = r.integer(j, "max_ns", path, 0, kMaxLatencyNs);
  const Json* bins = r.array(j, "bins", path);
  if (!r.ok()) return d;
  const auto size = d.histogram.axis().size();
  const std::string bins_path = base::JsonReader::join(path, "bins");
  if (bins->size() > static_cast<std::size_t>(size) + 2) {
    r.fail(bins_path, fmt::format("more than the axis' {} bins", size + 2));
    return d;
  }
  int last = -2;
  for (std::size_t i = 0; i < bins->size() && r.ok(); ++i) {
    const std::string at = base::JsonReader::index(bins_path, i);
    const Json& pair = (*bins)[i];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() || !pair[1].is_number_integer()) {
      r.fail(at, "expected [bin index, count]");
      break;
    }
    const auto index = pair[0].get<std::int64_t>();
    const auto n = pair[1].get<std::int64_t>();
    if (index < -1 || index > size || index <= last) {
      r.fail(at, fmt::format("bin index {} out of order or outside -1..{}", index, size));
      break;
    }
    if (n < 1 || n > kMaxCount) {
      r.fail(at, "count out of range");
      break;
    }
    last = static_cast<int>(index);
    d.histogram.at(static_cast<int>(index)) = static_cast<std::uint64_t>(n);
    count += static_cast<std::uint64_t>(n);
  }
  if (!r.ok()) return d;
  if (count != declared) {
    r.fail(base::JsonReader::join(path, "count"), fmt::format("{} but its bins hold {}", declared, count));
  } else if (count == 0 && d.max_ns != 0) {
    r.fail(base::JsonReader::join(path, "max_ns"), "a maximum without samples");
  } else if (count != 0 && d.histogram.axis().index(static_cast<double>(d.max_ns) / 1e3) != last) {
    // The largest sample lies in the highest bin that holds one.
    r.fail(base::JsonReader::join(path, "max_ns"), "not in the highest bin that holds a sample");
  }
  return d;
}

namespace {

Json axis_json(int bins_per_decade) {
  return Json{{"transform", "log"},
              {"unit", "us"},
              {"lower", kLatencyLowerUs},
              {"upper", kLatencyUpperUs},
              {"bins_per_decade", bins_per_decade}};
}

}  // namespace

Json Figures::to_json() const {
  Json j;
  j["interval_ms"] = interval_.count();
  j["base_interval_ms"] = base_interval_.count();
  j["latency_axis"] = axis_json(kLatencyBinsPerDecade);
  j["timeline_axis"] = axis_json(kTimelineBinsPerDecade);
  j["exchanges"] = exchanges_;
  j["errors"] = errors_;
  j["overall"] = distribution_json(overall_);
  Json latency = Json::array();
  for (const auto& [key, d] : by_key_) {
    Json entry{{"message", key.message}, {"status", key.status}};
    entry.update(distribution_json(d));
    latency.push_back(std::move(entry));
  }
  j["latency"] = std::move(latency);
  Json kinds = Json::object();
  for (const auto& [kind, n] : errors_by_kind_) kinds[kind] = n;
  j["errors_by_kind"] = std::move(kinds);
  Json timeline = Json::array();
  const double length_s = static_cast<double>(interval_.count()) / 1e3;
  for (std::size_t i = 0; i < timeline_.size(); ++i) {
    const Interval& interval = timeline_[i];
    if (interval.exchanges == 0 && interval.errors == 0) continue;
    timeline.push_back(Json{{"index", i},
                            {"start_s", static_cast<double>(i) * length_s},
                            {"exchanges", interval.exchanges},
                            {"errors", interval.errors},
                            {"latency", distribution_json(interval.latency)}});
  }
  j["timeline"] = std::move(timeline);
  return j;
}

Figures Figures::from_json(base::JsonReader& r, const Json& j, const std::string& path) {
  using R = base::JsonReader;
  const auto base_ms = r.integer(j, "base_interval_ms", path, 1, kMaxIntervalMs);
  const auto interval_ms = r.integer(j, "interval_ms", path, 1, kMaxCoarsenedIntervalMs);
  if (!r.ok()) return Figures{};
  Figures f{std::chrono::milliseconds(base_ms)};
  // The timeline's interval is the one asked for, doubled as often as the run needed.
  std::int64_t doubled = base_ms;
  while (doubled < interval_ms) doubled *= 2;
  if (doubled != interval_ms) {
    r.fail(R::join(path, "interval_ms"), fmt::format("{} is not {} doubled", interval_ms, base_ms));
    return Figures{};
  }
  f.interval_ = std::chrono::milliseconds(interval_ms);
  for (const auto& [name, per_decade] : {std::pair<const char*, int>{"latency_axis", kLatencyBinsPerDecade},
                                         std::pair<const char*, int>{"timeline_axis", kTimelineBinsPerDecade}}) {
    const Json* axis = r.member(j, name, path);
    // Compared as unordered JSON: a reader does not care in which order the fields came.
    if (axis && nlohmann::json(*axis) != nlohmann::json(axis_json(per_decade))) {
      r.fail(R::join(path, name),
             fmt::format("another histogram axis than this harness's {}", axis_json(per_decade).dump()));
    }
  }
  const auto exchanges = static_cast<std::uint64_t>(r.integer(j, "exchanges", path, 0, kMaxCount));
  const auto errors = static_cast<std::uint64_t>(r.integer(j, "errors", path, 0, kMaxCount));
  if (!r.ok()) return Figures{};

  const Json* latency = r.array(j, "latency", path);
  if (latency && latency->size() > kMaxKeys) {
    r.fail(R::join(path, "latency"), fmt::format("more than {} keys", kMaxKeys));
  }
  std::uint64_t key_total = 0;
  for (std::size_t i = 0; r.ok() && i < latency->size(); ++i) {
    const std::string at = R::index(R::join(path, "latency"), i);
    const Json& entry = (*latency)[i];
    ExchangeKey key{r.string(entry, "message", at), static_cast<int>(r.integer(entry, "status", at, -1, 999))};
    if (!r.ok()) break;
    if (key.message.size() > kMaxMessageBytes) {
      r.fail(R::join(at, "message"), fmt::format("longer than {} bytes", kMaxMessageBytes));
      break;
    }
    std::uint64_t count = 0;
    Distribution d = distribution_from_json(r, entry, at, /*fine=*/true, count);
    if (!r.ok()) break;
    if (!f.by_key_.emplace(key, std::move(d)).second) {
      r.fail(at, fmt::format("{} {} listed twice", key.message, key.status));
      break;
    }
    key_total += count;
  }
  if (!r.ok()) return Figures{};
  if (key_total != exchanges) {
    r.fail(R::join(path, "exchanges"), fmt::format("{} but the latency keys hold {}", exchanges, key_total));
    return Figures{};
  }
  f.exchanges_ = exchanges;
  for (const auto& [key, d] : f.by_key_) add(f.overall_, d);

  const Json* kinds = r.object(j, "errors_by_kind", path);
  if (kinds && kinds->size() > kMaxErrorKinds) {
    r.fail(R::join(path, "errors_by_kind"), fmt::format("more than {} kinds", kMaxErrorKinds));
  }
  std::uint64_t kind_total = 0;
  if (r.ok()) {
    for (const auto& [kind, value] : kinds->items()) {
      const std::string at = R::join(R::join(path, "errors_by_kind"), kind);
      if (kind.size() > kMaxErrorKindBytes) {
        r.fail(at, fmt::format("a kind longer than {} bytes", kMaxErrorKindBytes));
        break;
      }
      const auto n = r.integer(*kinds, kind, R::join(path, "errors_by_kind"), 0, kMaxCount);
      if (!r.ok()) break;
      f.errors_by_kind_[kind] = static_cast<std::uint64_t>(n);
      kind_total += static_cast<std::uint64_t>(n);
    }
  }
  if (!r.ok()) return Figures{};
  if (kind_total != errors) {
    r.fail(R::join(path, "errors"), fmt::format("{} but the kinds add up to {}", errors, kind_total));
    return Figures{};
  }
  f.errors_ = errors;

  const Json* timeline = r.array(j, "timeline", path);
  if (timeline && timeline->size() > kMaxTimelineIntervals) {
    r.fail(R::join(path, "timeline"), fmt::format("more than {} intervals", kMaxTimelineIntervals));
  }
  std::uint64_t timeline_exchanges = 0, timeline_errors = 0;
  std::int64_t last = -1;
  for (std::size_t i = 0; r.ok() && i < timeline->size(); ++i) {
    const std::string at = R::index(R::join(path, "timeline"), i);
    const Json& entry = (*timeline)[i];
    const auto index = r.integer(entry, "index", at, 0, static_cast<std::int64_t>(kMaxTimelineIntervals) - 1);
    const auto interval_exchanges = static_cast<std::uint64_t>(r.integer(entry, "exchanges", at, 0, kMaxCount));
    const auto interval_errors = static_cast<std::uint64_t>(r.integer(entry, "errors", at, 0, kMaxCount));
    const Json* latency_json = r.object(entry, "latency", at);
    if (!r.ok()) break;
    if (index <= last) {
      r.fail(R::join(at, "index"), "out of order");
      break;
    }
    last = index;
    std::uint64_t count = 0;
    Distribution d = distribution_from_json(r, *latency_json, R::join(at, "latency"), /*fine=*/false, count);
    if (!r.ok()) break;
    if (count != interval_exchanges) {
      r.fail(R::join(at, "exchanges"), fmt::format("{} but its latency holds {}", interval_exchanges, count));
      break;
    }
    while (f.timeline_.size() <= static_cast<std::size_t>(index)) {
      f.timeline_.push_back(Interval{0, 0, coarse_distribution()});
    }
    f.timeline_[static_cast<std::size_t>(index)] = Interval{interval_exchanges, interval_errors, std::move(d)};
    timeline_exchanges += interval_exchanges;
    timeline_errors += interval_errors;
  }
  if (!r.ok()) return Figures{};
  if (timeline_exchanges != exchanges || timeline_errors != errors) {
    r.fail(R::join(path, "timeline"), fmt::format("holds {} exchanges and {} errors, the totals say {} and {}",
                                                  timeline_exchanges, timeline_errors, exchanges, errors));
    return Figures{};
  }
  return f;
}

}  // namespace mdmc::load
