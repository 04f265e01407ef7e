#include "harness/cli/builtin.hpp"

#include <string>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "harness/base/files.hpp"
#include "harness/cli/apns_log.hpp"
#include "harness/cli/suite.hpp"
#include "harness/target/enrollment.hpp"

namespace mdmc::cli {
namespace {

namespace fs = std::filesystem;

class BuiltinCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "cli.builtin"; }
  std::string message(int ev) const override {
    return static_cast<BuiltinError>(ev) == BuiltinError::listen ? "listen" : "setup";
  }
};

constexpr std::string_view kPortPlaceholder = "${builtin_port}";

// Every string value below `node` with ${builtin_port} filled in.
void fill_port(YAML::Node node, const std::string& port) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) fill_port(it->second, port);
  } else if (node.IsSequence()) {
    for (auto child : node) fill_port(child, port);
  } else if (node.IsScalar()) {
    std::string value = node.Scalar();
    bool changed = false;
    for (auto at = value.find(kPortPlaceholder); at != std::string::npos; at = value.find(kPortPlaceholder, at)) {
      value.replace(at, kPortPlaceholder.size(), port);
      changed = true;
    }
    if (changed) node = value;
  }
}

bool is_builtin(const YAML::Node& node) { return node && node.IsScalar() && node.Scalar() == "builtin"; }

}  // namespace

std::error_code make_error_code(BuiltinError e) {
  static const BuiltinCategory category;
  return {static_cast<int>(e), category};
}

base::Result<BuiltinPki> make_builtin_pki() {
  auto ca = pki::create_test_ca("mdmconform reference CA");
  if (!ca) return base::Result<BuiltinPki>(BuiltinError::setup, "could not create the test CA: " + ca.message());
  auto server = pki::issue_server_identity(*ca, {"127.0.0.1", "localhost"});
  if (!server) {
    return base::Result<BuiltinPki>(BuiltinError::setup, "could not issue the server certificate: " + server.message());
  }
  net::ServerTls tls{server->cert_pem + ca->cert_pem, server->key_pem, ca->cert_pem, false};
  return BuiltinPki{*ca, *server, std::move(tls)};
}

base::Result<std::shared_ptr<server::ScepServerProcess>> attach_scep(server::Config& config,
                                                                     std::optional<net::ServerTls>& tls, bool wanted,
                                                                     std::shared_ptr<server::ScepServerProcess> given) {
  using Out = base::Result<std::shared_ptr<server::ScepServerProcess>>;
  std::shared_ptr<server::ScepServerProcess> scep = std::move(given);
  if (!scep && wanted) {
    auto started = server::ScepServerProcess::start();
    if (!started && started.error().code == server::ScepServerError::not_installed) return Out(nullptr);
    if (!started) {
      return Out(BuiltinError::setup, "the SCEP companion of the built-in server did not start: " + started.message());
    }
    scep = std::move(started).value();
  }
  if (!scep) return Out(nullptr);
  config.scep = server::ScepEnrollment{scep->url(), scep->challenge(), scep->ca_pem()};
  // Devices enrolled through the profile present the SCEP CA's certificates in the handshake.
  if (tls && !tls->client_ca_pem.empty()) tls->client_ca_pem += "\n" + scep->ca_pem();
  return Out(std::move(scep));
}

base::Result<Builtin> start_builtin(const BuiltinOptions& options) {
  const fs::path file = options.specs_dir / "targets" / "reference.yaml";
  auto made = make_builtin_pki();
  if (!made) return made.error();
  BuiltinPki& keys = *made;
  Builtin out;
  out.ca = keys.ca;
  // Loaders throw LoadError (their one convention); it ends here, as a value.
  try {
    // The server's policy comes from the profile, and the profile's URLs from the server's
    // port: read the policy first, with a port that is never used.
    auto policy = target::load_profile(file, target::BuiltinTarget{1, keys.ca, {}, true});
    if (options.identity_mode) policy.identity.mode = *options.identity_mode;
    server::Config config;
    config.fault = options.fault;
    config.seeded_bug = options.seeded_bug;
    config.identity_mode = policy.identity.mode;
    config.client_ca_pem = keys.ca.cert_pem;
    config.topic = policy.topic;
    config.managed_network_users.insert(policy.managed_network_users.begin(), policy.managed_network_users.end());
    std::optional<net::ServerTls> tls;
    if (auto url = net::parse_url(policy.server_url); url && url->scheme == "https") {
      tls = keys.tls;
      config.tls_ca_pem = keys.ca.cert_pem;
    }
    std::string scep_ca_pem;
    if (options.external_scep) {
      config.scep = *options.external_scep;
      if (tls && !tls->client_ca_pem.empty()) tls->client_ca_pem += "\n" + options.external_scep->ca_pem;
      scep_ca_pem = options.external_scep->ca_pem;
    } else {
      auto scep = attach_scep(config, tls, options.scep, options.scep_server);
      if (!scep) return scep.error();
      out.scep = *std::move(scep);
      if (out.scep) scep_ca_pem = out.scep->ca_pem();
    }
    std::uint16_t apns_port = 0;
    if (options.push) {
      target::PushEndpoint endpoint;
      endpoint.ca = keys.ca;
      endpoint.certificate_ca_pem = keys.ca.cert_pem;
      auto apns = start_fake_apns(endpoint);
      if (!apns) return base::Result<Builtin>(BuiltinError::setup, "the built-in fake APNs: " + apns.message());
      out.apns = std::move(apns->apns);
      apns_port = apns->port;
      auto certificate = pki::issue_push_certificate(keys.ca, policy.topic);
      if (!certificate) {
        return base::Result<Builtin>(BuiltinError::setup,
                                     "the built-in server's push certificate: " + certificate.message());
      }
      config.push.apns_url = fmt::format("https://127.0.0.1:{}", apns_port);
      config.push.trusted_ca_pem = keys.ca.cert_pem;
      config.push.certificate = *std::move(certificate);
      config.push.log = [](const std::string&) {};
    }
    out.server = std::make_unique<server::ReferenceServer>(config, tls);
    auto listening = out.server->listen("127.0.0.1", 0);
    if (!listening) {
      return base::Result<Builtin>(
          BuiltinError::listen, "the built-in reference server could not listen on 127.0.0.1: " + listening.message());
    }
    out.port = *listening;
    out.server->start();
    out.profile = target::load_profile(
        file, target::BuiltinTarget{out.port, keys.ca, scep_ca_pem, options.devices_through_scep, apns_port});
  } catch (const std::exception& e) {
    return base::Result<Builtin>(BuiltinError::setup, e.what());
  }
  // Its devices enroll through its enrollment profile: the profile is whole only once read.
  if (out.profile.enrollment) {
    if (auto enrolled = target::apply_enrollment(out.profile); !enrolled) {
      return base::Result<Builtin>(BuiltinError::setup,
                                   "the built-in server's enrollment profile: " + enrolled.error().message);
    }
  }
  if (options.identity_mode) out.profile.identity.mode = *options.identity_mode;
  return out;
}

