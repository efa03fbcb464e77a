#include "recommend/lightgcn.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "common/random.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

LightGcnRecommender::LightGcnRecommender(const Params& params) {
  detail::ParamReader r("lightgcn", params);
  dim_ = r.integer("dim", 64, 1, 4096);
  layers_ = r.integer("layers", 3, 0, 16);
  epochs_ = r.integer("epochs", 400, 0, 100000);
  batch_size_ = r.integer("batch_size", 16384, 1, 1 << 26);
  lr_ = r.real("lr", 0.02, 0.0, 10.0);
  reg_ = r.real("reg", 1e-3, 0.0, 100.0);
  init_std_ = r.real("init_std", 0.1, 0.0, 10.0);
  eval_every_ = r.integer("eval_every", 5, 1, 100000);
  patience_ = r.integer("patience", 4, 1, 100000);
  valid_fraction_ = r.real("valid_fraction", 0.1, 0.0, 0.5);
  refit_ = r.integer("refit", 1, 0, 1) != 0;
  r.finish();
}

Params LightGcnRecommender::params() const {
  return {{"dim", std::to_string(dim_)},
          {"layers", std::to_string(layers_)},
          {"epochs", std::to_string(epochs_)},
          {"batch_size", std::to_string(batch_size_)},
          {"lr", detail::fmt_param(lr_)},
          {"reg", detail::fmt_param(reg_)},
          {"init_std", detail::fmt_param(init_std_)},
          {"eval_every", std::to_string(eval_every_)},
          {"patience", std::to_string(patience_)},
          {"valid_fraction", detail::fmt_param(valid_fraction_)},
          {"refit", refit_ ? "1" : "0"}};
}

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The symmetric normalised adjacency of the bipartite graph (users first, then items), as CSR.
struct Graph {
  std::vector<std::size_t> ptr;
  std::vector<std::uint32_t> col;
  std::vector<float> val;
  // out = A * in, rows are nodes.
  void multiply(const RowMat& in, RowMat& out, int threads) const {
    out.resize(static_cast<Eigen::Index>(ptr.size() - 1), in.cols());
    // A fixed-width row stays in registers across a node's edges; the dynamic one is loaded and
    // stored once per edge, which made this product most of LightGCN's fit time.
    switch (in.cols()) {
      case 16:
        return multiply_fixed<16>(in, out, threads);
      case 32:
        return multiply_fixed<32>(in, out, threads);
      case 64:
        return multiply_fixed<64>(in, out, threads);
      case 128:
        return multiply_fixed<128>(in, out, threads);
      default:
        return multiply_fixed<Eigen::Dynamic>(in, out, threads);
    }
  }

 private:
  template <int D>
  void multiply_fixed(const RowMat& in, RowMat& out, int threads) const {
    using Row = Eigen::Matrix<float, 1, D>;
    const auto n = static_cast<Eigen::Index>(ptr.size() - 1);
    const Eigen::Index d = in.cols();
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
    for (Eigen::Index a = 0; a < n; ++a) {
      Row acc = Row::Zero(d);
      for (std::size_t k = ptr[static_cast<std::size_t>(a)];
           k < ptr[static_cast<std::size_t>(a) + 1]; ++k) {
        acc += val[k] * Eigen::Map<const Row>(in.data() + static_cast<Eigen::Index>(col[k]) * d, d);
      }
      Eigen::Map<Row>(out.data() + a * d, d) = acc;
    }
  }
};

Graph build_graph(const data::InteractionMatrix& train) {
  const std::size_t nu = train.num_users(), ni = train.num_items();
  Graph g;
  g.ptr.assign(nu + ni + 1, 0);
  auto deg_u = [&](UserIndex u) { return static_cast<float>(train.items_of(u).size()); };
  auto deg_i = [&](ItemIndex i) { return static_cast<float>(train.users_of(i).size()); };
  for (UserIndex u = 0; u < nu; ++u) {
    for (auto i : train.items_of(u)) {
      g.col.push_back(static_cast<std::uint32_t>(nu + i));
      g.val.push_back(1.0f / std::sqrt(deg_u(u) * deg_i(i)));
    }
    g.ptr[u + 1] = g.col.size();
  }
  for (ItemIndex i = 0; i < ni; ++i) {
    for (auto u : train.users_of(i)) {
      g.col.push_back(u);
      g.val.push_back(1.0f / std::sqrt(deg_u(u) * deg_i(i)));
    }
    g.ptr[nu + i + 1] = g.col.size();
  }
  return g;
}

// Mean of A^0 x .. A^L x (A symmetric, so the same operator back-propagates the gradient).
void propagate(const Graph& g, const RowMat& x, RowMat& out, int layers, int threads, RowMat& cur,
               RowMat& next) {
  out = x;
  cur = x;
  for (int l = 0; l < layers; ++l) {
    g.multiply(cur, next, threads);
    out += next;
    std::swap(cur, next);
  }
  out /= static_cast<float>(layers + 1);
}

}  // namespace

void LightGcnRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  remember(train);
  const std::size_t nu = train.num_users(), ni = train.num_items();
  // Early-stopping data: the caller's validation interactions; those inside `train` are held out of
  // the graph while searching for the best epoch. Without any, a seeded fraction of each user's
  // items is held out.
  std::vector<std::vector<ItemIndex>> valid(nu);
  bool held_from_train = false;
  if (options.validation && !options.validation->empty()) {
    for (const auto& x : *options.validation) {
      if (x.user >= nu || x.item >= ni) continue;
      valid[x.user].push_back(x.item);
      held_from_train = held_from_train || train.contains(x.user, x.item);
    }
  } else if (valid_fraction_ > 0) {
    Rng pick(options.seed ^ 0x5EEDULL);
    for (UserIndex u = 0; u < nu; ++u) {
      auto items = train.items_of(u);
      if (items.size() < 5) continue;
      for (auto i : items) {
        if (pick.uniform() < valid_fraction_) valid[u].push_back(i);
      }
    }
    held_from_train = true;
  }
  std::size_t num_valid = 0;
  for (auto& v : valid) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    num_valid += v.size();
  }
  data::InteractionMatrix reduced;
  const data::InteractionMatrix* search = &train;
  if (held_from_train) {
    std::vector<data::Interaction> kept;
    kept.reserve(train.nnz());
    for (UserIndex u = 0; u < nu; ++u) {
      std::int64_t t = 0;
      for (auto i : train.sequence(u)) {
        if (!std::binary_search(valid[u].begin(), valid[u].end(), i))
          kept.push_back({u, i, data::kNoRating, t++});
      }
    }
    reduced = data::InteractionMatrix(nu, ni, kept);
    search = &reduced;
  }
  auto result =
      train_embeddings(*search, num_valid ? &valid : nullptr, epochs_, options, "lightgcn");
  best_validation_ = result.best_validation;
  best_epoch_ = result.best_epoch;
  user_emb_ = std::move(result.users);
  item_emb_ = std::move(result.items);
  if (held_from_train && refit_ && best_epoch_ > 0) {
    // The held-out interactions are training data: retrain on all of it for the chosen number of
    // epochs.
    auto full = train_embeddings(train, nullptr, best_epoch_, options, "lightgcn refit");
    user_emb_ = std::move(full.users);
    item_emb_ = std::move(full.items);
  }
}

