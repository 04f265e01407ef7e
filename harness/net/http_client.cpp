#include "harness/net/http_client.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#ifndef MDMC_VERSION
#define MDMC_VERSION "0"
#endif

namespace mdmc::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using beast::error_code;

using ResponseParser = http::response_parser<http::string_body>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A server may send any number of 1xx interim responses before the final one; past this many
// it is stalling in a way the header deadline would not catch, because each one is progress.
constexpr int kMaxInterimResponses = 16;

constexpr std::string_view kUserAgent = "mdmconform/" MDMC_VERSION;

// How long close() waits for the server's close_notify after sending ours. A server reading
// for the next request answers at once; one that does not is not worth a longer wait.
constexpr std::chrono::milliseconds kTlsShutdownLimit{1000};

enum class Phase { connect, write, header, body };

bool iequals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// Asio keeps OpenSSL's packed error code in the error_code's int; this is the unsigned it was.
unsigned long openssl_code(const error_code& ec) {
  return static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
}

// OpenSSL's reason code for an error in Asio's SSL category, or -1.
int openssl_reason_code(const error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return -1;
  return ERR_GET_REASON(openssl_code(ec));
}

// The alert a TLS peer sent, as OpenSSL's reason code minus SSL_AD_REASON_OFFSET, or -1 when
// `ec` is not a received alert.
int received_alert(const error_code& ec) {
  const int reason = openssl_reason_code(ec);
  if (reason < SSL_AD_REASON_OFFSET || reason >= SSL_AD_REASON_OFFSET + 256) return -1;
  return reason - SSL_AD_REASON_OFFSET;
}

// Alerts a server sends about the client's certificate: a bad one, one from a CA it does not
// trust, or none at all when it requires one (TLS 1.3 certificate_required; a TLS 1.2 server
// says handshake_failure, which is not specific enough to count here).
bool is_client_certificate_alert(int alert) {
  switch (alert) {
    case SSL3_AD_BAD_CERTIFICATE:
    case SSL3_AD_UNSUPPORTED_CERTIFICATE:
    case SSL3_AD_CERTIFICATE_REVOKED:
    case SSL3_AD_CERTIFICATE_EXPIRED:
    case SSL3_AD_CERTIFICATE_UNKNOWN:
    case TLS1_AD_UNKNOWN_CA:
    case TLS1_AD_ACCESS_DENIED:
    case TLS13_AD_CERTIFICATE_REQUIRED: return true;
    default: return false;
  }
}

// OpenSSL's words for an error, without Asio's " (SSL routines)" suffix where it can.
std::string ssl_reason(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ERR_reason_error_string(openssl_code(ec))) return reason;
  }
  return ec.message();
}

bool is_stream_truncated(const error_code& ec) { return ec == ssl::error::stream_truncated; }

// Maps what Beast, the socket and OpenSSL report to the one error vocabulary of transcripts.
// `received_some`: part of the response had arrived. `fresh`: the first exchange on a new
// connection, where a TLS 1.3 server still finishes its side of the handshake.
TransportError classify(Phase phase, const error_code& ec, bool received_some, bool fresh) {
  if (ec == beast::error::timeout) {
    switch (phase) {
      case Phase::connect: return TransportError::connect_timeout;
      case Phase::write: return TransportError::write_failed;
      case Phase::header: return TransportError::header_timeout;
      case Phase::body: return TransportError::body_timeout;
    }
  }
  // In TLS 1.3 the client's handshake is done before the server has checked the client's
  // certificate, so the server's verdict arrives as an alert on the first read.
  if (const int alert = received_alert(ec); alert >= 0) {
    if (is_client_certificate_alert(alert)) return TransportError::tls_client_certificate_rejected;
    if (fresh && !received_some) return TransportError::tls_handshake_failed;
  }
  if (phase == Phase::connect) return TransportError::connect_failed;
  if (phase == Phase::write) return TransportError::write_failed;
  if (ec == http::error::header_limit) return TransportError::header_too_large;
  if (ec == http::error::body_limit) return TransportError::body_too_large;
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return TransportError::closed_before_response;
  // TLS without close_notify (see looks_stale): before any byte it is a plain hang-up; inside a
  // response it is a truncated response, for a body delimited by the close too (RFC 9112 9.8:
  // an incomplete close cannot prove that body complete).
  if (is_stream_truncated(ec)) {
    return phase == Phase::header && !received_some ? TransportError::closed_before_response
                                                    : TransportError::bad_response;
  }
  // The peer closed inside a header or a body: what arrived is not a whole HTTP/1.1 response.
  if (ec == http::error::partial_message) return TransportError::bad_response;
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return TransportError::bad_response;
  }
  return TransportError::connection_reset;
}

