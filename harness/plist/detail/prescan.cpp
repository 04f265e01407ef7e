#include "harness/plist/detail/prescan.hpp"

#include <cstdint>
#include <vector>

namespace mdmc::plist::detail {
namespace {

Prescan failure(Error error, std::string detail) {
  Prescan out;
  out.error = error;
  out.detail = std::move(detail);
  return out;
}

std::string at_offset(std::size_t pos, std::string_view what) {
  return std::string(what) + " at byte " + std::to_string(pos);
}

// ---------------------------------------------------------------------------------------
// XML
//
// A replica of node_from_xml() and get_text_parts() in libplist 2.2.0 src/xplist.c that
// builds nothing: it follows the same positions, so it sees exactly the elements libplist
// sees, and counts what libplist would build. The helpers copy the semantics of libplist's
// find_char / find_str / find_next, including their quote skipping and their bounds.

enum class Open : std::uint8_t { plist, dict, array };

// Keeps a function's loops out of the fuzz builds' coverage instrumentation (clang's
// SanitizerCoverage); not inlined, or its loop would be instrumented in its caller. Expands to
// nothing for other compilers.
#if defined(__clang__)
#define MDMC_BYTE_LOOP __attribute__((no_sanitize("coverage"), noinline))
#else
#define MDMC_BYTE_LOOP
#endif

enum class Tag : std::uint8_t {
  plist,
  end_plist,
  dict,
  array,
  integer,
  real,
  true_,
  false_,
  string,
  key,
  data,
  date,
  closing,
  unknown
};

Tag classify(std::string_view name) {
  if (name == "plist") return Tag::plist;
  if (name == "/plist") return Tag::end_plist;
  if (name == "dict") return Tag::dict;
  if (name == "array") return Tag::array;
  if (name == "integer") return Tag::integer;
  if (name == "real") return Tag::real;
  if (name == "true") return Tag::true_;
  if (name == "false") return Tag::false_;
  if (name == "string") return Tag::string;
  if (name == "key") return Tag::key;
  if (name == "data") return Tag::data;
  if (name == "date") return Tag::date;
  if (!name.empty() && name.front() == '/') return Tag::closing;
  return Tag::unknown;
}

std::string_view open_name(Open o) {
  switch (o) {
    case Open::plist: return "plist";
    case Open::dict: return "dict";
    case Open::array: return "array";
  }
  return "";
}

class XmlScanner {
 public:
  XmlScanner(std::string_view s, const Limits& limits) : s_(s), n_(s.size()), limits_(limits) {}

