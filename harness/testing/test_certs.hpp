#pragma once
// Test-only certificates, made on the spot with the OpenSSL 3 API: a CA, the certificates it
// issues (server, client, expired, for another name), all as PEM and DER. Keys are P-256,
// which takes well under a millisecond to make. Nothing here is fit for anything but tests.
#include <openssl/types.h>

#include <memory>
#include <string>

namespace mdmc::testing {

// A certificate with its key, as OpenSSL objects (to issue others) and as text.
struct TestIdentity {
  std::shared_ptr<X509> cert;
  std::shared_ptr<EVP_PKEY> key;
  std::string cert_pem;
  std::string key_pem;
  std::string cert_der;
};

struct TestCertSpec {
  std::string common_name;
  std::string subject_alt_names;  // OpenSSL syntax, "IP:127.0.0.1,DNS:localhost"; empty: none
  bool ca = false;                // a CA that may sign others
  bool client = false;            // extendedKeyUsage clientAuth instead of serverAuth
  long valid_from_days = -1;      // relative to now; a day back tolerates clock skew
  long valid_until_days = 30;
};

// A new key and a certificate for it, signed by `issuer`, or self-signed when it is null.
// Throws std::runtime_error on a broken OpenSSL: tests fail loudly, and only tests call it.
TestIdentity make_test_identity(const TestCertSpec& spec, const TestIdentity* issuer = nullptr);

// The whole cast of the TLS tests, made once per test binary.
struct TestPki {
  TestIdentity ca = make_test_identity({.common_name = "mdmconform test CA", .subject_alt_names = {}, .ca = true});
  TestIdentity other_ca =
      make_test_identity({.common_name = "mdmconform other CA", .subject_alt_names = {}, .ca = true});
  // For 127.0.0.1 and localhost, the two ways tests reach a loopback server.
  TestIdentity server =
      make_test_identity({.common_name = "127.0.0.1", .subject_alt_names = "IP:127.0.0.1,DNS:localhost"}, &ca);
  // Trusted, but for another name only.
  TestIdentity other_name =
      make_test_identity({.common_name = "other.example", .subject_alt_names = "DNS:other.example"}, &ca);
  // Right name and issuer, but its validity ended yesterday.
  TestIdentity expired = make_test_identity({.common_name = "127.0.0.1",
                                             .subject_alt_names = "IP:127.0.0.1,DNS:localhost",
                                             .valid_from_days = -30,
                                             .valid_until_days = -1},
                                            &ca);
  // Right name, issued by a CA nobody trusts.
  TestIdentity untrusted_server =
      make_test_identity({.common_name = "127.0.0.1", .subject_alt_names = "IP:127.0.0.1,DNS:localhost"}, &other_ca);
  // An intermediate CA under `ca`, and a server and a device it issued: a peer must send the
  // intermediate along for the chain to reach `ca`.
  TestIdentity intermediate =
      make_test_identity({.common_name = "mdmconform intermediate CA", .subject_alt_names = {}, .ca = true}, &ca);
  TestIdentity server_via_intermediate = make_test_identity(
      {.common_name = "127.0.0.1", .subject_alt_names = "IP:127.0.0.1,DNS:localhost"}, &intermediate);
  TestIdentity client_via_intermediate = make_test_identity(
      {.common_name = "device-0003", .subject_alt_names = {}, .ca = false, .client = true}, &intermediate);
  // Device identities, with the clientAuth purpose OpenSSL checks on the server side.
  TestIdentity client =
      make_test_identity({.common_name = "device-0001", .subject_alt_names = {}, .ca = false, .client = true}, &ca);
  TestIdentity foreign_client = make_test_identity(
      {.common_name = "device-0002", .subject_alt_names = {}, .ca = false, .client = true}, &other_ca);
};

// The one TestPki of this test binary, made on first use.
const TestPki& test_pki();

}  // namespace mdmc::testing
