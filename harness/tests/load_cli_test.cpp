// `mdmconform load` end to end: the binary against `mdmconform serve` on loopback. Exit codes,
// the report folder, a signal mid-flight, and three shard processes merged by `report --merge`
// into the counts of one process running the whole fleet (docs/load.md).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "harness/load/load_report.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kManagedUser = "7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10";

struct Server {
  testing::Process process;
  std::string base;
};

std::optional<Server> serve(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{MDMC_BINARY, "serve", "--port", "0", "--manage-network-user", kManagedUser};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto process = testing::Process::spawn(argv);
  if (!process) return std::nullopt;
  if (!process->wait_for_output("identity mode:", 20s)) return std::nullopt;
  std::smatch m;
  const auto output = process->output();
  if (!std::regex_search(output, m, std::regex("on (http://127\\.0\\.0\\.1:[0-9]+) "))) return std::nullopt;
  return Server{std::move(*process), m[1]};
}

class LoadCli : public testing::FolderTest {
 protected:
  LoadCli() : FolderTest("mdmc_load_cli_test") {}
  fs::path profile_for(const Server& server, const std::string& name = "target.yaml") {
    auto path = dir_ / name;
    std::ofstream(path) << "schema_version: 1\nname: reference-load\nurls:\n  check_in: " << server.base
                        << "/checkin\n  server: " << server.base
                        << "/mdm\ntopic: com.apple.mgmt.External.mdmconform\nidentity:\n  mode: none\n"
                        << "admin:\n  enqueue:\n    method: PUT\n    url: " << server.base
                        << "/v1/enqueue/{channel}?nopush=1\n    expect_status: [200]\n"
                        << "policy:\n  network_users:\n    managed: [" << kManagedUser << "]\n"
                        << "limits:\n  connect_timeout_ms: 2000\n  header_timeout_ms: 5000\n  body_timeout_ms: 5000\n";
    return path;
  }
  testing::Ran load(const std::string& args) {
    return testing::run_shell("exec " + std::string(MDMC_BINARY) + " load " + args, 120s);
  }
  load::LoadReport read_report(const fs::path& file) {
    auto report = load::load_report_from_json(testing::read_text(file));
    EXPECT_TRUE(report) << file << ": " << report.message();
    return report ? *report : load::LoadReport{};
  }
};

TEST_F(LoadCli, ACorrectServerExitsZeroAndEveryViewIsWritten) {
  auto server = serve();
  ASSERT_TRUE(server);
  const auto out = dir_ / "run";
  auto ran = load("--target " + profile_for(*server).string() + " --devices 4 --users-per-device 2 --duration 2 " +
                  "--think 0.05 --commands-per-minute 600 --threads 1 --out " + out.string());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  for (const char* file : {"report.json", "report.html", "summary.md"}) EXPECT_TRUE(fs::exists(out / file)) << file;
  auto report = read_report(out / "report.json");
  EXPECT_EQ(report.findings_total, 0u);
  EXPECT_EQ(report.channels, 12u);
  EXPECT_GT(report.commands.queued, 0u);
  EXPECT_FALSE(report.interrupted);
  auto md = testing::run_shell(
      "exec " + std::string(MDMC_BINARY) + " report " + (out / "report.json").string() + " --format md", 60s);
  EXPECT_EQ(md.exit_code, 0) << md.output;
}

TEST_F(LoadCli, AServerThatRedeliversAnAcknowledgedCommandFailsNamingTheInvariant) {
  auto server = serve({"--fault", "acked-redelivered"});
  ASSERT_TRUE(server);
  auto ran = load("--target " + profile_for(*server).string() + " --devices 4 --users-per-device 1 --duration 2 " +
                  "--think 0.05 --commands-per-minute 1200 --out " + (dir_ / "run").string());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_NE(ran.output.find("delivered-twice"), std::string::npos) << ran.output;
}

TEST_F(LoadCli, ASignalMidFlightWritesTheReportMarkedInterrupted) {
  auto server = serve();
  ASSERT_TRUE(server);
  const auto out = dir_ / "run";
  auto running = testing::Process::spawn({MDMC_BINARY, "load", "--target", profile_for(*server).string(), "--devices",
                                          "4", "--duration", "120", "--think", "0.05", "--out", out.string()});
  ASSERT_TRUE(running);
  ASSERT_TRUE(running->wait_for_output("load: ", 20s)) << running->output();
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(running->signal(SIGINT));
  auto ended = running->wait_or_kill(20s);
  EXPECT_EQ(ended.exit_code, 1) << running->output();
  auto report = read_report(out / "report.json");
  EXPECT_TRUE(report.interrupted);
  EXPECT_GT(report.figures.exchanges(), 0u);
  EXPECT_EQ(report.findings_total, 0u) << "a stop loses nothing";
}

