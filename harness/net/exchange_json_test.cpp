#include "harness/net/exchange_json.hpp"

#include <gtest/gtest.h>

namespace mdmc::net {
namespace {

TEST(ExchangeJson, WireBytesThatAreNotUtf8TravelAsBase64) {
  EXPECT_EQ(bytes_to_json("PUT"), Json("PUT"));
  EXPECT_EQ(bytes_to_json(std::string("\xff\x00", 2)), (Json{{"base64", "/wA="}}));
}

TEST(ExchangeJson, AnExchangeRoundTrips) {
  Exchange x;
  x.started = std::chrono::system_clock::time_point(std::chrono::microseconds(1'780'000'000'123'456));
  x.elapsed = std::chrono::microseconds(1500);
  x.tls = true;
  x.redirects = {"https://a.example/1"};
  x.request = {"PUT",
               "https://a.example/checkin",
               {{"Content-Type", "application/x-apple-aspen-mdm-checkin"}},
               std::string("<plist>\x01\xfe", 9)};
  x.response = Response{500, "Internal \xff", {{"X", "y"}}, "oops"};
  Json j = Json::object();
  append_exchange_json(j, x);
  base::JsonReader r;
  const Exchange back = exchange_from_json(r, j, "x");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(back.started, x.started);
  EXPECT_EQ(back.elapsed, x.elapsed);
  EXPECT_EQ(back.redirects, x.redirects);
  EXPECT_EQ(back.request.body, x.request.body);
  EXPECT_EQ(back.request.headers, x.request.headers);
  ASSERT_TRUE(back.response);
  EXPECT_EQ(back.response->reason, x.response->reason);
  EXPECT_EQ(back.response->status, 500);
}

TEST(ExchangeJson, AProblemIsNamedByItsPath) {
  Json j = {{"method", "PUT"}, {"url", "u"}, {"headers", {{"only-a-name"}}}, {"body", ""}};
  base::JsonReader r;
  (void)request_from_json(r, j, "request");
  EXPECT_EQ(r.error(), "request.headers[0]: expected [name, value]");
}

}  // namespace
}  // namespace mdmc::net