base::Result<target::TargetProfile> builtin_profile(const BuiltinOptions& options) {
  auto ca = pki::create_test_ca("mdmconform reference CA");
  if (!ca)
    return base::Result<target::TargetProfile>(BuiltinError::setup, "could not create the test CA: " + ca.message());
  try {
    // The companion's CA is not known without starting it; a dry run loads the profile as the
    // run would with one, when scepserver is installed and wanted.
    const bool companion = options.scep && (options.scep_server || server::find_scepserver());
    auto profile = target::load_profile(
        options.specs_dir / "targets" / "reference.yaml",
        target::BuiltinTarget{1, *ca, companion ? ca->cert_pem : std::string(), options.devices_through_scep,
                              static_cast<std::uint16_t>(options.push ? 1 : 0)});
    if (options.identity_mode) profile.identity.mode = *options.identity_mode;
    return profile;
  } catch (const std::exception& e) {
    return base::Result<target::TargetProfile>(BuiltinError::setup, e.what());
  }
}

base::Result<fs::path> write_builtin_profile(const Builtin& builtin, const BuiltinOptions& options,
                                             const fs::path& dir) {
  const fs::path reference = options.specs_dir / "targets" / "reference.yaml";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return base::fail("cannot create " + dir.string() + ": " + ec.message());
  if (auto written = pki::write_identity(builtin.ca, dir / "ca.crt", dir / "ca.key"); !written) return written.error();
  YAML::Emitter emitter;
  // yaml-cpp throws on a file it cannot read or parse; start_builtin has read this one already.
  try {
    YAML::Node profile = YAML::LoadFile(reference.string());
    fill_port(profile, std::to_string(builtin.port));
    // Looked up through a const view: yaml-cpp's non-const operator[] would add what is missing.
    const YAML::Node& view = profile;
    if (is_builtin(view["tls"]["ca"])) profile["tls"]["ca"] = "ca.crt";
    // The process that loads this profile runs no SCEP companion whose CA it could name.
    if (is_builtin(view["enrollment"])) profile.remove("enrollment");
    // ... nor a fake APNs.
    if (is_builtin(view["push"])) profile.remove("push");
    if (is_builtin(view["identity"]["issuer"])) {
      YAML::Node issuer;
      issuer["cert"] = "ca.crt";
      issuer["key"] = "ca.key";
      profile["identity"]["issuer"] = issuer;
    }
    emitter << profile;
  } catch (const YAML::Exception& e) {
    return base::fail(reference.string() + ": " + e.what());
  }
  const fs::path out = dir / "profile.yaml";
  const nlohmann::ordered_json record = {{"fault", server::fault_info(options.fault).name},
                                         {"seeded_bug", server::seeded_bug_info(options.seeded_bug).name}};
  if (auto written = base::write_file_atomically(out, std::string(emitter.c_str()) + "\n"); !written)
    return written.error();
  if (auto written = base::write_file_atomically(dir / "builtin.json", record.dump(2) + "\n"); !written) {
    return written.error();
  }
  return out;
}

std::optional<base::Result<BuiltinRecord>> read_builtin_record(const fs::path& profile_file) {
  const fs::path file = profile_file.parent_path() / "builtin.json";
  if (!fs::is_regular_file(file)) return std::nullopt;
  // A few dozen bytes when the harness wrote it.
  auto text = base::read_file_capped(file, 64 * 1024);
  const auto record = nlohmann::json::parse(text ? *text : std::string(), nullptr, /*allow_exceptions=*/false);
  auto name = [&](const char* key) {
    return record.is_object() && record.contains(key) && record[key].is_string() ? record[key].get<std::string>()
                                                                                 : std::string("none");
  };
  auto fault = server::fault_from_name(name("fault"));
  auto bug = server::seeded_bug_from_name(name("seeded_bug"));
  if (!fault || !bug)
    return base::Result<BuiltinRecord>(base::fail(file.string() + ": unknown fault mode or seeded bug"));
  return base::Result<BuiltinRecord>(BuiltinRecord{*fault, *bug});
}

}  // namespace mdmc::cli
