#include "harness/testing/files.hpp"
#include "mdmc/source_dir.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

namespace mdmc::testing {

std::filesystem::path fresh_test_dir(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = prefix + "_" + std::to_string(::getpid()) + "_" + (info != nullptr ? info->name() : "none");
  for (char& ch : name) {
    if (ch == '/') ch = '_';
  }
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  std::filesystem::create_directories(dir);
  return dir;
}

void FolderTest::TearDown() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::filesystem::path FolderTest::write(const std::string& name, const std::string& text) {
  auto path = dir_ / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string capture(const std::string& name) {
  return read_text(std::filesystem::path(MDMC_SOURCE_DIR) / "testdata" / "captures" / name);
}

}  // namespace mdmc::testing
