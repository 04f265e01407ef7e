#pragma once
// Files in tests: a fresh folder per test, whole-file reads, and the captured traffic under
// testdata/. Failures here are the test's, so nothing returns an error: a missing file reads
// as empty and the assertion that follows says what was wrong.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace mdmc::testing {

// A new, empty folder for the running test: <temp>/<prefix>_<pid>_<test name>, so that test
// binaries and tests run in parallel never share one ('/' in a parameterised name becomes '_').
// Whatever an earlier run left there is removed first.
std::filesystem::path fresh_test_dir(const std::string& prefix);

// A fixture with a fresh folder of its own (fresh_test_dir), removed after the test; write()
// puts a file in it and returns its path.
class FolderTest : public ::testing::Test {
 protected:
  explicit FolderTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override { dir_ = fresh_test_dir(prefix_); }
  void TearDown() override;
  std::filesystem::path write(const std::string& name, const std::string& text);

  std::filesystem::path dir_;

 private:
  std::string prefix_;
};

// The whole file, as bytes; empty when it cannot be read.
std::string read_text(const std::filesystem::path& path);

// A captured message from testdata/captures/ in the source tree.
std::string capture(const std::string& name);

}  // namespace mdmc::testing
