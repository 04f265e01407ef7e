// The enrollment profile: read from whatever a server sends, judged against Apple's schema
// (detail/profile_schema.hpp, generated from it) for ENR-PROFILE. docs/enrollment-profile.md
// lists what is read and checked, and where each fact comes from.
#include "harness/enroll/enrollment_profile.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <utility>

#include "harness/base/bytes.hpp"
#include "harness/enroll/detail/profile_schema.hpp"
#include "harness/pki/pki.hpp"
#include "harness/pki/signed_profile.hpp"
#include "harness/plist/value.hpp"

namespace mdmc::enroll {
namespace {

using detail::Problems;

constexpr std::string_view kMdmType = "com.apple.mdm";
constexpr std::string_view kScepType = "com.apple.security.scep";
constexpr std::string_view kPkcs12Type = "com.apple.security.pkcs12";
constexpr std::string_view kAcmeType = "com.apple.security.acme";
constexpr std::string_view kRootType = "com.apple.security.root";
constexpr std::string_view kPkcs1Type = "com.apple.security.pkcs1";
constexpr std::string_view kPerUserConnections = "com.apple.mdm.per-user-connections";

// A real profile nests seven deep (profile, payloads, payload, SCEP PayloadContent, Subject,
// RDN, pair); anything far deeper is not an enrollment profile.
plist::Limits profile_limits() {
  plist::Limits limits;
  limits.max_bytes = kMaxEnrollmentProfileBytes;
  limits.max_depth = 32;
  limits.max_nodes = 100'000;
  return limits;
}

int to_int(std::int64_t value) {
  return static_cast<int>(
      std::clamp<std::int64_t>(value, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

std::optional<std::int64_t> integer_at(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  if (it == dict.end() || !it->second.as_integer()) return std::nullopt;
  return *it->second.as_integer();
}

std::optional<std::string> string_at(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  if (it == dict.end() || !it->second.as_string()) return std::nullopt;
  return *it->second.as_string();
}

std::optional<bool> bool_at(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  if (it == dict.end() || !it->second.as_bool()) return std::nullopt;
  return *it->second.as_bool();
}

const plist::Data* data_at(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  return it == dict.end() ? nullptr : it->second.as_data();
}

const plist::Dict* dict_at(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  return it == dict.end() ? nullptr : it->second.as_dict();
}

const plist::Array* array_at(const plist::Dict& dict, std::string_view key) {
  auto it = dict.find(key);
  return it == dict.end() ? nullptr : it->second.as_array();
}

// One payload of PayloadContent, with the name problems give it.
struct Payload {
  const plist::Dict* dict = nullptr;
  std::string type;
  std::string uuid;
  std::string label;  // its PayloadType; with its place when the type occurs more than once
};

std::vector<Payload> list_payloads(const plist::Array& content) {
  std::vector<Payload> payloads;
  std::map<std::string, std::size_t> per_type;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const plist::Dict* dict = content[i].as_dict();
    if (!dict) continue;  // TopLevel's check names it
    Payload payload{dict, string_at(*dict, "PayloadType").value_or(""), string_at(*dict, "PayloadUUID").value_or(""),
                    "PayloadContent[" + std::to_string(i) + "]"};
    ++per_type[payload.type];
    payloads.push_back(std::move(payload));
  }
  for (auto& payload : payloads) {
    if (payload.type.empty()) continue;
    payload.label = per_type[payload.type] > 1 ? payload.type + " (" + payload.label + ")" : payload.type;
  }
  return payloads;
}

// AccessRights against the rules com.apple.mdm.yaml states for it.
void check_access_rights(std::int64_t rights, Problems& problems) {
  const std::string prefix = "com.apple.mdm: AccessRights " + std::to_string(rights);
  if (detail::kAccessRightsNotZero && rights == 0) {
    problems.add(prefix + " grants nothing; Apple's schema says not to set it to 0");
    return;
  }
  std::int64_t known = 0;
  for (std::int64_t bit : detail::kAccessRightsBits) known |= bit;
  if (rights < 0 || (rights & ~known) != 0) {
    problems.add(prefix + " sets bits Apple's schema does not define (" + std::to_string(known) + " is every right)");
  }
  for (const auto& need : detail::kAccessRightsNeeds) {
    if ((rights & need.bit) != 0 && (rights & need.needed) == 0) {
      problems.add(prefix + " sets " + std::to_string(need.bit) + " without " + std::to_string(need.needed) +
                   " (Apple's schema: specify " + std::to_string(need.needed) + " if you specify " +
                   std::to_string(need.bit) + ")");
    }
  }
}

MdmPayload read_mdm(const Payload& payload, Problems& problems) {
  const plist::Dict& dict = *payload.dict;
  MdmPayload mdm;
  mdm.payload_uuid = payload.uuid;
  mdm.server_url = string_at(dict, "ServerURL").value_or("");
  mdm.check_in_url = string_at(dict, "CheckInURL");
  mdm.topic = string_at(dict, "Topic").value_or("");
  mdm.identity_certificate_uuid = string_at(dict, "IdentityCertificateUUID").value_or("");
  mdm.sign_message = bool_at(dict, "SignMessage");
  if (const plist::Array* capabilities = array_at(dict, "ServerCapabilities")) {
    for (const auto& capability : *capabilities) {
      if (const std::string* text = capability.as_string()) mdm.server_capabilities.push_back(*text);
    }
  }
  mdm.check_out_when_removed = bool_at(dict, "CheckOutWhenRemoved");
  mdm.access_rights = integer_at(dict, "AccessRights");
  mdm.use_development_apns = bool_at(dict, "UseDevelopmentAPNS").value_or(false);

  if (auto topic = string_at(dict, "Topic"); topic && !topic->starts_with(detail::kTopicPrefix)) {
    problems.add("com.apple.mdm: Topic " + detail::quote_value(*topic) + " does not begin " +
                 std::string(detail::kTopicPrefix));
  }
  if (mdm.access_rights) check_access_rights(*mdm.access_rights, problems);
  return mdm;
}

// The schema's names of a SCEP payload's SubjectAltName kinds (rfc822Name, dNSName, ...).
std::vector<std::string_view> subject_alt_name_kinds() {
  std::vector<std::string_view> kinds;
  const auto* scep = detail::find_payload_schema(kScepType);
  if (!scep) return kinds;
  for (const auto& key : detail::keys_of(*scep)) {
    if (key.name != "PayloadContent") continue;
    for (const auto& inner : detail::children(key)) {
      if (inner.name != "SubjectAltName") continue;
      for (const auto& kind : detail::children(inner)) kinds.push_back(kind.name);
    }
  }
  return kinds;
}

// Subject: [[["O","x"]],[["CN","y"],["OU","z"]]]: RDNs, each an array of [type, value] pairs.
// Pairs of another shape are skipped here; check_keys names them.
std::vector<std::vector<SubjectAttribute>> read_subject(const plist::Array& subject) {
  std::vector<std::vector<SubjectAttribute>> rdns;
  for (const auto& rdn_value : subject) {
    const plist::Array* rdn = rdn_value.as_array();
    if (!rdn) continue;
    std::vector<SubjectAttribute> attributes;
    for (const auto& pair_value : *rdn) {
      const plist::Array* pair = pair_value.as_array();
      if (!pair || pair->size() != 2 || !(*pair)[0].as_string() || !(*pair)[1].as_string()) continue;
      attributes.emplace_back(*(*pair)[0].as_string(), *(*pair)[1].as_string());
    }
    if (!attributes.empty()) rdns.push_back(std::move(attributes));
  }
  return rdns;
}

ScepRequest read_scep(const plist::Dict& content) {
  ScepRequest request;
  request.url = string_at(content, "URL").value_or("");
  request.ca_name = string_at(content, "Name").value_or("");
  if (const plist::Array* subject = array_at(content, "Subject")) request.subject = read_subject(*subject);
  request.challenge = string_at(content, "Challenge").value_or("");
  if (auto size = integer_at(content, "Keysize")) request.key_size = to_int(*size);
  if (auto type = string_at(content, "Key Type")) request.key_type = *type;
  if (auto usage = integer_at(content, "Key Usage")) request.key_usage = to_int(*usage);
  if (const plist::Data* fingerprint = data_at(content, "CAFingerprint")) request.ca_fingerprint = fingerprint->bytes;
  if (auto retries = integer_at(content, "Retries")) request.retries = std::max(0, to_int(*retries));
  if (auto delay = integer_at(content, "RetryDelay")) request.retry_delay_seconds = std::max(0, to_int(*delay));
  if (const plist::Dict* names = dict_at(content, "SubjectAltName")) {
    for (std::string_view kind : subject_alt_name_kinds()) {
      auto it = names->find(kind);
      if (it == names->end()) continue;
      std::vector<std::string> values;
      if (const std::string* one = it->second.as_string()) values.push_back(*one);
      if (const plist::Array* several = it->second.as_array()) {
        for (const auto& value : *several) {
          if (const std::string* text = value.as_string()) values.push_back(*text);
        }
      }
      if (!values.empty()) request.subject_alt_names[std::string(kind)] = std::move(values);
    }
  }
  return request;
}

IdentityPayload read_identity(const Payload& payload, Problems& problems) {
  IdentityPayload identity;
  identity.payload_type = payload.type;
  identity.payload_uuid = payload.uuid;
  const plist::Dict& dict = *payload.dict;
  if (payload.type == kScepType) {
    identity.kind = IdentityKind::scep;
    if (const plist::Dict* content = dict_at(dict, "PayloadContent")) identity.scep = read_scep(*content);
  } else if (payload.type == kPkcs12Type) {
    identity.kind = IdentityKind::pkcs12;
    if (const plist::Data* content = data_at(dict, "PayloadContent")) identity.pkcs12_der = content->bytes;
    identity.pkcs12_password = string_at(dict, "Password").value_or("");
  } else if (payload.type == kAcmeType) {
    identity.kind = IdentityKind::acme;
    identity.acme_directory_url = string_at(dict, "DirectoryURL").value_or("");
  } else {
    identity.kind = IdentityKind::other;
    problems.add("com.apple.mdm: IdentityCertificateUUID names " + payload.label + ", " +
                 (payload.type.empty() ? std::string("a payload without PayloadType") : "a " + payload.type) +
                 " payload, which holds no identity (a " + std::string(kScepType) + ", " + std::string(kPkcs12Type) +
                 " or " + std::string(kAcmeType) + " payload does)");
  }
  return identity;
}

std::string der_to_pem(std::string_view der) {
  const std::string base64 = base::base64_encode(der);
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (std::size_t i = 0; i < base64.size(); i += 64) {
    pem.append(base64, i, 64);
    pem += '\n';
  }
  pem += "-----END CERTIFICATE-----\n";
  return pem;
}

// PayloadContent of a root or pkcs1 payload, as PEM: Apple takes DER or PEM bytes there.
std::optional<CaPayload> read_ca(const Payload& payload, Problems& problems) {
  const plist::Data* content = data_at(*payload.dict, "PayloadContent");
  if (!content) return std::nullopt;  // check_keys names it
  std::string_view bytes = content->bytes;
  const auto text_start = bytes.find_first_not_of(" \t\r\n");
  const bool pem = text_start != std::string_view::npos && bytes.substr(text_start).starts_with("-----BEGIN");
  CaPayload ca{payload.type, payload.uuid, pem ? std::string(bytes) : der_to_pem(bytes)};
  auto count = pki::count_certificates(ca.cert_pem);
  if (!count || *count == 0) {
    problems.add(payload.label + ": PayloadContent is not a certificate, DER or PEM (" +
                 (count ? std::string("no certificate block") : count.message()) + ")");
    return std::nullopt;
  }
  return ca;
}

// Every ENR-PROFILE check of a profile's plist, and what it gives.
void judge(const plist::Dict& top, EnrollmentProfile& out, Problems& problems) {
  const auto* top_level = detail::find_payload_schema(detail::kTopLevel);
  const auto* common = detail::find_payload_schema(detail::kCommonPayloadKeys);
  if (top_level) detail::check_keys(top, detail::keys_of(*top_level), "top level", "", problems);
  const plist::Array* content = array_at(top, "PayloadContent");
  const std::vector<Payload> payloads = content ? list_payloads(*content) : std::vector<Payload>{};

  std::map<std::string, std::size_t> per_type;
  for (const auto& payload : payloads) {
    ++per_type[payload.type];
    if (common) detail::check_keys(*payload.dict, detail::keys_of(*common), payload.label, "", problems);
    if (payload.type == detail::kTopLevel || payload.type == detail::kCommonPayloadKeys) continue;
    if (const auto* schema = detail::find_payload_schema(payload.type)) {
      detail::check_keys(*payload.dict, detail::keys_of(*schema), payload.label, "", problems);
    }
  }
  for (const auto& [type, count] : per_type) {
    const auto* schema = detail::find_payload_schema(type);
    if (count > 1 && schema && !schema->multiple && type != detail::kTopLevel && type != detail::kCommonPayloadKeys) {
      problems.add(type + ": the profile has " + std::to_string(count) + " " + type +
                   " payloads; macOS takes one (Apple's schema)");
    }
  }

  const Payload* mdm_payload = nullptr;
  if (per_type[std::string(kMdmType)] == 0) {
    problems.add("com.apple.mdm: the profile has no com.apple.mdm payload");
  } else if (per_type[std::string(kMdmType)] == 1) {
    mdm_payload = &*std::find_if(payloads.begin(), payloads.end(), [](const Payload& p) { return p.type == kMdmType; });
    out.mdm = read_mdm(*mdm_payload, problems);
  }

  if (out.mdm && string_at(*mdm_payload->dict, "IdentityCertificateUUID")) {
    const std::string& uuid = out.mdm->identity_certificate_uuid;
    std::vector<const Payload*> named;
    for (const auto& payload : payloads) {
      if (payload.dict != mdm_payload->dict && payload.uuid == uuid) named.push_back(&payload);
    }
    if (named.empty()) {
      problems.add("com.apple.mdm: IdentityCertificateUUID " + detail::quote_value(uuid) +
                   " names no payload in the profile");
    } else if (named.size() > 1) {
      problems.add("com.apple.mdm: IdentityCertificateUUID " + detail::quote_value(uuid) + " names " +
                   std::to_string(named.size()) + " payloads; PayloadUUID must tell them apart");
    } else {
      out.identity = read_identity(*named.front(), problems);
    }
  }

  for (const auto& payload : payloads) {
    if (payload.type != kRootType && payload.type != kPkcs1Type) continue;
    if (auto ca = read_ca(payload, problems)) out.cas.push_back(*std::move(ca));
  }
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A web page where a profile should be: a login page, a proxy's error page.
std::optional<std::string> html_page(const net::Response& response) {
  if (auto type = net::find_header(response.headers, "Content-Type")) {
    const std::string value = lower(*type);
    if (value.find_first_not_of(" \t") != std::string::npos &&
        std::string_view(value).substr(value.find_first_not_of(" \t")).starts_with("text/html")) {
      return "Content-Type " + *type;
    }
  }
  std::string_view body = response.body;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  const auto start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return std::nullopt;
  const std::string head = lower(body.substr(start, 16));
  if (head.starts_with("<!doctype html") || head.starts_with("<html"))
    return "the body starts " + head.substr(0, 5) + "...";
  return std::nullopt;
}

}  // namespace

bool MdmPayload::per_user_connections() const {
  return std::find(server_capabilities.begin(), server_capabilities.end(), kPerUserConnections) !=
         server_capabilities.end();
}

base::Result<EnrollmentProfile> read_enrollment_profile(std::string_view bytes, const std::string& trusted_ca_pem) {
  if (bytes.size() > kMaxEnrollmentProfileBytes) {
    return base::fail("enrollment profile: " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                      std::to_string(kMaxEnrollmentProfileBytes));
  }
  EnrollmentProfile out;
  out.sha256 = base::sha256_hex(bytes);
  Problems problems;
  std::string signed_content;
  std::string_view content = bytes;
  // A DER SignedData starts with a SEQUENCE (0x30, '0'); no plist does.
  if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) == 0x30) {
    auto checked = pki::verify_signed_profile(bytes, trusted_ca_pem);
    if (!checked) {
      return base::fail("enrollment profile: neither a plist nor CMS SignedData with content: " + checked.message());
    }
    switch (checked->status) {
      case pki::ProfileSignatureStatus::verified: out.signature = ProfileSignature::verified; break;
      case pki::ProfileSignatureStatus::untrusted: out.signature = ProfileSignature::untrusted; break;
      case pki::ProfileSignatureStatus::invalid: out.signature = ProfileSignature::invalid; break;
    }
    out.signer_subject = std::move(checked->signer_subject);
    out.signature_detail = std::move(checked->detail);
    if (out.signature == ProfileSignature::invalid) {
      problems.add("signature: the profile's CMS signature does not hold (" + out.signature_detail +
                   "); a Mac refuses the profile");
    }
    signed_content = std::move(checked->content);
    content = signed_content;
  }
  auto parsed = plist::parse(content, profile_limits());
  if (!parsed) {
    return base::fail(std::string("enrollment profile: ") +
                      (out.signature == ProfileSignature::unsigned_profile ? "neither a plist nor CMS SignedData"
                                                                           : "the signed content is not a plist") +
                      ": " + parsed.message());
  }
  const plist::Dict* top = parsed->as_dict();
  if (!top) {
    return base::fail("enrollment profile: the plist's top is " + std::string(detail::value_type_name(*parsed)) +
                      ", not a <dictionary>");
  }
  judge(*top, out, problems);
  out.problems = std::move(problems).take();
  return out;
}

namespace {
class FetchCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "enrollment-profile-fetch"; }
  std::string message(int e) const override {
    return static_cast<FetchError>(e) == FetchError::no_answer ? "no_answer" : "not_a_profile";
  }
};
}  // namespace

