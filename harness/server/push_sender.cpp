#include "harness/server/push_sender.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "harness/push/apns_client.hpp"

namespace mdmc::server {
namespace {

using Clock = std::chrono::steady_clock;

// The tight-retry fault's bound: a tight loop still, but not an endless one.
constexpr unsigned kTightRetries = 50;
// apns-expiration 0: deliver now or never, as a later push supersedes this one.
const std::string kExpireAtOnce = "0";
// Channels remembered as answered 410; past this the oldest id (in order) is forgotten.
constexpr std::size_t kMaxUnregistered = 65536;

push::ApnsClientConfig client_config(const PushSettings& settings) {
  push::ApnsClientConfig config;
  config.url = settings.apns_url;
  config.connect_to = settings.connect_to;
  config.trusted_ca_pem = settings.trusted_ca_pem;
  config.certificate = settings.certificate;
  if (!settings.provider_key_pem.empty()) {
    config.provider_key = push::ProviderKey{settings.provider_key_pem, settings.key_id, settings.team_id};
  }
  config.connect_timeout = settings.timeout;
  config.handshake_timeout = settings.timeout;
  config.response_timeout = settings.timeout;
  return config;
}

}  // namespace

PushSender::PushSender(PushSettings settings, Resolve resolve, Log log)
    : settings_(std::move(settings)), resolve_(std::move(resolve)), log_(std::move(log)) {
  if (!log_) log_ = [](const std::string& line) { fmt::print(stderr, "push: {}\n", line); };
}

PushSender::~PushSender() { stop(); }

void PushSender::start() {
  std::lock_guard lock(mutex_);
  if (worker_.joinable() || stopping_) return;
  worker_ = std::thread([this] { run(); });
}

void PushSender::say(const std::string& line) { log_(line); }

void PushSender::request(const PushTarget& target) {
  bool first_drop = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    ++stats_.requested;
    if (auto found = waiting_.find(target.channel_id); found != waiting_.end()) {
      // One push wakes the channel for every command queued meanwhile (APNs coalesces too).
      // A push waiting for an enrollment that ended is replaced by the new one's.
      ++stats_.coalesced;
      if (found->second.enrollment != target.enrollment)
        found->second = Waiting{target.channel_id, target.enrollment, 0, Clock::now()};
    } else if (waiting_.size() >= settings_.max_queued) {
      first_drop = stats_.dropped_full++ == 0;
    } else {
      waiting_.emplace(target.channel_id, Waiting{target.channel_id, target.enrollment, 0, Clock::now()});
    }
  }
  if (first_drop) {
    say(fmt::format("queue full ({} pushes waiting): dropping the push to {} (and counting the next ones)",
                    settings_.max_queued, target.channel_id));
  }
  wake_.notify_one();
}

void PushSender::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    waiting_.clear();
  }
  wake_.notify_all();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

PushSenderStats PushSender::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::size_t PushSender::queued() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

