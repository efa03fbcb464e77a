#include "recommend/sequence_transformer.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/random.h"
#include "nn/adam.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

void SequenceTransformerRecommender::read_common(detail::ParamReader& r) {
  shape_.dim = r.integer("dim", 64, 1, 4096);
  shape_.blocks = r.integer("blocks", 2, 0, 16);
  shape_.heads = r.integer("heads", 2, 1, 64);
  shape_.inner = r.integer("inner", 256, 1, 65536);
  shape_.max_len = r.integer("max_len", 50, 2, 4096);
  shape_.dropout = r.real("dropout", 0.5, 0.0, 0.95);
  epochs_ = r.integer("epochs", 60, 0, 100000);
  batch_ = r.integer("batch", 128, 1, 1 << 20);
  negatives_ = r.integer("negatives", 512, 0, 1 << 20);
  lr_ = r.real("lr", 1e-3, 0.0, 10.0);
  weight_decay_ = r.real("weight_decay", 0.0, 0.0, 1.0);
  pop_negatives_ = r.real("pop_negatives", 0.0, 0.0, 1.0);
  patience_ = r.integer("patience", 5, 1, 100000);
  valid_users_ = r.integer("valid_users", 5000, 0, 1 << 30);
  valid_negatives_ = r.integer("valid_negatives", 99, 1, 1 << 20);
  if (shape_.dim % shape_.heads != 0)
    throw std::invalid_argument(
        fmt::format("{}: dim {} is not a multiple of heads {}", name(), shape_.dim, shape_.heads));
}

Params SequenceTransformerRecommender::params() const {
  return {{"dim", std::to_string(shape_.dim)},
          {"blocks", std::to_string(shape_.blocks)},
          {"heads", std::to_string(shape_.heads)},
          {"inner", std::to_string(shape_.inner)},
          {"max_len", std::to_string(shape_.max_len)},
          {"dropout", detail::fmt_param(shape_.dropout)},
          {"epochs", std::to_string(epochs_)},
          {"batch", std::to_string(batch_)},
          {"negatives", std::to_string(negatives_)},
          {"lr", detail::fmt_param(lr_)},
          {"weight_decay", detail::fmt_param(weight_decay_)},
          {"pop_negatives", detail::fmt_param(pop_negatives_)},
          {"patience", std::to_string(patience_)},
          {"valid_users", std::to_string(valid_users_)},
          {"valid_negatives", std::to_string(valid_negatives_)}};
}

namespace {

std::uint64_t mix(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = seed ^ (a * 0x9e3779b97f4a7c15ULL) ^ (b * 0xc2b2ae3d27d4eb4fULL);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 29);
}

// Items drawn with probability proportional to count^0.75 (word2vec's smoothing).
class PopularitySampler {
 public:
  explicit PopularitySampler(const data::InteractionMatrix& train) {
    cumulative_.resize(train.num_items());
    double total = 0;
    for (ItemIndex i = 0; i < train.num_items(); ++i) {
      total += std::pow(static_cast<double>(train.users_of(i).size()), 0.75);
      cumulative_[i] = total;
    }
    total_ = total;
  }
  ItemIndex draw(Rng& rng) const {
    const double x = rng.uniform() * total_;
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
    return static_cast<ItemIndex>(std::min<std::size_t>(
        static_cast<std::size_t>(it - cumulative_.begin()), cumulative_.size() - 1));
  }
  double probability(ItemIndex i) const {
    const double lo = i == 0 ? 0.0 : cumulative_[i - 1];
    return total_ > 0 ? (cumulative_[i] - lo) / total_ : 0.0;
  }

 private:
  std::vector<double> cumulative_;
  double total_ = 0;
};

// Distinct items the user never interacted with: uniform, or with probability `pop_share` by
// popularity.
std::vector<ItemIndex> sample_unseen(const data::InteractionMatrix& train, UserIndex u,
                                     std::size_t n, Rng& rng, ItemIndex also_exclude,
                                     const PopularitySampler* popular = nullptr,
                                     double pop_share = 0.0) {
  std::vector<ItemIndex> out;
  const std::size_t ni = train.num_items();
  const std::size_t unseen = ni - train.items_of(u).size();
  n = std::min(n, unseen > 0 ? unseen - 1 : 0);
  thread_local std::vector<std::uint8_t> taken;  // marks of this call's picks, cleared on return
  if (taken.size() < ni) taken.assign(ni, 0);
  for (std::size_t attempts = 0; out.size() < n && attempts < 50 * n + 100; ++attempts) {
    const auto j = popular && rng.uniform() < pop_share ? popular->draw(rng)
                                                        : static_cast<ItemIndex>(rng.below(ni));
    if (j == also_exclude || taken[j] || train.contains(u, j)) continue;
    taken[j] = 1;
    out.push_back(j);
  }
  for (ItemIndex j : out) taken[j] = 0;
  return out;
}