// A kept-alive connection the server closed while idle fails like this on first use.
// Over TLS the server may have sent close_notify (eof) or, as many do, just closed the TCP
// connection (stream_truncated): both mean an idle connection went away.
bool looks_stale(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || is_stream_truncated(ec);
}

bool method_has_no_body(std::string_view method) { return method == "GET" || method == "HEAD"; }

std::string host_header(const Url& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  const std::uint16_t default_port = url.scheme == "https" ? 443 : 80;
  if (url.port != default_port) host += ":" + std::to_string(url.port);
  return host;
}

// RFC 9110 15.4: the redirects that name their target in Location. 300 (a choice) and 305
// (deprecated) are answers, not redirects.
bool is_redirect_status(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// A Location as the server wrote it may hold spaces, controls or bytes above 0x7e (Beast
// accepts obs-text in field values). They are percent-encoded, as browsers do, so that every
// URL the client requests or reports is printable ASCII.
std::string percent_encode_unsafe(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

// A URL for error details: long ones cut, so a 64 KiB Location cannot swamp a report.
std::string shown_url(std::string_view url) {
  constexpr std::size_t kMax = 200;
  const std::string safe = percent_encode_unsafe(url.substr(0, kMax));
  return url.size() > kMax ? safe + "..." : safe;
}

// "http://[::1]:8080", without the default port.
std::string origin_of(const Url& url) {
  std::string out = url.scheme + "://" + (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host);
  const std::uint16_t default_port = url.scheme == "https" ? 443 : 80;
  if (url.port != default_port) out += ":" + std::to_string(url.port);
  return out;
}

// RFC 3986 section 5.2.4, for a path that starts with "/".
std::string remove_dot_segments(std::string_view in) {
  std::vector<std::string_view> segments;
  std::size_t pos = 1;  // past the leading "/"
  bool trailing_slash = false;
  while (pos <= in.size()) {
    const auto end = std::min(in.find('/', pos), in.size());
    const std::string_view segment = in.substr(pos, end - pos);
    const bool last = end == in.size();
    if (segment == ".") {
      trailing_slash = last;
    } else if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    pos = end + 1;
  }
  std::string out;
  for (const auto segment : segments) {
    out += '/';
    out += segment;
  }
  if (trailing_slash || out.empty()) out += '/';
  return out;
}

// The URL a Location points to, resolved against the URL that was requested (RFC 9110 10.2.2,
// RFC 3986 5.2): absolute ("http://host/x"), scheme-relative ("//host/x"), absolute-path
// ("/x"), query-only ("?q") or path-relative ("x", "../x"). The fragment is dropped: it never
// reaches a server. Nothing when the Location names a scheme other than http or https.
std::optional<std::string> resolve_location(const Url& base, std::string_view location) {
  std::string loc = percent_encode_unsafe(location.substr(0, location.find('#')));
  // A scheme is letters, digits, "+", "-" and "." up to a ":", starting with a letter.
  std::size_t i = 0;
  while (i < loc.size() &&
         (std::isalnum(static_cast<unsigned char>(loc[i])) != 0 || loc[i] == '+' || loc[i] == '-' || loc[i] == '.')) {
    ++i;
  }
  if (i > 0 && i < loc.size() && loc[i] == ':' && std::isalpha(static_cast<unsigned char>(loc[0])) != 0) {
    std::string scheme = loc.substr(0, i);
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "http" && scheme != "https") return std::nullopt;
    return loc;
  }
  if (loc.rfind("//", 0) == 0) return base.scheme + ":" + loc;
  const std::string origin = origin_of(base);
  const std::string_view base_target = base.target;
  const std::string_view base_path = base_target.substr(0, base_target.find('?'));
  if (loc.empty()) return origin + std::string(base_target);
  if (loc.front() == '?') return origin + std::string(base_path) + loc;
  const auto query_at = loc.find('?');
  const std::string query = query_at == std::string::npos ? std::string() : loc.substr(query_at);
  std::string path = loc.substr(0, query_at);
  if (path.front() != '/') path = std::string(base_path.substr(0, base_path.rfind('/') + 1)) + path;
  return origin + remove_dot_segments(path) + query;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The subject of a certificate, for error details: "/CN=mdm.example.com".
std::string subject_of(X509* cert) {
  if (cert == nullptr) return "no certificate";
  char line[256];  // X509_NAME_oneline truncates; a detail needs no more
  X509_NAME_oneline(X509_get_subject_name(cert), line, sizeof line);
  return line;
}

// What OpenSSL said about the first error in this thread's queue, as Asio words it; the queue
// is emptied.
std::string openssl_error() {
  const auto code = static_cast<int>(ERR_get_error());
  ERR_clear_error();
  return error_code(code, asio::error::get_ssl_category()).message();
}

std::atomic<std::uint64_t> trust_load_count{0};

// A client SSL_CTX with a TlsClientConfig's trust in its store and nothing else, or why it
// could not be made. load_trust configures it; after that nobody changes it, and OpenSSL lets
// any number of threads make SSL objects from such a context and verify with its store (the
// store locks its own lookups). So one serves every client of the process: what belongs to one
// connection (verify mode and callback, SNI, the client certificate) goes on its SSL object.
struct Trust {
  // Mutable only because Asio's stream takes a context& to make its SSL object from; it reads it.
  mutable std::optional<ssl::context> context;
  std::string error;  // why there is no context; reported by every https send
};

std::shared_ptr<const Trust> load_trust(const std::string& trusted_ca_pem, bool insecure) {
  auto trust = std::make_shared<Trust>();
  try {
    ssl::context ctx(ssl::context::tls_client);
    // Apple devices speak TLS 1.2 or later only (App Transport Security); a server that offers
    // nothing newer fails here as it would for a device.
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    error_code ec;
    if (!trusted_ca_pem.empty()) {
      ++trust_load_count;
      ctx.add_certificate_authority(asio::buffer(trusted_ca_pem), ec);
      if (ec) trust->error = "trusted CA PEM could not be loaded: " + ec.message();
    } else if (!insecure) {  // insecure: nothing is verified, so the system's store goes unused
      ++trust_load_count;
      ctx.set_default_verify_paths(ec);
      if (ec) trust->error = "the system's trusted certificates could not be loaded: " + ec.message();
    }
    if (trust->error.empty()) trust->context.emplace(std::move(ctx));
  } catch (const std::exception& e) {
    // SSL_CTX_new failed: out of memory or a broken OpenSSL installation.
    trust->error = std::string("TLS context could not be created: ") + e.what();
  }
  return trust;
}

// The process's one Trust for this config's trusted_ca_pem and insecure, loaded by the first
// client that asks. Keyed by the settings themselves, so no client can get a trust made for
// others. The system's store is read once per process: a run, as mdmconform's commands go.
std::shared_ptr<const Trust> shared_trust(const TlsClientConfig& config) {
  struct Loaded {
    std::mutex mutex;
    std::map<std::pair<std::string, bool>, std::shared_ptr<const Trust>> by_settings;
  };
  // Never destroyed: at exit it could otherwise free SSL_CTXs after OpenSSL's own cleanup.
  static auto* const loaded = new Loaded;
  // Held while loading: the threads that wait want the same trust, as a rule, and get it loaded.
  std::lock_guard lock(loaded->mutex);
  auto& trust = loaded->by_settings[{config.trusted_ca_pem, config.insecure}];
  if (!trust) trust = load_trust(config.trusted_ca_pem, config.insecure);
  return trust;
}

struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct ChainFree {
  void operator()(STACK_OF(X509) * chain) const { sk_X509_pop_free(chain, X509_free); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

// A client's certificate, its key and the intermediates sent after it, parsed once per client.
// Each of its connections puts them on its own SSL object (SSL_use_cert_and_key), which copies
// nothing into the shared context: clients on other threads present their own certificates
// from the same context at the same time.
struct ClientIdentity {
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, KeyFree> key;
  std::unique_ptr<STACK_OF(X509), ChainFree> chain;
};

std::unique_ptr<BIO, BioFree> memory_bio(const std::string& text) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Parses the client identity of `config` into `out`, when it has one. Returns what failed, or
// an empty string.
std::string load_identity(const TlsClientConfig& config, std::optional<ClientIdentity>& out) {
  const bool has_identity =
      !config.client_cert_pem.empty() || !config.client_key_pem.empty() || !config.client_chain_pem.empty();
  if (!has_identity) return {};
  const std::string prefix = "client certificate/key PEM could not be loaded: ";
  if (config.client_cert_pem.empty()) return prefix + "client_cert_pem is empty";
  if (config.client_key_pem.empty()) return prefix + "client_key_pem is empty";
  ERR_clear_error();
  ClientIdentity identity;
  // The first certificate is ours and the rest its chain, read as Asio's use_certificate_chain
  // reads them: until there is no further PEM block.
  const std::string chain = config.client_cert_pem + "\n" + config.client_chain_pem;
  const auto chain_bio = memory_bio(chain);
  identity.chain.reset(sk_X509_new_null());
  if (!chain_bio || !identity.chain) return prefix + "certificate: " + openssl_error();
  identity.cert.reset(PEM_read_bio_X509_AUX(chain_bio.get(), nullptr, nullptr, nullptr));
  if (!identity.cert) return prefix + "certificate: " + openssl_error();
  while (X509* next = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr)) {
    if (sk_X509_push(identity.chain.get(), next) == 0) {
      X509_free(next);
      return prefix + "certificate: " + openssl_error();
    }
  }
  const auto last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();  // the end of the text
  } else if (last != 0) {
    return prefix + "certificate: " + openssl_error();
  }
  const auto key_bio = memory_bio(config.client_key_pem);
  if (key_bio) identity.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!identity.key) return prefix + "key: " + openssl_error();
  if (X509_check_private_key(identity.cert.get(), identity.key.get()) != 1) {
    const auto reason = ERR_reason_error_string(ERR_get_error());
    ERR_clear_error();
    return prefix + "the key does not match the certificate" + (reason ? std::string(" (") + reason + ")" : "");
  }
  out = std::move(identity);
  return {};
}

// Why verification of the server's certificate failed: the first failure the verify callback
// saw, with OpenSSL's words for it.
TransportError verify_error_class(int x509_error) {
  switch (x509_error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID: return TransportError::tls_certificate_expired;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return TransportError::tls_name_mismatch;
    default:
      // Unknown issuer, self-signed, bad signature, wrong purpose, broken chain: in every case
      // the chain does not lead to a CA we trust for this purpose.
      return TransportError::tls_untrusted_certificate;
  }
}

http::request<http::string_body> make_request(const Request& request, const Url& url) {
  http::request<http::string_body> req;
  req.version(11);
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) {
    req.method_string(request.method);
  } else {
    req.method(verb);
  }
  req.target(url.target);
  req.set(http::field::host, host_header(url));

  bool has_user_agent = false;
  bool has_connection = false;
  for (const auto& h : request.headers) {
    // Framing and Host belong to the client: a caller's copy could contradict the bytes sent.
    if (iequals(h.name, "Host") || iequals(h.name, "Content-Length") || iequals(h.name, "Transfer-Encoding")) continue;
    has_user_agent = has_user_agent || iequals(h.name, "User-Agent");
    has_connection = has_connection || iequals(h.name, "Connection");
    req.insert(h.name, h.value);
  }
  if (!has_user_agent) req.set(http::field::user_agent, kUserAgent);
  if (!has_connection) req.set(http::field::connection, "keep-alive");
  req.body() = request.body;
  if (!request.body.empty() || !method_has_no_body(request.method)) req.content_length(request.body.size());
  return req;
}

