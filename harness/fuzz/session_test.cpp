#include "harness/fuzz/session.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <fstream>

#include "harness/fuzz/campaign.hpp"
#include "harness/fuzz/finding.hpp"
#include "harness/fuzz/triage.hpp"
#include "harness/net/http_server.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/declarative.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/server/reference_server.hpp"

namespace mdmc::fuzz {
namespace {

// The reference server on loopback, plain HTTP, with one fault mode.
class Served {
 public:
  explicit Served(server::Fault fault, server::SeededBug bug = server::SeededBug::none) : server_(config(fault, bug)) {
    auto port_listening = server_.listen("127.0.0.1", 0);
    EXPECT_TRUE(port_listening) << port_listening.message();
    port_ = port_listening.value_or(0);
    server_.start();
  }
  ~Served() { server_.stop(); }
  void stop() { server_.stop(); }

  target::TargetProfile target() const {
    target::TargetProfile t;
    t.name = "reference-test";
    t.file = "/dev/null";
    auto base = "http://127.0.0.1:" + std::to_string(port_);
    t.check_in_url = base + "/checkin";
    t.server_url = base + "/mdm";
    t.topic = "com.apple.mgmt.External.mdmconform";
    t.limits.connect_timeout = std::chrono::milliseconds(1000);
    t.limits.header_timeout = std::chrono::milliseconds(2000);
    t.limits.body_timeout = std::chrono::milliseconds(2000);
    target::AdminEndpoint admin;
    admin.url = base + "/v1/enqueue/{channel}";
    t.enqueue = admin;
    return t;
  }

