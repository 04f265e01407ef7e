#include "harness/scenario/runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <latch>
#include <mutex>
#include <thread>

#include "harness/net/http_client.hpp"
#include "harness/protocol/apple_schema.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/base/bytes.hpp"

namespace mdmc::scenario {
namespace {

using emulator::Answer;
using emulator::Device;
using emulator::Message;
using emulator::UserAgent;

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string excerpt(std::string_view body, std::size_t max = 160) {
  std::string out;
  for (char c : body.substr(0, max)) {
    if (c == '\n' || c == '\t') out += ' ';
    else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) out += '.';
    else out += c;
  }
  if (body.size() > max) out += "...";
  return out;
}

std::string describe(const net::Response& r) {
  if (r.body.empty()) return fmt::format("{} with a zero-length body", r.status);
  return fmt::format("{} with {} bytes: {}", r.status, r.body.size(), excerpt(r.body));
}


// Ends a case early: a failed expectation, an error, or a skip.
struct Stop {
  Verdict verdict;
  std::string reason;
};

class CaseRun {
 public:
  CaseRun(const Case& c, const TargetProfile& target, const RuleCatalog& rules, std::uint64_t seed,
          const std::atomic<bool>* stop)
      : case_(c), target_(target), rules_(rules), stop_(stop), ids_(seed ^ fnv1a(c.id)) {
    result_.id = c.id;
    result_.title = c.title;
    result_.rules = c.rules;
  }

  CaseResult run() {
    auto started = std::chrono::steady_clock::now();
    try {
      check_requirements();
      build_actors();
      if (case_.enroll) enroll();
      for (std::size_t i = 0; i < case_.steps.size(); ++i) run_step(static_cast<int>(i), case_.steps[i]);
      result_.verdict = Verdict::pass;
      for (const auto& f : result_.findings) {
        if (!f.passed && f.level != Level::must) result_.verdict = std::max(result_.verdict, Verdict::warn);
      }
      if (result_.verdict == Verdict::warn) result_.reason = first_failed_reason();
    } catch (const Stop& stop) {
      result_.verdict = stop.verdict;
      result_.reason = stop.reason;
    }
    result_.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    return std::move(result_);
  }

 private:
  struct Actor {
    std::string device_name;
    Device* device = nullptr;
    UserAgent* user = nullptr;  // null on the device channel
  };

  Level level_of(const std::string& rule) const {
    auto it = rules_.rules.find(rule);
    return it == rules_.rules.end() ? Level::must : it->second.level;
  }

  std::string first_failed_reason() const {
    for (const auto& f : result_.findings) {
      if (!f.passed) return fmt::format("{}: expected {}; got {}", f.rule, f.expected, f.actual);
    }
    return {};
  }

  // Records a finding; a failed must-level one ends the case, since later steps would build
  // on a broken state and blame the wrong rule.
  void record(int step, const std::string& rule, bool passed, std::string expected, std::string actual,
              std::optional<Level> lowered = std::nullopt) {
    Level level = lowered.value_or(level_of(rule));
    {
      std::lock_guard lock(mu_);
      result_.findings.push_back(Finding{rule, level, passed, expected, actual, step});
    }
    if (!passed && level == Level::must) {
      throw Stop{Verdict::fail, fmt::format("{}: expected {}; got {}", rule, expected, actual)};
    }
  }

  void check_requirements() {
    for (auto req : case_.requirements) {
      if (req == Requirement::enqueue && !target_.enqueue) {
        throw Stop{Verdict::skip, "the target profile has no admin.enqueue adapter to queue commands with"};
      }
    }
    const auto& id = target_.identity;
    if (id.mode != IdentityMode::none && !id.issuer && id.pool.size() < case_.devices.size()) {
      throw Stop{Verdict::skip, fmt::format("the case needs {} device identities; the profile's pool has {}",
                                            case_.devices.size(), id.pool.size())};
    }
    bool needs_identity = false;
    for (const auto& step : case_.steps) needs_identity = needs_identity || !step.identity_of.empty();
    if (needs_identity && id.mode == IdentityMode::none) {
      throw Stop{Verdict::skip, "the case checks identity binding; the profile's identity mode is none"};
    }
    std::size_t managed = 0;
    for (const auto& d : case_.devices) {
      for (const auto& u : d.users) managed += u.managed ? 1 : 0;
    }
    if (managed > target_.managed_network_users.size()) {
      throw Stop{Verdict::skip, fmt::format("the case needs {} managed network user(s); the profile's "
                                            "policy.network_users.managed lists {}",
                                            managed, target_.managed_network_users.size())};
    }
  }