Headers headers_of(const http::fields& fields) {
  Headers out;
  for (const auto& f : fields) out.push_back({std::string(f.name_string()), std::string(f.value())});
  return out;
}

}  // namespace

struct HttpClient::Impl {
  Impl(ClientLimits l, TlsClientConfig t) : limits(l), tls_config(std::move(t)) {}

  ClientLimits limits;
  TlsClientConfig tls_config;
  // Declaration order is destruction order in reverse: the streams go first, then the TLS
  // context they use, then the io_context their sockets belong to.
  asio::io_context ioc;
  std::shared_ptr<const Trust> trust;      // the process's, for tls_config; got on the first https request
  std::optional<ClientIdentity> identity;  // tls_config's client identity, parsed then too
  bool tls_set_up = false;                 // both were tried
  std::string tls_setup_failure;           // why either could not be had; reported by every https send
  std::optional<beast::tcp_stream> plain;  // the open connection: plain ...
  std::optional<TlsStream> secure;         // ... or TLS, never both
  beast::flat_buffer buffer;               // bytes read past the last response stay with the connection
  bool connected = false;
  bool verified = false;               // the open TLS connection's server certificate was verified
  std::string server_certificate_der;  // from the latest successful handshake
  std::string host;
  std::uint16_t port = 0;

