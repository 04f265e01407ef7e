#include "harness/tests/hostile_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <utility>

namespace mdmc::tests {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What the server reads of a request before it misbehaves. The harness sends small plists;
// anything beyond these is not the harness and gets the connection closed.
constexpr std::size_t kMaxRequestHeader = 64 * 1024;
constexpr std::size_t kMaxRequestBody = 16 * 1024 * 1024;
// A kept-alive connection with no request for this long is closed (the client reconnects).
constexpr auto kIdleLimit = 30s;
// A write that makes no progress for this long (a client that stopped reading) gives up.
constexpr auto kStalledWriteLimit = 10s;

constexpr std::string_view kXmlPrologue =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n";

constexpr std::string_view kCheckInContentType = "application/x-apple-aspen-mdm-checkin";
constexpr std::string_view kEnqueuePrefix = "/v1/enqueue/";

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string head(int status, std::string_view reason, std::string_view content_type, std::size_t length) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  if (!content_type.empty()) out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(length) + "\r\n\r\n";
  return out;
}

// A command plist whose CommandUUID is `uuid` (raw bytes, written as they are) and whose
// Command dict ends with `extra` (XML written as it is).
std::string command_xml(std::string_view uuid, std::string_view extra = {}) {
  std::string out(kXmlPrologue);
  out +=
      "<plist version=\"1.0\">\n<dict>\n<key>Command</key>\n<dict>\n<key>RequestType</key>\n"
      "<string>ProfileList</string>\n";
  out += extra;
  out += "</dict>\n<key>CommandUUID</key>\n<string>";
  out += uuid;
  out += "</string>\n</dict>\n</plist>\n";
  return out;
}

// A bplist00 with one object, an array of one element that references object `ref`, in a
// table of one object. ref 0 is the array itself: a cycle. ref 7 is past the table.
std::string one_array_bplist(std::uint8_t ref) {
  std::string b = "bplist00";
  b.push_back(static_cast<char>(0xA1));  // array marker, one element
  b.push_back(static_cast<char>(ref));   // its object reference (ref size 1)
  const std::size_t table_offset = b.size();
  b.push_back(8);     // offset table: object 0 starts at byte 8
  b.append(6, '\0');  // trailer: unused, sort version
  b.push_back(1);     // offset int size
  b.push_back(1);     // object ref size
  auto put64 = [&b](std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<char>(v >> shift));
  };
  put64(1);             // number of objects
  put64(0);             // top object
  put64(table_offset);  // offset table offset
  return b;
}

// The fixed body a content-level mode answers with; empty for the transport-level modes.
std::string fixed_body(HostileMode mode) {
  switch (mode) {
    case HostileMode::malformed_plist: return "<plist><dict><key>x</key>";
    case HostileMode::deep_xml: {
      // 100000 levels: far past plist::Limits::max_depth (64), and deep enough that a
      // recursive parser or a recursive free would overflow its stack.
      constexpr int kLevels = 100'000;
      std::string out(kXmlPrologue);
      out += "<plist version=\"1.0\">";
      out.reserve(out.size() + kLevels * 15 + 16);
      for (int i = 0; i < kLevels; ++i) out += "<array>";
      for (int i = 0; i < kLevels; ++i) out += "</array>";
      out += "</plist>\n";
      return out;
    }
    case HostileMode::binary_cyclic: return one_array_bplist(0);
    case HostileMode::binary_out_of_range: return one_array_bplist(7);
    case HostileMode::huge_string: {
      // 7 MiB of string: the response stays under the client's default 8 MiB body cap, so
      // it arrives whole, and the plist limits (4 MiB by default) must refuse it.
      constexpr std::size_t kStringBytes = 7 * 1024 * 1024;
      std::string extra = "<key>Payload</key>\n<string>";
      extra.append(kStringBytes, 'A');
      extra += "</string>\n";
      return command_xml("6B1D3C5E-9F2A-4E7B-8C0D-1A2B3C4D5E6F", extra);
    }
    case HostileMode::invalid_utf8: return command_xml("\xFF\xFE-not-utf-8");
    case HostileMode::command_without_uuid:
      return std::string(kXmlPrologue) +
             "<plist version=\"1.0\">\n<dict>\n<key>Command</key>\n<dict>\n<key>RequestType</key>\n"
             "<string>ProfileList</string>\n</dict>\n</dict>\n</plist>\n";
    case HostileMode::body_where_empty_due: return "<plist><dict/></plist>";
    default: return {};
  }
}

}  // namespace