struct ValidCase {
  UserIndex user;
  std::vector<ItemIndex> history;
  ItemIndex target;
  std::vector<ItemIndex> negatives;
};

}  // namespace

void SequenceTransformerRecommender::fit(const data::InteractionMatrix& train,
                                         const FitOptions& options) {
  remember(train);
  const std::size_t nu = train.num_users(), ni = train.num_items();
  net_ = std::make_unique<TransformerNet<float>>(shape(ni));
  net_->init(options.seed);
  best_validation_ = 0.0;
  best_epoch_ = 0;
  const int threads = detail::thread_count(options);
  // Validation targets that are a user's last training item are held out of training.
  std::map<UserIndex, ItemIndex> valid_of;
  if (options.validation) {
    for (const auto& x : *options.validation) {
      if (x.user < nu && x.item < ni) valid_of[x.user] = x.item;
    }
  }
  std::vector<std::vector<ItemIndex>> seqs(nu);
  std::vector<ValidCase> valid;
  for (UserIndex u = 0; u < nu; ++u) {
    seqs[u] = train.sequence(u);
    auto v = valid_of.find(u);
    if (v != valid_of.end() && !seqs[u].empty() && seqs[u].back() == v->second) {
      seqs[u].pop_back();
      if (!seqs[u].empty()) valid.push_back({u, seqs[u], v->second, {}});
    }
  }
  if (valid_users_ == 0) valid.clear();
  {
    Rng pick(options.seed ^ 0x5a5eULL);
    pick.shuffle(valid);
    if (valid.size() > static_cast<std::size_t>(valid_users_))
      valid.resize(static_cast<std::size_t>(valid_users_));
    for (auto& c : valid) {
      Rng r(mix(options.seed, 0x7a11d, c.user));
      c.negatives =
          sample_unseen(train, c.user, static_cast<std::size_t>(valid_negatives_), r, c.target);
    }
  }
  std::vector<UserIndex> users;
  for (UserIndex u = 0; u < nu; ++u) {
    if (seqs[u].size() >= min_training_length()) users.push_back(u);
  }
  const PopularitySampler popular(train);
  if (users.empty() || epochs_ == 0) return;

  // NDCG@10 of each held-out target among its sampled negatives (ties count against it).
  auto validate = [&](const TransformerNet<float>& net) {
    std::vector<double> gains(valid.size());
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::size_t k = 0; k < valid.size(); ++k) {
      const auto& c = valid[k];
      const nn::Vec<float> h = net.encode(inference_inputs(c.history));
      const float t = h.dot(net.weights().item.row(c.target));
      std::size_t rank = 0;
      for (ItemIndex j : c.negatives) rank += h.dot(net.weights().item.row(j)) >= t ? 1 : 0;
      gains[k] = rank < 10 ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
    }
    double s = 0;
    for (double g : gains) s += g;
    return valid.empty() ? 0.0 : s / static_cast<double>(valid.size());
  };

  std::vector<TransformerWeights<float>> grads(static_cast<std::size_t>(threads),
                                               net_->weights().zeros_like());
  std::vector<nn::Adam<float>> adam;
  net_->weights().visit([&](auto& m) {
    adam.emplace_back(static_cast<std::size_t>(m.size()),
                      nn::AdamOptions{0.9, 0.98, 1e-9, weight_decay_});
  });
  TransformerWeights<float> best = net_->weights();
  int evals_without_gain = 0;
  auto progress =
      detail::maybe_progress(options, name(), static_cast<std::uint64_t>(epochs_), "epoch");
  for (int epoch = 1; epoch <= epochs_; ++epoch) {
    Rng order(mix(options.seed, 0xe90c, static_cast<std::uint64_t>(epoch)));
    order.shuffle(users);
    double loss_sum = 0;
    std::size_t positions_sum = 0;
    for (std::size_t start = 0; start < users.size(); start += static_cast<std::size_t>(batch_)) {
      const std::size_t end = std::min(users.size(), start + static_cast<std::size_t>(batch_));
      std::vector<TransformerExample> batch(end - start);
      std::size_t positions = 0;
      for (std::size_t k = start; k < end; ++k) {
        const UserIndex u = users[k];
        auto& ex = batch[k - start];
        Rng r(mix(options.seed, static_cast<std::uint64_t>(epoch), u));
        training_example(seqs[u], r, ex);
        ex.negatives = sample_unseen(train, u, static_cast<std::size_t>(negatives_), r,
                                     std::numeric_limits<ItemIndex>::max(),
                                     pop_negatives_ > 0 ? &popular : nullptr, pop_negatives_);
        if (pop_negatives_ > 0) {
          // Sampled softmax's correction: each negative's logit less log of its proposal
          // probability (a mixture of uniform and popularity), relative to uniform.
          ex.negative_offsets.resize(ex.negatives.size());
          for (std::size_t m = 0; m < ex.negatives.size(); ++m)
            ex.negative_offsets[m] = static_cast<float>(std::log(
                (1.0 - pop_negatives_) +
                pop_negatives_ * popular.probability(ex.negatives[m]) * static_cast<double>(ni)));
        }
        ex.dropout_seed = r.next();
        positions += ex.inputs.size();
      }
      const float scale = 1.0f / static_cast<float>(positions);
      std::vector<double> losses(static_cast<std::size_t>(threads), 0.0);
#pragma omp parallel num_threads(threads)
      {
        const auto t = static_cast<std::size_t>(omp_get_thread_num());
        grads[t].visit([](auto& m) { m.setZero(); });
        for (std::size_t k = t; k < batch.size(); k += static_cast<std::size_t>(threads))
          losses[t] += net_->loss_and_grad(batch[k], true, scale, grads[t]);
      }
      // Fixed-order reduction: the result depends on the thread count, not on timing.
      for (std::size_t t = 1; t < grads.size(); ++t) {
        std::vector<float*> dst;
        grads[0].visit([&](auto& m) { dst.push_back(m.data()); });
        std::size_t i = 0;
        grads[t].visit([&](auto& m) {
          float* d = dst[i++];
          for (Eigen::Index x = 0; x < m.size(); ++x) d[x] += m.data()[x];
        });
      }
      std::vector<std::pair<float*, Eigen::Index>> g;
      grads[0].visit([&](auto& m) { g.emplace_back(m.data(), m.size()); });
      std::size_t i = 0;
      net_->weights().visit([&](auto& m) {
        adam[i].step(std::span<float>(m.data(), static_cast<std::size_t>(m.size())),
                     std::span<const float>(g[i].first, static_cast<std::size_t>(g[i].second)),
                     lr_);
        ++i;
      });
      // The losses are already divided by the batch's positions.
      for (double l : losses) loss_sum += l * static_cast<double>(positions);
      positions_sum += positions;
    }
    const double v = valid.empty() ? 0.0 : validate(*net_);
    if (valid.empty() || best_epoch_ == 0 || v > best_validation_) {
      best_validation_ = v;
      best_epoch_ = epoch;
      best = net_->weights();
      evals_without_gain = 0;
    } else {
      ++evals_without_gain;
    }
    if (progress) {
      progress->set_postfix(
          fmt::format("loss {:.4f}{}", loss_sum / static_cast<double>(positions_sum),
                      valid.empty() ? ""
                                    : fmt::format(" val NDCG@10 {:.4f} best {:.4f} @{}", v,
                                                  best_validation_, best_epoch_)));
      progress->advance();
    }
    if (!valid.empty() && evals_without_gain >= patience_) break;
  }
  net_->weights() = best;
}

