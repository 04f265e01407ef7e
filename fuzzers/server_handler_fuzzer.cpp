// The reference server's request handler, MdmService::handle: the code behind `serve` that reads
// untrusted requests. Each input is a session of requests sent to a fresh service (or to a copy
// of one an earlier session left after the same first requests: KeptSessions), in the fault
// mode and identity mode its first line names:
//
//   <fault> <identity mode>           "none none", "not-now-resent signature", ...
//   PUT /checkin                      then requests, separated by a line holding only "--"
//   Content-Type: application/x-apple-aspen-mdm-checkin
//   Mdm-Signature: sign               "sign", "sign-other": a valid signature by the device's
//                                     identity or by another; any other value goes as it is
//   X-Client-Certificate: device      "device", "other", or raw bytes: the TLS client certificate
//   X-Peer: 127.0.0.1:50000           the peer's address (default "fuzz")
//                                     a blank line, then the body
//
// Oracles: every answer has a status in 200..599; the correct server (fault none) never answers
// 5xx, and every plist it sends is a command with CommandUUID and Command.RequestType
// (CMD-SHAPE) or a DigestChallenge; what the service holds stays within Config::bounds, set
// small here so that a session of a few requests reaches every bound.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "harness/net/http.hpp"
#include "harness/pki/pki.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/identity_mode.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/server/mdm_service.hpp"

namespace {

using namespace mdmc;

// Past this many requests an input's remaining bytes are ignored: sessions stay short, so that
// the fuzzer runs a few thousand a second (a request costs about 50 us under ASan), and the
// bounds below are set so small that a dozen requests reach each of them.
constexpr std::size_t kMaxRequests = 12;
constexpr std::string_view kSeparator = "\n--\n";

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "server_handler_fuzzer: %s\n", why.c_str());
  std::abort();
}

// A test CA and two device identities, made once: the identity modes need them.
struct Identities {
  pki::Identity ca, device, other;
  std::string device_der, other_der;
};

const Identities& identities() {
  static const Identities ids = [] {
    Identities made;
    auto ca = pki::create_test_ca("handler fuzzer CA");
    if (!ca) fail(ca.message());
    auto device = pki::issue_device_identity(*ca, "device", pki::KeyType::ec_p256);
    auto other = pki::issue_device_identity(*ca, "other", pki::KeyType::ec_p256);
    if (!device || !other) fail("cannot issue device identities");
    auto device_der = pki::certificate_der(device->cert_pem);
    auto other_der = pki::certificate_der(other->cert_pem);
    if (!device_der || !other_der) fail("cannot read the device certificates");
    made = {*ca, *device, *other, *device_der, *other_der};
    return made;
  }();
  return ids;
}

// An Mdm-Signature over `body` by the device's identity (or the other's). Signing is the
// costliest step of a request here, and a mutated session repeats most of its parent's bodies:
// signatures are kept, keyed by signer and body. A kept one is as valid as a new one (the
// server checks the signer's chain and the digest, not when it was made), and it lets the
// server's check of a signature it has seen be quick too (pki keeps the signers of good ones).
// When the kept ones are many, any one goes: clearing them all at once had every signed body
// of the corpus signed, and checked by the server, again.
const std::string& signed_by(bool device, const std::string& body) {
  static std::unordered_map<std::string, std::string> kept;  // (signer, body) -> the header
  // At most 1,024 bodies of at most max_len (16 KiB) and their headers: 18 MiB.
  constexpr std::size_t kKept = 1024;
  std::string key = (device ? "device:" : "other:") + body;
  if (auto found = kept.find(key); found != kept.end()) return found->second;
  if (kept.size() >= kKept) kept.erase(kept.begin());  // a bound, not a policy: a miss only costs time
  const auto& ids = identities();
  auto made = pki::mdm_signature(device ? ids.device : ids.other, body);
  if (!made) fail("cannot sign: " + made.message());
  return kept.emplace(std::move(key), *std::move(made)).first->second;
}

