#include "harness/fuzz/finding.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mdmc::fuzz {
namespace {

Reproducer sample() {
  Reproducer r;
  r.oracle = "status-5xx";
  r.detail = "500 to a TokenUpdate (check-in)";
  r.endpoint = "check_in";
  r.udid = std::string(kFuzzUdid);
  r.user_id = std::string(kFuzzUserId);
  r.request = {"PUT",
               "http://127.0.0.1:1/checkin",
               {{"X-Odd", std::string("\xff\x01", 2)}},
               std::string("bplist00\xd0\x08", 10)};
  r.response = net::Response{500, "Internal Server Error", {}, "oops"};
  r.history = {std::string("\x00\x01", 2), "<plist/>"};
  return r;
}

TEST(Finding, RoundTripsBytesThatAreNotUtf8InReportJsonsForm) {
  const Reproducer r = sample();
  const std::string text = reproducer_to_json(r);
  const auto j = nlohmann::json::parse(text);
  // The request is in the form report.json gives an exchange's request.
  EXPECT_EQ(j["request"]["method"], "PUT");
  EXPECT_TRUE(j["request"]["body"].contains("base64")) << j.dump();
  EXPECT_TRUE(j["request"]["headers"][0][1].contains("base64")) << j.dump();
  EXPECT_EQ(j["response"]["status"], 500);
  const auto back = reproducer_from_json(text);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(back->request.body, r.request.body);
  EXPECT_EQ(back->request.headers, r.request.headers);
  EXPECT_EQ(back->history, r.history);
  EXPECT_EQ(back->udid, r.udid);
}

TEST(Finding, ReadsTheFormWrittenBeforeItSharedReportJsonsEncoding) {
  const std::string old = R"({
  "kind": "mdmconform-finding", "oracle": "status-5xx", "detail": "500", "endpoint": "server",
  "target": {"name": "reference", "file": "/tmp/p.yaml"}, "device": {"udid": "U", "user_id": "V"},
  "found_at": "2026-11-29T08:51:55Z",
  "request": {"method": "PUT", "url": "http://127.0.0.1:1/mdm", "headers": [["Content-Type", "x"]],
              "body": {"base64": "PHBsaXN0Lz4=", "bytes": 8, "plist": "<plist/>"}},
  "history": [{"base64": "AAE=", "bytes": 2}]
})";
  const auto back = reproducer_from_json(old);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(back->request.body, "<plist/>");
  EXPECT_EQ(back->history, std::vector<std::string>{std::string("\x00\x01", 2)});
  EXPECT_EQ(back->udid, "U");
  EXPECT_EQ(back->target_file, "/tmp/p.yaml");
}

TEST(Finding, NamesWhatIsWrongByItsPath) {
  const auto missing = reproducer_from_json(R"({"kind": "mdmconform-finding", "target": {}, "device": {}})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "request: missing");
  const auto bad = reproducer_from_json(
      R"({"kind": "mdmconform-finding", "target": {}, "device": {},
          "request": {"method": "PUT", "url": "u", "headers": [], "body": {"base64": "!"}}})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "request.body.base64: not valid base64");
  EXPECT_EQ(reproducer_from_json("[]").error().message, "not JSON");
  EXPECT_EQ(reproducer_from_json(R"({"kind": "other"})").error().message,
            "not an mdmconform finding (kind is not mdmconform-finding)");
}

}  // namespace
}  // namespace mdmc::fuzz
