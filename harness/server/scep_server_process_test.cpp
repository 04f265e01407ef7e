#include "harness/server/scep_server_process.hpp"

#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "harness/net/http_client.hpp"
#include "harness/pki/pki.hpp"

namespace mdmc::server {
namespace {

namespace fs = std::filesystem;

net::Exchange get_ca_caps(const std::string& url) {
  net::ClientLimits limits;
  limits.connect_timeout = std::chrono::milliseconds(1000);
  limits.header_timeout = std::chrono::milliseconds(2000);
  limits.body_timeout = std::chrono::milliseconds(2000);
  net::HttpClient client(limits);
  return client.send(net::Request{"GET", url + "?operation=GetCACaps", {}, ""});
}

// The processes whose parent is `pid`, from /proc.
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // "PID (comm) STATE PPID ...": comm may hold spaces, so read after its closing parenthesis.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t parent = 0;
    if (rest >> state >> parent && parent == pid) out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

// True when `pid` names no process (reaped, not a zombie: kill would still reach a zombie).
bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

TEST(ScepServerProcess, StartsAnswersGetCACapsAndIsGoneAfterDestruction) {
  if (!find_scepserver()) GTEST_SKIP() << "scepserver is not installed (Debian package scep)";
  auto started = ScepServerProcess::start();
  ASSERT_TRUE(started.ok()) << started.message();
  std::unique_ptr<ScepServerProcess> owned = std::move(started).value();
  auto& scep = *owned;
  EXPECT_EQ(scep.url(), "http://127.0.0.1:" + std::to_string(scep.port()) + "/scep");
  EXPECT_EQ(scep.challenge().size(), 32u);
  EXPECT_TRUE(pki::count_certificates(scep.ca_pem()).value_or(0) == 1);
  auto subject = pki::subject_name(scep.ca_pem());
  ASSERT_TRUE(subject.ok()) << subject.message();
  EXPECT_NE(subject->find("O=mdmconform-scep"), std::string::npos) << *subject;
  EXPECT_GT(scep.startup_time().count(), 0);
  // For docs/reference-server.md's start time: --gtest_output=json records it.
  RecordProperty("startup_ms", static_cast<int>(scep.startup_time().count()));

  auto caps = get_ca_caps(scep.url());
  ASSERT_TRUE(caps.ok()) << caps.error_detail;
  EXPECT_EQ(caps.response->status, 200);
  EXPECT_NE(caps.response->body.find("POSTPKIOperation"), std::string::npos) << caps.response->body;

  const pid_t pid = scep.pid();
  const fs::path folder = scep.folder();
  const std::string url = scep.url();
  ASSERT_GT(pid, 0);
  // The watchdog shell's children: scepserver and the watcher. All of them are reaped, none
  // left a zombie for init to collect.
  const auto children = children_of(pid);
  EXPECT_EQ(children.size(), 2u);
  EXPECT_TRUE(fs::exists(folder / "depot" / "ca.pem"));
  EXPECT_EQ(fs::status(folder).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  owned.reset();
  EXPECT_TRUE(gone(pid));
  for (pid_t child : children) EXPECT_TRUE(gone(child)) << child;
  EXPECT_FALSE(fs::exists(folder));
  EXPECT_FALSE(get_ca_caps(url).ok());
}

TEST(ScepServerProcess, TwoRunSideBySideWithTheirOwnPortChallengeAndCa) {
  if (!find_scepserver()) GTEST_SKIP() << "scepserver is not installed (Debian package scep)";
  auto a = ScepServerProcess::start();
  auto b = ScepServerProcess::start();
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_NE((*a)->port(), (*b)->port());
  EXPECT_NE((*a)->challenge(), (*b)->challenge());
  EXPECT_NE((*a)->ca_pem(), (*b)->ca_pem());
}

TEST(ScepServerProcess, AMissingProgramIsNotInstalledNotAFailure) {
  ScepServerOptions options;
  options.program = "mdmconform-no-such-scepserver";
  auto started = ScepServerProcess::start(options);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ScepServerError::not_installed);
  EXPECT_NE(started.message().find("not installed"), std::string::npos) << started.message();
  EXPECT_FALSE(find_scepserver("/nonexistent/scepserver"));
}

TEST(ScepServerProcess, AProgramThatIsNoScepServerFailsWithItsOutput) {
  // /bin/false exits 1 at `ca -init`: a failure, not "not installed".
  ScepServerOptions options;
  options.program = "/bin/false";
  auto started = ScepServerProcess::start(options);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ScepServerError::failed);
  EXPECT_NE(started.message().find("exited with 1"), std::string::npos) << started.message();
}

}  // namespace
}  // namespace mdmc::server
