// The network fuzzer: each input goes to a live MDM server as a check-in or a command report,
// under an enrolled device's identity, on a kept-alive connection. The server is a black box,
// so what it answers (status, error class, response shape, the state a message reached) is
// fed back to libFuzzer as extra counters. An oracle that fires is triaged (fuzz/triage.hpp):
// deduplicated, a new finding minimised on a fresh device and written, and the fuzzing goes on.
// Only a target that no longer answers at all ends the process (TARGET DOWN).
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
//   MDMC_FUZZ_MINIMISE      0 to write findings as found, not minimised
//   MDMC_FUZZ_JOB           which of a campaign's jobs this is (default 0): job 0 is the fixed
//                           fuzz device the seeds name; job k enrolls a device of its own (from
//                           a pool, its k-th identity) and retargets each input to it
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
#include <thread>

#include "harness/emulator/emulator.hpp"
#include "harness/fuzz/finding.hpp"
#include "harness/fuzz/mutator.hpp"
#include "harness/fuzz/session.hpp"
#include "harness/fuzz/triage.hpp"
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
  bool minimise = true;
  std::vector<fuzz::Oracle> disabled;
  int job = 0;
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
  s.minimise = get("MDMC_FUZZ_MINIMISE") != "0";
  if (auto v = get("MDMC_FUZZ_JOB"); !v.empty()) s.job = std::clamp(std::atoi(v.c_str()), 0, 1 << 16);
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
std::unique_ptr<fuzz::Triage> g_triage;
emulator::IdentitySource g_ids(static_cast<std::uint64_t>(getpid()));

// After a finding that may mean the target is gone: the device still served (enrolled again
// and probed); or only the fuzz device broken (a fresh device is served), and the fuzzing goes
// on as a new device, each input's UDID and UserID rewritten to it; or, after four rounds with
// pauses for a target that is briefly down, the process ends, saying so (every later input
// would only repeat that the target is down). A fresh device is tried in each round before the
// pause: a device a bug left broken is the common case (user-key-corrupts breaks one with each
// bad Authenticate), and the pauses, 1.75 s in all, were most of a run against it.
void carry_on_or_stop() {
  std::string reason;
  base::Result<std::unique_ptr<fuzz::Session>> fresh = base::fail("not tried");
  // Four looks, with pauses of 0.25, 0.5 and 1 s between them: a target down for up to 1.75 s.
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250 << (attempt - 1)));
    auto failure = g_session->alive();
    if (!failure) return;
    reason = *failure;
    fuzz::SessionOptions options = g_session->options();
    options.udid = g_ids.uuid();
    options.user_id = g_ids.uuid();
    fresh = fuzz::Session::open(options);
    if (fresh) {
      std::fprintf(stderr, "target_fuzzer: DEVICE BROKEN: %s; fuzzing on as device %s\n", reason.c_str(),
                   options.udid.c_str());
      g_session = std::move(fresh).value();
      for (const auto& e : g_session->exclusions()) {
        std::fprintf(stderr, "target_fuzzer: EXCLUDED %s: %s\n", e.rule.c_str(), e.reason.c_str());
      }
      return;
    }
  }
  g_triage->write_counts();
  std::fprintf(stderr, "target_fuzzer: TARGET DOWN: %s; a fresh device: %s\n", reason.c_str(), fresh.message().c_str());
  std::fflush(stderr);
  std::_Exit(4);
}

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
  if (g_settings.job > 0) {
    options.udid = g_ids.uuid();
    options.user_id = g_ids.uuid();
    auto& pool = options.target.identity.pool;
    if (!pool.empty()) {
      if (static_cast<std::size_t>(g_settings.job) >= pool.size()) {
        std::fprintf(stderr, "target_fuzzer: job %d needs an identity of its own; the profile's pool has %zu\n",
                     g_settings.job, pool.size());
        std::exit(2);
      }
      std::rotate(pool.begin(), pool.begin() + g_settings.job, pool.end());
    }
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
  g_triage = std::make_unique<fuzz::Triage>(fuzz::TriageOptions{g_settings.findings, {}, g_settings.minimise});
  for (const auto& e : g_session->exclusions()) {
    std::fprintf(stderr, "target_fuzzer: EXCLUDED %s: %s\n", e.rule.c_str(), e.reason.c_str());
  }
  std::fprintf(stderr, "target_fuzzer: enrolled %s and its user on %s (%s, %s mutator, feedback %s)\n",
               g_session->options().udid.c_str(), g_session->options().target.check_in_url.c_str(),
               g_session->options().target.name.c_str(), g_settings.byte_mutator ? "byte" : "plist",
               g_settings.feedback ? "on" : "off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string retargeted;
  if (g_session->options().udid != fuzz::kFuzzUdid) {
    const auto& o = g_session->options();
    retargeted = fuzz::retarget_input(input, {std::string(fuzz::kFuzzUdid), std::string(fuzz::kFuzzUserId)},
                                      {o.udid, o.user_id});
    input = retargeted;
  }
  std::vector<std::size_t> features;
  auto outcome = g_session->send(input, &features);
  if (g_settings.feedback) {
    for (auto f : features) {
      if (g_features[f] < 255) ++g_features[f];
    }
  }
  if (outcome.oracle != fuzz::Oracle::none) {
    auto triaged = g_triage->record(*g_session, outcome, input);
    if (!triaged) {
      std::fprintf(stderr, "target_fuzzer: could not write a finding: %s\n", triaged.message().c_str());
    } else if (triaged->is_new) {
      std::fprintf(stderr, "target_fuzzer: FINDING %s: %s\n", std::string(fuzz::oracle_name(outcome.oracle)).c_str(),
                   triaged->detail.c_str());
      std::fprintf(stderr, "target_fuzzer: %s\n", triaged->minimise_note.c_str());
      std::fprintf(stderr, "target_fuzzer: reproducer %s\n", triaged->file.c_str());
    }
    std::fflush(stderr);
    // A new finding may have been the one that broke the target (a wedge answers every later
    // input 503: each would look new); liveness and transport findings say so outright.
    const bool new_finding = triaged && triaged->is_new;
    if (new_finding || outcome.oracle == fuzz::Oracle::liveness || outcome.oracle == fuzz::Oracle::transport)
      carry_on_or_stop();
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
