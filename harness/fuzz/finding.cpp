#include "harness/fuzz/finding.hpp"

#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/base/json_reader.hpp"
#include "harness/base/utf8.hpp"
#include "harness/net/exchange_json.hpp"
#include "harness/plist/value.hpp"

namespace mdmc::fuzz {
namespace {

using base::JsonReader;
using Json = nlohmann::ordered_json;

// Bodies in a finding that are binary plists also get their XML form, for people; text bodies
// (XML plists among them) are readable as they are.
constexpr std::size_t kPlistDescriptionChars = 64 * 1024;

void describe_if_binary_plist(Json& into, std::string_view key, std::string_view body) {
  if (base::is_valid_utf8(body) || !plist::parse(body)) return;
  into[std::string(key)] = describe_body(body, kPlistDescriptionChars);
}

// Findings written before they shared report.json's encoding held each body as
// {"base64": ..., "bytes": N, "plist": "..."}; the byte count and the description are derived,
// so such a body is read as its base64 alone.
void drop_legacy_body_fields(Json& body) {
  if (body.is_object() && body.size() > 1 && body.contains("base64")) body = Json{{"base64", body["base64"]}};
}

}  // namespace

Reproducer make_reproducer(const Session& session, const Outcome& outcome, std::string_view input) {
  Reproducer r;
  r.oracle = std::string(oracle_name(outcome.oracle));
  r.detail = outcome.detail;
  r.endpoint = std::string(endpoint_name(endpoint_for(input)));
  r.target_name = session.options().target.name;
  r.target_file = session.options().target.file;
  r.udid = session.options().udid;
  r.user_id = session.options().user_id;
  r.found_at = base::now_rfc3339();
  r.request = outcome.exchange.request;
  if (outcome.exchange.response) {
    r.response = *outcome.exchange.response;
    if (r.response->body.size() > kReproducerBodyCap) r.response->body.resize(kReproducerBodyCap);
  } else {
    r.transport_error =
        fmt::format("{} ({})", net::transport_error_name(outcome.exchange.error), outcome.exchange.error_detail);
  }
  // The inputs before this one since the last good probe: a target broken by an earlier
  // input is reproduced by sending them all.
  const auto& recent = session.recent_inputs();
  for (std::size_t i = 0; i + 1 < recent.size(); ++i) r.history.push_back(recent[i]);
  r.probe = outcome.probe;
  if (r.probe && r.probe->response && r.probe->response->body.size() > kReproducerBodyCap) {
    r.probe->response->body.resize(kReproducerBodyCap);
  }
  return r;
}

std::string reproducer_to_json(const Reproducer& r) {
  Json j = Json::object();
  j["kind"] = std::string(kFindingKind);
  j["oracle"] = r.oracle;
  j["detail"] = base::sanitize_utf8(r.detail);
  j["endpoint"] = r.endpoint;
  j["target"] = {{"name", base::sanitize_utf8(r.target_name)}, {"file", base::sanitize_utf8(r.target_file)}};
  j["device"] = {{"udid", base::sanitize_utf8(r.udid)}, {"user_id", base::sanitize_utf8(r.user_id)}};
  j["found_at"] = r.found_at;
  j["request"] = net::request_to_json(r.request);
  describe_if_binary_plist(j, "request_plist", r.request.body);
  if (r.response) {
    j["response"] = net::response_to_json(*r.response);
    describe_if_binary_plist(j, "response_plist", r.response->body);
  }
  if (!r.transport_error.empty()) j["transport_error"] = base::sanitize_utf8(r.transport_error);
  if (!r.key.empty()) {
    j["key"] = base::sanitize_utf8(r.key);
    j["input_phrase"] = base::sanitize_utf8(r.input_phrase);
    j["key_paths"] = base::sanitize_utf8(r.key_paths);
    j["answer_shape"] = base::sanitize_utf8(r.answer_shape);
    j["minimised"] = r.minimised;
    j["minimise_note"] = base::sanitize_utf8(r.minimise_note);
    if (r.original) {
      j["original"] = net::bytes_to_json(*r.original);
      describe_if_binary_plist(j, "original_plist", *r.original);
    }
  }
  Json history = Json::array();
  for (const auto& h : r.history) history.push_back(net::bytes_to_json(h));
  j["history"] = std::move(history);
  if (r.probe) {
    Json probe = {{"url", net::bytes_to_json(r.probe->request.url)}};
    if (r.probe->response) {
      probe["response"] = net::response_to_json(*r.probe->response);
    } else {
      probe["transport_error"] = std::string(net::transport_error_name(r.probe->error));
    }
    j["probe"] = std::move(probe);
  }
  // Every string above is valid UTF-8; replace is a second guard so that dump never throws.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

base::Result<Reproducer> reproducer_from_json(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return base::fail("not JSON");
  if (!j.contains("kind") || j["kind"] != std::string(kFindingKind)) {
    return base::fail("not an mdmconform finding (kind is not mdmconform-finding)");
  }
  if (j.contains("request") && j["request"].is_object() && j["request"].contains("body")) {
    drop_legacy_body_fields(j["request"]["body"]);
  }
  if (j.contains("history") && j["history"].is_array()) {
    for (auto& h : j["history"]) drop_legacy_body_fields(h);
  }

  JsonReader r;
  Reproducer out;
  const std::string top;
  auto optional_string = [&](const Json& obj, std::string_view key, const std::string& path, std::string fallback) {
    return obj.is_object() && obj.contains(key) ? r.string(obj, key, path) : fallback;
  };
  out.oracle = optional_string(j, "oracle", top, "");
  out.detail = optional_string(j, "detail", top, "");
  out.endpoint = optional_string(j, "endpoint", top, "");
  out.found_at = optional_string(j, "found_at", top, "");
  if (const Json* target = r.object(j, "target", top)) {
    out.target_name = optional_string(*target, "name", "target", "");
    out.target_file = optional_string(*target, "file", "target", "");
  }
  if (const Json* device = r.object(j, "device", top)) {
    out.udid = optional_string(*device, "udid", "device", std::string(kFuzzUdid));
    out.user_id = optional_string(*device, "user_id", "device", std::string(kFuzzUserId));
  }
  if (const Json* request = r.object(j, "request", top)) out.request = net::request_from_json(r, *request, "request");
  if (j.contains("response") && j["response"].is_object()) {
    if (j["response"].contains("body")) drop_legacy_body_fields(j["response"]["body"]);
    out.response = net::response_from_json(r, j["response"], "response");
  }
  out.transport_error = optional_string(j, "transport_error", top, "");
  out.key = optional_string(j, "key", top, "");
  out.input_phrase = optional_string(j, "input_phrase", top, "");
  out.key_paths = optional_string(j, "key_paths", top, "");
  out.answer_shape = optional_string(j, "answer_shape", top, "");
  out.minimise_note = optional_string(j, "minimise_note", top, "");
  out.minimised = j.contains("minimised") && j["minimised"].is_boolean() && j["minimised"].get<bool>();
  if (j.contains("original")) out.original = r.as_bytes(j["original"], "original");
  if (j.contains("history")) {
    if (const Json* history = r.array(j, "history", top)) {
      for (std::size_t i = 0; i < history->size() && r.ok(); ++i) {
        out.history.push_back(r.as_bytes((*history)[i], JsonReader::index("history", i)));
      }
    }
  }
  if (!r.ok()) return base::fail(r.error());
  return out;
}

base::Result<std::filesystem::path> write_reproducer(const std::filesystem::path& dir, const Reproducer& reproducer) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return base::fail("cannot create " + dir.string() + ": " + ec.message());
  // Named by the deduplication key: the same finding found again (by another fuzzing process of
  // the run) lands on the same file.
  auto path = dir / ("finding-" +
                     (reproducer.key.empty() ? base::sha256_hex(reproducer.request.body).substr(0, 16)
                                             : finding_key_hash(reproducer.key)) +
                     ".json");
  if (auto written = base::write_file_atomically(path, reproducer_to_json(reproducer)); !written)
    return written.error();
  return path;
}

std::string retarget_input(std::string_view input, const InputOwner& from, const InputOwner& to) {
  std::string out(input);
  auto swap = [&](const std::string& a, const std::string& b) {
    if (a.empty() || a == b || a.size() != b.size()) return;
    for (auto at = out.find(a); at != std::string::npos; at = out.find(a, at + b.size())) out.replace(at, a.size(), b);
  };
  swap(from.udid, to.udid);
  swap(from.user_id, to.user_id);
  return out;
}

std::string finding_key(std::string_view oracle, std::string_view endpoint, std::string_view kind,
                        std::string_view key_paths, std::string_view answer_shape) {
  return fmt::format("{}|{}|{}|{}|{}", oracle, endpoint, kind, key_paths, answer_shape);
}

std::string finding_key_hash(std::string_view key) { return base::sha256_hex(key).substr(0, 16); }

std::string describe_body(std::string_view body, std::size_t max_chars) {
  if (body.empty()) return "(empty body)";
  if (auto parsed = plist::parse(body)) {
    auto xml = plist::to_xml(*parsed);
    if (xml.size() > max_chars)
      xml = xml.substr(0, max_chars) + fmt::format("\n... ({} more characters)", xml.size() - max_chars);
    return xml;
  }
  std::string out;
  for (unsigned char c : body.substr(0, max_chars)) {
    if (c == '\n' || (c >= 0x20 && c < 0x7f))
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (body.size() > max_chars) out += fmt::format("... ({} bytes in all)", body.size());
  return out;
}

}  // namespace mdmc::fuzz
