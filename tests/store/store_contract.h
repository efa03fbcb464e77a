#pragma once
// The behaviour every Store engine must have. One typed suite; store_sqlite_test.cpp and
// store_postgres_test.cpp instantiate it with their engine. An Engine provides:
//   bool available(std::string* why)       -- false => the test is skipped (reason in *why)
//   std::unique_ptr<Store> open()          -- a handle on this test's private database (callable
//   repeatedly)
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <thread>

#include "store/store.h"

namespace chatrec::store::testing {

template <typename Engine>
class StoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!engine_.available(&why)) GTEST_SKIP() << why;
    store_ = engine_.open();
  }

  Store& store() { return *store_; }
  std::unique_ptr<Store> second_handle() { return engine_.open(); }

  void add_user(const std::string& id) { store().upsert_user(data::User{id, {}}); }

  Engine engine_;
  std::unique_ptr<Store> store_;
};

inline data::Item make_item(std::string domain, std::string id, std::string title, int year = 0) {
  data::Item item;
  item.domain = std::move(domain);
  item.id = std::move(id);
  item.title = std::move(title);
  item.year = year;
  return item;
}

inline StoredInteraction make_interaction(std::string user, std::string item,
                                          std::optional<float> rating, std::int64_t ts,
                                          std::string kind = "rating",
                                          std::string domain = "movies") {
  StoredInteraction i;
  i.user_id = std::move(user);
  i.item_id = std::move(item);
  i.domain = std::move(domain);
  i.rating = rating;
  i.kind = std::move(kind);
  i.timestamp = ts;
  return i;
}

inline StoredMessage make_message(std::string role, std::string content, std::string payload = "") {
  StoredMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  m.payload_json = std::move(payload);
  return m;
}

// Appends instead of `"literal" + std::string`, on which gcc 12 -O3 reports a false -Wrestrict.
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::string out;
  (out.append(parts), ...);
  return out;
}

TYPED_TEST_SUITE_P(StoreContract);

TYPED_TEST_P(StoreContract, MigrationsAreIdempotentAndVersioned) {
  EXPECT_GE(latest_schema_version(), 2);
  EXPECT_EQ(this->store().schema_version(), latest_schema_version());
  this->add_user("42");
  this->store().migrate();
  this->store().migrate();
  EXPECT_EQ(this->store().schema_version(), latest_schema_version());
  // A second process/handle opening the same database migrates again: nothing changes, data stays.
  auto other = this->second_handle();
  EXPECT_EQ(other->schema_version(), latest_schema_version());
  ASSERT_TRUE(other->get_user("42").has_value());
}

TYPED_TEST_P(StoreContract, UsersUpsertGetAndList) {
  auto& s = this->store();
  EXPECT_FALSE(s.get_user("nobody").has_value());
  s.upsert_user({"7", {{"age", "24"}, {"occupation", "technician"}}});
  s.upsert_user({"3", {}});
  s.upsert_user({"11", {{"zip", "85711"}}});
  auto u = s.get_user("7");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->id, "7");
  EXPECT_EQ(u->attributes,
            (std::map<std::string, std::string>{{"age", "24"}, {"occupation", "technician"}}));

  s.upsert_user({"7", {{"age", "25"}}});  // update replaces the attributes
  EXPECT_EQ(s.get_user("7")->attributes, (std::map<std::string, std::string>{{"age", "25"}}));

  // Insertion order, not lexicographic: "11" after "3"; the update did not move "7".
  auto all = s.list_users(100, 0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, "7");
  EXPECT_EQ(all[1].id, "3");
  EXPECT_EQ(all[2].id, "11");
  auto page = s.list_users(1, 1);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, "3");
  EXPECT_TRUE(s.list_users(10, 3).empty());
  EXPECT_THROW(s.upsert_user({"", {}}), StoreError);
}

