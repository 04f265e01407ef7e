#pragma once
// Text helpers the report views share: UTF-8 checked strictly (as nlohmann's serializer does),
// terminal-safe text, and a case's rule area. Never throw on what a target sent.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "harness/scenario/result.hpp"

namespace mdmc::report::detail {

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes one code point at s[i] and advances i past it; on an invalid sequence returns nothing
// and advances by one byte.
std::optional<char32_t> next_code_point(std::string_view s, std::size_t& i);
bool is_valid_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
// Valid UTF-8, with every invalid byte replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);

// One line of text safe for a terminal: invalid UTF-8 becomes U+FFFD, control characters are
// shown escaped, and longer text is cut at max_code_points with "...".
std::string console_text(std::string_view s, std::size_t max_code_points = 240);
// Display width in code points.
std::size_t width_of(std::string_view utf8);

// The rule area a case belongs to: "SYN" for SYN-ALL; a case without rules is classed by the
// first segment of its id ("syn/all" -> "SYN").
std::string rule_area(const scenario::CaseResult& c);

}  // namespace mdmc::report::detail

namespace mdmc::report::detail {

// Text for HTML element content or a quoted attribute value: & < > " ' escaped, invalid UTF-8
// replaced by U+FFFD, control characters other than tab and newline shown as \xNN (C1 as
// \u0080), so that nothing from a target can break out of its element or hide itself.
std::string html_escape(std::string_view s);

// Text for Markdown (GitHub's flavour) on one line: HTML special characters as entities,
// Markdown punctuation backslash-escaped, newlines as spaces, controls as with html_escape.
std::string markdown_text(std::string_view s);
// An inline code span holding s exactly (on one line): fenced by more backticks than s holds
// in a row.
std::string markdown_code(std::string_view s);

// ASCII lower case, for search keys.
std::string ascii_lower(std::string_view s);

}  // namespace mdmc::report::detail
