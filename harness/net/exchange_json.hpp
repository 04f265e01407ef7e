#pragma once
// The one JSON form of HTTP on the wire, shared by every record that keeps exchanges (a run's
// report.json, a fuzzing finding). Bytes a peer sent (method, URL, header names and values,
// reason phrase, bodies) are a string when they are valid UTF-8, else {"base64": "..."}, so
// that they survive exactly; headers are [name, value] pairs in their order. Writing never
// throws on what a peer sent; reading names the JSON path of the first problem (see
// base::JsonReader).
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "harness/base/json_reader.hpp"
#include "harness/net/http.hpp"

namespace mdmc::net {

// ordered_json keeps keys in the order they are written, so that records diff readably.
using Json = nlohmann::ordered_json;

// Wire bytes: a string when valid UTF-8, else {"base64": "..."}.
Json bytes_to_json(std::string_view bytes);
Json headers_to_json(const Headers& headers);
// {"method", "url", "headers", "body"}.
Json request_to_json(const Request& request);
// {"status", "reason", "headers", "body"}.
Json response_to_json(const Response& response);
// Appends an exchange's fields to `out`, in this order: started (RFC 3339 with microseconds),
// elapsed_us, reused_connection, redirects (when any), tls, tls_verified, error (when there was
// one), error_detail, request, response (null when none came). Text meant for people
// (redirects, error_detail) has invalid UTF-8 replaced by U+FFFD.
void append_exchange_json(Json& out, const Exchange& exchange);

// The readers of the forms above; on a problem, `r` records it and the result is a placeholder.
Headers headers_from_json(base::JsonReader& r, const Json& obj, const std::string& path);
Request request_from_json(base::JsonReader& r, const Json& obj, const std::string& path);
Response response_from_json(base::JsonReader& r, const Json& obj, const std::string& path);
// The fields append_exchange_json writes, read from `obj`; "redirects" and "error" may be absent.
Exchange exchange_from_json(base::JsonReader& r, const Json& obj, const std::string& path);

}  // namespace mdmc::net
