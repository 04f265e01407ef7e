#include "harness/protocol/judge.hpp"

#include <gtest/gtest.h>

#include "harness/protocol/rules.hpp"

namespace mdmc::protocol {
namespace {

TEST(JudgeMalformedAnswer, OnlyAnAcceptedBodyThatIsNoPlistBreaksIt) {
  auto breach = judge_malformed_answer(200, false, false, 12, "report");
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->rule, rule::kRobMalformed);
  EXPECT_EQ(breach->detail, "HTTP 200 to 12 bytes that are not a plist, sent as a report");
  EXPECT_FALSE(judge_malformed_answer(400, false, false, 12, "report")) << "refused";
  EXPECT_FALSE(judge_malformed_answer(500, false, false, 12, "report")) << "5xx is another oracle's";
  EXPECT_FALSE(judge_malformed_answer(200, true, false, 12, "report")) << "a plist";
  EXPECT_FALSE(judge_malformed_answer(204, false, true, 12, "check-in")) << "over the limits, not malformed";
}

TEST(JudgeUnknownTypeAnswer, AnAcceptedUnknownMessageTypeOrStatusBreaksIt) {
  auto breach = judge_unknown_type_answer(200, "Status");
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->rule, rule::kRobUnknownType);
  EXPECT_EQ(breach->detail, "HTTP 200 to a message with an unknown Status");
  EXPECT_FALSE(judge_unknown_type_answer(400, "MessageType"));
  EXPECT_FALSE(judge_unknown_type_answer(200, ""));
}

TEST(ReadCommandAnswer, TellsTheKindsOfBodyApart) {
  EXPECT_EQ(read_command_answer("", {}).kind, CommandAnswerKind::none);
  EXPECT_EQ(read_command_answer("not a plist", {}).kind, CommandAnswerKind::not_plist);
  EXPECT_EQ(read_command_answer(plist::to_xml(plist::Value(plist::Dict{})), {}).kind, CommandAnswerKind::empty_dict);
  auto command = make_command("CMD-1", "ProfileList");
  auto read = read_command_answer(plist::to_xml(plist::Value(command.body)), {});
  ASSERT_EQ(read.kind, CommandAnswerKind::command);
  EXPECT_EQ(read.command->request_type, "ProfileList");
  auto no_type = command.body;
  no_type["Command"] = plist::Dict{};
  read = read_command_answer(plist::to_xml(plist::Value(no_type)), {});
  EXPECT_EQ(read.kind, CommandAnswerKind::not_command);
  EXPECT_TRUE(read.names_command);
  EXPECT_EQ(read.problem, "Command.RequestType: missing");
  read = read_command_answer(plist::to_xml(plist::Value(plist::Dict{{"Hello", "world"}})), {});
  EXPECT_EQ(read.kind, CommandAnswerKind::not_command);
  EXPECT_FALSE(read.names_command);
}

TEST(JudgeCommandAnswer, A200ToAReportIsAZeroLengthBodyOrACommand) {
  auto command = make_command("CMD-1", "ProfileList");
  auto good = read_command_answer(plist::to_xml(plist::Value(command.body)), {});
  EXPECT_FALSE(judge_command_answer(200, true, 100, good, "Idle (report)"));
  EXPECT_FALSE(judge_command_answer(200, true, 0, read_command_answer("", {}), "Idle (report)"));
  auto garbage = read_command_answer("garbage", {});
  auto breach = judge_command_answer(200, true, 7, garbage, "Idle (report)");
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->rule, rule::kCmdShape);
  EXPECT_EQ(breach->detail, "a 7-byte body that is no command, answering a Idle (report)");
  EXPECT_FALSE(judge_command_answer(400, true, 7, garbage, "Idle (report)"));
  EXPECT_FALSE(judge_command_answer(200, false, 7, garbage, "Authenticate (check-in)")) << "not a report";
  auto no_type = command.body;
  no_type["Command"] = plist::Dict{};
  breach = judge_command_answer(200, true, 50, read_command_answer(plist::to_xml(plist::Value(no_type)), {}),
                                "Idle (report)");
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->detail, "a command without CommandUUID or Command.RequestType, answering a Idle (report)");
}

}  // namespace
}  // namespace mdmc::protocol
