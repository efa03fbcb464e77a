#include <gtest/gtest.h>

#include "chat/state.h"

namespace chatrec::chat {
namespace {

TEST(State, JsonRoundTrip) {
  ConversationState s;
  s.conversation_id = "c1";
  s.user_id = "196";
  s.profile = {{"age", "49"}, {"occupation", "writer"}};
  s.history["movies"] = {{"242", 3.0f}, {"302", 5.0f}};
  s.history["games"] = {{"17", 0.0f}};
  s.domain = "games";
  s.constraints.domain = "games";
  s.constraints.genres_wanted = {"Comedy"};
  s.constraints.genres_unwanted = {"Horror"};
  s.constraints.year_min = 1990;
  s.constraints.year_max = 1999;
  s.add_liked({"movies", "50"});
  s.add_disliked({"movies", "1"});
  s.shown = {{"movies", "1"}, {"movies", "2"}};
  Recommendation r;
  r.item_id = "2";
  r.title = "GoldenEye (1995)";
  r.domain = "movies";
  r.year = 1995;
  r.categories = {"Action"};
  r.score = 0.5;
  r.source = Source::kColdStart;
  r.reason = "because";
  s.last_recommendations = {r};
  s.dialogue = {{"user", "hi \"there\"\n"}, {"assistant", "hello"}};
  s.turns = 3;

  const auto j = s.to_json();
  const ConversationState t = ConversationState::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(t.to_json(), j);
  EXPECT_EQ(t.user_id, "196");
  EXPECT_EQ(t.history.at("movies")[1].rating, 5.0f);
  EXPECT_TRUE(t.is_disliked({"movies", "1"}));
  EXPECT_EQ(t.constraints.exclude, (std::vector<ItemRef>{{"movies", "1"}}));
  EXPECT_EQ(t.last_recommendations[0].source, Source::kColdStart);
  EXPECT_EQ(t.dialogue[0].content, "hi \"there\"\n");
}

TEST(State, LikeAndDislikeAreExclusive) {
  ConversationState s;
  s.add_disliked({"movies", "7"});
  s.add_liked({"movies", "7"});
  EXPECT_FALSE(s.is_disliked({"movies", "7"}));
  EXPECT_TRUE(s.constraints.exclude.empty());
  s.add_disliked({"movies", "7"});
  s.add_disliked({"movies", "7"});
  EXPECT_TRUE(s.liked.empty());
  EXPECT_EQ(s.disliked.size(), 1u);
}

TEST(State, BadJsonNamesTheField) {
  EXPECT_THROW(ConversationState::from_json(nlohmann::json::array()), std::invalid_argument);
  auto j = ConversationState{}.to_json();
  j["turns"] = "three";
  try {
    ConversationState::from_json(j);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("turns"), std::string::npos);
  }
  j = ConversationState{}.to_json();
  j["version"] = 99;
  EXPECT_THROW(ConversationState::from_json(j), std::invalid_argument);
}

}  // namespace
}  // namespace chatrec::chat
