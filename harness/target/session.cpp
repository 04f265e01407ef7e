#include "harness/target/session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "harness/base/bytes.hpp"
#include "harness/protocol/messages.hpp"

namespace mdmc::target {
namespace {

std::string excerpt(std::string_view body, std::size_t max = 160) {
  std::string out;
  for (char c : body.substr(0, max)) {
    if (c == '\n' || c == '\t')
      out += ' ';
    else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      out += '.';
    else
      out += c;
  }
  if (body.size() > max) out += "...";
  return out;
}

// The server's certificate checked against the profile's trust, and no client certificate:
// what the admin adapter and the reachability probe connect with.
net::TlsClientConfig server_trust(const TargetProfile& target) {
  return net::TlsClientConfig{target.tls.ca_pem, target.tls.insecure, {}, {}, {}};
}

}  // namespace

TargetSession::TargetSession(const TargetProfile& profile)
    : profile_(profile),
      own_identities_(std::make_unique<IdentityPool>(profile.identity)),
      identity_source_(*own_identities_) {}

TargetSession::TargetSession(const TargetProfile& profile, IdentityPool& identities)
    : profile_(profile), identity_source_(identities) {}

TargetSession::~TargetSession() = default;

base::Result<DeviceIdentity> TargetSession::add_device(const std::string& device, const std::string& udid) {
  auto given = identity_source_.take(udid);
  if (!given) return given;
  if (profile_.identity.mode != IdentityMode::none) identities_[device] = given->identity;
  return given;
}

void TargetSession::add_device(const std::string& device, const DeviceIdentity& given) {
  if (profile_.identity.mode != IdentityMode::none) identities_[device] = given.identity;
}

net::HttpClient& TargetSession::client_for(const Sender& from) {
  auto key = from.actor + "|" + from.device;
  std::lock_guard lock(clients_mu_);
  auto& client = clients_[key];
  if (!client) {
    net::TlsClientConfig tls = server_trust(profile_);
    if (protocol::uses_mtls(profile_.identity.mode)) {
      const auto& identity = identities_.at(from.device);
      tls.client_cert_pem = identity.cert_pem;
      tls.client_key_pem = identity.key_pem;
      tls.client_chain_pem = identity.chain_pem;
    }
    client = std::make_unique<net::HttpClient>(profile_.limits, tls);
  }
  return *client;
}

void TargetSession::connect(const Sender& from) { (void)client_for(from); }

net::Request TargetSession::request_to(protocol::Endpoint to, std::string body) const {
  net::Request request;
  request.method = "PUT";
  request.url = to == protocol::Endpoint::check_in ? profile_.check_in_url : profile_.server_url;
  request.headers.push_back({"Content-Type", std::string(protocol::endpoint_content_type(to))});
  request.body = std::move(body);
  return request;
}

base::Result<net::Exchange> TargetSession::send(const Sender& from, net::Request request) {
  if (protocol::signs_bodies(profile_.identity.mode)) {
    // The signature is made for these exact bytes; one made for other bytes would be wrong.
    std::erase_if(request.headers, [](const net::Header& h) { return h.name == "Mdm-Signature"; });
    auto signature = pki::mdm_signature(identities_.at(from.device), request.body);
    if (!signature) return base::fail("could not sign the body: " + signature.message());
    request.headers.push_back({"Mdm-Signature", *signature});
  }
  return client_for(from).send(request);
}

net::Exchange TargetSession::send_unsigned(const Sender& from, const net::Request& request) {
  return client_for(from).send(request);
}

base::Result<net::Exchange> TargetSession::send(const Sender& from, protocol::Endpoint to, std::string body) {
  return send(from, request_to(to, std::move(body)));
}

base::Result<net::Exchange> TargetSession::send(const Sender& from, const emulator::Message& message) {
  return send(from, message.endpoint, message.bytes());
}

AdminExchange TargetSession::send_admin(net::Request request, const std::vector<int>& expect_status) {
  AdminExchange out;
  {
    std::lock_guard lock(admin_mu_);
    if (!admin_) admin_ = std::make_unique<net::HttpClient>(profile_.limits, server_trust(profile_));
    out.exchange = admin_->send(request);
  }
  const auto& exchange = out.exchange;
  if (!exchange.ok()) {
    out.accepted = base::fail(fmt::format("admin adapter: {} {}: no answer: {} ({})", request.method, request.url,
                                          net::transport_error_name(exchange.error), exchange.error_detail));
  } else if (std::find(expect_status.begin(), expect_status.end(), exchange.response->status) == expect_status.end()) {
    out.accepted = base::fail(fmt::format("admin adapter: {} {} answered {}", request.method, request.url,
                                          describe_answer(*exchange.response)));
  }
  return out;
}

namespace {

void add_basic_auth(net::Request& request, const std::string& user, const std::string& password) {
  if (user.empty()) return;
  request.headers.push_back({"Authorization", "Basic " + base::base64_encode(user + ":" + password)});
}

}  // namespace

AdminExchange TargetSession::enqueue(const protocol::Channel& channel, const plist::Dict& command) {
  const auto& admin = *profile_.enqueue;
  net::Request request{admin.method,
                       admin_url(admin, channel),
                       {{"Content-Type", std::string(protocol::kPlistContentType)}},
                       plist::to_xml(plist::Value(command))};
  add_basic_auth(request, admin.basic_user, admin.basic_password);
  return send_admin(std::move(request), admin.expect_status);
}

AdminSteps TargetSession::put_declaration(const std::string& declaration_json) {
  const auto& admin = *profile_.declarations;
  net::Request request{admin.put.method, admin.put.url, {{"Content-Type", "application/json"}}, declaration_json};
  add_basic_auth(request, admin.basic_user, admin.basic_password);
  auto sent = send_admin(std::move(request), admin.put.expect_status);
  AdminSteps out;
  out.exchanges.push_back(std::move(sent.exchange));
  out.accepted = std::move(sent.accepted);
  if (out.accepted.ok() && admin.settle.count() > 0) std::this_thread::sleep_for(admin.settle);
  return out;
}

AdminSteps TargetSession::declaration_steps(const std::vector<AdminRequest>& steps, const protocol::Channel& channel,
                                            const std::string& identifier) {
  const auto& admin = *profile_.declarations;
  AdminSteps out;
  for (const auto& step : steps) {
    net::Request request{step.method, declarations_url(admin, step.url, channel, identifier), {}, ""};
    add_basic_auth(request, admin.basic_user, admin.basic_password);
    auto sent = send_admin(std::move(request), step.expect_status);
    out.exchanges.push_back(std::move(sent.exchange));
    if (!sent.accepted.ok()) {
      out.accepted = std::move(sent.accepted);
      return out;
    }
  }
  if (admin.settle.count() > 0) std::this_thread::sleep_for(admin.settle);
  return out;
}

AdminSteps TargetSession::assign_declaration(const protocol::Channel& channel, const std::string& identifier) {
  return declaration_steps(profile_.declarations->assign, channel, identifier);
}

AdminSteps TargetSession::unassign_declaration(const protocol::Channel& channel, const std::string& identifier) {
  if (profile_.declarations->unassign.empty()) {
    AdminSteps out;
    out.accepted = base::fail("admin adapter: admin.declarations has no unassign requests");
    return out;
  }
  return declaration_steps(profile_.declarations->unassign, channel, identifier);
}

void TargetSession::settle() const {
  if (profile_.enqueue && profile_.enqueue->settle.count() > 0) std::this_thread::sleep_for(profile_.enqueue->settle);
}

std::string fill_in(std::string text, std::string_view key, std::string_view value) {
  if (key.empty()) return text;
  for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + value.size())) {
    text.replace(pos, key.size(), value);
  }
  return text;
}

