#include <gtest/gtest.h>

#include "chat/intent.h"
#include "llm/mock_model.h"

namespace chatrec::chat {
namespace {

// A backend that ignores the choices (as a remote server may).
class RawModel : public llm::MockModel {
 public:
  explicit RawModel(std::string answer) : answer_(std::move(answer)) {}
  llm::Completion chat(const std::vector<llm::Message>&, const llm::GenerationOptions&) override {
    return {answer_, "stop", {}};
  }

 private:
  std::string answer_;
};

TEST(Intent, RulesClassifyTypicalMessages) {
  EXPECT_EQ(classify_intent_rules("Can you recommend some action movies?"), Intent::kRecommend);
  EXPECT_EQ(classify_intent_rules("only comedies please"), Intent::kRecommend);
  EXPECT_EQ(classify_intent_rules("now recommend some video games"), Intent::kRecommend);
  EXPECT_EQ(classify_intent_rules("Why did you recommend Fargo to me?"), Intent::kExplain);
  EXPECT_EQ(classify_intent_rules("I didn't like Toy Story"), Intent::kFeedback);
  EXPECT_EQ(classify_intent_rules("who directed Heat?"), Intent::kItemQuestion);
  EXPECT_EQ(classify_intent_rules("hello there"), Intent::kOther);
}

TEST(Intent, TheLlmDecidesByConstrainedChoice) {
  llm::MockModel lm;
  lm.queue_reply("item_question");
  Stats st;
  const auto d = classify_intent(&lm, "tell me something about Fargo", {}, 10, &st);
  EXPECT_EQ(d.intent, Intent::kItemQuestion);
  EXPECT_EQ(d.decided_by, "llm");
  ASSERT_EQ(lm.seen_prompts().size(), 1u);
  EXPECT_NE(lm.seen_prompts()[0][1].content.find("\"\"\"\ntell me something about Fargo\n\"\"\""),
            std::string::npos);
  EXPECT_EQ(st.llm_calls, 1);
}

TEST(Intent, LlmFailureFallsBackToRules) {
  llm::MockModel lm;
  lm.fail_with(llm::LlmError::Kind::kTimeout);
  Stats st;
  const auto d = classify_intent(&lm, "Why did you recommend Fargo?", {}, 10, &st);
  EXPECT_EQ(d.intent, Intent::kExplain);
  EXPECT_EQ(d.decided_by, "rules");
  EXPECT_EQ(st.failures["timeout"], 1);
}

TEST(Intent, NonsenseAnswerFallsBackToRules) {
  RawModel lm("banana split");
  Stats st;
  const auto d = classify_intent(&lm, "I didn't like Heat", {}, 10, &st);
  EXPECT_EQ(d.intent, Intent::kFeedback);
  EXPECT_EQ(d.decided_by, "rules");
  EXPECT_EQ(st.failures["unparseable"], 1);
}

TEST(Intent, ProseAroundAValidChoiceIsAccepted) {
  RawModel lm("The category is: explain.");
  const auto d = classify_intent(&lm, "hmm, what about that one", {}, 10, nullptr);
  EXPECT_EQ(d.intent, Intent::kExplain);
  EXPECT_EQ(d.decided_by, "llm");
}

TEST(Intent, AnExplicitPhraseOverridesAContradictingLlm) {
  llm::MockModel lm;
  lm.queue_reply("other");
  const auto d = classify_intent(&lm, "Why did you recommend Fargo?", {}, 10, nullptr);
  EXPECT_EQ(d.intent, Intent::kExplain);
  EXPECT_EQ(d.decided_by, "rules");
  EXPECT_FALSE(d.note.empty());
}

}  // namespace
}  // namespace chatrec::chat
