#include "harness/report/report.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "harness/pki/pki.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/report/html.hpp"
#include "harness/plist/value.hpp"
#include "harness/base/bytes.hpp"

namespace mdmc::report {
namespace {

using namespace detail;

namespace chr = std::chrono;
namespace fs = std::filesystem;
using scenario::CaseResult;
using scenario::Finding;
using scenario::Level;
using scenario::RuleResult;
using scenario::RunResult;
using scenario::TranscriptEntry;
using scenario::Verdict;
// ordered_json keeps keys in the order they are written, so report.json diffs stay readable.
using Json = nlohmann::ordered_json;

constexpr std::array kVerdicts = {Verdict::pass, Verdict::skip, Verdict::warn, Verdict::fail,
                                  Verdict::error};
constexpr std::array kLevels = {Level::must, Level::should, Level::may};

// ---------------------------------------------------------------------------------------------
// Text: UTF-8, base64.

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


// Strict RFC 4648 decoding: length a multiple of 4, padding only at the end, no whitespace.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t n = 0;
  int bits = 0;
  for (std::size_t i = 0; i < in.size() - pad; ++i) {
    const auto pos = kBase64Alphabet.find(in[i]);
    if (pos == std::string_view::npos) return std::nullopt;
    n = (n << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((n >> bits) & 0xFF);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Time.

struct CivilTime {
  int year;
  unsigned month, day, hour, minute, second;
  long long subsecond_us;
};

CivilTime civil_utc(chr::system_clock::time_point tp) {
  const auto us = chr::floor<chr::microseconds>(tp);
  const auto day = chr::floor<chr::days>(us);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss hms{us - day};
  return {static_cast<int>(ymd.year()),
          static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()),
          static_cast<unsigned>(hms.hours().count()),
          static_cast<unsigned>(hms.minutes().count()),
          static_cast<unsigned>(hms.seconds().count()),
          static_cast<long long>(hms.subseconds().count())};
}

// "2026-11-29T08:51:55.123456Z": microseconds, so that the order of exchanges made at once on
// loopback (often well under a millisecond each) survives in the record.
std::string format_rfc3339_us(chr::system_clock::time_point tp) {
  const CivilTime t = civil_utc(tp);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", t.year, t.month, t.day, t.hour,
                     t.minute, t.second, t.subsecond_us);
}

// Reads exactly `width` decimal digits at s[pos].
bool read_digits(std::string_view s, std::size_t pos, std::size_t width, int& out) {
  if (pos + width > s.size()) return false;
  out = 0;
  for (std::size_t k = pos; k < pos + width; ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
    out = out * 10 + (s[k] - '0');
  }
  return true;
}

// RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)". Fractions beyond the
// clock's resolution are truncated; a leap second (":60") counts as the next second.
std::optional<chr::system_clock::time_point> parse_rfc3339(std::string_view s) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !read_digits(s, 0, 4, year) || s[4] != '-' ||
      !read_digits(s, 5, 2, month) || s[7] != '-' || !read_digits(s, 8, 2, day) ||
      (s[10] != 'T' && s[10] != 't') || !read_digits(s, 11, 2, hour) || s[13] != ':' ||
      !read_digits(s, 14, 2, minute) || s[16] != ':' || !read_digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  const chr::year_month_day ymd{chr::year{year}, chr::month{static_cast<unsigned>(month)},
                                chr::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::size_t pos = 19;
  chr::nanoseconds fraction{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    long long ns = 0;
    std::size_t used = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (used < 9) {
        ns = ns * 10 + (s[pos] - '0');
        ++used;
      }
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (; used < 9; ++used) ns *= 10;
    fraction = chr::nanoseconds{ns};
  }
  chr::minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!read_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !read_digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = chr::hours{oh} + chr::minutes{om};
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const auto local = chr::sys_days{ymd} + chr::hours{hour} + chr::minutes{minute} +
                     chr::seconds{second} + fraction;
  return chr::time_point_cast<chr::system_clock::duration>(local - offset);
}

// ---------------------------------------------------------------------------------------------
// Counting.

std::array<int, kVerdicts.size()> count_verdicts(const RunResult& run) {
  std::array<int, kVerdicts.size()> counts{};
  for (const auto& c : run.cases) ++counts[static_cast<std::size_t>(c.verdict)];
  return counts;
}

int count_of(const std::array<int, kVerdicts.size()>& counts, Verdict v) {
  return counts[static_cast<std::size_t>(v)];
}

std::vector<const Finding*> failed_findings(const CaseResult& c) {
  std::vector<const Finding*> out;
  for (const auto& f : c.findings) {
    if (!f.passed) out.push_back(&f);
  }
  return out;
}

std::string describe_finding(const Finding& f) {
  return fmt::format("{}: expected {}, got {}", f.rule, f.expected, f.actual);
}

// ---------------------------------------------------------------------------------------------
// report.json, writing.

// Bytes the target sent (bodies, header fields, reason phrases): a string when they are valid
// UTF-8, else {"base64": "..."}, so that they survive exactly.
Json bytes_json(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return Json(bytes);
  Json wrapped = Json::object();
  wrapped["base64"] = base::base64_encode(bytes);
  return wrapped;
}

// Free text meant for people; invalid UTF-8 becomes U+FFFD.
Json text_json(std::string_view text) { return Json(sanitize_utf8(text)); }

Json headers_json(const net::Headers& headers) {
  Json out = Json::array();
  for (const auto& h : headers) {
    Json pair = Json::array();
    pair.push_back(bytes_json(h.name));
    pair.push_back(bytes_json(h.value));
    out.push_back(std::move(pair));
  }
  return out;
}

Json strings_json(const std::vector<std::string>& values) {
  Json out = Json::array();
  for (const auto& v : values) out.push_back(text_json(v));
  return out;
}

Json transcript_entry_json(const TranscriptEntry& entry) {
  const net::Exchange& x = entry.exchange;
  Json j = Json::object();
  j["actor"] = text_json(entry.actor);
  j["label"] = text_json(entry.label);
  if (entry.step) j["step"] = *entry.step;
  j["started"] = format_rfc3339_us(x.started);
  j["elapsed_us"] = static_cast<std::int64_t>(x.elapsed.count());
  j["reused_connection"] = x.reused_connection;
  if (!x.redirects.empty()) j["redirects"] = strings_json(x.redirects);
  j["tls"] = x.tls;
  j["tls_verified"] = x.tls_verified;
  if (x.error != net::TransportError::none) {
    j["error"] = std::string(net::transport_error_name(x.error));
  }
  j["error_detail"] = text_json(x.error_detail);
  Json request = Json::object();
  request["method"] = bytes_json(x.request.method);
  request["url"] = bytes_json(x.request.url);
  request["headers"] = headers_json(x.request.headers);
  request["body"] = bytes_json(x.request.body);
  j["request"] = std::move(request);
  if (x.response) {
    Json response = Json::object();
    response["status"] = x.response->status;
    response["reason"] = bytes_json(x.response->reason);
    response["headers"] = headers_json(x.response->headers);
    response["body"] = bytes_json(x.response->body);
    if (entry.response_body_cut) {
      // The body above is its first kTranscriptBodyCap bytes; these describe the whole.
      response["body_cut"] = Json{{"bytes", entry.response_body_cut->bytes},
                                  {"sha256", entry.response_body_cut->sha256}};
    }
    j["response"] = std::move(response);
  } else {
    j["response"] = nullptr;
  }
  return j;
}

Json case_json(const CaseResult& c) {
  Json j = Json::object();
  j["id"] = text_json(c.id);
  j["title"] = text_json(c.title);
  j["rules"] = strings_json(c.rules);
  j["verdict"] = std::string(scenario::verdict_name(c.verdict));
  j["reason"] = text_json(c.reason);
  j["elapsed_ms"] = static_cast<std::int64_t>(c.elapsed.count());
  j["flaky"] = c.flaky;
  j["attempts"] = strings_json(c.attempts);
  j["reproducer"] = text_json(c.reproducer);
  Json findings = Json::array();
  for (const auto& f : c.findings) {
    Json fj = Json::object();
    fj["rule"] = text_json(f.rule);
    fj["level"] = std::string(scenario::level_name(f.level));
    fj["passed"] = f.passed;
    fj["expected"] = text_json(f.expected);
    fj["actual"] = text_json(f.actual);
    fj["step"] = f.step;
    findings.push_back(std::move(fj));
  }
  j["findings"] = std::move(findings);
  Json transcript = Json::array();
  for (const auto& entry : c.transcript) transcript.push_back(transcript_entry_json(entry));
  j["transcript"] = std::move(transcript);
  return j;
}

Json rule_json(const RuleResult& r) {
  Json j = Json::object();
  j["id"] = text_json(r.id);
  j["level"] = std::string(scenario::level_name(r.level));
  j["verdict"] = std::string(scenario::verdict_name(r.verdict));
  j["cases"] = strings_json(r.cases);
  j["failed_cases"] = strings_json(r.failed_cases);
  j["summary"] = text_json(r.summary);
  j["apple"] = text_json(r.apple);
  j["source"] = text_json(r.source);
  j["grounding"] = text_json(r.grounding);
  return j;
}

// ---------------------------------------------------------------------------------------------
// report.json, reading. Every accessor checks the type it expects and records the first
// problem with its JSON path; after a failure the results are placeholders and are discarded.

class Reader {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void fail(const std::string& path, std::string_view what) {
    if (error_.empty()) error_ = fmt::format("{}: {}", path.empty() ? "(top)" : path, what);
  }

