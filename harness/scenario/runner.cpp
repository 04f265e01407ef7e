#include "harness/scenario/runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <exception>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <variant>

#include "harness/base/bytes.hpp"
#include "harness/protocol/apple_schema.hpp"
#include "harness/protocol/command_schema.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/protocol/rules.hpp"
#include "harness/push/push_request.hpp"
#include "harness/scenario/declarative_checks.hpp"
#include "harness/scenario/liveness.hpp"
#include "harness/scenario/push_log.hpp"
#include "harness/target/enrollment.hpp"
#include "harness/target/session.hpp"

namespace mdmc::scenario {
namespace {

using emulator::Answer;
using emulator::Device;
using emulator::Message;
using emulator::UserAgent;
using target::describe_answer;
using target::fill_in;
namespace rule = protocol::rule;

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// How a case ended early: a failed must-level expectation, an error, or a skip. Every step
// returns one or nothing (the case goes on), and the runner hands it up to the case.
struct Stop {
  Verdict verdict;
  std::string reason;
};
using StepEnd = std::optional<Stop>;

// No verdict on the server can be reached: the harness could not send, or got no answer.
Stop error_stop(const base::Error& error) { return Stop{Verdict::error, error.message}; }

// The pauses of one step of a parallel step (ParallelStep::jitter): each a random time from 0 to
// the jitter, from a generator of the step's own, seeded from the case's source before the
// threads start, so that a seed gives every step the same pauses whichever thread runs first.
class Jitter {
 public:
  Jitter(std::chrono::milliseconds most, std::uint64_t seed)
      : most_(std::chrono::duration_cast<std::chrono::microseconds>(most)), rng_(seed) {}
  void pause() {
    if (most_.count() <= 0) return;
    const auto range = static_cast<std::uint64_t>(most_.count()) + 1;
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(rng_() % range)));
  }

 private:
  std::chrono::microseconds most_;
  std::mt19937_64 rng_;
};

class CaseRun {
 public:
  CaseRun(const Case& c, const TargetProfile& target, const RuleCatalog& rules, std::uint64_t seed,
          const std::atomic<bool>* stop, target::IdentityPool& identities, PushLog* pushes)
      : case_(c),
        target_(target),
        rules_(rules),
        stop_(stop),
        pushes_(pushes),
        ids_(seed ^ fnv1a(c.id)),
        session_(target, identities) {
    result_.id = c.id;
    result_.title = c.title;
    result_.rules = c.rules;
  }

  CaseResult run() {
    auto started = std::chrono::steady_clock::now();
    auto end = run_steps();
    // The fake APNs answers the case's tokens as APNs does again: it serves the whole run.
    if (pushes_) {
      for (const auto& token : scripted_tokens_) pushes_->answer(token, ApnsAnswer::accept, 0);
    }
    if (end) {
      result_.verdict = end->verdict;
      result_.reason = end->reason;
    } else {
      grade_findings(result_);  // should-level breaks warn, may-level ones are info
    }
    result_.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    return std::move(result_);
  }

 private:
  struct Actor {
    std::string device_name;
    Device* device = nullptr;
    UserAgent* user = nullptr;  // null on the device channel
  };

  StepEnd run_steps() {
    if (auto end = check_requirements()) return end;
    if (auto end = build_actors()) return end;
    if (case_.enroll) {
      if (auto end = enroll()) return end;
    }
    for (round_ = 0; round_ < case_.rounds; ++round_) {
      const auto [exchanges, failures] = record_size();
      if (auto end = run_round()) {
        // A failed finding names its round already (record); an error says it here.
        if (case_.rounds > 1 && end->verdict == Verdict::error) end->reason = round_words() + ": " + end->reason;
        return end;
      }
      // A round that passed, before the last, leaves nothing in the record: the last round's
      // exchanges stand for it, as its findings do (record), and a round that failed in part
      // keeps its own.
      if (round_ + 1 < case_.rounds && record_size().second == failures) {
        std::lock_guard lock(mu_);
        result_.transcript.resize(exchanges);
      }
    }
    return std::nullopt;
  }

  // The transcript's entries and the failed findings so far.
  std::pair<std::size_t, std::size_t> record_size() {
    std::lock_guard lock(mu_);
    const auto failed =
        std::count_if(result_.findings.begin(), result_.findings.end(), [](const Finding& f) { return !f.passed; });
    return {result_.transcript.size(), static_cast<std::size_t>(failed)};
  }

  // The case's steps once: the whole case, or one of its rounds (Case::rounds).
  StepEnd run_round() {
    for (std::size_t i = 0; i < case_.steps.size(); ++i) {
      // Push steps watch what came since the first of the steps that acted before them.
      if (pushes_ && !case_.steps[i].watches_pushes() && (i == 0 || case_.steps[i - 1].watches_pushes())) {
        push_mark_ = pushes_->next_index();
        push_mark_time_ = std::chrono::steady_clock::now();
      }
      if (auto end = run_step(static_cast<int>(i), case_.steps[i])) return end;
      if (case_.steps[i].faulted()) {
        if (auto end = probe_alive(static_cast<int>(i))) return end;
      }
    }
    return std::nullopt;
  }

  // "in round 7 of 44", for a case of several rounds.
  std::string round_words() const { return fmt::format("in round {} of {}", round_ + 1, case_.rounds); }

  // ROB-ALIVE after a robustness step: a fresh device, with an identity of its own, still gets
  // through the server's write paths. A server that answers an Idle but hangs every write fails
  // here, on the step that broke it, rather than in every later case.
  StepEnd probe_alive(int index) {
    if (interrupted()) return Stop{Verdict::error, "interrupted before the case finished"};
    protocol::DeviceFacts facts;
    facts.udid = ids_.uuid();
    facts.topic = target_.topic;
    facts.serial_number = "C02" + ids_.hex(4);
    facts.device_name = "mdmconform liveness probe";
    Device device(facts, ids_);
    auto name = fmt::format("probe-{}", ++probes_);
    auto added = session_.add_device(name, facts.udid);
    if (!added) return Stop{Verdict::error, "could not give the liveness probe an identity: " + added.error().message};
    result_.devices.push_back({name, facts.udid, 0, {added->source, added->sha256, added->common_name}});
    auto outcome = probe_liveness(session_, name, device, ids_, index, stop_);
    {
      std::lock_guard lock(mu_);
      for (auto& entry : outcome.transcript) result_.transcript.push_back(std::move(entry));
    }
    // The harness could not set the probe up (its command refused by the admin adapter): no
    // verdict on the server's liveness, as for any step the harness could not set up.
    if (!outcome.judged)
      return Stop{Verdict::error, "liveness probe after step " + std::to_string(index + 1) + ": " + outcome.detail};
    const auto& step = case_.steps[static_cast<std::size_t>(index)];
    auto actual = outcome.alive ? outcome.detail
                                : fmt::format("the server stopped serving writes after {} step {} (line {}): {}",
                                              case_.id, index + 1, step.line(), outcome.detail);
    return record(index, rule::kRobAlive, outcome.alive, probe_expectation(target_), actual);
  }

  Level level_of(std::string_view rule) const {
    auto it = rules_.rules.find(std::string(rule));
    return it == rules_.rules.end() ? Level::must : it->second.level;
  }

  // Records a finding; a failed must-level one ends the case, since later steps would build
  // on a broken state and blame the wrong rule. In a case of several rounds, a finding names its
  // round, and a passing one is kept from the last round only: forty-four copies of the same
  // evidence would bury the one that differs.
  StepEnd record(int step, std::string_view rule, bool passed, std::string expected, std::string actual,
                 std::optional<Level> lowered = std::nullopt) {
    Level level = lowered.value_or(level_of(rule));
    if (case_.rounds > 1 && step >= 0) actual = round_words() + ": " + actual;
    if (!passed || case_.rounds == 1 || step < 0 || round_ + 1 == case_.rounds) {
      std::lock_guard lock(mu_);
      result_.findings.push_back(Finding{std::string(rule), level, passed, expected, actual, step});
    }
    if (!passed && level == Level::must) {
      return Stop{Verdict::fail, fmt::format("{}: expected {}; got {}", rule, expected, actual)};
    }
    return std::nullopt;
  }

  StepEnd check_requirements() {
    if (auto reason = skip_reason(case_, target_)) return Stop{Verdict::skip, *reason};
    const bool push =
        std::find(case_.requirements.begin(), case_.requirements.end(), Requirement::push) != case_.requirements.end();
    if (push && !pushes_) {
      return Stop{Verdict::error, "the case watches pushes, and the run started no fake APNs for the profile's push:"};
    }
    return std::nullopt;
  }

  // Each device gets its own identity, one no other device of the run had (the run's
  // IdentityPool, through the session); its users share it, as macOS does. The report lists it.
  StepEnd build_actors() {
    std::size_t next_managed = 0;
    for (const auto& spec : case_.devices) {
      protocol::DeviceFacts facts;
      facts.udid = ids_.uuid();
      facts.topic = target_.topic;
      facts.serial_number = "C02" + ids_.hex(4);
      facts.device_name = "mdmconform " + spec.name;
      devices_.push_back(std::make_unique<Device>(facts, ids_));
      Device* device = devices_.back().get();
      actors_[spec.name] = Actor{spec.name, device, nullptr};
      if (spec.scep) {
        if (auto end = enroll_through_scep(spec.name, facts.udid)) return end;
      } else {
        auto added = session_.add_device(spec.name, facts.udid);
        if (!added) return Stop{Verdict::error, "could not give a device an identity: " + added.error().message};
        result_.devices.push_back({spec.name, facts.udid, 0, {added->source, added->sha256, added->common_name}});
      }
      for (const auto& u : spec.users) {
        protocol::UserFacts user{ids_.uuid(), u.name, u.name + " (mdmconform)"};
        if (u.managed) user.user_id = target_.managed_network_users[next_managed++];
        users_.push_back(std::make_unique<UserAgent>(facts.udid, user, u.kind, ids_));
        actors_[spec.name + "/" + u.name] = Actor{spec.name, device, users_.back().get()};
      }
    }
    return std::nullopt;
  }

