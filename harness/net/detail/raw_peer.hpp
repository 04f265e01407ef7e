#pragma once
// Test-only peers on plain POSIX sockets: a scripted server and a bare client that misbehave on
// purpose (stall, hang up, reset, send garbage) in ways HttpServer and HttpClient never would.
// Everything binds or connects to 127.0.0.1 and every blocking call is bounded in time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace mdmc::net::detail {

// No single read or write in a test blocks longer than this, whatever the code under test does.
inline constexpr std::chrono::seconds kRawIoLimit{5};

inline void set_io_timeouts(int fd) {
  timeval tv{};
  tv.tv_sec = kRawIoLimit.count();
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

inline sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

inline bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads one request: the header, then as many body bytes as its Content-Length says. Returns
// what arrived, possibly short if the peer closed or the time limit passed.
inline std::string read_request(int fd) {
  std::string data;
  char chunk[4096];
  std::size_t header_end = std::string::npos;
  std::size_t wanted = std::string::npos;
  while (wanted == std::string::npos || data.size() < wanted) {
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    data.append(chunk, static_cast<std::size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      wanted = header_end + 4;
      // Case-insensitive enough for our own client, which writes "Content-Length".
      const auto at = data.find("Content-Length: ");
      if (at != std::string::npos && at < header_end) wanted += std::strtoul(data.c_str() + at + 16, nullptr, 10);
    }
  }
  return data;
}

// Reads until the peer closes (or the time limit passes).
inline std::string read_until_close(int fd) {
  std::string data;
  char chunk[4096];
  for (;;) {
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    data.append(chunk, static_cast<std::size_t>(n));
  }
  return data;
}

// A port on 127.0.0.1 that nothing listens on, as far as anyone can know.
inline std::uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto addr = loopback_address(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A connected client socket, or -1.
inline int connect_raw(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  set_io_timeouts(fd);
  auto addr = loopback_address(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Closes with a reset instead of a FIN: SO_LINGER with a zero timeout.
inline void reset_and_close(int fd) {
  linger lg{};
  lg.l_onoff = 1;
  lg.l_linger = 0;
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

// A TCP server on 127.0.0.1 that runs a script on each connection, one connection at a time,
// on its own thread. The script returns to hang up (the descriptor is then closed); it may
// also close it itself and return -1 through `fd` to say so.
class RawServer {
 public:
  using Script = std::function<void(RawServer& server, int& fd, int index)>;

  explicit RawServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    auto addr = loopback_address(0);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~RawServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    ::close(listen_fd_);
  }
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;

  std::uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

  // Holds the connection open and silent until the test ends, or ten seconds pass.
  void stall() {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(10), [this] { return stopping_; });
  }

 private:
  void accept_loop() {
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      pollfd p{listen_fd_, POLLIN, 0};
      // Short polls so the destructor is never kept waiting for long.
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      set_io_timeouts(fd);
      const int index = connections_.fetch_add(1);
      script_(*this, fd, index);
      if (fd >= 0) ::close(fd);
    }
  }

  Script script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mdmc::net::detail
