#include "harness/load/load_report.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mdmc::load {
namespace {

namespace chr = std::chrono;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

chr::nanoseconds seconds(double v) { return chr::nanoseconds(static_cast<std::int64_t>(v * 1e9)); }

// Shard `index` of a 3-shard fleet of 30 devices with 2 users each: each shard's exchanges
// differ, so that sums are checked and not a copy.
LoadReport shard(int index, int count = 3) {
  LoadReport r;
  r.target = "reference";
  r.target_url = "https://127.0.0.1:8443/checkin";
  r.started_utc = "2026-12-06T23:30:0" + std::to_string(index) + "Z";
  r.seed = 18446744073709551557ull;  // beyond 2^53: kept as a string
  r.shard_index = index;
  r.shard_count = count;
  r.devices = 30;
  r.users_per_device = 2;
  r.channels = 30;
  r.duration_s = 60;
  r.elapsed_s = 60.25 + index;
  r.rate = 100;
  r.commands_per_minute = 120;
  for (int i = 0; i < 100 * (index + 1); ++i) {
    r.figures.record({"Idle", 200}, chr::microseconds(500 + 37 * i), seconds(i * 0.5));
    r.figures.record({"Acknowledged", 200}, chr::microseconds(800 + 11 * i), seconds(i * 0.5));
  }
  r.figures.record({"Idle", 500}, chr::milliseconds(12), seconds(3));
  r.figures.record_error("5xx", seconds(3));
  r.commands = CommandCounts{10u + index, 1, 9u + index, 8, 1, 0, 1};
  Finding f;
  f.invariant = "delivered-twice";
  f.channel = "UDID-" + std::to_string(index) + ":user-1";
  f.command_uuid = "C-" + std::to_string(index);
  f.detail = "the command was delivered twice";
  f.at_s = 12.5;
  f.exchanges = {ExchangeRecord{12.0, f.channel, "Idle", 200, "<plist>Idle</plist>", "<plist>command</plist>"},
                 ExchangeRecord{12.5, f.channel, "Idle", 200, "", std::string("\xff\xfe binary", 9)}};
  r.findings = {f};
  r.findings_total = 1;
  r.harness = Usage{1.5 + index, 0.25, 20'000u + static_cast<std::uint64_t>(index)};
  return r;
}

TEST(LoadReport, JsonRoundTripKeepsEverything) {
  LoadReport r = shard(1);
  r.interrupted = true;
  r.interrupted_reason = "SIGINT";
  const std::string text = to_json(r);
  const Json j = Json::parse(text);
  EXPECT_EQ(j["kind"], "mdmconform-load");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["seed"], "18446744073709551557");
  EXPECT_EQ(j["findings"][0]["exchanges"][1]["response"]["base64"], "//4gYmluYXJ5");
  auto back = load_report_from_json(text);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->seed, r.seed);
  EXPECT_EQ(back->shard_index, 1);
  EXPECT_EQ(back->started_utc, r.started_utc);
  EXPECT_TRUE(back->interrupted);
  EXPECT_EQ(back->interrupted_reason, "SIGINT");
  EXPECT_EQ(back->commands, r.commands);
  EXPECT_TRUE(back->figures == r.figures);
  ASSERT_EQ(back->findings.size(), 1u);
  EXPECT_EQ(back->findings[0].exchanges[1].response_excerpt, std::string("\xff\xfe binary", 9));
  EXPECT_EQ(to_json(*back), text);
}

TEST(LoadReport, ARecordWithTimesThatAreNotNumbersStillReadsBack) {
  LoadReport r = shard(0);
  r.elapsed_s = std::nan("");
  r.duration_s = -5;
  r.harness.cpu_user_s = std::numeric_limits<double>::infinity();
  auto back = load_report_from_json(to_json(r));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->elapsed_s, 0);
  EXPECT_EQ(back->duration_s, 0);
  EXPECT_EQ(back->harness.cpu_user_s, 0);
}

