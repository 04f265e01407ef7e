// Enrollment end to end: a run against a reference server whose enrollment profile names a SCEP
// server that misbehaves (the fake one, in each of its modes) or is not there, and runs whose
// target profile points at an enrollment profile URL that answers what a profile URL should
// not, or whose profile lists per-user connections that the server refuses. Each ends in a
// verdict or an exit code that says why, in time, and the run's record exists.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include "harness/cli/builtin.hpp"
#include "harness/cli/suite.hpp"
#include "harness/emulator/emulator.hpp"
#include "harness/enroll/scep_client.hpp"
#include "harness/net/http_client.hpp"
#include "harness/net/http_server.hpp"
#include "harness/pki/signed_profile.hpp"
#include "harness/plist/value.hpp"
#include "harness/report/json.hpp"
#include "harness/server/faults.hpp"
#include "harness/server/reference_server.hpp"
#include "harness/target/session.hpp"
#include "harness/testing/fake_scep_server.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;
using scenario::Verdict;
using testing::FakeScepMode;

const scenario::CaseResult* find_case(const scenario::RunResult& run, const std::string& id) {
  for (const auto& c : run.cases) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A reference server (identity mode both, its own test CA) whose GET /enroll names `scep_url`
// as its SCEP server and which trusts identities from `scep_ca_pem`, and a target profile for it.
class EnrollmentRun : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::fresh_test_dir("mdmc_enrollment_test"); }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  void serve(const std::string& scep_url, const std::string& scep_ca_pem, server::Fault fault = server::Fault::none) {
    auto keys = cli::make_builtin_pki();
    ASSERT_TRUE(keys) << keys.message();
    ca_ = keys->ca;
    server::Config config;
    config.identity_mode = protocol::IdentityMode::both;
    config.client_ca_pem = ca_.cert_pem;
    config.tls_ca_pem = ca_.cert_pem;
    config.scep = server::ScepEnrollment{scep_url, "", scep_ca_pem};
    config.fault = fault;
    auto tls = keys->tls;
    tls.client_ca_pem += scep_ca_pem;  // asked for, not required: MdmService judges the identity
    server_ = std::make_unique<server::ReferenceServer>(config, tls);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port) << port.message();
    port_ = *port;
    server_->start();
    ASSERT_TRUE(pki::write_identity(ca_, dir_ / "ca.crt", dir_ / "ca.key"));
  }

  std::string base() const { return fmt::format("https://127.0.0.1:{}", port_); }

  // The server's enrollment profile as GET /enroll serves it; empty when it does not.
  std::string fetch_enrollment_profile() const {
    net::HttpClient client({}, net::TlsClientConfig{ca_.cert_pem, false, {}, {}, {}});
    net::Request get;
    get.method = "GET";
    get.url = base() + "/enroll";
    auto fetched = client.send(get);
    return fetched.ok() && fetched.response->status == 200 ? fetched.response->body : std::string();
  }

  // A target profile for the server: `enrollment` as given, and whatever of urls, topic and
  // identity `stated` holds (YAML, appended as written).
  fs::path profile(const std::string& enrollment, const std::string& stated) {
    auto file = dir_ / "target.yaml";
    std::ofstream(file) << "schema_version: 1\nname: enrollment-test\n"
                        << "enrollment:\n"
                        << enrollment << "tls: {ca: ca.crt}\n"
                        << "limits: {connect_timeout_ms: 1000, header_timeout_ms: 2000, body_timeout_ms: 2000}\n"
                        << "admin:\n  enqueue:\n    url: " << base() << "/v1/enqueue/{channel}\n"
                        << stated;
    return file;
  }
  std::string stated_everything() const {
    return fmt::format(
        "urls: {{server: {0}/mdm, check_in: {0}/checkin}}\ntopic: com.apple.mgmt.External.mdmconform\n"
        "identity: {{mode: both, issuer: {{cert: ca.crt, key: ca.key}}}}\n",
        base());
  }

  cli::SuiteOutcome run(const fs::path& target, std::vector<std::string> selection = {"enr/"}) {
    cli::SuiteOptions options;
    options.specs_dir = fs::path(MDMC_SOURCE_DIR) / "specs";
    options.target = target;
    options.selection = std::move(selection);
    options.confirm = 0;
    options.seed = 20261206;
    return cli::run_suite(options);
  }

  fs::path dir_;
  pki::Identity ca_;
  std::unique_ptr<server::ReferenceServer> server_;
  std::uint16_t port_ = 0;
};

