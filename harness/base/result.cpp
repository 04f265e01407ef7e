#include "harness/base/result.hpp"

namespace mdmc::base {

std::string Error::text() const {
  if (!code) return message;
  std::string out = code.message();
  if (!message.empty()) out += ": " + message;
  return out;
}

}  // namespace mdmc::base