  const Json* member(const Json& obj, std::string_view key, const std::string& path) {
    if (!obj.is_object()) {
      fail(path, "expected an object");
      return nullptr;
    }
    auto it = obj.find(key);
    if (it == obj.end()) {
      fail(join(path, key), "missing");
      return nullptr;
    }
    return &*it;
  }

  const Json* object(const Json& obj, std::string_view key, const std::string& path) {
    const Json* j = member(obj, key, path);
    if (j && !j->is_object()) {
      fail(join(path, key), "expected an object");
      return nullptr;
    }
    return j;
  }

  const Json* array(const Json& obj, std::string_view key, const std::string& path) {
    const Json* j = member(obj, key, path);
    if (j && !j->is_array()) {
      fail(join(path, key), "expected an array");
      return nullptr;
    }
    return j;
  }

  std::string string(const Json& obj, std::string_view key, const std::string& path) {
    const Json* j = member(obj, key, path);
    return j ? as_string(*j, join(path, key)) : std::string();
  }

  std::string as_string(const Json& j, const std::string& path) {
    if (!j.is_string()) {
      fail(path, "expected a string");
      return {};
    }
    return j.get_ref<const std::string&>();
  }

  // A string, or {"base64": "..."} for bytes that are not UTF-8.
  std::string bytes(const Json& obj, std::string_view key, const std::string& path) {
    const Json* j = member(obj, key, path);
    return j ? as_bytes(*j, join(path, key)) : std::string();
  }

  std::string as_bytes(const Json& j, const std::string& path) {
    if (j.is_string()) return j.get_ref<const std::string&>();
    if (j.is_object() && j.size() == 1) {
      const std::string encoded = string(j, "base64", path);
      if (!ok()) return {};
      if (auto decoded = base64_decode(encoded)) return *std::move(decoded);
      fail(join(path, "base64"), "not valid base64");
      return {};
    }
    fail(path, "expected a string or {\"base64\": ...}");
    return {};
  }

  bool boolean(const Json& obj, std::string_view key, const std::string& path) {
    const Json* j = member(obj, key, path);
    if (!j) return false;
    if (!j->is_boolean()) {
      fail(join(path, key), "expected true or false");
      return false;
    }
    return j->get<bool>();
  }

  std::int64_t integer(const Json& obj, std::string_view key, const std::string& path,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
    const Json* j = member(obj, key, path);
    if (!j) return 0;
    const std::string where = join(path, key);
    if (j->is_number_unsigned()) {
      const auto u = j->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(max)) {
        fail(where, "out of range");
        return 0;
      }
      return static_cast<std::int64_t>(u);
    }
    if (!j->is_number_integer()) {
      fail(where, "expected an integer");
      return 0;
    }
    const auto v = j->get<std::int64_t>();
    if (v < min || v > max) {
      fail(where, "out of range");
      return 0;
    }
    return v;
  }

  std::vector<std::string> strings(const Json& obj, std::string_view key, const std::string& path) {
    std::vector<std::string> out;
    const Json* arr = array(obj, key, path);
    if (!arr) return out;
    for (std::size_t i = 0; i < arr->size() && ok(); ++i) {
      out.push_back(as_string((*arr)[i], index(join(path, key), i)));
    }
    return out;
  }

