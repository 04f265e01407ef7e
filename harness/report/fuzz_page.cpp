// The fuzz run's page and summary, from its record (fuzz::FuzzRun, what fuzz/summary.json holds).
// A value the record lacks (a summary from another version, or one edited by hand) shows as "-".
#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "harness/fuzz/campaign.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/report/html.hpp"

namespace mdmc::report {
namespace {

using namespace detail;

// Findings listed on the page; the rest are counted (all are files in fuzz/findings/).
constexpr std::size_t kFuzzMaxFindingsShown = 1000;

std::optional<double> as_number(const std::optional<std::uint64_t>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}
std::optional<double> as_number(const std::optional<int>& v) { return v ? std::optional<double>(*v) : std::nullopt; }
std::optional<double> as_number(const std::optional<double>& v) { return v; }

// 12345 as "12345", 800.5 as "800.5", nothing as "-".
std::string number_text(std::optional<double> v) {
  if (!v) return "-";
  if (std::abs(*v) < 1e15 && *v == std::floor(*v)) return fmt::format("{}", static_cast<long long>(*v));
  return fmt::format("{:.1f}", *v);
}

std::string text_or_dash(const std::string& s) { return s.empty() ? "-" : s; }

// Up to kFuzzChartMaxPoints points, evenly chosen from the whole run when there are more.
std::vector<std::pair<double, double>> series(const fuzz::FuzzRun& run, std::string_view field) {
  std::vector<std::pair<double, double>> all;
  for (const auto& entry : run.timeline) {
    const auto v = field == "exec_per_sec" ? entry.exec_per_sec : as_number(entry.corpus_size);
    if (entry.t_s && v) all.emplace_back(*entry.t_s, *v);
  }
  if (all.size() <= kFuzzChartMaxPoints) return all;
  std::vector<std::pair<double, double>> out;
  out.reserve(kFuzzChartMaxPoints);
  for (std::size_t k = 0; k < kFuzzChartMaxPoints; ++k) {
    out.push_back(all[k * (all.size() - 1) / (kFuzzChartMaxPoints - 1)]);
  }
  return out;
}

// The smallest of 1, 2 or 5 times a power of ten that is at least v (an axis end).
double nice_ceiling(double v) {
  if (v <= 0) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= v) return m * power;
  }
  return 10 * power;
}

// A line chart of one timeline field against time: <svg class="chart" data-field=... data-points=N>
// with one <circle class="point"> per point.
std::string line_chart(const fuzz::FuzzRun& run, std::string_view field, std::string_view title) {
  const auto points = series(run, field);
  constexpr double kWidth = 640, kHeight = 260, kLeft = 64, kRight = 16, kTop = 28, kBottom = 36;
  double max_t = 0, max_v = 0;
  for (const auto& [t, v] : points) {
    max_t = std::max(max_t, t);
    max_v = std::max(max_v, v);
  }
  max_t = nice_ceiling(max_t);
  max_v = nice_ceiling(max_v);
  auto x = [&](double t) { return kLeft + std::clamp(t / max_t, 0.0, 1.0) * (kWidth - kLeft - kRight); };
  auto y = [&](double v) { return kHeight - kBottom - std::clamp(v / max_v, 0.0, 1.0) * (kHeight - kTop - kBottom); };
  std::string svg = fmt::format(
      "<svg class=\"chart\" data-field=\"{0}\" data-points=\"{1}\" xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"{2}\" height=\"{3}\" viewBox=\"0 0 {2} {3}\" role=\"img\" aria-label=\"{4}\">\n"
      "<text class=\"title\" x=\"{5}\" y=\"18\">{4}</text>\n",
      html_escape(field), points.size(), kWidth, kHeight, html_escape(title), kLeft);
  for (int k = 0; k <= 4; ++k) {
    const double v = max_v * k / 4;
    const double t = max_t * k / 4;
    svg += fmt::format(
        "<line class=\"grid\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\"/>"
        "<text class=\"ylabel\" x=\"{3}\" y=\"{4:.1f}\">{5}</text>"
        "<text class=\"xlabel\" x=\"{6:.1f}\" y=\"{7}\">{8} s</text>\n",
        kLeft, y(v), kWidth - kRight, kLeft - 6, y(v) + 4, number_text(v), x(t), kHeight - kBottom + 16,
        number_text(t));
  }
  svg += fmt::format("<text class=\"xlabel\" x=\"{}\" y=\"{}\">time since start</text>\n",
                     kLeft + (kWidth - kLeft - kRight) / 2, kHeight - 4);
  if (points.empty()) {
    svg += fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\">no timeline in summary.json</text>\n", kLeft + 20,
                       kTop + 40);
  } else {
    std::string line;
    for (const auto& [t, v] : points) line += fmt::format("{:.1f},{:.1f} ", x(t), y(v));
    svg += fmt::format("<polyline class=\"line\" points=\"{}\"/>\n", line);
    for (const auto& [t, v] : points) {
      svg += fmt::format(
          "<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\"><title>{} s: {}</title></circle>\n", x(t),
          y(v), number_text(t), number_text(v));
    }
  }
  return svg + "</svg>";
}

