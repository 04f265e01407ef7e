#pragma once
// report.json: the machine-readable record of a run, from which every other view can be made
// again. Written and read here; the exchanges in it use net's one JSON form of HTTP
// (net/exchange_json.hpp), shared with fuzzing findings.
#include <filesystem>
#include <string>
#include <string_view>

#include "harness/base/result.hpp"
#include "harness/scenario/result.hpp"

namespace mdmc::report {

// The current layout of report.json; from_json_text refuses any other.
inline constexpr int kSchemaVersion = 1;

// report.json: pretty-printed (2-space indent), keys in a fixed order. Wire bytes (bodies,
// header names and values, reason phrase, method, URL) that are not valid UTF-8 are written as
// {"base64": "..."} instead of a string, so they survive exactly; other free text (reasons,
// expected/actual, labels) has invalid UTF-8 replaced by U+FFFD. The seed is a string of decimal
// digits, so that JavaScript readers do not round it. Never throws on what the target sent.
std::string to_json_text(const scenario::RunResult& run);

// Reads report.json back. On malformed input the error names the JSON path and what was wrong
// ("cases[2].verdict: unknown verdict \"ok\""). The "counts" object is derived data and is not
// read back. Transcript times keep microseconds.
base::Result<scenario::RunResult> from_json_text(std::string_view text);

// Reads report.json from a file (at most kMaxRecordBytes); the error names the file and what
// was wrong.
base::Result<scenario::RunResult> read_run_file(const std::filesystem::path& path);

// No record the harness writes comes near this (a full suite is a few MiB): a wrong path
// (a disk image, /dev/zero) is refused rather than read whole.
inline constexpr std::size_t kMaxRecordBytes = 512ull * 1024 * 1024;

}  // namespace mdmc::report
