#pragma once
// The built-in reference server, set up one way for `run`, `fuzz`, `replay` and `serve`: a
// fresh test CA for each start (it issues the server's certificate and every device's), the
// server's policy from specs/targets/reference.yaml, and the profile that reaches it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>

#include "harness/base/result.hpp"
#include "harness/net/http_server.hpp"
#include "harness/pki/pki.hpp"
#include "harness/push/apns_endpoint.hpp"
#include "harness/scenario/spec.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/server/scep_server_process.hpp"

namespace mdmc::cli {

// Why the built-in server did not start.
enum class BuiltinError {
  setup = 1,  // the CA, the server certificate or the profile (exit code 2)
  listen,     // no socket on 127.0.0.1 (exit code 3 for `run`)
};
std::error_code make_error_code(BuiltinError e);

// A test CA and a server certificate for 127.0.0.1 and localhost, and the server's TLS from
// them (client certificates asked for, not required, and checked against the CA).
struct BuiltinPki {
  pki::Identity ca;
  pki::Identity server;
  net::ServerTls tls;
};
base::Result<BuiltinPki> make_builtin_pki();

struct BuiltinOptions {
  std::filesystem::path specs_dir;  // holds targets/reference.yaml
  server::Fault fault = server::Fault::none;
  server::SeededBug seeded_bug = server::SeededBug::none;
  std::optional<protocol::IdentityMode> identity_mode;  // overrides the profile's
  // The SCEP companion the server's enrollment profile names (scep_server_process.hpp): with
  // `scep`, start_builtin starts one when scepserver is installed and goes on without one when
  // it is not. `scep_server`, when given, is used instead of a new one: a test that starts the
  // built-in server many times shares one.
  bool scep = true;
  std::shared_ptr<server::ScepServerProcess> scep_server{};
  // With a companion: every device of the run enrolls through it (true), or only the
  // enrollment cases' devices do (BuiltinTarget::devices_through_scep).
  bool devices_through_scep = true;
  // A SCEP server already running that is no ScepServerProcess (a test's in-process one): the
  // profile names it, and the server trusts its CA, instead of a companion's.
  std::optional<server::ScepEnrollment> external_scep{};
  // A fake APNs for the server to push to (push: builtin in reference.yaml), so that the push
  // cases run: its certificate and the server's push certificate come from the test CA.
  bool push = true;
};

struct Builtin {
  // Declared before the server, so that they outlive it: the profile names them while it serves.
  std::shared_ptr<server::ScepServerProcess> scep;  // null: no enrollment profile (/enroll 404)
  std::unique_ptr<push::FakeApns> apns;             // null: the server pushes nowhere
  std::unique_ptr<server::ReferenceServer> server;  // serving on its own thread until destroyed
  std::uint16_t port = 0;
  pki::Identity ca;
  target::TargetProfile profile;  // reference.yaml with this port and CA
};

// The SCEP companion for a built-in server: `given` when there is one, else a new one when
// `wanted` and scepserver is installed; null when not wanted or not installed, an error when it
// is installed and does not start. With one, `config` names it for GET /enroll and trusts its CA,
// and so does `tls`'s client-certificate check; config.tls_ca_pem is the caller's to set.
base::Result<std::shared_ptr<server::ScepServerProcess>> attach_scep(server::Config& config,
                                                                     std::optional<net::ServerTls>& tls, bool wanted,
                                                                     std::shared_ptr<server::ScepServerProcess> given);

// Starts the server on 127.0.0.1 (any free port) with the profile's policy, and its SCEP
// companion (BuiltinOptions::scep), and loads the profile that reaches it, with the companion's
// CA as BuiltinTarget::scep_ca_pem.
base::Result<Builtin> start_builtin(const BuiltinOptions& options);

// The profile start_builtin would load, without starting the server or taking a port: for
// `run --dry-run`, which sends nothing. Its URLs name a port no server listens on.
base::Result<target::TargetProfile> builtin_profile(const BuiltinOptions& options);

// For a process that loads the profile itself (target_fuzzer): writes into `dir` the CA
// (ca.crt, ca.key), profile.yaml (reference.yaml with the port, and the CA's files in place of
// `builtin`) and builtin.json (the fault mode and seeded bug, which a replay starts again);
// the path of profile.yaml.
base::Result<std::filesystem::path> write_builtin_profile(const Builtin& builtin, const BuiltinOptions& options,
                                                          const std::filesystem::path& dir);

// What builtin.json beside a profile says: the built-in server a finding was made against.
struct BuiltinRecord {
  server::Fault fault = server::Fault::none;
  server::SeededBug seeded_bug = server::SeededBug::none;
};
// Nothing when there is no builtin.json beside `profile_file`; an error when it cannot be read.
std::optional<base::Result<BuiltinRecord>> read_builtin_record(const std::filesystem::path& profile_file);

}  // namespace mdmc::cli

template <>
struct std::is_error_code_enum<mdmc::cli::BuiltinError> : std::true_type {};
