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

// A required key of the wrong type beside the cause: it cannot go (the caller refuses a
// candidate without it, as triage refuses one that adds a missing key), so only its repair to a
// value of its schema type takes it out of the finding; the cause's repair does not fire, and
// stays undone.
TEST(Minimize, RepairsAKeyOfTheWrongTypeBesideTheCause) {
  plist::Dict d{{"MessageType", plist::Value("TokenUpdate")},
                {"Token", plist::Value(std::int64_t{7})},
                {"UDID", plist::Value(std::int64_t{42})}};
  auto input = plist::to_xml(plist::Value(d));
  auto fires = [](std::string_view candidate) {
    auto parsed = plist::parse(candidate);
    if (!parsed || !parsed->find("Token")) return Fires::not_sent;
    return integer_udid(candidate);
  };
  std::vector<Repair> repairs{{"Token", plist::Value(plist::Data{"x"})}, {"UDID", plist::Value("device")}};
  auto m = minimize_input(input, fires, {}, repairs);
  auto parsed = plist::parse(m.bytes);
  ASSERT_TRUE(parsed) << m.bytes;
  ASSERT_TRUE(parsed->find("Token")) << m.bytes;
  EXPECT_TRUE(parsed->find("Token")->as_data()) << m.bytes;
  ASSERT_TRUE(parsed->find("UDID"));
  EXPECT_TRUE(parsed->find("UDID")->as_integer()) << m.bytes;

  // Without the repairs the key is only made plain: a string, still of the wrong type.
  auto plain = plist::parse(minimize_input(input, fires).bytes);
  ASSERT_TRUE(plain && plain->find("Token"));
  EXPECT_FALSE(plain->find("Token")->as_data());
}

}  // namespace
}  // namespace mdmc::fuzz