void PushSender::run() {
  push::ApnsClient client(client_config(settings_));
  const bool ignore_410 = settings_.fault == PushFault::push_after_unregistered;
  for (;;) {
    std::vector<Waiting> batch;
    {
      std::unique_lock lock(mutex_);
      for (;;) {
        if (stopping_) return;
        const auto now = Clock::now();
        auto earliest = Clock::time_point::max();
        for (auto it = waiting_.begin(); it != waiting_.end() && batch.size() < settings_.max_batch;) {
          if (it->second.not_before <= now) {
            batch.push_back(std::move(it->second));
            it = waiting_.erase(it);
          } else {
            earliest = std::min(earliest, it->second.not_before);
            ++it;
          }
        }
        if (!batch.empty()) break;
        if (earliest == Clock::time_point::max()) {
          wake_.wait(lock);
        } else {
          wake_.wait_until(lock, earliest);
        }
      }
    }
    // Resolved now, not when requested: the latest TokenUpdate wins, a checked-out channel is gone.
    std::vector<push::ApnsPush> pushes;
    std::vector<std::pair<Waiting, PushTarget>> sending;
    for (auto& waiting : batch) {
      auto target = resolve_(waiting.channel_id);
      std::lock_guard lock(mutex_);
      if (!target || target->enrollment != waiting.enrollment) {
        ++stats_.skipped_gone;
        continue;
      }
      if (auto gone = unregistered_.find(waiting.channel_id);
          !ignore_410 && gone != unregistered_.end() && gone->second >= target->token_update) {
        ++stats_.skipped_unregistered;
        continue;
      }
      auto push = push::ApnsPush::mdm(target->token, target->push_magic, target->topic);
      push.expiration = kExpireAtOnce;
      if (settings_.fault == PushFault::wrong_type) push.push_type = "alert";
      pushes.push_back(std::move(push));
      sending.emplace_back(std::move(waiting), std::move(*target));
    }
    if (pushes.empty()) continue;
    {
      std::lock_guard lock(mutex_);
      stats_.sent += pushes.size();
    }
    const auto results = client.send_all(pushes);
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& result = results[i];
      // A URL or credentials that do not load fail every push alike: no use retrying.
      const bool hopeless =
          result.error == push::ApnsError::bad_url || result.error == push::ApnsError::bad_credentials;
      settle(sending[i].first, sending[i].second, hopeless ? 0 : result.status, result.reason,
             result.error == push::ApnsError::none
                 ? std::string()
                 : fmt::format("{}: {}", push::apns_error_name(result.error), result.error_detail),
             hopeless);
    }
  }
}

void PushSender::settle(const Waiting& waiting, const PushTarget& target, int status, const std::string& reason,
                        const std::string& error, bool hopeless) {
  std::string line;
  {
    std::lock_guard lock(mutex_);
    if (status == 200) {
      ++stats_.accepted;
      return;
    }
    if (status == 410) {
      ++stats_.unregistered;
      if (unregistered_.size() >= kMaxUnregistered && !unregistered_.count(target.channel_id)) {
        unregistered_.erase(unregistered_.begin());
      }
      unregistered_[target.channel_id] = target.token_update;
      line = fmt::format("410 {} for {} (token {}): no pushes to it until its next TokenUpdate", reason,
                         target.channel_id, target.token);
    } else if (hopeless) {
      ++stats_.failed;
      line = fmt::format("cannot push to {}: {}; not retried", target.channel_id, error);
    } else if (status == 429 || status == 503 || !error.empty()) {
      if (error.empty()) {
        ++stats_.throttled;
      } else {
        ++stats_.failed;
      }
      const bool tight = settings_.fault == PushFault::tight_retry;
      const unsigned most = tight ? kTightRetries : settings_.max_retries;
      if (waiting.attempts >= most || stopping_) {
        ++stats_.given_up;
        line = fmt::format("giving up the push to {} after {} retries: {}", target.channel_id, waiting.attempts,
                           error.empty() ? fmt::format("{} {}", status, reason) : error);
      } else {
        // Exponential: first_backoff, twice that, ... up to max_backoff.
        auto delay = settings_.first_backoff;
        for (unsigned i = 0; i < waiting.attempts && delay < settings_.max_backoff; ++i) delay *= 2;
        delay = std::min(delay, settings_.max_backoff);
        Waiting retry = waiting;
        ++retry.attempts;
        retry.not_before = tight ? Clock::now() : Clock::now() + delay;
        ++stats_.retries;
        // A request that came in meanwhile is folded into the retry: it waits out the backoff too.
        waiting_[target.channel_id] = retry;
        if (!tight) {
          line =
              fmt::format("{} for {}: retry {} in {} ms", error.empty() ? fmt::format("{} {}", status, reason) : error,
                          target.channel_id, retry.attempts, delay.count());
        }
      }
    } else {
      ++stats_.refused;
      line = fmt::format("APNs refused the push to {} (token {}): {} {}; not retried", target.channel_id, target.token,
                         status, reason);
    }
  }
  if (!line.empty()) say(line);
  wake_.notify_one();
}

}  // namespace mdmc::server
