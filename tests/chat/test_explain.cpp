// Explanations answer the person: "the user" in the model's text becomes "you", also when the
// phrase arrives split across streamed pieces.
#include <gtest/gtest.h>

#include "chat/explain.h"
#include "llm/mock_model.h"

namespace chatrec::chat {
namespace {

TEST(SecondPerson, ThirdPersonPhrasesBecomeYou) {
  EXPECT_EQ(to_second_person("The user may like Fargo because the user's favourites are crime."),
            "You may like Fargo because your favourites are crime.");
  EXPECT_EQ(to_second_person("The user is a fan of Heat, and the user likes thrillers."),
            "You are a fan of Heat, and you like thrillers.");
  // Whole words only, and text without the phrase is untouched.
  EXPECT_EQ(to_second_person("Other users liked it; the username is x."),
            "Other users liked it; the username is x.");
  EXPECT_EQ(to_second_person(""), "");
}

TEST(SecondPerson, StreamedPiecesGiveTheSameText) {
  const std::string text = "The user may like it: the user's history has Fargo. The user";
  for (std::size_t step : {1u, 2u, 3u, 7u}) {
    SecondPersonRewriter r;
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += step) out += r.feed(text.substr(i, step));
    out += r.flush();
    EXPECT_EQ(out, to_second_person(text)) << step;
  }
  EXPECT_EQ(to_second_person(text), "You may like it: your history has Fargo. You");
}

TEST(SecondPerson, ExplanationsAreRewrittenAsStreamedAndReturned) {
  llm::MockModel lm;
  lm.queue_reply("The user may like Fargo because the user liked Heat.");
  PromptContext ctx;
  ctx.domain = "movies";
  PromptItem item;
  item.title = "Fargo (1996)";
  std::string streamed;
  const auto e = explain_item(
      &lm, ctx, item, {}, 64, 10, [&](std::string_view s) { streamed += s; }, nullptr);
  EXPECT_EQ(e.text, "You may like Fargo because you liked Heat.");
  EXPECT_EQ(streamed, e.text);
  ASSERT_EQ(lm.seen_prompts().size(), 1u);
  EXPECT_NE(lm.seen_prompts()[0].back().content.find("say \"you\""), std::string::npos);
}

// What the built-in model answered for an explanation once: the prompt's own lines with wrong
// facts. It is not passed on (nor streamed); the template explanation answers, flagged.
TEST(Explain, AnAnswerThatRepeatsThePromptGetsTheTemplate) {
  llm::MockModel lm;
  lm.queue_reply(
      "You liked Star Wars (1977) [Comedy, War] rated 4. You disliked: M*A*S*H (1977) [Comedy, "
      "War] rated 1. Your request:");
  PromptContext ctx;
  ctx.domain = "movies";
  PromptItem item;
  item.title = "Star Wars (1977)";
  item.categories = {"Action", "Sci-Fi"};
  PromptItem liked;
  liked.title = "Return of the Jedi (1983)";
  liked.rating = 5;
  std::string streamed;
  Stats stats;
  const auto e = explain_item(
      &lm, ctx, item, {liked}, 64, 10, [&](std::string_view s) { streamed += s; }, &stats);
  EXPECT_TRUE(e.degraded);
  EXPECT_FALSE(e.llm_used);
  EXPECT_EQ(e.text, template_explanation(item, {liked}, "movies"));
  EXPECT_EQ(streamed, e.text);
  EXPECT_EQ(stats.failures["unparseable"], 1);
  EXPECT_EQ(stats.resolutions["unparseable:template_explanation"], 1);
  EXPECT_TRUE(echoes_prompt("Heat (1995) [Action, Crime] rated 4"));
  EXPECT_TRUE(echoes_prompt("You disliked: Heat"));
  EXPECT_FALSE(
      echoes_prompt("You may like Star Wars because you rated Return of the Jedi highly."));
}

}  // namespace
}  // namespace chatrec::chat
