#include "data/loaders.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "data/matrix.h"
#include "testing/test_env.h"

namespace chatrec::data {
namespace {

namespace fs = std::filesystem;

const Dataset& ml100k() {
  static const Dataset ds = load_movielens_100k(chatrec::testing::ml100k_dir());
  return ds;
}

TEST(MovieLens100k, Counts) {
  const auto& ds = ml100k();
  EXPECT_EQ(ds.num_users(), 943u);
  EXPECT_EQ(ds.num_items(), 1682u);
  EXPECT_EQ(ds.interactions().size(), 100000u);
  EXPECT_EQ(ds.rating_range(), std::make_pair(1.0f, 5.0f));
  InteractionMatrix m(ds.num_users(), ds.num_items(), ds.interactions());
  EXPECT_EQ(m.nnz(), 100000u);  // no duplicate (user, item) pairs
  EXPECT_NEAR(m.global_mean(), 3.52986, 1e-5);
}

TEST(MovieLens100k, Latin1TitlesBecomeUtf8) {
  const auto& ds = ml100k();
  auto i543 = ds.find_item("543");
  ASSERT_TRUE(i543);
  EXPECT_EQ(ds.item(*i543).title, "Mis\xC3\xA9rables, Les (1995)");
  auto i1104 = ds.find_item("1104");
  ASSERT_TRUE(i1104);
  EXPECT_EQ(ds.item(*i1104).title, "C'est arriv\xC3\xA9 pr\xC3\xA8s de chez vous (1992)");
  EXPECT_EQ(ds.item(*i1104).year, 1992);
}

TEST(MovieLens100k, GenresYearsAndProfiles) {
  const auto& ds = ml100k();
  const auto& toy = ds.item(*ds.find_item("1"));
  EXPECT_EQ(toy.title, "Toy Story (1995)");
  EXPECT_EQ(toy.year, 1995);
  EXPECT_EQ(toy.domain, "movies");
  EXPECT_EQ(toy.categories, (std::vector<std::string>{"Animation", "Children's", "Comedy"}));
  const auto& goldeneye = ds.item(*ds.find_item("2"));
  EXPECT_EQ(goldeneye.categories, (std::vector<std::string>{"Action", "Adventure", "Thriller"}));
  auto cats = ds.categories();
  EXPECT_EQ(cats.size(), 18u);  // 19 flags, "unknown" is not a genre label
  const auto& u1 = ds.user(*ds.find_user("1"));
  EXPECT_EQ(u1.attributes.at("age"), "24");
  EXPECT_EQ(u1.attributes.at("gender"), "M");
  EXPECT_EQ(u1.attributes.at("occupation"), "technician");
}

TEST(MovieLens100k, ChecksumIsStable) {
  auto again = load_movielens_100k(chatrec::testing::ml100k_dir());
  EXPECT_EQ(again.checksum(), ml100k().checksum());
  EXPECT_EQ(ml100k().checksum().size(), 64u);
}

// A minimal MovieLens directory in a temp dir, with `data` as u.data.
class MalformedMovieLens : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& content) {
    std::ofstream(dir_.path() / name, std::ios::binary) << content;
  }
  void SetUp() override {
    write("u.genre", "unknown|0\nAction|1\n");
    write("u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n");
    write("u.item",
          "1|Toy Story (1995)|01-Jan-1995||url|0|1\n2|Caf\xE9 (1990)|01-Jan-1990||url|0|0\n");
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  chatrec::testing::TempDir dir_;
};

TEST_F(MalformedMovieLens, GoodFilesLoad) {
  write("u.data", "1\t1\t5\t100\n2\t2\t3\t200\n");
  auto ds = load_movielens_100k(dir_.path());
  EXPECT_EQ(ds.num_items(), 2u);
  EXPECT_EQ(ds.interactions().size(), 2u);
  EXPECT_EQ(ds.item(1).title, "Caf\xC3\xA9 (1990)");
  EXPECT_EQ(ds.item(0).categories, std::vector<std::string>{"Action"});
}

TEST_F(MalformedMovieLens, BadRatingNamesFileLineAndField) {
  write("u.data", "1\t1\t5\t100\n2\t2\tfive\t200\n");
  try {
    load_movielens_100k(dir_.path());
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), path("u.data"));
    EXPECT_EQ(e.line(), 2u);
    EXPECT_EQ(e.field(), "rating");
    EXPECT_NE(std::string(e.what()).find("five"), std::string::npos);
  }
}

