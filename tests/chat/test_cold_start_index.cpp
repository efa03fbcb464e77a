// The cold-start vector index past its exhaustive size: an inverted-file index whose probe count is
// calibrated against the exhaustive search, and filters that still return only (and, when few
// pass, all) the items they let through.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <set>

#include "chat/cold_start.h"
#include "llm/mock_model.h"

namespace chatrec::chat {
namespace {

// Titles of a few words from a skewed vocabulary, so the (bag-of-words) vectors cluster the way
// text embeddings do rather than spreading uniformly.
std::vector<std::pair<data::ItemIndex, data::Item>> catalogue(std::size_t first, std::size_t n,
                                                              std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> weights;
  for (int w = 1; w <= 400; ++w) weights.push_back(1.0 / w);
  std::discrete_distribution<int> word(weights.begin(), weights.end());
  std::vector<std::pair<data::ItemIndex, data::Item>> items;
  for (std::size_t i = first; i < first + n; ++i) {
    data::Item item;
    for (int k = 0; k < 4; ++k) item.title += "w" + std::to_string(word(rng)) + " ";
    items.emplace_back(static_cast<data::ItemIndex>(i), std::move(item));
  }
  return items;
}

class ApproximateIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    for (std::size_t batch = 0; batch < 3; ++batch) {
      const auto items = catalogue(batch * 4000, 4000, 7 + batch);
      ASSERT_TRUE(exact_.add("movies", items, false, nullptr));
      ASSERT_TRUE(approx_.add("movies", items, false, nullptr));
    }
  }
  std::shared_ptr<llm::MockModel> lm_ = std::make_shared<llm::MockModel>();
  ColdStartIndex exact_{lm_, nullptr, ApproximateSearch{std::numeric_limits<std::size_t>::max()}};
  // Turns approximate at the second batch (8,000 vectors); the third is added to the IVF lists.
  ColdStartIndex approx_{lm_, nullptr, ApproximateSearch{6000, 0.95, 200}};
};

TEST_F(ApproximateIndex, ProbesAreCalibratedToTheTargetRecall) {
  const IndexDescription e = exact_.describe("movies");
  EXPECT_FALSE(e.approximate);
  EXPECT_EQ(e.vectors, 12000u);
  const IndexDescription a = approx_.describe("movies");
  ASSERT_TRUE(a.approximate);
  EXPECT_EQ(a.vectors, 12000u);
  EXPECT_EQ(a.lists, 357u);  // 4 * sqrt(8000) when it was built
  EXPECT_GE(a.calibrated_recall, 0.95);
  EXPECT_GE(a.probes, 1u);
  EXPECT_LT(a.probes, a.lists);  // it is not an exhaustive scan in disguise
}

TEST_F(ApproximateIndex, NewQueriesFindTheExhaustiveTopTen) {
  // Recall counted by similarity, so ties between equal bags of words do not count as misses.
  const auto queries = catalogue(0, 200, 99);
  double found = 0, wanted = 0;
  for (const auto& [_, q] : queries) {
    const std::vector<float> v = approx_.embed_query(item_text(q), nullptr);
    const auto truth = exact_.search("movies", v, 10, false, nullptr);
    const auto got = approx_.search("movies", v, 10, false, nullptr);
    ASSERT_EQ(truth.size(), 10u);
    ASSERT_EQ(got.size(), 10u);
    const float tenth = truth.back().similarity;
    for (const auto& r : got) found += r.similarity >= tenth - 1e-5f ? 1 : 0;
    wanted += 10;
    for (std::size_t j = 1; j < got.size(); ++j)
      EXPECT_LE(got[j].similarity, got[j - 1].similarity + 1e-6f);
  }
  EXPECT_GE(found / wanted, 0.95);
}

TEST_F(ApproximateIndex, FiltersRunInsideTheScanAndAStrictOneScansEveryList) {
  // Five cold items among 12,000: a cold-only search must find all five wherever they fall.
  auto cold = catalogue(20000, 5, 3);
  ASSERT_TRUE(approx_.add("movies", cold, true, nullptr));
  const std::vector<float> v = approx_.embed_query("Title: w1 w2 w3", nullptr);
  const auto got = approx_.search("movies", v, 10, true, nullptr);
  std::set<data::ItemIndex> ids;
  for (const auto& r : got) {
    EXPECT_TRUE(r.cold);
    ids.insert(r.item);
  }
  EXPECT_EQ(ids, (std::set<data::ItemIndex>{20000, 20001, 20002, 20003, 20004}));
  // A keep filter: even items only, and still k of them.
  const auto even =
      approx_.search("movies", v, 10, false, [](data::ItemIndex i) { return i % 2 == 0; });
  ASSERT_EQ(even.size(), 10u);
  for (const auto& r : even) EXPECT_EQ(r.item % 2, 0u);
}

}  // namespace
}  // namespace chatrec::chat
