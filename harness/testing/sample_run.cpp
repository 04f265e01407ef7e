#include "harness/testing/sample_run.hpp"

#include <limits>
#include <utility>

namespace mdmc::testing {

namespace chr = std::chrono;
using namespace scenario;  // the record and its parts, throughout

chr::system_clock::time_point sample_time() {
  using namespace std::chrono_literals;
  return chr::sys_days{chr::year{2026} / 11 / 29} + 8h + 51min + 55s + 123456us;
}

TranscriptEntry sample_exchange(std::string label, std::string request_body, int status, std::string response_body) {
  TranscriptEntry e;
  e.actor = "mac";
  e.label = std::move(label);
  e.exchange.request.method = "PUT";
  e.exchange.request.url = "http://127.0.0.1:8080/mdm";
  e.exchange.request.headers = {{"Content-Type", "application/x-apple-aspen-mdm; charset=UTF-8"}};
  e.exchange.request.body = std::move(request_body);
  net::Response response;
  response.status = status;
  response.reason = "OK";
  response.headers = {{"Content-Length", std::to_string(response_body.size())}};
  response.body = std::move(response_body);
  e.exchange.response = std::move(response);
  e.exchange.started = sample_time();
  e.exchange.elapsed = chr::microseconds{1834};
  e.exchange.reused_connection = true;
  e.exchange.redirects = {"http://127.0.0.1:8080/mdm2"};
  e.response_body_cut = CutBody{9'000'000, std::string(64, 'a')};
  return e;
}

RunResult sample_run() {
  RunResult run;
  run.harness_version = "0.1.0";
  run.target_name = "reference";
  run.target_url = "http://127.0.0.1:8080/checkin";
  run.profile_digest = "sha256:aa";
  run.suite_digest = "sha256:bb";
  run.started_at = "2026-11-29T08:51:55Z";
  run.elapsed = chr::milliseconds{410};
  run.seed = std::numeric_limits<std::uint64_t>::max();  // beyond a JavaScript number's 2^53
  run.builtin_fault = "syn_drop_last";
  run.identity_mode = "both";
  run.notes = {"TLS verification was off"};

  CaseResult pass;
  pass.id = "chn/idle_empty";
  pass.title = "Idle with nothing queued gets an empty body";
  pass.rules = {"CHN-IDLE-EMPTY"};
  pass.verdict = Verdict::pass;
  pass.elapsed = chr::milliseconds{12};
  pass.findings = {Finding{"CHN-IDLE-EMPTY", Level::must, true, "200, empty", "200, empty", 0}};
  pass.transcript = {sample_exchange("Idle", "<plist/>", 200, "")};
  pass.devices = {
      {"mac", "0B6A55E4-8E2A-4F0B-9C61-3D1F7A2E9B10", 0, {"pool:device-00.p12", std::string(64, 'a'), "device-00"}}};

  CaseResult fail;
  fail.id = "syn/all";
  fail.title = "NeedSyncResponse delivers every queued command";
  fail.rules = {"SYN-ALL", "SYN-EMPTY-END"};
  fail.verdict = Verdict::fail;
  fail.reason = "SYN-ALL: expected 3 commands, got 2";
  fail.elapsed = chr::milliseconds{57};
  fail.findings = {Finding{"SYN-ALL", Level::must, false, "3 commands", "2", 4},
                   Finding{"SYN-EMPTY-END", Level::must, true, "200, empty", "200, empty", 5}};
  fail.transcript = {sample_exchange("Idle", "<plist>idle</plist>", 200, "<plist>cmd</plist>")};
  fail.transcript[0].step = 4;
  TranscriptEntry refused;
  refused.actor = "admin";
  refused.label = "enqueue ProfileList";
  refused.exchange.request.method = "PUT";
  refused.exchange.request.url = "http://127.0.0.1:9/v1/enqueue/X";
  refused.exchange.error = net::TransportError::tls_client_certificate_rejected;
  refused.exchange.error_detail = "the server sent a TLS alert: certificate required";
  refused.exchange.tls = true;
  refused.exchange.started = sample_time() + chr::microseconds{5};
  refused.step = -1;  // enrollment
  fail.transcript.push_back(refused);
  fail.devices = {
      {"mac",
       "5E1F0A2B-6C3D-4E5F-8A9B-0C1D2E3F4A5B",
       0,
       {"pool:device-01.p12", "0123456789abcdef" + std::string(48, 'b'), "device-01"}},
      {"iphone", "7C2D9E1F-0A3B-4C5D-9E6F-1A2B3C4D5E6F", 0, {"pool:device-02.p12", std::string(64, 'c'), "device-02"}}};

  // A may rule the server does not use: informational (RFC 2119), not a failure.
  CaseResult info;
  info.id = "ucf/device_configured";
  info.title = "DeviceConfigured on the user channel ends UserConfiguration";
  info.rules = {"UCF-DEVICECONFIGURED"};
  info.verdict = Verdict::info;
  info.reason =
      "the server does not use this option (may): UCF-DEVICECONFIGURED: expected a DeviceConfigured "
      "command on mac/alice; got an empty body";
  info.elapsed = chr::milliseconds{9};
  info.findings = {Finding{"UCF-DEVICECONFIGURED", Level::may, false, "a DeviceConfigured command on mac/alice",
                           "an empty body", 1}};
  info.transcript = {sample_exchange("UserConfiguration", "<plist>ucf</plist>", 200, "")};
  info.transcript[0].actor = "mac/alice";
  info.transcript[0].step = 1;

  run.cases = {pass, fail, info};
  run.rules = {RuleResult{"CHN-IDLE-EMPTY",
                          Level::must,
                          Verdict::pass,
                          {"chn/idle_empty"},
                          {},
                          "Idle with nothing queued is answered 200 with a zero-length body",
                          "During login, the client blocks the transaction only until the server sends an "
                          "empty response to an Idle/Acknowledged/Error sequence.",
                          "Apple, Managing MDM Devices and Users in macOS, Overview",
                          "apple",
                          std::nullopt},
               RuleResult{"SYN-ALL",
                          Level::must,
                          Verdict::fail,
                          {"syn/all"},
                          {"syn/all"},
                          "with NeedSyncResponse, every queued command is delivered",
                          "",
                          "RFC 9110",
                          "http",
                          std::nullopt},
               RuleResult{"UCF-DEVICECONFIGURED",
                          Level::may,
                          Verdict::info,
                          {"ucf/device_configured"},
                          {"ucf/device_configured"},
                          "DeviceConfigured on the user channel ends the NotNow answers; the harness reports "
                          "whether the server uses it",
                          "The device continues to respond with NotNow until it receives a reply with no additional "
                          "commands (an empty body) or it receives a DeviceConfigured command on the user channel.",
                          "Apple, Managing MDM Devices and Users in macOS, Overview (UserConfiguration)",
                          "apple",
                          false}};
  return run;
}

}  // namespace mdmc::testing
