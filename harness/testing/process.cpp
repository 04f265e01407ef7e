#include "harness/testing/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>
#include <utility>

extern char** environ;

namespace mdmc::testing {
namespace {

using Clock = std::chrono::steady_clock;

// How often a wait looks again: small against every deadline the tests set (seconds).
constexpr auto kPollStep = std::chrono::milliseconds(10);

// This process's environment with `overrides` ("NAME=value") put in place of same-named entries.
std::vector<std::string> environment_with(const std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  auto name_of = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    bool replaced = false;
    for (const auto& o : overrides) replaced = replaced || name_of(o) == name_of(entry);
    if (!replaced) out.push_back(std::move(entry));
  }
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

std::vector<char*> pointers_to(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (auto& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

std::string read_whole(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

struct Process::State {
  pid_t pid = -1;
  std::filesystem::path output_file;
  Clock::time_point started;
  std::optional<Exit> exit;

  // The pipes, read on a thread of their own so that a child that prints a lot never blocks
  // on a full pipe while the test waits for it.
  int out_fd = -1;
  int err_fd = -1;
  mutable std::mutex mutex;
  std::string out;
  std::string err;
  std::atomic<bool> drain_and_stop{false};
  std::thread reader;

  void read_pipes() {
    // err_fd is -1 when stderr is merged: poll skips a negative descriptor, and so does this
    // loop once a pipe is at its end.
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    char buf[4096];
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
      const bool draining = drain_and_stop.load();
      // While the child runs: short polls, so that a stop request is seen promptly. Once it has
      // been reaped everything it wrote is already in the pipe: read what is there, no more
      // (a grandchild may hold the pipe open for longer).
      const int ready = ::poll(fds, 2, draining ? 0 : 50);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0 || (ready == 0 && draining)) return;
      for (auto& p : fds) {
        if (p.fd < 0 || p.revents == 0) continue;
        const auto n = ::read(p.fd, buf, sizeof buf);
        if (n > 0) {
          std::lock_guard lock(mutex);
          (&p == &fds[0] ? out : err).append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          p.fd = -1;  // end of file, or an error: this pipe is done
        }
      }
    }
  }

  // Reaps the process if it has ended; true when it has (now or before).
  bool try_reap() {
    if (exit) return true;
    int status = 0;
    rusage usage{};
    const pid_t done = ::wait4(pid, &status, WNOHANG, &usage);
    if (done == 0 || (done < 0 && errno == EINTR)) return false;
    Exit e;
    e.wall = Clock::now() - started;
    if (done > 0) {
      e.peak_rss_kb = usage.ru_maxrss;  // kilobytes on Linux
      if (WIFEXITED(status)) {
        e.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        e.signal = WTERMSIG(status);
        e.exit_code = 128 + e.signal;
      }
    }
    exit = e;
    stop_reader();
    return true;
  }

  void stop_reader() {
    drain_and_stop = true;
    if (reader.joinable()) reader.join();
  }

  ~State() {
    if (pid > 0 && !exit) {
      // The whole group: a child's own children (a browser, a fuzzer) go with it.
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    stop_reader();
    for (int fd : {out_fd, err_fd}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

base::Result<Process> Process::spawn(std::vector<std::string> argv, ProcessOptions options) {
  if (argv.empty()) return base::fail("no program to run");
  auto state = std::make_unique<State>();
  state->output_file = options.output_file;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  auto close_pipes = [&] {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (!options.output_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, options.output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  } else {
    // O_CLOEXEC: the child keeps only the ends dup2 gives it, and no other spawn inherits them.
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || (!options.merge_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0)) {
      const std::string reason = std::strerror(errno);
      close_pipes();
      posix_spawn_file_actions_destroy(&actions);
      return base::fail("pipe: " + reason);
    }
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, options.merge_stderr ? out_pipe[1] : err_pipe[1], STDERR_FILENO);
  }
  // A group of its own, so that a kill on timeout reaches whatever it started too.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);

  auto env = environment_with(options.env);
  auto envp = pointers_to(env);
  auto args = pointers_to(argv);
  state->started = Clock::now();
  const int spawned = ::posix_spawnp(&state->pid, args[0], &actions, &attributes, args.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    state->pid = -1;
    close_pipes();
    return base::fail("cannot run " + argv[0] + ": " + std::strerror(spawned));
  }
  if (options.output_file.empty()) {
    ::close(out_pipe[1]);
    if (err_pipe[1] >= 0) ::close(err_pipe[1]);
    state->out_fd = out_pipe[0];
    state->err_fd = err_pipe[0];
    state->reader = std::thread([s = state.get()] { s->read_pipes(); });
  }
  return Process(std::move(state));
}

Process::Process(std::unique_ptr<State> state) : state_(std::move(state)) {}
Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;
Process::~Process() = default;

pid_t Process::pid() const { return state_->pid; }

bool Process::signal(int signal) {
  if (state_->exit) return false;
  return ::kill(state_->pid, signal) == 0;
}

std::string Process::output() const {
  if (!state_->output_file.empty()) return read_whole(state_->output_file);
  std::lock_guard lock(state_->mutex);
  return state_->out;
}

std::string Process::error_output() const {
  std::lock_guard lock(state_->mutex);
  return state_->err;
}

bool Process::wait_for_output(std::string_view text, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (output().find(text) != std::string::npos) return true;
    if (Clock::now() >= deadline || state_->try_reap()) return output().find(text) != std::string::npos;
    std::this_thread::sleep_for(kPollStep);
  }
}

std::optional<Exit> Process::wait_for(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!state_->try_reap()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollStep);
  }
  return state_->exit;
}

Exit Process::wait_or_kill(std::chrono::milliseconds limit) {
  if (auto done = wait_for(limit)) return *done;
  ::kill(-state_->pid, SIGKILL);
  ::kill(state_->pid, SIGKILL);
  // SIGKILL cannot be caught: the wait is short, but bounded all the same.
  auto killed = wait_for(std::chrono::seconds(10));
  Exit e = killed ? *killed : Exit{};
  e.timed_out = true;
  return e;
}

Ran run_process(std::vector<std::string> argv, std::chrono::milliseconds limit, ProcessOptions options) {
  Ran ran;
  auto process = Process::spawn(std::move(argv), std::move(options));
  if (!process) {
    ran.output = process.error().text();
    return ran;
  }
  static_cast<Exit&>(ran) = process->wait_or_kill(limit);
  ran.output = process->output();
  ran.error_output = process->error_output();
  return ran;
}

Ran run_shell(const std::string& command, std::chrono::milliseconds limit, ProcessOptions options) {
  return run_process({"/bin/sh", "-c", command}, limit, std::move(options));
}

}  // namespace mdmc::testing
