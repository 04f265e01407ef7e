#include "harness/report/json.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/base/files.hpp"
#include "harness/base/json_reader.hpp"
#include "harness/net/exchange_json.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/scenario/assessment.hpp"

namespace mdmc::report {
namespace {

using namespace detail;

namespace chr = std::chrono;
using base::JsonReader;
using scenario::CaseResult;
using scenario::Finding;
using scenario::Level;
using scenario::RuleResult;
using scenario::RunResult;
using scenario::TranscriptEntry;
using scenario::Verdict;
using Reader = base::JsonReader;
// ordered_json keeps keys in the order they are written, so report.json diffs stay readable.
using Json = nlohmann::ordered_json;

constexpr std::array kVerdicts = {Verdict::pass, Verdict::info, Verdict::skip,
                                  Verdict::warn, Verdict::fail, Verdict::error};
constexpr std::array kLevels = {Level::must, Level::should, Level::may};

// ---------------------------------------------------------------------------------------------
// Writing.

// Free text meant for people; invalid UTF-8 becomes U+FFFD.
Json text_json(std::string_view text) { return Json(sanitize_utf8(text)); }

Json strings_json(const std::vector<std::string>& values) {
  Json out = Json::array();
  for (const auto& v : values) out.push_back(text_json(v));
  return out;
}

Json transcript_entry_json(const TranscriptEntry& entry) {
  Json j = Json::object();
  j["actor"] = text_json(entry.actor);
  j["label"] = text_json(entry.label);
  if (entry.step) j["step"] = *entry.step;
  net::append_exchange_json(j, entry.exchange);
  if (entry.exchange.response && entry.response_body_cut) {
    // The body above is its first kTranscriptBodyCap bytes; these describe the whole.
    j["response"]["body_cut"] =
        Json{{"bytes", entry.response_body_cut->bytes}, {"sha256", entry.response_body_cut->sha256}};
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
  Json devices = Json::array();
  for (const auto& d : c.devices) {
    devices.push_back(Json{{"name", text_json(d.name)},
                           {"udid", text_json(d.udid)},
                           {"attempt", d.attempt},
                           {"identity",
                            {{"source", text_json(d.identity.source)},
                             {"sha256", text_json(d.identity.sha256)},
                             {"common_name", text_json(d.identity.common_name)}}}});
  }
  j["devices"] = std::move(devices);
  if (!c.declarations.empty()) {
    Json channels = Json::array();
    for (const auto& ch : c.declarations) {
      Json held = Json::array();
      for (const auto& d : ch.held) {
        held.push_back(Json{{"identifier", text_json(d.identifier)},
                            {"type", text_json(d.type)},
                            {"server_token", text_json(d.server_token)},
                            {"active", d.active},
                            {"valid", d.valid}});
      }
      channels.push_back(Json{{"actor", text_json(ch.actor)},
                              {"declarations_token", text_json(ch.declarations_token)},
                              {"held", std::move(held)}});
    }
    j["declarations"] = std::move(channels);
  }
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
  // Only for a rule with may-level findings: whether the server uses the option.
  if (r.uses_option) j["uses_option"] = *r.uses_option;
  // Only for a rule no case tested: why not.
  if (!r.untested.empty()) j["untested"] = text_json(r.untested);
  j["summary"] = text_json(r.summary);
  j["apple"] = text_json(r.apple);
  j["source"] = text_json(r.source);
  j["grounding"] = text_json(r.grounding);
  return j;
}

Json conditions_json(const scenario::RunConditions& c) {
  Json j = Json::object();
  j["selection"] = strings_json(c.selection);
  j["excluded"] = strings_json(c.excluded);
  j["tags"] = strings_json(c.tags);
  j["levels"] = strings_json(c.levels);
  j["selected_cases"] = strings_json(c.selected_cases);
  j["catalog_cases"] = c.catalog_cases;
  j["strict"] = c.strict;
  j["require_complete"] = c.require_complete;
  j["tls"] = text_json(c.tls);
  j["enrollment"] = text_json(c.enrollment);
  j["value_origins"] = strings_json(c.value_origins);
  return j;
}

Json baseline_json(const scenario::BaselineComparison& b) {
  Json j = Json::object();
  j["file"] = text_json(b.file);
  j["started_at"] = text_json(b.started_at);
  j["new_failures"] = strings_json(b.new_failures);
  j["known_failures"] = strings_json(b.known_failures);
  j["fixed"] = strings_json(b.fixed);
  return j;
}

// Derived from the rest of the record (scenario::assess), for readers that do not judge it
// themselves; not read back.
Json assessment_json(const scenario::Assessment& a) {
  Json j = Json::object();
  j["overall"] = std::string(scenario::overall_name(a.overall));
  j["headline"] = text_json(a.headline);
  j["exit_code"] = a.exit_code;
  if (!a.exit_reason.empty()) j["exit_reason"] = text_json(a.exit_reason);
  Json untested = Json::array();
  for (const auto* list : {&a.untested, &a.untested_may}) {
    for (const auto& u : *list) {
      untested.push_back(Json{{"rule", text_json(u.id)},
                              {"level", std::string(scenario::level_name(u.level))},
                              {"reason", text_json(u.reason)}});
    }
  }
  j["untested"] = std::move(untested);
  return j;
}

// ---------------------------------------------------------------------------------------------
// Reading. Every accessor checks the type it expects and records the first problem with its
// JSON path; after a failure the results are placeholders and are discarded.

Verdict read_verdict(Reader& r, const Json& obj, std::string_view key, const std::string& path) {
  const std::string name = r.string(obj, key, path);
  for (Verdict v : kVerdicts) {
    if (scenario::verdict_name(v) == name) return v;
  }
  if (r.ok()) r.fail(Reader::join(path, key), fmt::format("unknown verdict \"{}\"", name));
  return Verdict::error;
}

Level read_level(Reader& r, const Json& obj, std::string_view key, const std::string& path) {
  const std::string name = r.string(obj, key, path);
  for (Level l : kLevels) {
    if (scenario::level_name(l) == name) return l;
  }
  if (r.ok()) r.fail(Reader::join(path, key), fmt::format("unknown level \"{}\"", name));
  return Level::must;
}

TranscriptEntry read_transcript_entry(Reader& r, const Json& j, const std::string& path) {
  TranscriptEntry entry;
  entry.actor = r.string(j, "actor", path);
  entry.label = r.string(j, "label", path);
  // Records written before transcript entries named their step lack it.
  if (j.contains("step")) {
    entry.step = static_cast<int>(r.integer(j, "step", path, -1, std::numeric_limits<int>::max()));
  }
  entry.exchange = net::exchange_from_json(r, j, path);
  if (!entry.exchange.response || !r.ok()) return entry;
  const Json& resp = j["response"];
  if (resp.contains("body_cut")) {
    const std::string where = Reader::join(path, "response");
    if (const Json* cut = r.object(resp, "body_cut", where)) {
      const std::string cut_where = Reader::join(where, "body_cut");
      entry.response_body_cut = scenario::CutBody{static_cast<std::size_t>(r.integer(*cut, "bytes", cut_where)),
                                                  r.string(*cut, "sha256", cut_where)};
    }
  }
  return entry;
}

CaseResult read_case(Reader& r, const Json& j, const std::string& path) {
  CaseResult c;
  c.id = r.string(j, "id", path);
  c.title = r.string(j, "title", path);
  c.rules = r.strings(j, "rules", path);
  c.verdict = read_verdict(r, j, "verdict", path);
  c.reason = r.string(j, "reason", path);
  c.elapsed = chr::milliseconds{r.integer(j, "elapsed_ms", path)};
  // Records written before confirmation re-runs and reproducers existed lack these three.
  if (j.contains("flaky")) c.flaky = r.boolean(j, "flaky", path);
  if (j.contains("attempts")) c.attempts = r.strings(j, "attempts", path);
  if (j.contains("reproducer")) c.reproducer = r.string(j, "reproducer", path);
  // Records written before devices and their identities were recorded lack them.
  if (j.contains("devices")) {
    if (const Json* arr = r.array(j, "devices", path)) {
      const std::string base = Reader::join(path, "devices");
      for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
        const Json& dj = (*arr)[i];
        const std::string where = Reader::index(base, i);
        scenario::CaseDevice d;
        d.name = r.string(dj, "name", where);
        d.udid = r.string(dj, "udid", where);
        d.attempt = static_cast<int>(r.integer(dj, "attempt", where, 0, std::numeric_limits<int>::max()));
        if (const Json* id = r.object(dj, "identity", where)) {
          const std::string id_where = Reader::join(where, "identity");
          d.identity.source = r.string(*id, "source", id_where);
          d.identity.sha256 = r.string(*id, "sha256", id_where);
          d.identity.common_name = r.string(*id, "common_name", id_where);
        }
        c.devices.push_back(std::move(d));
      }
    }
  }
  // Only cases that synced declarations have them.
  if (j.contains("declarations")) {
    if (const Json* arr = r.array(j, "declarations", path)) {
      const std::string base = Reader::join(path, "declarations");
      for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
        const Json& cj = (*arr)[i];
        const std::string where = Reader::index(base, i);
        scenario::ChannelDeclarations ch;
        ch.actor = r.string(cj, "actor", where);
        ch.declarations_token = r.string(cj, "declarations_token", where);
        if (const Json* held = r.array(cj, "held", where)) {
          const std::string held_base = Reader::join(where, "held");
          for (std::size_t k = 0; k < held->size() && r.ok(); ++k) {
            const Json& dj = (*held)[k];
            const std::string at = Reader::index(held_base, k);
            scenario::HeldDeclarationRecord d;
            d.identifier = r.string(dj, "identifier", at);
            d.type = r.string(dj, "type", at);
            d.server_token = r.string(dj, "server_token", at);
            d.active = r.boolean(dj, "active", at);
            d.valid = r.boolean(dj, "valid", at);
            ch.held.push_back(std::move(d));
          }
        }
        c.declarations.push_back(std::move(ch));
      }
    }
  }
  if (const Json* arr = r.array(j, "findings", path)) {
    const std::string base = Reader::join(path, "findings");
    for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
      const Json& fj = (*arr)[i];
      const std::string where = Reader::index(base, i);
      Finding f;
      f.rule = r.string(fj, "rule", where);
      f.level = read_level(r, fj, "level", where);
      f.passed = r.boolean(fj, "passed", where);
      f.expected = r.string(fj, "expected", where);
      f.actual = r.string(fj, "actual", where);
      f.step = static_cast<int>(
          r.integer(fj, "step", where, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
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
  rule.level = read_level(r, j, "level", path);
  rule.verdict = read_verdict(r, j, "verdict", path);
  rule.cases = r.strings(j, "cases", path);
  rule.failed_cases = r.strings(j, "failed_cases", path);
  // Records written before may rules were graded info lack it.
  if (j.contains("uses_option")) rule.uses_option = r.boolean(j, "uses_option", path);
  if (j.contains("untested")) rule.untested = r.string(j, "untested", path);
  // Records written before rules carried their text lack these.
  for (auto [key, field] : {std::pair{"summary", &rule.summary}, std::pair{"apple", &rule.apple},
                            std::pair{"source", &rule.source}, std::pair{"grounding", &rule.grounding}}) {
    if (j.contains(key)) *field = r.string(j, key, path);
  }
  return rule;
}

}  // namespace

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
  if (run.wedged) {
    j["wedged"] = Json{{"after_case", text_json(run.wedged->after_case)},
                       {"detail", text_json(run.wedged->detail)},
                       {"continued", run.continued_after_wedge}};
  }
  j["redacted"] = run.redacted;
  j["conditions"] = conditions_json(run.conditions);
  if (run.baseline) j["baseline"] = baseline_json(*run.baseline);
  j["assessment"] = assessment_json(scenario::assess(run));
  const auto counts = count_verdicts(run);
  Json counts_json = Json::object();
  for (Verdict v : {Verdict::pass, Verdict::fail, Verdict::warn, Verdict::info, Verdict::skip, Verdict::error}) {
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

base::Result<RunResult> from_json_text(std::string_view text) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return base::fail("not valid JSON");
  Reader r;
  RunResult run;
  const std::string top;
  if (!j.is_object()) {
    r.fail(top, "expected an object");
  } else {
    const auto version = r.integer(j, "schema_version", top);
    if (r.ok() && version != kSchemaVersion) {
      r.fail("schema_version", fmt::format("unsupported version {} (this harness reads {})", version, kSchemaVersion));
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
    // Absent in records of runs whose target never wedged, and in records written before it existed.
    if (j.contains("wedged")) {
      if (const Json* w = r.object(j, "wedged", top)) {
        run.wedged = scenario::Wedge{r.string(*w, "after_case", "wedged"), r.string(*w, "detail", "wedged")};
        run.continued_after_wedge = r.boolean(*w, "continued", "wedged");
      }
    }
    // Records written before "redacted" existed were never redacted.
    if (j.contains("redacted")) run.redacted = r.boolean(j, "redacted", top);
    // Records written before the overall verdict existed lack conditions and baseline.
    if (j.contains("conditions")) {
      if (const Json* c = r.object(j, "conditions", top)) {
        auto& conditions = run.conditions;
        const std::string where = "conditions";
        conditions.selection = r.strings(*c, "selection", where);
        conditions.excluded = r.strings(*c, "excluded", where);
        conditions.tags = r.strings(*c, "tags", where);
        conditions.levels = r.strings(*c, "levels", where);
        conditions.selected_cases = r.strings(*c, "selected_cases", where);
        conditions.catalog_cases = static_cast<std::size_t>(r.integer(*c, "catalog_cases", where));
        conditions.strict = r.boolean(*c, "strict", where);
        conditions.require_complete = r.boolean(*c, "require_complete", where);
        conditions.tls = r.string(*c, "tls", where);
        // Records written before enrollment profiles were read lack both.
        if (c->contains("enrollment")) conditions.enrollment = r.string(*c, "enrollment", where);
        if (c->contains("value_origins")) conditions.value_origins = r.strings(*c, "value_origins", where);
      }
    }
    if (j.contains("baseline")) {
      if (const Json* b = r.object(j, "baseline", top)) {
        scenario::BaselineComparison baseline;
        const std::string where = "baseline";
        baseline.file = r.string(*b, "file", where);
        baseline.started_at = r.string(*b, "started_at", where);
        baseline.new_failures = r.strings(*b, "new_failures", where);
        baseline.known_failures = r.strings(*b, "known_failures", where);
        baseline.fixed = r.strings(*b, "fixed", where);
        run.baseline = std::move(baseline);
      }
    }
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
  if (!r.ok()) return base::fail(r.error());
  return run;
}

base::Result<RunResult> read_run_file(const std::filesystem::path& path) {
  auto text = base::read_file_capped(path, kMaxRecordBytes);
  if (!text) {
    // base names the path first; the record's reader says what it could not do with it.
    std::string_view why = text.error().message;
    if (const std::string prefix = path.string() + ": "; why.starts_with(prefix)) why.remove_prefix(prefix.size());
    return base::fail(fmt::format("{}: cannot read: {}", path.string(), why));
  }
  auto run = from_json_text(*text);
  if (!run) return base::fail(fmt::format("{}: {}", path.string(), run.error().message));
  return run;
}

}  // namespace mdmc::report
