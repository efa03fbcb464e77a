#include "llm/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace chatrec::llm::runtime {

int Sampler::sample(std::span<const float> logits, std::span<const int> allowed) {
  std::vector<int> cand;
  if (allowed.empty()) {
    cand.resize(logits.size());
    std::iota(cand.begin(), cand.end(), 0);
  } else {
    for (int t : allowed) {
      if (t >= 0 && static_cast<std::size_t>(t) < logits.size()) cand.push_back(t);
    }
  }
  if (cand.empty()) throw std::invalid_argument("sampler: no candidate tokens");
  auto logit = [&](int t) { return logits[static_cast<std::size_t>(t)]; };
  // Greedy: the highest logit, lowest id on ties (deterministic).
  if (params_.temperature <= 0.0f) {
    return *std::max_element(cand.begin(), cand.end(), [&](int a, int b) {
      return logit(a) < logit(b) || (logit(a) == logit(b) && a > b);
    });
  }
  std::sort(cand.begin(), cand.end(),
            [&](int a, int b) { return logit(a) > logit(b) || (logit(a) == logit(b) && a < b); });
  if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < cand.size())
    cand.resize(static_cast<std::size_t>(params_.top_k));
  std::vector<double> p(cand.size());
  const double max_l = logit(cand.front());
  double sum = 0.0;
  for (std::size_t i = 0; i < cand.size(); ++i) {
    p[i] = std::exp((logit(cand[i]) - max_l) / params_.temperature);
    sum += p[i];
  }
  for (double& x : p) x /= sum;
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    std::size_t keep = 0;
    while (keep < p.size()) {
      cum += p[keep++];
      if (cum >= params_.top_p) break;
    }
    p.resize(keep);
    cand.resize(keep);
  }
  std::discrete_distribution<std::size_t> dist(p.begin(), p.end());
  return cand[dist(rng_)];
}

double log_softmax_at(std::span<const float> logits, int token) {
  const float max_l = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_l);
  return static_cast<double>(logits[static_cast<std::size_t>(token)]) - max_l - std::log(sum);
}

TokenDistribution token_distribution(std::span<const float> logits, int token, int top_k) {
  const float max_l = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_l);
  const double log_z = max_l + std::log(sum);
  TokenDistribution out;
  out.logprob = static_cast<double>(logits[static_cast<std::size_t>(token)]) - log_z;
  const std::size_t k =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(top_k, 0)), logits.size());
  if (k == 0) return out;
  std::vector<int> ids(logits.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i);
  // Ties go to the lower id, so the list is the same on every run.
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    [&](int a, int b) {
                      const float la = logits[static_cast<std::size_t>(a)];
                      const float lb = logits[static_cast<std::size_t>(b)];
                      return la != lb ? la > lb : a < b;
                    });
  for (std::size_t i = 0; i < k; ++i) {
    out.top.emplace_back(ids[i],
                         static_cast<double>(logits[static_cast<std::size_t>(ids[i])]) - log_z);
  }
  return out;
}

ChoiceTrie::ChoiceTrie(const std::vector<std::vector<int>>& choices) : nodes_(1) {
  for (std::size_t c = 0; c < choices.size(); ++c) {
    int node = kRoot;
    for (int t : choices[c]) {
      auto it = nodes_[static_cast<std::size_t>(node)].children.find(t);
      if (it == nodes_[static_cast<std::size_t>(node)].children.end()) {
        nodes_.emplace_back();
        const int child = static_cast<int>(nodes_.size()) - 1;
        nodes_[static_cast<std::size_t>(node)].children.emplace(t, child);
        node = child;
      } else {
        node = it->second;
      }
    }
    if (nodes_[static_cast<std::size_t>(node)].choice < 0)
      nodes_[static_cast<std::size_t>(node)].choice = static_cast<int>(c);
  }
}

std::vector<int> ChoiceTrie::allowed(int node) const {
  std::vector<int> out;
  for (const auto& [t, child] : nodes_[static_cast<std::size_t>(node)].children) out.push_back(t);
  return out;
}

int ChoiceTrie::next(int node, int token) const {
  const auto& ch = nodes_[static_cast<std::size_t>(node)].children;
  auto it = ch.find(token);
  return it == ch.end() ? -1 : it->second;
}

}  // namespace chatrec::llm::runtime
