#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "common/error.h"
#include "instruct/candidate_ranker.h"
#include "instruct/ranker.h"
#include "llm/mock_model.h"
#include "test_data.h"

namespace chatrec::instruct {
namespace {

bool is_permutation_of_n(const std::vector<std::size_t>& order, std::size_t n) {
  std::vector<std::size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t k = 0; k < sorted.size(); ++k) {
    if (sorted[k] != k) return false;
  }
  return sorted.size() == n;
}

const std::vector<llm::Message> kPrompt = {{"user", "pick one"}};

TEST(InstructRanker, LikelihoodOrderIsAPermutationFollowingTheScores) {
  llm::MockModel model;
  // Mentions of Mario are likely; everything else less so, longer titles more so in total.
  model.set_scorer([](const std::vector<llm::Message>&, const std::string& c) {
    return c.find("Mario") != std::string::npos ? -1.0 : -10.0 - static_cast<double>(c.size());
  });
  InstructionRanker ranker(model);
  const std::vector<std::string> titles = {"HDMI Cable", "Super Mario Galaxy",
                                           "Controller Charging Dock"};
  const RankResult r = ranker.rank_by_likelihood(kPrompt, titles);
  ASSERT_TRUE(is_permutation_of_n(r.order, titles.size()));
  EXPECT_EQ(r.order.front(), 1u);
  EXPECT_FALSE(r.fell_back);
  EXPECT_EQ(ranker.stats().prompts, 1);
  EXPECT_GT(ranker.stats().tokens_in, 0);
}

TEST(InstructRanker, LengthNormalisationRemovesTheShortTitleBias) {
  llm::MockModel model;  // default scorer: -length in characters, 4 characters per token
  const std::vector<std::string> titles = {"Ab", "A much longer title here"};
  InstructionRanker normalised(model);
  InstructionRanker raw(model, RankerOptions{.length_normalise = false});
  EXPECT_EQ(raw.rank_by_likelihood(kPrompt, titles).order.front(), 0u);
  const auto r = normalised.rank_by_likelihood(kPrompt, titles);
  // Per token: -2/1 vs -24/6 → the short one still wins, but the scores are per-token.
  EXPECT_DOUBLE_EQ(r.scores[0], -2.0);
  EXPECT_DOUBLE_EQ(r.scores[1], -4.0);
}

TEST(InstructRanker, FailingBackendFallsBackToTheGivenOrderAndCountsIt) {
  llm::MockModel model;
  model.fail_with(llm::LlmError::Kind::kTimeout);
  InstructionRanker ranker(model, RankerOptions{.fallback_name = "popularity"});
  const std::vector<std::string> titles = {"a", "b", "c", "d"};
  const std::vector<double> popularity = {3, 10, 1, 7};
  const RankResult r = ranker.rank_by_likelihood(kPrompt, titles, popularity);
  EXPECT_TRUE(r.fell_back);
  EXPECT_EQ(r.order, (std::vector<std::size_t>{1, 3, 0, 2}));
  EXPECT_EQ(ranker.stats().failures.at("timeout"), 1);
  EXPECT_EQ(ranker.stats().resolutions.at("popularity"), 1);
  // Without a fallback, the input order.
  EXPECT_EQ(ranker.rank_by_likelihood(kPrompt, titles).order,
            (std::vector<std::size_t>{0, 1, 2, 3}));
}

TEST(InstructRanker, ScorerThrowingMidwayIsHandledLikeAnyBackendError) {
  llm::MockModel model;
  model.set_scorer([](const std::vector<llm::Message>&, const std::string&) -> double {
    throw llm::LlmError(llm::LlmError::Kind::kContextOverflow, "too long");
  });
  InstructionRanker ranker(model);
  const RankResult r = ranker.rank_by_likelihood(kPrompt, {"x", "y"}, std::vector<double>{0, 1});
  EXPECT_TRUE(r.fell_back);
  EXPECT_EQ(r.order, (std::vector<std::size_t>{1, 0}));
  EXPECT_EQ(ranker.stats().failures.at("context_overflow"), 1);
}

TEST(InstructRanker, PointwiseComparesYesAgainstNo) {
  llm::MockModel model;
  model.set_scorer([](const std::vector<llm::Message>& m, const std::string& c) {
    const bool good = m.back().content.find("Zelda") != std::string::npos;
    if (c == "Yes") return good ? -0.1 : -3.0;
    return good ? -3.0 : -0.1;
  });
  InstructionRanker ranker(model);
  EXPECT_GT(ranker.yes_probability({{"user", "Zelda?"}}), 0.9);
  EXPECT_LT(ranker.yes_probability({{"user", "Cable?"}}), 0.1);
  const std::vector<std::string> titles = {"Cable", "Zelda", "Dock"};
  const RankResult r = ranker.rank_pointwise(titles.size(), [&](std::size_t k) {
    return std::vector<llm::Message>{{"user", titles[k] + "?"}};
  });
  ASSERT_TRUE(is_permutation_of_n(r.order, 3));
  EXPECT_EQ(r.order.front(), 1u);
}

TEST(InstructRanker, PairwiseRoundRobinOrdersByWins) {
  llm::MockModel model;
  const std::vector<std::string> titles = {"C", "A", "B"};
  // Alphabetical preference: A beats B beats C.
  model.set_scorer([](const std::vector<llm::Message>&, const std::string& c) {
    return -static_cast<double>(c[0]);
  });
  InstructionRanker ranker(model);
  const RankResult r = ranker.rank_pairwise(titles, [&](std::size_t a, std::size_t b) {
    return std::vector<llm::Message>{{"user", titles[a] + " or " + titles[b]}};
  });
  EXPECT_EQ(r.order, (std::vector<std::size_t>{1, 2, 0}));
  EXPECT_EQ(ranker.stats().prompts, 3);
}

TEST(InstructCandidateRanker, ScoresArePermutationRanksOverCandidatesOnly) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  // Prefers titles ending in 7; the ranker must still return exactly one score per candidate.
  model->set_scorer([](const std::vector<llm::Message>&, const std::string& c) {
    return c.back() == '7' ? -0.5 : -5.0 - static_cast<double>(c.size() % 3);
  });
  InstructCandidateRanker ranker(ds, model);
  EXPECT_EQ(ranker.name(), "instruct");
  const std::vector<data::ItemIndex> history = {1, 2, 3, 4};
  const std::vector<data::ItemIndex> candidates = {10, 17, 22, 5, 9};
  const auto scores = ranker.score(0, history, candidates);
  ASSERT_EQ(scores.size(), candidates.size());
  std::vector<float> sorted = scores;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<float>{1, 2, 3, 4, 5}));
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), 1);
  // Titles, never raw ids, and the last 20 history items at most.
  const auto prompt = ranker.prompt(0, history, candidates);
  const std::string& text = prompt.back().content;
  EXPECT_NE(text.find(ds.item(17).title), std::string::npos);
  EXPECT_NE(text.find(ds.item(4).title), std::string::npos);
  EXPECT_EQ(text.find(" i17"), std::string::npos);
  const auto& seen = model->seen_prompts().back();
  EXPECT_EQ(seen.back().content, text);
}

