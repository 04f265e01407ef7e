#include "harness/base/result.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "harness/base/bytes.hpp"
#include "harness/base/clock.hpp"
#include "harness/base/enum_names.hpp"
#include "harness/base/files.hpp"
#include "harness/base/json_reader.hpp"
#include "harness/base/load_error.hpp"
#include "harness/base/utf8.hpp"

namespace mdmc::base {
namespace {

namespace fs = std::filesystem;

enum class TestCode { ok = 0, broken = 1 };

class TestCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "test"; }
  std::string message(int ev) const override { return ev == 1 ? "broken" : "ok"; }
};

std::error_code make_error_code(TestCode c) {
  static const TestCategory category;
  return {static_cast<int>(c), category};
}

}  // namespace
}  // namespace mdmc::base

template <>
struct std::is_error_code_enum<mdmc::base::TestCode> : std::true_type {};

namespace mdmc::base {
namespace {

Result<int> half(int n) {
  if (n % 2 != 0) return fail("odd: " + std::to_string(n));
  return n / 2;
}

TEST(Result, HoldsAValueOrAnErrorWithItsText) {
  auto good = half(4);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 2);
  EXPECT_EQ(good.message(), "ok");
  auto bad = half(3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "odd: 3");
  EXPECT_FALSE(bad.error().code);
  EXPECT_EQ(bad.message(), "odd: 3");
}

TEST(Result, CarriesAModulesErrorCode) {
  Result<std::string> r(TestCode::broken, "at byte 7");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TestCode::broken);
  EXPECT_EQ(r.message(), "broken: at byte 7");
  Result<void> v(TestCode::broken);
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.message(), "broken");
  EXPECT_TRUE(Result<void>(Ok{}).ok());
}

enum class Colour { red, green, blue };
constexpr EnumNames<Colour, 2> kColourNames{{{Colour::red, "red"}, {Colour::green, "green"}}};

TEST(EnumNames, ReadBothWaysAndFallBackForValuesTheTableLacks) {
  static_assert(name_of(kColourNames, Colour::green) == "green");
  EXPECT_EQ(name_of(kColourNames, Colour::blue), "?");
  EXPECT_EQ(value_of(kColourNames, "red"), Colour::red);
  EXPECT_FALSE(value_of(kColourNames, "Red").has_value());
}

TEST(Bytes, Base64RoundTripsEveryLengthAndNamesAStrayByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n < 8; ++n) {
    auto text = base64_encode(all.substr(0, n));
    EXPECT_EQ(text.size() % 4, 0u);
    auto back = base64_decode_strict(text);
    ASSERT_TRUE(back.ok()) << back.message();
    EXPECT_EQ(*back, all.substr(0, n));
  }
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_decode("TW FU").message(), "byte 0x20 at offset 2");
  EXPECT_FALSE(base64_decode_strict("TWE").ok());
  EXPECT_TRUE(base64_decode("TWE").ok());
}