// What enr/scep must say for each way a SCEP server can fail a device.
struct HostileScep {
  FakeScepMode mode;
  Verdict verdict;
  std::string says;  // in the case's reason when it fails
};

TEST_F(EnrollmentRun, EveryWayASCEPServerFailsADeviceIsAnEnrScepVerdictInTime) {
  const std::vector<HostileScep> table = {
      {FakeScepMode::success, Verdict::pass, ""},
      {FakeScepMode::pending_then_success, Verdict::pass, ""},
      {FakeScepMode::pending_forever, Verdict::fail, "PENDING after"},
      {FakeScepMode::failure_bad_request, Verdict::fail, "FAILURE badRequest"},
      {FakeScepMode::failure_bad_message_check, Verdict::fail, "FAILURE badMessageCheck"},
      {FakeScepMode::garbage_body, Verdict::fail, "not a CertRep"},
      {FakeScepMode::html_body, Verdict::fail, "not a CertRep"},
      {FakeScepMode::huge_body, Verdict::fail, "over 1048576 bytes"},
      {FakeScepMode::http_500, Verdict::fail, "HTTP 500"},
      {FakeScepMode::cacert_garbage, Verdict::fail, "GetCACert"},
      {FakeScepMode::wrong_subject, Verdict::fail, "subject"},
      {FakeScepMode::expired_certificate, Verdict::fail, "expired"},
      {FakeScepMode::signed_by_other_ca, Verdict::fail, "not the CA's"},
  };
  std::string lines = "mode                       enr/scep  wall ms  peak RSS KiB  reason\n";
  for (const auto& row : table) {
    SCOPED_TRACE(std::string(testing::fake_scep_mode_name(row.mode)));
    testing::FakeScepServer scep({row.mode});
    auto url = scep.start();
    ASSERT_TRUE(url) << url.message();
    serve(*url, testing::FakeScepServer::ca().cert_pem);
    const auto started = std::chrono::steady_clock::now();
    auto outcome = run(profile("  profile_url: " + base() + "/enroll\n", stated_everything()));
    const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    const auto* c = find_case(outcome.run, "enr/scep");
    ASSERT_NE(c, nullptr) << outcome.message;
    EXPECT_EQ(c->verdict, row.verdict) << c->reason;
    EXPECT_NE(c->reason.find(row.says), std::string::npos) << c->reason;
    if (row.verdict == Verdict::fail) {
      EXPECT_EQ(c->reason.rfind("ENR-SCEP:", 0), 0u) << c->reason;
      EXPECT_EQ(outcome.exit_code, 1);
    }
    // The other enrollment cases do not depend on the SCEP server.
    for (const char* other : {"enr/profile", "enr/per_user", "enr/checkin_url"}) {
      const auto* o = find_case(outcome.run, other);
      ASSERT_NE(o, nullptr);
      EXPECT_EQ(o->verdict, Verdict::pass) << other << ": " << o->reason;
    }
    // The client's deadline (30 s) and at most 5 polls of 2 s bound every mode.
    EXPECT_LT(wall, std::chrono::seconds(20));
    lines += fmt::format("{:<26} {:<9} {:>7}  {:>12}  {}\n", testing::fake_scep_mode_name(row.mode),
                         scenario::verdict_name(c->verdict), wall.count(), peak_rss_kb(),
                         c->reason.substr(std::min(c->reason.size(), c->reason.find("; got ") + 6), 90));
    server_.reset();
  }
  std::ofstream("enrollment_hostile_scep.txt") << lines;
  std::cout << lines;
}

