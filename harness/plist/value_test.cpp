#include "harness/plist/value.hpp"

#include <gtest/gtest.h>
#include <plist/plist.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "harness/plist/detail/prescan.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc::plist {
namespace {

using namespace std::string_literals;

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(MDMC_SOURCE_DIR) + "/testdata/captures/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Builds a bplist00 by hand, object by object, so tests can write what no writer would.
class Bplist {
 public:
  explicit Bplist(unsigned ref_size = 4) : ref_size_(ref_size) {}

  std::uint64_t add(std::string object) {
    objects_.push_back(std::move(object));
    return objects_.size() - 1;
  }
  // Replaces an object added earlier (to point a container at objects added after it).
  void set(std::uint64_t index, std::string object) { objects_[index] = std::move(object); }

  static std::string be(std::uint64_t v, unsigned n) {
    std::string out;
    for (unsigned i = n; i-- > 0;) out.push_back(static_cast<char>(v >> (8 * i)));
    return out;
  }
  static std::string marker(unsigned type, std::uint64_t count) {
    if (count < 15) return std::string(1, static_cast<char>((type << 4) | count));
    return std::string(1, static_cast<char>((type << 4) | 0xF)) + "\x13"s + be(count, 8);
  }
  static std::string ascii(std::string_view s) { return marker(0x5, s.size()) + std::string(s); }
  static std::string data(std::string_view s) { return marker(0x4, s.size()) + std::string(s); }
  static std::string integer(std::uint8_t v) { return "\x10"s + static_cast<char>(v); }

  std::string array(const std::vector<std::uint64_t>& refs) const {
    std::string out = marker(0xA, refs.size());
    for (auto r : refs) out += be(r, ref_size_);
    return out;
  }
  std::string dict(const std::vector<std::uint64_t>& keys, const std::vector<std::uint64_t>& values) const {
    std::string out = marker(0xD, keys.size());
    for (auto r : keys) out += be(r, ref_size_);
    for (auto r : values) out += be(r, ref_size_);
    return out;
  }

  std::string finish(std::uint64_t top) const {
    std::string out = "bplist00";
    std::vector<std::uint64_t> offsets;
    for (const auto& o : objects_) {
      offsets.push_back(out.size());
      out += o;
    }
    const std::uint64_t table = out.size();
    for (auto off : offsets) out += be(off, 8);
    out += std::string(6, '\0');
    out.push_back(8);  // offset int size
    out.push_back(static_cast<char>(ref_size_));
    out += be(objects_.size(), 8) + be(top, 8) + be(table, 8);
    return out;
  }

