#include "harness/load/engine.hpp"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "harness/base/bytes.hpp"
#include "harness/net/http.hpp"
#include "harness/pki/pki.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/target/identity_pool.hpp"
#include "harness/target/session.hpp"

namespace mdmc::load {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// Exchanges kept per channel for a finding's context, and how much of each body.
constexpr std::size_t kRecentExchanges = 4;
constexpr std::size_t kExcerptBytes = 200;
// A series that has not ended after this many exchanges is stopped (the scenario runner's bound).
constexpr int kMaxSeriesExchanges = 64;
// Enrollment attempts per device before it gives up for the run.
constexpr int kEnrollAttempts = 3;

enum class Phase { steady, drain, stopped };

std::string excerpt(std::string_view body) {
  std::string out(body.substr(0, kExcerptBytes));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') c = '.';
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';  // the views want UTF-8; a byte excerpt may split a character
  }
  if (body.size() > kExcerptBytes) out += "...";
  return out;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// --- TLS -----------------------------------------------------------------------------------

struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ChainFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

// A device's TLS client identity, parsed once and set on each of its connections' SSL objects.
struct ClientKey {
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, KeyFree> key;
  std::unique_ptr<STACK_OF(X509), ChainFree> chain;
};

std::shared_ptr<ClientKey> parse_client_key(const pki::Identity& identity) {
  auto out = std::make_shared<ClientKey>();
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(identity.cert_pem.data(), static_cast<int>(identity.cert_pem.size())), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(identity.key_pem.data(), static_cast<int>(identity.key_pem.size())), BIO_free);
  if (!cert_bio || !key_bio) return nullptr;
  out->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  out->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  out->chain.reset(sk_X509_new_null());
  if (!identity.chain_pem.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> chain_bio(
        BIO_new_mem_buf(identity.chain_pem.data(), static_cast<int>(identity.chain_pem.size())), BIO_free);
    while (X509* c = chain_bio ? PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr) : nullptr) {
      sk_X509_push(out->chain.get(), c);
    }
  }
  if (!out->cert || !out->key) return nullptr;
  return out;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// --- Where requests go -----------------------------------------------------------------------

struct Endpoint {
  net::Url url;
  std::string host_header;
  asio::ip::tcp::resolver::results_type resolved;
};

base::Result<Endpoint> resolve(const std::string& text, std::string_view what) {
  auto url = net::parse_url(text);
  if (!url) return base::fail(std::string(what) + ": '" + text + "' is not an http(s) URL");
  Endpoint ep;
  ep.url = *url;
  const bool default_port = (url->scheme == "https" && url->port == 443) || (url->scheme == "http" && url->port == 80);
  ep.host_header = default_port ? url->host : url->host + ":" + std::to_string(url->port);
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  error_code ec;
  ep.resolved = resolver.resolve(url->host, std::to_string(url->port), ec);
  if (ec) return base::fail(std::string(what) + ": " + url->host + " does not resolve: " + ec.message());
  return ep;
}

// --- One keep-alive connection ----------------------------------------------------------------

struct Reply {
  int status = 0;
  std::string body;
  std::string error;  // the error kind when no response arrived: "connect", "tls", "timeout", ...
  std::string detail;
};

std::string error_kind(const error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec == http::error::body_limit || ec == http::error::header_limit) return "too-large";
  if (ec == http::error::end_of_stream) return "closed";
  if (ec.category() == make_error_code(http::error::bad_target).category()) return "bad-response";
  if (ec == asio::error::eof || ec == ssl::error::stream_truncated) return "closed";
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) return "reset";
  return "io";
}

class Connection {
 public:
  Connection(const asio::any_io_executor& executor, ssl::context* tls) {
    if (tls) {
      secure_.emplace(executor, *tls);
    } else {
      plain_.emplace(executor);
    }
  }
  beast::tcp_stream& tcp() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }
  bool open() const { return open_; }
  void close() {
    error_code ec;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    tcp().socket().close(ec);
    open_ = false;
  }

  awaitable<Reply> connect(const Endpoint& to, const ClientKey* key, const net::ClientLimits& limits, bool verify) {
    Reply reply;
    tcp().expires_after(limits.connect_timeout);
    auto [ec, unused] = co_await tcp().async_connect(to.resolved, kNoThrow);
    if (ec) {
      reply.error = ec == beast::error::timeout ? "timeout" : "connect";
      reply.detail = "connect to " + to.host_header + ": " + ec.message();
      co_return reply;
    }
    tcp().socket().set_option(asio::ip::tcp::no_delay(true), ec);
    if (secure_) {
      SSL* native = secure_->native_handle();
      if (key && SSL_use_cert_and_key(native, key->cert.get(), key->key.get(), key->chain.get(), 1) != 1) {
        reply.error = "tls";
        reply.detail = "the device's client certificate could not be used";
        co_return reply;
      }
      if (!is_ip_literal(to.url.host)) {
        char* name = const_cast<char*>(to.url.host.c_str());  // OpenSSL copies it
        SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name);
      }
      if (verify) {
        secure_->set_verify_mode(ssl::verify_peer, ec);
        secure_->set_verify_callback(ssl::host_name_verification(to.url.host), ec);
      } else {
        secure_->set_verify_mode(ssl::verify_none, ec);
      }
      tcp().expires_after(limits.tls_handshake_timeout);
      auto [hs] = co_await secure_->async_handshake(ssl::stream_base::client, kNoThrow);
      if (hs) {
        reply.error = hs == beast::error::timeout ? "timeout" : "tls";
        reply.detail = "TLS handshake with " + to.host_header + ": " + hs.message();
        co_return reply;
      }
    }
    open_ = true;
    co_return reply;
  }

  awaitable<Reply> send(http::request<http::string_body>& request, const net::ClientLimits& limits) {
    Reply reply;
    tcp().expires_after(limits.write_timeout);
    auto [wec, written] = secure_ ? co_await http::async_write(*secure_, request, kNoThrow)
                                  : co_await http::async_write(*plain_, request, kNoThrow);
    if (wec) {
      close();
      reply.error = error_kind(wec);
      reply.detail = "sending: " + wec.message();
      co_return reply;
    }
    http::response_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.max_header_bytes, UINT32_MAX)));
    parser.body_limit(limits.max_body_bytes);
    tcp().expires_after(limits.header_timeout + limits.body_timeout);
    auto [rec, read] = secure_ ? co_await http::async_read(*secure_, buffer_, parser, kNoThrow)
                               : co_await http::async_read(*plain_, buffer_, parser, kNoThrow);
    if (rec) {
      close();
      reply.error = error_kind(rec);
      reply.detail = "reading the answer: " + rec.message();
      co_return reply;
    }
    auto response = parser.release();
    reply.status = static_cast<int>(response.result_int());
    reply.body = std::move(response.body());
    if (!response.keep_alive()) close();
    // The read buffer keeps its capacity for the connection's next answer, within reason.
    if (buffer_.capacity() > 64 * 1024) buffer_ = beast::flat_buffer();
    co_return reply;
  }

 private:
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
  bool open_ = false;
};

