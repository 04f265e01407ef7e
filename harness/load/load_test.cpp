// The load engine against the reference server in-process, on loopback: a correct server meets
// every invariant; each fault that breaks delivery is caught as the invariant it violates; shards
// of a fleet add up to the single run; a run stopped early says so and reports nothing lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "harness/load/engine.hpp"
#include "harness/load/load_report.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/testing/test_certs.hpp"

namespace mdmc::load {
namespace {

using namespace std::chrono_literals;

constexpr const char* kManagedUser = "7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10";

struct Served {
  std::unique_ptr<server::ReferenceServer> server;
  target::TargetProfile profile;
};

// With `pki`: HTTPS, and devices proving who they are with a TLS client certificate and an
// Mdm-Signature (identity mode both), each issued its own by the test CA.
Served serve(server::Fault fault = server::Fault::none, const testing::TestPki* pki = nullptr) {
  server::Config config;
  config.fault = fault;
  config.managed_network_users.insert(kManagedUser);
  std::optional<net::ServerTls> tls;
  if (pki) {
    config.identity_mode = protocol::IdentityMode::both;
    config.client_ca_pem = pki->ca.cert_pem;
    tls = net::ServerTls{pki->server.cert_pem, pki->server.key_pem, pki->ca.cert_pem, false};
  }
  Served out;
  out.server = std::make_unique<server::ReferenceServer>(config, tls);
  auto port = out.server->listen("127.0.0.1", 0);
  EXPECT_TRUE(port) << port.message();
  out.server->start();
  const std::string base = std::string(pki ? "https" : "http") + "://127.0.0.1:" + std::to_string(port ? *port : 0);
  if (pki) {
    out.profile.tls.ca_pem = pki->ca.cert_pem;
    out.profile.identity.mode = protocol::IdentityMode::both;
    out.profile.identity.issuer = pki::Identity{pki->ca.cert_pem, pki->ca.key_pem, ""};
  }
  auto& p = out.profile;
  p.name = "reference-load-test";
  p.check_in_url = base + std::string(server::kCheckInPath);
  p.server_url = base + std::string(server::kServerPath);
  p.topic = config.topic;
  p.managed_network_users = {kManagedUser};
  target::AdminEndpoint admin;
  admin.url = base + std::string(server::kEnqueuePrefix) + "{channel}?nopush=1";
  p.enqueue = admin;
  // Bounded: a test run that stalls fails on these, not on ctest's timeout.
  p.limits.connect_timeout = 2s;
  p.limits.header_timeout = 5s;
  p.limits.body_timeout = 5s;
  return out;
}

LoadOptions small_fleet() {
  LoadOptions o;
  o.devices = 6;
  o.users_per_device = 2;  // a local user and a managed network user
  o.duration = 1500ms;
  o.think = 20ms;
  o.ramp = 100ms;
  o.drain = 3s;
  o.commands_per_minute = 1200;
  o.threads = 2;
  o.max_in_flight = 32;
  o.not_now_ratio = 0.2;
  o.error_ratio = 0.1;
  return o;
}

std::set<std::string> invariants(const LoadReport& report) {
  std::set<std::string> out;
  for (const auto& f : report.findings) out.insert(f.invariant);
  return out;
}

std::string findings_text(const LoadReport& report) {
  std::string out;
  for (const auto& f : report.findings)
    out += f.invariant + " " + f.channel + " " + f.command_uuid + ": " + f.detail + "\n";
  for (const auto& [kind, n] : report.figures.errors_by_kind())
    out += "error " + kind + " x" + std::to_string(n) + "\n";
  return out;
}

TEST(LoadRun, ACorrectServerMeetsEveryInvariant) {
  auto served = serve();
  auto report = run_load(served.profile, small_fleet());
  ASSERT_TRUE(report) << report.message();
  EXPECT_EQ(report->findings_total, 0u) << findings_text(*report);
  EXPECT_EQ(report->figures.errors(), 0u) << findings_text(*report);
  EXPECT_FALSE(report->interrupted);
  EXPECT_EQ(report->channels, 6u * 3u);
  EXPECT_GT(report->commands.queued, 5u);
  EXPECT_EQ(report->commands.refused, 0u);
  // Drained: every command queued got its final answer; NotNow'd ones came back and were answered.
  EXPECT_EQ(report->commands.outstanding, 0u);
  EXPECT_EQ(report->commands.acknowledged + report->commands.error, report->commands.queued);
  const auto latency = report->figures.latency();
  for (const char* message : {"Authenticate", "TokenUpdate", "UserAuthenticate", "Idle", "Acknowledged", "enqueue"}) {
    EXPECT_TRUE(latency.count({message, 200})) << message << " never answered 200";
  }
}

TEST(LoadRun, OverTlsEachDeviceProvesItsOwnIdentityAndEveryInvariantHolds) {
  testing::TestPki pki;
  auto served = serve(server::Fault::none, &pki);
  auto options = small_fleet();
  options.devices = 4;
  auto report = run_load(served.profile, options);
  ASSERT_TRUE(report) << report.message();
  EXPECT_EQ(report->findings_total, 0u) << findings_text(*report);
  EXPECT_EQ(report->figures.errors(), 0u) << findings_text(*report);
  EXPECT_GT(report->commands.acknowledged, 0u);
  EXPECT_TRUE(report->figures.latency().count({"Idle", 200}));
}

TEST(LoadRun, OverTlsAServerTheHarnessDoesNotTrustIsATlsErrorNotAFinding) {
  testing::TestPki pki;
  auto served = serve(server::Fault::none, &pki);
  served.profile.tls.ca_pem = pki.other_ca.cert_pem;
  auto options = small_fleet();
  options.devices = 2;
  options.duration = 500ms;
  options.drain = 0ms;
  auto report = run_load(served.profile, options);
  ASSERT_TRUE(report) << report.message();
  EXPECT_EQ(report->findings_total, 0u) << findings_text(*report);
  EXPECT_GT(report->figures.errors_by_kind()["tls"], 0u) << findings_text(*report);
  EXPECT_EQ(report->figures.exchanges(), report->figures.errors()) << "nothing got through";
}

struct FaultCase {
  server::Fault fault;
  std::string invariant;
};

class LoadFault : public ::testing::TestWithParam<FaultCase> {};

TEST_P(LoadFault, IsCaughtAsTheInvariantItViolates) {
  auto served = serve(GetParam().fault);
  auto options = small_fleet();
  options.duration = 2s;
  options.drain = 1s;  // a faulty server may never deliver what is outstanding
  auto report = run_load(served.profile, options);
  ASSERT_TRUE(report) << report.message();
  EXPECT_TRUE(invariants(*report).count(GetParam().invariant)) << findings_text(*report);
  for (const auto& f : report->findings) {
    EXPECT_FALSE(f.channel.empty());
    EXPECT_FALSE(f.exchanges.empty()) << f.invariant << ": a finding comes with the exchanges before it";
  }
}

INSTANTIATE_TEST_SUITE_P(
    DeliveryFaults, LoadFault,
    ::testing::Values(FaultCase{server::Fault::device_command_on_user, "delivered-to-other-channel"},
                      FaultCase{server::Fault::user_command_on_device, "delivered-to-other-channel"},
                      FaultCase{server::Fault::acked_redelivered, "delivered-twice"},
                      FaultCase{server::Fault::not_now_dropped, "lost-after-not-now"},
                      FaultCase{server::Fault::series_end_204, "series-end-not-empty"},
                      FaultCase{server::Fault::shared_response_slot, "delivered-to-other-channel"}),
    [](const auto& info) {
      std::string name(server::fault_info(info.param.fault).name);
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// A fixed amount of work (each channel: two commands, three series), so that the counts do not
// depend on timing: three shards on one server add up to one run of the whole fleet on another.
TEST(LoadRun, ThreeShardsMergeToTheSingleRunsCounts) {
  LoadOptions o = small_fleet();
  o.devices = 9;
  o.commands_per_minute = 0;
  o.commands_per_channel = 2;
  o.series_per_channel = 3;
  o.think = 5ms;
  o.duration = 20s;  // a bound only: the work ends first

  auto whole_server = serve();
  auto whole = run_load(whole_server.profile, o);
  ASSERT_TRUE(whole) << whole.message();
  ASSERT_EQ(whole->findings_total, 0u) << findings_text(*whole);
  // 54 commands (27 channels, 2 each), answered from each channel's own seeded stream: some NotNow and some Error,
  // the same ones in every run, and every NotNow'd one delivered again and answered.
  EXPECT_EQ(whole->commands.queued, 54u);
  EXPECT_GT(whole->commands.not_now, 0u);
  EXPECT_GT(whole->commands.error, 0u);
  EXPECT_EQ(whole->commands.acknowledged + whole->commands.error, 54u);

  auto shard_server = serve();
  std::vector<LoadReport> shards(3);
  std::vector<std::string> errors(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      LoadOptions mine = o;
      mine.shard = {i, 3};
      mine.threads = 1;
      auto ran = run_load(shard_server.profile, mine);
      if (ran)
        shards[i] = *std::move(ran);
      else
        errors[i] = ran.message();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ASSERT_TRUE(e.empty()) << e;
  auto merged = merge(shards);
  ASSERT_TRUE(merged) << merged.message();

  EXPECT_LT(whole->elapsed_s, 20.0) << "the fixed work should end the run";
  EXPECT_EQ(merged->channels, whole->channels);
  EXPECT_EQ(merged->figures.exchanges(), whole->figures.exchanges());
  EXPECT_EQ(merged->figures.errors(), whole->figures.errors());
  EXPECT_EQ(merged->commands.queued, whole->commands.queued);
  EXPECT_EQ(merged->commands.acknowledged, whole->commands.acknowledged);
  EXPECT_EQ(merged->commands.not_now, whole->commands.not_now);
  EXPECT_EQ(merged->commands.error, whole->commands.error);
  EXPECT_EQ(merged->findings_total, 0u) << findings_text(*merged);
  const auto a = merged->figures.latency();
  const auto b = whole->figures.latency();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, q] : b) {
    ASSERT_TRUE(a.count(key)) << key.message << " " << key.status;
    EXPECT_EQ(a.at(key).count, q.count) << key.message << " " << key.status;
  }
}

TEST(LoadRun, AStopMidFlightIsReportedInterruptedWithNothingLost) {
  auto served = serve();
  auto options = small_fleet();
  options.duration = 60s;
  std::atomic<bool> stop{false};
  options.stop = &stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(700ms);
    stop = true;
  });
  const auto started = std::chrono::steady_clock::now();
  auto report = run_load(served.profile, options);
  stopper.join();
  ASSERT_TRUE(report) << report.message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_TRUE(report->interrupted);
  EXPECT_GT(report->figures.exchanges(), 0u);
  EXPECT_EQ(report->findings_total, 0u) << findings_text(*report);
}

TEST(LoadRun, NoAdminAdapterWithCommandsAskedForIsAConfigurationError) {
  auto served = serve();
  served.profile.enqueue.reset();
  auto report = run_load(served.profile, small_fleet());
  ASSERT_FALSE(report);
  EXPECT_NE(report.message().find("admin"), std::string::npos) << report.message();
}

TEST(Fleet, TheSameSeedMakesTheSameDevicesInEveryShard) {
  FleetShape shape{42, 10, 3, "topic", {kManagedUser}};
  auto a = fleet_device(shape, 7);
  auto b = fleet_device(shape, 7);
  EXPECT_EQ(a.facts.udid, b.facts.udid);
  EXPECT_NE(a.facts.udid, fleet_device(shape, 6).facts.udid);
  ASSERT_EQ(a.users.size(), 3u);
  EXPECT_EQ(a.users[0].kind, emulator::UserKind::local);
  EXPECT_EQ(a.users[1].kind, emulator::UserKind::network);
  EXPECT_EQ(a.users[1].facts.user_id, kManagedUser);
  EXPECT_EQ(a.users[2].kind, emulator::UserKind::local) << "one managed network user: the rest are local";
  EXPECT_NE(fleet_device({43, 10, 3, "topic", {}}, 7).facts.udid, a.facts.udid);
  auto shard = parse_shard("2/3");
  ASSERT_TRUE(shard);
  EXPECT_TRUE(shard->holds(5));
  EXPECT_FALSE(shard->holds(6));
  for (const char* bad : {"3/3", "-1/3", "1", "a/b", "1/0", "0/10001"}) EXPECT_FALSE(parse_shard(bad)) << bad;
}

}  // namespace
}  // namespace mdmc::load
