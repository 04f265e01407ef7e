#include "harness/push/apns_endpoint.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "harness/push/detail/h2.hpp"
#include "harness/push/detail/h2_stream.hpp"

namespace mdmc::push {
namespace {

using namespace detail::asio_names;

// After we end a session (a GOAWAY), its last frames get this long to leave.
constexpr std::chrono::milliseconds kGoodbyeLimit{1000};

std::string peer_name(const tcp::socket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// APNs speaks HTTP/2 only: a client that offers no "h2" fails the handshake.
int select_h2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
              void*) {
  if (SSL_select_next_proto(const_cast<unsigned char**>(out), outlen, detail::kAlpnH2, sizeof detail::kAlpnH2, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED ||
      *outlen != 2) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// Certificates are asked for, never required, and never fail the handshake: a bad or missing
// one is answered per request (BadCertificate, MissingProviderToken), as APNs does.
int accept_any_certificate(int, X509_STORE_CTX*) { return 1; }

std::string configure_context(ssl::context& ctx, const FakeApnsConfig& config) {
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_alpn_select_cb(native, select_h2, nullptr);
  const std::string prefix = "fake APNs TLS identity could not be loaded: ";
  if (config.tls.cert_pem.empty() || config.tls.key_pem.empty()) return prefix + "certificate or key is empty";
  error_code ec;
  const std::string chain = config.tls.cert_pem + config.tls.chain_pem;
  ctx.use_certificate_chain(asio::buffer(chain), ec);
  if (ec) return prefix + "certificate: " + ec.message();
  ctx.use_private_key(asio::buffer(config.tls.key_pem), ssl::context::pem, ec);
  if (ec) return prefix + "key: " + ec.message();
  if (SSL_CTX_check_private_key(native) != 1) return prefix + "the key does not match the certificate";
  if (config.push_ca_pem.empty()) return {};

  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(config.push_ca_pem.data(), static_cast<int>(config.push_ca_pem.size())), &BIO_free);
  X509_STORE* store = SSL_CTX_get_cert_store(native);
  int loaded = 0;
  while (X509* cert = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr) {
    const bool ok = X509_STORE_add_cert(store, cert) == 1 && SSL_CTX_add_client_CA(native, cert) == 1;
    X509_free(cert);
    if (!ok) break;
    ++loaded;
  }
  ERR_clear_error();
  if (loaded == 0) return "fake APNs push CA could not be loaded: no PEM certificate";
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any_certificate);
  static constexpr unsigned char kSessionContext[] = "mdmconform-apns";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  return {};
}

ConnectionAuth connection_auth(SSL* native) {
  ConnectionAuth auth;
  X509* cert = SSL_get0_peer_certificate(native);
  if (cert == nullptr) return auth;
  auth.certificate_presented = true;
  auth.certificate_verified = SSL_get_verify_result(native) == X509_V_OK;
  const X509_NAME* subject = X509_get_subject_name(cert);
  if (std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free); bio) {
    if (X509_NAME_print_ex(bio.get(), subject, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
      char* data = nullptr;
      const long size = BIO_get_mem_data(bio.get(), &data);
      if (size > 0) auth.certificate_subject.assign(data, static_cast<std::size_t>(std::min<long>(size, 1024)));
    }
  }
  // An MDM push certificate names its topic in the subject's UID.
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_userId, i)) >= 0;) {
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    unsigned char* utf8 = nullptr;
    const int size = ASN1_STRING_to_UTF8(&utf8, value);
    if (size >= 0)
      auth.certificate_topics.emplace_back(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(size));
    OPENSSL_free(utf8);
    if (auth.certificate_topics.size() >= 16) break;
  }
  ERR_clear_error();
  return auth;
}

// One request stream, from its HEADERS to its close.
struct Stream {
  std::string method;
  std::string path;
  std::string authority;
  net::Headers headers;
  std::size_t header_bytes = 0;
  std::string body;
  bool body_too_large = false;
  bool refused = false;   // reset by us
  bool answered = false;  // a response is submitted
  detail::OutgoingBody response_body;
};

}  // namespace