  Verdict verdict(const Json& obj, std::string_view key, const std::string& path) {
    const std::string name = string(obj, key, path);
    for (Verdict v : kVerdicts) {
      if (scenario::verdict_name(v) == name) return v;
    }
    if (ok()) fail(join(path, key), fmt::format("unknown verdict \"{}\"", name));
    return Verdict::error;
  }

  Level level(const Json& obj, std::string_view key, const std::string& path) {
    const std::string name = string(obj, key, path);
    for (Level l : kLevels) {
      if (scenario::level_name(l) == name) return l;
    }
    if (ok()) fail(join(path, key), fmt::format("unknown level \"{}\"", name));
    return Level::must;
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }
  static std::string index(const std::string& path, std::size_t i) {
    return fmt::format("{}[{}]", path, i);
  }

 private:
  std::string error_;
};

net::Headers read_headers(Reader& r, const Json& obj, const std::string& path) {
  net::Headers out;
  const Json* arr = r.array(obj, "headers", path);
  if (!arr) return out;
  const std::string base = Reader::join(path, "headers");
  for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
    const Json& pair = (*arr)[i];
    const std::string where = Reader::index(base, i);
    if (!pair.is_array() || pair.size() != 2) {
      r.fail(where, "expected [name, value]");
      break;
    }
    net::Header h;
    h.name = r.as_bytes(pair[0], Reader::index(where, 0));
    h.value = r.as_bytes(pair[1], Reader::index(where, 1));
    out.push_back(std::move(h));
  }
  return out;
}

std::optional<net::TransportError> transport_error_from_name(std::string_view name) {
  // Walks the enum from none to its last value.
  for (int i = 0; i <= static_cast<int>(net::kLastTransportError); ++i) {
    const auto e = static_cast<net::TransportError>(i);
    if (net::transport_error_name(e) == name) return e;
  }
  return std::nullopt;
}

TranscriptEntry read_transcript_entry(Reader& r, const Json& j, const std::string& path) {
  TranscriptEntry entry;
  net::Exchange& x = entry.exchange;
  entry.actor = r.string(j, "actor", path);
  entry.label = r.string(j, "label", path);
  // Records written before transcript entries named their step lack it.
  if (j.contains("step")) {
    entry.step = static_cast<int>(r.integer(j, "step", path, -1, std::numeric_limits<int>::max()));
  }
  const std::string started = r.string(j, "started", path);
  if (r.ok()) {
    if (auto tp = parse_rfc3339(started)) {
      x.started = *tp;
    } else {
      r.fail(Reader::join(path, "started"), "not an RFC 3339 time");
    }
  }
  x.elapsed = chr::microseconds{r.integer(j, "elapsed_us", path)};
  x.reused_connection = r.boolean(j, "reused_connection", path);
  if (j.contains("redirects")) x.redirects = r.strings(j, "redirects", path);
  x.tls = r.boolean(j, "tls", path);
  x.tls_verified = r.boolean(j, "tls_verified", path);
  if (r.ok() && j.contains("error")) {
    const std::string name = r.string(j, "error", path);
    if (auto e = transport_error_from_name(name); e && *e != net::TransportError::none) {
      x.error = *e;
    } else if (r.ok()) {
      r.fail(Reader::join(path, "error"), fmt::format("unknown transport error \"{}\"", name));
    }
  }
  x.error_detail = r.string(j, "error_detail", path);
  if (const Json* req = r.object(j, "request", path)) {
    const std::string where = Reader::join(path, "request");
    x.request.method = r.bytes(*req, "method", where);
    x.request.url = r.bytes(*req, "url", where);
    x.request.headers = read_headers(r, *req, where);
    x.request.body = r.bytes(*req, "body", where);
  }
  if (const Json* resp = r.member(j, "response", path); resp && !resp->is_null()) {
    const std::string where = Reader::join(path, "response");
    if (!resp->is_object()) {
      r.fail(where, "expected an object or null");
    } else {
      net::Response response;
      response.status = static_cast<int>(r.integer(*resp, "status", where, 0, 999));
      response.reason = r.bytes(*resp, "reason", where);
      response.headers = read_headers(r, *resp, where);
      response.body = r.bytes(*resp, "body", where);
      x.response = std::move(response);
      if (resp->contains("body_cut")) {
        if (const Json* cut = r.object(*resp, "body_cut", where)) {
          const std::string cut_where = Reader::join(where, "body_cut");
          entry.response_body_cut = scenario::CutBody{
              static_cast<std::size_t>(r.integer(*cut, "bytes", cut_where)), r.string(*cut, "sha256", cut_where)};
        }
      }
    }
  }
  return entry;
}

CaseResult read_case(Reader& r, const Json& j, const std::string& path) {
  CaseResult c;
  c.id = r.string(j, "id", path);
  c.title = r.string(j, "title", path);
  c.rules = r.strings(j, "rules", path);
  c.verdict = r.verdict(j, "verdict", path);
  c.reason = r.string(j, "reason", path);
  c.elapsed = chr::milliseconds{r.integer(j, "elapsed_ms", path)};
  // Records written before confirmation re-runs and reproducers existed lack these three.
  if (j.contains("flaky")) c.flaky = r.boolean(j, "flaky", path);
  if (j.contains("attempts")) c.attempts = r.strings(j, "attempts", path);
  if (j.contains("reproducer")) c.reproducer = r.string(j, "reproducer", path);
  if (const Json* arr = r.array(j, "findings", path)) {
    const std::string base = Reader::join(path, "findings");
    for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
      const Json& fj = (*arr)[i];
      const std::string where = Reader::index(base, i);
      Finding f;
      f.rule = r.string(fj, "rule", where);
      f.level = r.level(fj, "level", where);
      f.passed = r.boolean(fj, "passed", where);
      f.expected = r.string(fj, "expected", where);
      f.actual = r.string(fj, "actual", where);
      f.step = static_cast<int>(r.integer(fj, "step", where, std::numeric_limits<int>::min(),
                                          std::numeric_limits<int>::max()));
      c.findings.push_back(std::move(f));
    }
  }
  if (const Json* arr = r.array(j, "transcript", path)) {
    const std::string base = Reader::join(path, "transcript");
    for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
      c.transcript.push_back(read_transcript_entry(r, (*arr)[i], Reader::index(base, i)));
    }
  }
  return c;
}