TYPED_TEST_P(StoreContract, ItemsRoundTripUtf8AndUpsert) {
  auto& s = this->store();
  auto amelie = make_item("movies", "1", "Le Fabuleux Destin d'Amélie Poulain (2001)", 2001);
  amelie.categories = {"Comedy", "Romance"};
  amelie.text = {{"description", "Paris, Montmartre — « café des 2 Moulins »"}};
  auto tokyo = make_item("movies", "2", "東京物語 (Tokyo Story) 🎬", 1953);
  auto game = make_item("games", "1", "Ökogame: «Straße» ‘quoted’ \"double\" \\ backslash", 0);
  game.categories = {"Puzzle"};
  s.upsert_items({amelie, tokyo, game});

  auto got = s.get_item("movies", "1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->title, amelie.title);
  EXPECT_EQ(got->domain, "movies");
  EXPECT_EQ(got->year, 2001);
  EXPECT_EQ(got->categories, amelie.categories);
  EXPECT_EQ(got->text, amelie.text);
  EXPECT_EQ(s.get_item("movies", "2")->title, "東京物語 (Tokyo Story) 🎬");
  // Same id in another domain is another item.
  EXPECT_EQ(s.get_item("games", "1")->title, game.title);
  EXPECT_FALSE(s.get_item("games", "2").has_value());

  tokyo.title = "Tokyo Story";
  tokyo.categories = {"Drama"};
  s.upsert_items({tokyo});
  EXPECT_EQ(s.get_item("movies", "2")->title, "Tokyo Story");
  EXPECT_EQ(s.get_item("movies", "2")->categories, std::vector<std::string>{"Drama"});

  auto movies = s.list_items("movies");
  ASSERT_EQ(movies.size(), 2u);
  EXPECT_EQ(movies[0].id, "1");
  EXPECT_EQ(movies[1].id, "2");
  EXPECT_EQ(s.list_items("games").size(), 1u);
  EXPECT_TRUE(s.list_items("books").empty());

  // A bad item anywhere in the batch rejects the whole batch.
  EXPECT_THROW(s.upsert_items({make_item("movies", "3", "ok"), make_item("movies", "", "no id")}),
               StoreError);
  EXPECT_FALSE(s.get_item("movies", "3").has_value());
}

TYPED_TEST_P(StoreContract, InteractionsAppendKeepHistoryAndOrder) {
  auto& s = this->store();
  const float odd_rating = 3.7f;  // not representable exactly in decimal: must round-trip bit-exact
  s.add_interactions({make_interaction("u1", "10", 4.0f, 300),
                      make_interaction("u1", "20", std::nullopt, 100, "view"),
                      make_interaction("u2", "10", odd_rating, 200)});
  s.add_interactions({make_interaction("u1", "10", 2.0f, 400),  // re-rating keeps history
                      make_interaction("u1", "g5", std::nullopt, 50, "like", "games")});

  auto u1 = s.interactions_of("u1");
  ASSERT_EQ(u1.size(), 4u);
  // Ordered by timestamp.
  EXPECT_EQ(u1[0].item_id, "g5");
  EXPECT_EQ(u1[0].kind, "like");
  EXPECT_EQ(u1[0].domain, "games");
  EXPECT_FALSE(u1[0].rating.has_value());
  EXPECT_EQ(u1[1].item_id, "20");
  EXPECT_EQ(u1[1].kind, "view");
  EXPECT_EQ(u1[2].item_id, "10");
  EXPECT_EQ(u1[2].rating, 4.0f);
  EXPECT_EQ(u1[3].item_id, "10");
  EXPECT_EQ(u1[3].rating, 2.0f);  // the latest counts: it comes last
  EXPECT_EQ(u1[3].timestamp, 400);

  auto movies = s.all_interactions("movies");
  ASSERT_EQ(movies.size(), 4u);
  EXPECT_EQ(movies[0].timestamp, 100);
  EXPECT_EQ(movies[1].user_id, "u2");
  ASSERT_TRUE(movies[1].rating.has_value());
  EXPECT_EQ(std::bit_cast<std::uint32_t>(*movies[1].rating),
            std::bit_cast<std::uint32_t>(odd_rating));
  EXPECT_EQ(s.all_interactions("games").size(), 1u);
  EXPECT_TRUE(s.interactions_of("nobody").empty());

  // Equal timestamps keep insertion order.
  s.add_interactions({make_interaction("u3", "a", 1.0f, 7), make_interaction("u3", "b", 1.0f, 7),
                      make_interaction("u3", "c", 1.0f, 7)});
  auto u3 = s.interactions_of("u3");
  ASSERT_EQ(u3.size(), 3u);
  EXPECT_EQ(u3[0].item_id + u3[1].item_id + u3[2].item_id, "abc");

  // A bad interaction anywhere in the batch rejects the whole batch.
  EXPECT_THROW(s.add_interactions({make_interaction("u4", "1", 5.0f, 1),
                                   make_interaction("u4", "2", 5.0f, 2, "love")}),
               StoreError);
  EXPECT_THROW(
      s.add_interactions({make_interaction("u4", "1", std::numeric_limits<float>::quiet_NaN(), 1)}),
      StoreError);
  EXPECT_TRUE(s.interactions_of("u4").empty());
}

TYPED_TEST_P(StoreContract, ConversationsAndAtomicTurns) {
  auto& s = this->store();
  this->add_user("alice");
  this->add_user("bob");
  const Conversation first = s.create_conversation("alice");
  const Conversation second = s.create_conversation("alice");
  s.create_conversation("bob");
  EXPECT_EQ(first.id.size(), 32u);
  EXPECT_TRUE(std::all_of(first.id.begin(), first.id.end(),
                          [](char c) { return std::isxdigit(c) && !std::isupper(c); }));
  EXPECT_NE(first.id, second.id);
  EXPECT_EQ(first.user_id, "alice");
  EXPECT_EQ(first.state_json, "{}");
  EXPECT_GT(first.created_at, 1700000000);

  const std::string state = R"({"liked":["1","2"],"domain":"movies","note":"ça va 😀"})";
  s.append_turn(
      first.id,
      {make_message("user", "Something like Amélie?"),
       make_message("assistant", "Try « Delicatessen ».", R"({"recommendations":[{"id":"3"}]})")},
      state);
  s.append_turn(first.id, {make_message("user", "more")}, R"({"turn":2})");

  auto conv = s.get_conversation(first.id);
  ASSERT_TRUE(conv.has_value());
  EXPECT_EQ(conv->state_json, R"({"turn":2})");
  EXPECT_EQ(conv->user_id, "alice");
  EXPECT_GE(conv->updated_at, first.created_at);

  auto msgs = s.messages(first.id);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].role, "user");
  EXPECT_EQ(msgs[0].content, "Something like Amélie?");
  EXPECT_EQ(msgs[0].payload_json, "{}");  // empty payload means "none"
  EXPECT_EQ(msgs[1].role, "assistant");
  EXPECT_EQ(msgs[1].payload_json, R"({"recommendations":[{"id":"3"}]})");
  EXPECT_EQ(msgs[2].content, "more");
  EXPECT_LT(msgs[0].id, msgs[1].id);
  EXPECT_LT(msgs[1].id, msgs[2].id);
  EXPECT_GT(msgs[0].created_at, 0);
  EXPECT_TRUE(s.messages(second.id).empty());

  // The state JSON comes back byte for byte.
  s.append_turn(second.id, {}, state);
  EXPECT_EQ(s.get_conversation(second.id)->state_json, state);

  auto of_alice = s.conversations_of("alice");
  ASSERT_EQ(of_alice.size(), 2u);
  std::set<std::string> ids{of_alice[0].id, of_alice[1].id};
  EXPECT_EQ(ids, (std::set<std::string>{first.id, second.id}));
  EXPECT_EQ(s.conversations_of("bob").size(), 1u);
  EXPECT_TRUE(s.conversations_of("carol").empty());
  EXPECT_FALSE(s.get_conversation("0123456789abcdef0123456789abcdef").has_value());
}

