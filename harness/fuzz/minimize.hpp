#pragma once
// Shrinking a finding's input while its oracle still fires: first as a property list (give
// keys of the wrong type a plain value of their schema type, drop a dict's keys and an array's
// items, shorten strings, unwrap containers), then as bytes (drop ever smaller chunks). Bounded
// in tries and time; the predicate sends each candidate.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/plist/value.hpp"

namespace mdmc::fuzz {

struct MinimizeLimits {
  int max_tries = 200;
  std::chrono::milliseconds max_time{10'000};
};

struct Minimized {
  std::string bytes;  // the smallest input that still fired (the input itself when none did)
  int tries = 0;      // candidates sent
  bool reduced = false;
  bool out_of_budget = false;  // stopped by a limit, not because nothing smaller fired
};

// What a candidate did: it fired the same oracle; it did not; it was not sent (the caller
// refused it unsent, which costs no try); or the check could not be made (the target stopped
// answering), which ends the minimisation.
enum class Fires { yes, no, not_sent, cannot_tell };

// A top-level key of the input to give `value`, a plain value of the type Apple's schema gives
// it, when the oracle fires all the same: a required key a mutation left of the wrong type beside
// the cause can be neither dropped (it would be missing) nor made the string "x" (still the
// wrong type), and would otherwise stay in the finding and name it.
struct Repair {
  std::string key;
  plist::Value value;
};

// Repairs are tried first, each once, and kept whatever their size.
Minimized minimize_input(std::string_view input, const std::function<Fires(std::string_view)>& fires,
                         const MinimizeLimits& limits = {}, const std::vector<Repair>& repairs = {});

}  // namespace mdmc::fuzz