  Prescan run() {
    if (auto nul = s_.find('\0'); nul != std::string_view::npos) {
      return malformed(nul, "NUL byte");
    }
    while (pos_ < n_) {
      skip_ws();
      if (pos_ >= n_) break;
      if (s_[pos_] != '<') return malformed(pos_, "text where a tag was expected");
      ++pos_;
      if (pos_ >= n_) return malformed(pos_, "end of input inside a tag");

      if (s_[pos_] == '?') {
        pos_ = find_str(pos_, "?>", true);
        if (!at(pos_, "?>")) return malformed(pos_, "unterminated <?");
        pos_ += 2;
        continue;
      }
      if (s_[pos_] == '!') {
        if (!special()) return out_;
        continue;
      }

      // An element tag: the name runs to whitespace, '<' or '>'; attributes (with quoted
      // values skipped) run to '>'; a '/' just before '>' makes it empty.
      const std::size_t name_begin = pos_;
      pos_ = find_next(pos_, " \r\n\t<>", false);
      if (pos_ >= n_) return malformed(pos_, "end of input inside a tag");
      const std::size_t name_len = pos_ - name_begin;
      std::string_view name = s_.substr(name_begin, name_len);
      if (s_[pos_] != '>') pos_ = find_next(pos_, "<>", true);
      if (pos_ >= n_) return malformed(pos_, "end of input inside a tag");
      if (s_[pos_] != '>') return malformed(pos_, "missing '>'");
      bool is_empty = false;
      if (s_[pos_ - 1] == '/') {
        const std::size_t idx = pos_ - name_begin - 1;
        if (idx < name_len) name = name.substr(0, idx);
        is_empty = true;
      }
      ++pos_;

      const Tag tag = classify(name);
      if (tag == Tag::plist) {
        has_content_ = false;
        // libplist stops at a second top-level <plist>, keeping what it has.
        if (path_.empty() && have_root_) return out_;
        if (is_empty) return malformed(pos_, "empty <plist/>");
        path_.push_back(Open::plist);
        continue;
      }
      if (tag == Tag::end_plist) {
        if (!has_content_) return malformed(pos_, "empty <plist>");
        if (path_.empty() || path_.back() != Open::plist) {
          return malformed(pos_, "</plist> without its <plist>");
        }
        path_.pop_back();
        continue;
      }
      has_content_ = true;
      if (tag == Tag::unknown) return malformed(name_begin, "unknown element");

      const bool leaf = tag != Tag::dict && tag != Tag::array && tag != Tag::closing;
      if (leaf && !is_empty) {
        const bool skip_leading_ws = tag != Tag::string && tag != Tag::key;
        if (!text(name, skip_leading_ws)) return out_;
      }
      // A non-empty <key> directly in a dict names the next value; anywhere else (or a
      // second key in a row) libplist reads it as a string value.
      if (tag == Tag::key && !is_empty && !keyname_ && !ancestors_.empty() && ancestors_.back() == Open::dict) {
        keyname_ = true;
        continue;
      }

      if (tag == Tag::closing) {
        if (path_.empty() || name.substr(1) != open_name(path_.back())) {
          return malformed(name_begin, "closing tag does not match");
        }
        path_.pop_back();
        if (ancestors_.empty()) return malformed(name_begin, "closing tag without a container");
        ancestors_.pop_back();
        // The top-level container is closed: libplist stops reading here.
        if (ancestors_.empty()) return out_;
        keyname_ = false;
        continue;
      }

      // A new value.
      if (++out_.nodes > limits_.max_nodes) {
        return failure(Error::too_many_nodes, "more than " + std::to_string(limits_.max_nodes) + " values");
      }
      const bool container = tag == Tag::dict || tag == Tag::array;
      const Open kind = tag == Tag::dict ? Open::dict : Open::array;
      if (!have_root_) {
        have_root_ = true;
        // A scalar at the top is the whole document for libplist.
        if (!container) return out_;
        if (!deeper(1, name_begin)) return out_;
        // The top-level container becomes the parent even when empty: libplist then
        // appends whatever follows to it.
        ancestors_.push_back(kind);
        if (!is_empty) path_.push_back(kind);
      } else {
        if (ancestors_.empty()) return malformed(name_begin, "value without a container");
        if (ancestors_.back() == Open::dict && !keyname_) {
          return malformed(name_begin, "dict value without a key");
        }
        if (container) {
          if (!deeper(ancestors_.size() + 1, name_begin)) return out_;
          if (!is_empty) {
            ancestors_.push_back(kind);
            path_.push_back(kind);
          }
        }
      }
      keyname_ = false;
    }
    if (!path_.empty()) return malformed(pos_, "end of input inside <" + std::string(open_name(path_.back())) + ">");
    if (!have_root_) return malformed(pos_, "no value");
    return out_;
  }

 private:
  static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  // The loops over bytes below are left out of the fuzzers' coverage (MDMC_BYTE_LOOP): traced,
  // their every byte compare was a call into libFuzzer (half the pre-scan's time, 5 % of a
  // server_handler_fuzzer run), and what they look for is what the dictionaries name. Their
  // callers' branches stay covered.
  MDMC_BYTE_LOOP void skip_ws() {
    while (pos_ < n_ && is_ws(s_[pos_])) ++pos_;
  }

  bool at(std::size_t pos, std::string_view lit) const {
    return pos <= n_ && n_ - pos >= lit.size() && s_.compare(pos, lit.size(), lit) == 0;
  }