 private:
  unsigned ref_size_;
  std::vector<std::string> objects_;
};

// A binary plist of `n` arrays, each holding the next; the last is empty.
std::string nested_binary_arrays(std::size_t n) {
  Bplist b;
  for (std::size_t i = 0; i + 1 < n; ++i) b.add(b.array({i + 1}));
  b.add(b.array({}));
  return b.finish(0);
}

std::string nested_xml_arrays(std::size_t n) {
  std::string s = "<plist>";
  for (std::size_t i = 0; i < n; ++i) s += "<array>";
  for (std::size_t i = 0; i < n; ++i) s += "</array>";
  return s + "</plist>";
}

Value every_type() {
  Dict nested{{"empty array", Array{}}, {"empty dict", Dict{}}, {"n", -7}};
  return Dict{
      {"true", true},
      {"false", false},
      {"zero", 0},
      {"minus one", -1},
      {"int64 min", std::numeric_limits<std::int64_t>::min()},
      {"int64 max", std::numeric_limits<std::int64_t>::max()},
      {"big", std::int64_t{1} << 40},
      {"real", 1.5},
      {"negative real", -0.25},
      {"string", "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80 <&> \"q\""},
      {"empty string", ""},
      {"data", Data{"\x00\x01\xFF\x80 bytes"s}},
      {"empty data", Data{}},
      {"date", Date{-12345}},
      {"date after 2038", Date{5e9}},
      {"uid", Uid{7}},
      {"array", Array{1, "two", 3.0, Value(Array{Value(Array{})}), Value(Dict{{"k", "v"}})}},
      {"dict", nested},
  };
}

TEST(PlistRoundTrip, EveryTypeSurvivesXml) {
  const Value v = every_type();
  const auto back = parse(to_xml(v));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(*back, v);
}

TEST(PlistRoundTrip, EveryTypeSurvivesBinary) {
  const Value v = every_type();
  const auto back = parse(to_binary(v));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(*back, v);
}

TEST(PlistRoundTrip, EveryTypeSurvivesAsTheTopLevelValue) {
  const Value all = every_type();
  for (const auto& item : *all.as_dict()) {
    const auto xml = parse(to_xml(item.second));
    ASSERT_TRUE(xml.ok()) << item.first << ": " << xml.message();
    EXPECT_EQ(*xml, item.second) << item.first;
    const auto bin = parse(to_binary(item.second));
    ASSERT_TRUE(bin.ok()) << item.first << ": " << bin.message();
    EXPECT_EQ(*bin, item.second) << item.first;
  }
}

TEST(PlistRoundTrip, BinaryKeepsFractionalAndFarDates) {
  for (double seconds : {0.5, -0.5, 1.25e-3, -3e9, 4e10, 1e300}) {
    const auto back = parse(to_binary(Value(Date{seconds})));
    ASSERT_TRUE(back.ok()) << back.message();
    ASSERT_NE(back->as_date(), nullptr);
    EXPECT_EQ(back->as_date()->seconds_since_2001, seconds);
  }
}

TEST(PlistRoundTrip, XmlDatesKeepWholeSecondsAndNeverBreakTheWriter) {
  const auto back = parse(to_xml(Value(Date{86400.75})));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->as_date()->seconds_since_2001, 86400);
  for (double odd : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), -1e300}) {
    EXPECT_TRUE(parse(to_xml(Value(Date{odd}))).ok());
  }
}

