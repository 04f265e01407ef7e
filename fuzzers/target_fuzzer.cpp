// The network fuzzer: each input goes to a live MDM server as a check-in or a command report,
// under an enrolled device's identity, on a kept-alive connection. The server is a black box,
// so what it answers (status, error class, response shape, the state a message reached) is
// fed back to libFuzzer as extra counters. An oracle that fires writes a reproducer first,
// then the process aborts, as libFuzzer does for a crash.
//
// Settings come from the environment, or from a flag file (KEY=VALUE lines) named by
// MDMC_FUZZ_FLAGS, else ./mdmc-fuzz.flags when present; the environment wins:
//   MDMC_FUZZ_TARGET        target profile (YAML), required
//   MDMC_FUZZ_FINDINGS      folder for reproducers (default ./findings)
//   MDMC_FUZZ_RATE          requests per second at most (default: no cap)
//   MDMC_FUZZ_ALLOW_REMOTE  1 to allow a target off loopback
//   MDMC_FUZZ_PROBE_EVERY   a liveness probe every N inputs (default 50)
//   MDMC_FUZZ_FEEDBACK      0 to feed nothing back (for measuring what the feedback brings)
//   MDMC_FUZZ_MUTATOR       plist (default) or bytes (libFuzzer's own byte mutations only)
//   MDMC_FUZZ_DISABLE       oracles to switch off, comma-separated (e.g. ROB-MALFORMED)
//   MDMC_FUZZ_TRACE         1 to print one line per exchange
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "harness/fuzz/finding.hpp"
#include "harness/fuzz/mutator.hpp"
#include "harness/fuzz/session.hpp"
#include "harness/target/profile.hpp"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// libFuzzer reads this section as coverage: one counter per feature slot.
__attribute__((used, section("__libfuzzer_extra_counters"))) static std::uint8_t g_features[mdmc::fuzz::kFeatureSlots];