std::string_view take_line(std::string_view& text) {
  auto end = text.find('\n');
  auto line = text.substr(0, end);
  text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

server::Config make_config(server::Fault fault, server::IdentityMode mode) {
  server::Config config;
  config.fault = fault;
  // One thread sends the session's requests in turn: a device's requests never overlap, and the
  // shared-response-slot fault's simulated work would only slow every input down.
  config.slot_hold = std::chrono::milliseconds(0);
  config.identity_mode = mode;
  config.client_ca_pem = identities().ca.cert_pem;
  config.managed_network_users = {"7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10"};
  config.digest_challenge = "fuzz-challenge";
  config.bounds.devices = 2;
  config.bounds.users_per_device = 2;
  config.bounds.kept_field_bytes = 128;
  config.bounds.queued_per_channel = 2;
  config.bounds.queued_commands = 3;
  config.bounds.queued_bytes = 4 * 1024;
  config.bounds.remembered_commands = 3;
  return config;
}

// The configuration the input's first line names, made once for each fault and identity mode.
const server::Config& config_for(std::string_view first_line) {
  auto space = first_line.find(' ');
  auto fault_name = first_line.substr(0, space);
  auto mode_name = space == std::string_view::npos ? std::string_view{} : first_line.substr(space + 1);
  auto fault = server::fault_from_name(fault_name).value_or(server::Fault::none);
  auto mode = protocol::identity_mode_from_name(mode_name).value_or(server::IdentityMode::none);
  static std::map<std::pair<server::Fault, server::IdentityMode>, server::Config> made;  // faults x 4 modes
  auto found = made.find({fault, mode});
  if (found == made.end()) found = made.emplace(std::make_pair(fault, mode), make_config(fault, mode)).first;
  return found->second;
}

net::ServerRequest request_from(std::string_view piece) {
  const auto& ids = identities();
  net::ServerRequest request;
  auto request_line = take_line(piece);
  auto space = request_line.find(' ');
  request.method = std::string(request_line.substr(0, space));
  request.target = space == std::string_view::npos ? "/" : std::string(request_line.substr(space + 1));
  request.peer = "fuzz";
  std::string signature;  // "sign" or "sign-other": made once the body is known
  while (!piece.empty()) {
    auto line = take_line(piece);
    if (line.empty()) break;
    auto colon = line.find(':');
    auto name = line.substr(0, colon);
    auto value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "X-Client-Certificate") {
      request.tls = true;
      request.peer_certificate_der = value == "device"  ? ids.device_der
                                     : value == "other" ? ids.other_der
                                                        : std::string(value);
    } else if (name == "X-Peer") {
      request.peer = std::string(value);
    } else if (name == "Mdm-Signature" && (value == "sign" || value == "sign-other")) {
      signature = std::string(value);
    } else {
      request.headers.push_back({std::string(name), std::string(value)});
    }
  }
  request.body = std::string(piece);
  if (!signature.empty()) request.headers.push_back({"Mdm-Signature", signed_by(signature == "sign", request.body)});
  return request;
}

void check_answer(const net::ServerRequest& request, const net::ServerResponse& answer, bool correct_server) {
  auto where = request.method + " " + request.target;
  if (answer.status < 200 || answer.status > 599) {
    fail(where + ": status " + std::to_string(answer.status) + " is outside 200..599");
  }
  if (!correct_server) return;
  if (answer.status >= 500) fail(where + ": the correct server answered " + std::to_string(answer.status));
  if (answer.status != 200 || answer.body.empty()) return;
  if (net::find_header(answer.headers, "Content-Type") != std::string(protocol::kPlistContentType)) return;
  auto parsed = plist::parse(answer.body);
  if (!parsed) fail(where + ": the correct server sent a plist that does not parse: " + parsed.message());
  bool command = protocol::decode_command(*parsed).ok();
  bool challenge = parsed->string_at("DigestChallenge").has_value();
  if (!command && !challenge)
    fail(where + ": the correct server sent a plist that is neither a command nor a challenge");
}