TEST_F(EnrollmentRun, AScepUrlWithNothingBehindItFailsEnrScep) {
  serve("http://127.0.0.1:1/scep", testing::FakeScepServer::ca().cert_pem);
  auto outcome = run(profile("  profile_url: " + base() + "/enroll\n", stated_everything()));
  const auto* c = find_case(outcome.run, "enr/scep");
  ASSERT_NE(c, nullptr) << outcome.message;
  EXPECT_EQ(c->verdict, Verdict::fail) << c->reason;
  EXPECT_NE(c->reason.find("GetCACaps"), std::string::npos) << c->reason;
}

TEST_F(EnrollmentRun, ASignedProfileWhoseSignatureFailsFailsEnrProfile) {
  testing::FakeScepServer scep({FakeScepMode::success});
  auto url = scep.start();
  ASSERT_TRUE(url) << url.message();
  serve(*url, testing::FakeScepServer::ca().cert_pem);
  const std::string served = fetch_enrollment_profile();
  ASSERT_FALSE(served.empty());
  auto signed_profile = pki::sign_profile(ca_, served);
  ASSERT_TRUE(signed_profile) << signed_profile.message();
  // One byte of the signed content changed: the digest no longer matches.
  std::string tampered = *signed_profile;
  auto at = tampered.find("mdmconform");
  ASSERT_NE(at, std::string::npos);
  tampered[at] = 'M';
  std::ofstream(dir_ / "signed.mobileconfig", std::ios::binary) << tampered;
  auto outcome = run(profile("  profile_file: signed.mobileconfig\n", stated_everything()));
  const auto* c = find_case(outcome.run, "enr/profile");
  ASSERT_NE(c, nullptr) << outcome.message;
  EXPECT_EQ(c->verdict, Verdict::fail) << c->reason;
  EXPECT_NE(c->reason.find("signature"), std::string::npos) << c->reason;
  EXPECT_NE(outcome.run.conditions.enrollment.find("signature does not hold"), std::string::npos)
      << outcome.run.conditions.enrollment;

  // The same profile, intact: verified against the CA the profile trusts.
  std::ofstream(dir_ / "signed.mobileconfig", std::ios::binary | std::ios::trunc) << *signed_profile;
  outcome = run(profile("  profile_file: signed.mobileconfig\n", stated_everything()));
  c = find_case(outcome.run, "enr/profile");
  ASSERT_NE(c, nullptr) << outcome.message;
  EXPECT_EQ(c->verdict, Verdict::pass) << c->reason;
  EXPECT_NE(outcome.run.conditions.enrollment.find("verified"), std::string::npos) << outcome.run.conditions.enrollment;
}

