#include "harness/plist/value.hpp"

#include <plist/plist.h>

#include <bit>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <type_traits>

#include "harness/plist/detail/prescan.hpp"

namespace mdmc::plist {
namespace {

// Ownership of what libplist allocates.
struct PlistFree {
  void operator()(void* p) const { plist_free(p); }
};
struct XmlFree {
  void operator()(char* p) const { plist_to_xml_free(p); }
};
struct BinFree {
  void operator()(char* p) const { plist_to_bin_free(p); }
};
struct CFree {  // iterators and keys: plain malloc in libplist 2.2
  void operator()(void* p) const { std::free(p); }
};
using PlistPtr = std::unique_ptr<void, PlistFree>;
using CPtr = std::unique_ptr<void, CFree>;

constexpr std::string_view kBinaryMagic = "bplist00";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr std::uint8_t kDateMarker = 0x33;          // date: an 8-byte big-endian double
constexpr std::uint8_t kWideUnsignedMarker = 0x14;  // 16-byte int: libplist's "unsigned"

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (n - i < len) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      const auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

std::string node_to_binary(plist_t node) {
  char* out = nullptr;
  std::uint32_t len = 0;
  plist_to_bin(node, &out, &len);
  const std::unique_ptr<char, BinFree> owned(out);
  return out ? std::string(out, len) : std::string();
}

// libplist 2.2 stores a date as a double (seconds since 2001) but its API only hands out
// int32 seconds and a sign-less microsecond part, which loses dates before 1933 or after 2038
// and the sign of dates just before 2001. Its binary writer copies the double exactly, so the
// value is read back from there.
std::optional<double> date_seconds(plist_t node) {
  const std::string bin = node_to_binary(node);
  const auto top = detail::binary_top_object(bin);
  if (!top || top->size() < 9 || static_cast<std::uint8_t>(top->front()) != kDateMarker) {
    return std::nullopt;
  }
  std::uint64_t bits = 0;
  for (std::size_t i = 1; i < 9; ++i) bits = (bits << 8) | static_cast<std::uint8_t>((*top)[i]);
  return std::bit_cast<double>(bits);
}

// The reverse: plist_new_date() takes int32 seconds, so an exact date node is read from a
// one-object bplist00 built here.
PlistPtr date_node(double seconds) {
  std::string b(kBinaryMagic);
  b.push_back(static_cast<char>(kDateMarker));
  const auto bits = std::bit_cast<std::uint64_t>(seconds);
  for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<char>(bits >> shift));
  const std::size_t table_offset = b.size();
  b.push_back(static_cast<char>(kBinaryMagic.size()));  // offset table: object 0 at byte 8
  b.append(6, '\0');                                    // trailer: unused
  b.push_back(1);                                       // offset int size
  b.push_back(1);                                       // object ref size
  auto put64 = [&b](std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<char>(v >> shift));
  };
  put64(1);             // number of objects
  put64(0);             // top object
  put64(table_offset);  // offset table offset
  plist_t node = nullptr;
  plist_from_bin(b.data(), static_cast<std::uint32_t>(b.size()), &node);
  return PlistPtr(node);
}

// libplist 2.2 keeps an integer as a uint64 plus a hidden width: 8 bytes (two's complement,
// so above INT64_MAX means negative) or 16 (an unsigned value above INT64_MAX). Its API does
// not expose the width; its binary writer does.
bool is_wide_unsigned(plist_t node) {
  const std::string bin = node_to_binary(node);
  const auto top = detail::binary_top_object(bin);
  return top && !top->empty() && static_cast<std::uint8_t>(top->front()) == kWideUnsignedMarker;
}

// Converts libplist's tree into a Value, re-checking depth and node count (the prescan
// bounds them already; this keeps the recursion bounded even if it were wrong).
class Reader {
 public:
  Reader(const Limits& limits, Format format) : limits_(limits), format_(format) {}