void check_bounds(const server::MdmService& service, const server::Bounds& bounds) {
  auto f = service.footprint();
  if (f.devices > bounds.devices) fail("devices past the bound: " + std::to_string(f.devices));
  if (f.channels > f.devices * (1 + bounds.users_per_device)) {
    fail("channels past the bound: " + std::to_string(f.channels) + " for " + std::to_string(f.devices) + " devices");
  }
  if (f.queued_commands > f.channels * bounds.queued_per_channel) {
    fail("queued commands past the bound: " + std::to_string(f.queued_commands));
  }
  if (f.queued_commands > bounds.queued_commands) {
    fail("queued commands past the bound in all: " + std::to_string(f.queued_commands));
  }
  if (f.queued_bytes > bounds.queued_bytes) fail("queued bytes past the bound: " + std::to_string(f.queued_bytes));
  if (f.remembered_commands > bounds.remembered_commands) {
    fail("remembered commands past the bound: " + std::to_string(f.remembered_commands));
  }
  if (f.largest_user_set > bounds.users_per_device) {
    fail("a device remembers too many users: " + std::to_string(f.largest_user_set));
  }
}

// Services as an earlier session left them after its first requests, keyed by the exact bytes
// of the input up to there (its first line and those requests). A mutated input repeats its
// parent's requests up to the one mutated, and handling them again was half of a run: a
// session resumes from a copy of the service after the longest prefix kept and handles only the
// rest. In the same CPU minute the fuzzer then reaches about 13 % more edges and 27 % more
// features (six seeds, bench/results/fuzz_soak.md); its runs per second, which the seed moves
// from 760 to 1,660, rose 5 % on average. What the service answers follows from the requests it
// has handled (the clock only stamps declarations, and no oracle reads the stamps; a copy
// answers as the original would: ServiceTest.ACopyAnswersAsTheOriginalWouldAndHoldsItsOwnState),
// so a finding replays from the start alone; the requests resumed past were checked by the
// oracles when they first ran.
// libFuzzer counts the features of the requests a run handles: those of a resumed prefix were
// counted when it first ran.
class KeptSessions {
 public:
  // The service after the longest prefix kept among `ends` (the input's byte offsets after each
  // request), and how many requests it has handled; nothing when none is kept.
  std::pair<const server::MdmService*, std::size_t> longest(std::string_view input,
                                                            const std::vector<std::size_t>& ends) const {
    for (std::size_t n = ends.size(); n > 0; --n) {
      auto prefix = input.substr(0, ends[n - 1]);
      auto found = kept_.find(key_of(prefix));
      if (found != kept_.end() && found->second.prefix() == prefix) return {found->second.service.get(), n};
    }
    return {nullptr, 0};
  }
  // Keeps `service` as it is after whole[0, length). The prefixes a run keeps share one copy of
  // its input, `shared_whole`, made at the first.
  void keep(std::string_view whole, std::size_t length, const server::MdmService& service,
            std::shared_ptr<const std::string>& shared_whole) {
    auto key = key_of(whole.substr(0, length));
    if (kept_.contains(key)) return;
    // A bound, not a policy: the oldest goes. At most kKept prefixes of max_len (16 KiB in the
    // options, 64 KiB in scripts/test.sh) and as many services, each holding at most what a
    // session of that size put in it: tens of MB.
    // Every prefix of a run is kept. libFuzzer runs an input again when its run allocated more
    // than it freed, and checks the whole heap for leaks when the second run did too: with every
    // prefix kept the second run resumes after all of them and keeps nothing. (Keeping two a run
    // made that check follow most runs: 88 runs a second.)
    if (kept_.size() >= kKept) {
      kept_.erase(order_.front());
      order_.pop_front();
    }
    if (!shared_whole) shared_whole = std::make_shared<const std::string>(whole);
    kept_.emplace(key, Kept{shared_whole, length, std::make_unique<server::MdmService>(service)});
    order_.push_back(key);
  }

