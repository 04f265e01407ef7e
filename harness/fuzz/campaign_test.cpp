#include "harness/fuzz/campaign.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "harness/fuzz/detail/libfuzzer.hpp"
#include "harness/pki/pki.hpp"

namespace mdmc::fuzz {
namespace {

using Json = nlohmann::ordered_json;

FuzzRun sample_run() {
  FuzzRun run;
  run.harness_version = "0.1.0";
  run.target_name = "reference";
  run.target_url = "https://127.0.0.1:4443/checkin";
  run.target_file = "/tmp/run/fuzz/target/profile.yaml";
  run.builtin_fault = "none";
  run.seeded_bug = "token_update_500";
  run.started_at = "2026-11-29T08:00:00Z";
  run.elapsed_s = 12.34;
  run.max_time_s = 60;
  run.jobs = 1;
  run.mutator = "plist";
  run.feedback = true;
  run.interrupted = false;
  run.fuzzer_exit = 0;
  run.executions = 12345;
  run.exec_per_sec = 1000.4;
  run.corpus_size = 57;
  run.corpus_files = 60;
  run.corpus_dir = "/tmp/run/fuzz/corpus";
  run.features = 900;
  run.timeline = {{1.0, 4096u, 1365.0, 57u, 900u}, {2.5, 8192u, 1400.5, 60u, 910u}};
  run.findings = {{"findings/finding-abc.json", "/tmp/run/fuzz/findings/finding-abc.json", "status-5xx", "check_in",
                   "500 to a TokenUpdate (check-in)", 3.2}};
  return run;
}

// summary.json as `mdmconform fuzz` wrote it before FuzzRun existed: built key by key.
std::string summary_as_written_before(const FuzzRun& r) {
  Json summary;
  summary["kind"] = "mdmconform-fuzz";
  summary["harness_version"] = r.harness_version;
  summary["target_name"] = r.target_name;
  summary["target_url"] = r.target_url;
  summary["target_file"] = r.target_file;
  summary["builtin_fault"] = *r.builtin_fault;
  summary["seeded_bug"] = *r.seeded_bug;
  summary["started_at"] = r.started_at;
  summary["elapsed_s"] = *r.elapsed_s;
  summary["max_time_s"] = *r.max_time_s;
  summary["jobs"] = *r.jobs;
  summary["mutator"] = r.mutator;
  summary["feedback"] = *r.feedback;
  summary["interrupted"] = *r.interrupted;
  summary["fuzzer_exit"] = *r.fuzzer_exit;
  summary["executions"] = *r.executions;
  summary["exec_per_sec"] = *r.exec_per_sec;
  summary["corpus_size"] = *r.corpus_size;
  summary["corpus_files"] = static_cast<std::size_t>(*r.corpus_files);
  summary["corpus_dir"] = r.corpus_dir;
  summary["features"] = *r.features;
  Json timeline = Json::array();
  for (const auto& s : r.timeline) {
    timeline.push_back({{"t_s", *s.t_s},
                        {"executions", *s.executions},
                        {"exec_per_sec", *s.exec_per_sec},
                        {"corpus_size", *s.corpus_size},
                        {"features", *s.features}});
  }
  summary["timeline"] = timeline;
  Json found = Json::array();
  for (const auto& f : r.findings) {
    found.push_back({{"file", f.file},
                     {"path", f.path},
                     {"oracle", f.oracle},
                     {"endpoint", f.endpoint},
                     {"summary", f.summary},
                     {"t_s", *f.t_s}});
  }
  summary["findings"] = found;
  return summary.dump(2) + "\n";
}

TEST(FuzzRun, WritesSummaryJsonByteForByteAsBefore) {
  const FuzzRun run = sample_run();
  EXPECT_EQ(fuzz_run_to_json_text(run), summary_as_written_before(run));
}

TEST(FuzzRun, ReadsBackWhatItWrites) {
  const FuzzRun run = sample_run();
  const std::string text = fuzz_run_to_json_text(run);
  const FuzzRun back = fuzz_run_from_json(Json::parse(text));
  EXPECT_EQ(fuzz_run_to_json_text(back), text);
}

// What deduplication, minimisation, --known and the baseline add to the record.
TEST(FuzzRun, ReadsBackFindingsAsTriagedAndWhatWasExcluded) {
  FuzzRun run = sample_run();
  auto& f = run.findings[0];
  f.key = "status-5xx|check_in|TokenUpdate|UDID:type|500:empty";
  f.input_phrase = "TokenUpdate whose UDID is an integer (expected string)";
  f.answer_shape = "500:empty";
  f.minimised = true;
  f.minimise_note = "minimised from 600 to 200 bytes in 12 tries on fresh devices";
  f.hits = 41;
  f.known = true;
  f.input_text = "<plist/>";
  f.original_text = "<plist>...</plist>";
  f.answer_text = "HTTP 500 Internal Server Error\n(empty body)";
  run.exclusions = {{"SYN-EMPTY-END", "the liveness probe's Acknowledged got HTTP 204"}};
  run.target_down = "a fresh device could not enroll";
  run.max_findings = 5;
  run.stopped_at_max_findings = false;
  run.known_file = "/tmp/earlier/summary.json";
  run.devices_broken = 2;
  const std::string text = fuzz_run_to_json_text(run);
  const FuzzRun back = fuzz_run_from_json(Json::parse(text));
  EXPECT_EQ(fuzz_run_to_json_text(back), text);
  EXPECT_EQ(back.findings[0].hits, 41u);
  EXPECT_EQ(back.exclusions.size(), 1u);
  EXPECT_EQ(new_finding_count(back), 0u);
}

TEST(FuzzRun, KnownKeysComeFromAPreviousSummary) {
  FuzzRun run = sample_run();
  run.findings[0].key = "status-5xx|check_in|TokenUpdate|UDID:type|500:empty";
  auto path = std::filesystem::path(::testing::TempDir()) / "known-summary.json";
  {
    std::ofstream out(path);
    out << fuzz_run_to_json_text(run);
  }
  auto keys = read_known_keys(path);
  ASSERT_TRUE(keys) << keys.message();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0], run.findings[0].key);
  auto other = std::filesystem::path(::testing::TempDir()) / "not-a-summary.json";
  std::ofstream(other) << "{\"kind\": \"mdmconform-run\"}";
  EXPECT_FALSE(read_known_keys(other));
}

