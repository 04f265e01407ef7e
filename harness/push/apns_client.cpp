#include "harness/push/apns_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "harness/push/detail/h2.hpp"
#include "harness/push/detail/h2_stream.hpp"
#include "harness/push/provider_token.hpp"
#include "harness/push/push_request.hpp"

namespace mdmc::push {
namespace {

using namespace detail::asio_names;

struct Target {
  std::string host;
  std::string port = "443";
  std::string authority;  // host[:port] as the URL has it
};

std::optional<Target> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  std::string_view rest = url.substr(kScheme.size());
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") return std::nullopt;  // a base URL: no path of its own
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return std::nullopt;
  Target target;
  target.authority = std::string(rest);
  std::string_view host = rest;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return std::nullopt;
    if (!rest.empty()) target.port = std::string(rest.substr(1));
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    target.port = std::string(rest.substr(colon + 1));
  }
  if (host.empty() || target.port.empty() || target.port.size() > 5 ||
      target.port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  target.host = std::string(host);
  return target;
}

// One push in flight: its result, the body nghttp2 reads from, what has come back so far.
struct Pending {
  ApnsResult* result = nullptr;
  detail::OutgoingBody body;
  std::size_t response_bytes = 0;
  bool too_large = false;
  bool done = false;
  Clock::time_point deadline;
};

void fail(Pending& pending, ApnsError error, std::string detail) {
  if (pending.done) return;
  pending.done = true;
  pending.result->error = error;
  pending.result->error_detail = std::move(detail);
  pending.result->status = 0;
}

}  // namespace

std::string_view apns_error_name(ApnsError error) {
  switch (error) {
    case ApnsError::none: return "none";
    case ApnsError::bad_url: return "bad_url";
    case ApnsError::bad_credentials: return "bad_credentials";
    case ApnsError::resolve_failed: return "resolve_failed";
    case ApnsError::connect_failed: return "connect_failed";
    case ApnsError::connect_timeout: return "connect_timeout";
    case ApnsError::tls_handshake_failed: return "tls_handshake_failed";
    case ApnsError::no_h2: return "no_h2";
    case ApnsError::connection_lost: return "connection_lost";
    case ApnsError::response_timeout: return "response_timeout";
    case ApnsError::response_too_large: return "response_too_large";
    case ApnsError::stream_reset: return "stream_reset";
    case ApnsError::refused_by_goaway: return "refused_by_goaway";
    case ApnsError::protocol_error: return "protocol_error";
  }
  return "unknown";
}

ApnsPush ApnsPush::mdm(std::string device_token, const std::string& push_magic, std::string topic) {
  ApnsPush push;
  push.device_token = std::move(device_token);
  push.body = nlohmann::json{{"mdm", push_magic}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  push.topic = std::move(topic);
  push.push_type = "mdm";
  push.priority = "10";
  return push;
}

struct ApnsClient::Impl {
  explicit Impl(ApnsClientConfig c) : config(std::move(c)) {}

  ApnsClientConfig config;
  asio::io_context ioc{1};
  std::optional<ssl::context> tls_context;
  std::string setup_error;  // why the TLS context could not be made, once tried
  ApnsError setup_error_kind = ApnsError::none;
  std::optional<Target> target;
  std::optional<TlsStream> stream;
  detail::SessionPtr session;
  bool goaway_received = false;
  // The latest exchange went on a kept connection that then sent nothing back: when it failed
  // as lost, the endpoint had closed that connection while it was idle (APNs does), and the
  // pushes are sent again once on a new one.
  bool reused_silent = false;
  std::uint64_t opened = 0;
  std::string token;
  Clock::time_point token_made;

  bool prepare();
  asio::awaitable<void> exchange(const std::vector<ApnsPush>& pushes, std::vector<ApnsResult>& results);
  asio::awaitable<std::pair<ApnsError, std::string>> connect();
  bool open_session();
  void drop() {
    session.reset();
    stream.reset();
    goaway_received = false;
  }
  std::string provider_token();

  static Pending* pending_of(nghttp2_session* session, std::int32_t stream_id) {
    return static_cast<Pending*>(nghttp2_session_get_stream_user_data(session, stream_id));
  }
  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t name_length, const std::uint8_t* value, std::size_t value_length, std::uint8_t,
                       void* user_data);
  static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t length, void* user_data);
  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_stream_close(nghttp2_session* session, std::int32_t stream_id, std::uint32_t error_code, void*);
};