// Label scoring (what `instruct tune --loss label` trains): the options are lettered, the prompt
// asks for a letter, and only the letters are scored, in one call.
TEST(InstructCandidateRanker, LabelScoringScoresTheOptionLetters) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  std::vector<std::string> scored;
  model->set_scorer([&](const std::vector<llm::Message>&, const std::string& c) {
    scored.push_back(c);
    return c == "C" ? -0.1 : -3.0;
  });
  InstructCandidateRanker ranker(ds, model, CandidateRankerConfig{.scoring = "label"});
  const std::vector<data::ItemIndex> history = {1, 2, 3};
  const std::vector<data::ItemIndex> candidates = {10, 17, 22, 5};
  const auto scores = ranker.score(0, history, candidates);
  EXPECT_EQ(scored, (std::vector<std::string>{"A", "B", "C", "D"}));
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), 2);
  const std::string text = ranker.prompt(0, history, candidates).back().content;
  EXPECT_NE(text.find("C. " + ds.item(22).title), std::string::npos);
  EXPECT_NE(text.find(kLetterInstruction), std::string::npos);
}

// A T2 (matching) template with title scoring: the prompt holds the history only and each
// candidate's title is scored; a T2 template with label scoring is refused.
TEST(InstructCandidateRanker, MatchingTemplateScoresTitlesWithoutListingThem) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  InstructCandidateRanker ranker(ds, model, CandidateRankerConfig{.template_id = "P05"});
  const std::vector<data::ItemIndex> history = {1, 2, 3};
  const std::vector<data::ItemIndex> candidates = {10, 17};
  const std::string text = ranker.prompt(0, history, candidates).back().content;
  EXPECT_NE(text.find(ds.item(3).title), std::string::npos);
  EXPECT_EQ(text.find(ds.item(17).title), std::string::npos);
  EXPECT_EQ(ranker.score(0, history, candidates).size(), 2u);
  EXPECT_THROW(InstructCandidateRanker(
                   ds, model, CandidateRankerConfig{.template_id = "P05", .scoring = "label"}),
               InputError);
}

