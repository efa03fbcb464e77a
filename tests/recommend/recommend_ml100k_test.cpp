// Sanity floors on the real datasets (the full protocols are run by `chatrec eval`). Each case is
// kept to a few seconds; the floors sit a little below the measured values in docs/recommenders.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "common/random.h"
#include "data/loaders.h"
#include "data/splits.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"
#include "testing/test_env.h"

namespace chatrec::recommend {
namespace {

FitOptions quiet() {
  FitOptions o;
  o.progress = false;
  return o;
}

// NDCG@5 / P@5 over the evaluable users of the ml100k-topk split, ranking every item not in
// training.
std::pair<double, double> topk_metrics(const Recommender& model, const data::Split& split,
                                       std::size_t num_users) {
  std::vector<std::set<ItemIndex>> gt(num_users);
  for (const auto& x : split.test) gt[x.user].insert(x.item);
  double ndcg = 0, precision = 0;
  std::size_t n = 0;
  RankOptions o;
  o.k = 5;
  for (auto u : split.eval_users) {
    auto recs = model.recommend(u, o);
    double dcg = 0, idcg = 0;
    int hits = 0;
    for (std::size_t r = 0; r < recs.size(); ++r) {
      if (gt[u].count(recs[r].item)) {
        ++hits;
        dcg += 1.0 / std::log2(static_cast<double>(r) + 2);
      }
    }
    for (std::size_t r = 0; r < std::min<std::size_t>(5, gt[u].size()); ++r)
      idcg += 1.0 / std::log2(static_cast<double>(r) + 2);
    ndcg += dcg / idcg;
    precision += hits / 5.0;
    ++n;
  }
  return {ndcg / static_cast<double>(n), precision / static_cast<double>(n)};
}

class Ml100k : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::ml100k_dir() / "u.data"))
      GTEST_SKIP() << "ML-100K not found";
  }
};

TEST_F(Ml100k, EaseBeatsItemKnnBeatsPopularityOnTopk) {
  auto ds = data::load_movielens_100k(testing::ml100k_dir());
  auto split = data::split_topk_holdout(ds, 2023);
  data::InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  std::map<std::string, std::pair<double, double>> m;
  for (const char* name : {"ease", "itemknn", "popularity"}) {
    auto model = make_recommender(name);
    model->fit(train, quiet());
    m[name] = topk_metrics(*model, split, ds.num_users());
  }
  EXPECT_GT(m["ease"].first, 0.40);
  EXPECT_GT(m["ease"].second, 0.35);
  EXPECT_GT(m["ease"].first, m["itemknn"].first);
  EXPECT_GT(m["itemknn"].first, m["popularity"].first + 0.1);
}

TEST_F(Ml100k, RatingModelsOnFoldOne) {
  auto ds = data::load_movielens_100k(testing::ml100k_dir());
  auto split = data::split_official_fold(ds, testing::ml100k_dir().string(), 1);
  data::InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  for (auto [name, bound] : std::vector<std::pair<std::string, double>>{
           {"mf", 0.945}, {"svdpp", 0.94}, {"itemknn", 0.94}}) {
    auto model = make_recommender(name);
    model->fit(train, quiet());
    double se = 0;
    for (const auto& x : split.test)
      se += std::pow(std::clamp(model->predict(x.user, x.item), 1.0f, 5.0f) - x.rating, 2);
    const double rmse = std::sqrt(se / static_cast<double>(split.test.size()));
    EXPECT_LT(rmse, bound) << name;
  }
}

TEST(Games, TransitionBeatsPopularityOnValidationTargets) {
  if (!std::filesystem::exists(testing::games_dir() / "games.test.inter"))
    GTEST_SKIP() << "Amazon Games not found";
  auto ds = data::load_amazon_games(testing::games_dir());
  auto split = data::split_leave_last_out(ds);
  // Validation protocol: train without the validation targets, rank each against 9 sampled
  // negatives.
  std::vector<std::int64_t> last(ds.num_users(), -1);
  for (const auto& x : split.train) last[x.user] = std::max(last[x.user], x.timestamp);
  std::vector<data::Interaction> train;
  for (const auto& x : split.train) {
    if (x.timestamp != last[x.user]) train.push_back(x);
  }
  data::InteractionMatrix m(ds.num_users(), ds.num_items(), train);
  data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  std::map<std::string, double> hr1;
  for (const char* name : {"transition", "popularity"}) {
    auto model = make_recommender(name);
    model->fit(m, quiet());
    std::vector<float> s(ds.num_items());
    std::size_t hits = 0, n = 0;
    for (std::size_t t = 0; t < split.valid.size();
         t += 5) {  // every 5th user keeps the test quick
      const auto& x = split.valid[t];
      Rng rng(t);
      std::vector<ItemIndex> cand{x.item};
      while (cand.size() < 10) {
        auto j = static_cast<ItemIndex>(rng.below(ds.num_items()));
        if (!all.contains(x.user, j) && std::find(cand.begin(), cand.end(), j) == cand.end())
          cand.push_back(j);
      }
      model->score(x.user, s);
      bool best = true;
      for (std::size_t c = 1; c < cand.size(); ++c) best = best && s[cand[c]] < s[x.item];
      hits += best ? 1 : 0;
      ++n;
    }
    hr1[name] = static_cast<double>(hits) / static_cast<double>(n);
  }
  EXPECT_GT(hr1["transition"], 0.55);
  EXPECT_GT(hr1["transition"], hr1["popularity"] + 0.1);
}

}  // namespace
}  // namespace chatrec::recommend
