#include "recommend/transition.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "recommend/knn_common.h"

namespace chatrec::recommend {

TransitionRecommender::TransitionRecommender(const Params& params) {
  detail::ParamReader r("transition", params);
  window_ = r.integer("window", 10, 1, 1 << 20);
  decay_ = r.real("decay", 0.8, 0.0, 1.0);
  skip_weight_ = r.real("skip_weight", 0.3, 0.0, 1e6);
  backward_weight_ = r.real("backward_weight", 0.3, 0.0, 1e6);
  knn_weight_ = r.real("knn_weight", 1.0, 0.0, 1e6);
  k_ = r.integer("k", 1000, 1, 1 << 20);
  shrink_ = r.real("shrink", 10, 0.0, 1e9);
  pop_weight_ = r.real("pop_weight", 0.002, 0.0, 1e6);
  max_transitions_ = r.integer("max_transitions", 200, 1, 1 << 20);
  r.finish();
}

Params TransitionRecommender::params() const {
  return {{"window", std::to_string(window_)},
          {"decay", detail::fmt_param(decay_)},
          {"skip_weight", detail::fmt_param(skip_weight_)},
          {"backward_weight", detail::fmt_param(backward_weight_)},
          {"knn_weight", detail::fmt_param(knn_weight_)},
          {"k", std::to_string(k_)},
          {"shrink", detail::fmt_param(shrink_)},
          {"pop_weight", detail::fmt_param(pop_weight_)},
          {"max_transitions", std::to_string(max_transitions_)}};
}

void TransitionRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  remember(train);
  const std::size_t n = train.num_items();
  auto progress = detail::maybe_progress(options, "transition", 2, "step");
  // Transition weights: the next item (1), the one after it (skip_weight), and the reverse
  // direction (backward_weight; purchase order within a few steps is noisy).
  std::vector<std::unordered_map<ItemIndex, float>> counts(n);
  for (UserIndex u = 0; u < train.num_users(); ++u) {
    const auto& seq = train.sequence(u);
    for (std::size_t t = 0; t + 1 < seq.size(); ++t) {
      if (seq[t] == seq[t + 1]) continue;
      counts[seq[t]][seq[t + 1]] += 1.0f;
      if (backward_weight_ > 0) counts[seq[t + 1]][seq[t]] += static_cast<float>(backward_weight_);
      if (skip_weight_ > 0 && t + 2 < seq.size() && seq[t + 2] != seq[t]) {
        counts[seq[t]][seq[t + 2]] += static_cast<float>(skip_weight_);
      }
    }
  }
  transitions_.assign(n, {});
  for (std::size_t i = 0; i < n; ++i) {
    auto& out = transitions_[i];
    double total = 0;
    for (const auto& [j, c] : counts[i]) {
      out.push_back({j, c});
      total += c;
    }
    for (auto& x : out) x.sim = static_cast<float>(x.sim / total);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.sim > b.sim || (a.sim == b.sim && a.id < b.id);
    });
    if (out.size() > static_cast<std::size_t>(max_transitions_))
      out.resize(static_cast<std::size_t>(max_transitions_));
  }
  counts.clear();
  if (progress) progress->advance();
  neighbours_ = knn_weight_ > 0 ? detail::implicit_neighbours({&train, true}, k_, shrink_, 0.5,
                                                              detail::thread_count(options))
                                : detail::NeighbourLists(n);
  prior_.assign(n, 0.0f);
  double max_log = 0;
  for (std::size_t i = 0; i < n; ++i) {
    prior_[i] = static_cast<float>(
        std::log1p(static_cast<double>(train.users_of(static_cast<ItemIndex>(i)).size())));
    max_log = std::max(max_log, static_cast<double>(prior_[i]));
  }
  if (max_log > 0) {
    for (auto& p : prior_) p = static_cast<float>(p / max_log);
  }
  if (progress) progress->advance();
}

void TransitionRecommender::score_items(std::span<const ItemIndex> history,
                                        std::span<float> out) const {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(pop_weight_) * prior_[i];
  float w = 1.0f;
  const std::size_t len = history.size();
  for (std::size_t back = 0; back < len && back < static_cast<std::size_t>(window_); ++back) {
    const ItemIndex h = history[len - 1 - back];
    for (const auto& x : transitions_[h]) out[x.id] += w * x.sim;
    const float kw = w * static_cast<float>(knn_weight_);
    if (kw > 0) {
      for (const auto& x : neighbours_[h]) out[x.id] += kw * x.sim;
    }
    w *= static_cast<float>(decay_);
  }
}

void TransitionRecommender::score(UserIndex user, std::span<float> out) const {
  score_items(train_->sequence(user), out);
}

void TransitionRecommender::save_state(std::ostream& out) const {
  detail::write_neighbours(out, transitions_);
  detail::write_neighbours(out, neighbours_);
  detail::write_vec(out, prior_);
}

void TransitionRecommender::load_state(std::istream& in) {
  transitions_ = detail::read_neighbours(in, "transition weights");
  neighbours_ = detail::read_neighbours(in, "transition neighbours");
  prior_ = detail::read_vec<float>(in, "transition prior");
  auto bad = [&](const detail::NeighbourLists& l) {
    if (l.size() != num_items_) return true;
    for (const auto& v : l) {
      for (const auto& x : v) {
        if (x.id >= num_items_) return true;
      }
    }
    return false;
  };
  if (bad(transitions_) || bad(neighbours_) || prior_.size() != num_items_) {
    throw std::runtime_error("model file is corrupt (transition state sizes)");
  }
}

}  // namespace chatrec::recommend
