#include "harness/base/clock.hpp"

#include <fmt/format.h>

namespace mdmc::base {
namespace chr = std::chrono;
namespace {

struct CivilTime {
  int year;
  unsigned month, day, hour, minute, second;
  long long subsecond_us;
};

CivilTime civil_utc(SystemTime tp) {
  const auto us = chr::floor<chr::microseconds>(tp);
  const auto day = chr::floor<chr::days>(us);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss hms{us - day};
  return {static_cast<int>(ymd.year()),
          static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()),
          static_cast<unsigned>(hms.hours().count()),
          static_cast<unsigned>(hms.minutes().count()),
          static_cast<unsigned>(hms.seconds().count()),
          static_cast<long long>(hms.subseconds().count())};
}

// Reads exactly `width` decimal digits at s[pos].
bool read_digits(std::string_view s, std::size_t pos, std::size_t width, int& out) {
  if (pos + width > s.size()) return false;
  out = 0;
  for (std::size_t k = pos; k < pos + width; ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
    out = out * 10 + (s[k] - '0');
  }
  return true;
}

}  // namespace

std::string rfc3339(SystemTime t) {
  const CivilTime c = civil_utc(t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second);
}

std::string now_rfc3339() { return rfc3339(chr::system_clock::now()); }

std::string rfc3339_us(SystemTime t) {
  const CivilTime c = civil_utc(t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", c.year, c.month, c.day, c.hour, c.minute, c.second,
                     c.subsecond_us);
}

std::string compact_utc(SystemTime t) {
  const CivilTime c = civil_utc(t);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second);
}

std::optional<SystemTime> parse_rfc3339(std::string_view s) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !read_digits(s, 0, 4, year) || s[4] != '-' || !read_digits(s, 5, 2, month) || s[7] != '-' ||
      !read_digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') || !read_digits(s, 11, 2, hour) || s[13] != ':' ||
      !read_digits(s, 14, 2, minute) || s[16] != ':' || !read_digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  const chr::year_month_day ymd{chr::year{year}, chr::month{static_cast<unsigned>(month)},
                                chr::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits, from 1677-09-21 to 2262-04-11: a year outside
  // would overflow the conversion below (undefined behaviour), and a server's Timestamp can be
  // any year.
  if (year < 1678 || year > 2261) return std::nullopt;
  std::size_t pos = 19;
  chr::nanoseconds fraction{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    long long ns = 0;
    std::size_t used = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (used < 9) {
        ns = ns * 10 + (s[pos] - '0');
        ++used;
      }
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (; used < 9; ++used) ns *= 10;
    fraction = chr::nanoseconds{ns};
  }
  chr::minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!read_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !read_digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = chr::hours{oh} + chr::minutes{om};
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const auto local = chr::sys_days{ymd} + chr::hours{hour} + chr::minutes{minute} + chr::seconds{second} + fraction;
  return chr::time_point_cast<chr::system_clock::duration>(local - offset);
}

}  // namespace mdmc::base
