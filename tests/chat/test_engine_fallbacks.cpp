// ChatEngine's deterministic paths on a small synthetic catalogue with the scripted MockModel: LLM
// failures degrade to the classic ranking (flagged), the parser maps generated lists back,
// constraints and dislikes hold. The real-model behaviour is covered by test_chat_integration.cpp.
#include <gtest/gtest.h>

#include <algorithm>

#include "chat/catalog.h"
#include "chat/engine.h"
#include "llm/mock_model.h"
#include "tiny_catalog.h"

namespace chatrec::chat {
namespace {

using fixtures::tiny_catalog;

TEST(EngineFallbacks, LlmFailureGivesTheClassicRankingFlagged) {
  auto lm = std::make_shared<llm::MockModel>();
  lm->fail_with(llm::LlmError::Kind::kTransport);
  EngineOptions options;
  options.rerank = RerankMode::kGenerate;
  ChatEngine engine(tiny_catalog(), lm, nullptr, options);
  const std::string id = engine.create_conversation("2");
  std::string streamed;
  const auto r = engine.turn(id, "Can you recommend some comedies?",
                             [&](std::string_view s) { streamed += s; });
  EXPECT_EQ(r.intent, Intent::kRecommend);
  EXPECT_EQ(r.intent_decided_by, "rules");
  EXPECT_TRUE(r.degraded);
  EXPECT_FALSE(r.notes.empty());
  ASSERT_EQ(r.recommendations.size(), 5u);
  for (const auto& rec : r.recommendations) {
    EXPECT_EQ(rec.categories, std::vector<std::string>{"Comedy"});
    EXPECT_EQ(rec.source, Source::kCollaborative);
  }
  EXPECT_EQ(streamed, r.reply);
  EXPECT_NE(r.reply.find("recommender's own order"), std::string::npos);
  EXPECT_GE(r.stats.failures.at("llm_error"), 1);
  const auto expected = engine.recommend_fast("2", "movies", 5, r.constraints);
  ASSERT_EQ(expected.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(r.recommendations[i].item_id, expected[i].item_id);
}

TEST(EngineFallbacks, GeneratedListIsMappedBackAndDislikesNeverReappear) {
  auto lm = std::make_shared<llm::MockModel>();
  // Intent and constraint calls get valid answers; list requests get the candidates in reverse
  // order.
  lm->set_responder(
      [](const std::vector<llm::Message>& m, const llm::GenerationOptions& o) -> std::string {
        if (!o.choices.empty())
          return m[1].content.find("\"\"\"\nI didn't like") != std::string::npos ? "feedback"
                                                                                 : "recommend";
        const std::string& u = m[1].content;
        if (u.find("JSON") != std::string::npos) return "{}";
        std::vector<std::string> titles;
        for (std::size_t pos = u.find("\n1. "); pos != std::string::npos;) {
          const auto start = u.find(". ", pos) + 2;
          const auto end = u.find(" [", start);
          titles.push_back(u.substr(start, end - start));
          const auto next = u.find('\n', pos + 1);
          if (next == std::string::npos || next + 1 >= u.size() ||
              !std::isdigit(static_cast<unsigned char>(u[next + 1])))
            break;
          pos = next;
        }
        std::string out;
        for (std::size_t i = 0; i < titles.size() && i < 5; ++i) {
          out += std::to_string(i + 1) + ". " + titles[titles.size() - 1 - i] + "\n";
        }
        return out;
      });
  EngineOptions options;
  options.rerank = RerankMode::kGenerate;
  options.hint_top1 = false;
  ChatEngine engine(tiny_catalog(), lm, nullptr, options);
  const std::string id = engine.create_conversation("2");
  auto r1 = engine.turn(id, "recommend something");
  ASSERT_EQ(r1.recommendations.size(), 5u);
  EXPECT_FALSE(r1.degraded);
  EXPECT_EQ(r1.intent_decided_by, "llm");
  const auto base = engine.recommend_fast("2", "movies", 20);
  EXPECT_EQ(r1.recommendations[0].item_id,
            base.back().item_id);  // the LLM's first pick was the last candidate

  const std::string disliked = r1.recommendations[0].item_id;
  auto r2 = engine.turn(id, "I didn't like " + r1.recommendations[0].title);
  EXPECT_EQ(r2.intent, Intent::kFeedback);
  EXPECT_TRUE(engine.conversation(id).is_disliked({"movies", disliked}));
  for (int i = 0; i < 3; ++i) {
    auto r = engine.turn(id, "recommend more");
    for (const auto& rec : r.recommendations) EXPECT_NE(rec.item_id, disliked);
  }
  EXPECT_EQ(engine.conversation(id).turns, 5);
  EXPECT_EQ(engine.messages(id).size(), 10u);
}

TEST(EngineFallbacks, UnknownConversationIsNotFound) {
  ChatEngine engine(tiny_catalog(), nullptr, nullptr, {});
  try {
    engine.turn("nope", "hi");
    FAIL();
  } catch (const ChatError& e) {
    EXPECT_EQ(e.kind(), ChatError::Kind::kNotFound);
  }
}

TEST(EngineFallbacks, ColdStartItemsJoinMatchingRequests) {
  auto lm = std::make_shared<llm::MockModel>();
  lm->fail_with(llm::LlmError::Kind::kTimeout);  // chat fails; embeddings (bag of words) still work
  ChatEngine engine(tiny_catalog(), lm, nullptr, {});
  data::Item item;
  item.id = "new-1";
  item.title = "Pirates of the Nebula";
  item.categories = {"Comedy"};
  item.year = 1999;
  item.text["description"] = "space pirates hunt a treasure across the galaxy";
  EXPECT_EQ(engine.add_items("movies", {item}), 1u);
  const std::string id = engine.create_conversation("2");
  const auto r = engine.turn(id, "recommend a comedy about space pirates and treasure");
  const auto it = std::find_if(r.recommendations.begin(), r.recommendations.end(),
                               [](const Recommendation& x) { return x.item_id == "new-1"; });
  ASSERT_NE(it, r.recommendations.end());
  EXPECT_EQ(it->source, Source::kColdStart);
}

// An engine whose LLM cannot embed (down at start-up, say) still takes new items; they wait and
// join cold-start retrieval once the LLM answers.
TEST(EngineFallbacks, ItemsAddedWhileTheLlmIsDownWaitAndAreIndexedWhenItAnswers) {
  struct FlakyEmbedder : llm::MockModel {
    std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override {
      if (down) throw llm::LlmError(llm::LlmError::Kind::kTransport, "connection refused");
      return MockModel::embed(texts);
    }
    int embedding_size() const override {
      if (down) throw llm::LlmError(llm::LlmError::Kind::kTransport, "connection refused");
      return MockModel::embedding_size();
    }
    bool down = true;
  };
  auto lm = std::make_shared<FlakyEmbedder>();
  lm->fail_with(llm::LlmError::Kind::kTransport);  // chat is down too
  EngineOptions options;
  options.cold_start_retry_seconds = 0;
  ChatEngine engine(tiny_catalog(), lm, nullptr, options);  // does not need the LLM to open
  data::Item item;
  item.id = "new-1";
  item.title = "Pirates of the Nebula";
  item.categories = {"Comedy"};
  item.text["description"] = "space pirates hunt a treasure across the galaxy";
  EXPECT_EQ(engine.add_items("movies", {item}), 1u);
  const std::string id = engine.create_conversation("2");
  const std::string ask = "recommend a comedy about space pirates and treasure";
  auto r = engine.turn(id, ask);
  EXPECT_TRUE(r.degraded);
  EXPECT_FALSE(r.recommendations.empty());  // the classic ranking answers
  auto has_new = [](const TurnResult& t) {
    return std::any_of(t.recommendations.begin(), t.recommendations.end(),
                       [](const Recommendation& x) { return x.item_id == "new-1"; });
  };
  EXPECT_FALSE(has_new(r));
  EXPECT_TRUE(std::any_of(r.notes.begin(), r.notes.end(), [](const std::string& n) {
    return n.find("wait for the LLM") != std::string::npos;
  }));
  lm->down = false;  // the LLM's embeddings answer again
  r = engine.turn(engine.create_conversation("2"), ask);
  EXPECT_TRUE(has_new(r));
}

}  // namespace
}  // namespace chatrec::chat