  void build_actors() {
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
      make_identity(spec.name, facts.udid);
      for (const auto& u : spec.users) {
        protocol::UserFacts user{ids_.uuid(), u.name, u.name + " (mdmconform)"};
        if (u.managed) user.user_id = target_.managed_network_users[next_managed++];
        users_.push_back(std::make_unique<UserAgent>(facts.udid, user, u.kind, ids_));
        actors_[spec.name + "/" + u.name] = Actor{spec.name, device, users_.back().get()};
      }
    }
  }

  // Each device gets its own identity; its users share it, as macOS does.
  void make_identity(const std::string& device_name, const std::string& udid) {
    const auto& id = target_.identity;
    if (id.mode == IdentityMode::none) return;
    if (!id.issuer) {
      identities_[device_name] = id.pool[identities_.size()];
      return;
    }
    auto issued = pki::issue_device_identity(*id.issuer, udid, id.key_type);
    if (!issued) throw Stop{Verdict::error, "could not issue a device identity: " + issued.message()};
    identities_[device_name] = std::move(issued).value();
  }

  // One connection per actor and identity: the daemon and each agent keep their own, as on a
  // Mac; a step under another device's identity gets one of its own.
  net::HttpClient& client_for(const std::string& actor_name, const std::string& identity_device) {
    auto key = actor_name + "|" + identity_device;
    std::lock_guard lock(mu_);
    auto& client = clients_[key];
    if (!client) {
      net::TlsClientConfig tls;
      tls.trusted_ca_pem = target_.tls.ca_pem;
      tls.insecure = target_.tls.insecure;
      auto mode = target_.identity.mode;
      if (mode == IdentityMode::mtls || mode == IdentityMode::both) {
        const auto& identity = identities_.at(identity_device);
        tls.client_cert_pem = identity.cert_pem;
        tls.client_key_pem = identity.key_pem;
        tls.client_chain_pem = identity.chain_pem;
      }
      client = std::make_unique<net::HttpClient>(target_.limits, tls);
    }
    return *client;
  }

  // Adds an exchange to the transcript, with a response body beyond the cap cut short.
  void keep(int step, const std::string& actor, const std::string& label, const net::Exchange& exchange) {
    TranscriptEntry entry{actor, label, exchange, std::nullopt, step};
    if (entry.exchange.response && entry.exchange.response->body.size() > kTranscriptBodyCap) {
      auto& body = entry.exchange.response->body;
      entry.response_body_cut = CutBody{body.size(), base::sha256_hex(body)};
      body.resize(kTranscriptBodyCap);
      body.shrink_to_fit();
    }
    std::lock_guard lock(mu_);
    result_.transcript.push_back(std::move(entry));
  }

  void check_interrupted() const {
    if (stop_ && stop_->load()) throw Stop{Verdict::error, "interrupted before the case finished"};
  }

  // Sends a request as an actor, under its device's identity or another device's.
  net::Exchange transmit(const std::string& actor_name, std::string identity_device, net::Request request) {
    check_interrupted();
    if (identity_device.empty()) identity_device = actors_.at(actor_name).device_name;
    auto mode = target_.identity.mode;
    if (mode == IdentityMode::signature || mode == IdentityMode::both) {
      auto signature = pki::mdm_signature(identities_.at(identity_device), request.body);
      if (!signature) throw Stop{Verdict::error, "could not sign the body: " + signature.message()};
      request.headers.push_back({"Mdm-Signature", *signature});
    }
    return client_for(actor_name, identity_device).send(request);
  }