// libplist 2.2's XML writer cannot size these numbers (undefined behaviour in xplist.c, found
// by fuzzing it instrumented): to_xml hands it stand-ins, then writes the numbers' own text,
// as libplist prints them.
TEST(PlistXmlWriter, NumbersLibplistCannotSizeAreWrittenAsLibplistPrintsThem) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::int64_t min = std::numeric_limits<std::int64_t>::min();
  const Value v = Dict{{"nan", nan},
                       {"inf", inf},
                       {"minus inf", -inf},
                       {"huge", 1e300},
                       {"minus 2^63", -0x1p63},
                       {"2^63", 0x1p63},
                       {"int64 min", min},
                       {"uid 2^63", Uid{std::uint64_t{1} << 63}},
                       {"in an array", Array{Value(-inf), Value(min)}}};
  const std::string xml = to_xml(v);
  auto count = [&xml](const std::string& needle) {
    std::size_t n = 0;
    for (auto at = xml.find(needle); at != std::string::npos; at = xml.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<real>nan</real>"), 1U) << xml;
  EXPECT_EQ(count("<real>+infinity</real>"), 1U) << xml;
  EXPECT_EQ(count("<real>-infinity</real>"), 2U) << xml;
  EXPECT_EQ(count("<real>1.0000000000000001e+300</real>"), 1U) << xml;
  EXPECT_EQ(count("<real>-9.2233720368547758e+18</real>"), 1U) << xml;
  EXPECT_EQ(count("<real>9.2233720368547758e+18</real>"), 1U) << xml;
  EXPECT_EQ(count("<integer>-9223372036854775808</integer>"), 3U) << xml;  // two integers, the uid

  const auto back = parse(xml);
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_NE(back->find("nan"), nullptr);
  ASSERT_NE(back->find("nan")->as_real(), nullptr);
  EXPECT_TRUE(std::isnan(*back->find("nan")->as_real()));
  for (const char* key : {"inf", "minus inf", "huge", "minus 2^63", "2^63", "int64 min", "in an array"}) {
    ASSERT_NE(back->find(key), nullptr) << key;
    EXPECT_EQ(*back->find(key), *v.find(key)) << key;
  }
  // A UID above 32 bits stays the {CF$UID: integer} dict it is written as.
  EXPECT_EQ(*back->find("uid 2^63"), Value(Dict{{"CF$UID", min}}));
}

TEST(PlistXmlWriter, StandInsNeverTouchTheDocumentsOwnValues) {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  // The stand-ins' first choices, present in the document, and strings spelling their text.
  const Value v = Dict{{"real", 271828182.5},
                       {"next real", 271828183.5},
                       {"integer", max},
                       {"uid", Uid{static_cast<std::uint64_t>(max - 1)}},
                       {"text", "<real>271828184.5</real><integer>9223372036854775805</integer>"},
                       {"nan", std::numeric_limits<double>::quiet_NaN()},
                       {"int64 min", std::numeric_limits<std::int64_t>::min()}};
  const auto back = parse(to_xml(v));
  ASSERT_TRUE(back.ok()) << back.message();
  for (const char* key : {"real", "next real", "integer", "text", "int64 min"}) {
    ASSERT_NE(back->find(key), nullptr) << key;
    EXPECT_EQ(*back->find(key), *v.find(key)) << key;
  }
  EXPECT_EQ(*back->find("uid"), Value(Dict{{"CF$UID", max - 1}}));
  ASSERT_NE(back->find("nan")->as_real(), nullptr);
  EXPECT_TRUE(std::isnan(*back->find("nan")->as_real()));
}

TEST(PlistIntegers, AboveInt64MaxBecomeReals) {
  const auto xml = parse("<plist><integer>18446744073709551615</integer></plist>");
  ASSERT_TRUE(xml.ok()) << xml.message();
  ASSERT_NE(xml->as_real(), nullptr);
  EXPECT_EQ(*xml->as_real(), 18446744073709551615.0);

  // A 16-byte binary int, as Apple writes unsigned values above INT64_MAX.
  Bplist b;
  b.add("\x14"s + Bplist::be(0, 8) + Bplist::be(std::uint64_t{1} << 63, 8));
  const auto bin = parse(b.finish(0));
  ASSERT_TRUE(bin.ok()) << bin.message();
  ASSERT_NE(bin->as_real(), nullptr);
  EXPECT_EQ(*bin->as_real(), 9223372036854775808.0);
}

TEST(PlistIntegers, NegativeNumbersStayIntegers) {
  const auto xml = parse("<plist><integer>-42</integer></plist>");
  ASSERT_TRUE(xml.ok());
  ASSERT_NE(xml->as_integer(), nullptr);
  EXPECT_EQ(*xml->as_integer(), -42);
  Bplist b;
  b.add("\x13"s + Bplist::be(static_cast<std::uint64_t>(-42), 8));
  const auto bin = parse(b.finish(0));
  ASSERT_TRUE(bin.ok()) << bin.message();
  ASSERT_NE(bin->as_integer(), nullptr);
  EXPECT_EQ(*bin->as_integer(), -42);
}

TEST(PlistCaptures, NanoMdmCheckInsAndReportParse) {
  for (const char* name :
       {"nanomdm/Authenticate.1.plist", "nanomdm/Authenticate.2.plist", "nanomdm/TokenUpdate.1.plist",
        "nanomdm/TokenUpdate.2.plist", "nanomdm/DeviceInformation.1.plist"}) {
    const std::string bytes = testdata(name);
    ASSERT_EQ(sniff(bytes), Format::xml) << name;
    const auto v = parse(bytes);
    ASSERT_TRUE(v.ok()) << name << ": " << v.message();
    EXPECT_TRUE(v->is(Type::dict)) << name;
    // The same message survives re-encoding either way.
    EXPECT_EQ(*parse(to_xml(*v)), *v) << name;
    EXPECT_EQ(*parse(to_binary(*v)), *v) << name;
  }
  const auto auth = parse(testdata("nanomdm/Authenticate.2.plist"));
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->string_at("MessageType"), "Authenticate");
  EXPECT_EQ(auth->string_at("UDID"), "66ADE930-5FDF-5EC4-8429-15640684C489");
  ASSERT_NE(auth->find("Challenge"), nullptr);
  EXPECT_EQ(*auth->find("Challenge")->as_data(), Data{"apple"});

  const auto token = parse(testdata("nanomdm/TokenUpdate.1.plist"));
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->string_at("MessageType"), "TokenUpdate");
  EXPECT_EQ(token->bool_at("AwaitingConfiguration"), false);
  EXPECT_EQ(token->find("Token")->as_data()->bytes.size(), 32U);
  EXPECT_GT(token->find("UnlockToken")->as_data()->bytes.size(), 1000U);

  const auto report = parse(testdata("nanomdm/DeviceInformation.1.plist"));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->string_at("Status"), "Acknowledged");
  EXPECT_EQ(report->find("QueryResponses")->string_at("HostName"), "fruit.example.com");
}

