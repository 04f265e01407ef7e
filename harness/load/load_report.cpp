#include "harness/load/load_report.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/base/json_reader.hpp"
#include "harness/base/utf8.hpp"

namespace mdmc::load {
namespace {

using Json = nlohmann::ordered_json;
using R = base::JsonReader;

constexpr std::string_view kKind = "mdmconform-load";
constexpr std::int64_t kVersion = 1;
constexpr std::size_t kMaxTextBytes = 4096;  // a field meant for people (detail, channel, reason)
constexpr std::int64_t kMaxCount = 1'000'000'000'000'000;
constexpr double kMaxSeconds = 1e9;

// Text for people: valid UTF-8 (invalid bytes as U+FFFD), at most kMaxTextBytes.
Json text_json(std::string_view s) {
  std::string text = base::sanitize_utf8(s.substr(0, kMaxTextBytes));
  return Json(std::move(text));
}

// An excerpt cut to kMaxExcerptBytes (on a code point boundary when it is text), as a string
// when it is UTF-8, else {"base64": ...}, so that the bytes survive exactly.
Json excerpt_json(std::string_view bytes) {
  if (bytes.size() > kMaxExcerptBytes) {
    std::size_t end = kMaxExcerptBytes;
    if (base::is_valid_utf8(bytes)) {
      while (end > 0 && (static_cast<unsigned char>(bytes[end]) & 0xC0) == 0x80) --end;
    }
    bytes = bytes.substr(0, end);
  }
  if (base::is_valid_utf8(bytes)) return Json(bytes);
  return Json{{"base64", base::base64_encode(bytes)}};
}

// A time or a rate as a record keeps it: what a reader accepts (finite, not negative, at most
// kMaxSeconds), so that a record always reads back; NaN and negatives become 0.
double record_number(double v) { return std::isfinite(v) && v > 0 ? std::min(v, kMaxSeconds) : 0; }

// A finite number in [min, max].
double number(R& r, const Json& obj, std::string_view key, const std::string& path, double min, double max) {
  const Json* j = r.member(obj, key, path);
  if (!j) return 0;
  if (!j->is_number()) {
    r.fail(R::join(path, key), "expected a number");
    return 0;
  }
  const double v = j->get<double>();
  if (!std::isfinite(v) || v < min || v > max) {
    r.fail(R::join(path, key), "out of range");
    return 0;
  }
  return v;
}

std::uint64_t count(R& r, const Json& obj, std::string_view key, const std::string& path) {
  return static_cast<std::uint64_t>(r.integer(obj, key, path, 0, kMaxCount));
}

std::string bounded_string(R& r, const Json& obj, std::string_view key, const std::string& path) {
  std::string s = r.string(obj, key, path);
  if (s.size() > kMaxTextBytes) r.fail(R::join(path, key), fmt::format("longer than {} bytes", kMaxTextBytes));
  return s;
}

Json usage_json(const Usage& u) {
  return Json{{"cpu_user_s", record_number(u.cpu_user_s)},
              {"cpu_system_s", record_number(u.cpu_system_s)},
              {"peak_rss_kib", u.peak_rss_kib}};
}

Usage read_usage(R& r, const Json& j, const std::string& path) {
  Usage u;
  u.cpu_user_s = number(r, j, "cpu_user_s", path, 0, kMaxSeconds);
  u.cpu_system_s = number(r, j, "cpu_system_s", path, 0, kMaxSeconds);
  u.peak_rss_kib = count(r, j, "peak_rss_kib", path);
  return u;
}

Json finding_json(const Finding& f) {
  Json exchanges = Json::array();
  for (std::size_t i = 0; i < f.exchanges.size() && i < kMaxFindingExchanges; ++i) {
    const ExchangeRecord& e = f.exchanges[i];
    exchanges.push_back(Json{{"at_s", record_number(e.at_s)},
                             {"channel", text_json(e.channel)},
                             {"message", text_json(e.message)},
                             {"status", e.status},
                             {"request", excerpt_json(e.request_excerpt)},
                             {"response", excerpt_json(e.response_excerpt)}});
  }
  return Json{{"invariant", text_json(f.invariant)},
              {"channel", text_json(f.channel)},
              {"command_uuid", text_json(f.command_uuid)},
              {"detail", text_json(f.detail)},
              {"at_s", record_number(f.at_s)},
              {"exchanges", std::move(exchanges)}};
}

Finding read_finding(R& r, const Json& j, const std::string& path) {
  Finding f;
  f.invariant = bounded_string(r, j, "invariant", path);
  f.channel = bounded_string(r, j, "channel", path);
  f.command_uuid = bounded_string(r, j, "command_uuid", path);
  f.detail = bounded_string(r, j, "detail", path);
  f.at_s = number(r, j, "at_s", path, 0, kMaxSeconds);
  const Json* arr = r.array(j, "exchanges", path);
  if (!r.ok()) return f;
  const std::string arr_path = R::join(path, "exchanges");
  if (arr->size() > kMaxFindingExchanges) {
    r.fail(arr_path, fmt::format("more than {} exchanges", kMaxFindingExchanges));
    return f;
  }
  for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
    const std::string at = R::index(arr_path, i);
    const Json& e = (*arr)[i];
    ExchangeRecord x;
    x.at_s = number(r, e, "at_s", at, 0, kMaxSeconds);
    x.channel = bounded_string(r, e, "channel", at);
    x.message = bounded_string(r, e, "message", at);
    x.status = static_cast<int>(r.integer(e, "status", at, -1, 999));
    x.request_excerpt = r.bytes(e, "request", at);
    x.response_excerpt = r.bytes(e, "response", at);
    if (r.ok() && std::max(x.request_excerpt.size(), x.response_excerpt.size()) > kMaxExcerptBytes) {
      r.fail(at, fmt::format("an excerpt longer than {} bytes", kMaxExcerptBytes));
    }
    f.exchanges.push_back(std::move(x));
  }
  return f;
}

double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

}  // namespace

