#pragma once
// The fuzz module's parses of inputs, kept by their exact bytes. libFuzzer mutates the input it
// has just run, the session classifies and diagnoses the input it sends, and a cross-over reads
// inputs the mutator read a moment before: without this each of them parsed the same bytes
// again, and parsing was over a quarter of the fuzzer's own time per input (docs/fuzzing.md).
#include <memory>
#include <string_view>

#include "harness/base/result.hpp"
#include "harness/plist/value.hpp"

namespace mdmc::fuzz::detail {

using ParsedInput = std::shared_ptr<const base::Result<plist::Value>>;

// `bytes` parsed within fuzz_input_limits(), from this thread's cache when the same bytes were
// parsed lately. The cache holds at most kParsedInputs parses and kParsedInputBytes of input.
// Small on purpose: libFuzzer mutates the input it has just run, so a few recent parses are the
// hits; keeping most of a corpus's parses (4,096) made the fuzzer a fifth slower, not faster.
inline constexpr std::size_t kParsedInputs = 64;
inline constexpr std::size_t kParsedInputBytes = 8 * 1024 * 1024;
ParsedInput parse_input(std::string_view bytes);

}  // namespace mdmc::fuzz::detail