// A fixed amount of work (docs/load.md): counts that depend on the server alone, so three shard
// processes against one server add up to one process running the whole fleet against another.
TEST_F(LoadCli, ThreeShardProcessesMergeToTheCountsOfOneProcess) {
  const std::string work =
      " --devices 9 --users-per-device 2 --series-per-channel 3 --commands-per-channel 2 "
      "--commands-per-minute 0 --think 0.005 --duration 60 --seed 7 --threads 1";
  auto whole_server = serve();
  ASSERT_TRUE(whole_server);
  auto whole = load("--target " + profile_for(*whole_server, "whole.yaml").string() + work + " --out " +
                    (dir_ / "whole").string());
  ASSERT_EQ(whole.exit_code, 0) << whole.output;

  auto shard_server = serve();
  ASSERT_TRUE(shard_server);
  const auto profile = profile_for(*shard_server, "shards.yaml");
  std::vector<testing::Process> shards;
  std::string merge_args;
  for (int i = 0; i < 3; ++i) {
    const auto out = dir_ / ("shard" + std::to_string(i));
    std::vector<std::string> argv{
        MDMC_BINARY, "load", "--target", profile.string(), "--shard", std::to_string(i) + "/3", "--out", out.string()};
    std::istringstream words(work);
    for (std::string w; words >> w;) argv.push_back(w);
    auto spawned = testing::Process::spawn(argv);
    ASSERT_TRUE(spawned);
    shards.push_back(std::move(*spawned));
    merge_args += " " + (out / "report.json").string();
  }
  for (auto& shard : shards) {
    auto ended = shard.wait_or_kill(60s);
    EXPECT_EQ(ended.exit_code, 0) << shard.output() << shard.error_output();
  }
  const auto merged_dir = dir_ / "merged";
  auto merged_run = testing::run_shell(
      "exec " + std::string(MDMC_BINARY) + " report --merge" + merge_args + " --out " + merged_dir.string(), 60s);
  ASSERT_EQ(merged_run.exit_code, 0) << merged_run.output;

  const auto a = read_report(dir_ / "whole" / "report.json");
  const auto b = read_report(merged_dir / "report.json");
  EXPECT_EQ(b.shard_count, 3);
  EXPECT_EQ(b.channels, a.channels);
  EXPECT_EQ(b.figures.exchanges(), a.figures.exchanges());
  EXPECT_EQ(b.figures.errors(), a.figures.errors());
  EXPECT_EQ(b.commands.queued, a.commands.queued);
  EXPECT_EQ(b.commands.acknowledged, a.commands.acknowledged);
  EXPECT_EQ(b.commands.not_now, a.commands.not_now);
  EXPECT_EQ(b.commands.error, a.commands.error);
  const auto la = a.figures.latency();
  const auto lb = b.figures.latency();
  ASSERT_EQ(la.size(), lb.size());
  for (const auto& [key, q] : la) {
    ASSERT_TRUE(lb.count(key)) << key.message << " " << key.status;
    EXPECT_EQ(lb.at(key).count, q.count) << key.message << " " << key.status;
  }
}

TEST_F(LoadCli, ARemoteTargetOrCommandsWithoutAnAdminAdapterAreUsageErrors) {
  auto remote = dir_ / "remote.yaml";
  std::ofstream(remote) << "schema_version: 1\nname: remote\nurls:\n  server: http://192.0.2.1:9/mdm\n"
                        << "topic: t\nidentity:\n  mode: none\n";
  auto ran = load("--target " + remote.string() + " --commands-per-minute 0 --duration 1");
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("--allow-remote"), std::string::npos) << ran.output;

  auto server = serve();
  ASSERT_TRUE(server);
  auto bare = dir_ / "bare.yaml";
  std::ofstream(bare) << "schema_version: 1\nname: bare\nurls:\n  server: " << server->base
                      << "/mdm\ntopic: t\nidentity:\n  mode: none\n";
  auto no_admin = load("--target " + bare.string() + " --duration 1");
  EXPECT_EQ(no_admin.exit_code, 2) << no_admin.output;
  EXPECT_NE(no_admin.output.find("admin"), std::string::npos) << no_admin.output;
}

}  // namespace
}  // namespace mdmc