Usage Usage::of_this_process() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return Usage{};
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return Usage{seconds(usage.ru_utime), seconds(usage.ru_stime), static_cast<std::uint64_t>(usage.ru_maxrss)};
}

std::vector<int> shards_held(const LoadReport& report) {
  if (!report.merged_shards.empty()) return report.merged_shards;
  return {report.shard_index};
}

std::string to_json(const LoadReport& report) {
  Json j;
  j["kind"] = kKind;
  j["version"] = kVersion;
  j["harness"] = Json{{"name", "mdmconform"}, {"version", text_json(report.harness_version)}};
  j["target"] = Json{{"name", text_json(report.target)}, {"url", text_json(report.target_url)}};
  j["started_at"] = text_json(report.started_utc);
  // A string: a 64-bit seed does not fit a JavaScript number.
  j["seed"] = std::to_string(report.seed);
  Json shard{{"index", report.shard_index}, {"count", report.shard_count}};
  if (!report.merged_shards.empty()) shard["merged"] = report.merged_shards;
  j["shard"] = std::move(shard);
  j["fleet"] =
      Json{{"devices", report.devices}, {"users_per_device", report.users_per_device}, {"channels", report.channels}};
  j["duration_s"] = record_number(report.duration_s);
  j["elapsed_s"] = record_number(report.elapsed_s);
  j["rate"] = record_number(report.rate);
  j["commands_per_minute"] = record_number(report.commands_per_minute);
  j["interrupted"] = report.interrupted;
  j["interrupted_reason"] = text_json(report.interrupted_reason);
  // For people and jq; a reader recomputes all of it from "figures".
  const Quantiles overall = report.figures.overall();
  j["summary"] = Json{{"exchanges", report.figures.exchanges()},
                      {"exchanges_per_s", per_second(report.figures.exchanges(), report.elapsed_s)},
                      {"errors", report.figures.errors()},
                      {"p50_ms", overall.p50_ms},
                      {"p90_ms", overall.p90_ms},
                      {"p99_ms", overall.p99_ms},
                      {"p999_ms", overall.p999_ms},
                      {"max_ms", overall.max_ms}};
  const CommandCounts& c = report.commands;
  j["commands"] = Json{
      {"queued", c.queued},   {"refused", c.refused}, {"delivered", c.delivered},     {"acknowledged", c.acknowledged},
      {"not_now", c.not_now}, {"error", c.error},     {"outstanding", c.outstanding}, {"not_queued", c.not_queued}};
  j["findings_total"] = std::max<std::uint64_t>(report.findings_total, report.findings.size());
  Json findings = Json::array();
  for (std::size_t i = 0; i < report.findings.size() && i < kMaxFindings; ++i) {
    findings.push_back(finding_json(report.findings[i]));
  }
  j["findings"] = std::move(findings);
  j["usage"] = usage_json(report.harness);
  Json shards = Json::array();
  for (const Usage& u : report.shards_usage) shards.push_back(usage_json(u));
  j["shards_usage"] = std::move(shards);
  j["figures"] = report.figures.to_json();
  // Every string is valid UTF-8 already; replace is a second guard so dump never throws.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

base::Result<LoadReport> load_report_from_json(std::string_view text) {
  if (text.size() > kMaxLoadRecordBytes) {
    return base::fail(fmt::format("larger than {} MiB", kMaxLoadRecordBytes / (1024 * 1024)));
  }
  if (base::json_nesting_depth(text, kMaxLoadRecordDepth) > kMaxLoadRecordDepth) {
    return base::fail(fmt::format("nested deeper than {} levels", kMaxLoadRecordDepth));
  }
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return base::fail("not valid JSON");
  R r;
  LoadReport report;
  const std::string top;
  if (!j.is_object()) {
    r.fail(top, "expected an object");
  } else {
    const std::string kind = r.string(j, "kind", top);
    if (r.ok() && kind != kKind) r.fail("kind", fmt::format("\"{}\", not a load record ({})", kind, kKind));
    const auto version = r.integer(j, "version", top);
    if (r.ok() && version != kVersion) {
      r.fail("version", fmt::format("unsupported version {} (this harness reads {})", version, kVersion));
    }
  }
  if (r.ok()) {
    if (const Json* harness = r.object(j, "harness", top)) {
      report.harness_version = bounded_string(r, *harness, "version", "harness");
    }
    if (const Json* target = r.object(j, "target", top)) {
      report.target = bounded_string(r, *target, "name", "target");
      report.target_url = bounded_string(r, *target, "url", "target");
    }
    report.started_utc = bounded_string(r, j, "started_at", top);
    const std::string seed = r.string(j, "seed", top);
    if (r.ok()) {
      const auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), report.seed);
      if (seed.empty() || ec != std::errc() || end != seed.data() + seed.size()) {
        r.fail("seed", "expected a string of decimal digits that fits 64 bits");
      }
    }
    if (const Json* shard = r.object(j, "shard", top)) {
      report.shard_count = static_cast<int>(r.integer(*shard, "count", "shard", 1, kMaxShards));
      report.shard_index = static_cast<int>(r.integer(*shard, "index", "shard", 0, report.shard_count - 1));
      if (r.ok() && shard->contains("merged")) {
        const Json* merged = r.array(*shard, "merged", "shard");
        if (merged && merged->size() > static_cast<std::size_t>(report.shard_count)) {
          r.fail("shard.merged", "more shards than the fleet has");
        }
        std::set<int> seen;
        for (std::size_t i = 0; r.ok() && i < merged->size(); ++i) {
          const Json& index = (*merged)[i];
          if (!index.is_number_integer() || index.get<std::int64_t>() < 0 ||
              index.get<std::int64_t>() >= report.shard_count || !seen.insert(index.get<int>()).second) {
            r.fail(R::index("shard.merged", i), "expected a shard index of the fleet, once");
            break;
          }
          report.merged_shards.push_back(index.get<int>());
        }
      }
    }
    if (const Json* fleet = r.object(j, "fleet", top)) {
      report.devices = static_cast<int>(r.integer(*fleet, "devices", "fleet", 0, 100'000'000));
      report.users_per_device = static_cast<int>(r.integer(*fleet, "users_per_device", "fleet", 0, 1'000'000));
      report.channels = count(r, *fleet, "channels", "fleet");
    }
    report.duration_s = number(r, j, "duration_s", top, 0, kMaxSeconds);
    report.elapsed_s = number(r, j, "elapsed_s", top, 0, kMaxSeconds);
    report.rate = number(r, j, "rate", top, 0, 1e12);
    report.commands_per_minute = number(r, j, "commands_per_minute", top, 0, 1e12);
    report.interrupted = r.boolean(j, "interrupted", top);
    report.interrupted_reason = bounded_string(r, j, "interrupted_reason", top);
    if (const Json* c = r.object(j, "commands", top)) {
      const std::string at = "commands";
      report.commands =
          CommandCounts{count(r, *c, "queued", at),       count(r, *c, "refused", at),   count(r, *c, "delivered", at),
                        count(r, *c, "acknowledged", at), count(r, *c, "not_now", at),   count(r, *c, "error", at),
                        count(r, *c, "outstanding", at),  count(r, *c, "not_queued", at)};
    }
    report.findings_total = count(r, j, "findings_total", top);
    if (const Json* arr = r.array(j, "findings", top)) {
      if (arr->size() > kMaxFindings) r.fail("findings", fmt::format("more than {} findings", kMaxFindings));
      for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
        report.findings.push_back(read_finding(r, (*arr)[i], R::index("findings", i)));
      }
      if (r.ok() && report.findings_total < report.findings.size()) {
        r.fail("findings_total", "fewer than the findings listed");
      }
    }
    if (const Json* usage = r.object(j, "usage", top)) report.harness = read_usage(r, *usage, "usage");
    if (const Json* arr = r.array(j, "shards_usage", top)) {
      const std::size_t expected = report.merged_shards.size();
      if (arr->size() != expected) {
        r.fail("shards_usage", fmt::format("{} entries for {} merged shards", arr->size(), expected));
      }
      for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
        report.shards_usage.push_back(read_usage(r, (*arr)[i], R::index("shards_usage", i)));
      }
    }
    if (const Json* figures = r.object(j, "figures", top)) {
      Figures f = Figures::from_json(r, *figures, "figures");
      if (r.ok()) report.figures = std::move(f);
    }
  }
  if (!r.ok()) return base::fail(r.error());
  return report;
}