TEST(Bytes, HexAndSha256) {
  EXPECT_EQ(hex_encode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Clock, FormatsAndParsesRfc3339) {
  auto t = parse_rfc3339("2026-11-29T08:51:55.123456Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(rfc3339(*t), "2026-11-29T08:51:55Z");
  EXPECT_EQ(rfc3339_us(*t), "2026-11-29T08:51:55.123456Z");
  EXPECT_EQ(compact_utc(*t), "20261129T085155Z");
  auto offset = parse_rfc3339("2026-11-29T10:51:55+02:00");
  ASSERT_TRUE(offset.has_value());
  EXPECT_EQ(rfc3339(*offset), "2026-11-29T08:51:55Z");
  EXPECT_FALSE(parse_rfc3339("2026-13-29T08:51:55Z").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-11-29 08:51:55").has_value());
  EXPECT_EQ(now_rfc3339().size(), 20u);
}

TEST(Clock, RefusesYearsTheClockCannotHold) {
  // Nanoseconds in 64 bits reach from 1677 to 2262; further out, the conversion would overflow.
  EXPECT_FALSE(parse_rfc3339("1014-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parse_rfc3339("9999-12-31T23:59:59Z").has_value());
  EXPECT_FALSE(parse_rfc3339("0000-01-01T00:00:00Z").has_value());
  ASSERT_TRUE(parse_rfc3339("1678-01-01T00:00:00+23:59").has_value());
  EXPECT_EQ(rfc3339(*parse_rfc3339("2261-12-31T23:59:59-23:59")), "2262-01-01T23:58:59Z");
}

class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mdmc_base_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(Files, WritesAtomicallyWithTheExactModeAndReadsBackUnderTheCap) {
  auto path = dir_ / "secret.key";
  auto mask = ::umask(077);
  auto written = write_file_atomically(path, "hello", 0640);
  ::umask(mask);
  ASSERT_TRUE(written.ok()) << written.message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(*read_file_capped(path, 5), "hello");
  auto capped = read_file_capped(path, 4);
  ASSERT_FALSE(capped.ok());
  EXPECT_NE(capped.message().find("larger than 4 bytes"), std::string::npos);
  // Nothing else is left in the folder: no temporary file.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(Files, RefusesFoldersDevicesAndMissingFilesByName) {
  EXPECT_NE(read_file_capped(dir_, 10).message().find("not a regular file"), std::string::npos);
  EXPECT_NE(read_file_capped("/dev/zero", 10).message().find("not a regular file"), std::string::npos);
  auto missing = read_file_capped(dir_ / "absent", 10);
  EXPECT_NE(missing.message().find("absent"), std::string::npos);
  auto unwritable = write_file_atomically(dir_ / "no" / "such" / "folder.txt", "x");
  EXPECT_FALSE(unwritable.ok());
}

TEST_F(Files, ReplacesAnExistingFileAndLeavesNothingBehindWhenARenameFails) {
  const fs::path target = dir_ / "report.json";
  ASSERT_TRUE(write_file_atomically(target, "old contents that are longer").ok());
  ASSERT_TRUE(write_file_atomically(target, "new").ok());
  EXPECT_EQ(*read_file_capped(target, 100), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
  // A rename over a non-empty folder fails after the temporary file was written: it must go.
  fs::create_directories(dir_ / "busy" / "inside");
  auto busy = write_file_atomically(dir_ / "busy", "x");
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.message().find("rename"), std::string::npos) << busy.message();
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

TEST(JsonNestingDepth, CountsContainersOutsideStringsAndStopsPastTheLimit) {
  EXPECT_EQ(json_nesting_depth("1", 8), 0);
  EXPECT_EQ(json_nesting_depth(R"({"a":[1,{"b":[]}]})", 8), 4);
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[\"[[["})", 8), 1);      // brackets in a string, an escaped quote
  EXPECT_EQ(json_nesting_depth(std::string(100000, '['), 64), 65);  // not valid JSON, still counted
}

TEST(JsonReader, NamesThePathOfTheFirstProblem) {
  const auto j = JsonReader::Json::parse(R"({"a": {"b": [1, "x"]}, "s": {"base64": "/w=="}})");
  JsonReader r;
  EXPECT_EQ(r.bytes(j, "s", ""), "\xff");
  const JsonReader::Json* a = r.object(j, "a", "");
  ASSERT_TRUE(a);
  (void)r.strings(*a, "b", "a");
  EXPECT_EQ(r.error(), "a.b[0]: expected a string");
  r.fail("later", "ignored");
  EXPECT_EQ(r.error(), "a.b[0]: expected a string");
}

TEST(Utf8, ReplacesWhatIsNotUtf8) {
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));  // overlong
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b"),
            "a\xef\xbf\xbd"
            "b");
}

TEST(LoadError, NamesFileLineAndKey) {
  LoadError e("a.yaml", 3, "steps[0].actor", "unknown actor");
  EXPECT_STREQ(e.what(), "a.yaml:3: steps[0].actor: unknown actor");
  EXPECT_EQ(e.line(), 3);
}

}  // namespace
}  // namespace mdmc::base
