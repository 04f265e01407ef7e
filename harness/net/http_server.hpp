#pragma once
// A small asynchronous HTTP/1.1 server over Boost.Beast (C++20 coroutines), for the reference
// MDM server and for test servers. It binds loopback by default and hands each complete
// request to a handler; the handler does no I/O.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "harness/net/http.hpp"

namespace mdmc::net {

struct ServerRequest {
  std::string method;
  std::string target;  // path and query as received
  Headers headers;
  std::string body;
  std::string peer;    // "127.0.0.1:53412"
};

struct ServerResponse {
  int status = 200;
  Headers headers;     // Content-Length is set by the server
  std::string body;
  bool close = false;  // close the connection after this response
};

struct ServerLimits {
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{30000};  // an idle or slow client is dropped
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

class HttpServer {
 public:
  HttpServer(Handler handler, ServerLimits limits = {});
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; port 0 picks a free port. Returns the bound port, or 0 with `error`
  // set ("address in use") when binding fails.
  std::uint16_t listen(const std::string& address, std::uint16_t port, std::string* error);
  // Serves on `threads` background threads until stop().
  void start(unsigned threads = 1);
  // Blocks the caller serving until stop() is called from elsewhere (a signal handler, say).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdmc::net