base::Result<LoadReport> merge(const std::vector<LoadReport>& shards) {
  if (shards.empty()) return base::fail("no shard records to merge");
  const LoadReport& first = shards.front();
  // The shards in fleet order, so that the merge does not depend on the order it was given.
  std::vector<const LoadReport*> ordered;
  std::map<int, std::size_t> holder;  // shard index -> argument position
  for (std::size_t k = 0; k < shards.size(); ++k) {
    const LoadReport& s = shards[k];
    const std::string which = fmt::format("record {} (shard {}/{})", k + 1, s.shard_index, s.shard_count);
    auto differs = [&](std::string_view what, const std::string& theirs, const std::string& ours) {
      return base::fail(fmt::format("{} is not a shard of the same fleet as record 1: its {} is {}, record 1's is {}",
                                    which, what, theirs, ours));
    };
    if (s.target != first.target) return differs("target", s.target, first.target);
    if (s.seed != first.seed) return differs("seed", std::to_string(s.seed), std::to_string(first.seed));
    if (s.devices != first.devices || s.users_per_device != first.users_per_device) {
      return differs("fleet", fmt::format("{} devices x {} users", s.devices, s.users_per_device),
                     fmt::format("{} devices x {} users", first.devices, first.users_per_device));
    }
    if (s.shard_count != first.shard_count) {
      return differs("shard count", std::to_string(s.shard_count), std::to_string(first.shard_count));
    }
    if (s.duration_s != first.duration_s) {
      return differs("--duration", fmt::format("{} s", s.duration_s), fmt::format("{} s", first.duration_s));
    }
    if (s.rate != first.rate) return differs("--rate", fmt::format("{}", s.rate), fmt::format("{}", first.rate));
    if (s.commands_per_minute != first.commands_per_minute) {
      return differs("--commands-per-minute", fmt::format("{}", s.commands_per_minute),
                     fmt::format("{}", first.commands_per_minute));
    }
    if (s.figures.base_interval() != first.figures.base_interval()) {
      return differs("timeline interval", fmt::format("{} ms", s.figures.base_interval().count()),
                     fmt::format("{} ms", first.figures.base_interval().count()));
    }
    for (int index : shards_held(s)) {
      if (index < 0 || index >= s.shard_count) {
        return base::fail(fmt::format("{} holds shard {}, outside 0..{}", which, index, s.shard_count - 1));
      }
      if (auto [it, inserted] = holder.emplace(index, k); !inserted) {
        return base::fail(fmt::format("shard {}/{} is in record {} and in record {}: a shard is merged once", index,
                                      s.shard_count, it->second + 1, k + 1));
      }
    }
    ordered.push_back(&s);
  }
  std::sort(ordered.begin(), ordered.end(),
            [](const LoadReport* a, const LoadReport* b) { return shards_held(*a).front() < shards_held(*b).front(); });

  LoadReport merged;
  merged.harness_version = first.harness_version;
  merged.target = first.target;
  merged.target_url = first.target_url;
  merged.seed = first.seed;
  merged.shard_count = first.shard_count;
  merged.devices = first.devices;
  merged.users_per_device = first.users_per_device;
  merged.duration_s = first.duration_s;
  merged.rate = first.rate;
  merged.commands_per_minute = first.commands_per_minute;
  merged.figures = Figures(first.figures.base_interval());
  merged.started_utc = first.started_utc;
  std::map<int, Usage> usage_by_shard;
  std::vector<std::string> reasons;
  for (const LoadReport* s : ordered) {
    // RFC 3339 UTC times of one form order as strings.
    if (!s->started_utc.empty() && (merged.started_utc.empty() || s->started_utc < merged.started_utc)) {
      merged.started_utc = s->started_utc;
    }
    merged.elapsed_s = std::max(merged.elapsed_s, s->elapsed_s);
    if (s->interrupted) {
      merged.interrupted = true;
      if (!s->interrupted_reason.empty() &&
          std::find(reasons.begin(), reasons.end(), s->interrupted_reason) == reasons.end()) {
        reasons.push_back(s->interrupted_reason);
      }
    }
    merged.channels += s->channels;
    merged.figures.merge(s->figures);
    CommandCounts& c = merged.commands;
    const CommandCounts& o = s->commands;
    c.queued += o.queued;
    c.refused += o.refused;
    c.delivered += o.delivered;
    c.acknowledged += o.acknowledged;
    c.not_now += o.not_now;
    c.error += o.error;
    c.outstanding += o.outstanding;
    c.not_queued += o.not_queued;
    for (const Finding& f : s->findings) {
      if (merged.findings.size() == kMaxFindings) break;
      merged.findings.push_back(f);
    }
    merged.findings_total += std::max<std::uint64_t>(s->findings_total, s->findings.size());
    merged.harness.cpu_user_s += s->harness.cpu_user_s;
    merged.harness.cpu_system_s += s->harness.cpu_system_s;
    merged.harness.peak_rss_kib = std::max(merged.harness.peak_rss_kib, s->harness.peak_rss_kib);
    const std::vector<int> held = shards_held(*s);
    for (std::size_t i = 0; i < held.size(); ++i) {
      // A merged record keeps each shard's usage; a shard's own record is its usage.
      usage_by_shard[held[i]] =
          s->merged_shards.empty() || i >= s->shards_usage.size() ? s->harness : s->shards_usage[i];
    }
  }
  merged.interrupted_reason = fmt::format("{}", fmt::join(reasons, ", "));
  for (const auto& [index, usage] : usage_by_shard) {
    merged.merged_shards.push_back(index);
    merged.shards_usage.push_back(usage);
  }
  merged.shard_index = merged.merged_shards.front();
  return merged;
}

std::string load_progress_line(const LoadProgress& p, std::size_t width) {
  std::string line =
      fmt::format("load {:.1f}/{:.0f} s | {} exchanges | {:.0f}/s | {} in flight | {} errors | {} findings",
                  p.elapsed_s, p.duration_s, p.exchanges, p.exchanges_per_s, p.in_flight, p.errors, p.findings);
  if (p.stopping) line += " | stopping";
  if (line.size() > width) line.resize(width);
  return line;
}

}  // namespace mdmc::load