// ENR-PER-USER weighs what the profile the run reads lists against what the server does with a
// user's TokenUpdate. The server's own profile, made to list com.apple.mdm.per-user-connections
// (the user-token-refused server leaves it out of what it serves): against a server that refuses
// user channels the case fails and says so, against the correct server it passes.
TEST_F(EnrollmentRun, AProfileListingPerUserConnectionsFailsEnrPerUserWhenTheServerRefusesAUsersTokenUpdate) {
  testing::FakeScepServer scep({FakeScepMode::success});
  auto url = scep.start();
  ASSERT_TRUE(url) << url.message();
  for (const auto fault : {server::Fault::user_token_refused, server::Fault::none}) {
    SCOPED_TRACE(std::string(server::fault_info(fault).name));
    serve(*url, testing::FakeScepServer::ca().cert_pem, fault);
    auto parsed = plist::parse(fetch_enrollment_profile());
    ASSERT_TRUE(parsed) << parsed.message();
    ASSERT_NE(parsed->as_dict(), nullptr);
    plist::Dict top = *parsed->as_dict();
    auto* payloads = top["PayloadContent"].as_array();
    ASSERT_NE(payloads, nullptr);
    int mdm_payloads = 0;
    for (auto& payload : *payloads) {
      if (payload.string_at("PayloadType") != "com.apple.mdm") continue;
      (*payload.as_dict())["ServerCapabilities"] = plist::Array{"com.apple.mdm.per-user-connections"};
      ++mdm_payloads;
    }
    ASSERT_EQ(mdm_payloads, 1);
    std::ofstream(dir_ / "per_user.mobileconfig", std::ios::binary | std::ios::trunc)
        << plist::to_xml(plist::Value(top));
    auto outcome = run(profile("  profile_file: per_user.mobileconfig\n", stated_everything()), {"enr/per_user"});
    const auto* c = find_case(outcome.run, "enr/per_user");
    ASSERT_NE(c, nullptr) << outcome.message;
    if (fault == server::Fault::user_token_refused) {
      EXPECT_EQ(c->verdict, Verdict::fail) << c->reason;
      EXPECT_EQ(c->reason.rfind("ENR-PER-USER:", 0), 0u) << c->reason;
      EXPECT_NE(c->reason.find("the profile lists it, and the server answered a user's TokenUpdate with"),
                std::string::npos)
          << c->reason;
      EXPECT_NE(c->reason.find("400"), std::string::npos) << c->reason;
      EXPECT_EQ(outcome.exit_code, 1) << outcome.message;
    } else {
      EXPECT_EQ(c->verdict, Verdict::pass) << c->reason;
      EXPECT_EQ(outcome.exit_code, 0) << outcome.message;
    }
    server_.reset();
  }
}

// A profile URL that answers what no profile is: the run stops before its first case when it
// needs the profile's values (exit 1: the server's profile is broken; 3: nothing answered), and
// goes on, failing ENR-PROFILE, when the target profile states them itself.
TEST_F(EnrollmentRun, AProfileUrlThatServesNoProfileIsAClearVerdict) {
  testing::FakeScepServer scep({FakeScepMode::success});
  auto url = scep.start();
  ASSERT_TRUE(url) << url.message();
  serve(*url, testing::FakeScepServer::ca().cert_pem);
  std::map<std::string, net::ServerResponse> answers = {
      {"/html", {200, {{"Content-Type", "text/html"}}, "<!DOCTYPE html><html>login</html>", false}},
      {"/huge", {200, {{"Content-Type", "application/x-apple-aspen-config"}}, std::string(2 << 20, 'x'), false}},
      {"/garbage", {200, {{"Content-Type", "application/x-apple-aspen-config"}}, "\x01\x02garbage", false}},
      {"/missing", {404, {}, "not here", false}},
  };
  net::HttpServer bad([&](const net::ServerRequest& request) {
    auto it = answers.find(request.target);
    return it == answers.end() ? net::ServerResponse{404, {}, "", false} : it->second;
  });
  auto bad_port = bad.listen("127.0.0.1", 0);
  ASSERT_TRUE(bad_port) << bad_port.message();
  bad.start();
  for (const auto& [path, says] : std::map<std::string, std::string>{
           {"/html", "HTML"}, {"/huge", "1048576"}, {"/garbage", "plist"}, {"/missing", "404"}}) {
    SCOPED_TRACE(path);
    const std::string enrollment = fmt::format("  profile_url: http://127.0.0.1:{}{}\n", *bad_port, path);
    // Nothing stated: no case can run.
    auto stopped = run(profile(enrollment, ""));
    EXPECT_EQ(stopped.exit_code, 1) << stopped.message;
    EXPECT_NE(stopped.message.find(says), std::string::npos) << stopped.message;
    EXPECT_NE(stopped.message.find(path), std::string::npos) << stopped.message;
    ASSERT_EQ(stopped.run.cases.size(), 1u);
    EXPECT_EQ(stopped.run.cases[0].verdict, Verdict::error);
    // Everything stated: the run goes on, and the enrollment cases say what is wrong.
    auto judged = run(profile(enrollment, stated_everything()));
    EXPECT_EQ(judged.exit_code, 1) << judged.message;
    const auto* c = find_case(judged.run, "enr/profile");
    ASSERT_NE(c, nullptr) << judged.exit_code << ": " << judged.message;
    EXPECT_EQ(c->verdict, Verdict::fail) << c->reason;
    EXPECT_NE(c->reason.find(says), std::string::npos) << c->reason;
    const auto* scep_case = find_case(judged.run, "enr/scep");
    ASSERT_NE(scep_case, nullptr);
    EXPECT_EQ(scep_case->verdict, Verdict::skip) << scep_case->reason;
  }
  // Nothing listening at the profile URL: exit 3, as for an unreachable server.
  auto unreachable = run(profile("  profile_url: http://127.0.0.1:1/enroll\n", ""));
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.message;
}

