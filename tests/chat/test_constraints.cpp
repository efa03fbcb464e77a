#include <gtest/gtest.h>

#include "chat/constraints.h"
#include "llm/mock_model.h"

namespace chatrec::chat {
namespace {

ConstraintVocabulary vocab() {
  ConstraintVocabulary v;
  v.domains = {"movies", "games"};
  v.categories = [](const std::string& d) {
    if (d == "movies") {
      return std::vector<std::string>{
          "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
          "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
          "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};
    }
    return std::vector<std::string>{};
  };
  v.latest_year = [](const std::string& d) { return d == "movies" ? 1998 : 2018; };
  return v;
}

TEST(Constraints, GenresWantedAndUnwanted) {
  auto u = extract_constraints_rules("only comedies please, but no horror", "movies", vocab());
  EXPECT_EQ(u.genres_wanted, std::vector<std::string>{"Comedy"});
  EXPECT_EQ(u.genres_unwanted, std::vector<std::string>{"Horror"});
  u = extract_constraints_rules("some science fiction or animated films", "movies", vocab());
  EXPECT_EQ(u.genres_wanted, (std::vector<std::string>{"Animation", "Sci-Fi"}));
  u = extract_constraints_rules("something less violent", "movies", vocab());
  EXPECT_EQ(u.genres_unwanted, (std::vector<std::string>{"Horror", "War", "Crime"}));
  u = extract_constraints_rules("more like Star Wars", "movies", vocab());
  EXPECT_TRUE(u.genres_wanted.empty());  // "Wars" is not the War genre
}

TEST(Constraints, Eras) {
  auto u = extract_constraints_rules("films from the 90s", "movies", vocab());
  EXPECT_EQ(u.year_min, 1990);
  EXPECT_EQ(u.year_max, 1999);
  u = extract_constraints_rules("older films please", "movies", vocab());
  EXPECT_FALSE(u.year_min);
  EXPECT_EQ(u.year_max, 1979);
  u = extract_constraints_rules("anything after 2000", "movies", vocab());
  EXPECT_EQ(u.year_min, 2001);
  u = extract_constraints_rules("between 1970 and 1985", "movies", vocab());
  EXPECT_EQ(u.year_min, 1970);
  EXPECT_EQ(u.year_max, 1985);
  u = extract_constraints_rules("recent ones", "movies", vocab());
  EXPECT_EQ(u.year_min, 1995);
}

TEST(Constraints, DomainKeywords) {
  EXPECT_EQ(detect_domain("now recommend some video games", {"movies", "games"}), "games");
  EXPECT_EQ(detect_domain("something to play tonight", {"movies", "games"}), "games");
  EXPECT_EQ(detect_domain("a film for tonight", {"movies", "games"}), "movies");
  EXPECT_EQ(detect_domain("games like my favourite movies", {"movies", "games"}), "games");
  EXPECT_FALSE(detect_domain("something funny", {"movies", "games"}));
}

TEST(Constraints, LikeAndNotTitles) {
  auto u = extract_constraints_rules("something similar to Fargo, but not Heat", "movies", vocab());
  ASSERT_EQ(u.like_titles.size(), 1u);
  EXPECT_EQ(u.like_titles[0], "fargo");
  ASSERT_EQ(u.not_titles.size(), 1u);
  EXPECT_EQ(u.not_titles[0], "heat");
}

TEST(Constraints, ValidLlmJsonIsUsedAndValidated) {
  Stats st;
  auto u = parse_constraints_json(
      R"(Sure: {"domain": "movies", "genres": ["comedy", "Western", "Kung Fu"], "exclude_genres": [],
          "year_min": 1990, "year_max": 1999, "like": ["Fargo"], "not": ["Titanic"]})",
      "funny films from the 90s like Fargo", "movies", vocab(), &st);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->genres_wanted,
            std::vector<std::string>{"Comedy"});  // Western ungrounded, Kung Fu unknown
  EXPECT_EQ(u->year_min, 1990);
  EXPECT_EQ(u->year_max, 1999);
  EXPECT_EQ(u->like_titles, std::vector<std::string>{"Fargo"});
  EXPECT_TRUE(u->not_titles.empty());  // the user never typed Titanic
  EXPECT_EQ(st.failures["invalid_constraint"], 3);
}

TEST(Constraints, SchemaViolationsAreRejected) {
  EXPECT_FALSE(parse_constraints_json("no json here", "x", "movies", vocab(), nullptr));
  EXPECT_FALSE(parse_constraints_json("[1,2]", "x", "movies", vocab(), nullptr));
  EXPECT_FALSE(parse_constraints_json(R"({"colour": "blue"})", "x", "movies", vocab(), nullptr));
  Stats st;
  auto u = parse_constraints_json(R"({"genres": "comedy", "year_min": "1990", "year_max": 1890})",
                                  "comedy from 1990", "movies", vocab(), &st);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->genres_wanted.empty());
  EXPECT_FALSE(u->year_min);
  EXPECT_FALSE(u->year_max);
  EXPECT_EQ(st.failures["invalid_constraint"], 3);
}

