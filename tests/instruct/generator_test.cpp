#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/loaders.h"
#include "data/splits.h"
#include "instruct/generator.h"
#include "llm/mock_model.h"
#include "test_data.h"
#include "testing/test_env.h"

namespace chatrec::instruct {
namespace {

struct Run {
  GenerateSummary summary;
  std::vector<Instruction> instructions;
  std::string jsonl;
};

Run run(const data::Dataset& ds, const GenerateOptions& o,
        OutputFormat format = OutputFormat::kOpenAIChat) {
  Run r;
  r.summary = generate_instructions(ds, builtin_templates(), o, [&](const Instruction& ins) {
    r.instructions.push_back(ins);
    r.jsonl += to_jsonl(ins, format);
    r.jsonl += '\n';
  });
  return r;
}

GenerateOptions small_options() {
  GenerateOptions o;
  o.eval_users = 15;
  o.per_user = 6;
  o.progress = false;
  return o;
}

TEST(InstructGenerate, SameSeedGivesByteIdenticalOutputAndOtherSeedsDiffer) {
  const auto ds = testdata::synthetic();
  const auto a = run(ds, small_options());
  const auto b = run(ds, small_options());
  ASSERT_FALSE(a.jsonl.empty());
  EXPECT_EQ(a.jsonl, b.jsonl);
  auto o = small_options();
  o.seed = 7;
  EXPECT_NE(run(ds, o).jsonl, a.jsonl);
}

TEST(InstructGenerate, NoDuplicateInstructions) {
  const auto ds = testdata::synthetic();
  auto o = small_options();
  o.per_user = 30;  // far more than the distinct targets, so collisions are attempted
  const auto r = run(ds, o);
  std::set<std::string> lines;
  std::istringstream in(r.jsonl);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_TRUE(lines.insert(line).second) << line;
  }
  EXPECT_EQ(n, r.summary.instructions);
  EXPECT_GT(r.summary.duplicates_skipped + r.summary.unfillable_skipped, 0u);
}

// The check the evaluation depends on: nothing of protocol C's test cases reaches training data.
void expect_no_leakage(const data::Dataset& ds, const GenerateOptions& o, const Run& r) {
  const data::Split split = data::split_leave_last_out(ds);
  const auto eval = data::sample_users(split.eval_users, o.eval_users, o.eval_seed);
  ASSERT_EQ(evaluation_users(ds, o), eval);
  std::set<data::UserIndex> eval_set(eval.begin(), eval.end());
  std::map<data::UserIndex, data::ItemIndex> test_target;
  for (const auto& x : split.test) test_target[x.user] = x.item;
  std::set<data::ItemIndex> eval_targets;
  for (auto u : eval) eval_targets.insert(test_target.at(u));
  std::map<data::UserIndex, std::vector<data::ItemIndex>> sequences;
  for (const auto& x : ds.interactions()) sequences[x.user].push_back(x.item);
  ASSERT_FALSE(r.instructions.empty());
  for (const auto& ins : r.instructions) {
    ASSERT_FALSE(eval_set.count(ins.user)) << "evaluation user " << ins.user << " in training";
    auto it = test_target.find(ins.user);
    if (it != test_target.end()) {
      EXPECT_NE(ins.target, it->second) << "the user's own test target used as a training target";
      for (auto i : ins.items)
        EXPECT_NE(i, it->second) << "test target mentioned in " << ins.template_id;
      // And as text: the test target's title appears only if some other mentioned item shares it.
      const std::string& title = ds.item(it->second).title;
      bool shared = false;
      for (auto i : ins.items) shared = shared || ds.item(i).title == title;
      if (!shared) {
        EXPECT_EQ(ins.text.prompt.find(title), std::string::npos) << ins.text.prompt;
        EXPECT_EQ(ins.text.answer.find(title), std::string::npos) << ins.text.answer;
      }
    }
    // Items outside the user's own history are sampled negatives: never an evaluation user's test
    // target.
    const auto& own = sequences.at(ins.user);
    for (auto i : ins.items) {
      if (std::find(own.begin(), own.end(), i) == own.end()) {
        EXPECT_FALSE(eval_targets.count(i))
            << "evaluation test target " << i << " sampled as a negative";
      }
    }
  }
}

TEST(InstructGenerate, NoEvaluationUserAndNoTestTargetInTrainingInstructions) {
  const auto ds = testdata::synthetic();
  const auto o = small_options();
  expect_no_leakage(ds, o, run(ds, o));
}

TEST(InstructGenerate, NoLeakageOnMovieLens) {
  const auto dir = testing::ml100k_dir();
  if (!std::filesystem::exists(dir / "u.data")) GTEST_SKIP() << "no ml-100k at " << dir;
  const auto ds = data::load_movielens_100k(dir);
  GenerateOptions o;
  o.eval_users = 200;
  o.per_user = 3;
  o.progress = false;
  const auto r = run(ds, o);
  expect_no_leakage(ds, o, r);
  EXPECT_EQ(r.summary.users_used + r.summary.eval_users_excluded, ds.num_users());
  // MovieLens has genres, so I2 cells are filled; P2/I1 need an LLM.
  EXPECT_GT(r.summary.per_cell.count("P1,I2,T3"), 0u);
  EXPECT_GT(r.summary.unfillable_cells.count("P2,I0,T3"), 0u);
}

TEST(InstructGenerate, BothFormatsParseWithTheRequiredKeys) {
  const auto ds = testdata::synthetic();
  for (auto format : {OutputFormat::kOpenAIChat, OutputFormat::kAlpaca}) {
    const auto r = run(ds, small_options(), format);
    std::istringstream in(r.jsonl);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      const auto j = nlohmann::json::parse(line);
      if (format == OutputFormat::kOpenAIChat) {
        ASSERT_EQ(j.size(), 1u);
        const auto& m = j.at("messages");
        ASSERT_EQ(m.size(), 3u);
        EXPECT_EQ(m[0].at("role"), "system");
        EXPECT_EQ(m[1].at("role"), "user");
        EXPECT_EQ(m[2].at("role"), "assistant");
        for (const auto& msg : m) EXPECT_FALSE(msg.at("content").get<std::string>().empty());
      } else {
        EXPECT_TRUE(j.at("instruction").is_string());
        EXPECT_TRUE(j.at("input").is_string());
        EXPECT_FALSE(j.at("output").get<std::string>().empty());
      }
    }
    EXPECT_EQ(n, r.summary.instructions);
  }
}