  // The first failure the verify callback saw during the current handshake.
  struct VerifyFailure {
    TransportError error = TransportError::none;
    std::string detail;
  };
  VerifyFailure verify_failure;
  std::string host_for_verify;  // the URL host the current handshake verifies against

  // What one attempt on one connection produced.
  struct Attempt {
    TransportError error = TransportError::none;
    error_code ec;
    bool stale = false;  // a reused connection failed before any response byte
    std::optional<Response> response;
    bool keep_alive = false;
  };

  Exchange send(const Request& request);
  Exchange send_once(const Request& request);
  void close();
  void drop();
  const std::string* tls_setup_error();
  TransportError connect(const Url& url, std::string& detail);
  TransportError handshake(const Url& url, std::string& detail);
  bool on_verify(bool preverified, ssl::verify_context& ctx, const ssl::host_name_verification& matches_host);
  Attempt attempt(const http::request<http::string_body>& req, bool reused);

  // The TCP layer of the open connection, where deadlines are set.
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  bool is_tls() const { return secure.has_value(); }
  // Calls `f` with the open connection's stream, whichever kind it is.
  template <class F>
  void with_stream(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(*plain);
    }
  }

  // Runs the private io_context until the operation that `start` begins has completed. Each
  // operation carries its own deadline (tcp_stream::expires_after), so this always returns.
  template <class Start>
  error_code wait(Start&& start) {
    error_code result;
    bool done = false;
    std::forward<Start>(start)([&result, &done](error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    while (!done && ioc.run_one() != 0) {}
    return result;
  }
};

// Abortive: the connection failed or timed out, so nothing more is said on it.
void HttpClient::Impl::drop() {
  if (plain || secure) {
    error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }
  buffer.clear();
  connected = false;
  verified = false;
}

// Orderly: a healthy connection we are done with. TLS says close_notify first, so the server
// can tell our close from a truncation attack.
void HttpClient::Impl::close() {
  if (connected && secure) {
    tcp().expires_after(std::min(limits.write_timeout, kTlsShutdownLimit));
    const auto ec = wait([&](auto handler) { secure->async_shutdown(std::move(handler)); });
    // Whatever this reports is fine and ignored, knowingly. async_shutdown sends our
    // close_notify and then waits for the server's. Many servers never send one and just
    // close the TCP connection, which ends the wait as stream_truncated (or eof, or a reset
    // if the server closed first); the rest that neither answer nor close are cut off by the
    // deadline above. None of this can harm a response that was already read in full.
    (void)ec;
  }
  drop();
}

const std::string* HttpClient::Impl::tls_setup_error() {
  if (!tls_set_up) {
    tls_set_up = true;
    trust = shared_trust(tls_config);
    tls_setup_failure = trust->error;
    if (tls_setup_failure.empty()) tls_setup_failure = load_identity(tls_config, identity);
  }
  return tls_setup_failure.empty() ? nullptr : &tls_setup_failure;
}

TransportError HttpClient::Impl::connect(const Url& url, std::string& detail) {
  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  const auto address = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(address, url.port);
  } else {
    // A name: resolve it on the same io_context, bounded by the connect deadline. Whatever the
    // system resolver is still doing when the deadline passes is abandoned, not waited for.
    struct Resolution {
      bool done = false;
      error_code ec;
      tcp::resolver::results_type results;
    };
    auto state = std::make_shared<Resolution>();
    tcp::resolver resolver(ioc);
    resolver.async_resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service,
                           [state](error_code rec, tcp::resolver::results_type results) {
                             state->ec = rec;
                             state->results = std::move(results);
                             state->done = true;
                           });
    const auto deadline = std::chrono::steady_clock::now() + limits.connect_timeout;
    ioc.restart();
    while (!state->done && ioc.run_one_until(deadline) != 0) {}
    if (!state->done) {
      resolver.cancel();
      detail = "name resolution timed out";
      return TransportError::resolve_failed;
    }
    if (state->ec || state->results.empty()) {
      detail = state->ec ? state->ec.message() : "no addresses";
      return TransportError::resolve_failed;
    }
    for (const auto& entry : state->results) endpoints.push_back(entry.endpoint());
  }

  // A fresh stream for every connection: an SSL object is good for one session only.
  if (url.scheme == "https") {
    plain.reset();
    secure.emplace(ioc, *trust->context);
  } else {
    secure.reset();
    plain.emplace(ioc);
  }
  buffer.clear();
  tcp().expires_after(limits.connect_timeout);
  ec = wait([&](auto handler) { tcp().async_connect(endpoints, std::move(handler)); });
  if (ec) {
    detail = ec.message();
    drop();
    return classify(Phase::connect, ec, false, true);
  }
  // Requests are written whole; Nagle would only delay the last segment of each.
  tcp().socket().set_option(tcp::no_delay(true), ec);
  if (secure) {
    if (const auto error = handshake(url, detail); error != TransportError::none) {
      drop();
      return error;
    }
  }
  connected = true;
  host = url.host;
  port = url.port;
  return TransportError::none;
}