 private:
  static server::Config config(server::Fault fault, server::SeededBug bug) {
    server::Config c;
    c.fault = fault;
    c.seeded_bug = bug;
    return c;
  }
  server::ReferenceServer server_;
  std::uint16_t port_ = 0;
};

std::unique_ptr<Session> open_session(const Served& served, int probe_every = 50) {
  SessionOptions options;
  options.target = served.target();
  options.probe_every = probe_every;
  auto session = Session::open(options);
  EXPECT_TRUE(session) << session.message();
  return session ? std::move(session).value() : nullptr;
}

std::string device_report(protocol::Status status, const std::string& uuid = {}) {
  protocol::Channel channel{std::string(kFuzzUdid), ""};
  return plist::to_xml(plist::Value(protocol::report(channel, nullptr, {status, uuid, {}})));
}

std::string device_message(plist::Dict (*build)(const protocol::DeviceFacts&)) {
  protocol::DeviceFacts device;
  device.udid = std::string(kFuzzUdid);
  device.topic = "com.apple.mgmt.External.mdmconform";
  return plist::to_xml(plist::Value(build(device)));
}

TEST(SessionTest, CorrectServerFiresNoOracleOnWellFormedInput) {
  Served served(server::Fault::none);
  auto session = open_session(served, 1);
  ASSERT_TRUE(session);
  for (const auto& input : {device_report(protocol::Status::idle), device_message(protocol::authenticate),
                            device_report(protocol::Status::idle), device_message(protocol::check_out),
                            device_report(protocol::Status::idle)}) {
    auto outcome = session->send(input);
    EXPECT_EQ(outcome.oracle, Oracle::none) << outcome.detail;
  }
}

// Two status reports wrong in different ways both get 400 from the reference server; what each
// got wrong is a feature of its own, so the fuzzer keeps both.
TEST(SessionTest, StatusReportsWrongInAnotherWayGiveAnotherFeature) {
  Served served(server::Fault::none);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  const protocol::Channel device{std::string(kFuzzUdid), ""};
  auto status_with = [&](const std::string& json) {
    return plist::to_xml(plist::Value(protocol::declarative_management(device, nullptr, "status", json)));
  };
  auto features_of = [&](const std::string& input, int want = 400) {
    std::vector<std::size_t> features;
    auto outcome = session->send(input, &features);
    EXPECT_TRUE(outcome.exchange.ok());
    EXPECT_EQ(outcome.exchange.response->status, want) << outcome.exchange.response->body;
    std::sort(features.begin(), features.end());
    return features;
  };
  const auto errors_not_array = status_with(R"({"StatusItems":{},"Errors":{}})");
  const auto items_missing = status_with(R"({"Errors":[]})");
  // Each once first: the first 4xx of a kind is followed by a liveness probe, a feature of its own.
  (void)features_of(errors_not_array);
  (void)features_of(items_missing);
  const auto first = features_of(errors_not_array);
  EXPECT_NE(first, features_of(items_missing));
  EXPECT_EQ(features_of(errors_not_array), first);
  // A name the mutator made up is no new feature: only the kind of problem counts.
  const auto foo = status_with(R"({"StatusItems":{},"Errors":[],"Foo":1})");
  const auto bar = status_with(R"({"StatusItems":{},"Errors":[],"Bar":"x"})");
  (void)features_of(foo, 200);
  EXPECT_EQ(features_of(bar, 200), features_of(foo, 200));
}

TEST(SessionTest, GarbageIsRefusedAndProbedAfter) {
  Served served(server::Fault::none);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  std::vector<std::size_t> features;
  auto outcome = session->send("garbage, not a plist", &features);
  EXPECT_EQ(outcome.oracle, Oracle::none) << outcome.detail;
  ASSERT_TRUE(outcome.exchange.ok());
  EXPECT_EQ(outcome.exchange.response->status / 100, 4);
  EXPECT_TRUE(outcome.probe) << "a first 4xx to garbage is an anomaly: the target's liveness is checked after it";
  EXPECT_FALSE(features.empty());
  for (auto f : features) EXPECT_LT(f, kFeatureSlots);
  // The same answer to the same kind of input again is routine: no probe until probe_every.
  EXPECT_FALSE(session->send("more garbage", &features).probe);
}

TEST(SessionTest, ProbesEveryNInputs) {
  Served served(server::Fault::none);
  auto session = open_session(served, 3);
  int probes = 0;
  for (int i = 0; i < 9; ++i) probes += session->send(device_report(protocol::Status::idle)).probe ? 1 : 0;
  EXPECT_EQ(probes, 3);
}

TEST(SessionTest, FiveHundredFiresTheStatusOracle) {
  Served served(server::Fault::malformed_500);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  auto outcome = session->send("<?xml version=\"1.0\"?><plist><dict><key>MessageType</key>");
  EXPECT_EQ(outcome.oracle, Oracle::status_5xx) << outcome.detail;
  EXPECT_NE(outcome.detail.find("500"), std::string::npos);
}

TEST(SessionTest, AcceptedUnknownStatusFiresRobUnknownType) {
  Served served(server::Fault::unknown_status_acks);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  protocol::Channel channel{std::string(kFuzzUdid), ""};
  auto dict =
      protocol::report(channel, nullptr, {protocol::Status::acknowledged, "6F1C2A3B-0000-4000-8000-000000000009", {}});
  dict["Status"] = plist::Value("Bogus");
  auto outcome = session->send(plist::to_xml(plist::Value(dict)));
  EXPECT_EQ(outcome.oracle, Oracle::rob_unknown_type) << outcome.detail;
}

// A server that says 200 to anything: enrollment and probes pass, garbage is "accepted".
TEST(SessionTest, GarbageAcceptedWithTwoHundredFiresRobMalformed) {
  net::HttpServer lenient([](const net::ServerRequest&) { return net::ServerResponse{200, {}, ""}; });
  auto port_listening = lenient.listen("127.0.0.1", 0);
  ASSERT_TRUE(port_listening) << port_listening.message();
  auto port = port_listening.value_or(0);
  lenient.start();
  Served reference(server::Fault::none);
  SessionOptions options;
  options.target = reference.target();
  options.target.check_in_url = "http://127.0.0.1:" + std::to_string(port) + "/checkin";
  options.target.server_url = "http://127.0.0.1:" + std::to_string(port) + "/mdm";
  options.target.enqueue.reset();
  auto opened = Session::open(options);
  ASSERT_TRUE(opened) << opened.message();
  auto session = std::move(opened).value();
  EXPECT_EQ(session->send(device_report(protocol::Status::idle)).oracle, Oracle::none);
  auto outcome = session->send("garbage, not a plist");
  EXPECT_EQ(outcome.oracle, Oracle::rob_malformed) << outcome.detail;
  protocol::Channel channel{std::string(kFuzzUdid), ""};
  auto dict = protocol::report(channel, nullptr, {protocol::Status::idle, {}, {}});
  dict["Status"] = plist::Value("Snoozing");
  EXPECT_EQ(session->send(plist::to_xml(plist::Value(dict))).oracle, Oracle::rob_unknown_type);
}

// A server that closes the connection after every answer: the session opens a new one each
// time, and nothing fires.
TEST(SessionTest, ADroppedConnectionIsReopened) {
  net::HttpServer closing([](const net::ServerRequest&) {
    net::ServerResponse r{200, {}, ""};
    r.close = true;
    return r;
  });
  auto port_listening = closing.listen("127.0.0.1", 0);
  ASSERT_TRUE(port_listening) << port_listening.message();
  auto port = port_listening.value_or(0);
  closing.start();
  Served reference(server::Fault::none);
  SessionOptions options;
  options.target = reference.target();
  options.target.check_in_url = "http://127.0.0.1:" + std::to_string(port) + "/checkin";
  options.target.server_url = "http://127.0.0.1:" + std::to_string(port) + "/mdm";
  options.target.enqueue.reset();
  auto opened = Session::open(options);
  ASSERT_TRUE(opened) << opened.message();
  auto session = std::move(opened).value();
  for (int i = 0; i < 3; ++i) {
    auto outcome = session->send(device_report(protocol::Status::idle));
    EXPECT_EQ(outcome.oracle, Oracle::none) << outcome.detail;
    ASSERT_TRUE(outcome.exchange.ok());
    EXPECT_FALSE(outcome.exchange.reused_connection);
  }
}

TEST(SessionTest, WedgedServerFiresLiveness) {
  Served served(server::Fault::wedged_after_garbage);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  auto outcome = session->send("garbage");
  EXPECT_EQ(outcome.oracle, Oracle::liveness) << outcome.detail;
  ASSERT_TRUE(outcome.probe);
}

TEST(SessionTest, CommandWithoutRequestTypeFiresCmdShape) {
  Served served(server::Fault::command_without_request_type);
  SessionOptions options;
  options.target = served.target();
  options.baseline = false;              // the oracle itself, not the baseline's exclusion of its rule
  auto opened = Session::open(options);  // queues a ProfileList on each channel
  ASSERT_TRUE(opened) << opened.message();
  auto session = std::move(opened).value();
  auto outcome = session->send(device_report(protocol::Status::idle));
  EXPECT_EQ(outcome.oracle, Oracle::cmd_shape) << outcome.detail;
}

// With the baseline (the default), a server that already breaks CMD-SHAPE has the rule
// excluded before any input: its command without RequestType fires nothing, and the exclusion
// says which step showed it.
TEST(SessionTest, TheBaselineExcludesCmdShapeFromAServerThatBreaksIt) {
  Served served(server::Fault::command_without_request_type);
  SessionOptions options;
  options.target = served.target();
  auto opened = Session::open(options);
  ASSERT_TRUE(opened) << opened.message();
  auto session = std::move(opened).value();
  ASSERT_EQ(session->exclusions().size(), 1u);
  EXPECT_EQ(session->exclusions()[0].rule, "CMD-SHAPE");
  EXPECT_FALSE(session->exclusions()[0].reason.empty());
  // Each check ends with a liveness probe, which queues a command (without RequestType here)
  // and fetches it: tolerated.
  for (int i = 0; i < 3; ++i) {
    auto outcome = session->check(device_report(protocol::Status::idle));
    EXPECT_EQ(outcome.oracle, Oracle::none) << outcome.detail;
  }
  // Without the baseline the same check fires.
  options.baseline = false;
  auto strict = Session::open(options);
  ASSERT_TRUE(strict) << strict.message();
  EXPECT_NE((*strict)->check(device_report(protocol::Status::idle)).oracle, Oracle::none);
}

TEST(SessionTest, DisabledOracleStaysQuiet) {
  Served served(server::Fault::command_without_request_type);
  SessionOptions options;
  options.target = served.target();
  options.disabled = {Oracle::cmd_shape};
  auto opened = Session::open(options);
  ASSERT_TRUE(opened) << opened.message();
  auto session = std::move(opened).value();
  EXPECT_NE(session->send(device_report(protocol::Status::idle)).oracle, Oracle::cmd_shape);
}

TEST(SessionTest, ServerGoneFiresTransport) {
  Served served(server::Fault::none);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  served.stop();
  auto outcome = session->send(device_report(protocol::Status::idle));
  EXPECT_EQ(outcome.oracle, Oracle::transport) << outcome.detail;
}

TEST(SessionTest, RemoteTargetIsRefusedWithoutAllowRemote) {
  Served served(server::Fault::none);
  SessionOptions options;
  options.target = served.target();
  options.target.check_in_url = "http://192.0.2.1/checkin";  // TEST-NET-1: never contacted
  auto refused = Session::open(options);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.message().find("--allow-remote"), std::string::npos) << refused.message();
}

TEST(SessionTest, RefusedEnrollmentIsAnError) {
  Served served(server::Fault::authenticate_refused);
  SessionOptions options;
  options.target = served.target();
  auto refused = Session::open(options);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.message().find("Authenticate"), std::string::npos) << refused.message();
}

