#pragma once
// Internal to the server: per-client token buckets.
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace chatrec::server {

class RateLimiter {
 public:
  // `rate` tokens per second, at most `burst` stored; rate <= 0 disables limiting.
  RateLimiter(double rate, double burst);
  // Takes one token for `client`. When none is left returns false and the seconds until one is.
  bool take(const std::string& client, double* retry_after_seconds);

 private:
  using Clock = std::chrono::steady_clock;
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  double rate_;
  double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace chatrec::server
