#pragma once
// Text helpers the report views share: UTF-8 checked strictly (as nlohmann's serializer does),
// terminal-safe text, and a case's rule area. Never throw on what a target sent.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/base/utf8.hpp"
#include "harness/scenario/result.hpp"

namespace mdmc::report::detail {

// The strict UTF-8 helpers live in base; the views call them unqualified.
using base::append_utf8;
using base::is_valid_utf8;
using base::kReplacement;
using base::next_code_point;
using base::sanitize_utf8;

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

// s with every byte outside [A-Za-z0-9._-] replaced by '_', cut at max_len bytes: a name for a
// run's folder.
std::string filesystem_safe(std::string_view s, std::size_t max_len);

// ASCII lower case, for search keys.
std::string ascii_lower(std::string_view s);

// Text for XML 1.0 (JUnit, and quotes of XML plists): element content, or a double- or
// single-quoted attribute value. Invalid UTF-8 becomes U+FFFD; characters XML 1.0 cannot carry
// are dropped.
std::string xml_attr(std::string_view s);
std::string xml_text(std::string_view s);

// A run's cases counted by verdict, indexed by the verdict's value (error is the last).
using VerdictCounts = std::array<int, static_cast<std::size_t>(scenario::Verdict::error) + 1>;
VerdictCounts count_verdicts(const scenario::RunResult& run);
int count_of(const VerdictCounts& counts, scenario::Verdict v);
// A case's findings that did not pass, in order.
std::vector<const scenario::Finding*> failed_findings(const scenario::CaseResult& c);
// What an info grade tells, the same in every view: "the server uses this option" or "the server
// does not use this option" (a may-level rule, RFC 2119); empty when no may-level finding was
// checked.
std::string_view option_use(std::optional<bool> uses_option);
// "RULE: expected X, got Y".
std::string describe_finding(const scenario::Finding& f);

// How the run was asked for, as (label, value) rows in the same words in every view: cases
// selected of the catalog (and the selection), TLS, identity mode, strict, require-complete,
// baseline.
std::vector<std::pair<std::string, std::string>> condition_rows(const scenario::RunResult& run);
// "new" or "known" for a case that counts as a failure in a run judged against a baseline;
// empty otherwise.
std::string_view baseline_mark(const scenario::RunResult& run, const std::string& case_id);
// A rule's verdict as the views show it: "untested" for skip and error (the reason says which).
std::string_view rule_verdict_word(const scenario::RuleResult& rule);

}  // namespace mdmc::report::detail
