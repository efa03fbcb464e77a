#include <gtest/gtest.h>

#include "chat/list_parser.h"

namespace chatrec::chat {
namespace {

std::vector<ListCandidate> candidates() {
  return {{"1", "Fish Called Wanda, A (1988)"},
          {"2", "Fargo (1996)"},
          {"3", "Usual Suspects, The (1995)"},
          {"4", "Star Wars (1977)"},
          {"5", "Return of the Jedi (1983)"},
          {"6", "Heat (1995)"},
          {"7", "Toy Story (1995)"}};
}

bool in_catalogue(std::string_view title) {
  return std::string(title).find("Godfather") != std::string::npos;
}

TEST(ListParser, CleanListWithMovedArticlesAndYears) {
  Stats st;
  auto p = parse_ranked_list(
      "1. A Fish Called Wanda (1988)\n2. fargo\n3. The Usual Suspects\n4. STAR WARS!\n5. Heat",
      candidates(), 5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{0, 1, 2, 3, 5}));
  EXPECT_TRUE(st.failures.empty());
}

TEST(ListParser, ProseAroundTheListIsIgnored) {
  Stats st;
  auto p = parse_ranked_list(
      "Sure! Here are my picks:\n\n1) Heat\n2) Toy Story\n3) Fargo\n4) Star Wars\n5) Return of the "
      "Jedi\nEnjoy!",
      candidates(), 5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{5, 6, 1, 3, 4}));
  EXPECT_TRUE(st.failures.empty());
}

TEST(ListParser, UnparseableAnswer) {
  Stats st;
  auto p = parse_ranked_list("", candidates(), 5, in_catalogue, &st);
  EXPECT_TRUE(p.picks.empty());
  EXPECT_EQ(st.failures["unparseable"], 1);
  EXPECT_EQ(st.resolutions["unparseable:classic_ranking"], 1);
}

TEST(ListParser, TooFewAndTooMany) {
  Stats few;
  auto p = parse_ranked_list("1. Fargo\n2. Heat\n3. Toy Story\n4. Star Wars", candidates(), 5,
                             in_catalogue, &few);
  EXPECT_EQ(p.picks.size(), 4u);
  EXPECT_EQ(few.failures["wrong_count"], 1);
  EXPECT_EQ(few.resolutions["wrong_count:filled_from_base"], 1);
  EXPECT_EQ(complete_from_base(p.picks, 7, 5), (std::vector<std::size_t>{1, 5, 6, 3, 0}));

  Stats many;
  auto q = parse_ranked_list(
      "1. Fargo\n2. Heat\n3. Toy Story\n4. Star Wars\n5. A Fish Called Wanda\n6. Return of the "
      "Jedi\n7. The Usual Suspects",
      candidates(), 5, in_catalogue, &many);
  EXPECT_EQ(q.picks.size(), 5u);
  EXPECT_EQ(many.failures["wrong_count"], 1);
  EXPECT_EQ(many.resolutions["wrong_count:truncated"], 1);
}

TEST(ListParser, OutOfCandidatesAndNotInCatalogueAreDropped) {
  Stats st;
  auto p =
      parse_ranked_list("1. The Godfather\n2. Fargo\n3. Sharknado Returns 9\n4. Heat\n5. Toy Story",
                        candidates(), 5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{1, 5, 6}));
  EXPECT_EQ(st.failures["out_of_candidates"], 1);
  EXPECT_EQ(st.failures["not_in_catalogue"], 1);
  EXPECT_EQ(st.resolutions["out_of_candidates:dropped"], 1);
}

TEST(ListParser, DuplicatesAreDropped) {
  Stats st;
  auto p = parse_ranked_list("1. Fargo\n2. fargo (1996)\n3. Heat\n4. Toy Story\n5. Star Wars",
                             candidates(), 5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{1, 5, 6, 3}));
  EXPECT_EQ(st.failures["duplicate"], 1);
}

TEST(ListParser, IdsLostInventedOrMismatchedTrustTheTitle) {
  Stats st;
  // [2] is Fargo's id but the title says Heat; [99] does not exist; [4] has no title problem.
  auto p = parse_ranked_list(
      "1. [2]: Heat\n2. [99]: Toy Story\n3. [4]: Star Wars\n4. Fargo\n5. [1] A Fish Called Wanda",
      candidates(), 5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{5, 6, 3, 1, 0}));
  EXPECT_EQ(st.failures["id_mismatch"], 2);
  EXPECT_EQ(st.resolutions["id_mismatch:trusted_title"], 2);
}

TEST(ListParser, FuzzyTitlesOnlyWithinTheCandidates) {
  Stats st;
  auto p = parse_ranked_list(
      "1. Retrun of the Jedi\n2. Usual Suspect\n3. Toy Stroy\n4. Star Wars Episode IV\n5. Fargo",
      candidates(), 5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{4, 2, 6, 3, 1}));
  EXPECT_GE(st.resolutions["fuzzy_title"], 3);
  EXPECT_TRUE(st.failures.empty());
}

TEST(ListParser, CommaSeparatedSingleLine) {
  Stats st;
  auto p = parse_ranked_list("Fargo, Heat, Toy Story, Star Wars, Return of the Jedi", candidates(),
                             5, in_catalogue, &st);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{1, 5, 6, 3, 4}));
}

TEST(ListParser, PreselectedHintIsSkipped) {
  Stats st;
  auto p =
      parse_ranked_list("1. A Fish Called Wanda\n2. Fargo\n3. Heat\n4. Toy Story\n5. Star Wars",
                        candidates(), 4, in_catalogue, &st, 0);
  EXPECT_EQ(p.picks, (std::vector<std::size_t>{1, 5, 6, 3}));
  EXPECT_TRUE(st.failures.empty());
}

}  // namespace
}  // namespace chatrec::chat
