#include "instruct/tuning.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "common/error.h"
#include "data/loaders.h"
#include "data/splits.h"
#include "gguf_writer.h"
#include "instruct/candidate_ranker.h"
#include "instruct/templates.h"
#include "llm/runtime/chat_template.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/lora.h"
#include "llm/runtime/model.h"
#include "llm/runtime/tokenizer.h"
#include "recommend/registry.h"
#include "test_data.h"
#include "testing/test_env.h"

namespace chatrec::instruct {
namespace {

// No user's test target (their last item) is a target, candidate or history item of any of their
// training or validation instructions; validation users are disjoint from training users; the
// target is the user's second-to-last item, and the history the items before it.
void expect_no_leak(const data::Dataset& ds, const TuneData& d) {
  const data::Split split = data::split_leave_last_out(ds);
  std::map<data::UserIndex, data::ItemIndex> test_target;
  for (const auto& x : split.test) test_target[x.user] = x.item;
  std::map<data::UserIndex, data::ItemIndex> valid_target;
  for (const auto& x : split.valid) valid_target[x.user] = x.item;
  std::set<data::UserIndex> train_users;
  for (const auto& c : d.train) train_users.insert(c.user);
  for (const auto& c : d.validation) EXPECT_FALSE(train_users.count(c.user)) << c.user;
  std::size_t checked = 0;
  for (const auto* cases : {&d.train, &d.validation}) {
    for (const TuneCase& c : *cases) {
      const auto t = test_target.at(c.user);
      EXPECT_NE(c.target, t);
      EXPECT_EQ(c.target, valid_target.at(c.user));
      for (auto i : c.candidates) EXPECT_NE(i, t);
      for (auto i : c.history) EXPECT_NE(i, t);
      EXPECT_EQ(std::count(c.candidates.begin(), c.candidates.end(), c.target), 1);
      ++checked;
    }
  }
  EXPECT_EQ(checked, d.train.size() + d.validation.size());
}

// games-seq options with this many training instructions and validation users.
TuneOptions cases_of(std::size_t examples, std::size_t validation_users) {
  TuneOptions o;
  o.examples = examples;
  o.validation_users = validation_users;
  return o;
}

TEST(TuningCases, SyntheticDataNeverShowsTheTestTarget) {
  const data::Dataset ds = testdata::synthetic(80, 60, false);
  TuneOptions o = cases_of(50, 20);
  const TuneData d = tuning_cases(ds, o);
  EXPECT_EQ(d.train.size(), 50u);
  EXPECT_EQ(d.validation.size(), 20u);
  for (const auto& c : d.train) {
    EXPECT_EQ(c.candidates.size(), o.negatives + 1);
    EXPECT_LE(c.history.size(), o.history);
  }
  expect_no_leak(ds, d);
  // Deterministic for a seed, different for another.
  const TuneData again = tuning_cases(ds, o);
  ASSERT_EQ(again.train.size(), d.train.size());
  for (std::size_t k = 0; k < d.train.size(); ++k) {
    EXPECT_EQ(again.train[k].user, d.train[k].user);
    EXPECT_EQ(again.train[k].candidates, d.train[k].candidates);
  }
  o.seed = 7;
  const TuneData other = tuning_cases(ds, o);
  bool differs = false;
  for (std::size_t k = 0; k < d.train.size(); ++k)
    differs |= other.train[k].candidates != d.train[k].candidates;
  EXPECT_TRUE(differs);
}

TEST(TuningCases, AmazonGamesNeverShowsTheTestTarget) {
  const auto dir = chatrec::testing::data_dir();
  if (!std::filesystem::exists(chatrec::testing::games_dir()))
    GTEST_SKIP() << "Amazon Games data not found under " << dir;
  const data::Dataset ds = data::load_named("games", dir);
  TuneOptions o;
  o.examples = 3000;
  o.validation_users = 200;
  expect_no_leak(ds, tuning_cases(ds, o));
}

// The seq loss trains on exactly the tokens inference scores: the sequence prompt with the whole
// window (history and target) as the reply, and a term on every token of every line, predicted
// from the token before it: the loss is the mean over lines of -log p(line), summed over its
// tokens.
void expect_sequence_encoding(const data::Dataset& ds, const llm::runtime::GgufFile& file,
                              const TuneOptions& o, const TuneCase& c) {
  namespace rt = llm::runtime;
  const rt::TrainingSequence s = training_sequence(ds, file, o, c);
  const rt::Tokenizer tok(file);
  const rt::ChatTemplate chat = rt::ChatTemplate::detect(file, tok);
  std::vector<std::string> lines;
  for (auto i : c.history) lines.push_back(display_title(ds.item(i)));
  lines.push_back(display_title(ds.item(c.target)));
  EXPECT_EQ(s.tokens, chat.render(tok, sequence_prompt(builtin_templates(), lines), true));
  const std::size_t prefix =
      chat.render(tok, sequence_prompt(builtin_templates(), {}), true).size();
  ASSERT_EQ(s.terms.size(), s.tokens.size() - prefix);
  for (std::size_t k = 0; k < s.terms.size(); ++k) {
    EXPECT_EQ(s.terms[k].position, static_cast<int>(prefix + k) - 1);
    EXPECT_EQ(s.terms[k].target, s.tokens[prefix + k]);
    EXPECT_TRUE(s.terms[k].classes.empty());
    EXPECT_FLOAT_EQ(s.terms[k].weight, 1.0f / static_cast<float>(lines.size()));
  }
  // The last line is the target's, as inference scores a candidate: title, then newline.
  const std::vector<int> last = tok.encode(lines.back() + "\n", false);
  EXPECT_TRUE(
      std::equal(last.begin(), last.end(), s.tokens.end() - static_cast<long>(last.size())));
}

TEST(TuningSequence, TrainsOnTheTokensInferenceScores) {
  const auto bytes = llm::runtime::testing::make_tiny_model({});
  const llm::runtime::GgufFile tiny = llm::runtime::GgufFile::parse(bytes);
  const data::Dataset ds = testdata::synthetic(30, 30, false);
  TuneOptions o;
  o.loss = "seq";
  o.history = 4;
  o.examples = 10;
  o.validation_users = 0;
  const TuneData d = tuning_cases(ds, o);
  ASSERT_FALSE(d.train.empty());
  for (const auto& c : d.train) expect_sequence_encoding(ds, tiny, o, c);
  // Real titles through the real tokenizer, where merges could cross a line break.
  const auto model = chatrec::testing::real_model_path();
  if (!model || !std::filesystem::exists(chatrec::testing::games_dir()))
    GTEST_SKIP() << "real model or Amazon Games data not found";
  const data::Dataset games = data::load_named("games", chatrec::testing::data_dir());
  const llm::runtime::GgufFile real = llm::runtime::GgufFile::open(*model);
  o.history = 20;
  o.examples = 60;
  for (const auto& c : tuning_cases(games, o).train) expect_sequence_encoding(games, real, o, c);
}

// All of the ml100k-topk windows, 100 validation users.
TuneOptions every_movielens_window() {
  TuneOptions o;
  o.protocol = "ml100k-topk";
  o.examples = 100000;
  o.validation_users = 100;
  return o;
}

// The ml100k-topk split the tuner reads for `seed`: its test pairs, and the likes held out of 100
// validation users (what the Chat-Rec fusion weight is chosen on).
struct MovieLensSplit {
  MovieLensSplit(const data::Dataset& ds, std::uint64_t seed)
      : split(data::split_topk_holdout(ds, seed)),
        train(ds.num_users(), ds.num_items(), split.train),
        validation(data::split_liked_validation(train, seed, 100)) {
    for (const auto& x : split.test) test.insert({x.user, x.item});
  }
  bool validation_like(data::UserIndex u, data::ItemIndex i) const {
    const auto h = validation.held.find(u);
    return h != validation.held.end() && std::binary_search(h->second.begin(), h->second.end(), i);
  }
  data::Split split;
  data::InteractionMatrix train;
  data::LikedHoldout validation;
  std::set<std::pair<data::UserIndex, data::ItemIndex>> test;
};

// ml100k-topk: no case shows a test item of its user (target, candidate or history), training
// never shows a like held out of a validation user (what the Chat-Rec fusion weight is chosen on),
// and validation targets are exactly such held-out likes; for both window orders.
class MovieLensTuningCases : public ::testing::TestWithParam<std::string> {};

TEST_P(MovieLensTuningCases, UseTheTrainingSplitWithoutTheValidationLikes) {
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir()))
    GTEST_SKIP() << "MovieLens-100K not found under " << chatrec::testing::ml100k_dir();
  const data::Dataset ds = data::load_named("ml-100k", chatrec::testing::data_dir());
  TuneOptions o = every_movielens_window();
  o.window_order = GetParam();
  const TuneData d = tuning_cases(ds, o);
  const MovieLensSplit s(ds, o.seed);
  const auto& test = s.test;
  const auto& train = s.train;
  const data::LikedHoldout& holdout = s.validation;
  auto held = [&](data::UserIndex u, data::ItemIndex i) { return s.validation_like(u, i); };
  ASSERT_GT(d.train.size(), 2000u);
  EXPECT_EQ(d.validation.size(), 100u);
  std::size_t windows_of_validation_users = 0;
  for (const auto* cases : {&d.train, &d.validation}) {
    for (const TuneCase& c : *cases) {
      EXPECT_EQ(c.candidates.size(), o.negatives + 1);
      EXPECT_EQ(std::count(c.candidates.begin(), c.candidates.end(), c.target), 1);
      EXPECT_LE(c.history.size(), o.history);
      for (auto i : c.candidates) EXPECT_FALSE(test.count({c.user, i}));
      for (auto i : c.history) EXPECT_FALSE(test.count({c.user, i}));
      for (auto i : c.history) EXPECT_FALSE(held(c.user, i));
      if (cases == &d.validation) {
        EXPECT_TRUE(held(c.user, c.target));
      } else {
        EXPECT_FALSE(held(c.user, c.target));
        EXPECT_GE(train.ratings_of(c.user)[static_cast<std::size_t>(
                      std::lower_bound(train.items_of(c.user).begin(), train.items_of(c.user).end(),
                                       c.target) -
                      train.items_of(c.user).begin())],
                  4.0f);
        windows_of_validation_users += holdout.held.count(c.user);
      }
    }
  }
  // Validation users still train on their remaining likes.
  EXPECT_GT(windows_of_validation_users, 0u);
}