  // memchr, where libplist walks byte by byte: text content is most of a plist's bytes.
  std::size_t find_char(std::size_t pos, char c) const {
    if (pos >= n_) return pos;
    auto found = s_.find(c, pos);
    return found == std::string_view::npos ? n_ : found;
  }

  // libplist's find_str: it tests positions strictly before end - len, and the caller
  // checks the match at the final position.
  MDMC_BYTE_LOOP std::size_t find_str(std::size_t pos, std::string_view needle, bool skip_quotes) const {
    if (!skip_quotes) {
      if (pos + needle.size() >= n_) return pos;
      auto found = s_.find(needle, pos);
      // Not found before the end: libplist stops at the last position it may test.
      return found == std::string_view::npos ? n_ - needle.size() : found;
    }
    while (pos + needle.size() < n_) {
      if (s_.compare(pos, needle.size(), needle) == 0) break;
      if (s_[pos] == '"') {
        pos = find_char(pos + 1, '"');
        if (pos >= n_) return pos;
      }
      ++pos;
    }
    return pos;
  }

  MDMC_BYTE_LOOP std::size_t find_next(std::size_t pos, std::string_view chars, bool skip_quotes) const {
    while (pos < n_) {
      if (skip_quotes && s_[pos] == '"') {
        pos = find_char(pos + 1, '"');
        if (pos >= n_) return pos;
      }
      if (chars.find(s_[pos]) != std::string_view::npos) return pos;
      ++pos;
    }
    return pos;
  }

  // <!-- comment -->, <!DOCTYPE ...> with an optional [internal subset]; pos_ is at '!'.
  bool special() {
    if (n_ - pos_ > 3 && s_.compare(pos_, 3, "!--") == 0) {
      pos_ = find_str(pos_ + 3, "-->", false);
      if (!at(pos_, "-->")) return set_malformed(pos_, "unterminated comment");
      pos_ += 3;
      return true;
    }
    if (n_ - pos_ > 8 && s_.compare(pos_, 8, "!DOCTYPE") == 0) {
      pos_ += 8;
      bool internal_subset = false;
      while (pos_ < n_) {
        pos_ = find_next(pos_, " \t\r\n[>", true);
        if (pos_ >= n_) return set_malformed(pos_, "unterminated DOCTYPE");
        if (s_[pos_] == '[') {
          internal_subset = true;
          break;
        }
        if (s_[pos_] == '>') {
          ++pos_;
          break;
        }
        skip_ws();
      }
      if (internal_subset) {
        pos_ = find_str(pos_, "]>", true);
        if (!at(pos_, "]>")) return set_malformed(pos_, "unterminated DOCTYPE");
        pos_ += 2;
      }
      return true;
    }
    return set_malformed(pos_, "unknown <! construct");
  }

  // The text content of a leaf element up to its closing tag, with comments and CDATA
  // sections; no other markup is allowed inside.
  bool text(std::string_view tag, bool skip_leading_ws) {
    if (skip_leading_ws) skip_ws();
    while (true) {
      pos_ = find_char(pos_, '<');
      if (pos_ >= n_) return set_malformed(pos_, "end of input in text content");
      ++pos_;
      if (pos_ >= n_) return set_malformed(pos_, "end of input in text content");
      if (s_[pos_] == '!') {
        ++pos_;
        if (pos_ + 1 >= n_) return set_malformed(pos_, "end of input in text content");
        if (s_[pos_] == '-' && s_[pos_ + 1] == '-') {
          pos_ = find_str(pos_ + 2, "-->", false);
          if (!at(pos_, "-->")) return set_malformed(pos_, "unterminated comment");
          pos_ += 3;
        } else if (s_[pos_] == '[') {
          ++pos_;
          if (pos_ + 8 >= n_) return set_malformed(pos_, "end of input in CDATA");
          if (s_.compare(pos_, 6, "CDATA[") != 0) return set_malformed(pos_, "unknown <![");
          pos_ = find_str(pos_ + 6, "]]>", false);
          if (!at(pos_, "]]>")) return set_malformed(pos_, "unterminated CDATA");
          pos_ += 3;
        } else {
          return set_malformed(pos_, "markup in text content");
        }
      } else if (s_[pos_] == '/') {
        break;
      } else {
        return set_malformed(pos_, "element inside a <" + std::string(tag) + ">");
      }
    }
    ++pos_;
    if (pos_ + tag.size() >= n_ || s_.compare(pos_, tag.size(), tag) != 0) {
      return set_malformed(pos_, "closing tag does not match <" + std::string(tag) + ">");
    }
    pos_ += tag.size();
    skip_ws();
    if (pos_ >= n_ || s_[pos_] != '>') return set_malformed(pos_, "missing '>'");
    ++pos_;
    return true;
  }

