#pragma once
// The enrollment profile a server gives a Mac (a .mobileconfig, plain or CMS-signed): read from
// untrusted bytes, its signature judged, the MDM payload, the identity payload it names and any
// CA payloads taken out, and every break of Apple's schema for them listed (ENR-PROFILE).
// Apple's facts (required keys and their types) are generated from its schema
// (tools/gen_profile_schema.py → profile_schema_data.inc), never typed in by hand.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "harness/base/result.hpp"
#include "harness/enroll/scep_client.hpp"
#include "harness/net/http.hpp"
#include "harness/net/http_client.hpp"

namespace mdmc::enroll {

// Profiles above this are refused before parsing: a real one is a few kilobytes.
inline constexpr std::size_t kMaxEnrollmentProfileBytes = 1024 * 1024;

enum class ProfileSignature {
  unsigned_profile,  // a plain plist
  verified,          // CMS SignedData whose signer chains to the trusted CAs (or the system store)
  untrusted,         // the signature holds, but its signer chains to nothing trusted (a Mac says "Unverified")
  invalid,           // CMS SignedData whose signature does not hold (a Mac refuses it)
};

// The com.apple.mdm payload (mdm/profiles/com.apple.mdm.yaml), as far as it could be read.
struct MdmPayload {
  std::string payload_uuid;
  std::string server_url;
  std::optional<std::string> check_in_url;  // absent: check-ins go to server_url
  std::string topic;
  std::string identity_certificate_uuid;
  std::optional<bool> sign_message;
  std::vector<std::string> server_capabilities;
  std::optional<bool> check_out_when_removed;
  std::optional<std::int64_t> access_rights;
  bool use_development_apns = false;
  bool per_user_connections() const;  // server_capabilities lists com.apple.mdm.per-user-connections
};

enum class IdentityKind { scep, pkcs12, acme, other };

// The payload IdentityCertificateUUID names.
struct IdentityPayload {
  IdentityKind kind = IdentityKind::other;
  std::string payload_type;  // "com.apple.security.scep", ...
  std::string payload_uuid;
  ScepRequest scep;                // kind scep: its PayloadContent; %…% device variables left as written
  std::string pkcs12_der;          // kind pkcs12: PayloadContent
  std::string pkcs12_password;     // kind pkcs12: Password
  std::string acme_directory_url;  // kind acme: DirectoryURL (the harness cannot attest as Apple hardware)
};

// A com.apple.security.root or com.apple.security.pkcs1 payload.
struct CaPayload {
  std::string payload_type;
  std::string payload_uuid;
  std::string cert_pem;  // PayloadContent as PEM (Apple accepts DER or PEM bytes there)
};

struct EnrollmentProfile {
  std::string sha256;  // of the bytes as given
  ProfileSignature signature = ProfileSignature::unsigned_profile;
  std::string signer_subject;               // when signed and the signer's certificate reads
  std::string signature_detail;             // why untrusted or invalid, in words
  std::optional<MdmPayload> mdm;            // absent when the profile has none (or more than one: see problems)
  std::optional<IdentityPayload> identity;  // absent when IdentityCertificateUUID names no payload
  std::vector<CaPayload> cas;
  // Every ENR-PROFILE break, one sentence each, naming the payload and key:
  // "com.apple.mdm: Topic \"x\" does not begin com.apple.mgmt.". Empty: the profile holds.
  std::vector<std::string> problems;
};

// Reads a profile. Fails only when there is nothing to judge: over kMaxEnrollmentProfileBytes,
// neither a plist nor CMS SignedData with content, or a plist whose top is not a dictionary.
// A signature that does not hold is not a failure here: `signature` says so and `problems` too.
// `trusted_ca_pem`: the CAs a signer may chain to; empty: the system's store.
base::Result<EnrollmentProfile> read_enrollment_profile(std::string_view bytes, const std::string& trusted_ca_pem);

// How to fetch a profile from a server (the target profile's `enrollment.profile_url`).
struct ProfileSource {
  std::string url;
  net::ClientLimits limits;
  net::TlsClientConfig tls;
  std::string basic_user;  // empty: no Basic auth
  std::string basic_password;
  std::map<std::string, std::string> headers;
};

// GETs the profile and returns its bytes, with the exchange for the report. Fails, in words,
// for no answer, a status other than 200, a body over kMaxEnrollmentProfileBytes (a huge or
// endless one is cut at the cap and refused), or an HTML page (a login page, a proxy's error)
// where a profile should be.
struct FetchedProfile {
  std::string bytes;
  net::Exchange exchange;
};
// Why a fetch failed, for a caller that tells an absent server from a broken profile.
enum class FetchError {
  no_answer = 1,  // no HTTP answer at all (connect, TLS, deadline, reset)
  not_a_profile,  // an answer, but not a profile: a status other than 200, HTML, empty, over the cap
};
std::error_code make_error_code(FetchError e);
base::Result<FetchedProfile> fetch_enrollment_profile(const ProfileSource& source);

// Fills Apple's device variables in a SCEP payload's Subject, SubjectAltName and Challenge:
// %ComputerName%, %HardwareUUID%, %SerialNumber%, %UDID% (others are left as written).
ScepRequest fill_device_variables(ScepRequest request, const std::map<std::string, std::string>& variables);

}  // namespace mdmc::enroll

template <>
struct std::is_error_code_enum<mdmc::enroll::FetchError> : std::true_type {};
