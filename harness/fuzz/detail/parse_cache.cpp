#include "harness/fuzz/detail/parse_cache.hpp"

#include <functional>
#include <list>
#include <string>
#include <unordered_map>

#include "harness/fuzz/diagnosis.hpp"

namespace mdmc::fuzz::detail {
namespace {

struct Entry {
  std::string bytes;
  ParsedInput parsed;
};

// Least recently used first; the index finds an entry by its bytes' hash.
struct Cache {
  std::list<Entry> entries;
  std::unordered_multimap<std::size_t, std::list<Entry>::iterator> index;
  std::size_t bytes = 0;

  void forget_oldest() {
    auto oldest = entries.begin();
    auto [from, to] = index.equal_range(std::hash<std::string_view>{}(oldest->bytes));
    for (auto it = from; it != to; ++it) {
      if (it->second == oldest) {
        index.erase(it);
        break;
      }
    }
    bytes -= oldest->bytes.size();
    entries.erase(oldest);
  }
};

}  // namespace

ParsedInput parse_input(std::string_view bytes) {
  thread_local Cache cache;
  const std::size_t hash = std::hash<std::string_view>{}(bytes);
  auto [from, to] = cache.index.equal_range(hash);
  for (auto it = from; it != to; ++it) {
    if (it->second->bytes != bytes) continue;
    cache.entries.splice(cache.entries.end(), cache.entries, it->second);  // now the most recent
    return it->second->parsed;
  }
  auto parsed = std::make_shared<const base::Result<plist::Value>>(plist::parse(bytes, fuzz_input_limits()));
  if (bytes.size() > kParsedInputBytes) return parsed;  // too big to keep; still parsed
  while (!cache.entries.empty() &&
         (cache.entries.size() >= kParsedInputs || cache.bytes + bytes.size() > kParsedInputBytes)) {
    cache.forget_oldest();
  }
  cache.entries.push_back({std::string(bytes), parsed});
  cache.index.emplace(hash, std::prev(cache.entries.end()));
  cache.bytes += bytes.size();
  return parsed;
}

}  // namespace mdmc::fuzz::detail
