#include "harness/report/detail/text.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace mdmc::report::detail {

// Decodes one code point at s[i] and advances i past it. On an invalid sequence (overlong,
// surrogate, beyond U+10FFFF, truncated, stray continuation byte) returns nothing and advances
// by one byte. Strict in the same way as nlohmann's serializer, so that what passes here never
// makes dump() complain.
std::optional<char32_t> next_code_point(std::string_view s, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
    if (b0 == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90;  // no overlong 4-byte forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing beyond U+10FFFF
  } else {
    ++i;
    return std::nullopt;
  }
  if (i + len > s.size()) {
    ++i;
    return std::nullopt;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    const unsigned char min = k == 1 ? lo : 0x80;
    const unsigned char max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) {
      ++i;
      return std::nullopt;
    }
    cp = (cp << 6) | (b & 0x3Fu);
  }
  i += len;
  return cp;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (!next_code_point(s, i)) return false;
  }
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Valid UTF-8, with every invalid byte replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  std::size_t i = 0;
  while (i < s.size()) {
    append_utf8(out, next_code_point(s, i).value_or(kReplacement));
  }
  return out;
}

// One line of text safe for a terminal: invalid UTF-8 becomes U+FFFD, and control characters
// (C0, DEL, C1, which a hostile server could use to move the cursor or rewrite the screen) are
// shown escaped. Longer text is cut at max_code_points with "...".
std::string console_text(std::string_view s, std::size_t max_code_points) {
  std::string out;
  std::size_t i = 0;
  std::size_t shown = 0;
  while (i < s.size()) {
    if (shown == max_code_points) {
      out += "...";
      break;
    }
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    ++shown;
    if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F) {
      out += fmt::format("\\x{:02X}", static_cast<unsigned>(cp));
    } else if (cp >= 0x80 && cp <= 0x9F) {
      out += fmt::format("\\u{:04X}", static_cast<unsigned>(cp));
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

// Display width of a console_text result, counted in code points (good enough for the ASCII ids
// the suite uses).
std::size_t width_of(std::string_view utf8) {
  std::size_t n = 0;
  std::size_t i = 0;
  while (i < utf8.size()) {
    next_code_point(utf8, i);
    ++n;
  }
  return n;
}

// The rule area a case belongs to: "SYN" for SYN-ALL; a case without rules is classed by the
// first segment of its id ("syn/all" -> "SYN").
std::string rule_area(const scenario::CaseResult& c) {
  std::string area;
  if (!c.rules.empty() && !c.rules.front().empty()) {
    const std::string& rule = c.rules.front();
    area = rule.substr(0, rule.find('-'));
  } else {
    area = c.id.substr(0, c.id.find('/'));
    for (char& ch : area) {
      if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    }
  }
  return area.empty() ? std::string("mdmconform") : area;
}

namespace {

// Appends cp, showing a control character as \xNN (C0, DEL) or \uNNNN (C1).
void append_visible(std::string& out, char32_t cp) {
  if (cp < 0x20 || cp == 0x7F) {
    out += fmt::format("\\x{:02X}", static_cast<unsigned>(cp));
  } else if (cp >= 0x80 && cp <= 0x9F) {
    out += fmt::format("\\u{:04X}", static_cast<unsigned>(cp));
  } else {
    append_utf8(out, cp);
  }
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\t': out += '\t'; break;
      case '\n': out += '\n'; break;
      case '\r':
        // CRLF line ends read as line ends; a lone CR is shown.
        if (i < s.size() && s[i] == '\n') break;
        out += "\\r";
        break;
      default: append_visible(out, cp);
    }
  }
  return out;
}

std::string markdown_text(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\n': case '\r': case '\t': out += ' '; break;
      default:
        // Within a line only these can start emphasis, code, links, tables or strikethrough.
        if (cp < 0x80 && std::string_view("\\`*_[]|~").find(static_cast<char>(cp)) != std::string_view::npos) {
          out += '\\';
          out += static_cast<char>(cp);
        } else {
          append_visible(out, cp);
        }
    }
  }
  return out;
}

std::string markdown_code(std::string_view s) {
  std::string body;
  std::size_t i = 0;
  std::size_t run = 0;
  std::size_t longest = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    run = cp == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
    if (cp == '\n' || cp == '\r' || cp == '\t') {
      body += ' ';
    } else {
      append_visible(body, cp);
    }
  }
  const std::string fence(longest + 1, '`');
  // A span that starts or ends with a backtick needs a space inside the fence (CommonMark
  // strips one on each side).
  const bool pad = !body.empty() && (body.front() == '`' || body.back() == '`');
  return fence + (pad ? " " : "") + body + (pad ? " " : "") + fence;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

}  // namespace mdmc::report::detail
