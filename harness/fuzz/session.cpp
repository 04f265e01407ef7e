#include "harness/fuzz/session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <thread>

#include "harness/emulator/emulator.hpp"
#include "harness/fuzz/detail/parse_cache.hpp"
#include "harness/fuzz/diagnosis.hpp"
#include "harness/fuzz/finding.hpp"
#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/judge.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/protocol/rules.hpp"
#include "harness/target/session.hpp"

namespace mdmc::fuzz {
namespace {

// The one device the session enrolls, and its one kept-alive connection: every input, the
// device's and the user's alike, goes on it, under the device's identity.
const target::Sender kFuzzDevice{"fuzz", "fuzz"};
// Bounds on what a session keeps for its reproducers.
constexpr std::size_t kMaxRecentInputs = 64;
constexpr std::size_t kMaxRecentBytes = 4 * 1024 * 1024;
// A probe that gets a command acknowledges it, and stops after this many: a target that
// answers every Acknowledged with another command is still alive.
constexpr int kProbeCommands = 4;

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// What the fuzzer knows about an input before sending it.
struct InputFacts {
  bool is_plist = false;
  bool limit_error = false;  // a plist beyond the decode limits: not "malformed"
  bool is_dict = false;
  std::string kind;           // "Authenticate", "Idle", "?MessageType", "?Status", "dict", "bytes"
  bool unknown_type = false;  // MessageType or Status with a value that is not a real one
  bool is_report = false;
  std::string channel;                   // "device", "user", "other-user", "other-device", "no-udid", "bad-udid"
  Endpoint endpoint = Endpoint::server;  // as endpoint_for() says
};

// endpoint_for() when the input is no dict with a MessageType or Status.
Endpoint endpoint_by_first_byte(std::string_view input) {
  return !input.empty() && (static_cast<unsigned char>(input[0]) & 1) ? Endpoint::check_in : Endpoint::server;
}

InputFacts classify(std::string_view input, const std::string& udid, const std::string& user_id) {
  InputFacts facts;
  facts.endpoint = endpoint_by_first_byte(input);
  const auto cached = detail::parse_input(input);
  const auto& parsed = *cached;
  if (!parsed) {
    auto e = plist::error_of(parsed);
    facts.limit_error =
        e == plist::Error::too_deep || e == plist::Error::too_large || e == plist::Error::too_many_nodes;
    facts.kind = "bytes";
    return facts;
  }
  facts.is_plist = true;
  const auto* dict = parsed->as_dict();
  if (!dict) {
    facts.kind = std::string(plist::type_name(parsed->type()));
    return facts;
  }
  facts.is_dict = true;
  facts.kind = "dict";
  const auto* type = parsed->find("MessageType");
  const auto* status = parsed->find("Status");
  if (type)
    facts.endpoint = Endpoint::check_in;
  else if (status)
    facts.endpoint = Endpoint::server;
  if (type && !status) {
    const auto* name = type->as_string();
    bool known = name && protocol::message_type_from_name(*name).has_value();
    facts.kind = known ? *name : "?MessageType";
    facts.unknown_type = !known;
  } else if (status && !type) {
    facts.is_report = true;
    const auto* name = status->as_string();
    bool known = name && protocol::status_from_name(*name).has_value();
    facts.kind = known ? *name : "?Status";
    facts.unknown_type = !known;
  } else if (type && status) {
    facts.kind = "MessageType+Status";
  }
  const auto* u = parsed->find("UDID");
  const auto* user = parsed->find("UserID");
  if (!u)
    facts.channel = "no-udid";
  else if (!u->as_string())
    facts.channel = "bad-udid";
  else if (*u->as_string() != udid)
    facts.channel = "other-device";
  else if (!user)
    facts.channel = "device";
  else if (user->as_string() && *user->as_string() == user_id)
    facts.channel = "user";
  else
    facts.channel = "other-user";
  return facts;
}

// The facts of the latest input classified on this thread: each input is looked at twice (for
// its request's endpoint, then by the oracles), and parsing it was the costliest step of the
// harness's own per-input work. The bytes are compared in full, so a hit is exact.
const InputFacts& classify_once(std::string_view input, const std::string& udid, const std::string& user_id) {
  struct Last {
    std::string input, udid, user_id;
    InputFacts facts;
    bool valid = false;
  };
  thread_local Last last;
  if (!last.valid || last.input != input || last.udid != udid || last.user_id != user_id) {
    last.valid = false;
    last.facts = classify(input, udid, user_id);
    last.input.assign(input);
    last.udid = udid;
    last.user_id = user_id;
    last.valid = true;
  }
  return last.facts;
}

// The response's shape, coarse enough that a new one means the server did something new.
std::string response_shape(const net::Response& response) {
  if (response.body.empty()) return "empty";
  auto parsed = plist::parse(response.body);
  if (!parsed) return response.body.front() == '{' ? "json" : "not-plist";
  const auto* dict = parsed->as_dict();
  if (!dict) return "plist-" + std::string(plist::type_name(parsed->type()));
  if (dict->count("CommandUUID")) {
    auto command = protocol::decode_command(*parsed);
    if (command) return "command:" + command->request_type;
    return "command:malformed";
  }
  if (dict->count("DigestChallenge")) return "digest-challenge";
  if (dict->count("AuthToken")) return "auth-token";
  return fmt::format("dict-{}", std::min<std::size_t>(dict->size(), 8));
}

int size_bucket(std::size_t n) {
  int bucket = 0;
  while (n > 0 && bucket < 24) {
    n >>= 2;
    ++bucket;
  }
  return bucket;
}

bool is_loopback_url(const std::string& url) {
  auto parsed = net::parse_url(url);
  return parsed && net::is_loopback_host(parsed->host);
}

}  // namespace

std::string_view oracle_name(Oracle oracle) {
  // The rule oracles are named by their rules' ids.
  static constexpr std::array<std::string_view, kOracleCount> kNames = {"none",
                                                                        "status-5xx",
                                                                        "transport",
                                                                        "liveness",
                                                                        protocol::rule::kRobMalformed,
                                                                        protocol::rule::kRobUnknownType,
                                                                        protocol::rule::kCmdShape};
  return kNames[static_cast<int>(oracle)];
}

std::optional<Oracle> oracle_from_name(std::string_view name) {
  for (int i = 0; i < kOracleCount; ++i) {
    if (oracle_name(static_cast<Oracle>(i)) == name) return static_cast<Oracle>(i);
  }
  return std::nullopt;
}

Endpoint endpoint_for(std::string_view input) {
  const auto cached = detail::parse_input(input);
  const auto& parsed = *cached;
  if (parsed && parsed->as_dict()) {
    if (parsed->find("MessageType")) return Endpoint::check_in;
    if (parsed->find("Status")) return Endpoint::server;
  }
  return endpoint_by_first_byte(input);
}

// The target session owns the device's identity, its connection (kept alive, and opened anew
// by the HTTP client when the target drops it), signing, the URLs and the admin adapter.
struct Session::Impl {
  Impl(const target::TargetProfile& profile, std::uint64_t seed) : target(profile), ids(seed) {}
  target::TargetSession target;
  emulator::IdentitySource ids;
  std::chrono::steady_clock::time_point next_slot = std::chrono::steady_clock::now();
};

Session::Session(SessionOptions options) : options_(std::move(options)) {
  impl_ = std::make_unique<Impl>(options_.target, options_.seed);
}

Session::~Session() = default;

base::Result<std::unique_ptr<Session>> Session::open(SessionOptions options) {
  const auto& target = options.target;
  for (const auto& url : {target.check_in_url, target.server_url}) {
    if (!is_loopback_url(url) && !options.allow_remote) {
      return base::fail(fmt::format("{} is not a loopback address: fuzzing a remote server needs --allow-remote", url));
    }
  }
  std::unique_ptr<Session> session(new Session(std::move(options)));
  const auto& t = session->options_.target;
  // Issued from the profile's CA, or the pool's first identity (a campaign's job k has its
  // k-th put first, fuzzers/target_fuzzer.cpp): the session is a run of its
  // own with one device (one UDID, fixed or the finding's), so a pool, never empty once loaded,
  // cannot run out, and no other device of the run shares the identity. A fuzzing process
  // started again (a replay, a later run) is that same device again: with a pool, with the
  // same identity; with an issuer, with a new certificate for the same UDID.
  if (auto added = session->impl_->target.add_device(kFuzzDevice.device, session->options_.udid); !added) {
    return base::fail(t.identity.issuer ? "could not issue the fuzz device's identity: " + added.error().message
                                        : added.error().message);
  }
  if (auto reason = session->enroll()) {
    return base::fail(*reason);
  }
  session->enqueue_commands();
  if (session->options_.baseline) {
    session->run_baseline();
    session->enqueue_commands();  // the baseline acknowledged the first ones
  }
  return session;
}

std::optional<std::string> Session::enroll() {
  const auto& t = options_.target;
  protocol::DeviceFacts facts;
  facts.udid = options_.udid;
  facts.topic = t.topic;
  facts.serial_number = "C02XL0000000";
  emulator::Device device(facts, impl_->ids);
  emulator::UserAgent user(options_.udid, {options_.user_id, "jimmys", "Jimmy Smith"}, emulator::UserKind::local,
                           impl_->ids);
  emulator::Enrollment enrollment(device, {&user});
  for (int step = 0; step < 3 && !enrollment.done(); ++step) {
    auto message = enrollment.next();
    auto body = message.bytes();
    net::Request request = request_for(body);
    auto exchange = transmit(request);
    enrollment.on_answer(
        {exchange.response ? exchange.response->status : 0, exchange.response ? exchange.response->body : ""});
    if (enrollment.failed()) {
      return fmt::format("the target did not enroll the fuzz device: {} got {}", message.label,
                         exchange.ok() ? fmt::format("HTTP {}", exchange.response->status)
                                       : fmt::format("no answer: {} ({})", net::transport_error_name(exchange.error),
                                                     exchange.error_detail));
    }
  }
  return std::nullopt;
}

// A command queued on each channel, so that Idle and the status reports meet a server with
// work to hand out. Best effort: a target without an admin adapter is fuzzed all the same.
void Session::enqueue_commands() {
  if (!options_.target.enqueue) return;
  for (bool user : {false, true}) {
    protocol::Channel channel{options_.udid, user ? options_.user_id : ""};
    auto command = protocol::make_command(impl_->ids.uuid(), "ProfileList");
    (void)impl_->target.enqueue(channel, command.body);
  }
}

net::Request Session::request_for(std::string_view input) const {
  return impl_->target.request_to(classify_once(input, options_.udid, options_.user_id).endpoint, std::string(input));
}

// Sends under the device's identity: the Mdm-Signature is made for these exact bytes.
net::Exchange Session::transmit(net::Request request) {
  if (options_.max_requests_per_second > 0) {
    auto now = std::chrono::steady_clock::now();
    if (impl_->next_slot > now) std::this_thread::sleep_for(impl_->next_slot - now);
    auto gap = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(1.0 / options_.max_requests_per_second));
    impl_->next_slot = std::max(impl_->next_slot, now) + gap;
  }
  ++requests_;
  auto sent = impl_->target.send(kFuzzDevice, request);
  // A body the device's key cannot sign goes unsigned, and the target judges it so.
  auto exchange = sent ? std::move(sent).value() : impl_->target.send_unsigned(kFuzzDevice, request);
  if (options_.trace) {
    std::fprintf(stderr, "exchange: %s %zu bytes -> %s in %.1f ms%s\n", request.url.c_str(), request.body.size(),
                 exchange.ok() ? std::to_string(exchange.response->status).c_str()
                               : std::string(net::transport_error_name(exchange.error)).c_str(),
                 exchange.elapsed.count() / 1000.0, exchange.reused_connection ? " (kept-alive)" : " (new connection)");
  }
  return exchange;
}

