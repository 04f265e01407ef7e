// report.html in a real browser: headless Chromium driven over WebDriver (chromedriver, JSON over
// HTTP on loopback, spoken with the harness's own HttpClient). The page is opened from disk, as a
// certifier would open it; the counts on the page must equal report.json's, a failed case must
// come first and open to its transcript, a passing case must open when clicked or when the URL
// names it, the failed case's diagram must have a lane per actor and an arrow per request and per
// answer, the filters must hide what they should, and a screenshot is kept in the build folder.
// Skipped, saying why, where Chromium or chromedriver is absent.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"
#include "harness/net/http_client.hpp"
#include "harness/testing/files.hpp"
#include "harness/testing/process.hpp"
#include "mdmc/source_dir.hpp"

namespace mdmc {
namespace {

namespace fs = std::filesystem;
namespace chr = std::chrono;
using Json = nlohmann::json;

// WebDriver's key for an element reference (W3C WebDriver, "web element identifier").
constexpr const char* kElementKey = "element-6066-11e4-a52e-4f735466cecf";

using testing::read_text;

// Standard base64 (WebDriver's screenshots); nothing when a character is outside the alphabet.
std::optional<std::string> base64_decode(std::string_view text) {
  auto bytes = base::base64_decode(text);
  if (!bytes) return std::nullopt;
  return std::move(*bytes);
}

// The first of the candidates that is an executable file.
std::optional<fs::path> find_program(const std::vector<std::string>& candidates) {
  for (const auto& c : candidates) {
    if (!c.empty() && ::access(c.c_str(), X_OK) == 0) return fs::path(c);
  }
  return std::nullopt;
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// chromedriver on a port it picks, its output in a log file; stopped (and waited for) on
// destruction: SIGTERM, then SIGKILL after 5 s.
class ChromeDriver {
 public:
  ChromeDriver(const fs::path& program, const fs::path& log) {
    // --port=0: it chooses a free port and prints it.
    auto spawned = testing::Process::spawn({program.string(), "--port=0"}, {.output_file = log});
    if (!spawned) return;
    process_.emplace(std::move(*spawned));
    // "ChromeDriver was started successfully on port 40993."; bounded at 15 s.
    const std::regex started("started successfully on port (\\d+)");
    const auto deadline = chr::steady_clock::now() + chr::seconds{15};
    while (chr::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string text = read_text(log);
      if (std::regex_search(text, m, started)) {
        port_ = std::stoi(m[1]);
        return;
      }
      std::this_thread::sleep_for(chr::milliseconds{50});
    }
  }
  ~ChromeDriver() {
    if (!process_) return;
    process_->signal(SIGTERM);
    // Killed and reaped by the Process when it goes, if SIGTERM was not enough.
    (void)process_->wait_for(chr::seconds{5});
  }
  ChromeDriver(const ChromeDriver&) = delete;
  ChromeDriver& operator=(const ChromeDriver&) = delete;
  int port() const { return port_; }

 private:
  std::optional<testing::Process> process_;
  int port_ = 0;
};

// A WebDriver session: every command is one HTTP request, every wait bounded by the client's
// deadlines and WebDriver's own timeouts.
class Browser {
 public:
  explicit Browser(int port) : base_("http://127.0.0.1:" + std::to_string(port)), http_(limits()) {}

  static net::ClientLimits limits() {
    net::ClientLimits l;
    l.connect_timeout = chr::milliseconds{5000};
    l.header_timeout = chr::milliseconds{30000};  // a new session starts Chromium
    l.body_timeout = chr::milliseconds{30000};
    l.max_body_bytes = 64 * 1024 * 1024;  // screenshots, base64
    return l;
  }

  // The command's "value", or nothing with error() set.
  std::optional<Json> call(const std::string& method, const std::string& path, const Json& body = Json::object()) {
    net::Request request;
    request.method = method;
    request.url = base_ + path;
    if (method != "GET" && method != "DELETE") {
      request.headers = {{"Content-Type", "application/json; charset=utf-8"}};
      request.body = body.dump();
    }
    const auto exchange = http_.send(request);
    if (!exchange.ok()) {
      error_ = std::string(net::transport_error_name(exchange.error)) + ": " + exchange.error_detail;
      return std::nullopt;
    }
    const Json reply = Json::parse(exchange.response->body, nullptr, false);
    if (reply.is_discarded() || !reply.is_object() || !reply.contains("value")) {
      error_ = "not a WebDriver reply: " + exchange.response->body.substr(0, 300);
      return std::nullopt;
    }
    if (exchange.response->status != 200) {
      error_ = reply["value"].dump().substr(0, 600);
      return std::nullopt;
    }
    return reply["value"];
  }

  bool start(const fs::path& chromium, const fs::path& profile_dir) {
    Json options = {{"binary", chromium.string()},
                    {"args",
                     {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                      "--disable-extensions", "--window-size=1400,1100", "--user-data-dir=" + profile_dir.string()}}};
    Json caps = {{"capabilities", {{"alwaysMatch", {{"browserName", "chrome"}, {"goog:chromeOptions", options}}}}}};
    auto value = call("POST", "/session", caps);
    if (!value || !value->contains("sessionId")) return false;
    session_ = "/session/" + (*value)["sessionId"].get<std::string>();
    return call("POST", session_ + "/timeouts", {{"script", 10000}, {"pageLoad", 20000}, {"implicit", 0}}).has_value();
  }

  void stop() {
    if (!session_.empty()) call("DELETE", session_);
    session_.clear();
  }
  ~Browser() { stop(); }

  bool open(const std::string& url) { return call("POST", session_ + "/url", {{"url", url}}).has_value(); }

  std::optional<Json> script(const std::string& body, const Json& args = Json::array()) {
    return call("POST", session_ + "/execute/sync", {{"script", body}, {"args", args}});
  }

  std::optional<std::string> element(const std::string& css) {
    auto value = call("POST", session_ + "/element", {{"using", "css selector"}, {"value", css}});
    if (!value || !value->contains(kElementKey)) return std::nullopt;
    return (*value)[kElementKey].get<std::string>();
  }

  bool click(const std::string& element_id) {
    return call("POST", session_ + "/element/" + element_id + "/click").has_value();
  }

  bool type(const std::string& element_id, const std::string& text) {
    return call("POST", session_ + "/element/" + element_id + "/value", {{"text", text}}).has_value();
  }

  std::optional<std::string> screenshot_png() {
    auto value = call("GET", session_ + "/screenshot");
    if (!value || !value->is_string()) return std::nullopt;
    return base64_decode(value->get<std::string>());
  }

  const std::string& error() const { return error_; }

 private:
  std::string base_;
  net::HttpClient http_;
  std::string session_;
  std::string error_;
};

// What the diagram of a case must show, from report.json: its lanes (one per device and user
// that sent something, the server, and the admin API when used), a request arrow per exchange
// and an answer arrow per exchange that got one.
struct ExpectedDiagram {
  std::size_t lanes = 0;
  std::size_t requests = 0;
  std::size_t responses = 0;
};

ExpectedDiagram expected_diagram(const Json& c) {
  ExpectedDiagram d;
  std::set<std::string> actors{"server"};
  for (const auto& e : c["transcript"]) {
    actors.insert(e["actor"].get<std::string>());
    ++d.requests;
    if (!e["response"].is_null()) ++d.responses;
  }
  d.lanes = actors.size();
  return d;
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = find_program({env_or("MDMC_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser"});
    driver_path_ = find_program({env_or("MDMC_CHROMEDRIVER", ""), "/usr/bin/chromedriver"});
    if (!chromium_ || !driver_path_) {
      GTEST_SKIP() << "Chromium or chromedriver is absent: `apt-get install chromium chromium-driver` "
                      "(scripts/install-deps.sh --test installs them) to run the browser test";
    }
    root_ = fs::path(MDMC_BROWSER_OUT);
    out_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(out_);
    fs::create_directories(out_);
  }

  // A run against the built-in server in a fault mode, written to out_/report.
  Json make_report(const std::string& fault) {
    const auto dir = out_ / "report";
    const auto ran = testing::run_process({MDMC_BINARY, "--specs", std::string(MDMC_SOURCE_DIR) + "/specs", "run",
                                           "--quiet", "--seed", "7", "--fault", fault, "--out", dir.string()},
                                          chr::seconds{120}, {.output_file = out_ / "run.log"});
    EXPECT_TRUE(ran.signal == 0 && ran.exit_code == 1) << read_text(out_ / "run.log");
    Json record = Json::parse(read_text(dir / "report.json"), nullptr, false);
    EXPECT_FALSE(record.is_discarded());
    return record;
  }

  std::optional<fs::path> chromium_;
  std::optional<fs::path> driver_path_;
  fs::path root_;  // the build folder's browser/: the screenshot is kept here
  fs::path out_;   // this test's own folder under it
};

// A CSS selector for the element with this id: a case's id is its case id, "syn/empty_end",
// which "#..." cannot name unescaped.
std::string by_id(const std::string& id) { return "[id=\"" + id + "\"]"; }

// The first case of the record with this verdict, or null.
const Json* first_case(const Json& record, const std::string& verdict) {
  for (const auto& c : record["cases"]) {
    if (c["verdict"] == verdict) return &c;
  }
  return nullptr;
}

TEST_F(BrowserTest, TheReportOfAFailingServerReadsRightInChromium) {
  const Json record = make_report("series-end-204");
  ASSERT_TRUE(record.is_object());
  const auto page = out_ / "report" / "report.html";
  ASSERT_TRUE(fs::exists(page));
  const std::string url = "file://" + fs::absolute(page).string();
  const Json* failed_case = first_case(record, "fail");
  const Json* passed_case = first_case(record, "pass");
  ASSERT_TRUE(failed_case && passed_case) << "the fault mode makes cases fail, and others pass";
  const Json& failed = *failed_case;
  const std::string failed_id = failed["id"].get<std::string>();
  const std::string passed_id = (*passed_case)["id"].get<std::string>();

  ChromeDriver driver(*driver_path_, out_ / "chromedriver.log");
  ASSERT_NE(driver.port(), 0) << read_text(out_ / "chromedriver.log");
  Browser browser(driver.port());
  ASSERT_TRUE(browser.start(*chromium_, out_ / "profile")) << browser.error();

  // Whether a case is open and its top within the window.
  const std::string in_view_js =
      "var c = document.getElementById(arguments[0]); var top = c.getBoundingClientRect().top;"
      "return {open: c.open, in_view: top >= 0 && top < window.innerHeight, scrolled: window.scrollY};";

  // A link from a ticket names a case by its id: the page opens it, even one that passed, and
  // shows it.
  ASSERT_TRUE(browser.open(url + "#" + passed_id)) << browser.error();
  auto linked = browser.script(in_view_js, {passed_id});
  ASSERT_TRUE(linked) << browser.error();
  EXPECT_EQ((*linked)["open"], true) << passed_id;
  EXPECT_EQ((*linked)["in_view"], true) << passed_id;

  ASSERT_TRUE(browser.open(url)) << browser.error();

  // The counts on the page are report.json's, the overall verdict the assessment's.
  auto counts = browser.script(
      "var out = {}; ['pass','fail','warn','skip','error','total'].forEach(function (v) {"
      "  out[v] = Number(document.getElementById('count-' + v).textContent); });"
      "out.cases = document.querySelectorAll('details.case').length;"
      "out.first = document.querySelector('details.case').dataset.verdict;"
      "out.result = document.getElementById('overall').dataset.result; return out;");
  ASSERT_TRUE(counts) << browser.error();
  for (const char* v : {"pass", "fail", "warn", "skip", "error"}) {
    EXPECT_EQ((*counts)[v], record["counts"][v]) << v;
  }
  EXPECT_EQ((*counts)["total"], record["cases"].size());
  EXPECT_EQ((*counts)["cases"], record["cases"].size());
  EXPECT_EQ((*counts)["result"], "failed");
  EXPECT_TRUE((*counts)["first"] == "fail" || (*counts)["first"] == "error") << "the failing cases come first";

  // The first failed case is open from the start, its transcript and the failing step's headers
  // shown; a passing case is closed until clicked.
  const std::string visible_js =
      "var c = document.getElementById(arguments[0]); var t = c.querySelector('.transcript');"
      "var h = c.querySelector('details.exchange[open] .hdr');"
      "return {open: c.open, transcript: t.checkVisibility() && t.offsetHeight > 0,"
      "        exchanges: c.querySelectorAll('details.exchange').length,"
      "        headers: !!h && h.checkVisibility() && h.offsetHeight > 0};";
  auto failing = browser.script(visible_js, {failed_id});
  ASSERT_TRUE(failing) << browser.error();
  EXPECT_EQ((*failing)["open"], true);
  EXPECT_EQ((*failing)["transcript"], true) << "a failing case shows its transcript";
  EXPECT_EQ((*failing)["exchanges"], failed["transcript"].size());
  EXPECT_EQ((*failing)["headers"], true) << "the exchanges of the failing step are open, headers shown";

  auto before = browser.script(visible_js, {passed_id});
  ASSERT_TRUE(before) << browser.error();
  EXPECT_EQ((*before)["open"], false);
  EXPECT_EQ((*before)["transcript"], false) << "a closed case hides its transcript";
  auto summary = browser.element(by_id(passed_id) + " > summary");
  ASSERT_TRUE(summary) << browser.error();
  ASSERT_TRUE(browser.click(*summary)) << browser.error();
  auto after = browser.script(visible_js, {passed_id});
  ASSERT_TRUE(after) << browser.error();
  EXPECT_EQ((*after)["open"], true);
  EXPECT_EQ((*after)["transcript"], true) << "the clicked case shows its transcript";

  // The failed case's diagram: a lane per actor, an arrow per request and per answer, and it
  // has a size.
  const auto expected = expected_diagram(failed);
  auto diagram = browser.script(
      "var s = document.getElementById(arguments[0]).querySelector('svg.seq'); var box = s.getBoundingClientRect();"
      "return {lanes: s.querySelectorAll('g.lane').length, requests: s.querySelectorAll('g.arrow.request').length,"
      "        responses: s.querySelectorAll('g.arrow.response').length, bad: s.querySelectorAll('g.step.bad').length,"
      "        width: box.width, height: box.height};",
      {failed_id});
  ASSERT_TRUE(diagram) << browser.error();
  EXPECT_EQ((*diagram)["lanes"], expected.lanes);
  EXPECT_EQ((*diagram)["requests"], expected.requests);
  EXPECT_EQ((*diagram)["responses"], expected.responses);
  EXPECT_GE((*diagram)["bad"].get<int>(), 1) << "the step that broke the rule is marked";
  EXPECT_GT((*diagram)["height"].get<double>(), 50.0);

  // A click on an arrow opens that exchange. The arrow is brought to the middle of the window
  // first: scrolled in only just, it would sit under the sticky filter bar.
  const std::string arrow_css = by_id(failed_id) + " svg.seq a[href$='//x2'] g.arrow.request text";
  ASSERT_TRUE(browser.script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'}); return true;",
                             {arrow_css}))
      << browser.error();
  auto arrow = browser.element(arrow_css);
  ASSERT_TRUE(arrow) << browser.error();
  ASSERT_TRUE(browser.click(*arrow)) << browser.error();
  auto opened = browser.script("return document.getElementById(arguments[0] + '//x2').open;", {failed_id});
  ASSERT_TRUE(opened) << browser.error();
  EXPECT_EQ(*opened, true);

  // The screenshot, with the failed case in view.
  ASSERT_TRUE(browser.script("document.getElementById(arguments[0]).scrollIntoView(); return true;", {failed_id}));
  auto png = browser.screenshot_png();
  ASSERT_TRUE(png) << browser.error();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(png->size(), 10'000u);
  std::ofstream(root_ / "report-screenshot.png", std::ios::binary) << *png;

  // The failing case's link, followed on the page already open: back at the top, the page
  // scrolls to it.
  ASSERT_TRUE(browser.script("window.scrollTo(0, 0); return true;")) << browser.error();
  ASSERT_TRUE(browser.open(url + "#" + failed_id)) << browser.error();
  auto followed = browser.script(in_view_js, {failed_id});
  ASSERT_TRUE(followed) << browser.error();
  EXPECT_EQ((*followed)["open"], true);
  EXPECT_EQ((*followed)["in_view"], true);
  EXPECT_GT((*followed)["scrolled"].get<double>(), 0.0) << "the case is below the page's head";

  // Filters: without passing cases, only the others remain; a text filter narrows to one id.
  auto pass_box = browser.element("input.verdict-filter[value='pass']");
  ASSERT_TRUE(pass_box) << browser.error();
  ASSERT_TRUE(browser.click(*pass_box)) << browser.error();
  const std::string shown_js =
      "return Array.prototype.filter.call(document.querySelectorAll('details.case'),"
      "  function (c) { return c.offsetHeight > 0; }).length;";
  auto shown = browser.script(shown_js);
  ASSERT_TRUE(shown) << browser.error();
  EXPECT_EQ(shown->get<int>(), static_cast<int>(record["cases"].size()) - record["counts"]["pass"].get<int>());
  auto text_box = browser.element("#text-filter");
  ASSERT_TRUE(text_box) << browser.error();
  ASSERT_TRUE(browser.type(*text_box, failed_id)) << browser.error();
  shown = browser.script(shown_js);
  ASSERT_TRUE(shown) << browser.error();
  EXPECT_GE(shown->get<int>(), 1);
  EXPECT_LE(shown->get<int>(), record["counts"]["fail"].get<int>());
  auto shown_count = browser.script("return document.getElementById('shown').textContent;");
  ASSERT_TRUE(shown_count) << browser.error();
  EXPECT_EQ(std::stoi(shown_count->get<std::string>()), shown->get<int>()) << "the page counts what it shows";
}

TEST_F(BrowserTest, TheFuzzPageDrawsItsCharts) {
  Json summary = {{"kind", "mdmconform-fuzz"}, {"target_name", "reference"}, {"executions", 5000},
                  {"exec_per_sec", 500.0},     {"corpus_size", 90},          {"features", 40},
                  {"findings", Json::array()}};
  summary["timeline"] = Json::array();
  for (int t = 1; t <= 10; ++t) {
    summary["timeline"].push_back({{"t_s", t}, {"exec_per_sec", 400 + 10 * t}, {"corpus_size", 9 * t}});
  }
  std::ofstream(out_ / "summary.json") << summary.dump();
  const auto page = out_ / "fuzz.html";
  const auto made = testing::run_process(
      {MDMC_BINARY, "report", (out_ / "summary.json").string(), "--format", "html", "--out", page.string()},
      chr::seconds{60});
  ASSERT_EQ(made.exit_code, 0) << made.output;

  ChromeDriver driver(*driver_path_, out_ / "chromedriver-fuzz.log");
  ASSERT_NE(driver.port(), 0) << read_text(out_ / "chromedriver-fuzz.log");
  Browser browser(driver.port());
  ASSERT_TRUE(browser.start(*chromium_, out_ / "profile-fuzz")) << browser.error();
  ASSERT_TRUE(browser.open("file://" + fs::absolute(page).string())) << browser.error();
  auto charts = browser.script(
      "return Array.prototype.map.call(document.querySelectorAll('svg.chart'), function (s) {"
      "  var line = s.querySelector('polyline'); return {points: s.querySelectorAll('circle.point').length,"
      "  length: line ? line.getTotalLength() : 0}; });");
  ASSERT_TRUE(charts) << browser.error();
  ASSERT_EQ(charts->size(), 2u);
  for (const auto& chart : *charts) {
    EXPECT_EQ(chart["points"], 10);
    EXPECT_GT(chart["length"].get<double>(), 100.0) << "the line is drawn";
  }
}

}  // namespace
}  // namespace mdmc
