#include "harness/plist/error.hpp"

#include "harness/base/enum_names.hpp"

namespace mdmc::plist {
namespace {

constexpr base::EnumNames<Error, 10> kErrorNames{{
    {Error::ok, "ok"},
    {Error::empty, "empty"},
    {Error::too_large, "too_large"},
    {Error::too_deep, "too_deep"},
    {Error::too_many_nodes, "too_many_nodes"},
    {Error::not_a_plist, "not_a_plist"},
    {Error::malformed_xml, "malformed_xml"},
    {Error::malformed_binary, "malformed_binary"},
    {Error::cyclic_reference, "cyclic_reference"},
    {Error::bad_utf8, "bad_utf8"},
}};

// The category's message is the error's stable name ("too_deep"): it heads every
// Result::message() ("too_deep: nesting exceeds 64") that reports and findings quote.
class PlistCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mdmc.plist"; }
  std::string message(int ev) const override { return std::string(error_name(static_cast<Error>(ev))); }
};

}  // namespace

const std::error_category& plist_category() {
  static const PlistCategory category;
  return category;
}

std::error_code make_error_code(Error e) { return {static_cast<int>(e), plist_category()}; }

std::string_view error_name(Error e) { return base::name_of(kErrorNames, e, "unknown"); }

}  // namespace mdmc::plist