TEST(SessionTest, ReproducerRoundTripsAndIsWrittenWhole) {
  Served served(server::Fault::malformed_500);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  session->send(device_report(protocol::Status::idle));  // a first answer of its kind: probed
  session->send(device_report(protocol::Status::idle));  // routine: kept as history
  const std::string input = "<?xml version=\"1.0\"?><plist><dict>\x01\xff";
  auto outcome = session->send(input);
  ASSERT_EQ(outcome.oracle, Oracle::status_5xx);
  auto reproducer = make_reproducer(*session, outcome, input);
  EXPECT_EQ(reproducer.request.body, input);
  ASSERT_EQ(reproducer.history.size(), 1u);
  auto read = reproducer_from_json(reproducer_to_json(reproducer));
  ASSERT_TRUE(read) << read.message();
  EXPECT_EQ(read->request.body, input);
  EXPECT_EQ(read->request.url, reproducer.request.url);
  EXPECT_EQ(read->request.headers, reproducer.request.headers);
  EXPECT_EQ(read->history, reproducer.history);
  EXPECT_EQ(read->oracle, "status-5xx");

  auto dir = std::filesystem::path(::testing::TempDir()) / "findings-roundtrip";
  std::filesystem::remove_all(dir);
  auto path = write_reproducer(dir, reproducer);
  ASSERT_TRUE(path) << path.message();
  std::ifstream in(*path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(reproducer_from_json(text));
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1) << "no temporary file left beside the finding";

  EXPECT_FALSE(reproducer_from_json("{\"kind\":\"other\"}"));
  EXPECT_FALSE(reproducer_from_json("not json"));
}

