#pragma once
// Test-only peers on plain POSIX sockets: a scripted server and a bare client that misbehave on
// purpose (stall, hang up, reset, send garbage) in ways HttpServer and HttpClient never would.
// Everything binds or connects to 127.0.0.1 and every blocking call is bounded in time.
// The socket headers come along: tests that use these peers also call recv, send and close.
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
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace mdmc::testing {

// No single read or write in a test blocks longer than this, whatever the code under test does.
inline constexpr std::chrono::seconds kRawIoLimit{5};

// Gives a socket kRawIoLimit as its receive and send timeouts.
void set_io_timeouts(int fd);

// Writes all of `bytes`, or returns false when the peer is gone or the time limit passed.
bool write_all(int fd, std::string_view bytes);

// Reads one request: the header, then as many body bytes as its Content-Length says. Returns
// what arrived, possibly short if the peer closed or the time limit passed.
std::string read_request(int fd);

// Reads until the peer closes (or the time limit passes).
std::string read_until_close(int fd);

// A port on 127.0.0.1 that nothing listens on, as far as anyone can know.
std::uint16_t unused_port();

// A connected client socket, or -1.
int connect_raw(std::uint16_t port);

// Closes with a reset instead of a FIN: SO_LINGER with a zero timeout.
void reset_and_close(int fd);

// A TCP server on 127.0.0.1 that runs a script on each connection, one connection at a time,
// on its own thread. The script returns to hang up (the descriptor is then closed); it may
// also close it itself and return -1 through `fd` to say so.
class RawServer {
 public:
  using Script = std::function<void(RawServer& server, int& fd, int index)>;

  explicit RawServer(Script script);
  ~RawServer();
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;

  std::uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

  // Holds the connection open and silent until the test ends, or ten seconds pass.
  void stall();

 private:
  void accept_loop();

  Script script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mdmc::testing
