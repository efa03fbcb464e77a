#include "recommend/bpr.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/random.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

BprRecommender::BprRecommender(const Params& params) {
  detail::ParamReader r("bpr", params);
  factors_ = r.integer("factors", 64, 1, 4096);
  epochs_ = r.integer("epochs", 100, 0, 100000);
  lr_ = r.real("lr", 0.02, 0.0, 10.0);
  reg_ = r.real("reg", 0.01, 0.0, 100.0);
  init_std_ = r.real("init_std", 0.1, 0.0, 10.0);
  r.finish();
}

Params BprRecommender::params() const {
  return {{"factors", std::to_string(factors_)},
          {"epochs", std::to_string(epochs_)},
          {"lr", detail::fmt_param(lr_)},
          {"reg", detail::fmt_param(reg_)},
          {"init_std", detail::fmt_param(init_std_)}};
}

void BprRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  remember(train);
  const auto nu = static_cast<Eigen::Index>(train.num_users()),
             ni = static_cast<Eigen::Index>(train.num_items());
  Rng rng(options.seed);
  item_bias_ = Eigen::VectorXf::Zero(ni);
  user_factors_.resize(factors_, nu);
  item_factors_.resize(factors_, ni);
  for (auto* m : {&user_factors_, &item_factors_}) {
    for (Eigen::Index k = 0; k < m->size(); ++k)
      m->data()[k] = static_cast<float>(rng.normal(0, init_std_));
  }
  std::vector<std::pair<UserIndex, ItemIndex>> pairs;
  pairs.reserve(train.nnz());
  for (UserIndex u = 0; u < nu; ++u) {
    for (auto i : train.items_of(u)) pairs.emplace_back(u, i);
  }
  if (pairs.empty() || ni < 2) return;
  auto progress =
      detail::maybe_progress(options, "bpr", static_cast<std::uint64_t>(epochs_), "epoch");
  const int threads =
      static_cast<int>(std::min<Eigen::Index>(detail::thread_count(options), std::min(nu, ni)));
  for (int epoch = 0; epoch < epochs_; ++epoch) {
    const double loss = threads > 1 ? parallel_epoch(train, pairs, threads, options.seed, epoch)
                                    : serial_epoch(train, pairs, rng);
    if (progress) {
      progress->set_postfix(
          fmt::format("bpr loss {:.4f}", loss / static_cast<double>(pairs.size())));
      progress->advance();
    }
  }
}

float BprRecommender::sgd_step(UserIndex u, ItemIndex i, ItemIndex j) {
  auto p = user_factors_.col(u);
  auto qi = item_factors_.col(i);
  auto qj = item_factors_.col(j);
  const float lr = static_cast<float>(lr_), reg = static_cast<float>(reg_);
  const float x = item_bias_(i) - item_bias_(j) + p.dot(qi - qj);
  const float g = 1.0f / (1.0f + std::exp(x));  // d/dx log sigmoid(x)
  for (Eigen::Index k = 0; k < p.size(); ++k) {
    const float pk = p(k), ik = qi(k), jk = qj(k);
    p(k) += lr * (g * (ik - jk) - reg * pk);
    qi(k) += lr * (g * pk - reg * ik);
    qj(k) += lr * (-g * pk - reg * jk);
  }
  item_bias_(i) += lr * (g - reg * item_bias_(i));
  item_bias_(j) += lr * (-g - reg * item_bias_(j));
  return std::log1p(std::exp(-x));
}

double BprRecommender::serial_epoch(const data::InteractionMatrix& train,
                                    const std::vector<std::pair<UserIndex, ItemIndex>>& pairs,
                                    Rng& rng) {
  const auto ni = static_cast<std::uint64_t>(train.num_items());
  double loss = 0;
  for (std::size_t s = 0; s < pairs.size(); ++s) {
    const auto [u, i] = pairs[rng.below(pairs.size())];
    ItemIndex j;
    do {
      j = static_cast<ItemIndex>(rng.below(ni));
    } while (train.contains(u, j));
    loss += sgd_step(u, i, j);
  }
  return loss;
}

