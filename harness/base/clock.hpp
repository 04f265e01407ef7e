#pragma once
// The one clock of records: RFC 3339 in UTC, for run records, findings and fuzz runs.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mdmc::base {

using SystemTime = std::chrono::system_clock::time_point;

// "2026-11-29T08:51:55Z": to the second, the time stamp of records.
std::string rfc3339(SystemTime t);
// Now, as rfc3339().
std::string now_rfc3339();
// "2026-11-29T08:51:55.123456Z": microseconds, so that the order of exchanges made at once on
// loopback (often well under a millisecond each) survives in a record.
std::string rfc3339_us(SystemTime t);
// RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)". Fractions beyond the
// clock's resolution are truncated; a leap second (":60") counts as the next second. Years
// outside 1678 to 2261, which the clock cannot hold, are refused.
std::optional<SystemTime> parse_rfc3339(std::string_view text);
// "20261129T085155Z": for file and folder names.
std::string compact_utc(SystemTime t);

}  // namespace mdmc::base