TEST(LoadReport, WritesFindingsExchangesAndExcerptsWithinTheirCaps) {
  LoadReport r = shard(0);
  Finding f = r.findings[0];
  f.exchanges.resize(20, f.exchanges[0]);
  f.exchanges[0].request_excerpt = std::string(10'000, 'a') + "\xc3\xa9";
  f.exchanges[1].request_excerpt = std::string(kMaxExcerptBytes - 1, 'a') + "\xc3\xa9";  // cut inside the é
  r.findings.assign(kMaxFindings + 5, f);
  r.findings_total = kMaxFindings + 500;
  auto back = load_report_from_json(to_json(r));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->findings.size(), kMaxFindings);
  EXPECT_EQ(back->findings_total, kMaxFindings + 500);
  EXPECT_EQ(back->findings[0].exchanges.size(), kMaxFindingExchanges);
  EXPECT_EQ(back->findings[0].exchanges[0].request_excerpt, std::string(kMaxExcerptBytes, 'a'));
  // Cut on the code point boundary, so the excerpt stays text.
  EXPECT_EQ(back->findings[0].exchanges[1].request_excerpt, std::string(kMaxExcerptBytes - 1, 'a'));
}

// The record's text with `edit` applied, read back: the error, or "" when it read.
template <typename Edit>
std::string read_edited(Edit edit) {
  Json j = Json::parse(to_json(shard(0)));
  edit(j);
  auto back = load_report_from_json(j.dump());
  return back.ok() ? std::string() : back.message();
}

TEST(LoadReport, HostileJsonIsAnErrorNamingWhereNotACrash) {
  EXPECT_EQ(read_edited([](Json&) {}), "");
  EXPECT_THAT(read_edited([](Json& j) { j["kind"] = "mdmconform-fuzz"; }), HasSubstr("not a load record"));
  EXPECT_THAT(read_edited([](Json& j) { j["version"] = 2; }), HasSubstr("unsupported version 2"));
  EXPECT_THAT(read_edited([](Json& j) { j["seed"] = 7; }), HasSubstr("seed: expected a string"));
  EXPECT_THAT(read_edited([](Json& j) { j["seed"] = "99999999999999999999"; }), HasSubstr("fits 64 bits"));
  EXPECT_THAT(read_edited([](Json& j) { j["fleet"]["devices"] = "30"; }), HasSubstr("fleet.devices"));
  EXPECT_THAT(read_edited([](Json& j) { j["elapsed_s"] = -1; }), HasSubstr("elapsed_s: out of range"));
  EXPECT_THAT(read_edited([](Json& j) { j["interrupted"] = 1; }), HasSubstr("interrupted: expected true or false"));
  EXPECT_THAT(read_edited([](Json& j) { j["shard"]["index"] = 3; }), HasSubstr("shard.index: out of range"));
  EXPECT_THAT(read_edited([](Json& j) { j["shard"]["merged"] = Json::array({0, 0}); }), HasSubstr("shard.merged[1]"));
  EXPECT_THAT(read_edited([](Json& j) { j["commands"]["queued"] = -3; }), HasSubstr("commands.queued"));
  EXPECT_THAT(read_edited([](Json& j) {
                j["findings"][0]["exchanges"][0]["response"] = Json{{"base64", "@@"}};
              }),
              HasSubstr("not valid base64"));
  EXPECT_THAT(read_edited([](Json& j) { j["findings"][0]["detail"] = std::string(5000, 'x'); }),
              HasSubstr("findings[0].detail: longer than"));
  EXPECT_THAT(read_edited([](Json& j) { j["findings_total"] = 0; }), HasSubstr("fewer than the findings"));
  EXPECT_THAT(read_edited([](Json& j) { j["shards_usage"].push_back(j["usage"]); }), HasSubstr("shards_usage"));
  EXPECT_THAT(read_edited([](Json& j) { j["figures"]["exchanges"] = 1; }), HasSubstr("figures.exchanges"));
  EXPECT_THAT(read_edited([](Json& j) { j.erase("figures"); }), HasSubstr("figures: missing"));
  // Huge arrays: refused by count, before anything is kept of them.
  EXPECT_THAT(read_edited([](Json& j) {
                Json many = Json::array();
                for (std::size_t i = 0; i <= kMaxFindings; ++i) many.push_back(j["findings"][0]);
                j["findings"] = many;
                j["findings_total"] = kMaxFindings + 1;
              }),
              HasSubstr("more than 1000 findings"));
  EXPECT_THAT(read_edited([](Json& j) {
                Json& exchanges = j["findings"][0]["exchanges"];
                while (exchanges.size() <= kMaxFindingExchanges) exchanges.push_back(exchanges[0]);
              }),
              HasSubstr("more than 8 exchanges"));
  EXPECT_THAT(read_edited([](Json& j) { j["findings"][0]["exchanges"][0]["request"] = std::string(5000, 'a'); }),
              HasSubstr("an excerpt longer than 2048 bytes"));
  EXPECT_THAT(read_edited([](Json& j) { j["figures"]["timeline"] = Json::array(); }), HasSubstr("figures.timeline"));
}

