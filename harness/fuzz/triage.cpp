#include "harness/fuzz/triage.hpp"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/base/files.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/fuzz/diagnosis.hpp"
#include "harness/fuzz/finding.hpp"

namespace mdmc::fuzz {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Bounds on what a process keeps and writes.
constexpr std::size_t kMaxRememberedKeys = 10'000;
constexpr auto kCountsEvery = std::chrono::seconds(1);
constexpr std::size_t kMaxCountsFileBytes = 16 * 1024 * 1024;
// Minimising may take at most this share of a process's time (after its first minute): a
// target that fails on everything is still fuzzed, its later findings written as found.
constexpr double kMinimiseShare = 0.8;
constexpr auto kMinimiseGrace = std::chrono::seconds(30);

fs::path triage_dir(const fs::path& findings) { return findings / ".triage"; }

// The input of `history` (the latest first) after which `input` fires on a fresh device; none
// when no one input does, within the minimisation's limits of tries and time.
// `limits` is what is left of the finding's budget afterwards: the search and the cause's
// minimisation share one.
std::optional<std::string> find_cause(const std::vector<std::string>& history, std::string_view input,
                                      const std::function<Fires(std::string_view, std::string_view)>& before_then,
                                      MinimizeLimits& limits) {
  const auto started = Clock::now();
  const auto deadline = started + limits.max_time;
  std::optional<std::string> cause;
  for (auto it = history.rbegin(); it != history.rend() && limits.max_tries > 0 && Clock::now() < deadline; ++it) {
    --limits.max_tries;
    const auto fired = before_then(*it, input);
    if (fired == Fires::yes) cause = *it;
    if (fired != Fires::no) break;
  }
  const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  limits.max_time = std::max(std::chrono::milliseconds(0), limits.max_time - spent);
  return cause;
}
}  // namespace

std::map<std::string, std::uint64_t> read_hit_counts(const fs::path& findings_dir) {
  std::map<std::string, std::uint64_t> totals;
  std::error_code ec;
  for (fs::directory_iterator it(triage_dir(findings_dir), ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!name.starts_with("hits-") || it->path().extension() != ".json") continue;
    auto text = base::read_file_capped(it->path(), kMaxCountsFileBytes);
    if (!text) continue;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) continue;
    for (const auto& [hash, count] : j.items()) {
      if (count.is_number_unsigned()) totals[hash] += count.get<std::uint64_t>();
    }
  }
  return totals;
}

Triage::Triage(TriageOptions options) : options_(std::move(options)) {}

Triage::~Triage() {
  if (dirty_) write_counts();
}

void Triage::write_counts() {
  std::error_code ec;
  fs::create_directories(triage_dir(options_.findings_dir), ec);
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [hash, count] : hits_) j[hash] = count;
  (void)base::write_file_atomically(triage_dir(options_.findings_dir) / fmt::format("hits-{}.json", getpid()),
                                    j.dump());
  dirty_ = false;
  last_write_ = Clock::now();
}

