#pragma once
// What the push tests share: a run's PKI (the endpoint's CA, a push CA and an MDM push
// certificate whose subject UID is its topic, a provider token key), and a started FakeApns.
#include <memory>
#include <string>

#include "harness/pki/pki.hpp"
#include "harness/push/apns_client.hpp"
#include "harness/push/apns_endpoint.hpp"

namespace mdmc::push::testing {

inline constexpr const char* kTopic = "com.apple.mgmt.External.2f4b7d4e-5d0c-4a47-9a8e-0c7c2f1e3b6a";
inline constexpr const char* kKeyId = "ABC123DEFG";
inline constexpr const char* kTeamId = "DEF123GHIJ";
inline constexpr const char* kToken = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
inline constexpr const char* kMagic = "9A0C2B4E-7F1D-4C3B-8E5A-6D2F1B0C9E87";

struct PushPki {
  pki::Identity ca;                // issues the endpoint's certificate
  pki::Identity server;            // 127.0.0.1, localhost, api.push.apple.com, api.sandbox.push.apple.com
  pki::Identity push_ca;           // issues push certificates
  pki::Identity push_certificate;  // UID=kTopic, CN=APSP:..., from push_ca
  pki::Identity stranger_push;     // the same shape from a CA the endpoint does not trust
  pki::Identity token_key;         // an EC P-256 key (and a certificate holding its public key)
};
// Made once per test binary.
const PushPki& push_pki();

// Both auth ways on, topics unrestricted.
FakeApnsConfig endpoint_config();
// A client for `port` on loopback, trusting the endpoint; no credentials.
ApnsClientConfig client_config(std::uint16_t port);

}  // namespace mdmc::push::testing