  // A device that enrolls its identity as a Mac does for its enrollment profile: from the SCEP
  // server the profile's identity payload names (ENR-SCEP: issued for the payload's subject
  // and key, checked by enroll::scep_enroll). The exchanges go into the transcript.
  StepEnd enroll_through_scep(const std::string& name, const std::string& udid) {
    // skip_reason made sure of the rest once the profile was read; a caller that never read it
    // gets no verdict.
    if (!target_.enrolled || !target_.enrolled->profile || !target_.enrolled->profile->identity) {
      return Stop{Verdict::error, "the target's enrollment profile was not read before the case"};
    }
    const auto& identity = target_.enrolled->profile->identity;
    auto enrolled = target::enroll_through_scep(identity->scep, target_.identity.scep_limits, udid);
    const std::string expected = fmt::format(
        "a certificate from the SCEP server at {} for the payload's subject and "
        "{}-bit {} key",
        identity->scep.url, identity->scep.key_size, identity->scep.key_type);
    if (!enrolled) return record(-1, rule::kEnrScep, false, expected, enrolled.error().message);
    const auto& how = *enrolled->scep;
    for (const auto& exchange : how.exchanges) keep(-1, name, "SCEP (enrollment)", exchange);
    session_.add_device(name, *enrolled);
    result_.devices.push_back({name, udid, 0, {enrolled->source, enrolled->sha256, enrolled->common_name}});
    return record(-1, rule::kEnrScep, true, expected,
                  fmt::format("issued CN={} in {} ms ({}, {}, {}{})", enrolled->common_name, how.wall.count(),
                              how.cipher, how.digest, how.post ? "POST" : "GET",
                              how.polls ? fmt::format(", after {} CertPoll(s)", how.polls) : std::string()));
  }

  // A user's TokenUpdate answer, from the enrollment or a step: ENR-PER-USER weighs it.
  // A refusal counts only once the user's device enrolled: before that, the server has reason to.
  void note_user_token(const std::string& device, const net::Response& response) {
    std::lock_guard lock(mu_);
    if (response.status != 200 && !enrolled_devices_.count(device)) return;
    if (response.status == 200) {
      user_token_accepted_ = true;
    } else if (!user_token_refused_) {
      user_token_refused_ = describe_answer(response);
    }
  }

  protocol::Channel channel_of(const Actor& actor) const {
    return actor.user ? actor.user->channel() : actor.device->channel();
  }

  // Who sends: the actor, on its own connection, under its device's identity or another
  // device's (identity_of), which gets a connection of its own.
  target::Sender sender(const std::string& actor_name, const std::string& identity_of) const {
    return {actor_name, identity_of.empty() ? actors_.at(actor_name).device_name : identity_of};
  }

  // Adds an exchange to the transcript, with a response body beyond the cap cut short.
  void keep(int step, const std::string& actor, const std::string& label, const net::Exchange& exchange) {
    // Which round of a case of several: the steps' indices repeat in each.
    auto entry = transcript_entry(
        actor, case_.rounds > 1 && step >= 0 ? fmt::format("round {}: {}", round_ + 1, label) : label, exchange, step);
    std::lock_guard lock(mu_);
    result_.transcript.push_back(std::move(entry));
  }

  bool interrupted() const { return stop_ && stop_->load(); }

  // Sends a request as an actor, under its device's identity or another device's. Fails when
  // the run was interrupted or the body could not be signed.
  base::Result<net::Exchange> transmit(const std::string& actor_name, const std::string& identity_of,
                                       net::Request request) {
    if (interrupted()) return base::fail("interrupted before the case finished");
    return session_.send(sender(actor_name, identity_of), std::move(request));
  }

  // Fills ${saved:NAME} with a saved value (a DigestChallenge).
  std::string fill_saved(std::string text) {
    std::lock_guard lock(mu_);
    for (const auto& [name, value] : challenges_) text = fill_in(std::move(text), "${saved:" + name + "}", value);
    return text;
  }

  // A deliberately wrong message: the step's override applied to it.
  Message overridden(Message message, const Override& o) {
    if (o.empty()) return message;
    for (const auto& key : o.drop) message.body.erase(key);
    if (!o.as_channel.empty()) {
      const auto& other = actors_.at(o.as_channel);
      message.body["UDID"] = other.device->facts().udid;
      if (other.user) {
        message.body["UserID"] = other.user->facts().user_id;
        message.body["UserShortName"] = other.user->facts().short_name;
        message.body["UserLongName"] = other.user->facts().long_name;
      } else {
        for (const char* key : {"UserID", "UserShortName", "UserLongName", "NotOnConsole"}) message.body.erase(key);
      }
    }
    for (const auto& [key, raw_text] : o.set) {
      const std::string text = fill_saved(raw_text);
      if (text == "true" || text == "false") {
        message.body[key] = text == "true";
      } else if (!text.empty() && text.find_first_not_of("-0123456789") == std::string::npos && text.size() < 19) {
        message.body[key] = static_cast<std::int64_t>(std::stoll(text));
      } else {
        message.body[key] = text;
      }
    }
    for (const auto& [key, type] : o.retype) {
      switch (type) {
        case plist::Type::boolean: message.body[key] = true; break;
        case plist::Type::integer: message.body[key] = std::int64_t{1}; break;
        case plist::Type::real: message.body[key] = 1.5; break;
        case plist::Type::string: message.body[key] = "retyped"; break;
        case plist::Type::data: message.body[key] = plist::Data{"retyped"}; break;
        case plist::Type::date: message.body[key] = plist::Date{0}; break;
        case plist::Type::array: message.body[key] = plist::Array{}; break;
        case plist::Type::dict: message.body[key] = plist::Dict{}; break;
        case plist::Type::uid: message.body[key] = plist::Uid{1}; break;
      }
    }
    message.label += " (overridden)";
    return message;
  }

  struct Body {
    std::string bytes;
    std::string label;
  };

  // The message's encoded body, with the step's one fault made in it.
  static base::Result<Body> faulted_body(const Message& message, const BodyFault& fault,
                                         const protocol::Channel& channel) {
    Body body{message.bytes(), message.label};
    if (fault.replace_with) {
      body.bytes = *fault.replace_with;
      if (!fault.replace_is_bytes) {
        for (auto [placeholder, value] :
             {std::pair<std::string_view, const std::string&>{"${udid}", channel.udid},
              std::pair<std::string_view, const std::string&>{"${user_id}", channel.user_id}}) {
          for (auto at = body.bytes.find(placeholder); at != std::string::npos;
               at = body.bytes.find(placeholder, at + value.size()))
            body.bytes.replace(at, placeholder.size(), value);
        }
      }
      body.label += fmt::format(" (replaced by {} bytes that are not it)", body.bytes.size());
    } else if (!fault.cut_after.empty()) {
      auto at = body.bytes.find(fault.cut_after);
      if (at == std::string::npos) {
        return base::fail(
            fmt::format("{}: the encoded message holds no '{}' to cut after", message.label, fault.cut_after));
      }
      body.bytes.resize(at + fault.cut_after.size());
      body.label += fmt::format(" (cut after '{}': {} bytes)", fault.cut_after, body.bytes.size());
    } else if (fault.pad_to > 0) {
      auto close = body.bytes.rfind("</plist>");
      if (close == std::string::npos || body.bytes.size() >= fault.pad_to) {
        return base::fail(fmt::format("{}: the encoded message ({} bytes) cannot be padded to {}", message.label,
                                      body.bytes.size(), fault.pad_to));
      }
      // Whitespace between elements: the plist stays valid, with every key, only larger.
      body.bytes.insert(close, fault.pad_to - body.bytes.size(), ' ');
      body.label += fmt::format(" (padded to {} bytes)", body.bytes.size());
    }
    return body;
  }

  // Sends one message as an actor, with the step's fault made in its body; a transport failure
  // is an error: the harness got no answer to judge.
  base::Result<net::Exchange> send(int step, const std::string& actor_name, const Message& message,
                                   const std::string& identity_of = {}, const BodyFault& fault = {}) {
    if (interrupted()) return base::fail("interrupted before the case finished");
    auto body = faulted_body(message, fault, channel_of(actors_.at(actor_name)));
    if (!body) return body.error();
    auto sent = session_.send(sender(actor_name, identity_of), message.endpoint, std::move(body->bytes));
    if (!sent) return sent;
    const auto& url = sent->request.url;
    const auto& exchange = *sent;
    auto label = identity_of.empty() ? body->label : body->label + " (under " + identity_of + "'s identity)";
    keep(step, actor_name, label, exchange);
    if (!exchange.ok()) {
      return base::fail(fmt::format("{} as {}: PUT {}: no answer: {} ({})", message.label, actor_name, url,
                                    net::transport_error_name(exchange.error), exchange.error_detail));
    }
    return sent;
  }

  static Answer answer_of(const net::Exchange& e) { return Answer{e.response->status, e.response->body}; }

  StepEnd enroll() {
    bool usual_identity_enrolled = false;
    for (const auto& spec : case_.devices) {
      auto& device_actor = actors_.at(spec.name);
      std::vector<UserAgent*> local_users;
      std::vector<std::string> names;
      for (const auto& u : spec.users) {
        if (u.kind != emulator::UserKind::local) continue;
        names.push_back(spec.name + "/" + u.name);
        local_users.push_back(actors_.at(names.back()).user);
      }
      emulator::Enrollment enrollment(*device_actor.device, local_users);
      std::size_t user_index = 0;
      while (!enrollment.done()) {
        auto stage = enrollment.stage();
        auto actor = stage == emulator::Enrollment::Stage::user_token ? names[user_index++] : spec.name;
        auto message = enrollment.next();
        auto sent = send(-1, actor, message);  // enrollment comes before step 0
        if (!sent) return error_stop(sent.error());
        if (stage == emulator::Enrollment::Stage::user_token) note_user_token(spec.name, *sent->response);
        if (stage == emulator::Enrollment::Stage::device_token && sent->response->status == 200) {
          std::lock_guard lock(mu_);
          enrolled_devices_.insert(spec.name);
        }
        enrollment.on_answer(answer_of(*sent));
        if (!enrollment.failed()) continue;
        // Only a failed setup step is a finding: a passing one is no evidence for a rule the
        // case does not name.
        auto rule = stage == emulator::Enrollment::Stage::authenticate   ? rule::kEnrAuth
                    : stage == emulator::Enrollment::Stage::device_token ? rule::kEnrTokenDevice
                                                                         : rule::kEnrTokenUser;
        // A device with a SCEP identity refused where a device of the same case with the run's
        // usual identity enrolled: the identity is the only difference (ENR-SCEP).
        if (spec.scep && usual_identity_enrolled) rule = rule::kEnrScep;
        if (auto end = record(-1, rule, false, "200 to " + message.label + " (enrollment)",
                              describe_answer(*sent->response))) {
          return end;
        }
      }
      if (!spec.scep && !enrollment.failed()) usual_identity_enrolled = true;
    }
    return std::nullopt;
  }