// A well-formed Idle from the enrolled device must get 200: an empty body, or commands that
// are acknowledged in turn. A device the target forgot (after a CheckOut or a fresh
// Authenticate among the inputs) is enrolled again first: that is not a failure. A failure
// names the step that failed (the Idle, or the Acknowledged of which command), and a rule it
// breaks on its own; a rule excluded by the baseline is tolerated: its answer ends the probe.
std::optional<Session::ProbeFailure> Session::probe(std::optional<net::Exchange>* last) {
  protocol::Channel channel{options_.udid, ""};
  auto idle = plist::to_xml(plist::Value(protocol::report(channel, nullptr, {protocol::Status::idle, {}, {}})));
  bool reenrolled = false;
  std::string body = idle;
  std::string step = "Idle";
  std::string step_kind = "Idle";
  auto failure = [&](std::string what, std::string shape, std::string rule = {}) {
    return ProbeFailure{fmt::format("the liveness probe's {} {}", step, what), "probe:" + step_kind + ":" + shape,
                        std::move(rule)};
  };
  for (int round = 0; round < kProbeCommands + 2; ++round) {
    auto exchange = transmit(request_for(body));
    *last = exchange;
    if (!exchange.ok()) {
      auto error = std::string(net::transport_error_name(exchange.error));
      return failure(fmt::format("got no answer: {} ({})", error, exchange.error_detail), error);
    }
    int status = exchange.response->status;
    if (status >= 400 && status < 500 && !reenrolled) {
      reenrolled = true;
      if (auto reason = enroll()) {
        return failure(fmt::format("got HTTP {}, and {}", status, *reason), std::to_string(status));
      }
      body = idle;
      step = step_kind = "Idle";
      continue;
    }
    if (status == 204) {
      if (excluded(protocol::rule::kSynEmptyEnd)) return std::nullopt;
      return failure("got HTTP 204 (a series ends with 200 and an empty body)", "204",
                     std::string(protocol::rule::kSynEmptyEnd));
    }
    if (status != 200) return failure(fmt::format("got HTTP {}", status), std::to_string(status));
    if (exchange.response->body.empty()) return std::nullopt;
    auto parsed = plist::parse(exchange.response->body, options_.target.plist_limits);
    if (parsed && parsed->as_dict() && parsed->as_dict()->empty()) {
      if (excluded(protocol::rule::kSynEmptyEnd)) return std::nullopt;
      return failure("got an empty plist (a series ends with an empty body)", "200:empty-plist",
                     std::string(protocol::rule::kSynEmptyEnd));
    }
    auto command =
        parsed ? protocol::decode_command(*parsed) : protocol::Decoded<protocol::Command>(base::fail("not a plist"));
    const auto* c = command ? &*command : nullptr;
    if (!c) {
      if (parsed && excluded(protocol::rule::kCmdShape)) return std::nullopt;
      return failure("got a body that is no command: " + describe_body(exchange.response->body, 200),
                     parsed ? "200:not-command" : "200:not-plist",
                     parsed ? std::string(protocol::rule::kCmdShape) : "");
    }
    body =
        plist::to_xml(plist::Value(protocol::report(channel, nullptr, {protocol::Status::acknowledged, c->uuid, {}})));
    step = fmt::format("Acknowledged (of its {} command)", c->request_type);
    step_kind = "Acknowledged";
  }
  return std::nullopt;  // still handing out commands: alive
}

