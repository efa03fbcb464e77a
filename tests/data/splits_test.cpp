#include "data/splits.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "data/loaders.h"
#include "data/matrix.h"
#include "testing/test_env.h"

namespace chatrec::data {
namespace {

const Dataset& ml100k() {
  static const Dataset ds = load_movielens_100k(chatrec::testing::ml100k_dir());
  return ds;
}

TEST(TopkHoldout, SameSeedIsByteIdenticalOtherSeedDiffers) {
  auto a = split_topk_holdout(ml100k(), 2023).serialize();
  auto b = split_topk_holdout(ml100k(), 2023).serialize();
  auto c = split_topk_holdout(ml100k(), 1).serialize();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(TopkHoldout, HoldsOutCeilTwentyPercentOfLikedPerUser) {
  const auto& ds = ml100k();
  auto s = split_topk_holdout(ds, 2023);
  std::map<UserIndex, std::size_t> liked, held;
  std::size_t users_with_likes = 0;
  for (const auto& x : ds.interactions()) {
    if (x.rating >= 4) ++liked[x.user];
  }
  for (const auto& x : s.test) {
    EXPECT_GE(x.rating, 4.0f);
    ++held[x.user];
  }
  for (const auto& [u, n] : liked) {
    ++users_with_likes;
    EXPECT_EQ(held[u], static_cast<std::size_t>(std::ceil(0.2 * static_cast<double>(n) - 1e-9)))
        << "user " << u;
  }
  EXPECT_EQ(s.eval_users.size(), users_with_likes);
  EXPECT_EQ(s.train.size() + s.test.size(), ds.interactions().size());
  // Train and test are disjoint (user, item) pairs.
  InteractionMatrix train(ds.num_users(), ds.num_items(), s.train);
  for (const auto& x : s.test) EXPECT_FALSE(train.contains(x.user, x.item));
}

TEST(TopkHoldout, ExactCountsOnASmallUser) {
  Dataset ds("tiny");
  auto u = ds.intern_user("a");
  auto v = ds.intern_user("b");
  for (int i = 0; i < 11; ++i)
    ds.add_interaction({u, ds.intern_item(std::to_string(i)), i < 6 ? 5.0f : 2.0f, i});
  ds.add_interaction({v, 0, 3.0f, 0});
  auto s = split_topk_holdout(ds, 7);
  EXPECT_EQ(s.test.size(), 2u);  // ceil(0.2 * 6)
  EXPECT_EQ(s.train.size(), 10u);
  EXPECT_EQ(s.eval_users, std::vector<UserIndex>{u});  // b has no liked item
}

TEST(RatingHoldout, SeededTwentyPercentOfTheChosenUsers) {
  const auto& ds = ml100k();
  std::vector<UserIndex> all;
  for (UserIndex u = 0; u < ds.num_users(); ++u) all.push_back(u);
  auto users = sample_users(all, 200, 2023);
  EXPECT_EQ(users.size(), 200u);
  EXPECT_TRUE(std::is_sorted(users.begin(), users.end()));
  EXPECT_EQ(users, sample_users(all, 200, 2023));
  EXPECT_NE(users, sample_users(all, 200, 2024));
  auto s = split_rating_holdout(ds, users, 2023);
  EXPECT_EQ(s.serialize(), split_rating_holdout(ds, users, 2023).serialize());
  std::map<UserIndex, std::size_t> total, held;
  for (const auto& x : ds.interactions()) ++total[x.user];
  for (const auto& x : s.test) ++held[x.user];
  std::set<UserIndex> chosen(users.begin(), users.end());
  for (const auto& [u, n] : held) EXPECT_TRUE(chosen.count(u));
  for (auto u : users)
    EXPECT_EQ(held[u],
              static_cast<std::size_t>(std::ceil(0.2 * static_cast<double>(total[u]) - 1e-9)));
  EXPECT_EQ(s.train.size() + s.test.size(), ds.interactions().size());
}

TEST(OfficialFolds, MatchTheFiles) {
  const auto& ds = ml100k();
  std::size_t test_total = 0;
  for (int f = 1; f <= 5; ++f) {
    auto s = split_official_fold(ds, chatrec::testing::ml100k_dir().string(), f);
    EXPECT_EQ(s.train.size(), 80000u);
    EXPECT_EQ(s.test.size(), 20000u);
    test_total += s.test.size();
  }
  EXPECT_EQ(test_total, 100000u);
  EXPECT_THROW(split_official_fold(ds, chatrec::testing::ml100k_dir().string(), 6), InputError);
}

TEST(LeaveLastOut, LastIsTestSecondToLastIsValidation) {
  Dataset ds("seq");
  auto a = ds.intern_user("a");
  auto b = ds.intern_user("b");
  auto c = ds.intern_user("c");
  for (int i = 0; i < 5; ++i) ds.intern_item(std::to_string(i));
  // Out of input order on purpose: timestamps decide.
  ds.add_interaction({a, 3, kNoRating, 2});
  ds.add_interaction({a, 1, kNoRating, 0});
  ds.add_interaction({a, 4, kNoRating, 1});
  ds.add_interaction({b, 0, kNoRating, 0});
  ds.add_interaction({b, 2, kNoRating, 1});
  ds.add_interaction({c, 2, kNoRating, 0});  // a single interaction: not evaluable
  auto s = split_leave_last_out(ds);
  ASSERT_EQ(s.test.size(), 2u);
  EXPECT_EQ(s.test[0].item, 3u);
  EXPECT_EQ(s.valid[0].item, 4u);
  EXPECT_EQ(s.test[1].item, 2u);
  EXPECT_EQ(s.valid[1].item, 0u);
  EXPECT_EQ(s.eval_users, (std::vector<UserIndex>{a, b}));
  EXPECT_EQ(s.train.size(), 4u);  // the validation targets stay in train
  EXPECT_EQ(s.serialize(), split_leave_last_out(ds).serialize());
}

// The validation carve-out of a training split: users with >= 5 training likes, ceil(20%) of their
// likes held out, everything else kept in time order; a smaller sample is a subset of a larger one
// with the same items held out (so an adapter tuned without the larger set's held items never saw
// the smaller set's).
TEST(LikedValidation, HoldsOutLikesOfASeededSubsetAndKeepsTheRestInOrder) {
  const auto& ds = ml100k();
  const Split split = split_topk_holdout(ds, 2023);
  const InteractionMatrix train(ds.num_users(), ds.num_items(), split.train);
  const LikedHoldout big = split_liked_validation(train, 2023, 200);
  const LikedHoldout small = split_liked_validation(train, 2023, 60);
  ASSERT_EQ(big.users.size(), 200u);
  ASSERT_EQ(small.users.size(), 60u);
  for (UserIndex u : small.users) {
    ASSERT_TRUE(std::binary_search(big.users.begin(), big.users.end(), u)) << u;
    EXPECT_EQ(small.held.at(u), big.held.at(u));
  }
  std::size_t held_total = 0;
  for (UserIndex u : big.users) {
    const auto& held = big.held.at(u);
    std::size_t liked = 0;
    const auto items = train.items_of(u);
    const auto ratings = train.ratings_of(u);
    for (std::size_t j = 0; j < items.size(); ++j) liked += ratings[j] >= 4.0f;
    EXPECT_GE(liked, 5u);
    EXPECT_EQ(held.size(), static_cast<std::size_t>(std::ceil(0.2 * static_cast<double>(liked))));
    for (ItemIndex i : held) {
      const auto at = std::lower_bound(items.begin(), items.end(), i);
      ASSERT_TRUE(at != items.end() && *at == i);
      EXPECT_GE(ratings[static_cast<std::size_t>(at - items.begin())], 4.0f);
    }
    held_total += held.size();
  }
  EXPECT_EQ(big.kept.size() + held_total, split.train.size());
  const InteractionMatrix kept(ds.num_users(), ds.num_items(), big.kept);
  for (UserIndex u = 0; u < ds.num_users(); ++u) {
    // The kept sequence is the training sequence without the held items, in the same order.
    std::vector<ItemIndex> expected;
    const auto h = big.held.find(u);
    for (ItemIndex i : train.sequence(u))
      if (h == big.held.end() || !std::binary_search(h->second.begin(), h->second.end(), i))
        expected.push_back(i);
    ASSERT_EQ(kept.sequence(u), expected) << u;
  }
  EXPECT_NE(split_liked_validation(train, 7, 200).users, big.users);
}

}  // namespace
}  // namespace chatrec::data