// Two SCEP clients, ours and micromdm's scepclient, each get a certificate from the built-in
// server's scepserver companion, and the reference server takes an Authenticate under either:
// the client is proven against a server this project did not write, and the server's trust
// against a client it did not write.
TEST(ScepCrossCheck, BothClientsCertificatesAreAcceptedByTheReferenceServer) {
  if (!server::find_scepserver() || !fs::exists("/usr/bin/scepclient")) {
    GTEST_SKIP() << "needs Debian's scep package (scepserver, scepclient)";
  }
  cli::BuiltinOptions options;
  options.specs_dir = fs::path(MDMC_SOURCE_DIR) / "specs";
  options.identity_mode = protocol::IdentityMode::both;
  options.devices_through_scep = false;  // the profile keeps its issuer; the identities come from here
  auto builtin = cli::start_builtin(options);
  ASSERT_TRUE(builtin) << builtin.message();
  ASSERT_TRUE(builtin->scep) << "the companion did not start";
  const auto dir = testing::fresh_test_dir("mdmc_scep_cross_check");

  auto theirs = testing::run_process({"/usr/bin/scepclient", "-server-url", builtin->scep->url(), "-challenge",
                                      builtin->scep->challenge(), "-private-key", (dir / "key.pem").string(),
                                      "-certificate", (dir / "cert.pem").string(), "-cn", "scepclient-cross-check"},
                                     std::chrono::seconds(30));
  ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
  auto their_identity = pki::load_pem_pair(dir / "cert.pem", dir / "key.pem");
  ASSERT_TRUE(their_identity) << their_identity.message();

  enroll::ScepRequest request;
  request.url = builtin->scep->url();
  request.challenge = builtin->scep->challenge();
  request.key_size = 2048;
  request.subject = {{{"O", "mdmconform"}}, {{"CN", "mdmconform-cross-check"}}};
  auto ours = enroll::scep_enroll(request, {});
  ASSERT_TRUE(ours) << ours.message();

  target::TargetProfile profile = builtin->profile;
  profile.identity.issuer.reset();
  profile.identity.pool = {{"scepclient", *their_identity}, {"mdmconform", ours->identity}};
  target::TargetSession session(profile);
  emulator::IdentitySource ids(20261206);
  for (const char* name : {"theirs", "ours"}) {
    SCOPED_TRACE(name);
    protocol::DeviceFacts facts;
    facts.udid = ids.uuid();
    facts.topic = profile.topic;
    facts.serial_number = "C02" + ids.hex(4);
    facts.device_name = name;
    emulator::Device device(facts, ids);
    auto added = session.add_device(name, facts.udid);
    ASSERT_TRUE(added) << added.message();
    auto sent = session.send({name, name}, device.authenticate());
    ASSERT_TRUE(sent) << sent.message();
    ASSERT_TRUE(sent->ok()) << sent->error_detail;
    EXPECT_EQ(sent->response->status, 200) << sent->response->body;
  }
  fs::remove_all(dir);
}

