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
details.finding{border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:4px 10px}
details.finding summary{cursor:pointer}
.tag{display:inline-block;font-size:11px;font-weight:600;padding:1px 6px;border-radius:10px;color:#fff;margin-right:6px}
.t-new{background:#cf222e}.t-known{background:#6e7781}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:400px;font-size:12px}
)css";

// "new" or "known": a finding's standing against the --known file (new when there was none).
std::string_view standing(const fuzz::FuzzFinding& f) { return f.known.value_or(false) ? "known" : "new"; }

std::string replay_command(const fuzz::FuzzFinding& f) { return "mdmconform replay " + text_or_dash(f.path); }
std::string as_case_command(const fuzz::FuzzFinding& f) {
  return "mdmconform replay " + text_or_dash(f.path) + " --as-case regressions/";
}

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
  if (run.builtin_fault) row("built-in server's fault mode", *run.builtin_fault);
  if (run.seeded_bug) row("built-in server's seeded bug", *run.seeded_bug);
  if (!run.known_file.empty()) row("known findings from", run.known_file);
  const auto interrupted = run.interrupted;
  row("interrupted", interrupted ? (*interrupted ? "yes: the run stopped early" : "no") : "-");
  if (!run.target_down.empty()) row("stopped early", "the target no longer answers: " + run.target_down);
  if (run.stopped_at_max_findings.value_or(false))
    row("stopped early", fmt::format("{} unique findings (--max-findings)", finding_count));
  if (run.devices_broken.value_or(0) > 0)
    row("fuzz device broken", fmt::format("{} time(s); a new device carried on", *run.devices_broken));
  const std::size_t fresh = fuzz::new_finding_count(run);
  out += fmt::format(
      "</table>\n<p><span id=\"fuzz-result\" class=\"result {}\" data-findings=\"{}\" data-new=\"{}\">{}</span></p>\n",
      fresh == 0 ? "r-clean" : "r-findings", finding_count, fresh,
      finding_count == 0 ? std::string("no findings")
                         : fmt::format("{} finding(s): {} new, {} known", finding_count, fresh, finding_count - fresh));
  if (!run.exclusions.empty()) {
    out +=
        "<h2>Excluded from the oracles</h2><p>The target broke these before any fuzz input; the fuzzer looked past "
        "them (the conformance suite judges them).</p><table id=\"exclusions\"><tr><th>rule</th><th>what the "
        "baseline probe saw</th></tr>\n";
    for (const auto& e : run.exclusions) {
      out += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", html_escape(e.rule), html_escape(e.reason));
    }
    out += "</table>\n";
  }

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
    std::size_t shown = 0;
    for (const auto& f : run.findings) {
      if (shown++ == kFuzzMaxFindingsShown) break;
      out += fmt::format(
          "<details class=\"finding\" data-standing=\"{}\"><summary><span class=\"tag t-{}\">{}</span><b>{}</b>: {} "
          "<span class=\"mono\">({} hit(s))</span></summary>\n",
          standing(f), standing(f), standing(f), html_escape(text_or_dash(f.oracle)),
          html_escape(text_or_dash(f.summary)), number_text(as_number(f.hits)));
      out += "<table class=\"finding-facts\">";
      auto fact = [&](std::string_view name, const std::string& value) {
        if (!value.empty())
          out += fmt::format("<tr><td>{}</td><td>{}</td></tr>", html_escape(name), html_escape(value));
      };
      fact("what was wrong with the input", f.input_phrase);
      fact("endpoint", f.endpoint);
      fact("answer's shape", f.answer_shape);
      fact("minimisation", f.minimise_note);
      fact("file", f.file);
      out += "</table>\n";
      auto block = [&](std::string_view title, const std::string& text) {
        if (!text.empty()) out += fmt::format("<p>{}</p><pre>{}</pre>\n", html_escape(title), html_escape(text));
      };
      block(f.minimised.value_or(false) ? "The input, minimised (it fired alone on a fresh device):"
                                        : "The input, as sent:",
            f.input_text);
      block("The input as the fuzzer first sent it:", f.original_text);
      block("The answer:", f.answer_text);
      out += fmt::format("<p>Replay: <code>{}</code><br>As a regression case: <code>{}</code></p></details>\n",
                         html_escape(replay_command(f)), html_escape(as_case_command(f)));
    }
    if (finding_count > kFuzzMaxFindingsShown) {
      out += fmt::format("<p>and {} more, in fuzz/findings/</p>\n", finding_count - kFuzzMaxFindingsShown);
    }
  }
  out += "</main></body></html>\n";
  return out;
}

