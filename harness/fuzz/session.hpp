#pragma once
// The network fuzzer's connection to a live target: one enrolled device and user, each input
// sent as a check-in or a command report on a kept-alive connection (a target::TargetSession),
// the oracles that judge each answer (protocol/judge.hpp for the rules), and the features fed
// back to the fuzzing engine. Findings are in finding.hpp.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/net/http.hpp"
#include "harness/protocol/endpoint.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::fuzz {

// The device and user every fuzz session enrolls, and every seed names: fixed, so that the
// committed corpus reaches the enrolled channels with no rewriting.
inline constexpr std::string_view kFuzzUdid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
inline constexpr std::string_view kFuzzUserId = "F17C470A-3ADC-47EC-A7CC-D432867F4793";

// What an oracle found wrong with the target's answer to one input.
enum class Oracle {
  none,
  status_5xx,        // the target answered 5xx
  transport,         // reset, closed, timed out past its deadline, or unparseable HTTP
  liveness,          // a well-formed Idle from the enrolled device no longer gets 200
  rob_malformed,     // ROB-MALFORMED: bytes that are no plist were accepted with 2xx
  rob_unknown_type,  // ROB-UNKNOWN-TYPE: an unknown MessageType or Status was accepted with 2xx
  cmd_shape,         // CMD-SHAPE: a command without CommandUUID or Command.RequestType
};
inline constexpr int kOracleCount = static_cast<int>(Oracle::cmd_shape) + 1;
std::string_view oracle_name(Oracle oracle);
std::optional<Oracle> oracle_from_name(std::string_view name);

using protocol::Endpoint;
using protocol::endpoint_name;

// Which endpoint an input goes to: a dict with MessageType is a check-in, one with Status a
// report; anything else by the low bit of its first byte, so both endpoints see garbage.
Endpoint endpoint_for(std::string_view input);

struct SessionOptions {
  target::TargetProfile target;
  std::string udid = std::string(kFuzzUdid);
  std::string user_id = std::string(kFuzzUserId);
  int probe_every = 50;                // a liveness probe after this many inputs, and after an answer
                                       // this kind of input never got before
  double max_requests_per_second = 0;  // 0: no cap
  // Oracles switched off (a lenient parser on the target makes rob_malformed noisy).
  std::vector<Oracle> disabled;
  std::uint64_t seed = 1;     // push tokens and the like
  bool allow_remote = false;  // a target off loopback is refused unless this is set
  bool trace = false;         // one line per exchange on stderr
  // A liveness probe before any input: a rule the target already breaks in it (a series ended
  // with 204, a command without CommandUUID) is excluded from the oracles, and reported.
  bool baseline = true;
};

// A rule whose behaviour the oracles tolerate, because the target breaks it on well-formed
// input already: the conformance suite reports it; the fuzzer looks past it.
struct Exclusion {
  std::string rule;    // "SYN-EMPTY-END", "CMD-SHAPE"; "liveness" when no probe can pass at all
  std::string reason;  // what the baseline probe saw
};

struct Outcome {
  Oracle oracle = Oracle::none;
  std::string detail;  // in words: "HTTP 500 to TokenUpdate whose UDID is an integer (expected string)"
  // When an oracle fired: the answer's shape, for deduplication ("500:empty", "transport:reset",
  // "probe:Acknowledged:204").
  std::string answer_shape;
  net::Exchange exchange;              // the input's exchange
  std::optional<net::Exchange> probe;  // the liveness probe, when one ran after this input
};

// Feedback slots: every feature of an answer is a counter index below this.
inline constexpr std::size_t kFeatureSlots = 8192;

class Session {
 public:
  // Connects, enrolls the device (Authenticate, TokenUpdate) and its user (TokenUpdate), and
  // queues a command on each channel when the profile has an admin adapter. Nothing, with the
  // reason in `error`, when the target refuses or cannot be reached.
  static base::Result<std::unique_ptr<Session>> open(SessionOptions options);
  ~Session();

  // The request an input becomes: the endpoint's URL, Content-Type, Mdm-Signature.
  net::Request request_for(std::string_view input) const;
  // Sends one input (or an exact request, for replay) and judges the answer. Features of the
  // answer are appended to `features` when given.
  Outcome send(std::string_view input, std::vector<std::size_t>* features = nullptr);
  Outcome send_request(const net::Request& request, std::string_view input,
                       std::vector<std::size_t>* features = nullptr);

  // Sends one input and judges it with a liveness probe after it, whatever came before: how a
  // finding is checked again on a fresh device.
  Outcome check(std::string_view input);
  // Enrolls the device again (Authenticate, TokenUpdate, the user's TokenUpdate); the reason
  // when the target refuses.
  std::optional<std::string> reenroll();
  // Enrolled again and probed: nothing when the target is alive, else what failed.
  std::optional<std::string> alive();
  const std::vector<Exclusion>& exclusions() const { return exclusions_; }

  // The inputs sent since the last good liveness probe, oldest first (bounded): what a
  // reproducer must replay when the target broke without an oracle firing at once.
  const std::deque<std::string>& recent_inputs() const { return recent_; }
  const SessionOptions& options() const { return options_; }
  std::uint64_t requests_sent() const { return requests_; }

 private:
  explicit Session(SessionOptions options);
  std::optional<std::string> enroll();
  void enqueue_commands();
  net::Exchange transmit(net::Request request);
  struct ProbeFailure {
    std::string what;   // "the liveness probe's Acknowledged (of its ProfileList command) got HTTP 204"
    std::string shape;  // "probe:Acknowledged:204"
    std::string rule;   // the rule this breaks on its own, when it is one ("SYN-EMPTY-END")
  };
  std::optional<ProbeFailure> probe(std::optional<net::Exchange>* last);
  bool excluded(std::string_view rule) const;
  void run_baseline();
  std::vector<Exclusion> exclusions_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SessionOptions options_;
  std::deque<std::string> recent_;
  std::size_t recent_bytes_ = 0;
  int since_probe_ = 0;
  std::unordered_set<std::uint64_t> seen_answers_;  // input kind and status pairs: bounded by both
  std::uint64_t requests_ = 0;
};

}  // namespace mdmc::fuzz