bool HttpClient::Impl::on_verify(bool preverified, ssl::verify_context& ctx,
                                 const ssl::host_name_verification& matches_host) {
  X509_STORE_CTX* store = ctx.native_handle();
  auto fail = [&](int x509_error) {
    if (verify_failure.error == TransportError::none) {
      verify_failure.error = verify_error_class(x509_error);
      verify_failure.detail = std::string(X509_verify_cert_error_string(x509_error));
      if (verify_failure.error == TransportError::tls_name_mismatch) {
        verify_failure.detail += ": the certificate (" + subject_of(X509_STORE_CTX_get_current_cert(store)) +
                                 ") is not for " + host_for_verify;
      } else {
        verify_failure.detail += " (depth " + std::to_string(X509_STORE_CTX_get_error_depth(store)) + ", " +
                                 subject_of(X509_STORE_CTX_get_current_cert(store)) + ")";
      }
    }
    return false;
  };
  // OpenSSL calls this once per certificate of the chain, root first; the first failure stops
  // the handshake, and its reason is what the exchange reports.
  if (!preverified) return fail(X509_STORE_CTX_get_error(store));
  // host_name_verification checks the leaf only (depth 0) and passes the others through.
  if (!matches_host(true, ctx)) {
    const int error = is_ip_literal(host_for_verify) ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH;
    // Recorded in the store too, so that SSL_get_verify_result tells the same story.
    X509_STORE_CTX_set_error(store, error);
    return fail(error);
  }
  return true;
}