// Yes/no scoring asks one T0 question per candidate and ranks by P(Yes).
TEST(InstructCandidateRanker, YesNoScoringAsksAboutEachCandidate) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  const std::string liked = ds.item(17).title;
  model->set_scorer([&](const std::vector<llm::Message>& m, const std::string& c) {
    const bool about_liked = m.back().content.find(liked) != std::string::npos;
    return (c == "Yes") == about_liked ? -0.1 : -2.0;
  });
  InstructCandidateRanker ranker(ds, model,
                                 CandidateRankerConfig{.template_id = "P02", .scoring = "yesno"});
  const std::vector<data::ItemIndex> candidates = {10, 17, 22};
  const auto scores = ranker.score(0, std::vector<data::ItemIndex>{1, 2}, candidates);
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), 1);
  EXPECT_EQ(model->seen_prompts().size(), 3u);
  EXPECT_THROW(InstructCandidateRanker(ds, model, CandidateRankerConfig{.scoring = "yesno"}),
               InputError);
}

// Sequence scoring (what `instruct tune --loss seq` trains): the history is the start of the
// reply, one title per line, and each candidate is scored as the next line, newline included.
TEST(InstructCandidateRanker, SequenceScoringContinuesTheHistoryLines) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  std::vector<std::string> scored;
  const std::string liked = display_title(ds.item(22)) + "\n";
  model->set_scorer([&](const std::vector<llm::Message>&, const std::string& c) {
    scored.push_back(c);
    return c == liked ? -0.1 : -3.0;
  });
  InstructCandidateRanker ranker(
      ds, model, CandidateRankerConfig{.scoring = "sequence", .calibration = "none"});
  const std::vector<data::ItemIndex> history = {1, 2, 3};
  const std::vector<data::ItemIndex> candidates = {10, 22, 5};
  const auto scores = ranker.score(0, history, candidates);
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), 1);
  ASSERT_EQ(scored.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k)
    EXPECT_EQ(scored[k], display_title(ds.item(candidates[k])) + "\n");
  const auto messages = ranker.prompt(0, history, candidates);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[1].content, kSequenceInstruction);
  EXPECT_EQ(messages[2].role, "assistant");
  EXPECT_EQ(messages[2].content, display_title(ds.item(1)) + "\n" + display_title(ds.item(2)) +
                                     "\n" + display_title(ds.item(3)) + "\n");
  EXPECT_THROW(InstructCandidateRanker(
                   ds, model, CandidateRankerConfig{.search = true, .scoring = "sequence"}),
               InputError);
}

// PMI calibration (the default for sequence scoring): each candidate's log-likelihood after the
// history minus its log-likelihood after the same prompt with no history, which the sequence
// prompt makes the same for every case, so each title is scored without history once.
TEST(InstructCandidateRanker, PmiSubtractsTheNoHistoryLikelihoodOncePerTitle) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  const std::string a = display_title(ds.item(10)) + "\n";
  const std::string b = display_title(ds.item(22)) + "\n";
  std::size_t null_calls = 0;
  model->set_scorer([&](const std::vector<llm::Message>& m, const std::string& c) {
    const bool no_history = m.back().role == "assistant" && m.back().content.empty();
    null_calls += no_history;
    // `a` is likelier after the history, but more so without any: `b` gains more.
    if (c == a) return no_history ? -1.0 : -2.0;
    return no_history ? -6.0 : -4.0;
  });
  InstructCandidateRanker ranker(ds, model, CandidateRankerConfig{.scoring = "sequence"});
  EXPECT_EQ(ranker.calibration(), "pmi");
  const std::vector<data::ItemIndex> history = {1, 2, 3};
  const std::vector<data::ItemIndex> candidates = {10, 22};
  const auto pmi = ranker.log_scores(0, history, candidates);
  ASSERT_TRUE(pmi.has_value());
  EXPECT_DOUBLE_EQ((*pmi)[0], -2.0 - -1.0);
  EXPECT_DOUBLE_EQ((*pmi)[1], -4.0 - -6.0);
  EXPECT_EQ(null_calls, 2u);
  const auto scores = ranker.score(0, history, candidates);
  EXPECT_GT(scores[1], scores[0]);
  EXPECT_EQ(null_calls, 2u);  // both titles' no-history values are known now
  InstructCandidateRanker raw(ds, model,
                              CandidateRankerConfig{.scoring = "sequence", .calibration = "none"});
  const auto plain = raw.score(0, history, candidates);
  EXPECT_GT(plain[0], plain[1]);
  EXPECT_THROW(InstructCandidateRanker(ds, model, CandidateRankerConfig{.calibration = "bayes"}),
               InputError);
  EXPECT_THROW(
      InstructCandidateRanker(
          ds, model,
          CandidateRankerConfig{.template_id = "P02", .scoring = "yesno", .calibration = "pmi"}),
      InputError);
}