std::string render_fuzz_markdown(const fuzz::FuzzRun& run) {
  const std::size_t finding_count = run.findings.size();
  const std::size_t fresh = fuzz::new_finding_count(run);
  std::string out = fmt::format(
      "## mdmconform fuzz: {} against {}\n\n",
      finding_count == 0 ? std::string("no findings")
                         : fmt::format("{} finding(s), {} new, {} known", finding_count, fresh, finding_count - fresh),
      markdown_code(text_or_dash(run.target_name)));
  out += fmt::format("{} executions ({}/s) in {} s \u00b7 corpus {} \u00b7 features {}{}\n",
                     number_text(as_number(run.executions)), number_text(as_number(run.exec_per_sec)),
                     number_text(as_number(run.elapsed_s)), number_text(as_number(run.corpus_size)),
                     number_text(as_number(run.features)),
                     run.interrupted.value_or(false) ? " \u00b7 **interrupted**" : "");
  if (run.seeded_bug && *run.seeded_bug != "none")
    out += fmt::format("\nBuilt-in server's seeded bug: {}\n", markdown_code(*run.seeded_bug));
  if (!run.target_down.empty())
    out += "\n**Stopped early**: the target no longer answers: " + markdown_text(run.target_down) + "\n";
  if (!run.exclusions.empty()) {
    out += "\n### Excluded from the oracles\n\n";
    for (const auto& e : run.exclusions)
      out += fmt::format("- {}: {}\n", markdown_code(e.rule), markdown_text(e.reason));
  }
  if (finding_count == 0) return out;
  out += fmt::format("\n### Findings ({})\n\n", finding_count);
  std::size_t shown = 0;
  for (const auto& f : run.findings) {
    if (shown++ == kMarkdownMaxListed) break;
    out += fmt::format("- **{}** {} on {}: {} ({} hit(s))\n", standing(f), markdown_code(text_or_dash(f.oracle)),
                       markdown_text(text_or_dash(f.endpoint)), markdown_text(text_or_dash(f.summary)),
                       number_text(as_number(f.hits)));
    if (!f.minimise_note.empty()) out += fmt::format("  {}\n", markdown_text(f.minimise_note));
    out += fmt::format("  replay: {}\n", markdown_code(replay_command(f)));
  }
  if (finding_count > kMarkdownMaxListed) {
    out += fmt::format("- and {} more: see the fuzz page\n", finding_count - kMarkdownMaxListed);
  }
  return out;
}

std::string render_fuzz_junit(const fuzz::FuzzRun& run) {
  // One test case per unique finding: a new one fails, a known one is skipped (found again,
  // already known); a run without findings is one passing case.
  const std::size_t fresh = fuzz::new_finding_count(run);
  const std::size_t known = run.findings.size() - fresh;
  const std::size_t tests = std::max<std::size_t>(1, run.findings.size());
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuite name=\"mdmconform-fuzz\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">\n",
      tests, fresh, known, fmt::format("{:.3f}", run.elapsed_s.value_or(0)));
  out += "  <properties>\n";
  auto property = [&](std::string_view name, const std::string& value) {
    out += fmt::format("    <property name=\"{}\" value=\"{}\"/>\n", xml_attr(name), xml_attr(value));
  };
  property("target", run.target_name);
  property("target_url", run.target_url);
  property("executions", number_text(as_number(run.executions)));
  if (run.seeded_bug) property("seeded_bug", *run.seeded_bug);
  for (const auto& e : run.exclusions) property("excluded " + e.rule, e.reason);
  if (!run.target_down.empty()) property("target_down", run.target_down);
  out += "  </properties>\n";
  if (run.findings.empty()) out += "  <testcase classname=\"fuzz\" name=\"no oracle fired\"/>\n";
  for (const auto& f : run.findings) {
    const std::string name = f.key.empty() ? f.file : f.key;
    out += fmt::format("  <testcase classname=\"fuzz.{}\" name=\"{}\">\n", xml_attr(text_or_dash(f.oracle)),
                       xml_attr(name));
    const std::string body = fmt::format(
        "{}\nwhat was wrong with the input: {}\nhits: {}\n{}\n\ninput:\n{}\n\nanswer:\n{}\n\nreplay: {}\nas a case: "
        "{}\n",
        f.summary, text_or_dash(f.input_phrase), number_text(as_number(f.hits)), f.minimise_note, f.input_text,
        f.answer_text, replay_command(f), as_case_command(f));
    if (f.known.value_or(false)) {
      out += fmt::format("    <skipped message=\"known finding (in {})\"/>\n", xml_attr(run.known_file));
      out += fmt::format("    <system-out>{}</system-out>\n", xml_text(body));
    } else {
      out += fmt::format("    <failure message=\"{}\" type=\"{}\">{}</failure>\n", xml_attr(f.summary),
                         xml_attr(text_or_dash(f.oracle)), xml_text(body));
    }
    out += "  </testcase>\n";
  }
  out += "</testsuite>\n";
  return out;
}

}  // namespace mdmc::report
