#include "common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace chatrec {

std::chrono::milliseconds& Progress::log_interval() {
  static std::chrono::milliseconds interval{1000};
  return interval;
}

bool Progress::enabled() {
  if (const char* v = std::getenv("CHATREC_PROGRESS")) return std::string(v) == "1";
  return isatty(fileno(stderr)) != 0;
}

Progress::Progress(std::string label, std::uint64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

static std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--:--";
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

void Progress::advance(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (enabled()) {
    if (now - last_draw_ > std::chrono::milliseconds(100) || done_ == total_) {
      last_draw_ = now;
      draw(false);
    }
    return;
  }
  // Logs (no terminal) get a plain line at every tenth of the work or every 30 s, whichever comes
  // first, so a long run's rate and ETA can be followed with tail -f.
  // Quick loops (under a second per tenth) stay quiet but for the summary.
  const std::uint64_t tenth = total_ >= 10 ? total_ / 10 : 1;
  const bool milestone = done_ / tenth > (done_ - n) / tenth && now - last_draw_ >= log_interval();
  if (done_ < total_ && (milestone || now - last_draw_ > std::chrono::seconds(30))) {
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    if (total_ > 0) {
      const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
      std::fprintf(stderr, "%s: %llu/%llu %s, %.2f %s/s, elapsed %s, eta %s%s%s\n", label_.c_str(),
                   static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_),
                   unit_.c_str(), rate, unit_.c_str(), format_duration(elapsed).c_str(),
                   format_duration(eta).c_str(), postfix_.empty() ? "" : ", ", postfix_.c_str());
    } else {
      std::fprintf(stderr, "%s: %llu %s, %.2f %s/s, elapsed %s%s%s\n", label_.c_str(),
                   static_cast<unsigned long long>(done_), unit_.c_str(), rate, unit_.c_str(),
                   format_duration(elapsed).c_str(), postfix_.empty() ? "" : ", ",
                   postfix_.c_str());
    }
    std::fflush(stderr);
  }
}

void Progress::set_postfix(std::string text) {
  std::lock_guard lock(mutex_);
  postfix_ = std::move(text);
}

void Progress::draw(bool final_line) {
  if (!enabled()) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::string line;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    constexpr int kWidth = 30;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), '.');
    double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : -1;
    line =
        fmt::format("{} [{}] {:3.0f}% {}/{} {:.1f} {}/s elapsed {} eta {}", label_, bar, frac * 100,
                    done_, total_, rate, unit_, format_duration(elapsed), format_duration(eta));
  } else {
    line = fmt::format("{} {} {} {:.1f} {}/s elapsed {}", label_, done_, unit_, rate, unit_,
                       format_duration(elapsed));
  }
  if (!postfix_.empty()) line += " " + postfix_;
  std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
  std::fflush(stderr);
}

void Progress::finish() {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (enabled()) {
    draw(true);
  } else {
    // Non-interactive runs still get the summary line, so logs show what ran and how fast.
    std::fprintf(stderr, "%s: %llu %s in %.2fs (%.1f %s/s)%s%s\n", label_.c_str(),
                 static_cast<unsigned long long>(done_), unit_.c_str(), elapsed,
                 elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0, unit_.c_str(),
                 postfix_.empty() ? "" : " ", postfix_.c_str());
  }
}

}  // namespace chatrec
