#include "harness/push/push_request.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"

namespace mdmc::push {
namespace {

using Json = nlohmann::json;

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A topic is a bundle identifier ("com.apple.mgmt.External.<uuid>"), with suffixes like
// ".voip" or ".complication": letters, digits, '.', '-' and '_'.
bool well_formed_topic(std::string_view topic) {
  if (topic.empty() || topic.size() > 255) return false;
  return std::all_of(topic.begin(), topic.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
  });
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

constexpr std::array<std::string_view, 11> kPushTypes = {"alert",        "background",   "location", "voip",
                                                         "complication", "fileprovider", "mdm",      "liveactivity",
                                                         "pushtotalk",   "controls",     "widgets"};

// The headers APNs reads; a repeat of any of them is DuplicateHeaders.
constexpr std::array<std::string_view, 7> kApnsHeaders = {
    "authorization", "apns-id", "apns-expiration", "apns-priority", "apns-topic", "apns-collapse-id", "apns-push-type"};

Verdict refuse(Verdict verdict, int status, std::string reason, std::string detail) {
  verdict.status = status;
  verdict.reason = std::move(reason);
  verdict.detail = std::move(detail);
  return verdict;
}

std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 80)) out += std::isprint(static_cast<unsigned char>(c)) != 0 ? c : '?';
  if (text.size() > 80) out += "...";
  return out;
}

}  // namespace

std::string_view auth_method_name(AuthMethod method) {
  switch (method) {
    case AuthMethod::certificate: return "certificate";
    case AuthMethod::token: return "token";
    case AuthMethod::none: break;
  }
  return "none";
}

Verdict judge_push(const PushRequest& request, const ConnectionAuth& auth, const PushPolicy& policy,
                   base::SystemTime now) {
  Verdict verdict;
  if (request.method != "POST") {
    return refuse(verdict, 405, "MethodNotAllowed", "method " + printable(request.method));
  }
  const std::string_view path = request.path;
  if (path.substr(0, kDevicePathPrefix.size()) != kDevicePathPrefix) {
    return refuse(verdict, 404, "BadPath", "path " + printable(path));
  }
  const std::string_view token = path.substr(kDevicePathPrefix.size());
  if (token.empty()) return refuse(verdict, 400, "MissingDeviceToken", "no token after /3/device/");
  if (token.find('/') != std::string_view::npos || token.find('?') != std::string_view::npos) {
    return refuse(verdict, 404, "BadPath", "path " + printable(path));
  }
  if (token.size() != 2 * policy.device_token_bytes || !std::all_of(token.begin(), token.end(), is_hex)) {
    return refuse(
        verdict, 400, "BadDeviceToken",
        "token " + printable(token) + " is not " + std::to_string(2 * policy.device_token_bytes) + " hex digits");
  }
  verdict.device_token = lower(token);

  std::array<std::optional<std::string_view>, kApnsHeaders.size()> seen;
  for (const auto& header : request.headers) {
    for (std::size_t i = 0; i < kApnsHeaders.size(); ++i) {
      if (header.name != kApnsHeaders[i]) continue;
      if (seen[i]) return refuse(verdict, 400, "DuplicateHeaders", std::string(kApnsHeaders[i]) + " repeated");
      seen[i] = header.value;
    }
  }
  const auto& authorization = seen[0];
  const auto& apns_id = seen[1];
  const auto& expiration = seen[2];
  const auto& priority = seen[3];
  const auto& topic = seen[4];
  const auto& collapse_id = seen[5];
  const auto& push_type = seen[6];

  // Authentication: a verified push certificate, else a provider token.
  if (auth.certificate_presented) {
    if (!policy.accept_certificates || !auth.certificate_verified) {
      return refuse(verdict, 403, "BadCertificate", "client certificate " + printable(auth.certificate_subject));
    }
    verdict.auth = AuthMethod::certificate;
  } else {
    if (!authorization) return refuse(verdict, 403, "MissingProviderToken", "no client certificate, no authorization");
    const std::string_view value = *authorization;
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() <= kBearer.size() || !iequals(value.substr(0, kBearer.size()), kBearer)) {
      return refuse(verdict, 403, "InvalidProviderToken", "authorization is not \"bearer <token>\"");
    }
    if (!policy.token_policy) return refuse(verdict, 403, "InvalidProviderToken", "token authentication is off");
    const std::string_view bearer_token = value.substr(kBearer.size());
    auto rejection = check_provider_token(bearer_token, *policy.token_policy, now, auth.verified_token);
    if (!rejection.reason.empty())
      return refuse(verdict, 403, std::move(rejection.reason), std::move(rejection.detail));
    verdict.auth = AuthMethod::token;
    verdict.provider_token = std::string(bearer_token);
  }

  if (topic) {
    if (!well_formed_topic(*topic)) return refuse(verdict, 400, "BadTopic", "apns-topic " + printable(*topic));
    verdict.topic = std::string(*topic);
    if (verdict.auth == AuthMethod::certificate && !auth.certificate_topics.empty() &&
        std::find(auth.certificate_topics.begin(), auth.certificate_topics.end(), verdict.topic) ==
            auth.certificate_topics.end()) {
      return refuse(verdict, 400, "TopicDisallowed", "apns-topic " + verdict.topic + " is not the certificate's");
    }
  } else if (verdict.auth == AuthMethod::certificate && auth.certificate_topics.size() == 1) {
    // Apple: with a single-topic certificate the topic may be left out (NanoMDM does).
    verdict.topic = auth.certificate_topics.front();
  } else {
    return refuse(verdict, 400, "MissingTopic", "no apns-topic");
  }
  if (!policy.allowed_topics.empty() && std::find(policy.allowed_topics.begin(), policy.allowed_topics.end(),
                                                  verdict.topic) == policy.allowed_topics.end()) {
    return refuse(verdict, 400, "TopicDisallowed", "topic " + verdict.topic + " is not allowed");
  }
  if (push_type && std::find(kPushTypes.begin(), kPushTypes.end(), *push_type) == kPushTypes.end()) {
    return refuse(verdict, 400, "InvalidPushType", "apns-push-type " + printable(*push_type));
  }
  if (apns_id) {
    if (!is_uuid(*apns_id)) return refuse(verdict, 400, "BadMessageId", "apns-id " + printable(*apns_id));
    verdict.apns_id = std::string(*apns_id);
  }
  if (priority && *priority != "10" && *priority != "5" && *priority != "1") {
    return refuse(verdict, 400, "BadPriority", "apns-priority " + printable(*priority));
  }
  if (expiration && (!all_digits(*expiration) || expiration->size() > 18)) {
    return refuse(verdict, 400, "BadExpirationDate", "apns-expiration " + printable(*expiration));
  }
  if (collapse_id && collapse_id->size() > kMaxCollapseIdBytes) {
    return refuse(verdict, 400, "BadCollapseId",
                  "apns-collapse-id of " + std::to_string(collapse_id->size()) + " bytes");
  }
  if (request.body_too_large) {
    return refuse(verdict, 413, "PayloadTooLarge", "more than " + std::to_string(kMaxPayloadBytes) + " bytes");
  }
  if (request.body.empty()) return refuse(verdict, 400, "PayloadEmpty", "no body");
  return verdict;
}

