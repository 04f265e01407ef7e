#pragma once
// The network fuzzer's structure-aware mutator: it decodes an input as a property list and
// mutates it as one (types, keys, MessageType and Status values, device and user keys,
// sizes, nesting, encoding), so that most inputs a target receives are plists a parser
// accepts and only their meaning is odd. Pure functions of the input and a seed: a mutation
// can be replayed.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mdmc::fuzz {

// The kinds of mutation, for statistics and tests.
enum class Mutation {
  retype,  // a value becomes another type (a string "12" the integer 12, ...)
  drop_key,
  duplicate_key,      // the same key twice in one dict (only XML can say it)
  rename_key,         // to another real key, a case variant, or an odd one
  swap_message_type,  // MessageType or Status becomes another real one
  confuse_channel,    // a UserID on a device message, a missing UDID, a user key dropped
  odd_string,         // empty, huge, odd unicode, format or path strings
  numeric_extreme,    // INT64 bounds, 0, -1, 2^32, NaN, infinities
  data_blob,          // random, empty or large data
  deep_nesting,       // a value wrapped in many arrays and dicts
  switch_encoding,    // XML to binary or back
  // DeclarativeManagement check-ins only (the mutation does not apply to other messages):
  ddm_endpoint,  // Endpoint becomes another real one, a declaration path, or an odd one
  ddm_json,      // the JSON inside Data (a status report) mutated as JSON, or as bytes if it is not JSON
  graft,         // (cross-over) a subtree of another input
};
inline constexpr int kMutationKinds = static_cast<int>(Mutation::graft) + 1;
std::string_view mutation_name(Mutation mutation);

struct Mutated {
  std::string bytes;
  Mutation applied;
};

// Mutates `input` as a plist. A DeclarativeManagement check-in gets one of the ddm_* mutations
// half the time, one of the others the rest. Nothing when it does not decode as one, or when no mutation
// fits in `max_size` bytes: the caller then mutates bytes instead.
std::optional<Mutated> mutate_plist(std::string_view input, std::uint64_t seed, std::size_t max_size);
// As mutate_plist, with one kind of mutation forced (for tests).
std::optional<Mutated> mutate_plist_as(std::string_view input, Mutation mutation, std::uint64_t seed,
                                       std::size_t max_size);

// Grafts a subtree of `other` into `input`, or merges their top-level dicts. Nothing when
// either does not decode, or when the result does not fit.
std::optional<std::string> cross_over_plists(std::string_view input, std::string_view other, std::uint64_t seed,
                                             std::size_t max_size);

// Mutates a status report's JSON (a DeclarativeManagement check-in's Data) structurally: keys,
// values, types and nesting, re-serialized; bytes that are not JSON (or too deep to read back)
// get byte edits. Within `max_size` bytes; the same input and seed give the same output.
std::string mutate_declarative_json(std::string_view json, std::uint64_t seed, std::size_t max_size);

// Key names the JSON mutator renames to: the status report's, its status items', and the
// declarative answers'.
const std::vector<std::string_view>& declarative_keys();

// Key names the mutator renames to: every check-in key of Apple's schema, the report keys,
// and the command keys a report refers to.
const std::vector<std::string_view>& known_keys();

}  // namespace mdmc::fuzz
