#include "harness/net/http_server.hpp"

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
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace mdmc::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using beast::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// After refusing a request we still read (and discard) what the client keeps sending for a
// moment before closing: closing a socket with unread bytes sends a reset, and a reset can
// destroy our 413 or 431 in the client's receive buffer before it was read.
constexpr std::chrono::milliseconds kLingerLimit{1000};

// Set while a thread runs a server's io_context, so stop() knows not to wait for itself.
thread_local const void* t_serving = nullptr;

std::string peer_name(const tcp::socket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

// The status that tells a client why its request was refused, or 0 to drop it silently:
// there is nobody to tell when it closed or timed out.
unsigned refusal_status(const error_code& ec) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) return 400;
  return 0;
}

bool status_allows_body(unsigned status) { return status >= 200 && status != 204 && status != 304; }

// What every request on one connection shares.
struct Connection {
  std::string peer;                  // "127.0.0.1:53412"
  bool tls = false;                  // the connection completed a TLS handshake
  std::string peer_certificate_der;  // the client certificate OpenSSL verified, DER; or empty
};

ServerRequest to_server_request(http::request<http::string_body>&& message, const Connection& connection) {
  ServerRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& f : message) request.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  request.body = std::move(message.body());
  request.peer = connection.peer;
  request.tls = connection.tls;
  request.peer_certificate_der = connection.peer_certificate_der;
  return request;
}

std::string openssl_reason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "no certificate found";
}

struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};

// Every certificate in a PEM string; empty, with `error` set, when there is none.
std::vector<std::unique_ptr<X509, X509Free>> read_certificates(const std::string& pem, std::string& error) {
  std::vector<std::unique_ptr<X509, X509Free>> out;
  ERR_clear_error();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) {
    error = "out of memory";
    return out;
  }
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
  // Reading stops with "no start line" after the last certificate; that is not an error.
  if (out.empty()) error = openssl_reason();
  ERR_clear_error();
  return out;
}

// Loads the server's identity and its client-certificate policy into `ctx`. Returns what
// failed, or an empty string.
std::string configure_server_context(ssl::context& ctx, const ServerTls& tls) {
  SSL_CTX* native = ctx.native_handle();
  // Apple devices speak TLS 1.2 or later only; the reference server offers nothing older.
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);

  const std::string prefix = "TLS certificate/key could not be loaded: ";
  if (tls.cert_pem.empty()) return prefix + "cert_pem is empty";
  if (tls.key_pem.empty()) return prefix + "key_pem is empty";
  error_code ec;
  // use_certificate_chain takes the first certificate as ours and the rest as its chain.
  ctx.use_certificate_chain(asio::buffer(tls.cert_pem), ec);
  if (ec) return prefix + "certificate: " + ec.message();
  ctx.use_private_key(asio::buffer(tls.key_pem), ssl::context::pem, ec);
  if (ec) return prefix + "key: " + ec.message();
  if (SSL_CTX_check_private_key(native) != 1) return prefix + "the key does not match the certificate";

  if (tls.client_ca_pem.empty()) {
    if (tls.require_client_certificate) return "TLS: require_client_certificate needs client_ca_pem";
    return {};
  }
  std::string error;
  const auto cas = read_certificates(tls.client_ca_pem, error);
  if (cas.empty()) return "TLS client CA could not be loaded: " + error;
  X509_STORE* store = SSL_CTX_get_cert_store(native);
  for (const auto& ca : cas) {
    // The store verifies client chains; the CA list names them in our CertificateRequest, so a
    // client with several identities can pick the right one.
    if (X509_STORE_add_cert(store, ca.get()) != 1 || SSL_CTX_add_client_CA(native, ca.get()) != 1) {
      return "TLS client CA could not be loaded: " + openssl_reason();
    }
  }
  ctx.set_verify_mode(
      tls.require_client_certificate ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert : ssl::verify_peer, ec);
  if (ec) return "TLS: cannot set the client verify mode: " + ec.message();
  // OpenSSL refuses to resume a session with client verification on unless the context names
  // its sessions; a device reconnecting with a session ticket would otherwise fail.
  static constexpr unsigned char kSessionContext[] = "mdmconform";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  return {};
}

// The client certificate of a finished handshake, DER, when OpenSSL verified it; else empty.
std::string verified_peer_certificate(SSL* native) {
  X509* cert = SSL_get0_peer_certificate(native);
  if (cert == nullptr || SSL_get_verify_result(native) != X509_V_OK) return {};
  const int size = i2d_X509(cert, nullptr);
  if (size <= 0) return {};
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_X509(cert, &out) != size) return {};
  return der;
}