// --- The run's command ledger -------------------------------------------------------------------

// Every command the run queued, by CommandUUID, and what became of it. Shared by every thread:
// a command may turn up on a channel another thread runs (that is what it watches for).
class Ledger {
 public:
  enum class State { enqueuing, queued, delivered, not_now, acknowledged, error, lost };
  struct Entry {
    std::string channel;
    State state = State::enqueuing;
    Clock::time_point accepted{};
    Clock::time_point not_now_at{};
    int deliveries = 0;
  };
  struct Violation {
    std::string invariant;
    std::string uuid;
    std::string detail;
  };

  explicit Ledger(Clock::duration settle) : settle_(settle) {}

  void queued(const std::string& uuid, const std::string& channel) {
    std::lock_guard lock(mu_);
    entries_[uuid].channel = channel;
    outstanding_[channel].insert(uuid);
  }
  void accepted(const std::string& uuid, Clock::time_point at) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(uuid);
    if (it == entries_.end()) return;
    ++counts_.queued;
    it->second.accepted = at;
    if (it->second.state == State::enqueuing) it->second.state = State::queued;
  }
  void refused(const std::string& uuid) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(uuid);
    if (it == entries_.end()) return;
    ++counts_.refused;
    outstanding_[it->second.channel].erase(uuid);
    entries_.erase(it);
  }

  // A command arrived on `channel`. Nothing for a command of the run delivered where and when
  // it should be; "unknown" for one the run never queued; else the violation.
  std::optional<Violation> delivered(const std::string& uuid, const std::string& channel) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(uuid);
    if (it == entries_.end()) return Violation{"unknown", uuid, ""};
    auto& e = it->second;
    ++e.deliveries;
    if (e.deliveries == 1) ++counts_.delivered;
    if (e.channel != channel) {
      return Violation{"delivered-to-other-channel", uuid, "queued for " + e.channel + ", delivered on " + channel};
    }
    if (e.state == State::acknowledged || e.state == State::error) {
      return Violation{"delivered-twice", uuid,
                       std::string("delivered again after the channel answered it ") +
                           (e.state == State::acknowledged ? "Acknowledged" : "Error") + " (delivery " +
                           std::to_string(e.deliveries) + ")"};
    }
    e.state = State::delivered;
    return std::nullopt;
  }

  void answered(const std::string& uuid, protocol::Status status, Clock::time_point at) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(uuid);
    if (it == entries_.end()) return;
    auto& e = it->second;
    switch (status) {
      case protocol::Status::not_now:
        ++counts_.not_now;
        e.state = State::not_now;
        e.not_now_at = at;
        return;
      case protocol::Status::error:
        ++counts_.error;
        e.state = State::error;
        break;
      default:
        ++counts_.acknowledged;
        e.state = State::acknowledged;
        break;
    }
    outstanding_[e.channel].erase(uuid);
  }

  // A series of `channel` that started at `started` ended with an empty body: the server said
  // it holds nothing more for the channel. Every command it had accepted before the series
  // started (its settle time past), and every command answered NotNow in an earlier series, is
  // then lost. Each is reported once.
  std::vector<Violation> series_ended(const std::string& channel, Clock::time_point started) {
    std::lock_guard lock(mu_);
    std::vector<Violation> out;
    auto found = outstanding_.find(channel);
    if (found == outstanding_.end()) return out;
    for (auto it = found->second.begin(); it != found->second.end();) {
      auto& e = entries_.at(*it);
      const bool was_held = e.state == State::queued && e.accepted + settle_ < started;
      const bool held_after_not_now = e.state == State::not_now && e.not_now_at < started;
      if (was_held || held_after_not_now) {
        out.push_back({held_after_not_now ? "lost-after-not-now" : "not-delivered", *it,
                       held_after_not_now ? "answered NotNow in an earlier series; a later series ended with an "
                                            "empty body without sending it again"
                                          : "queued and accepted before the series started; the series ended with an "
                                            "empty body without it"});
        e.state = State::lost;
        ++lost_;
        it = found->second.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  std::size_t outstanding(const std::string& channel) {
    std::lock_guard lock(mu_);
    auto it = outstanding_.find(channel);
    return it == outstanding_.end() ? 0 : it->second.size();
  }
  std::size_t outstanding_total() {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [channel, uuids] : outstanding_) n += uuids.size();
    return n;
  }
  CommandCounts counts() {
    std::lock_guard lock(mu_);
    CommandCounts c = counts_;
    c.outstanding = 0;
    for (const auto& [channel, uuids] : outstanding_) c.outstanding += uuids.size();
    return c;
  }

 private:
  std::mutex mu_;
  Clock::duration settle_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<std::string, std::set<std::string>> outstanding_;  // by channel: not finally answered
  CommandCounts counts_;
  std::uint64_t lost_ = 0;
};

// --- The fleet as a thread runs it --------------------------------------------------------------

struct DeviceRun;

struct ChannelRun {
  DeviceRun* device = nullptr;
  protocol::Channel channel;
  std::string id;                             // "UDID" or "UDID:UserID"
  const protocol::UserFacts* user = nullptr;  // null for the device channel
  std::string idle_body;                      // the same bytes every time
  std::mt19937_64 rng;
  std::unique_ptr<Connection> connection;
  std::list<ChannelRun*>::iterator idle_position;  // in the thread's idle-connection list
  bool in_idle_list = false;
  std::array<ExchangeRecord, kRecentExchanges> recent;
  std::size_t recent_count = 0;
  bool enrolled = false;

  void remember(ExchangeRecord record) { recent[recent_count++ % kRecentExchanges] = std::move(record); }
  std::vector<ExchangeRecord> recent_exchanges() const {
    std::vector<ExchangeRecord> out;
    const std::size_t n = std::min(recent_count, kRecentExchanges);
    for (std::size_t i = recent_count - n; i < recent_count; ++i) out.push_back(recent[i % kRecentExchanges]);
    return out;
  }
};

struct DeviceRun {
  FleetDevice fleet;
  emulator::IdentitySource ids;
  emulator::Device device;
  std::vector<std::unique_ptr<emulator::UserAgent>> agents;
  pki::Identity identity;
  std::shared_ptr<ClientKey> client_key;
  std::vector<std::unique_ptr<ChannelRun>> channels;  // [0] the device's, then its users'

  explicit DeviceRun(FleetDevice f) : fleet(std::move(f)), ids(fleet.seed ^ 0x5eedULL), device(fleet.facts, ids) {}
};

struct Shared;

struct Worker {
  // Made first and destroyed by hand (~Worker): the connections' sockets close while it still
  // runs, then it goes with every coroutine frame parked in it, while what the frames refer to
  // is still there.
  std::unique_ptr<asio::io_context> io_owner = std::make_unique<asio::io_context>(1);
  asio::io_context& io = *io_owner;
  Shared& shared;
  unsigned index;
  Figures figures;
  std::vector<std::unique_ptr<DeviceRun>> devices;
  std::vector<ChannelRun*> enrolled;  // the admin loop's choice
  std::mt19937_64 rng;
  emulator::IdentitySource uuids;
  // Bounds of this thread: requests on the wire (with the coroutines waiting for a slot, in
  // order), open connections.
  std::size_t in_flight_cap = 1;
  std::size_t in_flight = 0;
  std::deque<asio::steady_timer*> slot_waiters;
  std::size_t connection_cap = 1;
  std::size_t connections = 0;
  std::list<ChannelRun*> idle_connections;  // least recently used first
  Clock::time_point next_start{};           // the rate limit's next slot
  Clock::duration start_interval{0};
  // Kept-alive connections to the admin API, each used by one enqueue at a time (there are as
  // many as enqueues were ever in flight at once, so at most the in-flight bound).
  std::vector<std::unique_ptr<Connection>> admin_connections;
  std::atomic<std::uint64_t> exchanges{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> on_wire{0};
  std::atomic<std::uint64_t> channels_enrolled{0};

  Worker(Shared& s, unsigned i, std::uint64_t seed, std::chrono::milliseconds interval)
      : shared(s), index(i), figures(interval), rng(seed), uuids(seed ^ 0xc0ffeeULL) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    for (auto& d : devices) {
      for (auto& ch : d->channels) ch->connection.reset();
    }
    admin_connections.clear();
    io_owner.reset();
  }
};

struct Shared {
  const target::TargetProfile& target;
  const LoadOptions& options;
  Endpoint check_in;
  Endpoint server;
  std::optional<Endpoint> admin;
  std::optional<ssl::context> tls;  // for https: the profile's trust; identities go on each SSL
  bool verify = true;
  bool signs = false;
  Ledger ledger;
  Clock::time_point start;
  std::atomic<Phase> phase{Phase::steady};
  std::mutex findings_mu;
  std::vector<Finding> findings;
  std::atomic<std::uint64_t> findings_total{0};
  std::atomic<std::uint64_t> not_queued{0};
  // For a fixed amount of work: devices whose enrollment is over (either way), channels done.
  std::atomic<std::uint64_t> devices_done{0};
  std::atomic<std::uint64_t> channels_started{0};
  std::atomic<std::uint64_t> channels_done{0};

  Shared(const target::TargetProfile& t, const LoadOptions& o, Clock::duration settle)
      : target(t), options(o), ledger(settle) {}

  void add_finding(Finding finding) {
    ++findings_total;
    std::lock_guard lock(findings_mu);
    if (findings.size() < kMaxFindings) findings.push_back(std::move(finding));
  }
};

awaitable<void> sleep_for(Worker& w, Clock::duration d) {
  asio::steady_timer timer(w.io, d);
  co_await timer.async_wait(kNoThrow);
}

// Waits for a slot on the wire (first come, first served), then for the rate limit's turn.
awaitable<void> acquire_slot(Worker& w) {
  if (w.in_flight < w.in_flight_cap) {
    ++w.in_flight;
  } else {
    // Parked until a release hands its slot over; each waiter has its own timer, so a release
    // wakes exactly one.
    asio::steady_timer handed_over(w.io, Clock::time_point::max());
    w.slot_waiters.push_back(&handed_over);
    co_await handed_over.async_wait(kNoThrow);
  }
  ++w.on_wire;
  if (w.start_interval.count() > 0) {
    const auto now = Clock::now();
    const auto at = std::max(now, w.next_start);
    w.next_start = at + w.start_interval;
    if (at > now) co_await sleep_for(w, at - now);
  }
}

void release_slot(Worker& w) {
  --w.on_wire;
  if (w.slot_waiters.empty()) {
    --w.in_flight;
    return;
  }
  asio::steady_timer* next = w.slot_waiters.front();
  w.slot_waiters.pop_front();
  next->cancel();
}

// The channel's connection, made or taken back from the idle list; the least recently used idle
// connection of the thread is closed when the thread is at its connection bound.
awaitable<Reply> ready_connection(Worker& w, ChannelRun& ch, const Endpoint& to) {
  if (ch.in_idle_list) {
    w.idle_connections.erase(ch.idle_position);
    ch.in_idle_list = false;
  }
  if (ch.connection && ch.connection->open()) co_return Reply{};
  if (ch.connection) {
    ch.connection.reset();
    --w.connections;
  }
  if (w.connections >= w.connection_cap && !w.idle_connections.empty()) {
    ChannelRun* victim = w.idle_connections.front();
    w.idle_connections.pop_front();
    victim->in_idle_list = false;
    victim->connection.reset();
    --w.connections;
  }
  ch.connection = std::make_unique<Connection>(w.io.get_executor(), w.shared.tls ? &*w.shared.tls : nullptr);
  ++w.connections;
  co_return co_await ch.connection->connect(to, ch.device->client_key.get(), w.shared.target.limits, w.shared.verify);
}

void park_connection(Worker& w, ChannelRun& ch) {
  if (!ch.connection) return;
  if (!ch.connection->open()) {
    ch.connection.reset();
    --w.connections;
    return;
  }
  ch.idle_position = w.idle_connections.insert(w.idle_connections.end(), &ch);
  ch.in_idle_list = true;
}

http::request<http::string_body> make_request(Shared& s, const Endpoint& to, std::string_view content_type,
                                              std::string body, const DeviceRun* device) {
  http::request<http::string_body> request{http::verb::put, to.url.target, 11};
  request.set(http::field::host, to.host_header);
  request.set(http::field::content_type, content_type);
  request.set(http::field::user_agent, "MDM/1.0 mdmconform-load");
  if (s.signs && device) {
    auto signature = pki::mdm_signature(device->identity, body);
    if (signature) request.set("Mdm-Signature", *signature);
  }
  request.body() = std::move(body);
  request.prepare_payload();
  request.keep_alive(true);
  return request;
}

// One request of a channel, measured and remembered. A kept-alive connection the server closed
// meanwhile is retried once on a new one, as HTTP clients do: only when nothing was answered.
// Every parameter is a value: g++ 12 may end a temporary bound to a coroutine's reference
// parameter before the coroutine is done with it.
awaitable<Reply> exchange(Worker& w, ChannelRun& ch, const Endpoint& to, std::string message, std::string content_type,
                          std::string body) {
  co_await acquire_slot(w);
  const auto started = Clock::now();
  Reply reply;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = ch.connection && ch.connection->open();
    reply = co_await ready_connection(w, ch, to);
    if (!reply.error.empty()) break;
    auto request = make_request(w.shared, to, content_type, body, ch.device);
    reply = co_await ch.connection->send(request, w.shared.target.limits);
    if (reply.error.empty() || !reused || (reply.error != "closed" && reply.error != "reset")) break;
  }
  const auto now = Clock::now();
  release_slot(w);
  park_connection(w, ch);
  ++w.exchanges;
  w.figures.record({message, reply.status}, now - started, now - w.shared.start);
  if (!reply.error.empty()) {
    ++w.errors;
    w.figures.record_error(reply.error, now - w.shared.start);
  } else if (reply.status >= 500) {
    ++w.errors;
    w.figures.record_error("5xx", now - w.shared.start);
  }
  ch.remember({seconds(now - w.shared.start), ch.id, message, reply.status, excerpt(body),
               reply.error.empty() ? excerpt(reply.body) : reply.error + ": " + reply.detail});
  co_return reply;
}

