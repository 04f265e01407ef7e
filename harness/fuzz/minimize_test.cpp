#include "harness/fuzz/minimize.hpp"

#include <gtest/gtest.h>

#include "harness/plist/value.hpp"

namespace mdmc::fuzz {
namespace {

std::string message() {
  plist::Dict d{{"MessageType", plist::Value("TokenUpdate")},
                {"Topic", plist::Value("com.apple.mgmt.External.x")},
                {"UDID", plist::Value(std::int64_t{42})},
                {"PushMagic", plist::Value("a long push magic string of some length")},
                {"Extra", plist::Value(plist::Array{plist::Value("a"), plist::Value("b")})}};
  return plist::to_xml(plist::Value(d));
}

// The oracle: an integer UDID. Whatever else goes, that must stay.
Fires integer_udid(std::string_view candidate) {
  auto parsed = plist::parse(candidate);
  if (!parsed) return Fires::no;
  const auto* udid = parsed->find("UDID");
  return udid && udid->as_integer() ? Fires::yes : Fires::no;
}

TEST(Minimize, KeepsOnlyWhatTheOracleNeeds) {
  auto input = message();
  auto m = minimize_input(input, integer_udid);
  ASSERT_TRUE(m.reduced);
  auto parsed = plist::parse(m.bytes);
  ASSERT_TRUE(parsed) << m.bytes;
  ASSERT_TRUE(parsed->as_dict());
  EXPECT_EQ(parsed->as_dict()->size(), 1u) << m.bytes;
  EXPECT_TRUE(parsed->find("UDID"));
  EXPECT_LT(m.bytes.size(), input.size());
  EXPECT_FALSE(m.out_of_budget);
}

TEST(Minimize, StaysWithinItsTries) {
  int calls = 0;
  auto m = minimize_input(message(),
                          [&](std::string_view c) {
                            ++calls;
                            return integer_udid(c);
                          },
                          {3, std::chrono::milliseconds(10'000)});
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(m.tries, 3);
  EXPECT_TRUE(m.out_of_budget);
}

TEST(Minimize, StopsWhenTheTargetCannotTell) {
  int calls = 0;
  auto m = minimize_input(message(), [&](std::string_view) {
    ++calls;
    return Fires::cannot_tell;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(m.reduced);
  EXPECT_EQ(m.bytes, message());
}

TEST(Minimize, ShrinksBytesThatAreNoPlist) {
  std::string input = "xxxxxxxxBADxxxxxxxxxxxxxxxx";
  auto m = minimize_input(
      input, [](std::string_view c) { return c.find("BAD") != std::string_view::npos ? Fires::yes : Fires::no; });
  EXPECT_EQ(m.bytes, "BAD");
}

}  // namespace
}  // namespace mdmc::fuzz