http::response<http::string_body> to_beast_response(ServerResponse&& answer, bool request_keeps_alive, bool head) {
  http::response<http::string_body> res;
  res.version(11);
  // Beast refuses statuses outside three digits; a handler returning one is a harness bug.
  const unsigned status = answer.status >= 100 && answer.status <= 999 ? static_cast<unsigned>(answer.status) : 500;
  res.result(status);
  for (auto& h : answer.headers) {
    // Framing belongs to the server: a handler's copy could contradict the bytes sent.
    if (beast::iequals(h.name, "Content-Length") || beast::iequals(h.name, "Transfer-Encoding")) continue;
    res.insert(h.name, h.value);
  }
  const bool handler_keeps_alive = res.keep_alive();  // false when the handler set Connection: close
  res.keep_alive(request_keeps_alive && handler_keeps_alive && !answer.close);
  if (status_allows_body(status)) {
    res.content_length(answer.body.size());
    if (!head) res.body() = std::move(answer.body);
  }
  return res;
}

http::response<http::string_body> refusal(unsigned status) {
  http::response<http::string_body> res;
  res.version(11);
  res.result(status);
  res.keep_alive(false);
  res.content_length(0);
  return res;
}

}  // namespace

struct HttpServer::Impl {
  Impl(Handler h, ServerLimits l, std::optional<ServerTls> tls) : handler(std::move(h)), limits(l) {
    if (tls) {
      try {
        ssl::context ctx(ssl::context::tls_server);
        tls_error = configure_server_context(ctx, *tls);
        if (tls_error.empty()) tls_context.emplace(std::move(ctx));
      } catch (const std::exception& e) {
        // SSL_CTX_new failed: out of memory or a broken OpenSSL installation.
        tls_error = std::string("TLS context could not be created: ") + e.what();
      }
    }
    ioc.emplace();
    work.emplace(ioc->get_executor());
  }

  Handler handler;
  ServerLimits limits;
  std::optional<ssl::context> tls_context;  // set when serving https
  std::string tls_error;                    // why the TLS context could not be made; listen() reports it

  std::mutex mutex;
  std::condition_variable idle;  // signalled when a thread stops running the io_context
  unsigned runners = 0;          // threads inside ioc->run(), background and run() callers
  bool stopped = false;
  std::vector<std::thread> threads;
  // Reset by the last stop(): destroying it destroys every session and acceptor still
  // pending, which closes their sockets. Declared after the fields the coroutines use.
  std::optional<asio::io_context> ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  base::Result<std::uint16_t> listen(const std::string& address, std::uint16_t port);
  void start(unsigned count);
  void run();
  void stop();
  void serve();

  asio::awaitable<void> accept_loop(tcp::acceptor acceptor);
  asio::awaitable<void> session(beast::tcp_stream stream);
  template <class Stream>
  asio::awaitable<void> serve_requests(Stream& stream, const Connection& connection);
  template <class Stream>
  asio::awaitable<void> refuse(Stream& stream, unsigned status);
  template <class Stream>
  asio::awaitable<void> say_goodbye(Stream& stream);
  asio::awaitable<void> linger(beast::tcp_stream& stream);
  ServerResponse call_handler(const ServerRequest& request) noexcept;

  // How long a connection that is being closed may keep us reading what the client still sends.
  std::chrono::milliseconds linger_limit() const { return std::min(limits.read_timeout, kLingerLimit); }
};

base::Result<std::uint16_t> HttpServer::Impl::listen(const std::string& address, std::uint16_t port) {
  auto fail = [](std::string what) { return base::Result<std::uint16_t>(base::fail(std::move(what))); };
  std::lock_guard lock(mutex);
  if (stopped || !ioc) return fail("server stopped");
  if (!tls_error.empty()) return fail(tls_error);

  error_code ec;
  const auto ip = asio::ip::make_address(address == "localhost" ? "127.0.0.1" : address, ec);
  if (ec) return fail("bad listen address " + address + ": " + ec.message());
  const tcp::endpoint endpoint(ip, port);
  tcp::acceptor acceptor(*ioc);
  if (acceptor.open(endpoint.protocol(), ec); ec) return fail("open: " + ec.message());
  // Lets a restarted reference server rebind a port whose old connections are in TIME_WAIT.
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) return fail("setsockopt: " + ec.message());
  if (acceptor.bind(endpoint, ec); ec) return fail(ec.message());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen: " + ec.message());
  const auto bound = acceptor.local_endpoint(ec);
  if (ec) return fail("local_endpoint: " + ec.message());
  asio::co_spawn(*ioc, accept_loop(std::move(acceptor)), asio::detached);
  return std::uint16_t{bound.port()};
}