TEST(PlistCaptures, MicroMdmInstallProfileCommandParses) {
  const auto v = parse(testdata("micromdm/InstallProfile.plist"));
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(v->string_at("CommandUUID"), "7e761ec5-9e20-42d1-9072-3d5a611e3ac5");
  const Value* command = v->find("Command");
  ASSERT_NE(command, nullptr);
  EXPECT_EQ(command->string_at("RequestType"), "InstallProfile");
  EXPECT_EQ(*command->find("Payload")->as_data(), Data{"foobarbaz"});
}

TEST(PlistAccess, FindAndTypedLookupsToleratMissingAndMistypedKeys) {
  const Value v = Dict{{"s", "text"}, {"b", true}, {"i", 3}};
  EXPECT_EQ(v.string_at("s"), "text");
  EXPECT_EQ(v.bool_at("b"), true);
  EXPECT_EQ(v.string_at("b"), std::nullopt);
  EXPECT_EQ(v.bool_at("s"), std::nullopt);
  EXPECT_EQ(v.string_at("missing"), std::nullopt);
  EXPECT_EQ(v.find("missing"), nullptr);
  ASSERT_NE(v.find("i"), nullptr);
  EXPECT_EQ(*v.find("i")->as_integer(), 3);
  const Value not_a_dict = Array{1};
  EXPECT_EQ(not_a_dict.find("s"), nullptr);
  EXPECT_EQ(not_a_dict.string_at("s"), std::nullopt);
}

TEST(PlistAccess, TypeNamesAreTheXmlElementNames) {
  EXPECT_EQ(type_name(Type::boolean), "boolean");
  EXPECT_EQ(type_name(Type::integer), "integer");
  EXPECT_EQ(type_name(Type::real), "real");
  EXPECT_EQ(type_name(Type::string), "string");
  EXPECT_EQ(type_name(Type::data), "data");
  EXPECT_EQ(type_name(Type::date), "date");
  EXPECT_EQ(type_name(Type::array), "array");
  EXPECT_EQ(type_name(Type::dict), "dict");
  EXPECT_EQ(type_name(Type::uid), "uid");
  EXPECT_EQ(Value(Uid{1}).type(), Type::uid);
}

TEST(PlistErrors, CodesHaveNamesAndACategory) {
  const std::error_code ec = Error::too_deep;
  EXPECT_EQ(&ec.category(), &plist_category());
  EXPECT_STREQ(ec.category().name(), "mdmc.plist");
  EXPECT_FALSE(ec.message().empty());
  EXPECT_EQ(error_name(Error::too_deep), "too_deep");
  EXPECT_EQ(error_name(Error::cyclic_reference), "cyclic_reference");
  EXPECT_EQ(error_name(Error::bad_utf8), "bad_utf8");
  EXPECT_FALSE(make_error_code(Error::ok));
  const Result<Value> r(Error::too_deep, "nesting exceeds 64");
  EXPECT_EQ(r.message(), "too_deep: nesting exceeds 64");
}

TEST(PlistParse, EmptyInputIsEmpty) { EXPECT_EQ(error_of(parse("")), Error::empty); }

TEST(PlistParse, InputAboveTheByteLimitIsTooLarge) {
  Limits limits;
  limits.max_bytes = 64;
  const std::string xml = to_xml(Value(std::string(100, 'x')));
  EXPECT_EQ(error_of(parse(xml, limits)), Error::too_large);
  EXPECT_EQ(error_of(parse(std::string(65, ' '), limits)), Error::too_large);
}