// Stratified SGD (Gemulla et al. 2011): users and items are split into T blocks each; in sub-epoch
// s, thread t trains on the pairs of user block t whose item lies in item block (t + s) mod T, with
// negatives from that item block. No two threads touch the same user or item row at once, so there
// are no locks and no races, and the result depends only on the seed and the thread count (Hogwild,
// as implicit and LightFM train, is lock-free too but not reproducible). The item blocks are drawn
// afresh each epoch, so over the epochs every positive meets negatives from the whole catalogue.
double BprRecommender::parallel_epoch(const data::InteractionMatrix& train,
                                      const std::vector<std::pair<UserIndex, ItemIndex>>& pairs,
                                      int threads, std::uint64_t seed, int epoch) {
  const auto t_count = static_cast<std::size_t>(threads);
  const std::size_t ni = train.num_items();
  Rng epoch_rng(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(epoch + 1)));
  std::vector<ItemIndex> items(ni);
  for (std::size_t i = 0; i < ni; ++i) items[i] = static_cast<ItemIndex>(i);
  epoch_rng.shuffle(items);
  std::vector<std::uint32_t> block_of_item(ni);
  std::vector<std::vector<ItemIndex>> items_of_block(t_count);
  for (std::size_t k = 0; k < ni; ++k) {
    const std::size_t b = k * t_count / ni;
    block_of_item[items[k]] = static_cast<std::uint32_t>(b);
    items_of_block[b].push_back(items[k]);
  }
  // Users go to blocks by index: pairs are in user order, so block t is a contiguous range.
  const std::size_t nu = train.num_users();
  std::vector<std::vector<std::vector<std::uint32_t>>> bucket(
      t_count, std::vector<std::vector<std::uint32_t>>(t_count));
  for (std::size_t k = 0; k < pairs.size(); ++k) {
    const std::size_t ub = static_cast<std::size_t>(pairs[k].first) * t_count / nu;
    bucket[ub][block_of_item[pairs[k].second]].push_back(static_cast<std::uint32_t>(k));
  }
  std::vector<double> loss(t_count, 0.0);
  for (std::size_t sub = 0; sub < t_count; ++sub) {
    std::vector<std::uint64_t> stream(t_count);
    for (auto& x : stream) x = epoch_rng.next();
#pragma omp parallel for schedule(static, 1) num_threads(threads)
    for (std::size_t t = 0; t < t_count; ++t) {
      const std::size_t ib = (t + sub) % t_count;
      const auto& mine = bucket[t][ib];
      const auto& negatives = items_of_block[ib];
      if (mine.empty() || negatives.empty()) continue;
      Rng r(stream[t]);
      for (std::size_t s = 0; s < mine.size(); ++s) {
        const auto [u, i] = pairs[mine[r.below(mine.size())]];
        // A user who has seen (nearly) every item of the block gets no negative from it.
        ItemIndex j = 0;
        bool found = false;
        for (int attempt = 0; attempt < 64 && !found; ++attempt) {
          j = negatives[r.below(negatives.size())];
          found = !train.contains(u, j);
        }
        if (found) loss[t] += sgd_step(u, i, j);
      }
    }
  }
  double total = 0;
  for (double l : loss) total += l;
  return total;
}

void BprRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_factors_.col(user).transpose() * item_factors_;
  s += item_bias_.transpose();
}

void BprRecommender::save_state(std::ostream& out) const {
  detail::write_matrix(out, item_bias_);
  detail::write_matrix(out, user_factors_);
  detail::write_matrix(out, item_factors_);
}

void BprRecommender::load_state(std::istream& in) {
  item_bias_ = detail::read_matrix<Eigen::VectorXf>(in, "bpr item biases");
  user_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "bpr user factors");
  item_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "bpr item factors");
  if (item_bias_.size() != static_cast<Eigen::Index>(num_items_) ||
      user_factors_.cols() != static_cast<Eigen::Index>(num_users_) ||
      item_factors_.cols() != item_bias_.size() || user_factors_.rows() != item_factors_.rows()) {
    throw std::runtime_error("model file is corrupt (bpr state sizes)");
  }
}

}  // namespace chatrec::recommend
