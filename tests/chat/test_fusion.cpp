#include <gtest/gtest.h>

#include <limits>
#include <numeric>

#include "chat/fusion.h"
#include "common/random.h"

namespace chatrec::chat {
namespace {

TEST(Fusion, WeightZeroIsTheBaseOrderAndOneTheLlmOrder) {
  const std::vector<std::size_t> llm = {4, 2, 0, 1, 3, 5};
  EXPECT_EQ(fuse_orders(llm, 6, 0.0, 5), (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(fuse_orders(llm, 6, 1.0, 5), (std::vector<std::size_t>{4, 2, 0, 1, 3}));
  // Items the LLM left out rank after its picks, in base order.
  EXPECT_EQ(fuse_orders({3}, 6, 1.0, 3), (std::vector<std::size_t>{3, 0, 1}));
}

TEST(Fusion, Ndcg) {
  EXPECT_DOUBLE_EQ(ndcg_at_k({0, 1, 2}, {true, false, false}, 1, 5), 1.0);
  EXPECT_NEAR(ndcg_at_k({1, 0, 2}, {true, false, false}, 1, 5), 1.0 / std::log2(3.0), 1e-12);
  EXPECT_DOUBLE_EQ(ndcg_at_k({1, 2}, {true, false, false}, 1, 5), 0.0);
}

// Whatever the LLM does, the chosen weight is never worse than the base order on the validation
// cases.
TEST(Fusion, ChosenWeightIsNeverWorseThanBaseOnValidation) {
  Rng rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<ValidationCase> cases;
    const bool helpful = trial % 2 == 0;
    for (int u = 0; u < 30; ++u) {
      ValidationCase c;
      c.relevant.assign(20, false);
      for (int j = 0; j < 20; ++j) c.relevant[j] = rng.uniform() < 0.15;
      c.num_relevant = 3;
      std::vector<std::size_t> order(20);
      std::iota(order.begin(), order.end(), 0);
      rng.shuffle(order);
      if (helpful) {
        // A helpful LLM moves relevant candidates forward.
        std::stable_partition(order.begin(), order.end(),
                              [&](std::size_t i) { return c.relevant[i]; });
      }
      c.llm_order = order;
      cases.push_back(c);
    }
    const FusionChoice choice = choose_fusion_weight(cases, 5);
    EXPECT_GE(choice.ndcg_chosen, choice.ndcg_base);
    if (helpful) {
      EXPECT_GT(choice.weight, 0.0);
      EXPECT_GT(choice.ndcg_chosen, choice.ndcg_base);
    }
  }
}

TEST(Fusion, UselessLlmGetsWeightZero) {
  // The LLM reverses a base order that puts the relevant item first.
  std::vector<ValidationCase> cases(10);
  for (auto& c : cases) {
    c.relevant.assign(10, false);
    c.relevant[0] = true;
    c.num_relevant = 1;
    c.llm_order = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  }
  const FusionChoice choice = choose_fusion_weight(cases, 5);
  EXPECT_EQ(choice.weight, 0.0);
  EXPECT_DOUBLE_EQ(choice.ndcg_chosen, 1.0);
}

TEST(Fusion, NoiseLevelGainKeepsTheBase) {
  // One user of forty gains, none loses: the mean gain is positive but one standard error wide.
  std::vector<ValidationCase> cases(40);
  for (auto& c : cases) {
    c.relevant.assign(10, false);
    c.relevant[0] = true;
    c.num_relevant = 1;
    c.llm_order = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  }
  cases[7].relevant.assign(10, false);
  cases[7].relevant[6] = true;
  cases[7].llm_order = {6, 0, 1, 2, 3, 4, 5, 7, 8, 9};
  const FusionChoice strict = choose_fusion_weight(cases, 5);
  EXPECT_EQ(strict.weight, 0.0);
  EXPECT_GT(strict.curve.at(1.0), strict.curve.at(0.0));
  EXPECT_NEAR(strict.gain_z.at(1.0), 1.0, 1e-9);
  // Without the significance rule the same sample would hand the list to the LLM.
  const FusionChoice loose =
      choose_fusion_weight(cases, 5, {0.0, 0.5, 1.0}, -std::numeric_limits<double>::infinity());
  EXPECT_GT(loose.weight, 0.0);
}

// The likelihood after the history is the user's signal plus how probable a title is anyway; the
// no-history likelihood is that second part. Only subtracting it lets the LLM help, so the joint
// choice takes the full PMI and a fusion weight above 0; an LLM without signal keeps the base.
TEST(Fusion, PmiWeightIsChosenWithTheFusionWeight) {
  Rng rng(11);
  std::vector<ValidationCase> cases;
  auto terms_with = [&](double signal) {
    cases.clear();
    std::vector<CandidateTerms> terms;
    for (int u = 0; u < 60; ++u) {
      ValidationCase c;
      c.relevant.assign(20, false);
      for (int j = 0; j < 20; ++j) c.relevant[j] = rng.uniform() < 0.15;
      c.num_relevant = 3;
      CandidateTerms t;
      for (int j = 0; j < 20; ++j) {
        const double prior = 20.0 * (rng.uniform() - 0.5);
        t.unconditional.push_back(prior);
        t.conditional.push_back(prior + (c.relevant[j] ? signal : 0.0) + 0.1 * rng.uniform());
      }
      cases.push_back(std::move(c));
      terms.push_back(std::move(t));
    }
    return terms;
  };
  const auto helpful_terms = terms_with(3.0);
  const PmiFusionChoice helpful = choose_pmi_and_fusion_weight(cases, helpful_terms, 5);
  EXPECT_GE(helpful.pmi_weight, 0.8);
  EXPECT_GT(helpful.fusion.weight, 0.0);
  EXPECT_GT(helpful.ndcg_llm_by_pmi.at(1.0), helpful.ndcg_llm_by_pmi.at(0.0) + 0.2);
  EXPECT_GT(helpful.fusion.ndcg_chosen, helpful.fusion.ndcg_base);
  EXPECT_EQ(helpful.ndcg_by_pmi.size(), 11u);

  const auto useless_terms = terms_with(0.0);
  const PmiFusionChoice useless = choose_pmi_and_fusion_weight(cases, useless_terms, 5);
  EXPECT_EQ(useless.fusion.weight, 0.0);
  EXPECT_EQ(useless.pmi_weight, 0.0);
  EXPECT_DOUBLE_EQ(useless.fusion.ndcg_chosen, useless.fusion.ndcg_base);
}

}  // namespace
}  // namespace chatrec::chat
