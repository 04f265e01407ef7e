#include "harness/server/scep_server_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "harness/base/bytes.hpp"
#include "harness/base/files.hpp"
#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"

extern char** environ;

namespace mdmc::server {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Ports tried: another process may take the free port found between the probe and scepserver's
// own bind (it then exits at once, "address already in use").
constexpr int kPortAttempts = 3;
// `ca -init` takes about 0.1 s (a 2048-bit RSA key); this is for a loaded machine.
constexpr milliseconds kInitWithin{20000};
constexpr milliseconds kPollStep{20};
// From closing the watchdog pipe to the shell's exit: a few milliseconds when all is well.
constexpr milliseconds kStopWithin{2000};
// The most of the log's end read back into an error message.
constexpr std::size_t kLogTailBytes = 1500;

class ScepServerCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "server.scep"; }
  std::string message(int ev) const override {
    return static_cast<ScepServerError>(ev) == ScepServerError::not_installed ? "not installed" : "failed";
  }
};

base::Error failed(std::string message) { return base::Error{std::move(message), ScepServerError::failed}; }

// This process's environment without SCEP_* variables, which scepserver would read as settings.
std::vector<std::string> child_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::string_view(*e).substr(0, 5) != "SCEP_") out.emplace_back(*e);
  }
  return out;
}

std::vector<char*> pointers_to(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (auto& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

// `sh -c` this with the temporary folder and then scepserver and its flags: runs scepserver and
// kills it when its stdin, a pipe whose only writer is this process, reaches its end. So when
// this process ends, however it ends (SIGKILL, a crash), a server listening on every interface
// does not outlive it, and its folder (the CA's key) goes too. It exits with scepserver's
// status, so an early exit (a port taken) is seen as before, and the folder then stays for the
// next attempt; 137 is SIGKILL from the watcher. (In a shell without job control a background
// command's stdin is /dev/null: the watcher reads the pipe as fd 3.)
constexpr std::string_view kWatchdogScript =
    "folder=$1; shift; exec 3<&0; \"$@\" </dev/null & child=$!; "
    "(read _ <&3; kill -9 $child 2>/dev/null) </dev/null & watcher=$!; "
    "wait $child; status=$?; kill -9 $watcher 2>/dev/null; wait $watcher; "
    "if [ $status -eq 137 ]; then rm -rf \"$folder\"; fi; exit $status";

// Starts argv (argv[0] a path) in a process group of its own, stdout and stderr appended to
// `log`, stdin from `stdin_fd` (-1: /dev/null). posix_spawn, not fork: the caller has server
// threads running.
base::Result<pid_t> spawn(std::vector<std::string> argv, const fs::path& log, int stdin_fd = -1) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own group, so that killing the group reaches whatever it starts too; and no signal
  // blocked, whatever the caller blocks (`serve` takes SIGTERM by sigwait), so that it can be.
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  auto env = child_environment();
  auto envp = pointers_to(env);
  auto args = pointers_to(argv);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, args[0], &actions, &attributes, args.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return failed("cannot run " + argv[0] + ": " + std::strerror(spawned));
  return pid;
}

// Reaps `pid` if it has ended: its exit status (128 + N for signal N), or nothing while it runs.
std::optional<int> reap_if_ended(pid_t pid) {
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {}
  if (done == 0) return std::nullopt;
  if (done < 0) return -1;  // not our child any more: gone all the same
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  // SIGKILL cannot be caught or ignored: the wait ends.
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

// Waits up to `limit` for `pid` to end; its status, or nothing when it still runs (left running).
std::optional<int> wait_for_exit(pid_t pid, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (auto status = reap_if_ended(pid)) return status;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollStep);
  }
}

std::string random_hex(std::size_t bytes) {
  std::random_device device;
  std::string raw;
  for (std::size_t i = 0; i < bytes; ++i) raw += static_cast<char>(device() & 0xff);
  return base::hex_encode(raw);
}

// A port free on every interface (scepserver binds them all): bound, read and let go.
base::Result<std::uint16_t> free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failed(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = 0;
  socklen_t size = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  const std::string reason = bound ? "" : std::strerror(errno);
  ::close(fd);
  if (!bound) return failed("cannot find a free port: " + reason);
  return ntohs(address.sin_port);
}

// True when GetCACaps on 127.0.0.1 answers 200.
bool answers_ca_caps(const std::string& scep_url) {
  net::ClientLimits limits;
  limits.connect_timeout = milliseconds(250);
  limits.write_timeout = milliseconds(500);
  limits.header_timeout = milliseconds(1000);
  limits.body_timeout = milliseconds(1000);
  limits.max_body_bytes = 64 * 1024;
  limits.max_redirects = 0;
  net::HttpClient client(limits);
  auto exchange = client.send(net::Request{"GET", scep_url + "?operation=GetCACaps", {}, ""});
  return exchange.ok() && exchange.response->status == 200;
}

