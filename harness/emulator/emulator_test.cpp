#include "harness/emulator/emulator.hpp"

#include <gtest/gtest.h>

namespace mdmc::emulator {
namespace {

std::string command_xml(const std::string& uuid, const std::string& type = "ProfileList") {
  return plist::to_xml(plist::Value(protocol::make_command(uuid, type).body));
}

Series user_series(AnswerPolicy policy, int bound = 64) {
  SeriesOptions options;
  options.policy = policy;
  options.max_exchanges = bound;
  return Series(protocol::Channel{"UDID", "USER"}, protocol::UserFacts{"USER", "u", "U"}, options);
}

TEST(IdentitySource, SameSeedGivesSameIdentities) {
  IdentitySource a(42), b(42), c(43);
  auto first = a.uuid();
  EXPECT_EQ(first, b.uuid());
  EXPECT_NE(first, c.uuid());
  EXPECT_EQ(first.size(), 36u);
  EXPECT_EQ(first[14], '4');
}

TEST(Series, StartsWithIdleOnTheServerUrl) {
  auto series = user_series(AnswerPolicy::acknowledge);
  EXPECT_EQ(series.next().endpoint, Endpoint::server);
  EXPECT_EQ(*series.next().body.at("Status").as_string(), "Idle");
  EXPECT_EQ(*series.next().body.at("UserID").as_string(), "USER");
}

TEST(Series, AcknowledgesEachCommandAndEndsOnEmptyBody) {
  auto series = user_series(AnswerPolicy::acknowledge);
  series.on_answer(Answer{200, command_xml("C1")});
  ASSERT_FALSE(series.done());
  EXPECT_EQ(*series.next().body.at("Status").as_string(), "Acknowledged");
  EXPECT_EQ(*series.next().body.at("CommandUUID").as_string(), "C1");
  series.on_answer(Answer{200, ""});
  ASSERT_TRUE(series.done());
  EXPECT_EQ(series.outcome().end, SeriesEnd::empty_body);
  EXPECT_EQ(series.outcome().delivered.size(), 1u);
  EXPECT_EQ(series.outcome().exchanges, 2);
}

TEST(Series, TellsEmptyPlistAnd204ApartFromAnEmptyBody) {
  auto a = user_series(AnswerPolicy::acknowledge);
  a.on_answer(Answer{200, plist::to_xml(plist::Value(plist::Dict{}))});
  EXPECT_EQ(a.outcome().end, SeriesEnd::empty_plist);
  auto b = user_series(AnswerPolicy::acknowledge);
  b.on_answer(Answer{204, ""});
  EXPECT_EQ(b.outcome().end, SeriesEnd::no_content);
  auto c = user_series(AnswerPolicy::acknowledge);
  c.on_answer(Answer{500, "oops"});
  EXPECT_EQ(c.outcome().end, SeriesEnd::http_status);
  EXPECT_EQ(c.outcome().end_status, 500);
}

TEST(Series, GarbageOrShapelessBodiesEndTheSeriesWithAReason) {
  auto a = user_series(AnswerPolicy::acknowledge);
  a.on_answer(Answer{200, std::string("\x00\xff garbage", 10)});
  EXPECT_EQ(a.outcome().end, SeriesEnd::bad_command);
  EXPECT_FALSE(a.outcome().end_detail.empty());
  auto b = user_series(AnswerPolicy::acknowledge);
  b.on_answer(Answer{200, plist::to_xml(plist::Value(plist::Dict{{"Command", plist::Dict{}}}))});
  EXPECT_EQ(b.outcome().end, SeriesEnd::bad_command);
  EXPECT_NE(b.outcome().end_detail.find("CommandUUID"), std::string::npos);
}

TEST(Series, NotNowUntilDeviceConfiguredThenAcknowledges) {
  auto series = user_series(AnswerPolicy::not_now_until_device_configured);
  series.on_answer(Answer{200, command_xml("C1")});
  EXPECT_EQ(*series.next().body.at("Status").as_string(), "NotNow");
  series.on_answer(Answer{200, command_xml("C2", "DeviceConfigured")});
  EXPECT_EQ(*series.next().body.at("Status").as_string(), "Acknowledged");
  series.on_answer(Answer{200, command_xml("C3")});
  EXPECT_EQ(*series.next().body.at("Status").as_string(), "Acknowledged");
}

TEST(Series, StopsAServerThatNeverEndsAtTheBound) {
  auto series = user_series(AnswerPolicy::not_now, 5);
  int answers = 0;
  while (!series.done() && answers < 100) {
    series.on_answer(Answer{200, command_xml("C" + std::to_string(answers++))});
  }
  EXPECT_EQ(series.outcome().end, SeriesEnd::bound_reached);
  EXPECT_EQ(series.outcome().exchanges, 5);
}

TEST(Series, ReportsRepeatedCommands) {
  auto series = user_series(AnswerPolicy::not_now);
  series.on_answer(Answer{200, command_xml("C1")});
  series.on_answer(Answer{200, command_xml("C1")});
  series.on_answer(Answer{200, ""});
  EXPECT_EQ(series.outcome().repeated(), std::vector<std::string>{"C1"});
}

TEST(Series, ATransportFailureEndsIt) {
  auto series = user_series(AnswerPolicy::acknowledge);
  series.on_answer(Answer{}, "connection_reset");
  EXPECT_EQ(series.outcome().end, SeriesEnd::no_response);
}

TEST(UserAgent, NetworkUserRefusedWith410StopsThere) {
  IdentitySource ids(1);
  UserAgent user("UDID", {"U1", "nora", "Nora"}, UserKind::network, ids);
  EXPECT_FALSE(user.user_authenticate().body.count("DigestResponse"));
  EXPECT_FALSE(user.on_user_authenticate(Answer{410, ""}));
  EXPECT_EQ(user.state(), UserAgent::State::refused);
}

TEST(UserAgent, ManagedNetworkUserAnswersTheChallenge) {
  IdentitySource ids(1);
  UserAgent user("UDID", {"U1", "nick", "Nick"}, UserKind::network, ids);
  auto challenge = plist::to_xml(plist::Value(plist::Dict{{"DigestChallenge", ""}}));
  EXPECT_FALSE(user.on_user_authenticate(Answer{200, challenge}));
  EXPECT_EQ(user.state(), UserAgent::State::challenged);
  EXPECT_TRUE(user.user_authenticate().body.count("DigestResponse"));
  EXPECT_FALSE(user.on_user_authenticate(Answer{200, ""}));
  EXPECT_EQ(user.state(), UserAgent::State::authenticated);
  user.on_token_update(Answer{200, ""});
  EXPECT_EQ(user.state(), UserAgent::State::enrolled);
}

TEST(UserAgent, AChallengeWithoutDigestChallengeIsNamed) {
  IdentitySource ids(1);
  UserAgent user("UDID", {"U1", "nick", "Nick"}, UserKind::network, ids);
  auto reason = user.on_user_authenticate(Answer{200, plist::to_xml(plist::Value(plist::Dict{}))});
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("DigestChallenge"), std::string::npos);
  EXPECT_EQ(user.state(), UserAgent::State::logged_in);
}

}  // namespace
}  // namespace mdmc::emulator

