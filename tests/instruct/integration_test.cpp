// The ranker with the real built-in runtime (SmolLM2-135M-Instruct). Whether scores equal summed
// per-token log-probabilities is the runtime's own test; here: the order is deterministic and
// within the candidates.
#include <gtest/gtest.h>

#include <algorithm>

#include "instruct/candidate_ranker.h"
#include "instruct/ranker.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "testing/test_env.h"

namespace chatrec::instruct {
namespace {

TEST(InstructIntegration,
     LikelihoodRankingWithTheBuiltinRuntimeIsDeterministicAndWithinCandidates) {
  const auto path = testing::real_model_path();
  if (!path) GTEST_SKIP() << "no SmolLM2 GGUF (run scripts/fetch-model.sh)";
  auto model = llm::open_language_model("builtin:" + path->string());

  data::Dataset ds("mario");
  const std::vector<std::string> titles = {"Super Mario Bros. Wonder",
                                           "Super Mario Odyssey",
                                           "Mario Kart 8 Deluxe",
                                           "New Super Mario Bros. U",
                                           "Super Mario 3D World",
                                           "HDMI Cable 6ft",
                                           "Super Mario Galaxy",
                                           "Controller Charging Dock",
                                           "Screen Protector for Nintendo Switch"};
  for (std::size_t k = 0; k < titles.size(); ++k) {
    ds.add_item(data::Item{"i" + std::to_string(k), titles[k], "games", 0, {}, {}});
  }
  const auto user = ds.add_user(data::User{"u0", {}});
  for (data::ItemIndex i = 0; i < 5; ++i) ds.add_interaction({user, i, data::kNoRating, i});
  ds.add_interaction({user, 6, data::kNoRating, 5});

  std::shared_ptr<llm::LanguageModel> shared(std::move(model));
  InstructCandidateRanker ranker(ds, shared);
  const std::vector<data::ItemIndex> history = {0, 1, 2, 3, 4};
  const std::vector<data::ItemIndex> candidates = {5, 6, 7, 8};
  const auto first = ranker.score(user, history, candidates);
  const auto second = ranker.score(user, history, candidates);
  EXPECT_EQ(first, second);
  std::vector<float> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(ranker.stats().failures.empty());
  EXPECT_EQ(ranker.stats().prompts, 2);

  // The raw likelihood scores as well, for the record in the test log.
  InstructionRanker raw(*shared);
  std::vector<std::string> cand_titles;
  for (auto c : candidates) cand_titles.push_back(display_title(ds.item(c)));
  const auto r = raw.rank_by_likelihood(ranker.prompt(user, history, candidates), cand_titles);
  ASSERT_FALSE(r.fell_back);
  for (std::size_t pos = 0; pos < r.order.size(); ++pos) {
    std::printf("  %zu. %-40s %.3f\n", pos + 1, cand_titles[r.order[pos]].c_str(),
                r.scores[r.order[pos]]);
    EXPECT_TRUE(std::isfinite(r.scores[r.order[pos]]));
  }
}

}  // namespace
}  // namespace chatrec::instruct
