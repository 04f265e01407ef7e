#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "harness/enroll/detail/profile_schema.hpp"

namespace mdmc::enroll::detail {
namespace {

const ProfileKey* key_of(std::string_view payload_type, std::string_view name) {
  const auto* payload = find_payload_schema(payload_type);
  if (!payload) return nullptr;
  for (const auto& key : keys_of(*payload)) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

TEST(ProfileSchemaTables, HoldTheMdmPayloadsRequiredKeysAndFormats) {
  const auto* mdm = find_payload_schema("com.apple.mdm");
  ASSERT_NE(mdm, nullptr);
  EXPECT_FALSE(mdm->multiple);
  for (std::string_view name : {"IdentityCertificateUUID", "Topic", "ServerURL"}) {
    const auto* key = key_of("com.apple.mdm", name);
    ASSERT_NE(key, nullptr) << name;
    EXPECT_TRUE(key->flags & kRequired) << name;
    EXPECT_EQ(key->type, SchemaType::string) << name;
  }
  ASSERT_NE(key_of("com.apple.mdm", "CheckInURL"), nullptr);
  EXPECT_FALSE(key_of("com.apple.mdm", "CheckInURL")->flags & kRequired);
  EXPECT_EQ(key_of("com.apple.mdm", "CheckInURL")->format, "^https://.*$");
  EXPECT_EQ(key_of("com.apple.mdm", "ServerURL")->format, "^https://.*$");
  EXPECT_EQ(key_of("com.apple.mdm", "SignMessage")->type, SchemaType::boolean);
  EXPECT_EQ(key_of("com.apple.mdm", "AccessRights")->type, SchemaType::integer);
  EXPECT_EQ(kTopicPrefix, "com.apple.mgmt.");
  std::int64_t all = 0;
  for (auto bit : kAccessRightsBits) all |= bit;
  EXPECT_EQ(all, 8191);
}

TEST(ProfileSchemaTables, HoldTheIdentityPayloads) {
  const auto* url = key_of("com.apple.security.scep", "PayloadContent");
  ASSERT_NE(url, nullptr);
  EXPECT_EQ(url->type, SchemaType::dictionary);
  bool found_url = false;
  for (const auto& key : children(*url)) {
    if (key.name == "URL") found_url = (key.flags & kRequired) != 0;
    if (key.name == "Keysize") {
      auto values = allowed_values(key);
      EXPECT_EQ(std::vector<std::string_view>(values.begin(), values.end()),
                (std::vector<std::string_view>{"1024", "2048", "4096"}));
    }
  }
  EXPECT_TRUE(found_url);
  EXPECT_EQ(key_of("com.apple.security.pkcs12", "PayloadContent")->type, SchemaType::data);
  EXPECT_TRUE(key_of("com.apple.security.acme", "DirectoryURL")->flags & kRequired);
  EXPECT_EQ(key_of("com.apple.security.root", "PayloadContent")->type, SchemaType::data);
  EXPECT_EQ(key_of("com.apple.security.pkcs1", "PayloadContent")->type, SchemaType::data);
  EXPECT_EQ(find_payload_schema("com.apple.wifi.managed"), nullptr);
}

TEST(ProfileSchemaTables, EveryFormatIsInTheMatchersSubset) {
  int formats = 0;
  for (const auto& key : kProfileKeys) {
    if (key.format.empty()) continue;
    ++formats;
    EXPECT_TRUE(matches_format(key.format, "").has_value()) << key.name << " " << key.format;
  }
  EXPECT_GE(formats, 3);
}

TEST(MatchesFormat, HttpsAndUuidPatterns) {
  EXPECT_EQ(matches_format("^https://.*$", "https://mdm.example.org/mdm"), true);
  EXPECT_EQ(matches_format("^https://.*$", "https://"), true);
  EXPECT_EQ(matches_format("^https://.*$", "http://mdm.example.org/mdm"), false);
  EXPECT_EQ(matches_format("^https://.*$", "HTTPS://mdm.example.org"), false);
  EXPECT_EQ(matches_format("^https://.*$", " https://x"), false);
  EXPECT_EQ(matches_format("^https://.*$", "https://x\ny"), false);  // '.' is not a line end
  const std::string_view uuid = "^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$";
  EXPECT_EQ(matches_format(uuid, "6F7E9D5A-1C2B-4B3A-9D8E-0A1B2C3D4E5F"), true);
  EXPECT_EQ(matches_format(uuid, "6F7E9D5A-1C2B-4B3A-9D8E-0A1B2C3D4E5"), false);
  EXPECT_EQ(matches_format(uuid, "6F7E9D5A-1C2B-4B3A-9D8E-0A1B2C3D4E5F0"), false);
  EXPECT_EQ(matches_format(uuid, "6F7E9D5A_1C2B-4B3A-9D8E-0A1B2C3D4E5F"), false);
  EXPECT_EQ(matches_format("^a[^b]?c+d{2,3}\\.$", "axcccdd."), true);
  EXPECT_EQ(matches_format("^a[^b]?c+d{2,3}\\.$", "abcdd."), false);
  EXPECT_EQ(matches_format("^a[^b]?c+d{2,3}\\.$", "acdddd."), false);
}

TEST(MatchesFormat, PatternsOutsideTheSubsetAreNotGuessed) {
  for (std::string_view pattern : {"https://.*", "^(a|b)$", "^a{2$", "^[a-$", "^a**$"}) {
    EXPECT_FALSE(matches_format(pattern, "a").has_value()) << pattern;
  }
}

TEST(MatchesFormat, ALongTextTakesLinearTime) {
  const std::string long_url = "https://" + std::string(1024 * 1024, 'a');
  const std::string long_http = "http://" + std::string(1024 * 1024, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(matches_format("^https://.*$", long_url), true);
  EXPECT_EQ(matches_format("^https://.*$", long_http), false);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(CheckKeys, NamesMissingMistypedAndDisallowedKeysByPath) {
  const auto* scep = find_payload_schema("com.apple.security.scep");
  ASSERT_NE(scep, nullptr);
  plist::Dict content{
      {"Keysize", 3072},
      {"Subject", plist::Array{plist::Value(plist::Array{plist::Value(plist::Array{"CN", "x", "y"})}), "O"}},
      {"SubjectAltName", plist::Dict{{"dNSName", plist::Array{"a.example", "b.example"}}, {"rfc822Name", 5}}}};
  plist::Dict payload{{"PayloadContent", content}};
  Problems problems;
  check_keys(payload, keys_of(*scep), "com.apple.security.scep", "", problems);
  auto sentences = std::move(problems).take();
  EXPECT_EQ(sentences,
            (std::vector<std::string>{
                "com.apple.security.scep: PayloadContent.URL is missing (Apple's schema requires it)",
                "com.apple.security.scep: PayloadContent.Subject[0][0] has 3 items, Apple's schema says 2",
                "com.apple.security.scep: PayloadContent.Subject[1] is <string>, Apple's schema says <array>",
                "com.apple.security.scep: PayloadContent.Keysize is \"3072\", Apple's schema allows 1024, "
                "2048, 4096",
                "com.apple.security.scep: PayloadContent.SubjectAltName.rfc822Name is <integer>, Apple's "
                "schema says <string>",
            }));
}

TEST(Problems, AreCappedWithACount) {
  Problems problems;
  for (std::size_t i = 0; i < Problems::kMaxProblems + 5; ++i) problems.add("p" + std::to_string(i));
  auto sentences = std::move(problems).take();
  ASSERT_EQ(sentences.size(), Problems::kMaxProblems + 1);
  EXPECT_EQ(sentences.back(), "and 5 more problems of the same kinds");
}

TEST(QuoteValue, EscapesAndCuts) {
  EXPECT_EQ(quote_value("a\"b\n"), "\"a\\\"b\\x0a\"");
  EXPECT_EQ(quote_value(std::string(100, 'x')), "\"" + std::string(80, 'x') + "\" (100 bytes)");
}

}  // namespace
}  // namespace mdmc::enroll::detail
