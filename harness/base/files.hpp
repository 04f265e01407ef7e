#pragma once
// Whole-file reads with a size cap, and atomic writes: a wrong path (a disk image, /dev/zero)
// is never read whole, and an interrupted write never leaves half a file behind.
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "harness/base/result.hpp"

namespace mdmc::base {

// The bytes of a regular file, at most max_bytes of them; larger files, folders and devices are
// an error that names the path.
Result<std::string> read_file_capped(const std::filesystem::path& path, std::size_t max_bytes);

// Writes `contents` to a temporary file beside `path` (unnamed, O_TMPFILE, where the file system
// has it, so nothing partial survives a crash), with exactly `mode` whatever the umask, fsyncs
// it, renames it over `path` and fsyncs the folder. On failure `path` is untouched and the
// temporary file is gone. Test hook: with MDMC_TEST_CRASH_WRITING set to the file's name, the
// process aborts half-way through writing it.
Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view contents, mode_t mode = 0644);

}  // namespace mdmc::base