std::string_view hostile_mode_name(HostileMode mode) {
  switch (mode) {
    case HostileMode::malformed_plist: return "malformed_plist";
    case HostileMode::truncated_body: return "truncated_body";
    case HostileMode::chunked_forever: return "chunked_forever";
    case HostileMode::huge_content_length: return "huge_content_length";
    case HostileMode::slow_headers: return "slow_headers";
    case HostileMode::slow_body: return "slow_body";
    case HostileMode::reset_mid_response: return "reset_mid_response";
    case HostileMode::close_before_answer: return "close_before_answer";
    case HostileMode::wrong_http_version: return "wrong_http_version";
    case HostileMode::redirect_loop: return "redirect_loop";
    case HostileMode::redirect_off_host: return "redirect_off_host";
    case HostileMode::deep_xml: return "deep_xml";
    case HostileMode::binary_cyclic: return "binary_cyclic";
    case HostileMode::binary_out_of_range: return "binary_out_of_range";
    case HostileMode::huge_string: return "huge_string";
    case HostileMode::huge_body: return "huge_body";
    case HostileMode::invalid_utf8: return "invalid_utf8";
    case HostileMode::command_without_uuid: return "command_without_uuid";
    case HostileMode::body_where_empty_due: return "body_where_empty_due";
    case HostileMode::large_valid_commands: return "large_valid_commands";
  }
  return "unknown";
}

bool concerns_commands_only(HostileMode mode) {
  switch (mode) {
    case HostileMode::command_without_uuid:
    case HostileMode::body_where_empty_due:
    case HostileMode::huge_string:
    case HostileMode::invalid_utf8:
    case HostileMode::deep_xml:
    case HostileMode::binary_cyclic:
    case HostileMode::binary_out_of_range:
    case HostileMode::large_valid_commands: return true;
    default: return false;
  }
}

struct HostileServer::Request {
  std::string method;
  std::string target;
  std::string content_type;
  std::string body;
};

// One connection's state, owned by its thread.
struct HostileServer::Connection {
  int fd = -1;
  int index = 0;
  std::string pending;  // bytes read past the last request
  Clock::time_point deadline;
};

HostileServer::HostileServer(HostileMode mode) : mode_(mode), body_(fixed_body(mode)) {
  // CLOEXEC: tests fork the mdmconform binary, which must not inherit this server's sockets.
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HostileServer::~HostileServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void HostileServer::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_.exchange(true)) return;
  }
  wake_.notify_all();
  if (acceptor_.joinable()) acceptor_.join();
  reap(true);
}

void HostileServer::reap(bool all) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || (*it)->done.load()) {
      (*it)->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void HostileServer::accept_loop() {
  while (!stopping()) {
    reap(false);
    if (workers_.size() >= static_cast<std::size_t>(kMaxConcurrent)) {
      // Full: new connections wait in the backlog until a thread ends.
      pause_until(Clock::now() + 10ms);
      continue;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kSlice.count())) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int index = connections_.fetch_add(1);
    if (index >= kMaxConnections) {
      ::close(fd);  // over the life bound: refused, visibly, rather than queued
      continue;
    }
    auto worker = std::make_unique<Worker>();
    Worker* raw = worker.get();
    raw->thread = std::thread([this, raw, fd, index] {
      serve(fd, index);
      raw->done.store(true);
    });
    workers_.push_back(std::move(worker));
  }
}

bool HostileServer::alive(const Connection& c) const { return !stopping() && Clock::now() < c.deadline; }

bool HostileServer::pause_until(Clock::time_point until) {
  std::unique_lock lock(mutex_);
  wake_.wait_until(lock, until, [this] { return stopping_.load(); });
  return !stopping_.load();
}

bool HostileServer::pause(const Connection& c, std::chrono::milliseconds how_long) {
  return pause_until(std::min(Clock::now() + how_long, c.deadline)) && alive(c);
}

