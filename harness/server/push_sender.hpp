#pragma once
// The reference server's push provider (docs/push.md#how-the-reference-server-pushes): a bounded
// queue of channels to wake, drained by a worker thread of its own that sends each one an MDM
// push through push::ApnsClient, so that no HTTP handler ever waits on APNs. It honours APNs'
// answers: 410 stops pushes to the channel until its next TokenUpdate, 429 and 503 (and a
// failed connection) back off exponentially for that token with bounded retries, other
// refusals are logged and dropped. Config::push.fault makes it misbehave (push_faults.hpp).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/server/mdm_service.hpp"

namespace mdmc::server {

struct PushSenderStats {
  std::uint64_t requested = 0;             // push requests taken in
  std::uint64_t coalesced = 0;             // ... for a channel that already had one waiting
  std::uint64_t dropped_full = 0;          // ... dropped: max_queued were waiting
  std::uint64_t sent = 0;                  // pushes sent (each retry counts)
  std::uint64_t accepted = 0;              // answered 200
  std::uint64_t unregistered = 0;          // answered 410
  std::uint64_t throttled = 0;             // answered 429 or 503
  std::uint64_t refused = 0;               // answered with another status: logged, not retried
  std::uint64_t failed = 0;                // no answer: the connection, TLS, a deadline
  std::uint64_t retries = 0;               // pushes sent again after 429, 503 or a failure
  std::uint64_t given_up = 0;              // past max_retries
  std::uint64_t skipped_unregistered = 0;  // not sent: APNs said 410 since the channel's last TokenUpdate
  std::uint64_t skipped_gone = 0;          // not sent: the channel checked out (or enrolled again) meanwhile
};

class PushSender {
 public:
  // `resolve` gives a channel's push target at the moment of sending (MdmService::push_target):
  // the latest token, or nothing once the channel is gone. `log` takes one line per event
  // worth telling (a refusal, a 410, giving up, the first drop of a full queue); default: stderr.
  using Resolve = std::function<std::optional<PushTarget>(const std::string& channel_id)>;
  using Log = std::function<void(const std::string&)>;
  PushSender(PushSettings settings, Resolve resolve, Log log = {});
  ~PushSender();  // stop()
  PushSender(const PushSender&) = delete;
  PushSender& operator=(const PushSender&) = delete;

  // Starts the worker; a second call does nothing.
  void start();
  // Takes a push in without blocking on anything but a short lock: safe under MdmService's lock.
  void request(const PushTarget& target);
  // Drops what waits, lets the batch in flight finish (bounded by PushSettings::timeout per
  // step) and joins the worker.
  void stop();
  PushSenderStats stats() const;
  // Pushes waiting (including those backing off).
  std::size_t queued() const;

 private:
  struct Waiting {
    std::string channel_id;
    std::uint64_t enrollment = 0;
    unsigned attempts = 0;  // sends so far that APNs throttled or that failed
    std::chrono::steady_clock::time_point not_before;
  };
  void run();
  void settle(const Waiting& waiting, const PushTarget& target, int status, const std::string& reason,
              const std::string& error, bool hopeless);
  void say(const std::string& line);

  PushSettings settings_;
  Resolve resolve_;
  Log log_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Waiting> waiting_;  // by channel id: one push per channel waits at most
  // By channel id: the token_update APNs answered 410 for; pushes wait for a later TokenUpdate.
  std::map<std::string, std::uint64_t> unregistered_;
  PushSenderStats stats_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace mdmc::server
