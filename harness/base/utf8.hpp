#pragma once
// UTF-8 checked strictly, as nlohmann's serializer checks it: what passes here never makes a
// JSON dump fail. Records, findings and every view use it on text a peer sent.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mdmc::base {

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes one code point at s[i] and advances i past it; on an invalid sequence (overlong,
// surrogate, beyond U+10FFFF, truncated, stray continuation byte) returns nothing and advances
// by one byte.
std::optional<char32_t> next_code_point(std::string_view s, std::size_t& i);
bool is_valid_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
// Valid UTF-8, with every invalid byte replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);

}  // namespace mdmc::base
