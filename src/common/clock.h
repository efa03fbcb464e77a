#pragma once
// Wall-clock time as stored with conversations, messages and interactions.
#include <chrono>
#include <cstdint>

namespace chatrec::clock {

// Seconds since the Unix epoch.
inline std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace chatrec::clock
