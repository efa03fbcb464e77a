#pragma once
// A terminal progress bar with rate and ETA for every long-running command, and a summary line when
// done. It draws to stderr only when stderr is a terminal (or CHATREC_PROGRESS=1), so logs and
// pipes stay clean.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace chatrec {

class Progress {
 public:
  Progress(std::string label, std::uint64_t total, std::string unit = "it");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Thread-safe; redraws at most ~10 times per second.
  void advance(std::uint64_t n = 1);
  void set_postfix(std::string text);
  // Prints the summary line (count, elapsed, rate); called by the destructor if not called before.
  void finish();

  static bool enabled();
  // Without a terminal, a plain line is printed at each tenth of the work, but at most once per
  // this interval (default 1 s; tests set 0).
  static std::chrono::milliseconds& log_interval();

 private:
  void draw(bool final_line);

  std::string label_;
  std::uint64_t total_;
  std::string unit_;
  std::string postfix_;
  std::uint64_t done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mutex_;
};

}  // namespace chatrec