asio::awaitable<void> HttpServer::Impl::accept_loop(tcp::acceptor acceptor) {
  for (;;) {
    // Each connection gets its own strand: its coroutine and its timer never run concurrently
    // even when several threads serve.
    tcp::socket socket(asio::make_strand(*ioc));
    auto [ec] = co_await acceptor.async_accept(socket, kTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors, say: back off rather than spin on a listen socket that stays ready.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    // Responses are written whole, but over TLS they follow other small records (TLS 1.3 session
    // tickets): with Nagle on, the response waits for the client's delayed ACK of those, 40 ms.
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, session(beast::tcp_stream(std::move(socket))), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Impl::session(beast::tcp_stream stream) {
  Connection connection;
  connection.peer = peer_name(stream.socket());
  if (!tls_context) {
    co_await serve_requests(stream, connection);
    co_return;
  }
  TlsStream secure(std::move(stream), *tls_context);
  // The handshake is bounded like a request: a client that connects and says nothing, or
  // speaks plain HTTP, or offers nothing we accept, is dropped and costs nobody else anything.
  beast::get_lowest_layer(secure).expires_after(limits.read_timeout);
  auto [ec] = co_await secure.async_handshake(ssl::stream_base::server, kTuple);
  if (ec) {
    // OpenSSL has sent its alert, if it had one to send ("unknown ca", "certificate
    // required"): let it reach the client before the socket goes.
    beast::get_lowest_layer(secure).expires_after(linger_limit());
    co_await linger(beast::get_lowest_layer(secure));
    co_return;
  }
  connection.tls = true;
  connection.peer_certificate_der = verified_peer_certificate(secure.native_handle());
  co_await serve_requests(secure, connection);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::serve_requests(Stream& stream, const Connection& connection) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    // Beast's header_limit is 32 bits wide; a larger cap means "no practical cap".
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(limits.max_body_bytes);

    // One deadline for the whole request: an idle keep-alive client and a slow one both go.
    beast::get_lowest_layer(stream).expires_after(limits.read_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    if (!ec && !parser.is_done()) {
      // A client that asked to wait for 100 Continue would otherwise hold its body back.
      const auto expect = parser.get()[http::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        std::tie(ec, n) = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
      }
      if (!ec) std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kTuple);
    }
    if (ec) {
      if (const unsigned status = refusal_status(ec); status != 0) {
        co_await refuse(stream, status);
      } else if constexpr (std::is_same_v<Stream, TlsStream>) {
        // end_of_stream is the client's close_notify between requests: answer it with ours.
        // Anything else (a timeout, a truncation, a TLS error) leaves no session to close in
        // order; the socket just goes.
        if (ec == http::error::end_of_stream) co_await say_goodbye(stream);
      } else {
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
      co_return;
    }

    const bool head = parser.get().method() == http::verb::head;
    const bool keeps_alive = parser.get().keep_alive();
    const ServerRequest request = to_server_request(parser.release(), connection);
    ServerResponse answer = call_handler(request);
    if (answer.reset) {
      // SO_LINGER with a zero timeout makes close() send RST instead of FIN: the client sees
      // "connection reset by peer", as from a server process that died mid-request.
      auto& socket = beast::get_lowest_layer(stream).socket();
      error_code ignored;
      socket.set_option(asio::socket_base::linger(true, 0), ignored);
      socket.close(ignored);
      co_return;
    }
    if (answer.stall > std::chrono::milliseconds::zero()) {
      // Only this connection waits: the timer runs on its strand. Stopping the server destroys
      // the io_context, and the wait with it.
      asio::steady_timer stall(co_await asio::this_coro::executor,
                               std::min<std::chrono::milliseconds>(answer.stall, kMaxServerStall));
      auto [stall_ec] = co_await stall.async_wait(kTuple);
      if (stall_ec) co_return;
    }
    auto res = to_beast_response(std::move(answer), keeps_alive, head);

    // A client that does not read its response is as stuck as one that does not write.
    beast::get_lowest_layer(stream).expires_after(limits.read_timeout);
    std::tie(ec, n) = co_await http::async_write(stream, res, kTuple);
    if (ec) co_return;
    if (!res.keep_alive()) {
      co_await say_goodbye(stream);
      co_return;
    }
  }
}

// Ends a connection in order after a response: plain TCP half-closes; TLS sends close_notify
// and waits, bounded, for the client's (which may have arrived already).
template <class Stream>
asio::awaitable<void> HttpServer::Impl::say_goodbye(Stream& stream) {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    beast::get_lowest_layer(stream).expires_after(linger_limit());
    auto [ec] = co_await stream.async_shutdown(kTuple);
    // The outcome is ignored knowingly. Many clients close the TCP connection without
    // answering our close_notify, which ends the wait as stream_truncated (or eof, or a reset);
    // the deadline above ends it for those that do neither. The response is already sent.
    (void)ec;
  } else {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
}

// Half-closes and reads (and discards) until the client closes or the deadline the caller set
// passes. Closing a socket with unread bytes sends a reset, and a reset can destroy what we
// sent last (a refusal, a TLS alert) in the client's receive buffer before it was read.
asio::awaitable<void> HttpServer::Impl::linger(beast::tcp_stream& stream) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;  // not connected any more (a handshake timeout closed it)
  std::array<char, 16 * 1024> sink{};
  for (;;) {
    auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (read_ec) co_return;
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::refuse(Stream& stream, unsigned status) {
  auto res = refusal(status);
  beast::get_lowest_layer(stream).expires_after(linger_limit());
  auto [ec, n] = co_await http::async_write(stream, res, kTuple);
  if (ec) co_return;
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // TLS cannot half-close underneath an open session, so drain through it: read (and
    // discard) until the client's close_notify, then answer it with ours.
    std::array<char, 16 * 1024> sink{};
    for (;;) {
      std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (ec) break;
    }
    if (ec == asio::error::eof) co_await say_goodbye(stream);
  } else {
    co_await linger(stream);
  }
}

ServerResponse HttpServer::Impl::call_handler(const ServerRequest& request) noexcept {
  // A handler that throws is a bug in the harness, not in the client: answer 500 and keep serving.
  try {
    return handler(request);
  } catch (const std::exception& e) {
    ServerResponse failed;
    failed.status = 500;
    failed.headers.push_back({"Content-Type", "text/plain"});
    failed.body = std::string("handler failed: ") + e.what() + "\n";
    return failed;
  } catch (...) {
    ServerResponse failed;
    failed.status = 500;
    return failed;
  }
}

void HttpServer::Impl::serve() {
  t_serving = this;
  ioc->run();
  t_serving = nullptr;
  {
    std::lock_guard lock(mutex);
    --runners;
  }
  idle.notify_all();
}

void HttpServer::Impl::start(unsigned count) {
  std::lock_guard lock(mutex);
  if (stopped || !ioc) return;
  for (unsigned i = 0; i < std::max(count, 1U); ++i) {
    ++runners;
    threads.emplace_back([this] { serve(); });
  }
}

void HttpServer::Impl::run() {
  {
    std::lock_guard lock(mutex);
    if (stopped || !ioc) return;
    ++runners;
  }
  serve();
}

void HttpServer::Impl::stop() {
  std::vector<std::thread> joinable;
  {
    std::lock_guard lock(mutex);
    stopped = true;
    if (!ioc) return;
    work.reset();
    ioc->stop();
    // A handler may call stop() on its own thread; that thread cannot join itself and is left
    // for the destructor's stop().
    for (auto& t : threads) {
      if (t.get_id() != std::this_thread::get_id()) joinable.push_back(std::move(t));
    }
    std::erase_if(threads, [](const std::thread& t) { return !t.joinable(); });
  }
  for (auto& t : joinable) t.join();
  if (t_serving == this) return;

  std::unique_lock lock(mutex);
  idle.wait(lock, [this] { return runners == 0; });
  if (!threads.empty() || !ioc) return;
  // Nobody runs the io_context any more: destroying it closes every pending socket, so clients
  // see the connection end now rather than a server that silently stopped answering.
  ioc.reset();
}

HttpServer::HttpServer(Handler handler, ServerLimits limits, std::optional<ServerTls> tls)
    : impl_(std::make_unique<Impl>(std::move(handler), limits, std::move(tls))) {}

HttpServer::~HttpServer() { stop(); }

base::Result<std::uint16_t> HttpServer::listen(const std::string& address, std::uint16_t port) {
  return impl_->listen(address, port);
}

void HttpServer::start(unsigned threads) { impl_->start(threads); }
void HttpServer::run() { impl_->run(); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace mdmc::net