std::vector<std::string> mdm_push_problems(const net::Headers& headers, std::string_view body) {
  std::vector<std::string> problems;
  for (const auto& header : headers) {
    if (header.name == "apns-push-type" && header.value != "mdm") {
      problems.push_back("apns-push-type " + printable(header.value) + ", not mdm");
    }
    if (header.name == "apns-priority" && header.value != "10" && header.value != "5") {
      problems.push_back("apns-priority " + printable(header.value) + ", not 10 or 5");
    }
  }
  if (body.size() > kMaxPayloadBytes) {
    problems.push_back("a body over " + std::to_string(kMaxPayloadBytes) + " bytes");
    return problems;
  }
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    problems.push_back("a body that is not a JSON object: " + printable(body.substr(0, 64)));
    return problems;
  }
  const auto mdm = json.find("mdm");
  if (mdm == json.end() || !mdm->is_string() || mdm->get<std::string>().empty()) {
    problems.push_back("a body without an \"mdm\" string (the PushMagic)");
  }
  for (const auto& [key, value] : json.items()) {
    if (key != "mdm") problems.push_back("a body with \"" + printable(key) + "\" beside \"mdm\"");
  }
  return problems;
}

std::optional<std::string> push_magic_of(std::string_view body) {
  if (body.size() > kMaxPayloadBytes) return std::nullopt;
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return std::nullopt;
  const auto mdm = json.find("mdm");
  if (mdm == json.end() || !mdm->is_string()) return std::nullopt;
  return mdm->get<std::string>();
}

std::string reason_body(std::string_view reason, std::optional<std::int64_t> timestamp_ms) {
  Json body = {{"reason", reason}};
  if (timestamp_ms) body["timestamp"] = *timestamp_ms;
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ReasonBody parse_reason_body(std::string_view body) {
  ReasonBody out;
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return out;
  if (const auto reason = json.find("reason"); reason != json.end() && reason->is_string()) {
    out.reason = reason->get<std::string>();
  }
  if (const auto timestamp = json.find("timestamp"); timestamp != json.end() && timestamp->is_number_integer()) {
    if (!timestamp->is_number_unsigned() || timestamp->get<std::uint64_t>() <= INT64_MAX) {
      out.timestamp_ms = timestamp->get<std::int64_t>();
    }
  }
  return out;
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !is_hex(text[i])) return false;
  }
  return true;
}

std::string random_uuid() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // RAND_bytes fails only without an entropy source; the id needs uniqueness, not secrecy.
    static std::atomic<std::uint64_t> counter{0};
    const std::uint64_t value = ++counter;
    for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  const std::string hex = base::hex_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

}  // namespace mdmc::push