  StepEnd check_exchange(int index, const std::vector<Expectation>& expect, const net::Response& response) {
    for (const auto& e : expect) {
      if (e.routed) {
        // Whatever the server makes of the message, the URL has an endpoint for it.
        const bool routed = response.status != 404 && response.status != 405 && response.status != 501;
        if (auto end = record(index, e.rule, routed, "an endpoint for it there (not 404, 405 or 501)",
                              describe_answer(response), e.level)) {
          return end;
        }
      }
      if (!e.status.empty()) {
        if (auto end = record(index, e.rule, e.status.contains(response.status), "status " + e.status.describe(),
                              describe_answer(response), e.level)) {
          return end;
        }
      }
      StepEnd body_end;
      switch (e.body) {
        case BodyExpectation::any: break;
        case BodyExpectation::empty:
          body_end =
              record(index, e.rule, response.body.empty(), "a zero-length body", describe_answer(response), e.level);
          break;
        case BodyExpectation::not_empty:
          body_end = record(index, e.rule, !response.body.empty(), "a body", describe_answer(response), e.level);
          break;
        case BodyExpectation::plist:
          body_end = record(index, e.rule, plist::parse(response.body, target_.plist_limits).ok(), "a plist body",
                            describe_answer(response), e.level);
          break;
      }
      if (body_end) return body_end;
      if (!e.body_contains.empty()) {
        if (auto end = record(index, e.rule, response.body.find(e.body_contains) != std::string::npos,
                              "a body containing " + e.body_contains, describe_answer(response), e.level)) {
          return end;
        }
      }
      if (!e.has_keys.empty()) {
        auto parsed = plist::parse(response.body, target_.plist_limits);
        for (const auto& key : e.has_keys) {
          bool ok = parsed && parsed->find(key) != nullptr;
          if (auto end = record(index, e.rule, ok, "a plist with " + key, describe_answer(response), e.level))
            return end;
        }
      }
    }
    return std::nullopt;
  }

  base::Result<Message> check_in_message(const CheckInStep& step) {
    auto& actor = actors_.at(step.actor);
    using protocol::MessageType;
    switch (step.message) {
      case MessageType::authenticate: return actor.device->authenticate();
      case MessageType::check_out: return actor.device->check_out();
      case MessageType::token_update:
        return actor.user ? actor.user->token_update(actor.device->facts()) : actor.device->token_update();
      case MessageType::user_authenticate:
        if (!actor.user) return base::fail("UserAuthenticate needs a device/user actor");
        return actor.user->user_authenticate();
      default:
        return base::fail(fmt::format("the harness does not send {} yet", protocol::message_type_name(step.message)));
    }
  }

  StepEnd run_step(int index, const Step& step) {
    return std::visit([&](const auto& kind) { return run(index, kind); }, step.kind);
  }

  StepEnd run(int index, const CheckInStep& step) {
    auto& actor = actors_.at(step.actor);
    if (step.new_token) {
      std::lock_guard lock(mu_);
      past_tokens_[step.actor].insert(token_of(actor));
      if (actor.user) {
        actor.user->renew_push_token(ids_);
      } else {
        actor.device->renew_push_token(ids_);
      }
    }
    auto message = check_in_message(step);
    if (!message) return error_stop(message.error());
    auto sent = send(index, step.actor, overridden(*message, step.override_keys), step.identity_of, step.fault);
    if (!sent) return error_stop(sent.error());
    const auto& exchange = *sent;
    if (step.message == protocol::MessageType::user_authenticate) {
      (void)actor.user->on_user_authenticate(answer_of(exchange), target_.plist_limits);
      if (!step.save.empty()) {
        std::lock_guard lock(mu_);
        challenges_[step.save] = actor.user->digest_challenge();
      }
    } else if (step.message == protocol::MessageType::token_update && actor.user) {
      actor.user->on_token_update(answer_of(exchange));
      if (step.override_keys.empty() && step.fault.empty() && step.identity_of.empty()) {
        note_user_token(actor.device_name, *exchange.response);
      }
    } else if (step.override_keys.empty() && step.fault.empty() && step.identity_of.empty() &&
               exchange.response->status == 200) {
      // Which devices enrolled in the case's own steps (enroll: false), for ENR-PER-USER.
      std::lock_guard lock(mu_);
      if (step.message == protocol::MessageType::authenticate) authenticated_devices_.insert(actor.device_name);
      if (step.message == protocol::MessageType::token_update && authenticated_devices_.count(actor.device_name)) {
        enrolled_devices_.insert(actor.device_name);
      }
    }
    return check_exchange(index, step.expect, *exchange.response);
  }

  StepEnd run(int index, const EnrollmentProfileStep& step) {
    const auto& record = target_.enrolled;
    if (!record) return Stop{Verdict::error, "the target's enrollment profile was not read before the case"};
    if (record->fetch) keep(index, "enrollment", "GET the enrollment profile", *record->fetch);
    for (const auto& e : step.expect) {
      StepEnd end;
      if (e.profile == ProfileCheck::valid) {
        end = judge_profile(index, e, *record);
      } else if (e.profile == ProfileCheck::per_user) {
        end = judge_per_user(index, e, *record);
      }
      if (end) return end;
    }
    return std::nullopt;
  }

  StepEnd judge_profile(int index, const Expectation& e, const target::EnrollmentRecord& record) {
    const std::string expected = "an enrollment profile that reads and holds to Apple's schema";
    if (!record.profile) {
      return record_finding(index, e, false, expected, fmt::format("{}: {}", record.source, record.error));
    }
    const auto& profile = *record.profile;
    if (!profile.problems.empty()) {
      return record_finding(index, e, false, expected, fmt::format("{}", fmt::join(profile.problems, "; ")));
    }
    std::string signature = "unsigned";
    if (profile.signature == enroll::ProfileSignature::verified) signature = "signed by " + profile.signer_subject;
    if (profile.signature == enroll::ProfileSignature::untrusted) {
      signature = fmt::format("signed by {}, whom nothing trusted vouches for ({})", profile.signer_subject,
                              profile.signature_detail);
    }
    return record_finding(
        index, e, true, expected,
        fmt::format("{} ({}): Topic {}, CheckInURL {}, ServerURL {}", record.source, signature, profile.mdm->topic,
                    profile.mdm->check_in_url.value_or("(ServerURL)"), profile.mdm->server_url));
  }

  StepEnd judge_per_user(int index, const Expectation& e, const target::EnrollmentRecord& record) {
    const std::string expected =
        "com.apple.mdm.per-user-connections in ServerCapabilities exactly when the server serves user channels";
    if (!record.profile || !record.profile->mdm) {
      return record_finding(index, e, false, expected,
                            record.profile ? "the enrollment profile has no com.apple.mdm payload"
                                           : "the enrollment profile could not be read: " + record.error);
    }
    const bool lists = record.profile->mdm->per_user_connections();
    bool accepted = false;
    std::optional<std::string> refused;
    {
      std::lock_guard lock(mu_);
      accepted = user_token_accepted_;
      refused = user_token_refused_;
    }
    auto declared = target_.origins.find("declares.per_user_connections");
    const bool stated = declared != target_.origins.end() && declared->second == "target profile" &&
                        target_.declares.count("per_user_connections") && target_.declares.at("per_user_connections");
    if (lists && refused) {
      return record_finding(index, e, false, expected,
                            "the profile lists it, and the server answered a user's TokenUpdate with " + *refused);
    }
    if (!lists && (accepted || stated)) {
      return record_finding(index, e, false, expected,
                            fmt::format("the server serves user channels ({}), and its ServerCapabilities [{}] do not "
                                        "list com.apple.mdm.per-user-connections",
                                        accepted ? "it answered a user's TokenUpdate 200"
                                                 : "the target profile declares per_user_connections",
                                        fmt::join(record.profile->mdm->server_capabilities, ", ")));
    }
    return record_finding(index, e, true, expected,
                          lists ? "listed, and a user's TokenUpdate was answered 200"
                                : "not listed, and the server serves no user channel");
  }

  // ---- pushes: what the run's fake APNs saw for the case's channels ----

  // Pushes a case keeps in its transcript; the findings count every one.
  static constexpr std::size_t kMaxPushesKept = 64;

  // The actor's latest push token, as the fake APNs' path carries it: lower-case hex.
  static std::string token_of(const Actor& actor) {
    return base::hex_encode(actor.user ? actor.user->push().token : actor.device->push().token);
  }
  static const std::string& magic_of(const Actor& actor) {
    return actor.user ? actor.user->push().push_magic : actor.device->push().push_magic;
  }

  // Whose token this is, in words: "mac/alice's token", "mac's earlier token"; "a token of no
  // channel of this case" otherwise.
  std::string whose(const std::string& token) {
    std::lock_guard lock(mu_);
    for (const auto& [name, actor] : actors_) {
      if (token_of(actor) == token) return name + "'s token";
      auto past = past_tokens_.find(name);
      if (past != past_tokens_.end() && past->second.count(token)) return name + "'s earlier token";
    }
    return "a token of no channel of this case";
  }

  // Every token the actor has had in the case.
  std::set<std::string> tokens_of(const std::string& actor_name) {
    std::lock_guard lock(mu_);
    std::set<std::string> tokens{token_of(actors_.at(actor_name))};
    if (auto past = past_tokens_.find(actor_name); past != past_tokens_.end()) {
      tokens.insert(past->second.begin(), past->second.end());
    }
    return tokens;
  }

  // Every token any channel of the case has had: each actor's current one and its earlier ones.
  std::set<std::string> case_tokens() {
    std::lock_guard lock(mu_);
    std::set<std::string> tokens;
    for (const auto& [name, actor] : actors_) tokens.insert(token_of(actor));
    for (const auto& [name, past] : past_tokens_) tokens.insert(past.begin(), past.end());
    return tokens;
  }

