#include "harness/enroll/enrollment_profile.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "harness/base/bytes.hpp"
#include "harness/net/http_server.hpp"
#include "harness/pki/pki.hpp"
#include "harness/pki/signed_profile.hpp"
#include "harness/plist/value.hpp"
#include "harness/testing/plists.hpp"
#include "harness/testing/raw_peer.hpp"
#include "harness/testing/test_certs.hpp"

namespace mdmc::enroll {
namespace {

namespace chr = std::chrono;
using plist::Array;
using plist::Dict;
using plist::Value;

constexpr char kScepUuid[] = "9D4A3F7E-2B1C-4E5D-8F6A-1B2C3D4E5F60";
constexpr char kMdmUuid[] = "3C9B1E20-7A4D-4F6B-9E21-5D8C7B6A5F40";
constexpr char kRootUuid[] = "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D";
constexpr char kTopic[] = "com.apple.mgmt.External.2ac1a2b8-6f58-4d9b-9a4e-0b5b0f6b7c1d";

// The CA a root payload carries and the identities that sign profiles, made once.
struct Pki {
  pki::Identity ca;
  pki::Identity signer;
  pki::Identity other_ca;
};
const Pki& test_pki() {
  static const Pki made = [] {
    auto ca = pki::create_test_ca("enrollment profile test CA");
    EXPECT_TRUE(ca) << ca.message();
    auto signer = pki::issue_device_identity(*ca, "profile signer", pki::KeyType::ec_p256);
    EXPECT_TRUE(signer) << signer.message();
    auto other = pki::create_test_ca("another CA");
    EXPECT_TRUE(other) << other.message();
    return Pki{*ca, *signer, *other};
  }();
  return made;
}

std::string ca_der() {
  auto der = pki::certificate_der(test_pki().ca.cert_pem);
  EXPECT_TRUE(der) << der.message();
  return der.value_or("");
}

// MicroMDM's mdm/enroll/service.go MakeEnrollmentProfile: a SCEP payload, the MDM payload that
// names it, the SCEP CA as a root payload.
Dict micromdm_scep_payload() {
  Dict payload = testing::profile_payload("com.apple.security.scep", kScepUuid);
  payload["PayloadContent"] =
      Dict{{"URL", "https://mdm.example.org/scep"},
           {"Keysize", 2048},
           {"Key Type", "RSA"},
           {"Key Usage", 5},
           {"Name", "Device Management Identity Certificate"},
           {"Subject", Array{Value(Array{Value(Array{"O", "MicroMDM"})}),
                             Value(Array{Value(Array{"CN", "MicroMDM Identity (%ComputerName%)"})})}},
           {"Challenge", "sekrit"}};
  return payload;
}

Dict micromdm_mdm_payload() {
  Dict payload = testing::profile_payload("com.apple.mdm", kMdmUuid);
  payload["AccessRights"] = 8191;
  payload["CheckInURL"] = "https://mdm.example.org/mdm/checkin";
  payload["CheckOutWhenRemoved"] = true;
  payload["IdentityCertificateUUID"] = kScepUuid;
  payload["ServerCapabilities"] = Array{"com.apple.mdm.per-user-connections"};
  payload["ServerURL"] = "https://mdm.example.org/mdm/connect";
  payload["SignMessage"] = true;
  payload["Topic"] = kTopic;
  return payload;
}

Dict root_payload(std::string bytes, const char* uuid = kRootUuid) {
  Dict payload = testing::profile_payload("com.apple.security.root", uuid);
  payload["PayloadContent"] = plist::Data{std::move(bytes)};
  return payload;
}

plist::Value profile_of(Array content) {
  plist::Value profile = testing::configuration_profile(std::move(content));
  (*profile.as_dict())["PayloadScope"] = "System";
  (*profile.as_dict())["PayloadIdentifier"] = "com.github.micromdm.micromdm.enroll";
  return profile;
}

plist::Value micromdm_profile() {
  return profile_of({micromdm_scep_payload(), micromdm_mdm_payload(), root_payload(ca_der())});
}

// NanoMDM's docs/enroll.mobileconfig: no CheckInURL (check-ins go to ServerURL), no root payload.
plist::Value nanomdm_profile() {
  Dict scep = testing::profile_payload("com.apple.security.scep", kScepUuid);
  scep["PayloadIdentifier"] = "com.github.micromdm.scep";
  scep["PayloadContent"] = Dict{{"Key Type", "RSA"},
                                {"Challenge", "SCEP-CHALLENGE-HERE"},
                                {"Key Usage", 5},
                                {"Keysize", 2048},
                                {"URL", "https://mdm.example.org/scep"}};
  Dict mdm = micromdm_mdm_payload();
  mdm.erase("CheckInURL");
  mdm["ServerURL"] = "https://mdm.example.org/mdm";
  return profile_of({scep, mdm});
}

EnrollmentProfile read_ok(std::string_view bytes, const std::string& trusted = {}) {
  auto read = read_enrollment_profile(bytes, trusted);
  EXPECT_TRUE(read) << read.message();
  return read.value_or(EnrollmentProfile{});
}

EnrollmentProfile read_value(const plist::Value& profile) { return read_ok(plist::to_xml(profile)); }

// The profile's problems joined, for messages and substring checks.
std::string joined(const EnrollmentProfile& profile) {
  std::string out;
  for (const auto& problem : profile.problems) out += problem + "\n";
  return out;
}

bool has_problem(const EnrollmentProfile& profile, std::string_view text) {
  return std::any_of(profile.problems.begin(), profile.problems.end(),
                     [&](const std::string& problem) { return problem.find(text) != std::string::npos; });
}

plist::Value with_mdm_key(std::string key, plist::Value value) {
  plist::Value profile = micromdm_profile();
  auto& mdm = *(*(*profile.as_dict())["PayloadContent"].as_array())[1].as_dict();
  mdm[std::move(key)] = std::move(value);
  return profile;
}

TEST(ReadEnrollmentProfile, MicroMdmShapeHoldsAndEveryPartIsRead) {
  const std::string xml = plist::to_xml(micromdm_profile());
  const auto profile = read_ok(xml);
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  EXPECT_EQ(profile.sha256, base::sha256_hex(xml));
  EXPECT_EQ(profile.signature, ProfileSignature::unsigned_profile);
  ASSERT_TRUE(profile.mdm);
  EXPECT_EQ(profile.mdm->payload_uuid, kMdmUuid);
  EXPECT_EQ(profile.mdm->server_url, "https://mdm.example.org/mdm/connect");
  EXPECT_EQ(profile.mdm->check_in_url, "https://mdm.example.org/mdm/checkin");
  EXPECT_EQ(profile.mdm->topic, kTopic);
  EXPECT_EQ(profile.mdm->identity_certificate_uuid, kScepUuid);
  EXPECT_EQ(profile.mdm->sign_message, true);
  EXPECT_EQ(profile.mdm->check_out_when_removed, true);
  EXPECT_EQ(profile.mdm->access_rights, 8191);
  EXPECT_FALSE(profile.mdm->use_development_apns);
  EXPECT_TRUE(profile.mdm->per_user_connections());

  ASSERT_TRUE(profile.identity);
  EXPECT_EQ(profile.identity->kind, IdentityKind::scep);
  EXPECT_EQ(profile.identity->payload_type, "com.apple.security.scep");
  EXPECT_EQ(profile.identity->payload_uuid, kScepUuid);
  const ScepRequest& scep = profile.identity->scep;
  EXPECT_EQ(scep.url, "https://mdm.example.org/scep");
  EXPECT_EQ(scep.ca_name, "Device Management Identity Certificate");
  EXPECT_EQ(scep.subject, (std::vector<std::vector<SubjectAttribute>>{{{"O", "MicroMDM"}},
                                                                      {{"CN", "MicroMDM Identity (%ComputerName%)"}}}));
  EXPECT_EQ(scep.challenge, "sekrit");
  EXPECT_EQ(scep.key_size, 2048);
  EXPECT_EQ(scep.key_type, "RSA");
  EXPECT_EQ(scep.key_usage, 5);
  EXPECT_EQ(scep.retries, 3);  // Apple's defaults where the payload says nothing
  EXPECT_EQ(scep.retry_delay_seconds, 10);

  ASSERT_EQ(profile.cas.size(), 1u);
  EXPECT_EQ(profile.cas[0].payload_type, "com.apple.security.root");
  EXPECT_EQ(profile.cas[0].payload_uuid, kRootUuid);
  EXPECT_EQ(pki::certificate_der(profile.cas[0].cert_pem).value_or(""), ca_der());
}

TEST(ReadEnrollmentProfile, NanoMdmShapeWithoutCheckInUrlHolds) {
  const auto profile = read_value(nanomdm_profile());
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  ASSERT_TRUE(profile.mdm);
  EXPECT_FALSE(profile.mdm->check_in_url);
  EXPECT_EQ(profile.mdm->server_url, "https://mdm.example.org/mdm");
  ASSERT_TRUE(profile.identity);
  EXPECT_EQ(profile.identity->scep.challenge, "SCEP-CHALLENGE-HERE");
  EXPECT_TRUE(profile.identity->scep.subject.empty());
  EXPECT_TRUE(profile.cas.empty());
}

TEST(ReadEnrollmentProfile, BinaryPlistReadsAsTheXmlDoes) {
  const auto from_binary = read_ok(plist::to_binary(micromdm_profile()));
  EXPECT_TRUE(from_binary.problems.empty()) << joined(from_binary);
  ASSERT_TRUE(from_binary.mdm);
  EXPECT_EQ(from_binary.mdm->server_url, "https://mdm.example.org/mdm/connect");
  ASSERT_TRUE(from_binary.identity);
  EXPECT_EQ(from_binary.identity->scep.url, "https://mdm.example.org/scep");
  EXPECT_EQ(from_binary.cas.size(), 1u);
}

TEST(ReadEnrollmentProfile, SignedProfileIsVerifiedAgainstItsCa) {
  const std::string xml = plist::to_xml(micromdm_profile());
  auto der = pki::sign_profile(test_pki().signer, xml);
  ASSERT_TRUE(der) << der.message();
  const auto profile = read_ok(*der, test_pki().ca.cert_pem);
  EXPECT_EQ(profile.signature, ProfileSignature::verified) << profile.signature_detail;
  EXPECT_EQ(profile.signer_subject, "CN=profile signer");
  EXPECT_EQ(profile.sha256, base::sha256_hex(*der));
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  ASSERT_TRUE(profile.mdm);
  EXPECT_EQ(profile.mdm->topic, kTopic);
}

TEST(ReadEnrollmentProfile, SignedProfileFromAnotherCaIsUntrustedButNotAProblem) {
  auto der = pki::sign_profile(test_pki().signer, plist::to_xml(micromdm_profile()));
  ASSERT_TRUE(der) << der.message();
  const auto profile = read_ok(*der, test_pki().other_ca.cert_pem);
  EXPECT_EQ(profile.signature, ProfileSignature::untrusted);
  EXPECT_NE(profile.signature_detail.find("not trusted"), std::string::npos) << profile.signature_detail;
  EXPECT_EQ(profile.signer_subject, "CN=profile signer");
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  EXPECT_TRUE(profile.mdm);
}

TEST(ReadEnrollmentProfile, TamperedSignedProfileIsInvalidAndAProblem) {
  auto der = pki::sign_profile(test_pki().signer, plist::to_xml(micromdm_profile()));
  ASSERT_TRUE(der) << der.message();
  std::string tampered = *der;
  const auto at = tampered.find("mdm.example.org/mdm/connect");
  ASSERT_NE(at, std::string::npos);
  tampered[at] = 'n';  // the URL now names nmm.example.org: same length, other bytes
  const auto profile = read_ok(tampered, test_pki().ca.cert_pem);
  EXPECT_EQ(profile.signature, ProfileSignature::invalid);
  EXPECT_TRUE(has_problem(profile, "signature: the profile's CMS signature does not hold")) << joined(profile);
  ASSERT_TRUE(profile.mdm);  // still read, for the report
  EXPECT_EQ(profile.mdm->server_url, "https://ndm.example.org/mdm/connect");
}

TEST(ReadEnrollmentProfile, TwoMdmPayloadsAreAProblemAndNoMdmIsTaken) {
  Dict second = micromdm_mdm_payload();
  second["PayloadUUID"] = "00000000-0000-4000-8000-000000000002";
  const auto profile = read_value(profile_of({micromdm_scep_payload(), micromdm_mdm_payload(), second}));
  EXPECT_FALSE(profile.mdm);
  EXPECT_FALSE(profile.identity);
  EXPECT_TRUE(has_problem(profile, "com.apple.mdm: the profile has 2 com.apple.mdm payloads; macOS takes one"))
      << joined(profile);
}

TEST(ReadEnrollmentProfile, NoMdmPayloadIsAProblem) {
  const auto profile = read_value(profile_of({micromdm_scep_payload()}));
  EXPECT_FALSE(profile.mdm);
  EXPECT_EQ(profile.problems, std::vector<std::string>{"com.apple.mdm: the profile has no com.apple.mdm payload"});
}

TEST(ReadEnrollmentProfile, MissingIdentityPayloadIsAProblem) {
  const auto profile = read_value(profile_of({micromdm_mdm_payload(), root_payload(ca_der())}));
  ASSERT_TRUE(profile.mdm);
  EXPECT_FALSE(profile.identity);
  EXPECT_EQ(profile.problems, std::vector<std::string>{"com.apple.mdm: IdentityCertificateUUID "
                                                       "\"9D4A3F7E-2B1C-4E5D-8F6A-1B2C3D4E5F60\" names no payload "
                                                       "in the profile"});
}

TEST(ReadEnrollmentProfile, IdentityNamingACertificateOnlyPayloadIsAProblem) {
  plist::Value profile_value = with_mdm_key("IdentityCertificateUUID", kRootUuid);
  const auto profile = read_value(profile_value);
  ASSERT_TRUE(profile.identity);
  EXPECT_EQ(profile.identity->kind, IdentityKind::other);
  EXPECT_TRUE(has_problem(profile,
                          "com.apple.mdm: IdentityCertificateUUID names com.apple.security.root, a "
                          "com.apple.security.root payload, which holds no identity"))
      << joined(profile);
}

TEST(ReadEnrollmentProfile, HttpUrlsAreProblems) {
  plist::Value value = with_mdm_key("ServerURL", "http://mdm.example.org/mdm");
  auto& mdm = *(*(*value.as_dict())["PayloadContent"].as_array())[1].as_dict();
  mdm["CheckInURL"] = "http://mdm.example.org/checkin";
  const auto profile = read_value(value);
  EXPECT_EQ(profile.problems,
            (std::vector<std::string>{
                "com.apple.mdm: ServerURL \"http://mdm.example.org/mdm\" is not an https URL (Apple's schema: "
                "^https://.*$)",
                "com.apple.mdm: CheckInURL \"http://mdm.example.org/checkin\" is not an https URL (Apple's schema: "
                "^https://.*$)",
            }));
  ASSERT_TRUE(profile.mdm);
  EXPECT_EQ(profile.mdm->server_url, "http://mdm.example.org/mdm");  // read as written, for the report
}

TEST(ReadEnrollmentProfile, WrongTopicIsAProblem) {
  const auto profile = read_value(with_mdm_key("Topic", "com.example.push"));
  EXPECT_EQ(profile.problems,
            std::vector<std::string>{"com.apple.mdm: Topic \"com.example.push\" does not begin com.apple.mgmt."});
}

TEST(ReadEnrollmentProfile, KeysOfTheWrongTypeAreProblemsAndNotRead) {
  plist::Value value = with_mdm_key("SignMessage", "true");
  auto& mdm = *(*(*value.as_dict())["PayloadContent"].as_array())[1].as_dict();
  mdm["Topic"] = 7;
  mdm["ServerCapabilities"] = "com.apple.mdm.per-user-connections";
  const auto profile = read_value(value);
  EXPECT_EQ(profile.problems, (std::vector<std::string>{
                                  "com.apple.mdm: Topic is <integer>, Apple's schema says <string>",
                                  "com.apple.mdm: SignMessage is <string>, Apple's schema says <boolean>",
                                  "com.apple.mdm: ServerCapabilities is <string>, Apple's schema says <array>",
                              }));
  ASSERT_TRUE(profile.mdm);
  EXPECT_FALSE(profile.mdm->sign_message);
  EXPECT_EQ(profile.mdm->topic, "");
  EXPECT_FALSE(profile.mdm->per_user_connections());
}

TEST(ReadEnrollmentProfile, FormatsAndAllowedValuesOfTheMdmPayloadAreChecked) {
  plist::Value value = with_mdm_key("IdentityCertificateUUID", "scep-1");
  auto& content = *(*value.as_dict())["PayloadContent"].as_array();
  (*content[0].as_dict())["PayloadUUID"] = "scep-1";
  (*content[1].as_dict())["ServerCapabilities"] = Array{"com.apple.mdm.per-user-connections", "com.example.x"};
  const auto profile = read_value(value);
  EXPECT_EQ(profile.problems,
            (std::vector<std::string>{
                "com.apple.mdm: IdentityCertificateUUID \"scep-1\" does not match the format (Apple's schema: "
                "^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$)",
                "com.apple.mdm: ServerCapabilities[1] is \"com.example.x\", Apple's schema allows "
                "com.apple.mdm.per-user-connections, com.apple.mdm.bootstraptoken, com.apple.mdm.token",
            }));
  ASSERT_TRUE(profile.identity);  // named all the same
  EXPECT_EQ(profile.identity->kind, IdentityKind::scep);
}

TEST(ReadEnrollmentProfile, MissingRequiredKeysAreProblemsNamingPayloadAndKey) {
  plist::Value value = micromdm_profile();
  auto& content = *(*value.as_dict())["PayloadContent"].as_array();
  content[1].as_dict()->erase("Topic");
  content[1].as_dict()->erase("PayloadIdentifier");
  (*content[0].as_dict())["PayloadContent"].as_dict()->erase("URL");
  const auto profile = read_value(value);
  EXPECT_EQ(profile.problems, (std::vector<std::string>{
                                  "com.apple.security.scep: PayloadContent.URL is missing (Apple's schema requires it)",
                                  "com.apple.mdm: PayloadIdentifier is missing (Apple's schema requires it)",
                                  "com.apple.mdm: Topic is missing (Apple's schema requires it)",
                              }));
}

TEST(ReadEnrollmentProfile, AccessRightsFollowTheSchemasBitRules) {
  EXPECT_EQ(read_value(with_mdm_key("AccessRights", 0)).problems,
            std::vector<std::string>{"com.apple.mdm: AccessRights 0 grants nothing; Apple's schema says not to set it "
                                     "to 0"});
  EXPECT_EQ(read_value(with_mdm_key("AccessRights", 2 | 128 | 64)).problems,
            std::vector<std::string>{"com.apple.mdm: AccessRights 194 sets 2 without 1 (Apple's schema: specify 1 if "
                                     "you specify 2)"});
  EXPECT_EQ(read_value(with_mdm_key("AccessRights", 8191 + 8192)).problems,
            std::vector<std::string>{"com.apple.mdm: AccessRights 16383 sets bits Apple's schema does not define "
                                     "(8191 is every right)"});
  EXPECT_TRUE(read_value(with_mdm_key("AccessRights", 1 | 2 | 64 | 128)).problems.empty());
}

TEST(ReadEnrollmentProfile, TopLevelKeysAreChecked) {
  plist::Value value = micromdm_profile();
  (*value.as_dict())["PayloadType"] = "Profile";
  value.as_dict()->erase("PayloadVersion");
  (*value.as_dict())["PayloadScope"] = "Device";
  const auto profile = read_value(value);
  EXPECT_EQ(profile.problems, (std::vector<std::string>{
                                  "top level: PayloadType is \"Profile\", Apple's schema allows Configuration",
                                  "top level: PayloadVersion is missing (Apple's schema requires it)",
                                  "top level: PayloadScope is \"Device\", Apple's schema allows System, User",
                              }));
  plist::Value not_an_array = micromdm_profile();
  (*not_an_array.as_dict())["PayloadContent"] = Dict{};
  const auto without = read_value(not_an_array);
  EXPECT_TRUE(has_problem(without, "top level: PayloadContent is <dictionary>, Apple's schema says <array>"))
      << joined(without);
  EXPECT_TRUE(has_problem(without, "com.apple.mdm: the profile has no com.apple.mdm payload")) << joined(without);
}

TEST(ReadEnrollmentProfile, Pkcs12IdentityIsRead) {
  Dict pkcs12 = testing::profile_payload("com.apple.security.pkcs12", kScepUuid);
  pkcs12["PayloadContent"] = plist::Data{std::string("\x30\x82\x01\x00 p12 bytes", 14)};
  pkcs12["Password"] = "p12-password";
  const auto profile = read_value(profile_of({pkcs12, micromdm_mdm_payload()}));
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  ASSERT_TRUE(profile.identity);
  EXPECT_EQ(profile.identity->kind, IdentityKind::pkcs12);
  EXPECT_EQ(profile.identity->pkcs12_der, std::string("\x30\x82\x01\x00 p12 bytes", 14));
  EXPECT_EQ(profile.identity->pkcs12_password, "p12-password");

  pkcs12["PayloadContent"] = "base64 text, not data";
  const auto mistyped = read_value(profile_of({pkcs12, micromdm_mdm_payload()}));
  EXPECT_EQ(mistyped.problems, std::vector<std::string>{"com.apple.security.pkcs12: PayloadContent is <string>, "
                                                        "Apple's schema says <data>"});
  EXPECT_EQ(mistyped.identity->pkcs12_der, "");
}

TEST(ReadEnrollmentProfile, AcmeIdentityIsReadAndItsRequiredKeysChecked) {
  Dict acme = testing::profile_payload("com.apple.security.acme", kScepUuid);
  acme["DirectoryURL"] = "https://acme.example.org/directory";
  acme["ClientIdentifier"] = "client-1";
  acme["KeySize"] = 384;
  acme["KeyType"] = "ECSECPrimeRandom";
  acme["HardwareBound"] = true;
  acme["Subject"] = Array{Value(Array{Value(Array{"CN", "device"})})};
  const auto profile = read_value(profile_of({acme, micromdm_mdm_payload()}));
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  ASSERT_TRUE(profile.identity);
  EXPECT_EQ(profile.identity->kind, IdentityKind::acme);
  EXPECT_EQ(profile.identity->acme_directory_url, "https://acme.example.org/directory");

  acme.erase("HardwareBound");
  acme["KeyType"] = "DSA";
  const auto broken = read_value(profile_of({acme, micromdm_mdm_payload()}));
  EXPECT_EQ(broken.problems, (std::vector<std::string>{
                                 "com.apple.security.acme: KeyType is \"DSA\", Apple's schema allows RSA, "
                                 "ECSECPrimeRandom",
                                 "com.apple.security.acme: HardwareBound is missing (Apple's schema requires it)",
                             }));
}

TEST(ReadEnrollmentProfile, ScepPayloadDetailsAreRead) {
  Dict scep = micromdm_scep_payload();
  auto& content = *scep["PayloadContent"].as_dict();
  content["CAFingerprint"] = plist::Data{std::string(32, '\x5a')};
  content["Retries"] = 7;
  content["RetryDelay"] = -4;
  content["SubjectAltName"] = Dict{{"dNSName", Array{"a.example", "b.example"}}, {"rfc822Name", "mac@example.org"}};
  content["Subject"] = Array{Array{Array{"C", "US"}, Array{"O", "Example"}},
                             Value(Array{Value(Array{"0.9.2342.19200300.100.1.1", "u"})})};
  const auto profile = read_value(profile_of({scep, micromdm_mdm_payload()}));
  EXPECT_TRUE(profile.problems.empty()) << joined(profile);
  ASSERT_TRUE(profile.identity);
  const ScepRequest& request = profile.identity->scep;
  EXPECT_EQ(request.ca_fingerprint, std::string(32, '\x5a'));
  EXPECT_EQ(request.retries, 7);
  EXPECT_EQ(request.retry_delay_seconds, 0);
  EXPECT_EQ(request.subject_alt_names.at("dNSName"), (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(request.subject_alt_names.at("rfc822Name"), std::vector<std::string>{"mac@example.org"});
  EXPECT_EQ(request.subject, (std::vector<std::vector<SubjectAttribute>>{{{"C", "US"}, {"O", "Example"}},
                                                                         {{"0.9.2342.19200300.100.1.1", "u"}}}));
}

TEST(ReadEnrollmentProfile, CaPayloadsTakeDerOrPemAndRefuseOtherBytes) {
  Dict pkcs1 = testing::profile_payload("com.apple.security.pkcs1", "B1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D");
  pkcs1["PayloadContent"] = plist::Data{test_pki().other_ca.cert_pem};
  Dict garbage = root_payload("not a certificate", "C1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D");
  const auto profile =
      read_value(profile_of({micromdm_scep_payload(), micromdm_mdm_payload(), root_payload(ca_der()), pkcs1, garbage}));
  ASSERT_EQ(profile.cas.size(), 2u);
  EXPECT_EQ(profile.cas[0].payload_type, "com.apple.security.root");
  EXPECT_EQ(profile.cas[1].payload_type, "com.apple.security.pkcs1");
  EXPECT_EQ(profile.cas[1].cert_pem, test_pki().other_ca.cert_pem);
  ASSERT_EQ(profile.problems.size(), 1u) << joined(profile);
  EXPECT_TRUE(profile.problems[0].starts_with(
      "com.apple.security.root (PayloadContent[4]): PayloadContent is not a certificate, DER or PEM"))
      << profile.problems[0];
}

TEST(ReadEnrollmentProfile, WhatIsNotAProfileFailsInWords) {
  auto garbage = read_enrollment_profile("this is not a profile", "");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.message().find("neither a plist nor CMS SignedData"), std::string::npos) << garbage.message();
  auto der_garbage = read_enrollment_profile(std::string("\x30\x03\x02\x01\x01", 5), "");
  ASSERT_FALSE(der_garbage);
  EXPECT_NE(
      der_garbage.message().find("neither a plist nor CMS SignedData with content: verify_signed_profile: not CMS"),
      std::string::npos)
      << der_garbage.message();
  auto array = read_enrollment_profile(plist::to_xml(Array{"a"}), "");
  ASSERT_FALSE(array);
  EXPECT_NE(array.message().find("the plist's top is <array>, not a <dictionary>"), std::string::npos)
      << array.message();
  auto empty = read_enrollment_profile("", "");
  EXPECT_FALSE(empty);
}

TEST(ReadEnrollmentProfile, OverTheCapIsRefusedBeforeParsing) {
  std::string xml = plist::to_xml(micromdm_profile());
  xml.insert(xml.find("<dict>"), kMaxEnrollmentProfileBytes + 1 - xml.size(), ' ');
  ASSERT_EQ(xml.size(), kMaxEnrollmentProfileBytes + 1);
  auto over = read_enrollment_profile(xml, "");
  ASSERT_FALSE(over);
  EXPECT_NE(over.message().find("over the limit of 1048576"), std::string::npos) << over.message();
}

TEST(ReadEnrollmentProfile, DamagedBytesNeverCrash) {
  // Every truncation and a spread of byte flips of a plain and a signed profile: each reads or
  // fails, in words.
  const std::string xml = plist::to_xml(micromdm_profile());
  const std::string binary = plist::to_binary(micromdm_profile());
  auto der = pki::sign_profile(test_pki().signer, xml);
  ASSERT_TRUE(der) << der.message();
  std::mt19937 random(14);
  int read = 0;
  int failed = 0;
  const std::string& signed_der = *der;
  for (const std::string* original : {&xml, &binary, &signed_der}) {
    for (std::size_t keep = 0; keep < original->size(); keep += std::max<std::size_t>(1, original->size() / 97)) {
      auto result = read_enrollment_profile(std::string_view(*original).substr(0, keep), test_pki().ca.cert_pem);
      (result ? read : failed)++;
    }
    for (int round = 0; round < 200; ++round) {
      std::string damaged = *original;
      for (int flips = 0; flips < 3; ++flips) {
        damaged[random() % damaged.size()] = static_cast<char>(random() & 0xff);
      }
      auto result = read_enrollment_profile(damaged, test_pki().ca.cert_pem);
      (result ? read : failed)++;
      if (result) {
        EXPECT_EQ(result->sha256, base::sha256_hex(damaged));
      }
    }
  }
  EXPECT_GT(read, 0);
  EXPECT_GT(failed, 0);
}

TEST(FillDeviceVariables, FillsSubjectSubjectAltNamesAndChallenge) {
  ScepRequest request;
  request.subject = {{{"O", "MicroMDM"}}, {{"CN", "MicroMDM Identity (%ComputerName%)"}}};
  request.subject_alt_names["dNSName"] = {"%SerialNumber%.example.org"};
  request.subject_alt_names["uniformResourceIdentifier"] = {"urn:udid:%UDID%", "urn:hw:%HardwareUUID%"};
  request.challenge = "%UDID%-%Unknown%-%SerialNumber";
  request.url = "https://%ComputerName%/scep";
  const auto filled = fill_device_variables(
      request, {{"ComputerName", "mac-1"}, {"%SerialNumber%", "C02X"}, {"UDID", "%UDID%x"}, {"HardwareUUID", "HW-1"}});
  EXPECT_EQ(filled.subject[1][0].second, "MicroMDM Identity (mac-1)");
  EXPECT_EQ(filled.subject[0][0].second, "MicroMDM");
  EXPECT_EQ(filled.subject_alt_names.at("dNSName")[0], "C02X.example.org");
  EXPECT_EQ(filled.subject_alt_names.at("uniformResourceIdentifier"),
            (std::vector<std::string>{"urn:udid:%UDID%x", "urn:hw:HW-1"}));
  // Filled once (a value holding a variable stays as it is); unknown names and an unclosed one stay.
  EXPECT_EQ(filled.challenge, "%UDID%x-%Unknown%-%SerialNumber");
  EXPECT_EQ(filled.url, "https://%ComputerName%/scep");  // only Subject, SubjectAltName, Challenge
  const auto missing = fill_device_variables(request, {});
  EXPECT_EQ(missing.subject[1][0].second, "MicroMDM Identity (%ComputerName%)");
}

// A loopback server that answers every request with one response and keeps the requests.
class ProfileServer {
 public:
  explicit ProfileServer(net::ServerResponse response, std::optional<net::ServerTls> tls = std::nullopt)
      : scheme_(tls ? "https" : "http") {
    server_ = std::make_unique<net::HttpServer>(
        [this, response](const net::ServerRequest& request) {
          std::lock_guard lock(mutex_);
          requests_.push_back(request);
          return response;
        },
        net::ServerLimits{}, std::move(tls));
    auto port = server_->listen("127.0.0.1", 0);
    EXPECT_TRUE(port) << port.message();
    port_ = port.value_or(0);
    server_->start(1);
  }
  std::string url(std::string_view path = "/mdm/enroll") const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  std::vector<net::ServerRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  std::string scheme_;
  std::unique_ptr<net::HttpServer> server_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::vector<net::ServerRequest> requests_;
};

ProfileSource source_for(std::string url) {
  ProfileSource source;
  source.url = std::move(url);
  source.limits.connect_timeout = chr::milliseconds{2000};
  source.limits.header_timeout = chr::milliseconds{2000};
  source.limits.body_timeout = chr::milliseconds{1500};
  return source;
}

net::ServerResponse answer(int status, std::string body,
                           std::string content_type = "application/x-apple-aspen-config") {
  net::ServerResponse response;
  response.status = status;
  response.body = std::move(body);
  if (!content_type.empty()) response.headers.push_back({"Content-Type", std::move(content_type)});
  return response;
}

TEST(FetchEnrollmentProfile, GetsTheProfileWithBasicAuthAndHeaders) {
  const std::string xml = plist::to_xml(micromdm_profile());
  ProfileServer server(answer(200, xml));
  ProfileSource source = source_for(server.url());
  source.basic_user = "admin";
  source.basic_password = "pa:ss";
  source.headers["X-Enroll-Token"] = "t-1";
  auto fetched = fetch_enrollment_profile(source);
  ASSERT_TRUE(fetched) << fetched.message();
  EXPECT_EQ(fetched->bytes, xml);
  EXPECT_EQ(fetched->exchange.request.method, "GET");
  ASSERT_TRUE(fetched->exchange.response);
  EXPECT_EQ(fetched->exchange.response->status, 200);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/mdm/enroll");
  EXPECT_EQ(net::find_header(requests[0].headers, "Authorization"), "Basic " + base::base64_encode("admin:pa:ss"));
  EXPECT_EQ(net::find_header(requests[0].headers, "X-Enroll-Token"), "t-1");
  EXPECT_TRUE(read_enrollment_profile(fetched->bytes, "")->problems.empty());
}

TEST(FetchEnrollmentProfile, OverHttpsTheServerIsVerifiedAgainstTheGivenCa) {
  const auto& tls_pki = testing::test_pki();
  ProfileServer server(answer(200, plist::to_xml(nanomdm_profile())),
                       net::ServerTls{tls_pki.server.cert_pem, tls_pki.server.key_pem, "", false});
  ProfileSource source = source_for(server.url());
  source.tls.trusted_ca_pem = tls_pki.ca.cert_pem;
  auto fetched = fetch_enrollment_profile(source);
  ASSERT_TRUE(fetched) << fetched.message();
  EXPECT_TRUE(fetched->exchange.tls_verified);
  source.tls.trusted_ca_pem = tls_pki.other_ca.cert_pem;
  auto untrusted = fetch_enrollment_profile(source);
  ASSERT_FALSE(untrusted);
  EXPECT_NE(untrusted.message().find("no profile: tls_untrusted_certificate"), std::string::npos)
      << untrusted.message();
}

TEST(FetchEnrollmentProfile, WithoutBasicUserSendsNoAuthorization) {
  ProfileServer server(answer(200, "<plist/>"));
  ASSERT_TRUE(fetch_enrollment_profile(source_for(server.url())));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_FALSE(net::find_header(server.requests()[0].headers, "Authorization"));
}

TEST(FetchEnrollmentProfile, RefusesOtherStatusesWithUrlAndStatus) {
  ProfileServer server(answer(401, "who are you", "text/plain"));
  auto fetched = fetch_enrollment_profile(source_for(server.url()));
  ASSERT_FALSE(fetched);
  EXPECT_NE(fetched.message().find("GET " + server.url() + ": HTTP 401"), std::string::npos) << fetched.message();
  EXPECT_NE(fetched.message().find("not 200"), std::string::npos) << fetched.message();
}

TEST(FetchEnrollmentProfile, RefusesHtmlPagesAndEmptyBodies) {
  ProfileServer by_type(answer(200, "<plist/>", "Text/HTML; charset=utf-8"));
  auto typed = fetch_enrollment_profile(source_for(by_type.url()));
  ASSERT_FALSE(typed);
  EXPECT_NE(typed.message().find("an HTML page (Content-Type Text/HTML; charset=utf-8)"), std::string::npos)
      << typed.message();
  for (std::string body : {"\n  <!DOCTYPE html><html><body>Sign in</body></html>", "\xEF\xBB\xBF<HTML><body/>"}) {
    ProfileServer by_body(answer(200, body, "application/octet-stream"));
    auto page = fetch_enrollment_profile(source_for(by_body.url()));
    ASSERT_FALSE(page) << body;
    EXPECT_NE(page.message().find("HTML page"), std::string::npos) << page.message();
  }
  // An XML plist's own DOCTYPE is not a web page.
  ProfileServer plist_doctype(answer(200, plist::to_xml(nanomdm_profile()), ""));
  EXPECT_TRUE(fetch_enrollment_profile(source_for(plist_doctype.url())));

  ProfileServer empty(answer(200, ""));
  auto nothing = fetch_enrollment_profile(source_for(empty.url()));
  ASSERT_FALSE(nothing);
  EXPECT_NE(nothing.message().find("GET " + empty.url() + ": HTTP 200 with an empty body"), std::string::npos)
      << nothing.message();
}

TEST(FetchEnrollmentProfile, AHugeBodyIsCutAtTheCapAndRefused) {
  ProfileServer server(answer(200, std::string(kMaxEnrollmentProfileBytes + 1, ' ')));
  auto fetched = fetch_enrollment_profile(source_for(server.url()));
  ASSERT_FALSE(fetched);
  EXPECT_NE(fetched.message().find("runs over 1048576 bytes"), std::string::npos) << fetched.message();
  ProfileServer at_cap(answer(200, std::string(kMaxEnrollmentProfileBytes, ' ')));
  auto exactly = fetch_enrollment_profile(source_for(at_cap.url()));
  ASSERT_TRUE(exactly) << exactly.message();
  EXPECT_EQ(exactly->bytes.size(), kMaxEnrollmentProfileBytes);
}

TEST(FetchEnrollmentProfile, AnEndlessBodyEndsAtTheCap) {
  testing::RawServer raw([](testing::RawServer&, int& fd, int) {
    testing::read_request(fd);
    if (!testing::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
    const auto until = chr::steady_clock::now() + chr::seconds(10);
    while (chr::steady_clock::now() < until && testing::write_all(fd, chunk)) {}
  });
  const auto start = chr::steady_clock::now();
  auto fetched = fetch_enrollment_profile(source_for("http://127.0.0.1:" + std::to_string(raw.port()) + "/p"));
  ASSERT_FALSE(fetched);
  EXPECT_NE(fetched.message().find("runs over"), std::string::npos) << fetched.message();
  EXPECT_LT(chr::steady_clock::now() - start, chr::seconds(5));
}

TEST(FetchEnrollmentProfile, AStallingBodyEndsAtTheBodyDeadline) {
  testing::RawServer raw([](testing::RawServer& server, int& fd, int) {
    testing::read_request(fd);
    testing::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<?xml version=");
    server.stall();
  });
  const auto start = chr::steady_clock::now();
  auto fetched = fetch_enrollment_profile(source_for("http://127.0.0.1:" + std::to_string(raw.port()) + "/p"));
  ASSERT_FALSE(fetched);
  EXPECT_NE(fetched.message().find("no profile: body_timeout"), std::string::npos) << fetched.message();
  const auto took = chr::steady_clock::now() - start;
  EXPECT_GE(took, chr::milliseconds(1400));
  EXPECT_LT(took, chr::seconds(5));
}

TEST(FetchEnrollmentProfile, NoServerIsAnErrorNamingTheUrl) {
  const std::string url = "http://127.0.0.1:" + std::to_string(testing::unused_port()) + "/mdm/enroll";
  auto fetched = fetch_enrollment_profile(source_for(url));
  ASSERT_FALSE(fetched);
  EXPECT_NE(fetched.message().find("GET " + url + ": no profile: connect_failed"), std::string::npos)
      << fetched.message();
}

}  // namespace
}  // namespace mdmc::enroll