TEST(PlistParse, GarbageIsNotAPlist) {
  for (const std::string& bytes : {"hello"s, "\x00\x01\x02"s, "   \n"s, "{\"json\": 1}"s,
                                   "bplist01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"s, "\xEF\xBB\xBFnot xml"s}) {
    EXPECT_EQ(error_of(parse(bytes)), Error::not_a_plist) << bytes;
  }
}

TEST(PlistParse, SniffSkipsAByteOrderMarkAndWhitespace) {
  EXPECT_EQ(sniff("\xEF\xBB\xBF \r\n\t<plist>"), Format::xml);
  EXPECT_EQ(sniff("bplist00"), Format::binary);
  EXPECT_EQ(sniff("x<plist>"), std::nullopt);
  const auto v = parse("\xEF\xBB\xBF\n<plist><string>bom</string></plist>");
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(*v->as_string(), "bom");
}

TEST(PlistParse, MalformedXmlIsReportedAsSuch) {
  for (const std::string& bytes : {
           "<"s,
           "<plist>"s,
           "<plist></plist>"s,
           "<plist><dict><key>a</key></plist>"s,
           "<plist><array><string>x</array></plist>"s,
           "<plist><foo/></plist>"s,
           "<plist><dict><string>no key</string></dict></plist>"s,
           "<plist><array></dict></plist>"s,
           "<plist><!-- unterminated </plist>"s,
           "<plist><string>a<b/></string></plist>"s,
           "<plist><string>&bogus;</string></plist>"s,
           "<plist><array>\0</array></plist>"s,
       }) {
    EXPECT_EQ(error_of(parse(bytes)), Error::malformed_xml) << bytes;
  }
}

TEST(PlistParse, XmlCommentsCdataAndAttributesAreNotElements) {
  const auto v = parse(
      "<?xml version=\"1.0\"?><!DOCTYPE plist [ \"]>\" ]><plist version=\"</array>\">"
      "<!-- <array><array> --><array a=\"</array>\"><string><![CDATA[</array><x>]]></string>"
      "<string>a<!-- </string> -->b</string></array></plist>");
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(*v, Value(Array{"</array><x>", "ab"}));
}

TEST(PlistParse, EveryPrefixOfXmlFailsCleanly) {
  const std::string bytes = testdata("nanomdm/TokenUpdate.1.plist");
  const std::size_t end_of_dict = bytes.rfind("</dict>") + std::string_view("</dict>").size();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const auto r = parse(std::string_view(bytes).substr(0, n));
    if (n < end_of_dict) {
      EXPECT_FALSE(r.ok()) << n;
    }
  }
}

TEST(PlistParse, EveryPrefixOfBinaryFailsCleanly) {
  const std::string bytes = to_binary(every_type());
  ASSERT_TRUE(parse(bytes).ok());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(parse(std::string_view(bytes).substr(0, n)).ok()) << n;
  }
}

TEST(PlistParse, EveryOneByteCorruptionOfBinaryReturnsAValueOrAnError) {
  const std::string good = to_binary(every_type());
  std::size_t errors = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int replacement : {0x00, 0xFF, 0x0F, 0xAF, 0xDF, 0x5F, 0x6F}) {
      std::string bad = good;
      bad[i] = static_cast<char>(replacement);
      if (!parse(bad).ok()) ++errors;
      bad[i] = static_cast<char>(good[i] ^ 0x01);
      if (!parse(bad).ok()) ++errors;
    }
  }
  EXPECT_GT(errors, 0U);
}

