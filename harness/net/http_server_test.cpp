#include "harness/net/http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness/net/http.hpp"
#include "harness/net/http_client.hpp"
#include "harness/testing/raw_peer.hpp"

namespace mdmc::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

ServerResponse ok_response(const ServerRequest&) {
  ServerResponse response;
  response.body = "ok";
  return response;
}

Request put(std::uint16_t port, std::string body = "<plist/>") {
  Request r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/mdm";
  r.body = std::move(body);
  return r;
}

// The status line of a raw answer: "HTTP/1.1 413 Payload Too Large" and so on.
std::string status_line(const std::string& answer) { return answer.substr(0, answer.find("\r\n")); }

TEST(HttpServer, HandsTheRequestToTheHandlerAndSendsItsResponse) {
  std::optional<ServerRequest> seen;
  HttpServer server([&seen](const ServerRequest& request) {
    seen = request;
    ServerResponse response;
    response.status = 201;
    response.headers.push_back({"X-Server", "reference"});
    response.body = "created";
    return response;
  });
  auto port_listening = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(port_listening) << port_listening.message();
  const auto port = port_listening.value_or(0);
  server.start(1);

  HttpClient client;
  Request request = put(port, "<dict/>");
  request.url += "?q=1";
  request.headers.push_back({"X-Device", "emulated"});
  const auto ex = client.send(request);
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error) << ": " << ex.error_detail;
  EXPECT_EQ(ex.response->status, 201);
  EXPECT_EQ(ex.response->body, "created");
  EXPECT_EQ(find_header(ex.response->headers, "X-Server"), "reference");
  EXPECT_EQ(find_header(ex.response->headers, "Content-Length"), "7");

  server.stop();  // joins the serving thread, so `seen` is safe to read
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->method, "PUT");
  EXPECT_EQ(seen->target, "/mdm?q=1");
  EXPECT_EQ(seen->body, "<dict/>");
  EXPECT_EQ(find_header(seen->headers, "x-device"), "emulated");
  EXPECT_EQ(seen->peer.rfind("127.0.0.1:", 0), 0U) << seen->peer;
}

TEST(HttpServer, Answers413AndClosesWhenTheBodyExceedsTheCap) {
  std::atomic<int> calls{0};
  ServerLimits limits;
  limits.max_body_bytes = 1000;
  HttpServer server(
      [&calls](const ServerRequest& r) {
        ++calls;
        return ok_response(r);
      },
      limits);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  HttpClient client;
  const auto ex = client.send(put(port, std::string(5000, 'x')));
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error) << ": " << ex.error_detail;
  EXPECT_EQ(ex.response->status, 413);
  EXPECT_EQ(find_header(ex.response->headers, "Connection"), "close");
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServer, Answers413WhenAChunkedBodyGrowsPastTheCap) {
  ServerLimits limits;
  limits.max_body_bytes = 1000;
  HttpServer server(ok_response, limits);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  const int fd = testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  std::string request = "PUT /mdm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) request += "200\r\n" + std::string(512, 'x') + "\r\n";
  request += "0\r\n\r\n";
  testing::write_all(fd, request);
  EXPECT_EQ(status_line(testing::read_until_close(fd)), "HTTP/1.1 413 Payload Too Large");
  ::close(fd);
}

TEST(HttpServer, Answers431AndClosesWhenTheHeaderExceedsTheCap) {
  ServerLimits limits;
  limits.max_header_bytes = 1024;
  HttpServer server(ok_response, limits);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  HttpClient client;
  Request request = put(port);
  request.headers.push_back({"X-Padding", std::string(4096, 'a')});
  const auto ex = client.send(request);
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error) << ": " << ex.error_detail;
  EXPECT_EQ(ex.response->status, 431);
}

TEST(HttpServer, Answers400ForBytesThatAreNotHttp) {
  HttpServer server(ok_response);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  const int fd = testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  testing::write_all(fd, "garbage garbage\r\n\r\n");
  EXPECT_EQ(status_line(testing::read_until_close(fd)), "HTTP/1.1 400 Bad Request");
  ::close(fd);
}

