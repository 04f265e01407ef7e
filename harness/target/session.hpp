#pragma once
// One conversation with a target MDM server, for everything that talks to one (the scenario
// runner, the network fuzzer): the devices' identities (issued from the profile's CA or taken
// from its pool), one kept-alive connection per actor and identity, the Mdm-Signature over each
// body, the profile's URLs, and its admin adapter for queueing commands. It sends whatever it is
// given (a check-in or report body to its endpoint, exact bytes, an enqueue) and returns what
// happened as a value; a server that does not answer is an Exchange with its transport error,
// never an exception. Judging the answers is the caller's business.
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "harness/base/result.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/net/http.hpp"
#include "harness/net/http_client.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/channel.hpp"
#include "harness/protocol/endpoint.hpp"
#include "harness/target/identity_pool.hpp"
#include "harness/target/profile.hpp"

namespace mdmc::target {

// Who sends: the actor whose connection carries the request ("mac", "mac/alice": on a Mac the
// daemon and each user's agent keep their own), and the device whose identity (its TLS client
// certificate and Mdm-Signature) the request is sent under, usually the actor's own.
struct Sender {
  std::string actor;
  std::string device;
};

// What an enqueue through the admin adapter came to.
struct AdminExchange {
  net::Exchange exchange;  // as sent and answered, for the transcript
  // An error, in words, when the adapter gave no answer or a status the profile does not expect.
  base::Result<void> accepted;
};

// What the declarations adapter's requests came to: each exchange in order, up to the first
// not accepted.
struct AdminSteps {
  std::vector<net::Exchange> exchanges;
  base::Result<void> accepted;
};

class TargetSession {
 public:
  // `profile` must outlive the session. Its devices' identities come from a pool of the
  // session's own: for a caller whose run is this one session (the network fuzzer).
  explicit TargetSession(const TargetProfile& profile);
  // Identities come from `identities`, the run's, shared with the run's other sessions so that
  // no two devices of the run get the same one. Both must outlive the session; `identities`
  // must be made from `profile.identity`.
  TargetSession(const TargetProfile& profile, IdentityPool& identities);
  ~TargetSession();
  TargetSession(const TargetSession&) = delete;
  TargetSession& operator=(const TargetSession&) = delete;

  const TargetProfile& profile() const { return profile_; }

  // Gives `device` its identity, one per device (its users share it, as on a Mac), from the
  // session's IdentityPool: issued for `udid` from the profile's issuer, or a pool identity no
  // other device of the run has had; source "none" in identity mode none. Returns what it gave,
  // for the report. Fails with the issuer's reason, or when the pool has no identity left.
  base::Result<DeviceIdentity> add_device(const std::string& device, const std::string& udid);
  // Gives `device` an identity obtained elsewhere (a case's device that enrolls through SCEP
  // whatever the profile's identity source is).
  void add_device(const std::string& device, const DeviceIdentity& given);

  // Makes the sender's connection now rather than at its first request (parallel steps make all
  // theirs before any thread starts). Safe to call from several threads.
  void connect(const Sender& from);

  // A PUT to the endpoint's URL with its Content-Type: what a macOS client sends.
  net::Request request_to(protocol::Endpoint to, std::string body) const;
  // Sends `request` on the sender's connection, with an Mdm-Signature over its body made with the
  // sender's device identity where the profile signs (one already there is replaced). Fails only
  // when the body cannot be signed; no answer is an Exchange with its transport error. Senders
  // with different connections may send from different threads at once.
  base::Result<net::Exchange> send(const Sender& from, net::Request request);
  // Sends `request` on the sender's connection exactly as it is, unsigned: for a caller that
  // could not sign a body and sends it all the same (the fuzzer).
  net::Exchange send_unsigned(const Sender& from, const net::Request& request);
  // A check-in message or command report body to its endpoint.
  base::Result<net::Exchange> send(const Sender& from, protocol::Endpoint to, std::string body);
  // An emulated client's message (a check-in or a report) to its endpoint.
  base::Result<net::Exchange> send(const Sender& from, const emulator::Message& message);