// A server that ends every series with 204 (SYN-EMPTY-END) is still fuzzed: the baseline probe
// sees it before any input, names the step that failed, and the rule is excluded from the
// liveness oracle, which then tolerates it.
TEST(SessionTest, ARuleTheTargetAlreadyBreaksIsExcludedAndReported) {
  Served served(server::Fault::series_end_204);
  auto session = open_session(served, 1);
  ASSERT_TRUE(session);
  ASSERT_EQ(session->exclusions().size(), 1u);
  EXPECT_EQ(session->exclusions()[0].rule, "SYN-EMPTY-END");
  EXPECT_NE(session->exclusions()[0].reason.find("Acknowledged (of its ProfileList command) got HTTP 204"),
            std::string::npos)
      << session->exclusions()[0].reason;
  for (int i = 0; i < 3; ++i) {
    auto outcome = session->send(device_report(protocol::Status::idle));
    EXPECT_EQ(outcome.oracle, Oracle::none) << outcome.detail;
  }
  // Without the baseline the same server fires liveness, attributed to the probe's
  // Acknowledged, not to its Idle.
  SessionOptions strict;
  strict.target = served.target();
  strict.baseline = false;
  strict.probe_every = 1;
  auto opened = Session::open(strict);
  ASSERT_TRUE(opened) << opened.message();
  auto outcome = (*opened)->send(device_report(protocol::Status::idle));
  ASSERT_EQ(outcome.oracle, Oracle::liveness) << outcome.detail;
  EXPECT_NE(outcome.detail.find("the liveness probe's Acknowledged (of its ProfileList command) got HTTP 204"),
            std::string::npos)
      << outcome.detail;
  EXPECT_EQ(outcome.answer_shape, "probe:Acknowledged:204");
}

std::string token_update_with(plist::Dict changes) {
  protocol::DeviceFacts device;
  device.udid = std::string(kFuzzUdid);
  device.topic = "com.apple.mgmt.External.mdmconform";
  auto d = protocol::token_update(device, {"token", "magic"});
  for (auto& [k, v] : changes) d[k] = std::move(v);
  return plist::to_xml(plist::Value(std::move(d)));
}

