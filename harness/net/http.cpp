#include "harness/net/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>

namespace mdmc::net {
namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// Space, controls and DEL never appear in a URL we send; a request line built from one would
// be ambiguous on the wire.
bool has_forbidden_byte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

std::optional<std::uint16_t> parse_port(std::string_view digits) {
  // At most five digits: "65535"; a longer run is not a port even with leading zeros.
  if (digits.empty() || digits.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::optional<std::string> find_header(const Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::string_view transport_error_name(TransportError e) {
  switch (e) {
    case TransportError::none: return "none";
    case TransportError::bad_url: return "bad_url";
    case TransportError::resolve_failed: return "resolve_failed";
    case TransportError::connect_failed: return "connect_failed";
    case TransportError::connect_timeout: return "connect_timeout";
    case TransportError::write_failed: return "write_failed";
    case TransportError::header_timeout: return "header_timeout";
    case TransportError::body_timeout: return "body_timeout";
    case TransportError::closed_before_response: return "closed_before_response";
    case TransportError::connection_reset: return "connection_reset";
    case TransportError::header_too_large: return "header_too_large";
    case TransportError::body_too_large: return "body_too_large";
    case TransportError::bad_response: return "bad_response";
    case TransportError::tls_handshake_failed: return "tls_handshake_failed";
    case TransportError::tls_untrusted_certificate: return "tls_untrusted_certificate";
    case TransportError::tls_name_mismatch: return "tls_name_mismatch";
    case TransportError::tls_certificate_expired: return "tls_certificate_expired";
    case TransportError::tls_client_certificate_rejected: return "tls_client_certificate_rejected";
    case TransportError::redirect_refused: return "redirect_refused";
    case TransportError::too_many_redirects: return "too_many_redirects";
  }
  return "unknown";
}

std::optional<Url> parse_url(std::string_view url) {
  if (url.empty() || has_forbidden_byte(url)) return std::nullopt;

  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  Url out;
  out.scheme.reserve(scheme_end);
  for (char c : url.substr(0, scheme_end)) out.scheme.push_back(ascii_lower(c));
  std::uint16_t default_port = 0;
  if (out.scheme == "http") {
    default_port = 80;
  } else if (out.scheme == "https") {
    default_port = 443;
  } else {
    return std::nullopt;
  }

  std::string_view rest = url.substr(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);

  // Credentials in a URL are never sent by the harness; refusing them keeps "host" unambiguous.
  if (authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    // An IPv6 literal: [::1]:8080.
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      has_port = true;
      port_text = after.substr(1);
    }
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) return std::nullopt;
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.find_first_of("[]") != std::string_view::npos) return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  out.host = std::string(host);

  if (has_port) {
    const auto port = parse_port(port_text);
    if (!port) return std::nullopt;
    out.port = *port;
  } else {
    out.port = default_port;
  }

  // The fragment stays with the client: it is never part of the request target.
  tail = tail.substr(0, tail.find('#'));
  if (tail.empty()) {
    out.target = "/";
  } else if (tail.front() == '?') {
    out.target = "/" + std::string(tail);
  } else {
    out.target = std::string(tail);
  }
  return out;
}

bool is_loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return false;
  if (iequals(host, "localhost") || iequals(host, "localhost.")) return true;

  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    // 127.0.0.0/8: the first octet, in network byte order.
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.0.0.1 is the IPv4 loopback seen through an IPv6 socket.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace mdmc::net
