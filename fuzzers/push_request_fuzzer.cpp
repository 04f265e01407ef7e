// A push request, as the fake APNs receives it, to its verdict: whatever the method, path,
// headers, provider token and body, judging ends in one of APNs' answers with a reason, and
// the parts a case reads later (PushMagic, error JSON) decode without a crash.
//
// Input: the method on the first line, the path on the second, then "name: value" header
// lines up to an empty line, then the body. A method starting with '!' is judged as arriving
// on a connection with a verified push certificate (topic com.apple.mgmt.External.fuzz), with
// '?' as one whose certificate did not verify. A header "x-sign: <kid> <team> <age seconds>"
// is replaced by an authorization header with a token signed by the key below, so that the
// checks after the signature (iss, kid, age) are reached too.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "harness/push/provider_token.hpp"
#include "harness/push/push_request.hpp"

namespace {

using namespace mdmc::push;

// A key made for this fuzzer alone; it signs nothing else.
constexpr std::string_view kPrivateKey = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpCg5O//o46l1s6ge
gYISdLm3fUn2P7WpJ4WRggXRRNuhRANCAAT9IHm3O64rn34EuIl8zZFJfVg5vZdr
PPNqG4BHeF4Z40BBfTh5r1laxxqpt60HGRi1kcGxknmJNgcmazkl0tSi
-----END PRIVATE KEY-----
)";
constexpr std::string_view kPublicKey = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/SB5tzuuK59+BLiJfM2RSX1YOb2X
azzzahuAR3heGeNAQX04ea9ZWscaqbetBxkYtZHBsZJ5iTYHJms5JdLUog==
-----END PUBLIC KEY-----
)";
// A fixed clock: a run replays the same way on any day.
const mdmc::base::SystemTime kNow{std::chrono::seconds(1'800'000'000)};

[[noreturn]] void invariant_broken() { std::abort(); }

bool next_line(std::string_view& rest, std::string_view& line) {
  if (rest.empty()) return false;
  const auto end = rest.find('\n');
  line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return true;
}

std::string signed_token(std::string_view spec) {
  std::istringstream words{std::string(spec)};
  std::string kid, team;
  long long age = 0;
  words >> kid >> team >> age;
  if (age < -100'000'000 || age > 100'000'000) age = 0;
  auto token = make_provider_token(kPrivateKey, kid, team, kNow - std::chrono::seconds(age));
  if (!token.ok()) invariant_broken();  // the key is fixed and good
  return *token;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  PushRequest request;
  ConnectionAuth auth;
  std::string_view line;
  if (!next_line(rest, line)) return 0;
  if (!line.empty() && (line.front() == '!' || line.front() == '?')) {
    auth.certificate_presented = true;
    auth.certificate_verified = line.front() == '!';
    auth.certificate_topics = {"com.apple.mgmt.External.fuzz"};
    line.remove_prefix(1);
  }
  request.method = line;
  if (!next_line(rest, line)) return 0;
  request.path = line;
  while (next_line(rest, line) && !line.empty()) {
    const auto colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    std::string value(line.substr(colon + 2));
    if (name == "x-sign") {
      name = "authorization";
      value = "bearer " + signed_token(value);
    }
    request.headers.push_back({std::move(name), std::move(value)});
  }
  request.body_too_large = rest.size() > kMaxPayloadBytes;
  request.body = rest.substr(0, kMaxPayloadBytes);

  PushPolicy policy;
  policy.token_policy = ProviderTokenPolicy{"FUZZKEYID1", "FUZZTEAM01", std::string(kPublicKey)};
  const Verdict verdict = judge_push(request, auth, policy, kNow);
  switch (verdict.status) {
    case 200:
      if (!verdict.reason.empty() || verdict.topic.empty() || verdict.auth == AuthMethod::none ||
          verdict.device_token.size() != 2 * policy.device_token_bytes || request.body.empty()) {
        invariant_broken();
      }
      break;
    case 400:
    case 403:
    case 404:
    case 405:
    case 413:
      if (verdict.reason.empty()) invariant_broken();
      break;
    default: invariant_broken();
  }
  if (!verdict.reason.empty() && parse_reason_body(reason_body(verdict.reason, 1)).reason != verdict.reason) {
    invariant_broken();
  }
  (void)push_magic_of(request.body);
  (void)parse_reason_body(request.body);
  if (base64url_decode(base64url_encode(request.body)).value_or("\x01") != request.body) invariant_broken();
  return 0;
}
