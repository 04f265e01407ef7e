#pragma once
// Sample run records for the tests of what renders or reads them (report.json, JUnit, the
// console summary, redaction): one record with a passing, a failing and an info case, built once here
// so that every report test starts from the same run.
#include <chrono>
#include <string>

#include "harness/scenario/result.hpp"

namespace mdmc::testing {

// 2026-11-29T08:51:55.123456Z: whole microseconds, the resolution report.json keeps.
std::chrono::system_clock::time_point sample_time();

// The device "mac" PUTs `request_body` to http://127.0.0.1:8080/mdm at sample_time() and gets
// `status` with `response_body`, on a reused connection after one redirect, 1.834 ms later;
// its response body is marked cut (9,000,000 bytes in all).
scenario::TranscriptEntry sample_exchange(std::string label, std::string request_body, int status,
                                          std::string response_body);

// Against "reference", seed 2^64-1 (beyond a JavaScript number's 2^53), fault syn_drop_last:
// chn/idle_empty passes; syn/all fails SYN-ALL at step 4, and its transcript ends with an
// enqueue the admin API refused at enrollment (a TLS client-certificate alert, no response);
// ucf/device_configured is info: the server does not use the may-level option
// UCF-DEVICECONFIGURED (its rule is info with uses_option false). Its devices have pool
// identities: chn/idle_empty's "mac" device-00.p12, syn/all's "mac" device-01.p12 (SHA-256
// 0123456789abcdef...) and "iphone" device-02.p12.
scenario::RunResult sample_run();

}  // namespace mdmc::testing