LightGcnRecommender::Trained LightGcnRecommender::train_embeddings(
    const data::InteractionMatrix& train, const std::vector<std::vector<ItemIndex>>* valid,
    int max_epochs, const FitOptions& options, const std::string& label) const {
  const std::size_t nu = train.num_users(), ni = train.num_items();
  const int threads = detail::thread_count(options);
  Rng rng(options.seed);
  Graph graph = build_graph(train);
  RowMat emb(static_cast<Eigen::Index>(nu + ni), dim_);
  for (Eigen::Index k = 0; k < emb.size(); ++k)
    emb.data()[k] = static_cast<float>(rng.normal(0, init_std_));
  RowMat final_emb, grad_final, grad, cur, next, back;
  RowMat m1 = RowMat::Zero(emb.rows(), emb.cols()), m2 = RowMat::Zero(emb.rows(), emb.cols());
  const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  std::int64_t adam_t = 0;
  Trained out;
  auto set_output = [&](const RowMat& fin) {
    out.users = fin.topRows(static_cast<Eigen::Index>(nu)).transpose();
    out.items = fin.bottomRows(static_cast<Eigen::Index>(ni)).transpose();
  };
  std::vector<std::pair<UserIndex, ItemIndex>> pairs;
  pairs.reserve(train.nnz());
  for (UserIndex u = 0; u < nu; ++u) {
    for (auto i : train.items_of(u)) pairs.emplace_back(u, i);
  }
  if (pairs.empty() || ni < 2 || max_epochs == 0) {
    propagate(graph, emb, final_emb, layers_, threads, cur, next);
    set_output(final_emb);
    return out;
  }
  // Recall@20 of the validation items among the items not in `train`.
  auto validate = [&](const Eigen::MatrixXf& users, const Eigen::MatrixXf& items) {
    double recall_sum = 0;
    std::size_t count = 0;
#pragma omp parallel num_threads(threads) reduction(+ : recall_sum, count)
    {
      std::vector<float> s(ni);
      std::vector<ItemIndex> order(ni);
#pragma omp for schedule(dynamic, 32)
      for (std::size_t u = 0; u < nu; ++u) {
        const auto& v = (*valid)[u];
        if (v.empty()) continue;
        Eigen::Map<Eigen::RowVectorXf> sm(s.data(), static_cast<Eigen::Index>(ni));
        sm.noalias() = users.col(static_cast<Eigen::Index>(u)).transpose() * items;
        for (auto i : train.items_of(static_cast<UserIndex>(u)))
          s[i] = -std::numeric_limits<float>::infinity();
        for (std::size_t i = 0; i < ni; ++i) order[i] = static_cast<ItemIndex>(i);
        const std::size_t k = std::min<std::size_t>(20, ni);
        std::partial_sort(
            order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
            [&](ItemIndex a, ItemIndex b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
        std::size_t hits = 0;
        for (std::size_t r = 0; r < k; ++r)
          hits += std::binary_search(v.begin(), v.end(), order[r]) ? 1 : 0;
        recall_sum += static_cast<double>(hits) / static_cast<double>(v.size());
        ++count;
      }
    }
    return count ? recall_sum / static_cast<double>(count) : 0.0;
  };

  out.best_validation = std::numeric_limits<double>::quiet_NaN();
  int evals_without_gain = 0;
  auto progress =
      detail::maybe_progress(options, label, static_cast<std::uint64_t>(max_epochs), "epoch");
  const std::size_t batch =
      std::min<std::size_t>(static_cast<std::size_t>(batch_size_), pairs.size());
  const float lr = static_cast<float>(lr_), reg = static_cast<float>(reg_);
  std::vector<std::array<std::uint32_t, 3>> triples(batch);
  for (int epoch = 1; epoch <= max_epochs; ++epoch) {
    double loss = 0;
    const std::size_t batches = (pairs.size() + batch - 1) / batch;
    for (std::size_t b = 0; b < batches; ++b) {
      for (auto& t : triples) {
        const auto [u, i] = pairs[rng.below(pairs.size())];
        ItemIndex j;
        do {
          j = static_cast<ItemIndex>(rng.below(ni));
        } while (train.contains(u, j));
        t = {u, static_cast<std::uint32_t>(nu + i), static_cast<std::uint32_t>(nu + j)};
      }
      propagate(graph, emb, final_emb, layers_, threads, cur, next);
      grad_final.setZero(emb.rows(), emb.cols());
      grad.setZero(emb.rows(), emb.cols());
      const float inv_b = 1.0f / static_cast<float>(triples.size());
      for (const auto& [u, i, j] : triples) {
        auto eu = final_emb.row(u);
        auto ei = final_emb.row(i);
        auto ej = final_emb.row(j);
        const float x = eu.dot(ei - ej);
        loss += std::log1p(std::exp(-x));
        const float g = -inv_b / (1.0f + std::exp(x));  // d loss / d x
        grad_final.row(u) += g * (ei - ej);
        grad_final.row(i) += g * eu;
        grad_final.row(j) -= g * eu;
        // L2 on the layer-0 embeddings of the batch, as in the paper.
        grad.row(u) += reg * inv_b * emb.row(u);
        grad.row(i) += reg * inv_b * emb.row(i);
        grad.row(j) += reg * inv_b * emb.row(j);
      }
      propagate(graph, grad_final, back, layers_, threads, cur, next);
      grad += back;
      ++adam_t;
      const float c1 = 1.0f - std::pow(beta1, static_cast<float>(adam_t));
      const float c2 = 1.0f - std::pow(beta2, static_cast<float>(adam_t));
      const float step = lr * std::sqrt(c2) / c1;
      m1 = beta1 * m1 + (1.0f - beta1) * grad;
      m2 = beta2 * m2 + (1.0f - beta2) * grad.cwiseProduct(grad);
      emb.array() -= step * m1.array() / (m2.array().sqrt() + eps);
    }
    if (valid && (epoch % eval_every_ == 0 || epoch == max_epochs)) {
      propagate(graph, emb, final_emb, layers_, threads, cur, next);
      Eigen::MatrixXf users = final_emb.topRows(static_cast<Eigen::Index>(nu)).transpose();
      Eigen::MatrixXf items = final_emb.bottomRows(static_cast<Eigen::Index>(ni)).transpose();
      const double v = validate(users, items);
      if (std::isnan(out.best_validation) || v > out.best_validation) {
        out.best_validation = v;
        out.best_epoch = epoch;
        out.users = std::move(users);
        out.items = std::move(items);
        evals_without_gain = 0;
      } else if (++evals_without_gain >= patience_) {
        if (progress) progress->advance();
        break;
      }
    }
    if (progress) {
      progress->set_postfix(fmt::format(
          "loss {:.4f}{}", loss / static_cast<double>(batches * batch),
          valid ? fmt::format(" best val recall@20 {:.4f} @{}", out.best_validation, out.best_epoch)
                : ""));
      progress->advance();
    }
  }
  if (!valid) {
    propagate(graph, emb, final_emb, layers_, threads, cur, next);
    set_output(final_emb);
    out.best_epoch = max_epochs;
  }
  return out;
}

void LightGcnRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_emb_.col(user).transpose() * item_emb_;
}

void LightGcnRecommender::save_state(std::ostream& out) const {
  detail::write_matrix(out, user_emb_);
  detail::write_matrix(out, item_emb_);
}

void LightGcnRecommender::load_state(std::istream& in) {
  user_emb_ = detail::read_matrix<Eigen::MatrixXf>(in, "lightgcn user embeddings");
  item_emb_ = detail::read_matrix<Eigen::MatrixXf>(in, "lightgcn item embeddings");
  if (user_emb_.cols() != static_cast<Eigen::Index>(num_users_) ||
      item_emb_.cols() != static_cast<Eigen::Index>(num_items_) ||
      user_emb_.rows() != item_emb_.rows()) {
    throw std::runtime_error("model file is corrupt (lightgcn state sizes)");
  }
}

}  // namespace chatrec::recommend
