#include "protocols/protocols.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "eval/metrics.h"
#include "fake_models.h"
#include "testing/test_env.h"

namespace chatrec::protocols {
namespace {

using namespace eval;

using data::Dataset;
using data::Interaction;
using data::InteractionMatrix;
using data::ItemIndex;
using data::UserIndex;
using testing::FakeRecommender;

double metric(const ModelResult& r, const std::string& name) {
  for (const auto& [n, v] : r.metrics) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no metric " << name;
  return NAN;
}

Dataset make_dataset(std::size_t users, std::size_t items) {
  Dataset ds("tiny");
  for (std::size_t u = 0; u < users; ++u) ds.intern_user(std::to_string(u + 1));
  for (std::size_t i = 0; i < items; ++i) {
    data::Item item;
    item.id = std::to_string(i + 1);
    item.title = "item " + item.id;
    ds.add_item(item);
  }
  return ds;
}

ProtocolOptions quiet() {
  ProtocolOptions o;
  o.progress = false;
  o.threads = 2;
  return o;
}

// Every user has exactly one liked item, so the held-out item does not depend on the seed.
Dataset topk_dataset() {
  Dataset ds = make_dataset(4, 10);
  auto add = [&](UserIndex u, ItemIndex i, float r) { ds.add_interaction({u, i, r, 0}); };
  add(0, 0, 1), add(0, 1, 2), add(0, 2, 5);  // GT {2}
  add(1, 0, 3), add(1, 9, 4);                // GT {9}
  add(2, 3, 3), add(2, 4, 4);                // GT {4}
  add(3, 0, 2);                              // no liked item: not evaluated
  return ds;
}

// Prefers low item indices.
RecommenderFactory low_index_first(std::vector<std::size_t>* fit_nnz = nullptr) {
  return [fit_nnz](const std::string& name) {
    auto m = std::make_unique<FakeRecommender>(
        name, [](UserIndex, ItemIndex i) { return -static_cast<float>(i); });
    if (fit_nnz)
      m->on_fit = [fit_nnz](const InteractionMatrix& t, const recommend::FitOptions&) {
        fit_nnz->push_back(t.nnz());
      };
    return m;
  };
}

TEST(TopkProtocol, HandComputedMetricsOnTinyData) {
  std::vector<std::size_t> nnz;
  auto report = run_topk(topk_dataset(), {"low"}, low_index_first(&nnz), quiet());
  ASSERT_EQ(report.results.size(), 1u);
  const auto& r = report.results[0];
  EXPECT_EQ(r.users, 3u);
  EXPECT_EQ(report.users, 3u);
  ASSERT_EQ(nnz.size(), 1u);
  EXPECT_EQ(nnz[0], 5u);  // 8 interactions minus the 3 held out
  // user 0: top5 = 2,3,4,5,6 (hit at 1); user 1: 1..5 (miss, 9 in top20); user 2: 0,1,2,4,5 (hit at
  // 4).
  EXPECT_NEAR(metric(r, "P@5"), (0.2 + 0 + 0.2) / 3, 1e-12);
  EXPECT_NEAR(metric(r, "R@5"), 2.0 / 3, 1e-12);
  EXPECT_NEAR(metric(r, "NDCG@5"), (1 + 1 / std::log2(5.0)) / 3, 1e-12);
  EXPECT_NEAR(metric(r, "HR@5"), 2.0 / 3, 1e-12);
  EXPECT_NEAR(metric(r, "CandRecall@20"), 1.0, 1e-12);
  EXPECT_EQ(report.protocol, "ml100k-topk");
  EXPECT_FALSE(report.dataset_checksum.empty());
}

// What the reranker saw, kept by the test because the runner destroys the stage when done.
struct RerankerProbe {
  std::size_t prepared_nnz = 0, max_candidates = 0;
};

class ReverseReranker : public TopkReranker {
 public:
  explicit ReverseReranker(RerankerProbe* probe) : probe_(probe) {}
  std::string name() const override { return "reverse"; }
  void prepare(const data::Dataset&, const InteractionMatrix& train,
               const recommend::Recommender&) override {
    probe_->prepared_nnz = train.nnz();
  }
  std::vector<ItemIndex> rerank(UserIndex, const std::vector<recommend::ScoredItem>& candidates,
                                std::size_t k) override {
    ++calls;
    probe_->max_candidates = std::max(probe_->max_candidates, candidates.size());
    std::vector<ItemIndex> out;
    for (auto it = candidates.rbegin(); it != candidates.rend() && out.size() < k; ++it)
      out.push_back(it->item);
    return out;
  }
  StageStats stats() const override {
    StageStats s;
    s.prompts = calls;
    s.failures["unparseable"] = 1;
    s.resolutions["fell back to base order"] = 1;
    return s;
  }
  std::int64_t calls = 0;

