#pragma once
// The target profile: which MDM server the harness talks to and how (its URLs, deadlines and
// bounds, how devices prove their identity, which TLS certificates it trusts, its admin API for
// queueing commands, its policy), loaded from specs/targets/*.yaml. The format is documented in
// specs/README.md. Loading throws base::LoadError, which names the file, the line and the key.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "harness/enroll/enrollment_profile.hpp"
#include "harness/enroll/scep_client.hpp"
#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/identity_mode.hpp"

namespace mdmc::target {

// Every device and its users use that device's one identity.
using protocol::IdentityMode;

struct IdentityConfig {
  IdentityMode mode = IdentityMode::none;
  pki::KeyType key_type = pki::KeyType::ec_p256;
  // Either the harness issues each device an identity from this CA...
  std::optional<pki::Identity> issuer;
  // ...or takes them from pre-issued ones (for servers with their own SCEP CA), each given to
  // one device of a run only (see identity_pool.hpp), in file-name order.
  std::vector<pki::PoolIdentity> pool;
  // ...or, as a Mac does, from the SCEP server the enrollment profile's identity payload names:
  // one enrollment per device (target/enrollment.hpp fills this in).
  std::optional<enroll::ScepRequest> scep;
  enroll::ScepLimits scep_limits;
  // The key every device's SCEP request carries, made once for the run; empty: each device makes
  // its own, as a Mac does. Only the built-in server's runs set it (cli/suite.cpp says why).
  std::string scep_key_pem;
};

struct TlsTrust {
  std::string ca_pem;     // the CA(s) the server's certificate must chain to; empty: system store
  bool insecure = false;  // only when the profile says so; the report then says so too
};

// How a server names a channel in its API: NanoMDM "UDID" and "UDID:UserID"; MicroMDM "UDID"
// and the bare "UserID".
enum class ChannelStyle { udid_colon_user_id, user_id };

struct AdminEndpoint {
  std::string method = "PUT";
  std::string url;  // with {channel}, {udid}, {user_id}
  ChannelStyle channel_style = ChannelStyle::udid_colon_user_id;
  std::string basic_user;  // empty: no auth
  std::string basic_password;
  std::vector<int> expect_status{200};
  // The server queues asynchronously (MicroMDM answers 201 and queues later): wait this long
  // after each enqueue before relying on it.
  std::chrono::milliseconds settle{0};
};

// One request of the declarations adapter: {channel}, {udid}, {user_id}, {identifier} and
// {set} are filled in its URL.
struct AdminRequest {
  std::string method = "PUT";
  std::string url;
  std::vector<int> expect_status{200};
};

// How mdmconform puts a declaration on the server and gives it to a channel, or takes it away
// (`admin.declarations`, docs/profiles.md#admindeclarations). {set} names the channel's own set,
// "mdmconform-" and 12 hex digits of the channel id's SHA-256, for servers that assign
// declarations through sets, as KMFDDM does.
struct DeclarationsAdmin {
  ChannelStyle channel_style = ChannelStyle::udid_colon_user_id;
  std::string basic_user;  // empty: no auth
  std::string basic_password;
  AdminRequest put;                    // the declaration's JSON is the body
  std::vector<AdminRequest> assign;    // in order, until one is not accepted
  std::vector<AdminRequest> unassign;  // likewise; none: the server cannot take one away
  std::chrono::milliseconds settle{0};
};

// Where the server's enrollment profile is (the `enrollment:` key): fetched from a URL with
// the profile's TLS trust, or read from a file.
struct EnrollmentSource {
  std::string profile_url;
  std::filesystem::path profile_file;
  std::string basic_user;  // empty: no Basic auth
  std::string basic_password;
  std::map<std::string, std::string> headers;
  // Add the enrollment profile's root and pkcs1 CA payloads to the trust for the server's TLS.
  bool trust_profile_cas = false;
  // `enrollment: builtin`: the reference profile's own URLs, topic and issuer stand in only when
  // the built-in server runs no SCEP companion, or its devices are not to enroll through it.
  bool builtin = false;
};

// The fake APNs a run serves for the target to push to (the `push:` key; docs/push.md): where it
// listens, what its TLS certificate says and who issues it, and how it takes the server's
// pushes. Without one, the cases that watch pushes are untested.
struct PushEndpoint {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;          // 0 only for the built-in server's, which picks a free one
  std::vector<std::string> names;  // more names for its certificate, beside APNs' own
  pki::Identity ca;                // issues its certificate: the CA the server must trust for APNs
  // Push certificates (TLS client certificates) must chain to these; empty: certificate auth off.
  std::string certificate_ca_pem;
  // Provider tokens (ES256 JWTs) must name this key id and team id and verify with this public
  // key (or a certificate holding it); an empty key: token auth off.
  std::string token_key_id;
  std::string token_team_id;
  std::string token_public_key_pem;
  bool builtin = false;  // `push: builtin`: the built-in server's, which mdmconform starts with it
};

struct EnrollmentRecord;  // target/enrollment.hpp

struct TargetProfile {
  std::string name;
  std::string file;
  std::string digest;  // sha256 of the file's bytes
  std::string check_in_url;
  std::string server_url;
  std::string topic;
  net::ClientLimits limits;
  plist::Limits plist_limits;  // bounds on every plist the target sends
  IdentityConfig identity;
  TlsTrust tls;
  std::optional<AdminEndpoint> enqueue;
  std::optional<DeclarationsAdmin> declarations;
  std::vector<std::string> managed_network_users;
  std::map<std::string, bool> declares;

