#include "harness/net/http_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness/net/http.hpp"
#include "harness/net/http_server.hpp"
#include "harness/testing/raw_peer.hpp"

namespace mdmc::net {
namespace {

using namespace std::chrono_literals;
using testing::RawServer;

std::string url_for(std::uint16_t port, std::string_view target = "/mdm") {
  return "http://127.0.0.1:" + std::to_string(port) + std::string(target);
}

Request put(std::uint16_t port, std::string body = "<plist/>") {
  Request r;
  r.method = "PUT";
  r.url = url_for(port);
  r.headers.push_back({"Content-Type", "application/x-apple-aspen-mdm"});
  r.body = std::move(body);
  return r;
}

ClientLimits short_limits() {
  ClientLimits limits;
  limits.connect_timeout = 1000ms;
  limits.write_timeout = 1000ms;
  limits.header_timeout = 300ms;
  limits.body_timeout = 300ms;
  return limits;
}

// A real HttpServer that echoes the body and remembers which connections it saw.
struct EchoServer {
  std::mutex mutex;
  std::set<std::string> peers;
  std::vector<ServerRequest> requests;
  HttpServer server{[this](const ServerRequest& request) {
    std::lock_guard lock(mutex);
    peers.insert(request.peer);
    requests.push_back(request);
    ServerResponse response;
    response.headers.push_back({"X-Echo", "yes"});
    response.body = request.body;
    return response;
  }};
  std::uint16_t port = 0;

  EchoServer() {
    std::string error;
    port = server.listen("127.0.0.1", 0).value_or(0);
    server.start(1);
  }
};

constexpr std::string_view kOkKeepAlive = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// ---- URLs and names ---------------------------------------------------------------------

TEST(ParseUrl, SplitsHostPortAndTarget) {
  const auto url = parse_url("http://127.0.0.1:8080/mdm/checkin?x=1#frag");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->target, "/mdm/checkin?x=1");
}

TEST(ParseUrl, DefaultsThePortAndTheTarget) {
  const auto http = parse_url("HTTP://mdm.example.com");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->scheme, "http");
  EXPECT_EQ(http->port, 80);
  EXPECT_EQ(http->target, "/");
  const auto https = parse_url("https://mdm.example.com?q");
  ASSERT_TRUE(https);
  EXPECT_EQ(https->port, 443);
  EXPECT_EQ(https->target, "/?q");
}

TEST(ParseUrl, TakesAnIpv6LiteralWithoutItsBrackets) {
  const auto url = parse_url("http://[::1]:9000/");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 9000);
}

TEST(ParseUrl, RefusesWhatItCannotSendUnambiguously) {
  for (const char* bad : {"", "127.0.0.1:80/mdm", "ftp://host/", "http://", "http:///mdm", "http://host:0/",
                          "http://host:65536/", "http://host:8o/", "http://host:/", "http://user:pw@host/",
                          "http://host/a b", "http://[::1/", "http://[zz]/", "http://host\r\n/"}) {
    EXPECT_FALSE(parse_url(bad)) << bad;
  }
}

TEST(LoopbackHost, AcceptsOnlyLoopbackAddressesAndLocalhost) {
  for (const char* yes :
       {"127.0.0.1", "127.1.2.3", "localhost", "LocalHost", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_loopback_host(yes)) << yes;
  }
  for (const char* no : {"", "10.0.0.1", "128.0.0.1", "0.0.0.0", "::", "example.com", "localhost.example.com",
                         "127.0.0.1.example.com", "127.1", "::2"}) {
    EXPECT_FALSE(is_loopback_host(no)) << no;
  }
}

TEST(FindHeader, MatchesNamesCaseInsensitively) {
  const Headers headers{{"Content-Type", "a"}, {"content-type", "b"}, {"X-Other", "c"}};
  EXPECT_EQ(find_header(headers, "CONTENT-TYPE"), "a");
  EXPECT_EQ(find_header(headers, "x-other"), "c");
  EXPECT_FALSE(find_header(headers, "Content-Length"));
}

