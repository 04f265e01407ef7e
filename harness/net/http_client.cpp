#include "harness/net/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
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
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#ifndef MDMC_VERSION
#define MDMC_VERSION "0"
#endif

namespace mdmc::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;

using ResponseParser = http::response_parser<http::string_body>;

// A server may send any number of 1xx interim responses before the final one; past this many
// it is stalling in a way the header deadline would not catch, because each one is progress.
constexpr int kMaxInterimResponses = 16;

constexpr std::string_view kUserAgent = "mdmconform/" MDMC_VERSION;

enum class Phase { connect, write, header, body };

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

// Maps what Beast and the socket report to the one error vocabulary of transcripts.
TransportError classify(Phase phase, const error_code& ec) {
  if (ec == beast::error::timeout) {
    switch (phase) {
      case Phase::connect: return TransportError::connect_timeout;
      case Phase::write: return TransportError::write_failed;
      case Phase::header: return TransportError::header_timeout;
      case Phase::body: return TransportError::body_timeout;
    }
  }
  if (phase == Phase::connect) return TransportError::connect_failed;
  if (phase == Phase::write) return TransportError::write_failed;
  if (ec == http::error::header_limit) return TransportError::header_too_large;
  if (ec == http::error::body_limit) return TransportError::body_too_large;
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return TransportError::closed_before_response;
  // The peer closed inside a header or a body: what arrived is not a whole HTTP/1.1 response.
  if (ec == http::error::partial_message) return TransportError::bad_response;
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return TransportError::bad_response;
  }
  return TransportError::connection_reset;
}

// A kept-alive connection the server closed while idle fails like this on first use.
bool looks_stale(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

bool method_has_no_body(std::string_view method) { return method == "GET" || method == "HEAD"; }

std::string host_header(const Url& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != 80) host += ":" + std::to_string(url.port);
  return host;
}

http::request<http::string_body> make_request(const Request& request, const Url& url) {
  http::request<http::string_body> req;
  req.version(11);
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) {
    req.method_string(request.method);
  } else {
    req.method(verb);
  }
  req.target(url.target);
  req.set(http::field::host, host_header(url));

  bool has_user_agent = false;
  bool has_connection = false;
  for (const auto& h : request.headers) {
    // Framing and Host belong to the client: a caller's copy could contradict the bytes sent.
    if (iequals(h.name, "Host") || iequals(h.name, "Content-Length") || iequals(h.name, "Transfer-Encoding")) continue;
    has_user_agent = has_user_agent || iequals(h.name, "User-Agent");
    has_connection = has_connection || iequals(h.name, "Connection");
    req.insert(h.name, h.value);
  }
  if (!has_user_agent) req.set(http::field::user_agent, kUserAgent);
  if (!has_connection) req.set(http::field::connection, "keep-alive");
  req.body() = request.body;
  if (!request.body.empty() || !method_has_no_body(request.method)) req.content_length(request.body.size());
  return req;
}

Headers headers_of(const http::fields& fields) {
  Headers out;
  for (const auto& f : fields) out.push_back({std::string(f.name_string()), std::string(f.value())});
  return out;
}

}  // namespace

struct HttpClient::Impl {
  explicit Impl(ClientLimits l) : limits(l) {}

  ClientLimits limits;
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;  // bytes read past the last response stay with the connection
  bool connected = false;
  std::string host;
  std::uint16_t port = 0;

  // What one attempt on one connection produced.
  struct Attempt {
    TransportError error = TransportError::none;
    error_code ec;
    bool stale = false;  // a reused connection failed before any response byte
    std::optional<Response> response;
    bool keep_alive = false;
  };

  Exchange send(const Request& request);
  void close();
  TransportError connect(const Url& url, std::string& detail);
  Attempt attempt(const http::request<http::string_body>& req, bool reused);

  // Runs the private io_context until the operation that `start` begins has completed. Each
  // operation carries its own deadline (tcp_stream::expires_after), so this always returns.
  template <class Start>
  error_code wait(Start&& start) {
    error_code result;
    bool done = false;
    std::forward<Start>(start)([&result, &done](error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    while (!done && ioc.run_one() != 0) {
    }
    return result;
  }
};

void HttpClient::Impl::close() {
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
  buffer.clear();
  connected = false;
}

TransportError HttpClient::Impl::connect(const Url& url, std::string& detail) {
  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  const auto address = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(address, url.port);
  } else {
    // A name: resolve it on the same io_context, bounded by the connect deadline. Whatever the
    // system resolver is still doing when the deadline passes is abandoned, not waited for.
    struct Resolution {
      bool done = false;
      error_code ec;
      tcp::resolver::results_type results;
    };
    auto state = std::make_shared<Resolution>();
    tcp::resolver resolver(ioc);
    resolver.async_resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service,
                           [state](error_code rec, tcp::resolver::results_type results) {
                             state->ec = rec;
                             state->results = std::move(results);
                             state->done = true;
                           });
    const auto deadline = std::chrono::steady_clock::now() + limits.connect_timeout;
    ioc.restart();
    while (!state->done && ioc.run_one_until(deadline) != 0) {
    }
    if (!state->done) {
      resolver.cancel();
      detail = "name resolution timed out";
      return TransportError::resolve_failed;
    }
    if (state->ec || state->results.empty()) {
      detail = state->ec ? state->ec.message() : "no addresses";
      return TransportError::resolve_failed;
    }
    for (const auto& entry : state->results) endpoints.push_back(entry.endpoint());
  }