  // The pushes since the mark to any token of the case, each kept once in the transcript as
  // the wire evidence: the request the server sent and what the fake APNs answered.
  std::vector<SeenPush> case_pushes(int index) {
    const auto tokens = case_tokens();
    std::vector<SeenPush> out;
    for (auto& push : pushes_->pushes_since(push_mark_)) {
      if (!tokens.count(push.device_token)) continue;
      // A server that floods keeps the first pushes as evidence, not all of them.
      if (kept_pushes_.size() < kMaxPushesKept && kept_pushes_.insert(push.index).second) keep_push(index, push);
      out.push_back(std::move(push));
    }
    return out;
  }

  void keep_push(int index, const SeenPush& push) {
    net::Exchange exchange;
    exchange.request.method = "POST";
    exchange.request.url = "https://fake-apns" + push.path;
    exchange.request.headers = push.headers;
    exchange.request.body = push.body;
    net::Response response;
    response.status = push.status;
    if (!push.reason.empty()) response.body = fmt::format(R"({{"reason":"{}"}})", push.reason);
    exchange.response = std::move(response);
    exchange.tls = true;
    exchange.tls_verified = true;
    exchange.started =
        std::chrono::system_clock::now() - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                               std::chrono::steady_clock::now() - push.received);
    keep(index, "apns",
         fmt::format("push to {}{}", whose(push.device_token), push.scripted ? " (answer scripted)" : ""), exchange);
  }

  static std::string window_words(std::chrono::milliseconds window) {
    return window.count() % 1000 == 0 ? fmt::format("{} s", window.count() / 1000)
                                      : fmt::format("{} ms", window.count());
  }

  // Sleeps until `until`, in slices, so that an interrupted run does not wait out a window.
  bool wait_until(std::chrono::steady_clock::time_point until) {
    while (std::chrono::steady_clock::now() < until) {
      if (interrupted()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
    }
    return true;
  }

  StepEnd run(int index, const PushStep& step) {
    const auto started = std::chrono::steady_clock::now();
    if (step.watch == PushWatch::one) return expect_push(index, step, started);
    if (!wait_until(started + step.window)) return Stop{Verdict::error, "interrupted before the case finished"};
    const auto mine = tokens_of(step.actor);
    // Counted by whose token and APNs' answer: "51 to mac's token (answered 429)".
    std::size_t count = 0;
    std::map<std::string, std::size_t> by_kind;
    for (const auto& push : case_pushes(index)) {
      if (!mine.count(push.device_token)) continue;
      ++count;
      ++by_kind[fmt::format("{} (answered {})", whose(push.device_token), push.status)];
    }
    std::vector<std::string> kinds;
    for (const auto& [kind, n] : by_kind) kinds.push_back(fmt::format("{} to {}", n, kind));
    const auto window = window_words(step.window);
    const std::size_t most = step.watch == PushWatch::none ? 0 : static_cast<std::size_t>(step.at_most);
    const std::string expected = step.watch == PushWatch::none
                                     ? fmt::format("no push to {} for {}", step.actor, window)
                                     : fmt::format("at most {} pushes to {} in {}", most, step.actor, window);
    const std::string actual =
        count == 0 ? fmt::format("no push to {} in {}", step.actor, window)
                   : fmt::format("{} push{} in {}: {}", count, count == 1 ? "" : "es", window, fmt::join(kinds, ", "));
    for (const auto& e : step.expect) {
      if (auto end = record_finding(index, e, count <= most, expected, actual)) return end;
    }
    return std::nullopt;
  }

  StepEnd expect_push(int index, const PushStep& step, std::chrono::steady_clock::time_point started) {
    std::string token;
    std::string magic;
    {
      std::lock_guard lock(mu_);
      const auto& actor = actors_.at(step.actor);
      token = token_of(actor);
      magic = magic_of(actor);
    }
    const auto all_tokens = case_tokens();
    // Judging the form alone, any push of the case will do: a server that wakes the wrong
    // channel is other rules' to fail, and its pushes still have a form.
    const bool form_only = std::all_of(step.expect.begin(), step.expect.end(),
                                       [](const auto& e) { return e.push == PushCheck::well_formed; });
    const auto came = pushes_->wait_for_token(form_only ? all_tokens : std::set<std::string>{token}, push_mark_,
                                              started + step.window);
    if (interrupted()) return Stop{Verdict::error, "interrupted before the case finished"};
    const auto seen = case_pushes(index);
    const auto window = window_words(step.window);
    const auto expected_token = fmt::format("a push to {}'s latest token within {}", step.actor, window);
    if (!came) {
      if (form_only) {
        return Stop{Verdict::error,
                    fmt::format("no push to a channel of the case came within {}: nothing to judge", window)};
      }
      // What did come, for the finding: a push to another channel's token, or an earlier one.
      std::vector<std::string> elsewhere;
      for (const auto& push : seen) elsewhere.push_back(whose(push.device_token));
      const auto actual =
          elsewhere.empty()
              ? fmt::format("no push in {}", window)
              : fmt::format(
                    "no push to it in {}; pushes went to {}", window,
                    fmt::join(elsewhere.begin(), elsewhere.begin() + std::min<std::size_t>(elsewhere.size(), 8), ", "));
      for (const auto& e : step.expect) {
        // No push is nothing to judge the form of: that expectation stays untested here.
        if (e.push == PushCheck::well_formed) continue;
        if (auto end = record_finding(index, e, false, expected_token, actual)) return end;
      }
      return std::nullopt;
    }
    // From the first step that acted: how long after the command was queued.
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(came->received - push_mark_time_).count();
    // A push APNs refused never reaches the Mac: it wakes nothing.
    if (came->status != 200 && !came->scripted) {
      for (const auto& e : step.expect) {
        if (e.push == PushCheck::well_formed) continue;
        if (auto end = record_finding(index, e, false, expected_token,
                                      fmt::format("the push to it was refused by APNs: {} {} ({})", came->status,
                                                  came->reason, came->detail))) {
          return end;
        }
      }
    }
    for (const auto& e : step.expect) {
      StepEnd end;
      if (e.push == PushCheck::well_formed) {
        end = judge_push_form(index, e, seen);
      } else if (came->status != 200 && !came->scripted) {
        continue;  // recorded above
      } else if (e.push == PushCheck::token) {
        end = record_finding(index, e, true, expected_token,
                             fmt::format("pushed to it {} ms after the step that acted", took));
      } else {
        std::vector<std::string> wrong;
        if (came->push_magic != magic) {
          wrong.push_back(came->push_magic ? fmt::format("PushMagic {} (the channel's is {})", *came->push_magic, magic)
                                           : fmt::format("no PushMagic (the channel's is {})", magic));
        }
        if (came->topic != target_.topic) {
          wrong.push_back(fmt::format("topic {} (the enrollment's is {})",
                                      came->topic.empty() ? std::string("(none)") : came->topic, target_.topic));
        }
        end = record_finding(
            index, e, wrong.empty(),
            fmt::format("{}, with its PushMagic and the topic {}", expected_token, target_.topic),
            wrong.empty() ? fmt::format("pushed to it {} ms after the step that acted, with its PushMagic and topic {}",
                                        took, came->topic)
                          : fmt::format("pushed to it with {}", fmt::join(wrong, " and ")));
      }
      if (end) return end;
    }
    return std::nullopt;
  }

  // PSH-WELL-FORMED: every push to a channel of the case so far is one APNs accepts and a Mac
  // acts on.
  StepEnd judge_push_form(int index, const Expectation& e, const std::vector<SeenPush>& seen) {
    std::vector<std::string> problems;
    std::size_t judged = 0;
    for (const auto& push : seen) {
      ++judged;
      // A scripted answer is given only to a push APNs would accept.
      if (push.status != 200 && !push.scripted) {
        problems.push_back(fmt::format("APNs would answer {} {} ({})", push.status, push.reason, push.detail));
      }
      for (auto& problem : push::mdm_push_problems(push.headers, push.body)) problems.push_back(std::move(problem));
    }
    return record_finding(index, e, problems.empty(),
                          "pushes APNs accepts and a Mac acts on: push type mdm, priority 10 or 5, the topic, a body "
                          "{\"mdm\": PushMagic}",
                          problems.empty() ? fmt::format("{} push{}, each well formed", judged, judged == 1 ? "" : "es")
                                           : fmt::format("{}", fmt::join(problems, "; ")));
  }

  StepEnd run(int index, const ApnsStep& step) {
    (void)index;
    std::string token;
    {
      std::lock_guard lock(mu_);
      token = token_of(actors_.at(step.actor));
      scripted_tokens_.insert(token);
    }
    pushes_->answer(token, step.answer, step.times);
    return std::nullopt;
  }

  StepEnd record_finding(int index, const Expectation& e, bool passed, std::string expected, std::string actual) {
    return record(index, e.rule, passed, std::move(expected), std::move(actual), e.level);
  }

  StepEnd run(int index, const ReportStep& step) {
    auto& actor = actors_.at(step.actor);
    auto channel = channel_of(actor);
    std::string uuid;
    if (step.command == "unknown") {
      std::lock_guard lock(mu_);
      uuid = ids_.uuid();
    } else if (!step.command.empty()) {
      auto saved = resolve({step.command});
      if (saved.size() != 1) return Stop{Verdict::error, "'" + step.command + "' does not hold exactly one command"};
      uuid = saved.front();
    }
    protocol::ReportSpec spec{step.status, uuid, {}};
    if (step.status == protocol::Status::error) spec.error_chain.push_back({12345, "MCMDMErrorDomain", "mdmconform"});
    std::string label(protocol::status_name(step.status));
    if (!uuid.empty()) label += " " + uuid;
    Message message =
        overridden(Message{protocol::Endpoint::server, label,
                           protocol::report(channel, actor.user ? &actor.user->facts() : nullptr, spec, step.flags)},
                   step.override_keys);
    auto sent = send(index, step.actor, message, step.identity_of, step.fault);
    if (!sent) return error_stop(sent.error());
    return check_exchange(index, step.expect, *sent->response);
  }

  StepEnd run(int index, const EnqueueStep& step) {
    auto channel = channel_of(actors_.at(step.actor));
    protocol::Command command;
    {
      std::lock_guard lock(mu_);
      command = protocol::make_command(ids_.uuid(), step.request_type, step.accounts);
    }
    if (interrupted()) return Stop{Verdict::error, "interrupted before the case finished"};
    auto admin = session_.enqueue(channel, command.body);
    keep(index, "admin", "enqueue " + step.request_type + " " + command.uuid + " for " + step.actor, admin.exchange);
    // The admin adapter is how the harness sets a case up, not a rule of the protocol: when it
    // fails, no verdict on the server's MDM behaviour can be reached. A step that expects a
    // refusal (a device that checked out) goes on to what the server does next.
    if (!admin.accepted && step.may_refuse && admin.exchange.response) return std::nullopt;
    if (!admin.accepted) return error_stop(admin.accepted.error());
    if (!step.save.empty()) {
      std::lock_guard lock(mu_);
      saved_[step.save] = {command.uuid};
    }
    if (auto end = check_exchange(index, step.expect, *admin.exchange.response)) return end;
    session_.settle();
    return std::nullopt;
  }

  StepEnd run(int index, const DeclareStep& step) {
    if (interrupted()) return Stop{Verdict::error, "interrupted before the case finished"};
    const auto channel = channel_of(actors_.at(step.actor));
    // As with enqueue, the adapter sets the case up: its failure is an error, not a verdict.
    auto kept = [&](const target::AdminSteps& done, const std::string& what) -> StepEnd {
      for (std::size_t i = 0; i < done.exchanges.size(); ++i) {
        const auto& exchange = done.exchanges[i];
        // An adapter of several requests (KMFDDM: into a set, the set to the channel) numbers them.
        keep(index, "admin",
             done.exchanges.size() > 1 ? fmt::format("{} ({}/{})", what, i + 1, done.exchanges.size()) : what,
             exchange);
      }
      if (!done.accepted) return error_stop(done.accepted.error());
      return std::nullopt;
    };
    if (step.remove) {
      return kept(session_.unassign_declaration(channel, step.identifier),
                  "undeclare " + step.identifier + " for " + step.actor);
    }
    if (auto end = kept(session_.put_declaration(step.declaration_json), "declare " + step.identifier)) return end;
    if (!step.assign) return std::nullopt;
    return kept(session_.assign_declaration(channel, step.identifier),
                "assign " + step.identifier + " to " + step.actor);
  }

  // What the channel holds now, for the report (the last sync's state stands).
  void keep_declarations(const std::string& actor, const emulator::DeclarativeClient& client) {
    ChannelDeclarations now{actor, client.declarations_token(), {}};
    for (const auto& [id, held] : client.held()) {
      now.held.push_back({id, held.type, held.server_token, held.active, held.valid});
    }
    std::lock_guard lock(mu_);
    auto& all = result_.declarations;
    auto same = std::find_if(all.begin(), all.end(), [&](const auto& c) { return c.actor == actor; });
    if (same == all.end()) {
      all.push_back(std::move(now));
    } else {
      *same = std::move(now);
    }
  }

  emulator::DeclarativeClient& declarative_of(const std::string& name) {
    auto found = declarative_.find(name);
    if (found != declarative_.end()) return found->second;
    const auto& actor = actors_.at(name);
    auto client = actor.user ? emulator::declarative_client(*actor.user) : emulator::declarative_client(*actor.device);
    return declarative_.emplace(name, std::move(client)).first->second;
  }

  // One DeclarativeManagement check-in the client would not send, its answer kept.
  base::Result<DeclarativeSyncRecord::Answer> declarative_probe(int index, const std::string& actor_name,
                                                                const std::string& endpoint,
                                                                std::optional<std::string> data = std::nullopt) {
    const auto& actor = actors_.at(actor_name);
    Message message{protocol::Endpoint::check_in, "DeclarativeManagement " + endpoint,
                    protocol::declarative_management(channel_of(actor), actor.user ? &actor.user->facts() : nullptr,
                                                     endpoint, data)};
    auto sent = send(index, actor_name, message);
    if (!sent) return sent.error();
    return DeclarativeSyncRecord::Answer{sent->response->status, sent->response->body};
  }

  StepEnd run(int index, const DeclarativeSyncStep& step) {
    using Stage = emulator::DeclarativeClient::Stage;
    auto& client = declarative_of(step.actor);
    const auto channel = channel_of(actors_.at(step.actor));
    DeclarativeSyncRecord sync;
    std::optional<protocol::DeclarationItems> listed;
    // A sync is tokens, declaration-items, one request per declaration and a status report; the
    // client lists at most 512 declarations (protocol::JsonLimits).
    constexpr int kMaxExchanges = 600;
    if (step.on_command) {
      std::optional<protocol::Command> command;
      {
        std::lock_guard lock(mu_);
        if (auto found = declarative_commands_.find(step.actor); found != declarative_commands_.end()) {
          command = found->second;
          declarative_commands_.erase(found);
        }
      }
      if (!command) {
        return Stop{Verdict::error, "declarative_sync: command, and no series of " + step.actor +
                                        " delivered a DeclarativeManagement command since its last one"};
      }
      if (auto tokens = protocol::command_sync_tokens(*command); tokens && *tokens) {
        sync.command_token = (*tokens)->declarations_token;
      }
      auto answered = client.on_command(*command);
      if (answered.status != protocol::Status::acknowledged) {
        sync.stopped_at = emulator::DeclarativeClient::Stage::tokens;
        sync.stop_reason = "the DeclarativeManagement command's Data is no TokensResponse: " + answered.reason;
      }
    } else {
      client.start_sync();
    }
    for (int exchanges = 0; client.syncing(); ++exchanges) {
      const auto stage = client.stage();
      if (exchanges >= kMaxExchanges) {
        sync.stopped_at = stage;
        sync.stop_reason = fmt::format("the sync was still going after {} requests", kMaxExchanges);
        break;
      }
      const Message message = client.next();
      auto sent = send(index, step.actor, message);
      if (!sent) return error_stop(sent.error());
      DeclarativeSyncRecord::Answer answer{sent->response->status, sent->response->body};
      if (stage == Stage::tokens) {
        sync.tokens = answer;
      } else if (stage == Stage::declaration_items) {
        sync.items = answer;
        auto decoded = protocol::decode_declaration_items(answer.body);
        if (decoded) listed = std::move(decoded).value();
      } else if (stage == Stage::declaration) {
        // declaration/<group>/<identifier>, as the client asked for it.
        const auto endpoint = plist::Value(message.body).string_at("Endpoint");
        DeclarativeSyncRecord::Fetched fetched;
        if (endpoint) {
          const std::string_view path(*endpoint);
          const auto rest = path.substr(std::min(path.size(), std::string_view("declaration/").size()));
          const auto slash = rest.find('/');
          auto group = protocol::declaration_group_from_name(rest.substr(0, slash));
          if (group && slash != std::string_view::npos) {
            fetched.group = *group;
            fetched.identifier = std::string(rest.substr(slash + 1));
            if (listed) {
              for (const auto& item : listed->in(*group)) {
                if (item.identifier == fetched.identifier) fetched.listed_token = item.server_token;
              }
            }
          }
        }
        fetched.answer = answer;
        sync.fetched.push_back(std::move(fetched));
      } else if (stage == Stage::status) {
        sync.status_report = answer;
        if (auto data = message.body.find("Data"); data != message.body.end() && data->second.as_data()) {
          auto report = protocol::parse_bounded_json(data->second.as_data()->bytes);
          if (report && report->is_object() && report->contains("FullReport") && (*report)["FullReport"].is_boolean()) {
            sync.full_report = (*report)["FullReport"].get<bool>();
          }
        }
      }
      if (auto reason = client.on_answer(answer_of(*sent))) {
        sync.stopped_at = stage;
        sync.stop_reason = *reason;
        break;
      }
    }
    const bool probes_unlisted = std::any_of(step.expect.begin(), step.expect.end(), [](const Expectation& e) {
      return e.declarative == DeclarativeCheck::fetch;
    });
    if (probes_unlisted) {
      std::string unlisted;
      {
        std::lock_guard lock(mu_);
        unlisted = "mdmconform-unlisted-" + ids_.uuid();
      }
      auto probed = declarative_probe(
          index, step.actor, protocol::declaration_endpoint(protocol::DeclarationGroup::configuration, unlisted));
      if (!probed) return error_stop(probed.error());
      sync.unlisted = *probed;
    }
    if (step.malformed_status) {
      auto probed = declarative_probe(index, step.actor, std::string(protocol::kStatusEndpoint),
                                      std::string(R"({"StatusItems": [1, 2, 3], "Errors": 7})"));
      if (!probed) return error_stop(probed.error());
      sync.malformed_status_report = *probed;
    }
    if (!step.save.empty()) {
      auto token = synced_token(sync);
      std::lock_guard lock(mu_);
      declaration_tokens_[step.save] = token.value_or(client.declarations_token());
    }
    keep_declarations(step.actor, client);
    // A sync that stopped at an answer the client cannot act on breaks that answer's rule.
    if (sync.stopped_at) {
      const auto rule = rule_of_stage(*sync.stopped_at);
      if (auto end = record(index, rule, false,
                            fmt::format("an answer to the {} request the client can act on",
                                        emulator::declarative_stage_name(*sync.stopped_at)),
                            sync.stop_reason)) {
        return end;
      }
    }
    for (const auto& e : step.expect) {
      std::optional<std::string> saved;
      if (!e.since.empty()) {
        std::lock_guard lock(mu_);
        if (auto found = declaration_tokens_.find(e.since); found != declaration_tokens_.end()) saved = found->second;
      }
      auto judged = check_declarative(e, sync, client, channel, saved);
      if (!judged.judged) continue;
      if (auto end = record_finding(index, e, judged.passed, std::move(judged.expected), std::move(judged.actual))) {
        return end;
      }
    }
    return std::nullopt;
  }

  StepEnd run(int index, const SeriesStep& step, Jitter* jitter = nullptr) {
    auto series = start_series(step);
    for (int exchanges = 0; !series.done(); ++exchanges) {
      if (step.enqueue_after > 0 && exchanges == step.enqueue_after) {
        EnqueueStep late;
        late.actor = step.actor;
        late.request_type = step.enqueue_during;
        late.save = step.enqueue_during_save;
        if (auto end = run(index, late)) return end;
      }
      if (auto end = advance(index, step, series, jitter)) return end;
    }
    return check_series(index, step, series.outcome());
  }

  StepEnd run(int index, const ParallelStep& step) {
    return step.interleave ? run_interleaved(index, step) : run_parallel(index, step);
  }

  // Steps at once, each on its own thread and connection, started together: the daemon and
  // the agents of one Mac talk to the server concurrently. The worst way a step ended is how
  // the parallel step ends.
  StepEnd run_parallel(int index, const ParallelStep& step) {
    for (const auto& sub : step.steps) session_.connect(sender(sub.actor(), sub.identity_of()));
    // Drawn here, in the steps' order, and only with a jitter: a case without one draws what
    // it always drew.
    std::vector<Jitter> jitters;
    if (step.jitter.count() > 0) {
      std::lock_guard lock(mu_);
      for (std::size_t i = 0; i < step.steps.size(); ++i) jitters.emplace_back(step.jitter, ids_.number());
    }
    std::vector<StepEnd> ends(step.steps.size());
    std::latch start(static_cast<std::ptrdiff_t>(step.steps.size()));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < step.steps.size(); ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        // Nothing a step meets is thrown; this guards the thread against a harness bug, which
        // would otherwise end the process.
        try {
          ends[i] = jitters.empty() ? run_step(index, step.steps[i]) : run_jittered(index, step.steps[i], jitters[i]);
        } catch (const std::exception& e) {
          ends[i] = Stop{Verdict::error, std::string("harness error in a parallel step: ") + e.what()};
        }
      });
    }
    for (auto& t : threads) t.join();
    const Stop* worst = nullptr;
    for (const auto& end : ends) {
      if (end && (!worst || end->verdict > worst->verdict)) worst = &*end;
    }
    if (worst) return *worst;
    return std::nullopt;
  }

  // A step of a parallel step with a jitter: a pause before each exchange of a series, or
  // before the one exchange of a checkin or report (the parser lets nothing else in).
  StepEnd run_jittered(int index, const Step& step, Jitter& jitter) {
    if (const auto* series = std::get_if<SeriesStep>(&step.kind)) return run(index, *series, &jitter);
    jitter.pause();
    return run_step(index, step);
  }

  // Series in lockstep, one exchange each in turn: the interleaving of concurrent series made
  // deterministic, so a server that mixes channels up is caught every time, not by chance.
  // The parser lets only series into an interleaved step.
  StepEnd run_interleaved(int index, const ParallelStep& step) {
    std::vector<const SeriesStep*> subs;
    for (const auto& sub : step.steps) subs.push_back(&std::get<SeriesStep>(sub.kind));
    std::vector<emulator::Series> running;
    for (const auto* sub : subs) running.push_back(start_series(*sub));
    for (bool any = true; any;) {
      any = false;
      for (std::size_t i = 0; i < running.size(); ++i) {
        if (running[i].done()) continue;
        if (auto end = advance(index, *subs[i], running[i])) return end;
        any = true;
      }
    }
    for (std::size_t i = 0; i < running.size(); ++i) {
      if (auto end = check_series(index, *subs[i], running[i].outcome())) return end;
    }
    return std::nullopt;
  }

  bool names_rule(std::string_view rule) const {
    return std::find(case_.rules.begin(), case_.rules.end(), rule) != case_.rules.end();
  }

  // What every delivered command carries, checked in every case: its keys against Apple's
  // schema (CMD-SCHEMA) and, for InstallProfile, one account per profile (PRF-ONE-ACCOUNT).
  // A case that names a rule keeps the passing finding as evidence too.
  StepEnd check_contents(int index, const SeriesStep& step, const emulator::SeriesOutcome& o) {
    std::vector<std::string> schema_problems;
    std::vector<std::string> bundled;
    for (const auto& d : o.delivered) {
      for (const auto& v : d.schema_violations) {
        // DeviceConfigured on the user channel: the article wins over the schema (see
        // protocol::kDeviceConfigured).
        if (protocol::is_article_exemption(d.request_type, v)) continue;
        schema_problems.push_back(fmt::format("{} {}: {}: {}", d.request_type, d.uuid, v.key_path, v.problem));
      }
      if (d.account_payloads.size() > 1) {
        bundled.push_back(fmt::format("{} carries {} accounts ({})", d.uuid, d.account_payloads.size(),
                                      fmt::join(d.account_payloads, ", ")));
      }
    }
    if (!schema_problems.empty() || (names_rule(rule::kCmdSchema) && !o.delivered.empty())) {
      if (auto end = record(
              index, rule::kCmdSchema, schema_problems.empty(),
              "commands whose keys, types and channel match Apple's schema for their RequestType on " + step.actor,
              schema_problems.empty() ? fmt::format("{} command(s), all as the schema says", o.delivered.size())
                                      : fmt::format("{}", fmt::join(schema_problems, "; ")))) {
        return end;
      }
    }
    bool profiles = std::any_of(o.delivered.begin(), o.delivered.end(),
                                [](const auto& d) { return d.request_type == "InstallProfile"; });
    if (!bundled.empty() || (names_rule(rule::kPrfOneAccount) && profiles)) {
      return record(
          index, rule::kPrfOneAccount, bundled.empty(), "at most one account payload in each installed profile",
          bundled.empty() ? "every profile carries at most one account" : fmt::format("{}", fmt::join(bundled, "; ")));
    }
    return std::nullopt;
  }

  StepEnd check_series(int index, const SeriesStep& step, const emulator::SeriesOutcome& o) {
    for (const auto& delivered : o.delivered) {
      if (!delivered.declarative) continue;
      std::lock_guard lock(mu_);
      declarative_commands_.insert_or_assign(step.actor, *delivered.declarative);
    }
    if (o.end == emulator::SeriesEnd::no_response) {
      return Stop{Verdict::error,
                  fmt::format("series as {}: PUT {}: no answer: {}", step.actor, target_.server_url, o.end_detail)};
    }
    // Every command of every series is checked for its shape; a case about CMD-SHAPE also
    // keeps the passing finding as evidence.
    bool shaped = o.end != emulator::SeriesEnd::bad_command;
    if (!shaped || names_rule(rule::kCmdShape)) {
      if (auto end =
              record(index, rule::kCmdShape, shaped, "every command a dict with CommandUUID and Command.RequestType",
                     shaped ? fmt::format("{} command(s), each with both", o.delivered.size()) : o.end_detail)) {
        return end;
      }
    }
    if (auto end = check_contents(index, step, o)) return end;
    if (!step.save.empty()) {
      std::vector<std::string> not_now;
      for (const auto& d : o.delivered) {
        if (d.answered == protocol::Status::not_now &&
            std::find(not_now.begin(), not_now.end(), d.uuid) == not_now.end()) {
          not_now.push_back(d.uuid);
        }
      }
      std::lock_guard lock(mu_);
      saved_[step.save] = not_now;
    }
    std::string actual = summary(o);
    for (const auto& e : step.expect) {
      auto expected_uuids = resolve(e.delivered);
      if (expected_uuids.empty() && !e.delivered.empty()) {
        // An expectation over nothing would pass whatever the server did.
        return Stop{Verdict::error,
                    fmt::format("step {}: '{}' holds no command to look for", index, fmt::join(e.delivered, ", "))};
      }
      for (const auto& uuid : expected_uuids) {
        if (auto end = record(index, e.rule, o.delivered_uuid(uuid), "delivery of " + uuid + " on " + step.actor,
                              actual, e.level)) {
          return end;
        }
      }
      for (const auto& uuid : resolve(e.not_delivered)) {
        if (auto end = record(index, e.rule, !o.delivered_uuid(uuid), "no delivery of " + uuid + " on " + step.actor,
                              actual, e.level)) {
          return end;
        }
      }
      if (e.delivered_count) {
        if (auto end = record(index, e.rule, static_cast<int>(o.delivered.size()) == *e.delivered_count,
                              fmt::format("{} command(s) delivered", *e.delivered_count), actual, e.level)) {
          return end;
        }
      }
      if (!e.ended.empty()) {
        bool ok = std::find(e.ended.begin(), e.ended.end(), o.end) != e.ended.end();
        std::vector<std::string_view> names;
        for (auto end : e.ended) names.push_back(emulator::series_end_name(end));
        if (auto end = record(index, e.rule, ok, fmt::format("the series to end with {}", fmt::join(names, " or ")),
                              actual, e.level)) {
          return end;
        }
      }
      if (e.terminates) {
        if (auto end = record(index, e.rule, o.end != emulator::SeriesEnd::bound_reached,
                              fmt::format("the series to end within {} exchanges", step.series.max_exchanges), actual,
                              e.level)) {
          return end;
        }
      }
      for (const auto& type : e.delivered_types) {
        bool ok =
            std::any_of(o.delivered.begin(), o.delivered.end(), [&](const auto& d) { return d.request_type == type; });
        if (auto end = record(index, e.rule, ok, "a " + type + " command on " + step.actor, actual, e.level))
          return end;
      }
      if (e.no_repeat) {
        auto repeated = o.repeated();
        if (auto end =
                record(index, e.rule, repeated.empty(), "no command twice in one series",
                       repeated.empty() ? actual : fmt::format("{} sent again; {}", fmt::join(repeated, ", "), actual),
                       e.level)) {
          return end;
        }
      }
    }
    return std::nullopt;
  }

  std::vector<std::string> resolve(const std::vector<std::string>& names) {
    std::lock_guard lock(mu_);
    std::vector<std::string> uuids;
    for (const auto& n : names) {
      const auto& list = saved_.at(n);
      uuids.insert(uuids.end(), list.begin(), list.end());
    }
    return uuids;
  }

  static std::string summary(const emulator::SeriesOutcome& o) {
    std::vector<std::string> parts;
    for (const auto& d : o.delivered) {
      parts.push_back(fmt::format("{} {} ({})", d.request_type, d.uuid, protocol::status_name(d.answered)));
    }
    std::string end(emulator::series_end_name(o.end));
    if (!o.end_detail.empty()) end += " (" + o.end_detail + ")";
    return fmt::format("{} exchange(s), delivered [{}], ended {}", o.exchanges, fmt::join(parts, ", "), end);
  }

  emulator::Series start_series(const SeriesStep& step) {
    auto& actor = actors_.at(step.actor);
    auto options = step.series;
    options.limits = target_.plist_limits;
    return emulator::Series(channel_of(actor), actor.user ? std::optional(actor.user->facts()) : std::nullopt, options);
  }

  // One exchange of a series. No answer ends the series (SeriesEnd::no_response), which
  // check_series turns into an error; only an interruption or a body that cannot be signed
  // ends the step here.
  StepEnd advance(int index, const SeriesStep& step, emulator::Series& series, Jitter* jitter = nullptr) {
    if (jitter) jitter->pause();
    auto sent =
        transmit(step.actor, step.identity_of, session_.request_to(protocol::Endpoint::server, series.next().bytes()));
    if (!sent) return error_stop(sent.error());
    const auto& exchange = *sent;
    keep(index, step.actor, series.next().label, exchange);
    if (!exchange.ok()) {
      series.on_answer({}, fmt::format("{} ({})", net::transport_error_name(exchange.error), exchange.error_detail));
    } else {
      series.on_answer(answer_of(exchange));
    }
    return std::nullopt;
  }

  const Case& case_;
  const TargetProfile& target_;
  const RuleCatalog& rules_;
  const std::atomic<bool>* stop_;
  PushLog* pushes_;  // the run's fake APNs; null when it has none
  emulator::IdentitySource ids_;
  target::TargetSession session_;  // identities, connections, signing, the admin adapter
  CaseResult result_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<UserAgent>> users_;
  std::map<std::string, Actor> actors_;
  // Each actor's declarative client, made at its first declarative_sync; and the
  // DeclarationsTokens declarative_sync steps saved.
  std::map<std::string, emulator::DeclarativeClient> declarative_;
  std::map<std::string, std::string> declaration_tokens_;
  // The last DeclarativeManagement command a series of each actor delivered, until a
  // declarative_sync: command takes it.
  std::map<std::string, protocol::Command> declarative_commands_;
  std::map<std::string, std::vector<std::string>> saved_;
  std::map<std::string, std::string> challenges_;             // saved DigestChallenges, by name
  bool user_token_accepted_ = false;                          // a user's TokenUpdate was answered 200 in this case
  std::set<std::string> authenticated_devices_;               // devices whose Authenticate was answered 200
  std::set<std::string> enrolled_devices_;                    // ...and then their TokenUpdate
  std::optional<std::string> user_token_refused_;             // the first user TokenUpdate answer other than 200
  int probes_ = 0;                                            // liveness probes so far, each its own device
  int round_ = 0;                                             // the round running (Case::rounds), from 0
  std::uint64_t push_mark_ = 0;                               // push steps look at pushes from this index on
  std::chrono::steady_clock::time_point push_mark_time_;      // when push_mark_ was taken
  std::map<std::string, std::set<std::string>> past_tokens_;  // by actor: tokens it had before new_token
  std::set<std::string> scripted_tokens_;                     // tokens an apns step scripted answers for
  std::set<std::uint64_t> kept_pushes_;                       // pushes already in the transcript
  // Guards what parallel steps share: findings, transcript, saved values, ids.
  std::mutex mu_;
};

}  // namespace