  // Records a container at this depth; false (with out_ set) beyond the limit.
  bool deeper(std::size_t depth, std::size_t pos) {
    if (depth > limits_.max_depth) {
      out_ = failure(Error::too_deep, at_offset(pos, "nesting exceeds " + std::to_string(limits_.max_depth)));
      return false;
    }
    if (depth > out_.depth) out_.depth = depth;
    return true;
  }

  Prescan malformed(std::size_t pos, std::string_view what) const {
    return failure(Error::malformed_xml, at_offset(pos, what));
  }

  bool set_malformed(std::size_t pos, std::string_view what) {
    out_ = malformed(pos, what);
    return false;
  }

  std::string_view s_;
  std::size_t n_;
  const Limits& limits_;
  std::size_t pos_ = 0;
  Prescan out_;
  std::vector<Open> path_;       // libplist's node_path: <plist>, <dict>, <array> still open
  std::vector<Open> ancestors_;  // libplist's parent chain: containers the next value goes in
  bool have_root_ = false;
  bool keyname_ = false;      // a <key> is waiting for its value
  bool has_content_ = false;  // something since the last <plist>
};

// ---------------------------------------------------------------------------------------
// Binary
//
// bplist00 layout: "bplist00", the objects, the offset table, and a 32-byte trailer:
// 6 unused bytes, offset int size, object ref size, number of objects, top object, offset
// table offset (the last three big-endian 64-bit). Every object starts with a marker byte:
// high nibble the type, low nibble a size (0xF: the size follows as an int object).

constexpr std::string_view kBinaryMagic = "bplist00";
constexpr std::uint64_t kTrailerSize = 32;

struct Trailer {
  unsigned offset_size = 0;  // bytes per offset table entry, 1..8
  unsigned ref_size = 0;     // bytes per object reference, 1..8
  std::uint64_t num_objects = 0;
  std::uint64_t top = 0;           // index of the top object
  std::uint64_t table_offset = 0;  // where the offset table starts; objects end before it
};

std::uint64_t read_be(std::string_view s, std::uint64_t pos, unsigned n) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(s[pos + i]);
  return v;
}

bool add_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }

bool mul_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