void report_violation(Worker& w, ChannelRun& ch, std::string invariant, std::string uuid, std::string detail) {
  Finding f;
  f.invariant = std::move(invariant);
  f.channel = ch.id;
  f.command_uuid = std::move(uuid);
  f.detail = std::move(detail);
  f.at_s = seconds(Clock::now() - w.shared.start);
  f.exchanges = ch.recent_exchanges();
  w.shared.add_finding(std::move(f));
}

std::string describe(const Reply& reply) {
  if (!reply.error.empty()) return reply.error + ": " + reply.detail;
  return "HTTP " + std::to_string(reply.status) +
         (reply.body.empty() ? " with an empty body" : " with " + std::to_string(reply.body.size()) + " bytes");
}

protocol::Status choose_answer(Worker& w, ChannelRun& ch) {
  if (w.shared.phase.load() != Phase::steady) return protocol::Status::acknowledged;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double x = u(ch.rng);
  if (x < w.shared.options.error_ratio) return protocol::Status::error;
  if (x < w.shared.options.error_ratio + w.shared.options.not_now_ratio) return protocol::Status::not_now;
  return protocol::Status::acknowledged;
}

// One series: Idle, then a report for every command, until the server answers with an empty body.
awaitable<void> run_series(Worker& w, ChannelRun& ch) {
  Shared& s = w.shared;
  const auto started = Clock::now();
  const std::string content_type(protocol::kCommandContentType);
  Reply reply = co_await exchange(w, ch, s.server, "Idle", content_type, ch.idle_body);
  for (int n = 1;; ++n) {
    if (s.phase.load() == Phase::stopped) co_return;
    if (!reply.error.empty()) co_return;  // counted as an error; the channel tries again after its think time
    if (reply.status >= 500) {
      report_violation(w, ch, "server-error", "", "the server answered " + describe(reply));
      co_return;
    }
    if (reply.status != 200 || (reply.body.empty() == false && n > kMaxSeriesExchanges)) {
      report_violation(w, ch, "series-end-not-empty", "",
                       n > kMaxSeriesExchanges
                           ? "the series had not ended after " + std::to_string(kMaxSeriesExchanges) + " exchanges"
                           : "the series ended with " + describe(reply) + ", not 200 with an empty body");
      w.figures.record_error("unexpected-status", Clock::now() - s.start);
      co_return;
    }
    if (reply.body.empty()) {
      for (auto& v : s.ledger.series_ended(ch.id, started)) report_violation(w, ch, v.invariant, v.uuid, v.detail);
      co_return;
    }
    auto value = plist::parse(reply.body, s.target.plist_limits);
    auto command =
        value ? protocol::decode_command(*value) : protocol::Decoded<protocol::Command>(base::fail(value.message()));
    if (!command) {
      report_violation(w, ch, "series-end-not-empty", "",
                       "the series ended with a body that is not a command: " + command.message());
      w.figures.record_error("bad-body", Clock::now() - s.start);
      co_return;
    }
    if (auto v = s.ledger.delivered(command->uuid, ch.id)) {
      if (v->invariant == "unknown") {
        // Not the run's: a server may queue commands of its own (at enrollment, say).
        ++s.not_queued;
      } else {
        report_violation(w, ch, v->invariant, v->uuid, v->detail);
      }
    }
    const auto status = choose_answer(w, ch);
    protocol::ReportSpec spec;
    spec.status = status;
    spec.command_uuid = command->uuid;
    if (status == protocol::Status::error)
      spec.error_chain.push_back({12021, "MCMDMErrorDomain", "mdmconform load: an Error answer"});
    auto body = plist::to_xml(plist::Value(protocol::report(ch.channel, ch.user, spec)));
    const std::string label = status == protocol::Status::acknowledged ? "Acknowledged"
                              : status == protocol::Status::not_now    ? "NotNow"
                                                                       : "Error";
    reply = co_await exchange(w, ch, s.server, label, content_type, std::move(body));
    // The answer was given once the server took the report; a report it did not take leaves
    // the command as delivered (not lost, not answered).
    if (reply.error.empty() && reply.status == 200) s.ledger.answered(command->uuid, status, Clock::now());
  }
}

