#include <gtest/gtest.h>

#include <string>

#include "harness/fuzz/detail/parse_cache.hpp"
#include "harness/plist/error.hpp"

namespace mdmc::fuzz::detail {
namespace {

std::string idle(int n) {
  return "<plist><dict><key>Status</key><string>Idle</string><key>N</key><string>" + std::to_string(n) +
         "</string></dict></plist>";
}

TEST(ParseCache, TheSameBytesShareOneParse) {
  auto first = parse_input(idle(1));
  auto again = parse_input(idle(1));
  ASSERT_TRUE(*first);
  EXPECT_EQ(first.get(), again.get());
  EXPECT_EQ((*first)->string_at("N"), "1");
  auto other = parse_input(idle(2));
  EXPECT_NE(first.get(), other.get());
  EXPECT_EQ((*other)->string_at("N"), "2");
}

TEST(ParseCache, KeepsFailuresWithTheirCode) {
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "<array>";
  deep = "<plist>" + deep;
  auto parsed = parse_input(deep);
  ASSERT_FALSE(*parsed);
  EXPECT_EQ(plist::error_of(*parsed), plist::Error::too_deep);
  EXPECT_EQ(parse_input(deep).get(), parsed.get());
}

TEST(ParseCache, ForgetsTheLeastRecentlyUsedPastItsBound) {
  auto kept = parse_input(idle(1000));
  auto pushed_out = parse_input(idle(999));
  for (std::size_t n = 0; n < kParsedInputs + 8; ++n) {
    (void)parse_input(idle(1001 + static_cast<int>(n)));
    if (n % 8 == 0) EXPECT_EQ(parse_input(idle(1000)).get(), kept.get()) << "used lately, so kept";
  }
  auto again = parse_input(idle(999));
  EXPECT_NE(again.get(), pushed_out.get()) << "not used for kParsedInputs parses: parsed anew";
  EXPECT_EQ((*again)->string_at("N"), "999");
}

}  // namespace
}  // namespace mdmc::fuzz::detail