TEST(PlistLimits, DeepXmlIsTooDeepAndFast) {
  const std::string bytes = nested_xml_arrays(100'000);
  const auto start = std::chrono::steady_clock::now();
  const auto r = parse(bytes);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(error_of(r), Error::too_deep) << r.message();
  EXPECT_LT(elapsed, std::chrono::seconds(1));
  // Unclosed, too: libplist's error path would free the partial tree recursively.
  EXPECT_EQ(error_of(parse(std::string(500'000, ' ') + std::string(bytes, 0, 7 + 7 * 100'000))), Error::too_deep);
}

TEST(PlistLimits, XmlDepthLimitCountsTheTopLevelAsOne) {
  EXPECT_TRUE(parse(nested_xml_arrays(64)).ok());
  EXPECT_EQ(error_of(parse(nested_xml_arrays(65))), Error::too_deep);
  // An empty container counts as a level.
  std::string s = "<plist>";
  for (int i = 0; i < 64; ++i) s += "<array>";
  s += "<array/>";
  for (int i = 0; i < 64; ++i) s += "</array>";
  EXPECT_EQ(error_of(parse(s + "</plist>")), Error::too_deep);
  Limits limits;
  limits.max_depth = 2;
  EXPECT_TRUE(parse("<plist><dict><key>a</key><array><true/></array></dict></plist>", limits).ok());
  EXPECT_EQ(error_of(parse("<plist><dict><key>a</key><array><dict/></array></dict></plist>", limits)), Error::too_deep);
}

TEST(PlistLimits, DeepBinaryIsTooDeep) {
  EXPECT_TRUE(parse(nested_binary_arrays(64)).ok());
  EXPECT_EQ(error_of(parse(nested_binary_arrays(65))), Error::too_deep);
  // Deep enough to overflow libplist's recursive reader if it ever saw it.
  EXPECT_EQ(error_of(parse(nested_binary_arrays(200'000))), Error::too_deep);
}

TEST(PlistLimits, BinaryArrayContainingItselfIsCyclic) {
  Bplist b;
  b.add(b.array({0}));
  EXPECT_EQ(error_of(parse(b.finish(0))), Error::cyclic_reference);

  Bplist indirect;
  const auto key = indirect.add(Bplist::ascii("k"));
  indirect.add(indirect.dict({key}, {2}));  // 1: {k: [2]}
  indirect.add(indirect.array({1}));        // 2: [1]
  EXPECT_EQ(error_of(parse(indirect.finish(1))), Error::cyclic_reference);
}

TEST(PlistLimits, BinaryReferenceOutOfRangeIsMalformed) {
  Bplist b;
  b.add(b.array({1, 5}));
  b.add(Bplist::integer(1));
  const auto r = parse(b.finish(0));
  EXPECT_EQ(error_of(r), Error::malformed_binary) << r.message();
}

TEST(PlistLimits, BinaryTrailerMustBeConsistent) {
  Bplist b;
  b.add(Bplist::integer(1));
  const std::string good = b.finish(0);
  ASSERT_TRUE(parse(good).ok());
  const std::size_t t = good.size() - 32;
  auto patched = [&](std::size_t at, std::string bytes) {
    std::string s = good;
    s.replace(at, bytes.size(), bytes);
    return error_of(parse(s));
  };
  EXPECT_EQ(patched(t + 6, "\x00"s), Error::malformed_binary);                           // offset size 0
  EXPECT_EQ(patched(t + 7, "\x09"s), Error::malformed_binary);                           // ref size 9
  EXPECT_EQ(patched(t + 8, Bplist::be(0, 8)), Error::malformed_binary);                  // no objects
  EXPECT_EQ(patched(t + 8, Bplist::be(~std::uint64_t{0}, 8)), Error::malformed_binary);  // table overflow
  EXPECT_EQ(patched(t + 16, Bplist::be(1, 8)), Error::malformed_binary);                 // top out of range
  EXPECT_EQ(patched(t + 24, Bplist::be(~std::uint64_t{0} - 3, 8)), Error::malformed_binary);
  EXPECT_EQ(patched(t + 24, Bplist::be(t, 8)), Error::malformed_binary);
  EXPECT_EQ(patched(8, "\xA5"s), Error::malformed_binary);  // refs past table
  EXPECT_EQ(patched(8, "\x70"s), Error::malformed_binary);  // unknown type
  EXPECT_EQ(patched(8, "\x00"s), Error::malformed_binary);  // null
}

TEST(PlistLimits, BinaryDictKeysMustBeStrings) {
  Bplist b;
  const auto one = b.add(Bplist::integer(1));
  b.add(b.dict({one}, {one}));
  EXPECT_EQ(error_of(parse(b.finish(1))), Error::malformed_binary);
}

TEST(PlistLimits, BinaryStringsWithNulAreRefused) {
  // libplist 2.2 would cut the first silently and abort on the second (an assert in its key
  // getter), so neither may reach it.
  Bplist ascii;
  ascii.add(Bplist::ascii("a\0b"s));
  EXPECT_EQ(error_of(parse(ascii.finish(0))), Error::malformed_binary);

  Bplist utf16_key;
  const auto key = utf16_key.add("\x62\x00\x41\x00\x00"s);  // UTF-16 "A\u0000"
  const auto one = utf16_key.add(Bplist::integer(1));
  utf16_key.add(utf16_key.dict({key}, {one}));
  EXPECT_EQ(error_of(parse(utf16_key.finish(2))), Error::malformed_binary);
}

TEST(PlistLimits, NodeCountLimitAppliesToXmlAndBinary) {
  Limits limits;
  limits.max_nodes = 5;
  const Value four = Array{1, 2, 3, 4};  // five values with the array
  const Value five = Array{1, 2, 3, 4, 5};
  EXPECT_TRUE(parse(to_xml(four), limits).ok());
  EXPECT_TRUE(parse(to_binary(four), limits).ok());
  EXPECT_EQ(error_of(parse(to_xml(five), limits)), Error::too_many_nodes);
  EXPECT_EQ(error_of(parse(to_binary(five), limits)), Error::too_many_nodes);

  // The default limit, from one shared object referenced 100000 times.
  Bplist b;
  const auto one = b.add(Bplist::integer(1));
  b.add(b.array(std::vector<std::uint64_t>(100'000, one)));
  EXPECT_EQ(error_of(parse(b.finish(1))), Error::too_many_nodes);
}

TEST(PlistLimits, ExponentialBinaryDagIsStoppedAtTheNodeLimit) {
  // Object i is [i+1, i+1]: 60 objects stand for 2^61 values once expanded.
  Bplist b;
  for (std::uint64_t i = 0; i < 60; ++i) b.add(b.array({i + 1, i + 1}));
  b.add(Bplist::integer(7));
  const auto start = std::chrono::steady_clock::now();
  const auto r = parse(b.finish(0));
  EXPECT_EQ(error_of(r), Error::too_many_nodes) << r.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(PlistLimits, SharedDataExpandingBeyondTheByteLimitIsTooLarge) {
  Bplist b;
  const auto blob = b.add(Bplist::data(std::string(64 * 1024, 'x')));
  b.add(b.array(std::vector<std::uint64_t>(100, blob)));  // 6.4 MB once expanded
  const auto r = parse(b.finish(1));
  EXPECT_EQ(error_of(r), Error::too_large) << r.message();
}

TEST(PlistUtf8, InvalidStringsAreBadUtf8) {
  EXPECT_EQ(error_of(parse("<plist><string>\xC3\x28</string></plist>")), Error::bad_utf8);
  EXPECT_EQ(error_of(parse("<plist><string>\xED\xA0\x80</string></plist>")), Error::bad_utf8);  // surrogate
  EXPECT_EQ(error_of(parse("<plist><string>&#xD800;</string></plist>")), Error::bad_utf8);
  EXPECT_EQ(error_of(parse("<plist><string>\xC0\xAF</string></plist>")), Error::bad_utf8);  // overlong
  EXPECT_EQ(error_of(parse("<plist><dict><key>\xFF</key><true/></dict></plist>")), Error::bad_utf8);
  EXPECT_TRUE(parse("<plist><string>\xF0\x9F\x98\x80 &#x263A;</string></plist>").ok());

  Bplist b;
  b.add(Bplist::ascii("caf\xE9"));  // Latin-1, not UTF-8
  EXPECT_EQ(error_of(parse(b.finish(0))), Error::bad_utf8);

  // UTF-16 in a binary plist: a pair is fine, a lone surrogate is not (libplist would drop it).
  Bplist pair;
  pair.add("\x62\xD8\x3D\xDE\x00"s);
  const auto emoji = parse(pair.finish(0));
  ASSERT_TRUE(emoji.ok()) << emoji.message();
  EXPECT_EQ(*emoji, Value("\xF0\x9F\x98\x80"));
  Bplist lone;
  lone.add("\x62\xD8\x3D\x00\x41"s);
  EXPECT_EQ(error_of(parse(lone.finish(0))), Error::bad_utf8);
}

TEST(PlistUid, XmlCfUidDictionariesReadAsUids) {
  const auto v = parse("<plist><dict><key>CF$UID</key><integer>12</integer></dict></plist>");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, Value(Uid{12}));
  const auto not_uid = parse("<plist><dict><key>CF$UID</key><string>12</string></dict></plist>");
  ASSERT_TRUE(not_uid.ok());
  EXPECT_TRUE(not_uid->is(Type::dict));
}

// The XML prescan must see at least the depth libplist builds, and never refuse what
// libplist reads; random token soup around the constructs where a scanner could disagree.
std::size_t tree_depth(plist_t node, std::size_t depth, std::size_t& nodes) {
  ++nodes;
  std::size_t deepest = 0;
  const auto type = plist_get_node_type(node);
  if (type != PLIST_ARRAY && type != PLIST_DICT) return deepest;
  deepest = depth;
  if (type == PLIST_ARRAY) {
    for (std::uint32_t i = 0; i < plist_array_get_size(node); ++i) {
      deepest = std::max(deepest, tree_depth(plist_array_get_item(node, i), depth + 1, nodes));
    }
  } else {
    plist_dict_iter it = nullptr;
    plist_dict_new_iter(node, &it);
    while (true) {
      char* key = nullptr;
      plist_t item = nullptr;
      plist_dict_next_item(node, it, &key, &item);
      std::free(key);
      if (!item) break;
      deepest = std::max(deepest, tree_depth(item, depth + 1, nodes));
    }
    std::free(it);
  }
  return deepest;
}

TEST(PlistPrescan, XmlScannerAgreesWithLibplistOnRandomTokenSoup) {
  const std::vector<std::string> tokens = {"<plist>",
                                           "</plist>",
                                           "<array>",
                                           "</array>",
                                           "<array/>",
                                           "<array />",
                                           "<dict>",
                                           "</dict>",
                                           "<dict/>",
                                           "<key>k</key>",
                                           "<key/>",
                                           "<string>s</string>",
                                           "<string/>",
                                           "<integer>1</integer>",
                                           "<true/>",
                                           "<false>x</false>",
                                           "<!-- </array> -->",
                                           "<!--",
                                           "-->",
                                           "<string><![CDATA[</array>]]></string>",
                                           "<array a=\"</array>\">",
                                           "<?pi </array>?>",
                                           "<?xml \"?>\"?>",
                                           "<!DOCTYPE x [ \"]>\" ]>",
                                           "<!DOCTYPE plist>",
                                           " ",
                                           "\n",
                                           "\"",
                                           ">",
                                           "<",
                                           "/",
                                           "<data>AA==</data>",
                                           "</string>",
                                           "<string>",
                                           "<!X>",
                                           "<![CDATA[",
                                           "]]>",
                                           "<date>2020-01-01T00:00:00Z</date>",
                                           "<foo>",
                                           "&amp;",
                                           "<real>1</real>"};
  std::mt19937 rng(20240601);
  Limits generous;
  generous.max_depth = 1000;
  generous.max_nodes = 1000;
  std::size_t libplist_ok = 0;
  for (int round = 0; round < 30'000; ++round) {
    std::string doc;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) doc += tokens[rng() % tokens.size()];
    plist_t raw = nullptr;
    plist_from_xml(doc.c_str(), static_cast<std::uint32_t>(doc.size()), &raw);
    const auto scan = detail::prescan_xml(doc, generous);
    if (!raw) continue;
    ++libplist_ok;
    std::size_t nodes = 0;
    const std::size_t depth = tree_depth(raw, 1, nodes);
    plist_free(raw);
    ASSERT_EQ(scan.error, Error::ok) << doc << "\n" << scan.detail;
    ASSERT_GE(scan.depth, depth) << doc;
    ASSERT_GE(scan.nodes, nodes) << doc;
  }
  EXPECT_GT(libplist_ok, 1000U);
}

}  // namespace
}  // namespace mdmc::plist