RuleResult read_rule(Reader& r, const Json& j, const std::string& path) {
  RuleResult rule;
  rule.id = r.string(j, "id", path);
  rule.level = r.level(j, "level", path);
  rule.verdict = r.verdict(j, "verdict", path);
  rule.cases = r.strings(j, "cases", path);
  rule.failed_cases = r.strings(j, "failed_cases", path);
  // Records written before rules carried their text lack these.
  for (auto [key, field] : {std::pair{"summary", &rule.summary}, std::pair{"apple", &rule.apple},
                            std::pair{"source", &rule.source}, std::pair{"grounding", &rule.grounding}}) {
    if (j.contains(key)) *field = r.string(j, key, path);
  }
  return rule;
}

// ---------------------------------------------------------------------------------------------
// JUnit XML.

// XML 1.0's Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
bool is_xml_char(char32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
         (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

// Escapes text for element content, or for a double- or single-quoted attribute value when
// in_attribute is set (there, tab and newlines are written as character references so that
// attribute-value normalization does not turn them into spaces). Invalid UTF-8 becomes U+FFFD;
// characters XML 1.0 cannot carry at all are dropped.
std::string xml_escape(std::string_view s, bool in_attribute) {
  std::string out;
  out.reserve(s.size() + 16);
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    if (!is_xml_char(cp)) continue;
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += in_attribute ? "&quot;" : "\""; break;
      case '\'': out += in_attribute ? "&apos;" : "'"; break;
      case '\r': out += "&#13;"; break;  // a literal CR would be normalized away by parsers
      case '\n': out += in_attribute ? "&#10;" : "\n"; break;
      case '\t': out += in_attribute ? "&#9;" : "\t"; break;
      default: append_utf8(out, cp);
    }
  }
  return out;
}

std::string xml_attr(std::string_view s) { return xml_escape(s, true); }
std::string xml_text(std::string_view s) { return xml_escape(s, false); }

std::string junit_seconds(chr::milliseconds ms) {
  return fmt::format("{:.3f}", static_cast<double>(ms.count()) / 1000.0);
}

void append_property(std::string& out, std::string_view name, std::string_view value) {
  out += fmt::format("    <property name=\"{}\" value=\"{}\"/>\n", xml_attr(name), xml_attr(value));
}

// ---------------------------------------------------------------------------------------------
// Console.

std::string upper_verdict(Verdict v) {
  std::string s(scenario::verdict_name(v));
  for (char& ch : s) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return s;
}

void pad_to(std::string& out, std::string_view cell, std::size_t width) {
  out += cell;
  for (std::size_t w = width_of(cell); w < width; ++w) out += ' ';
}

// ---------------------------------------------------------------------------------------------
// Files.

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

