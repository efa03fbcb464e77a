// ChatEngine turns as a user meets them, on the tiny synthetic catalogue without an LLM (the
// keyword rules decide): a message with feedback and a new request gets both, the structured
// actions reach their handlers directly, and a saved conversation leaves the user's history out
// and gets it back when it is loaded.
#include <gtest/gtest.h>

#include <algorithm>

#include "chat/engine.h"
#include "chat/intent.h"
#include "chat/sessions.h"
#include "store/store.h"
#include "testing/test_env.h"
#include "tiny_catalog.h"

namespace chatrec::chat {
namespace {

using fixtures::tiny_catalog;

TEST(EngineTurns, FeedbackAndANewRequestInOneMessageGetBoth) {
  ChatEngine engine(tiny_catalog(), nullptr, nullptr, {});
  const std::string id = engine.create_conversation("2");
  const auto first = engine.turn(id, "Recommend some movies for me.");
  ASSERT_GE(first.recommendations.size(), 2u);
  const std::string second = first.recommendations[1].item_id;

  const auto r = engine.turn(id, "I didn't like the second one. Any horror instead?");
  EXPECT_EQ(r.intent, Intent::kFeedback);
  EXPECT_TRUE(engine.conversation(id).is_disliked({"movies", second}));
  ASSERT_FALSE(r.recommendations.empty()) << r.reply;
  for (const auto& rec : r.recommendations) {
    EXPECT_NE(rec.item_id, second);
    EXPECT_EQ(rec.categories, std::vector<std::string>{"Horror"}) << rec.title;
  }
  const auto ack = r.reply.find("Noted: you did not like");
  const auto list = r.reply.find("Here are");
  ASSERT_NE(ack, std::string::npos) << r.reply;
  ASSERT_NE(list, std::string::npos) << r.reply;
  EXPECT_LT(ack, list);

  // Feedback alone still gets the acknowledgement only.
  const auto alone = engine.turn(id, "I didn't like the first one");
  EXPECT_EQ(alone.intent, Intent::kFeedback);
  EXPECT_TRUE(alone.recommendations.empty());
}

// The cards (page) and the printed list (terminal) show the recommendations; the reply does not
// repeat them line by line, but the dialogue keeps the list for later prompts.
TEST(EngineTurns, TheReplyDoesNotRepeatTheListTheCardsShow) {
  ChatEngine engine(tiny_catalog(), nullptr, nullptr, {});
  const std::string id = engine.create_conversation("2");
  std::string streamed;
  const auto r = engine.turn(id, "Recommend some comedies",
                             [&](std::string_view piece) { streamed += piece; });
  ASSERT_EQ(r.recommendations.size(), 5u);
  EXPECT_EQ(streamed, r.reply);
  EXPECT_NE(r.reply.find("Here are 5 films"), std::string::npos) << r.reply;
  const auto said = engine.messages(id);
  ASSERT_EQ(said.size(), 2u);
  EXPECT_EQ(said[1].content, r.reply);
  const auto dialogue = engine.conversation(id).dialogue;
  ASSERT_EQ(dialogue.size(), 2u);
  for (std::size_t i = 0; i < r.recommendations.size(); ++i) {
    const std::string line = std::to_string(i + 1) + ". " + r.recommendations[i].title;
    EXPECT_EQ(r.reply.find(line), std::string::npos) << r.reply;
    EXPECT_NE(dialogue[1].content.find(line), std::string::npos) << dialogue[1].content;
  }
}

TEST(EngineTurns, StructuredActionsCallTheirHandlersWithTheItem) {
  ChatEngine engine(tiny_catalog(), nullptr, nullptr, {});
  const std::string id = engine.create_conversation("2");
  const auto list = engine.turn(id, "Recommend some movies");
  ASSERT_FALSE(list.recommendations.empty());
  const Recommendation& pick = list.recommendations.front();

  const auto why = engine.explain(id, {"movies", pick.item_id});
  EXPECT_EQ(why.intent, Intent::kExplain);
  EXPECT_EQ(why.intent_decided_by, "api");
  ASSERT_EQ(why.recommendations.size(), 1u);
  EXPECT_EQ(why.recommendations[0].item_id, pick.item_id);
  EXPECT_EQ(why.recommendations[0].reason, why.reply);

  const auto liked = engine.feedback(id, {"movies", pick.item_id}, true);
  EXPECT_EQ(liked.intent_decided_by, "api");
  EXPECT_NE(liked.reply.find("Noted: you liked"), std::string::npos);
  const auto state = engine.conversation(id);
  EXPECT_EQ(state.liked, (std::vector<ItemRef>{{"movies", pick.item_id}}));
  EXPECT_EQ(state.turns, 3);
  EXPECT_THROW(engine.explain(id, {"movies", "no-such-item"}), ChatError);
}

// A long-running server meets every conversation once: in front of a store only the most recently
// used stay in memory, an evicted one comes back from the store as it was, and one in use is never
// let go. (Found by `chatrec bench soak`: the cache grew with every conversation ever opened.)
TEST(EngineSessions, TheCacheInFrontOfAStoreIsBoundedAndLosesNothing) {
  chatrec::testing::TempDir dir;
  std::shared_ptr<store::Store> st = store::open_store("sqlite:" + (dir.path() / "s.db").string());
  data::User u;
  u.id = "2";
  st->upsert_user(u);
  EngineOptions options;
  options.session_cache = 10;
  Sessions sessions(tiny_catalog(), st, options);
  const auto held = sessions.create("2");
  held->state.turns = 7;  // in memory only: it must be this very session that comes back
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(sessions.create("2")->state.conversation_id);
    EXPECT_LE(sessions.cached(), 10u);
  }
  EXPECT_EQ(sessions.get(held->state.conversation_id).get(), held.get());
  const auto first = sessions.get(ids.front());  // evicted long ago: loaded from the store
  EXPECT_EQ(first->state.conversation_id, ids.front());
  EXPECT_EQ(first->state.user_id, "2");
  EXPECT_LE(sessions.cached(), 10u);

