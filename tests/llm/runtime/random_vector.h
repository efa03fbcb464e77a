#pragma once
// Seeded normal-distributed test inputs shared by the kernel and numerics tests.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace chatrec::llm::runtime::testing {

inline std::vector<float> random_vector(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace chatrec::llm::runtime::testing
