#include "harness/fuzz/detail/libfuzzer.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace mdmc::fuzz::detail {

std::optional<StatusLine> parse_status(std::string_view line) {
  if (line.size() < 2 || line[0] != '#' || line.find("cov:") == std::string_view::npos) return std::nullopt;
  StatusLine s;
  s.executions = std::strtoull(std::string(line.substr(1, 20)).c_str(), nullptr, 10);
  auto number_after = [&](std::string_view key) -> double {
    auto at = line.find(key);
    if (at == std::string_view::npos) return 0;
    at += key.size();
    while (at < line.size() && (line[at] == ':' || line[at] == ' ')) ++at;
    return std::strtod(std::string(line.substr(at, 24)).c_str(), nullptr);
  };
  s.exec_per_sec = number_after("exec/s");
  s.corpus = static_cast<std::uint64_t>(number_after("corp"));
  s.features = static_cast<std::uint64_t>(number_after("ft"));
  return s;
}

std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

// Everything the child needs is built before fork(): the parent has threads (the built-in
// server), and only async-signal-safe calls may follow fork().
base::Result<Child> spawn(const std::vector<std::string>& args, const std::vector<std::string>& env_add,
                          const std::filesystem::path& cwd) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("MDMC_FUZZ_")) continue;  // ours replace any inherited ones
    env_strings.emplace_back(entry);
  }
  env_strings.insert(env_strings.end(), env_add.begin(), env_add.end());
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::string cwd_string = cwd.string();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return base::fail(std::string("pipe: ") + std::strerror(errno));
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    if (devnull >= 0) close(devnull);
    return base::fail(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    if (chdir(cwd_string.c_str()) != 0) _exit(127);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: whichever runs first, the group exists before any kill
  close(pipe_fds[1]);
  if (devnull >= 0) close(devnull);
  return Child{pid, pipe_fds[0]};
}

}  // namespace mdmc::fuzz::detail