 private:
  RerankerProbe* probe_;
};

TEST(TopkProtocol, RerankerIsMeasuredOnTheSameUsersAsItsBase) {
  RerankerProbe probe;
  StageFactory<TopkReranker> factory = [&](const Dataset&, const InteractionMatrix&,
                                           const recommend::Recommender& base) {
    EXPECT_EQ(base.name(), "low");
    return std::make_unique<ReverseReranker>(&probe);
  };
  auto o = quiet();
  o.stage_name = "chatrec";
  auto report = run_topk(topk_dataset(), {"low"}, low_index_first(), o, factory);
  ASSERT_EQ(report.results.size(), 2u);
  const auto& base = report.results[0];
  const auto& llm = report.results[1];
  EXPECT_EQ(base.stage, "classic");
  EXPECT_EQ(llm.stage, "chatrec");
  EXPECT_EQ(llm.model, "low+reverse");
  EXPECT_EQ(base.users, llm.users);
  ASSERT_TRUE(llm.stage_stats.has_value());
  EXPECT_EQ(llm.stage_stats->prompts, 3);
  EXPECT_EQ(llm.stage_stats->failures.at("unparseable"), 1);
  EXPECT_EQ(probe.prepared_nnz, 5u);
  EXPECT_EQ(probe.max_candidates, 9u);  // user 1 and 2 have 9 unseen items (< 20)
  // Reversed candidates: only user 1 gets its GT (item 9) at rank 1.
  EXPECT_NEAR(metric(llm, "P@5"), 0.2 / 3, 1e-12);
  EXPECT_NEAR(metric(llm, "NDCG@5"), 1.0 / 3, 1e-12);
  EXPECT_NEAR(metric(llm, "HR@5"), 1.0 / 3, 1e-12);
  EXPECT_NEAR(metric(llm, "CandRecall@20"), 1.0, 1e-12);
}

TEST(TopkProtocol, SampledUsersAreSeededAndShared) {
  auto o = quiet();
  o.users = 2;
  auto a = run_topk(topk_dataset(), {"low"}, low_index_first(), o);
  auto b = run_topk(topk_dataset(), {"low"}, low_index_first(), o);
  EXPECT_EQ(a.users, 2u);
  EXPECT_EQ(a.results[0].metrics, b.results[0].metrics);
}

TEST(TopkProtocol, RankUnseenExcludesTrainingItemsAndBreaksTiesByIndex) {
  Dataset ds = make_dataset(1, 6);
  std::vector<Interaction> train = {{0, 1, 5, 0}, {0, 4, 3, 0}};
  InteractionMatrix m(1, 6, train);
  FakeRecommender flat(
      "flat", [](UserIndex, ItemIndex i) { return i == 5 ? 1.0f : (i == 3 ? NAN : 0.0f); });
  flat.fit(m, {});
  std::vector<float> scratch;
  auto top = rank_unseen(flat, 0, m, 10, scratch);
  std::vector<ItemIndex> items;
  for (const auto& s : top) items.push_back(s.item);
  EXPECT_EQ(items, (std::vector<ItemIndex>{5, 0, 2, 3}));
}

TEST(Validation, CarvedFromTrainingOnlyAndSeeded) {
  std::vector<Interaction> train;
  for (UserIndex u = 0; u < 3; ++u) {
    for (ItemIndex i = 0; i < 25; ++i) train.push_back({u, i, i % 2 ? 5.0f : 2.0f, 0});
  }
  auto liked = [](const Interaction& x) { return x.rating >= 4; };
  auto v1 = carve_validation(train, 7, 0.1, liked);
  auto v2 = carve_validation(train, 7, 0.1, liked);
  auto v3 = carve_validation(train, 8, 0.1, liked);
  EXPECT_EQ(v1.size(), 3u);  // floor(10% of 12 liked) per user
  for (const auto& x : v1) EXPECT_GE(x.rating, 4.0f);
  auto key = [](const std::vector<Interaction>& v) {
    std::vector<std::pair<UserIndex, ItemIndex>> k;
    for (const auto& x : v) k.emplace_back(x.user, x.item);
    return k;
  };
  EXPECT_EQ(key(v1), key(v2));
  EXPECT_NE(key(v1), key(v3));
  EXPECT_TRUE(carve_validation(train, 7, 0.0, liked).empty());
}

// Four users whose ratings are each constant, so the held-out value is known whatever the seed.
Dataset rating_dataset() {
  Dataset ds = make_dataset(4, 5);
  const float value[4] = {4, 2, 1, 5};
  for (UserIndex u = 0; u < 4; ++u) {
    for (ItemIndex i = 0; i < 5; ++i)
      ds.add_interaction({u, i, value[u], static_cast<std::int64_t>(i)});
  }
  return ds;
}

RecommenderFactory constant_rating(float value) {
  return [value](const std::string& name) {
    return std::make_unique<FakeRecommender>(
        name, [](UserIndex, ItemIndex) { return 0.0f; },
        [value](UserIndex, ItemIndex) { return value; });
  };
}

TEST(RatingProtocol, PredictionsAreClippedToTheRatingRange) {
  // One held-out rating per user (ceil(20% of 5)). 7 clips to 5: errors 1, 3, 4, 0.
  auto high = run_rating(rating_dataset(), {"high"}, constant_rating(7), quiet());
  ASSERT_EQ(high.results.size(), 1u);
  EXPECT_NEAR(metric(high.results[0], "RMSE"), std::sqrt(26.0 / 4), 1e-9);
  EXPECT_NEAR(metric(high.results[0], "MAE"), 2.0, 1e-9);
  EXPECT_EQ(high.results[0].users, 4u);
  // -3 clips to 1: errors 3, 1, 0, 4.
  auto low = run_rating(rating_dataset(), {"low"}, constant_rating(-3), quiet());
  EXPECT_NEAR(metric(low.results[0], "RMSE"), std::sqrt(26.0 / 4), 1e-9);
  EXPECT_NEAR(metric(low.results[0], "MAE"), 2.0, 1e-9);
}

class ConstantPredictor : public RatingPredictor {
 public:
  std::string name() const override { return "four"; }
  float predict(UserIndex, ItemIndex) override {
    ++calls;
    return 4.0f;
  }
  StageStats stats() const override {
    StageStats s;
    s.prompts = calls;
    return s;
  }
  std::int64_t calls = 0;
};

TEST(RatingProtocol, LlmPredictorRunsOnTheSameHeldOutRatings) {
  StageFactory<RatingPredictor> factory = [](const Dataset&, const InteractionMatrix&,
                                             const recommend::Recommender&) {
    return std::make_unique<ConstantPredictor>();
  };
  auto report = run_rating(rating_dataset(), {"high"}, constant_rating(7), quiet(), factory);
  ASSERT_EQ(report.results.size(), 2u);
  const auto& s = report.results[1];
  EXPECT_EQ(s.model, "high+four");
  EXPECT_NEAR(metric(s, "RMSE"), std::sqrt(14.0 / 4), 1e-9);  // errors 0, 2, 3, 1
  EXPECT_NEAR(metric(s, "MAE"), 1.5, 1e-9);
  EXPECT_EQ(s.stage_stats->prompts, 4);
}

TEST(RatingProtocol, ModelsWithoutRatingsAreNotedNotScored) {
  auto report = run_rating(rating_dataset(), {"low"}, low_index_first(), quiet());
  EXPECT_TRUE(report.results.empty());
  ASSERT_EQ(report.notes.size(), 1u);
}

TEST(FoldsProtocol, EachFoldAndTheMean) {
  chatrec::testing::TempDir dir;
  Dataset ds = make_dataset(2, 6);
  for (UserIndex u = 0; u < 2; ++u) {
    for (ItemIndex i = 0; i < 6; ++i)
      ds.add_interaction({u, i, 1.0f + static_cast<float>(i % 5), 0});
  }
  for (int f = 1; f <= 5; ++f) {
    std::ofstream base(dir.path() / ("u" + std::to_string(f) + ".base"));
    base << "1\t1\t1\t0\n2\t2\t5\t0\n";
    std::ofstream test(dir.path() / ("u" + std::to_string(f) + ".test"));
    test << "1\t3\t" << f << "\t0\n";  // a model predicting 7 (clipped to 5) errs by 5 - f
  }
  auto o = quiet();
  o.folds_dir = dir.path().string();
  auto report = run_folds(ds, {"high"}, constant_rating(7), o);
  ASSERT_EQ(report.results.size(), 6u);
  for (int f = 1; f <= 5; ++f) {
    EXPECT_EQ(report.results[f - 1].fold, "u" + std::to_string(f));
    EXPECT_NEAR(metric(report.results[f - 1], "RMSE"), 5.0 - f, 1e-9);
  }
  EXPECT_EQ(report.results[5].fold, "mean");
  EXPECT_NEAR(metric(report.results[5], "RMSE"), 2.0, 1e-9);
  EXPECT_NEAR(metric(report.results[5], "MAE"), 2.0, 1e-9);
}

// Sequences with positions as timestamps: user u has items 3u .. 3u+2 (target 3u+2), 30 items.
Dataset seq_dataset(std::size_t users = 8) {
  Dataset ds = make_dataset(users, 30);
  for (UserIndex u = 0; u < users; ++u) {
    for (std::int64_t p = 0; p < 3; ++p) {
      ds.add_interaction({u, static_cast<ItemIndex>((3 * u + static_cast<std::size_t>(p)) % 30),
                          data::kNoRating, p});
    }
  }
  return ds;
}

TEST(SeqCases, NegativesAreNeverInteractedWithAndSeeded) {
  Dataset ds = seq_dataset(10);
  auto split = data::split_leave_last_out(ds);
  InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    for (std::size_t negatives : {9u, 27u}) {
      auto cases = make_seq_cases(split.test, all, split.eval_users, negatives, seed);
      ASSERT_EQ(cases.size(), 10u);
      for (const auto& c : cases) {
        ASSERT_EQ(c.candidates.size(), negatives + 1);
        EXPECT_EQ(std::count(c.candidates.begin(), c.candidates.end(), c.target), 1);
        std::set<ItemIndex> distinct(c.candidates.begin(), c.candidates.end());
        EXPECT_EQ(distinct.size(), c.candidates.size());
        for (ItemIndex i : c.candidates) {
          if (i != c.target) {
            EXPECT_FALSE(all.contains(c.user, i)) << "negative " << i << " of user " << c.user;
          }
        }
      }
    }
  }
  auto a = make_seq_cases(split.test, all, split.eval_users, 9, 5);
  auto b = make_seq_cases(split.test, all, split.eval_users, 9, 5);
  auto c = make_seq_cases(split.test, all, split.eval_users, 9, 6);
  bool same = true, differs = false;
  for (std::size_t k = 0; k < a.size(); ++k) {
    same = same && a[k].candidates == b[k].candidates;
    differs = differs || a[k].candidates != c[k].candidates;
  }
  EXPECT_TRUE(same);
  EXPECT_TRUE(differs);
  // 27 negatives leave no room: a user with only 26 unseen items is skipped, not padded.
  EXPECT_TRUE(make_seq_cases(split.test, all, split.eval_users, 28, 5).empty());
}

TEST(SeqCases, TiesDoNotFavourTheTarget) {
  SeqCase c{0, 7, {5, 7, 9}};
  EXPECT_EQ(target_rank(c, {1, 1, 1}), 1u);
  EXPECT_EQ(target_rank(c, {0, 1, 0}), 0u);
  EXPECT_EQ(target_rank(c, {2, 1, 1}), 1u);
  EXPECT_EQ(target_rank(c, {NAN, NAN, 0}), 2u);
  EXPECT_THROW(target_rank(c, {1, 1}), std::invalid_argument);
}

TEST(SeqCases, FullRankCountsOnlyItemsTheUserNeverInteractedWith) {
  // User 0 interacted with items 0, 1 and 2 (the target); 3..5 were never seen.
  Dataset ds = make_dataset(1, 6);
  for (ItemIndex i : {0u, 1u, 2u}) ds.add_interaction({0, i, data::kNoRating, i});
  InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  const SeqCase c{0, 2, {}};
  // Seen items above the target do not count; unseen ones do.
  EXPECT_EQ(full_rank(c, all, {9, 9, 5, 1, 1, 1}), 0u);
  EXPECT_EQ(full_rank(c, all, {0, 0, 5, 6, 1, 7}), 2u);
  // Ties count when they come first by index (the target is item 2: the tied unseen 3..5 follow
  // it), NaN ranks last.
  EXPECT_EQ(full_rank(c, all, {5, 5, 5, 5, 5, 5}), 0u);
  EXPECT_EQ(full_rank(c, all, {0, 0, NAN, 0, 0, 0}), 3u);
  EXPECT_THROW(full_rank(c, all, {1, 1}), std::invalid_argument);
  auto split = data::split_leave_last_out(ds);
  const auto cases = make_seq_cases(split.test, all, split.eval_users, kAllNegatives, 1);
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(cases[0].target, 2u);
  EXPECT_TRUE(cases[0].candidates.empty());
}

RecommenderFactory oracle(const std::vector<ItemIndex>& target_of, float sign) {
  return [target_of, sign](const std::string& name) {
    auto m = std::make_unique<FakeRecommender>(name, [target_of, sign](UserIndex u, ItemIndex i) {
      return i == target_of[u] ? sign : 0.0f;
    });
    return m;
  };
}

TEST(GamesSeqProtocol, OracleAndAntiOracle) {
  Dataset ds = seq_dataset();
  std::vector<ItemIndex> target_of;
  for (UserIndex u = 0; u < 8; ++u) target_of.push_back(3 * u + 2);
  auto o = quiet();
  o.negatives = 3;
  std::vector<std::size_t> valid_sizes;
  auto best = run_games_seq(ds, {"oracle"}, oracle(target_of, 1), o);
  const auto& r = best.results[0];
  EXPECT_EQ(r.users, 8u);
  EXPECT_DOUBLE_EQ(metric(r, "HR@1"), 1.0);
  EXPECT_DOUBLE_EQ(metric(r, "NDCG@5"), 1.0);
  // The target last of 4: rank 3.
  auto worst = run_games_seq(ds, {"anti"}, oracle(target_of, -1), o);
  const auto& w = worst.results[0];
  EXPECT_DOUBLE_EQ(metric(w, "HR@1"), 0.0);
  EXPECT_DOUBLE_EQ(metric(w, "HR@3"), 0.0);
  EXPECT_DOUBLE_EQ(metric(w, "HR@5"), 1.0);
  EXPECT_DOUBLE_EQ(metric(w, "NDCG@3"), 0.0);
  EXPECT_NEAR(metric(w, "NDCG@5"), 1 / std::log2(5.0), 1e-12);
  EXPECT_EQ(best.config["negatives"], 3);
}

TEST(GamesSeqProtocol, FullRankingOverEveryUnseenItem) {
  Dataset ds = seq_dataset();  // 8 users x 3 items, 30 items: 27 unseen per user
  std::vector<ItemIndex> target_of;
  for (UserIndex u = 0; u < 8; ++u) target_of.push_back(3 * u + 2);
  auto o = quiet();
  o.negatives = kAllNegatives;
  auto best = run_games_seq(ds, {"oracle"}, oracle(target_of, 1), o);
  EXPECT_DOUBLE_EQ(metric(best.results[0], "HR@1"), 1.0);
  EXPECT_DOUBLE_EQ(metric(best.results[0], "MRR"), 1.0);
  EXPECT_EQ(best.config["negatives"], "all");
  // Below every unseen item (the scores are 0, the target's -1): rank 27 of 28.
  auto worst = run_games_seq(ds, {"anti"}, oracle(target_of, -1), o);
  const auto& w = worst.results[0];
  EXPECT_DOUBLE_EQ(metric(w, "HR@10"), 0.0);
  EXPECT_DOUBLE_EQ(metric(w, "NDCG@10"), 0.0);
  EXPECT_NEAR(metric(w, "MRR"), 1.0 / 28, 1e-12);
  // An LLM stage ranks candidate lists, not the catalogue.
  StageFactory<CandidateRanker> factory = [](const Dataset&, const InteractionMatrix&,
                                             const recommend::Recommender&) {
    return std::unique_ptr<CandidateRanker>();
  };
  EXPECT_THROW(run_games_seq(ds, {"oracle"}, oracle(target_of, 1), o, factory),
               std::invalid_argument);
}

TEST(GamesSeqProtocol, ModelsTrainWithoutTargetsAndValidateOnSecondToLast) {
  Dataset ds = seq_dataset();
  std::vector<std::size_t> nnz;
  std::vector<std::vector<Interaction>> validations;
  RecommenderFactory make = [&](const std::string& name) {
    auto m = std::make_unique<FakeRecommender>(name, [](UserIndex, ItemIndex) { return 0.0f; });
    m->on_fit = [&](const InteractionMatrix& t, const recommend::FitOptions& fo) {
      nnz.push_back(t.nnz());
      ASSERT_NE(fo.validation, nullptr);
      validations.push_back(*fo.validation);
      for (UserIndex u = 0; u < 8; ++u) EXPECT_FALSE(t.contains(u, 3 * u + 2));
    };
    return m;
  };
  auto o = quiet();
  o.negatives = 3;
  run_games_seq(ds, {"flat"}, make, o);
  ASSERT_EQ(nnz.size(), 1u);
  EXPECT_EQ(nnz[0], 16u);
  ASSERT_EQ(validations[0].size(), 8u);
  for (const auto& v : validations[0]) EXPECT_EQ(v.item, 3 * v.user + 1);
}

class FirstCandidateRanker : public CandidateRanker {
 public:
  std::string name() const override { return "first"; }
  std::vector<float> score(UserIndex, std::span<const ItemIndex> history,
                           std::span<const ItemIndex> candidates) override {
    EXPECT_EQ(history.size(), 2u);
    std::vector<float> s(candidates.size(), 0.0f);
    s[0] = 1.0f;
    ++calls;
    return s;
  }
  StageStats stats() const override {
    StageStats s;
    s.prompts = calls;
    return s;
  }
  std::int64_t calls = 0;
};

TEST(GamesSeqProtocol, LlmRankerSeesTheSameSampledCases) {
  Dataset ds = seq_dataset(40);
  auto o = quiet();
  o.negatives = 3;
  o.users = 10;
  std::vector<ItemIndex> target_of;
  for (UserIndex u = 0; u < 40; ++u) target_of.push_back((3 * u + 2) % 30);
  StageFactory<CandidateRanker> factory = [](const Dataset&, const InteractionMatrix&,
                                             const recommend::Recommender&) {
    return std::make_unique<FirstCandidateRanker>();
  };
  auto report = run_games_seq(ds, {"oracle"}, oracle(target_of, 1), o, factory);
  ASSERT_EQ(report.results.size(), 2u);
  EXPECT_EQ(report.results[0].users, 10u);
  EXPECT_EQ(report.results[1].users, 10u);
  EXPECT_EQ(report.results[1].stage_stats->prompts, 10);
  // Picking the first candidate hits exactly when the seeded order put the target first.
  auto split = data::split_leave_last_out(ds);
  InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  auto cases =
      make_seq_cases(split.test, all, data::sample_users(split.eval_users, 10, o.seed), 3, o.seed);
  ASSERT_EQ(cases.size(), 10u);
  double first = 0;
  for (const auto& c : cases) first += c.candidates[0] == c.target ? 0.1 : 0.0;
  EXPECT_NEAR(metric(report.results[1], "HR@1"), first, 1e-12);
}

}  // namespace
}  // namespace chatrec::protocols
