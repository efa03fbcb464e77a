#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "common/text.h"
#include "data/loaders.h"
#include "data/splits.h"
#include "testing/test_env.h"

namespace chatrec::data {
namespace {

TEST(AmazonGames, CountsAndLeaveLastOutMatchTheValidFile) {
  auto dir = chatrec::testing::games_dir();
  auto ds = load_amazon_games(dir);
  EXPECT_EQ(ds.num_users(), 50546u);
  EXPECT_EQ(ds.num_items(), 16859u);
  EXPECT_FALSE(ds.item(0).title.empty());
  // The shipped titles carry HTML entities (Pok&eacute;mon, &amp;, &rsquo;): none survive loading.
  std::size_t pokemon = 0;
  for (const auto& item : ds.items()) {
    for (const char* e : {"&amp;", "&eacute;", "&rsquo;", "&quot;", "&#39;", "&nbsp;", "&reg;"})
      EXPECT_EQ(item.title.find(e), std::string::npos) << item.id << ": " << item.title;
    pokemon += item.title.find("Pok\u00e9mon") != std::string::npos;
  }
  EXPECT_GT(pokemon, 5u);
  auto s = split_leave_last_out(ds);
  EXPECT_EQ(s.eval_users.size(), 50546u);
  ASSERT_EQ(s.test.size(), 50546u);
  ASSERT_EQ(s.valid.size(), 50546u);
  EXPECT_EQ(s.train.size() + s.test.size(), ds.interactions().size());

  std::map<std::string, std::string> test_target, valid_target;
  auto read = [](const std::filesystem::path& file, std::map<std::string, std::string>& out) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      auto f = text::split(line, '\t');
      ASSERT_EQ(f.size(), 3u);
      out[f[0]] = f[2];
    }
  };
  read(dir / "games.test.inter", test_target);
  read(dir / "games.valid.inter", valid_target);
  ASSERT_EQ(valid_target.size(), 50546u);
  std::size_t checked = 0;
  for (std::size_t k = 0; k < s.test.size(); ++k) {
    const auto& uid = ds.user(s.test[k].user).id;
    ASSERT_EQ(s.valid[k].user, s.test[k].user);
    EXPECT_EQ(ds.item(s.test[k].item).id, test_target.at(uid));
    EXPECT_EQ(ds.item(s.valid[k].item).id, valid_target.at(uid)) << "user " << uid;
    ++checked;
  }
  EXPECT_EQ(checked, 50546u);
}

}  // namespace
}  // namespace chatrec::data