bool ApnsClient::Impl::prepare() {
  if (tls_context) return true;
  if (!setup_error.empty()) return false;
  target = parse_url(config.url);
  if (!target) {
    setup_error_kind = ApnsError::bad_url;
    setup_error = "not an https://host[:port] URL: " + config.url;
    return false;
  }
  setup_error_kind = ApnsError::bad_credentials;
  try {
    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_alpn_protos(native, detail::kAlpnH2, sizeof detail::kAlpnH2);  // 0 on success, unlike most of OpenSSL
    error_code ec;
    if (config.trusted_ca_pem.empty()) {
      ctx.set_default_verify_paths(ec);
    } else {
      ctx.add_certificate_authority(asio::buffer(config.trusted_ca_pem), ec);
    }
    if (ec) {
      setup_error = "the trusted CA does not load: " + ec.message();
      return false;
    }
    ctx.set_verify_mode(ssl::verify_peer);
    if (config.certificate) {
      const std::string chain = config.certificate->cert_pem + config.certificate->chain_pem;
      ctx.use_certificate_chain(asio::buffer(chain), ec);
      if (!ec) ctx.use_private_key(asio::buffer(config.certificate->key_pem), ssl::context::pem, ec);
      if (ec || SSL_CTX_check_private_key(native) != 1) {
        setup_error = "the push certificate does not load" + (ec ? ": " + ec.message() : std::string());
        return false;
      }
    }
    tls_context.emplace(std::move(ctx));
  } catch (const std::exception& e) {
    setup_error = std::string("TLS context: ") + e.what();
    return false;
  }
  if (!config.certificate && config.provider_key && provider_token().empty()) {
    tls_context.reset();
    return false;
  }
  setup_error_kind = ApnsError::none;
  return true;
}

std::string ApnsClient::Impl::provider_token() {
  const auto now = Clock::now();
  if (token.empty() || now - token_made >= config.token_refresh) {
    auto made = make_provider_token(config.provider_key->private_key_pem, config.provider_key->key_id,
                                    config.provider_key->team_id, std::chrono::system_clock::now());
    if (!made.ok()) {
      setup_error_kind = ApnsError::bad_credentials;
      setup_error = made.message();
      return {};
    }
    token = std::move(*made);
    token_made = now;
  }
  return token;
}

asio::awaitable<std::pair<ApnsError, std::string>> ApnsClient::Impl::connect() {
  drop();
  std::string host = target->host;
  std::string port = target->port;
  if (!config.connect_to.empty()) {
    const auto colon = config.connect_to.rfind(':');
    if (colon == std::string::npos) co_return std::pair{ApnsError::bad_url, "connect_to is not host:port"};
    host = config.connect_to.substr(0, colon);
    port = config.connect_to.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  }
  // Resolving is bounded by the connect deadline too: a timer cancels a lookup that hangs.
  tcp::resolver resolver(ioc);
  asio::steady_timer resolve_deadline(ioc, config.connect_timeout);
  resolve_deadline.async_wait([&resolver](error_code ec) {
    if (!ec) resolver.cancel();
  });
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(host, port, kTuple);
  resolve_deadline.cancel();
  if (resolve_ec) co_return std::pair{ApnsError::resolve_failed, host + ": " + resolve_ec.message()};

  stream.emplace(beast::tcp_stream(ioc), *tls_context);
  auto& lowest = beast::get_lowest_layer(*stream);
  lowest.expires_after(config.connect_timeout);
  auto [connect_ec, endpoint] = co_await lowest.async_connect(endpoints, kTuple);
  if (connect_ec == beast::error::timeout) co_return std::pair{ApnsError::connect_timeout, host + ":" + port};
  if (connect_ec) co_return std::pair{ApnsError::connect_failed, host + ":" + port + ": " + connect_ec.message()};
  error_code ignored;
  lowest.socket().set_option(tcp::no_delay(true), ignored);
  ++opened;

  SSL* native = stream->native_handle();
  error_code address_ec;
  const auto literal = asio::ip::make_address(target->host, address_ec);
  if (!address_ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), literal.to_string().c_str());
  } else {
    // SSL_set_tlsext_host_name spelled out: the macro hides an old-style cast (OpenSSL copies the name).
    SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(target->host.c_str()));
    SSL_set1_host(native, target->host.c_str());
  }
  lowest.expires_after(config.handshake_timeout);
  auto [handshake_ec] = co_await stream->async_handshake(ssl::stream_base::client, kTuple);
  if (handshake_ec) co_return std::pair{ApnsError::tls_handshake_failed, handshake_ec.message()};
  if (!detail::selected_h2(native)) {
    co_return std::pair{ApnsError::no_h2, "the endpoint did not select ALPN h2"};
  }
  if (!open_session()) co_return std::pair{ApnsError::protocol_error, "nghttp2 session could not be made"};
  co_return std::pair{ApnsError::none, std::string()};
}

