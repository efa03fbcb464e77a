#include <gtest/gtest.h>

#include "chat/title_match.h"

namespace chatrec::chat {
namespace {

TEST(TitleMatch, KeyIgnoresMovedArticleYearCaseAndPunctuation) {
  EXPECT_EQ(title_key("Fish Called Wanda, A (1988)"), "fish called wanda");
  EXPECT_EQ(title_key("A Fish Called Wanda"), "fish called wanda");
  EXPECT_EQ(title_key("the usual SUSPECTS!"), title_key("Usual Suspects, The (1995)"));
  EXPECT_EQ(title_key("Schindler's List (1993)"), "schindlers list");
  EXPECT_NE(title_key("Heat (1995)"), title_key("Fargo (1996)"));
}

TEST(TitleMatch, DisplayTitleMovesTheArticleBack) {
  EXPECT_EQ(display_title("Fish Called Wanda, A (1988)"), "A Fish Called Wanda (1988)");
  EXPECT_EQ(display_title("Usual Suspects, The (1995)"), "The Usual Suspects (1995)");
  EXPECT_EQ(display_title("Fargo (1996)"), "Fargo (1996)");
}

// Found by the title_match fuzz target: a group glued to the words around it joined them, so the
// display form (which puts a space before the group) had another key.
TEST(TitleMatch, AParentheticalSeparatesWords) {
  EXPECT_EQ(title_key("Star(1977)Wars"), "star wars");
  EXPECT_EQ(title_key("Star(197)7)"), title_key(display_title("Star(197)7)")));
}

TEST(TitleMatch, SimilarityToleratesTyposButNotOtherTitles) {
  EXPECT_GE(title_similarity(title_key("Shawshank Redemtion"),
                             title_key("Shawshank Redemption, The (1994)")),
            kFuzzyTitleThreshold);
  EXPECT_LT(title_similarity(title_key("Toy Story"), title_key("Star Wars")), kFuzzyTitleThreshold);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(TitleMatch, IndexFindsExactFuzzyAndMentions) {
  data::Dataset ds;
  for (const char* t : {"Fish Called Wanda, A (1988)", "Fargo (1996)", "Star Wars (1977)",
                        "Return of the Jedi (1983)"}) {
    data::Item item;
    item.id = t;
    item.title = t;
    ds.add_item(item);
  }
  TitleIndex index(ds);
  ASSERT_EQ(index.exact("A Fish Called Wanda").size(), 1u);
  EXPECT_EQ(index.exact("A Fish Called Wanda")[0], 0u);
  EXPECT_EQ(index.best("Retrun of the Jedi"), 3);
  EXPECT_EQ(index.best("Completely Unknown Film"), -1);
  const auto mentioned = index.mentioned_in("Why did you recommend fargo? I loved Star Wars.");
  ASSERT_EQ(mentioned.size(), 2u);
  EXPECT_TRUE((mentioned[0] == 1 && mentioned[1] == 2) || (mentioned[0] == 2 && mentioned[1] == 1));
}

}  // namespace
}  // namespace chatrec::chat
