#include "harness/net/exchange_json.hpp"

#include <cstdint>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "harness/base/bytes.hpp"
#include "harness/base/clock.hpp"
#include "harness/base/utf8.hpp"

namespace mdmc::net {
namespace {

using base::JsonReader;

// Free text meant for people; invalid UTF-8 becomes U+FFFD.
Json text_json(std::string_view text) { return Json(base::sanitize_utf8(text)); }

std::optional<TransportError> transport_error_from_name(std::string_view name) {
  // Walks the enum from none to its last value.
  for (int i = 0; i <= static_cast<int>(kLastTransportError); ++i) {
    const auto e = static_cast<TransportError>(i);
    if (transport_error_name(e) == name) return e;
  }
  return std::nullopt;
}

}  // namespace

Json bytes_to_json(std::string_view bytes) {
  if (base::is_valid_utf8(bytes)) return Json(bytes);
  Json wrapped = Json::object();
  wrapped["base64"] = base::base64_encode(bytes);
  return wrapped;
}

Json headers_to_json(const Headers& headers) {
  Json out = Json::array();
  for (const auto& h : headers) {
    Json pair = Json::array();
    pair.push_back(bytes_to_json(h.name));
    pair.push_back(bytes_to_json(h.value));
    out.push_back(std::move(pair));
  }
  return out;
}

Json request_to_json(const Request& request) {
  Json out = Json::object();
  out["method"] = bytes_to_json(request.method);
  out["url"] = bytes_to_json(request.url);
  out["headers"] = headers_to_json(request.headers);
  out["body"] = bytes_to_json(request.body);
  return out;
}

Json response_to_json(const Response& response) {
  Json out = Json::object();
  out["status"] = response.status;
  out["reason"] = bytes_to_json(response.reason);
  out["headers"] = headers_to_json(response.headers);
  out["body"] = bytes_to_json(response.body);
  return out;
}

void append_exchange_json(Json& out, const Exchange& x) {
  out["started"] = base::rfc3339_us(x.started);
  out["elapsed_us"] = static_cast<std::int64_t>(x.elapsed.count());
  out["reused_connection"] = x.reused_connection;
  if (!x.redirects.empty()) {
    Json redirects = Json::array();
    for (const auto& url : x.redirects) redirects.push_back(text_json(url));
    out["redirects"] = std::move(redirects);
  }
  out["tls"] = x.tls;
  out["tls_verified"] = x.tls_verified;
  if (x.error != TransportError::none) out["error"] = std::string(transport_error_name(x.error));
  out["error_detail"] = text_json(x.error_detail);
  out["request"] = request_to_json(x.request);
  out["response"] = x.response ? response_to_json(*x.response) : Json(nullptr);
}

Headers headers_from_json(JsonReader& r, const Json& obj, const std::string& path) {
  Headers out;
  const Json* arr = r.array(obj, "headers", path);
  if (!arr) return out;
  const std::string base = JsonReader::join(path, "headers");
  for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
    const Json& pair = (*arr)[i];
    const std::string where = JsonReader::index(base, i);
    if (!pair.is_array() || pair.size() != 2) {
      r.fail(where, "expected [name, value]");
      break;
    }
    Header h;
    h.name = r.as_bytes(pair[0], JsonReader::index(where, 0));
    h.value = r.as_bytes(pair[1], JsonReader::index(where, 1));
    out.push_back(std::move(h));
  }
  return out;
}

Request request_from_json(JsonReader& r, const Json& obj, const std::string& path) {
  Request request;
  request.method = r.bytes(obj, "method", path);
  request.url = r.bytes(obj, "url", path);
  request.headers = headers_from_json(r, obj, path);
  request.body = r.bytes(obj, "body", path);
  return request;
}

Response response_from_json(JsonReader& r, const Json& obj, const std::string& path) {
  Response response;
  response.status = static_cast<int>(r.integer(obj, "status", path, 0, 999));
  response.reason = r.bytes(obj, "reason", path);
  response.headers = headers_from_json(r, obj, path);
  response.body = r.bytes(obj, "body", path);
  return response;
}

Exchange exchange_from_json(JsonReader& r, const Json& j, const std::string& path) {
  Exchange x;
  const std::string started = r.string(j, "started", path);
  if (r.ok()) {
    if (auto tp = base::parse_rfc3339(started)) {
      x.started = *tp;
    } else {
      r.fail(JsonReader::join(path, "started"), "not an RFC 3339 time");
    }
  }
  x.elapsed = std::chrono::microseconds{r.integer(j, "elapsed_us", path)};
  x.reused_connection = r.boolean(j, "reused_connection", path);
  if (j.contains("redirects")) x.redirects = r.strings(j, "redirects", path);
  x.tls = r.boolean(j, "tls", path);
  x.tls_verified = r.boolean(j, "tls_verified", path);
  if (r.ok() && j.contains("error")) {
    const std::string name = r.string(j, "error", path);
    if (auto e = transport_error_from_name(name); e && *e != TransportError::none) {
      x.error = *e;
    } else if (r.ok()) {
      r.fail(JsonReader::join(path, "error"), fmt::format("unknown transport error \"{}\"", name));
    }
  }
  x.error_detail = r.string(j, "error_detail", path);
  if (const Json* req = r.object(j, "request", path)) {
    x.request = request_from_json(r, *req, JsonReader::join(path, "request"));
  }
  if (const Json* resp = r.member(j, "response", path); resp && !resp->is_null()) {
    const std::string where = JsonReader::join(path, "response");
    if (!resp->is_object()) {
      r.fail(where, "expected an object or null");
    } else {
      x.response = response_from_json(r, *resp, where);
    }
  }
  return x;
}

}  // namespace mdmc::net