bool ApnsClient::Impl::open_session() {
  detail::SessionCallbacks callbacks;
  callbacks.on_header = on_header;
  callbacks.on_data_chunk = on_data_chunk;
  callbacks.on_frame = on_frame;
  callbacks.on_stream_close = on_stream_close;
  const std::array<nghttp2_settings_entry, 2> settings = {{
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(config.max_response_bytes)},
  }};
  session = detail::open_session(detail::Role::client, callbacks, this, nullptr, settings);
  return session != nullptr;
}

int ApnsClient::Impl::on_header(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
                                std::size_t name_length, const std::uint8_t* value, std::size_t value_length,
                                std::uint8_t, void* user_data) {
  auto& self = *static_cast<Impl*>(user_data);
  Pending* pending = pending_of(session, frame->hd.stream_id);
  if (pending == nullptr || pending->too_large) return 0;
  pending->response_bytes += name_length + value_length + 32;
  if (pending->response_bytes > self.config.max_response_bytes) {
    pending->too_large = true;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_CANCEL);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  const auto field = detail::as_view(name, name_length);
  const auto text = detail::as_view(value, value_length);
  if (field == ":status") {
    int status = 0;
    for (char c : text) status = c >= '0' && c <= '9' && status < 1000 ? status * 10 + (c - '0') : 1000;
    pending->result->status = text.size() == 3 && status < 1000 ? status : 0;
  } else if (field == "apns-id") {
    pending->result->apns_id = text;
  }
  return 0;
}

int ApnsClient::Impl::on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                                    const std::uint8_t* data, std::size_t length, void* user_data) {
  auto& self = *static_cast<Impl*>(user_data);
  Pending* pending = pending_of(session, stream_id);
  if (pending == nullptr || pending->too_large) return 0;
  pending->response_bytes += length;
  if (pending->response_bytes > self.config.max_response_bytes) {
    pending->too_large = true;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
    return 0;
  }
  pending->result->body.append(reinterpret_cast<const char*>(data), length);
  return 0;
}

int ApnsClient::Impl::on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  if (frame->hd.type == NGHTTP2_GOAWAY) static_cast<Impl*>(user_data)->goaway_received = true;
  return 0;
}

int ApnsClient::Impl::on_stream_close(nghttp2_session* session, std::int32_t stream_id, std::uint32_t error_code,
                                      void* user_data) {
  auto& self = *static_cast<Impl*>(user_data);
  Pending* pending = pending_of(session, stream_id);
  if (pending == nullptr || pending->done) return 0;
  if (pending->too_large) {
    fail(*pending, ApnsError::response_too_large,
         "answer over " + std::to_string(self.config.max_response_bytes) + " bytes");
  } else if (pending->result->status != 0 && error_code == NGHTTP2_NO_ERROR) {
    pending->done = true;
    const ReasonBody parsed = parse_reason_body(pending->result->body);
    pending->result->reason = parsed.reason;
    pending->result->timestamp_ms = parsed.timestamp_ms;
  } else if (error_code == NGHTTP2_REFUSED_STREAM && self.goaway_received) {
    fail(*pending, ApnsError::refused_by_goaway, "the endpoint's GOAWAY left this stream unprocessed");
  } else {
    fail(*pending, ApnsError::stream_reset,
         std::string("stream closed with ") + nghttp2_http2_strerror(error_code) +
             (pending->result->status != 0 ? " after :status " + std::to_string(pending->result->status) : ""));
  }
  return 0;
}