TransportError HttpClient::Impl::handshake(const Url& url, std::string& detail) {
  SSL* native = secure->native_handle();
  verify_failure = {};
  verified = false;
  server_certificate_der.clear();
  host_for_verify = url.host;
  // This client's certificate, on this connection only (see ClientIdentity).
  if (identity &&
      SSL_use_cert_and_key(native, identity->cert.get(), identity->key.get(), identity->chain.get(), 1) != 1) {
    detail = "the client certificate could not be used: " + openssl_error();
    return TransportError::tls_handshake_failed;
  }
  error_code ec;
  // SNI carries host names only; RFC 6066 section 3 forbids literal addresses in it. This is
  // SSL_set_tlsext_host_name spelled out: the macro hides an old-style cast to void*.
  if (!is_ip_literal(url.host)) {
    char* name = const_cast<char*>(url.host.c_str());  // OpenSSL copies it
    if (SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name) != 1) {
      detail = "cannot send the host name " + url.host + " in SNI";
      return TransportError::tls_handshake_failed;
    }
  }
  if (tls_config.insecure) {
    secure->set_verify_mode(ssl::verify_none, ec);
  } else {
    secure->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
      secure->set_verify_callback(
          [this, matches_host = ssl::host_name_verification(url.host)](bool preverified, ssl::verify_context& ctx) {
            return on_verify(preverified, ctx, matches_host);
          },
          ec);
    }
  }
  if (ec) {
    detail = "cannot set up certificate verification: " + ec.message();
    return TransportError::tls_handshake_failed;
  }

  tcp().expires_after(limits.tls_handshake_timeout);
  ec = wait([&](auto handler) { secure->async_handshake(ssl::stream_base::client, std::move(handler)); });
  if (!ec) {
    verified = !tls_config.insecure && SSL_get_verify_result(native) == X509_V_OK &&
               SSL_get0_peer_certificate(native) != nullptr;
    if (X509* peer = SSL_get0_peer_certificate(native)) {
      unsigned char* der = nullptr;
      const int size = i2d_X509(peer, &der);
      if (size > 0) server_certificate_der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
      OPENSSL_free(der);
    }
    return TransportError::none;
  }
  if (ec == beast::error::timeout) {
    detail = "TLS handshake timed out after " + std::to_string(limits.tls_handshake_timeout.count()) + " ms";
    return TransportError::tls_handshake_failed;
  }
  if (verify_failure.error != TransportError::none) {
    detail = verify_failure.detail;
    return verify_failure.error;
  }
  if (const int alert = received_alert(ec); alert >= 0) {
    detail = "the server sent a TLS alert: " + ssl_reason(ec);
    return is_client_certificate_alert(alert) ? TransportError::tls_client_certificate_rejected
                                              : TransportError::tls_handshake_failed;
  }
  if (is_stream_truncated(ec) || ec == asio::error::eof) {
    detail = "the server closed the connection during the TLS handshake";
  } else if (openssl_reason_code(ec) == SSL_R_WRONG_VERSION_NUMBER) {
    // What a plain-HTTP server's answer to a ClientHello looks like to OpenSSL.
    detail = ssl_reason(ec) + " (the server does not seem to speak TLS on this port)";
  } else {
    detail = ssl_reason(ec);
  }
  return TransportError::tls_handshake_failed;
}

