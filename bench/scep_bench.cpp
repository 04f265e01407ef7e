// One SCEP enrollment per device, timed: a new key, GetCACaps, GetCACert, PKCSReq and the
// checks of harness/enroll/scep_client.cpp, each run a new device (a new CN). Against the SCEP
// server at --url (bench/scep_bench.sh starts Debian's scepserver), or with --fake against the
// fake SCEP server of harness/testing in this process. Prints the median and p90 wall times.
//
//   scep_bench (--url URL --challenge X | --fake) [--runs N] [--key-type RSA|ECSECPrimeRandom] [--key-size B]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "harness/enroll/scep_client.hpp"
#include "harness/pki/scep.hpp"
#include "harness/testing/fake_scep_server.hpp"

int main(int argc, char** argv) {
  using namespace mdmc;
  std::string url;
  std::string challenge;
  std::string key_type = "RSA";
  int key_size = 2048;
  int runs = 30;
  bool fake = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "scep_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--url")
      url = next();
    else if (arg == "--challenge")
      challenge = next();
    else if (arg == "--key-type")
      key_type = next();
    else if (arg == "--key-size")
      key_size = std::atoi(next().c_str());
    else if (arg == "--runs")
      runs = std::atoi(next().c_str());
    else if (arg == "--fake")
      fake = true;
    else {
      std::fprintf(stderr, "scep_bench: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  std::unique_ptr<testing::FakeScepServer> server;
  if (fake) {
    server = std::make_unique<testing::FakeScepServer>(testing::FakeScepOptions{});
    auto started = server->start();
    if (!started) {
      std::fprintf(stderr, "scep_bench: fake server: %s\n", started.message().c_str());
      return 1;
    }
    url = *started;
  }
  if (url.empty() || runs < 1) {
    std::fprintf(stderr,
                 "usage: scep_bench (--url URL --challenge X | --fake) [--runs N] [--key-type T] [--key-size B]\n");
    return 2;
  }
  std::vector<double> walls;
  for (int run = 0; run < runs; ++run) {
    enroll::ScepRequest request;
    request.url = url;
    request.subject = {{{"O", "mdmconform-bench"}},
                       {{"CN", "bench-" + std::to_string(run) + "-" + std::to_string(std::time(nullptr))}}};
    request.challenge = challenge;
    request.key_type = key_type;
    request.key_size = key_size;
    auto started = std::chrono::steady_clock::now();
    auto enrolled = enroll::scep_enroll(request, {});
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (!enrolled) {
      std::fprintf(stderr, "scep_bench: run %d: %s\n", run, enrolled.message().c_str());
      return 1;
    }
    walls.push_back(ms);
  }
  // The device's key generation alone, which the enrollments above include: RSA's dominates.
  std::vector<double> keygens;
  for (int run = 0; run < runs; ++run) {
    auto started = std::chrono::steady_clock::now();
    auto key = pki::scep::generate_key(key_type, key_size);
    keygens.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    if (!key) return 1;
  }
  auto quantile = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
  };
  std::sort(walls.begin(), walls.end());
  auto at = [&](double q) { return quantile(walls, q); };
  std::printf("%s %s %d: %d enrollments, median %.1f ms, p90 %.1f ms, min %.1f ms, max %.1f ms\n",
              fake ? "fake" : "scepserver", key_type.c_str(), key_size, runs, at(0.5), at(0.9), walls.front(),
              walls.back());
  std::printf("  of which key generation alone: median %.1f ms, p90 %.1f ms\n", quantile(keygens, 0.5),
              quantile(keygens, 0.9));
  return 0;
}
