#include "harness/base/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

namespace mdmc::base {
namespace {

std::string errno_text(int code) { return std::generic_category().message(code); }

// Closes a descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports the result: a failed close can mean lost data.
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// A name no other writer uses: pid, a per-process counter and the clock. O_EXCL catches the
// rest; a collision moves on to the next candidate.
std::string temporary_name(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".tmp.%ld.%u.%llx", static_cast<long>(::getpid()), counter.fetch_add(1),
                static_cast<unsigned long long>(now));
  return "." + target.filename().string() + suffix;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

Result<std::string> read_file_capped(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return fail(path.string() + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(path.string() + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fail(path.string() + ": not a regular file");
  auto too_large = [&] { return fail(path.string() + ": larger than " + std::to_string(max_bytes) + " bytes"); };
  if (static_cast<unsigned long long>(st.st_size) > max_bytes) return too_large();
  std::string out;
  char buffer[16 * 1024];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(path.string() + ": " + errno_text(errno));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    // The file may grow between fstat and here.
    if (out.size() > max_bytes) return too_large();
  }
  return out;
}

Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view contents, mode_t mode) {
  if (!path.has_filename()) return fail(path.string() + ": not a file path");
  std::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";

  // An unnamed file (O_TMPFILE) vanishes if the harness dies while writing it: nothing partial
  // is ever left behind. It gets a name only once complete, just before the rename. File
  // systems without O_TMPFILE get a named temporary file, created O_EXCL.
  std::filesystem::path temporary = folder / temporary_name(path);
  int raw_fd = ::open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  const bool unnamed = raw_fd >= 0;
  // Eight tries: a collision needs another writer with our pid, counter and clock reading.
  for (int attempt = 0; attempt < 8 && raw_fd < 0; ++attempt) {
    if (attempt > 0) temporary = folder / temporary_name(path);
    raw_fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (raw_fd < 0 && errno != EEXIST) return fail(temporary.string() + ": create: " + errno_text(errno));
  }
  if (raw_fd < 0) return fail("create a temporary file in " + folder.string() + ": name clash");
  Fd fd(raw_fd);
  auto discard = [&](const std::string& step, int err) {
    if (!unnamed) ::unlink(temporary.c_str());
    return fail(path.string() + ": " + step + ": " + errno_text(err));
  };
  // open() applies the umask, which can only narrow `mode`; fchmod makes it exact (0644 stays
  // 0644 under umask 027) and never widens a secret beyond what the caller asked.
  if (::fchmod(fd.get(), mode) != 0) return discard("chmod", errno);
  // Test hook: the crash test makes the harness die half-way through writing this file.
  if (const char* crash = std::getenv("MDMC_TEST_CRASH_WRITING"); crash && path.filename() == crash) {
    (void)write_all(fd.get(), contents.substr(0, contents.size() / 2));
    std::abort();
  }
  if (!write_all(fd.get(), contents)) return discard("write", errno);
  if (::fsync(fd.get()) != 0) return discard("fsync", errno);
  if (unnamed) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temporary.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return discard("link", errno);
    }
  }
  if (fd.close() != 0) {
    const int err = errno;
    ::unlink(temporary.c_str());
    return fail(path.string() + ": close: " + errno_text(err));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temporary.c_str());
    return fail(path.string() + ": rename: " + errno_text(err));
  }
  // Make the rename itself durable. Best effort: some file systems refuse fsync on a folder,
  // and the new contents are in place either way.
  Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) (void)::fsync(dir.get());
  return Ok{};
}

}  // namespace mdmc::base