HttpClient::Impl::Attempt HttpClient::Impl::attempt(const http::request<http::string_body>& req, bool reused) {
  Attempt out;
  auto fail = [&](Phase phase, const error_code& ec, bool nothing_received) {
    out.ec = ec;
    out.error = classify(phase, ec, !nothing_received, !reused);
    out.stale = reused && nothing_received && looks_stale(ec);
    drop();
    return out;
  };

  tcp().expires_after(limits.write_timeout);
  auto ec = wait(
      [&](auto handler) { with_stream([&](auto& stream) { http::async_write(stream, req, std::move(handler)); }); });
  if (ec) return fail(Phase::write, ec, true);

  // One deadline for the whole header, including any interim 1xx responses before it.
  tcp().expires_after(limits.header_timeout);
  std::optional<ResponseParser> parser;
  for (int interim = 0;; ++interim) {
    parser.emplace();
    // Beast's header_limit is 32 bits wide; a larger cap means "no practical cap".
    parser->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser->body_limit(limits.max_body_bytes);
    // A response to HEAD announces a length but carries no body.
    if (req.method() == http::verb::head) parser->skip(true);
    const bool before_first_byte = interim == 0 && buffer.size() == 0;
    ec = wait([&](auto handler) {
      with_stream([&](auto& stream) { http::async_read_header(stream, buffer, *parser, std::move(handler)); });
    });
    if (ec) return fail(Phase::header, ec, before_first_byte && !parser->got_some());
    const int status = parser->get().result_int();
    if (status >= 200 || status == 101) break;
    if (interim + 1 == kMaxInterimResponses) {
      out.error = TransportError::bad_response;
      out.ec = http::error::bad_status;
      drop();
      return out;
    }
  }

  if (!parser->is_done()) {
    tcp().expires_after(limits.body_timeout);
    ec = wait([&](auto handler) {
      with_stream([&](auto& stream) { http::async_read(stream, buffer, *parser, std::move(handler)); });
    });
    if (ec) return fail(Phase::body, ec, false);
  }

  const bool server_keeps = parser->get().keep_alive() && !parser->need_eof();
  const bool switched = parser->get().result_int() == 101;  // we do not speak what it switched to
  out.keep_alive = server_keeps && !switched && req.keep_alive();

  auto message = parser->release();
  Response response;
  response.status = message.result_int();
  response.reason = std::string(message.reason());
  response.headers = headers_of(message.base());
  response.body = std::move(message.body());
  out.response = std::move(response);
  return out;
}

Exchange HttpClient::Impl::send_once(const Request& request) {
  Exchange ex;
  ex.request = request;
  const auto url = parse_url(request.url);
  const bool use_tls = url && url->scheme == "https";
  // A request elsewhere ends the open connection first; that close (a bounded wait for a TLS
  // close_notify) belongs to no exchange's time.
  if (url && connected && (host != url->host || port != url->port || is_tls() != use_tls)) close();

  ex.started = std::chrono::system_clock::now();
  const auto start = std::chrono::steady_clock::now();
  auto finish = [&] {
    ex.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    return std::move(ex);
  };

  if (!url || (url->scheme != "http" && url->scheme != "https")) {
    ex.error = TransportError::bad_url;
    ex.error_detail = url ? "unsupported scheme " + url->scheme : "cannot parse URL";
    return finish();
  }
  ex.tls = use_tls;
  if (use_tls) {
    // A trust store or client identity that does not load fails every https exchange alike.
    if (const std::string* error = tls_setup_error()) {
      ex.error = TransportError::tls_handshake_failed;
      ex.error_detail = *error;
      return finish();
    }
  }

  const auto req = make_request(request, *url);
  // The transcript records the headers as sent, client-added ones included.
  ex.request.headers = headers_of(req.base());

  // A second attempt only when a kept-alive connection turned out closed before any byte of a
  // response: the server never saw the request or dropped it unanswered while idle. Anything
  // else (a timeout, a partial answer) may have had effects on the server and is reported.
  for (int tries = 0; tries < 2; ++tries) {
    const bool reused = connected;
    if (!connected) {
      const auto error = connect(*url, ex.error_detail);
      if (error != TransportError::none) {
        ex.error = error;
        return finish();
      }
    }
    ex.tls_verified = use_tls && verified;  // attempt() may drop the connection and its flag
    auto result = attempt(req, reused);
    if (result.error == TransportError::none) {
      ex.response = std::move(result.response);
      ex.reused_connection = reused;
      // Timed before the close: a TLS close waits (bounded) for the server's close_notify,
      // which is no part of the exchange.
      auto done = finish();
      if (!result.keep_alive) close();
      return done;
    }
    if (!result.stale) {
      ex.reused_connection = reused;
      ex.error = result.error;
      if (received_alert(result.ec) >= 0) {
        ex.error_detail = "the server sent a TLS alert: " + ssl_reason(result.ec);
      } else if (is_stream_truncated(result.ec)) {
        ex.error_detail = "the server closed the TLS connection without close_notify (stream truncated)";
      } else {
        ex.error_detail = result.ec.message();
      }
      return finish();
    }
  }
  // Unreachable: the second try runs on a fresh connection, which is never stale.
  ex.error = TransportError::closed_before_response;
  return finish();
}

