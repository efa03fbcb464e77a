// SASRec and BERT4Rec: the transformer's gradient against finite differences (causal and
// bidirectional), learning a sequential rule, reproducibility, early stopping on held-out last
// items.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "recommend/registry.h"
#include "recommend/sequence_transformer.h"
#include "recommend/transformer_net.h"

namespace chatrec::recommend {
namespace {

class TransformerGradient : public ::testing::TestWithParam<bool> {};

TEST_P(TransformerGradient, MatchesFiniteDifferencesWithDropout) {
  const bool bidirectional = GetParam();
  TransformerShape shape;
  shape.items = 7, shape.dim = 4, shape.blocks = 2, shape.heads = 2, shape.inner = 6;
  shape.max_len = 5, shape.dropout = 0.2;
  shape.bidirectional = bidirectional;
  shape.extra_tokens = bidirectional ? 1 : 0;
  TransformerNet<double> net(shape);
  net.init(3);
  // Non-trivial norms and biases, so their gradients are exercised too.
  std::mt19937_64 g(9);
  std::normal_distribution<double> n(0.0, 0.3);
  net.weights().visit([&](auto& m) {
    for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] += n(g);
  });
  TransformerExample ex;
  ex.inputs = {1, 4, 2, 4};
  ex.targets = {4, 2, 4, 6};
  if (bidirectional) {  // BERT4Rec: masked positions (the mask token is 7) carry the targets
    ex.inputs = {1, 7, 2, 7};
    ex.targets = {kNoTarget, 4, kNoTarget, 6};
  }
  ex.negatives = {0, 3, 5};
  ex.dropout_seed = 11;  // the same masks in every forward pass
  auto grad = net.weights().zeros_like();
  const double loss = net.loss_and_grad(ex, true, 1.0, grad);
  EXPECT_NEAR(loss, net.loss(ex, true), 1e-12);
  EXPECT_GT(loss, 0.0);
  std::vector<std::pair<double*, Eigen::Index>> analytic;
  grad.visit([&](auto& m) { analytic.emplace_back(m.data(), m.size()); });
  std::size_t tensor = 0, checked = 0;
  net.weights().visit([&](auto& m) {
    const double* a = analytic[tensor].first;
    for (Eigen::Index k = 0; k < m.size(); ++k) {
      const double keep = m.data()[k], h = 1e-6;
      m.data()[k] = keep + h;
      const double up = net.loss(ex, true);
      m.data()[k] = keep - h;
      const double down = net.loss(ex, true);
      m.data()[k] = keep;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(a[k], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << "tensor " << tensor << " entry " << k;
      ++checked;
    }
    ++tensor;
  });
  EXPECT_EQ(checked, net.weights().size());
  // Without dropout the loss does not depend on the seed.
  TransformerExample other = ex;
  other.dropout_seed = 12;
  EXPECT_NE(net.loss(ex, true), net.loss(other, true));
  EXPECT_EQ(net.loss(ex, false), net.loss(other, false));
  // Causal: the first output does not depend on later inputs; bidirectional: it does.
  TransformerExample later = ex;
  later.inputs[3] = 3;
  TransformerExample plain = ex, changed = later;
  plain.targets.clear(), changed.targets.clear();
  // The first position's output before and after changing the last input.
  const auto first_output = [&](const TransformerExample& e) {
    auto copy = e;
    copy.targets.assign(copy.inputs.size(), kNoTarget);
    copy.targets[0] = 0;
    copy.negatives = {1};
    return net.loss(copy, false);
  };
  if (bidirectional)
    EXPECT_NE(first_output(plain), first_output(changed));
  else
    EXPECT_EQ(first_output(plain), first_output(changed));
}

INSTANTIATE_TEST_SUITE_P(Attention, TransformerGradient, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Bidirectional" : "Causal"; });

// Users walk a ring of items in steps of +1 (even users) or +3 (odd users), starting anywhere: the
// next item depends on the last two, which only an order-aware model sees.
data::InteractionMatrix ring_data(std::size_t users, std::size_t items, std::size_t len) {
  std::vector<data::Interaction> x;
  for (UserIndex u = 0; u < users; ++u) {
    const std::size_t step = u % 2 == 0 ? 1 : 3;
    std::size_t item = (u * 7) % items;
    for (std::size_t t = 0; t < len; ++t) {
      x.push_back({u, static_cast<ItemIndex>(item), data::kNoRating, static_cast<std::int64_t>(t)});
      item = (item + step) % items;
    }
  }
  return data::InteractionMatrix(users, items, x);
}

Params small() {
  return {{"dim", "16"},      {"blocks", "1"},  {"inner", "32"}, {"epochs", "30"},  {"batch", "16"},
          {"negatives", "8"}, {"dropout", "0"}, {"lr", "0.01"},  {"patience", "30"}};
}

class SequentialTransformer : public ::testing::TestWithParam<std::string> {};

TEST_P(SequentialTransformer, LearnsAnOrderDependentRuleAndStopsOnValidation) {
  const std::size_t users = 200, items = 30, len = 8;
  auto train = ring_data(users, items, len);
  // Each user's last item is the validation target.
  std::vector<data::Interaction> valid;
  for (UserIndex u = 0; u < users; ++u) valid.push_back({u, train.sequence(u).back(), 0, 0});
  Params p = small();
  p["dim"] = "32", p["inner"] = "64", p["epochs"] = "80", p["patience"] = "80", p["lr"] = "0.005";
  if (GetParam() == "bert4rec") p["epochs"] = "200", p["patience"] = "200", p["last_prob"] = "0.5";
  // Another thread count sums gradients in another order: a differently rounded run must learn
  // the rule too.
  for (int threads : {1, 2}) {
    auto made = make_recommender(GetParam(), p);
    auto& model = dynamic_cast<SequenceTransformerRecommender&>(*made);
    FitOptions o;
    o.progress = false;
    o.threads = threads;
    o.validation = &valid;
    model.fit(train, o);
    EXPECT_GT(model.best_epoch(), 0);
    EXPECT_GT(model.best_validation(), 0.8);
    // Next after (..., 10, 11) is 12; after (..., 10, 13) it is 16: the same last-but-one item
    // leads to different next items. Histories as long as the training sequences (BERT4Rec trains
    // on whole sequences only). The order of the two rules' answers is what the model must get
    // right; which unseen item wins outright varies with float rounding (optimisation level,
    // thread count).
    std::vector<ItemIndex> a = {5, 6, 7, 8, 9, 10, 11}, b = {25, 28, 1, 4, 7, 10, 13};
    std::vector<float> sa(items), sb(items);
    model.score_items(a, sa);
    model.score_items(b, sb);
    EXPECT_GT(sa[12], sa[16]) << threads << " threads";
    EXPECT_GT(sb[16], sb[14]) << threads << " threads";
    RankOptions top3;
    top3.k = 3;
    auto in_top3 = [&](const std::vector<ItemIndex>& h, ItemIndex want) {
      for (const auto& r : model.recommend_for_history(h, top3))
        if (r.item == want) return true;
      return false;
    };
    EXPECT_TRUE(in_top3(a, 12)) << threads << " threads";
    EXPECT_TRUE(in_top3(b, 16)) << threads << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SequentialTransformer, ::testing::Values("sasrec", "bert4rec"),
                         [](const auto& info) { return info.param; });

TEST(SasRec, ReproducibleForASeedAndThreadCount) {
  auto train = ring_data(60, 20, 6);
  auto fit = [&](int threads, std::uint64_t seed) {
    Params p = small();
    p["epochs"] = "3";
    p["dropout"] = "0.2";
    SasRecRecommender model(p);
    FitOptions o;
    o.progress = false;
    o.threads = threads;
    o.seed = seed;
    model.fit(train, o);
    std::vector<float> all, s(20);
    for (UserIndex u = 0; u < 60; u += 5) {
      model.score(u, s);
      all.insert(all.end(), s.begin(), s.end());
    }
    return all;
  };
  EXPECT_EQ(fit(2, 1), fit(2, 1));
  EXPECT_NE(fit(2, 1), fit(2, 2));
  EXPECT_EQ(fit(1, 1), fit(1, 1));
}

TEST(SasRec, RejectsAWidthHeadsDoNotDivide) {
  EXPECT_THROW(SasRecRecommender({{"dim", "10"}, {"heads", "3"}}), std::invalid_argument);
  EXPECT_TRUE(is_sequential_model("sasrec"));
}

}  // namespace
}  // namespace chatrec::recommend