namespace {

using namespace mdmc;

struct Settings {
  std::string target;
  std::string findings = "findings";
  double rate = 0;
  bool allow_remote = false;
  int probe_every = 50;
  bool feedback = true;
  bool byte_mutator = false;
  bool trace = false;
  std::vector<fuzz::Oracle> disabled;
};

std::map<std::string, std::string> read_flag_file() {
  std::map<std::string, std::string> flags;
  const char* named = std::getenv("MDMC_FUZZ_FLAGS");
  std::ifstream in(named ? named : "mdmc-fuzz.flags");
  std::string line;
  for (int n = 0; n < 1000 && std::getline(in, line); ++n) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    flags[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return flags;
}

Settings read_settings() {
  auto flags = read_flag_file();
  auto get = [&](const char* key) -> std::string {
    if (const char* v = std::getenv(key)) return v;
    auto it = flags.find(key);
    return it == flags.end() ? std::string() : it->second;
  };
  Settings s;
  s.target = get("MDMC_FUZZ_TARGET");
  if (auto v = get("MDMC_FUZZ_FINDINGS"); !v.empty()) s.findings = v;
  if (auto v = get("MDMC_FUZZ_RATE"); !v.empty()) s.rate = std::atof(v.c_str());
  s.allow_remote = get("MDMC_FUZZ_ALLOW_REMOTE") == "1";
  if (auto v = get("MDMC_FUZZ_PROBE_EVERY"); !v.empty()) s.probe_every = std::max(1, std::atoi(v.c_str()));
  s.feedback = get("MDMC_FUZZ_FEEDBACK") != "0";
  s.byte_mutator = get("MDMC_FUZZ_MUTATOR") == "bytes";
  s.trace = get("MDMC_FUZZ_TRACE") == "1";
  std::string disabled = get("MDMC_FUZZ_DISABLE");
  for (std::size_t start = 0; start < disabled.size();) {
    auto end = disabled.find(',', start);
    auto name = disabled.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (auto o = fuzz::oracle_from_name(name)) {
      s.disabled.push_back(*o);
    } else {
      std::fprintf(stderr, "target_fuzzer: MDMC_FUZZ_DISABLE: unknown oracle '%s'\n", name.c_str());
      std::exit(2);
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return s;
}

Settings g_settings;
std::unique_ptr<fuzz::Session> g_session;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_settings = read_settings();
  if (g_settings.target.empty()) {
    std::fprintf(stderr,
                 "target_fuzzer: set MDMC_FUZZ_TARGET to a target profile (see the top of target_fuzzer.cpp)\n");
    std::exit(2);
  }
  fuzz::SessionOptions options;
  try {
    options.target = target::load_profile(g_settings.target);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "target_fuzzer: %s\n", e.what());
    std::exit(2);
  }
  options.probe_every = g_settings.probe_every;
  options.max_requests_per_second = g_settings.rate;
  options.allow_remote = g_settings.allow_remote;
  options.disabled = g_settings.disabled;
  options.trace = g_settings.trace;
  options.seed = static_cast<std::uint64_t>(getpid());
  auto opened = fuzz::Session::open(std::move(options));
  if (!opened) {
    std::fprintf(stderr, "target_fuzzer: %s\n", opened.message().c_str());
    std::exit(3);
  }
  g_session = std::move(opened).value();
  std::fprintf(stderr, "target_fuzzer: enrolled %s and its user on %s (%s, %s mutator, feedback %s)\n",
               g_session->options().udid.c_str(), g_session->options().target.check_in_url.c_str(),
               g_session->options().target.name.c_str(), g_settings.byte_mutator ? "byte" : "plist",
               g_settings.feedback ? "on" : "off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::size_t> features;
  auto outcome = g_session->send(input, &features);
  if (g_settings.feedback) {
    for (auto f : features) {
      if (g_features[f] < 255) ++g_features[f];
    }
  }
  if (outcome.oracle != fuzz::Oracle::none) {
    // The finding is on disk before anything else happens.
    auto reproducer = fuzz::make_reproducer(*g_session, outcome, input);
    auto path = fuzz::write_reproducer(g_settings.findings, reproducer);
    std::fprintf(stderr, "target_fuzzer: FINDING %s: %s\n", reproducer.oracle.c_str(), outcome.detail.c_str());
    if (path) {
      std::fprintf(stderr, "target_fuzzer: reproducer %s\n", path->c_str());
    } else {
      std::fprintf(stderr, "target_fuzzer: could not write the reproducer: %s\n", path.message().c_str());
    }
    std::fflush(stderr);
    std::abort();
  }
  return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  // One in eight stays byte-level even for plists: text-level damage finds parser bugs.
  if (!g_settings.byte_mutator && seed % 8 != 0) {
    auto out = fuzz::mutate_plist(std::string_view(reinterpret_cast<const char*>(data), size), seed, max_size);
    if (out) {
      std::memcpy(data, out->bytes.data(), out->bytes.size());
      return out->bytes.size();
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

extern "C" std::size_t LLVMFuzzerCustomCrossOver(const std::uint8_t* data1, std::size_t size1,
                                                 const std::uint8_t* data2, std::size_t size2, std::uint8_t* out,
                                                 std::size_t max_out_size, unsigned int seed) {
  if (!g_settings.byte_mutator) {
    auto crossed =
        fuzz::cross_over_plists(std::string_view(reinterpret_cast<const char*>(data1), size1),
                                std::string_view(reinterpret_cast<const char*>(data2), size2), seed, max_out_size);
    if (crossed) {
      std::memcpy(out, crossed->data(), crossed->size());
      return crossed->size();
    }
  }
  // A splice: the head of one, the tail of the other.
  std::size_t head = size1 ? seed % (size1 + 1) : 0;
  std::size_t tail_from = size2 ? (seed / 7) % (size2 + 1) : 0;
  std::size_t n = std::min(max_out_size, head + (size2 - tail_from));
  std::size_t from_first = std::min(head, n);
  std::memcpy(out, data1, from_first);
  std::memcpy(out + from_first, data2 + tail_from, n - from_first);
  return n;
}
