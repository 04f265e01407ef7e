// A FakeApns for bench/apns_bench.sh: a new CA and provider-token key, the endpoint on
// 127.0.0.1, and in DIR the files h2load needs (port, a provider token, the body). Serves
// until SIGINT or SIGTERM, then prints how many pushes it answered, by status.
//
//   apns_bench_server DIR
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "harness/pki/pki.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/push/provider_token.hpp"

namespace {

void write(const std::filesystem::path& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

int main(int argc, char** argv) {
  using namespace mdmc;
  if (argc != 2) {
    std::fprintf(stderr, "usage: apns_bench_server DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before the serving thread starts

  auto ca = pki::create_test_ca("apns bench CA");
  auto key = pki::create_test_ca("apns bench provider key");
  if (!ca.ok() || !key.ok()) return 1;
  auto server = pki::issue_server_identity(*ca, {"127.0.0.1", "api.push.apple.com", "api.sandbox.push.apple.com"});
  if (!server.ok()) return 1;
  const std::string topic = "com.apple.mgmt.External.bench";
  push::FakeApnsConfig config;
  config.tls = *server;
  config.policy.token_policy = push::ProviderTokenPolicy{"BENCHKEY01", "BENCHTEAM1", key->cert_pem};
  push::FakeApns endpoint(config);
  auto port = endpoint.start();
  if (!port.ok()) {
    std::fprintf(stderr, "apns_bench_server: %s\n", port.message().c_str());
    return 1;
  }
  auto token = push::make_provider_token(key->key_pem, "BENCHKEY01", "BENCHTEAM1", std::chrono::system_clock::now());
  if (!token.ok()) return 1;
  write(dir / "token", *token);
  write(dir / "topic", topic);
  write(dir / "ca.pem", ca->cert_pem);
  write(dir / "body.json", R"({"mdm":"9A0C2B4E-7F1D-4C3B-8E5A-6D2F1B0C9E87"})");
  write(dir / "port", std::to_string(*port));  // last: the script waits for it

  int signal = 0;
  sigwait(&stop_signals, &signal);
  const auto stats = endpoint.stats();
  std::map<int, std::size_t> by_status;
  for (const auto& push : endpoint.pushes_since(0)) ++by_status[push.status];
  std::printf("pushes %llu connections %llu dropped_from_log %llu\n", static_cast<unsigned long long>(stats.pushes),
              static_cast<unsigned long long>(stats.connections),
              static_cast<unsigned long long>(stats.pushes_dropped));
  for (const auto& [status, count] : by_status) std::printf("status %d: %zu (in the log)\n", status, count);
  return 0;
}