  // Without a store the sessions are all there is: none is let go.
  Sessions memory_only(tiny_catalog(), nullptr, options);
  for (int i = 0; i < 40; ++i) memory_only.create("2");
  EXPECT_EQ(memory_only.cached(), 40u);
}

TEST(EngineSessions, SavedStatesLeaveTheHistoryOutAndReloadIt) {
  chatrec::testing::TempDir dir;
  const std::string url = "sqlite:" + (dir.path() / "chat.db").string();
  auto catalog = tiny_catalog();
  std::string id;
  ConversationState before;
  {
    std::shared_ptr<store::Store> st = store::open_store(url);
    for (const char* user : {"2", "3"}) {
      data::User u;
      u.id = user;
      st->upsert_user(u);
    }
    ChatEngine engine(catalog, nullptr, st, {});
    id = engine.create_conversation("2");
    engine.turn(id, "Recommend some comedies");
    before = engine.conversation(id);
    ASSERT_FALSE(before.history.at("movies").empty());
    const auto saved = nlohmann::json::parse(st->get_conversation(id)->state_json);
    EXPECT_FALSE(saved.contains("history"));
    EXPECT_EQ(saved.at("turns"), 1);
  }
  std::shared_ptr<store::Store> st = store::open_store(url);
  ChatEngine reopened(catalog, nullptr, st, {});
  const ConversationState after = reopened.conversation(id);
  ASSERT_EQ(after.history.at("movies").size(), before.history.at("movies").size());
  for (std::size_t k = 0; k < after.history.at("movies").size(); ++k)
    EXPECT_EQ(after.history.at("movies")[k].item_id, before.history.at("movies")[k].item_id);
  EXPECT_EQ(after.to_json(), before.to_json());

  // A state saved with its history (before it was left out) keeps that history.
  const auto old = st->create_conversation("3");
  ConversationState legacy;
  legacy.conversation_id = old.id;
  legacy.user_id = "3";
  legacy.history["movies"] = {{"7", 4.0f}};
  st->append_turn(old.id, {}, legacy.to_json().dump());
  const auto loaded = reopened.conversation(old.id);
  ASSERT_EQ(loaded.history.at("movies").size(), 1u);
  EXPECT_EQ(loaded.history.at("movies")[0].item_id, "7");
}

TEST(Intent, FeedbackAndARequestAreSplitBySentence) {
  const auto both = split_feedback_and_request("I didn't like the second one. Any sci-fi instead?");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->feedback, "I didn't like the second one");
  EXPECT_EQ(both->request, "Any sci-fi instead?");
  const auto but = split_feedback_and_request("I loved Fargo but show me something lighter");
  ASSERT_TRUE(but);
  EXPECT_EQ(but->feedback, "I loved Fargo");
  EXPECT_EQ(but->request, "show me something lighter");
  EXPECT_FALSE(split_feedback_and_request("I didn't like the second one"));
  EXPECT_FALSE(split_feedback_and_request("Recommend some comedies. Only from the 90s."));
  EXPECT_FALSE(split_feedback_and_request("Why did you recommend Fargo? I didn't like it."));
}

}  // namespace
}  // namespace chatrec::chat