TEST(FuzzRun, LeavesWhatIsMissingOrMistypedAbsent) {
  const FuzzRun run = fuzz_run_from_json(Json::parse(
      R"({"executions": "lots", "jobs": 2.5, "corpus_size": 12.0, "timeline": [5, {"t_s": 1}], "findings": [1, {"oracle": "x"}]})"));
  EXPECT_FALSE(run.executions);
  EXPECT_FALSE(run.jobs);
  EXPECT_EQ(run.corpus_size, 12u);
  ASSERT_EQ(run.timeline.size(), 2u);
  EXPECT_FALSE(run.timeline[0].t_s);
  EXPECT_EQ(run.timeline[1].t_s, 1.0);
  ASSERT_EQ(run.findings.size(), 2u);
  EXPECT_EQ(run.findings[1].oracle, "x");
  EXPECT_TRUE(fuzz_run_from_json(Json::array()).findings.empty());
}

// Each job is a device of its own: a pool of one identity cannot serve two, and the campaign
// says so before it starts anything (with one job it goes on, to find the target unreachable).
TEST(Campaign, RefusesMoreJobsThanThePoolHasIdentities) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("mdmc_campaign_jobs_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "pool");
  auto ca = pki::create_test_ca("jobs CA");
  ASSERT_TRUE(ca);
  auto device = pki::issue_device_identity(*ca, "a", pki::KeyType::ec_p256);
  ASSERT_TRUE(device);
  ASSERT_TRUE(pki::write_identity(*device, dir / "pool/a.crt", dir / "pool/a.key"));
  std::ofstream(dir / "target.yaml") << "schema_version: 1\nname: t\nurls:\n  server: http://127.0.0.1:1/mdm\n"
                                        "identity:\n  mode: mtls\n  pool:\n    dir: pool\n";
  auto campaign_with = [&](int jobs) {
    CampaignOptions o;
    o.fuzzer = "/nonexistent/target_fuzzer";
    o.profile_file = dir / "target.yaml";
    o.fuzz_dir = dir / ("fuzz-" + std::to_string(jobs));
    o.corpus_dir = o.fuzz_dir / "corpus";
    o.jobs = jobs;
    return Campaign(o).run();
  };
  auto two = campaign_with(2);
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code, make_error_code(CampaignError::configuration));
  EXPECT_NE(two.message().find("--jobs 2 needs 2 device identities"), std::string::npos) << two.message();
  auto one = campaign_with(1);
  ASSERT_FALSE(one);
  EXPECT_EQ(one.error().code, make_error_code(CampaignError::unreachable)) << one.message();
  fs::remove_all(dir);
}

TEST(LibFuzzerLog, ReadsStatusLinesInBothModes) {
  auto line = detail::parse_status("#4096\tpulse  cov: 310 ft: 900 corp: 57/6Kb lim: 4096 exec/s: 1365 rss: 60Mb");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->executions, 4096u);
  EXPECT_EQ(line->exec_per_sec, 1365);
  EXPECT_EQ(line->corpus, 57u);
  EXPECT_EQ(line->features, 900u);
  auto fork = detail::parse_status("#8000: cov: 310 ft: 900 corp: 57 exec/s 1365 oom/timeout/crash: 0/0/0 time: 6s");
  ASSERT_TRUE(fork);
  EXPECT_EQ(fork->executions, 8000u);
  EXPECT_EQ(fork->exec_per_sec, 1365);
  EXPECT_FALSE(detail::parse_status("INFO: Seed: 1"));
}

}  // namespace
}  // namespace mdmc::fuzz
