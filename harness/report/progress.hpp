#pragma once
// Progress while a run goes on. On a terminal: one line, redrawn in place a few times a second,
// with cases done of the total, failures so far, the case in flight and the time elapsed; a
// case that does not pass is printed above it as it ends. Elsewhere (a CI log, a pipe): one
// plain line per case as it ends. --quiet prints nothing while the run goes on; --verbose adds
// each exchange of every case under its line. Case text is redacted before it is printed
// (when redaction is on), and control characters from the target are shown escaped.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "harness/report/report.hpp"
#include "harness/scenario/result.hpp"

namespace mdmc::report {

enum class Verbosity { quiet, normal, verbose };

// How often the terminal line is redrawn when no case ends: often enough for the elapsed time.
inline constexpr std::chrono::milliseconds kProgressRedraw{250};

class ConsoleProgress {
 public:
  // terminal: draw the in-place line (the caller says whether out is a terminal, see
  // is_terminal); width: the terminal's columns, the line is cut to fit.
  ConsoleProgress(std::FILE* out, bool terminal, Verbosity verbosity, bool redact, std::size_t width = 80);
  ~ConsoleProgress();
  ConsoleProgress(const ConsoleProgress&) = delete;
  ConsoleProgress& operator=(const ConsoleProgress&) = delete;

  void suite_started(std::size_t total);
  void case_started(const std::string& id);
  void case_ended(const scenario::CaseResult& c);
  // Stops redrawing and clears the line; call before printing anything else.
  void finish();

  // What the final summary should repeat: with a line per case printed already, only the cases
  // that did not pass; under --quiet, not the rules either.
  ConsoleSummaryParts summary_parts() const;

  // Whether the stream is a terminal worth drawing on (not TERM=dumb), and its width.
  static bool is_terminal(std::FILE* stream);
  static std::size_t terminal_width(std::FILE* stream);

 private:
  void draw_locked();
  void clear_locked();
  void write_locked(const std::string& text);
  std::string case_text(const scenario::CaseResult& c) const;

  std::FILE* out_;
  const bool terminal_;
  const Verbosity verbosity_;
  const bool redact_;
  const std::size_t width_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  bool line_drawn_ = false;
  std::size_t total_ = 0;
  std::size_t done_ = 0;
  std::size_t failed_ = 0;
  std::string current_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::thread ticker_;  // redraws the terminal line; only on a terminal
};

}  // namespace mdmc::report