// trust_profile_cas: the enrollment profile's root payload (the server's TLS CA) is trusted for
// the server's TLS, as a Mac trusts it once the profile is installed; without it, a target
// profile that names no CA meets the system store, which does not know the test CA.
TEST_F(EnrollmentRun, TheProfilesRootPayloadIsTrustedForTheServerOnlyWhenAsked) {
  testing::FakeScepServer scep({FakeScepMode::success});
  auto url = scep.start();
  ASSERT_TRUE(url) << url.message();
  serve(*url, testing::FakeScepServer::ca().cert_pem);
  const std::string served = fetch_enrollment_profile();
  ASSERT_FALSE(served.empty());
  std::ofstream(dir_ / "enroll.mobileconfig", std::ios::binary) << served;
  auto target = [&](bool trust) {
    auto file = dir_ / "untrusting.yaml";
    std::ofstream(file) << "schema_version: 1\nname: untrusting\nenrollment:\n  profile_file: enroll.mobileconfig\n"
                        << "  trust_profile_cas: " << (trust ? "true" : "false") << "\n"
                        << "identity: {mode: both, issuer: {cert: ca.crt, key: ca.key}}\n"
                        << "admin:\n  enqueue:\n    url: " << base() << "/v1/enqueue/{channel}\n";
    return file;
  };
  auto trusted = run(target(true));
  EXPECT_EQ(trusted.exit_code, 0) << trusted.message;
  const auto* c = find_case(trusted.run, "enr/checkin_url");
  ASSERT_NE(c, nullptr) << trusted.message;
  EXPECT_EQ(c->verdict, Verdict::pass) << c->reason;
  auto untrusted = run(target(false));
  EXPECT_EQ(untrusted.exit_code, 3) << untrusted.message;
  EXPECT_NE(untrusted.message.find("tls"), std::string::npos) << untrusted.message;
}

// `mdmconform run` with no target, as the quick start runs it: every device enrolls through the
// built-in server's enrollment profile and its scepserver companion, and the record says where
// each value came from. Without the companion, the enrollment cases are skipped, with why.
TEST(BuiltinEnrollment, TheDefaultRunEnrollsEveryDeviceThroughScepAndOffSkipsTheEnrollmentCases) {
  if (!server::find_scepserver()) GTEST_SKIP() << "needs Debian's scep package (scepserver)";
  const auto dir = testing::fresh_test_dir("mdmc_builtin_enrollment");
  const std::string specs = std::string(MDMC_SOURCE_DIR) + "/specs";
  auto ran = testing::run_process({MDMC_BINARY, "--specs", specs, "run", "--seed", "3", "--builtin-enrollment", "scep",
                                   "--out", (dir / "scep").string(), "enr/", "syn/all_queued"},
                                  std::chrono::seconds(240));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  auto run = report::read_run_file(dir / "scep" / "report.json");
  ASSERT_TRUE(run) << run.message();
  const auto& origins = run->conditions.value_origins;
  for (const char* key : {"urls.check_in: enrollment profile", "identity.source: enrollment profile",
                          "identity.mode: enrollment profile", "topic: enrollment profile"}) {
    EXPECT_NE(std::find(origins.begin(), origins.end(), key), origins.end()) << key;
  }
  EXPECT_NE(run->conditions.enrollment.find("/enroll (unsigned"), std::string::npos) << run->conditions.enrollment;
  int through_scep = 0;
  // The run's devices share one key (docs/reference-server.md#the-scep-companion), never a
  // certificate: the server binds each certificate to one UDID.
  std::set<std::string> certificates;
  for (const auto& c : run->cases) {
    EXPECT_EQ(c.verdict, Verdict::pass) << c.id << ": " << c.reason;
    for (const auto& d : c.devices) {
      if (d.identity.source != "scep") continue;
      ++through_scep;
      EXPECT_TRUE(certificates.insert(d.identity.sha256).second) << c.id << " " << d.name << ": a certificate twice";
    }
  }
  EXPECT_GE(through_scep, 5) << "every device of every case enrolls through SCEP";

  auto off = testing::run_process({MDMC_BINARY, "--specs", specs, "run", "--seed", "3", "--builtin-enrollment", "off",
                                   "--out", (dir / "off").string(), "enr/"},
                                  std::chrono::seconds(120));
  EXPECT_EQ(off.exit_code, 0) << off.output;
  EXPECT_NE(off.output.find("no enrollment:"), std::string::npos) << off.output;
  auto skipped = report::read_run_file(dir / "off" / "report.json");
  ASSERT_TRUE(skipped) << skipped.message();
  EXPECT_EQ(find_case(*skipped, "enr/scep")->verdict, Verdict::skip);
  fs::remove_all(dir);
}