namespace {

// splitmix64's finalizer: spreads its input over all 64 bits.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool stopped(const std::atomic<bool>* stop) { return stop && stop->load(); }

// The run's watch on whether the target still serves writes. One probe device of its own (one
// UDID, one identity, re-enrolling each time as a Mac may) is probed before the first case and
// after every case and re-run, one probe at a time. The first probe to fail after the first one
// passed marks the target wedged and blames the case just run. A target that fails the first
// probe never served writes to begin with: its cases' verdicts say so, and no wedge is claimed.
class LivenessWatch {
 public:
  enum class After { alive, wedged_here, wedged_before };

  LivenessWatch(const TargetProfile& target, std::uint64_t seed, const std::atomic<bool>* stop,
                target::IdentityPool& identities)
      : target_(target),
        stop_(stop),
        ids_(mix64(seed ^ 0x6c6976656e657373ull)),
        session_(target, identities),
        device_(probe_facts(), ids_) {}

  void start() {
    std::lock_guard lock(probe_mu_);
    if (auto added = session_.add_device(kName, device_.facts().udid); !added) {
      note("the liveness probe could not be given an identity (" + added.error().message +
           "); a target that stops serving would not be detected in this run");
      return;
    }
    auto outcome = probe_liveness(session_, kName, device_, ids_, -1, stop_);
    watching_ = outcome.judged && outcome.alive;
    if (!watching_ && !stopped(stop_)) {
      note("the liveness probe failed before the first case (" + outcome.detail +
           "); a target that stops serving would not be detected in this run");
    }
  }

