#pragma once
// Whole-file reads with a size cap and atomic writes with a fixed mode. Private to harness/pki.
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "harness/pki/pki.hpp"

namespace mdmc::pki::detail {

// Certificates, keys and PKCS#12 files are a few KiB; a cap keeps a wrong path (a disk image,
// /dev/zero) from being read whole.
inline constexpr std::size_t kMaxCredentialFileBytes = 1024 * 1024;

// The bytes of a regular file, at most max_bytes of them.
Result<std::string> read_file(const std::filesystem::path& path,
                              std::size_t max_bytes = kMaxCredentialFileBytes);

// Writes `contents` to a temporary file next to `path` created O_CREAT|O_EXCL with `mode` (and
// set to exactly `mode` whatever the umask), fsyncs it, renames it over `path` and fsyncs the
// folder. The file never exists with wider permissions, and the temporary file is removed on
// every failure.
bool write_file_atomic(const std::filesystem::path& path, std::string_view contents, mode_t mode,
                       std::string* error);

}  // namespace mdmc::pki::detail