  // Fills ${saved:NAME} with a saved value (a DigestChallenge).
  std::string fill_saved(std::string text) {
    std::lock_guard lock(mu_);
    for (const auto& [name, value] : challenges_) {
      const std::string key = "${saved:" + name + "}";
      for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + value.size())) {
        text.replace(pos, key.size(), value);
      }
    }
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

  // Sends one message as an actor; a transport failure ends the case as an error: the
  // harness got no answer to judge.
  net::Exchange send(int step, const std::string& actor_name, const Message& message, const std::string& identity_of = {}) {
    net::Request request;
    request.method = "PUT";
    request.url = message.endpoint == emulator::Endpoint::check_in ? target_.check_in_url : target_.server_url;
    request.headers.push_back({"Content-Type", message.content_type()});
    request.body = message.bytes();
    auto exchange = transmit(actor_name, identity_of, request);
    auto label = identity_of.empty() ? message.label : message.label + " (under " + identity_of + "'s identity)";
    keep(step, actor_name, label, exchange);
    if (!exchange.ok()) {
      throw Stop{Verdict::error, fmt::format("{} as {}: PUT {}: no answer: {} ({})", message.label, actor_name,
                                             request.url, net::transport_error_name(exchange.error),
                                             exchange.error_detail)};
    }
    return exchange;
  }

  static Answer answer_of(const net::Exchange& e) { return Answer{e.response->status, e.response->body}; }

  void enroll() {
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
        auto exchange = send(-1, actor, message);  // enrollment comes before step 0
        enrollment.on_answer(answer_of(exchange));
        if (!enrollment.failed()) continue;
        // Only a failed setup step is a finding: a passing one is no evidence for a rule the
        // case does not name.
        const char* rule = stage == emulator::Enrollment::Stage::authenticate   ? "ENR-AUTH"
                           : stage == emulator::Enrollment::Stage::device_token ? "ENR-TOKEN-DEVICE"
                                                                                : "ENR-TOKEN-USER";
        record(-1, rule, false, "200 to " + message.label + " (enrollment)", describe(*exchange.response));
      }
    }
  }

  void check_exchange(int index, const Step& step, const net::Response& response) {
    for (const auto& e : step.expect) {
      if (!e.status.empty()) {
        record(index, e.rule, e.status.contains(response.status), "status " + e.status.describe(),
               describe(response), e.level);
      }
      switch (e.body) {
        case BodyExpectation::any: break;
        case BodyExpectation::empty:
          record(index, e.rule, response.body.empty(), "a zero-length body", describe(response), e.level);
          break;
        case BodyExpectation::not_empty:
          record(index, e.rule, !response.body.empty(), "a body", describe(response), e.level);
          break;
        case BodyExpectation::plist:
          record(index, e.rule, plist::parse(response.body, target_.plist_limits).ok(), "a plist body",
                 describe(response), e.level);
          break;
      }
      if (!e.body_contains.empty()) {
        record(index, e.rule, response.body.find(e.body_contains) != std::string::npos,
               "a body containing " + e.body_contains, describe(response), e.level);
      }
      if (!e.has_keys.empty()) {
        auto parsed = plist::parse(response.body, target_.plist_limits);
        for (const auto& key : e.has_keys) {
          bool ok = parsed && parsed->find(key) != nullptr;
          record(index, e.rule, ok, "a plist with " + key, describe(response), e.level);
        }
      }
    }
  }

  Message check_in_message(const Step& step) {
    auto& actor = actors_.at(step.actor);
    using protocol::MessageType;
    switch (step.message) {
      case MessageType::authenticate: return actor.device->authenticate();
      case MessageType::check_out: return actor.device->check_out();
      case MessageType::token_update:
        return actor.user ? actor.user->token_update(actor.device->facts()) : actor.device->token_update();
      case MessageType::user_authenticate:
        if (!actor.user) throw Stop{Verdict::error, "UserAuthenticate needs a device/user actor"};
        return actor.user->user_authenticate();
      default:
        throw Stop{Verdict::error, fmt::format("the harness does not send {} yet",
                                               protocol::message_type_name(step.message))};
    }
  }

  void run_step(int index, const Step& step) {
    if (step.kind == StepKind::parallel) {
      if (step.interleave) run_interleaved(index, step);
      else run_parallel(index, step);
      return;
    }
    auto& actor = actors_.at(step.actor);
    switch (step.kind) {
      case StepKind::check_in: {
        auto message = overridden(check_in_message(step), step.override_keys);
        auto exchange = send(index, step.actor, message, step.identity_of);
        if (step.message == protocol::MessageType::user_authenticate) {
          actor.user->on_user_authenticate(answer_of(exchange), target_.plist_limits);
          if (!step.save.empty()) {
            std::lock_guard lock(mu_);
            challenges_[step.save] = actor.user->digest_challenge();
          }
        } else if (step.message == protocol::MessageType::token_update && actor.user) {
          actor.user->on_token_update(answer_of(exchange));
        }
        check_exchange(index, step, *exchange.response);
        break;
      }
      case StepKind::report: {
        auto channel = actor.user ? actor.user->channel() : actor.device->channel();
        std::string uuid;
        if (step.command == "unknown") {
          std::lock_guard lock(mu_);
          uuid = ids_.uuid();
        } else if (!step.command.empty()) {
          auto saved = resolve({step.command});
          if (saved.size() != 1) throw Stop{Verdict::error, "'" + step.command + "' does not hold exactly one command"};
          uuid = saved.front();
        }
        protocol::ReportSpec spec{step.status, uuid, {}};
        if (step.status == protocol::Status::error) spec.error_chain.push_back({12345, "MCMDMErrorDomain", "mdmconform"});
        std::string label(protocol::status_name(step.status));
        if (!uuid.empty()) label += " " + uuid;
        Message message = overridden(
            Message{emulator::Endpoint::server, label,
                    protocol::report(channel, actor.user ? &actor.user->facts() : nullptr, spec, step.flags)},
            step.override_keys);
        auto exchange = send(index, step.actor, message, step.identity_of);
        check_exchange(index, step, *exchange.response);
        break;
      }
      case StepKind::enqueue: enqueue(index, step, actor); break;
      case StepKind::raw: {
        auto channel = actor.user ? actor.user->channel() : actor.device->channel();
        std::string body = step.raw;
        auto fill = [&body](const std::string& key, const std::string& value) {
          for (auto pos = body.find(key); pos != std::string::npos; pos = body.find(key, pos + value.size())) {
            body.replace(pos, key.size(), value);
          }
        };
        body = fill_saved(std::move(body));
        fill("${udid}", channel.udid);
        fill("${user_id}", channel.user_id);
        for (const auto& [name, uuids] : saved_) {
          if (uuids.size() == 1) fill("${command_uuid:" + name + "}", uuids.front());
        }
        if (body.size() < step.pad_to) body.append(step.pad_to - body.size(), ' ');
        Message message{step.endpoint, fmt::format("raw bytes ({} bytes)", body.size()), {}};
        net::Request request{"PUT",
                             step.endpoint == emulator::Endpoint::check_in ? target_.check_in_url : target_.server_url,
                             {{"Content-Type", message.content_type()}}, std::move(body)};
        auto exchange = transmit(step.actor, step.identity_of, std::move(request));
        keep(index, step.actor, message.label, exchange);
        if (!exchange.ok()) {
          throw Stop{Verdict::error, fmt::format("{} as {}: no answer: {} ({})", message.label, step.actor,
                                                 net::transport_error_name(exchange.error), exchange.error_detail)};
        }
        check_exchange(index, step, *exchange.response);
        break;
      }
      case StepKind::series: run_series(index, step); break;
      case StepKind::parallel: break;  // handled above
    }
  }

  void enqueue(int index, const Step& step, Actor& actor) {
    const auto& admin = *target_.enqueue;
    auto channel = actor.user ? actor.user->channel() : actor.device->channel();
    auto command = protocol::make_command(ids_.uuid(), step.request_type, step.accounts);
    std::string url = admin.url;
    auto replace = [&url](std::string_view key, const std::string& value) {
      for (auto pos = url.find(key); pos != std::string::npos; pos = url.find(key, pos + value.size())) {
        url.replace(pos, key.size(), value);
      }
    };
    bool bare_user = admin.channel_style == ChannelStyle::user_id && channel.is_user();
    replace("{channel}", bare_user ? channel.user_id : channel.id());
    replace("{udid}", channel.udid);
    replace("{user_id}", channel.user_id);
    net::Request request{admin.method, url, {{"Content-Type", "application/xml"}},
                         plist::to_xml(plist::Value(command.body))};
    if (!admin.basic_user.empty()) {
      request.headers.push_back({"Authorization", "Basic " + base::base64_encode(admin.basic_user + ":" + admin.basic_password)});
    }
    if (!admin_http_) {
      admin_http_ = std::make_unique<net::HttpClient>(target_.limits,
                                                      net::TlsClientConfig{target_.tls.ca_pem, target_.tls.insecure, {}, {}, {}});
    }
    check_interrupted();
    auto exchange = admin_http_->send(request);
    keep(index, "admin", "enqueue " + step.request_type + " " + command.uuid + " for " + step.actor, exchange);
    // The admin adapter is how the harness sets a case up, not a rule of the protocol: when it
    // fails, no verdict on the server's MDM behaviour can be reached.
    if (!exchange.ok()) {
      throw Stop{Verdict::error, fmt::format("admin adapter: {} {}: no answer: {} ({})", admin.method, url,
                                             net::transport_error_name(exchange.error), exchange.error_detail)};
    }
    const auto& codes = admin.expect_status;
    if (std::find(codes.begin(), codes.end(), exchange.response->status) == codes.end()) {
      throw Stop{Verdict::error, fmt::format("admin adapter: {} {} answered {}", admin.method, url,
                                             describe(*exchange.response))};
    }
    if (!step.save.empty()) saved_[step.save] = {command.uuid};
    check_exchange(index, step, *exchange.response);
    // An asynchronous queue (MicroMDM) has accepted the command but may not hold it yet.
    if (admin.settle.count() > 0) std::this_thread::sleep_for(admin.settle);
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

  emulator::Series start_series(const Step& step) {
    auto& actor = actors_.at(step.actor);
    auto options = step.series;
    options.limits = target_.plist_limits;
    return emulator::Series(actor.user ? actor.user->channel() : actor.device->channel(),
                            actor.user ? std::optional(actor.user->facts()) : std::nullopt, options);
  }

  // One exchange of a series.
  void advance(int index, const Step& step, emulator::Series& series) {
    net::Request request{"PUT", target_.server_url, {{"Content-Type", series.next().content_type()}},
                         series.next().bytes()};
    auto exchange = transmit(step.actor, step.identity_of, request);
    keep(index, step.actor, series.next().label, exchange);
    if (!exchange.ok()) {
      series.on_answer({}, fmt::format("{} ({})", net::transport_error_name(exchange.error), exchange.error_detail));
    } else {
      series.on_answer(answer_of(exchange));
    }
  }

  void run_series(int index, const Step& step) {
    auto series = start_series(step);
    for (int exchanges = 0; !series.done(); ++exchanges) {
      if (step.enqueue_after > 0 && exchanges == step.enqueue_after) {
        Step late;
        late.kind = StepKind::enqueue;
        late.actor = step.actor;
        late.request_type = step.enqueue_during;
        late.save = step.enqueue_during_save;
        enqueue(index, late, actors_.at(step.actor));
      }
      advance(index, step, series);
    }
    check_series(index, step, series.outcome());
  }

  // Steps at once, each on its own thread and connection, started together: the daemon and
  // the agents of one Mac talk to the server concurrently. The worst way a step ended is how
  // the parallel step ends.
  void run_parallel(int index, const Step& step) {
    for (const auto& sub : step.parallel) client_for(sub.actor, sub.identity_of.empty() ? actors_.at(sub.actor).device_name : sub.identity_of);
    std::vector<std::optional<Stop>> stops(step.parallel.size());
    std::latch start(static_cast<std::ptrdiff_t>(step.parallel.size()));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < step.parallel.size(); ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          run_step(index, step.parallel[i]);
        } catch (const Stop& stop) {
          stops[i] = stop;
        } catch (const std::exception& e) {
          stops[i] = Stop{Verdict::error, std::string("harness error in a parallel step: ") + e.what()};
        }
      });
    }
    for (auto& t : threads) t.join();
    const Stop* worst = nullptr;
    for (const auto& stop : stops) {
      if (stop && (!worst || stop->verdict > worst->verdict)) worst = &*stop;
    }
    if (worst) throw *worst;
  }

  // Series in lockstep, one exchange each in turn: the interleaving of concurrent series made
  // deterministic, so a server that mixes channels up is caught every time, not by chance.
  void run_interleaved(int index, const Step& step) {
    std::vector<emulator::Series> running;
    for (const auto& sub : step.parallel) running.push_back(start_series(sub));
    for (bool any = true; any;) {
      any = false;
      for (std::size_t i = 0; i < running.size(); ++i) {
        if (running[i].done()) continue;
        advance(index, step.parallel[i], running[i]);
        any = true;
      }
    }
    for (std::size_t i = 0; i < running.size(); ++i) check_series(index, step.parallel[i], running[i].outcome());
  }

  bool names_rule(std::string_view rule) const {
    return std::find(case_.rules.begin(), case_.rules.end(), rule) != case_.rules.end();
  }

  // What every delivered command carries, checked in every case: its keys against Apple's
  // schema (CMD-SCHEMA) and, for InstallProfile, one account per profile (PRF-ONE-ACCOUNT).
  // A case that names a rule keeps the passing finding as evidence too.
  void check_contents(int index, const Step& step, const emulator::SeriesOutcome& o) {
    std::vector<std::string> schema_problems;
    std::vector<std::string> bundled;
    for (const auto& d : o.delivered) {
      for (const auto& v : d.schema_violations) {
        // Apple's schema lists DeviceConfigured as device-channel only; the article sends it on
        // the user channel in Setup Assistant, and the harness follows the article (DESIGN.md).
        if (d.request_type == "DeviceConfigured" && v.key_path == "Command.RequestType") continue;
        schema_problems.push_back(fmt::format("{} {}: {}: {}", d.request_type, d.uuid, v.key_path, v.problem));
      }
      if (d.account_payloads.size() > 1) {
        bundled.push_back(fmt::format("{} carries {} accounts ({})", d.uuid, d.account_payloads.size(),
                                      fmt::join(d.account_payloads, ", ")));
      }
    }
    if (!schema_problems.empty() || (names_rule("CMD-SCHEMA") && !o.delivered.empty())) {
      record(index, "CMD-SCHEMA", schema_problems.empty(),
             "commands whose keys, types and channel match Apple's schema for their RequestType on " + step.actor,
             schema_problems.empty() ? fmt::format("{} command(s), all as the schema says", o.delivered.size())
                                     : fmt::format("{}", fmt::join(schema_problems, "; ")));
    }
    bool profiles = std::any_of(o.delivered.begin(), o.delivered.end(),
                                [](const auto& d) { return d.request_type == "InstallProfile"; });
    if (!bundled.empty() || (names_rule("PRF-ONE-ACCOUNT") && profiles)) {
      record(index, "PRF-ONE-ACCOUNT", bundled.empty(), "at most one account payload in each installed profile",
             bundled.empty() ? "every profile carries at most one account" : fmt::format("{}", fmt::join(bundled, "; ")));
    }
  }

  void check_series(int index, const Step& step, const emulator::SeriesOutcome& o) {
    if (o.end == emulator::SeriesEnd::no_response) {
      throw Stop{Verdict::error, fmt::format("series as {}: PUT {}: no answer: {}", step.actor, target_.server_url, o.end_detail)};
    }
    // Every command of every series is checked for its shape; a case about CMD-SHAPE also
    // keeps the passing finding as evidence.
    bool shaped = o.end != emulator::SeriesEnd::bad_command;
    bool names_shape = std::find(case_.rules.begin(), case_.rules.end(), "CMD-SHAPE") != case_.rules.end();
    if (!shaped || names_shape) {
      record(index, "CMD-SHAPE", shaped, "every command a dict with CommandUUID and Command.RequestType",
             shaped ? fmt::format("{} command(s), each with both", o.delivered.size()) : o.end_detail);
    }
    check_contents(index, step, o);
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
        throw Stop{Verdict::error, fmt::format("step {}: '{}' holds no command to look for", index,
                                               fmt::join(e.delivered, ", "))};
      }
      for (const auto& uuid : expected_uuids) {
        record(index, e.rule, o.delivered_uuid(uuid), "delivery of " + uuid + " on " + step.actor, actual, e.level);
      }
      for (const auto& uuid : resolve(e.not_delivered)) {
        record(index, e.rule, !o.delivered_uuid(uuid), "no delivery of " + uuid + " on " + step.actor, actual, e.level);
      }
      if (e.delivered_count) {
        record(index, e.rule, static_cast<int>(o.delivered.size()) == *e.delivered_count,
               fmt::format("{} command(s) delivered", *e.delivered_count), actual, e.level);
      }
      if (!e.ended.empty()) {
        bool ok = std::find(e.ended.begin(), e.ended.end(), o.end) != e.ended.end();
        std::vector<std::string_view> names;
        for (auto end : e.ended) names.push_back(emulator::series_end_name(end));
        record(index, e.rule, ok, fmt::format("the series to end with {}", fmt::join(names, " or ")), actual, e.level);
      }
      if (e.terminates) {
        record(index, e.rule, o.end != emulator::SeriesEnd::bound_reached,
               fmt::format("the series to end within {} exchanges", step.series.max_exchanges), actual, e.level);
      }
      for (const auto& type : e.delivered_types) {
        bool ok = std::any_of(o.delivered.begin(), o.delivered.end(),
                              [&](const auto& d) { return d.request_type == type; });
        record(index, e.rule, ok, "a " + type + " command on " + step.actor, actual, e.level);
      }
      if (e.no_repeat) {
        auto repeated = o.repeated();
        record(index, e.rule, repeated.empty(), "no command twice in one series",
               repeated.empty() ? actual : fmt::format("{} sent again; {}", fmt::join(repeated, ", "), actual), e.level);
      }
    }
  }

  const Case& case_;
  const TargetProfile& target_;
  const RuleCatalog& rules_;
  const std::atomic<bool>* stop_;
  emulator::IdentitySource ids_;
  CaseResult result_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<UserAgent>> users_;
  std::map<std::string, Actor> actors_;
  std::map<std::string, pki::Identity> identities_;                  // by device name
  std::map<std::string, std::unique_ptr<net::HttpClient>> clients_;  // by actor and identity
  std::unique_ptr<net::HttpClient> admin_http_;
  std::map<std::string, std::vector<std::string>> saved_;
  std::map<std::string, std::string> challenges_;  // saved DigestChallenges, by name
  // Guards what parallel steps share: findings, transcript, saved values, connections, ids.
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

