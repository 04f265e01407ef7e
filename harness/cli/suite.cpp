#include "harness/cli/suite.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include "harness/pki/pki.hpp"
#include "harness/server/reference_server.hpp"

namespace mdmc::cli {
namespace {

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

SuiteOutcome& fail(SuiteOutcome& out, int code, std::string message) {
  out.exit_code = code;
  out.message = std::move(message);
  return out;
}

bool selected(const std::string& id, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes) {
    if (id.rfind(p, 0) == 0) return true;
  }
  return false;
}

}  // namespace

server::IdentityMode server_identity_mode(scenario::IdentityMode mode) {
  switch (mode) {
    case scenario::IdentityMode::none: return server::IdentityMode::none;
    case scenario::IdentityMode::mtls: return server::IdentityMode::mtls;
    case scenario::IdentityMode::signature: return server::IdentityMode::signature;
    case scenario::IdentityMode::both: return server::IdentityMode::both;
  }
  return server::IdentityMode::none;
}

std::filesystem::path default_specs_dir() {
  std::error_code ec;
  if (std::filesystem::exists("specs/rules.yaml", ec)) return "specs";
  return std::filesystem::path(MDMC_SOURCE_DIR) / "specs";
}

SuiteOutcome run_suite(const SuiteOptions& options) {
  SuiteOutcome out;
  try {
    auto rules = scenario::load_rules(options.specs_dir / "rules.yaml");
    auto all = scenario::load_suite(options.specs_dir / "scenarios", rules);
    std::vector<scenario::Case> cases;
    std::string suite_bytes = file_bytes(options.specs_dir / "rules.yaml");
    for (auto& c : all) {
      if (!selected(c.id, options.selection)) continue;
      suite_bytes += c.id + "\n" + file_bytes(c.file);
      cases.push_back(std::move(c));
    }
    if (cases.empty()) {
      out.exit_code = 2;
      out.message = fmt::format("no case matches {}", fmt::join(options.selection, ", "));
      return out;
    }

    std::unique_ptr<server::ReferenceServer> builtin;
    scenario::TargetProfile profile;
    if (options.target) {
      profile = scenario::load_profile(*options.target);
    } else {
      auto file = options.specs_dir / "targets" / "reference.yaml";
      // A fresh test CA for each run: it issues the server's certificate and every device's.
      auto ca = pki::create_test_ca("mdmconform reference CA");
      if (!ca) return fail(out, 2, "could not create the test CA: " + ca.error());
      auto server_identity = pki::issue_server_identity(*ca, {"127.0.0.1", "localhost"});
      if (!server_identity) return fail(out, 2, "could not issue the server certificate: " + server_identity.error());
      // The server's policy comes from the profile, and the profile's URLs from the server's
      // port: read the policy first, with a port that is never used.
      auto policy = scenario::load_profile(file, scenario::BuiltinTarget{1, *ca});
      if (options.identity_mode) policy.identity.mode = *options.identity_mode;
      server::Config config;
      config.fault = options.builtin_fault;
      config.identity_mode = server_identity_mode(policy.identity.mode);
      config.client_ca_pem = ca->cert_pem;
      config.managed_network_users.insert(policy.managed_network_users.begin(), policy.managed_network_users.end());
      std::optional<net::ServerTls> tls;
      if (net::parse_url(policy.server_url)->scheme == "https") {
        tls = net::ServerTls{server_identity->cert_pem + ca->cert_pem, server_identity->key_pem, ca->cert_pem, false};
      }
      builtin = std::make_unique<server::ReferenceServer>(config, tls);
      std::string error;
      auto port = builtin->listen("127.0.0.1", 0, &error);
      if (port == 0) return fail(out, 3, "the built-in reference server could not listen on 127.0.0.1: " + error);
      builtin->start();
      profile = scenario::load_profile(file, scenario::BuiltinTarget{port, *ca});
    }
    if (options.identity_mode) profile.identity.mode = *options.identity_mode;

    if (auto unreachable = scenario::probe_reachable(profile)) {
      out.exit_code = 3;
      out.message = "target unreachable: " + *unreachable;
      return out;
    }
    auto started_at = now_rfc3339();
    out.run = scenario::run_suite(cases, profile, rules, {options.seed, options.on_case, options.stop});
    out.run.started_at = started_at;
    out.run.suite_digest = scenario::sha256_hex(suite_bytes);
    if (builtin) out.run.builtin_fault = std::string(server::fault_info(options.builtin_fault).name);
    out.run.identity_mode = std::string(scenario::identity_mode_name(profile.identity.mode));
    if (profile.tls.insecure) {
      out.run.notes.push_back("TLS verification was off (tls.insecure in the profile): the server's certificate was not checked");
    }
    out.exit_code = scenario::exit_code_for(out.run);
  } catch (const scenario::LoadError& e) {
    out.exit_code = 2;
    out.message = e.what();
  }
  return out;
}

}  // namespace mdmc::cli