INSTANTIATE_TEST_SUITE_P(WindowOrders, MovieLensTuningCases, ::testing::Values("time", "random"));

// Random window order shuffles each user's likes before cutting: the same likes are trained on
// (as history or target), the validation cases do not change, but windows are no longer runs of
// consecutive likes.
TEST(TuningCases, RandomWindowOrderTrainsOnTheSameLikesInAnotherOrder) {
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir()))
    GTEST_SKIP() << "MovieLens-100K not found under " << chatrec::testing::ml100k_dir();
  const data::Dataset ds = data::load_named("ml-100k", chatrec::testing::data_dir());
  TuneOptions o = every_movielens_window();
  const TuneData by_time = tuning_cases(ds, o);
  o.window_order = "random";
  const TuneData shuffled = tuning_cases(ds, o);
  auto likes_per_user = [](const TuneData& d) {
    std::map<data::UserIndex, std::multiset<data::ItemIndex>> likes;
    for (const TuneCase& c : d.train) {
      likes[c.user].insert(c.target);
      likes[c.user].insert(c.history.begin(), c.history.end());
    }
    return likes;
  };
  // Cutting from the end leaves out one like when a user's count is one past a window: which one
  // depends on the order, so the sets may differ by that like only.
  const auto time_likes = likes_per_user(by_time), shuffled_likes = likes_per_user(shuffled);
  ASSERT_EQ(time_likes.size(), shuffled_likes.size());
  for (const auto& [user, likes] : time_likes) {
    const auto& other = shuffled_likes.at(user);
    EXPECT_EQ(likes.size(), other.size()) << "user " << user;
    std::vector<data::ItemIndex> differ;
    std::set_symmetric_difference(likes.begin(), likes.end(), other.begin(), other.end(),
                                  std::back_inserter(differ));
    EXPECT_LE(differ.size(), 2u) << "user " << user;
  }
  ASSERT_EQ(by_time.validation.size(), shuffled.validation.size());
  for (std::size_t k = 0; k < by_time.validation.size(); ++k) {
    EXPECT_EQ(by_time.validation[k].target, shuffled.validation[k].target);
    EXPECT_EQ(by_time.validation[k].history, shuffled.validation[k].history);
  }
  // A window of the time order is a run of the user's likes by time; count windows whose
  // history is no longer sorted by the user's like order.
  const data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  std::size_t long_windows = 0, out_of_time = 0;
  for (const TuneCase& c : shuffled.train) {
    if (c.history.size() < 5) continue;  // short ones can be in order by chance
    ++long_windows;
    const auto& seq = all.sequence(c.user);
    std::vector<std::ptrdiff_t> when;
    for (auto i : c.history) when.push_back(std::find(seq.begin(), seq.end(), i) - seq.begin());
    out_of_time += !std::is_sorted(when.begin(), when.end());
  }
  ASSERT_GT(long_windows, 1000u);
  EXPECT_GT(out_of_time, long_windows * 95 / 100);
  o.protocol = "games-seq";
  EXPECT_THROW(tuning_cases(ds, o), InputError);
  o.protocol = "ml100k-topk";
  o.window_order = "sideways";
  EXPECT_THROW(tuning_cases(ds, o), InputError);
}

