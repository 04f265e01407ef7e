#pragma once
// The violations a schema walk finds, in the order found: at most kMaxSchemaViolations, the
// last saying that more were left out. The plist walk (command_schema.cpp) and the JSON walk
// (declarative.cpp) both keep theirs here.
#include <string>
#include <utility>
#include <vector>

#include "harness/protocol/command_schema.hpp"

namespace mdmc::protocol::detail {

class ViolationList {
 public:
  void add(std::string path, std::string problem) {
    if (full()) return;
    if (out_.size() + 1 == kMaxSchemaViolations) {
      out_.push_back({"", "more violations not listed"});
      return;
    }
    out_.push_back({std::move(path), std::move(problem)});
  }
  bool full() const { return out_.size() >= kMaxSchemaViolations; }
  std::vector<SchemaViolation> take() { return std::move(out_); }

 private:
  std::vector<SchemaViolation> out_;
};

}  // namespace mdmc::protocol::detail
