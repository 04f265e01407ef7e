// The load run's page, summary and folder, from its record (load::LoadReport).
#include "harness/report/load_page.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "harness/base/clock.hpp"
#include "harness/base/files.hpp"
#include "harness/report/detail/text.hpp"
#include "harness/report/html.hpp"

namespace mdmc::report {
namespace {

using namespace detail;
using load::LoadReport;
using load::Quantiles;

// 12345 as "12345", 800.46 as "800.5".
std::string number_text(double v) {
  if (!std::isfinite(v)) return "-";
  if (std::abs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:.1f}", v);
}

// A latency in milliseconds, with the digits that matter: "0.042", "3.18", "21.5", "10000".
std::string ms_text(double ms) {
  if (ms <= 0) return "0";
  if (ms < 1) return fmt::format("{:.3f}", ms);
  if (ms < 10) return fmt::format("{:.2f}", ms);
  if (ms < 100) return fmt::format("{:.1f}", ms);
  return fmt::format("{:.0f}", ms);
}

std::string text_or_dash(const std::string& s) { return s.empty() ? "-" : s; }

double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

std::string status_text(int status) {
  if (status == 0) return "no response";
  if (status < 0) return "other";
  return std::to_string(status);
}

// "shard 1 of 3", "shards 0, 1, 2 of 3 (merged)", "one process".
std::string shard_text(const LoadReport& r) {
  if (!r.merged_shards.empty()) {
    std::string list;
    for (int i : r.merged_shards) list += (list.empty() ? "" : ", ") + std::to_string(i);
    const bool complete = r.merged_shards.size() == static_cast<std::size_t>(r.shard_count);
    return fmt::format(
        "shards {} of {} (merged{})", list, r.shard_count,
        complete ? "" : fmt::format("; {} missing", r.shard_count - static_cast<int>(r.merged_shards.size())));
  }
  if (r.shard_count <= 1) return "one process, the whole fleet";
  return fmt::format("shard {} of {} (indices 0 to {})", r.shard_index, r.shard_count, r.shard_count - 1);
}

std::string result_text(const LoadReport& r) {
  if (r.findings_total == 0) return "no invariant broken";
  return fmt::format("{} finding{}", r.findings_total, r.findings_total == 1 ? "" : "s");
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

struct Series {
  std::string_view name;                          // the legend's
  int colour = 0;                                 // the class of its line: "s0" blue, "s1" red
  std::vector<std::pair<double, double>> points;  // (seconds since the start, value)
};

// A line chart of series against time: <svg class="chart" id=... data-points=N> (N: the first
// series' points), a polyline per series, a marker per point up to kLoadChartMaxMarkers. A log
// scale spans whole decades of the values (non-positive values are drawn at the bottom).
std::string line_chart(std::string_view id, std::string_view title, std::string_view unit,
                       const std::vector<Series>& series, double max_t, bool log_scale) {
  constexpr double kWidth = 640, kHeight = 260, kLeft = 64, kRight = 16, kTop = 40, kBottom = 36;
  double max_v = 0, min_positive = 0;
  for (const auto& s : series) {
    for (const auto& [t, v] : s.points) {
      max_v = std::max(max_v, v);
      if (v > 0 && (min_positive == 0 || v < min_positive)) min_positive = v;
    }
  }
  // Time ticks every 1, 2 or 5 times a power of ten, at most five of them past zero.
  const double tick_t = nice_ceiling(max_t / 5);
  const int ticks_t = std::max(1, static_cast<int>(std::ceil(max_t / tick_t - 1e-9)));
  max_t = tick_t * ticks_t;
  double low = 0, high = nice_ceiling(max_v);
  if (log_scale) {
    low = min_positive > 0 ? std::floor(std::log10(min_positive)) : -1;
    high = max_v > 0 ? std::ceil(std::log10(max_v)) : 0;
    if (high <= low) high = low + 1;
  }
  auto x = [&](double t) { return kLeft + std::clamp(t / max_t, 0.0, 1.0) * (kWidth - kLeft - kRight); };
  auto scaled = [&](double v) {
    if (!log_scale) return std::clamp(v / high, 0.0, 1.0);
    return v > 0 ? std::clamp((std::log10(v) - low) / (high - low), 0.0, 1.0) : 0.0;
  };
  auto y = [&](double v) { return kHeight - kBottom - scaled(v) * (kHeight - kTop - kBottom); };
  const std::size_t points = series.empty() ? 0 : series.front().points.size();
  std::string svg = fmt::format(
      "<svg class=\"chart\" id=\"{0}\" data-points=\"{1}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{2}\" "
      "height=\"{3}\" viewBox=\"0 0 {2} {3}\" role=\"img\" aria-label=\"{4}\">\n"
      "<text class=\"title\" x=\"{5}\" y=\"16\">{4}</text>\n",
      html_escape(id), points, kWidth, kHeight, html_escape(title), kLeft);
  // The legend, under the title.
  double legend_x = kLeft;
  for (std::size_t k = 0; k < series.size(); ++k) {
    svg += fmt::format(
        "<line class=\"line s{0}\" x1=\"{1}\" y1=\"28\" x2=\"{2}\" y2=\"28\"/><text x=\"{3}\" y=\"32\">{4}</text>\n",
        series[k].colour, legend_x, legend_x + 16, legend_x + 20, html_escape(series[k].name));
    legend_x += 40 + 7.0 * static_cast<double>(series[k].name.size());
  }
  const int rows = log_scale ? static_cast<int>(high - low) : 4;
  for (int k = 0; k <= rows; ++k) {
    const double v = log_scale ? std::pow(10.0, low + k) : high * k / 4;
    svg += fmt::format(
        "<line class=\"grid\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\"/>"
        "<text class=\"ylabel\" x=\"{3}\" y=\"{4:.1f}\">{5}</text>\n",
        kLeft, y(v), kWidth - kRight, kLeft - 6, y(v) + 4, log_scale ? fmt::format("{:g}", v) : number_text(v));
  }
  for (int k = 0; k <= ticks_t; ++k) {
    const double t = tick_t * k;
    svg += fmt::format("<text class=\"xlabel\" x=\"{:.1f}\" y=\"{}\">{} s</text>\n", x(t), kHeight - kBottom + 16,
                       number_text(t));
  }
  svg += fmt::format("<text class=\"xlabel\" x=\"{}\" y=\"{}\">time since start ({})</text>\n",
                     kLeft + (kWidth - kLeft - kRight) / 2, kHeight - 4, html_escape(unit));
  if (points == 0) {
    svg += fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\">nothing measured</text>\n", kLeft + 20, kTop + 40);
  }
  for (std::size_t k = 0; k < series.size(); ++k) {
    if (series[k].points.empty()) continue;
    std::string line;
    for (const auto& [t, v] : series[k].points) line += fmt::format("{:.1f},{:.1f} ", x(t), y(v));
    svg += fmt::format("<polyline class=\"line s{}\" points=\"{}\"/>\n", series[k].colour, line);
    if (series[k].points.size() > kLoadChartMaxMarkers) continue;
    for (const auto& [t, v] : series[k].points) {
      svg += fmt::format(
          "<circle class=\"point s{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\"><title>{} at {} s: {}</title></circle>\n",
          series[k].colour, x(t), y(v), html_escape(series[k].name), number_text(t),
          log_scale ? ms_text(v) : number_text(v));
    }
  }
  return svg + "</svg>";
}

std::string charts(const LoadReport& r) {
  const auto timeline = r.figures.timeline(r.elapsed_s);
  double max_t = r.elapsed_s;
  Series exchanges{"exchanges/s", 0, {}}, errors{"errors/s", 1, {}}, p50{"p50", 0, {}}, p99{"p99", 1, {}};
  for (const auto& interval : timeline) {
    // Each interval's point sits at its middle.
    const double t = interval.start_s + interval.length_s / 2;
    max_t = std::max(max_t, interval.start_s + interval.length_s);
    exchanges.points.emplace_back(t, per_second(interval.exchanges, interval.length_s));
    errors.points.emplace_back(t, per_second(interval.errors, interval.length_s));
    if (interval.latency.count == 0) continue;
    p50.points.emplace_back(t, interval.latency.p50_ms);
    p99.points.emplace_back(t, interval.latency.p99_ms);
  }
  const std::string interval =
      fmt::format("intervals of {} s", number_text(static_cast<double>(r.figures.interval().count()) / 1e3));
  return "<div class=\"charts\">\n" +
         // Errors on a scale of their own: beside thousands of exchanges a few errors would not show.
         line_chart("chart-throughput", "exchanges per second", interval, {exchanges}, max_t, false) +
         line_chart("chart-errors", "errors per second", interval, {errors}, max_t, false) +
         line_chart("chart-latency", "latency per interval (ms, log scale)", interval, {p50, p99}, max_t, true) +
         "</div>\n";
}

// The quantile columns of a latency row; the count first unless the row says it otherwise.
std::string quantile_cells(const Quantiles& q, bool with_count = true) {
  std::string cells = with_count ? fmt::format("<td class=\"n\">{}</td>", q.count) : std::string();
  for (double ms : {q.p50_ms, q.p90_ms, q.p99_ms, q.p999_ms, q.max_ms}) {
    cells += fmt::format("<td class=\"n\">{}</td>", ms_text(ms));
  }
  return cells;
}

std::string quantile_heads(bool with_count = true) {
  return std::string(with_count ? "<th>count</th>" : "") +
         "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>";
}

// An excerpt for <pre>: text as it is, other bytes as hex (escaping is the caller's).
std::string excerpt_text(const std::string& bytes) {
  if (bytes.empty()) return "(empty)";
  if (is_valid_utf8(bytes)) return bytes;
  std::string hex = fmt::format("{} bytes that are not text:\n", bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    hex += fmt::format("{:02x}{}", static_cast<unsigned char>(bytes[i]), (i + 1) % 32 == 0 ? "\n" : " ");
  }
  return hex;
}

constexpr std::string_view kLoadStyle = R"css(
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1f2328}
main{max-width:1400px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-all;max-height:240px;overflow:auto;margin:0}
.result{display:inline-block;font-size:24px;font-weight:700;padding:8px 16px;border-radius:8px;color:#fff}
.r-clean{background:#1a7f37}.r-findings{background:#cf222e}
#interrupted{font-size:18px;font-weight:700;background:#fff8c5;border:2px solid #bf8700;border-radius:8px;padding:10px 16px}
.charts{display:flex;gap:16px;flex-wrap:wrap}
svg.chart{border:1px solid #d0d7de;border-radius:6px}
svg.chart text{font:11px -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;fill:#57606a}
svg.chart .title{font-weight:600;fill:#1f2328;font-size:13px}
svg.chart .ylabel{text-anchor:end}svg.chart .xlabel{text-anchor:middle}
svg.chart .grid{stroke:#eaeef2}
svg.chart .line{fill:none;stroke-width:2}svg.chart .s0{stroke:#0969da}svg.chart .s1{stroke:#cf222e}
svg.chart .point.s0{fill:#0969da}svg.chart .point.s1{fill:#cf222e}
details.finding{margin:6px 0}details.finding summary{cursor:pointer}
.note{color:#57606a}
)css";

}  // namespace

std::string render_load_html(const LoadReport& r) {
  const Quantiles overall = r.figures.overall();
  std::string out;
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n";
  out += fmt::format("<title>mdmconform load: {} \u2014 {}{}</title><style>{}</style></head><body><main>\n",
                     html_escape(text_or_dash(r.target)), html_escape(result_text(r)),
                     r.interrupted ? " (interrupted)" : "", kLoadStyle);
  out += "<h1>mdmconform load run</h1>\n";
  if (r.interrupted) {
    out += fmt::format(
        "<p id=\"interrupted\">Interrupted{} after {} s of {} s: the figures are what was measured until then; "
        "commands still outstanding when it stopped ({}) are not counted as lost.</p>\n",
        r.interrupted_reason.empty() ? "" : " by " + html_escape(r.interrupted_reason), number_text(r.elapsed_s),
        number_text(r.duration_s), r.commands.outstanding);
  }
  out += fmt::format("<p><span id=\"load-result\" class=\"result {}\" data-findings=\"{}\">{}</span></p>\n",
                     r.findings_total == 0 ? "r-clean" : "r-findings", r.findings_total, html_escape(result_text(r)));

  out += "<table id=\"record\">\n";
  auto row = [&](std::string_view name, const std::string& value) {
    out += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", html_escape(name), html_escape(value));
  };
  row("target", text_or_dash(r.target));
  row("target URL", text_or_dash(r.target_url));
  row("harness version", text_or_dash(r.harness_version));
  row("started", text_or_dash(r.started_utc));
  row("seed", std::to_string(r.seed));
  row("shard", shard_text(r));
  row("fleet", fmt::format("{} devices \u00d7 {} users each ({} channels in this record)", r.devices,
                           r.users_per_device, r.channels));
  row("duration", fmt::format("{} s asked, {} s elapsed", number_text(r.duration_s), number_text(r.elapsed_s)));
  row("rate", r.rate > 0 ? fmt::format("{} exchanges/s at most", number_text(r.rate)) : "unlimited");
  row("commands per minute", number_text(r.commands_per_minute));
  row("interrupted", r.interrupted ? "yes" + (r.interrupted_reason.empty() ? "" : ": " + r.interrupted_reason) : "no");
  out += "</table>\n";

  out += fmt::format(
      "<h2>Totals</h2><table id=\"totals\"><tr><th>exchanges</th><th>exchanges/s</th><th>errors</th>{}</tr>\n"
      "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}</tr></table>\n",
      quantile_heads(false), r.figures.exchanges(), number_text(per_second(r.figures.exchanges(), r.elapsed_s)),
      r.figures.errors(), quantile_cells(overall, false));

  out += "<h2>Over time</h2>\n" + charts(r);

  out += fmt::format(
      "<h2>Latency by message and status</h2><table id=\"latency\"><tr><th>message</th><th>status</th>{}</tr>\n",
      quantile_heads());
  for (const auto& [key, q] : r.figures.latency()) {
    out += fmt::format("<tr class=\"latency-row\"><td>{}</td><td>{}</td>{}</tr>\n", html_escape(key.message),
                       status_text(key.status), quantile_cells(q));
  }
  out += fmt::format("<tr class=\"all\"><th>all</th><th></th>{}</tr></table>\n", quantile_cells(overall));
  out += fmt::format(
      "<p class=\"note\">Each quantile is the upper edge of the histogram bin it falls in: never below the measured "
      "value and at most {:.0f} % above it ({:.0f} % in the chart's intervals); max is exact.</p>\n",
      load::kLatencyRelativeError * 100, load::kTimelineRelativeError * 100);

  const auto kinds = r.figures.errors_by_kind();
  out += fmt::format("<h2>Errors by kind ({})</h2>\n", r.figures.errors());
  if (kinds.empty()) {
    out += "<p>No errors.</p>\n";
  } else {
    out += "<table id=\"errors\"><tr><th>kind</th><th>count</th></tr>\n";
    for (const auto& [kind, n] : kinds) {
      out += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>\n", html_escape(kind), n);
    }
    out += "</table>\n";
  }

  const auto& c = r.commands;
  out += fmt::format(
      "<h2>Commands</h2><table id=\"commands\"><tr><th>queued</th><th>refused</th><th>delivered</th>"
      "<th>acknowledged</th><th>NotNow</th><th>Error</th><th>outstanding at the end</th><th>not queued by the "
      "run</th></tr>\n"
      "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
      "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>\n",
      c.queued, c.refused, c.delivered, c.acknowledged, c.not_now, c.error, c.outstanding, c.not_queued);

  out += fmt::format("<h2>Findings ({})</h2>\n", r.findings_total);
  if (r.findings_total == 0) {
    out += "<p>Every invariant held.</p>\n";
  } else {
    std::size_t shown = 0;
    for (const auto& f : r.findings) {
      if (shown++ == kLoadPageMaxFindings) break;
      out += fmt::format(
          "<details class=\"finding\"{}><summary><b>{}</b> on <code>{}</code>{} at {} s: {}</summary>\n",
          shown <= 10 ? " open" : "", html_escape(text_or_dash(f.invariant)), html_escape(text_or_dash(f.channel)),
          f.command_uuid.empty() ? "" : fmt::format(" (command <code>{}</code>)", html_escape(f.command_uuid)),
          number_text(f.at_s), html_escape(text_or_dash(f.detail)));
      if (!f.exchanges.empty()) {
        out +=
            "<table class=\"exchanges\"><tr><th>at s</th><th>channel</th><th>message</th><th>status</th>"
            "<th>request</th><th>response</th></tr>\n";
        for (const auto& e : f.exchanges) {
          out += fmt::format(
              "<tr><td class=\"n\">{:.3f}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td>"
              "<td><pre>{}</pre></td></tr>\n",
              e.at_s, html_escape(e.channel), html_escape(e.message), status_text(e.status),
              html_escape(excerpt_text(e.request_excerpt)), html_escape(excerpt_text(e.response_excerpt)));
        }
        out += "</table>\n";
      }
      out += "</details>\n";
    }
    const std::uint64_t listed = std::min<std::uint64_t>(shown, r.findings.size());
    if (r.findings_total > listed) {
      out += fmt::format("<p>and {} more, counted but not kept (the record keeps {}).</p>\n", r.findings_total - listed,
                         load::kMaxFindings);
    }
  }

  out +=
      "<h2>The harness</h2><table id=\"usage\"><tr><th>process</th><th>CPU user s</th><th>CPU system s</th>"
      "<th>peak RSS MiB</th></tr>\n";
  auto usage_row = [&](const std::string& name, const load::Usage& u) {
    out += fmt::format(
        "<tr><td>{}</td><td class=\"n\">{:.2f}</td><td class=\"n\">{:.2f}</td><td class=\"n\">{:.1f}</td></tr>\n",
        html_escape(name), u.cpu_user_s, u.cpu_system_s, static_cast<double>(u.peak_rss_kib) / 1024);
  };
  for (std::size_t i = 0; i < r.shards_usage.size() && i < r.merged_shards.size(); ++i) {
    usage_row(fmt::format("shard {}", r.merged_shards[i]), r.shards_usage[i]);
  }
  usage_row(r.merged_shards.empty() ? "this run" : "all (CPU summed, RSS the largest)", r.harness);
  out += "</table>\n</main></body></html>\n";
  return out;
}

std::string render_load_markdown(const LoadReport& r) {
  const Quantiles q = r.figures.overall();
  std::string out =
      fmt::format("## mdmconform load: {} against {}\n\n", result_text(r), markdown_code(text_or_dash(r.target)));
  if (r.interrupted) {
    out += fmt::format("**Interrupted{}** after {} s of {} s: the figures are what was measured until then.\n\n",
                       r.interrupted_reason.empty() ? "" : " by " + markdown_text(r.interrupted_reason),
                       number_text(r.elapsed_s), number_text(r.duration_s));
  }
  out += fmt::format("{} devices \u00d7 {} users \u00b7 {} \u00b7 seed {} \u00b7 {} s\n\n", r.devices,
                     r.users_per_device, markdown_text(shard_text(r)), r.seed, number_text(r.elapsed_s));
  out += fmt::format(
      "{} exchanges ({}/s) \u00b7 {} errors \u00b7 latency p50 {} ms, p90 {} ms, p99 {} ms, p99.9 {} ms, max {} ms\n\n",
      r.figures.exchanges(), number_text(per_second(r.figures.exchanges(), r.elapsed_s)), r.figures.errors(),
      ms_text(q.p50_ms), ms_text(q.p90_ms), ms_text(q.p99_ms), ms_text(q.p999_ms), ms_text(q.max_ms));
  const auto& c = r.commands;
  out += fmt::format(
      "Commands: {} queued, {} refused, {} delivered, {} acknowledged, {} NotNow, {} Error, {} outstanding at the "
      "end, {} delivered that the run did not queue\n",
      c.queued, c.refused, c.delivered, c.acknowledged, c.not_now, c.error, c.outstanding, c.not_queued);
  const auto kinds = r.figures.errors_by_kind();
  if (!kinds.empty()) {
    out += "\nErrors:";
    std::string_view separator = " ";
    for (const auto& [kind, n] : kinds) {
      out += fmt::format("{}{} {}", separator, markdown_code(kind), n);
      separator = ", ";
    }
    out += "\n";
  }
  if (r.findings_total == 0) return out;
  out += fmt::format("\n### Findings ({})\n\n", r.findings_total);
  std::size_t shown = 0;
  for (const auto& f : r.findings) {
    if (shown++ == kMarkdownMaxListed) break;
    out += fmt::format("- {} on {}{} at {} s: {}\n", markdown_code(text_or_dash(f.invariant)),
                       markdown_code(text_or_dash(f.channel)),
                       f.command_uuid.empty() ? "" : " (command " + markdown_code(f.command_uuid) + ")",
                       number_text(f.at_s), markdown_text(text_or_dash(f.detail)));
  }
  const std::uint64_t listed = std::min<std::uint64_t>(shown, r.findings.size());
  if (r.findings_total > listed) out += fmt::format("- and {} more: see report.html\n", r.findings_total - listed);
  return out;
}

base::Result<void> write_load_run(const LoadReport& report, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return base::fail(fmt::format("{}: cannot create: {}", dir.string(), ec.message()));
  // report.json first: it is the record every other view can be made from again.
  const std::pair<const char*, std::string (*)(const LoadReport&)> views[] = {
      {"report.json", &load::to_json},
      {"report.html", &render_load_html},
      {"summary.md", &render_load_markdown},
  };
  for (const auto& [name, render] : views) {
    if (auto written = base::write_file_atomically(dir / name, render(report)); !written) return written;
  }
  return base::Ok{};
}

std::string load_run_folder_name(const LoadReport& report) {
  const auto started = base::parse_rfc3339(report.started_utc);
  std::string target = filesystem_safe(report.target, 64);
  if (target.empty()) target = "target";
  std::string name = (started ? base::compact_utc(*started) : std::string("unknown-time")) + "-load-" + target;
  if (report.merged_shards.empty() && report.shard_count > 1) {
    name += fmt::format("-shard{}of{}", report.shard_index, report.shard_count);
  }
  return name;
}

}  // namespace mdmc::report