// Hard candidates: each instruction lists EASE's top 20 for the user, fitted without the user's
// held-out likes, in EASE's order; the targets are those likes among them. Validation cases are
// exactly the ones `chatrec eval --fusion` ranks (EASE fitted without the validation likes, no
// exclusions); training lists never show a test item or a validation like, even as a negative;
// several rounds give one user instructions with different held-out likes. The label encoding
// spreads the loss over every target among the options.
// Shuffled options: the same cases as in the recommender's order, each listed in a seeded
// permutation, so the first letter is the recommender's top pick only about as often as chance;
// validation cases keep the recommender's order (the permutation is applied when they are listed,
// with listed_order, as the rerank lists them).
TEST(TuningCases, ShuffledOptionsAreTheSameCandidatesInASeededPermutation) {
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir()))
    GTEST_SKIP() << "MovieLens-100K not found under " << chatrec::testing::ml100k_dir();
  const data::Dataset ds = data::load_named("ml-100k", chatrec::testing::data_dir());
  TuneOptions o = every_movielens_window();
  o.loss = "label";
  o.candidates = "ease";
  o.negatives = 19;
  o.examples = 300;
  o.validation_users = 50;
  const TuneData ranked = tuning_cases(ds, o);
  o.option_order = "shuffled";
  const TuneData shuffled = tuning_cases(ds, o);
  EXPECT_EQ(tuning_cases(ds, o).train[7].candidates, shuffled.train[7].candidates);
  ASSERT_EQ(ranked.train.size(), shuffled.train.size());
  std::size_t same_first = 0;
  for (std::size_t k = 0; k < ranked.train.size(); ++k) {
    const TuneCase& a = ranked.train[k];
    const TuneCase& b = shuffled.train[k];
    EXPECT_EQ(a.user, b.user);
    EXPECT_EQ(a.held, b.held);
    EXPECT_EQ(a.history, b.history);
    EXPECT_EQ(std::multiset<data::ItemIndex>(a.candidates.begin(), a.candidates.end()),
              std::multiset<data::ItemIndex>(b.candidates.begin(), b.candidates.end()));
    same_first += a.candidates.front() == b.candidates.front();
  }
  EXPECT_LT(same_first, ranked.train.size() / 5) << "chance is 1 in 20";
  ASSERT_EQ(ranked.validation.size(), shuffled.validation.size());
  for (std::size_t k = 0; k < ranked.validation.size(); ++k)
    EXPECT_EQ(ranked.validation[k].candidates, shuffled.validation[k].candidates);

  const auto p = listed_order(o.seed, 5, 20);
  EXPECT_EQ(p, listed_order(o.seed, 5, 20));
  EXPECT_NE(p, listed_order(o.seed, 6, 20));
  EXPECT_NE(p, listed_order(o.seed + 1, 5, 20));
  std::vector<std::size_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t k = 0; k < 20; ++k) EXPECT_EQ(sorted[k], k);

  o.option_order = "sideways";
  EXPECT_THROW(tuning_cases(ds, o), InputError);
  o.option_order = "shuffled";
  o.candidates = "random";
  EXPECT_THROW(tuning_cases(ds, o), InputError);
}

