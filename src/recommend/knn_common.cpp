#include "recommend/knn_common.h"

#include <algorithm>
#include <cmath>

namespace chatrec::recommend::detail {

Baselines fit_baselines(const data::InteractionMatrix& train, int sweeps, double reg_user,
                        double reg_item) {
  Baselines b;
  b.mu = static_cast<float>(train.global_mean());
  b.user.assign(train.num_users(), 0.0f);
  b.item.assign(train.num_items(), 0.0f);
  for (int s = 0; s < sweeps; ++s) {
    for (UserIndex u = 0; u < train.num_users(); ++u) {
      double sum = 0;
      std::size_t n = 0;
      auto items = train.items_of(u);
      auto rs = train.ratings_of(u);
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (std::isnan(rs[k])) continue;
        sum += rs[k] - b.mu - b.item[items[k]];
        ++n;
      }
      b.user[u] = static_cast<float>(sum / (reg_user + static_cast<double>(n)));
    }
    for (ItemIndex i = 0; i < train.num_items(); ++i) {
      double sum = 0;
      std::size_t n = 0;
      auto users = train.users_of(i);
      auto rs = train.item_ratings_of(i);
      for (std::size_t k = 0; k < users.size(); ++k) {
        if (std::isnan(rs[k])) continue;
        sum += rs[k] - b.mu - b.user[users[k]];
        ++n;
      }
      b.item[i] = static_cast<float>(sum / (reg_item + static_cast<double>(n)));
    }
  }
  return b;
}

void write_baselines(std::ostream& out, const Baselines& b) {
  write_pod(out, b.mu);
  write_vec(out, b.user);
  write_vec(out, b.item);
}

Baselines read_baselines(std::istream& in) {
  Baselines b;
  b.mu = read_pod<float>(in, "baseline mean");
  b.user = read_vec<float>(in, "user baselines");
  b.item = read_vec<float>(in, "item baselines");
  return b;
}

NeighbourLists implicit_neighbours(const EntityView& view, int k, double shrink, double alpha,
                                   int threads) {
  return binary_cosine_neighbours(
      view.num_entities(), view.num_features(),
      [&](std::size_t e) { return view.features_of(static_cast<std::uint32_t>(e)); },
      [&](std::uint32_t f) { return view.entities_of(f); }, k, shrink, alpha, threads);
}

NeighbourLists pearson_baseline_neighbours(const EntityView& view, const Baselines& b,
                                           double shrink, int pool, int threads) {
  const std::size_t n = view.num_entities();
  NeighbourLists lists(n);
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> xy(n, 0.0), xx(n, 0.0), yy(n, 0.0);
    std::vector<std::uint32_t> count(n, 0), touched;
    std::vector<Neighbour> cand;
#pragma omp for schedule(dynamic, 16)
    for (std::size_t a = 0; a < n; ++a) {
      touched.clear();
      auto feats = view.features_of(static_cast<std::uint32_t>(a));
      auto frs = view.feature_ratings_of(static_cast<std::uint32_t>(a));
      for (std::size_t x = 0; x < feats.size(); ++x) {
        if (std::isnan(frs[x])) continue;
        const std::uint32_t f = feats[x];
        const double da = frs[x] - view.baseline(b, static_cast<std::uint32_t>(a), f);
        auto ents = view.entities_of(f);
        auto ers = view.entity_ratings_of(f);
        for (std::size_t y = 0; y < ents.size(); ++y) {
          const auto e = ents[y];
          if (e == a || std::isnan(ers[y])) continue;
          const double de = ers[y] - view.baseline(b, e, f);
          if (count[e] == 0) touched.push_back(e);
          ++count[e];
          xy[e] += da * de;
          xx[e] += da * da;
          yy[e] += de * de;
        }
      }
      cand.clear();
      for (auto e : touched) {
        const double c = count[e];
        double sim = (xx[e] > 0 && yy[e] > 0) ? xy[e] / std::sqrt(xx[e] * yy[e]) : 0.0;
        sim *= (c - 1) / (c - 1 + shrink);
        if (sim > 0) cand.push_back({e, static_cast<float>(sim)});
        count[e] = 0;
        xy[e] = xx[e] = yy[e] = 0.0;
      }
      if (pool > 0 && cand.size() > static_cast<std::size_t>(pool)) {
        std::nth_element(cand.begin(), cand.begin() + pool, cand.end(),
                         [](const Neighbour& p, const Neighbour& q) { return p.sim > q.sim; });
        cand.resize(static_cast<std::size_t>(pool));
      }
      std::sort(cand.begin(), cand.end(),
                [](const Neighbour& p, const Neighbour& q) { return p.id < q.id; });
      lists[a] = cand;
    }
  }
  return lists;
}

float knn_baseline_predict(const EntityView& view, const Baselines& b, const NeighbourLists& by_id,
                           std::uint32_t e, std::uint32_t f, int k) {
  const float base = view.baseline(b, e, f);
  if (e >= by_id.size()) return base;
  // Merge the sorted neighbour list of e with the sorted entities rated for f.
  const auto& nb = by_id[e];
  auto ents = view.entities_of(f);
  auto ers = view.entity_ratings_of(f);
  thread_local std::vector<std::pair<float, float>> found;  // (sim, deviation)
  found.clear();
  std::size_t x = 0, y = 0;
  while (x < nb.size() && y < ents.size()) {
    if (nb[x].id < ents[y]) {
      ++x;
    } else if (ents[y] < nb[x].id) {
      ++y;
    } else {
      if (!std::isnan(ers[y])) found.emplace_back(nb[x].sim, ers[y] - view.baseline(b, ents[y], f));
      ++x, ++y;
    }
  }
  if (found.empty()) return base;
  if (k > 0 && found.size() > static_cast<std::size_t>(k)) {
    std::nth_element(found.begin(), found.begin() + k, found.end(),
                     [](const auto& p, const auto& q) { return p.first > q.first; });
    found.resize(static_cast<std::size_t>(k));
  }
  double num = 0, den = 0;
  for (const auto& [s, d] : found) {
    num += s * d;
    den += s;
  }
  return den > 0 ? base + static_cast<float>(num / den) : base;
}

}  // namespace chatrec::recommend::detail