Clock::duration exponential(std::mt19937_64& rng, std::chrono::milliseconds mean) {
  if (mean.count() <= 0) return Clock::duration::zero();
  std::exponential_distribution<double> d(1.0 / static_cast<double>(mean.count()));
  const double ms = std::min(d(rng), 20.0 * static_cast<double>(mean.count()));
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

awaitable<void> enqueue(Worker& w, ChannelRun& target, bool in_flight_bound);

awaitable<void> channel_loop(Worker& w, ChannelRun& ch) {
  Shared& s = w.shared;
  for (int i = 0; i < s.options.commands_per_channel && s.phase.load() == Phase::steady; ++i)
    co_await enqueue(w, ch, true);
  for (int series = 0; s.options.series_per_channel == 0 || series < s.options.series_per_channel; ++series) {
    const Phase phase = s.phase.load();
    if (phase == Phase::stopped) co_return;
    if (phase == Phase::drain) {
      if (s.ledger.outstanding(ch.id) == 0) break;
      co_await sleep_for(w, std::chrono::milliseconds(20));
    } else {
      // A think time that reaches past --duration ends there: the drain wants this channel now
      // if it has commands outstanding.
      const auto wake = Clock::now() + exponential(ch.rng, s.options.think);
      const auto steady_end = s.start + s.options.duration;
      co_await sleep_for(w, std::min(wake, steady_end) - Clock::now());
      if (s.phase.load() == Phase::stopped) co_return;
      if (wake >= steady_end && s.ledger.outstanding(ch.id) == 0) break;
    }
    co_await run_series(w, ch);
  }
  ++s.channels_done;
}

// A check-in of the enrollment: 200 or the device stops here for now.
awaitable<bool> check_in(Worker& w, ChannelRun& ch, emulator::Message message, std::string label,
                         emulator::Answer* answer = nullptr) {
  auto reply =
      co_await exchange(w, ch, message.endpoint == protocol::Endpoint::check_in ? w.shared.check_in : w.shared.server,
                        label, message.content_type(), message.bytes());
  if (answer) *answer = {reply.status, reply.body};
  if (!reply.error.empty()) co_return false;
  if (reply.status >= 500) report_violation(w, ch, "server-error", "", label + " answered " + describe(reply));
  if (reply.status != 200) {
    w.figures.record_error("enroll-refused", Clock::now() - w.shared.start);
    co_return false;
  }
  co_return true;
}

awaitable<bool> enroll(Worker& w, DeviceRun& d) {
  ChannelRun& device = *d.channels[0];
  emulator::Message authenticate{protocol::Endpoint::check_in, "Authenticate",
                                 protocol::authenticate(d.device.facts())};
  if (!co_await check_in(w, device, std::move(authenticate), "Authenticate")) co_return false;
  emulator::Message token{protocol::Endpoint::check_in, "TokenUpdate",
                          protocol::token_update(d.device.facts(), d.device.push())};
  if (!co_await check_in(w, device, std::move(token), "TokenUpdate")) co_return false;
  device.enrolled = true;
  for (std::size_t u = 0; u < d.agents.size(); ++u) {
    auto& agent = *d.agents[u];
    ChannelRun& ch = *d.channels[u + 1];
    if (agent.kind() == emulator::UserKind::network) {
      // UserAuthenticate, once more with a DigestResponse when the server asks for one.
      for (int step = 0; step < 2 && agent.state() != emulator::UserAgent::State::authenticated; ++step) {
        emulator::Answer answer;
        co_await check_in(w, ch, agent.user_authenticate(), "UserAuthenticate", &answer);
        if (answer.status != 200 || agent.on_user_authenticate(answer, w.shared.target.plist_limits)) break;
      }
      if (agent.state() != emulator::UserAgent::State::authenticated) continue;
    }
    if (co_await check_in(w, ch, agent.token_update(d.device.facts()), "TokenUpdate")) ch.enrolled = true;
  }
  co_return true;
}

awaitable<void> device_loop(Worker& w, DeviceRun& d, Clock::duration start_after) {
  co_await sleep_for(w, start_after);
  bool enrolled = false;
  for (int attempt = 0; attempt < kEnrollAttempts && !enrolled && w.shared.phase.load() == Phase::steady; ++attempt) {
    if (attempt > 0) co_await sleep_for(w, std::chrono::seconds(1) * attempt);
    enrolled = co_await enroll(w, d);
  }
  if (enrolled) {
    for (auto& ch : d.channels) {
      if (!ch->enrolled) continue;
      w.enrolled.push_back(ch.get());
      ++w.channels_enrolled;
      ++w.shared.channels_started;
      asio::co_spawn(w.io, channel_loop(w, *ch), asio::detached);
    }
  }
  ++w.shared.devices_done;
}

// Queues commands on random enrolled channels of this thread at its share of the rate.
awaitable<void> admin_loop(Worker& w, double per_second) {
  Shared& s = w.shared;
  std::exponential_distribution<double> gap(per_second);
  while (s.phase.load() == Phase::steady) {
    co_await sleep_for(
        w, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(gap(w.rng), 60.0))));
    // By the clock, not the phase (which the calling thread flips a little later): a channel
    // whose think time ended at --duration with nothing outstanding has stopped for good.
    if (Clock::now() >= s.start + s.options.duration) break;
    if (w.enrolled.empty()) continue;
    ChannelRun& target = *w.enrolled[std::uniform_int_distribution<std::size_t>(0, w.enrolled.size() - 1)(w.rng)];
    // Outside the in-flight bound (one at a time per thread): the channels may fill it, and the
    // commands must still come at the rate asked for.
    co_await enqueue(w, target, false);
  }
}

