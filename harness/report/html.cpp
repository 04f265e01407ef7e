#include "harness/report/html.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/plist/value.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/scenario/assessment.hpp"

namespace mdmc::report {
namespace {

using namespace detail;
namespace chr = std::chrono;
using scenario::CaseResult;
using scenario::Finding;
using scenario::RuleResult;
using scenario::RunResult;
using scenario::TranscriptEntry;
using scenario::Verdict;

constexpr std::array kVerdictOrder = {Verdict::fail, Verdict::error, Verdict::warn,
                                      Verdict::info, Verdict::skip,  Verdict::pass};

std::string esc(std::string_view s) { return html_escape(s); }

std::string verdict_word(Verdict v) { return std::string(scenario::verdict_name(v)); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return out;
}

// At most n code points of s, the last one "…" when cut (diagram labels; the whole is in a tooltip).
std::string cut(std::string_view s, std::size_t n) {
  if (width_of(s) <= n) return sanitize_utf8(s);
  std::string out;
  std::size_t i = 0;
  for (std::size_t shown = 0; shown + 1 < n && i < s.size(); ++shown) {
    append_utf8(out, next_code_point(s, i).value_or(kReplacement));
  }
  return out + "\u2026";
}

// "2026-11-29T08:51:55.123456Z"
std::string utc_time(chr::system_clock::time_point tp) {
  const auto us = chr::floor<chr::microseconds>(tp);
  const auto day = chr::floor<chr::days>(us);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss hms{us - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

// An exchange's start at the resolution report.json keeps (microseconds), so that a page made
// during the run and one made again from the record are the same.
chr::sys_time<chr::microseconds> start_of(const TranscriptEntry& e) {
  return chr::floor<chr::microseconds>(e.exchange.started);
}

std::string millis(chr::microseconds us) { return fmt::format("{:.2f} ms", static_cast<double>(us.count()) / 1000.0); }

std::string bytes_text(std::size_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024.0);
  return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1024.0 * 1024.0));
}

VerdictCounts count_by_verdict(const std::vector<const CaseResult*>& cases) {
  VerdictCounts counts{};
  for (const CaseResult* c : cases) ++counts[static_cast<std::size_t>(c->verdict)];
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Anchors. A case's element id is its case id ("syn/empty_end"), so that a ticket can link a
// failure. Case ids are suite paths and hold a '/'; every other id on the page holds none
// ("record", "rule-SYN-ALL", "area-SYN", "case:3") or holds "//", which no suite path does (an
// exchange, "syn/empty_end//x2"), so none can take a case's id.

// Whether s can be an element id that reads the same in the DOM as here: html_escape would show
// a control character as text, and HTML ids hold no whitespace.
bool usable_as_id(std::string_view s) {
  if (s.empty() || !is_valid_utf8(s)) return false;
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i).value_or(kReplacement);
    if (cp <= 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return false;
  }
  return true;
}

// A case id as the suite makes them: a relative path, so segments that are never empty.
bool is_suite_path(std::string_view id) {
  return usable_as_id(id) && id.find('/') != std::string_view::npos && id.front() != '/' && id.back() != '/' &&
         id.find("//") == std::string_view::npos;
}

// An id for something that is not a case ("rule-", "area-"): empty when it would hold a '/' and
// so could take a case's id; the thing then gets no anchor.
std::string plain_anchor(std::string_view prefix, std::string_view name) {
  if (!usable_as_id(name) || name.find('/') != std::string_view::npos) return "";
  return fmt::format("{}{}", prefix, name);
}

// An href to an element id: '#' and the id percent-encoded (UTF-8) where a fragment cannot hold
// it as it is, so the page's script gets it back with decodeURIComponent. What is left needs no
// HTML escaping.
std::string href_to(std::string_view id) {
  std::string out = "#";
  for (const char ch : id) {
    const auto b = static_cast<unsigned char>(ch);
    const bool keep = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
                      std::string_view("-._~/!$()*+,;=:@").find(ch) != std::string_view::npos;
    out += keep ? std::string(1, ch) : fmt::format("%{:02X}", b);
  }
  return out;
}

std::string exchange_anchor(std::string_view case_anchor, std::size_t number) {
  return fmt::format("{}//x{}", case_anchor, number);
}

// The element id of every case of a run, by its place in run.cases: its case id when that is a
// suite path and the first of the run to have it, else "case:N".
struct CaseAnchors {
  std::vector<std::string> by_index;
  std::map<std::string, std::string> by_id;  // a case id -> the anchor of the first case with it