TEST(TuningCases, HardCandidatesAreTheRecommendersTopWithTheHeldOutLikesAsTargets) {
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir()))
    GTEST_SKIP() << "MovieLens-100K not found under " << chatrec::testing::ml100k_dir();
  const data::Dataset ds = data::load_named("ml-100k", chatrec::testing::data_dir());
  TuneOptions o = every_movielens_window();
  o.loss = "label";
  o.candidates = "ease";
  o.negatives = 19;
  o.examples = 1500;
  const TuneData d = tuning_cases(ds, o);
  const MovieLensSplit s(ds, o.seed);
  const auto& test = s.test;
  const data::LikedHoldout& validation = s.validation;
  const data::InteractionMatrix kept(ds.num_users(), ds.num_items(), validation.kept);
  auto validation_like = [&](data::UserIndex u, data::ItemIndex i) {
    return s.validation_like(u, i);
  };
  auto rating = [&](const data::InteractionMatrix& m, data::UserIndex u, data::ItemIndex i) {
    const auto items = m.items_of(u);
    const auto at = std::lower_bound(items.begin(), items.end(), i);
    return at != items.end() && *at == i
               ? m.ratings_of(u)[static_cast<std::size_t>(at - items.begin())]
               : -1.0f;
  };
  // Validation: what the evaluation's fusion validation ranks for the same users.
  auto ease = recommend::make_recommender("ease");
  recommend::FitOptions fit;
  fit.progress = false;
  ease->fit(kept, fit);
  ASSERT_EQ(d.validation.size(), validation.users.size());
  for (const TuneCase& c : d.validation) {
    std::vector<data::ItemIndex> top;
    for (const auto& x : ease->recommend(c.user, {})) top.push_back(x.item);
    EXPECT_EQ(c.candidates, top) << "user " << c.user;
    EXPECT_EQ(c.held, validation.held.at(c.user));
    EXPECT_EQ(c.history, latest_likes(kept, c.user, o.history));
  }
  ASSERT_EQ(d.train.size(), o.examples);
  std::map<data::UserIndex, std::set<std::vector<data::ItemIndex>>> held_sets;
  std::size_t several_targets = 0;
  for (const TuneCase& c : d.train) {
    ASSERT_EQ(c.candidates.size(), 20u);
    EXPECT_EQ(std::set<data::ItemIndex>(c.candidates.begin(), c.candidates.end()).size(), 20u);
    ASSERT_FALSE(c.held.empty());
    EXPECT_TRUE(std::binary_search(c.held.begin(), c.held.end(), c.target));
    EXPECT_EQ(std::count(c.candidates.begin(), c.candidates.end(), c.target), 1);
    EXPECT_LE(c.history.size(), o.history);
    std::size_t targets = 0;
    for (auto i : c.candidates) {
      EXPECT_FALSE(test.count({c.user, i}));
      EXPECT_FALSE(validation_like(c.user, i));
      EXPECT_EQ(rating(kept, c.user, i) >= 0.0f,
                std::binary_search(c.held.begin(), c.held.end(), i))
          << "a listed item the user rated must be one of the held-out likes";
      targets += std::binary_search(c.held.begin(), c.held.end(), i);
    }
    several_targets += targets > 1;
    for (auto i : c.held) {
      EXPECT_GE(rating(kept, c.user, i), 4.0f);
      EXPECT_FALSE(validation_like(c.user, i));
    }
    for (auto i : c.history) {
      EXPECT_GE(rating(kept, c.user, i), 4.0f);
      EXPECT_FALSE(std::binary_search(c.held.begin(), c.held.end(), i));
      EXPECT_FALSE(validation_like(c.user, i));
    }
    held_sets[c.user].insert(c.held);
  }
  EXPECT_GT(several_targets, o.examples / 4);
  EXPECT_TRUE(std::any_of(held_sets.begin(), held_sets.end(), [](const auto& kv) {
    return kv.second.size() > 1;
  })) << "1,500 instructions need more than one round of held-out likes";
  // The loss terms: one per target among the options, at the answer position, over the 20 letters.
  const auto bytes = llm::runtime::testing::make_tiny_model({});
  const llm::runtime::GgufFile tiny = llm::runtime::GgufFile::parse(bytes);
  const TuneCase& c = *std::find_if(d.train.begin(), d.train.end(), [](const TuneCase& x) {
    return std::count_if(x.candidates.begin(), x.candidates.end(), [&](auto i) {
             return std::binary_search(x.held.begin(), x.held.end(), i);
           }) > 1;
  });
  const llm::runtime::TrainingSequence seq = training_sequence(ds, tiny, o, c);
  std::size_t hits = 0;
  for (auto i : c.candidates) hits += std::binary_search(c.held.begin(), c.held.end(), i);
  ASSERT_EQ(seq.terms.size(), hits);
  float weight = 0.0f;
  for (const auto& t : seq.terms) {
    EXPECT_EQ(t.position, static_cast<int>(seq.tokens.size()) - 1);
    EXPECT_EQ(t.classes.size(), 20u);
    weight += t.weight;
  }
  EXPECT_NEAR(weight, 1.0f, 1e-6f);
  // Refused where it cannot apply.
  TuneOptions games = o;
  games.protocol = "games-seq";
  EXPECT_THROW(tuning_cases(ds, games), InputError);
  TuneOptions unknown = o;
  unknown.candidates = "no-such-model";
  EXPECT_THROW(tuning_cases(ds, unknown), InputError);
}