  // Queues `command` (a command plist) for `channel` through the profile's admin adapter: its
  // method and URL template, Basic auth, and expected status. The profile must have one.
  AdminExchange enqueue(const protocol::Channel& channel, const plist::Dict& command);
  // Waits the adapter's settle time: an asynchronous queue (MicroMDM) may not hold a command
  // yet when it accepts it.
  void settle() const;

  // Through the profile's `admin.declarations` (which it must have): a declaration (its JSON)
  // stored on the server; given to a channel; taken from it (nothing sent when the adapter has
  // no unassign requests: accepted is then an error saying so).
  AdminSteps put_declaration(const std::string& declaration_json);
  AdminSteps assign_declaration(const protocol::Channel& channel, const std::string& identifier);
  AdminSteps unassign_declaration(const protocol::Channel& channel, const std::string& identifier);

 private:
  net::HttpClient& client_for(const Sender& from);
  // One admin request on the admin connection, judged against the statuses that mean done.
  AdminExchange send_admin(net::Request request, const std::vector<int>& expect_status);
  AdminSteps declaration_steps(const std::vector<AdminRequest>& steps, const protocol::Channel& channel,
                               const std::string& identifier);

  const TargetProfile& profile_;
  std::unique_ptr<IdentityPool> own_identities_;                     // when no run's pool was given
  IdentityPool& identity_source_;                                    // the run's, or own_identities_
  std::map<std::string, pki::Identity> identities_;                  // by device
  std::map<std::string, std::unique_ptr<net::HttpClient>> clients_;  // by actor and device
  std::unique_ptr<net::HttpClient> admin_;
  std::mutex clients_mu_;  // connections are made from parallel steps' threads
  std::mutex admin_mu_;    // so is an enqueue during a series; one admin connection serves all
};

// `text` with every `key` replaced by `value`, left to right; a value that contains the key is
// not filled again. The one substitution of the harness: `${saved:NAME}` in override values,
// `{channel}`, `{udid}` and `{user_id}` in admin URLs.
std::string fill_in(std::string text, std::string_view key, std::string_view value);

// The admin URL for a channel: `{channel}` as the server names it (NanoMDM "UDID" or
// "UDID:UserID"; MicroMDM the bare UserID for a user), `{udid}` and `{user_id}`.
std::string admin_url(const AdminEndpoint& admin, const protocol::Channel& channel);
// The same for a declarations request, with {identifier} and {set} (the channel's own set).
std::string declarations_url(const DeclarationsAdmin& admin, const std::string& url_template,
                             const protocol::Channel& channel, const std::string& identifier);

// A short reason when the target's check-in URL does not accept a connection the profile
// trusts, with the profile key that likely explains it; nothing when it answers at all,
// whatever it answers.
std::optional<std::string> probe_reachable(const TargetProfile& target);

// The key of `target` that most likely explains a transport failure on the way to it, and why:
// "tls.ca: the server's certificate does not chain to the CA it names". `presented_certificate`
// says whether the connection offered a TLS client certificate. Nothing when no key would help:
// the server alone is to blame (a deadline, a reset, bytes that are not HTTP, an expired
// server certificate). A guess from one symptom, worded as one.
std::optional<std::string> likely_profile_key(net::TransportError error, const TargetProfile& target,
                                              bool presented_certificate);

// Where the profile's device identities come from, as its key: "identity.issuer" or "identity.pool".
std::string identity_source_key(const TargetProfile& target);

// The SHA-256 (lower-case hex) of the certificate the check-in URL presents in a TLS handshake
// made with the profile's trust: which server a certification is of. An error, in words, for a
// plain-HTTP URL or a handshake that fails.
base::Result<std::string> server_certificate_sha256(const TargetProfile& target);

// "410 with a zero-length body", "200 with 38 bytes: <?xml ...": an answer as findings quote it.
std::string describe_answer(const net::Response& response);

}  // namespace mdmc::target