void set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string filesystem_safe(std::string_view s, std::size_t max_len) {
  std::string out;
  for (char ch : s) {
    if (out.size() == max_len) break;
    const bool keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    out += keep ? ch : '_';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Redaction.

// Plist keys whose string and data values are secrets, wherever they sit in a body. From Apple's
// schemas (apple-device-management mdm/checkin, mdm/commands) and DESIGN.md. Left out on
// purpose: DigestChallenge (the server's nonce, public by design and needed to read the
// exchange), EncryptedNewRecoveryKey and FDE_PersonalRecoveryKeyCMS (already encrypted to the
// server's certificate), certificates (public), and profile keys such as the SCEP Challenge,
// which travel inside InstallProfile's Payload data and are not opened here.
constexpr std::array<std::string_view, 19> kSecretKeys = {
    // Check-in.
    "Token",           // TokenUpdate: the push token
    "PushMagic",       // TokenUpdate: what a push must carry to wake the device
    "UnlockToken",     // TokenUpdate; ClearPasscode command; UnlockToken command response
    "BootstrapToken",  // SetBootstrapToken request; GetBootstrapToken response
    "DigestResponse",  // UserAuthenticate: the answer to the DigestChallenge
    "AuthToken",       // the answer to UserAuthenticate with DigestResponse (DESIGN.md)
    "TokenData",       // GetToken response
    "SecurityToken",   // GetToken TokenParameters (watch pairing)
    // Commands and their results.
    "PushToken",                 // DeviceInformation: the push token again
    "ActivationLockBypassCode",  // ActivationLockBypassCode result
    "Password",                  // RequestMirroring, RotateFileVaultKey, Verify*Password/Lock
    "CurrentPassword",           // SetFirmwarePassword, SetRecoveryLock
    "NewPassword",               // SetFirmwarePassword, SetRecoveryLock
    "PrivateKeyExport",          // RotateFileVaultKey: a .p12 with the private key
    "PrivateKeyExportPassword",  // RotateFileVaultKey
    "passwordHash",              // AccountConfiguration, SetAutoAdminPassword: crackable offline
    "PIN",                       // DeviceLock, EraseDevice: unlocks the Mac
    "RedemptionCode",            // ApplyRedemptionCode: a paid App Store code
    "UnusedRedemptionCode",      // ManagedApplicationList
};

bool is_secret_key(std::string_view key) {
  return std::find(kSecretKeys.begin(), kSecretKeys.end(), key) != kSecretKeys.end();
}

// Shorter secrets are not searched for in free text: they would match by chance (a six-digit
// PIN inside a timestamp) and scrub text that holds no secret.
constexpr std::size_t kMinSecretText = 8;
// Containers below this depth are not walked; plist::parse already refuses deeper nesting (64).
constexpr std::size_t kMaxWalkDepth = 256;
constexpr std::string_view kRedacted = "<redacted>";  // fits the small-string buffer: no allocation
constexpr std::string_view kPemBegin = "-----BEGIN ";
constexpr std::string_view kPemDashes = "-----";
constexpr std::string_view kPemRedacted = "-----REDACTED PRIVATE KEY-----";

bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

std::string string_marker(std::string_view s) {
  return fmt::format("<redacted: {} chars>", width_of(s));
}
std::string data_marker(std::string_view bytes) {
  return fmt::format("<redacted: {} bytes>", bytes.size());
}

// "<redacted: 44 chars>" (unit "chars") or "<redacted: 32 bytes>" (unit "bytes"): what an earlier
// redaction left. Recognizing it keeps redaction idempotent.
bool is_marker(std::string_view s, std::string_view unit) {
  constexpr std::string_view kOpen = "<redacted: ";
  if (!s.starts_with(kOpen) || !s.ends_with(">")) return false;
  s.remove_prefix(kOpen.size());
  s.remove_suffix(1);
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  return digits > 0 && s.substr(digits) == fmt::format(" {}", unit);
}

// Replaces each PEM private key block (BEGIN line to the matching END line) by kPemRedacted.
// A block without its END line (a truncated excerpt) is redacted to the end of the text.
std::string scrub_pem(std::string_view text) {
  if (text.find(kPemBegin) == std::string_view::npos) return std::string(text);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t begin = text.find(kPemBegin, pos);
    if (begin == std::string_view::npos) break;
    const std::size_t label_start = begin + kPemBegin.size();
    const std::size_t label_end = text.find(kPemDashes, label_start);
    const std::string_view label =
        label_end == std::string_view::npos ? std::string_view()
                                            : text.substr(label_start, label_end - label_start);
    // "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY",
    // "PGP PRIVATE KEY BLOCK"; a label is one short line.
    if (label.empty() || label.size() > 64 || label.find('\n') != std::string_view::npos ||
        label.find("PRIVATE KEY") == std::string_view::npos) {
      out.append(text.substr(pos, label_start - pos));
      pos = label_start;
      continue;
    }
    out.append(text.substr(pos, begin - pos));
    out.append(kPemRedacted);
    const std::string end_line = fmt::format("-----END {}-----", label);
    const std::size_t end = text.find(end_line, label_end + kPemDashes.size());
    pos = end == std::string_view::npos ? text.size() : end + end_line.size();
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

std::string hex(std::string_view bytes, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0x0F];
  }
  return out;
}

// What one run's redaction found: the secrets' text, to scrub from free text later.
class Redactor {
 public:
  // A string secret as it may be quoted: itself and as XML element text.
  void remember_string(std::string_view s) {
    remember(s);
    remember(xml_text(s));
  }
  // A data secret as it may be quoted: raw, base64 (XML plists, JSON) and hex (push tokens).
  void remember_data(std::string_view bytes) {
    remember(bytes);
    remember(base::base64_encode(bytes));
    remember(hex(bytes, false));
    remember(hex(bytes, true));
  }
  void remember(std::string_view text) {
    if (text.size() < kMinSecretText || text == kRedacted || is_marker(text, "chars") ||
        is_marker(text, "bytes")) {
      return;
    }
    secrets_.emplace_back(text);
  }

  // Longest first, so that a secret containing another is replaced whole.
  void finish() {
    std::sort(secrets_.begin(), secrets_.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() > b.size() : a < b;
    });
    secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
  }

  // PEM keys and every remembered secret taken out of free text. Each secret (8 bytes or more)
  // becomes a marker of at most about 25 bytes.
  std::string scrub_text(std::string_view text) const {
    std::string out = scrub_pem(text);
    for (const auto& secret : secrets_) {
      std::size_t at = out.find(secret);
      if (at == std::string::npos) continue;
      const std::string marker = string_marker(secret);
      while (at != std::string::npos) {
        out.replace(at, secret.size(), marker);
        at = out.find(secret, at + marker.size());
      }
    }
    return out;
  }

  // Replaces secrets below value; `secret` says whether value sits under a secret key (then
  // every string and data inside it is one). Returns how many values were replaced.
  std::size_t redact_value(plist::Value& value, bool secret, std::size_t depth) {
    if (depth > kMaxWalkDepth) return 0;
    std::size_t replaced = 0;
    if (auto* dict = value.as_dict()) {
      for (auto& [key, child] : *dict) {
        replaced += redact_value(child, secret || is_secret_key(key), depth + 1);
      }
    } else if (auto* array = value.as_array()) {
      for (auto& child : *array) replaced += redact_value(child, secret, depth + 1);
    } else if (const std::string* s = value.as_string()) {
      // An empty value hides nothing and may mean something ("remove the bootstrap token").
      if (s->empty() || is_marker(*s, "chars")) return 0;
      if (secret) {
        remember_string(*s);
        value = plist::Value(string_marker(*s));
        return 1;
      }
      std::string scrubbed = scrub_pem(*s);
      if (scrubbed == *s) return 0;
      value = plist::Value(std::move(scrubbed));
      return 1;
    } else if (const plist::Data* d = value.as_data()) {
      if (d->bytes.empty() || is_marker(d->bytes, "bytes")) return 0;
      if (secret) {
        remember_data(d->bytes);
        value = plist::Value(plist::Data{data_marker(d->bytes)});
        return 1;
      }
      std::string scrubbed = scrub_pem(d->bytes);
      if (scrubbed == d->bytes) return 0;
      value = plist::Value(plist::Data{std::move(scrubbed)});
      return 1;
    }
    // Booleans, numbers, dates and UIDs are left: Apple's schema types no secret that way.
    return replaced;
  }

  // A body that parses as a plist is redacted and written again in its own format; returns
  // false for a body that is not a plist (scrubbed as text later, once every secret is known).
  bool redact_plist_body(std::string& body) {
    const auto format = plist::sniff(body);
    if (!format) return false;
    auto parsed = plist::parse(body);
    if (!parsed) return false;
    plist::Value value = std::move(parsed).value();
    const std::size_t replaced = redact_value(value, false, 0);
    // Untouched bodies keep their exact bytes: writing a plist again changes its layout.
    if (replaced == 0) return true;
    std::string out = *format == plist::Format::xml ? plist::to_xml(value) : plist::to_binary(value);
    if (out.empty() || out.size() > body.size() + kRedactionGrowthPerValue * replaced) {
      out = fmt::format("<redacted: a {}-byte plist holding secrets>", body.size());
    }
    body = std::move(out);
    return true;
  }

  // Authorization and Proxy-Authorization keep their scheme ("Basic <redacted>"), which says how
  // the client authenticated; Mdm-Signature becomes "<redacted: N chars>".
  void redact_header(net::Header& h) {
    if (iequals(h.name, "Authorization") || iequals(h.name, "Proxy-Authorization")) {
      std::string_view v = h.value;
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      if (v.empty()) return;
      const std::size_t space = v.find_first_of(" \t");
      const std::string_view scheme =
          space == std::string_view::npos ? std::string_view() : v.substr(0, space);
      std::string_view credentials = space == std::string_view::npos ? v : v.substr(space);
      while (!credentials.empty() && (credentials.front() == ' ' || credentials.front() == '\t')) {
        credentials.remove_prefix(1);
      }
      remember(credentials);
      h.value = scheme.empty() ? std::string(kRedacted) : fmt::format("{} {}", scheme, kRedacted);
    } else if (iequals(h.name, "Mdm-Signature")) {
      if (h.value.empty() || is_marker(h.value, "chars")) return;
      remember(h.value);
      h.value = string_marker(h.value);
    }
  }

 private:
  std::vector<std::string> secrets_;
};

