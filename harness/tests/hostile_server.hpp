#pragma once
// A hostile MDM server for end-to-end tests: broken by definition, in one chosen way. It
// speaks raw bytes on POSIX sockets (HttpServer would never misbehave like this), binds
// 127.0.0.1 on a free port, and serves each connection on its own thread.
//
// Bounds, so that a test can never hang or exhaust the machine whatever the client does:
// at most kMaxConcurrent connections at once (more wait in the listen backlog), at most
// kMaxConnections over the server's life (later ones are closed at once), every wait is a
// poll of at most kSlice that checks for stop(), and every connection ends within
// kConnectionLimit. stop() (and the destructor) returns within about kSlice plus the time a
// thread needs to notice, well under a second.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace mdmc::tests {

// How the server misbehaves. Each mode applies to every request, after the server has read
// the request's header and body; see hostile_server.cpp for the bytes of each.
enum class HostileMode {
  malformed_plist,       // 200 with "<plist><dict><key>x</key>": XML cut off inside a dict
  truncated_body,        // Content-Length 1000, 100 bytes, then close
  chunked_forever,       // chunked encoding, a chunk every 10 ms until the client goes away
  huge_content_length,   // Content-Length: 1073741824, a few bytes, then silence
  slow_headers,          // a valid header at one byte per second
  slow_body,             // a valid header, then the body at one byte per second
  reset_mid_response,    // half a response, then a TCP reset (SO_LINGER 0)
  close_before_answer,   // reads the request, closes without a byte
  wrong_http_version,    // "HTTP/0.9 200 OK" or "SPDY/3 200 OK" as the status line
  redirect_loop,         // 302 to the URL just requested
  redirect_off_host,     // 302 to http://192.0.2.1/mdm (TEST-NET-1: never loopback)
  deep_xml,              // 200 with 100000 nested <array>
  binary_cyclic,         // a bplist00 whose top array holds itself
  binary_out_of_range,   // a bplist00 whose array references an object past the table
  huge_string,           // a command with a 7 MiB string: under the 8 MiB body cap, over plist limits
  huge_body,             // 200 with a 50 MiB body: the body cap must stop it
  invalid_utf8,          // a command whose CommandUUID holds the bytes FF FE
  command_without_uuid,  // {Command: {RequestType: ProfileList}} and no CommandUUID
  body_where_empty_due,  // "<plist><dict/></plist>" where a zero-length body is due
  // Not in kHostileModes: a reproducer for a finding (hostile_test.cpp, the DISABLED_ test).
  large_valid_commands,  // a valid 1 MiB command with a fresh CommandUUID to every report, forever
};

inline constexpr std::array kHostileModes = {
    HostileMode::malformed_plist,      HostileMode::truncated_body,
    HostileMode::chunked_forever,      HostileMode::huge_content_length,
    HostileMode::slow_headers,         HostileMode::slow_body,
    HostileMode::reset_mid_response,   HostileMode::close_before_answer,
    HostileMode::wrong_http_version,   HostileMode::redirect_loop,
    HostileMode::redirect_off_host,    HostileMode::deep_xml,
    HostileMode::binary_cyclic,        HostileMode::binary_out_of_range,
    HostileMode::huge_string,          HostileMode::huge_body,
    HostileMode::invalid_utf8,         HostileMode::command_without_uuid,
    HostileMode::body_where_empty_due,
};

std::string_view hostile_mode_name(HostileMode mode);

// Modes about command responses only: check-ins get 200 with an empty body, so that enrollment
// succeeds and the series steps meet the hostility. Every other mode is transport-level and
// treats every request alike (check-ins included). The admin enqueue path, /v1/enqueue/...,
// always gets 200 "{}" in every mode.
bool concerns_commands_only(HostileMode mode);

class HostileServer {
 public:
  static constexpr int kMaxConcurrent = 64;
  static constexpr int kMaxConnections = 4000;
  static constexpr std::chrono::milliseconds kSlice{50};
  static constexpr std::chrono::seconds kConnectionLimit{120};

  // Binds and starts serving; port() is 0 when binding failed.
  explicit HostileServer(HostileMode mode);
  ~HostileServer();  // stops and joins every thread
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;

  std::uint16_t port() const { return port_; }
  HostileMode mode() const { return mode_; }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  // Stops accepting, tells every connection thread to end, and joins them all. Idempotent.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  struct Request;
  struct Connection;

  void accept_loop();
  void serve(int fd, int index);
  bool read_request(Connection& c, Request& out);
  // Each returns false when the connection must close (after this answer, or because the
  // client left, stop() was called or the connection's time is up).
  bool answer(Connection& c, const Request& request);
  bool hostile_answer(Connection& c, const Request& request);
  bool send_all(Connection& c, std::string_view bytes);
  bool receive(Connection& c, Clock::time_point until);
  bool pause(const Connection& c, std::chrono::milliseconds how_long);
  bool pause_until(Clock::time_point until);
  void wait_for_client_to_leave(Connection& c);
  bool alive(const Connection& c) const;
  bool stopping() const { return stopping_.load(); }
  void reap(bool all);

  HostileMode mode_;
  std::string body_;  // the fixed answer of a content-level mode (7 MiB for huge_string), made once
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> commands_{0};  // large_valid_commands: numbers each CommandUUID
  std::mutex mutex_;
  std::condition_variable wake_;                // pauses sleep on it; stop() wakes them
  std::list<std::unique_ptr<Worker>> workers_;  // the accept thread's, and stop()'s once that has ended
  std::thread acceptor_;
};

}  // namespace mdmc::tests