TEST_F(MalformedMovieLens, WrongFieldCountAndUnknownItem) {
  write("u.data", "1\t1\t5\n");
  try {
    load_movielens_100k(dir_.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 1u);
    EXPECT_NE(std::string(e.what()).find("expected 4 fields"), std::string::npos);
  }
  write("u.data", "1\t1\t5\t1\n1\t99\t5\t1\n");
  try {
    load_movielens_100k(dir_.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2u);
    EXPECT_EQ(e.field(), "item id");
  }
}

TEST_F(MalformedMovieLens, BadGenreFlagInItemFile) {
  write("u.item", "1|Toy Story (1995)|01-Jan-1995||url|0|2\n");
  write("u.data", "1\t1\t5\t100\n");
  try {
    load_movielens_100k(dir_.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), path("u.item"));
    EXPECT_EQ(e.line(), 1u);
    EXPECT_EQ(e.field(), "genre Action");
  }
}

TEST_F(MalformedMovieLens, SkipBadLinesCountsThem) {
  write("u.data", "1\t1\t5\t100\n2\t2\tfive\t200\n2\t1\t9\t300\nx\n2\t1\t4\t400\n");
  LoadOptions options;
  options.skip_bad_lines = true;
  LoadReport report;
  auto ds = load_movielens_100k(dir_.path(), options, &report);
  EXPECT_EQ(ds.interactions().size(), 2u);
  EXPECT_EQ(report.bad_lines_skipped, 3u);
  EXPECT_NE(report.first_error.find("u.data:2 (field 'rating')"), std::string::npos)
      << report.first_error;
}

TEST(RecBoleLoader, SequencesBecomeOrderedInteractions) {
  chatrec::testing::TempDir dir;
  std::ofstream(dir.path() / "toy.item") << "item_id:token\ttitle:token_seq\n10\tA\n11\tB\n12\tC\n";
  std::ofstream(dir.path() / "toy.test.inter")
      << "user_id:token\titem_id_list:token_seq\titem_id:token\n"
         "u1\t10 11\t12\nu2\t12\t10\n";
  auto ds = load_recbole(dir.path(), "toy.test", "games");
  EXPECT_EQ(ds.num_users(), 2u);
  EXPECT_EQ(ds.num_items(), 3u);
  ASSERT_EQ(ds.interactions().size(), 5u);
  InteractionMatrix m(ds.num_users(), ds.num_items(), ds.interactions());
  auto u1 = *ds.find_user("u1");
  std::vector<std::string> seq;
  for (auto i : m.sequence(u1)) seq.push_back(ds.item(i).title);
  EXPECT_EQ(seq, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(ds.item(0).domain, "games");
}

TEST(RecBoleLoader, TitlesAreStoredWithHtmlEntitiesDecoded) {
  chatrec::testing::TempDir dir;
  std::ofstream(dir.path() / "toy.item")
      << "item_id:token\ttitle:token_seq\n10\tPok&eacute;mon Y\n11\tTom Clancy&rsquo;s &amp; Co\n";
  std::ofstream(dir.path() / "toy.test.inter")
      << "user_id:token\titem_id_list:token_seq\titem_id:token\nu1\t10\t11\n";
  auto ds = load_recbole(dir.path(), "toy.test", "games");
  EXPECT_EQ(ds.item(*ds.find_item("10")).title, "Pok\u00e9mon Y");
  EXPECT_EQ(ds.item(*ds.find_item("11")).title, "Tom Clancy\u2019s & Co");
}

TEST(RecBoleLoader, UnknownItemAndMissingHeaderAreErrors) {
  chatrec::testing::TempDir dir;
  std::ofstream(dir.path() / "toy.item") << "item_id:token\ttitle:token_seq\n10\tA\n";
  std::ofstream(dir.path() / "toy.test.inter")
      << "user_id:token\titem_id_list:token_seq\titem_id:token\n"
         "u1\t10 77\t10\n";
  try {
    load_recbole(dir.path(), "toy.test", "games");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2u);
    EXPECT_EQ(e.field(), "item_id_list");
  }
  std::ofstream(dir.path() / "bad.inter") << "user_id\titem_id\nu1\t10\n";
  try {
    load_recbole(dir.path(), "bad", "x");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 1u);
  }
  LoadOptions skip;
  skip.skip_bad_lines = true;
  LoadReport report;
  auto ds = load_recbole(dir.path(), "toy.test", "games", skip, &report);
  EXPECT_EQ(report.bad_lines_skipped, 1u);
  EXPECT_TRUE(ds.interactions().empty());  // a skipped line leaves no partial sequence behind
}

