#include "harness/target/enrollment.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "harness/base/files.hpp"

namespace mdmc::target {
namespace {

class EnrollmentCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "enrollment"; }
  std::string message(int e) const override {
    switch (static_cast<EnrollmentError>(e)) {
      case EnrollmentError::unreachable: return "unreachable";
      case EnrollmentError::unusable: return "unusable";
    }
    return "unknown";
  }
};

constexpr const char* kFromEnrollment = "enrollment profile";

EnrollmentRecord fetch_or_read(const TargetProfile& profile) {
  const auto& source = *profile.enrollment;
  EnrollmentRecord record;
  std::string bytes;
  if (!source.profile_url.empty()) {
    record.source = source.profile_url;
    enroll::ProfileSource from;
    from.url = source.profile_url;
    from.limits = profile.limits;
    from.tls = net::TlsClientConfig{profile.tls.ca_pem, profile.tls.insecure, {}, {}, {}};
    from.basic_user = source.basic_user;
    from.basic_password = source.basic_password;
    from.headers = source.headers;
    auto fetched = enroll::fetch_enrollment_profile(from);
    if (!fetched) {
      record.error = fetched.error().message;
      record.answered = fetched.error().code != enroll::FetchError::no_answer;
      return record;
    }
    record.fetch = fetched->exchange;
    bytes = std::move(fetched->bytes);
  } else {
    record.source = source.profile_file.string();
    auto read = base::read_file_capped(source.profile_file, enroll::kMaxEnrollmentProfileBytes);
    if (!read) {
      record.error = read.error().message;
      return record;
    }
    bytes = std::move(read).value();
  }
  auto judged = enroll::read_enrollment_profile(bytes, profile.tls.ca_pem);
  if (!judged) {
    record.error = judged.error().message;
    return record;
  }
  record.profile = std::move(judged).value();
  return record;
}

}  // namespace

std::error_code make_error_code(EnrollmentError e) {
  static const EnrollmentCategory category;
  return {static_cast<int>(e), category};
}

base::Result<void> apply_enrollment(TargetProfile& profile) {
  // Once per profile: the built-in server's is applied as it starts.
  if (!profile.enrollment || profile.enrolled) return {};
  auto record = std::make_shared<EnrollmentRecord>(fetch_or_read(profile));
  profile.enrolled = record;
  const enroll::MdmPayload* mdm = record->profile && record->profile->mdm ? &*record->profile->mdm : nullptr;

  // Every value the target profile leaves to the enrollment profile, and why it has none there.
  std::vector<std::string> missing;
  auto take = [&](const std::string& key, auto&& apply) {
    if (profile.stated.count(key)) return;
    if (!mdm) {
      missing.push_back(key);
      return;
    }
    if (auto why = apply(*mdm); !why.empty()) {
      missing.push_back(key + " (" + why + ")");
      return;
    }
    profile.origins[key] = kFromEnrollment;
  };
  take("urls.server", [&](const enroll::MdmPayload& m) -> std::string {
    if (!net::parse_url(m.server_url)) return fmt::format("ServerURL '{}' is not an http(s) URL", m.server_url);
    profile.server_url = m.server_url;
    return {};
  });
  take("urls.check_in", [&](const enroll::MdmPayload& m) -> std::string {
    auto url = m.check_in_url.value_or(profile.stated.count("urls.server") ? profile.server_url : m.server_url);
    if (!net::parse_url(url)) return fmt::format("CheckInURL '{}' is not an http(s) URL", url);
    profile.check_in_url = url;
    return {};
  });
  take("topic", [&](const enroll::MdmPayload& m) -> std::string {
    if (m.topic.empty()) return "no Topic";
    profile.topic = m.topic;
    return {};
  });
  take("identity.mode", [&](const enroll::MdmPayload& m) -> std::string {
    // A Mac always presents its identity as the TLS client certificate; SignMessage adds the
    // Mdm-Signature header.
    profile.identity.mode = m.sign_message.value_or(false) ? IdentityMode::both : IdentityMode::mtls;
    return {};
  });
  if (profile.identity.mode != IdentityMode::none) {
    take("identity.source", [&](const enroll::MdmPayload&) -> std::string {
      const auto& identity = record->profile->identity;
      if (!identity) return "IdentityCertificateUUID names no payload of the profile";
      switch (identity->kind) {
        case enroll::IdentityKind::scep: break;
        case enroll::IdentityKind::pkcs12:
          return "its identity payload is PKCS#12, one identity for every device, which a server that binds a "
                 "certificate to a UDID refuses for a second one; give identity.issuer or identity.pool";
        case enroll::IdentityKind::acme:
          return "its identity payload is ACME, which needs attestation as Apple hardware the harness cannot "
                 "give; give identity.issuer or identity.pool";
        case enroll::IdentityKind::other:
          return fmt::format("its identity payload is a {}, which issues no identity", identity->payload_type);
      }
      profile.identity.scep = identity->scep;
      return {};
    });
  }
  // A claim, not a value the run needs: without a profile to read it from, it stays unsaid.
  if (mdm && !profile.stated.count("declares.per_user_connections")) {
    profile.declares["per_user_connections"] = mdm->per_user_connections();
    profile.origins["declares.per_user_connections"] = kFromEnrollment;
  }
  // The SCEP conversation is held to the profile's deadlines and TLS trust.
  profile.identity.scep_limits.http = profile.limits;
  profile.identity.scep_limits.tls = net::TlsClientConfig{profile.tls.ca_pem, profile.tls.insecure, {}, {}, {}};
  if (profile.enrollment->trust_profile_cas && record->profile) {
    for (const auto& ca : record->profile->cas) profile.tls.ca_pem += ca.cert_pem;
  }
  if (missing.empty()) return {};
  auto why = record->error.empty() ? std::string("it has no com.apple.mdm payload to take them from") : record->error;
  return base::Error{fmt::format("the enrollment profile at {}: {}; the target profile does not state {} itself",
                                 record->source, why, fmt::join(missing, ", ")),
                     make_error_code(record->answered ? EnrollmentError::unusable : EnrollmentError::unreachable)};
}

}  // namespace mdmc::target