  // A case (or a re-run of it) starts, and may change the target from now on.
  void begin(const std::string& case_id) {
    std::lock_guard lock(state_mu_);
    ++running_[case_id];
    suspects_.insert(case_id);
  }

  // Probes after `ran`, a finished attempt at `case_id`. A failure is probed once more after a
  // pause before it counts: one timeout, 429 or 503 is not a wedge. On the first that counts,
  // the cases that ran since the last passing probe are the suspects; when `ran`'s is the only
  // one, `blamed` (its case's record) gets the probe's exchanges and, if it had passed, its
  // verdict becomes error with the probe's reason.
  After after(const std::string& case_id, const CaseResult& ran, CaseResult& blamed) {
    end(case_id);
    if (wedge()) return After::wedged_before;
    // A case that sent nothing (skipped) cannot have changed the target; after a stop, a probe
    // would only delay the end.
    if (ran.transcript.empty() || stopped(stop_)) return After::alive;
    std::lock_guard lock(probe_mu_);
    if (!watching_ || wedge()) return wedge() ? After::wedged_before : After::alive;
    auto outcome = probe_liveness(session_, kName, device_, ids_, -1, stop_);
    if (outcome.judged && !outcome.alive && !stopped(stop_)) {
      std::this_thread::sleep_for(kRetryPause);
      auto again = probe_liveness(session_, kName, device_, ids_, -1, stop_);
      if (again.judged && again.alive) {
        note("the liveness probe failed once after " + case_id + " (" + outcome.detail + ") and passed " +
             std::to_string(kRetryPause.count()) + " ms later");
      }
      for (auto& entry : again.transcript) outcome.transcript.push_back(std::move(entry));
      outcome.judged = again.judged;
      outcome.alive = again.alive;
    }
    if (!outcome.judged || outcome.alive || stopped(stop_)) {
      if (outcome.alive) reset_suspects();
      return After::alive;
    }
    std::vector<std::string> suspects;
    {
      std::lock_guard state(state_mu_);
      suspects.assign(suspects_.begin(), suspects_.end());
    }
    Wedge wedge;
    if (suspects.size() <= 1) {
      wedge.after_case = case_id;
      wedge.detail = "the server stopped serving writes after " + case_id + ": " + outcome.detail;
      // A robustness step's own probe names the step that broke it.
      for (const auto& f : ran.findings) {
        if (f.rule == protocol::rule::kRobAlive && !f.passed) wedge.detail = f.actual;
      }
      for (auto& entry : outcome.transcript) blamed.transcript.push_back(std::move(entry));
      // A case that broke the server with good input has no verdict on its rules to stand on.
      if (blamed.verdict == Verdict::pass || blamed.verdict == Verdict::info) {
        blamed.verdict = Verdict::error;
        blamed.reason = wedge.detail;
      }
    } else {
      // Cases ran at once (--jobs): any of them may have done it, and none is singled out.
      wedge.after_case = fmt::format("one of {}", fmt::join(suspects, ", "));
      wedge.detail = fmt::format("the server stopped serving writes while {} ran (--jobs 1 singles the case out): {}",
                                 fmt::join(suspects, ", "), outcome.detail);
    }
    std::lock_guard state(state_mu_);
    wedge_ = std::move(wedge);
    return After::wedged_here;
  }

