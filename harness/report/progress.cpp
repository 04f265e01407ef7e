#include "harness/report/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "harness/report/detail/text.hpp"

namespace mdmc::report {
namespace {

using scenario::Verdict;

// The progress line's "failed": fail and error. A warn and an info (an option, may, the server
// does not use) are shown as their lines but do not count.
bool counts_against(const scenario::CaseResult& c) {
  switch (c.verdict) {
    case Verdict::fail:
    case Verdict::error: return true;
    case Verdict::pass:
    case Verdict::info:
    case Verdict::skip:
    case Verdict::warn: return false;
  }
  return false;
}

// s cut to at most n code points (the terminal line must never wrap: \r would redraw only
// its last row).
std::string fit(const std::string& s, std::size_t n) {
  if (detail::width_of(s) <= n) return s;
  std::string out;
  std::size_t i = 0;
  for (std::size_t shown = 0; shown < n && i < s.size(); ++shown) {
    detail::append_utf8(out, detail::next_code_point(s, i).value_or(detail::kReplacement));
  }
  return out;
}

}  // namespace

ConsoleProgress::ConsoleProgress(std::FILE* out, bool terminal, Verbosity verbosity, bool redact, std::size_t width)
    : out_(out),
      terminal_(terminal && verbosity != Verbosity::quiet),
      verbosity_(verbosity),
      redact_(redact),
      width_(std::max<std::size_t>(width, 20)) {
  if (terminal_) {
    ticker_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!finished_) {
        wake_.wait_for(lock, kProgressRedraw);
        if (!finished_ && total_ > 0) draw_locked();
      }
    });
  }
}

ConsoleProgress::~ConsoleProgress() { finish(); }

bool ConsoleProgress::is_terminal(std::FILE* stream) {
  const char* term = std::getenv("TERM");
  return ::isatty(::fileno(stream)) == 1 && !(term && std::strcmp(term, "dumb") == 0);
}

std::size_t ConsoleProgress::terminal_width(std::FILE* stream) {
  winsize size{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

void ConsoleProgress::suite_started(std::size_t total) {
  std::lock_guard lock(mutex_);
  total_ = total;
  started_ = std::chrono::steady_clock::now();
}

void ConsoleProgress::case_started(const std::string& id) {
  std::lock_guard lock(mutex_);
  current_ = id;
  if (terminal_) draw_locked();
}

std::string ConsoleProgress::case_text(const scenario::CaseResult& c) const {
  // Printed before the run's own redaction: a copy of the case is redacted on its own.
  scenario::RunResult one;
  one.cases.push_back(c);
  if (redact_) redact_secrets(one);
  const scenario::CaseResult& shown = one.cases.front();
  std::string text = console_case_lines(shown);
  if (verbosity_ == Verbosity::verbose) {
    for (const auto& entry : shown.transcript) text += "      " + console_exchange_line(entry) + "\n";
  }
  return text;
}

void ConsoleProgress::case_ended(const scenario::CaseResult& c) {
  // Built outside the lock: redaction parses every body of the case.
  const bool print = verbosity_ == Verbosity::verbose ||
                     (verbosity_ == Verbosity::normal && (!terminal_ || c.verdict != Verdict::pass));
  const std::string text = print ? case_text(c) : std::string();
  std::lock_guard lock(mutex_);
  ++done_;
  if (counts_against(c)) ++failed_;
  if (print) {
    // Off a terminal each line says how far the run is; on one, the progress line does.
    write_locked(terminal_ ? text : fmt::format("[{}/{}] {}", done_, total_, text));
  }
  if (terminal_) draw_locked();
}

void ConsoleProgress::finish() {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (terminal_) clear_locked();
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

ConsoleSummaryParts ConsoleProgress::summary_parts() const {
  ConsoleSummaryParts parts;
  parts.passing_cases = terminal_ && verbosity_ != Verbosity::verbose;
  parts.rules = verbosity_ != Verbosity::quiet;
  if (verbosity_ == Verbosity::quiet) parts.passing_cases = false;
  return parts;
}

void ConsoleProgress::draw_locked() {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::string line = fmt::format("[{}/{}] {} failed \u00b7 {:.1f} s", done_, total_, failed_, elapsed);
  if (done_ < total_ && !current_.empty()) line += " \u00b7 " + detail::console_text(current_, 120);
  // \r back to the start, the line, then erase what a longer earlier line left.
  std::fputs(("\r" + fit(line, width_ - 1) + "\x1b[K").c_str(), out_);
  std::fflush(out_);
  line_drawn_ = true;
}

void ConsoleProgress::clear_locked() {
  if (!line_drawn_) return;
  std::fputs("\r\x1b[K", out_);
  std::fflush(out_);
  line_drawn_ = false;
}

void ConsoleProgress::write_locked(const std::string& text) {
  clear_locked();
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

}  // namespace mdmc::report
