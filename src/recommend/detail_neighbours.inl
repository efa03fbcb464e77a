#pragma once
// Template body of detail::binary_cosine_neighbours (included by detail.h).
#include <algorithm>
#include <cmath>

namespace chatrec::recommend::detail {

template <typename RowsOf, typename ColsOf>
NeighbourLists binary_cosine_neighbours(std::size_t num_entities, std::size_t /*num_features*/, RowsOf rows_of,
                                        ColsOf cols_of, int k, double shrink, double alpha, int threads) {
  NeighbourLists lists(num_entities);
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> count(num_entities, 0.0f);
    std::vector<std::uint32_t> touched;
    std::vector<Neighbour> cand;
#pragma omp for schedule(dynamic, 16)
    for (std::size_t a = 0; a < num_entities; ++a) {
      touched.clear();
      for (auto f : rows_of(a)) {
        for (auto b : cols_of(f)) {
          if (b == a) continue;
          if (count[b] == 0.0f) touched.push_back(static_cast<std::uint32_t>(b));
          count[b] += 1.0f;
        }
      }
      cand.clear();
      const double na = static_cast<double>(rows_of(a).size());
      for (auto b : touched) {
        const double n = count[b];
        const double nb = static_cast<double>(rows_of(b).size());
        double sim = n / (std::pow(na, alpha) * std::pow(nb, 1.0 - alpha) + 1e-12);
        if (shrink > 0) sim *= n / (n + shrink);
        cand.push_back({b, static_cast<float>(sim)});
        count[b] = 0.0f;
      }
      auto better = [](const Neighbour& x, const Neighbour& y) {
        return x.sim > y.sim || (x.sim == y.sim && x.id < y.id);
      };
      if (k > 0 && cand.size() > static_cast<std::size_t>(k)) {
        std::nth_element(cand.begin(), cand.begin() + k, cand.end(), better);
        cand.resize(static_cast<std::size_t>(k));
      }
      std::sort(cand.begin(), cand.end(), better);
      lists[a] = cand;
    }
  }
  return lists;
}

}  // namespace chatrec::recommend::detail