  std::optional<Wedge> wedge() {
    std::lock_guard lock(state_mu_);
    return wedge_;
  }

  std::vector<std::string> notes() {
    std::lock_guard lock(state_mu_);
    return notes_;
  }

 private:
  static constexpr const char* kName = "liveness-probe";
  static constexpr std::chrono::milliseconds kRetryPause{1000};

  void end(const std::string& case_id) {
    std::lock_guard lock(state_mu_);
    if (auto it = running_.find(case_id); it != running_.end() && --it->second == 0) running_.erase(it);
  }

  // After a passing probe, only the cases still running can have changed the target since.
  void reset_suspects() {
    std::lock_guard lock(state_mu_);
    suspects_.clear();
    for (const auto& [id, count] : running_) suspects_.insert(id);
  }

  void note(std::string text) {
    std::lock_guard lock(state_mu_);
    notes_.push_back(std::move(text));
  }

  protocol::DeviceFacts probe_facts() {
    protocol::DeviceFacts facts;
    facts.udid = ids_.uuid();
    facts.topic = target_.topic;
    facts.serial_number = "C02" + ids_.hex(4);
    facts.device_name = "mdmconform liveness probe";
    return facts;
  }

  const TargetProfile& target_;
  const std::atomic<bool>* stop_;
  std::mutex probe_mu_;  // one probe at a time: they share the probe device
  emulator::IdentitySource ids_;
  target::TargetSession session_;
  emulator::Device device_;
  bool watching_ = false;  // guarded by probe_mu_
  std::mutex state_mu_;    // guards what follows; never held during a probe
  std::map<std::string, int> running_;
  std::set<std::string> suspects_;
  std::optional<Wedge> wedge_;
  std::vector<std::string> notes_;
};

CaseResult not_run(const Case& c, const Wedge& wedge) {
  CaseResult r;
  r.id = c.id;
  r.title = c.title;
  r.rules = c.rules;
  r.verdict = Verdict::skip;
  r.reason = not_run_reason(wedge);
  return r;
}

// One case, and when it ends fail or warn while the target stays live, its confirmation re-runs
// on fresh devices. Every attempt's devices get identities from the run's `identities`, and are
// kept in the record.
CaseResult run_confirmed(const Case& c, const TargetProfile& target, const RuleCatalog& rules,
                         const RunOptions& options, int confirm, LivenessWatch& watch,
                         target::IdentityPool& identities) {
  if (auto wedge = watch.wedge(); wedge && !options.continue_after_wedge) return not_run(c, *wedge);
  watch.begin(c.id);
  CaseResult first = run_case(c, target, rules, options.seed, options.stop, &identities, options.pushes);
  // Re-runs only on a live target: a case blamed, or one that ran beside the wedge, keeps the
  // verdict it got, which the run's note puts in context.
  if (watch.after(c.id, first, first) != LivenessWatch::After::alive || stopped(options.stop)) return first;
  if (first.verdict != Verdict::fail && first.verdict != Verdict::warn) return first;
  std::vector<CaseResult> reruns;
  for (int attempt = 1; attempt <= confirm && !stopped(options.stop); ++attempt) {
    watch.begin(c.id);
    auto again = run_case(c, target, rules, attempt_seed(options.seed, c.id, attempt), options.stop, &identities,
                          options.pushes);
    // Nor does one that left the target wedged: only attempts on a live target can disagree.
    // The probe's evidence goes to the case's record.
    const bool live = watch.after(c.id, again, first) == LivenessWatch::After::alive;
    // A re-run cut short by the stop flag says nothing about the server.
    if (stopped(options.stop) && again.verdict == Verdict::error) break;
    if (!live) break;
    for (auto& d : again.devices) {
      d.attempt = attempt;
      first.devices.push_back(std::move(d));
    }
    reruns.push_back(std::move(again));
  }
  fold_attempts(first, reruns);
  return first;
}

}  // namespace