std::vector<char> read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// A short run of the real command path on a tiny model the test writes: an adapter comes out, it
// loads against its base, and a run stopped halfway and resumed writes the same adapter as an
// uninterrupted one.
TEST(Tune, StoppedAndResumedRunEqualsUninterruptedRun) {
  const auto dir = std::filesystem::temp_directory_path() / "chatrec_tune_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  llm::runtime::testing::TinyModelSpec spec;
  spec.n_ctx = 1024;
  const auto model_path = dir / "tiny.gguf";
  {
    const auto bytes = llm::runtime::testing::make_tiny_model(spec);
    std::ofstream(model_path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  const data::Dataset ds = testdata::synthetic(40, 30, false);
  TuneOptions o;
  o.model_path = model_path;
  o.loss = "label";
  o.examples = 8;
  o.batch = 2;
  o.rank = 2;
  o.history = 3;
  o.negatives = 3;
  o.validation_users = 4;
  o.threads = 2;
  o.lr = 1e-2;
  o.out = dir / "straight.gguf";
  const TuneSummary s = tune_adapter(ds, o);
  EXPECT_EQ(s.examples, 8u);
  EXPECT_EQ(s.steps, 4);
  EXPECT_GE(s.best_validation_hr1, 0.0);
  EXPECT_TRUE(std::filesystem::exists(o.out));

  TuneOptions half = o;
  half.out = dir / "resumed.gguf";
  half.stop_after = 4;
  tune_adapter(ds, half);
  EXPECT_TRUE(std::filesystem::exists(dir / "resumed.gguf.ckpt"));
  half.stop_after = 0;
  half.resume = true;
  const TuneSummary r = tune_adapter(ds, half);
  EXPECT_EQ(r.steps, 4);
  EXPECT_EQ(read_all(o.out), read_all(half.out));

  // The adapter fits its base and carries the ranking recipe.
  const llm::runtime::Model base(llm::runtime::GgufFile::open(model_path));
  const auto adapter = llm::runtime::LoraAdapter::load(o.out, base);
  EXPECT_EQ(adapter.rank, 2);
  EXPECT_EQ(adapter.info.at("instruct.scoring"), "label");
  EXPECT_EQ(adapter.info.at("instruct.history"), "3");
  // A checkpoint written with other options is refused rather than silently mixed in.
  TuneOptions other = half;
  other.lr = 5e-3;
  EXPECT_THROW(tune_adapter(ds, other), InputError);

  // A continuation starts from the adapter (its validation score is the one to beat, so the kept
  // adapter is never worse), and refuses an adapter that held out other users.
  TuneOptions more = o;
  more.init = o.out;
  more.skip_examples = 8;
  more.out = dir / "continued.gguf";
  const TuneSummary c = tune_adapter(ds, more);
  EXPECT_EQ(c.steps, 4);
  EXPECT_GE(c.best_validation_hr1, s.best_validation_hr1 - 1e-12);
  const auto continued = llm::runtime::LoraAdapter::load(more.out, base);
  EXPECT_EQ(continued.info.at("instruct.init").rfind("straight.gguf ", 0), 0u);
  EXPECT_NE(continued.info.at("instruct.recipe").find("skip=8"), std::string::npos);
  EXPECT_TRUE(continued.info.contains("instruct.pmi_weight"));
  TuneOptions moved = more;
  moved.validation_users = 5;
  moved.out = dir / "moved.gguf";
  EXPECT_THROW(tune_adapter(ds, moved), InputError);
  std::filesystem::remove_all(dir);
}

// --skip-examples continues down the same seeded user order: the skipped run's users and the
// continuation's are disjoint, and together they are the longer run's.
TEST(TuningCases, SkippedExamplesAreTheNextUsersInTheSameOrder) {
  const data::Dataset ds = testdata::synthetic(80, 60, false);
  TuneOptions o = cases_of(40, 10);
  const TuneData both = tuning_cases(ds, o);
  o.examples = 20;
  const TuneData first = tuning_cases(ds, o);
  o.skip_examples = 20;
  const TuneData next = tuning_cases(ds, o);
  ASSERT_EQ(both.train.size(), 40u);
  ASSERT_EQ(next.train.size(), 20u);
  for (std::size_t k = 0; k < 20; ++k) {
    EXPECT_EQ(first.train[k].user, both.train[k].user);
    EXPECT_EQ(next.train[k].user, both.train[20 + k].user);
    EXPECT_EQ(next.train[k].candidates, both.train[20 + k].candidates);
  }
  EXPECT_EQ(next.validation.size(), first.validation.size());
  for (std::size_t k = 0; k < next.validation.size(); ++k)
    EXPECT_EQ(next.validation[k].user, first.validation[k].user);
  expect_no_leak(ds, next);
}

}  // namespace
}  // namespace chatrec::instruct
