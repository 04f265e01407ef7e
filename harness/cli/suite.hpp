#pragma once
// What `mdmconform run` does, as a function the end-to-end tests call too: find the specs,
// start the built-in reference server when no target is given, load and select the suite,
// run it.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/runner.hpp"
#include "harness/server/mdm_service.hpp"

namespace mdmc::cli {

struct SuiteOptions {
  std::filesystem::path specs_dir;             // holds rules.yaml, scenarios/, targets/
  std::optional<std::filesystem::path> target; // absent: the built-in reference server
  server::Fault builtin_fault = server::Fault::none;
  // Overrides the profile's identity mode (the mutation self-test runs every mode).
  std::optional<scenario::IdentityMode> identity_mode;
  std::vector<std::string> selection;          // case id prefixes; empty: all
  std::uint64_t seed = 0;
  std::function<void(const scenario::CaseResult&)> on_case;
  const std::atomic<bool>* stop = nullptr;  // see scenario::RunOptions::stop
};

struct SuiteOutcome {
  scenario::RunResult run;
  int exit_code = 0;       // DESIGN.md's codes: 0, 1, 2 (configuration), 3 (unreachable)
  std::string message;     // for exit codes 2 and 3: what went wrong, in words
};

server::IdentityMode server_identity_mode(scenario::IdentityMode mode);

// The specs folder: ./specs when it holds rules.yaml, else the one in the source tree.
std::filesystem::path default_specs_dir();

// Never throws: configuration errors come back as exit code 2 with file and line.
SuiteOutcome run_suite(const SuiteOptions& options);

}  // namespace mdmc::cli
