// Chat-Rec's rerank with a listwise adapter (`instruct tune --loss label --candidates MODEL`):
// the prompt and scoring the adapter was tuned on. A MockModel stands in for the LLM: this tests
// the prompting and the ordering, not a model.
#include <gtest/gtest.h>

#include <algorithm>

#include "chat_eval/adapters.h"
#include "common/error.h"
#include "data/matrix.h"
#include "instruct/candidate_ranker.h"
#include "instruct/templates.h"
#include "instruct/tuning.h"
#include "llm/mock_model.h"
#include "recommend/registry.h"

namespace chatrec::instruct {
namespace {

// One user who rated six films in time order, and four films to rerank.
data::Dataset films() {
  data::Dataset ds("films");
  for (int i = 0; i < 10; ++i)
    ds.add_item(data::Item{"m" + std::to_string(i), "Film " + std::to_string(i)});
  ds.add_user(data::User{"u0", {}});
  const float ratings[] = {5, 4, 2, 5, 4, 1};
  for (int k = 0; k < 6; ++k)
    ds.add_interaction(
        {0, static_cast<data::ItemIndex>(k), ratings[k], static_cast<std::int64_t>(k)});
  return ds;
}

chat::ChatRecEvalOptions label_options(std::size_t history, std::size_t options) {
  chat::ChatRecEvalOptions o;
  o.progress = false;
  o.label = chat::ChatRecEvalOptions::LabelFormat{"P07", history, options, "popularity"};
  return o;
}

TEST(LabelRerank, ListsTheBaseCandidatesInOrderAndRanksByTheLettersProbability) {
  const data::Dataset ds = films();
  const data::InteractionMatrix train(ds.num_users(), ds.num_items(), ds.interactions());
  auto base = recommend::make_recommender("popularity");
  auto model = std::make_shared<llm::MockModel>();
  std::vector<std::string> scored;
  std::vector<llm::Message> seen;
  // C is the likeliest letter, then A, then B.
  model->set_scorer([&](const std::vector<llm::Message>& m, const std::string& c) {
    seen = m;
    scored.push_back(c);
    return c == "C" ? -0.5 : c == "A" ? -1.0 : -2.0;
  });
  chat::ChatRecReranker reranker(model, label_options(3, 3));
  reranker.prepare(ds, train, *base);
  const std::vector<recommend::ScoredItem> candidates = {{6, 4.f}, {7, 3.f}, {8, 2.f}, {9, 1.f}};
  const std::vector<data::ItemIndex> top = reranker.rerank(0, candidates, 4);
  // Three letters were tuned: the fourth candidate keeps its place after them.
  EXPECT_EQ(scored, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(top, (std::vector<data::ItemIndex>{8, 6, 7, 9}));
  // The prompt is the tuned template with the latest three likes, oldest first (the 2 and the 1
  // are not likes), and the candidates lettered in the base order.
  const std::vector<llm::Message> expected =
      ranking_prompt(builtin_templates(), builtin_templates().at("P07"),
                     {"Film 1", "Film 3", "Film 4"}, {"Film 6", "Film 7", "Film 8"}, true);
  ASSERT_EQ(seen.size(), expected.size());
  for (std::size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k].content, expected[k].content);
  EXPECT_EQ(latest_likes(train, 0, 3), (std::vector<data::ItemIndex>{1, 3, 4}));
  EXPECT_EQ(reranker.stats().prompts, 1);
}

TEST(LabelRerank, AFailedCallKeepsTheBaseOrderAndAnotherBaseIsRefused) {
  const data::Dataset ds = films();
  const data::InteractionMatrix train(ds.num_users(), ds.num_items(), ds.interactions());
  auto model = std::make_shared<llm::MockModel>();
  model->fail_with(llm::LlmError::Kind::kTimeout);
  auto popularity = recommend::make_recommender("popularity");
  chat::ChatRecReranker reranker(model, label_options(20, 20));
  reranker.prepare(ds, train, *popularity);
  const std::vector<recommend::ScoredItem> candidates = {{6, 4.f}, {7, 3.f}, {8, 2.f}};
  EXPECT_EQ(reranker.rerank(0, candidates, 3), (std::vector<data::ItemIndex>{6, 7, 8}));
  EXPECT_GE(reranker.stats().failures.size(), 1u);
  // Tuned on popularity's candidates: EASE's are another order and another set.
  auto ease = recommend::make_recommender("ease");
  chat::ChatRecReranker other(model, label_options(20, 20));
  EXPECT_THROW(other.prepare(ds, train, *ease), InputError);
}

}  // namespace
}  // namespace chatrec::instruct