namespace mdmc::emulator {
namespace {

TEST(Enrollment, AuthenticatesThenDeviceTokenThenEachLocalUsersToken) {
  IdentitySource ids(3);
  protocol::DeviceFacts facts;
  facts.udid = ids.uuid();
  Device device(facts, ids);
  UserAgent alice(facts.udid, {ids.uuid(), "alice", "Alice"}, UserKind::local, ids);
  Enrollment enrollment(device, {&alice});
  std::vector<std::string> labels;
  while (!enrollment.done()) {
    labels.push_back(enrollment.next().label);
    EXPECT_EQ(enrollment.next().endpoint, Endpoint::check_in);
    enrollment.on_answer(Answer{200, ""});
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"Authenticate", "TokenUpdate (device)", "TokenUpdate (user)"}));
  EXPECT_FALSE(enrollment.failed());
  EXPECT_EQ(alice.state(), UserAgent::State::enrolled);
}

TEST(Enrollment, StopsAtTheFirstAnswerThatIsNot200) {
  IdentitySource ids(3);
  protocol::DeviceFacts facts;
  facts.udid = ids.uuid();
  Device device(facts, ids);
  Enrollment enrollment(device, {});
  enrollment.on_answer(Answer{200, ""});
  EXPECT_EQ(enrollment.stage(), Enrollment::Stage::device_token);
  enrollment.on_answer(Answer{400, "bad"});
  EXPECT_TRUE(enrollment.done());
  EXPECT_TRUE(enrollment.failed());
  EXPECT_EQ(enrollment.stage(), Enrollment::Stage::device_token);
}

}  // namespace
}  // namespace mdmc::emulator
