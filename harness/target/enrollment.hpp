#pragma once
// A target profile's `enrollment:`: the server's enrollment profile, fetched (or read from a
// file) once per run, judged by the enroll module, and the source of every value the target
// profile does not state itself: the URLs, the topic, the identity mode (SignMessage true:
// an Mdm-Signature on every request; always the identity as the TLS client certificate), where
// device identities come from (the SCEP payload IdentityCertificateUUID names), and whether the
// server serves user channels (com.apple.mdm.per-user-connections). The run's report says which
// value came from where (TargetProfile::origins).
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>

#include "harness/base/result.hpp"
#include "harness/enroll/enrollment_profile.hpp"
#include "harness/net/http.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::target {

// The enrollment profile as the run met it: where from, the exchange that fetched it, and what
// was read, or why nothing could be.
struct EnrollmentRecord {
  std::string source;                                // its URL, or its file
  std::optional<net::Exchange> fetch;                // the GET, for the report; none for a file
  std::optional<enroll::EnrollmentProfile> profile;  // when its bytes could be read
  std::string error;                                 // why it could not be fetched or read; empty when read
  bool answered = true;                              // false: nothing answered at the profile URL
};

enum class EnrollmentError {
  unreachable = 1,  // no HTTP answer at the profile URL (exit code 3)
  unusable,         // fetched or read, but it cannot give a value the target profile leaves to it
};
std::error_code make_error_code(EnrollmentError e);

// Fetches or reads `profile.enrollment` (nothing to do without one, or once done), keeps what it met in
// `profile.enrolled`, and fills in every value the target profile does not state. A profile that
// cannot be read or judged well still lets the run go on when the target profile states every
// value (the enrollment cases then fail ENR-PROFILE); otherwise an EnrollmentError says why not,
// in words naming the URL and the key that has no value.
base::Result<void> apply_enrollment(TargetProfile& profile);

}  // namespace mdmc::target

template <>
struct std::is_error_code_enum<mdmc::target::EnrollmentError> : std::true_type {};