void SequenceTransformerRecommender::score(UserIndex user, std::span<float> out) const {
  if (!net_) throw std::logic_error(name() + ": score before fit");
  if (!train_ || user >= train_->num_users()) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  net_->score(inference_inputs(train_->sequence(user)), out);
}

void SequenceTransformerRecommender::score_items(std::span<const ItemIndex> history,
                                                 std::span<float> out) const {
  if (!net_) throw std::logic_error(name() + ": score before fit");
  net_->score(inference_inputs(history), out);
}

void SequenceTransformerRecommender::save_state(std::ostream& out) const {
  const_cast<TransformerNet<float>&>(*net_).weights().visit(
      [&](auto& m) { detail::write_matrix(out, m); });
}

void SequenceTransformerRecommender::load_state(std::istream& in) {
  net_ = std::make_unique<TransformerNet<float>>(shape(num_items_));
  net_->weights().visit([&](auto& m) {
    using M = std::remove_reference_t<decltype(m)>;
    M read = detail::read_matrix<M>(in, "transformer weights");
    if (read.rows() != m.rows() || read.cols() != m.cols())
      throw std::runtime_error("model file is corrupt (" + name() + " weight shapes)");
    m = std::move(read);
  });
}

// ---- SASRec: every position predicts the next item.

SasRecRecommender::SasRecRecommender(const Params& params) {
  detail::ParamReader r("sasrec", params);
  read_common(r);
  r.finish();
}