constexpr std::string_view kFuzzStyle = R"css(
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1f2328}
main{max-width:1400px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.result{display:inline-block;font-size:24px;font-weight:700;padding:8px 16px;border-radius:8px;color:#fff}
.r-clean{background:#1a7f37}.r-findings{background:#cf222e}
.charts{display:flex;gap:16px;flex-wrap:wrap}
svg.chart{border:1px solid #d0d7de;border-radius:6px}
svg.chart text{font:11px -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;fill:#57606a}
svg.chart .title{font-weight:600;fill:#1f2328;font-size:13px}
svg.chart .ylabel{text-anchor:end}svg.chart .xlabel{text-anchor:middle}
svg.chart .grid{stroke:#eaeef2}
svg.chart .line{fill:none;stroke:#0969da;stroke-width:2}
svg.chart .point{fill:#0969da}
)css";

}  // namespace

std::string render_fuzz_html(const fuzz::FuzzRun& run) {
  const std::size_t finding_count = run.findings.size();
  std::string out;
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n";
  out += fmt::format("<title>mdmconform fuzz: {} \u2014 {} finding(s)</title><style>{}</style></head><body><main>\n",
                     html_escape(text_or_dash(run.target_name)), finding_count, kFuzzStyle);
  out += "<h1>mdmconform fuzz run</h1>\n<table id=\"record\">\n";
  auto row = [&](std::string_view name, const std::string& value) {
    out += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", html_escape(name), html_escape(value));
  };
  row("target", text_or_dash(run.target_name));
  row("target URL", text_or_dash(run.target_url));
  row("harness version", text_or_dash(run.harness_version));
  row("started", text_or_dash(run.started_at));
  row("elapsed", number_text(as_number(run.elapsed_s)) + " s of " + number_text(as_number(run.max_time_s)) + " s");
  row("jobs", number_text(as_number(run.jobs)));
  const auto interrupted = run.interrupted;
  row("interrupted", interrupted ? (*interrupted ? "yes: the run stopped early" : "no") : "-");
  out += fmt::format("</table>\n<p><span id=\"fuzz-result\" class=\"result {}\" data-findings=\"{}\">{}</span></p>\n",
                     finding_count == 0 ? "r-clean" : "r-findings", finding_count,
                     finding_count == 0 ? std::string("no findings") : fmt::format("{} finding(s)", finding_count));

  out +=
      "<h2>Counts</h2><table id=\"fuzz-counts\"><tr><th>executions</th><th>executions/s</th><th>corpus</th>"
      "<th>features</th><th>findings</th></tr>\n";
  out += fmt::format(
      "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
      "<td class=\"n\">{}</td></tr></table>\n",
      number_text(as_number(run.executions)), number_text(as_number(run.exec_per_sec)),
      number_text(as_number(run.corpus_size)), number_text(as_number(run.features)), finding_count);

  out += "<h2>Over time</h2><div class=\"charts\">\n";
  out += line_chart(run, "exec_per_sec", "executions per second");
  out += line_chart(run, "corpus_size", "corpus size (inputs)");
  out += "</div>\n";

  out += fmt::format("<h2>Findings ({})</h2>\n", finding_count);
  if (finding_count == 0) {
    out += "<p>No oracle fired.</p>\n";
  } else {
    out +=
        "<table id=\"findings\"><tr><th>oracle</th><th>endpoint</th><th>what happened</th><th>reproducer "
        "file</th></tr>\n";
    std::size_t shown = 0;
    for (const auto& f : run.findings) {
      if (shown++ == kFuzzMaxFindingsShown) break;
      out += fmt::format("<tr class=\"finding\"><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>\n",
                         html_escape(text_or_dash(f.oracle)), html_escape(text_or_dash(f.endpoint)),
                         html_escape(text_or_dash(f.summary)), html_escape(text_or_dash(f.file)));
    }
    out += "</table>\n";
    if (finding_count > kFuzzMaxFindingsShown) {
      out += fmt::format("<p>and {} more, in fuzz/findings/</p>\n", finding_count - kFuzzMaxFindingsShown);
    }
    out += "<p><code>mdmconform replay FILE</code> sends a finding again and shows the exchange.</p>\n";
  }
  out += "</main></body></html>\n";
  return out;
}

std::string render_fuzz_markdown(const fuzz::FuzzRun& run) {
  const std::size_t finding_count = run.findings.size();
  std::string out =
      fmt::format("## mdmconform fuzz: {} against {}\n\n",
                  finding_count == 0 ? std::string("no findings") : fmt::format("{} finding(s)", finding_count),
                  markdown_code(text_or_dash(run.target_name)));
  out += fmt::format("{} executions ({}/s) in {} s \u00b7 corpus {} \u00b7 features {}{}\n",
                     number_text(as_number(run.executions)), number_text(as_number(run.exec_per_sec)),
                     number_text(as_number(run.elapsed_s)), number_text(as_number(run.corpus_size)),
                     number_text(as_number(run.features)),
                     run.interrupted.value_or(false) ? " \u00b7 **interrupted**" : "");
  if (finding_count == 0) return out;
  out += fmt::format("\n### Findings ({})\n\n", finding_count);
  std::size_t shown = 0;
  for (const auto& f : run.findings) {
    if (shown++ == kMarkdownMaxListed) break;
    out += fmt::format("- {} on {}: {}\n  reproducer: {}\n", markdown_code(text_or_dash(f.oracle)),
                       markdown_text(text_or_dash(f.endpoint)), markdown_text(text_or_dash(f.summary)),
                       markdown_code(text_or_dash(f.file)));
  }
  if (finding_count > kMarkdownMaxListed) {
    out += fmt::format("- and {} more: see the fuzz page\n", finding_count - kMarkdownMaxListed);
  }
  return out;
}

}  // namespace mdmc::report
