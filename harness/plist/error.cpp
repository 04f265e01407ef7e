#include "harness/plist/error.hpp"

namespace mdmc::plist {
namespace {

class PlistCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mdmc.plist"; }

  std::string message(int ev) const override {
    switch (static_cast<Error>(ev)) {
      case Error::ok:
        return "success";
      case Error::empty:
        return "zero bytes: not a property list";
      case Error::too_large:
        return "property list larger than the byte limit";
      case Error::too_deep:
        return "containers nested deeper than the depth limit";
      case Error::too_many_nodes:
        return "more values than the node limit";
      case Error::not_a_plist:
        return "neither an XML property list nor a bplist00 binary";
      case Error::malformed_xml:
        return "malformed XML property list";
      case Error::malformed_binary:
        return "malformed binary property list";
      case Error::cyclic_reference:
        return "binary property list whose object references form a cycle";
      case Error::bad_utf8:
        return "string that is not valid UTF-8";
    }
    return "unknown plist error";
  }
};

}  // namespace

const std::error_category& plist_category() {
  static const PlistCategory category;
  return category;
}

std::error_code make_error_code(Error e) { return {static_cast<int>(e), plist_category()}; }

std::string_view error_name(Error e) {
  switch (e) {
    case Error::ok:
      return "ok";
    case Error::empty:
      return "empty";
    case Error::too_large:
      return "too_large";
    case Error::too_deep:
      return "too_deep";
    case Error::too_many_nodes:
      return "too_many_nodes";
    case Error::not_a_plist:
      return "not_a_plist";
    case Error::malformed_xml:
      return "malformed_xml";
    case Error::malformed_binary:
      return "malformed_binary";
    case Error::cyclic_reference:
      return "cyclic_reference";
    case Error::bad_utf8:
      return "bad_utf8";
  }
  return "unknown";
}

}  // namespace mdmc::plist