TEST(InstructGenerate, AnswersMatchTheTaskForm) {
  const auto ds = testdata::synthetic();
  auto o = small_options();
  o.per_user = 10;
  const auto r = run(ds, o);
  const TemplateSet& set = builtin_templates();
  std::size_t yes = 0, no = 0;
  for (const auto& ins : r.instructions) {
    const Template& t = set.at(ins.template_id);
    const std::string target = ds.item(ins.target).title;
    if (t.output == "yes_no") {
      ASSERT_TRUE(ins.text.answer == "Yes" || ins.text.answer == "No") << ins.text.answer;
      (ins.text.answer == "Yes" ? yes : no)++;
    } else if (t.output == "candidate" || t.output == "choice" || t.output == "title") {
      EXPECT_EQ(ins.text.answer, target);
      if (t.output != "title") {
        EXPECT_NE(ins.text.prompt.find(target), std::string::npos);
      }
    }
    if (t.cell.t == 3) {
      // Target plus 9 negatives: ten numbered lines.
      EXPECT_NE(ins.text.prompt.find("\n10. "), std::string::npos) << ins.text.prompt;
    }
    for (const auto& name : prompt_field_names()) {
      EXPECT_EQ(ins.text.prompt.find("{" + name + "}"), std::string::npos) << ins.text.prompt;
    }
  }
  EXPECT_GT(yes, 0u);
  EXPECT_GT(no, 0u);
  // Without an LLM, no P2 / I1 instruction is written and those cells are reported as unfillable.
  for (const auto& [cell, n] : r.summary.per_cell) {
    EXPECT_EQ(cell.find("P2"), std::string::npos) << cell;
    EXPECT_EQ(cell.find("I1"), std::string::npos) << cell;
  }
  EXPECT_TRUE(r.summary.unfillable_cells.count("P0,I1,T3"));
}

TEST(InstructGenerate, DataWithoutCategoriesReportsI2AsUnfillable) {
  const auto ds = testdata::synthetic(40, 60, /*with_categories=*/false);
  const auto r = run(ds, small_options());
  EXPECT_TRUE(r.summary.unfillable_cells.count("P1,I2,T3"));
  EXPECT_FALSE(r.summary.per_cell.count("P1,I2,T3"));
  bool noted = false;
  for (const auto& n : r.summary.notes) noted = noted || n.find("I2") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(InstructGenerate, LlmFieldsAreWrittenOnceAndCached) {
  const auto ds = testdata::synthetic(20, 60);
  testing::TempDir cache;
  llm::MockModel model;
  int calls = 0;
  model.set_responder([&](const std::vector<llm::Message>& m, const llm::GenerationOptions&) {
    ++calls;
    return m.back().content.find("taste") != std::string::npos
               ? "Likes fast action games."
               : "I want something to play with friends.";
  });
  auto o = small_options();
  o.eval_users = 5;
  o.llm = &model;
  o.cache_dir = cache.path();
  const auto first = run(ds, o);
  ASSERT_GT(calls, 0);
  EXPECT_EQ(first.summary.llm_calls, static_cast<std::size_t>(calls));
  EXPECT_GT(first.summary.per_cell.count("P2,I0,T3") + first.summary.per_cell.count("P2,I0,T0") +
                first.summary.per_cell.count("P2,I0,T1") + first.summary.per_cell.count("P2,I0,T2"),
            0u);
  const int after_first = calls;
  const auto second = run(ds, o);
  EXPECT_EQ(calls, after_first) << "second run must be served from the cache";
  EXPECT_EQ(second.summary.llm_calls, 0u);
  EXPECT_EQ(second.jsonl, first.jsonl);
}

TEST(InstructGenerate, FailingLlmSkipsItsFieldsAndCountsThem) {
  const auto ds = testdata::synthetic(20, 60);
  llm::MockModel model;
  model.fail_with(llm::LlmError::Kind::kTimeout);
  auto o = small_options();
  o.eval_users = 5;
  o.llm = &model;
  const auto r = run(ds, o);
  EXPECT_GT(r.summary.llm_failures, 0u);
  EXPECT_GT(r.summary.instructions, 0u);
  for (const auto& [cell, n] : r.summary.per_cell) EXPECT_EQ(cell.find("P2"), std::string::npos);
}

}  // namespace
}  // namespace chatrec::instruct