std::uint64_t attempt_seed(std::uint64_t seed, const std::string& case_id, int attempt) {
  if (attempt == 0) return seed;
  return mix64(seed ^ mix64(fnv1a(case_id) + static_cast<std::uint64_t>(attempt)));
}

std::size_t IdentityNeed::total() const {
  return (devices + probes) * (1 + static_cast<std::size_t>(std::max(confirm, 0))) + watch + preflight;
}

std::string IdentityNeed::explain() const {
  auto plural = [](std::size_t n, const char* one, const char* many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  };
  auto out = plural(cases, "case", "cases") + ", " + plural(devices, "device", "devices");
  if (probes > 0) {
    out += ", " + plural(probes, "liveness probe after a robustness step", "liveness probes after robustness steps");
  }
  if (confirm > 0) {
    out += fmt::format(", each failing case re-run up to {} on fresh devices",
                       plural(static_cast<std::size_t>(confirm), "time", "times"));
  }
  // The run-wide devices close the list, the last after an "and".
  std::vector<std::string> run_wide;
  if (watch > 0) run_wide.push_back(plural(watch, "probe device", "probe devices") + " between cases");
  if (preflight > 0) run_wide.push_back(plural(preflight, "device", "devices") + " enrolled before the first case");
  for (std::size_t i = 0; i < run_wide.size(); ++i) {
    out += (i + 1 == run_wide.size() ? ", and " : ", ") + run_wide[i];
  }
  return out;
}

IdentityNeed identities_needed(const std::vector<Case>& cases, int confirm) {
  IdentityNeed need;
  need.cases = cases.size();
  for (const auto& c : cases) {
    need.devices += c.devices.size();
    // CaseRun::run_steps probes after each faulted top-level step (probe_alive), in every round.
    need.probes += static_cast<std::size_t>(c.rounds) *
                   static_cast<std::size_t>(
                       std::count_if(c.steps.begin(), c.steps.end(), [](const Step& s) { return s.faulted(); }));
  }
  need.confirm = std::clamp(confirm, 0, kMaxConfirm);
  need.watch = cases.empty() ? 0 : 1;  // LivenessWatch's device
  return need;
}

std::optional<std::string> skip_reason(const Case& c, const TargetProfile& target) {
  for (auto req : c.requirements) {
    if (req == Requirement::enqueue && !target.enqueue) {
      return "the target profile has no admin.enqueue adapter to queue commands with";
    }
    if (req == Requirement::enrollment && !target.enrollment) {
      return "the target profile has no enrollment: (the server's enrollment profile) to judge";
    }
    if (req == Requirement::declarations && !target.declarations) {
      return "the target profile has no admin.declarations adapter to put declarations with";
    }
    if (req == Requirement::push && !target.push) {
      return "the target profile has no push: (a fake APNs for the server to push to), so pushes cannot be seen";
    }
  }
  const bool scep_device = std::any_of(c.devices.begin(), c.devices.end(), [](const auto& d) { return d.scep; });
  if (scep_device) {
    if (!target.enrollment) return "the case enrolls through SCEP; the target profile has no enrollment:";
    if (target.identity.mode == IdentityMode::none) {
      return "the case enrolls an identity through SCEP; the profile's identity mode is none";
    }
    // Before the run fetched the enrollment profile (a dry run), nothing more is known.
    if (const auto& record = target.enrolled) {
      if (!record->profile) return "the enrollment profile could not be read (" + record->error + ")";
      const auto& identity = record->profile->identity;
      if (!identity) return "the enrollment profile's IdentityCertificateUUID names no payload (ENR-PROFILE)";
      switch (identity->kind) {
        case enroll::IdentityKind::scep: break;
        case enroll::IdentityKind::acme:
          return "the enrollment profile's identity payload is ACME: enrolling needs attestation as Apple hardware, "
                 "which the harness cannot give";
        case enroll::IdentityKind::pkcs12:
          return "the enrollment profile's identity payload is PKCS#12: the server hands out the identity, no SCEP "
                 "server issues one";
        case enroll::IdentityKind::other:
          return "the enrollment profile's identity payload is a " + identity->payload_type + ", not SCEP";
      }
    }
  }
  for (const auto& step : c.steps) {
    if (std::holds_alternative<EnrollmentProfileStep>(step.kind) && !target.enrollment) {
      return "the case judges the enrollment profile; the target profile has no enrollment:";
    }
  }
  // A pool too small for the case is no skip: the run's pool is checked against every case's
  // devices before any case starts (identities_needed), and one that runs out all the same
  // ends the case as an error in build_actors.
  bool needs_identity = false;
  for (const auto& step : c.steps) needs_identity = needs_identity || !step.identity_of().empty();
  if (needs_identity && target.identity.mode == IdentityMode::none) {
    return "the case checks identity binding; the profile's identity mode is none";
  }
  std::size_t managed = 0;
  for (const auto& d : c.devices) {
    for (const auto& u : d.users) managed += u.managed ? 1 : 0;
  }
  if (managed > target.managed_network_users.size()) {
    return fmt::format("the case needs {} managed network user(s); the profile's policy.network_users.managed lists {}",
                       managed, target.managed_network_users.size());
  }
  return std::nullopt;
}

CaseResult run_case(const Case& c, const TargetProfile& target, const RuleCatalog& rules, std::uint64_t seed,
                    const std::atomic<bool>* stop, target::IdentityPool* identities, PushLog* pushes) {
  if (identities) return CaseRun(c, target, rules, seed, stop, *identities, pushes).run();
  target::IdentityPool own(target.identity);
  return CaseRun(c, target, rules, seed, stop, own, pushes).run();
}

RunResult run_suite(const std::vector<Case>& cases, const TargetProfile& target, const RuleCatalog& rules,
                    const RunOptions& options) {
  RunResult run;
  run.harness_version = MDMC_VERSION;
  run.target_name = target.name;
  run.target_url = target.check_in_url;
  run.profile_digest = target.digest;
  run.apple_schema_revision = std::string(protocol::kAppleSchemaRevision);
  run.declares = target.declares;
  run.seed = options.seed;
  auto started = std::chrono::steady_clock::now();

  // Workers take cases by index, in order, and store each result at its case's index. A case
  // shares nothing mutable with another but the run's IdentityPool (thread-safe): its devices,
  // identities and HTTP clients are its own; the target profile and the rule catalog are only read.
  const int confirm = std::clamp(options.confirm, 0, kMaxConfirm);
  std::optional<target::IdentityPool> own_identities;
  if (!options.identities) own_identities.emplace(target.identity);
  target::IdentityPool& identities = options.identities ? *options.identities : *own_identities;
  std::vector<std::optional<CaseResult>> results(cases.size());
  std::atomic<std::size_t> next{0};
  std::mutex mutex;            // serializes on_case, and guards `failure`
  std::exception_ptr failure;  // the first exception a worker met, rethrown here
  LivenessWatch watch(target, options.seed, options.stop, identities);
  if (!cases.empty()) watch.start();
  // A case with robustness steps runs alone, whatever --jobs says: its ROB-ALIVE probes, and the
  // probe after it, then judge what it did and nothing another case did at the same time.
  std::shared_mutex alone;
  auto faulted = [](const Case& c) {
    return std::any_of(c.steps.begin(), c.steps.end(), [](const Step& s) { return s.faulted(); });
  };
  auto work = [&] {
    try {
      while (!stopped(options.stop)) {
        const std::size_t i = next.fetch_add(1);
        if (i >= cases.size()) return;
        if (options.on_case_start) {
          std::lock_guard lock(mutex);
          options.on_case_start(cases[i]);
        }
        if (faulted(cases[i])) {
          std::unique_lock lock(alone);
          results[i] = run_confirmed(cases[i], target, rules, options, confirm, watch, identities);
        } else {
          std::shared_lock lock(alone);
          results[i] = run_confirmed(cases[i], target, rules, options, confirm, watch, identities);
        }
        if (options.on_case) {
          std::lock_guard lock(mutex);
          options.on_case(*results[i]);
        }
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!failure) failure = std::current_exception();
      next.store(cases.size());  // no further case starts
    }
  };
  const auto jobs = static_cast<std::size_t>(std::clamp(options.jobs, 1, kMaxJobs));
  std::vector<std::thread> pool;
  try {
    for (std::size_t k = 1; k < std::min(jobs, cases.size()); ++k) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had: the run goes on with those it got.
  }
  work();  // the calling thread is a worker too
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);

  // Cases are claimed in order, so after a stop the ones that ran are a prefix of the list.
  for (auto& r : results) {
    if (r) run.cases.push_back(std::move(*r));
  }
  if (stopped(options.stop)) run.interrupted = true;
  run.wedged = watch.wedge();
  run.continued_after_wedge = run.wedged && options.continue_after_wedge;
  for (auto& note : watch.notes()) run.notes.push_back(std::move(note));
  run.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  run.rules = summarize_rules(run.cases, rules.levels());
  for (auto& r : run.rules) {
    if (auto it = rules.rules.find(r.id); it != rules.rules.end()) {
      r.summary = it->second.summary;
      r.apple = it->second.apple;
      r.source = it->second.source;
      r.grounding = it->second.grounding;
    }
  }
  return run;
}

}  // namespace mdmc::scenario
