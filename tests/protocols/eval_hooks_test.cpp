// LLM stages register with `chatrec eval` statically, by name (cli/eval_hooks.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <span>

#include "cli/eval_hooks.h"
#include "protocols/rankers.h"

namespace chatrec::protocols {
namespace {

class NullRanker : public CandidateRanker {
 public:
  std::string name() const override { return "null"; }
  std::vector<float> score(UserIndex, std::span<const ItemIndex>,
                           std::span<const ItemIndex> c) override {
    return std::vector<float>(c.size(), 0.0f);
  }
  StageStats stats() const override { return {}; }
};

// A static registration, as chat/ and instruct/ do from their cmd_*.cpp files.
static cli::CandidateRankerHook null_hook("null-for-test",
                                          [](const data::Dataset&, const data::InteractionMatrix&,
                                             const recommend::Recommender&,
                                             const cli::LlmEvalOptions& o) {
                                            EXPECT_EQ(o.ranker, "null-for-test");
                                            return std::make_unique<NullRanker>();
                                          });

TEST(EvalHooks, StaticRegistrationIsFoundByName) {
  EXPECT_EQ(cli::find_eval_hook<TopkReranker>("null-for-test"), nullptr);
  const auto* f = cli::find_eval_hook<CandidateRanker>("null-for-test");
  ASSERT_NE(f, nullptr);
  data::Dataset ds;
  data::InteractionMatrix m;
  struct : recommend::Recommender {
    std::string name() const override { return "x"; }
    recommend::Params params() const override { return {}; }
    void fit(const data::InteractionMatrix&, const recommend::FitOptions&) override {}
    void score(UserIndex, std::span<float>) const override {}
    void save_state(std::ostream&) const override {}
    void load_state(std::istream&) override {}
  } base;
  cli::LlmEvalOptions o;
  o.ranker = "null-for-test";
  auto ranker = (*f)(ds, m, base, o);
  EXPECT_EQ(ranker->name(), "null");
  auto names = cli::eval_hook_names<CandidateRanker>();
  EXPECT_NE(std::find(names.begin(), names.end(), "null-for-test"), names.end());
}

}  // namespace
}  // namespace chatrec::protocols
