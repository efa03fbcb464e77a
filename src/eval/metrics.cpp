#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace chatrec::eval {

namespace {
bool relevant(ItemIndex item, std::span<const ItemIndex> truth) {
  return std::binary_search(truth.begin(), truth.end(), item);
}
}  // namespace

std::size_t hits_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                      std::size_t k) {
  std::size_t n = std::min(k, ranked.size()), hits = 0;
  for (std::size_t i = 0; i < n; ++i) hits += relevant(ranked[i], truth) ? 1 : 0;
  return hits;
}

double precision_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                      std::size_t k) {
  if (k == 0) return 0.0;
  return static_cast<double>(hits_at_k(ranked, truth, k)) / static_cast<double>(k);
}

double recall_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                   std::size_t k) {
  if (truth.empty()) return 0.0;
  return static_cast<double>(hits_at_k(ranked, truth, k)) / static_cast<double>(truth.size());
}

double ndcg_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                 std::size_t k) {
  if (truth.empty() || k == 0) return 0.0;
  double dcg = 0.0, idcg = 0.0;
  std::size_t n = std::min(k, ranked.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (relevant(ranked[i], truth)) dcg += 1.0 / std::log2(static_cast<double>(i) + 2.0);
  }
  std::size_t ideal = std::min(k, truth.size());
  for (std::size_t i = 0; i < ideal; ++i) idcg += 1.0 / std::log2(static_cast<double>(i) + 2.0);
  return dcg / idcg;
}

double hit_rate_at_k(std::span<const ItemIndex> ranked, std::span<const ItemIndex> truth,
                     std::size_t k) {
  return hits_at_k(ranked, truth, k) > 0 ? 1.0 : 0.0;
}

double ndcg_single_at_k(std::size_t rank, std::size_t k) {
  return rank < k ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
}

double rmse(std::span<const double> predicted, std::span<const double> actual) {
  if (predicted.size() != actual.size()) throw std::invalid_argument("rmse: size mismatch");
  if (predicted.empty()) return 0.0;
  double s = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i)
    s += (predicted[i] - actual[i]) * (predicted[i] - actual[i]);
  return std::sqrt(s / static_cast<double>(predicted.size()));
}

double mae(std::span<const double> predicted, std::span<const double> actual) {
  if (predicted.size() != actual.size()) throw std::invalid_argument("mae: size mismatch");
  if (predicted.empty()) return 0.0;
  double s = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) s += std::abs(predicted[i] - actual[i]);
  return s / static_cast<double>(predicted.size());
}

void MetricMeans::add(const std::string& name, double value) {
  auto [it, inserted] = sums_.try_emplace(name, 0.0, 0);
  if (inserted) order_.push_back(name);
  it->second.first += value;
  it->second.second += 1;
}

void MetricMeans::merge(const MetricMeans& other) {
  for (const auto& name : other.order_) {
    const auto& [sum, n] = other.sums_.at(name);
    auto [it, inserted] = sums_.try_emplace(name, 0.0, 0);
    if (inserted) order_.push_back(name);
    it->second.first += sum;
    it->second.second += n;
  }
}

std::vector<std::pair<std::string, double>> MetricMeans::means() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& name : order_) {
    const auto& [sum, n] = sums_.at(name);
    out.emplace_back(name, n ? sum / static_cast<double>(n) : 0.0);
  }
  return out;
}

std::size_t MetricMeans::count(const std::string& name) const {
  auto it = sums_.find(name);
  return it == sums_.end() ? 0 : it->second.second;
}

}  // namespace chatrec::eval