// Queues one command for `target` through the admin adapter, and enters it in the ledger first:
// the server may deliver it before its answer to the enqueue arrives.
awaitable<void> enqueue(Worker& w, ChannelRun& target, bool in_flight_bound) {
  Shared& s = w.shared;
  const auto& admin = *s.target.enqueue;
  const std::string uuid = w.uuids.uuid();
  static constexpr std::array<const char*, 3> kDeviceTypes{"ProfileList", "InstalledApplicationList",
                                                           "CertificateList"};
  const char* type = target.channel.is_user() ? "ProfileList" : kDeviceTypes[w.rng() % kDeviceTypes.size()];
  auto command = protocol::make_command(uuid, type);
  Endpoint to = *s.admin;
  auto url = net::parse_url(target::admin_url(admin, target.channel));
  if (!url) co_return;
  to.url.target = url->target;
  s.ledger.queued(uuid, target.id);
  if (in_flight_bound) co_await acquire_slot(w);
  const auto started = Clock::now();
  std::unique_ptr<Connection> connection;
  if (!w.admin_connections.empty()) {
    connection = std::move(w.admin_connections.back());
    w.admin_connections.pop_back();
  }
  if (!connection || !connection->open()) {
    connection =
        std::make_unique<Connection>(w.io.get_executor(), to.url.scheme == "https" && s.tls ? &*s.tls : nullptr);
    auto made = co_await connection->connect(to, nullptr, s.target.limits, s.verify);
    if (!made.error.empty()) {
      if (in_flight_bound) release_slot(w);
      s.ledger.refused(uuid);
      w.figures.record_error("enqueue-" + made.error, Clock::now() - s.start);
      ++w.errors;
      co_return;
    }
  }
  http::request<http::string_body> request{admin.method == "POST" ? http::verb::post : http::verb::put, to.url.target,
                                           11};
  request.set(http::field::host, to.host_header);
  request.set(http::field::content_type, "application/xml");
  if (!admin.basic_user.empty()) {
    request.set(http::field::authorization,
                "Basic " + base::base64_encode(admin.basic_user + ":" + admin.basic_password));
  }
  request.body() = plist::to_xml(plist::Value(command.body));
  request.prepare_payload();
  request.keep_alive(true);
  auto reply = co_await connection->send(request, s.target.limits);
  const auto now = Clock::now();
  if (in_flight_bound) release_slot(w);
  if (connection->open()) w.admin_connections.push_back(std::move(connection));
  ++w.exchanges;
  w.figures.record({"enqueue", reply.status}, now - started, now - s.start);
  const bool ok = reply.error.empty() && std::find(admin.expect_status.begin(), admin.expect_status.end(),
                                                   reply.status) != admin.expect_status.end();
  if (ok) {
    s.ledger.accepted(uuid, now);
  } else {
    s.ledger.refused(uuid);
    ++w.errors;
    w.figures.record_error(reply.error.empty() ? "enqueue-refused" : "enqueue-" + reply.error, now - s.start);
  }
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::size_t open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 4096;
  return static_cast<std::size_t>(limit.rlim_cur);
}

}  // namespace

