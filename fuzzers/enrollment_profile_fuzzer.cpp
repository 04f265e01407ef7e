// The enrollment profile reader: any bytes, as a server may send them for its enrollment profile
// (a plist, binary or XML, or a CMS SignedData around one), are read or refused in words. A
// crash, a hang, a leak or an unbounded allocation is a bug, and so is a broken promise of
// harness/enroll/enrollment_profile.hpp, checked below.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "harness/enroll/enrollment_profile.hpp"
#include "harness/pki/pki.hpp"

namespace {

// A CA to verify signatures against: a trust of the caller's, so that no input makes the reader
// load the system's store (tens of milliseconds each time).
const std::string& trusted_ca_pem() {
  static const std::string pem = [] {
    auto ca = mdmc::pki::create_test_ca("enrollment profile fuzzer CA");
    if (!ca) {
      std::fprintf(stderr, "enrollment_profile_fuzzer: no test CA: %s\n", ca.message().c_str());
      std::abort();
    }
    return ca->cert_pem;
  }();
  return pem;
}

void require(bool holds, const char* promise) {
  if (holds) return;
  std::fprintf(stderr, "enrollment_profile_fuzzer: broken promise: %s\n", promise);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto profile = mdmc::enroll::read_enrollment_profile(bytes, trusted_ca_pem());
  if (!profile) {
    require(!profile.message().empty(), "a refusal says why");
    return 0;
  }
  require(profile->sha256.size() == 64, "sha256 is the hex SHA-256 of the bytes");
  require(profile->signature != mdmc::enroll::ProfileSignature::invalid || !profile->problems.empty(),
          "a signature that does not hold is a problem");
  require(profile->signature == mdmc::enroll::ProfileSignature::verified ||
              profile->signature == mdmc::enroll::ProfileSignature::unsigned_profile ||
              !profile->signature_detail.empty(),
          "an untrusted or invalid signature says why");
  require(profile->mdm.has_value() || !profile->problems.empty(), "a profile without one MDM payload is a problem");
  require(!profile->identity.has_value() || profile->mdm.has_value(), "the identity is the one the MDM payload names");
  require(profile->problems.size() <= 201, "the problems are capped");
  for (const auto& ca : profile->cas) require(ca.cert_pem.find("-----BEGIN") != std::string::npos, "CAs are PEM");
  if (profile->identity && profile->identity->kind == mdmc::enroll::IdentityKind::scep) {
    (void)mdmc::enroll::fill_device_variables(
        profile->identity->scep,
        {{"ComputerName", "fuzz-mac"}, {"HardwareUUID", "HW"}, {"SerialNumber", "C02FUZZ"}, {"UDID", "UDID-%UDID%"}});
  }
  return 0;
}