base::Result<pki::Identity> issue_endpoint_identity(const pki::Identity& run_ca,
                                                    const std::vector<std::string>& extra_names) {
  std::vector<std::string> names = kApnsHostNames;
  for (const auto& name : extra_names) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return pki::issue_server_identity(run_ca, names);
}

ScriptedAnswer ScriptedAnswer::unregistered(base::SystemTime since) {
  ScriptedAnswer answer;
  answer.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(since.time_since_epoch()).count();
  return answer;
}

ScriptedAnswer ScriptedAnswer::too_many_requests() {
  ScriptedAnswer answer;
  answer.status = 429;
  answer.reason = "TooManyRequests";
  return answer;
}

ScriptedAnswer ScriptedAnswer::service_unavailable() {
  ScriptedAnswer answer;
  answer.status = 503;
  answer.reason = "ServiceUnavailable";
  return answer;
}

struct FakeApns::Impl {
  explicit Impl(FakeApnsConfig c) : config(std::move(c)) {
    config.policy.accept_certificates = !config.push_ca_pem.empty();
  }

  FakeApnsConfig config;
  std::optional<ssl::context> tls_context;

  mutable std::mutex mutex;  // the log, the scripts and the stats
  mutable std::condition_variable pushed;
  std::deque<Push> log;
  std::uint64_t next_push = 0;
  std::unordered_map<std::string, ScriptedAnswer> scripts;
  FakeApnsStats counters;

  std::size_t open_connections = 0;  // only touched on the serving thread
  std::optional<asio::io_context> ioc;
  std::thread thread;

  struct Connection;
  base::Result<std::uint16_t> start(const std::string& address, std::uint16_t port);
  base::Result<std::uint16_t> listen(const std::string& address, std::uint16_t port);
  void stop();
  asio::awaitable<void> accept_loop(tcp::acceptor acceptor);
  asio::awaitable<void> session(tcp::socket socket, std::uint64_t id);
  void count(std::uint64_t FakeApnsStats::*field) {
    std::lock_guard lock(mutex);
    ++(counters.*field);
  }
  void record(Push push);
};

// One HTTP/2 connection: the nghttp2 session, its streams, and what its handshake established.
struct FakeApns::Impl::Connection {
  Impl& server;
  std::uint64_t id;
  std::string peer;
  ConnectionAuth auth;
  std::map<std::int32_t, Stream> streams;
  detail::SessionPtr session;  // after `streams`: it goes first, while what it points into still exists
  Clock::time_point idle_deadline;
  bool sent_error_goaway = false;  // nghttp2 ended the session over a protocol error of the client's

  Connection(Impl& s, std::uint64_t i, std::string p, ConnectionAuth a)
      : server(s), id(i), peer(std::move(p)), auth(std::move(a)) {
    idle_deadline = Clock::now() + server.config.limits.idle_timeout;
  }

  static Connection& of(void* user_data) { return *static_cast<Connection*>(user_data); }
  Stream* find(std::int32_t stream_id) {
    const auto it = streams.find(stream_id);
    return it == streams.end() ? nullptr : &it->second;
  }

