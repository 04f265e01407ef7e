#pragma once
// The loaders' one convention (rules, cases, target profiles): yaml-cpp throws, so a loader
// throws LoadError, which names the file, the line and the key path, and the CLI catches it once
// and exits 2. Nothing else in the harness throws for an expected failure.
#include <stdexcept>
#include <string>

namespace mdmc::base {

class LoadError : public std::runtime_error {
 public:
  LoadError(std::string file, int line, std::string key, const std::string& reason);
  const std::string& file() const { return file_; }
  int line() const { return line_; }  // from 1; 0 when the file could not be read at all
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  int line_;
  std::string key_;
};

}  // namespace mdmc::base