// Validates the trailer; on failure `why` says what is wrong.
std::optional<Trailer> read_trailer(std::string_view s, std::string& why) {
  const std::uint64_t n = s.size();
  if (n < kBinaryMagic.size() + kTrailerSize || s.substr(0, kBinaryMagic.size()) != kBinaryMagic) {
    why = "shorter than header and trailer";
    return std::nullopt;
  }
  const std::uint64_t t = n - kTrailerSize;
  Trailer tr;
  tr.offset_size = static_cast<std::uint8_t>(s[t + 6]);
  tr.ref_size = static_cast<std::uint8_t>(s[t + 7]);
  tr.num_objects = read_be(s, t + 8, 8);
  tr.top = read_be(s, t + 16, 8);
  tr.table_offset = read_be(s, t + 24, 8);
  // Apple's reader allows 1..8 for both sizes; libplist reads anything larger as its last
  // 8 bytes, which would make it see other numbers than this walk.
  if (tr.offset_size < 1 || tr.offset_size > 8) {
    why = "offset int size " + std::to_string(tr.offset_size) + " not in 1..8";
    return std::nullopt;
  }
  if (tr.ref_size < 1 || tr.ref_size > 8) {
    why = "object ref size " + std::to_string(tr.ref_size) + " not in 1..8";
    return std::nullopt;
  }
  if (tr.num_objects == 0) {
    why = "no objects";
    return std::nullopt;
  }
  if (tr.top >= tr.num_objects) {
    why = "top object " + std::to_string(tr.top) + " out of range";
    return std::nullopt;
  }
  if (tr.table_offset < kBinaryMagic.size() || tr.table_offset >= t) {
    why = "offset table offset out of range";
    return std::nullopt;
  }
  std::uint64_t table_size = 0;
  std::uint64_t table_end = 0;
  if (!mul_ok(tr.num_objects, tr.offset_size, table_size) || !add_ok(tr.table_offset, table_size, table_end) ||
      table_end > t) {
    why = "offset table runs past the trailer";
    return std::nullopt;
  }
  return tr;
}

// One object as the walk needs it.
struct Object {
  enum class Kind : std::uint8_t { scalar, string, array, dict } kind = Kind::scalar;
  std::uint64_t count = 0;    // array and dict: entries
  std::uint64_t refs = 0;     // array and dict: offset of the first reference
  std::uint64_t payload = 0;  // string and data: bytes a reader allocates for it
};

class BinaryScanner {
 public:
  BinaryScanner(std::string_view s, const Trailer& tr, const Limits& limits) : s_(s), tr_(tr), limits_(limits) {}

  Prescan run() {
    // Whether each object is on the current path from the top: a reference to one of
    // them is a cycle. One bit per object; num_objects is bounded by the input size.
    on_path_.assign(tr_.num_objects, false);

    Object top;
    if (!read_object(tr_.top, top) || !count(top) || !enter(tr_.top, top)) return out_;

    while (!stack_.empty()) {
      Frame& f = stack_.back();
      if (f.next == f.object.count) {
        on_path_[f.index] = false;
        stack_.pop_back();
        continue;
      }
      const std::uint64_t j = f.next++;
      const bool dict = f.object.kind == Object::Kind::dict;
      const Object parent = f.object;
      const std::uint64_t parent_index = f.index;
      if (dict) {
        // libplist requires every key to be a string and reads it before the value.
        std::uint64_t key_index = 0;
        if (!reference(parent, parent_index, j, key_index)) return out_;
        Object key;
        if (!read_object(key_index, key)) return out_;
        if (key.kind != Object::Kind::string) {
          out_ = failure(Error::malformed_binary,
                         "dict " + std::to_string(parent_index) + " has a key that is not a string");
          return out_;
        }
        if (!add_bytes(key.payload)) return out_;
      }
      std::uint64_t child_index = 0;
      if (!reference(parent, parent_index, dict ? parent.count + j : j, child_index)) return out_;
      if (on_path_[child_index]) {
        out_ = failure(Error::cyclic_reference, "object " + std::to_string(child_index) + " contains itself");
        return out_;
      }
      Object child;
      if (!read_object(child_index, child) || !count(child) || !enter(child_index, child)) {
        return out_;
      }
    }
    return out_;
  }

 private:
  struct Frame {
    std::uint64_t index;
    Object object;
    std::uint64_t next = 0;  // the next entry to visit
  };

  bool fail(Error e, std::string detail) {
    out_ = failure(e, std::move(detail));
    return false;
  }

  bool malformed(std::uint64_t index, std::string_view what) {
    return fail(Error::malformed_binary, "object " + std::to_string(index) + ": " + std::string(what));
  }

  // The `slot`-th reference of a container, checked against the object count.
  bool reference(const Object& container, std::uint64_t index, std::uint64_t slot, std::uint64_t& out) {
    // In range: read_object checked refs + 2 * count * ref_size against the table.
    out = read_be(s_, container.refs + slot * tr_.ref_size, tr_.ref_size);
    if (out >= tr_.num_objects) {
      return malformed(index, "reference to object " + std::to_string(out) + " of " + std::to_string(tr_.num_objects));
    }
    return true;
  }

