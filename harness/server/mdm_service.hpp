#pragma once
// The reference MDM server's logic: a correct server for the rules in specs/rules.yaml, with
// fault modes that break them one at a time. It maps one HTTP request to one response and
// does no I/O, so the HTTP server, unit tests and fuzzers all drive the same code.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "harness/net/http.hpp"
#include "harness/pki/pki.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/identity_mode.hpp"
#include "harness/server/declaration_store.hpp"
#include "harness/server/faults.hpp"
#include "harness/server/push_faults.hpp"
#include "harness/server/seeded_bugs.hpp"

namespace mdmc::server {

// How devices prove who they are: a TLS client certificate, an Mdm-Signature header, or both.
using protocol::IdentityMode;

// Bounds on what the server remembers: `serve` faces untrusted clients, and no request may
// make it grow without bound. The defaults keep its state under about 150 MB at worst (64 MiB
// of queued plists, the rest bookkeeping); a suite run uses a few hundred kilobytes.
struct Bounds {
  // Devices; past this, a new device makes the server forget the one it heard from least
  // recently, as if that one had checked out.
  std::size_t devices = 1024;
  // Per device: user channels, and network users it refused or challenged.
  std::size_t users_per_device = 16;
  // The longest UDID, UserID, Topic, Token, PushMagic, CommandUUID or RequestType kept; real
  // ones are 30 to 60.
  std::size_t kept_field_bytes = 128;
  // Commands queued on one channel, on all channels together, and their plist bytes in all.
  std::size_t queued_per_channel = 1024;
  std::size_t queued_commands = 65536;
  std::size_t queued_bytes = 64 * 1024 * 1024;
  // Finished commands remembered over all channels, so that a duplicate report is known as one.
  std::size_t remembered_commands = 65536;
  // Declarations, sets, assignments and status reports (declaration_store.hpp).
  DeclarationBounds declarative;
};

// The SCEP server the enrollment profile names (scep_server_process.hpp runs one): devices get
// their identity from it, so the server trusts its CA as well as client_ca_pem.
struct ScepEnrollment {
  std::string url;  // "http://127.0.0.1:PORT/scep"
  std::string challenge;
  std::string ca_pem;
  int key_size = 2048;  // the SCEP payload's Keysize: 1024 is Apple's default, 2048 MicroMDM's
};

// How the server pushes (docs/push.md#how-the-reference-server-pushes): to APNs' provider API at
// apns_url, authenticated by a push certificate or, without one, a provider key (ES256 JWTs).
// MdmService only says whom to push; server::PushSender (reference_server target) sends.
struct PushSettings {
  std::string apns_url;  // "https://127.0.0.1:8443" (a FakeApns), "https://api.push.apple.com"; empty: no pushes
  // "127.0.0.1:8443": connect there instead of resolving the URL's host (a hosts override).
  std::string connect_to;
  std::string trusted_ca_pem;                // the APNs endpoint's CA; empty: the system's store
  std::optional<pki::Identity> certificate;  // the push certificate (TLS client certificate)
  // A provider key (Apple's .p8: an EC P-256 private key, PEM), its key id and team id; used
  // when no certificate is set.
  std::string provider_key_pem;
  std::string key_id;
  std::string team_id;
  PushFault fault = PushFault::none;
  // Pushes waiting to be sent, one per channel at most; past this a push is dropped and counted.
  std::size_t max_queued = 4096;
  // After 429, 503 or a network failure: wait first_backoff, doubling per failure up to
  // max_backoff, and give the push up after max_retries retries.
  std::chrono::milliseconds first_backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  unsigned max_retries = 5;
  // Each of connect, TLS handshake and answer: what bounds a push in flight, and so stop().
  std::chrono::milliseconds timeout{3000};
  std::size_t max_batch = 64;  // pushes multiplexed on the connection at once
  // Takes a line per push event worth telling (a refusal, a 410, a retry); empty: stderr. The
  // built-in server of `mdmconform run` drops them: its cases keep the pushes as evidence.
  std::function<void(const std::string&)> log;
};

// Whom a push wakes, as the server knows the channel at a moment.
struct PushTarget {
  std::string channel_id;  // "UDID" or "UDID:UserID"
  std::string token;       // lower-case hex of the TokenUpdate's Token, as APNs' path wants it
  std::string push_magic;
  std::string topic;
  // Which enrollment of the channel: CheckOut or a new Authenticate ends it, and with it the
  // pushes still waiting for it.
  std::uint64_t enrollment = 0;
  // Which TokenUpdate the token came from (grows over the server's life): a 410 stops pushes
  // to a channel until a later TokenUpdate.
  std::uint64_t token_update = 0;
};

struct Config {
  Fault fault = Fault::none;
  // The shared-response-slot fault's simulated work: how long a request holds its device's
  // response slot. A test widens it to make an overlap certain.
  std::chrono::milliseconds slot_hold{5};
  // A defect only odd input reaches, for measuring fuzzers (seeded_bugs.hpp); none by default.
  SeededBug seeded_bug = SeededBug::none;
  IdentityMode identity_mode = IdentityMode::none;
  std::string client_ca_pem;  // the CA device identities must chain to (or to scep->ca_pem)
  // What GET /enroll serves. Without `scep` there is no identity to name: /enroll answers 404.
  std::optional<ScepEnrollment> scep;
  std::string topic = "com.apple.mgmt.External.mdmconform";
  // Where devices reach this server, "https://127.0.0.1:8443", for the profile's ServerURL and
  // CheckInURL; empty: ReferenceServer fills in the address it listens on.
  std::string public_url;
  // The CA of the server's TLS certificate, for the profile's com.apple.security.root payload;
  // empty (plain HTTP): no such payload.
  std::string tls_ca_pem;
  // Network users the server manages, by UserID; any other network user gets 410.
  std::set<std::string> managed_network_users;
  // The DigestChallenge a managed network user gets; empty means no password proof needed.
  std::string digest_challenge;
  plist::Limits plist_limits;
  Bounds bounds;
  PushSettings push;
};

// Paths the reference server serves: one for check-ins, one for command reports (each also
// accepts the other's Content-Type, as servers with one URL do), and NanoMDM's queue API.
inline constexpr std::string_view kCheckInPath = "/checkin";
inline constexpr std::string_view kServerPath = "/mdm";
inline constexpr std::string_view kEnqueuePrefix = "/v1/enqueue/";
// The declarative admin API, in KMFDDM's shape (docs/reference-server.md#declarative-management):
// PUT/GET /v1/declarations, GET/DELETE /v1/declarations/{id}, GET/PUT/DELETE
// /v1/set-declarations/{set}?declaration={id}, GET/PUT/DELETE /v1/enrollment-sets/{channel}?set={set},
// GET /v1/status-report/{channel}; ?nonotify=1 changes without telling the channels.
inline constexpr std::string_view kDeclarationsPath = "/v1/declarations";
inline constexpr std::string_view kSetDeclarationsPrefix = "/v1/set-declarations/";
inline constexpr std::string_view kEnrollmentSetsPrefix = "/v1/enrollment-sets/";
inline constexpr std::string_view kStatusReportPrefix = "/v1/status-report/";
// GET: the enrollment profile, as MicroMDM's /mdm/enroll serves it (no client certificate).
inline constexpr std::string_view kEnrollPath = "/enroll";
inline constexpr std::string_view kEnrollmentProfileContentType = "application/x-apple-aspen-config";
// Check-ins and reports are small; a larger body is refused with 413 before any work.
inline constexpr std::size_t kMaxMessageBytes = 1024 * 1024;

// What the server holds at a moment, for tests and fuzzers that check the bounds above.
struct Footprint {
  std::size_t devices = 0;
  std::size_t channels = 0;
  std::size_t queued_commands = 0;
  std::size_t queued_bytes = 0;         // plist bytes of the queued commands
  std::size_t remembered_commands = 0;  // finished commands remembered
  std::size_t largest_user_set = 0;     // the most users one device refused or challenged
};

class MdmService {
 public:
  explicit MdmService(Config config);
  ~MdmService();
  // A copy answers every later request as the original would have, and holds what it held
  // (devices, channels, queues, declarations), without its push requester. The handler fuzzer
  // resumes a session from a copy taken after the requests it shares with an earlier one.
  MdmService(const MdmService& other);
  MdmService& operator=(const MdmService&) = delete;

  // Thread-safe: the HTTP server may call it from several threads.
  net::ServerResponse handle(const net::ServerRequest& request);
  Footprint footprint() const;
  // Config::public_url, once the server knows its port.
  void set_public_url(std::string url);

  // Called when a command was queued through the admin API without ?nopush=1, once per channel
  // it was queued for, under the service's lock: it must only hand the target on (no I/O).
  using PushRequester = std::function<void(const PushTarget&)>;
  void set_push_requester(PushRequester requester);
  // The channel's push target now; nothing when the channel has no token (or is gone).
  std::optional<PushTarget> push_target(const std::string& channel_id) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mdmc::server
