// User namespaces across domains: MovieLens user "196" and Amazon Games user "196" are different
// people, so a deployment user sees an anonymous log's history only through an explicit link.
#include <gtest/gtest.h>

#include <fstream>

#include "chat/catalog.h"
#include "chat/domains.h"
#include "chat/engine.h"
#include "common/error.h"
#include "data/loaders.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"
#include "testing/test_env.h"

namespace chatrec::chat {
namespace {

data::Dataset tiny(const std::string& domain, bool with_users) {
  data::Dataset ds(domain);
  for (int i = 0; i < 6; ++i) {
    data::Item item;
    item.id = std::to_string(i);
    item.title = domain + " title " + std::to_string(i);
    item.domain = domain;
    ds.add_item(item);
  }
  for (const char* id : {"196", "7"}) {
    data::User user;
    user.id = id;
    if (with_users) user.attributes = {{"age", "30"}};
    const auto u = ds.add_user(user);
    for (int i = 0; i < 3; ++i)
      ds.add_interaction({u, static_cast<data::ItemIndex>(i + (u == 0 ? 0 : 3)), 4.0f, i});
  }
  return ds;
}

std::shared_ptr<Catalog> two_domains() {
  auto catalog = std::make_shared<Catalog>();
  recommend::FitOptions fit;
  fit.progress = false;
  catalog->add_domain("movies", tiny("movies", true), recommend::make_recommender("popularity"),
                      fit, domain_spec("movies").deployment_users);
  catalog->add_domain("games", tiny("games", false), recommend::make_recommender("popularity"), fit,
                      domain_spec("games").deployment_users);
  return catalog;
}

TEST(UserNamespaces, AnAnonymousLogsUserIsNotTheDeploymentUserOfTheSameId) {
  const auto catalog = two_domains();
  const auto history = catalog->history_of("196");
  ASSERT_TRUE(history.contains("movies"));
  EXPECT_EQ(history.at("movies").size(), 3u);
  EXPECT_FALSE(history.contains("games"));  // games user "196" is someone else
  EXPECT_FALSE(catalog->find("games")->dataset_user("196").has_value());
  EXPECT_EQ(namespaced_user_id("games", "196"), "games:196");
}

TEST(UserNamespaces, ALinkedUserSeesTheLinkedHistoryOnly) {
  const auto catalog = two_domains();
  chatrec::testing::TempDir dir;
  const auto file = dir.path() / "links.txt";
  std::ofstream(file) << "# deployment users who are players in the games log\n"
                         "games 7 196\n\n";
  catalog->link_users(load_user_links(file));
  const auto history = catalog->history_of("196");
  ASSERT_TRUE(history.contains("games"));
  ASSERT_EQ(history.at("games").size(), 3u);
  EXPECT_EQ(history.at("games")[0].item_id, "3");  // games user 7's items, not games user 196's
  EXPECT_FALSE(catalog->history_of("7").contains("games"));
  EXPECT_EQ(catalog->profile_of("196").at("age"), "30");  // profiles stay the deployment's
}

TEST(UserNamespaces, ALinksFileWithAProblemNamesItsLine) {
  chatrec::testing::TempDir dir;
  const auto write = [&](const std::string& body) {
    const auto file = dir.path() / "bad.txt";
    std::ofstream(file) << body;
    return file;
  };
  const auto error_of = [&](const std::string& body) {
    try {
      load_user_links(write(body));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("games 1\n").find("bad.txt:1"), std::string::npos);
  EXPECT_NE(error_of("# x\nbooks 1 2\n").find("bad.txt:2"), std::string::npos);
  EXPECT_NE(error_of("movies 1 2\n").find("already are this deployment's users"),
            std::string::npos);
  EXPECT_NE(error_of("games 1 u\ngames 2 u\n").find("linked twice"), std::string::npos);
  const auto catalog = two_domains();
  EXPECT_THROW(catalog->link_users({{"games", {{"u", "nobody"}}}}), InputError);
  EXPECT_THROW(domain_spec("books"), ChatError);
}

// serve and chat start through ChatEngine::open: the domains default to those whose data is
// present, and a domain asked for without its data is named with the file that is missing.
TEST(Startup, DomainsDefaultToThosePresentAndAMissingOneIsNamed) {
  chatrec::testing::TempDir dir;
  EXPECT_EQ(present_domains(dir.path()), std::vector<std::string>{"movies"});
  std::filesystem::create_directories(dir.path() / "amazon-games");
  std::ofstream(dir.path() / "amazon-games" / "games.item") << "";
  EXPECT_EQ(present_domains(dir.path()), std::vector<std::string>{"games"});
  EXPECT_NO_THROW(require_present({"games"}, dir.path()));
  try {
    require_present({"games", "movies"}, dir.path());
    FAIL() << "movies has no data here";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ml-100k/u.data"), std::string::npos) << e.what();
  }
}

// A saved model of another dataset's shape is refused, naming the file (it would score the wrong
// items); one of the right shape is used instead of training.
TEST(Startup, ASavedModelMustFitItsDomain) {
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir() / "u.data"))
    GTEST_SKIP() << "MovieLens-100K not found under " << chatrec::testing::ml100k_dir();
  chatrec::testing::TempDir dir;
  data::Dataset small("small");
  for (int i = 0; i < 3; ++i) {
    data::Item item;
    item.id = std::to_string(i + 1);
    item.title = "Item " + item.id;
    small.add_item(item);
    data::User user;
    user.id = std::to_string(i + 1);
    small.add_user(user);
    small.add_interaction(
        {static_cast<data::UserIndex>(i), static_cast<data::ItemIndex>(i), 4.0f, i});
  }
  const data::InteractionMatrix m(small.num_users(), small.num_items(), small.interactions());
  auto model = recommend::make_recommender("popularity");
  recommend::FitOptions fit;
  fit.progress = false;
  model->fit(m, fit);
  const std::string wrong = (dir.path() / "small.model").string();
  model->save(wrong);
  CatalogModels models;
  models.progress = false;
  models.files["movies"] = wrong;
  try {
    load_catalog(chatrec::testing::data_dir(), {"movies"}, models);
    FAIL() << "a 3-item model served ml-100k";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("small.model"), std::string::npos) << e.what();
  }
  const data::Dataset ml = data::load_movielens_100k(chatrec::testing::ml100k_dir());
  const data::InteractionMatrix all(ml.num_users(), ml.num_items(), ml.interactions());
  auto right = recommend::make_recommender("popularity");
  right->fit(all, fit);
  models.files["movies"] = (dir.path() / "ml.model").string();
  right->save(models.files["movies"]);
  std::vector<std::string> lines;
  models.log = [&](const std::string& line) { lines.push_back(line); };
  const auto catalog = load_catalog(chatrec::testing::data_dir(), {"movies"}, models);
  ASSERT_NE(catalog->find("movies"), nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("ml.model"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace chatrec::chat
