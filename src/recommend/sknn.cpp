#include "recommend/sknn.h"

#include <algorithm>
#include <cmath>

#include "recommend/detail.h"

namespace chatrec::recommend {

SknnRecommender::SknnRecommender(const Params& params) {
  detail::ParamReader r("sknn", params);
  k_ = r.integer("k", 100, 1, 1 << 24);
  window_ = r.integer("window", 10, 1, 1 << 20);
  pop_weight_ = r.real("pop_weight", 0.01, 0.0, 1e6);
  length_norm_ = r.real("length_norm", 0.5, 0.0, 1.0);
  r.finish();
}

Params SknnRecommender::params() const {
  return {{"k", std::to_string(k_)},
          {"window", std::to_string(window_)},
          {"pop_weight", detail::fmt_param(pop_weight_)},
          {"length_norm", detail::fmt_param(length_norm_)}};
}

void SknnRecommender::fit(const data::InteractionMatrix& train, const FitOptions&) {
  remember(train);
  const std::size_t n = train.num_items();
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
}

void SknnRecommender::score_impl(std::span<const ItemIndex> history, std::int64_t self,
                                 std::span<float> out) const {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(pop_weight_) * prior_[i];
  thread_local std::vector<float> sim;
  thread_local std::vector<UserIndex> touched;
  sim.assign(num_users_, 0.0f);
  touched.clear();
  const std::size_t len = history.size();
  const std::size_t used = std::min(len, static_cast<std::size_t>(window_));
  for (std::size_t back = 0; back < used; ++back) {
    const float w = static_cast<float>(used - back) / static_cast<float>(used);
    for (auto v : train_->users_of(history[len - 1 - back])) {
      if (static_cast<std::int64_t>(v) == self) continue;
      if (sim[v] == 0.0f) touched.push_back(v);
      sim[v] += w;
    }
  }
  std::vector<std::pair<float, UserIndex>> cand;
  cand.reserve(touched.size());
  for (auto v : touched) {
    const double size = static_cast<double>(train_->items_of(v).size());
    cand.emplace_back(static_cast<float>(sim[v] / std::pow(size, length_norm_)), v);
  }
  if (cand.size() > static_cast<std::size_t>(k_)) {
    std::nth_element(cand.begin(), cand.begin() + k_, cand.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    cand.resize(static_cast<std::size_t>(k_));
  }
  for (const auto& [s, v] : cand) {
    for (auto i : train_->items_of(v)) out[i] += s;
  }
}

void SknnRecommender::score_items(std::span<const ItemIndex> history, std::span<float> out) const {
  score_impl(history, -1, out);
}

void SknnRecommender::score(UserIndex user, std::span<float> out) const {
  score_impl(train_->sequence(user), user, out);
}

void SknnRecommender::save_state(std::ostream& out) const {
  detail::write_vec(out, prior_);
}

void SknnRecommender::load_state(std::istream& in) {
  prior_ = detail::read_vec<float>(in, "sknn prior");
  if (prior_.size() != num_items_)
    throw std::runtime_error("model file is corrupt (sknn prior size)");
}

}  // namespace chatrec::recommend