// Runs f on target; if it throws (only std::bad_alloc can), target is emptied down to
// kRedacted, so that a failure never leaves a secret behind and never throws itself.
template <typename F>
void guarded(std::string& target, F&& f) noexcept {
  try {
    f();
  } catch (...) {
    target.clear();
    target.assign(kRedacted);  // within the capacity every std::string has: cannot throw
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string to_json_text(const RunResult& run) {
  Json j = Json::object();
  j["schema_version"] = kSchemaVersion;
  Json harness = Json::object();
  harness["name"] = "mdmconform";
  harness["version"] = text_json(run.harness_version);
  j["harness"] = std::move(harness);
  Json target = Json::object();
  target["name"] = text_json(run.target_name);
  target["url"] = text_json(run.target_url);
  target["profile_digest"] = text_json(run.profile_digest);
  Json declares = Json::object();
  for (const auto& [key, value] : run.declares) declares[sanitize_utf8(key)] = value;
  target["declares"] = std::move(declares);
  j["target"] = std::move(target);
  j["suite_digest"] = text_json(run.suite_digest);
  j["apple_schema_revision"] = text_json(run.apple_schema_revision);
  j["started_at"] = text_json(run.started_at);
  j["elapsed_ms"] = static_cast<std::int64_t>(run.elapsed.count());
  // A 64-bit seed does not fit a JavaScript number (53 bits of mantissa): keep it a string.
  j["seed"] = std::to_string(run.seed);
  j["builtin_fault"] = text_json(run.builtin_fault);
  j["identity_mode"] = text_json(run.identity_mode);
  j["notes"] = strings_json(run.notes);
  j["interrupted"] = run.interrupted;
  j["redacted"] = run.redacted;
  const auto counts = count_verdicts(run);
  Json counts_json = Json::object();
  for (Verdict v : {Verdict::pass, Verdict::fail, Verdict::warn, Verdict::skip, Verdict::error}) {
    counts_json[std::string(scenario::verdict_name(v))] = count_of(counts, v);
  }
  j["counts"] = std::move(counts_json);
  Json rules = Json::array();
  for (const auto& r : run.rules) rules.push_back(rule_json(r));
  j["rules"] = std::move(rules);
  Json cases = Json::array();
  for (const auto& c : run.cases) cases.push_back(case_json(c));
  j["cases"] = std::move(cases);
  // Every string above is valid UTF-8 already; replace is a second guard so dump never throws.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::optional<RunResult> from_json_text(std::string_view text, std::string* error) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    set_error(error, "not valid JSON");
    return std::nullopt;
  }
  Reader r;
  RunResult run;
  const std::string top;
  if (!j.is_object()) {
    r.fail(top, "expected an object");
  } else {
    const auto version = r.integer(j, "schema_version", top);
    if (r.ok() && version != kSchemaVersion) {
      r.fail("schema_version", fmt::format("unsupported version {} (this harness reads {})",
                                           version, kSchemaVersion));
    }
  }
  if (r.ok()) {
    if (const Json* harness = r.object(j, "harness", top)) {
      run.harness_version = r.string(*harness, "version", "harness");
    }
    if (const Json* target = r.object(j, "target", top)) {
      run.target_name = r.string(*target, "name", "target");
      run.target_url = r.string(*target, "url", "target");
      run.profile_digest = r.string(*target, "profile_digest", "target");
      // Records written before "declares" existed did not say what the target declared.
      if (target->contains("declares")) {
        if (const Json* declares = r.object(*target, "declares", "target")) {
          for (const auto& [key, value] : declares->items()) {
            run.declares[key] = r.boolean(*declares, key, "target.declares");
          }
        }
      }
    }
    run.suite_digest = r.string(j, "suite_digest", top);
    if (j.contains("apple_schema_revision")) {
      run.apple_schema_revision = r.string(j, "apple_schema_revision", top);
    }
    run.started_at = r.string(j, "started_at", top);
    run.elapsed = chr::milliseconds{r.integer(j, "elapsed_ms", top)};
    const std::string seed = r.string(j, "seed", top);
    if (r.ok()) {
      const auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), run.seed);
      if (seed.empty() || ec != std::errc() || end != seed.data() + seed.size()) {
        r.fail("seed", "expected a string of decimal digits that fits 64 bits");
      }
    }
    run.builtin_fault = r.string(j, "builtin_fault", top);
    run.identity_mode = r.string(j, "identity_mode", top);
    run.notes = r.strings(j, "notes", top);
    run.interrupted = r.boolean(j, "interrupted", top);
    // Records written before "redacted" existed were never redacted.
    if (j.contains("redacted")) run.redacted = r.boolean(j, "redacted", top);
    if (const Json* arr = r.array(j, "rules", top)) {
      for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
        run.rules.push_back(read_rule(r, (*arr)[i], Reader::index("rules", i)));
      }
    }
    if (const Json* arr = r.array(j, "cases", top)) {
      for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
        run.cases.push_back(read_case(r, (*arr)[i], Reader::index("cases", i)));
      }
    }
  }
  if (!r.ok()) {
    set_error(error, r.error());
    return std::nullopt;
  }
  return run;
}

std::optional<RunResult> read_run_file(const fs::path& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    set_error(error, fmt::format("{}: cannot read: {}", path.string(), errno_text(errno)));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    set_error(error, fmt::format("{}: cannot read", path.string()));
    return std::nullopt;
  }
  std::string why;
  auto run = from_json_text(text.str(), &why);
  if (!run) set_error(error, fmt::format("{}: {}", path.string(), why));
  return run;
}

std::vector<VerdictChange> verdict_changes(const RunResult& before, const RunResult& after) {
  std::map<std::string, Verdict> earlier;
  for (const auto& c : before.cases) earlier.emplace(c.id, c.verdict);
  std::vector<VerdictChange> out;
  std::set<std::string> seen;
  for (const auto& c : after.cases) {
    seen.insert(c.id);
    auto it = earlier.find(c.id);
    if (it == earlier.end()) {
      out.push_back({c.id, std::nullopt, c.verdict});
    } else if (it->second != c.verdict) {
      out.push_back({c.id, it->second, c.verdict});
    }
  }
  for (const auto& c : before.cases) {
    if (seen.insert(c.id).second) out.push_back({c.id, c.verdict, std::nullopt});
  }
  return out;
}

