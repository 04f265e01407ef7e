#include "harness/pki/signed_profile.hpp"

#include <gtest/gtest.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>

#include "harness/plist/value.hpp"
#include "harness/protocol/configuration_profile.hpp"
#include "harness/testing/plists.hpp"

namespace mdmc::pki {
namespace {

plist::Dict payload(std::string type, std::string id) {
  return testing::profile_payload(std::move(type), std::move(id));
}

// The shared test profile, as the XML a server would sign.
std::string profile_xml(plist::Array content) {
  return plist::to_xml(testing::configuration_profile(std::move(content)));
}

// What PRF-ONE-ACCOUNT does with an InstallProfile Payload: unwrap, parse, count.
struct Counted {
  bool unwrapped = false;
  bool is_profile = false;
  std::size_t accounts = 0;
};
Counted count_accounts(std::string_view payload_bytes) {
  Counted out;
  auto content = profile_content(payload_bytes);
  if (!content) return out;
  out.unwrapped = true;
  auto parsed = plist::parse(*content);
  if (!parsed) return out;
  auto found = protocol::account_payloads(*parsed);
  out.is_profile = found.is_profile;
  out.accounts = found.types.size();
  return out;
}

struct Signer {
  Identity ca;
  Identity device;
};
const Signer& signer() {
  static const Signer s = [] {
    auto ca = create_test_ca("mdmconform profile test CA");
    EXPECT_TRUE(ca) << ca.message();
    auto device = issue_device_identity(*ca, "profile signer", KeyType::ec_p256);
    EXPECT_TRUE(device) << device.message();
    return Signer{*ca, *device};
  }();
  return s;
}

std::string base64_decode(const std::string& text) {
  std::string out(text.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(n) - (text.size() - text.find_last_not_of('=') - 1));
  return out;
}

TEST(ProfileContent, PlainProfileIsReturnedUnchanged) {
  auto xml = profile_xml({payload("com.apple.mail.managed", "m")});
  auto content = profile_content(xml);
  ASSERT_TRUE(content) << content.message();
  EXPECT_EQ(*content, xml);
  auto binary = plist::to_binary(*plist::parse(xml));
  EXPECT_EQ(*profile_content(binary), binary);
}

TEST(ProfileContent, PlainProfilesCountTheirAccounts) {
  auto one = count_accounts(profile_xml({payload("com.apple.mail.managed", "m")}));
  EXPECT_TRUE(one.is_profile);
  EXPECT_EQ(one.accounts, 1u);
  auto two =
      count_accounts(profile_xml({payload("com.apple.mail.managed", "m"), payload("com.apple.eas.account", "e")}));
  EXPECT_EQ(two.accounts, 2u);
}

TEST(ProfileContent, SignedProfileUnwrapsToTheSameCount) {
  for (std::size_t n : {1u, 2u}) {
    plist::Array content{payload("com.apple.mail.managed", "m")};
    if (n == 2) content.push_back(payload("com.apple.eas.account", "e"));
    auto xml = profile_xml(content);
    auto signed_der = sign_profile(signer().device, xml);
    ASSERT_TRUE(signed_der) << signed_der.message();
    EXPECT_EQ(static_cast<unsigned char>((*signed_der)[0]), 0x30);
    auto unwrapped = profile_content(*signed_der);
    ASSERT_TRUE(unwrapped) << unwrapped.message();
    EXPECT_EQ(*unwrapped, xml);
    auto counted = count_accounts(*signed_der);
    EXPECT_TRUE(counted.is_profile);
    EXPECT_EQ(counted.accounts, n);
  }
  EXPECT_EQ(ERR_peek_error(), 0u) << "the OpenSSL error queue is left empty";
}

TEST(ProfileContent, SignedProfileVerifiesWithOpenSsl) {
  // Not something profile_content does; proves sign_profile makes a real, attached signature.
  auto xml = profile_xml({payload("com.apple.ldap.account", "l")});
  auto der = sign_profile(signer().device, xml);
  ASSERT_TRUE(der) << der.message();
  const auto* cursor = reinterpret_cast<const unsigned char*>(der->data());
  std::unique_ptr<CMS_ContentInfo, decltype(&CMS_ContentInfo_free)> cms(
      d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der->size())), CMS_ContentInfo_free);
  ASSERT_TRUE(cms);
  EXPECT_EQ(CMS_is_detached(cms.get()), 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  // No chain check here: NOVERIFY; the signature over the content is what is tested.
  ASSERT_EQ(CMS_verify(cms.get(), nullptr, nullptr, nullptr, out.get(), CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  EXPECT_EQ(std::string(data, static_cast<std::size_t>(size)), xml);
  ERR_clear_error();
}

TEST(ProfileContent, GarbageIsNotAProfileAndDoesNotCrash) {
  for (std::string garbage :
       {std::string("not a profile at all"), std::string(""), std::string("\x30\x82\xff\xff garbage", 13),
        std::string("\x30", 1), std::string(1000, '\x30'), std::string("bplist00\x01\x02", 10)}) {
    auto counted = count_accounts(garbage);
    EXPECT_FALSE(counted.is_profile);
    EXPECT_EQ(counted.accounts, 0u);
  }
  // A valid plist that is not a profile.
  auto counted = count_accounts(plist::to_xml(plist::Value("com.apple.mail.managed")));
  EXPECT_TRUE(counted.unwrapped);
  EXPECT_FALSE(counted.is_profile);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(ProfileContent, TruncatedSignedProfileIsNotAProfile) {
  auto der = sign_profile(signer().device, profile_xml({payload("com.apple.mail.managed", "m")}));
  ASSERT_TRUE(der) << der.message();
  for (std::size_t keep : {der->size() - 1, der->size() / 2, std::size_t{4}}) {
    auto counted = count_accounts(std::string_view(*der).substr(0, keep));
    EXPECT_FALSE(counted.is_profile) << keep;
  }
}

TEST(ProfileContent, DetachedSignatureHasNoProfileInside) {
  auto header = mdm_signature(signer().device, "body");
  ASSERT_TRUE(header) << header.message();
  auto content = profile_content(base64_decode(*header));
  ASSERT_FALSE(content);
  EXPECT_NE(content.message().find("detached"), std::string::npos) << content.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(ProfileContent, OversizedPayloadIsRefused) {
  auto content = profile_content(std::string(kMaxProfileBytes + 1, '<'));
  ASSERT_FALSE(content);
  EXPECT_NE(content.message().find("limit"), std::string::npos) << content.message();
  EXPECT_TRUE(profile_content(std::string(kMaxProfileBytes, '<')));
}

TEST(SignProfile, BadIdentityIsAnError) {
  auto der = sign_profile(Identity{"not pem", "not pem", ""}, "x");
  ASSERT_FALSE(der);
  EXPECT_NE(der.message().find("sign_profile"), std::string::npos) << der.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(VerifySignedProfile, SignerChainingToTheGivenCaIsVerified) {
  auto xml = profile_xml({payload("com.apple.mdm", "m")});
  auto der = sign_profile(signer().device, xml);
  ASSERT_TRUE(der) << der.message();
  auto checked = verify_signed_profile(*der, signer().ca.cert_pem);
  ASSERT_TRUE(checked) << checked.message();
  EXPECT_EQ(checked->status, ProfileSignatureStatus::verified) << checked->detail;
  EXPECT_EQ(checked->content, xml);
  EXPECT_EQ(checked->signer_subject, "CN=profile signer");
  EXPECT_EQ(checked->detail, "");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(VerifySignedProfile, SignerChainingElsewhereIsUntrustedWithTheContentRead) {
  auto other = create_test_ca("mdmconform other profile CA");
  ASSERT_TRUE(other) << other.message();
  auto xml = profile_xml({payload("com.apple.mdm", "m")});
  auto der = sign_profile(signer().device, xml);
  ASSERT_TRUE(der) << der.message();
  // Another CA, and the system's store (which holds no test CA).
  for (const std::string& trusted : {other->cert_pem, std::string()}) {
    auto checked = verify_signed_profile(*der, trusted);
    ASSERT_TRUE(checked) << checked.message();
    EXPECT_EQ(checked->status, ProfileSignatureStatus::untrusted);
    EXPECT_EQ(checked->content, xml);
    EXPECT_EQ(checked->signer_subject, "CN=profile signer");
    EXPECT_NE(checked->detail.find("signer not trusted"), std::string::npos) << checked->detail;
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(VerifySignedProfile, ChangedContentIsInvalid) {
  auto xml = profile_xml({payload("com.apple.mdm", "m")});
  auto der = sign_profile(signer().device, xml);
  ASSERT_TRUE(der) << der.message();
  const auto at = der->find("org.example.m");
  ASSERT_NE(at, std::string::npos);
  std::string tampered = *der;
  tampered[at] = 'x';  // the same length: the DER still parses, the digest no longer matches
  auto checked = verify_signed_profile(tampered, signer().ca.cert_pem);
  ASSERT_TRUE(checked) << checked.message();
  EXPECT_EQ(checked->status, ProfileSignatureStatus::invalid);
  EXPECT_NE(checked->content.find("xrg.example.m"), std::string::npos);
  EXPECT_NE(checked->detail.find("signature does not hold"), std::string::npos) << checked->detail;
  // Bytes after the SignedData make it invalid too.
  auto trailing = verify_signed_profile(*der + "x", signer().ca.cert_pem);
  ASSERT_TRUE(trailing) << trailing.message();
  EXPECT_EQ(trailing->status, ProfileSignatureStatus::invalid);
  EXPECT_NE(trailing->detail.find("1 bytes after"), std::string::npos) << trailing->detail;
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(VerifySignedProfile, NothingToCheckIsAFailure) {
  auto header = mdm_signature(signer().device, "body");
  ASSERT_TRUE(header) << header.message();
  auto detached = verify_signed_profile(base64_decode(*header), signer().ca.cert_pem);
  ASSERT_FALSE(detached);
  EXPECT_NE(detached.message().find("detached"), std::string::npos) << detached.message();
  for (std::string garbage : {std::string(""), std::string("<plist/>"), std::string("\x30\x82\xff\xff", 4)}) {
    auto checked = verify_signed_profile(garbage, signer().ca.cert_pem);
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.message().find("not CMS"), std::string::npos) << checked.message();
  }
  EXPECT_FALSE(verify_signed_profile(std::string(kMaxProfileBytes + 1, '0'), signer().ca.cert_pem));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace mdmc::pki