namespace {

// RFC 3986's unreserved characters kept, every other byte %XX: an identifier is the profile's
// author's, and may hold what a URL gives meaning to.
std::string percent_encoded(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

}  // namespace

std::string declarations_url(const DeclarationsAdmin& admin, const std::string& url_template,
                             const protocol::Channel& channel, const std::string& identifier) {
  AdminEndpoint as_endpoint;
  as_endpoint.url = url_template;
  as_endpoint.channel_style = admin.channel_style;
  auto url = admin_url(as_endpoint, channel);
  url = fill_in(std::move(url), "{identifier}", percent_encoded(identifier));
  return fill_in(std::move(url), "{set}", "mdmconform-" + base::sha256_hex(channel.id()).substr(0, 12));
}

std::string admin_url(const AdminEndpoint& admin, const protocol::Channel& channel) {
  bool bare_user = admin.channel_style == ChannelStyle::user_id && channel.is_user();
  auto url = fill_in(admin.url, "{channel}", bare_user ? channel.user_id : channel.id());
  url = fill_in(std::move(url), "{udid}", channel.udid);
  return fill_in(std::move(url), "{user_id}", channel.user_id);
}

std::optional<std::string> probe_reachable(const TargetProfile& target) {
  net::HttpClient http(target.limits, server_trust(target));
  // An empty PUT: any HTTP answer, even a 400, proves the server is there.
  net::Request request{"PUT", target.check_in_url, {{"Content-Type", std::string(protocol::kCheckInContentType)}}, ""};
  auto exchange = http.send(request);
  // Only a failure to connect means "unreachable"; a server that answers garbage is there, and
  // gets verdicts for it.
  switch (exchange.error) {
    case net::TransportError::bad_url:
    case net::TransportError::resolve_failed:
    case net::TransportError::connect_failed:
    case net::TransportError::connect_timeout:
    // A server whose certificate the profile does not trust is, for this profile, not there.
    case net::TransportError::tls_untrusted_certificate:
    case net::TransportError::tls_name_mismatch:
    case net::TransportError::tls_certificate_expired:
    case net::TransportError::tls_handshake_failed: break;
    default: return std::nullopt;
  }
  auto reason =
      fmt::format("{}: {} ({})", target.check_in_url, net::transport_error_name(exchange.error), exchange.error_detail);
  if (auto key = likely_profile_key(exchange.error, target, false)) reason += "; likely profile key: " + *key;
  return reason;
}

std::optional<std::string> likely_profile_key(net::TransportError error, const TargetProfile& target,
                                              bool presented_certificate) {
  const auto mode = fmt::format("identity.mode ({})", protocol::identity_mode_name(target.identity.mode));
  switch (error) {
    case net::TransportError::bad_url:
    case net::TransportError::resolve_failed:
    case net::TransportError::connect_failed:
    case net::TransportError::connect_timeout:
      return "urls.check_in (or urls.server, its default): nothing accepts a connection at that address";
    case net::TransportError::tls_untrusted_certificate:
      return target.tls.ca_pem.empty() ? "tls.ca: the server's certificate does not chain to a CA of the system's "
                                         "store, and tls.ca names none"
                                       : "tls.ca: the server's certificate does not chain to the CA it names";
    case net::TransportError::tls_name_mismatch:
      return "urls.check_in: its host is not a name the server's certificate holds";
    case net::TransportError::tls_client_certificate_rejected:
      if (presented_certificate) {
        return mode + " or " + identity_source_key(target) + ": the server refused the TLS client certificate";
      }
      return mode + ": the server wants a TLS client certificate (mode mtls or both), and this mode sends none";
    case net::TransportError::tls_handshake_failed:
      if (presented_certificate) {
        return mode + " or " + identity_source_key(target) +
               ": the handshake failed with a TLS client certificate offered; the server may not accept it";
      }
      return "urls.check_in: an https:// URL where the server may not speak TLS";
    default: return std::nullopt;
  }
}

std::string identity_source_key(const TargetProfile& target) {
  return target.identity.pool.empty() ? "identity.issuer" : "identity.pool";
}

base::Result<std::string> server_certificate_sha256(const TargetProfile& target) {
  const auto url = net::parse_url(target.check_in_url);
  if (!url || url->scheme != "https") return base::fail(target.check_in_url + " is not an https URL");
  net::HttpClient http(target.limits, server_trust(target));
  // The handshake is what counts; the empty PUT is the reachability probe's, which any server takes.
  net::Request request{"PUT", target.check_in_url, {{"Content-Type", std::string(protocol::kCheckInContentType)}}, ""};
  const auto exchange = http.send(request);
  if (http.server_certificate_der().empty()) {
    return base::fail(fmt::format("{}: {} ({})", target.check_in_url, net::transport_error_name(exchange.error),
                                  exchange.error_detail));
  }
  return base::sha256_hex(http.server_certificate_der());
}

std::string describe_answer(const net::Response& r) {
  if (r.body.empty()) return fmt::format("{} with a zero-length body", r.status);
  return fmt::format("{} with {} bytes: {}", r.status, r.body.size(), excerpt(r.body));
}

}  // namespace mdmc::target