  bool open() {
    detail::SessionCallbacks callbacks;
    callbacks.on_begin_headers = on_begin_headers;
    callbacks.on_header = on_header;
    callbacks.on_data_chunk = on_data_chunk;
    callbacks.on_frame = on_frame;
    callbacks.on_stream_close = on_stream_close;
    callbacks.on_frame_sent = on_frame_sent;
    nghttp2_option* raw_option = nullptr;
    if (nghttp2_option_new(&raw_option) != 0) return false;
    const detail::OptionPtr option(raw_option);
    nghttp2_option_set_no_closed_streams(option.get(), 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(option.get(), 4096);
    const auto& limits = server.config.limits;
    const std::array<nghttp2_settings_entry, 3> settings = {{
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
        // A push body is at most 4 KiB; a small window bounds what a stream can make us buffer.
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 * 1024},
        // Advisory to the client; on_header enforces it.
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(limits.max_header_list_bytes)},
    }};
    session = detail::open_session(detail::Role::server, callbacks, this, option.get(), settings);
    return session != nullptr;
  }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    auto& self = of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (self.streams.size() >= self.server.config.limits.max_concurrent_streams) {
      self.server.count(&FakeApnsStats::streams_refused);
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    self.streams.try_emplace(frame->hd.stream_id);
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t name_length, const std::uint8_t* value, std::size_t value_length, std::uint8_t,
                       void* user_data) {
    auto& self = of(user_data);
    Stream* stream = self.find(frame->hd.stream_id);
    if (stream == nullptr || stream->refused) return 0;
    // nghttp2 does not enforce SETTINGS_MAX_HEADER_LIST_SIZE on what it receives.
    stream->header_bytes += name_length + value_length + 32;
    if (stream->header_bytes > self.server.config.limits.max_header_list_bytes) {
      stream->refused = true;
      self.server.count(&FakeApnsStats::streams_refused);
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    const auto field = detail::as_view(name, name_length);
    const auto text = detail::as_view(value, value_length);
    if (field == ":method") {
      stream->method = text;
    } else if (field == ":path") {
      stream->path = text;
    } else if (field == ":authority") {
      stream->authority = text;
    } else if (!field.empty() && field.front() != ':') {
      stream->headers.push_back({std::string(field), std::string(text)});
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t length, void* user_data) {
    auto& self = of(user_data);
    Stream* stream = self.find(stream_id);
    if (stream == nullptr || stream->refused || stream->answered) return 0;
    if (stream->body.size() + length > kMaxPayloadBytes) {
      // Answer now (413, or whatever comes first); nghttp2 resets the rest of the upload.
      stream->body_too_large = true;
      self.answer(session, stream_id, *stream);
      return 0;
    }
    stream->body.append(reinterpret_cast<const char*>(data), length);
    return 0;
  }

  static int on_frame(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    auto& self = of(user_data);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      return 0;
    }
    Stream* stream = self.find(frame->hd.stream_id);
    if (stream != nullptr && !stream->refused && !stream->answered) self.answer(session, frame->hd.stream_id, *stream);
    return 0;
  }

  static int on_frame_sent(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      of(user_data).sent_error_goaway = true;
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t, void* user_data) {
    of(user_data).streams.erase(stream_id);
    return 0;
  }

  void answer(nghttp2_session* h2, std::int32_t stream_id, Stream& stream) {
    stream.answered = true;
    PushRequest request{stream.method, stream.path, stream.headers, stream.body, stream.body_too_large};
    const auto wall = std::chrono::system_clock::now();
    Verdict verdict = judge_push(request, auth, server.config.policy, wall);
    if (verdict.auth == AuthMethod::token) auth.verified_token = verdict.provider_token;
    Push push;
    push.received = Clock::now();
    push.received_wall = wall;
    push.connection = id;
    push.peer = peer;
    push.method = std::move(request.method);
    push.path = std::move(request.path);
    push.authority = stream.authority;
    push.headers = std::move(request.headers);
    // A provider token stays valid for an hour: the log (and any report made from it) keeps
    // its header and claims, not its signature.
    for (auto& header : push.headers) {
      if (header.name != "authorization") continue;
      if (const auto dot = header.value.rfind('.'); dot != std::string::npos) {
        header.value.replace(dot + 1, std::string::npos, "<signature withheld>");
      }
    }
    push.body = std::move(request.body);
    push.body_too_large = stream.body_too_large;
    push.device_token = verdict.device_token;
    push.topic = verdict.topic;
    push.push_magic = push_magic_of(push.body);
    push.auth = verdict.auth;
    push.certificate_subject = auth.certificate_subject;
    push.status = verdict.status;
    push.reason = verdict.reason;
    push.detail = verdict.detail;
    push.apns_id = verdict.apns_id.empty() ? random_uuid() : verdict.apns_id;
    std::optional<std::int64_t> timestamp;
    if (verdict.status == 200) {
      std::lock_guard lock(server.mutex);
      if (auto it = server.scripts.find(verdict.device_token); it != server.scripts.end()) {
        push.status = it->second.status;
        push.reason = it->second.reason;
        push.detail = "scripted";
        push.scripted = true;
        timestamp = it->second.timestamp_ms;
        if (it->second.times == 1) {
          server.scripts.erase(it);
        } else if (it->second.times > 1) {
          --it->second.times;
        }
      }
    }

    const std::string status = std::to_string(push.status);
    std::vector<nghttp2_nv> fields = {detail::header_field(":status", status),
                                      detail::header_field("apns-id", push.apns_id)};
    nghttp2_data_provider provider{};
    nghttp2_data_provider* body = nullptr;
    if (push.status != 200) {
      stream.response_body.text = reason_body(push.reason, timestamp);
      fields.push_back(detail::header_field("content-type", "application/json; charset=utf-8"));
      provider = detail::body_provider(stream.response_body);
      body = &provider;
    }
    if (nghttp2_submit_response(h2, stream_id, fields.data(), fields.size(), body) != 0) {
      nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
    }
    idle_deadline = Clock::now() + server.config.limits.idle_timeout;
    server.record(std::move(push));
  }
};

