// The request judge and provider tokens, without a network: every reason the fake APNs gives,
// from the request that earns it.
#include <gtest/gtest.h>

#include <chrono>

#include "harness/push/provider_token.hpp"
#include "harness/push/push_request.hpp"
#include "harness/push/push_test_support.hpp"

namespace mdmc::push {
namespace {

using namespace std::chrono_literals;
using testing::kKeyId;
using testing::kMagic;
using testing::kTeamId;
using testing::kToken;
using testing::kTopic;
using testing::push_pki;

ProviderTokenPolicy token_policy() { return {kKeyId, kTeamId, push_pki().token_key.cert_pem}; }

std::string token_at(base::SystemTime when, const char* kid = kKeyId, const char* team = kTeamId) {
  auto token = make_provider_token(push_pki().token_key.key_pem, kid, team, when);
  EXPECT_TRUE(token.ok()) << token.message();
  return token.value_or("");
}

TEST(ProviderToken, AFreshTokenHoldsAndHasJwsShape) {
  const auto now = std::chrono::system_clock::now();
  const std::string token = token_at(now);
  EXPECT_EQ(check_provider_token(token, token_policy(), now).reason, "");
  const auto first = token.find('.');
  const auto second = token.rfind('.');
  ASSERT_NE(first, second);
  EXPECT_EQ(*base64url_decode(token.substr(0, first)), R"({"alg":"ES256","kid":"ABC123DEFG"})");
  // JWS wants R||S: 64 bytes, 86 base64url characters.
  EXPECT_EQ(base64url_decode(token.substr(second + 1))->size(), 64u);
  EXPECT_EQ(token.find('='), std::string::npos);
}

TEST(ProviderToken, WrongKidIssSignatureOrAgeAreRefused) {
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(check_provider_token(token_at(now, "OTHERKEYID"), token_policy(), now).reason, "InvalidProviderToken");
  EXPECT_EQ(check_provider_token(token_at(now, kKeyId, "OTHERTEAM1"), token_policy(), now).reason,
            "InvalidProviderToken");
  EXPECT_EQ(check_provider_token(token_at(now - 61min), token_policy(), now).reason, "ExpiredProviderToken");
  EXPECT_EQ(check_provider_token(token_at(now - 59min), token_policy(), now).reason, "");
  EXPECT_EQ(check_provider_token(token_at(now + 10min), token_policy(), now).reason, "InvalidProviderToken");
  EXPECT_EQ(check_provider_token(token_at(now + 30s), token_policy(), now).reason, "");

  // Signed by another key.
  auto stranger = make_provider_token(push_pki().ca.key_pem, kKeyId, kTeamId, now);
  ASSERT_TRUE(stranger.ok());
  const auto rejection = check_provider_token(*stranger, token_policy(), now);
  EXPECT_EQ(rejection.reason, "InvalidProviderToken");
  EXPECT_NE(rejection.detail.find("does not verify"), std::string::npos) << rejection.detail;

  // A claim changed after signing.
  std::string token = token_at(now);
  const auto first = token.find('.');
  const auto second = token.rfind('.');
  const std::string forged_claims = base64url_encode(
      R"({"iss":"DEF123GHIJ","iat":)" +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() + 1) + "}");
  const std::string forged = token.substr(0, first + 1) + forged_claims + token.substr(second);
  EXPECT_EQ(check_provider_token(forged, token_policy(), now).reason, "InvalidProviderToken");
}

TEST(ProviderToken, AVerifiedTokenSkipsOnlyItsSignature) {
  const auto issued = std::chrono::system_clock::now();
  const std::string token = token_at(issued);
  auto policy = token_policy();
  policy.public_key_pem = push_pki().ca.cert_pem;  // another key: the signature would not verify
  EXPECT_EQ(check_provider_token(token, policy, issued).reason, "InvalidProviderToken");
  EXPECT_EQ(check_provider_token(token, policy, issued, token).reason, "");
  // The age still counts for a token seen before.
  EXPECT_EQ(check_provider_token(token, policy, issued + 2h, token).reason, "ExpiredProviderToken");
  policy.key_id = "OTHERKEYID";
  EXPECT_EQ(check_provider_token(token, policy, issued, token).reason, "InvalidProviderToken");
}

TEST(ProviderToken, ShapesOtherThanEs256JwsAreRefused) {
  const auto now = std::chrono::system_clock::now();
  const std::string good = token_at(now);
  const auto second = good.rfind('.');
  const std::string none_alg = base64url_encode(R"({"alg":"none","kid":"ABC123DEFG"})") +
                               good.substr(good.find('.'), second - good.find('.')) + ".";
  for (const std::string& bad : {std::string(), std::string("a.b"), std::string("a.b.c.d"), good + "=", none_alg,
                                 good.substr(0, second), std::string(3000, 'a')}) {
    EXPECT_EQ(check_provider_token(bad, token_policy(), now).reason, "InvalidProviderToken") << bad.substr(0, 80);
  }
  // A DER signature where JWS wants R||S: what a signer that skips the conversion sends.
  std::string der(72, '\x30');
  EXPECT_EQ(check_provider_token(good.substr(0, second + 1) + base64url_encode(der), token_policy(), now).reason,
            "InvalidProviderToken");
}

TEST(Base64Url, RoundTripsAndRefusesTheStandardAlphabet) {
  const std::string bytes("\xfb\xff\xfe\x00\x01", 5);
  EXPECT_EQ(base64url_encode(bytes), "-__-AAE");
  EXPECT_EQ(*base64url_decode("-__-AAE"), bytes);
  EXPECT_FALSE(base64url_decode("+//+AAE").ok());
  EXPECT_FALSE(base64url_decode("AAE=").ok());
  EXPECT_FALSE(base64url_decode("A").ok());
}

struct Judge : ::testing::Test {
  ConnectionAuth certificate_auth() const {
    ConnectionAuth auth;
    auth.certificate_presented = true;
    auth.certificate_verified = true;
    auth.certificate_topics = {kTopic};
    return auth;
  }
  PushRequest mdm_request() const {
    PushRequest request;
    request.method = "POST";
    request.path = std::string("/3/device/") + kToken;
    request.headers = {{"apns-topic", kTopic}, {"apns-push-type", "mdm"}, {"apns-priority", "10"}};
    request.body = std::string(R"({"mdm":")") + kMagic + "\"}";
    return request;
  }
  Verdict judge(const PushRequest& request, const ConnectionAuth& auth) const {
    PushPolicy policy;
    policy.token_policy = token_policy();
    return judge_push(request, auth, policy, std::chrono::system_clock::now());
  }
  std::string reason(const PushRequest& request) const { return judge(request, certificate_auth()).reason; }
  PushRequest with_header(std::string name, std::string value) const {
    auto request = mdm_request();
    std::erase_if(request.headers, [&](const net::Header& h) { return h.name == name; });
    request.headers.push_back({std::move(name), std::move(value)});
    return request;
  }
};

TEST_F(Judge, AnMdmPushIsAccepted) {
  const Verdict verdict = judge(mdm_request(), certificate_auth());
  EXPECT_EQ(verdict.status, 200) << verdict.reason << " " << verdict.detail;
  EXPECT_EQ(verdict.device_token, kToken);
  EXPECT_EQ(verdict.topic, kTopic);
  EXPECT_EQ(verdict.auth, AuthMethod::certificate);
  EXPECT_EQ(push_magic_of(mdm_request().body), kMagic);
}

TEST_F(Judge, NanoMdmStyleLeavesTopicAndTypeToTheCertificate) {
  auto request = mdm_request();
  request.headers = {{"content-type", "application/json"}};
  const Verdict verdict = judge(request, certificate_auth());
  EXPECT_EQ(verdict.status, 200) << verdict.reason;
  EXPECT_EQ(verdict.topic, kTopic);
  // A certificate without a UID names no topic: the header is then required.
  auto no_uid = certificate_auth();
  no_uid.certificate_topics.clear();
  EXPECT_EQ(judge(request, no_uid).reason, "MissingTopic");
}

TEST_F(Judge, EveryMalformedPushGetsApnsReason) {
  auto request = mdm_request();
  request.method = "GET";
  EXPECT_EQ(judge(request, certificate_auth()).status, 405);
  EXPECT_EQ(reason(request), "MethodNotAllowed");
  request = mdm_request();
  request.path = "/3/devices/abc";
  EXPECT_EQ(judge(request, certificate_auth()).status, 404);
  EXPECT_EQ(reason(request), "BadPath");
  request.path = "/3/device/";
  EXPECT_EQ(reason(request), "MissingDeviceToken");
  request.path = "/3/device/c0ffee";
  EXPECT_EQ(reason(request), "BadDeviceToken");
  request.path = "/3/device/" + std::string(64, 'g');
  EXPECT_EQ(reason(request), "BadDeviceToken");
  EXPECT_EQ(reason(with_header("apns-topic", "com.apple.mgmt.External.other")), "TopicDisallowed");
  EXPECT_EQ(reason(with_header("apns-topic", "bad topic")), "BadTopic");
  EXPECT_EQ(reason(with_header("apns-push-type", "telegram")), "InvalidPushType");
  EXPECT_EQ(reason(with_header("apns-priority", "7")), "BadPriority");
  EXPECT_EQ(reason(with_header("apns-priority", "5")), "");
  EXPECT_EQ(reason(with_header("apns-expiration", "tomorrow")), "BadExpirationDate");
  EXPECT_EQ(reason(with_header("apns-expiration", "0")), "");
  EXPECT_EQ(reason(with_header("apns-id", "not-a-uuid")), "BadMessageId");
  EXPECT_EQ(reason(with_header("apns-collapse-id", std::string(65, 'c'))), "BadCollapseId");
  EXPECT_EQ(reason(with_header("apns-collapse-id", std::string(64, 'c'))), "");
  request = mdm_request();
  request.headers.push_back({"apns-priority", "10"});
  EXPECT_EQ(reason(request), "DuplicateHeaders");
  request = mdm_request();
  request.body.clear();
  EXPECT_EQ(reason(request), "PayloadEmpty");
  request.body_too_large = true;
  EXPECT_EQ(judge(request, certificate_auth()).status, 413);
  EXPECT_EQ(reason(request), "PayloadTooLarge");
}

TEST_F(Judge, AuthenticationByCertificateOrToken) {
  ConnectionAuth none;
  EXPECT_EQ(judge(mdm_request(), none).reason, "MissingProviderToken");
  EXPECT_EQ(judge(mdm_request(), none).status, 403);
  auto unverified = certificate_auth();
  unverified.certificate_verified = false;
  EXPECT_EQ(judge(mdm_request(), unverified).reason, "BadCertificate");

  const auto now = std::chrono::system_clock::now();
  auto bearer = with_header("authorization", "bearer " + token_at(now));
  const Verdict verdict = judge(bearer, none);
  EXPECT_EQ(verdict.status, 200) << verdict.reason << " " << verdict.detail;
  EXPECT_EQ(verdict.auth, AuthMethod::token);
  EXPECT_EQ(judge(with_header("authorization", "basic x"), none).reason, "InvalidProviderToken");
  EXPECT_EQ(judge(with_header("authorization", "bearer " + token_at(now - 2h)), none).reason, "ExpiredProviderToken");
  // With a token the topic is always required: there is no certificate to take it from.
  bearer.headers.erase(bearer.headers.begin());
  EXPECT_EQ(judge(bearer, none).reason, "MissingTopic");
}

TEST(ReasonBody, RoundTripsApnsErrorJson) {
  EXPECT_EQ(reason_body("BadTopic"), R"({"reason":"BadTopic"})");
  EXPECT_EQ(reason_body("Unregistered", 1700000000123), R"({"reason":"Unregistered","timestamp":1700000000123})");
  const auto parsed = parse_reason_body(R"({"reason":"Unregistered","timestamp":1700000000123})");
  EXPECT_EQ(parsed.reason, "Unregistered");
  EXPECT_EQ(parsed.timestamp_ms, 1700000000123);
  EXPECT_EQ(parse_reason_body("<html>").reason, "");
  EXPECT_TRUE(is_uuid(random_uuid()));
  EXPECT_NE(random_uuid(), random_uuid());
}

TEST(MdmPush, ApnsAcceptsItButAnMdmPushIsOnlyTypeMdmPriority10Or5AndTheMagic) {
  const std::string body = R"({"mdm":"9A0C2B4E-7F1D-4C3B-8E5A-6D2F1B0C9E87"})";
  EXPECT_TRUE(mdm_push_problems({{"apns-push-type", "mdm"}, {"apns-priority", "10"}}, body).empty());
  EXPECT_TRUE(mdm_push_problems({}, body).empty()) << "absent headers take APNs' defaults";
  EXPECT_TRUE(mdm_push_problems({{"apns-priority", "5"}}, body).empty());

  auto alert = mdm_push_problems({{"apns-push-type", "alert"}}, body);
  ASSERT_EQ(alert.size(), 1U);
  EXPECT_EQ(alert[0], "apns-push-type alert, not mdm");
  auto low = mdm_push_problems({{"apns-priority", "1"}}, body);
  ASSERT_EQ(low.size(), 1U);
  EXPECT_EQ(low[0], "apns-priority 1, not 10 or 5");

  EXPECT_EQ(mdm_push_problems({}, R"({"aps":{"content-available":1},"mdm":"x"})"),
            std::vector<std::string>{"a body with \"aps\" beside \"mdm\""});
  EXPECT_EQ(mdm_push_problems({}, R"({"mdm":7})"),
            std::vector<std::string>{"a body without an \"mdm\" string (the PushMagic)"});
  EXPECT_EQ(mdm_push_problems({}, "not json").size(), 1U);
  EXPECT_EQ(mdm_push_problems({}, std::string(kMaxPayloadBytes + 1, '{')).size(), 1U);
}

}  // namespace
}  // namespace mdmc::push
