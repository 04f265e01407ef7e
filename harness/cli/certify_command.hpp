#pragma once
// `mdmconform certify` and `mdmconform verify` on the command line. certify runs the whole
// catalog against a target profile as it is (no selection, no overrides), writes the usual
// report, then certification.json and its detached signature beside it, and report.html again
// with the certification's status; verify checks such a record. The record and its checks are
// harness/certify's; this file parses flags and says what happened. docs/certification.md.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/report/progress.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace mdmc::cli {

struct CertifyOptions {
  std::filesystem::path specs_dir;
  // Absent: the built-in reference server, recorded as such (for demonstrations and tests: it
  // certifies the harness's own server, not one under test).
  std::optional<std::filesystem::path> target;
  std::filesystem::path cert;                // the certifier's certificate, PEM (intermediates may follow)
  std::filesystem::path key;                 // its private key, PEM, unencrypted
  std::optional<std::filesystem::path> out;  // the report folder; default reports/<time>-<target>
  std::uint64_t seed = 0;
  int jobs = 1;
  int confirm = 2;
  bool strict = false;  // a should-level break fails the certification (docs/verdicts.md)
  report::Verbosity verbosity = report::Verbosity::normal;
  const std::atomic<bool>* stop = nullptr;  // SIGINT/SIGTERM: the run stops, and is incomplete
};

// The exit code is `run`'s, from the overall verdict (scenario::assess); 2, before any case runs,
// for a key that does not match its certificate, a profile that does not load or that a
// certification cannot rest on (tls.insecure, plain HTTP), a catalog without its seed article;
// 2 too when the report or the record cannot be written; 3 when the target is unreachable.
int run_certify(const CertifyOptions& options);

struct VerifyOptions {
  std::filesystem::path record;                 // certification.json, or the folder that holds it
  std::filesystem::path ca;                     // the CA (PEM) a certifier's chain must reach
  std::optional<std::filesystem::path> report;  // default: report.json beside the record
  std::filesystem::path specs_dir;              // this build's catalog, for the suite digest
};

// 0 and "valid: <verdict> for <target> signed by <subject>"; 1 and "invalid: <reason>"; 2 when
// a file cannot be read or the catalog does not load.
int run_verify(const VerifyOptions& options);

// `certify` and `verify` on the command line: registered before parsing; dispatch() runs the one
// chosen (nothing when neither was).
class CertifyCommands {
 public:
  explicit CertifyCommands(CLI::App& app);
  std::optional<int> dispatch(const std::filesystem::path& specs_dir);

 private:
  CLI::App* certify_ = nullptr;
  CLI::App* verify_ = nullptr;
  CertifyOptions certify_options_;
  VerifyOptions verify_options_;
  std::optional<std::uint64_t> seed_;
  bool quiet_ = false;
  bool verbose_ = false;
  // What `run` takes and a certification refuses: each one given is a usage error that says why.
  std::vector<std::string> refused_values_;
  std::vector<CLI::Option*> selection_;  // case ids, --tag, --level, --exclude
  std::vector<CLI::Option*> overrides_;  // --fault, --seeded-bug, --identity-mode
};

}  // namespace mdmc::cli