TEST(LoadReport, MalformedTextIsAnErrorWithinBounds) {
  const auto started = chr::steady_clock::now();
  // Deep nesting: refused by a scan before parsing.
  EXPECT_THAT(load_report_from_json(std::string(1'000'000, '[') + std::string(1'000'000, ']')).message(),
              HasSubstr("nested deeper than 32"));
  EXPECT_THAT(load_report_from_json(std::string(100'000, '{')).message(), HasSubstr("nested deeper"));
  // Brackets inside strings are not nesting.
  const std::string deep_in_string = "{\"kind\": \"" + std::string(1000, '[') + "\"}";
  EXPECT_THAT(load_report_from_json(deep_in_string).message(), HasSubstr("not a load record"));
  // Not UTF-8, not JSON, truncated, the wrong shape.
  std::string text = to_json(shard(0));
  std::string not_utf8 = text;
  not_utf8.replace(not_utf8.find("reference"), 3, "\xff\xfe\xfd");
  EXPECT_EQ(load_report_from_json(not_utf8).message(), "not valid JSON");
  EXPECT_EQ(load_report_from_json(text.substr(0, text.size() / 2)).message(), "not valid JSON");
  EXPECT_EQ(load_report_from_json("").message(), "not valid JSON");
  EXPECT_THAT(load_report_from_json("[1, 2]").message(), HasSubstr("expected an object"));
  // A number beyond a double: refused by the parser or as out of range, never kept as infinity.
  std::string huge = text;
  const auto elapsed = huge.find("\"elapsed_s\": ") + 13;
  huge.replace(elapsed, huge.find(',', elapsed) - elapsed, "1e999");
  EXPECT_THAT(load_report_from_json(huge).message(),
              ::testing::AnyOf(HasSubstr("not valid JSON"), HasSubstr("elapsed_s: out of range")));
  EXPECT_THAT(load_report_from_json("{\"kind\": \"mdmconform-load\", \"version\": 1.5}").message(),
              HasSubstr("version: expected an integer"));
  EXPECT_LT(chr::steady_clock::now() - started, chr::seconds(10));
}

TEST(LoadReport, ThreeShardsMergeToTheSums) {
  const std::vector<LoadReport> shards = {shard(2), shard(0), shard(1)};  // in any order
  auto merged = merge(shards);
  ASSERT_TRUE(merged.ok()) << merged.message();
  const LoadReport& m = *merged;
  EXPECT_EQ(m.merged_shards, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(m.shard_count, 3);
  EXPECT_EQ(m.channels, 90u);
  EXPECT_EQ(m.started_utc, "2026-12-06T23:30:00Z");
  EXPECT_DOUBLE_EQ(m.elapsed_s, 62.25);
  EXPECT_FALSE(m.interrupted);
  EXPECT_EQ(m.commands, (CommandCounts{33, 3, 30, 24, 3, 0, 3}));
  EXPECT_EQ(m.figures.exchanges(), 2u * (100 + 200 + 300) + 3);
  EXPECT_EQ(m.figures.errors_by_kind().at("5xx"), 3u);
  // Histograms added bin by bin: the merged figures are those of one Figures that recorded all.
  Figures all;
  for (const auto& s : shards) all.merge(s.figures);
  EXPECT_TRUE(m.figures == all);
  EXPECT_EQ(m.figures.latency().at(ExchangeKey{"Idle", 500}).count, 3u);
  // Findings in shard order, totals summed.
  ASSERT_EQ(m.findings.size(), 3u);
  EXPECT_EQ(m.findings[0].command_uuid, "C-0");
  EXPECT_EQ(m.findings[2].command_uuid, "C-2");
  EXPECT_EQ(m.findings_total, 3u);
  // CPU summed, peak RSS the largest process's, each shard's kept.
  EXPECT_DOUBLE_EQ(m.harness.cpu_user_s, 1.5 + 2.5 + 3.5);
  EXPECT_EQ(m.harness.peak_rss_kib, 20'002u);
  ASSERT_EQ(m.shards_usage.size(), 3u);
  EXPECT_DOUBLE_EQ(m.shards_usage[1].cpu_user_s, 2.5);
  // The merged record survives its JSON, and merges again with nothing new.
  auto back = load_report_from_json(to_json(m));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(to_json(*back), to_json(m));
}

TEST(LoadReport, APartialMergeMergesWithTheRestAndAnInterruptedShardMarksTheWhole) {
  LoadReport stopped = shard(2);
  stopped.interrupted = true;
  stopped.interrupted_reason = "SIGINT";
  auto first_two = merge({shard(0), shard(1)});
  ASSERT_TRUE(first_two.ok()) << first_two.message();
  auto all = merge({stopped, *first_two});
  ASSERT_TRUE(all.ok()) << all.message();
  auto at_once = merge({shard(0), shard(1), stopped});
  ASSERT_TRUE(at_once.ok());
  EXPECT_EQ(to_json(*all), to_json(*at_once));
  EXPECT_TRUE(all->interrupted);
  EXPECT_EQ(all->interrupted_reason, "SIGINT");
  EXPECT_EQ(all->shards_usage.size(), 3u);
}

TEST(LoadReport, RecordsOfDifferentFleetsOrTheSameShardTwiceAreRefusedWithAReason) {
  LoadReport other_seed = shard(1);
  other_seed.seed = 7;
  EXPECT_THAT(merge({shard(0), other_seed}).message(),
              HasSubstr("record 2 (shard 1/3) is not a shard of the same fleet as record 1: its seed is 7"));
  LoadReport other_fleet = shard(1);
  other_fleet.users_per_device = 3;
  EXPECT_THAT(merge({shard(0), other_fleet}).message(), HasSubstr("its fleet is 30 devices x 3 users"));
  EXPECT_THAT(merge({shard(0), shard(1, 4)}).message(), HasSubstr("its shard count is 4"));
  LoadReport other_target = shard(1);
  other_target.target = "nanomdm";
  EXPECT_THAT(merge({shard(0), other_target}).message(), HasSubstr("its target is nanomdm"));
  LoadReport other_rate = shard(1);
  other_rate.rate = 5;
  EXPECT_THAT(merge({shard(0), other_rate}).message(), HasSubstr("its --rate is 5"));
  EXPECT_THAT(merge({shard(0), shard(1), shard(0)}).message(),
              HasSubstr("shard 0/3 is in record 1 and in record 3: a shard is merged once"));
  auto first_two = merge({shard(0), shard(1)});
  ASSERT_TRUE(first_two.ok());
  EXPECT_THAT(merge({*first_two, shard(1)}).message(), HasSubstr("shard 1/3 is in record 1 and in record 2"));
  EXPECT_THAT(merge({}).message(), HasSubstr("no shard records"));
}

TEST(LoadReport, UsageOfThisProcessIsMeasured) {
  const Usage u = Usage::of_this_process();
  EXPECT_GT(u.peak_rss_kib, 1000u);  // a test binary holds more than 1 MiB
  EXPECT_GE(u.cpu_user_s + u.cpu_system_s, 0);
}

TEST(LoadProgressLine, SaysTheCountersInOneLineThatFits) {
  LoadProgress p;
  p.elapsed_s = 12.04;
  p.duration_s = 60;
  p.exchanges = 34512;
  p.exchanges_per_s = 2880.4;
  p.in_flight = 41;
  p.errors = 2;
  p.findings = 1;
  EXPECT_EQ(load_progress_line(p, 200),
            "load 12.0/60 s | 34512 exchanges | 2880/s | 41 in flight | 2 errors | 1 findings");
  p.stopping = true;
  EXPECT_THAT(load_progress_line(p, 200), HasSubstr("| stopping"));
  EXPECT_EQ(load_progress_line(p, 40).size(), 40u);
  EXPECT_EQ(load_progress_line(p, 200).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace mdmc::load
