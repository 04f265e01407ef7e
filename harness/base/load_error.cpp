#include "harness/base/load_error.hpp"

#include <fmt/format.h>

namespace mdmc::base {

LoadError::LoadError(std::string file, int line, std::string key, const std::string& reason)
    : std::runtime_error(fmt::format("{}:{}: {}{}", file, line, key.empty() ? "" : key + ": ", reason)),
      file_(std::move(file)),
      line_(line),
      key_(std::move(key)) {}

}  // namespace mdmc::base
