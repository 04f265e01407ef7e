#include "harness/pki/detail/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <system_error>

namespace mdmc::pki::detail {
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
// rest; a collision just moves on to the next candidate.
std::string temporary_name(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".tmp.%ld.%u.%llx", static_cast<long>(::getpid()),
                counter.fetch_add(1), static_cast<unsigned long long>(now));
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

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Failure{path.string() + ": " + errno_text(errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Failure{path.string() + ": " + errno_text(errno)};
  if (!S_ISREG(st.st_mode)) return Failure{path.string() + ": not a regular file"};
  if (static_cast<unsigned long long>(st.st_size) > max_bytes) {
    return Failure{path.string() + ": larger than " + std::to_string(max_bytes) + " bytes"};
  }
  std::string out;
  char buffer[16 * 1024];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Failure{path.string() + ": " + errno_text(errno)};
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    // The file may grow between fstat and here.
    if (out.size() > max_bytes) {
      return Failure{path.string() + ": larger than " + std::to_string(max_bytes) + " bytes"};
    }
  }
  return out;
}

bool write_file_atomic(const std::filesystem::path& path, std::string_view contents, mode_t mode,
                       std::string* error) {
  auto failed = [error](std::string message) {
    if (error != nullptr) *error = std::move(message);
    return false;
  };
  if (!path.has_filename()) return failed(path.string() + ": not a file name");
  std::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";

  std::filesystem::path temporary;
  int raw_fd = -1;
  // Eight tries: a collision needs another writer with our pid, counter and clock reading.
  for (int attempt = 0; attempt < 8 && raw_fd < 0; ++attempt) {
    temporary = folder / temporary_name(path);
    raw_fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (raw_fd < 0 && errno != EEXIST) {
      return failed("create " + temporary.string() + ": " + errno_text(errno));
    }
  }
  if (raw_fd < 0) return failed("create a temporary file in " + folder.string() + ": name clash");
  Fd fd(raw_fd);
  auto discard = [&](std::string message) {
    ::unlink(temporary.c_str());
    return failed(std::move(message));
  };
  // open() applies the umask, which can only narrow `mode`; fchmod makes it exact (0644 stays
  // 0644 under umask 027) and never widens a secret beyond what the caller asked.
  if (::fchmod(fd.get(), mode) != 0) return discard("chmod " + temporary.string() + ": " + errno_text(errno));
  if (!write_all(fd.get(), contents)) return discard("write " + temporary.string() + ": " + errno_text(errno));
  if (::fsync(fd.get()) != 0) return discard("fsync " + temporary.string() + ": " + errno_text(errno));
  if (fd.close() != 0) return discard("close " + temporary.string() + ": " + errno_text(errno));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return discard("rename " + temporary.string() + " to " + path.string() + ": " + errno_text(errno));
  }
  // The rename is durable only once the folder is synced. The file itself is complete, so a
  // failure here is reported but the file stays.
  Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    return failed("fsync folder " + folder.string() + ": " + errno_text(errno));
  }
  return true;
}

}  // namespace mdmc::pki::detail