// pmi_weight w scores conditional − w · unconditional: the terms come back as computed, and the
// ranker's order follows the weight it was configured with.
TEST(InstructCandidateRanker, PmiWeightSubtractsAShareOfTheNoHistoryLikelihood) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  const std::string a = display_title(ds.item(10)) + "\n";
  model->set_scorer([&](const std::vector<llm::Message>& m, const std::string& c) {
    const bool no_history = m.back().role == "assistant" && m.back().content.empty();
    if (c == a) return no_history ? -1.0 : -2.0;
    return no_history ? -6.0 : -4.0;
  });
  const std::vector<data::ItemIndex> history = {1, 2, 3};
  const std::vector<data::ItemIndex> candidates = {10, 22};
  InstructCandidateRanker full(ds, model, CandidateRankerConfig{.scoring = "sequence"});
  const auto terms = full.likelihood_terms(0, history, candidates);
  ASSERT_TRUE(terms.has_value());
  EXPECT_EQ(terms->conditional, (std::vector<double>{-2.0, -4.0}));
  EXPECT_EQ(terms->unconditional, (std::vector<double>{-1.0, -6.0}));
  EXPECT_EQ(terms->combined(0.25), (std::vector<double>{-2.0 + 0.25, -4.0 + 1.5}));
  // a − b: 2 − 5w, so b wins above w = 0.4 and a below.
  for (double w : {0.2, 0.6}) {
    InstructCandidateRanker r(ds, model,
                              CandidateRankerConfig{.scoring = "sequence", .pmi_weight = w});
    const auto s = r.score(0, history, candidates);
    EXPECT_EQ(s[0] > s[1], w < 0.4) << w;
    EXPECT_EQ(r.stats().resolutions.at("pmi_weight_x100"), std::lround(w * 100));
  }
  EXPECT_THROW(InstructCandidateRanker(
                   ds, model, CandidateRankerConfig{.scoring = "sequence", .pmi_weight = 1.5}),
               InputError);
}

// The weight is chosen by HR@1, then NDCG@5, then nearness to 1, on the cases given.
TEST(ChoosePmiWeight, PicksTheWeightThatRanksTheTargetsBest) {
  // Case 1: target 0 wins only for w < 0.4 (a − b = 2 − 5w). Case 2: target 1 wins for w > 0.3
  // (b − a = 10w − 3). Both are hits for w in (0.3, 0.4): 0.35 on the grid.
  std::vector<LikelihoodTerms> cases = {{{-2.0, -4.0}, {-1.0, -6.0}}, {{-1.0, -4.0}, {0.0, -10.0}}};
  const auto both = choose_pmi_weight(cases, {0, 1});
  EXPECT_DOUBLE_EQ(both.weight, 0.35);
  EXPECT_DOUBLE_EQ(both.hr1, 1.0);
  EXPECT_DOUBLE_EQ(both.hr1_full_pmi, 0.5);
  // Only case 2: every w > 0.3 is a hit; ties go to the full PMI.
  const auto second = choose_pmi_weight({cases[1]}, {1});
  EXPECT_DOUBLE_EQ(second.weight, 1.0);
  EXPECT_DOUBLE_EQ(second.ndcg5, 1.0);
  // No unconditional term (calibration none): nothing to choose.
  const auto raw = choose_pmi_weight({LikelihoodTerms{{-1.0, -2.0}, {}}}, {0});
  EXPECT_DOUBLE_EQ(raw.weight, 1.0);
  EXPECT_DOUBLE_EQ(raw.hr1, 1.0);
  EXPECT_THROW(choose_pmi_weight(cases, {0}), std::invalid_argument);
}

