#include "harness/report/junit.hpp"

#include <chrono>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/report/detail/text.hpp"
#include "harness/scenario/assessment.hpp"

namespace mdmc::report {
namespace {

using namespace detail;
using scenario::Finding;
using scenario::RunResult;
using scenario::Verdict;

std::string junit_seconds(std::chrono::milliseconds ms) {
  return fmt::format("{:.3f}", static_cast<double>(ms.count()) / 1000.0);
}

// A warn that counts as a failure: under --strict, one breaking a should-level expectation.
bool warn_fails(const scenario::CaseResult& c, bool strict) {
  return c.verdict == Verdict::warn && scenario::counts_as_failure(c, strict);
}

void append_property(std::string& out, std::string_view name, std::string_view value) {
  out += fmt::format("    <property name=\"{}\" value=\"{}\"/>\n", xml_attr(name), xml_attr(value));
}

}  // namespace

std::string to_junit_xml(const RunResult& run) {
  const auto counts = count_verdicts(run);
  const auto assessment = scenario::assess(run);
  const bool strict = run.conditions.strict;
  // Under --strict a should-level warn fails the run, so JUnit counts it as a failure too.
  int failures = 0;
  for (const auto& c : run.cases) failures += c.verdict == Verdict::fail || warn_fails(c, strict) ? 1 : 0;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuite name=\"mdmconform\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" "
      "time=\"{}\">\n",
      run.cases.size(), failures, count_of(counts, Verdict::error), count_of(counts, Verdict::skip),
      junit_seconds(run.elapsed));
  out += "  <properties>\n";
  append_property(out, "verdict", scenario::overall_name(assessment.overall));
  append_property(out, "headline", assessment.headline);
  append_property(out, "exit_code", std::to_string(assessment.exit_code));
  for (const auto& [label, value] : condition_rows(run)) append_property(out, label, value);
  for (const auto* list : {&assessment.untested, &assessment.untested_may}) {
    for (const auto& u : *list) {
      append_property(out, "untested " + u.id, fmt::format("{}: {}", scenario::level_name(u.level), u.reason));
    }
  }
  if (run.baseline) {
    for (const auto& id : run.baseline->fixed) append_property(out, "fixed since the baseline", id);
  }
  append_property(out, "harness_version", run.harness_version);
  append_property(out, "target", run.target_name);
  append_property(out, "target_url", run.target_url);
  append_property(out, "profile_digest", run.profile_digest);
  append_property(out, "suite_digest", run.suite_digest);
  if (!run.apple_schema_revision.empty()) {
    append_property(out, "apple_schema_revision", run.apple_schema_revision);
  }
  append_property(out, "started_at", run.started_at);
  append_property(out, "seed", std::to_string(run.seed));
  if (!run.builtin_fault.empty()) append_property(out, "builtin_fault", run.builtin_fault);
  if (run.interrupted) append_property(out, "interrupted", "true");
  out += "  </properties>\n";

  for (const auto& c : run.cases) {
    out += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"{}\"", xml_attr(rule_area(c)), xml_attr(c.id),
                       junit_seconds(c.elapsed));
    std::string details;
    // Against a baseline, the message leads with whether the failure is new or known.
    const auto mark = baseline_mark(run, c.id);
    const std::string message = mark.empty() ? c.reason : fmt::format("({} failure) {}", mark, c.reason);
    for (const Finding* f : failed_findings(c)) details += describe_finding(*f) + "\n";
    std::string confirmation;
    if (c.flaky) confirmation += fmt::format("flaky: attempts {}\n", fmt::join(c.attempts, ", "));
    if (!c.reproducer.empty()) confirmation += "replay: " + c.reproducer + "\n";
    details += confirmation;
    if (warn_fails(c, strict)) {
      out += fmt::format(">\n    <failure message=\"{}\" type=\"warn (--strict)\">{}</failure>\n  </testcase>\n",
                         xml_attr(message), xml_text(details));
      continue;
    }
    switch (c.verdict) {
      case Verdict::pass: out += "/>\n"; break;
      case Verdict::fail:
        out += fmt::format(">\n    <failure message=\"{}\" type=\"fail\">{}</failure>\n  </testcase>\n",
                           xml_attr(message), xml_text(details));
        break;
      case Verdict::error:
        out += fmt::format(">\n    <error message=\"{}\" type=\"error\">{}</error>\n  </testcase>\n", xml_attr(message),
                           xml_text(details));
        break;
      case Verdict::skip:
        out += fmt::format(">\n    <skipped message=\"{}\"/>\n  </testcase>\n", xml_attr(c.reason));
        break;
      case Verdict::warn: {
        // JUnit has no warning outcome: a warn is a pass that says what it warns about.
        std::string warnings;
        for (const Finding* f : failed_findings(c)) {
          warnings += "warning: " + describe_finding(*f) + "\n";
        }
        if (warnings.empty()) warnings = "warning: " + c.reason + "\n";
        warnings += confirmation;
        out += fmt::format(">\n    <system-out>{}</system-out>\n  </testcase>\n", xml_text(warnings));
        break;
      }
      case Verdict::info: {
        // Not a failure (RFC 2119 "may"): a passed testcase that says which option the server
        // does not use.
        std::string info;
        for (const Finding* f : failed_findings(c)) {
          info += "info: the server does not use this option (may): " + describe_finding(*f) + "\n";
        }
        if (info.empty()) info = "info: " + c.reason + "\n";
        info += confirmation;
        out += fmt::format(">\n    <system-out>{}</system-out>\n  </testcase>\n", xml_text(info));
        break;
      }
    }
  }
  out += "</testsuite>\n";
  return out;
}

}  // namespace mdmc::report