bool HostileServer::receive(Connection& c, Clock::time_point until) {
  char chunk[64 * 1024];
  while (alive(c) && Clock::now() < until) {
    pollfd p{c.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(kSlice.count()));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    const auto n = ::recv(c.fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
      c.pending.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
  }
  return false;
}

bool HostileServer::send_all(Connection& c, std::string_view bytes) {
  auto last_progress = Clock::now();
  while (!bytes.empty()) {
    if (!alive(c) || Clock::now() - last_progress > kStalledWriteLimit) return false;
    pollfd p{c.fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(kSlice.count()));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    if ((p.revents & (POLLERR | POLLHUP)) != 0) return false;
    const auto n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      last_progress = Clock::now();
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
  }
  return true;
}

void HostileServer::wait_for_client_to_leave(Connection& c) {
  char sink[4096];
  while (alive(c)) {
    pollfd p{c.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(kSlice.count()));
    if (ready < 0 && errno != EINTR) return;
    if (ready <= 0) continue;
    const auto n = ::recv(c.fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n == 0) return;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
  }
}

bool HostileServer::read_request(Connection& c, Request& out) {
  const auto until = Clock::now() + kIdleLimit;
  std::size_t header_end = std::string::npos;
  while ((header_end = c.pending.find("\r\n\r\n")) == std::string::npos) {
    if (c.pending.size() > kMaxRequestHeader) return false;
    if (!receive(c, until)) return false;
  }
  const std::string_view header(c.pending.data(), header_end);
  const auto line_end = header.find("\r\n");
  const std::string_view request_line = header.substr(0, line_end);
  const auto sp1 = request_line.find(' ');
  const auto sp2 = request_line.find(' ', sp1 == std::string_view::npos ? 0 : sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return false;
  out.method = std::string(request_line.substr(0, sp1));
  out.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));

  std::size_t content_length = 0;
  std::size_t pos = line_end == std::string_view::npos ? header.size() : line_end + 2;
  while (pos < header.size()) {
    auto end = header.find("\r\n", pos);
    if (end == std::string_view::npos) end = header.size();
    const std::string_view field = header.substr(pos, end - pos);
    pos = end + 2;
    const auto colon = field.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = field.substr(0, colon);
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    if (iequals(name, "Content-Length")) {
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (ec != std::errc{}) return false;
    } else if (iequals(name, "Content-Type")) {
      out.content_type = std::string(value);
    }
  }
  if (content_length > kMaxRequestBody) return false;
  const std::size_t whole = header_end + 4 + content_length;
  while (c.pending.size() < whole) {
    if (!receive(c, until)) return false;
  }
  out.body = c.pending.substr(header_end + 4, content_length);
  c.pending.erase(0, whole);
  return true;
}

void HostileServer::serve(int fd, int index) {
  Connection c;
  c.fd = fd;
  c.index = index;
  c.deadline = Clock::now() + kConnectionLimit;
  Request request;
  while (alive(c) && read_request(c, request)) {
    requests_.fetch_add(1);
    if (!answer(c, request)) break;
    request = Request{};
  }
  if (c.fd >= 0) ::close(c.fd);
}

bool HostileServer::answer(Connection& c, const Request& request) {
  if (request.target.rfind(kEnqueuePrefix, 0) == 0) {
    constexpr std::string_view kEmptyJson = "{}";
    return send_all(c, head(200, "OK", "application/json", kEmptyJson.size()) + std::string(kEmptyJson));
  }
  if (concerns_commands_only(mode_) && istarts_with(request.content_type, kCheckInContentType)) {
    return send_all(c, head(200, "OK", "", 0));
  }
  return hostile_answer(c, request);
}

