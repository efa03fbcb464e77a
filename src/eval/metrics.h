#pragma once
// Ranking and rating metrics of docs/protocols.md. Ground truth is a set of items; a ranked list is
// best first. Every metric is per user (or per case); the runners average them.
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace chatrec::eval {

using data::ItemIndex;

// Number of the first k ranked items that are in the ground truth (`truth` sorted ascending).
std::size_t hits_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                      std::size_t k);
// hits / k: a list shorter than k is not rewarded for its brevity.
double precision_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                      std::size_t k);
// hits / |truth| (0 when truth is empty).
double recall_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                   std::size_t k);
// Binary gain, discount 1/log2(rank+1) with rank 1-based, ideal DCG over min(k, |truth|) hits.
double ndcg_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                 std::size_t k);
// 1 if any of the first k is relevant.
double hit_rate_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                     std::size_t k);
// |top-n ∩ truth| / |truth|: the ceiling of any reranker of those n candidates.
inline double candidate_recall(std::span<const ItemIndex> candidates,
                               std::span<const ItemIndex> truth, std::size_t n = 20) {
  return recall_at_k(candidates, truth, n);
}

// Single-target case (leave-one-out): `rank` is the 0-based position of the target.
inline double hit_at_k(std::size_t rank, std::size_t k) {
  return rank < k ? 1.0 : 0.0;
}
double ndcg_single_at_k(std::size_t rank, std::size_t k);

double rmse(std::span<const double> predicted, std::span<const double> actual);
double mae(std::span<const double> predicted, std::span<const double> actual);

// Means of named metrics in first-added order, for tables and reports.
class MetricMeans {
 public:
  void add(const std::string& name, double value);
  // Merges another accumulator (e.g. a thread's), keeping this one's name order first.
  void merge(const MetricMeans& other);
  std::vector<std::pair<std::string, double>> means() const;
  std::size_t count(const std::string& name) const;

 private:
  std::vector<std::string> order_;
  std::map<std::string, std::pair<double, std::size_t>> sums_;
};

}  // namespace chatrec::eval