bool Session::excluded(std::string_view rule) const {
  return std::any_of(exclusions_.begin(), exclusions_.end(), [&](const Exclusion& e) { return e.rule == rule; });
}

// Before any input: a probe that fails only because the target breaks a rule on well-formed
// input is run again with that rule tolerated. One that fails otherwise switches the liveness
// oracle off, said as an exclusion: every input would fire it.
void Session::run_baseline() {
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::optional<net::Exchange> last;
    auto failure = probe(&last);
    if (!failure) return;
    if (!failure->rule.empty() && !excluded(failure->rule)) {
      exclusions_.push_back({failure->rule, failure->what + ", before any fuzz input"});
      continue;
    }
    exclusions_.push_back({"liveness", failure->what + ", before any fuzz input"});
    options_.disabled.push_back(Oracle::liveness);
    return;
  }
}

std::optional<std::string> Session::reenroll() { return enroll(); }

std::optional<std::string> Session::alive() {
  if (auto reason = enroll()) return reason;
  std::optional<net::Exchange> last;
  auto failure = probe(&last);
  return failure ? std::optional<std::string>(failure->what) : std::nullopt;
}

Outcome Session::check(std::string_view input) {
  since_probe_ = options_.probe_every;  // the probe runs after it, whatever it got
  return send(input);
}