asio::awaitable<void> ApnsClient::Impl::exchange(const std::vector<ApnsPush>& pushes,
                                                 std::vector<ApnsResult>& results) {
  std::vector<Pending> pending(pushes.size());
  for (std::size_t i = 0; i < pushes.size(); ++i) pending[i].result = &results[i];
  auto fail_all = [&](ApnsError error, const std::string& detail) {
    for (auto& p : pending) fail(p, error, detail);
  };
  if (!prepare()) {
    fail_all(setup_error_kind, setup_error);
    co_return;
  }
  reused_silent = false;
  if (session && stream && !goaway_received && nghttp2_session_want_read(session.get()) != 0) {
    reused_silent = true;  // until the endpoint sends a byte on it
  } else {
    auto [error, detail] = co_await connect();
    if (error != ApnsError::none) {
      drop();
      fail_all(error, detail);
      co_return;
    }
  }
  std::string bearer;
  if (!config.certificate && config.provider_key) {
    bearer = provider_token();
    if (bearer.empty()) {
      fail_all(setup_error_kind, setup_error);
      co_return;
    }
    bearer = "bearer " + bearer;
  }

  for (std::size_t i = 0; i < pushes.size(); ++i) {
    const ApnsPush& push = pushes[i];
    Pending& p = pending[i];
    p.body.text = push.body;
    const std::string path = push.path.empty() ? std::string(kDevicePathPrefix) + push.device_token : push.path;
    const std::string length = std::to_string(push.body.size());
    std::vector<nghttp2_nv> fields = {
        detail::header_field(":method", push.method), detail::header_field(":scheme", "https"),
        detail::header_field(":authority", target->authority), detail::header_field(":path", path)};
    if (!push.body.empty()) {
      fields.push_back(detail::header_field("content-type", "application/json"));
      fields.push_back(detail::header_field("content-length", length));
    }
    const std::pair<std::string_view, const std::string*> optional[] = {{"authorization", &bearer},
                                                                        {"apns-topic", &push.topic},
                                                                        {"apns-push-type", &push.push_type},
                                                                        {"apns-priority", &push.priority},
                                                                        {"apns-expiration", &push.expiration},
                                                                        {"apns-id", &push.apns_id},
                                                                        {"apns-collapse-id", &push.collapse_id}};
    for (const auto& [name, value] : optional) {
      if (!value->empty()) fields.push_back(detail::header_field(name, *value));
    }
    for (const auto& header : push.extra_headers) fields.push_back(detail::header_field(header.name, header.value));
    const nghttp2_data_provider provider = detail::body_provider(p.body);
    p.deadline = Clock::now() + config.response_timeout;
    const std::int32_t id = nghttp2_submit_request(session.get(), nullptr, fields.data(), fields.size(),
                                                   push.body.empty() ? nullptr : &provider, &p);
    if (id < 0) fail(p, ApnsError::protocol_error, std::string("submit: ") + nghttp2_strerror(id));
  }

  auto& lowest = beast::get_lowest_layer(*stream);
  std::string output;
  std::array<std::uint8_t, 16 * 1024> input{};
  auto lose_connection = [&](ApnsError error, const std::string& detail) {
    fail_all(error, detail);
    drop();
  };
  for (;;) {
    // Send what is queued, in batches, each write bounded by the earliest answer's deadline.
    Clock::time_point deadline = Clock::time_point::max();
    for (const auto& p : pending) {
      if (!p.done) deadline = std::min(deadline, p.deadline);
    }
    if (deadline == Clock::time_point::max()) break;  // every answer is in
    auto [written, write_ec] =
        co_await detail::write_output(*stream, session.get(), output, [&] { lowest.expires_at(deadline); });
    if (written == detail::WriteEnd::write_failed) {
      lose_connection(write_ec == beast::error::timeout ? ApnsError::response_timeout : ApnsError::connection_lost,
                      "writing: " + write_ec.message());
      co_return;
    }
    if (written == detail::WriteEnd::session_failed) {
      lose_connection(ApnsError::protocol_error, "nghttp2 could not send");
      co_return;
    }
    if (nghttp2_session_want_read(session.get()) == 0 && nghttp2_session_want_write(session.get()) == 0) {
      lose_connection(goaway_received ? ApnsError::refused_by_goaway : ApnsError::connection_lost,
                      "the session ended before the answer");
      co_return;
    }
    lowest.expires_at(deadline);
    auto [ec, n] = co_await stream->async_read_some(asio::buffer(input), kTuple);
    if (ec) {
      lose_connection(ec == beast::error::timeout ? ApnsError::response_timeout : ApnsError::connection_lost,
                      ec == beast::error::timeout ? "no answer in time" : ec.message());
      co_return;
    }
    reused_silent = false;
    const ssize_t consumed = nghttp2_session_mem_recv(session.get(), input.data(), n);
    if (consumed < 0) {
      lose_connection(ApnsError::protocol_error, nghttp2_strerror(static_cast<int>(consumed)));
      co_return;
    }
  }
  // Streams are closed; the results no longer need the pending state.
  if (goaway_received) drop();
}

ApnsClient::ApnsClient(ApnsClientConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
ApnsClient::~ApnsClient() = default;

ApnsResult ApnsClient::send(const ApnsPush& push) { return send_all({push}).front(); }

std::vector<ApnsResult> ApnsClient::send_all(const std::vector<ApnsPush>& pushes) {
  std::vector<ApnsResult> results(pushes.size());
  if (pushes.empty()) return results;
  impl_->ioc.restart();
  asio::co_spawn(impl_->ioc, impl_->exchange(pushes, results), asio::detached);
  impl_->ioc.run();
  const bool lost = std::any_of(results.begin(), results.end(),
                                [](const ApnsResult& r) { return r.error == ApnsError::connection_lost; });
  if (lost && impl_->reused_silent) {
    impl_->drop();
    results.assign(pushes.size(), ApnsResult{});
    impl_->ioc.restart();
    asio::co_spawn(impl_->ioc, impl_->exchange(pushes, results), asio::detached);
    impl_->ioc.run();
  }
  return results;
}

void ApnsClient::close() { impl_->drop(); }

std::uint64_t ApnsClient::connections_opened() const { return impl_->opened; }

}  // namespace mdmc::push
