#include "harness/target/profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "harness/base/bytes.hpp"
#include "harness/target/yaml_reader.hpp"

namespace mdmc::target {
namespace {

std::string substitute(const std::string& value, const std::map<std::string, std::string>& variables, MapReader& r,
                       const YAML::Node& at, const std::string& key) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    auto start = value.find("${", pos);
    if (start == std::string::npos) break;
    auto end = value.find('}', start);
    if (end == std::string::npos) r.fail(at, "unterminated ${", key);
    out += value.substr(pos, start - pos);
    auto name = value.substr(start + 2, end - start - 2);
    if (name.rfind("env:", 0) == 0) {
      const char* env = std::getenv(name.substr(4).c_str());
      if (!env) r.fail(at, "environment variable " + name.substr(4) + " is not set", key);
      out += env;
    } else if (auto it = variables.find(name); it != variables.end()) {
      out += it->second;
    } else {
      r.fail(
          at,
          "${" + name + "} has no value here" + (name == "builtin_port" ? " (only the built-in server sets it)" : ""),
          key);
    }
    pos = end + 1;
  }
  return out + value.substr(pos);
}

// `push:`: listen, names, ca {cert, key}, auth {certificate_ca, token {key_id, team_id, public_key}}.
PushEndpoint read_push_endpoint(const YAML::Node& node, const std::string& name,
                                const std::map<std::string, std::string>& variables,
                                const std::function<std::string(MapReader&, const std::string&)>& pem_file) {
  MapReader r(node, name, "push");
  PushEndpoint endpoint;
  auto listen = substitute(r.get_required<std::string>("listen"), variables, r, r.node("listen"), "listen");
  // host:port, the host an IP literal ([v6] in brackets) or a name, the port 1..65535.
  const auto colon = listen.rfind(':');
  int port = 0;
  if (colon != std::string::npos && colon + 1 < listen.size() && colon + 6 >= listen.size() &&
      std::all_of(listen.begin() + static_cast<long>(colon) + 1, listen.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    port = std::stoi(listen.substr(colon + 1));
  }
  if (colon == 0 || port < 1 || port > 65535) {
    r.fail(r.node("listen"), "'" + listen + "' is not host:port with a port from 1 to 65535", "listen");
  }
  endpoint.address = listen.substr(0, colon);
  if (endpoint.address.size() > 2 && endpoint.address.front() == '[' && endpoint.address.back() == ']') {
    endpoint.address = endpoint.address.substr(1, endpoint.address.size() - 2);
  }
  endpoint.port = static_cast<std::uint16_t>(port);
  endpoint.names = r.get<std::vector<std::string>>("names", {});
  {
    MapReader ca(r.required("ca"), name, "push.ca");
    endpoint.ca = pki::Identity{pem_file(ca, "cert"), pem_file(ca, "key"), ""};
    if (!pki::certificate_der(endpoint.ca.cert_pem)) ca.fail(ca.node("cert"), "not a PEM certificate", "cert");
    if (auto pair = pki::key_matches_certificate(endpoint.ca.cert_pem, endpoint.ca.key_pem); !pair) {
      ca.fail(ca.node("key"), pair.message(), "key");
    }
    ca.finish();
  }
  MapReader auth(r.required("auth"), name, "push.auth");
  if (auth.has("certificate_ca")) {
    endpoint.certificate_ca_pem = pem_file(auth, "certificate_ca");
    auto certificates = pki::count_certificates(endpoint.certificate_ca_pem);
    if (!certificates || *certificates == 0) {
      auth.fail(auth.node("certificate_ca"), "holds no PEM certificate", "certificate_ca");
    }
  }
  if (auto token = auth.node("token")) {
    MapReader t(token, name, "push.auth.token");
    endpoint.token_key_id = t.get_required<std::string>("key_id");
    endpoint.token_team_id = t.get_required<std::string>("team_id");
    endpoint.token_public_key_pem = pem_file(t, "public_key");
    t.finish();
  }
  if (endpoint.certificate_ca_pem.empty() && endpoint.token_public_key_pem.empty()) {
    auth.fail(r.node("auth"), "give certificate_ca (push certificates), token (provider tokens), or both");
  }
  auth.finish();
  r.finish();
  return endpoint;
}

}  // namespace