  bool read(plist_t node, std::size_t depth, Value& out) {
    if (++nodes_ > limits_.max_nodes) {
      return fail(Error::too_many_nodes, "more than " + std::to_string(limits_.max_nodes) + " values");
    }
    switch (plist_get_node_type(node)) {
      case PLIST_BOOLEAN: {
        std::uint8_t b = 0;
        plist_get_bool_val(node, &b);
        out = Value(b != 0);
        return true;
      }
      case PLIST_UINT: {
        std::uint64_t u = 0;
        plist_get_uint_val(node, &u);
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          out = Value(static_cast<std::int64_t>(u));
        } else if (is_wide_unsigned(node)) {
          // Above INT64_MAX: no int64 holds it, so it becomes the nearest double (exact up
          // to 2^53). MDM messages carry no such integers; this keeps the magnitude.
          out = Value(static_cast<double>(u));
        } else {
          out = Value(std::bit_cast<std::int64_t>(u));
        }
        return true;
      }
      case PLIST_REAL: {
        double d = 0;
        plist_get_real_val(node, &d);
        out = Value(d);
        return true;
      }
      case PLIST_STRING: {
        std::uint64_t len = 0;
        const char* p = plist_get_string_ptr(node, &len);
        std::string s = p ? std::string(p, len) : std::string();
        if (!valid_utf8(s)) return fail(Error::bad_utf8, "string value at depth " + std::to_string(depth));
        out = Value(std::move(s));
        return true;
      }
      case PLIST_DATA: {
        std::uint64_t len = 0;
        const char* p = plist_get_data_ptr(node, &len);
        out = Value(Data{p ? std::string(p, len) : std::string()});
        return true;
      }
      case PLIST_DATE: {
        const auto seconds = date_seconds(node);
        if (!seconds) return fail(malformed(), "unreadable date");
        out = Value(Date{*seconds});
        return true;
      }
      case PLIST_UID: {
        std::uint64_t v = 0;
        plist_get_uid_val(node, &v);
        out = Value(Uid{v});
        return true;
      }
      case PLIST_ARRAY: return read_array(node, depth, out);
      case PLIST_DICT: return read_dict(node, depth, out);
      case PLIST_KEY:
      case PLIST_NONE: break;
    }
    return fail(malformed(), "unexpected node type");
  }

  Error error() const { return error_; }
  const std::string& detail() const { return detail_; }

 private:
  Error malformed() const { return format_ == Format::xml ? Error::malformed_xml : Error::malformed_binary; }

  bool fail(Error e, std::string detail) {
    error_ = e;
    detail_ = std::move(detail);
    return false;
  }

  bool check_depth(std::size_t depth) {
    if (depth > limits_.max_depth) {
      return fail(Error::too_deep, "nesting exceeds " + std::to_string(limits_.max_depth));
    }
    return true;
  }

  bool read_array(plist_t node, std::size_t depth, Value& out) {
    if (!check_depth(depth)) return false;
    Array items;
    items.reserve(plist_array_get_size(node));
    plist_array_iter raw_iter = nullptr;
    plist_array_new_iter(node, &raw_iter);
    const CPtr iter(raw_iter);
    while (true) {
      plist_t item = nullptr;
      plist_array_next_item(node, iter.get(), &item);
      if (!item) break;
      Value v;
      if (!read(item, depth + 1, v)) return false;
      items.push_back(std::move(v));
    }
    out = Value(std::move(items));
    return true;
  }

  bool read_dict(plist_t node, std::size_t depth, Value& out) {
    if (!check_depth(depth)) return false;
    Dict entries;
    plist_dict_iter raw_iter = nullptr;
    plist_dict_new_iter(node, &raw_iter);
    const CPtr iter(raw_iter);
    while (true) {
      char* raw_key = nullptr;
      plist_t item = nullptr;
      plist_dict_next_item(node, iter.get(), &raw_key, &item);
      const CPtr key_owner(raw_key);
      if (!item) break;
      std::string key = raw_key ? std::string(raw_key) : std::string();
      if (!valid_utf8(key)) return fail(Error::bad_utf8, "dict key at depth " + std::to_string(depth));
      Value v;
      if (!read(item, depth + 1, v)) return false;
      // Duplicate keys (possible in a binary plist): the last one wins, as in the XML parser.
      entries.insert_or_assign(std::move(key), std::move(v));
    }
    // XML has no UID element: writers (libplist included) encode one as {CF$UID: integer},
    // and Apple's reader turns that back into a UID, so this does too.
    if (format_ == Format::xml && entries.size() == 1) {
      const auto& [key, v] = *entries.begin();
      const auto* i = v.as_integer();
      if (key == "CF$UID" && i && *i >= 0 && *i <= std::numeric_limits<std::uint32_t>::max()) {
        out = Value(Uid{static_cast<std::uint64_t>(*i)});
        return true;
      }
    }
    out = Value(std::move(entries));
    return true;
  }

  const Limits& limits_;
  Format format_;
  std::size_t nodes_ = 0;
  Error error_ = Error::ok;
  std::string detail_;
};