TEST(TransportErrorName, NamesEveryValueAsItIsSpelled) {
  EXPECT_EQ(transport_error_name(TransportError::none), "none");
  EXPECT_EQ(transport_error_name(TransportError::closed_before_response), "closed_before_response");
  EXPECT_EQ(transport_error_name(TransportError::bad_response), "bad_response");
  EXPECT_EQ(transport_error_name(TransportError::redirect_refused), "redirect_refused");
  EXPECT_EQ(transport_error_name(TransportError::too_many_redirects), "too_many_redirects");
  // Appended after the TLS values: the numbers of the older ones never change.
  EXPECT_EQ(static_cast<int>(TransportError::redirect_refused), 18);
  EXPECT_EQ(kLastTransportError, TransportError::too_many_redirects);
  for (int i = 0; i <= static_cast<int>(kLastTransportError); ++i) {
    EXPECT_NE(transport_error_name(static_cast<TransportError>(i)), "unknown") << i;
  }
}

// ---- Exchanges with a well-behaved server ------------------------------------------------

TEST(HttpClient, RoundTripsARequestThroughTheRealServer) {
  EchoServer echo;
  ASSERT_NE(echo.port, 0);
  HttpClient client;
  const auto ex = client.send(put(echo.port, "<plist>hello</plist>"));
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error) << ": " << ex.error_detail;
  EXPECT_EQ(ex.response->status, 200);
  EXPECT_EQ(ex.response->reason, "OK");
  EXPECT_EQ(ex.response->body, "<plist>hello</plist>");
  EXPECT_EQ(find_header(ex.response->headers, "x-echo"), "yes");
  EXPECT_FALSE(ex.reused_connection);
  EXPECT_GT(ex.elapsed.count(), 0);

  std::lock_guard lock(echo.mutex);
  ASSERT_EQ(echo.requests.size(), 1U);
  const auto& seen = echo.requests.front();
  EXPECT_EQ(seen.method, "PUT");
  EXPECT_EQ(seen.target, "/mdm");
  EXPECT_EQ(find_header(seen.headers, "Host"), "127.0.0.1:" + std::to_string(echo.port));
  EXPECT_EQ(find_header(seen.headers, "Content-Length"), "20");
  EXPECT_EQ(find_header(seen.headers, "User-Agent"), std::string("mdmconform/") + MDMC_VERSION);
  EXPECT_EQ(find_header(seen.headers, "Content-Type"), "application/x-apple-aspen-mdm");
  // The transcript shows the headers as they went on the wire.
  EXPECT_EQ(find_header(ex.request.headers, "Host"), "127.0.0.1:" + std::to_string(echo.port));
}

