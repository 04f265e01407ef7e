#include "harness/target/identity_pool.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace mdmc::target {

IdentityPool::IdentityPool(const IdentityConfig& config) : config_(config) {}

base::Result<DeviceIdentity> IdentityPool::take(const std::string& udid) {
  if (config_.mode == IdentityMode::none) return DeviceIdentity{{}, "none", {}, {}, nullptr};
  if (config_.issuer) {
    auto issued = pki::issue_device_identity(*config_.issuer, udid, config_.key_type);
    if (!issued) return issued.error();
    return describe_identity(std::move(issued).value(), "issued");
  }
  if (config_.pool.empty() && config_.scep) {
    return enroll_through_scep(*config_.scep, config_.scep_limits, udid, config_.scep_key_pem);
  }
  if (config_.pool.empty()) return base::fail("the profile's identity mode needs an issuer or a pool of identities");
  // One atomic step claims an index no other caller gets; a claim past the end takes nothing.
  const std::size_t index = next_.fetch_add(1);
  if (index >= config_.pool.size()) {
    return base::fail(
        fmt::format("every one of the {} identities in the profile's pool was given to another "
                    "device of this run; a server that binds a certificate to a UDID would "
                    "refuse it for a second one",
                    config_.pool.size()));
  }
  const auto& pooled = config_.pool[index];
  return describe_identity(pooled.identity, "pool:" + pooled.file);
}

std::size_t IdentityPool::taken() const { return std::min(next_.load(), config_.pool.size()); }

base::Result<DeviceIdentity> enroll_through_scep(const enroll::ScepRequest& request, const enroll::ScepLimits& limits,
                                                 const std::string& udid, const std::string& key_pem) {
  // A synthetic Mac's variables: its UDID is its hardware UUID, as on a Mac.
  auto filled = enroll::fill_device_variables(request, {{"HardwareUUID", udid},
                                                        {"UDID", udid},
                                                        {"SerialNumber", "C02" + udid.substr(0, 8)},
                                                        {"ComputerName", "mdmconform-" + udid.substr(0, 8)}});
  auto enrolled = enroll::scep_enroll(filled, limits, key_pem);
  if (!enrolled) return enrolled.error();
  auto out = describe_identity(enrolled->identity, "scep");
  out.scep = std::make_shared<const enroll::ScepEnrollment>(std::move(enrolled).value());
  return out;
}

DeviceIdentity describe_identity(pki::Identity identity, std::string source) {
  DeviceIdentity out{std::move(identity), std::move(source), {}, {}, nullptr};
  if (auto der = pki::certificate_der(out.identity.cert_pem)) out.sha256 = pki::sha256_fingerprint(*der);
  if (auto cn = pki::common_name(out.identity.cert_pem)) out.common_name = std::move(cn).value();
  return out;
}

}  // namespace mdmc::target