// Dates libplist's XML writer can print: it converts the double to a 64-bit integer (UB for
// NaN or beyond) and prints "%Y-...", so they are clamped to years 1..9999.
constexpr double kSecondsPerDay = 86400;
constexpr double kXmlDateMin = -730485 * kSecondsPerDay;      // 0001-01-01T00:00:00Z
constexpr double kXmlDateMax = 3286574 * kSecondsPerDay - 1;  // 9999-12-31T23:59:59Z

double xml_date(double seconds) {
  if (std::isnan(seconds)) return 0;
  return std::fmin(std::fmax(seconds, kXmlDateMin), kXmlDateMax);
}

// libplist 2.2's XML writer sizes its buffer before writing (node_estimate_size() in
// xplist.c): it converts every real to int64 and negates negative integers, which is
// undefined for NaN, infinities, reals at or beyond +-2^63, INT64_MIN and a UID of 2^63 (read
// as INT64_MIN). Fuzzing the instrumented libplist stopped there under UBSan. Such a number
// reaches the writer as a stand-in of the same kind whose text occurs nowhere else in the
// document, and the stand-in's text is then replaced by what libplist prints for the number,
// so the output is the same, byte for byte, and the writer never sees the number.
class XmlStandIns {
 public:
  explicit XmlStandIns(const Value& root) { collect(root); }

  static bool unsizable(double d) { return !(d > -0x1p63 && d < 0x1p63); }
  static bool unsizable(std::int64_t i) { return i == std::numeric_limits<std::int64_t>::min(); }
  static bool unsizable(Uid u) { return u.value == std::uint64_t{1} << 63; }

  // The stand-in for an unsizable real.
  double real(double d) {
    const std::string text = real_text(d);
    auto it = real_stand_ins_.find(text);
    if (it == real_stand_ins_.end()) {
      double candidate = kFirstRealStandIn;
      while (taken_reals_.contains(candidate)) candidate += 1;
      taken_reals_.insert(candidate);
      it = real_stand_ins_.emplace(text, Replacement{candidate, 0}).first;
    }
    ++it->second.uses;
    return it->second.stand_in;
  }

  // The stand-in for INT64_MIN, or for the UID 2^63 (both print as -9223372036854775808).
  std::int64_t int64_min() {
    if (int_uses_ == 0) {
      int_stand_in_ = std::numeric_limits<std::int64_t>::max();
      while (taken_ints_.contains(int_stand_in_)) --int_stand_in_;
    }
    ++int_uses_;
    return int_stand_in_;
  }

  // libplist's XML output with every stand-in's text replaced.
  std::string apply(std::string xml) const {
    for (const auto& [text, r] : real_stand_ins_) {
      replace(xml, "<real>" + real_text(r.stand_in) + "</real>", "<real>" + text + "</real>", r.uses);
    }
    if (int_uses_ > 0) {
      replace(xml, "<integer>" + std::to_string(int_stand_in_) + "</integer>",
              "<integer>" + std::to_string(std::numeric_limits<std::int64_t>::min()) + "</integer>", int_uses_);
    }
    return xml;
  }

