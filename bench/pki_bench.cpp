// What the pki module costs per operation, to size identity pools and load runs: issuing a
// device identity (key generation dominates) and making an Mdm-Signature for a typical body.
#include <benchmark/benchmark.h>

#include <string>

#include "harness/pki/pki.hpp"

namespace {

using mdmc::pki::Identity;
using mdmc::pki::KeyType;

const Identity& test_ca() {
  static const Identity ca = mdmc::pki::create_test_ca("pki_bench CA").value();
  return ca;
}

// A check-in body is one to a few KiB of XML plist; 2 KiB stands for a typical one.
const std::string& body_2kib() {
  static const std::string body(2048, 'x');
  return body;
}

void issue_device_identity(benchmark::State& state, KeyType key) {
  const Identity& ca = test_ca();
  for (auto _ : state) {
    auto identity = mdmc::pki::issue_device_identity(ca, "bench-device", key);
    if (!identity.ok()) {
      state.SkipWithError(identity.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(identity);
  }
}

void mdm_signature_2kib(benchmark::State& state, KeyType key) {
  auto identity = mdmc::pki::issue_device_identity(test_ca(), "bench-device", key);
  if (!identity.ok()) {
    state.SkipWithError(identity.message().c_str());
    return;
  }
  for (auto _ : state) {
    auto header = mdmc::pki::mdm_signature(*identity, body_2kib());
    if (!header.ok()) {
      state.SkipWithError(header.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(header);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(body_2kib().size()));
}

void verify_mdm_signature_2kib(benchmark::State& state, KeyType key) {
  auto identity = mdmc::pki::issue_device_identity(test_ca(), "bench-device", key);
  if (!identity.ok()) {
    state.SkipWithError(identity.message().c_str());
    return;
  }
  auto header = mdmc::pki::mdm_signature(*identity, body_2kib());
  if (!header.ok()) {
    state.SkipWithError(header.message().c_str());
    return;
  }
  for (auto _ : state) {
    auto check = mdmc::pki::verify_mdm_signature(*header, body_2kib(), test_ca().cert_pem);
    if (!check.ok()) {
      state.SkipWithError(check.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(check);
  }
}

BENCHMARK_CAPTURE(issue_device_identity, ec_p256, KeyType::ec_p256)->Unit(benchmark::kMicrosecond);
// RSA key generation hunts for primes: its time varies a lot from one key to the next, so it
// gets more time to average over.
BENCHMARK_CAPTURE(issue_device_identity, rsa2048, KeyType::rsa2048)->Unit(benchmark::kMillisecond)->MinTime(5.0);
BENCHMARK_CAPTURE(mdm_signature_2kib, ec_p256, KeyType::ec_p256)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(mdm_signature_2kib, rsa2048, KeyType::rsa2048)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(verify_mdm_signature_2kib, ec_p256, KeyType::ec_p256)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(verify_mdm_signature_2kib, rsa2048, KeyType::rsa2048)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
