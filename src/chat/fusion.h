#pragma once
// Fusing the LLM's order with the base recommender's order (weighted Borda count):
//   score(i) = w * (n - llm_rank(i)) / n + (1 - w) * (n - base_rank(i)) / n
// w = 1 is the LLM's order, w = 0 the base order. The weight is chosen on validation users (carved
// out of the training data, never the test split) as the best NDCG@k over a grid that includes 0,
// preferring the smaller weight on ties, so the fused list is never worse than the base list on
// validation. A weight above 0 must also beat the base by a paired gain of at least `min_z`
// standard errors (one-sided 95% by default): on 40 users a noise-level gain chose w = 0.3 once and
// the fused list then lost to the base on the test users.
#include <cstddef>
#include <map>
#include <vector>

namespace chatrec::chat {

// `llm_order`: candidate indices (0..n-1, the base order being 0,1,2,...) best first; indices it
// leaves out rank after it in base order. Returns the top k.
std::vector<std::size_t> fuse_orders(const std::vector<std::size_t>& llm_order, std::size_t n,
                                     double weight, std::size_t k);

// NDCG@k with binary gains; `relevant[i]` for candidate i; ideal DCG over min(k, num_relevant)
// hits.
double ndcg_at_k(const std::vector<std::size_t>& list, const std::vector<bool>& relevant,
                 std::size_t num_relevant, std::size_t k);

struct ValidationCase {
  std::vector<std::size_t> llm_order;  // the LLM's order of the candidates
  std::vector<bool> relevant;          // per candidate (size n)
  std::size_t num_relevant = 0;  // held-out items of the user (also those outside the candidates)
};

struct FusionChoice {
  double weight = 0.0;
  double ndcg_base = 0.0;  // w = 0
  double ndcg_llm = 0.0;   // w = 1
  double ndcg_chosen = 0.0;
  std::map<double, double> curve;   // weight -> mean NDCG@k
  std::map<double, double> gain_z;  // weight -> paired gain over the base / its standard error
};

FusionChoice choose_fusion_weight(const std::vector<ValidationCase>& cases, std::size_t k,
                                  const std::vector<double>& grid = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5,
                                                                     0.6, 0.7, 0.8, 0.9, 1.0},
                                  double min_z = 1.645);

// The two likelihood terms a sequence-tuned adapter gives each candidate of a validation case
// (candidates in base order), so the PMI weight can be chosen with the fusion weight.
struct CandidateTerms {
  std::vector<double> conditional;    // log p(line | history)
  std::vector<double> unconditional;  // log p(line | no history)
};

struct PmiFusionChoice {
  double pmi_weight = 0.0;
  FusionChoice fusion;                       // at the chosen PMI weight
  std::map<double, double> ndcg_by_pmi;      // PMI weight -> the fused NDCG@k it allows
  std::map<double, double> ndcg_llm_by_pmi;  // PMI weight -> the LLM's own NDCG@k
};

// For each PMI weight β of `pmi_grid`, orders each case's candidates by conditional −
// β·unconditional (`terms[i]` for `cases[i]`, ties in base order; the cases' own llm_order is not
// used) and chooses the fusion weight with choose_fusion_weight (its significance rule included);
// keeps the β whose fused NDCG@k is highest, the earlier β of the grid on ties. When no β lets a
// fusion weight above 0 through, the fused list is the base order (w = 0) and β is the grid's
// first.
PmiFusionChoice choose_pmi_and_fusion_weight(
    std::vector<ValidationCase> cases, const std::vector<CandidateTerms>& terms, std::size_t k,
    const std::vector<double>& pmi_grid = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0});

}  // namespace chatrec::chat