TEST(SessionTest, AFindingSaysWhatWasWrongWithTheInput) {
  Served served(server::Fault::none, server::SeededBug::wrong_type_500);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  auto outcome = session->send(token_update_with({{"UDID", plist::Value(std::int64_t{5})}}));
  ASSERT_EQ(outcome.oracle, Oracle::status_5xx);
  EXPECT_EQ(outcome.detail, "HTTP 500 to TokenUpdate whose UDID is an integer (expected string)");
}

TEST(SessionTest, TriageMinimisesANewFindingAndCountsItsDuplicates) {
  Served served(server::Fault::none, server::SeededBug::wrong_type_500);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  auto dir = std::filesystem::path(::testing::TempDir()) / "triage-findings";
  std::filesystem::remove_all(dir);
  Triage triage({dir, {}, true});
  // Two inputs with the same bug and different noise: one finding, two hits.
  auto first = token_update_with({{"UDID", plist::Value(std::int64_t{5})}, {"Noise", plist::Value("n")}});
  auto second = token_update_with({{"UDID", plist::Value(std::int64_t{9})}, {"Other", plist::Value(true)}});
  auto o1 = session->send(first);
  ASSERT_EQ(o1.oracle, Oracle::status_5xx);
  auto t1 = triage.record(*session, o1, first);
  ASSERT_TRUE(t1) << t1.message();
  EXPECT_TRUE(t1->is_new);
  auto o2 = session->send(second);
  ASSERT_EQ(o2.oracle, Oracle::status_5xx);
  auto t2 = triage.record(*session, o2, second);
  ASSERT_TRUE(t2) << t2.message();
  EXPECT_FALSE(t2->is_new) << t2->key << " vs " << t1->key << "\n" << t2->minimise_note;
  EXPECT_EQ(t2->file, t1->file);
  triage.write_counts();

  auto finding = read_finding(t1->file);
  ASSERT_TRUE(finding) << finding.message();
  EXPECT_TRUE(finding->minimised) << finding->minimise_note;
  EXPECT_LT(finding->request.body.size(), first.size());
  auto shrunk = plist::parse(finding->request.body);
  ASSERT_TRUE(shrunk);
  ASSERT_TRUE(shrunk->as_dict());
  EXPECT_FALSE(shrunk->find("Noise")) << finding->request.body;
  EXPECT_TRUE(shrunk->find("UDID") && shrunk->find("UDID")->as_integer()) << finding->request.body;
  EXPECT_EQ(finding->input_phrase.find("UDID is an integer (expected string)") != std::string::npos, true)
      << finding->input_phrase;
  ASSERT_TRUE(finding->original);
  EXPECT_EQ(*finding->original, first);
  auto hits = read_hit_counts(dir);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits.begin()->second, 2u);
}