  std::optional<EnrollmentSource> enrollment;
  std::optional<PushEndpoint> push;
  // The keys this file states itself ("urls.server", "urls.check_in", "topic", "identity.mode",
  // "identity.source", "declares.per_user_connections"): the enrollment profile fills in the others.
  std::set<std::string> stated;
  // Where each of those values came from, for the report: key → "target profile",
  // "enrollment profile" or "default". Filled by load_profile and apply_enrollment.
  std::map<std::string, std::string> origins;
  // The enrollment profile as fetched and read, once apply_enrollment ran; null before or without one.
  std::shared_ptr<const EnrollmentRecord> enrolled;
};

// What the built-in reference server lends a profile: its port and its test CA. A profile
// names them as ${builtin_port} and as `builtin` for a CA or issuer.
struct BuiltinTarget {
  std::uint16_t port = 0;
  pki::Identity ca;
  // The SCEP server (scepserver) the built-in server's enrollment profile names, when one runs:
  // its CA, PEM. Empty: none runs, and `enrollment: builtin` in a profile means no enrollment.
  std::string scep_ca_pem;
  // Whether the run's devices take their identities, URLs and topic from that enrollment profile
  // (a Mac's way; the default), or from the reference profile's issuer and URLs while only the
  // enrollment cases enroll through SCEP (the mutation self-test, for speed).
  bool devices_through_scep = true;
  // The fake APNs the built-in server pushes to, when one runs (its TLS certificate and the
  // server's push certificate are from `ca`); 0: none, and `push: builtin` means no push.
  std::uint16_t apns_port = 0;
};

// `${builtin_port}` and `${env:NAME}` in string values are replaced; file paths are relative to
// the profile's folder. Using a built-in value without a built-in server is an error.
TargetProfile load_profile(const std::filesystem::path& file,
                           const std::optional<BuiltinTarget>& builtin = std::nullopt);
// Takes YAML already in memory (fuzzers, tests); `name` stands for the file in errors, which keep
// their line numbers. Relative paths in the profile are taken from `base`, as from its folder.
TargetProfile load_profile_text(std::string_view yaml, const std::string& name, const std::filesystem::path& base,
                                const std::optional<BuiltinTarget>& builtin = std::nullopt);

}  // namespace mdmc::target