  // What libplist's dtostr() prints for a real.
  static std::string real_text(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "+infinity" : "-infinity";
    if (d == 0) return "0.0";
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, "%.*g", 17, d);
    std::string text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    // libplist turns a locale's decimal comma into a point.
    for (char& c : text) {
      if (c == ',') {
        c = '.';
        break;
      }
      if (c == '.') break;
    }
    return text;
  }

 private:
  struct Replacement {
    double stand_in;
    std::size_t uses;  // nodes written with it
  };
  // Far from any protocol value; only its uniqueness in the document matters.
  static constexpr double kFirstRealStandIn = 271828182.5;

  void collect(const Value& value) {
    std::visit(
        [this](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::int64_t>) {
            taken_ints_.insert(v);
          } else if constexpr (std::is_same_v<T, Uid>) {
            taken_ints_.insert(std::bit_cast<std::int64_t>(v.value));  // printed signed
          } else if constexpr (std::is_same_v<T, double>) {
            if (!std::isnan(v)) taken_reals_.insert(v);
          } else if constexpr (std::is_same_v<T, Array>) {
            for (const auto& item : v) collect(item);
          } else if constexpr (std::is_same_v<T, Dict>) {
            for (const auto& entry : v) collect(entry.second);
          }
        },
        value.storage());
  }

  // Each stand-in's text is unique in the document by construction; a count that differs
  // means this class is wrong, not the input.
  static void replace(std::string& xml, const std::string& from, const std::string& to, std::size_t expected) {
    std::size_t found = 0;
    for (std::size_t at = xml.find(from); at != std::string::npos; at = xml.find(from, at + to.size())) {
      xml.replace(at, from.size(), to);
      ++found;
    }
    if (found != expected) std::abort();
  }

  std::set<std::int64_t> taken_ints_;
  std::set<double> taken_reals_;
  std::map<std::string, Replacement> real_stand_ins_;  // by the real's text
  std::int64_t int_stand_in_ = 0;
  std::size_t int_uses_ = 0;
};

// Value -> libplist tree, for its writers. libplist takes strings and keys as C strings, so
// one with a NUL in it is cut there; parse() never produces such a string. For the XML
// writer, stand_ins swaps out the numbers it cannot size.
PlistPtr build(const Value& value, Format format, XmlStandIns* stand_ins) {
  return std::visit(
      [format, stand_ins](const auto& v) -> PlistPtr {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return PlistPtr(plist_new_bool(v ? 1 : 0));
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          const std::int64_t i = stand_ins && XmlStandIns::unsizable(v) ? stand_ins->int64_min() : v;
          return PlistPtr(plist_new_uint(static_cast<std::uint64_t>(i)));
        } else if constexpr (std::is_same_v<T, double>) {
          return PlistPtr(plist_new_real(stand_ins && XmlStandIns::unsizable(v) ? stand_ins->real(v) : v));
        } else if constexpr (std::is_same_v<T, std::string>) {
          return PlistPtr(plist_new_string(v.c_str()));
        } else if constexpr (std::is_same_v<T, Data>) {
          return PlistPtr(plist_new_data(v.bytes.data(), v.bytes.size()));
        } else if constexpr (std::is_same_v<T, Date>) {
          return date_node(format == Format::xml ? xml_date(v.seconds_since_2001) : v.seconds_since_2001);
        } else if constexpr (std::is_same_v<T, Array>) {
          PlistPtr array(plist_new_array());
          for (const auto& item : v) {
            plist_array_append_item(array.get(), build(item, format, stand_ins).release());
          }
          return array;
        } else if constexpr (std::is_same_v<T, Dict>) {
          PlistPtr dict(plist_new_dict());
          for (const auto& [key, item] : v) {
            plist_dict_set_item(dict.get(), key.c_str(), build(item, format, stand_ins).release());
          }
          return dict;
        } else {
          static_assert(std::is_same_v<T, Uid>);
          if (stand_ins && XmlStandIns::unsizable(v)) {
            return PlistPtr(plist_new_uid(static_cast<std::uint64_t>(stand_ins->int64_min())));
          }
          return PlistPtr(plist_new_uid(v.value));
        }
      },
      value.storage());
}

}  // namespace

