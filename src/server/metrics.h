#pragma once
// Internal to the server: request counters and latency histograms in the Prometheus text format.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace chatrec::server {

class RequestMetrics {
 public:
  static constexpr std::array<double, 15> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0};

  void observe(const std::string& method, const std::string& route, int status, double seconds);
  // chatrec_http_requests_total and chatrec_http_request_duration_seconds, with HELP/TYPE lines.
  std::string render() const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0.0;
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> counts_;
  std::map<std::pair<std::string, std::string>, Histogram> latency_;
};

// Escapes a label value for the text format (backslash, quote, newline).
std::string prometheus_label(const std::string& value);

}  // namespace chatrec::server