  stream.expires_after(limits.connect_timeout);
  ec = wait([&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
  if (ec) {
    detail = ec.message();
    close();
    return classify(Phase::connect, ec);
  }
  // Requests are written whole; Nagle would only delay the last segment of each.
  stream.socket().set_option(tcp::no_delay(true), ec);
  connected = true;
  host = url.host;
  port = url.port;
  buffer.clear();
  return TransportError::none;
}

HttpClient::Impl::Attempt HttpClient::Impl::attempt(const http::request<http::string_body>& req, bool reused) {
  Attempt out;
  auto fail = [&](Phase phase, const error_code& ec, bool nothing_received) {
    out.ec = ec;
    out.error = classify(phase, ec);
    out.stale = reused && nothing_received && looks_stale(ec);
    close();
    return out;
  };

  stream.expires_after(limits.write_timeout);
  auto ec = wait([&](auto handler) { http::async_write(stream, req, std::move(handler)); });
  if (ec) return fail(Phase::write, ec, true);

  // One deadline for the whole header, including any interim 1xx responses before it.
  stream.expires_after(limits.header_timeout);
  std::optional<ResponseParser> parser;
  for (int interim = 0;; ++interim) {
    parser.emplace();
    // Beast's header_limit is 32 bits wide; a larger cap means "no practical cap".
    parser->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser->body_limit(limits.max_body_bytes);
    // A response to HEAD announces a length but carries no body.
    if (req.method() == http::verb::head) parser->skip(true);
    const bool before_first_byte = interim == 0 && buffer.size() == 0;
    ec = wait([&](auto handler) { http::async_read_header(stream, buffer, *parser, std::move(handler)); });
    if (ec) return fail(Phase::header, ec, before_first_byte && !parser->got_some());
    const int status = parser->get().result_int();
    if (status >= 200 || status == 101) break;
    if (interim + 1 == kMaxInterimResponses) {
      out.error = TransportError::bad_response;
      out.ec = http::error::bad_status;
      close();
      return out;
    }
  }

  if (!parser->is_done()) {
    stream.expires_after(limits.body_timeout);
    ec = wait([&](auto handler) { http::async_read(stream, buffer, *parser, std::move(handler)); });
    if (ec) return fail(Phase::body, ec, false);
  }

  const bool server_keeps = parser->get().keep_alive() && !parser->need_eof();
  const bool switched = parser->get().result_int() == 101;  // we do not speak what it switched to
  out.keep_alive = server_keeps && !switched && req.keep_alive();

  auto message = parser->release();
  Response response;
  response.status = message.result_int();
  response.reason = std::string(message.reason());
  response.headers = headers_of(message.base());
  response.body = std::move(message.body());
  out.response = std::move(response);
  return out;
}

Exchange HttpClient::Impl::send(const Request& request) {
  Exchange ex;
  ex.request = request;
  ex.started = std::chrono::system_clock::now();
  const auto start = std::chrono::steady_clock::now();
  auto finish = [&] {
    ex.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    return std::move(ex);
  };

  const auto url = parse_url(request.url);
  if (!url || url->scheme != "http") {
    ex.error = TransportError::bad_url;
    ex.error_detail = url ? "unsupported scheme " + url->scheme : "cannot parse URL";
    return finish();
  }

  const auto req = make_request(request, *url);
  // The transcript records the headers as sent, client-added ones included.
  ex.request.headers = headers_of(req.base());

  if (connected && (host != url->host || port != url->port)) close();

  // A second attempt only when a kept-alive connection turned out closed before any byte of a
  // response: the server never saw the request or dropped it unanswered while idle. Anything
  // else (a timeout, a partial answer) may have had effects on the server and is reported.
  for (int tries = 0; tries < 2; ++tries) {
    const bool reused = connected;
    if (!connected) {
      const auto error = connect(*url, ex.error_detail);
      if (error != TransportError::none) {
        ex.error = error;
        return finish();
      }
    }
    auto result = attempt(req, reused);
    if (result.error == TransportError::none) {
      ex.response = std::move(result.response);
      ex.reused_connection = reused;
      if (!result.keep_alive) close();
      return finish();
    }
    if (!result.stale) {
      ex.reused_connection = reused;
      ex.error = result.error;
      ex.error_detail = result.ec.message();
      return finish();
    }
  }
  // Unreachable: the second try runs on a fresh connection, which is never stale.
  ex.error = TransportError::closed_before_response;
  return finish();
}

HttpClient::HttpClient(ClientLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Exchange HttpClient::send(const Request& request) { return impl_->send(request); }

void HttpClient::close() {
  if (impl_ && impl_->connected) impl_->close();
}

}  // namespace mdmc::net