std::string_view type_name(Type type) {
  switch (type) {
    case Type::boolean: return "boolean";
    case Type::integer: return "integer";
    case Type::real: return "real";
    case Type::string: return "string";
    case Type::data: return "data";
    case Type::date: return "date";
    case Type::array: return "array";
    case Type::dict: return "dict";
    case Type::uid: return "uid";
  }
  return "unknown";
}

const Value* Value::find(std::string_view key) const {
  const Dict* d = as_dict();
  if (!d) return nullptr;
  const auto it = d->find(key);
  return it == d->end() ? nullptr : &it->second;
}

std::optional<std::string> Value::string_at(std::string_view key) const {
  const Value* v = find(key);
  if (!v || !v->as_string()) return std::nullopt;
  return *v->as_string();
}

std::optional<bool> Value::bool_at(std::string_view key) const {
  const Value* v = find(key);
  if (!v || !v->as_bool()) return std::nullopt;
  return *v->as_bool();
}

std::optional<Format> sniff(std::string_view bytes) {
  if (bytes.starts_with(kBinaryMagic)) return Format::binary;
  if (bytes.starts_with(kUtf8Bom)) bytes.remove_prefix(kUtf8Bom.size());
  // The whitespace libplist's XML reader skips.
  while (!bytes.empty() && is_xml_space(bytes.front())) bytes.remove_prefix(1);
  if (bytes.starts_with('<')) return Format::xml;
  return std::nullopt;
}

Result<Value> parse(std::string_view bytes, const Limits& limits) {
  if (bytes.empty()) return {Error::empty};
  // libplist takes a uint32_t length.
  if (bytes.size() > limits.max_bytes || bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
    return {Error::too_large, std::to_string(bytes.size()) + " bytes, limit " + std::to_string(limits.max_bytes)};
  }
  const auto format = sniff(bytes);
  if (!format) return {Error::not_a_plist, "neither <?xml/<plist nor bplist00"};

  plist_t raw = nullptr;
  if (*format == Format::binary) {
    const auto scan = detail::prescan_binary(bytes, limits);
    if (scan.error != Error::ok) return {scan.error, scan.detail};
    plist_from_bin(bytes.data(), static_cast<std::uint32_t>(bytes.size()), &raw);
  } else {
    // libplist 2.2 does not skip a byte order mark.
    if (bytes.starts_with(kUtf8Bom)) bytes.remove_prefix(kUtf8Bom.size());
    const auto scan = detail::prescan_xml(bytes, limits);
    if (scan.error != Error::ok) return {scan.error, scan.detail};
    // libplist compares with strncmp in places: give it a NUL-terminated copy, so that no
    // comparison can run past the input.
    const std::string text(bytes);
    plist_from_xml(text.c_str(), static_cast<std::uint32_t>(text.size()), &raw);
  }
  const PlistPtr root(raw);
  if (!root) {
    return {*format == Format::xml ? Error::malformed_xml : Error::malformed_binary, "libplist could not read it"};
  }
  Reader reader(limits, *format);
  Value out;
  if (!reader.read(root.get(), 1, out)) return {reader.error(), reader.detail()};
  return out;
}

std::string to_xml(const Value& value) {
  XmlStandIns stand_ins(value);
  const PlistPtr root = build(value, Format::xml, &stand_ins);
  char* out = nullptr;
  std::uint32_t len = 0;
  plist_to_xml(root.get(), &out, &len);
  const std::unique_ptr<char, XmlFree> owned(out);
  return stand_ins.apply(out ? std::string(out, len) : std::string());
}

std::string to_binary(const Value& value) {
  const PlistPtr root = build(value, Format::binary, nullptr);
  return node_to_binary(root.get());
}

}  // namespace mdmc::plist