TYPED_TEST_P(StoreContract, BadInputThrowsAndWritesNothing) {
  auto& s = this->store();
  this->add_user("alice");
  const Conversation c = s.create_conversation("alice");
  s.append_turn(c.id, {make_message("user", "hi")}, R"({"v":1})");

  try {
    s.append_turn("no-such-conversation", {make_message("user", "lost")}, R"({"v":2})");
    FAIL() << "append_turn to an unknown conversation must throw";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-conversation"), std::string::npos) << e.what();
  }
  // Invalid new state, bad role in the second message, invalid payload: all rejected as a whole.
  EXPECT_THROW(s.append_turn(c.id, {make_message("user", "x")}, "{not json"), StoreError);
  EXPECT_THROW(s.append_turn(c.id, {make_message("user", "x")}, ""), StoreError);
  EXPECT_THROW(
      s.append_turn(c.id, {make_message("user", "x"), make_message("robot", "y")}, R"({"v":3})"),
      StoreError);
  EXPECT_THROW(
      s.append_turn(c.id, {make_message("user", "x"), make_message("assistant", "y", "[1,")},
                    R"({"v":4})"),
      StoreError);
  EXPECT_EQ(s.get_conversation(c.id)->state_json, R"({"v":1})");
  ASSERT_EQ(s.messages(c.id).size(), 1u);
  EXPECT_TRUE(s.messages("no-such-conversation").empty());

  try {
    s.create_conversation("mallory");
    FAIL() << "a conversation needs an existing user";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("mallory"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(s.conversations_of("mallory").empty());
  EXPECT_THROW(s.register_model({"m", "/x", "{bad", "", 0}), StoreError);
  EXPECT_FALSE(s.latest_model("m").has_value());

  // Text that one engine could not store faithfully is refused by both: invalid UTF-8, NUL bytes.
  EXPECT_THROW(s.upsert_user({"bad\xff", {}}), StoreError);
  EXPECT_THROW(
      s.upsert_items({make_item("movies", "1", "ok"), make_item("movies", "2", "a\xc3(b")}),
      StoreError);
  EXPECT_FALSE(s.get_item("movies", "1").has_value());
  EXPECT_THROW(s.append_turn(c.id, {make_message("user", std::string("nul\0byte", 8))}, "{}"),
               StoreError);
  EXPECT_THROW(s.put_embeddings("m", {{"ok", {1.0f}}, {"", {2.0f}}}), StoreError);
  EXPECT_FALSE(s.get_embedding("m", "ok").has_value());
  ASSERT_EQ(s.messages(c.id).size(), 1u);
}

TYPED_TEST_P(StoreContract, EmbeddingsRoundTripBitExact) {
  auto& s = this->store();
  std::vector<float> tricky = {0.1f,
                               -0.0f,
                               1.0f / 3.0f,
                               std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::lowest(),
                               std::numeric_limits<float>::infinity(),
                               std::bit_cast<float>(0x7fc00001u)};  // a NaN with payload
  std::vector<float> big(384);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = std::sin(static_cast<float>(i) * 0.37f) / 7.0f;
  s.put_embeddings("minilm", {{"h1", tricky}, {"h2", big}, {"empty", {}}});
  s.put_embeddings("other", {{"h1", {1.0f}}});

  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  auto got = s.get_embedding("minilm", "h1");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(same_bits(*got, tricky));
  EXPECT_TRUE(same_bits(*s.get_embedding("minilm", "h2"), big));
  EXPECT_TRUE(s.get_embedding("minilm", "empty")->empty());
  EXPECT_EQ(*s.get_embedding("other", "h1"), std::vector<float>{1.0f});
  EXPECT_FALSE(s.get_embedding("minilm", "h3").has_value());
  EXPECT_FALSE(s.get_embedding("nomodel", "h1").has_value());

  s.put_embeddings("minilm", {{"h1", {2.0f, 3.0f}}});  // overwrite, even with another dimension
  EXPECT_EQ(*s.get_embedding("minilm", "h1"), (std::vector<float>{2.0f, 3.0f}));
}

TYPED_TEST_P(StoreContract, ModelRegistryReturnsLatest) {
  auto& s = this->store();
  EXPECT_FALSE(s.latest_model("movies/ease").has_value());
  s.register_model({"movies/ease", "/models/ease-1.bin", R"({"lambda":100})", "abc", 1000});
  s.register_model({"movies/ease", "/models/ease-3.bin", R"({"lambda":300})", "abc", 3000});
  s.register_model({"movies/ease", "/models/ease-2.bin", R"({"lambda":200})", "abc", 2000});
  s.register_model({"games/ease", "/models/games.bin", "", "def", 0});

  auto latest = s.latest_model("movies/ease");
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->path, "/models/ease-3.bin");  // newest by created_at, not by insertion
  EXPECT_EQ(latest->params_json, R"({"lambda":300})");
  EXPECT_EQ(latest->dataset_checksum, "abc");
  EXPECT_EQ(latest->created_at, 3000);

  // Same timestamp: the later registration wins.
  s.register_model({"movies/ease", "/models/ease-3b.bin", "{}", "abd", 3000});
  EXPECT_EQ(s.latest_model("movies/ease")->path, "/models/ease-3b.bin");

  auto games = s.latest_model("games/ease");
  ASSERT_TRUE(games.has_value());
  EXPECT_EQ(games->params_json, "{}");
  EXPECT_GT(games->created_at, 1700000000);  // 0 means "now"
}

TYPED_TEST_P(StoreContract, ConcurrentWritersLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kBatchesPerThread = 15;
  constexpr int kTurnsPerThread = 10;
  this->add_user("shared");
  // Half the threads share one handle, the others use a second handle on the same database (as two
  // server processes would).
  auto other = this->second_handle();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    Store& s = (t % 2 == 0) ? this->store() : *other;
    threads.emplace_back([&s, &failures, t] {
      try {
        const std::string user = concat("t", std::to_string(t));
        s.upsert_user({user, {{"thread", std::to_string(t)}}});
        for (int b = 0; b < kBatchesPerThread; ++b) {
          s.add_interactions({make_interaction(user, concat(std::to_string(b), "a"), 1.0f, b),
                              make_interaction(user, concat(std::to_string(b), "b"), 2.0f, b)});
        }
        const Conversation c = s.create_conversation("shared");
        for (int turn = 0; turn < kTurnsPerThread; ++turn) {
          s.append_turn(c.id,
                        {make_message("user", concat("q", std::to_string(turn))),
                         make_message("assistant", "a")},
                        concat("{\"turn\":", std::to_string(turn), "}"));
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "thread " << t << ": " << e.what();
        ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  auto& s = this->store();
  EXPECT_EQ(s.all_interactions("movies").size(),
            static_cast<std::size_t>(kThreads * kBatchesPerThread * 2));
  auto conversations = s.conversations_of("shared");
  ASSERT_EQ(conversations.size(), static_cast<std::size_t>(kThreads));
  for (const auto& c : conversations) {
    EXPECT_EQ(s.messages(c.id).size(), static_cast<std::size_t>(kTurnsPerThread * 2));
    EXPECT_EQ(c.state_json, concat("{\"turn\":", std::to_string(kTurnsPerThread - 1), "}"));
  }
  EXPECT_EQ(s.list_users(100, 0).size(), static_cast<std::size_t>(kThreads + 1));
}

REGISTER_TYPED_TEST_SUITE_P(StoreContract, MigrationsAreIdempotentAndVersioned,
                            UsersUpsertGetAndList, ItemsRoundTripUtf8AndUpsert,
                            InteractionsAppendKeepHistoryAndOrder, ConversationsAndAtomicTurns,
                            BadInputThrowsAndWritesNothing, EmbeddingsRoundTripBitExact,
                            ModelRegistryReturnsLatest, ConcurrentWritersLoseNothing);

}  // namespace chatrec::store::testing