Outcome Session::send(std::string_view input, std::vector<std::size_t>* features) {
  return send_request(request_for(input), input, features);
}

Outcome Session::send_request(const net::Request& request, std::string_view input, std::vector<std::size_t>* features) {
  Outcome outcome;
  auto facts = classify_once(input, options_.udid, options_.user_id);
  bool check_in = request.url == options_.target.check_in_url && request.url != options_.target.server_url
                      ? true
                      : facts.endpoint == Endpoint::check_in;
  std::string where = fmt::format("{} ({})", facts.kind, check_in ? "check-in" : "report");
  outcome.exchange = transmit(request);
  const auto& exchange = outcome.exchange;
  auto enabled = [&](Oracle o) {
    return std::find(options_.disabled.begin(), options_.disabled.end(), o) == options_.disabled.end();
  };
  // What the input got wrong, from Apple's schema: worked out only when an oracle fires or the
  // input is a DeclarativeManagement one (its problems are features), and then once.
  std::optional<InputDiagnosis> diagnosis;
  auto diagnosed = [&]() -> const InputDiagnosis& {
    if (!diagnosis) diagnosis = diagnose_input(input, options_.udid, options_.user_id);
    return *diagnosis;
  };
  std::optional<std::string> phrase;
  auto described = [&]() -> const std::string& {
    if (!phrase) phrase = diagnosed().phrase();
    return *phrase;
  };
  auto fire = [&](Oracle o, std::string detail, std::string shape) {
    if (outcome.oracle == Oracle::none && enabled(o)) {
      outcome.oracle = o;
      outcome.detail = std::move(detail);
      outcome.answer_shape = std::move(shape);
    }
  };
  auto feature = [&](std::string_view text) {
    if (features) features->push_back(fnv1a(text) % kFeatureSlots);
  };
  std::string endpoint = check_in ? "c" : "s";
  if (!exchange.ok()) {
    if (enabled(Oracle::transport))
      fire(Oracle::transport,
           fmt::format("{} ({}) after {} ms, to {}", net::transport_error_name(exchange.error), exchange.error_detail,
                       exchange.elapsed.count() / 1000, described()),
           fmt::format("transport:{}", net::transport_error_name(exchange.error)));
    feature(fmt::format("err|{}|{}|{}", endpoint, facts.kind, net::transport_error_name(exchange.error)));
  } else {
    const auto& response = *exchange.response;
    int status = response.status;
    bool success = status >= 200 && status < 300;
    if (status >= 500 && enabled(Oracle::status_5xx))
      fire(Oracle::status_5xx, fmt::format("HTTP {} to {}", status, described()),
           fmt::format("{}:{}", status, response_shape(response)));
    // The rule oracles: what breaks each rule is judged in protocol/judge.hpp.
    std::optional<protocol::Breach> breaches[] = {
        protocol::judge_malformed_answer(status, facts.is_plist, facts.limit_error, input.size(),
                                         check_in ? "check-in" : "report"),
        protocol::judge_unknown_type_answer(status, !facts.unknown_type       ? ""
                                                    : facts.kind == "?Status" ? "Status"
                                                                              : "MessageType"),
        protocol::judge_command_answer(status, facts.is_report, response.body.size(),
                                       protocol::read_command_answer(response.body, {}), where),
    };
    for (auto& breach : breaches) {
      if (!breach || excluded(breach->rule)) continue;
      auto oracle = *oracle_from_name(breach->rule);
      if (outcome.oracle == Oracle::none && enabled(oracle))
        fire(oracle, fmt::format("{}; the input: {}", breach->detail, described()),
             fmt::format("{}:{}", status, response_shape(response)));
    }
    auto shape = response_shape(response);
    feature(fmt::format("st|{}|{}|{}", endpoint, facts.kind, status));
    feature(fmt::format("sh|{}|{}|{}|{}", endpoint, facts.kind, shape, size_bucket(response.body.size())));
    // Which state an accepted message reached: its kind on its channel.
    feature(fmt::format("ch|{}|{}|{}|{}", endpoint, facts.kind, facts.channel, success));
    auto type = net::find_header(response.headers, "Content-Type");
    feature(fmt::format("ct|{}|{}", status / 100, type.value_or("-")));
    // A DeclarativeManagement input: what its Endpoint or status report got wrong, beside the
    // answer, so that reports wrong in another way are kept even when each gets the same 400
    // (the server's own handling of the JSON gives no coverage in this process). Only the kind
    // of problem counts, never a name or value the mutator made up: each unknown key, list
    // position or odd value a feature of its own flooded the corpus (5,899 declarative inputs
    // kept in 10 minutes, and the rate halved).
    if (facts.kind == "DeclarativeManagement") {
      bool any = false;
      for (const auto& p : diagnosed().problems) {
        if (p.kind == "status-report") {
          // "holds a status report whose KEY.PATH must be <string>, is 'x'": the problem after
          // the path, without the value shown after ", is".
          const std::string key_path = p.path.size() > 5 ? p.path.substr(5) : "document";
          const std::string prefix = "holds a status report whose " + key_path + " ";
          std::string problem = p.what.starts_with(prefix) ? p.what.substr(prefix.size()) : std::string("?");
          problem = problem.substr(0, problem.find(", is "));
          const auto depth = std::count(p.path.begin(), p.path.end(), '.');
          feature(fmt::format("ddm|status|{}|{}|{}", depth, problem, status));
          any = true;
        } else if (p.path == "Endpoint" || p.path == "Data") {
          feature(fmt::format("ddm|{}|{}|{}", p.path, p.kind, status));
          any = true;
        }
      }
      if (!any) feature(fmt::format("ddm|-|{}", status));
    }
  }

  recent_.emplace_back(input);
  recent_bytes_ += input.size();
  while (recent_.size() > kMaxRecentInputs || recent_bytes_ > kMaxRecentBytes) {
    recent_bytes_ -= recent_.front().size();
    recent_.pop_front();
  }
  // An anomaly: an answer this kind of input never got before in this session (a 4xx to
  // garbage is routine after the first one). The target's liveness is checked after each.
  bool anomaly =
      !exchange.ok() ||
      seen_answers_.insert(fnv1a(fmt::format("{}|{}|{}", endpoint, facts.kind, exchange.response->status))).second;
  if (outcome.oracle == Oracle::none && enabled(Oracle::liveness) &&
      (anomaly || ++since_probe_ >= options_.probe_every)) {
    std::optional<net::Exchange> probe_exchange;
    auto failure = probe(&probe_exchange);
    outcome.probe = std::move(probe_exchange);
    if (failure) {
      fire(Oracle::liveness, fmt::format("{}, after {}", failure->what, described()), failure->shape);
    } else {
      since_probe_ = 0;
      recent_.clear();
      recent_bytes_ = 0;
      if (outcome.probe && outcome.probe->ok())
        feature(fmt::format("probe|{}", response_shape(*outcome.probe->response)));
    }
  }
  return outcome;
}

}  // namespace mdmc::fuzz
