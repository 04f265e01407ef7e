#include "harness/fuzz/minimize.hpp"

#include <optional>
#include <set>
#include <vector>

#include "harness/plist/value.hpp"

namespace mdmc::fuzz {
namespace {

using Clock = std::chrono::steady_clock;

// A step from the root: a dict key or an array index.
struct Step {
  std::string key;
  std::size_t index = 0;
  bool is_key = false;
};
using Path = std::vector<Step>;

plist::Value* at(plist::Value& root, const Path& path) {
  plist::Value* v = &root;
  for (const auto& step : path) {
    if (step.is_key) {
      auto* d = v->as_dict();
      if (!d) return nullptr;
      auto it = d->find(step.key);
      if (it == d->end()) return nullptr;
      v = &it->second;
    } else {
      auto* a = v->as_array();
      if (!a || step.index >= a->size()) return nullptr;
      v = &(*a)[step.index];
    }
  }
  return v;
}

// Every node's path, parents before children (bounded: a candidate per node is tried at most).
void collect(const plist::Value& v, Path& path, std::vector<Path>& out, std::size_t max) {
  if (out.size() >= max) return;
  out.push_back(path);
  if (const auto* d = v.as_dict()) {
    for (const auto& [key, child] : *d) {
      path.push_back({key, 0, true});
      collect(child, path, out, max);
      path.pop_back();
    }
  } else if (const auto* a = v.as_array()) {
    for (std::size_t i = 0; i < a->size(); ++i) {
      path.push_back({{}, i, false});
      collect((*a)[i], path, out, max);
      path.pop_back();
    }
  }
}

// The edits tried at a node, in order: remove it from its parent, make it a plain string
// (not a key a repair gave its schema type: that would undo the repair), unwrap it (a container
// replaced by its first child), shorten it (a string halved).
std::vector<plist::Value> candidates_at(const plist::Value& root, const Path& path,
                                        const std::set<std::string, std::less<>>& repaired) {
  std::vector<plist::Value> out;
  if (!path.empty()) {
    plist::Value removed = root;
    Path parent_path(path.begin(), path.end() - 1);
    if (auto* parent = at(removed, parent_path)) {
      if (auto* d = parent->as_dict()) {
        d->erase(path.back().key);
        out.push_back(std::move(removed));
      } else if (auto* a = parent->as_array()) {
        a->erase(a->begin() + static_cast<std::ptrdiff_t>(path.back().index));
        out.push_back(std::move(removed));
      }
    }
  }
  plist::Value copy = root;
  plist::Value* node = at(copy, path);
  if (!node) return out;
  // Made plain: any other value becomes the string "x", so that what the oracle does not need
  // (a second key of the wrong type) goes while the key stays.
  const bool keeps_its_type = path.size() == 1 && path.front().is_key && repaired.count(path.front().key);
  if (!path.empty() && !node->as_string() && !keeps_its_type) {
    plist::Value plain = root;
    *at(plain, path) = plist::Value(std::string("x"));
    out.push_back(std::move(plain));
  }
  if (const auto* a = node->as_array(); a && !a->empty() && !path.empty()) {
    plist::Value unwrapped = root;
    *at(unwrapped, path) = plist::Value((*a)[0]);
    out.push_back(std::move(unwrapped));
  } else if (const auto* s = node->as_string(); s && s->size() > 1) {
    *node = plist::Value(s->substr(0, s->size() / 2));
    out.push_back(std::move(copy));
  }
  return out;
}

class Budget {
 public:
  explicit Budget(const MinimizeLimits& limits) : limits_(limits), deadline_(Clock::now() + limits.max_time) {}
  bool spent() const { return tries_ >= limits_.max_tries || Clock::now() >= deadline_; }
  void take() { ++tries_; }
  int tries() const { return tries_; }

 private:
  const MinimizeLimits& limits_;
  Clock::time_point deadline_;
  int tries_ = 0;
};

}  // namespace

Minimized minimize_input(std::string_view input, const std::function<Fires(std::string_view)>& fires,
                         const MinimizeLimits& limits, const std::vector<Repair>& repairs) {
  Minimized result{std::string(input), 0, false, false};
  Budget budget(limits);
  bool stopped = false;  // the target could not tell: nothing more is sent
  auto try_candidate = [&](const std::string& candidate) {
    if (stopped || budget.spent()) return false;
    auto answer = fires(candidate);
    if (answer != Fires::not_sent) budget.take();
    if (answer == Fires::cannot_tell) stopped = true;
    return answer == Fires::yes;
  };

  // As a plist, when the input is one and its re-encoding still fires (an XML input with a key
  // twice in a dict loses it when decoded: that one is shrunk as bytes only).
  auto parsed = plist::parse(input);
  const bool binary = plist::sniff(input) == plist::Format::binary;
  auto encode = [&](const plist::Value& v) { return binary ? plist::to_binary(v) : plist::to_xml(v); };
  bool shrunk_as_plist = false;
  if (parsed) {
    plist::Value root = *parsed;
    std::string encoded = encode(root);
    if (encoded == input || try_candidate(encoded)) {
      shrunk_as_plist = true;
      if (encoded.size() < result.bytes.size()) result.bytes = encoded;
      std::set<std::string, std::less<>> repaired;
      for (const auto& repair : repairs) {
        if (stopped || budget.spent()) break;
        const plist::Value* current = root.find(repair.key);
        if (!current || *current == repair.value) continue;
        plist::Value candidate = root;
        (*candidate.as_dict())[repair.key] = repair.value;
        auto bytes = encode(candidate);
        if (try_candidate(bytes)) {
          root = std::move(candidate);
          result.bytes = std::move(bytes);
          repaired.insert(repair.key);
        }
      }
      // Passes over every node until one changes nothing; after a shrink the pass goes on from
      // the same place in the new tree, so that what was refused before it is not sent again.
      for (bool progress = true; progress && !stopped && !budget.spent();) {
        progress = false;
        std::vector<Path> paths;
        Path scratch;
        collect(root, scratch, paths, 4096);
        for (std::size_t i = 0; i < paths.size() && !stopped && !budget.spent();) {
          bool shrunk = false;
          for (auto& candidate : candidates_at(root, paths[i], repaired)) {
            auto bytes = encode(candidate);
            if (bytes.size() >= result.bytes.size()) continue;
            if (try_candidate(bytes)) {
              root = std::move(candidate);
              result.bytes = std::move(bytes);
              progress = shrunk = true;
              break;
            }
          }
          if (!shrunk) {
            ++i;
            continue;
          }
          paths.clear();
          collect(root, scratch, paths, 4096);
        }
      }
    }
  }

  // As bytes, when it could not be shrunk as a plist: drop chunks of halving size while it
  // still fires. (A plist shrunk as one stays in its plain encoding, readable.)
  std::string bytes = result.bytes;
  for (std::size_t chunk = shrunk_as_plist ? 0 : bytes.size() / 2; chunk >= 1 && !stopped && !budget.spent();
       chunk /= 2) {
    for (std::size_t offset = 0; offset < bytes.size() && !stopped && !budget.spent();) {
      std::string candidate = bytes.substr(0, offset) + bytes.substr(std::min(bytes.size(), offset + chunk));
      if (try_candidate(candidate)) {
        bytes = std::move(candidate);
      } else {
        offset += chunk;
      }
    }
    if (chunk == 1) break;
  }
  result.bytes = std::move(bytes);
  result.tries = budget.tries();
  result.reduced = result.bytes != input;
  result.out_of_budget = !stopped && budget.spent();
  return result;
}

}  // namespace mdmc::fuzz
