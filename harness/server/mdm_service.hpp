#pragma once
// The reference MDM server's logic: a correct server for the rules in specs/rules.yaml, with
// fault modes that break them one at a time. It maps one HTTP request to one response and
// does no I/O, so the HTTP server, unit tests and fuzzers all drive the same code.
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "harness/net/http.hpp"
#include "harness/plist/value.hpp"
#include "harness/server/faults.hpp"
#include "harness/server/seeded_bugs.hpp"

namespace mdmc::server {

// How devices prove who they are: a TLS client certificate, an Mdm-Signature header, or both.
enum class IdentityMode { none, mtls, signature, both };

struct Config {
  Fault fault = Fault::none;
  // A defect only odd input reaches, for measuring fuzzers (seeded_bugs.hpp); none by default.
  SeededBug seeded_bug = SeededBug::none;
  IdentityMode identity_mode = IdentityMode::none;
  std::string client_ca_pem;  // the CA device identities must chain to
  // Network users the server manages, by UserID; any other network user gets 410.
  std::set<std::string> managed_network_users;
  // The DigestChallenge a managed network user gets; empty means no password proof needed.
  std::string digest_challenge;
  plist::Limits plist_limits;
};

// Paths the reference server serves: one for check-ins, one for command reports (each also
// accepts the other's Content-Type, as servers with one URL do), and NanoMDM's queue API.
inline constexpr std::string_view kCheckInPath = "/checkin";
inline constexpr std::string_view kServerPath = "/mdm";
inline constexpr std::string_view kEnqueuePrefix = "/v1/enqueue/";
// Check-ins and reports are small; a larger body is refused with 413 before any work.
inline constexpr std::size_t kMaxMessageBytes = 1024 * 1024;

class MdmService {
 public:
  explicit MdmService(Config config);
  ~MdmService();
  MdmService(const MdmService&) = delete;
  MdmService& operator=(const MdmService&) = delete;

  // Thread-safe: the HTTP server may call it from several threads.
  net::ServerResponse handle(const net::ServerRequest& request);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mdmc::server