// The popularity prior: score + w * log(1 + popularity), so with enough weight a popular candidate
// overtakes one the LLM slightly prefers; w = 0 is the LLM's order.
TEST(InstructCandidateRanker, PriorWeightAddsLogPopularity) {
  const auto ds = testdata::synthetic(10, 40);
  auto model = std::make_shared<llm::MockModel>();
  const std::string liked = display_title(ds.item(10)) + "\n";
  model->set_scorer([&](const std::vector<llm::Message>&, const std::string& c) {
    return c == liked ? -1.0 : -2.0;
  });
  std::vector<double> popularity(ds.num_items(), 0.0);
  popularity[22] = std::exp(3.0) - 1.0;  // log1p = 3
  const CandidateRankerConfig config{
      .scoring = "sequence", .calibration = "none", .popularity = popularity};
  const std::vector<data::ItemIndex> candidates = {10, 22};
  const std::vector<data::ItemIndex> history = {1};
  InstructCandidateRanker ranker(ds, model, config);
  const auto llm = ranker.log_scores(0, history, candidates);
  auto at = [&](double w) { return ranker.rank_scores(llm, candidates, w, popularity); };
  EXPECT_GT(at(0.0)[0], at(0.0)[1]);
  EXPECT_GT(at(0.3)[0], at(0.3)[1]);  // 3 * 0.3 < 1
  EXPECT_GT(at(0.5)[1], at(0.5)[0]);  // 3 * 0.5 > 1
  auto with_prior = config;
  with_prior.prior_weight = 0.5;
  InstructCandidateRanker prior_ranker(ds, model, with_prior);
  EXPECT_EQ(prior_ranker.score(0, history, candidates), at(0.5));
  // A failed LLM call ranks by popularity, whatever the weight.
  EXPECT_GT(ranker.rank_scores(std::nullopt, candidates, 0.0, popularity)[1],
            ranker.rank_scores(std::nullopt, candidates, 0.0, popularity)[0]);
}

TEST(InstructCandidateRanker, KeepsTheLast20HistoryItems) {
  const auto ds = testdata::synthetic(5, 40);
  auto model = std::make_shared<llm::MockModel>();
  InstructCandidateRanker ranker(ds, model);
  std::vector<data::ItemIndex> history;
  for (data::ItemIndex i = 0; i < 25; ++i) history.push_back(i);
  const std::string text =
      ranker.prompt(0, history, std::vector<data::ItemIndex>{30, 31}).back().content;
  EXPECT_EQ(text.find(ds.item(4).title + "\n"), std::string::npos);
  EXPECT_NE(text.find(ds.item(5).title), std::string::npos);
  EXPECT_NE(text.find(ds.item(24).title), std::string::npos);
}

TEST(InstructCandidateRanker, FailingBackendDegradesToPopularity) {
  const auto ds = testdata::synthetic(30, 40);
  auto model = std::make_shared<llm::MockModel>();
  model->fail_with(llm::LlmError::Kind::kTransport);
  InstructCandidateRanker ranker(ds, model);
  const auto pop = training_popularity(ds);
  const std::vector<data::ItemIndex> candidates = {0, 1, 2, 3, 4, 5};
  const auto scores = ranker.score(0, std::vector<data::ItemIndex>{7}, candidates);
  for (std::size_t a = 0; a < candidates.size(); ++a) {
    for (std::size_t b = 0; b < candidates.size(); ++b) {
      if (pop[candidates[a]] > pop[candidates[b]]) {
        EXPECT_GT(scores[a], scores[b]);
      }
    }
  }
  EXPECT_EQ(ranker.stats().failures.at("transport"), 1);
  EXPECT_EQ(ranker.stats().resolutions.at("popularity"), 1);
}

TEST(InstructCandidateRanker, SearchNeedsCategoryLabels) {
  const auto plain = testdata::synthetic(5, 40, /*with_categories=*/false);
  auto model = std::make_shared<llm::MockModel>();
  try {
    InstructCandidateRanker ranker(plain, model, CandidateRankerConfig{.search = true});
    FAIL() << "search on data without categories must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("category"), std::string::npos) << e.what();
  }
  const auto labelled = testdata::synthetic(5, 40, /*with_categories=*/true);
  InstructCandidateRanker ranker(labelled, model, CandidateRankerConfig{.search = true});
  EXPECT_EQ(ranker.name(), "instruct-search");
  const std::string text =
      ranker.prompt(0, std::vector<data::ItemIndex>{1}, std::vector<data::ItemIndex>{2, 3})
          .back()
          .content;
  EXPECT_NE(text.find("searches for"), std::string::npos);
}

}  // namespace
}  // namespace chatrec::instruct