// An enrollment profile whose identity payload is ACME: the harness cannot attest as Apple
// hardware, so the SCEP case is skipped with that reason, and the profile itself is judged.
TEST_F(EnrollmentRun, AnAcmeIdentityPayloadLeavesTheScepCaseUntestedWithTheReason) {
  testing::FakeScepServer scep({FakeScepMode::success});
  auto url = scep.start();
  ASSERT_TRUE(url) << url.message();
  serve(*url, testing::FakeScepServer::ca().cert_pem);
  const std::string served = fetch_enrollment_profile();
  ASSERT_FALSE(served.empty());
  auto parsed = plist::parse(served);
  ASSERT_TRUE(parsed) << parsed.message();
  ASSERT_NE(parsed->as_dict(), nullptr);
  plist::Dict top = *parsed->as_dict();
  auto* payloads = top["PayloadContent"].as_array();
  ASSERT_NE(payloads, nullptr);
  bool replaced = false;
  for (auto& payload : *payloads) {
    if (payload.string_at("PayloadType") != "com.apple.security.scep") continue;
    auto& dict = *payload.as_dict();
    // Apple's ACME payload: its keys at the top level, not in a nested PayloadContent.
    dict.erase("PayloadContent");
    dict["PayloadType"] = "com.apple.security.acme";
    dict["DirectoryURL"] = "https://acme.example.test/directory";
    dict["ClientIdentifier"] = "mdmconform";
    dict["KeySize"] = std::int64_t{384};
    dict["KeyType"] = "ECSECPrimeRandom";
    dict["HardwareBound"] = true;
    dict["Attest"] = true;
    dict["Subject"] = plist::Array{plist::Value(plist::Array{plist::Value(plist::Array{"CN", "mdmconform"})})};
    replaced = true;
  }
  ASSERT_TRUE(replaced);
  std::ofstream(dir_ / "acme.mobileconfig", std::ios::binary) << plist::to_xml(plist::Value(top));
  auto outcome = run(profile("  profile_file: acme.mobileconfig\n", stated_everything()));
  const auto* c = find_case(outcome.run, "enr/scep");
  ASSERT_NE(c, nullptr) << outcome.message;
  EXPECT_EQ(c->verdict, Verdict::skip) << c->reason;
  EXPECT_NE(c->reason.find("attestation as Apple hardware"), std::string::npos) << c->reason;
  const auto* judged = find_case(outcome.run, "enr/profile");
  ASSERT_NE(judged, nullptr);
  EXPECT_EQ(judged->verdict, Verdict::pass) << judged->reason;
  // Without identity files, no device could enroll: the run says so before its first case.
  auto stopped = run(profile("  profile_file: acme.mobileconfig\n", ""));
  EXPECT_EQ(stopped.exit_code, 1) << stopped.message;
  EXPECT_NE(stopped.message.find("ACME"), std::string::npos) << stopped.message;
}

}  // namespace
}  // namespace mdmc