base::Result<Triaged> Triage::record(Session& session, const Outcome& outcome, std::string_view input) {
  const auto& o = session.options();
  const std::string oracle(oracle_name(outcome.oracle));
  auto diagnosis = diagnose_input(input, o.udid, o.user_id);
  const std::string endpoint(endpoint_name(endpoint_for(input)));
  const auto raw_key = finding_key(oracle, endpoint, diagnosis.kind, diagnosis.primary(), outcome.answer_shape);
  const auto raw_hash = finding_key_hash(raw_key);
  const fs::path seen = triage_dir(options_.findings_dir) / ("seen-" + raw_hash);

  auto count = [&](const std::string& final_hash) {
    // A key's first hit is written at once; later ones at most once a second.
    const bool first = ++hits_[final_hash] == 1;
    dirty_ = true;
    if (first || Clock::now() - last_write_ >= kCountsEvery) write_counts();
  };
  auto duplicate = [&](const std::string& final_hash) {
    count(final_hash);
    Triaged t;
    t.file = options_.findings_dir / ("finding-" + final_hash + ".json");
    t.key = raw_key;
    t.detail = outcome.detail;
    return t;
  };
  if (auto it = raw_to_final_.find(raw_hash); it != raw_to_final_.end()) return duplicate(it->second);
  if (auto known = base::read_file_capped(seen, 64); known && known->size() == 16) {
    if (raw_to_final_.size() < kMaxRememberedKeys) raw_to_final_[raw_hash] = *known;
    return duplicate(*known);
  }

  Reproducer r = make_reproducer(session, outcome, input);
  std::string cause_key, cause_phrase, cause_paths;  // when an earlier input is what made it fire
  std::string final_input(input);
  std::string final_shape = outcome.answer_shape;
  std::string note;
  const auto elapsed = Clock::now() - created_;
  const bool over_share =
      elapsed > kMinimiseGrace && std::chrono::duration<double>(minimising_).count() >
                                      std::chrono::duration<double>(elapsed).count() * kMinimiseShare;
  if (!options_.minimise) {
    note = "not minimised (switched off)";
  } else if (over_share) {
    note = "not minimised: minimising already took most of this fuzzing process's time";
  } else {
    const auto started = Clock::now();
    // Each candidate goes to a device enrolled afresh; after one that fired (and may have
    // broken its device) the next goes to a new device altogether.
    std::unique_ptr<Session> fresh;
    bool need_new = true;
    std::optional<Outcome> last_fired;
    emulator::IdentitySource ids(std::hash<std::string>{}(raw_key) ^ static_cast<std::uint64_t>(getpid()));
    // A shrink may not add a problem the input did not have (a MessageType cut to "T"): what
    // the finding says stays what the fuzzer found.
    std::set<std::string> allowed;
    for (const auto& p : diagnosis.problems) allowed.insert(p.path + ":" + p.kind);
    auto adds_a_problem = [&](std::string_view candidate) {
      if (candidate == input) return false;
      auto d = diagnose_input(candidate, o.udid, o.user_id);
      if (d.kind != diagnosis.kind) return true;
      return std::any_of(d.problems.begin(), d.problems.end(),
                         [&](const InputProblem& p) { return !allowed.count(p.path + ":" + p.kind); });
    };
    // Sends `then` on a fresh device and judges it, `before` first when given.
    auto on_fresh_device = [&](std::optional<std::string_view> before, std::string_view then) -> Fires {
      if (need_new) {
        SessionOptions fresh_options = o;
        fresh_options.udid = ids.uuid();
        fresh_options.user_id = ids.uuid();
        fresh_options.trace = false;
        auto opened = Session::open(std::move(fresh_options));
        if (!opened) return Fires::cannot_tell;
        fresh = std::move(opened).value();
        need_new = false;
      } else if (fresh->reenroll()) {
        return Fires::cannot_tell;
      }
      const auto& f = fresh->options();
      if (before) (void)fresh->send(retarget_input(*before, {o.udid, o.user_id}, {f.udid, f.user_id}));
      auto sent = fresh->check(retarget_input(then, {o.udid, o.user_id}, {f.udid, f.user_id}));
      if (sent.oracle != outcome.oracle) return Fires::no;
      last_fired = std::move(sent);
      need_new = true;
      return Fires::yes;
    };
    auto fires = [&](std::string_view candidate) -> Fires {
      if (adds_a_problem(candidate)) return Fires::not_sent;
      return on_fresh_device(std::nullopt, candidate);
    };
    MinimizeLimits limits = options_.minimize;
    // The input as found, alone on a fresh device, first; when it does not fire, the one input
    // before it that makes it fire (its cause); failing both, it is kept whole, with them all.
    auto alone = fires(input);
    std::optional<std::string> cause;
    if (alone == Fires::no) {
      cause = find_cause(
          r.history, input,
          [&](std::string_view before, std::string_view then) {
            need_new = true;
            return on_fresh_device(before, then);
          },
          limits);
    }
    if (cause) {
      // One earlier input set the target up for this one (a device a bad Authenticate left
      // corrupt answers every later report 500): that input names the finding, whatever came
      // after it, and is minimised with this input sent after each candidate, each pair on a
      // device of its own (a candidate may break a device without this input firing).
      const auto cause_diagnosis = diagnose_input(*cause, o.udid, o.user_id);
      std::set<std::string> cause_allowed;
      for (const auto& p : cause_diagnosis.problems) cause_allowed.insert(p.path + ":" + p.kind);
      auto cause_fires = [&](std::string_view candidate) -> Fires {
        if (candidate != *cause) {
          auto d = diagnose_input(candidate, o.udid, o.user_id);
          if (d.kind != cause_diagnosis.kind ||
              std::any_of(d.problems.begin(), d.problems.end(),
                          [&](const InputProblem& p) { return !cause_allowed.count(p.path + ":" + p.kind); }))
            return Fires::not_sent;
        }
        need_new = true;
        return on_fresh_device(candidate, input);
      };
      auto m = minimize_input(*cause, cause_fires, limits, schema_repairs(cause_diagnosis, o.udid, o.user_id));
      const auto minimised_cause = diagnose_input(m.bytes, o.udid, o.user_id);
      // Keyed by the cause's kind, not its key paths: what a mutation left in it beside what
      // broke the target would name a finding of its own for each (Token, Model, DeviceName
      // ... in an hour against user-key-corrupts), and the reports after it are one bug.
      cause_key = finding_key(oracle, std::string(endpoint_name(endpoint_for(input))), "after " + minimised_cause.kind,
                              "-", outcome.answer_shape);
      cause_phrase = minimised_cause.phrase();
      cause_paths = minimised_cause.key_paths();
      note = fmt::format(
          "alone on a fresh device it did not fire; after one of the {} input(s) before it, it did: that input, "
          "minimised from {} to {} bytes in {} more tries{}, is kept before it and names the finding",
          r.history.size(), cause->size(), m.bytes.size(), m.tries,
          m.out_of_budget ? " (stopped at the limit of tries or time)" : "");
      r.history = {m.bytes};
      // The pair fires on a fresh device, as a minimised finding alone does: replayed on one.
      r.minimised = true;
    } else if (alone != Fires::yes) {
      note = alone == Fires::no
                 ? fmt::format(
                       "not minimised: alone on a fresh device it did not fire, and no one input before it was "
                       "found to make it fire; the {} input(s) before it are kept to replay it",
                       r.history.size())
                 : "not minimised: the target stopped answering a fresh device";
    } else {
      auto m = minimize_input(input, fires, limits, schema_repairs(diagnosis, o.udid, o.user_id));
      final_input = m.bytes;
      final_shape = last_fired->answer_shape;
      note =
          fmt::format("minimised from {} to {} bytes in {} tries on fresh devices{}", input.size(), final_input.size(),
                      m.tries + 1, m.out_of_budget ? " (stopped at the limit of tries or time)" : "");
      r.minimised = true;
      r.original = std::string(input);
      r.history.clear();
      r.request = session.request_for(final_input);
      r.detail = last_fired->detail;
      if (last_fired->exchange.response) {
        r.response = *last_fired->exchange.response;
        if (r.response->body.size() > kReproducerBodyCap) r.response->body.resize(kReproducerBodyCap);
        r.transport_error.clear();
      } else {
        r.response.reset();
        r.transport_error = fmt::format("{} ({})", net::transport_error_name(last_fired->exchange.error),
                                        last_fired->exchange.error_detail);
      }
      r.probe = last_fired->probe;
    }
    minimising_ += Clock::now() - started;
  }

  auto final_diagnosis = diagnose_input(final_input, o.udid, o.user_id);
  r.key = finding_key(oracle, std::string(endpoint_name(endpoint_for(final_input))), final_diagnosis.kind,
                      final_diagnosis.primary(), final_shape);
  r.input_phrase = final_diagnosis.phrase();
  r.key_paths = final_diagnosis.key_paths();
  if (!cause_key.empty()) {
    r.key = cause_key;
    r.input_phrase = fmt::format("{}, sent after {}", r.input_phrase, cause_phrase);
    r.key_paths = cause_paths;
  }
  r.answer_shape = final_shape;
  r.minimise_note = note;
  const auto final_hash = finding_key_hash(r.key);
  std::error_code ec;
  fs::create_directories(triage_dir(options_.findings_dir), ec);
  (void)base::write_file_atomically(seen, final_hash);
  if (raw_to_final_.size() < kMaxRememberedKeys) raw_to_final_[raw_hash] = final_hash;

  const fs::path file = options_.findings_dir / ("finding-" + final_hash + ".json");
  if (fs::exists(file, ec)) return duplicate(final_hash);
  auto written = write_reproducer(options_.findings_dir, r);
  if (!written) return written.error();
  count(final_hash);
  Triaged t;
  t.is_new = true;
  t.file = *written;
  t.key = r.key;
  t.detail = r.detail;
  t.minimise_note = note;
  return t;
}

}  // namespace mdmc::fuzz