void FakeApns::Impl::record(Push push) {
  {
    std::lock_guard lock(mutex);
    push.index = next_push++;
    ++counters.pushes;
    log.push_back(std::move(push));
    while (log.size() > std::max<std::size_t>(config.limits.max_pushes_kept, 1)) {
      log.pop_front();
      ++counters.pushes_dropped;
    }
  }
  pushed.notify_all();
}

base::Result<std::uint16_t> FakeApns::Impl::start(const std::string& address, std::uint16_t port) {
  if (ioc) return base::fail("fake APNs already started");
  if (config.policy.token_policy) {
    // A token key that does not load would refuse every token: say so now, not per push.
    auto probe = check_provider_token("e30.e30.AA", *config.policy.token_policy, std::chrono::system_clock::now());
    if (probe.detail.find("no EC P-256 key") != std::string::npos) {
      return base::fail("fake APNs provider token key is not an EC P-256 public key or certificate");
    }
  }
  try {
    ssl::context ctx(ssl::context::tls_server);
    if (auto error = configure_context(ctx, config); !error.empty()) return base::fail(error);
    tls_context.emplace(std::move(ctx));
  } catch (const std::exception& e) {
    return base::fail(std::string("fake APNs TLS context could not be created: ") + e.what());
  }
  ioc.emplace(1);
  auto result = listen(address, port);
  if (!result.ok()) {
    ioc.reset();
    return result;
  }
  thread = std::thread([this] { ioc->run(); });
  return result;
}

base::Result<std::uint16_t> FakeApns::Impl::listen(const std::string& address, std::uint16_t port) {
  error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) return base::fail("fake APNs: bad listen address " + address);
  tcp::acceptor acceptor(*ioc);
  const tcp::endpoint endpoint(ip, port);
  if (acceptor.open(endpoint.protocol(), ec); ec) return base::fail("fake APNs: open: " + ec.message());
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) return base::fail(ec.message());
  if (acceptor.bind(endpoint, ec); ec) return base::fail("fake APNs: bind " + address + ": " + ec.message());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return base::fail(ec.message());
  const auto bound = acceptor.local_endpoint(ec).port();
  asio::co_spawn(*ioc, accept_loop(std::move(acceptor)), asio::detached);
  return std::uint16_t{bound};
}

void FakeApns::Impl::stop() {
  if (!ioc) return;
  ioc->stop();
  if (thread.joinable()) thread.join();
  // Destroying the io_context destroys every session and closes its socket.
  ioc.reset();
}

