#pragma once
// The device identities of one run. A server binds a certificate to the first UDID it sees it
// with (real servers do; so does the reference server), so every synthetic device of a run
// (every case's, every confirmation re-run's) must present one no other device of the run
// presented. With an issuer each device gets a certificate issued for its UDID; with a pool,
// the pool's identities are handed out once each, in file-name order, to whichever device asks
// first. A run makes one IdentityPool and shares it with every TargetSession it opens, on every
// thread; a pool too small for the run is the caller's preflight error (scenario's
// identities_needed), and running out anyway is a failure of take(), never a reuse.
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "harness/base/result.hpp"
#include "harness/enroll/scep_client.hpp"
#include "harness/pki/pki.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::target {

// An identity a device was given, and how a report names it.
struct DeviceIdentity {
  pki::Identity identity;   // empty in identity mode none
  std::string source;       // "issued", "pool:<file name>", "scep", or "none" (identity mode none)
  std::string sha256;       // SHA-256 of the certificate's DER, lower-case hex; empty for none
  std::string common_name;  // the certificate's subject CN; empty for none
  // Through SCEP: how the enrollment went (capabilities, algorithms, polls, exchanges, wall).
  std::shared_ptr<const enroll::ScepEnrollment> scep;
};

// The device with this UDID enrolls its own identity from the SCEP server `request` names, as a
// Mac does for its enrollment profile's SCEP payload: %HardwareUUID%, %UDID%, %SerialNumber% and
// %ComputerName% filled in from the device. Fails with scep_enroll's ScepError and words.
base::Result<DeviceIdentity> enroll_through_scep(const enroll::ScepRequest& request, const enroll::ScepLimits& limits,
                                                 const std::string& udid, const std::string& key_pem = {});

class IdentityPool {
 public:
  // `config` must outlive the pool (it is the run's one TargetProfile's).
  explicit IdentityPool(const IdentityConfig& config);
  IdentityPool(const IdentityPool&) = delete;
  IdentityPool& operator=(const IdentityPool&) = delete;

  // An identity for the device with this UDID that no other device got from this pool: one
  // issued for `udid` by the issuer, the pool's next unused one, or one the device enrolls
  // through the enrollment profile's SCEP server (enroll_through_scep); source "none" and no
  // certificate in identity mode none. Fails with the issuer's reason, or when every pool
  // identity has been handed out. Safe to call from several threads at once.
  base::Result<DeviceIdentity> take(const std::string& udid);

  // Pool identities handed out so far (never more than the pool holds).
  std::size_t taken() const;

 private:
  const IdentityConfig& config_;
  std::atomic<std::size_t> next_{0};  // the pool's next unused identity; past the end when empty
};

// How a report names `identity` from `source`: its SHA-256 fingerprint and subject CN, each
// left empty when the certificate cannot be read (the TLS handshake or the signature then says
// why).
DeviceIdentity describe_identity(pki::Identity identity, std::string source);

}  // namespace mdmc::target
