// `mdmconform replay FILE --as-case DIR`: a fuzzing finding becomes a regression case that
// `mdmconform run --specs DIR` runs, failing on the server with the bug and passing on one
// without. The findings are written here as the network fuzzer writes them (fuzz/finding.hpp),
// with the inputs that found the seeded bugs.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "harness/fuzz/finding.hpp"
#include "harness/fuzz/session.hpp"
#include "harness/plist/value.hpp"
#include "harness/protocol/messages.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;

testing::Ran mdmconform(const std::string& args) {
  return testing::run_shell("exec " + std::string(MDMC_BINARY) + " " + args + " 2>&1", std::chrono::seconds(120));
}

fs::path write_finding(const fs::path& dir, const std::string& oracle, const std::string& endpoint,
                       const std::string& body) {
  fuzz::Reproducer r;
  r.oracle = oracle;
  r.detail = "written by the test";
  r.endpoint = endpoint;
  r.target_name = "reference";
  r.udid = std::string(fuzz::kFuzzUdid);
  r.user_id = std::string(fuzz::kFuzzUserId);
  r.request.method = "PUT";
  r.request.url = endpoint == "check_in" ? "http://127.0.0.1:1/checkin" : "http://127.0.0.1:1/mdm";
  r.request.body = body;
  r.key = oracle + "|" + endpoint + "|test";
  r.minimised = true;
  auto written = fuzz::write_reproducer(dir, r);
  EXPECT_TRUE(written) << written.message();
  return written ? *written : fs::path();
}

class FuzzCaseTest : public testing::FolderTest {
 protected:
  FuzzCaseTest() : testing::FolderTest("mdmc_fuzz_case_test") {}
  const fs::path& dir() const { return dir_; }
};

// A TokenUpdate whose UDID is an integer: the wrong-type-500 bug answers 500 (ROB-MALFORMED, a
// should: a warn, which --strict counts as a failure); the correct server a 4xx.
TEST_F(FuzzCaseTest, AFiveHundredFindingWarnsOnTheBuggyServerAndPassesOnTheCorrectOne) {
  protocol::DeviceFacts device;
  device.udid = std::string(fuzz::kFuzzUdid);
  device.topic = "com.apple.mgmt.External.mdmconform";
  auto message = protocol::token_update(device, {"token", "magic"});
  message["UDID"] = plist::Value(std::int64_t{12});
  auto finding = write_finding(dir() / "findings", "status-5xx", "check_in", plist::to_xml(plist::Value(message)));
  const fs::path specs = dir() / "regressions";
  auto wrote = mdmconform("replay " + finding.string() + " --as-case " + specs.string());
  ASSERT_EQ(wrote.exit_code, 0) << wrote.output;
  ASSERT_TRUE(fs::exists(specs / "rules.yaml"));
  const auto case_file = specs / "scenarios" / "fuzz" / (finding.stem().string() + ".yaml");
  ASSERT_TRUE(fs::exists(case_file)) << wrote.output;

  auto buggy = mdmconform("run --specs " + specs.string() + " --strict --seeded-bug wrong-type-500 --out " +
                          (dir() / "buggy").string());
  EXPECT_EQ(buggy.exit_code, 1) << buggy.output;
  EXPECT_NE(buggy.output.find("ROB-MALFORMED"), std::string::npos) << buggy.output;
  auto correct = mdmconform("run --specs " + specs.string() + " --strict --out " + (dir() / "correct").string());
  EXPECT_EQ(correct.exit_code, 0) << correct.output;
}

// An Idle whose UDID is empty wedges the empty-udid-wedge server: the case's own Idle after it
// breaks ROB-ALIVE, a must, so the case fails without --strict.
TEST_F(FuzzCaseTest, AWedgingFindingFailsOnTheBuggyServerAndPassesOnTheCorrectOne) {
  std::string body =
      plist::to_xml(plist::Value(plist::Dict{{"Status", plist::Value("Idle")}, {"UDID", plist::Value(std::string())}}));
  auto finding = write_finding(dir() / "findings", "liveness", "server", body);
  const fs::path specs = dir() / "regressions";
  auto wrote = mdmconform("replay " + finding.string() + " --as-case " + specs.string());
  ASSERT_EQ(wrote.exit_code, 0) << wrote.output;
  auto buggy = mdmconform("run --specs " + specs.string() + " --seeded-bug empty-udid-wedge --out " +
                          (dir() / "buggy").string());
  EXPECT_EQ(buggy.exit_code, 1) << buggy.output;
  auto correct = mdmconform("run --specs " + specs.string() + " --out " + (dir() / "correct").string());
  EXPECT_EQ(correct.exit_code, 0) << correct.output;
}

}  // namespace
}  // namespace mdmc
