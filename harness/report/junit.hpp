#pragma once
// junit.xml: a run as JUnit XML, which CI systems show as a test report.
#include <string>

#include "harness/scenario/result.hpp"

namespace mdmc::report {

// JUnit XML: one <testsuite name="mdmconform">, one <testcase> per case, classed by rule area
// ("SYN"). fail -> <failure>, error -> <error>, skip -> <skipped>, warn -> a pass with the
// warnings in <system-out>. Characters invalid in XML 1.0 are dropped.
std::string to_junit_xml(const scenario::RunResult& run);

}  // namespace mdmc::report