  explicit CaseAnchors(const RunResult& run) {
    for (std::size_t i = 0; i < run.cases.size(); ++i) {
      const std::string& id = run.cases[i].id;
      const bool own = is_suite_path(id) && by_id.count(id) == 0;
      by_index.push_back(own ? id : fmt::format("case:{}", i + 1));
      by_id.try_emplace(id, by_index.back());
    }
  }
  // "#syn/empty_end", or empty when the run holds no such case.
  std::string href(const std::string& id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? std::string() : href_to(it->second);
  }
};

// A link to a case of the run by its id, or the id as code when the run does not hold it.
std::string case_link(const CaseAnchors& anchors, const std::string& id) {
  const std::string href = anchors.href(id);
  if (href.empty()) return "<code>" + html_escape(id) + "</code>";
  return fmt::format("<a href=\"{}\"><code>{}</code></a>", href, html_escape(id));
}

// Text escaped for HTML, each id of a case of the run in it a link to that case (the headline,
// untested rules' reasons, notes). An id counts only as a whole word: not inside a longer one.
std::string linked_text(std::string_view text, const CaseAnchors& anchors) {
  auto id_char = [](char ch) {
    const auto b = static_cast<unsigned char>(ch);
    return b >= 0x80 || std::isalnum(b) || ch == '_' || ch == '-' || ch == '/';
  };
  std::vector<std::string_view> ids;
  for (const auto& [id, anchor] : anchors.by_id) {
    if (usable_as_id(id)) ids.push_back(id);
  }
  // The longest first, so that "syn/empty_end_device" is not taken for "syn/empty_end".
  std::sort(ids.begin(), ids.end(), [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  std::string out;
  std::size_t plain_from = 0;
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (pos > 0 && id_char(text[pos - 1])) continue;
    for (const std::string_view id : ids) {
      const std::size_t end = pos + id.size();
      if (text.compare(pos, id.size(), id) != 0 || (end < text.size() && id_char(text[end]))) continue;
      out += html_escape(text.substr(plain_from, pos - plain_from));
      out += case_link(anchors, std::string(id));
      plain_from = end;
      pos = end - 1;
      break;
    }
  }
  return out + html_escape(text.substr(plain_from));
}

// ---------------------------------------------------------------------------------------------
// Exchanges: what an answer was, in a few words.

// The status class an answer gets in the diagram and the transcript.
std::string status_class(const TranscriptEntry& e) {
  if (!e.exchange.response) return "s-none";
  const int status = e.exchange.response->status;
  if (status == 410) return "s-410";
  if (status == 204) return "s-204";
  if (status >= 500) return "s-5xx";
  if (status >= 400) return "s-4xx";
  if (status >= 200 && status < 300) return "s-2xx";
  return "s-other";
}

// "200 empty", "200 InstallProfile", "410 Gone", "500 (38 B)": the status and what the body is.
std::string answer_summary(const TranscriptEntry& e) {
  const net::Exchange& x = e.exchange;
  if (!x.response) return "no answer: " + std::string(net::transport_error_name(x.error));
  const net::Response& r = *x.response;
  std::string out = std::to_string(r.status);
  if (r.body.empty()) {
    if (r.status == 200) return out + " empty";
    return r.reason.empty() ? out : out + " " + cut(r.reason, 24);
  }
  if (e.response_body_cut == std::nullopt && r.body.size() <= kHtmlBodyCap) {
    if (auto parsed = plist::parse(r.body)) {
      if (const plist::Value* command = parsed->find("Command")) {
        if (auto type = command->string_at("RequestType")) return out + " " + cut(*type, 28);
      }
      if (parsed->find("DigestChallenge")) return out + " DigestChallenge";
      if (parsed->as_dict() && parsed->as_dict()->empty()) return out + " empty plist";
      return fmt::format("{} plist ({})", out, bytes_text(r.body.size()));
    }
  }
  const std::size_t size = e.response_body_cut ? e.response_body_cut->bytes : r.body.size();
  return fmt::format("{} ({})", out, bytes_text(size));
}

std::string request_class(const TranscriptEntry& e) {
  if (e.actor == "admin") return "admin";
  if (e.label.rfind("NotNow", 0) == 0) return "notnow";
  if (e.label.rfind("Error", 0) == 0 || e.label.rfind("CommandFormatError", 0) == 0) return "err-report";
  return "plain";
}

// Exchanges in time order (start, then the order they were recorded), with their number.
std::vector<const TranscriptEntry*> in_time_order(const CaseResult& c) {
  std::vector<const TranscriptEntry*> out;
  for (const auto& e : c.transcript) out.push_back(&e);
  std::stable_sort(out.begin(), out.end(),
                   [](const TranscriptEntry* a, const TranscriptEntry* b) { return start_of(*a) < start_of(*b); });
  return out;
}

// Steps with a failed finding, and the rules each broke.
std::map<int, std::set<std::string>> failed_steps(const CaseResult& c) {
  std::map<int, std::set<std::string>> out;
  for (const auto& f : c.findings) {
    if (!f.passed) out[f.step].insert(f.rule);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The sequence diagram.

// Lanes: every device actor, each followed by its users ("mac/alice" beside "mac"), in order of
// first appearance; then the server; then the admin API when the case used it.
std::vector<std::string> lanes_of(const std::vector<const TranscriptEntry*>& exchanges, bool& has_admin) {
  std::vector<std::string> devices;
  std::map<std::string, std::vector<std::string>> users;
  has_admin = false;
  for (const TranscriptEntry* e : exchanges) {
    if (e->actor == "admin") {
      has_admin = true;
      continue;
    }
    const auto slash = e->actor.find('/');
    const std::string device = e->actor.substr(0, slash);
    if (std::find(devices.begin(), devices.end(), device) == devices.end()) devices.push_back(device);
    if (slash != std::string::npos) {
      auto& list = users[device];
      if (std::find(list.begin(), list.end(), e->actor) == list.end()) list.push_back(e->actor);
    }
  }
  std::vector<std::string> lanes;
  for (const auto& d : devices) {
    lanes.push_back(d);
    for (const auto& u : users[d]) lanes.push_back(u);
  }
  lanes.push_back("server");
  if (has_admin) lanes.push_back("admin");
  return lanes;
}

struct Event {
  chr::sys_time<chr::microseconds> at;
  std::size_t exchange;  // index in time order
  bool response;         // the answer (or the failure to get one), else the request
};

}  // namespace

std::string describe_answer(const TranscriptEntry& entry) { return answer_summary(entry); }

std::string sequence_diagram_svg(const CaseResult& c, const std::string& anchor_prefix) {
  const auto exchanges = in_time_order(c);
  bool has_admin = false;
  const auto lanes = lanes_of(exchanges, has_admin);
  std::map<std::string, std::size_t> lane_index;
  for (std::size_t i = 0; i < lanes.size(); ++i) lane_index[lanes[i]] = i;
  const std::size_t server = lane_index.at("server");

  // Every request and every answer is one event on its own row, in time order; a tie keeps the
  // request before its answer and the recorded order otherwise.
  std::vector<Event> events;
  for (std::size_t k = 0; k < exchanges.size(); ++k) {
    const net::Exchange& x = exchanges[k]->exchange;
    events.push_back({start_of(*exchanges[k]), k, false});
    events.push_back({start_of(*exchanges[k]) + x.elapsed, k, true});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.at != b.at) return a.at < b.at;
    if (a.exchange != b.exchange) return a.exchange < b.exchange;
    return !a.response && b.response;
  });
  std::vector<std::size_t> request_row(exchanges.size()), response_row(exchanges.size());
  for (std::size_t row = 0; row < events.size(); ++row) {
    (events[row].response ? response_row : request_row)[events[row].exchange] = row;
  }

  constexpr int kLeft = 112;  // the step and time columns
  constexpr int kLaneGap = 180;
  constexpr int kTop = 44;  // lane headers
  constexpr int kRow = 22;
  constexpr int kRight = 170;  // the failed rules beside their step
  const int width = kLeft + static_cast<int>(lanes.size()) * kLaneGap + kRight;
  const int height = kTop + 16 + static_cast<int>(events.size()) * kRow + 12;
  auto lane_x = [&](std::size_t lane) { return kLeft + static_cast<int>(lane) * kLaneGap + kLaneGap / 2; };
  auto row_y = [&](std::size_t row) { return kTop + 22 + static_cast<int>(row) * kRow; };

  std::string svg = fmt::format(
      "<svg class=\"seq\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" role=\"img\" aria-label=\"sequence diagram of {2}: {3} lanes, {4} exchanges\">\n",
      width, height, esc(c.id), lanes.size(), exchanges.size());

  // Steps as bands: a step's rows, shaded when it broke a rule.
  const auto broken = failed_steps(c);
  std::map<int, std::pair<std::size_t, std::size_t>> step_rows;  // first and last row
  for (std::size_t k = 0; k < exchanges.size(); ++k) {
    const int step = exchanges[k]->step.value_or(-2);
    auto [it, fresh] = step_rows.try_emplace(step, request_row[k], response_row[k]);
    if (!fresh) {
      it->second.first = std::min(it->second.first, request_row[k]);
      it->second.second = std::max(it->second.second, response_row[k]);
    }
  }
  int band = 0;
  for (const auto& [step, rows] : step_rows) {
    const int y = row_y(rows.first) - kRow / 2 - 2;
    const int h = static_cast<int>(rows.second - rows.first + 1) * kRow;
    auto bad = broken.find(step);
    const bool is_bad = bad != broken.end();
    svg += fmt::format("<g class=\"step{}\" data-step=\"{}\"><rect x=\"2\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                       is_bad ? " bad" : (band++ % 2 ? " odd" : ""), step, y, width - 4, h);
    const std::string name = step == -2 ? "" : step == -1 ? "enroll" : fmt::format("step {}", step);
    svg += fmt::format("<text class=\"step-name\" x=\"6\" y=\"{}\">{}</text>", y + 13, name);
    if (is_bad) {
      svg += fmt::format("<text class=\"broken\" x=\"{}\" y=\"{}\">\u2717 {}</text>", width - kRight + 8, y + 13,
                         esc(cut(fmt::format("{}", fmt::join(bad->second, ", ")), 26)));
    }
    svg += "</g>\n";
  }

  for (std::size_t i = 0; i < lanes.size(); ++i) {
    const int x = lane_x(i);
    const std::string kind = lanes[i] == "server"                      ? "server"
                             : lanes[i] == "admin"                     ? "admin"
                             : lanes[i].find('/') == std::string::npos ? "device"
                                                                       : "user";
    const std::string title = kind == "server" ? "server" : kind == "admin" ? "admin API" : lanes[i];
    svg += fmt::format(
        "<g class=\"lane {}\" data-actor=\"{}\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>"
        "<rect x=\"{}\" y=\"8\" width=\"{}\" height=\"24\" rx=\"4\"/><text x=\"{}\" y=\"25\">{}</text>"
        "<text class=\"kind\" x=\"{}\" y=\"41\">{}</text></g>\n",
        kind, esc(lanes[i]), x, kTop, x, height - 6, x - 70, 140, x, esc(cut(title, 20)), x,
        kind == "server" ? "" : kind);
  }

  const auto case_start = exchanges.empty() ? chr::sys_time<chr::microseconds>{} : start_of(*exchanges.front());
  for (std::size_t k = 0; k < exchanges.size(); ++k) {
    const TranscriptEntry& e = *exchanges[k];
    const std::size_t actor = e.actor == "admin" ? lane_index.at("admin") : lane_index.at(e.actor);
    const int ax = lane_x(actor);
    const int sx = lane_x(server);
    const int y1 = row_y(request_row[k]);
    const int y2 = row_y(response_row[k]);
    const std::string anchor = exchange_anchor(anchor_prefix, k + 1);
    const int dir = sx > ax ? 1 : -1;
    const auto room = static_cast<std::size_t>(std::max(8, std::abs(sx - ax) / 7));
    const auto offset = start_of(e) - case_start;
    const bool in_bad_step = e.step && broken.count(*e.step) != 0;
    svg += fmt::format("<a href=\"{}\"><g class=\"exchange{}\" data-exchange=\"{}\">", href_to(anchor),
                       in_bad_step ? " bad" : "", k + 1);
    // How long the actor waited for this answer: overlapping bars are requests in flight at once.
    svg += fmt::format("<rect class=\"wait\" x=\"{}\" y=\"{}\" width=\"6\" height=\"{}\"/>", ax - 3, y1,
                       std::max(2, y2 - y1));
    svg += fmt::format("<text class=\"time\" x=\"{}\" y=\"{}\">+{:.1f} ms</text>", kLeft - 6, y1 + 4,
                       static_cast<double>(offset.count()) / 1000.0);
    const std::string request_text = fmt::format("{} {}", k + 1, e.label);
    svg += fmt::format(
        "<g class=\"arrow request {}\"><title>{}</title><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>"
        "<polygon points=\"{},{} {},{} {},{}\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
        request_class(e), esc(fmt::format("{}: {} {}", e.actor, e.label, e.exchange.request.url)), ax, y1, sx - dir * 6,
        y1, sx, y1, sx - dir * 7, y1 - 4, sx - dir * 7, y1 + 4, (ax + sx) / 2, y1 - 4, esc(cut(request_text, room)));
    if (e.exchange.response) {
      svg += fmt::format(
          "<g class=\"arrow response {}\"><title>{}</title><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>"
          "<polygon points=\"{},{} {},{} {},{}\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
          status_class(e), esc(fmt::format("{} in {}", answer_summary(e), millis(e.exchange.elapsed))), sx, y2,
          ax + dir * 6, y2, ax, y2, ax + dir * 7, y2 - 4, ax + dir * 7, y2 + 4, (ax + sx) / 2, y2 - 4,
          esc(cut(answer_summary(e), room)));
    } else {
      svg += fmt::format(
          "<g class=\"no-answer\"><title>{}</title><path d=\"M{} {} l8 8 m0 -8 l-8 8\"/>"
          "<text x=\"{}\" y=\"{}\">{}</text></g>",
          esc(fmt::format("{} ({})", answer_summary(e), e.exchange.error_detail)), sx - 4, y2 - 4, (ax + sx) / 2,
          y2 - 4, esc(cut(answer_summary(e), room)));
    }
    svg += "</g></a>\n";
  }
  svg += "</svg>";
  return svg;
}

namespace {

// ---------------------------------------------------------------------------------------------
// The page.

constexpr std::string_view kStyle = R"css(
:root{--pass:#1a7f37;--fail:#cf222e;--error:#8250df;--warn:#bf8700;--info:#0969da;--skip:#6e7781;--line:#d0d7de;--bg2:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1400px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 12px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
table{border-collapse:collapse}th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg2)}
.verdict{display:flex;gap:18px;align-items:center;flex-wrap:wrap}
.record{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap;margin-top:12px}
.record table td:first-child{color:#57606a;white-space:nowrap}
.result{font-size:28px;font-weight:700;padding:10px 18px;border-radius:8px;color:#fff;text-transform:uppercase}
.r-pass{background:var(--pass)}.r-fail{background:var(--fail)}
.r-incomplete{background:#fff;color:var(--pass);border:3px dashed var(--skip)}
.headline{font-size:16px;font-weight:600;margin:10px 0}
.v{display:inline-block;min-width:52px;text-align:center;border-radius:4px;color:#fff;font-weight:600;font-size:12px;padding:0 6px}
.v-pass{background:var(--pass)}.v-fail{background:var(--fail)}.v-error{background:var(--error)}.v-warn{background:var(--warn)}.v-info{background:var(--info)}.v-skip{background:var(--skip)}
.v-untested{background:#fff;color:var(--skip);border:1px dashed var(--skip)}
.mark{display:inline-block;border:1px solid;border-radius:9px;font-size:11px;font-weight:600;padding:0 7px;margin-left:4px}
.mark-new{color:var(--fail)}.mark-known{color:#57606a}.mark-fixed{color:var(--pass)}
.untested-note{color:var(--skip);margin:0 0 4px}
.group>h3{font-size:15px;margin:18px 0 6px}.group>h3 .legend{font-weight:400}
.group.attention>h3{color:var(--fail)}
.counts td.n{text-align:right;font-variant-numeric:tabular-nums}
.notes{color:#9a6700}
blockquote{margin:2px 0;padding:0 8px;border-left:3px solid var(--line);color:#57606a}
cite{display:block;font-size:12px;color:#6e7781}
#filters{position:sticky;top:0;background:#fff;padding:8px 0;z-index:2;border-bottom:1px solid var(--line);display:flex;gap:14px;align-items:center;flex-wrap:wrap}
#filters input[type=search]{width:320px;padding:4px 8px}
details.case{border:1px solid var(--line);border-radius:6px;margin:6px 0;scroll-margin-top:64px}
.group{scroll-margin-top:64px}
details.untested>summary{cursor:pointer}details.untested ul{margin:2px 0 8px}
details.case>summary{cursor:pointer;padding:6px 10px;list-style-position:inside}
details.case[open]>summary{background:var(--bg2);border-bottom:1px solid var(--line)}
details.case>summary .title{color:#57606a}
.case-body{padding:8px 14px}
.flaky{color:var(--warn);font-weight:600}
.finding-fail td:first-child{color:var(--fail);font-weight:600}
.finding-pass td:first-child{color:var(--pass)}
.finding-info td:first-child{color:var(--info);font-weight:600}
.info-note{color:var(--info)}
pre{background:var(--bg2);padding:8px;overflow:auto;max-height:480px;margin:4px 0;white-space:pre-wrap;word-break:break-all}
pre.repro{background:#fff8c5}
table.devices{font-size:.9em;margin:.4em 0}
.diagram{overflow-x:auto;border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:4px}
details.exchange{border-left:3px solid var(--line);margin:4px 0;padding-left:8px}
details.exchange.bad{border-left-color:var(--fail)}
details.exchange>summary{cursor:pointer}
details.exchange.flash>summary{background:#fff8c5}
.st{font-weight:600}.s-2xx{color:var(--pass)}.s-4xx,.s-204,.s-other{color:#bc4c00}.s-410{color:var(--error)}.s-5xx,.s-none{color:var(--fail)}
.http{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.http h4{margin:6px 0 2px;font-size:13px}
.hdr td{font-size:12px;padding:1px 6px}
.timing{color:#57606a;font-size:12px;grid-column:1/3}
svg.seq text{font:11px -apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
svg.seq .lane line{stroke:#8c959f;stroke-dasharray:4 3}
svg.seq .lane rect{fill:#ddf4ff;stroke:#54aeff}
svg.seq .lane.server rect{fill:#fff8c5;stroke:#d4a72c}
svg.seq .lane.admin rect{fill:#f6f8fa;stroke:#8c959f}
svg.seq .lane text{text-anchor:middle;font-weight:600}
svg.seq .lane text.kind{font-weight:400;fill:#6e7781;font-size:10px}
svg.seq .step rect{fill:#fff}svg.seq .step.odd rect{fill:#f6f8fa}svg.seq .step.bad rect{fill:#ffebe9}
svg.seq .step-name{fill:#6e7781;font-size:10px}
svg.seq .broken{fill:var(--fail);font-weight:700}
svg.seq .time{fill:#8c959f;font-size:10px;text-anchor:end}
svg.seq .wait{fill:#d0d7de}
svg.seq .arrow line{stroke:#57606a;stroke-width:1.3}svg.seq .arrow polygon{fill:#57606a}
svg.seq .arrow text{text-anchor:middle;fill:#1f2328}
svg.seq .arrow.response line{stroke-dasharray:5 3}
svg.seq .arrow.notnow line,svg.seq .arrow.notnow polygon{stroke:#bf8700;fill:#bf8700}svg.seq .arrow.notnow text{fill:#9a6700}
svg.seq .arrow.admin line{stroke:#8c959f}svg.seq .arrow.admin text{fill:#6e7781}
svg.seq .arrow.s-2xx line{stroke:#1a7f37}svg.seq .arrow.s-2xx polygon{fill:#1a7f37}
svg.seq .arrow.s-410 line{stroke:#8250df;stroke-width:2}svg.seq .arrow.s-410 polygon{fill:#8250df}svg.seq .arrow.s-410 text{fill:#8250df;font-weight:700}
svg.seq .arrow.s-4xx line,svg.seq .arrow.s-204 line,svg.seq .arrow.s-other line{stroke:#bc4c00;stroke-width:2}
svg.seq .arrow.s-4xx polygon,svg.seq .arrow.s-204 polygon,svg.seq .arrow.s-other polygon{fill:#bc4c00}
svg.seq .arrow.s-4xx text,svg.seq .arrow.s-204 text,svg.seq .arrow.s-other text{fill:#bc4c00;font-weight:700}
svg.seq .arrow.s-5xx line{stroke:#cf222e;stroke-width:2}svg.seq .arrow.s-5xx polygon{fill:#cf222e}svg.seq .arrow.s-5xx text{fill:#cf222e;font-weight:700}
svg.seq .exchange.bad .arrow.response line{stroke-width:2.5}
svg.seq .no-answer path{stroke:#cf222e;stroke-width:2.5}svg.seq .no-answer text{fill:#cf222e;text-anchor:middle;font-weight:700}
svg.seq a:hover text{text-decoration:underline}
.legend{font-size:12px;color:#57606a}
[hidden]{display:none!important}
)css";

constexpr std::string_view kScript = R"js(
(function () {
  'use strict';
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input.verdict-filter'));
  var text = document.getElementById('text-filter');
  var cases = Array.prototype.slice.call(document.querySelectorAll('details.case'));
  var groups = Array.prototype.slice.call(document.querySelectorAll('section.group'));
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var q = text.value.trim().toLowerCase();
    var shown = 0;
    cases.forEach(function (c) {
      var ok = on[c.dataset.verdict] && (!q || c.dataset.search.indexOf(q) >= 0);
      c.hidden = !ok;
      if (ok) shown++;
    });
    // A group with nothing shown goes too, heading and all; an area whose cases are all in
    // Needs attention keeps its heading (it says so) until a filter is on.
    var filtering = !!q || boxes.some(function (b) { return !b.checked; });
    groups.forEach(function (g) {
      var own = g.querySelector('details.case');
      g.hidden = own ? !g.querySelector('details.case:not([hidden])') : filtering;
    });
    document.getElementById('shown').textContent = String(shown);
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  text.addEventListener('input', apply);
  // The element id an href or a location hash names: the page percent-encodes what a fragment
  // cannot hold; a hash typed by hand may be malformed, and is then taken as it is.
  function idOf(hash) {
    try { return decodeURIComponent(hash.slice(1)); } catch (e) { return hash.slice(1); }
  }
  // Opens an element and every <details> around it, then brings it into view.
  function reveal(id) {
    var el = document.getElementById(id);
    if (!el) return;
    for (var p = el; p; p = p.parentElement) {
      if (p.tagName === 'DETAILS') p.open = true;
      if (p.hidden) p.hidden = false;
    }
    if (el.tagName === 'DETAILS') el.open = true;
    // A case starts at the top of the view; an exchange, in its middle.
    el.scrollIntoView({block: el.classList.contains('case') ? 'start' : 'center'});
    el.classList.add('flash');
    setTimeout(function () { el.classList.remove('flash'); }, 1500);
  }
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest ? ev.target.closest('a') : null;
    if (!a) return;
    var href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (href.charAt(0) !== '#') return;
    ev.preventDefault();
    try { history.replaceState(null, '', href); } catch (e) { /* some file:// setups refuse */ }
    reveal(idOf(href));
  });
  document.getElementById('expand-failed').addEventListener('click', function () {
    cases.forEach(function (c) { if (!c.hidden && c.dataset.verdict !== 'pass') c.open = true; });
  });
  document.getElementById('collapse-all').addEventListener('click', function () {
    cases.forEach(function (c) { c.open = false; });
  });
  apply();
  // A link to a case from a ticket opens it, passing or not; so does a hash changed in place.
  function revealHash() { if (location.hash.length > 1) reveal(idOf(location.hash)); }
  window.addEventListener('hashchange', revealHash);
  revealHash();
})();
)js";

std::string_view result_class(scenario::Overall overall) {
  switch (overall) {
    case scenario::Overall::certified: return "r-pass";
    case scenario::Overall::incomplete: return "r-incomplete";
    case scenario::Overall::failed: return "r-fail";
  }
  return "r-fail";
}

// An info case: only may-level options unused, informational (RFC 2119), never a defect.
constexpr const char* kInfoCaseLabel =
    "INFO \u2014 the server does not use this option (a may-level rule: informational, not a defect)";

// A finding's result column: a broken may-level expectation is an option unused, not a failure.
std::string_view finding_result(const Finding& f) {
  if (f.passed) return "pass";
  return f.level == scenario::Level::may ? "info" : "fail";
}

std::string verdict_badge(Verdict v) {
  return fmt::format("<span class=\"v v-{0}\">{1}</span>", verdict_word(v), upper(verdict_word(v)));
}

void record_row(std::string& out, std::string_view name, std::string_view value, bool mono = false) {
  out += fmt::format("<tr><td>{}</td><td{}>{}</td></tr>\n", esc(name), mono ? " class=\"mono\"" : "",
                     value.empty() ? std::string("-") : esc(value));
}

constexpr std::size_t kUntestedShownOpen = 8;

// Links to each of ids, a case of the run.
std::string case_links(const CaseAnchors& anchors, const std::vector<std::string>& ids) {
  std::vector<std::string> links;
  for (const auto& id : ids) links.push_back(case_link(anchors, id));
  return fmt::format("{}", fmt::join(links, ", "));
}

// The page's head: the overall verdict and why (the same headline as every view), then the
// record of what ran and the conditions it ran under, without which the verdict means little.
void render_record(std::string& out, const RunResult& run, const scenario::Assessment& assessment,
                   const CaseAnchors& anchors, const std::optional<CertificationStatus>& certification) {
  out += "<section id=\"record\"><h1>mdmconform certification record</h1>\n";
  out += fmt::format("<div class=\"verdict\"><div id=\"overall\" class=\"result {}\" data-result=\"{}\">{}</div>",
                     result_class(assessment.overall), scenario::overall_name(assessment.overall),
                     esc(scenario::overall_title(assessment.overall)));
  out += fmt::format("<p id=\"headline\" class=\"headline\">{}</p></div>\n", linked_text(assessment.headline, anchors));
  if (!assessment.exit_reason.empty()) {
    out += fmt::format("<p class=\"notes\">exit code {}: {}</p>\n", assessment.exit_code, esc(assessment.exit_reason));
  }
  const std::size_t untested = assessment.untested.size() + assessment.untested_may.size();
  if (untested > 0) {
    // A run of a few cases leaves most rules untested: a long list starts closed, below the
    // headline that already counts them.
    out += fmt::format("<details class=\"untested\"{}><summary class=\"notes\">{} rule{} untested</summary>",
                       untested <= kUntestedShownOpen ? " open" : "", untested, untested == 1 ? "" : "s");
    out += "<ul id=\"untested\" class=\"notes\">\n";
    for (const auto* list : {&assessment.untested, &assessment.untested_may}) {
      for (const auto& u : *list) {
        const std::string anchor = plain_anchor("rule-", u.id);
        const std::string name = anchor.empty()
                                     ? fmt::format("<b>{}</b>", esc(u.id))
                                     : fmt::format("<a href=\"{}\"><b>{}</b></a>", href_to(anchor), esc(u.id));
        out += fmt::format("<li>untested: {} ({}): {}</li>\n", name, scenario::level_name(u.level),
                           linked_text(u.reason, anchors));
      }
    }
    out += "</ul></details>\n";
  }
  if (run.baseline) {
    const auto& b = *run.baseline;
    out += "<ul id=\"baseline-cases\" class=\"notes\">\n";
    if (!b.new_failures.empty()) {
      out += "<li>new failures since the baseline: " + case_links(anchors, b.new_failures) + "</li>\n";
    }
    if (!b.known_failures.empty()) {
      out += "<li>known failures, failing in the baseline too: " + case_links(anchors, b.known_failures) + "</li>\n";
    }
    if (!b.fixed.empty()) out += "<li>fixed since the baseline: " + case_links(anchors, b.fixed) + "</li>\n";
    out += "</ul>\n";
  }
  if (run.interrupted) {
    out += "<p class=\"notes\">interrupted: the run stopped early; these results are partial.</p>\n";
  }
  for (const auto& note : run.notes) out += "<p class=\"notes\">note: " + linked_text(note, anchors) + "</p>\n";

  out += "<div class=\"record\"><table id=\"record-table\">\n";
  record_row(out, "target", run.target_name);
  record_row(out, "target URL", run.target_url, true);
  record_row(out, "profile digest", run.profile_digest, true);
  record_row(out, "harness version", run.harness_version);
  record_row(out, "suite digest", run.suite_digest, true);
  record_row(out, "Apple schema revision", run.apple_schema_revision, true);
  record_row(out, "date", run.started_at);
  record_row(out, "elapsed", fmt::format("{:.2f} s", static_cast<double>(run.elapsed.count()) / 1000.0));
  record_row(out, "seed", std::to_string(run.seed), true);
  if (!run.declares.empty()) {
    std::vector<std::string> declared;
    for (const auto& [key, value] : run.declares) declared.push_back(fmt::format("{}: {}", key, value));
    record_row(out, "target declares", fmt::format("{}", fmt::join(declared, ", ")));
  }
  record_row(out, "secrets", run.redacted ? "redacted" : "NOT redacted (--no-redact)");
  record_row(out, "certification",
             certification
                 ? fmt::format("{} signed by {} at {}: {} (check it with `mdmconform verify`)", certification->file,
                               certification->signer, certification->signed_at, certification->overall)
                 : std::string("no signed certification record (`mdmconform certify` makes one)"));
  // How the run was asked for: cases selected of the catalog, TLS, identity mode, strict,
  // require-complete, baseline, in the words every view uses.
  out += "</table><table id=\"conditions\">\n";
  for (const auto& [label, value] : condition_rows(run)) record_row(out, label, value);
  if (!run.builtin_fault.empty() && run.builtin_fault != "none") {
    record_row(out, "built-in server fault mode", run.builtin_fault);
  }
  out += "</table></div></section>\n";
}

std::vector<std::string> ordered_areas(const std::map<std::string, std::vector<const CaseResult*>>& by_area) {
  std::vector<std::string> out;
  for (auto area : rule_area_order()) {
    if (by_area.count(std::string(area))) out.emplace_back(area);
  }
  for (const auto& [area, cases] : by_area) {
    if (std::find(out.begin(), out.end(), area) == out.end()) out.push_back(area);
  }
  return out;
}

void render_counts(std::string& out, const RunResult& run) {
  std::vector<const CaseResult*> all;
  std::map<std::string, std::vector<const CaseResult*>> by_area;
  for (const auto& c : run.cases) {
    all.push_back(&c);
    by_area[rule_area(c)].push_back(&c);
  }
  const auto totals = count_by_verdict(all);
  out += "<section id=\"counts\"><h2>Counts</h2><table class=\"counts\"><tr><th>area</th>";
  for (Verdict v : kVerdictOrder) out += "<th>" + verdict_badge(v) + "</th>";
  out += "<th>cases</th></tr>\n";
  for (const auto& area : ordered_areas(by_area)) {
    const auto counts = count_by_verdict(by_area.at(area));
    const std::string anchor = plain_anchor("area-", area);
    out += fmt::format("<tr data-area=\"{0}\"><td>{1}</td>", esc(area),
                       anchor.empty() ? esc(area) : fmt::format("<a href=\"{}\">{}</a>", href_to(anchor), esc(area)));
    for (Verdict v : kVerdictOrder) {
      const int n = count_of(counts, v);
      out += fmt::format("<td class=\"n\">{}</td>", n == 0 ? std::string("") : std::to_string(n));
    }
    out += fmt::format("<td class=\"n\">{}</td></tr>\n", by_area.at(area).size());
  }
  out += "<tr><th>all</th>";
  for (Verdict v : kVerdictOrder) {
    out += fmt::format("<th class=\"n\" id=\"count-{0}\" data-verdict=\"{0}\">{1}</th>", verdict_word(v),
                       count_of(totals, v));
  }
  out += fmt::format("<th class=\"n\" id=\"count-total\">{}</th></tr></table></section>\n", run.cases.size());
}

void render_rules(std::string& out, const RunResult& run, const CaseAnchors& anchors) {
  out +=
      "<section id=\"rules\"><h2>Rules</h2><table class=\"rules\"><tr><th>rule</th><th>level</th>"
      "<th>verdict</th><th>what it asks, and the text it rests on</th><th>cases</th></tr>\n";
  std::set<std::string> anchored;
  for (const RuleResult& r : run.rules) {
    const std::string anchor = plain_anchor("rule-", r.id);
    const bool first = !anchor.empty() && anchored.insert(anchor).second;
    // A rule no case tested (skip, or error before it was checked) is untested, never a pass.
    const bool untested = scenario::untested(r);
    out += fmt::format("<tr{} data-verdict=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>",
                       first ? fmt::format(" id=\"{}\"", esc(anchor)) : std::string(), verdict_word(r.verdict),
                       esc(r.id), scenario::level_name(r.level),
                       untested ? fmt::format("<span class=\"v v-untested\">{}</span>", upper(rule_verdict_word(r)))
                                : verdict_badge(r.verdict));
    if (untested) {
      out += fmt::format("<p class=\"untested-note\">{}: {}</p>", rule_verdict_word(r),
                         r.untested.empty() ? std::string("not tested") : linked_text(r.untested, anchors));
    }
    // An info rule is an option (may): whether the server uses it, not a defect.
    if (r.verdict == Verdict::info && r.uses_option) {
      out += fmt::format("<p class=\"info-note\">{}</p>", esc(option_use(r.uses_option)));
    }
    if (!r.summary.empty()) out += esc(r.summary);
    if (!r.apple.empty()) {
      out += "<blockquote>" + esc(r.apple) + "</blockquote>";
    } else if (r.grounding == "http") {
      out += "<blockquote>Apple is silent here: the rule rests on HTTP semantics (RFC 9110).</blockquote>";
    }
    if (!r.source.empty()) out += "<cite>" + esc(r.source) + "</cite>";
    out += "</td><td>";
    std::vector<std::string> links;
    for (const auto& id : r.cases) {
      const bool failed = std::find(r.failed_cases.begin(), r.failed_cases.end(), id) != r.failed_cases.end();
      links.push_back(case_link(anchors, id) + (failed ? " \u2717" : ""));
    }
    out += fmt::format("{}", fmt::join(links, "<br>"));
    out += "</td></tr>\n";
  }
  out += "</table></section>\n";
}

// A body as a reader wants it: a plist pretty-printed as XML (binary ones too, said so), other
// text as it is, other bytes as hex; cut at kHtmlBodyCap.
std::string render_body(std::string_view body, const std::optional<scenario::CutBody>& cut_body) {
  if (body.empty() && !cut_body) return "<p class=\"legend\">(empty body)</p>";
  std::string note;
  std::string shown;
  const std::size_t whole = cut_body ? cut_body->bytes : body.size();
  if (!cut_body && body.size() <= kHtmlBodyCap) {
    const auto format = plist::sniff(body);
    if (format) {
      if (auto parsed = plist::parse(body)) {
        shown = plist::to_xml(*parsed);
        note = *format == plist::Format::binary ? fmt::format("binary plist, {}, shown as XML", bytes_text(whole))
                                                : fmt::format("XML plist, {}", bytes_text(whole));
      }
    }
  }
  if (shown.empty() && note.empty()) {
    const std::string_view head = body.substr(0, kHtmlBodyCap);
    if (is_valid_utf8(head) || head.size() < body.size()) {
      shown = std::string(head);
      note = fmt::format("{}{}", bytes_text(whole), plist::sniff(body) ? ", not a well-formed plist" : "");
    } else {
      // Bytes that are not text: a hex dump, 32 bytes a line.
      for (std::size_t i = 0; i < head.size(); ++i) {
        shown += fmt::format("{:02x}", static_cast<unsigned char>(head[i]));
        shown += (i % 32 == 31) ? '\n' : ' ';
      }
      note = fmt::format("{}, not text: hex", bytes_text(whole));
    }
    if (whole > head.size()) {
      note += fmt::format(
          "; the first {} shown, the whole body{} is in report.json", bytes_text(head.size()),
          cut_body ? fmt::format(" (sha256 {}) was cut to {} there too", cut_body->sha256, bytes_text(body.size()))
                   : std::string());
    }
  }
  return fmt::format("<p class=\"legend\">{}</p><pre class=\"body\">{}</pre>", esc(note), esc(shown));
}

std::string render_headers(const net::Headers& headers) {
  if (headers.empty()) return "";
  std::string out = "<table class=\"hdr\">";
  for (const auto& h : headers)
    out += "<tr><td class=\"mono\">" + esc(h.name) + "</td><td class=\"mono\">" + esc(h.value) + "</td></tr>";
  return out + "</table>";
}

void render_exchange(std::string& out, const TranscriptEntry& e, std::size_t number, const std::string& anchor,
                     chr::sys_time<chr::microseconds> case_start, bool bad) {
  const net::Exchange& x = e.exchange;
  const auto offset = start_of(e) - case_start;
  const std::string step = !e.step ? "" : *e.step < 0 ? " \u00b7 enrollment" : fmt::format(" \u00b7 step {}", *e.step);
  out += fmt::format(
      "<details class=\"exchange{}\" id=\"{}\"{}><summary><span class=\"mono\">#{}</span> <code>{}</code> "
      "<b>{}</b> \u2192 <span class=\"st {}\">{}</span> \u00b7 {} \u00b7 +{:.2f} ms{}</summary>\n",
      bad ? " bad" : "", esc(anchor), bad ? " open" : "", number, esc(e.actor), esc(e.label), status_class(e),
      esc(answer_summary(e)), millis(x.elapsed), static_cast<double>(offset.count()) / 1000.0, step);
  out += "<div class=\"http\"><div class=\"req\"><h4>request</h4>";
  out += fmt::format("<div class=\"mono\">{} {}</div>", esc(x.request.method), esc(x.request.url));
  out += render_headers(x.request.headers);
  out += render_body(x.request.body, std::nullopt);
  out += "</div><div class=\"resp\"><h4>response</h4>";
  if (x.response) {
    out += fmt::format("<div class=\"mono st {}\">HTTP {} {}</div>", status_class(e), x.response->status,
                       esc(x.response->reason));
    out += render_headers(x.response->headers);
    out += render_body(x.response->body, e.response_body_cut);
  } else {
    out += fmt::format("<div class=\"st s-none\">no answer: {} ({})</div>", esc(net::transport_error_name(x.error)),
                       esc(x.error_detail));
  }
  std::vector<std::string> timing;
  timing.push_back("started " + utc_time(x.started));
  timing.push_back("took " + millis(x.elapsed));
  timing.push_back(x.reused_connection ? "kept-alive connection" : "new connection");
  if (x.tls) timing.push_back(x.tls_verified ? "TLS, verified" : "TLS, NOT verified");
  for (const auto& r : x.redirects) timing.push_back("redirected to " + r);
  out += fmt::format("</div><div class=\"timing\">{}</div></div></details>\n",
                     esc(fmt::format("{}", fmt::join(timing, " \u00b7 "))));
}

// Which identity each device presented, per attempt: a server that binds a certificate to a
// UDID refuses a device for a reason only this shows. The fingerprint is cut to 16 hex digits,
// whole in its tooltip and in report.json.
void render_devices(std::string& out, const CaseResult& c) {
  if (c.devices.empty()) return;
  const bool reruns = std::any_of(c.devices.begin(), c.devices.end(), [](const auto& d) { return d.attempt != 0; });
  out += "<table class=\"devices\"><tr>";
  if (reruns) out += "<th>attempt</th>";
  out += "<th>device</th><th>UDID</th><th>identity</th><th>SHA-256</th><th>subject CN</th></tr>\n";
  for (const auto& d : c.devices) {
    out += "<tr>";
    if (reruns)
      out += fmt::format("<td>{}</td>", d.attempt == 0 ? std::string("first") : fmt::format("re-run {}", d.attempt));
    out += fmt::format(
        "<td>{}</td><td><code>{}</code></td><td>{}</td><td><code title=\"{}\">{}</code></td><td>{}</td></tr>\n",
        esc(d.name), esc(d.udid), esc(d.identity.source), esc(d.identity.sha256), esc(d.identity.sha256.substr(0, 16)),
        esc(d.identity.common_name));
  }
  out += "</table>\n";
}

// What each channel's declarative client held after the case: Declarative Device Management is
// state, and the state is the evidence.
void render_declarations(std::string& out, const CaseResult& c) {
  if (c.declarations.empty()) return;
  out +=
      "<table class=\"devices declarations\"><tr><th>channel</th><th>declaration</th><th>Type</th>"
      "<th>ServerToken</th><th>active</th><th>valid</th></tr>\n";
  for (const auto& ch : c.declarations) {
    const auto channel =
        fmt::format("<td title=\"DeclarationsToken {}\">{}</td>", esc(ch.declarations_token), esc(ch.actor));
    if (ch.held.empty()) out += "<tr>" + channel + "<td colspan=\"5\">holds no declaration</td></tr>\n";
    for (const auto& d : ch.held) {
      out += fmt::format(
          "<tr>{}<td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
          channel, esc(d.identifier), esc(d.type), esc(d.server_token), d.active ? "yes" : "no",
          d.valid ? "yes" : "no");
    }
  }
  out += "</table>\n";
}

// How a case stands against the baseline, as a small badge on its summary line: "new" or
// "known" for a failure (baseline_mark, the word every view uses), "fixed" for a case that failed
// in the baseline and no longer does; nothing without a baseline.
std::string baseline_badge(const RunResult& run, const CaseResult& c) {
  std::string_view mark = baseline_mark(run, c.id);
  if (mark.empty() && run.baseline) {
    const auto& fixed = run.baseline->fixed;
    if (std::find(fixed.begin(), fixed.end(), c.id) != fixed.end()) mark = "fixed";
  }
  if (mark.empty()) return "";
  const std::string_view title = mark == "new"     ? "failing now, not in the baseline"
                                 : mark == "known" ? "failing in the baseline too"
                                                   : "failing in the baseline, not now";
  return fmt::format(" <span class=\"mark mark-{0}\" title=\"{1}\">{0}</span>", mark, title);
}

void render_case(std::string& out, const RunResult& run, const CaseResult& c, const std::string& anchor, bool open,
                 const CaseAnchors& anchors) {
  std::string search = fmt::format("{} {} {} {} {}", c.id, c.title, fmt::join(c.rules, " "), c.reason,
                                   scenario::verdict_name(c.verdict));
  // A device's UDID or certificate fingerprint finds the cases that used it.
  for (const auto& d : c.devices) search += " " + d.udid + " " + d.identity.sha256;
  search = ascii_lower(search);
  out += fmt::format(
      "<details class=\"case\" id=\"{}\" data-verdict=\"{}\" data-search=\"{}\"{}><summary>{} "
      "<code>{}</code>{} <span class=\"title\">{}</span> \u00b7 {} \u00b7 {} ms{}</summary>\n",
      esc(anchor), verdict_word(c.verdict), esc(search), open ? " open" : "", verdict_badge(c.verdict), esc(c.id),
      baseline_badge(run, c), esc(c.title), esc(fmt::format("{}", fmt::join(c.rules, ", "))), c.elapsed.count(),
      c.flaky ? " <span class=\"flaky\">FLAKY</span>" : "");
  out += "<div class=\"case-body\">";
  if (c.verdict == Verdict::info) out += std::string("<p class=\"info-note\"><b>") + kInfoCaseLabel + "</b></p>";
  if (!c.reason.empty()) out += "<p><b>why:</b> " + linked_text(c.reason, anchors) + "</p>";
  if (!c.attempts.empty()) {
    out += fmt::format(
        "<p>attempts on fresh devices: {}{}</p>", esc(fmt::format("{}", fmt::join(c.attempts, ", "))),
        c.flaky ? " \u2014 <span class=\"flaky\">flaky</span>: the verdict did not repeat; the worst is kept" : "");
  }
  if (!c.reproducer.empty()) out += "<p><b>reproducer:</b></p><pre class=\"repro\">" + esc(c.reproducer) + "</pre>";
  render_devices(out, c);
  render_declarations(out, c);
  if (!c.findings.empty()) {
    out +=
        "<table class=\"findings\"><tr><th>result</th><th>rule</th><th>level</th><th>step</th><th>expected</th>"
        "<th>actual</th></tr>\n";
    for (const Finding& f : c.findings) {
      const std::string rule_anchor = plain_anchor("rule-", f.rule);
      const std::string rule =
          rule_anchor.empty() ? fmt::format("<code>{}</code>", esc(f.rule))
                              : fmt::format("<a href=\"{}\"><code>{}</code></a>", href_to(rule_anchor), esc(f.rule));
      out += fmt::format(
          "<tr class=\"finding-{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td></tr>\n",
          finding_result(f), rule, scenario::level_name(f.level),
          f.step < 0 ? std::string("enroll") : std::to_string(f.step), esc(f.expected), esc(f.actual));
    }
    out += "</table>\n";
  }
  const auto exchanges = in_time_order(c);
  if (!exchanges.empty()) {
    out += "<div class=\"diagram\">" + sequence_diagram_svg(c, anchor) + "</div>\n";
    out +=
        "<p class=\"legend\">Each exchange is a solid request and a dashed answer; grey bars are the wait for an "
        "answer, and overlapping bars are requests in flight at once. Red shading marks a step that broke a "
        "rule. Click an arrow for the exchange.</p>\n";
  }
  const auto broken = failed_steps(c);
  out += fmt::format("<div class=\"transcript\"><h4>transcript: {} exchange(s)</h4>\n", exchanges.size());
  const auto case_start = exchanges.empty() ? chr::sys_time<chr::microseconds>{} : start_of(*exchanges.front());
  for (std::size_t k = 0; k < exchanges.size(); ++k) {
    const bool bad = exchanges[k]->step && broken.count(*exchanges[k]->step) != 0;
    render_exchange(out, *exchanges[k], k + 1, exchange_anchor(anchor, k + 1), case_start, bad);
  }
  out += "</div></div></details>\n";
}

// The cases in the order a reader needs them: first "Needs attention", the failing and erroring
// cases in run order, then the warnings; then the rest by rule area, in the catalog's order and
// each area in run order. A case appears once: its id is its anchor and must be unique, the
// filters count each once, and a transcript twice would double the page. An area's heading says
// how many of its cases are in Needs attention instead.
void render_cases(std::string& out, const RunResult& run, const CaseAnchors& anchors) {
  std::vector<const CaseResult*> all;
  for (const auto& c : run.cases) all.push_back(&c);
  const auto counts = count_by_verdict(all);
  out += "<section id=\"cases\"><h2>Cases</h2><div id=\"filters\">";
  for (Verdict v : kVerdictOrder) {
    out += fmt::format("<label><input type=\"checkbox\" class=\"verdict-filter\" value=\"{}\" checked> {} {}</label>",
                       verdict_word(v), verdict_badge(v), count_of(counts, v));
  }
  out += fmt::format(
      "<input type=\"search\" id=\"text-filter\" placeholder=\"filter by id, title, rule or reason\">"
      "<span><span id=\"shown\">{}</span> of {} shown</span>"
      "<button type=\"button\" id=\"expand-failed\">open all not passing</button>"
      "<button type=\"button\" id=\"collapse-all\">close all</button></div>\n",
      run.cases.size(), run.cases.size());

  auto needs_attention = [](const CaseResult& c) {
    return c.verdict == Verdict::fail || c.verdict == Verdict::error || c.verdict == Verdict::warn;
  };
  // Open: the cases that fail the run (fail, error; under --strict a warn too, as the exit code
  // counts it). The others stay closed: a page of open transcripts hides what matters.
  auto render = [&](std::size_t i) {
    const CaseResult& c = run.cases[i];
    render_case(out, run, c, anchors.by_index[i], scenario::counts_as_failure(c, run.conditions.strict), anchors);
  };
  // Failures and errors together in run order (each fails the run), then the warnings.
  std::vector<std::size_t> attention;
  auto collect = [&](auto picked) {
    for (std::size_t i = 0; i < run.cases.size(); ++i) {
      if (picked(run.cases[i].verdict)) attention.push_back(i);
    }
  };
  collect([](Verdict v) { return v == Verdict::fail || v == Verdict::error; });
  collect([](Verdict v) { return v == Verdict::warn; });
  if (!attention.empty()) {
    out += fmt::format(
        "<section class=\"group attention\" id=\"attention\"><h3>Needs attention: {} \u00b7 "
        "<span class=\"legend\">failing and erroring cases, then warnings; the rest follow by rule area</span></h3>\n",
        attention.size());
    for (std::size_t i : attention) render(i);
    out += "</section>\n";
  }

  std::map<std::string, std::vector<const CaseResult*>> by_area;
  std::map<std::string, std::vector<std::size_t>> rest_by_area;
  for (std::size_t i = 0; i < run.cases.size(); ++i) {
    const std::string area = rule_area(run.cases[i]);
    by_area[area].push_back(&run.cases[i]);
    if (!needs_attention(run.cases[i])) rest_by_area[area].push_back(i);
  }
  for (const auto& area : ordered_areas(by_area)) {
    const std::size_t total = by_area.at(area).size();
    const auto rest = rest_by_area.find(area);
    const std::size_t here = rest == rest_by_area.end() ? 0 : rest->second.size();
    const std::string anchor = plain_anchor("area-", area);
    std::string heading = fmt::format("{} \u00b7 {} case{}", esc(area), total, total == 1 ? "" : "s");
    if (here < total) {
      heading += fmt::format(" <span class=\"legend\">({} in <a href=\"#attention\">Needs attention</a>)</span>",
                             total - here);
    }
    out += fmt::format("<section class=\"group area\"{} data-area=\"{}\"><h3>{}</h3>\n",
                       anchor.empty() ? std::string() : fmt::format(" id=\"{}\"", esc(anchor)), esc(area), heading);
    if (here > 0) {
      for (std::size_t i : rest->second) render(i);
    }
    out += "</section>\n";
  }
  out += "</section>\n";
}

}  // namespace

std::string to_html(const RunResult& run) { return to_html(run, std::nullopt); }

std::string to_html(const RunResult& run, const std::optional<CertificationStatus>& certification) {
  const auto assessment = scenario::assess(run);  // once: the title and the head both show it
  std::string out;
  out.reserve(256 * 1024);
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  // The page fetches nothing: whatever a target managed to put in it, the browser loads no
  // resource from anywhere.
  out +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
      "script-src 'unsafe-inline'; img-src data:\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>mdmconform: {} \u2014 {}</title>\n", esc(run.target_name),
                     esc(scenario::overall_title(assessment.overall)));
  out += "<style>";
  out += kStyle;
  out += "</style></head><body><main>\n";
  const CaseAnchors anchors(run);
  render_record(out, run, assessment, anchors, certification);
  render_counts(out, run);
  render_rules(out, run, anchors);
  render_cases(out, run, anchors);
  out += fmt::format(
      "<p class=\"legend\">Made by mdmconform {} from report.json; "
      "<code>mdmconform report report.json --format html</code> makes it again.</p>\n",
      esc(run.harness_version));
  out += "</main><script>";
  out += kScript;
  out += "</script></body></html>\n";
  return out;
}

std::span<const std::string_view> rule_area_order() {
  // The areas in the order specs/rules.yaml first names them; html_test checks the two agree.
  static constexpr std::array<std::string_view, 11> kAreaOrder = {"ENR", "NET", "CHN", "SYN", "UCF", "CMD",
                                                                  "ROB", "PRF", "CHK", "PSH", "DDM"};
  return kAreaOrder;
}

}  // namespace mdmc::report