base::Result<LoadReport> run_load(const target::TargetProfile& target, const LoadOptions& options) {
  if (options.devices < 1) return base::fail("--devices must be at least 1");
  if (options.users_per_device < 0 || options.users_per_device > 64)
    return base::fail("--users-per-device must be 0 to 64");
  if ((options.commands_per_minute > 0 || options.commands_per_channel > 0) && !target.enqueue) {
    return base::fail(
        "the target profile has no admin adapter (admin.enqueue), so no command can be queued: give one, or "
        "--commands-per-minute 0");
  }
  const auto settle = target.enqueue ? target.enqueue->settle : std::chrono::milliseconds(0);
  Shared shared(target, options, settle);
  auto check_in = resolve(target.check_in_url, "urls.check_in");
  if (!check_in) return base::fail(check_in.message());
  auto server = resolve(target.server_url, "urls.server");
  if (!server) return base::fail(server.message());
  shared.check_in = *check_in;
  shared.server = *server;
  if (target.enqueue && (options.commands_per_minute > 0 || options.commands_per_channel > 0)) {
    auto admin =
        resolve(target::fill_in(target::fill_in(target::fill_in(target.enqueue->url, "{channel}", "x"), "{udid}", "x"),
                                "{user_id}", "x"),
                "admin.enqueue.url");
    if (!admin) return base::fail(admin.message());
    shared.admin = *admin;
  }
  const bool any_tls = check_in->url.scheme == "https" || server->url.scheme == "https" ||
                       (shared.admin && shared.admin->url.scheme == "https");
  if (any_tls) {
    try {
      shared.tls.emplace(ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(shared.tls->native_handle(), TLS1_2_VERSION);
      error_code ec;
      if (!target.tls.ca_pem.empty()) {
        shared.tls->add_certificate_authority(asio::buffer(target.tls.ca_pem), ec);
      } else if (!target.tls.insecure) {
        shared.tls->set_default_verify_paths(ec);
      }
      if (ec) return base::fail("tls.ca could not be loaded: " + ec.message());
    } catch (const std::exception& e) {
      return base::fail(std::string("TLS context could not be made: ") + e.what());
    }
    shared.verify = !target.tls.insecure;
  }
  shared.signs = protocol::signs_bodies(target.identity.mode);
  const bool client_certs = protocol::uses_mtls(target.identity.mode);

  const unsigned threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  const std::size_t connections =
      options.max_connections > 0
          ? options.max_connections
          : std::max<std::size_t>(64, open_file_limit() - std::min<std::size_t>(open_file_limit() / 2, 256));
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(shared, i, options.seed * 1000003 + options.shard.index * 7919 + i,
                                               std::chrono::seconds(1)));
    auto& w = *workers.back();
    w.in_flight_cap = std::max<std::size_t>(1, options.max_in_flight / threads);
    w.connection_cap = std::max<std::size_t>(w.in_flight_cap, connections / threads);
    if (options.rate > 0) {
      w.start_interval =
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(threads / options.rate));
    }
  }

  // The shard's devices, spread over the threads; each with its identity, made before the clock starts.
  FleetShape shape{options.seed, options.devices, options.users_per_device, target.topic, target.managed_network_users};
  target::IdentityPool identities(target.identity);
  std::uint64_t channels = 0;
  std::uint64_t devices_in_shard = 0;
  std::size_t next_worker = 0;
  for (int i = 0; i < options.devices; ++i) {
    if (!options.shard.holds(i)) continue;
    auto run = std::make_unique<DeviceRun>(fleet_device(shape, i));
    if (client_certs || shared.signs) {
      auto given = identities.take(run->fleet.facts.udid);
      if (!given) return base::fail("device " + std::to_string(i) + " has no identity: " + given.message());
      run->identity = given->identity;
      if (client_certs) {
        run->client_key = parse_client_key(run->identity);
        if (!run->client_key)
          return base::fail("device " + std::to_string(i) + "'s identity does not load as a TLS client certificate");
      }
    }
    auto& w = *workers[next_worker++ % threads];
    auto add_channel = [&](protocol::Channel channel, const protocol::UserFacts* user) {
      auto ch = std::make_unique<ChannelRun>();
      ch->device = run.get();
      ch->channel = std::move(channel);
      ch->id = ch->channel.id();
      ch->user = user;
      ch->idle_body = plist::to_xml(plist::Value(protocol::report(ch->channel, user, {})));
      ch->rng.seed(run->fleet.seed ^ std::hash<std::string>{}(ch->id));
      run->channels.push_back(std::move(ch));
    };
    add_channel(run->device.channel(), nullptr);
    for (const auto& user : run->fleet.users) {
      run->agents.push_back(
          std::make_unique<emulator::UserAgent>(run->fleet.facts.udid, user.facts, user.kind, run->ids));
      add_channel(run->agents.back()->channel(), &run->agents.back()->facts());
    }
    channels += run->channels.size();
    ++devices_in_shard;
    w.devices.push_back(std::move(run));
  }

  const auto ramp = options.ramp.count() >= 0
                        ? options.ramp
                        : std::min<std::chrono::milliseconds>(std::chrono::seconds(5), options.duration / 4);
  LoadReport report;
  report.target = target.name;
  report.target_url = target.server_url;
  report.started_utc = utc_now();
  report.seed = options.seed;
  report.shard_index = options.shard.index;
  report.shard_count = options.shard.count;
  report.devices = options.devices;
  report.users_per_device = options.users_per_device;
  report.channels = channels;
  report.duration_s = seconds(options.duration);
  report.rate = options.rate;
  report.commands_per_minute = options.commands_per_minute;

  shared.start = Clock::now();
  for (auto& wp : workers) {
    auto& w = *wp;
    std::uniform_int_distribution<long long> offset(
        0, std::max<long long>(0, std::chrono::duration_cast<std::chrono::microseconds>(ramp).count()));
    for (auto& d : w.devices)
      asio::co_spawn(w.io, device_loop(w, *d, std::chrono::microseconds(offset(w.rng))), asio::detached);
    if (shared.admin && options.commands_per_minute > 0)
      asio::co_spawn(w.io, admin_loop(w, options.commands_per_minute / 60.0 / threads), asio::detached);
  }
  std::vector<std::thread> running;
  for (auto& wp : workers) {
    running.emplace_back([&w = *wp] {
      auto guard = asio::make_work_guard(w.io);
      w.io.run();
    });
  }

  // The calling thread keeps the clock: the phases, the progress line, a stop asked for.
  auto totals = [&] {
    Progress p;
    for (auto& w : workers) {
      p.exchanges += w->exchanges.load();
      p.errors += w->errors.load();
      p.in_flight += w->on_wire.load();
      p.channels_enrolled += w->channels_enrolled.load();
    }
    p.findings = shared.findings_total.load();
    p.channels = channels;
    return p;
  };
  const auto drain_until = [&] { return shared.start + options.duration + options.drain; };
  auto last_tick = Clock::now();
  std::uint64_t last_exchanges = 0;
  bool interrupted = false;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = Clock::now();
    if (options.stop && options.stop->load()) {
      interrupted = true;
      break;
    }
    if (shared.phase.load() == Phase::steady && now - shared.start >= options.duration) shared.phase = Phase::drain;
    const bool work_done = options.series_per_channel > 0 && shared.devices_done.load() == devices_in_shard &&
                           shared.channels_done.load() == shared.channels_started.load();
    if (work_done) break;
    if (shared.phase.load() == Phase::drain && (shared.ledger.outstanding_total() == 0 || now >= drain_until())) break;
    if (options.on_progress && now - last_tick >= std::chrono::seconds(1)) {
      auto p = totals();
      p.elapsed_s = seconds(now - shared.start);
      p.per_second = static_cast<double>(p.exchanges - last_exchanges) / seconds(now - last_tick);
      p.draining = shared.phase.load() == Phase::drain;
      options.on_progress(p);
      last_tick = now;
      last_exchanges = p.exchanges;
    }
  }
  shared.phase = Phase::stopped;
  const auto ended = Clock::now();
  for (auto& w : workers) w->io.stop();
  for (auto& t : running) t.join();

  report.elapsed_s = seconds(ended - shared.start);
  report.interrupted = interrupted;
  if (interrupted) report.interrupted_reason = "stopped by a signal before the end of --duration";
  for (auto& w : workers) report.figures.merge(w->figures);
  report.commands = shared.ledger.counts();
  report.commands.not_queued = shared.not_queued.load();
  {
    std::lock_guard lock(shared.findings_mu);
    report.findings = std::move(shared.findings);
  }
  report.findings_total = shared.findings_total.load();
  report.harness = Usage::of_this_process();
  // Coroutine frames parked in the io_contexts go with the workers, before `shared`.
  workers.clear();
  return report;
}

}  // namespace mdmc::load