// A finding whose input fires only after an earlier one (user-key-corrupts: an Authenticate with
// a UserID leaves the device answering every later report 500) is named by that earlier input,
// so that every report the broken device then sends is one finding, not one each.
TEST(SessionTest, TriageNamesAFindingByTheEarlierInputThatMadeItFire) {
  Served served(server::Fault::none, server::SeededBug::user_key_corrupts);
  auto session = open_session(served, 1000);
  ASSERT_TRUE(session);
  auto dir = std::filesystem::path(::testing::TempDir()) / "triage-cause-findings";
  std::filesystem::remove_all(dir);
  Triage triage({dir, {}, true});
  // A plain Authenticate first, so that the one with a UserID is no answer of a new kind (which
  // would be probed at once, and fire on the Authenticate itself).
  ASSERT_EQ(session->send(device_message(protocol::authenticate)).oracle, Oracle::none);
  auto authenticate = plist::parse(device_message(protocol::authenticate));
  ASSERT_TRUE(authenticate && authenticate->as_dict());
  auto with_user = *authenticate->as_dict();
  with_user["UserID"] = std::string(kFuzzUserId);
  with_user["Noise"] = "n";
  const auto cause = plist::to_xml(plist::Value(with_user));
  ASSERT_EQ(session->send(cause).oracle, Oracle::none);

  const auto idle = device_report(protocol::Status::idle);
  auto o1 = session->send(idle);
  ASSERT_EQ(o1.oracle, Oracle::status_5xx) << o1.detail;
  auto t1 = triage.record(*session, o1, idle);
  ASSERT_TRUE(t1) << t1.message();
  EXPECT_TRUE(t1->is_new);
  // Named by the cause's kind alone, at the endpoint where the 500 came.
  EXPECT_TRUE(t1->key.starts_with("status-5xx|server|after Authenticate|-|")) << t1->key << "\n" << t1->minimise_note;
  // Another report of the broken device: the same finding.
  const auto not_now = device_report(protocol::Status::not_now, "5E0C3D2A-1B4F-4C6D-8E9A-0F1B2C3D4E5F");
  auto o2 = session->send(not_now);
  ASSERT_EQ(o2.oracle, Oracle::status_5xx) << o2.detail;
  auto t2 = triage.record(*session, o2, not_now);
  ASSERT_TRUE(t2) << t2.message();
  EXPECT_FALSE(t2->is_new) << t2->key << " vs " << t1->key << "\n" << t2->minimise_note;
  EXPECT_EQ(t2->file, t1->file);

  // The finding keeps the cause, minimised, before the input: replaying both fires again.
  auto finding = read_finding(t1->file);
  ASSERT_TRUE(finding) << finding.message();
  ASSERT_EQ(finding->history.size(), 1u) << finding->minimise_note;
  EXPECT_TRUE(finding->minimised) << finding->minimise_note;  // so replayed on a fresh device
  auto kept = plist::parse(finding->history[0]);
  ASSERT_TRUE(kept && kept->as_dict()) << finding->history[0];
  EXPECT_TRUE(kept->find("UserID")) << finding->history[0];
  EXPECT_FALSE(kept->find("Noise")) << finding->history[0];
  EXPECT_NE(finding->input_phrase.find("sent after Authenticate"), std::string::npos) << finding->input_phrase;
  SessionOptions fresh_options;
  fresh_options.target = served.target();
  fresh_options.udid = "0B7D3E2A-6C41-4F59-9A8E-2D1C0B9A8F76";
  auto fresh = Session::open(fresh_options);
  ASSERT_TRUE(fresh) << fresh.message();
  const InputOwner from{std::string(kFuzzUdid), std::string(kFuzzUserId)};
  const InputOwner to{(*fresh)->options().udid, (*fresh)->options().user_id};
  EXPECT_EQ((*fresh)->check(retarget_input(idle, from, to)).oracle, Oracle::none);
  (void)(*fresh)->send(retarget_input(finding->history[0], from, to));
  EXPECT_EQ((*fresh)->check(retarget_input(idle, from, to)).oracle, Oracle::status_5xx);
}

TEST(SessionTest, EndpointFollowsTheMessage) {
  EXPECT_EQ(endpoint_for(device_message(protocol::authenticate)), Endpoint::check_in);
  EXPECT_EQ(endpoint_for(device_report(protocol::Status::idle)), Endpoint::server);
}

// The session keeps the facts of the input it looked at last: each input's request still goes
// where its own bytes say, whatever came before it (same length, same first byte).
TEST(SessionTest, EachRequestGoesWhereItsOwnInputSays) {
  Served served(server::Fault::none);
  auto session = open_session(served);
  ASSERT_TRUE(session);
  const auto idle = device_report(protocol::Status::idle);
  auto as_check_in = idle;
  as_check_in.replace(as_check_in.find("Status"), 6, "MessageType");  // an unknown MessageType: a check-in
  const std::string odd_bytes(idle.size(), 'a'), even_bytes(idle.size(), 'b');
  const auto target = served.target();
  const std::vector<std::string> inputs = {
      idle, odd_bytes, idle, even_bytes, odd_bytes, as_check_in, idle, device_message(protocol::authenticate), idle};
  auto url_for = [&](const std::string& input) {
    return endpoint_for(input) == Endpoint::check_in ? target.check_in_url : target.server_url;
  };
  for (const auto& input : inputs) EXPECT_EQ(session->request_for(input).url, url_for(input)) << input;
  // Sent, with the liveness probes' own Idles and acknowledgements in between.
  for (const auto& input : inputs) EXPECT_EQ(session->send(input).exchange.request.url, url_for(input)) << input;
  EXPECT_EQ(endpoint_for(odd_bytes), Endpoint::check_in);
  EXPECT_EQ(endpoint_for(even_bytes), Endpoint::server);
  EXPECT_EQ(endpoint_for(as_check_in), Endpoint::check_in);
}

}  // namespace
}  // namespace mdmc::fuzz