TransformerShape SasRecRecommender::shape(std::size_t items) const {
  TransformerShape s = shape_;
  s.items = static_cast<int>(items);
  return s;
}

void SasRecRecommender::training_example(const std::vector<ItemIndex>& seq, Rng&,
                                         TransformerExample& ex) const {
  const std::size_t n = std::min(seq.size(), static_cast<std::size_t>(shape_.max_len) + 1);
  ex.inputs.assign(seq.end() - static_cast<std::ptrdiff_t>(n), seq.end() - 1);
  ex.targets.assign(seq.end() - static_cast<std::ptrdiff_t>(n) + 1, seq.end());
}

std::vector<ItemIndex> SasRecRecommender::inference_inputs(
    std::span<const ItemIndex> history) const {
  const std::size_t n = std::min(history.size(), static_cast<std::size_t>(shape_.max_len));
  return {history.end() - static_cast<std::ptrdiff_t>(n), history.end()};
}

// ---- BERT4Rec: masked items are predicted from both sides; at inference a mask after the
// history is the next item.

Bert4RecRecommender::Bert4RecRecommender(const Params& params) {
  detail::ParamReader r("bert4rec", params);
  read_common(r);
  mask_prob_ = r.real("mask_prob", 0.2, 0.0, 1.0);
  last_prob_ = r.real("last_prob", 0.1, 0.0, 1.0);
  r.finish();
}

Params Bert4RecRecommender::params() const {
  Params p = SequenceTransformerRecommender::params();
  p["mask_prob"] = detail::fmt_param(mask_prob_);
  p["last_prob"] = detail::fmt_param(last_prob_);
  return p;
}

TransformerShape Bert4RecRecommender::shape(std::size_t items) const {
  TransformerShape s = shape_;
  s.items = static_cast<int>(items);
  s.bidirectional = true;
  s.extra_tokens = 1;
  return s;
}

void Bert4RecRecommender::training_example(const std::vector<ItemIndex>& seq, Rng& rng,
                                           TransformerExample& ex) const {
  const std::size_t n = std::min(seq.size(), static_cast<std::size_t>(shape_.max_len));
  ex.inputs.assign(seq.end() - static_cast<std::ptrdiff_t>(n), seq.end());
  ex.targets.assign(n, kNoTarget);
  const auto mask = static_cast<ItemIndex>(train_->num_items());
  // Some sequences mask only their last item, the inference case (BERT4Rec §3.6).
  if (rng.uniform() < last_prob_) {
    ex.targets[n - 1] = ex.inputs[n - 1];
    ex.inputs[n - 1] = mask;
    return;
  }
  bool any = false;
  for (std::size_t t = 0; t < n; ++t) {
    if (rng.uniform() < mask_prob_) {
      ex.targets[t] = ex.inputs[t];
      ex.inputs[t] = mask;
      any = true;
    }
  }
  if (!any) {
    const auto t = static_cast<std::size_t>(rng.below(n));
    ex.targets[t] = ex.inputs[t];
    ex.inputs[t] = mask;
  }
}

std::vector<ItemIndex> Bert4RecRecommender::inference_inputs(
    std::span<const ItemIndex> history) const {
  const std::size_t n = std::min(history.size(), static_cast<std::size_t>(shape_.max_len) - 1);
  std::vector<ItemIndex> in(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  in.push_back(static_cast<ItemIndex>(num_items_));
  return in;
}

}  // namespace chatrec::recommend
