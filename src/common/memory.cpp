#include "common/memory.h"

#include <fstream>
#include <string>

namespace chatrec::memory {

namespace {

// The value in kB of a "Key:   123 kB" line of a /proc file.
std::optional<std::uint64_t> proc_kib(const char* file, const std::string& key) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size()));
  }
  return std::nullopt;
}

}  // namespace

double peak_rss_mib() {
  const auto kib = proc_kib("/proc/self/status", "VmHWM:");
  return kib ? static_cast<double>(*kib) / 1024.0 : 0.0;
}

std::optional<std::uint64_t> available_bytes() {
  const auto kib = proc_kib("/proc/meminfo", "MemAvailable:");
  if (!kib) return std::nullopt;
  return *kib * 1024;
}

}  // namespace chatrec::memory
