#pragma once
// Byte encodings the harness shares: base64 (RFC 4648, standard alphabet), lower-case hex and
// SHA-256. Decoders take untrusted text and return a Result; nothing here throws.
#include <string>
#include <string_view>

#include "harness/base/result.hpp"

namespace mdmc::base {

// Base64 with padding, on one line.
std::string base64_encode(std::string_view bytes);
// Standard alphabet, padding optional, nothing else (no line breaks or spaces). The error names
// the offending byte and its offset.
Result<std::string> base64_decode(std::string_view text);
// Strict: the length a multiple of 4 and padding only at the end, as JSON records write it.
Result<std::string> base64_decode_strict(std::string_view text);

// Lower-case hex, two digits a byte.
std::string hex_encode(std::string_view bytes);

// SHA-256 of `bytes` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace mdmc::base