 private:
  static constexpr std::size_t kKept = 1024;
  struct Kept {
    std::shared_ptr<const std::string> whole;
    std::size_t length;
    std::unique_ptr<server::MdmService> service;
    std::string_view prefix() const { return std::string_view(*whole).substr(0, length); }
  };
  static std::size_t key_of(std::string_view prefix) { return std::hash<std::string_view>{}(prefix); }
  std::unordered_map<std::size_t, Kept> kept_;
  std::deque<std::size_t> order_;
};

// What the oracles see of an answer, for comparing a resumed session with one from the start.
struct Seen {
  int status;
  std::string content_type;
  std::size_t body_bytes;
  bool operator==(const Seen&) const = default;
};

// Sends pieces[from..] to `service`, checking each answer; keeps the prefixes it passes when
// `kept` is given, and notes what each answer was in `seen` when that is given (only the
// resumed-session check reads it).
void run_session(server::MdmService& service, const std::vector<std::string_view>& pieces, std::size_t from,
                 const server::Config& config, std::string_view whole, const std::vector<std::size_t>& ends,
                 KeptSessions* kept, std::vector<Seen>* seen) {
  const bool correct_server = config.fault == server::Fault::none;
  std::shared_ptr<const std::string> shared_whole;
  for (std::size_t n = from; n < pieces.size(); ++n) {
    auto request = request_from(pieces[n]);
    auto answer = service.handle(request);
    check_answer(request, answer, correct_server);
    check_bounds(service, config.bounds);
    if (seen != nullptr) {
      seen->push_back(
          {answer.status, net::find_header(answer.headers, "Content-Type").value_or(""), answer.body.size()});
    }
    if (kept != nullptr && n < ends.size()) kept->keep(whole, ends[n], service, shared_whole);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static KeptSessions kept;
  // MDMC_CHECK_RESUMED=1 (scripts/test.sh): every resumed session is run again from the start,
  // and the answers to the requests it handled must be the same.
  static const bool check_resumed = std::getenv("MDMC_CHECK_RESUMED") != nullptr;
  const std::string_view whole(reinterpret_cast<const char*>(data), size);
  std::string_view input = whole;
  const auto& config = config_for(take_line(input));
  // The requests, and where each ends in the input.
  std::vector<std::string_view> pieces;
  std::vector<std::size_t> ends;
  while (pieces.size() < kMaxRequests && !input.empty()) {
    auto end = input.find(kSeparator);
    pieces.push_back(input.substr(0, end));
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + kSeparator.size());
    ends.push_back(static_cast<std::size_t>(pieces.back().data() + pieces.back().size() - whole.data()));
  }
  if (pieces.empty()) return 0;
  // Resumes after at most all but the last request: every run handles one at least.
  ends.pop_back();
  auto [resumed, done] = kept.longest(whole, ends);
  server::MdmService service = resumed != nullptr ? server::MdmService(*resumed) : server::MdmService(config);
  const bool check = check_resumed && done > 0;
  std::vector<Seen> seen;
  run_session(service, pieces, done, config, whole, ends, &kept, check ? &seen : nullptr);
  if (check) {
    server::MdmService fresh(config);
    std::vector<Seen> from_start;
    run_session(fresh, pieces, 0, config, whole, ends, nullptr, &from_start);
    from_start.erase(from_start.begin(), from_start.begin() + static_cast<std::ptrdiff_t>(done));
    for (std::size_t n = 0; n < seen.size(); ++n) {
      if (seen[n] == from_start[n]) continue;
      fail("request " + std::to_string(done + n + 1) + " resumed after " + std::to_string(done) + " got " +
           std::to_string(seen[n].status) + " (" + std::to_string(seen[n].body_bytes) + " bytes), from the start " +
           std::to_string(from_start[n].status) + " (" + std::to_string(from_start[n].body_bytes) + " bytes)");
    }
  }
  return 0;
}