  bool count(const Object& o) {
    if (++out_.nodes > limits_.max_nodes) {
      return fail(Error::too_many_nodes,
                  "more than " + std::to_string(limits_.max_nodes) + " values after expanding shared objects");
    }
    return add_bytes(o.payload);
  }

  bool add_bytes(std::uint64_t bytes) {
    std::uint64_t total = 0;
    if (!add_ok(out_.expanded_bytes, bytes, total) || total > limits_.max_bytes) {
      return fail(Error::too_large, "strings and data exceed " + std::to_string(limits_.max_bytes) +
                                        " bytes after expanding shared objects");
    }
    out_.expanded_bytes = total;
    return true;
  }

  bool enter(std::uint64_t index, const Object& o) {
    if (o.kind != Object::Kind::array && o.kind != Object::Kind::dict) return true;
    const std::size_t depth = stack_.size() + 1;
    if (depth > limits_.max_depth) {
      return fail(Error::too_deep,
                  "nesting exceeds " + std::to_string(limits_.max_depth) + " at object " + std::to_string(index));
    }
    if (depth > out_.depth) out_.depth = depth;
    on_path_[index] = true;
    stack_.push_back(Frame{index, o});
    return true;
  }

  // Decodes the marker of object `index` and checks that its bytes lie before the offset
  // table, with the same bounds libplist 2.2.0 applies in parse_bin_node().
  bool read_object(std::uint64_t index, Object& o) {
    const std::uint64_t entry = tr_.table_offset + index * tr_.offset_size;  // in the table
    const std::uint64_t at = read_be(s_, entry, tr_.offset_size);
    const std::uint64_t limit = tr_.table_offset;
    if (at < kBinaryMagic.size() || at >= limit) return malformed(index, "offset out of range");
    const auto marker = static_cast<std::uint8_t>(s_[at]);
    const unsigned type = marker >> 4;
    const unsigned info = marker & 0x0F;
    std::uint64_t p = at + 1;
    std::uint64_t end = 0;
    auto fits = [&](std::uint64_t bytes) { return add_ok(p, bytes, end) && end <= limit; };

    switch (type) {
      case 0x0:  // 0x08 false, 0x09 true; null and fill are not values libplist reads
        if (info != 0x8 && info != 0x9) return malformed(index, "null or fill object");
        o.kind = Object::Kind::scalar;
        return true;
      case 0x1:  // int of 1 << info bytes: 1, 2, 4, 8 or 16
        if (info > 4 || !fits(std::uint64_t{1} << info)) return malformed(index, "bad int");
        o.kind = Object::Kind::scalar;
        return true;
      case 0x2:  // real of 4 or 8 bytes
        if ((info != 2 && info != 3) || !fits(std::uint64_t{1} << info)) {
          return malformed(index, "bad real");
        }
        o.kind = Object::Kind::scalar;
        return true;
      case 0x3:  // date: an 8-byte real
        if (info != 3 || !fits(8)) return malformed(index, "bad date");
        o.kind = Object::Kind::scalar;
        return true;
      case 0x8:  // uid of info + 1 bytes
        if (!fits(info + 1)) return malformed(index, "bad uid");
        o.kind = Object::Kind::scalar;
        return true;
      case 0x4:    // data
      case 0x5:    // ASCII string
      case 0x6:    // UTF-16BE string, count in code units
      case 0xA:    // array
      case 0xC:    // set, read as an array
      case 0xD: {  // dict: count keys, then count values
        std::uint64_t n = info;
        if (info == 0xF) {
          // The count follows as an int object; only the 1, 2, 4 and 8 byte forms, which
          // libplist and this walk read alike.
          if (p >= limit) return malformed(index, "count missing");
          const auto int_marker = static_cast<std::uint8_t>(s_[p]);
          if ((int_marker >> 4) != 0x1 || (int_marker & 0x0F) > 3) {
            return malformed(index, "bad count");
          }
          const unsigned width = 1U << (int_marker & 0x0F);
          ++p;
          if (!fits(width)) return malformed(index, "count out of range");
          n = read_be(s_, p, width);
          p += width;
        }
        std::uint64_t bytes = 0;
        bool ok = true;
        switch (type) {
          case 0x4:
          case 0x5: bytes = n; break;
          case 0x6:
            // libplist 2.2.0 fails on an empty UTF-16 string.
            ok = n > 0 && mul_ok(n, 2, bytes);
            break;
          case 0xD: ok = mul_ok(n, 2, bytes) && mul_ok(bytes, tr_.ref_size, bytes); break;
          default: ok = mul_ok(n, tr_.ref_size, bytes); break;
        }
        if (!ok || !fits(bytes)) return malformed(index, "contents run past the objects");
        // libplist 2.2 keeps strings as C strings: it cuts an ASCII string at a NUL without
        // a word, and a UTF-16 U+0000 inside a dict key trips an assert() in its key getter
        // (Debian builds it with assertions on). Neither can be represented: refuse both.
        if (type == 0x5 && s_.substr(p, n).find('\0') != std::string_view::npos) {
          return malformed(index, "string contains NUL");
        }
        if (type == 0x6 && !utf16_ok(index, p, n)) return false;
        o.count = n;
        o.refs = p;
        o.payload = 0;
        if (type == 0xA || type == 0xC) {
          o.kind = Object::Kind::array;
        } else if (type == 0xD) {
          o.kind = Object::Kind::dict;
        } else {
          o.kind = type == 0x4 ? Object::Kind::scalar : Object::Kind::string;
          o.payload = bytes;
        }
        return true;
      }
      default: return malformed(index, "unknown object type");
    }
  }

