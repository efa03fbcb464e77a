#include "server/metrics.h"

#include <sstream>

namespace chatrec::server {

std::string prometheus_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void RequestMetrics::observe(const std::string& method, const std::string& route, int status,
                             double seconds) {
  std::lock_guard lock(mutex_);
  ++counts_[{method, route, status}];
  Histogram& h = latency_[{method, route}];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

std::string RequestMetrics::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP chatrec_http_requests_total HTTP requests by method, route and status.\n"
         "# TYPE chatrec_http_requests_total counter\n";
  for (const auto& [key, n] : counts_) {
    const auto& [method, route, status] = key;
    out << "chatrec_http_requests_total{method=\"" << prometheus_label(method) << "\",route=\""
        << prometheus_label(route) << "\",status=\"" << status << "\"} " << n << "\n";
  }
  out << "# HELP chatrec_http_request_duration_seconds Time from routing to the last byte sent.\n"
         "# TYPE chatrec_http_request_duration_seconds histogram\n";
  for (const auto& [key, h] : latency_) {
    std::string labels = "method=\"" + prometheus_label(key.first) + "\",route=\"" +
                         prometheus_label(key.second) + "\"";
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      out << "chatrec_http_request_duration_seconds_bucket{" << labels << ",le=\"" << kBuckets[i]
          << "\"} " << h.buckets[i] << "\n";
    }
    out << "chatrec_http_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count
        << "\n";
    out << "chatrec_http_request_duration_seconds_sum{" << labels << "} " << h.sum << "\n";
    out << "chatrec_http_request_duration_seconds_count{" << labels << "} " << h.count << "\n";
  }
  return out.str();
}

}  // namespace chatrec::server