std::string tail_of(const fs::path& log) {
  std::ifstream in(log, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > static_cast<std::streamoff>(kLogTailBytes) ? size - kLogTailBytes : 0;
  in.seekg(from);
  std::string text(static_cast<std::size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::error_code make_error_code(ScepServerError e) {
  static const ScepServerCategory category;
  return {static_cast<int>(e), category};
}

std::optional<fs::path> find_scepserver(const std::string& program) {
  auto executable = [](const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    return executable(program) ? std::optional<fs::path>(program) : std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const auto dir = dirs.substr(0, colon);
    const fs::path candidate = fs::path(dir.empty() ? "." : std::string(dir)) / program;
    if (executable(candidate)) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

base::Result<std::unique_ptr<ScepServerProcess>> ScepServerProcess::start(const ScepServerOptions& options) {
  using Out = base::Result<std::unique_ptr<ScepServerProcess>>;
  const auto program = find_scepserver(options.program);
  if (!program) {
    return Out(ScepServerError::not_installed,
               options.program + " is not installed (Debian package scep), or not on PATH");
  }
  const auto began = Clock::now();
  std::unique_ptr<ScepServerProcess> out(new ScepServerProcess());
  // A private folder (0700) for the CA's key, the depot and the log; removed by the destructor.
  std::error_code ec;
  std::string pattern = (fs::temp_directory_path(ec) / "mdmconform-scep.XXXXXX").string();
  if (ec) pattern = "/tmp/mdmconform-scep.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return Out(failed("mkdtemp " + pattern + ": " + std::strerror(errno)));
  out->folder_ = pattern;
  const fs::path depot = out->folder_ / "depot";
  const fs::path log = out->folder_ / "scepserver.log";
  auto failure = [&](const std::string& what) {
    const auto tail = out->log_tail();
    return Out(failed(what + (tail.empty() ? std::string() : "; its log ends: " + tail)));
  };

  auto init = spawn({program->string(), "ca", "-init", "-depot", depot.string(), "-keySize", "2048", "-years", "1",
                     "-organization", "mdmconform-scep"},
                    log);
  if (!init) return Out(init.error());
  auto init_status = wait_for_exit(*init, kInitWithin);
  if (!init_status) {
    kill_and_reap(*init);
    return failure(fmt::format("scepserver ca -init did not finish in {} ms", kInitWithin.count()));
  }
  if (*init_status != 0) return failure(fmt::format("scepserver ca -init exited with {}", *init_status));
  auto ca = base::read_file_capped(depot / "ca.pem", 64 * 1024);
  if (!ca) return failure("cannot read the SCEP CA: " + ca.message());
  if (auto count = pki::count_certificates(*ca); !count || *count != 1) {
    return failure("the SCEP CA in " + (depot / "ca.pem").string() + " is not one PEM certificate");
  }
  out->ca_pem_ = *std::move(ca);
  out->challenge_ = random_hex(16);

  for (int attempt = 1; attempt <= kPortAttempts; ++attempt) {
    auto port = free_port();
    if (!port) return Out(port.error());
    out->port_ = *port;
    out->url_ = fmt::format("http://127.0.0.1:{}/scep", out->port_);
    // -allowrenew 0: a device that enrolls again with the same subject gets a new certificate
    // (the default refuses a subject it has issued for until 14 days before that one expires).
    int watch[2] = {-1, -1};
    if (::pipe2(watch, O_CLOEXEC) != 0) return Out(failed(std::string("pipe: ") + std::strerror(errno)));
    auto server = spawn({"/bin/sh", "-c", std::string(kWatchdogScript), "scepserver", out->folder_.string(),
                         program->string(), "-depot", depot.string(), "-port", std::to_string(out->port_), "-challenge",
                         out->challenge_, "-allowrenew", "0"},
                        log, watch[0]);
    ::close(watch[0]);
    if (!server) {
      ::close(watch[1]);
      return Out(server.error());
    }
    out->pid_ = *server;
    out->watch_fd_ = watch[1];
    const auto deadline = Clock::now() + options.ready_within;
    std::optional<int> ended;
    while (!(ended = reap_if_ended(out->pid_))) {
      if (answers_ca_caps(out->url_)) {
        out->startup_time_ = std::chrono::duration_cast<milliseconds>(Clock::now() - began);
        return Out(std::move(out));
      }
      if (Clock::now() >= deadline) {
        const auto tail = out->log_tail();  // before stop(): the shell then removes the folder
        out->stop();
        return Out(failed(fmt::format("scepserver did not answer GetCACaps on {} within {} ms{}", out->url_,
                                      options.ready_within.count(),
                                      tail.empty() ? std::string() : "; its log ends: " + tail)));
      }
      std::this_thread::sleep_for(kPollStep);
    }
    out->pid_ = -1;  // reaped already: its pid may be another process's by now
    out->stop();
    const bool port_taken = out->log_tail().find("address already in use") != std::string::npos;
    if (!port_taken || attempt == kPortAttempts) {
      return failure(fmt::format("scepserver exited with {} before it answered", *ended));
    }
  }
  return failure("scepserver did not start");
}

void ScepServerProcess::stop() {
  // Closing the pipe has the shell kill scepserver and reap it and the watcher, then exit: every
  // process of the group is reaped by its parent. The group is killed only if that stalls.
  if (watch_fd_ >= 0) ::close(watch_fd_);
  watch_fd_ = -1;
  if (pid_ > 0 && !wait_for_exit(pid_, kStopWithin)) kill_and_reap(pid_);
  pid_ = -1;
}

ScepServerProcess::~ScepServerProcess() {
  stop();
  if (!folder_.empty()) {
    // The CA's files are read-only (0400): the folder's own mode lets them be unlinked.
    std::error_code ec;
    fs::remove_all(folder_, ec);
  }
}

std::string ScepServerProcess::log_tail() const { return tail_of(folder_ / "scepserver.log"); }

}  // namespace mdmc::server