std::error_code make_error_code(FetchError e) {
  static const FetchCategory category;
  return {static_cast<int>(e), category};
}

base::Result<FetchedProfile> fetch_enrollment_profile(const ProfileSource& source) {
  net::ClientLimits limits = source.limits;
  // A body one byte over the cap ends the read there (body_too_large): a huge or endless body
  // costs at most the cap and the client's body deadline.
  limits.max_body_bytes = std::min(limits.max_body_bytes, kMaxEnrollmentProfileBytes);
  net::HttpClient client(limits, source.tls);
  net::Request request;
  request.method = "GET";
  request.url = source.url;
  if (!source.basic_user.empty()) {
    request.headers.push_back(
        {"Authorization", "Basic " + base::base64_encode(source.basic_user + ":" + source.basic_password)});
  }
  for (const auto& [name, value] : source.headers) request.headers.push_back({name, value});
  net::Exchange exchange = client.send(request);
  client.close();
  const std::string where = "GET " + source.url;
  if (!exchange.ok()) {
    if (exchange.error == net::TransportError::body_too_large) {
      return base::Error{where + ": the body runs over " + std::to_string(limits.max_body_bytes) +
                             " bytes, more than an enrollment profile; cut there and refused",
                         make_error_code(FetchError::not_a_profile)};
    }
    std::string reason = where + ": no profile: " + std::string(net::transport_error_name(exchange.error));
    if (!exchange.error_detail.empty()) reason += " (" + exchange.error_detail + ")";
    return base::Error{std::move(reason), make_error_code(FetchError::no_answer)};
  }
  const net::Response& response = *exchange.response;
  if (response.status != 200) {
    std::string reason = where + ": HTTP " + std::to_string(response.status);
    if (!response.reason.empty()) reason += " " + response.reason;
    return base::Error{reason + ", not 200: no profile", make_error_code(FetchError::not_a_profile)};
  }
  if (response.body.empty()) {
    return base::Error{where + ": HTTP 200 with an empty body, not a profile",
                       make_error_code(FetchError::not_a_profile)};
  }
  if (auto page = html_page(response)) {
    return base::Error{where + ": HTTP 200 with an HTML page (" + *page +
                           ") where the profile should be: a login page or a proxy's error?",
                       make_error_code(FetchError::not_a_profile)};
  }
  FetchedProfile fetched;
  fetched.bytes = response.body;
  fetched.exchange = std::move(exchange);
  return fetched;
}

