#include "chat/fusion.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace chatrec::chat {

std::vector<std::size_t> fuse_orders(const std::vector<std::size_t>& llm_order, std::size_t n,
                                     double weight, std::size_t k) {
  std::vector<std::size_t> llm_rank(n, n);
  std::size_t r = 0;
  for (std::size_t i : llm_order) {
    if (i < n && llm_rank[i] == n) llm_rank[i] = r++;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (llm_rank[i] == n) llm_rank[i] = r++;
  }
  std::vector<double> score(n);
  const double dn = static_cast<double>(std::max<std::size_t>(n, 1));
  for (std::size_t i = 0; i < n; ++i) {
    score[i] = weight * (dn - static_cast<double>(llm_rank[i])) / dn +
               (1.0 - weight) * (dn - static_cast<double>(i)) / dn;
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Ties go to the base order (stable sort over 0..n-1).
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] > score[b] + 1e-12; });
  if (order.size() > k) order.resize(k);
  return order;
}

double ndcg_at_k(const std::vector<std::size_t>& list, const std::vector<bool>& relevant,
                 std::size_t num_relevant, std::size_t k) {
  double dcg = 0.0, idcg = 0.0;
  for (std::size_t r = 0; r < std::min(k, list.size()); ++r) {
    if (list[r] < relevant.size() && relevant[list[r]])
      dcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
  }
  for (std::size_t r = 0; r < std::min(k, num_relevant); ++r)
    idcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
  return idcg > 0 ? dcg / idcg : 0.0;
}

FusionChoice choose_fusion_weight(const std::vector<ValidationCase>& cases, std::size_t k,
                                  const std::vector<double>& grid, double min_z) {
  FusionChoice choice;
  std::vector<double> weights = grid;
  if (std::find(weights.begin(), weights.end(), 0.0) == weights.end()) weights.push_back(0.0);
  std::sort(weights.begin(), weights.end());
  const std::size_t n = cases.size();
  std::map<double, std::vector<double>> per_case;
  for (double w : weights) {
    auto& v = per_case[w];
    for (const auto& c : cases) {
      v.push_back(ndcg_at_k(fuse_orders(c.llm_order, c.relevant.size(), w, k), c.relevant,
                            c.num_relevant, k));
    }
    choice.curve[w] = n == 0 ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / n;
  }
  choice.ndcg_base = choice.curve[0.0];
  choice.ndcg_llm = choice.curve.count(1.0) ? choice.curve[1.0] : 0.0;
  choice.weight = 0.0;
  choice.ndcg_chosen = choice.ndcg_base;
  const auto& base = per_case[0.0];
  for (const auto& [w, v] : choice.curve) {
    if (w == 0.0 || n < 2) continue;
    // Paired gain over the base on the same users, and its standard error: a weight wins only
    // when its gain stands out of the noise, so a lucky validation sample does not hand the
    // ranking to an LLM that is worse on the test users.
    double mean = 0.0, sq = 0.0;
    for (std::size_t i = 0; i < n; ++i) mean += per_case[w][i] - base[i];
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double d = per_case[w][i] - base[i] - mean;
      sq += d * d;
    }
    const double se = std::sqrt(sq / static_cast<double>(n - 1) / static_cast<double>(n));
    const double z = se > 0 ? mean / se : (mean > 0 ? INFINITY : 0.0);
    choice.gain_z[w] = z;
    if (z >= min_z && v > choice.ndcg_chosen + 1e-12) {  // ties keep the smaller weight
      choice.weight = w;
      choice.ndcg_chosen = v;
    }
  }
  return choice;
}

PmiFusionChoice choose_pmi_and_fusion_weight(std::vector<ValidationCase> cases,
                                             const std::vector<CandidateTerms>& terms,
                                             std::size_t k, const std::vector<double>& pmi_grid) {
  if (terms.size() != cases.size())
    throw std::invalid_argument("choose_pmi_and_fusion_weight: one CandidateTerms per case");
  PmiFusionChoice best;
  bool first = true;
  for (double beta : pmi_grid) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const CandidateTerms& t = terms[i];
      auto& order = cases[i].llm_order;
      order.resize(t.conditional.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return t.conditional[a] - beta * t.unconditional[a] >
               t.conditional[b] - beta * t.unconditional[b];
      });
    }
    const FusionChoice f = choose_fusion_weight(cases, k);
    best.ndcg_by_pmi[beta] = f.ndcg_chosen;
    best.ndcg_llm_by_pmi[beta] = f.ndcg_llm;
    if (first || f.ndcg_chosen > best.fusion.ndcg_chosen + 1e-12) {
      best.pmi_weight = beta;
      best.fusion = f;
      first = false;
    }
  }
  return best;
}

}  // namespace chatrec::chat