std::string describe_change(const VerdictChange& change) {
  auto name = [](const std::optional<Verdict>& v) {
    return v ? std::string(scenario::verdict_name(*v)) : std::string("absent");
  };
  return fmt::format("{}: {} -> {}", console_text(change.id, 120), name(change.before), name(change.after));
}

bool is_new_failure(const CaseResult& now, const RunResult& baseline, bool strict) {
  if (!scenario::counts_as_failure(now, strict)) return false;
  for (const auto& before : baseline.cases) {
    if (before.id == now.id) return !scenario::counts_as_failure(before, strict);
  }
  return true;  // a case the baseline does not hold: nothing says its failure is known
}

int exit_code_against(const RunResult& run, const RunResult& baseline, bool strict) {
  if (run.interrupted) return 1;
  for (const auto& c : run.cases) {
    if (is_new_failure(c, baseline, strict)) return 1;
  }
  return 0;
}

std::string to_junit_xml(const RunResult& run) {
  const auto counts = count_verdicts(run);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuite name=\"mdmconform\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" "
      "time=\"{}\">\n",
      run.cases.size(), count_of(counts, Verdict::fail), count_of(counts, Verdict::error),
      count_of(counts, Verdict::skip), junit_seconds(run.elapsed));
  out += "  <properties>\n";
  append_property(out, "harness_version", run.harness_version);
  append_property(out, "target", run.target_name);
  append_property(out, "target_url", run.target_url);
  append_property(out, "profile_digest", run.profile_digest);
  append_property(out, "suite_digest", run.suite_digest);
  if (!run.apple_schema_revision.empty()) {
    append_property(out, "apple_schema_revision", run.apple_schema_revision);
  }
  append_property(out, "started_at", run.started_at);
  append_property(out, "seed", std::to_string(run.seed));
  if (!run.builtin_fault.empty()) append_property(out, "builtin_fault", run.builtin_fault);
  if (run.interrupted) append_property(out, "interrupted", "true");
  out += "  </properties>\n";

  for (const auto& c : run.cases) {
    out += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"{}\"", xml_attr(rule_area(c)),
                       xml_attr(c.id), junit_seconds(c.elapsed));
    std::string details;
    for (const Finding* f : failed_findings(c)) details += describe_finding(*f) + "\n";
    std::string confirmation;
    if (c.flaky) confirmation += fmt::format("flaky: attempts {}\n", fmt::join(c.attempts, ", "));
    if (!c.reproducer.empty()) confirmation += "replay: " + c.reproducer + "\n";
    details += confirmation;
    switch (c.verdict) {
      case Verdict::pass:
        out += "/>\n";
        break;
      case Verdict::fail:
        out += fmt::format(">\n    <failure message=\"{}\" type=\"fail\">{}</failure>\n  </testcase>\n",
                           xml_attr(c.reason), xml_text(details));
        break;
      case Verdict::error:
        out += fmt::format(">\n    <error message=\"{}\" type=\"error\">{}</error>\n  </testcase>\n",
                           xml_attr(c.reason), xml_text(details));
        break;
      case Verdict::skip:
        out += fmt::format(">\n    <skipped message=\"{}\"/>\n  </testcase>\n", xml_attr(c.reason));
        break;
      case Verdict::warn: {
        // JUnit has no warning outcome: a warn is a pass that says what it warns about.
        std::string warnings;
        for (const Finding* f : failed_findings(c)) {
          warnings += "warning: " + describe_finding(*f) + "\n";
        }
        if (warnings.empty()) warnings = "warning: " + c.reason + "\n";
        warnings += confirmation;
        out += fmt::format(">\n    <system-out>{}</system-out>\n  </testcase>\n", xml_text(warnings));
        break;
      }
    }
  }
  out += "</testsuite>\n";
  return out;
}

namespace {

// A case's console lines: verdict, id, and the reason or the time; under a case that did not
// pass, its attempts and its reproducer, indented past the verdict column.
void append_case_lines(std::string& out, const CaseResult& c, std::size_t id_width, std::size_t verdict_width) {
  const std::string id = console_text(c.id, 120);
  pad_to(out, upper_verdict(c.verdict) + (c.flaky ? " FLAKY" : ""), verdict_width);
  if (c.verdict == Verdict::pass) {
    pad_to(out, id, id_width);
    out += fmt::format("  ({} ms)\n", c.elapsed.count());
    return;
  }
  std::string why = c.reason;
  if (why.empty()) {
    const auto failed = failed_findings(c);
    if (!failed.empty()) why = describe_finding(*failed.front());
  }
  if (why.empty()) {
    out += id + "\n";
  } else {
    pad_to(out, id, id_width);
    out += "  " + console_text(why) + "\n";
  }
  // How its attempts went (a confirmed failure repeats on fresh devices), and how to replay it.
  const std::string indent(verdict_width, ' ');
  if (!c.attempts.empty()) out += indent + console_text(fmt::format("attempts: {}", fmt::join(c.attempts, ", "))) + "\n";
  if (!c.reproducer.empty()) out += indent + "replay: " + console_text(c.reproducer, 1000) + "\n";
}

}  // namespace

std::string console_case_lines(const CaseResult& c, std::size_t id_width) {
  std::string out;
  append_case_lines(out, c, id_width, c.flaky ? 12 : 6);
  return out;
}

std::string console_exchange_line(const TranscriptEntry& entry) {
  return fmt::format("{:<10} {} -> {} ({:.2f} ms)", console_text(entry.actor, 40), console_text(entry.label, 120),
                     console_text(describe_answer(entry), 120),
                     static_cast<double>(entry.exchange.elapsed.count()) / 1000.0);
}