TargetProfile load_profile(const std::filesystem::path& file, const std::optional<BuiltinTarget>& builtin) {
  return load_profile_text(read_spec_file(file), file.string(), file.parent_path(), builtin);
}

TargetProfile load_profile_text(std::string_view text, const std::string& name, const std::filesystem::path& base,
                                const std::optional<BuiltinTarget>& builtin) {
  std::map<std::string, std::string> variables;
  if (builtin) variables["builtin_port"] = std::to_string(builtin->port);
  auto root = parse_yaml(std::string(text), name);
  MapReader top(root, name, "");
  check_schema_version(top);
  TargetProfile p;
  p.file = name;
  p.digest = base::sha256_hex(text);
  p.name = top.get_required<std::string>("name");
  auto url = [&](MapReader& r, const std::string& key) {
    auto raw = r.get_required<std::string>(key);
    auto value = substitute(raw, variables, r, r.node(key), key);
    if (!net::parse_url(value)) r.fail(r.node(key), "'" + value + "' is not an http:// or https:// URL", key);
    return value;
  };
  // With an enrollment profile, what it names stands wherever this file is silent.
  if (auto enrollment = top.node("enrollment")) {
    EnrollmentSource source;
    if (enrollment.IsScalar() && enrollment.Scalar() == "builtin") {
      if (!builtin) top.fail(enrollment, "'builtin' needs the built-in server (run without --target)", "enrollment");
      source.builtin = true;
      source.profile_url = fmt::format("https://127.0.0.1:{}/enroll", builtin->port);
      // Without a SCEP companion the built-in server serves no enrollment profile.
      if (!builtin->scep_ca_pem.empty()) p.enrollment = source;
    } else {
      MapReader e(enrollment, name, "enrollment");
      if (e.has("profile_url") == e.has("profile_file")) e.fail(enrollment, "give profile_url or profile_file");
      if (e.has("profile_url")) source.profile_url = url(e, "profile_url");
      if (e.has("profile_file")) {
        auto file = std::filesystem::path(substitute(e.get_required<std::string>("profile_file"), variables, e,
                                                     e.node("profile_file"), "profile_file"));
        if (file.is_relative()) file = base / file;
        std::error_code ec;
        if (!std::filesystem::is_regular_file(file, ec))
          e.fail(e.node("profile_file"), "no file " + file.string(), "profile_file");
        source.profile_file = file;
      }
      if (auto auth = e.node("basic_auth")) {
        MapReader b(auth, name, "enrollment.basic_auth");
        source.basic_user = b.get_required<std::string>("user");
        source.basic_password =
            substitute(b.get_required<std::string>("password"), variables, b, b.node("password"), "password");
        b.finish();
      }
      if (auto headers = e.node("headers")) {
        if (!headers.IsMap()) e.fail(headers, "must be a map of header names to values", "headers");
        std::vector<std::string> keys;
        for (const auto& kv : headers) keys.push_back(kv.first.as<std::string>(""));
        MapReader h(headers, name, "enrollment.headers");
        for (const auto& key : keys) {
          source.headers[key] = substitute(h.get_required<std::string>(key), variables, h, h.node(key), key);
        }
      }
      source.trust_profile_cas = e.get("trust_profile_cas", false);
      e.finish();
      p.enrollment = source;
    }
  }
  const bool enrolls = p.enrollment.has_value();
  // The reference profile's own URLs, topic and issuer stand in for its enrollment profile's
  // only when its devices do not enroll through it.
  const bool fallbacks_only = enrolls && p.enrollment->builtin && builtin->devices_through_scep;
  if (auto urls_node = top.node("urls"); urls_node && !fallbacks_only) {
    MapReader urls(urls_node, name, "urls");
    p.server_url = url(urls, "server");
    p.stated.insert("urls.server");
    if (urls.has("check_in")) {
      p.check_in_url = url(urls, "check_in");
      p.stated.insert("urls.check_in");
    } else {
      p.check_in_url = p.server_url;
    }
    urls.finish();
  } else if (!enrolls) {
    top.required("urls");
  }
  if (top.has("topic") && !fallbacks_only) {
    p.topic = substitute(top.get_required<std::string>("topic"), variables, top, top.node("topic"), "topic");
    p.stated.insert("topic");
  } else {
    p.topic = "com.apple.mgmt.External.mdmconform";
  }
  if (auto limits = top.node("limits")) {
    MapReader l(limits, name, "limits");
    auto ms = [&](const std::string& key, std::chrono::milliseconds fallback) {
      int v = l.get(key, static_cast<int>(fallback.count()));
      if (v <= 0) l.fail(l.node(key), "must be positive", key);
      return std::chrono::milliseconds(v);
    };
    p.limits.connect_timeout = ms("connect_timeout_ms", p.limits.connect_timeout);
    p.limits.write_timeout = ms("write_timeout_ms", p.limits.write_timeout);
    p.limits.header_timeout = ms("header_timeout_ms", p.limits.header_timeout);
    p.limits.body_timeout = ms("body_timeout_ms", p.limits.body_timeout);
    int body = l.get("max_body_bytes", static_cast<int>(p.limits.max_body_bytes));
    if (body <= 0) l.fail(l.node("max_body_bytes"), "must be positive", "max_body_bytes");
    p.limits.max_body_bytes = static_cast<std::size_t>(body);
    // Every hop has its own deadlines, so one request may take (max_redirects + 1) times them;
    // 20 is the most the Fetch standard (and so every browser) follows.
    constexpr int kMostRedirects = 20;
    int redirects = l.get("max_redirects", p.limits.max_redirects);
    if (redirects < 0 || redirects > kMostRedirects) {
      l.fail(l.node("max_redirects"), fmt::format("must be between 0 and {}", kMostRedirects), "max_redirects");
    }
    p.limits.max_redirects = redirects;
    p.limits.redirects_off_loopback = l.get("redirects_off_loopback", p.limits.redirects_off_loopback);
    auto bound = [&](const std::string& key, std::size_t fallback, std::size_t most) {
      int v = l.get(key, static_cast<int>(fallback));
      if (v <= 0 || static_cast<std::size_t>(v) > most) {
        l.fail(l.node(key), fmt::format("must be between 1 and {}", most), key);
      }
      return static_cast<std::size_t>(v);
    };
    // Upper bounds keep a profile from turning the limits off: they guard the harness itself.
    p.plist_limits.max_bytes = bound("plist_max_bytes", p.plist_limits.max_bytes, 64 * 1024 * 1024);
    p.plist_limits.max_depth = bound("plist_max_depth", p.plist_limits.max_depth, 512);
    p.plist_limits.max_nodes = bound("plist_max_nodes", p.plist_limits.max_nodes, 10'000'000);
    l.finish();
  }
  if (auto admin = top.node("admin")) {
    MapReader a(admin, name, "admin");
    if (auto enqueue = a.node("enqueue")) {
      MapReader e(enqueue, name, "admin.enqueue");
      AdminEndpoint ep;
      ep.method = e.get<std::string>("method", "PUT");
      auto style = e.get<std::string>("channel_id", "udid:user_id");
      if (style == "udid:user_id")
        ep.channel_style = ChannelStyle::udid_colon_user_id;
      else if (style == "user_id")
        ep.channel_style = ChannelStyle::user_id;
      else
        e.fail(e.node("channel_id"), "must be 'udid:user_id' (NanoMDM) or 'user_id' (MicroMDM)", "channel_id");
      ep.url = url(e, "url");
      if (auto auth = e.node("basic_auth")) {
        MapReader b(auth, name, "admin.enqueue.basic_auth");
        ep.basic_user = b.get_required<std::string>("user");
        ep.basic_password =
            substitute(b.get_required<std::string>("password"), variables, b, b.node("password"), "password");
        b.finish();
      }
      ep.expect_status = e.get<std::vector<int>>("expect_status", ep.expect_status);
      int settle = e.get("settle_ms", 0);
      if (settle < 0 || settle > 60000) e.fail(e.node("settle_ms"), "must be between 0 and 60000", "settle_ms");
      ep.settle = std::chrono::milliseconds(settle);
      e.finish();
      p.enqueue = ep;
    }
    if (auto declarations = a.node("declarations")) {
      MapReader d(declarations, name, "admin.declarations");
      DeclarationsAdmin da;
      auto style = d.get<std::string>("channel_id", "udid:user_id");
      if (style == "udid:user_id")
        da.channel_style = ChannelStyle::udid_colon_user_id;
      else if (style == "user_id")
        da.channel_style = ChannelStyle::user_id;
      else
        d.fail(d.node("channel_id"), "must be 'udid:user_id' (NanoMDM) or 'user_id' (MicroMDM)", "channel_id");
      if (auto auth = d.node("basic_auth")) {
        MapReader b(auth, name, "admin.declarations.basic_auth");
        da.basic_user = b.get_required<std::string>("user");
        da.basic_password =
            substitute(b.get_required<std::string>("password"), variables, b, b.node("password"), "password");
        b.finish();
      }
      auto request = [&](const YAML::Node& node, const std::string& where) {
        MapReader r(node, name, where);
        AdminRequest req;
        req.method = r.get<std::string>("method", "PUT");
        req.url = url(r, "url");
        req.expect_status = r.get<std::vector<int>>("expect_status", req.expect_status);
        r.finish();
        return req;
      };
      auto requests = [&](const std::string& key) {
        std::vector<AdminRequest> out;
        auto node = d.node(key);
        if (!node) return out;
        if (!node.IsSequence() || node.size() == 0 || node.size() > 8) {
          d.fail(node, "must be a list of 1 to 8 requests ({url, method, expect_status})", key);
          return out;
        }
        for (std::size_t i = 0; i < node.size(); ++i) {
          out.push_back(request(node[i], fmt::format("admin.declarations.{}[{}]", key, i)));
        }
        return out;
      };
      if (auto put = d.node("put")) {
        da.put = request(put, "admin.declarations.put");
      } else {
        d.fail(declarations, "needs put: the request that stores a declaration", "put");
      }
      da.assign = requests("assign");
      if (da.assign.empty() && !d.node("assign")) {
        d.fail(declarations, "needs assign: the requests that give a channel a declaration", "assign");
      }
      da.unassign = requests("unassign");
      int settle = d.get("settle_ms", 0);
      if (settle < 0 || settle > 60000) d.fail(d.node("settle_ms"), "must be between 0 and 60000", "settle_ms");
      da.settle = std::chrono::milliseconds(settle);
      d.finish();
      p.declarations = da;
    }
    a.finish();
  }
  // A path, relative to the profile's folder, or `builtin`.
  auto pem_file = [&](MapReader& r, const std::string& key) -> std::string {
    auto value = substitute(r.get_required<std::string>(key), variables, r, r.node(key), key);
    auto path = std::filesystem::path(value);
    if (path.is_relative()) path = base / path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) r.fail(r.node(key), "no file " + path.string(), key);
    return read_spec_file(path);
  };
  if (auto identity = top.node("identity")) {
    MapReader id(identity, name, "identity");
    auto mode = protocol::identity_mode_from_name(id.get_required<std::string>("mode"));
    if (!mode) id.fail(id.node("mode"), "must be none, mtls, signature or both", "mode");
    p.identity.mode = *mode;
    auto key = id.get<std::string>("key_type", "ec_p256");
    if (key == "ec_p256")
      p.identity.key_type = pki::KeyType::ec_p256;
    else if (key == "rsa2048")
      p.identity.key_type = pki::KeyType::rsa2048;
    else
      id.fail(id.node("key_type"), "must be ec_p256 or rsa2048", "key_type");
    if (!fallbacks_only) p.stated.insert("identity.mode");
    if (auto issuer = id.node("issuer"); issuer && !fallbacks_only) {
      p.stated.insert("identity.source");
      if (issuer.IsScalar() && issuer.Scalar() == "builtin") {
        if (!builtin) id.fail(issuer, "'builtin' needs the built-in server (run without --target)", "issuer");
        p.identity.issuer = builtin->ca;
      } else {
        MapReader is(issuer, name, "identity.issuer");
        pki::Identity ca{pem_file(is, "cert"), pem_file(is, "key"), ""};
        if (!pki::certificate_der(ca.cert_pem)) is.fail(is.node("cert"), "not a PEM certificate", "cert");
        // With another certificate's key, every device certificate issued would be refused, and
        // every case of the run would end in the same error.
        if (auto pair = pki::key_matches_certificate(ca.cert_pem, ca.key_pem); !pair) {
          is.fail(is.node("key"), pair.message(), "key");
        }
        is.finish();
        p.identity.issuer = ca;
      }
    }
    if (auto pool = id.node("pool"); pool && !fallbacks_only) {
      p.stated.insert("identity.source");
      MapReader po(pool, name, "identity.pool");
      auto dir =
          std::filesystem::path(substitute(po.get_required<std::string>("dir"), variables, po, po.node("dir"), "dir"));
      if (dir.is_relative()) dir = base / dir;
      auto password =
          substitute(po.get<std::string>("p12_password", ""), variables, po, po.node("p12_password"), "p12_password");
      auto loaded = pki::load_identity_pool(dir, password);
      if (!loaded) po.fail(po.node("dir"), loaded.message(), "dir");
      if (loaded->empty()) po.fail(po.node("dir"), "holds no identity (*.p12, or NAME.crt with NAME.key)", "dir");
      p.identity.pool = std::move(loaded).value();
      po.finish();
    }
    if (p.identity.mode != IdentityMode::none && !p.identity.issuer && p.identity.pool.empty() && !enrolls) {
      id.fail(identity, "mode " + std::string(protocol::identity_mode_name(p.identity.mode)) +
                            " needs an issuer, a pool, or an enrollment profile whose SCEP payload issues identities");
    }
    if (fallbacks_only) id.node("issuer");  // read, so that finish() takes it as known
    if (p.identity.issuer && !p.identity.pool.empty()) id.fail(identity, "give an issuer or a pool, not both");
    id.finish();
  }
  if (auto tls = top.node("tls")) {
    MapReader t(tls, name, "tls");
    if (auto ca = t.node("ca")) {
      if (ca.IsScalar() && ca.Scalar() == "builtin") {
        if (!builtin) t.fail(ca, "'builtin' needs the built-in server (run without --target)", "ca");
        p.tls.ca_pem = builtin->ca.cert_pem;
      } else {
        p.tls.ca_pem = pem_file(t, "ca");
        // Unparsable trust would fail every TLS handshake, and look like an unreachable server.
        auto certificates = pki::count_certificates(p.tls.ca_pem);
        if (!certificates) t.fail(ca, certificates.message(), "ca");
        if (*certificates == 0) t.fail(ca, "holds no PEM certificate", "ca");
      }
    }
    p.tls.insecure = t.get("insecure", false);
    t.finish();
  }
  if (auto policy = top.node("policy")) {
    MapReader pol(policy, name, "policy");
    if (auto users = pol.node("network_users")) {
      MapReader nu(users, name, "policy.network_users");
      p.managed_network_users = nu.get<std::vector<std::string>>("managed", {});
      nu.finish();
    }
    pol.finish();
  }
  if (auto declares = top.node("declares")) {
    if (!declares.IsMap()) top.fail(declares, "must be a map", "declares");
    // The names first, then their values: reading a value may add to the map (yaml-cpp's
    // non-const operator[]), which would invalidate an iterator over it.
    std::vector<std::string> keys;
    for (const auto& kv : declares) {
      if (!kv.first.IsScalar()) top.fail(kv.first, "names must be plain words", "declares");
      keys.push_back(kv.first.as<std::string>(""));
    }
    MapReader d(declares, name, "declares");
    for (const auto& key : keys) p.declares[key] = d.get(key, false);
    if (p.declares.count("per_user_connections")) p.stated.insert("declares.per_user_connections");
  }
  if (auto push = top.node("push")) {
    if (push.IsScalar() && push.Scalar() == "builtin") {
      if (!builtin) top.fail(push, "'builtin' needs the built-in server (run without --target)", "push");
      if (builtin->apns_port != 0) {
        PushEndpoint endpoint;
        endpoint.port = builtin->apns_port;
        endpoint.ca = builtin->ca;
        endpoint.certificate_ca_pem = builtin->ca.cert_pem;
        endpoint.builtin = true;
        p.push = endpoint;
      }
    } else {
      p.push = read_push_endpoint(push, name, variables, pem_file);
    }
  }
  if (fallbacks_only) {
    top.node("urls");
    top.node("topic");
  }
  for (const char* key :
       {"urls.server", "urls.check_in", "topic", "identity.mode", "identity.source", "declares.per_user_connections"}) {
    p.origins[key] = p.stated.count(key) ? "target profile" : "default";
  }
  top.finish();
  return p;
}

}  // namespace mdmc::target