ScepRequest fill_device_variables(ScepRequest request, const std::map<std::string, std::string>& variables) {
  // Apple's device variables; the map names them with or without the percent signs.
  static constexpr std::array<std::string_view, 4> kNames = {"ComputerName", "HardwareUUID", "SerialNumber", "UDID"};
  auto value_of = [&](std::string_view name) -> const std::string* {
    if (auto it = variables.find(std::string(name)); it != variables.end()) return &it->second;
    if (auto it = variables.find("%" + std::string(name) + "%"); it != variables.end()) return &it->second;
    return nullptr;
  };
  // One pass: a value that itself holds %UDID% is not filled again.
  auto fill = [&](const std::string& text) {
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
      bool filled = false;
      if (text[i] == '%') {
        for (std::string_view name : kNames) {
          const std::string_view rest = std::string_view(text).substr(i + 1);
          if (rest.size() > name.size() && rest.starts_with(name) && rest[name.size()] == '%') {
            if (const std::string* value = value_of(name)) {
              out += *value;
              i += name.size() + 2;
              filled = true;
            }
            break;
          }
        }
      }
      if (!filled) out += text[i++];
    }
    return out;
  };
  for (auto& rdn : request.subject) {
    for (auto& attribute : rdn) attribute.second = fill(attribute.second);
  }
  for (auto& [kind, values] : request.subject_alt_names) {
    for (auto& value : values) value = fill(value);
  }
  request.challenge = fill(request.challenge);
  return request;
}

}  // namespace mdmc::enroll