  // A UTF-16BE string libplist 2.2 can convert faithfully: no U+0000 (see above) and no
  // unpaired surrogate, which its converter drops or pairs with a stale lead.
  bool utf16_ok(std::uint64_t index, std::uint64_t p, std::uint64_t units) {
    bool lead = false;
    for (std::uint64_t k = 0; k < units; ++k) {
      const auto u = static_cast<std::uint16_t>(read_be(s_, p + 2 * k, 2));
      if (u == 0) return malformed(index, "string contains U+0000");
      const bool is_lead = u >= 0xD800 && u <= 0xDBFF;
      const bool is_trail = u >= 0xDC00 && u <= 0xDFFF;
      if (lead != is_trail) {
        return fail(Error::bad_utf8, "object " + std::to_string(index) + ": unpaired UTF-16 surrogate");
      }
      lead = is_lead;
    }
    if (lead) return fail(Error::bad_utf8, "object " + std::to_string(index) + ": unpaired UTF-16 surrogate");
    return true;
  }

  std::string_view s_;
  const Trailer& tr_;
  const Limits& limits_;
  Prescan out_;
  std::vector<Frame> stack_;
  std::vector<bool> on_path_;
};

}  // namespace

Prescan prescan_xml(std::string_view bytes, const Limits& limits) { return XmlScanner(bytes, limits).run(); }

Prescan prescan_binary(std::string_view bytes, const Limits& limits) {
  std::string why;
  const auto trailer = read_trailer(bytes, why);
  if (!trailer) return failure(Error::malformed_binary, why);
  return BinaryScanner(bytes, *trailer, limits).run();
}

std::optional<std::string_view> binary_top_object(std::string_view bytes) {
  std::string why;
  const auto tr = read_trailer(bytes, why);
  if (!tr) return std::nullopt;
  const std::uint64_t at = read_be(bytes, tr->table_offset + tr->top * tr->offset_size, tr->offset_size);
  if (at < kBinaryMagic.size() || at >= tr->table_offset) return std::nullopt;
  return bytes.substr(at, tr->table_offset - at);
}

}  // namespace mdmc::plist::detail