TEST(Constraints, LlmFailureFallsBackToTheCatalogueMatcher) {
  llm::MockModel lm;
  lm.queue_reply("I think they want comedies!!");
  Stats st;
  std::vector<std::string> notes;
  auto u =
      extract_constraints(&lm, "only comedies from the 80s", "movies", vocab(), 10, &st, &notes);
  EXPECT_EQ(u.decided_by, "rules");
  EXPECT_EQ(u.genres_wanted, std::vector<std::string>{"Comedy"});
  EXPECT_EQ(u.year_min, 1980);
  EXPECT_EQ(st.failures["unparseable"], 1);
  EXPECT_FALSE(notes.empty());
}

TEST(Constraints, LlmAndRulesCombine) {
  llm::MockModel lm;
  lm.queue_reply(
      R"({"domain": null, "genres": ["Comedy"], "exclude_genres": [], "year_min": null, "year_max": null, "like": [], "not": []})");
  auto u =
      extract_constraints(&lm, "comedies but no horror", "movies", vocab(), 10, nullptr, nullptr);
  EXPECT_EQ(u.decided_by, "llm+rules");
  EXPECT_EQ(u.genres_wanted, std::vector<std::string>{"Comedy"});
  EXPECT_EQ(u.genres_unwanted, std::vector<std::string>{"Horror"});
}

TEST(Constraints, ChoiceStylePicksAGenreOnlyWhenTheMatcherFoundNone) {
  llm::MockModel lm;
  lm.queue_reply("Comedy");
  Stats st;
  auto u = extract_constraints(&lm, "something to make me laugh, after 1990", "movies", vocab(), 10,
                               &st, nullptr, ConstraintStyle::kChoice);
  EXPECT_EQ(u.genres_wanted, std::vector<std::string>{"Comedy"});
  EXPECT_EQ(u.year_min, 1991);  // the era stays with the matcher ("after 1990")
  EXPECT_EQ(u.decided_by, "llm+rules");
  ASSERT_EQ(lm.seen_prompts().size(), 1u);
  EXPECT_NE(lm.seen_prompts()[0][1].content.find("Comedy"), std::string::npos);
  // "none" adds nothing; a genre the message names needs no model call.
  lm.queue_reply("none");
  u = extract_constraints(&lm, "surprise me", "movies", vocab(), 10, &st, nullptr,
                          ConstraintStyle::kChoice);
  EXPECT_TRUE(u.genres_wanted.empty());
  EXPECT_EQ(u.decided_by, "rules");
  u = extract_constraints(&lm, "a western please", "movies", vocab(), 10, &st, nullptr,
                          ConstraintStyle::kChoice);
  EXPECT_EQ(u.genres_wanted, std::vector<std::string>{"Western"});
  EXPECT_EQ(lm.seen_prompts().size(), 2u);
  EXPECT_EQ(st.llm_calls, 2);
}

// A plain request names no kind of item, so no genre is asked of the model, which would invent one
// (SmolLM2-135M answered "Fantasy" to the first message below).
TEST(Constraints, ChoiceStyleInventsNoGenreForAPlainRequest) {
  llm::MockModel lm;
  for (const char* plain :
       {"Hi! Can you recommend some movies for me?", "what should I watch tonight?",
        "more like Fargo please", "any good films from the 90s?", "Recommend me a few games"}) {
    lm.queue_reply("Fantasy");
    const auto u = extract_constraints(&lm, plain, "movies", vocab(), 10, nullptr, nullptr,
                                       ConstraintStyle::kChoice);
    EXPECT_TRUE(u.genres_wanted.empty()) << plain;
  }
  EXPECT_TRUE(lm.seen_prompts().empty());
  // A describing word grounds the choice.
  lm.queue_reply("Fantasy");
  const auto u = extract_constraints(&lm, "something with dragons and wizards", "movies", vocab(),
                                     10, nullptr, nullptr, ConstraintStyle::kChoice);
  EXPECT_EQ(u.genres_wanted, std::vector<std::string>{"Fantasy"});
}

TEST(Constraints, ApplyAndSatisfy) {
  Constraints c;
  c.domain = "movies";
  ConstraintUpdate u;
  u.genres_wanted = {"Comedy"};
  u.year_min = 1990;
  apply_update(u, c);
  data::Item comedy{"1", "Clerks (1994)", "movies", 1994, {"Comedy"}, {}};
  data::Item old_comedy{"2", "Airplane! (1980)", "movies", 1980, {"Comedy"}, {}};
  data::Item drama{"3", "Fargo (1996)", "movies", 1996, {"Crime", "Drama"}, {}};
  EXPECT_TRUE(satisfies(comedy, c));
  EXPECT_FALSE(satisfies(old_comedy, c));
  EXPECT_FALSE(satisfies(drama, c));
  EXPECT_EQ(describe(c), "Comedy only, from 1990 on");
  ConstraintUpdate games;
  games.domain = "games";
  apply_update(games, c);
  EXPECT_EQ(c.domain, "games");
  EXPECT_TRUE(c.genres_wanted.empty());  // genres belong to the old domain
  EXPECT_EQ(c.year_min, 0);
}

}  // namespace
}  // namespace chatrec::chat
