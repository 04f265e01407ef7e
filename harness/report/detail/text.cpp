#include "harness/report/detail/text.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mdmc::report::detail {

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
      case '\n':
      case '\r':
      case '\t': out += ' '; break;
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

std::string filesystem_safe(std::string_view s, std::size_t max_len) {
  std::string out;
  for (char ch : s) {
    if (out.size() == max_len) break;
    const bool keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                      ch == '_' || ch == '-';
    out += keep ? ch : '_';
  }
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

namespace {

// XML 1.0's Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
bool is_xml_char(char32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
         (cp >= 0x10000 && cp <= 0x10FFFF);
}

// Escapes text for element content, or for a double- or single-quoted attribute value when
// in_attribute is set (there, tab and newlines are written as character references so that
// attribute-value normalization does not turn them into spaces). Invalid UTF-8 becomes U+FFFD;
// characters XML 1.0 cannot carry at all are dropped.
std::string xml_escape(std::string_view s, bool in_attribute) {
  std::string out;
  out.reserve(s.size() + 16);
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    if (!is_xml_char(cp)) continue;
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += in_attribute ? "&quot;" : "\""; break;
      case '\'': out += in_attribute ? "&apos;" : "'"; break;
      case '\r': out += "&#13;"; break;  // a literal CR would be normalized away by parsers
      case '\n': out += in_attribute ? "&#10;" : "\n"; break;
      case '\t': out += in_attribute ? "&#9;" : "\t"; break;
      default: append_utf8(out, cp);
    }
  }
  return out;
}

}  // namespace

std::string xml_attr(std::string_view s) { return xml_escape(s, true); }
std::string xml_text(std::string_view s) { return xml_escape(s, false); }

VerdictCounts count_verdicts(const scenario::RunResult& run) {
  VerdictCounts counts{};
  for (const auto& c : run.cases) ++counts[static_cast<std::size_t>(c.verdict)];
  return counts;
}

int count_of(const VerdictCounts& counts, scenario::Verdict v) { return counts[static_cast<std::size_t>(v)]; }

std::string_view option_use(std::optional<bool> uses_option) {
  if (!uses_option) return {};
  return *uses_option ? "the server uses this option" : "the server does not use this option";
}

std::vector<const scenario::Finding*> failed_findings(const scenario::CaseResult& c) {
  std::vector<const scenario::Finding*> out;
  for (const auto& f : c.findings) {
    if (!f.passed) out.push_back(&f);
  }
  return out;
}

std::string describe_finding(const scenario::Finding& f) {
  return fmt::format("{}: expected {}, got {}", f.rule, f.expected, f.actual);
}

std::vector<std::pair<std::string, std::string>> condition_rows(const scenario::RunResult& run) {
  const auto& c = run.conditions;
  std::vector<std::pair<std::string, std::string>> rows;
  const std::size_t selected = c.selected_cases.empty() ? run.cases.size() : c.selected_cases.size();
  std::vector<std::string> how;
  if (!c.selection.empty()) how.push_back(fmt::format("{}", fmt::join(c.selection, ", ")));
  if (!c.excluded.empty()) how.push_back(fmt::format("excluding {}", fmt::join(c.excluded, ", ")));
  if (!c.tags.empty()) how.push_back(fmt::format("tag {}", fmt::join(c.tags, " or ")));
  if (!c.levels.empty()) how.push_back(fmt::format("level {}", fmt::join(c.levels, " or ")));
  std::string cases = c.catalog_cases == 0 ? fmt::format("{} selected (catalog size not recorded)", selected)
                                           : fmt::format("{} of {} selected", selected, c.catalog_cases);
  if (!how.empty()) cases += fmt::format(" ({})", fmt::join(how, "; "));
  rows.emplace_back("cases", cases);
  rows.emplace_back("TLS", c.tls.empty() ? "not recorded" : c.tls);
  rows.emplace_back("identity mode", run.identity_mode.empty() ? "not recorded" : run.identity_mode);
  if (!c.enrollment.empty()) rows.emplace_back("enrollment profile", c.enrollment);
  if (!c.value_origins.empty()) rows.emplace_back("values from", fmt::format("{}", fmt::join(c.value_origins, "; ")));
  rows.emplace_back("strict", c.strict ? "yes: should-level breaks fail the run" : "no");
  if (c.require_complete) rows.emplace_back("require complete", "yes: an incomplete run exits 1");
  if (run.baseline) {
    const auto& b = *run.baseline;
    rows.emplace_back("baseline",
                      fmt::format("{} (run {}): {} new failure(s), {} known, {} fixed", b.file, b.started_at,
                                  b.new_failures.size(), b.known_failures.size(), b.fixed.size()));
  } else {
    rows.emplace_back("baseline", "none");
  }
  return rows;
}

std::string_view baseline_mark(const scenario::RunResult& run, const std::string& case_id) {
  if (!run.baseline) return {};
  const auto& b = *run.baseline;
  if (std::find(b.new_failures.begin(), b.new_failures.end(), case_id) != b.new_failures.end()) return "new";
  if (std::find(b.known_failures.begin(), b.known_failures.end(), case_id) != b.known_failures.end()) return "known";
  return {};
}

std::string_view rule_verdict_word(const scenario::RuleResult& rule) {
  if (rule.verdict == scenario::Verdict::skip || rule.verdict == scenario::Verdict::error) return "untested";
  return scenario::verdict_name(rule.verdict);
}

}  // namespace mdmc::report::detail
