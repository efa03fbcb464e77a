#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace chatrec::eval {
namespace {

TEST(Metrics, TwoHitsOfThreeRelevantInTopFive) {
  std::vector<ItemIndex> ranked = {1, 2, 3, 4, 5};
  std::vector<ItemIndex> truth = {2, 5, 9};
  EXPECT_EQ(hits_at_k(ranked, truth, 5), 2u);
  EXPECT_DOUBLE_EQ(precision_at_k(ranked, truth, 5), 0.4);
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, truth, 5), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(hit_rate_at_k(ranked, truth, 5), 1.0);
  // DCG = 1/log2(3) + 1/log2(6); IDCG over min(5,3) = 1 + 1/log2(3) + 1/log2(4).
  EXPECT_NEAR(ndcg_at_k(ranked, truth, 5),
              (1 / std::log2(3.0) + 1 / std::log2(6.0)) / (1 + 1 / std::log2(3.0) + 0.5), 1e-12);
  EXPECT_NEAR(ndcg_at_k(ranked, truth, 5), 0.4776237, 1e-6);
}

TEST(Metrics, CutoffIgnoresItemsBeyondK) {
  std::vector<ItemIndex> ranked = {7, 8, 2};
  std::vector<ItemIndex> truth = {2};
  EXPECT_EQ(hits_at_k(ranked, truth, 2), 0u);
  EXPECT_DOUBLE_EQ(hit_rate_at_k(ranked, truth, 2), 0.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, truth, 2), 0.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, truth, 3), 0.5);  // rank 3: 1/log2(4), ideal 1
}

TEST(Metrics, ShortListIsNotRewardedForBrevity) {
  std::vector<ItemIndex> ranked = {2};
  std::vector<ItemIndex> truth = {2};
  EXPECT_DOUBLE_EQ(precision_at_k(ranked, truth, 5), 0.2);
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, truth, 5), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, truth, 5), 1.0);
}

TEST(Metrics, IdealDcgCapsAtK) {
  // Seven relevant items, all five slots hit: a perfect list scores 1 even though |GT| > k.
  std::vector<ItemIndex> ranked = {0, 1, 2, 3, 4};
  std::vector<ItemIndex> truth = {0, 1, 2, 3, 4, 5, 6};
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, truth, 5), 1.0);
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, truth, 5), 5.0 / 7.0);
}

TEST(Metrics, EmptyTruthScoresZero) {
  std::vector<ItemIndex> ranked = {0, 1};
  std::vector<ItemIndex> truth;
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, truth, 5), 0.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, truth, 5), 0.0);
  EXPECT_DOUBLE_EQ(hit_rate_at_k(ranked, truth, 5), 0.0);
}

TEST(Metrics, CandidateRecallCountsTopTwenty) {
  std::vector<ItemIndex> candidates;
  for (ItemIndex i = 0; i < 25; ++i) candidates.push_back(i);
  std::vector<ItemIndex> truth = {3, 19, 20, 100};
  EXPECT_DOUBLE_EQ(candidate_recall(candidates, truth), 0.5);
}

TEST(Metrics, SingleTargetRanks) {
  EXPECT_DOUBLE_EQ(hit_at_k(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(hit_at_k(1, 1), 0.0);
  EXPECT_DOUBLE_EQ(hit_at_k(2, 3), 1.0);
  EXPECT_DOUBLE_EQ(hit_at_k(3, 3), 0.0);
  EXPECT_DOUBLE_EQ(ndcg_single_at_k(0, 3), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_single_at_k(2, 3), 0.5);
  EXPECT_NEAR(ndcg_single_at_k(3, 5), 0.4306766, 1e-6);  // 1/log2(5)
  EXPECT_NEAR(ndcg_single_at_k(4, 5), 0.3868528, 1e-6);  // 1/log2(6)
  EXPECT_DOUBLE_EQ(ndcg_single_at_k(5, 5), 0.0);
}

TEST(Metrics, RmseAndMae) {
  std::vector<double> predicted = {1, 2, 3}, actual = {2, 2, 5};
  EXPECT_NEAR(rmse(predicted, actual), std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_DOUBLE_EQ(mae(predicted, actual), 1.0);
  std::vector<double> one = {1};
  EXPECT_THROW(rmse(one, actual), std::invalid_argument);
}

TEST(Metrics, MeansKeepFirstAddedOrder) {
  MetricMeans m;
  m.add("b", 1.0);
  m.add("a", 2.0);
  m.add("b", 3.0);
  MetricMeans other;
  other.add("c", 5.0);
  other.add("a", 4.0);
  m.merge(other);
  auto means = m.means();
  ASSERT_EQ(means.size(), 3u);
  EXPECT_EQ(means[0].first, "b");
  EXPECT_DOUBLE_EQ(means[0].second, 2.0);
  EXPECT_EQ(means[1].first, "a");
  EXPECT_DOUBLE_EQ(means[1].second, 3.0);
  EXPECT_EQ(means[2].first, "c");
  EXPECT_EQ(m.count("a"), 2u);
}

}  // namespace
}  // namespace chatrec::eval