TEST(HttpClient, ReusesTheKeptAliveConnectionForTheNextRequest) {
  EchoServer echo;
  HttpClient client;
  const auto first = client.send(put(echo.port, "one"));
  const auto second = client.send(put(echo.port, "two"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(first.reused_connection);
  EXPECT_TRUE(second.reused_connection);
  EXPECT_EQ(second.response->body, "two");
  std::lock_guard lock(echo.mutex);
  EXPECT_EQ(echo.peers.size(), 1U) << "the server saw more than one connection";
}

TEST(HttpClient, OpensANewConnectionAfterTheServerSaidClose) {
  HttpServer server([](const ServerRequest&) {
    ServerResponse response;
    response.close = true;
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  HttpClient client;
  ASSERT_TRUE(client.send(put(port)).ok());
  const auto second = client.send(put(port));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second.reused_connection);
}

TEST(HttpClient, ConnectsAgainWhenTheNextRequestGoesToAnotherPort) {
  EchoServer first;
  EchoServer second;
  HttpClient client;
  ASSERT_TRUE(client.send(put(first.port)).ok());
  const auto elsewhere = client.send(put(second.port));
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_FALSE(elsewhere.reused_connection);
  const auto back = client.send(put(first.port));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back.reused_connection);
}

TEST(HttpClient, ReadsNoBodyForHeadAndKeepsTheConnectionUsable) {
  HttpServer server([](const ServerRequest&) {
    ServerResponse response;
    response.body = "hello";
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  HttpClient client;
  Request head = put(port, "");
  head.method = "HEAD";
  const auto ex = client.send(head);
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error);
  EXPECT_EQ(find_header(ex.response->headers, "Content-Length"), "5");
  EXPECT_EQ(ex.response->body, "");
  head.method = "GET";
  const auto next = client.send(head);
  ASSERT_TRUE(next.ok()) << transport_error_name(next.error);
  EXPECT_TRUE(next.reused_connection);
  EXPECT_EQ(next.response->body, "hello");
}

TEST(HttpClient, ReconnectsOnceWhenAKeptAliveConnectionWasClosedWhileIdle) {
  RawServer raw([](RawServer&, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, kOkKeepAlive);
    // ...and hang up, as servers do with idle keep-alive connections.
  });
  HttpClient client(short_limits());
  ASSERT_TRUE(client.send(put(raw.port())).ok());
  std::this_thread::sleep_for(50ms);  // let the FIN arrive; the retry must not depend on it
  const auto second = client.send(put(raw.port()));
  ASSERT_TRUE(second.ok()) << transport_error_name(second.error) << ": " << second.error_detail;
  EXPECT_FALSE(second.reused_connection);
  EXPECT_EQ(raw.connections(), 2);
}

TEST(HttpClient, DoesNotRetryWhenAReusedConnectionTimesOut) {
  RawServer raw([](RawServer& server, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, kOkKeepAlive);
    testing::read_request(fd);
    server.stall();
  });
  HttpClient client(short_limits());
  ASSERT_TRUE(client.send(put(raw.port())).ok());
  const auto second = client.send(put(raw.port()));
  EXPECT_EQ(second.error, TransportError::header_timeout);
  EXPECT_TRUE(second.reused_connection);
  EXPECT_EQ(raw.connections(), 1);
}

TEST(HttpClient, SkipsInterimResponsesBeforeTheFinalOne) {
  RawServer raw([](RawServer&, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n");
    testing::write_all(fd, kOkKeepAlive);
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error);
  EXPECT_EQ(ex.response->status, 200);
  EXPECT_EQ(ex.response->body, "ok");
}

TEST(HttpClient, ReadsABodyThatEndsWhenTheServerCloses) {
  RawServer raw([](RawServer&, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 200 OK\r\n\r\nuntil close");
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error);
  EXPECT_EQ(ex.response->body, "until close");
  const auto next = client.send(put(raw.port()));
  EXPECT_FALSE(next.reused_connection);
}

// ---- Every way a server under test can fail ---------------------------------------------

TEST(HttpClient, RefusesAUrlItCannotSend) {
  HttpClient client;
  Request request;
  request.url = "ftp://127.0.0.1:1/";
  EXPECT_EQ(client.send(request).error, TransportError::bad_url);
  request.url = "not a url";
  const auto ex = client.send(request);
  EXPECT_EQ(ex.error, TransportError::bad_url);
  EXPECT_FALSE(ex.response);
}

TEST(HttpClient, ReportsConnectFailedWhenNothingListens) {
  HttpClient client(short_limits());
  const auto ex = client.send(put(testing::unused_port()));
  EXPECT_EQ(ex.error, TransportError::connect_failed);
  EXPECT_FALSE(ex.error_detail.empty());
  EXPECT_LT(ex.elapsed, 1s);
}

TEST(HttpClient, ReportsHeaderTimeoutWhenTheServerNeverAnswers) {
  RawServer raw([](RawServer& server, int&, int) { server.stall(); });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  EXPECT_EQ(ex.error, TransportError::header_timeout);
  EXPECT_GE(ex.elapsed, 250ms);
  EXPECT_LT(ex.elapsed, 2s);
}

TEST(HttpClient, ReportsClosedBeforeResponseWhenTheServerHangsUp) {
  RawServer raw([](RawServer&, int& fd, int) { testing::read_request(fd); });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  EXPECT_EQ(ex.error, TransportError::closed_before_response) << ex.error_detail;
  EXPECT_EQ(raw.connections(), 1) << "a fresh connection is never retried";
}

TEST(HttpClient, ReportsConnectionResetWhenTheServerResets) {
  RawServer raw([](RawServer&, int& fd, int) {
    testing::read_request(fd);
    testing::reset_and_close(fd);
    fd = -1;
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  EXPECT_EQ(ex.error, TransportError::connection_reset) << ex.error_detail;
}

TEST(HttpClient, ReportsBadResponseForBytesThatAreNotHttp) {
  RawServer raw([](RawServer& server, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "garbage, not a status line\r\n\r\n");
    server.stall();
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  // Recognised as garbage, not left to run into the header deadline.
  EXPECT_EQ(ex.error, TransportError::bad_response) << ex.error_detail;
}

TEST(HttpClient, ReportsBadResponseWhenTheBodyIsCutShort) {
  RawServer raw([](RawServer&, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  });
  HttpClient client(short_limits());
  EXPECT_EQ(client.send(put(raw.port())).error, TransportError::bad_response);
}

TEST(HttpClient, ReportsHeaderTooLargeBeyondTheHeaderCap) {
  RawServer raw([](RawServer& server, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 200 OK\r\nX-Padding: " + std::string(4096, 'a') + "\r\nContent-Length: 0\r\n\r\n");
    server.stall();
  });
  auto limits = short_limits();
  limits.max_header_bytes = 1024;
  HttpClient client(limits);
  EXPECT_EQ(client.send(put(raw.port())).error, TransportError::header_too_large);
}

TEST(HttpClient, ReportsBodyTooLargeBeyondTheBodyCap) {
  HttpServer server([](const ServerRequest&) {
    ServerResponse response;
    response.body = std::string(2000, 'x');
    return response;
  });
  const auto port = server.listen("127.0.0.1", 0).value_or(0);
  server.start(1);
  auto limits = short_limits();
  limits.max_body_bytes = 1000;
  HttpClient client(limits);
  const auto ex = client.send(put(port));
  EXPECT_EQ(ex.error, TransportError::body_too_large);
  EXPECT_FALSE(ex.response);
}

TEST(HttpClient, ReportsBodyTooLargeForAChunkedBodyBeyondTheCap) {
  RawServer raw([](RawServer& server, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; ++i) testing::write_all(fd, "200\r\n" + std::string(512, 'x') + "\r\n");
    server.stall();
  });
  auto limits = short_limits();
  limits.max_body_bytes = 1000;
  HttpClient client(limits);
  EXPECT_EQ(client.send(put(raw.port())).error, TransportError::body_too_large);
}

TEST(HttpClient, ReportsBodyTimeoutWhenAPromisedBodyStalls) {
  RawServer raw([](RawServer& server, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nabc");
    server.stall();
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(raw.port()));
  EXPECT_EQ(ex.error, TransportError::body_timeout);
  EXPECT_GE(ex.elapsed, 250ms);
  EXPECT_LT(ex.elapsed, 2s);
}

// ---- Redirects -----------------------------------------------------------------------------

// A server that redirects some targets and records every request it sees.
struct RedirectServer {
  using Route = std::function<std::optional<ServerResponse>(const ServerRequest&)>;
  std::mutex mutex;
  std::vector<ServerRequest> requests;
  Route route;
  HttpServer server{[this](const ServerRequest& request) {
    {
      std::lock_guard lock(mutex);
      requests.push_back(request);
    }
    if (auto answer = route(request)) return *answer;
    ServerResponse echo;
    echo.body = request.method + " " + request.target + " " + request.body;
    return echo;
  }};
  std::uint16_t port = 0;

  explicit RedirectServer(Route r) : route(std::move(r)) {
    port = server.listen("127.0.0.1", 0).value_or(0);
    server.start(1);
  }
  std::vector<ServerRequest> seen() {
    std::lock_guard lock(mutex);
    return requests;
  }
};

ServerResponse redirect_to(std::string location, int status = 302) {
  ServerResponse response;
  response.status = status;
  response.headers.push_back({"Location", std::move(location)});
  response.body = "moved";
  return response;
}

TEST(HttpClient, FollowsARedirectResendingTheSameMethodAndBody) {
  // 301, 302 and 303 too: an MDM request is a PUT with a plist, and stays one.
  for (int status : {301, 302, 303, 307, 308}) {
    RedirectServer server([status](const ServerRequest& r) -> std::optional<ServerResponse> {
      if (r.target == "/mdm") return redirect_to("/moved/mdm?x=1", status);
      return std::nullopt;
    });
    HttpClient client(short_limits());
    const auto ex = client.send(put(server.port, "<plist>report</plist>"));
    ASSERT_TRUE(ex.ok()) << status << ": " << transport_error_name(ex.error) << ": " << ex.error_detail;
    EXPECT_EQ(ex.response->status, 200) << status;
    EXPECT_EQ(ex.response->body, "PUT /moved/mdm?x=1 <plist>report</plist>") << status;
    EXPECT_EQ(ex.request.url, url_for(server.port)) << "the transcript keeps the URL first asked for";
    EXPECT_EQ(ex.redirects, std::vector<std::string>{url_for(server.port, "/moved/mdm?x=1")}) << status;
    const auto seen = server.seen();
    ASSERT_EQ(seen.size(), 2U) << status;
    EXPECT_EQ(seen[1].method, "PUT");
    EXPECT_EQ(seen[1].body, "<plist>report</plist>");
    EXPECT_EQ(find_header(seen[1].headers, "Content-Type"), "application/x-apple-aspen-mdm");
  }
}

TEST(HttpClient, ResolvesAPathRelativeLocationAgainstTheRequestedUrl) {
  RedirectServer server([](const ServerRequest& r) -> std::optional<ServerResponse> {
    if (r.target == "/dir/sub/old?q=0") return redirect_to("../next/./page?q=1#fragment");
    return std::nullopt;
  });
  HttpClient client(short_limits());
  Request request = put(server.port);
  request.url = url_for(server.port, "/dir/sub/old?q=0");
  const auto ex = client.send(request);
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error) << ": " << ex.error_detail;
  EXPECT_EQ(ex.response->body, "PUT /dir/next/page?q=1 <plist/>");
  EXPECT_EQ(ex.redirects, std::vector<std::string>{url_for(server.port, "/dir/next/page?q=1")});
}

TEST(HttpClient, EndsARedirectLoopOnLoopbackAfterMaxRedirects) {
  RedirectServer server([](const ServerRequest& r) -> std::optional<ServerResponse> { return redirect_to(r.target); });
  auto limits = short_limits();
  limits.max_redirects = 3;
  HttpClient client(limits);
  const auto ex = client.send(put(server.port));
  EXPECT_EQ(ex.error, TransportError::too_many_redirects) << ex.error_detail;
  EXPECT_FALSE(ex.response);
  EXPECT_EQ(ex.redirects.size(), 3U);
  EXPECT_EQ(server.seen().size(), 4U) << "the first request and three redirects, then no more";
  EXPECT_NE(ex.error_detail.find("more than 3 redirect(s)"), std::string::npos) << ex.error_detail;
  EXPECT_NE(ex.error_detail.find(url_for(server.port) + " -> " + url_for(server.port)), std::string::npos)
      << ex.error_detail;
}

TEST(HttpClient, CapsTheChainInATooManyRedirectsDetail) {
  // Each hop adds to the path: the URLs grow to kilobytes, the detail does not.
  RedirectServer server([](const ServerRequest& r) -> std::optional<ServerResponse> {
    return redirect_to(r.target + "/" + std::string(1000, 'a'));
  });
  auto limits = short_limits();
  limits.max_redirects = 8;
  HttpClient client(limits);
  const auto ex = client.send(put(server.port));
  EXPECT_EQ(ex.error, TransportError::too_many_redirects);
  EXPECT_LT(ex.error_detail.size(), 1500U);
}

TEST(HttpClient, RefusesARedirectOffLoopbackWithoutConnectingThere) {
  RedirectServer server([](const ServerRequest&) -> std::optional<ServerResponse> {
    return redirect_to("http://192.0.2.1/mdm");  // TEST-NET-1 (RFC 5737): routed nowhere
  });
  auto limits = short_limits();
  limits.connect_timeout = 3000ms;
  HttpClient client(limits);
  const auto ex = client.send(put(server.port));
  // A connect attempt would end as connect_failed or connect_timeout, not as this; and it
  // would not be over this soon.
  EXPECT_EQ(ex.error, TransportError::redirect_refused) << ex.error_detail;
  EXPECT_FALSE(ex.response);
  EXPECT_TRUE(ex.redirects.empty());
  EXPECT_NE(ex.error_detail.find("http://192.0.2.1/mdm"), std::string::npos) << ex.error_detail;
  EXPECT_LT(ex.elapsed, 1s);
  EXPECT_EQ(server.seen().size(), 1U);
}

TEST(HttpClient, RefusesARedirectToAnotherScheme) {
  RedirectServer server(
      [](const ServerRequest&) -> std::optional<ServerResponse> { return redirect_to("ftp://127.0.0.1/mdm"); });
  HttpClient client(short_limits());
  const auto ex = client.send(put(server.port));
  EXPECT_EQ(ex.error, TransportError::redirect_refused);
  EXPECT_NE(ex.error_detail.find("ftp://127.0.0.1/mdm"), std::string::npos) << ex.error_detail;
}

TEST(HttpClient, FollowsARedirectToAnotherLoopbackOriginByName) {
  // "localhost" is loopback by name, so no flag is needed. (Following a redirect off loopback
  // with redirects_off_loopback set is not tested: tests talk to loopback only.)
  RedirectServer target([](const ServerRequest&) -> std::optional<ServerResponse> { return std::nullopt; });
  RedirectServer server([&target](const ServerRequest&) -> std::optional<ServerResponse> {
    return redirect_to("http://localhost:" + std::to_string(target.port) + "/elsewhere");
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(server.port));
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error) << ": " << ex.error_detail;
  EXPECT_EQ(ex.response->body, "PUT /elsewhere <plist/>");
}

TEST(HttpClient, DropsAuthorizationWhenARedirectLeavesTheOrigin) {
  RedirectServer other([](const ServerRequest&) -> std::optional<ServerResponse> { return std::nullopt; });
  RedirectServer first([&other](const ServerRequest&) -> std::optional<ServerResponse> {
    return redirect_to(url_for(other.port, "/v1/enqueue/x"), 307);
  });
  HttpClient client(short_limits());
  Request request = put(first.port);
  request.headers.push_back({"Authorization", "Basic bm9wZTpub3Bl"});
  ASSERT_TRUE(client.send(request).ok());
  ASSERT_EQ(first.seen().size(), 1U);
  EXPECT_EQ(find_header(first.seen()[0].headers, "Authorization"), "Basic bm9wZTpub3Bl");
  ASSERT_EQ(other.seen().size(), 1U);
  EXPECT_FALSE(find_header(other.seen()[0].headers, "Authorization"));
}

TEST(HttpClient, ReturnsTheRedirectAsTheResponseWhenMaxRedirectsIsZero) {
  RedirectServer server([](const ServerRequest& r) -> std::optional<ServerResponse> { return redirect_to(r.target); });
  auto limits = short_limits();
  limits.max_redirects = 0;
  HttpClient client(limits);
  const auto ex = client.send(put(server.port));
  ASSERT_TRUE(ex.ok()) << transport_error_name(ex.error);
  EXPECT_EQ(ex.response->status, 302);
  EXPECT_EQ(find_header(ex.response->headers, "Location"), "/mdm");
  EXPECT_TRUE(ex.redirects.empty());
  EXPECT_EQ(server.seen().size(), 1U);
}

TEST(HttpClient, ReturnsARedirectWithoutLocationAsTheResponse) {
  RedirectServer server([](const ServerRequest&) -> std::optional<ServerResponse> {
    ServerResponse response;
    response.status = 302;
    return response;
  });
  HttpClient client(short_limits());
  const auto ex = client.send(put(server.port));
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(ex.response->status, 302);
}

}  // namespace
}  // namespace mdmc::net