// One case, and when it ends fail or warn, its confirmation re-runs on fresh devices.
CaseResult run_confirmed(const Case& c, const TargetProfile& target, const RuleCatalog& rules,
                         const RunOptions& options, int confirm) {
  CaseResult first = run_case(c, target, rules, options.seed, options.stop);
  if (first.verdict != Verdict::fail && first.verdict != Verdict::warn) return first;
  std::vector<CaseResult> reruns;
  for (int attempt = 1; attempt <= confirm && !stopped(options.stop); ++attempt) {
    auto again = run_case(c, target, rules, attempt_seed(options.seed, c.id, attempt), options.stop);
    // A re-run cut short by the stop flag says nothing about the server.
    if (stopped(options.stop) && again.verdict == Verdict::error) break;
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

CaseResult run_case(const Case& c, const TargetProfile& target, const RuleCatalog& rules, std::uint64_t seed,
                    const std::atomic<bool>* stop) {
  return CaseRun(c, target, rules, seed, stop).run();
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
  // shares nothing mutable with another: its devices, identities and HTTP clients are its own;
  // the target profile and the rule catalog are only read.
  const int confirm = std::clamp(options.confirm, 0, kMaxConfirm);
  std::vector<std::optional<CaseResult>> results(cases.size());
  std::atomic<std::size_t> next{0};
  std::mutex mutex;             // serializes on_case, and guards `failure`
  std::exception_ptr failure;   // the first exception a worker met, rethrown here
  auto work = [&] {
    try {
      while (!stopped(options.stop)) {
        const std::size_t i = next.fetch_add(1);
        if (i >= cases.size()) return;
        if (options.on_case_start) {
          std::lock_guard lock(mutex);
          options.on_case_start(cases[i]);
        }
        results[i] = run_confirmed(cases[i], target, rules, options, confirm);
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

std::optional<std::string> probe_reachable(const TargetProfile& target) {
  net::HttpClient http(target.limits, net::TlsClientConfig{target.tls.ca_pem, target.tls.insecure, {}, {}, {}});
  // An empty PUT: any HTTP answer, even a 400, proves the server is there.
  net::Request request{"PUT", target.check_in_url, {{"Content-Type", std::string(protocol::kCheckInContentType)}}, ""};
  auto exchange = http.send(request);
  // Only a failure to connect means "unreachable"; a server that answers garbage is there, and
  // gets verdicts for it.
  switch (exchange.error) {
    case net::TransportError::bad_url:
    case net::TransportError::resolve_failed:
    case net::TransportError::connect_failed:
    case net::TransportError::connect_timeout:
    // A server whose certificate the profile does not trust is, for this profile, not there.
    case net::TransportError::tls_untrusted_certificate:
    case net::TransportError::tls_name_mismatch:
    case net::TransportError::tls_certificate_expired:
    case net::TransportError::tls_handshake_failed:
      break;
    default:
      return std::nullopt;
  }
  return fmt::format("{}: {} ({})", target.check_in_url, net::transport_error_name(exchange.error), exchange.error_detail);
}

}  // namespace mdmc::scenario
