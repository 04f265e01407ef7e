#pragma once
// A keep-alive HTTP/1.1 client over Boost.Beast with a deadline on every operation and a cap
// on every read. The server on the other end is under test: it may stall, lie about lengths,
// reset, or send garbage, and every one of those ends as an Exchange with an error, in time.
#include <chrono>
#include <memory>

#include "harness/net/http.hpp"

namespace mdmc::net {

struct ClientLimits {
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect, per attempt
  std::chrono::milliseconds write_timeout{10000};   // sending the whole request
  std::chrono::milliseconds header_timeout{10000};  // from request sent to complete header
  std::chrono::milliseconds body_timeout{30000};    // from header to complete body
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 8 * 1024 * 1024;     // a large InstallApplication manifest fits
};

// Sends requests one at a time, reusing the connection while the server keeps it open.
// Not thread-safe: one client per emulated channel or per thread.
class HttpClient {
 public:
  explicit HttpClient(ClientLimits limits = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Blocks until the response is complete or a deadline passes. Never throws for anything
  // the peer does. A request to another host:port than the open connection reconnects.
  Exchange send(const Request& request);
  // Drops the kept-alive connection, if any.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdmc::net