// Found while writing the test below: the first interaction's item closed the catalogue, so a
// second item was "unknown".
TEST(RecBoleLoader, WithoutAnItemFileInteractionsDefineTheItems) {
  chatrec::testing::TempDir dir;
  std::ofstream(dir.path() / "t.inter") << "user_id:token\titem_id:token\n1\ta\n1\tb\n2\ta\n";
  const Dataset ds = load_recbole(dir.path(), "t", "x");
  EXPECT_EQ(ds.num_items(), 2u);
  EXPECT_EQ(ds.interactions().size(), 3u);
}

// Found by the loaders fuzz target: a float timestamp beyond int64 was converted anyway
// (undefined).
TEST(RecBoleLoader, TimestampOutsideInt64IsAnError) {
  chatrec::testing::TempDir dir;
  std::ofstream(dir.path() / "t.inter") << "user_id:token\titem_id:token\ttimestamp:float\n"
                                        << "1\ta\t881250949.0\n2\tb\t1e31\n3\tc\tnan\n";
  try {
    load_recbole(dir.path(), "t", "x");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.field(), "timestamp");
  }
  LoadOptions skip;
  skip.skip_bad_lines = true;
  LoadReport report;
  const Dataset ds = load_recbole(dir.path(), "t", "x", skip, &report);
  ASSERT_EQ(ds.interactions().size(), 1u);
  EXPECT_EQ(ds.interactions()[0].timestamp, 881250949);
  EXPECT_EQ(report.bad_lines_skipped, 2u);
}

TEST(CsvLoader, ColumnMappingAndBadNumber) {
  chatrec::testing::TempDir dir;
  auto file = dir.path() / "r.csv";
  std::ofstream(file) << "userId,movieId,rating,ts\n1,10,4.5,100\n2,10,3,200\n";
  CsvSpec spec;
  spec.columns = {
      {"user", "userId"}, {"item", "movieId"}, {"rating", "rating"}, {"timestamp", "ts"}};
  auto ds = load_csv_interactions(file, spec);
  EXPECT_EQ(ds.num_users(), 2u);
  EXPECT_EQ(ds.num_items(), 1u);
  EXPECT_FLOAT_EQ(ds.interactions()[0].rating, 4.5f);
  std::ofstream(file) << "userId,movieId,rating,ts\n1,10,4.5,100\n2,10,high,200\n";
  try {
    load_csv_interactions(file, spec);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.field(), "rating");
  }
}

// Found by the loaders fuzz target: with skip_bad_lines a bad header was skipped like a data line,
// and the lines after it were read without a column mapping.
TEST(CsvLoader, ABadHeaderIsAnErrorEvenWhenSkippingBadLines) {
  chatrec::testing::TempDir dir;
  auto file = dir.path() / "r.csv";
  std::ofstream(file) << "\nu1,item\nu2,i2\n";  // no "user" column
  CsvSpec spec;
  spec.columns = {{"user", "user"}, {"item", "item"}};
  LoadOptions skip;
  skip.skip_bad_lines = true;
  LoadReport report;
  try {
    load_csv_interactions(file, spec, skip, &report);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2u);  // the first non-blank line is the header
    EXPECT_EQ(e.field(), "user");
  }
  EXPECT_EQ(report.bad_lines_skipped, 0u);
  // A bad data line after a good header is still skipped.
  std::ofstream(file) << "user,item\nu1,i1\n,i2\n";
  EXPECT_EQ(load_csv_interactions(file, spec, skip, &report).interactions().size(), 1u);
}

TEST(NamedLoader, UnknownNameIsAnError) {
  EXPECT_THROW(load_named("no-such-dataset", "/nonexistent"), InputError);
  EXPECT_EQ(load_named("ml-100k", chatrec::testing::data_dir()).num_users(), 943u);
}

}  // namespace
}  // namespace chatrec::data
