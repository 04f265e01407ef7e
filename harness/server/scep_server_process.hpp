#pragma once
// The reference server's SCEP companion: Debian's `scepserver` (package scep, micromdm/scep
// 2.1.0) run as a child process for as long as this object lives, with a fresh CA in a private
// temporary folder, a random free port and a random challenge. The enrollment profile of the
// reference server names it, so that devices get their identity as a Mac does.
//
// scepserver has no flag for the address it binds: it listens on every interface, on its port.
// It is reached (and checked) on 127.0.0.1 only, it issues certificates only for the challenge,
// and it lives only as long as the run, or this process: a shell watches a pipe from this
// process and kills it when the pipe closes (docs/reference-server.md#the-scep-companion).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>

#include "harness/base/result.hpp"

namespace mdmc::server {

enum class ScepServerError {
  not_installed = 1,  // no `scepserver` on PATH: the caller goes on without one
  failed,             // it is installed but did not start, or did not answer in time
};
std::error_code make_error_code(ScepServerError e);

struct ScepServerOptions {
  std::string program = "scepserver";            // a name looked up on PATH, or a path
  std::chrono::milliseconds ready_within{5000};  // from spawn to its first GetCACaps answer
};

// The scepserver `program` names: itself when it holds a '/', else the first executable of that
// name on PATH; nothing when there is none.
std::optional<std::filesystem::path> find_scepserver(const std::string& program = "scepserver");

class ScepServerProcess {
 public:
  // Creates the CA (`scepserver ca -init`), starts `scepserver -depot D -port P -challenge C
  // -allowrenew 0` on a free port, and waits until GetCACaps on 127.0.0.1 answers.
  // ScepServerError::not_installed when there is no scepserver; ScepServerError::failed, with
  // the end of its log, when it does not come up.
  static base::Result<std::unique_ptr<ScepServerProcess>> start(const ScepServerOptions& options = {});

  // Kills its process group, reaps it and removes the temporary folder.
  ~ScepServerProcess();
  ScepServerProcess(const ScepServerProcess&) = delete;
  ScepServerProcess& operator=(const ScepServerProcess&) = delete;

  const std::string& url() const { return url_; }  // "http://127.0.0.1:PORT/scep"
  const std::string& challenge() const { return challenge_; }
  const std::string& ca_pem() const { return ca_pem_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }  // of the shell that watches it (kWatchdogScript), its group's leader
  const std::filesystem::path& folder() const { return folder_; }  // the depot and the log
  // From spawning `ca -init` to the first GetCACaps answer.
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  // The last lines of its log (stdout and stderr), for error messages.
  std::string log_tail() const;

 private:
  ScepServerProcess() = default;
  void stop();  // kills and reaps the group, if it runs

  std::filesystem::path folder_;
  pid_t pid_ = -1;
  int watch_fd_ = -1;  // the watchdog pipe's write end: closing it stops scepserver
  std::uint16_t port_ = 0;
  std::string url_;
  std::string challenge_;
  std::string ca_pem_;
  std::chrono::milliseconds startup_time_{0};
};

}  // namespace mdmc::server

template <>
struct std::is_error_code_enum<mdmc::server::ScepServerError> : std::true_type {};