bool HostileServer::hostile_answer(Connection& c, const Request& request) {
  switch (mode_) {
    case HostileMode::truncated_body: {
      // Promises 1000 bytes, sends 100, hangs up.
      static_assert(kXmlPrologue.size() >= 100);
      send_all(c, head(200, "OK", "application/xml", 1000) + std::string(kXmlPrologue.substr(0, 100)));
      return false;
    }
    case HostileMode::chunked_forever: {
      if (!send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n")) {
        return false;
      }
      // Sixteen bytes every 10 ms: steady progress, so no idle timer would fire; only a
      // deadline on the whole body ends it. Ends when the client goes away (a write fails),
      // at stop(), or at the connection's time limit.
      constexpr std::string_view kChunk = "10\r\n<array></array> \r\n";  // 0x10 bytes of data
      static_assert(kChunk.size() == 4 + 0x10 + 2);
      while (send_all(c, kChunk) && pause(c, 10ms)) {}
      return false;
    }
    case HostileMode::huge_content_length: {
      // 1 GiB announced, a few bytes sent, then silence until the client leaves.
      send_all(c, head(200, "OK", "application/xml", 1'073'741'824) + "<?xml vers");
      wait_for_client_to_leave(c);
      return false;
    }
    case HostileMode::slow_headers: {
      const std::string response = head(200, "OK", "", 0);
      for (std::size_t i = 0; i < response.size(); ++i) {
        if (!send_all(c, response.substr(i, 1))) return false;
        if (i + 1 < response.size() && !pause(c, 1000ms)) return false;
      }
      return true;
    }
    case HostileMode::slow_body: {
      const std::string body = "<plist version=\"1.0\"><dict/></plist>";
      if (!send_all(c, head(200, "OK", "application/xml", body.size()))) return false;
      for (std::size_t i = 0; i < body.size(); ++i) {
        if (!pause(c, 1000ms) || !send_all(c, body.substr(i, 1))) return false;
      }
      return true;
    }
    case HostileMode::reset_mid_response: {
      // The header whole and part of the body, then a reset: SO_LINGER with a zero timeout
      // makes close() send RST instead of FIN.
      const std::string body(100, 'x');
      const std::string response = head(200, "OK", "application/xml", body.size()) + body;
      send_all(c, std::string_view(response).substr(0, response.size() - body.size() / 2));
      linger lg{};
      lg.l_onoff = 1;
      lg.l_linger = 0;
      ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(c.fd);
      c.fd = -1;
      return false;
    }
    case HostileMode::close_before_answer: return false;
    case HostileMode::wrong_http_version:
      // Two flavours of a status line that is not HTTP/1.x, by turns.
      send_all(c, c.index % 2 == 0 ? "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n"
                                   : "SPDY/3 200 OK\r\nContent-Length: 0\r\n\r\n");
      return false;
    case HostileMode::redirect_loop:
      return send_all(c, "HTTP/1.1 302 Found\r\nLocation: " + request.target + "\r\nContent-Length: 0\r\n\r\n");
    case HostileMode::redirect_off_host:
      return send_all(c, "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/mdm\r\nContent-Length: 0\r\n\r\n");
    case HostileMode::huge_body: {
      // 50 MiB announced and sent in 64 KiB pieces, never held whole: the client's body cap
      // (8 MiB by default) must end it.
      constexpr std::size_t kBodyBytes = 50 * 1024 * 1024;
      if (!send_all(c, head(200, "OK", "application/xml", kBodyBytes))) return false;
      const std::string piece(64 * 1024, 'A');
      for (std::size_t sent = 0; sent < kBodyBytes; sent += piece.size()) {
        if (!send_all(c, piece)) return false;
      }
      return true;
    }
    case HostileMode::large_valid_commands: {
      // Each one valid and within every limit (1 MiB against the 4 MiB plist and 8 MiB body
      // caps), each with a new CommandUUID, so a series goes on to its exchange bound.
      const std::string extra = "<key>Payload</key>\n<string>" + std::string(1024 * 1024, 'A') + "</string>\n";
      const std::string uuid = fmt::format("00000000-0000-4000-8000-{:012X}", commands_.fetch_add(1));
      const std::string body = command_xml(uuid, extra);
      return send_all(c, head(200, "OK", "application/xml", body.size()) + body);
    }
    case HostileMode::binary_cyclic:
    case HostileMode::binary_out_of_range:
      return send_all(c, head(200, "OK", "application/x-plist", body_.size()) + body_);
    case HostileMode::malformed_plist:
    case HostileMode::deep_xml:
    case HostileMode::huge_string:
    case HostileMode::invalid_utf8:
    case HostileMode::command_without_uuid:
    case HostileMode::body_where_empty_due:
      return send_all(c, head(200, "OK", "application/xml", body_.size())) && send_all(c, body_);
  }
  return false;
}

}  // namespace mdmc::tests