asio::awaitable<void> FakeApns::Impl::accept_loop(tcp::acceptor acceptor) {
  for (;;) {
    tcp::socket socket(*ioc);
    auto [ec] = co_await acceptor.async_accept(socket, kTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      asio::steady_timer pause(*ioc, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    if (open_connections >= config.limits.max_connections) {
      count(&FakeApnsStats::connections_refused);
      continue;  // the socket closes here
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex);
      id = ++counters.connections;
    }
    ++open_connections;
    asio::co_spawn(*ioc, session(std::move(socket), id), [this](std::exception_ptr) { --open_connections; });
  }
}

asio::awaitable<void> FakeApns::Impl::session(tcp::socket socket, std::uint64_t id) {
  const std::string peer = peer_name(socket);
  TlsStream stream(beast::tcp_stream(std::move(socket)), *tls_context);
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(config.limits.handshake_timeout);
  auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
  if (handshake_ec || !detail::selected_h2(stream.native_handle())) {
    count(&FakeApnsStats::connections_refused);
    co_return;
  }

  Connection connection(*this, id, peer, connection_auth(stream.native_handle()));
  if (!connection.open()) co_return;
  nghttp2_session* h2 = connection.session.get();
  std::string output;
  std::array<std::uint8_t, 16 * 1024> input{};
  bool broken = false;

  // Sends all the session has to send; false when the client does not take it in time.
  auto flush = [&]() -> asio::awaitable<bool> {
    auto [end, ec] =
        co_await detail::write_output(stream, h2, output, [&] { lowest.expires_after(config.limits.write_timeout); });
    co_return end == detail::WriteEnd::sent;
  };

  if (!co_await flush()) co_return;
  while (nghttp2_session_want_read(h2) != 0 || nghttp2_session_want_write(h2) != 0) {
    // One deadline for reading: a connection that finishes no request in idle_timeout goes,
    // however busy it keeps us with pings, settings or streams it never ends.
    lowest.expires_at(connection.idle_deadline);
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(input), kTuple);
    if (ec) {
      broken = ec != asio::error::eof && ec != ssl::error::stream_truncated;
      break;
    }
    const ssize_t consumed = nghttp2_session_mem_recv(h2, input.data(), n);
    if (consumed < 0) {
      // Not HTTP/2 (a bad preface), a flood nghttp2 caught, or a callback's failure: say
      // goodbye with a GOAWAY, briefly, and close.
      broken = true;
      nghttp2_session_terminate_session(
          h2, consumed == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
      lowest.expires_after(kGoodbyeLimit);
      output.clear();
      if (detail::drain_output(h2, output, detail::kOutputBatchBytes) && !output.empty()) {
        co_await asio::async_write(stream, asio::buffer(output), kTuple);
      }
      break;
    }
    if (!co_await flush()) {
      broken = true;
      break;
    }
  }
  if (broken || connection.sent_error_goaway) count(&FakeApnsStats::connections_broken);
}

FakeApns::FakeApns(FakeApnsConfig config) : impl_(std::make_shared<Impl>(std::move(config))) {}
FakeApns::~FakeApns() { impl_->stop(); }

base::Result<std::uint16_t> FakeApns::start(const std::string& address, std::uint16_t port) {
  return impl_->start(address, port);
}

void FakeApns::stop() { impl_->stop(); }

void FakeApns::script(const std::string& device_token, ScriptedAnswer answer) {
  std::lock_guard lock(impl_->mutex);
  std::string key = device_token;
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  impl_->scripts.insert_or_assign(std::move(key), std::move(answer));
}

void FakeApns::clear_script(const std::string& device_token) {
  std::lock_guard lock(impl_->mutex);
  std::string key = device_token;
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  impl_->scripts.erase(key);
}

void FakeApns::clear_scripts() {
  std::lock_guard lock(impl_->mutex);
  impl_->scripts.clear();
}

std::vector<Push> FakeApns::pushes_since(std::uint64_t index) const {
  std::lock_guard lock(impl_->mutex);
  std::vector<Push> out;
  for (const auto& push : impl_->log) {
    if (push.index >= index) out.push_back(push);
  }
  return out;
}

std::uint64_t FakeApns::next_index() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->next_push;
}

std::optional<Push> FakeApns::wait_for(const std::function<bool(const Push&)>& predicate, std::uint64_t index,
                                       std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(impl_->mutex);
  std::uint64_t checked = index;  // pushes below this were already offered to the predicate
  for (;;) {
    for (const auto& push : impl_->log) {
      if (push.index < checked) continue;
      if (predicate(push)) return push;
    }
    checked = std::max(checked, impl_->next_push);
    if (impl_->pushed.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (const auto& push : impl_->log) {
        if (push.index >= checked && predicate(push)) return push;
      }
      return std::nullopt;
    }
  }
}

FakeApnsStats FakeApns::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->counters;
}

}  // namespace mdmc::push
