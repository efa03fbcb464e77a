// Behaviour of every classic recommender on small synthetic data with planted structure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "common/random.h"
#include "recommend/ease.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"
#include "testing/test_env.h"

namespace chatrec::recommend {
namespace {

// Two communities of users, each consuming (in a fixed order) the items of its own block, plus
// noise. A user's held-out item comes from their block, so every sensible model must rank it above
// items of the other block.
struct Planted {
  std::size_t users = 120, items = 40;
  std::vector<data::Interaction> train;
  std::vector<std::pair<UserIndex, ItemIndex>> held;  // (user, item of their block not in train)
  data::InteractionMatrix matrix;
};

Planted make_planted(bool ratings) {
  Planted p;
  Rng rng(7);
  for (UserIndex u = 0; u < p.users; ++u) {
    const ItemIndex base = (u % 2 == 0) ? 0 : 20;
    // Each user sees a contiguous run of their block's items in order (so transitions are
    // meaningful), and one random item of the other block.
    const auto start = static_cast<ItemIndex>(rng.below(10));
    const auto len = 5 + static_cast<ItemIndex>(rng.below(5));
    std::int64_t t = 0;
    for (ItemIndex k = 0; k < len; ++k) {
      float r = ratings ? 4.0f + static_cast<float>(rng.below(2)) : data::kNoRating;
      p.train.push_back({u, base + start + k, r, t++});
    }
    p.held.emplace_back(u, base + start + len);
    const ItemIndex other = (base == 0 ? 20 : 0) + static_cast<ItemIndex>(rng.below(20));
    p.train.push_back(
        {u, other, ratings ? 1.0f + static_cast<float>(rng.below(2)) : data::kNoRating, -1});
  }
  p.matrix = data::InteractionMatrix(p.users, p.items, p.train);
  return p;
}

FitOptions quiet() {
  FitOptions o;
  o.progress = false;
  o.threads = 1;
  return o;
}

// Params that keep the iterative models fast on toy data.
Params small_params(const std::string& name) {
  if (name == "mf" || name == "svdpp") return {{"factors", "8"}, {"epochs", "60"}, {"lr", "0.02"}};
  if (name == "bpr") return {{"factors", "8"}, {"epochs", "80"}};
  if (name == "als") return {{"factors", "8"}, {"iterations", "10"}, {"reg", "1"}, {"alpha", "10"}};
  if (name == "lightgcn") return {{"dim", "16"}, {"epochs", "60"}, {"batch_size", "256"}};
  if (name == "ease") return {{"lambda", "10"}};
  if (name == "blend") return {{"members", "mf,itemknn"}};
  if (name == "sasrec" || name == "bert4rec")
    return {{"dim", "16"},   {"blocks", "1"},     {"inner", "32"},    {"epochs", "40"},
            {"batch", "16"}, {"negatives", "10"}, {"dropout", "0.1"}, {"lr", "0.01"}};
  return {};
}

double planted_auc(const Recommender& model, const Planted& p) {
  std::vector<float> scores(p.items);
  std::size_t wins = 0, comparisons = 0;
  for (auto [u, target] : p.held) {
    model.score(u, scores);
    const ItemIndex other_base = target < 20 ? 20 : 0;
    for (ItemIndex j = other_base; j < other_base + 20; ++j) {
      if (p.matrix.contains(u, j)) continue;
      ++comparisons;
      wins += scores[target] > scores[j] ? 1 : 0;
    }
  }
  return static_cast<double>(wins) / static_cast<double>(comparisons);
}

class EveryModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryModel, RanksPlantedItemsAboveTheOtherBlock) {
  const auto name = GetParam();
  const bool rating = is_rating_model(name);
  auto p = make_planted(rating);
  auto model = make_recommender(name, small_params(name));
  model->fit(p.matrix, quiet());
  const double auc = planted_auc(*model, p);
  if (name == "popularity") {
    EXPECT_GT(auc, 0.3);  // no personalisation; only checks it runs and scores the catalogue
  } else {
    // The target sits just past the user's run of items, so low-rank models score it lower than the
    // run itself; 0.75 still separates a working model from chance (0.5).
    EXPECT_GT(auc, 0.75) << name;
  }
}

TEST_P(EveryModel, SaveLoadGivesIdenticalScoresAndRecommendations) {
  const auto name = GetParam();
  auto p = make_planted(is_rating_model(name));
  auto model = make_recommender(name, small_params(name));
  model->fit(p.matrix, quiet());
  testing::TempDir dir;
  const auto path = (dir.path() / "model.bin").string();
  model->save(path);
  auto loaded = Recommender::load(path);
  ASSERT_EQ(loaded->name(), name);
  EXPECT_EQ(loaded->params(), model->params());
  std::vector<float> a(p.items), b(p.items);
  for (UserIndex u = 0; u < p.users; u += 7) {
    model->score(u, a);
    loaded->score(u, b);
    for (std::size_t i = 0; i < p.items; ++i)
      ASSERT_FLOAT_EQ(a[i], b[i]) << name << " user " << u << " item " << i;
    RankOptions o;
    o.k = 5;
    auto ra = model->recommend(u, o);
    auto rb = loaded->recommend(u, o);
    ASSERT_EQ(ra.size(), rb.size());
    for (std::size_t k = 0; k < ra.size(); ++k) EXPECT_EQ(ra[k].item, rb[k].item);
    if (model->predicts_ratings()) {
      EXPECT_FLOAT_EQ(model->predict(u, 3), loaded->predict(u, 3));
    }
  }
  if (model->supports_fold_in()) {
    std::vector<ItemIndex> history = {1, 2, 3};
    model->score_items(history, a);
    loaded->score_items(history, b);
    for (std::size_t i = 0; i < p.items; ++i) ASSERT_FLOAT_EQ(a[i], b[i]);
  }
}

TEST_P(EveryModel, TruncatedFileIsAClearError) {
  const auto name = GetParam();
  auto p = make_planted(is_rating_model(name));
  auto model = make_recommender(name, small_params(name));
  model->fit(p.matrix, quiet());
  testing::TempDir dir;
  const auto path = (dir.path() / "model.bin").string();
  model->save(path);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (double frac : {0.3, 0.9}) {
    const auto cut = (dir.path() / "cut.bin").string();
    std::ofstream(cut, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size() * frac));
    try {
      Recommender::load(cut);
      FAIL() << "loading a truncated file must throw";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Recommenders, EveryModel, ::testing::ValuesIn(recommender_names()),
                         [](const auto& info) { return info.param; });

TEST(Registry, NamesAndKinds) {
  auto names = recommender_names();
  for (const char* n : {"popularity", "itemknn", "userknn", "mf", "svdpp", "blend", "bpr", "als",
                        "ease", "lightgcn", "transition", "sknn"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  EXPECT_TRUE(is_rating_model("svdpp"));
  EXPECT_TRUE(is_rating_model("mf"));
  EXPECT_FALSE(is_rating_model("ease"));
  EXPECT_TRUE(is_sequential_model("transition"));
  EXPECT_FALSE(is_sequential_model("ease"));
  EXPECT_THROW(make_recommender("nope"), std::invalid_argument);
  EXPECT_THROW(make_recommender("ease", {{"lamda", "3"}}), std::invalid_argument);
  EXPECT_THROW(make_recommender("ease", {{"lambda", "abc"}}), std::invalid_argument);
  EXPECT_THROW(make_recommender("mf", {{"factors", "-1"}}), std::invalid_argument);
}

TEST(ModelFile, WrongMagicVersionAndNameAreErrors) {
  auto p = make_planted(false);
  auto model = make_recommender("popularity");
  model->fit(p.matrix, quiet());
  testing::TempDir dir;
  const auto path = (dir.path() / "m.bin").string();
  model->save(path);
  EXPECT_NO_THROW(Recommender::load(path, "popularity"));
  try {
    Recommender::load(path, "ease");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 'ease'"), std::string::npos) << e.what();
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& b) {
    std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  write(bad_magic);
  try {
    Recommender::load(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a chatrec model file"), std::string::npos)
        << e.what();
  }
  auto bad_version = bytes;
  bad_version[8] = 99;
  write(bad_version);
  try {
    Recommender::load(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("format version 99"), std::string::npos) << e.what();
  }
  auto bad_name = bytes;
  bad_name[16] = 'Q';  // first letter of "popularity" (after magic, version, name length)
  write(bad_name);
  try {
    Recommender::load(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Recommender::load((dir.path() / "missing.bin").string()), std::runtime_error);
}

TEST(Ranking, ExcludeSeenCandidatesFilterAndExclude) {
  auto p = make_planted(false);
  auto model = make_recommender("popularity");
  model->fit(p.matrix, quiet());
  const UserIndex u = 0;
  auto seen = p.matrix.items_of(u);
  RankOptions all;
  all.k = p.items;
  auto ranked = model->recommend(u, all);
  EXPECT_EQ(ranked.size(), p.items - seen.size());
  for (const auto& s : ranked) EXPECT_FALSE(p.matrix.contains(u, s.item));
  for (std::size_t k = 1; k < ranked.size(); ++k) EXPECT_GE(ranked[k - 1].score, ranked[k].score);

  RankOptions keep_seen;
  keep_seen.k = p.items;
  keep_seen.exclude_seen = false;
  EXPECT_EQ(model->recommend(u, keep_seen).size(), p.items);

  std::vector<ItemIndex> candidates = {seen[0], 30, 31, 31, 5, 39};
  RankOptions cand;
  cand.candidates = candidates;
  cand.k = 10;
  auto rc = model->recommend(u, cand);
  std::set<ItemIndex> got;
  for (const auto& s : rc) got.insert(s.item);
  std::set<ItemIndex> expected;
  for (auto i : candidates) {
    if (!p.matrix.contains(u, i)) expected.insert(i);
  }
  EXPECT_EQ(got, expected);  // seen candidate dropped, duplicate collapsed
  EXPECT_EQ(rc.size(), expected.size());

  RankOptions filtered;
  filtered.k = p.items;
  filtered.filter = [](ItemIndex i) { return i % 2 == 0; };
  std::vector<ItemIndex> excluded = {4, 6};
  filtered.exclude = excluded;
  for (const auto& s : model->recommend(u, filtered)) {
    EXPECT_EQ(s.item % 2, 0u);
    EXPECT_NE(s.item, 4u);
    EXPECT_NE(s.item, 6u);
  }
  RankOptions top3;
  top3.k = 3;
  auto r3 = model->recommend(u, top3);
  ASSERT_EQ(r3.size(), 3u);
  EXPECT_EQ(r3[0].item, ranked[0].item);
  EXPECT_THROW(model->recommend(static_cast<UserIndex>(p.users), top3), std::out_of_range);
}

TEST(FoldIn, HistoryScoringMatchesTheUserAndExcludesHistory) {
  auto p = make_planted(false);
  for (const char* name : {"itemknn", "ease", "transition", "popularity"}) {
    auto model = make_recommender(name, small_params(name));
    ASSERT_TRUE(model->supports_fold_in()) << name;
    model->fit(p.matrix, quiet());
    // A new user who consumed items 0..4 in order: the next block-0 items must come first.
    std::vector<ItemIndex> history = {0, 1, 2, 3, 4};
    RankOptions o;
    o.k = 5;
    auto recs = model->recommend_for_history(history, o);
    ASSERT_EQ(recs.size(), 5u);
    std::size_t in_block = 0;
    for (const auto& r : recs) {
      EXPECT_TRUE(std::find(history.begin(), history.end(), r.item) == history.end()) << name;
      in_block += r.item < 20 ? 1 : 0;
    }
    if (std::string(name) != "popularity") {
      EXPECT_LT(recs[0].item, 20u) << name;
      // EASE's weights can turn negative for items already explained by their neighbours.
      EXPECT_GE(in_block, 3u) << name;
    }
  }
  auto mf = make_recommender("mf", small_params("mf"));
  EXPECT_FALSE(mf->supports_fold_in());
  auto pr = make_planted(true);
  mf->fit(pr.matrix, quiet());
  std::vector<ItemIndex> h = {1};
  EXPECT_THROW(mf->recommend_for_history(h, {}), std::logic_error);
}

TEST(Bpr, ParallelEpochsAreReproducibleForAThreadCountAndAsGood) {
  auto p = make_planted(false);
  auto fit = [&](int threads, std::uint64_t seed) {
    auto model = make_recommender("bpr", small_params("bpr"));
    FitOptions o = quiet();
    o.threads = threads;
    o.seed = seed;
    model->fit(p.matrix, o);
    std::vector<float> all;
    std::vector<float> s(p.items);
    for (UserIndex u = 0; u < p.users; ++u) {
      model->score(u, s);
      all.insert(all.end(), s.begin(), s.end());
    }
    return std::make_pair(std::move(model), all);
  };
  const auto [one, one_scores] = fit(1, 5);
  const auto [two, two_scores] = fit(2, 5);
  const auto [again, again_scores] = fit(2, 5);
  const auto [other_seed, other_scores] = fit(2, 6);
  const auto [three, three_scores] = fit(3, 5);
  EXPECT_EQ(two_scores, again_scores);  // bit for bit: no races between the threads
  EXPECT_NE(two_scores, one_scores);    // the blocked schedule is a different run
  EXPECT_NE(two_scores, other_scores);
  EXPECT_NE(two_scores, three_scores);
  const double auc1 = planted_auc(*one, p), auc2 = planted_auc(*two, p),
               auc3 = planted_auc(*three, p);
  EXPECT_GT(auc2, 0.75);
  EXPECT_GT(auc3, 0.75);
  EXPECT_NEAR(auc2, auc1, 0.05);
  EXPECT_NEAR(auc3, auc1, 0.05);
}

TEST(Transition, FollowsTheOrderOfTheHistory) {
  auto p = make_planted(false);
  auto model = make_recommender("transition", {{"knn_weight", "0"}, {"pop_weight", "0"}});
  model->fit(p.matrix, quiet());
  std::vector<float> s(p.items);
  std::vector<ItemIndex> history = {22, 23, 24};
  model->score_items(history, s);
  // 25 follows 24 in every sequence that contains both; 21 only precedes.
  EXPECT_GT(s[25], s[21]);
  EXPECT_EQ(std::max_element(s.begin(), s.end()) - s.begin(), 25);
}

// Rating models recover a noiseless low-rank matrix from 70% of its entries.
TEST(RatingModels, RecoverLowRankRatings) {
  const std::size_t nu = 150, ni = 80;
  Rng rng(11);
  std::vector<double> a(nu), b(ni), c(nu), d(ni);
  for (auto& x : a) x = rng.normal();
  for (auto& x : b) x = rng.normal();
  for (auto& x : c) x = rng.normal(0, 0.3);
  for (auto& x : d) x = rng.normal(0, 0.3);
  std::vector<data::Interaction> train, test;
  for (UserIndex u = 0; u < nu; ++u) {
    for (ItemIndex i = 0; i < ni; ++i) {
      const float r =
          static_cast<float>(std::clamp(3.0 + 0.8 * a[u] * b[i] + c[u] + d[i], 1.0, 5.0));
      (rng.uniform() < 0.7 ? train : test).push_back({u, i, r, 0});
    }
  }
  data::InteractionMatrix m(nu, ni, train);
  double mean_sq = 0;
  for (const auto& x : test) mean_sq += std::pow(x.rating - m.global_mean(), 2);
  const double baseline_rmse = std::sqrt(mean_sq / static_cast<double>(test.size()));
  for (const char* name : {"mf", "svdpp", "itemknn", "userknn", "blend"}) {
    Params params = {{"factors", "4"}, {"epochs", "80"}, {"lr", "0.01"}, {"reg", "0.02"}};
    auto model = make_recommender(
        name, std::string(name) == "mf" || std::string(name) == "svdpp" ? params : Params{});
    model->fit(m, quiet());
    double se = 0;
    for (const auto& x : test)
      se += std::pow(std::clamp(model->predict(x.user, x.item), 1.0f, 5.0f) - x.rating, 2);
    const double rmse = std::sqrt(se / static_cast<double>(test.size()));
    // KNNBaseline keeps only positively correlated neighbours, so it recovers less of a rank-one
    // signal.
    const bool knn = std::string(name) == "itemknn" || std::string(name) == "userknn";
    EXPECT_LT(rmse, (knn ? 0.55 : 0.35) * baseline_rmse)
        << name << " rmse " << rmse << " vs global-mean " << baseline_rmse;
  }
}

TEST(Ease, RefusesCataloguesAboveMaxItems) {
  auto p = make_planted(false);
  auto model = make_recommender("ease", {{"max_items", "10"}});
  EXPECT_THROW(model->fit(p.matrix, quiet()), std::invalid_argument);
}

// Without max_items the limit is the machine: Amazon Games' 16,859 items need 4.2 GiB (two n x n
// doubles) and fit in 8 GiB available, not in 4; the message names the need and what is there.
TEST(Ease, FitsWhatTheMemoryAllows) {
  constexpr std::uint64_t gib = 1ull << 30;
  EXPECT_NEAR(static_cast<double>(EaseRecommender::bytes_needed(16859)) / gib, 4.235, 0.01);
  EXPECT_FALSE(EaseRecommender::memory_problem(16859, 0, 8 * gib));
  EXPECT_FALSE(EaseRecommender::memory_problem(16859, 0, std::nullopt));
  const auto tight = EaseRecommender::memory_problem(16859, 0, 4 * gib);
  ASSERT_TRUE(tight);
  EXPECT_NE(tight->find("16859 items need 4.2 GiB"), std::string::npos) << *tight;
  EXPECT_NE(tight->find("4.0 GiB available"), std::string::npos) << *tight;
  const auto capped = EaseRecommender::memory_problem(16859, 12000, 64 * gib);
  ASSERT_TRUE(capped);
  EXPECT_NE(capped->find("max_items=12000"), std::string::npos) << *capped;
  // The default model takes a catalogue of any size that fits.
  auto p = make_planted(false);
  auto model = make_recommender("ease");
  EXPECT_NO_THROW(model->fit(p.matrix, quiet()));
  EXPECT_EQ(model->params().at("max_items"), "0");
}

}  // namespace
}  // namespace chatrec::recommend