std::string console_summary(const RunResult& run, ConsoleSummaryParts parts) {
  std::string out;
  std::size_t id_width = 0;
  for (const auto& c : run.cases) {
    if (parts.passing_cases || c.verdict != Verdict::pass) id_width = std::max(id_width, width_of(console_text(c.id, 120)));
  }
  // "PASS  " and "ERROR ": the verdict column is six wide, twelve when a verdict is flaky
  // ("ERROR FLAKY ").
  const bool any_flaky = std::any_of(run.cases.begin(), run.cases.end(), [](const CaseResult& c) { return c.flaky; });
  const std::size_t verdict_width = any_flaky ? 12 : 6;
  int flaky = 0;
  for (const CaseResult& c : run.cases) {
    flaky += c.flaky ? 1 : 0;
    if (parts.passing_cases || c.verdict != Verdict::pass) append_case_lines(out, c, id_width, verdict_width);
  }

  if (parts.rules && !run.rules.empty()) {
    std::vector<std::string> rule_ids;
    std::size_t rule_width = 4;  // "rule"
    for (const auto& r : run.rules) {
      rule_ids.push_back(console_text(r.id, 60));
      rule_width = std::max(rule_width, width_of(rule_ids.back()));
    }
    out += "\n";
    pad_to(out, "rule", rule_width);
    out += "  level   verdict  cases  failed\n";
    for (std::size_t i = 0; i < run.rules.size(); ++i) {
      const RuleResult& r = run.rules[i];
      pad_to(out, rule_ids[i], rule_width);
      out += fmt::format("  {:<6}  {:<7}  {:>5}  {:>6}\n", scenario::level_name(r.level),
                         scenario::verdict_name(r.verdict), r.cases.size(), r.failed_cases.size());
    }
  }

  const auto counts = count_verdicts(run);
  out += fmt::format("\n{} {}: {} pass, {} fail, {} warn, {} skip, {} error in {:.2f} s\n",
                     run.cases.size(), run.cases.size() == 1 ? "case" : "cases",
                     count_of(counts, Verdict::pass), count_of(counts, Verdict::fail),
                     count_of(counts, Verdict::warn), count_of(counts, Verdict::skip),
                     count_of(counts, Verdict::error),
                     static_cast<double>(run.elapsed.count()) / 1000.0);
  if (flaky > 0) {
    out += fmt::format("{} flaky: their verdict did not repeat on fresh devices; each keeps the worst seen\n", flaky);
  }
  if (run.interrupted) out += "interrupted: the run stopped early, these results are partial\n";
  for (const auto& note : run.notes) out += "note: " + note + "\n";
  if (!run.redacted) out += "note: secrets are NOT redacted (--no-redact)\n";
  return out;
}

bool write_file_atomically(const fs::path& path, std::string_view contents, std::string* error) {
  static std::atomic<std::uint64_t> counter{0};
  if (!path.has_filename()) {
    set_error(error, fmt::format("{}: not a file path", path.string()));
    return false;
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  // Hidden, and unique per process and call, so that concurrent writers never share a temp file.
  const fs::path temp =
      dir / fmt::format(".{}.tmp-{}-{}", path.filename().string(), ::getpid(), counter++);

  auto fail = [&](std::string_view step, int err) {
    set_error(error, fmt::format("{}: {}: {}", step == "create" ? temp.string() : path.string(),
                                 step, errno_text(err)));
    return false;
  };

  // An unnamed file (O_TMPFILE) vanishes if the harness dies while writing it: nothing partial
  // is ever left behind. It gets a name only once complete, just before the rename. File
  // systems without O_TMPFILE get a named temporary file instead.
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  const bool unnamed = fd >= 0;
  if (!unnamed) fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create", errno);
  auto discard = [&](int err) {
    ::close(fd);
    if (!unnamed) ::unlink(temp.c_str());
    return err;
  };
  // Test hook: the crash test makes the harness die half-way through writing this file.
  if (const char* crash = std::getenv("MDMC_TEST_CRASH_WRITING"); crash && path.filename() == crash) {
    (void)write_all(fd, contents.substr(0, contents.size() / 2));
    std::abort();
  }
  if (!write_all(fd, contents)) return fail("write", discard(errno));
  if (::fsync(fd) != 0) return fail("fsync", discard(errno));
  if (unnamed) {
    const std::string self = fmt::format("/proc/self/fd/{}", fd);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return fail("link", discard(errno));
    }
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return fail("close", err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return fail("rename", err);
  }
  // Make the rename itself durable. Best effort: some file systems refuse fsync on a
  // directory, and the new contents are already in place either way.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return true;
}

bool write_run(const RunResult& run, const fs::path& dir, std::string* error) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    set_error(error, fmt::format("{}: cannot create: {}", dir.string(), ec.message()));
    return false;
  }
  // report.json first: it is the record every other view can be made from again.
  return write_file_atomically(dir / "report.json", to_json_text(run), error) &&
         write_file_atomically(dir / "junit.xml", to_junit_xml(run), error) &&
         write_file_atomically(dir / "summary.txt", console_summary(run), error) &&
         write_file_atomically(dir / "summary.md", to_markdown(run), error) &&
         write_file_atomically(dir / "report.html", to_html(run), error);
}

void redact_secrets(RunResult& run) {
  Redactor redactor;
  // Bodies that are not plists wait for the second pass, when every secret is known.
  std::vector<std::string*> text_bodies;
  auto redact_body = [&](std::string& body) {
    guarded(body, [&] {
      if (!redactor.redact_plist_body(body)) text_bodies.push_back(&body);
    });
  };
  for (auto& c : run.cases) {
    for (auto& entry : c.transcript) {
      net::Exchange& x = entry.exchange;
      for (auto& h : x.request.headers) guarded(h.value, [&] { redactor.redact_header(h); });
      redact_body(x.request.body);
      if (x.response) {
        for (auto& h : x.response->headers) guarded(h.value, [&] { redactor.redact_header(h); });
        redact_body(x.response->body);
      }
    }
  }
  redactor.finish();
  auto scrub = [&](std::string& text) {
    guarded(text, [&] { text = redactor.scrub_text(text); });
  };
  for (std::string* body : text_bodies) scrub(*body);
  for (auto& c : run.cases) {
    scrub(c.reason);
    for (auto& f : c.findings) {
      scrub(f.expected);
      scrub(f.actual);
    }
  }
  run.redacted = true;
}

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string run_folder_name(const RunResult& run) {
  std::string when;
  if (auto tp = parse_rfc3339(run.started_at)) {
    const CivilTime t = civil_utc(*tp);
    when = fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year, t.month, t.day, t.hour, t.minute,
                       t.second);
  } else {
    when = "unknown-time";
  }
  std::string target = filesystem_safe(run.target_name, 64);
  if (target.empty()) target = "target";
  return when + "-" + target;
}

}  // namespace mdmc::report
