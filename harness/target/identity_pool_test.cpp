#include "harness/target/identity_pool.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "harness/target/session.hpp"

namespace mdmc::target {
namespace {

pki::Identity must(pki::Result<pki::Identity> r) {
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? std::move(r).value() : pki::Identity{};
}

// A pool of `n` real device identities, device-00.p12 onwards, as the profile loader lists them.
IdentityConfig pool_of(std::size_t n, IdentityMode mode = IdentityMode::mtls) {
  IdentityConfig config;
  config.mode = mode;
  auto ca = must(pki::create_test_ca("pool CA"));
  for (std::size_t i = 0; i < n; ++i) {
    auto name = fmt::format("device-{:02}", i);
    config.pool.push_back({name + ".p12", must(pki::issue_device_identity(ca, name, pki::KeyType::ec_p256))});
  }
  return config;
}

TEST(SharedIdentityPool, SessionsSharingARunsPoolNeverGetTheSameIdentity) {
  TargetProfile profile;
  profile.identity = pool_of(3);
  IdentityPool run(profile.identity);
  // Two cases, each with its own session: the second case's first device must not get the
  // identity the first case's first device got.
  TargetSession first(profile, run);
  TargetSession second(profile, run);
  auto a = first.add_device("mac", "UDID-A");
  auto b = first.add_device("iphone", "UDID-B");
  auto c = second.add_device("mac", "UDID-C");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->source, "pool:device-00.p12");
  EXPECT_EQ(b->source, "pool:device-01.p12");
  EXPECT_EQ(c->source, "pool:device-02.p12");
  EXPECT_EQ(c->common_name, "device-02");
  EXPECT_EQ(std::set<std::string>({a->sha256, b->sha256, c->sha256}).size(), 3u);
  EXPECT_EQ(c->sha256, pki::sha256_fingerprint(*pki::certificate_der(profile.identity.pool[2].identity.cert_pem)));
  EXPECT_EQ(run.taken(), 3u);

  auto out = second.add_device("iphone", "UDID-D");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.message().find("every one of the 3 identities in the profile's pool"), std::string::npos)
      << out.message();
  EXPECT_EQ(run.taken(), 3u);
}

TEST(SharedIdentityPool, ASessionWithoutARunsPoolHasOneOfItsOwn) {
  // The fuzzer's case: one session is the whole run.
  TargetProfile profile;
  profile.identity = pool_of(1, IdentityMode::signature);
  TargetSession session(profile);
  auto given = session.add_device("mac", "UDID-A");
  ASSERT_TRUE(given) << given.message();
  EXPECT_EQ(given->source, "pool:device-00.p12");
  EXPECT_FALSE(session.add_device("iphone", "UDID-B").ok());
}

TEST(SharedIdentityPool, ManyThreadsTakingAtOnceGetEachPoolIdentityExactlyOnce) {
  constexpr std::size_t kIdentities = 24;
  constexpr int kThreads = 8;
  auto config = pool_of(kIdentities);
  IdentityPool run(config);
  std::mutex mu;
  std::vector<std::string> sources;
  std::size_t refused = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread asks for more than its share: the pool runs out under contention.
      for (int k = 0; k < 6; ++k) {
        auto given = run.take(fmt::format("UDID-{}-{}", t, k));
        std::lock_guard lock(mu);
        if (given)
          sources.push_back(given->source);
        else
          ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(sources.size(), kIdentities);
  EXPECT_EQ(std::set<std::string>(sources.begin(), sources.end()).size(), kIdentities) << "one handed out twice";
  EXPECT_EQ(refused, kThreads * 6 - kIdentities);
  EXPECT_EQ(run.taken(), kIdentities);
}

TEST(SharedIdentityPool, AnIssuerGivesEachUdidACertificateOfItsOwn) {
  IdentityConfig config;
  config.mode = IdentityMode::both;
  config.issuer = must(pki::create_test_ca("issuer"));
  IdentityPool run(config);
  auto a = run.take("UDID-A");
  auto b = run.take("UDID-B");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->source, "issued");
  EXPECT_EQ(a->common_name, "UDID-A");
  EXPECT_EQ(b->common_name, "UDID-B");
  EXPECT_EQ(a->sha256.size(), 64u);
  EXPECT_NE(a->sha256, b->sha256);
}

TEST(SharedIdentityPool, ModeNoneGivesEveryDeviceNoCertificate) {
  auto config = pool_of(1, IdentityMode::none);
  IdentityPool run(config);
  for (const char* udid : {"UDID-A", "UDID-B"}) {
    auto given = run.take(udid);
    ASSERT_TRUE(given) << given.message();
    EXPECT_EQ(given->source, "none");
    EXPECT_TRUE(given->sha256.empty());
    EXPECT_TRUE(given->identity.cert_pem.empty());
  }
  EXPECT_EQ(run.taken(), 0u) << "a pool the mode does not use is not drawn from";
}

}  // namespace
}  // namespace mdmc::target