// Follows redirects around send_once. Why the rules are what they are:
// - The method and body are re-sent unchanged for every redirect status, 301, 302 and 303
//   included. An MDM client only ever PUTs a plist; switching to GET (what browsers do for
//   301/302 after POST, and RFC 9110 allows for 303) would send a request no MDM server can
//   answer, and the verdict would blame the server for the client's rewrite.
// - A host that is neither loopback nor the request's own host is not followed unless
//   ClientLimits::redirects_off_loopback says so: the target under test must not be able to
//   point the harness, with a device's identity and signed bodies, at any other machine. The
//   check runs before any connect.
// - The chain is bounded by max_redirects, each hop by its own deadlines, so a send takes at
//   most (max_redirects + 1) times one request's deadlines.
Exchange HttpClient::Impl::send(const Request& request) {
  Exchange ex = send_once(request);
  if (limits.max_redirects <= 0) return ex;  // off: a 3xx is the answer

  Request hop = request;
  auto current = parse_url(request.url);  // always parses when send_once got a response for it
  const auto original = current;
  std::string chain = shown_url(request.url);
  auto refuse = [&ex](TransportError error, std::string detail) {
    ex.response.reset();
    ex.error = error;
    ex.error_detail = std::move(detail);
  };
  while (ex.ok() && current && is_redirect_status(ex.response->status)) {
    const auto location = find_header(ex.response->headers, "Location");
    if (!location) break;  // a 3xx without a Location is an answer like any other (RFC 9110 15.4)
    const auto target = resolve_location(*current, *location);
    const auto next = target ? parse_url(*target) : std::nullopt;
    if (!next) {
      refuse(TransportError::redirect_refused,
             "Location " + shown_url(*location) + " is not an http or https URL; not followed");
      break;
    }
    // The host the request was first sent to is the one the user chose to test: a redirect
    // back to it (say /mdm to /mdm/) is followed wherever it is.
    const bool same_host = original && next->host == original->host;
    if (!limits.redirects_off_loopback && !is_loopback_host(next->host) && !same_host) {
      refuse(TransportError::redirect_refused,
             "Location " + shown_url(*target) + ": " + shown_url(next->host) +
                 " is not a loopback host and redirects_off_loopback is off; not followed");
      break;
    }
    // The chain in the detail is capped: a loop of 64 KiB URLs stays a short message.
    constexpr std::size_t kMaxChain = 1024;
    if (chain.size() < kMaxChain) chain += " -> " + shown_url(*target);
    if (ex.redirects.size() >= static_cast<std::size_t>(limits.max_redirects)) {
      refuse(TransportError::too_many_redirects,
             "more than " + std::to_string(limits.max_redirects) +
                 " redirect(s): " + (chain.size() < kMaxChain ? chain : chain.substr(0, kMaxChain) + "..."));
      break;
    }
    // Credentials for one origin are not handed to another (as curl and browsers do).
    if (origin_of(*next) != origin_of(*current)) {
      std::erase_if(hop.headers, [](const Header& h) { return iequals(h.name, "Authorization"); });
    }
    hop.url = *target;
    Exchange followed = send_once(hop);
    ex.redirects.push_back(*target);
    ex.elapsed += followed.elapsed;
    ex.tls = ex.tls || followed.tls;
    ex.tls_verified = ex.tls_verified && followed.tls_verified;
    ex.response = std::move(followed.response);
    ex.error = followed.error;
    ex.error_detail = std::move(followed.error_detail);
    if (ex.error != TransportError::none) {
      ex.error_detail +=
          " (at " + shown_url(*target) + ", after " + std::to_string(ex.redirects.size()) + " redirect(s))";
    }
    current = next;
  }
  return ex;
}

std::uint64_t trust_loads() { return trust_load_count.load(); }

HttpClient::HttpClient(ClientLimits limits, TlsClientConfig tls)
    : impl_(std::make_unique<Impl>(limits, std::move(tls))) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Exchange HttpClient::send(const Request& request) { return impl_->send(request); }

const std::string& HttpClient::server_certificate_der() const { return impl_->server_certificate_der; }

void HttpClient::close() {
  if (impl_ && impl_->connected) impl_->close();
}

}  // namespace mdmc::net
