#pragma once
// What a case's push steps (expect_push, expect_no_push, expect_pushes, apns) see of the run's
// fake APNs, and how they script its answers. The fake APNs itself (harness/push) runs on
// nghttp2 and Asio coroutines, which the fuzz preset cannot build, so the runner knows it only
// through this interface; cli/apns_log.hpp adapts push::FakeApns to it.
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness/net/http.hpp"
#include "harness/scenario/spec.hpp"

namespace mdmc::scenario {

// One push the fake APNs answered, as the case judges it.
struct SeenPush {
  std::uint64_t index = 0;  // arrival order over the run
  std::chrono::steady_clock::time_point received;
  std::string path;                       // "/3/device/<token>"
  std::string device_token;               // lower-case hex from the path
  std::string topic;                      // apns-topic, or the push certificate's topic
  std::optional<std::string> push_magic;  // the body's "mdm" string
  net::Headers headers;                   // as sent, lower case
  std::string body;
  int status = 0;         // what the fake APNs answered
  std::string reason;     // APNs' reason, empty for 200
  std::string detail;     // why, for people
  bool scripted = false;  // a case's apns step chose the answer (the push was one APNs accepts)
};

class PushLog {
 public:
  virtual ~PushLog() = default;
  // The index the next push will get: a case notes it before it acts.
  virtual std::uint64_t next_index() const = 0;
  // The pushes still kept with index >= `index`, in order.
  virtual std::vector<SeenPush> pushes_since(std::uint64_t index) const = 0;
  // The first push to one of `device_tokens` with index >= `index`, waiting until `deadline`.
  virtual std::optional<SeenPush> wait_for_token(const std::set<std::string>& device_tokens, std::uint64_t index,
                                                 std::chrono::steady_clock::time_point deadline) const = 0;
  // From now on, pushes to `device_token` that APNs would accept get `answer`, `times` times
  // (0: until answered otherwise); accept ends a scripted answer.
  virtual void answer(const std::string& device_token, ApnsAnswer answer, int times) = 0;
};

}  // namespace mdmc::scenario
