#include "harness/net/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
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
#include <utility>
#include <vector>

namespace mdmc::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;

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

ServerRequest to_server_request(http::request<http::string_body>&& message, const std::string& peer) {
  ServerRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& f : message) request.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  request.body = std::move(message.body());
  request.peer = peer;
  return request;
}

http::response<http::string_body> to_beast_response(ServerResponse&& answer, bool request_keeps_alive,
                                                    bool head) {
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
  Impl(Handler h, ServerLimits l) : handler(std::move(h)), limits(l) {
    ioc.emplace();
    work.emplace(ioc->get_executor());
  }

  Handler handler;
  ServerLimits limits;

  std::mutex mutex;
  std::condition_variable idle;  // signalled when a thread stops running the io_context
  unsigned runners = 0;          // threads inside ioc->run(), background and run() callers
  bool stopped = false;
  std::vector<std::thread> threads;
  // Reset by the last stop(): destroying it destroys every session and acceptor still
  // pending, which closes their sockets. Declared after the fields the coroutines use.
  std::optional<asio::io_context> ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  std::uint16_t listen(const std::string& address, std::uint16_t port, std::string* error);
  void start(unsigned count);
  void run();
  void stop();
  void serve();

  asio::awaitable<void> accept_loop(tcp::acceptor acceptor);
  asio::awaitable<void> session(beast::tcp_stream stream);
  asio::awaitable<void> refuse(beast::tcp_stream& stream, unsigned status);
  ServerResponse call_handler(const ServerRequest& request) noexcept;
};

std::uint16_t HttpServer::Impl::listen(const std::string& address, std::uint16_t port, std::string* error) {
  auto fail = [error](std::string what) -> std::uint16_t {
    if (error) *error = std::move(what);
    return 0;
  };
  std::lock_guard lock(mutex);
  if (stopped || !ioc) return fail("server stopped");

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
  return bound.port();
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
    auto executor = socket.get_executor();
    asio::co_spawn(executor, session(beast::tcp_stream(std::move(socket))), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Impl::session(beast::tcp_stream stream) {
  const std::string peer = peer_name(stream.socket());
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    // Beast's header_limit is 32 bits wide; a larger cap means "no practical cap".
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(limits.max_body_bytes);

    // One deadline for the whole request: an idle keep-alive client and a slow one both go.
    stream.expires_after(limits.read_timeout);
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
      } else {
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
      co_return;
    }

    const bool head = parser.get().method() == http::verb::head;
    const bool keeps_alive = parser.get().keep_alive();
    const ServerRequest request = to_server_request(parser.release(), peer);
    auto res = to_beast_response(call_handler(request), keeps_alive, head);

    // A client that does not read its response is as stuck as one that does not write.
    stream.expires_after(limits.read_timeout);
    std::tie(ec, n) = co_await http::async_write(stream, res, kTuple);
    if (ec) co_return;
    if (!res.keep_alive()) {
      error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

asio::awaitable<void> HttpServer::Impl::refuse(beast::tcp_stream& stream, unsigned status) {
  auto res = refusal(status);
  stream.expires_after(std::min(limits.read_timeout, kLingerLimit));
  auto [ec, n] = co_await http::async_write(stream, res, kTuple);
  if (ec) co_return;
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  // Drain until the client closes or the linger deadline set above passes.
  std::array<char, 16 * 1024> sink{};
  for (;;) {
    std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (ec) co_return;
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

HttpServer::HttpServer(Handler handler, ServerLimits limits)
    : impl_(std::make_unique<Impl>(std::move(handler), limits)) {}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::listen(const std::string& address, std::uint16_t port, std::string* error) {
  return impl_->listen(address, port, error);
}

void HttpServer::start(unsigned threads) { impl_->start(threads); }
void HttpServer::run() { impl_->run(); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace mdmc::net
