#pragma once
// Small statistics the benchmarks print.
#include <algorithm>
#include <cstddef>
#include <vector>

namespace chatrec::cli {

// The value at fraction `p` (0..1) of the sorted samples, rounded down to a sample; 0 when empty.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace chatrec::cli