TEST(HttpServer, Answers500WhenTheHandlerThrowsAndKeepsServing) {
  std::atomic<int> calls{0};
  HttpServer server([&calls](const ServerRequest& r) {
    if (calls++ == 0) throw std::runtime_error("scenario bug");
    return ok_response(r);
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  HttpClient client;
  const auto failed = client.send(put(port));
  ASSERT_TRUE(failed.ok()) << transport_error_name(failed.error);
  EXPECT_EQ(failed.response->status, 500);
  EXPECT_NE(failed.response->body.find("scenario bug"), std::string::npos);
  const auto next = client.send(put(port));
  ASSERT_TRUE(next.ok()) << transport_error_name(next.error);
  EXPECT_EQ(next.response->status, 200);
  EXPECT_TRUE(next.reused_connection);
}

TEST(HttpServer, ClosesTheConnectionWhenTheHandlerAsksTo) {
  HttpServer server([](const ServerRequest&) {
    ServerResponse response;
    response.close = true;
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  const int fd = testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  testing::write_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto answer = testing::read_until_close(fd);  // returns because the server closed
  EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  ::close(fd);
}

TEST(HttpServer, SendsContinueBeforeReadingABodyTheClientHoldsBack) {
  HttpServer server([](const ServerRequest& request) {
    ServerResponse response;
    response.body = request.body;
    response.close = true;
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  const int fd = testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  testing::write_all(fd, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  char interim[64] = {};
  const auto n = ::recv(fd, interim, sizeof interim - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(interim, static_cast<std::size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  testing::write_all(fd, "hello");
  const auto answer = testing::read_until_close(fd);
  EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
  EXPECT_EQ(answer.substr(answer.size() - 5), "hello");
  ::close(fd);
}

TEST(HttpServer, DropsAConnectionThatStaysIdlePastTheReadTimeout) {
  ServerLimits limits;
  limits.read_timeout = 200ms;
  HttpServer server(ok_response, limits);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  const int fd = testing::connect_raw(port);
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  EXPECT_EQ(testing::read_until_close(fd), "");
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 2s);
  ::close(fd);
}

TEST(HttpServer, ServesConcurrentClientsOnSeveralThreads) {
  std::atomic<int> calls{0};
  HttpServer server([&calls](const ServerRequest& r) {
    ++calls;
    return ok_response(r);
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(2);
  constexpr int kClients = 4;
  constexpr int kRequestsEach = 10;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      HttpClient client;
      for (int i = 0; i < kRequestsEach; ++i) {
        const auto ex = client.send(put(port));
        if (ex.ok() && ex.response->body == "ok") ++good;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), kClients * kRequestsEach);
  EXPECT_EQ(calls.load(), kClients * kRequestsEach);
}

TEST(HttpServer, StopIsPromptIdempotentAndClosesOpenConnections) {
  HttpServer server(ok_response);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(2);
  HttpClient kept_alive;
  ASSERT_TRUE(kept_alive.send(put(port)).ok());
  const int idle = testing::connect_raw(port);
  ASSERT_GE(idle, 0);

  const auto start = Clock::now();
  server.stop();
  EXPECT_LT(Clock::now() - start, 500ms);
  server.stop();
  // The idle client sees its connection end instead of a server that went silent.
  EXPECT_EQ(testing::read_until_close(idle), "");
  EXPECT_LT(Clock::now() - start, 1s);
  ::close(idle);
  EXPECT_EQ(testing::connect_raw(port), -1) << "the port still accepts connections";
}

TEST(HttpServer, RunServesOnTheCallerThreadUntilStop) {
  HttpServer server(ok_response);
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  std::atomic<bool> returned{false};
  std::thread serving([&] {
    server.run();
    returned = true;
  });
  HttpClient client;
  EXPECT_TRUE(client.send(put(port)).ok());
  EXPECT_FALSE(returned.load());
  const auto start = Clock::now();
  server.stop();
  serving.join();
  EXPECT_TRUE(returned.load());
  EXPECT_LT(Clock::now() - start, 500ms);
}

TEST(HttpServer, ReportsAnErrorWhenThePortIsTaken) {
  HttpServer first(ok_response);
  const auto port = first.listen("127.0.0.1", 0).value_or(0);
  ASSERT_NE(port, 0);
  HttpServer second(ok_response);
  std::string error;
  const auto refused1 = second.listen("127.0.0.1", port);
  EXPECT_FALSE(refused1);
  error = refused1 ? std::string() : refused1.error().message;
  EXPECT_FALSE(error.empty());
}

TEST(HttpServer, RefusesToListenOnAnAddressThatIsNotOne) {
  HttpServer server(ok_response);
  std::string error;
  const auto refused2 = server.listen("not-an-address", 0);
  EXPECT_FALSE(refused2);
  error = refused2 ? std::string() : refused2.error().message;
  EXPECT_FALSE(error.empty());
}

// The reference server's seeded bugs stall and reset on purpose; the server does what they ask.
TEST(HttpServer, WaitsTheStallTheHandlerAsksForBeforeAnswering) {
  HttpServer server([](const ServerRequest& request) {
    auto response = ok_response(request);
    if (request.body == "slow") response.stall = 300ms;
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  ASSERT_NE(port, 0);
  server.start(1);
  HttpClient client;
  ASSERT_TRUE(client.send(put(port, "fast")).ok());
  const auto start = Clock::now();
  const auto slow = client.send(put(port, "slow"));
  ASSERT_TRUE(slow.ok()) << transport_error_name(slow.error) << ": " << slow.error_detail;
  EXPECT_GE(Clock::now() - start, 300ms);
  EXPECT_EQ(slow.response->body, "ok");
}

TEST(HttpServer, AStallOutlastsTheClientDeadlineAndStopEndsIt) {
  HttpServer server([](const ServerRequest& request) {
    auto response = ok_response(request);
    response.stall = std::chrono::hours(1);  // capped at kMaxServerStall
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  ASSERT_NE(port, 0);
  server.start(1);
  ClientLimits limits;
  limits.header_timeout = 200ms;
  HttpClient client(limits);
  const auto ex = client.send(put(port));
  EXPECT_EQ(ex.error, TransportError::header_timeout) << transport_error_name(ex.error);
  const int waiting = testing::connect_raw(port);  // a second request, stalled when stop() comes
  ASSERT_GE(waiting, 0);
  testing::write_all(waiting, "PUT /mdm HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  std::this_thread::sleep_for(50ms);
  const auto start = Clock::now();
  server.stop();
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(testing::read_until_close(waiting), "") << "a stalled request was answered after stop()";
  ::close(waiting);
}

TEST(HttpServer, ResetsTheConnectionWhenTheHandlerAsksToAndServesTheNext) {
  HttpServer server([](const ServerRequest& request) {
    auto response = ok_response(request);
    response.reset = request.body == "reset";
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  ASSERT_NE(port, 0);
  server.start(1);
  HttpClient client;
  const auto reset = client.send(put(port, "reset"));
  EXPECT_EQ(reset.error, TransportError::connection_reset)
      << transport_error_name(reset.error) << ": " << reset.error_detail;
  const auto next = client.send(put(port, "fine"));
  ASSERT_TRUE(next.ok()) << transport_error_name(next.error);
  EXPECT_EQ(next.response->body, "ok");
}

}  // namespace
}  // namespace mdmc::net
