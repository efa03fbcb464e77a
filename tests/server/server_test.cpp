#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "common/error.h"
#include "llm/pool.h"
#include "server/http_util.h"
#include "server_fixture.h"

namespace chatrec::server::testing {
namespace {

using nlohmann::json;

const httplib::Headers kJson = {};

httplib::Result post(httplib::Client& c, const std::string& path, const json& body,
                     const httplib::Headers& headers = {}) {
  return c.Post(path.c_str(), headers, body.dump(), "application/json");
}

void expect_error(const httplib::Result& r, int status, const std::string& code) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  json body = body_json(r);
  ASSERT_TRUE(body.is_object()) << r->body;
  ASSERT_TRUE(body.contains("error")) << r->body;
  EXPECT_EQ(body["error"]["code"], code) << r->body;
  EXPECT_TRUE(body["error"]["message"].is_string());
  EXPECT_NE(r->get_header_value("Content-Type").find("application/json"), std::string::npos);
}

void expect_recommendation_shape(const json& rec) {
  ASSERT_TRUE(rec.is_object()) << rec;
  EXPECT_TRUE(rec["item_id"].is_string()) << rec;
  EXPECT_TRUE(rec["title"].is_string()) << rec;
  EXPECT_EQ(rec["domain"], "movies") << rec;
  EXPECT_TRUE(rec["score"].is_number()) << rec;
  std::set<std::string> sources = {"collaborative", "cold-start", "llm"};
  EXPECT_TRUE(sources.count(rec["source"].get<std::string>())) << rec;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_ = new TestServer(); }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }
  static TestServer* shared_;
  httplib::Client client() { return shared_->client(); }
};
TestServer* ServerTest::shared_ = nullptr;

TEST_F(ServerTest, HealthAndStaticPage) {
  auto c = client();
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(body_json(health)["status"], "ok");
  EXPECT_EQ(body_json(health)["llm"], "mock");

  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/static/app.js"), std::string::npos);
  auto js = c.Get("/static/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos);
  EXPECT_NE(js->body.find("text/event-stream"), std::string::npos);
  auto css = c.Get("/static/style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 200);
  expect_error(c.Get("/static/missing.js"), 404, "not_found");
  expect_error(c.Get("/no/such/route"), 404, "not_found");
}

TEST_F(ServerTest, EmbeddedAssetsMatchTheSourceFiles) {
  auto c = client();
  for (const std::string name : {"index.html", "app.js", "style.css", "openapi.json"}) {
    std::ifstream in(std::string(CHATREC_SERVER_ASSET_DIR) + "/" + name, std::ios::binary);
    std::stringstream file;
    file << in.rdbuf();
    auto r = c.Get(name == "index.html"     ? "/"
                   : name == "openapi.json" ? "/openapi.json"
                                            : "/static/" + name);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, file.str()) << name;
  }
}

TEST_F(ServerTest, EveryRegisteredRouteIsDocumentedInOpenApi) {
  auto c = client();
  auto r = c.Get("/openapi.json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  json doc = body_json(r);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");
  const auto& routes = shared_->server->routes();
  EXPECT_GE(routes.size(), 20u);
  for (const auto& route : routes) {
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    ASSERT_TRUE(doc["paths"].contains(route.path)) << route.path << " is not in openapi.json";
    EXPECT_TRUE(doc["paths"][route.path].contains(method)) << route.method << " " << route.path;
  }
  // And nothing documented that the server does not serve.
  std::size_t documented = 0;
  for (const auto& [path, ops] : doc["paths"].items()) documented += ops.size();
  EXPECT_EQ(documented, routes.size());
}

TEST_F(ServerTest, Users) {
  auto c = client();
  auto list = c.Get("/api/users?limit=5&offset=2");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  json l = body_json(list);
  ASSERT_EQ(l["users"].size(), 5u);
  EXPECT_EQ(l["users"][0]["id"], "3");
  EXPECT_EQ(l["users"][0]["attributes"]["age"], "22");

  auto one = c.Get("/api/users/4");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(body_json(one)["attributes"]["occupation"], "student");
  expect_error(c.Get("/api/users/nobody"), 404, "not_found");

  auto created = post(c, "/api/users", {{"id", "alice"}, {"attributes", {{"age", "31"}}}});
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(body_json(created)["id"], "alice");
  expect_error(post(c, "/api/users", {{"id", "alice"}}), 409, "conflict");

  auto put =
      c.Put("/api/users/alice", json{{"attributes", {{"age", "32"}}}}.dump(), "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(body_json(c.Get("/api/users/alice"))["attributes"]["age"], "32");
  auto put_new =
      c.Put("/api/users/bob", json{{"attributes", json::object()}}.dump(), "application/json");
  ASSERT_TRUE(put_new);
  EXPECT_EQ(put_new->status, 201);
}

TEST_F(ServerTest, ValidationErrorsAre400) {
  auto c = client();
  auto raw = [&](const std::string& body) {
    return c.Post("/api/users", body, "application/json");
  };
  expect_error(raw(""), 400, "bad_request");
  expect_error(raw("{not json"), 400, "bad_request");
  expect_error(raw("[1,2]"), 400, "bad_request");
  expect_error(raw(std::string(100, '[') + std::string(100, ']')), 400, "bad_request");
  // A number beyond a double's range is not valid JSON here either (not a 500).
  expect_error(raw("{\"id\": 1e400}"), 400, "bad_request");
  expect_error(post(c, "/api/users", {{"id", 7}}), 400, "bad_request");
  expect_error(post(c, "/api/users", {{"id", "x"}, {"admin", true}}), 400,
               "bad_request");  // unknown field
  expect_error(post(c, "/api/users", {{"id", std::string(129, 'a')}}), 400, "bad_request");
  expect_error(post(c, "/api/users", {{"id", "a b"}}), 400, "bad_request");
  expect_error(post(c, "/api/users", {{"id", ""}}), 400, "bad_request");
  expect_error(post(c, "/api/users", {{"id", "ok"}, {"attributes", {{"age", 3}}}}), 400,
               "bad_request");
  expect_error(raw("{\"id\":\"bad\\u0001ctl\"}"), 400, "bad_request");
  expect_error(raw("{\"id\":\"x\",\"attributes\":{\"a\":\"\xff\xfe\"}}"), 400, "bad_request");

  expect_error(c.Get("/api/users/1/recommendations?k=0"), 400, "bad_request");
  expect_error(c.Get("/api/users/1/recommendations?k=101"), 400, "bad_request");
  expect_error(c.Get("/api/users/1/recommendations?k=ten"), 400, "bad_request");
  expect_error(c.Get("/api/users/1/recommendations?domain=Bad!"), 400, "bad_request");
  expect_error(c.Get("/api/users/1/recommendations?domain=books"), 404, "not_found");
  expect_error(c.Get("/api/users/nobody/recommendations"), 404, "not_found");
  expect_error(c.Get("/api/users?limit=0"), 400, "bad_request");
  expect_error(c.Get("/api/items?offset=-1"), 400, "bad_request");

  expect_error(
      post(c, "/api/interactions", {{"user_id", "1"}, {"domain", "movies"}, {"item_id", "3"}}), 400,
      "bad_request");  // a rating needs a value
  expect_error(post(c, "/api/interactions",
                    {{"user_id", "1"}, {"domain", "movies"}, {"item_id", "3"}, {"rating", 7}}),
               400, "bad_request");
  expect_error(post(c, "/api/interactions",
                    {{"user_id", "1"}, {"domain", "movies"}, {"item_id", "3"}, {"kind", "love"}}),
               400, "bad_request");
  expect_error(post(c, "/api/interactions",
                    {{"user_id", "1"}, {"domain", "movies"}, {"item_id", "999"}, {"rating", 3}}),
               404, "not_found");
  expect_error(post(c, "/api/conversations", {{"user_id", "nobody"}}), 404, "not_found");
  expect_error(post(c, "/api/conversations", json::object()), 400, "bad_request");
  expect_error(
      post(c, "/api/conversations/0123456789abcdef0123456789abcdef/messages", {{"text", "hi"}}),
      404, "not_found");
  expect_error(c.Get("/api/conversations/not-an-id"), 404, "not_found");
}

TEST_F(ServerTest, ItemsAndColdStart) {
  auto c = client();
  auto list = c.Get("/api/items?domain=movies&q=movie%201&limit=3");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  json l = body_json(list);
  EXPECT_EQ(l["items"].size(), 3u);
  EXPECT_EQ(l["total"], 11);  // Movie 1, 10..19
  auto one = c.Get("/api/items/movies/5");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(body_json(one)["title"], "Movie 5 (1984)");
  expect_error(c.Get("/api/items/movies/nope"), 404, "not_found");

  auto added = post(c, "/api/items",
                    {{"items",
                      {{{"domain", "movies"},
                        {"id", "new-1"},
                        {"title", "Brand New Space Comedy"},
                        {"year", 2024},
                        {"categories", {"Comedy", "Sci-Fi"}},
                        {"text", {{"description", "A comedy in space"}}}}}}});
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 201) << added->body;
  EXPECT_EQ(body_json(added)["added"], 1);
  auto stored = c.Get("/api/items/movies/new-1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, 200);
  EXPECT_EQ(body_json(stored)["categories"], json({"Comedy", "Sci-Fi"}));
  // HTML character references are decoded on the way in: what is stored and shown is UTF-8.
  auto entity = post(c, "/api/items",
                     {{"domain", "movies"},
                      {"id", "new-2"},
                      {"title", "Pok&eacute;mon &amp; Friends"},
                      {"text", {{"description", "Tom Clancy&rsquo;s"}}}});
  ASSERT_TRUE(entity);
  ASSERT_EQ(entity->status, 201) << entity->body;
  auto decoded = c.Get("/api/items/movies/new-2");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(body_json(decoded)["title"], "Pok\u00e9mon & Friends");
  EXPECT_EQ(body_json(decoded)["text"]["description"], "Tom Clancy\u2019s");
  expect_error(post(c, "/api/items", {{"domain", "movies"}, {"id", "x"}}), 400, "bad_request");
  expect_error(
      post(c, "/api/items", {{"domain", "movies"}, {"id", "x"}, {"title", "t"}, {"year", -4}}), 400,
      "bad_request");
  expect_error(post(c, "/api/items", {{"items", json::array()}}), 400, "bad_request");
}

TEST_F(ServerTest, FastPathRecommendations) {
  auto c = client();
  auto r = c.Get("/api/users/1/recommendations?k=3");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json body = body_json(r);
  EXPECT_EQ(body["user_id"], "1");
  EXPECT_EQ(body["domain"], "movies");
  ASSERT_EQ(body["recommendations"].size(), 3u);
  std::set<std::string> seen;
  for (const auto& rec : body["recommendations"]) {
    expect_recommendation_shape(rec);
    seen.insert(rec["item_id"].get<std::string>());
  }
  EXPECT_EQ(seen.size(), 3u);
  // Scores are the recommender's: best first.
  EXPECT_GE(body["recommendations"][0]["score"].get<double>(),
            body["recommendations"][2]["score"].get<double>());

  auto horror = c.Get("/api/users/2/recommendations?k=5&genre=Horror");
  ASSERT_TRUE(horror);
  ASSERT_EQ(horror->status, 200) << horror->body;
  json h = body_json(horror);
  ASSERT_FALSE(h["recommendations"].empty());
  for (const auto& rec : h["recommendations"]) {
    EXPECT_EQ(rec["categories"], json({"Horror"})) << rec;
  }
}

TEST_F(ServerTest, InteractionsAreStored) {
  auto c = client();
  auto r =
      post(c, "/api/interactions",
           {{"interactions",
             {{{"user_id", "5"}, {"domain", "movies"}, {"item_id", "39"}, {"rating", 4.5}},
              {{"user_id", "5"}, {"domain", "movies"}, {"item_id", "40"}, {"kind", "like"}}}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(body_json(r)["recorded"], 2);
  auto list = c.Get("/api/users/5/interactions?domain=movies");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  bool rating = false, like = false;
  json interactions = body_json(list)["interactions"];
  for (const auto& x : interactions) {
    if (x["item_id"] == "39" && x["kind"] == "rating" && x["rating"] == 4.5) rating = true;
    if (x["item_id"] == "40" && x["kind"] == "like" && x["rating"].is_null()) like = true;
  }
  EXPECT_TRUE(rating);
  EXPECT_TRUE(like);
}

TEST_F(ServerTest, ConversationTurnAsJsonAndStream) {
  auto c = client();
  auto created = post(c, "/api/conversations", {{"user_id", "3"}});
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  std::string id = body_json(created)["id"];
  ASSERT_EQ(id.size(), 32u);

  auto turn =
      post(c, "/api/conversations/" + id + "/messages", {{"text", "Recommend me a comedy please"}});
  ASSERT_TRUE(turn);
  ASSERT_EQ(turn->status, 200) << turn->body;
  json t = body_json(turn);
  EXPECT_EQ(t["conversation_id"], id);
  EXPECT_TRUE(t["reply"].is_string());
  EXPECT_FALSE(t["reply"].get<std::string>().empty());
  EXPECT_TRUE(t["degraded"].is_boolean());
  EXPECT_TRUE(t["intent"].is_string());
  ASSERT_FALSE(t["recommendations"].empty()) << turn->body;
  for (const auto& rec : t["recommendations"]) expect_recommendation_shape(rec);

  auto streamed =
      c.Post(("/api/conversations/" + id + "/messages").c_str(), {{"Accept", "text/event-stream"}},
             json{{"text", "something else, more recent"}}.dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200);
  EXPECT_NE(streamed->get_header_value("Content-Type").find("text/event-stream"),
            std::string::npos);
  auto events = parse_sse(streamed->body);
  ASSERT_GE(events.size(), 3u) << streamed->body;
  EXPECT_EQ(events[0].first, "token");
  EXPECT_EQ(events[events.size() - 2].first, "recommendations");
  EXPECT_EQ(events.back().first, "done");
  std::string tokens;
  for (const auto& [event, data] : events) {
    if (event == "token") tokens += data["text"].get<std::string>();
  }
  EXPECT_FALSE(tokens.empty());
  json done = events.back().second;
  EXPECT_EQ(done["recommendations"], events[events.size() - 2].second["recommendations"]);
  ASSERT_FALSE(done["recommendations"].empty());

  auto history = c.Get(("/api/conversations/" + id).c_str());
  ASSERT_TRUE(history);
  ASSERT_EQ(history->status, 200);
  json h = body_json(history);
  EXPECT_EQ(h["user_id"], "3");
  ASSERT_EQ(h["messages"].size(), 4u) << history->body;
  EXPECT_EQ(h["messages"][0]["role"], "user");
  EXPECT_EQ(h["messages"][0]["content"], "Recommend me a comedy please");
  EXPECT_EQ(h["messages"][1]["role"], "assistant");
  ASSERT_TRUE(h["messages"][3].contains("recommendations")) << h["messages"][3];
  EXPECT_EQ(h["messages"][3]["recommendations"], done["recommendations"]);

  auto convs = c.Get("/api/users/3/conversations");
  ASSERT_TRUE(convs);
  bool listed = false;
  json conversations = body_json(convs)["conversations"];
  for (const auto& cv : conversations) listed = listed || cv["id"] == id;
  EXPECT_TRUE(listed);
}

TEST_F(ServerTest, DislikedItemNeverComesBackAndIsPersisted) {
  auto c = client();
  std::string id = body_json(post(c, "/api/conversations", {{"user_id", "6"}}))["id"];
  json first =
      body_json(post(c, "/api/conversations/" + id + "/messages", {{"text", "recommend movies"}}));
  ASSERT_FALSE(first["recommendations"].empty()) << first;
  std::string disliked = first["recommendations"][0]["item_id"];

  auto fb = post(c, "/api/interactions",
                 {{"user_id", "6"},
                  {"domain", "movies"},
                  {"item_id", disliked},
                  {"kind", "dislike"},
                  {"conversation_id", id}});
  ASSERT_TRUE(fb);
  ASSERT_EQ(fb->status, 201) << fb->body;
  expect_error(post(c, "/api/interactions",
                    {{"user_id", "7"},
                     {"domain", "movies"},
                     {"item_id", disliked},
                     {"kind", "dislike"},
                     {"conversation_id", id}}),
               400, "bad_request");  // someone else's conversation

  json second =
      body_json(post(c, "/api/conversations/" + id + "/messages", {{"text", "more please"}}));
  ASSERT_FALSE(second["recommendations"].empty()) << second;
  for (const auto& rec : second["recommendations"]) EXPECT_NE(rec["item_id"], disliked);

  json h = body_json(c.Get(("/api/conversations/" + id).c_str()));
  ASSERT_EQ(h["disliked"].size(), 1u);
  EXPECT_EQ(h["disliked"][0]["item_id"], disliked);

  auto like = post(c, "/api/conversations/" + id + "/feedback",
                   {{"domain", "movies"},
                    {"item_id", second["recommendations"][0]["item_id"]},
                    {"liked", true}});
  ASSERT_TRUE(like);
  EXPECT_EQ(like->status, 200) << like->body;
  h = body_json(c.Get(("/api/conversations/" + id).c_str()));
  EXPECT_EQ(h["liked"].size(), 1u);
  // Each piece of feedback is stored once, by whichever route it came through.
  std::map<std::string, int> stored;
  const json interactions = body_json(c.Get("/api/users/6/interactions"));
  for (const auto& x : interactions["interactions"]) {
    if (x["kind"] == "like" || x["kind"] == "dislike")
      ++stored[x["kind"].get<std::string>() + ":" + x["item_id"].get<std::string>()];
  }
  EXPECT_EQ(stored,
            (std::map<std::string, int>{
                {"dislike:" + disliked, 1},
                {"like:" + second["recommendations"][0]["item_id"].get<std::string>(), 1}}));

  auto why = post(c, "/api/conversations/" + id + "/explain",
                  {{"domain", "movies"}, {"item_id", second["recommendations"][0]["item_id"]}});
  ASSERT_TRUE(why);
  EXPECT_EQ(why->status, 200) << why->body;
  EXPECT_FALSE(body_json(why)["reply"].get<std::string>().empty());
  expect_error(
      post(c, "/api/conversations/" + id + "/explain", {{"domain", "movies"}, {"item_id", "zzz"}}),
      404, "not_found");
}

TEST_F(ServerTest, SecurityHeadersOnEveryResponseAndNoCachingOfUsersData) {
  auto c = client();
  for (const char* path : {"/", "/static/app.js", "/healthz", "/api/users/1/recommendations?k=2",
                           "/api/users/zzz", "/no/such/route"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    const std::string csp = r->get_header_value("Content-Security-Policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << path << ": " << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << path;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY") << path;
    if (std::string(path).starts_with("/api/")) {
      EXPECT_EQ(r->get_header_value_count("Cache-Control"), 1u) << path;
      EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store") << path;
    }
  }
  // The page has no inline script for the policy to block.
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->body.find("<script>"), std::string::npos);
  EXPECT_EQ(page->body.find(" onclick="), std::string::npos);
  // A streamed turn too.
  auto created = post(c, "/api/conversations", {{"user_id", "3"}});
  ASSERT_EQ(created->status, 201);
  const std::string id = body_json(created)["id"];
  httplib::Headers accept = {{"Accept", "text/event-stream"}};
  auto stream = c.Post(("/api/conversations/" + id + "/messages").c_str(), accept,
                       R"({"text": "Recommend me a comedy"})", "application/json");
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  EXPECT_EQ(stream->get_header_value_count("Cache-Control"), 1u);
  EXPECT_EQ(stream->get_header_value("Cache-Control"), "no-store");
  EXPECT_EQ(stream->get_header_value("X-Content-Type-Options"), "nosniff");
}

TEST(ServerHealth, SaysWhenTheLlmStopsAnswering) {
  TestServer server;
  auto c = server.client();
  nlohmann::json h = body_json(c.Get("/healthz"));
  EXPECT_EQ(h["status"], "ok");
  EXPECT_TRUE(h["llm_answering"].is_null());  // not asked yet
  EXPECT_EQ(h["cold_start_pending"], 0);
  auto created = post(c, "/api/conversations", {{"user_id", "3"}});
  ASSERT_EQ(created->status, 201);
  const std::string id = body_json(created)["id"];
  ASSERT_EQ(post(c, "/api/conversations/" + id + "/messages", {{"text", "Recommend me a comedy"}})
                ->status,
            200);
  h = body_json(c.Get("/healthz"));
  EXPECT_EQ(h["llm_answering"], true);
  EXPECT_EQ(h["status"], "ok");
  server.model->fail_with(llm::LlmError::Kind::kTransport);
  auto turn = post(c, "/api/conversations/" + id + "/messages", {{"text", "Recommend me a drama"}});
  ASSERT_EQ(turn->status, 200) << turn->body;  // answered from the classic ranking
  EXPECT_EQ(body_json(turn)["degraded"], true);
  h = body_json(c.Get("/healthz"));
  EXPECT_EQ(h["llm_answering"], false);
  EXPECT_EQ(h["status"], "degraded");
}

TEST_F(ServerTest, MetricsInPrometheusFormat) {
  auto c = client();
  // httplib records a request's metrics after its response is written; on one kept-alive connection
  // the next request is only read after that, so /metrics below sees every earlier request.
  c.set_keep_alive(true);
  ASSERT_TRUE(c.Get("/healthz"));
  ASSERT_TRUE(c.Get("/api/users/1/recommendations?k=2"));
  ASSERT_TRUE(c.Get("/api/users/zzz"));
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string& t = m->body;
  EXPECT_NE(t.find("# TYPE chatrec_http_requests_total counter"), std::string::npos);
  EXPECT_NE(t.find("chatrec_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"),
            std::string::npos);
  EXPECT_NE(
      t.find(
          "chatrec_http_requests_total{method=\"GET\",route=\"/api/users/{id}\",status=\"404\"}"),
      std::string::npos);
  EXPECT_NE(
      t.find("chatrec_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/users/{id}/"
             "recommendations\",le=\"+Inf\"}"),
      std::string::npos);
  EXPECT_NE(t.find("chatrec_llm_tokens_total{direction=\"in\"}"), std::string::npos);
  EXPECT_NE(t.find("# TYPE chatrec_llm_failures_total counter"), std::string::npos);
}

// With --llm openai:URL1,URL2 the engine's model is a pool: /metrics and /healthz show each server.
TEST(ServerPool, MetricsAndHealthShowEveryServerOfAnLlmPool) {
  struct Named : llm::MockModel {
    explicit Named(std::string n) : label(std::move(n)) {
      set_responder([](const std::vector<llm::Message>&, const llm::GenerationOptions&) {
        return std::string("Here are a few films you may enjoy.");
      });
    }
    std::string name() const override { return label; }
    std::string label;
  };
  std::vector<std::unique_ptr<llm::LanguageModel>> backends;
  backends.push_back(std::make_unique<Named>("left"));
  backends.push_back(std::make_unique<Named>("right"));
  auto pool = std::make_shared<llm::LanguageModelPool>(
      std::move(backends), llm::PoolOptions{.health_interval_seconds = 0});
  TestServer s({}, pool);
  auto c = s.client();
  auto turn = post(c, "/api/conversations", {{"user_id", "1"}});
  ASSERT_EQ(turn->status, 201) << turn->body;
  const std::string id = body_json(turn)["id"];
  auto reply =
      post(c, "/api/conversations/" + id + "/messages", {{"text", "Recommend me a comedy"}});
  ASSERT_EQ(reply->status, 200) << reply->body;
  const nlohmann::json health = body_json(c.Get("/healthz"));
  ASSERT_EQ(health["llm_backends"].size(), 2u) << health;
  EXPECT_EQ(health["llm_backends"][0]["name"], "left");
  EXPECT_EQ(health["llm_backends"][1]["available"], true);
  const std::string t = c.Get("/metrics")->body;
  EXPECT_NE(t.find("# TYPE chatrec_llm_backend_requests_total counter"), std::string::npos) << t;
  EXPECT_NE(t.find("chatrec_llm_backend_available{backend=\"right\"} 1"), std::string::npos) << t;
  const auto stats = pool->stats();
  EXPECT_GT(stats[0].requests + stats[1].requests, 0);
  EXPECT_NE(t.find("chatrec_llm_backend_requests_total{backend=\"left\"} " +
                   std::to_string(stats[0].requests)),
            std::string::npos)
      << t;
}

// ---- configuration variants

TEST(ServerAuth, KeysAndScopes) {
  ServerConfig config;
  config.api_keys = {{"user-key-0001", {Scope::kUser, "1"}},
                     {"admin-key-0001", {Scope::kAdmin, ""}}};
  TestServer s(config);
  auto c = s.client();
  const httplib::Headers user_key = {{"Authorization", "Bearer user-key-0001"}};
  const httplib::Headers admin_key = {{"X-API-Key", "admin-key-0001"}};
  // With keys configured every /api route needs one, reads included; the page, health, metrics
  // and the API description stay open.
  expect_error(c.Get("/api/users/1"), 401, "unauthorized");
  expect_error(c.Get("/api/items"), 401, "unauthorized");
  for (const char* open : {"/", "/healthz", "/metrics", "/openapi.json"}) {
    auto r = c.Get(open);
    ASSERT_TRUE(r) << open;
    EXPECT_EQ(r->status, 200) << open;
  }
  json user{{"id", "carol"}};
  expect_error(post(c, "/api/users", user), 401, "unauthorized");
  expect_error(post(c, "/api/users", user, {{"Authorization", "Bearer wrong-key-000"}}), 401,
               "unauthorized");
  expect_error(c.Get("/api/users/1", {{"X-API-Key", "wrong-key-000"}}), 401, "unauthorized");
  expect_error(post(c, "/api/users", user, user_key), 403, "forbidden");
  auto admin = post(c, "/api/users", user, admin_key);
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->status, 201);
  json rating{{"user_id", "1"}, {"domain", "movies"}, {"item_id", "30"}, {"rating", 3}};
  expect_error(post(c, "/api/interactions", rating), 401, "unauthorized");
  auto ok = post(c, "/api/interactions", rating, user_key);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201);
  expect_error(post(c, "/api/conversations", {{"user_id", "1"}}), 401, "unauthorized");
  expect_error(post(c, "/api/items", {{"domain", "movies"}, {"id", "z"}, {"title", "Z"}}, user_key),
               403, "forbidden");
  // Who the key is.
  json me = body_json(c.Get("/api/me", user_key));
  EXPECT_EQ(me["scope"], "user");
  EXPECT_EQ(me["user_id"], "1");
  EXPECT_EQ(me["keys_required"], true);
  EXPECT_EQ(body_json(c.Get("/api/me", admin_key))["scope"], "admin");
}

// A user key reads and writes its own user only: another user's profile, interactions,
// recommendations and conversation list are 403; another user's conversation, even with its id
// known, is 404 exactly like an id that does not exist. Admin keys see everything.
TEST(ServerAuth, UserKeysReachTheirOwnUserOnly) {
  ServerConfig config;
  config.api_keys = {{"alice-key-001", {Scope::kUser, "1"}},
                     {"bob-key-00002", {Scope::kUser, "2"}},
                     {"admin-key-0001", {Scope::kAdmin, ""}}};
  TestServer s(config);
  auto c = s.client();
  const httplib::Headers alice = {{"Authorization", "Bearer alice-key-001"}};
  const httplib::Headers bob = {{"Authorization", "Bearer bob-key-00002"}};
  const httplib::Headers admin = {{"Authorization", "Bearer admin-key-0001"}};
  for (const std::string path : {"/api/users/1", "/api/users/1/interactions",
                                 "/api/users/1/conversations", "/api/users/1/recommendations"}) {
    auto own = c.Get(path.c_str(), alice);
    ASSERT_TRUE(own) << path;
    EXPECT_EQ(own->status, 200) << path;
    expect_error(c.Get(path.c_str(), bob), 403, "forbidden");
    auto any = c.Get(path.c_str(), admin);
    ASSERT_TRUE(any) << path;
    EXPECT_EQ(any->status, 200) << path;
  }
  // Not even whether a user exists: 403 before the lookup.
  expect_error(c.Get("/api/users/nobody", bob), 403, "forbidden");
  expect_error(c.Get("/api/users", bob), 403, "forbidden");
  auto all = c.Get("/api/users", admin);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->status, 200);
  // The catalogue is for every key.
  auto items = c.Get("/api/items", bob);
  ASSERT_TRUE(items);
  EXPECT_EQ(items->status, 200);

  // Alice's conversation (a user key may leave the user id out).
  auto created = post(c, "/api/conversations", json::object(), alice);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201);
  const std::string id = body_json(created)["id"];
  EXPECT_EQ(body_json(created)["user_id"], "1");
  expect_error(post(c, "/api/conversations", {{"user_id", "1"}}, bob), 403, "forbidden");
  auto turn =
      post(c, "/api/conversations/" + id + "/messages", {{"text", "recommend movies"}}, alice);
  ASSERT_TRUE(turn);
  EXPECT_EQ(turn->status, 200);
  // Bob knows the id: every conversation route answers as for an unknown id.
  const std::string unknown = "0123456789abcdef0123456789abcdef";
  auto as_bob = c.Get(("/api/conversations/" + id).c_str(), bob);
  auto missing = c.Get(("/api/conversations/" + unknown).c_str(), bob);
  ASSERT_TRUE(as_bob);
  ASSERT_TRUE(missing);
  EXPECT_EQ(as_bob->status, 404);
  EXPECT_EQ(missing->status, 404);
  std::string leaked = body_json(as_bob)["error"]["message"];
  std::string expected = body_json(missing)["error"]["message"];
  EXPECT_EQ(leaked.replace(leaked.find(id), id.size(), unknown), expected);
  expect_error(post(c, "/api/conversations/" + id + "/messages", {{"text", "hi"}}, bob), 404,
               "not_found");
  expect_error(post(c, "/api/conversations/" + id + "/explain",
                    {{"domain", "movies"}, {"item_id", "3"}}, bob),
               404, "not_found");
  expect_error(post(c, "/api/conversations/" + id + "/feedback",
                    {{"domain", "movies"}, {"item_id", "3"}, {"liked", true}}, bob),
               404, "not_found");
  // Writing interactions for someone else, directly or through their conversation.
  expect_error(
      post(c, "/api/interactions",
           {{"user_id", "1"}, {"domain", "movies"}, {"item_id", "30"}, {"kind", "like"}}, bob),
      403, "forbidden");
  expect_error(post(c, "/api/interactions",
                    {{"user_id", "2"},
                     {"domain", "movies"},
                     {"item_id", "30"},
                     {"kind", "like"},
                     {"conversation_id", id}},
                    bob),
               404, "not_found");
  // Bob's list of conversations does not show Alice's; the admin reads it.
  json bobs = body_json(c.Get("/api/users/2/conversations", bob))["conversations"];
  EXPECT_TRUE(bobs.empty());
  auto read = c.Get(("/api/conversations/" + id).c_str(), admin);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  EXPECT_EQ(body_json(read)["user_id"], "1");
}

// A turn whose conversation cannot be saved is the server's fault: 503 (and logged), not 400, in
// both the JSON and the streamed answer.
TEST(ServerFaults, StoreFailureInATurnIs503) {
  TestServer s;
  auto c = s.client();
  const std::string id = body_json(post(c, "/api/conversations", {{"user_id", "3"}}))["id"];
  {
    // The disk refuses every new message from now on.
    SQLite::Database db((s.dir.path() / "test.db").string(), SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER refuse_messages BEFORE INSERT ON messages "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END");
  }
  expect_error(post(c, "/api/conversations/" + id + "/messages", {{"text", "recommend movies"}}),
               503, "unavailable");
  auto streamed =
      c.Post(("/api/conversations/" + id + "/messages").c_str(), {{"Accept", "text/event-stream"}},
             json{{"text", "recommend movies"}}.dump(), "application/json");
  ASSERT_TRUE(streamed);
  EXPECT_NE(streamed->body.find("event: error"), std::string::npos) << streamed->body;
  EXPECT_NE(streamed->body.find("\"unavailable\""), std::string::npos) << streamed->body;
}

// A database that cannot grow (its disk full; here its size limit) refuses writes with 503 and
// Retry-After, loses and corrupts nothing already stored, keeps serving reads, and takes writes
// again once it has room (reopened without the limit).
TEST(ServerFaults, AFullDatabaseRefusesWritesAndLosesNothing) {
  std::vector<std::string> acknowledged;
  std::string id;
  chatrec::testing::TempDir keep;
  const std::filesystem::path copy = keep.path() / "full.db";
  {
    TestServer s({}, nullptr, "?max_size_mb=0.4");
    auto c = s.client();
    id = body_json(post(c, "/api/conversations", {{"user_id", "3"}}))["id"];
    const std::string padding(3000, 'x');
    std::optional<httplib::Result> refused;
    for (int i = 0; i < 400 && !refused; ++i) {
      const std::string text = "recommend movies " + std::to_string(i) + " " + padding;
      auto r = post(c, "/api/conversations/" + id + "/messages", {{"text", text}});
      ASSERT_TRUE(r);
      if (r->status == 200) {
        acknowledged.push_back(text);
      } else {
        ASSERT_EQ(r->status, 503) << r->body;
        refused = std::move(r);
      }
    }
    ASSERT_TRUE(refused) << "the size limit was never reached";
    ASSERT_GT(acknowledged.size(), 3u);
    expect_error(*refused, 503, "unavailable");
    EXPECT_EQ((*refused)->get_header_value("Retry-After"), "5");
    const std::string message = body_json(*refused)["error"]["message"];
    EXPECT_NE(message.find("full"), std::string::npos) << message;
    EXPECT_EQ(message.find(s.dir.path().string()), std::string::npos)
        << "no file names: " << message;
    // Other writes are refused the same way; reads still answer, with every acknowledged turn.
    // Small writes may still fit in the last free pages; soon they are refused the same way.
    int refused_writes = 0;
    for (int i = 0; i < 2000 && refused_writes == 0; ++i) {
      const json rating = {{"user_id", "3"},
                           {"domain", "movies"},
                           {"item_id", std::to_string(1 + i % 40)},
                           {"rating", 1 + i % 5},
                           {"timestamp", 2000 + i}};
      auto r = post(c, "/api/interactions", {{"interactions", json::array({rating})}});
      ASSERT_TRUE(r);
      if (r->status != 201) {
        expect_error(r, 503, "unavailable");
        ++refused_writes;
      }
    }
    EXPECT_EQ(refused_writes, 1);
    auto history = c.Get(("/api/conversations/" + id).c_str());
    ASSERT_TRUE(history);
    ASSERT_EQ(history->status, 200) << history->body;
    const json h = body_json(history);
    ASSERT_EQ(h["messages"].size(), 2 * acknowledged.size());
    for (std::size_t i = 0; i < acknowledged.size(); ++i)
      EXPECT_EQ(h["messages"][2 * i]["content"], acknowledged[i]);
    // The refused turn is not in the session either: the next refused turn sees the same state.
    auto again = post(c, "/api/conversations/" + id + "/messages", {{"text", "one more"}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 503);
    auto rec = c.Get("/api/users/3/recommendations?k=5");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, 200) << rec->body;
    s.server->stop();
    s.store.reset();
    s.engine.reset();
    std::filesystem::copy_file(s.dir.path() / "test.db", copy);
    for (const char* suffix : {"-wal", "-shm"}) {
      const auto side = s.dir.path() / (std::string("test.db") + suffix);
      if (std::filesystem::exists(side))
        std::filesystem::copy_file(side, keep.path() / (std::string("full.db") + suffix));
    }
  }
  {
    SQLite::Database check(copy.string(), SQLite::OPEN_READWRITE);
    EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
  }
  // Room again: the same file without the limit takes the next turn after the acknowledged ones.
  auto reopened = store::open_store("sqlite:" + copy.string());
  const auto stored = reopened->messages(id);
  ASSERT_EQ(stored.size(), 2 * acknowledged.size());
  store::StoredMessage m;
  m.role = "user";
  m.content = "after";
  EXPECT_NO_THROW(reopened->append_turn(id, {m}, "{}"));
  EXPECT_EQ(reopened->messages(id).size(), 2 * acknowledged.size() + 1);
}

TEST(ServerLimits, RateLimitAnswers429WithRetryAfter) {
  ServerConfig config;
  config.rate_limit_per_second = 2;
  config.rate_limit_burst = 3;
  TestServer s(config);
  auto c = s.client();
  int ok = 0;
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 6; ++i) {
    auto r = c.Get("/api/users/1");
    ASSERT_TRUE(r);
    if (r->status == 200) ++ok;
    if (r->status == 429) {
      ++limited;
      expect_error(r, 429, "rate_limited");
      retry_after = r->get_header_value("Retry-After");
    }
  }
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 4);  // the burst, plus at most one token refilled meanwhile
  EXPECT_EQ(ok + limited, 6);
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  // Health checks are not rate limited.
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerLimits, OversizedBodyIs413) {
  ServerConfig config;
  config.max_body_bytes = 4096;
  TestServer s(config);
  auto c = s.client();
  json big{{"id", "big"}, {"attributes", {{"bio", std::string(8000, 'x')}}}};
  expect_error(post(c, "/api/users", big), 413, "payload_too_large");
  auto after = post(c, "/api/users", {{"id", "small"}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 201);
}

TEST(ServerConfigParsing, ApiKeysAndRateLimits) {
  chatrec::testing::TempDir dir;
  std::string path = (dir.path() / "keys").string();
  {
    std::ofstream out(path);
    out << "# comment\nabcdefgh123 user 196\n\nadminadmin99 admin # trailing\n";
  }
  ApiKeys keys = load_api_keys_file(path);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys.at("abcdefgh123"), (KeyGrant{Scope::kUser, "196"}));
  EXPECT_EQ(keys.at("adminadmin99"), (KeyGrant{Scope::kAdmin, ""}));
  // A user key must name its user; an admin key must not; a key is listed once.
  for (const auto& [text, field] : std::vector<std::pair<std::string, std::string>>{
           {"abcdefgh123 user\n", "user_id"},
           {"abcdefgh123 admin 196\n", "user_id"},
           {"abcdefgh123 user 1\nabcdefgh123 user 2\n", "key"},
           {"abcdefgh123 user 1 2\n", "line"}}) {
    {
      std::ofstream out(path);
      out << text;
    }
    try {
      load_api_keys_file(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), field) << text;
    }
  }
  {
    std::ofstream out(path);
    out << "abcdefgh123 root\n";
  }
  try {
    load_api_keys_file(path);
    FAIL() << "bad scope accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 1u);
    EXPECT_EQ(e.field(), "scope");
  }
  const ApiKeys env = parse_api_keys("k1k1k1k1k1:admin,k2:k2k2k2k2:user:196");
  ASSERT_EQ(env.size(), 2u);
  EXPECT_EQ(env.at("k1k1k1k1k1"), (KeyGrant{Scope::kAdmin, ""}));
  EXPECT_EQ(env.at("k2:k2k2k2k2"), (KeyGrant{Scope::kUser, "196"}));
  EXPECT_THROW(parse_api_keys("short:admin"), InputError);
  EXPECT_THROW(parse_api_keys("k2k2k2k2k2:user"), InputError);
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("192.168.1.2"));
  EXPECT_FALSE(is_loopback_host("127.0.0.1.example.com"));
  EXPECT_DOUBLE_EQ(parse_rate_limit("20/s"), 20.0);
  EXPECT_DOUBLE_EQ(parse_rate_limit("120/m"), 2.0);
  EXPECT_DOUBLE_EQ(parse_rate_limit("5"), 5.0);
  EXPECT_THROW(parse_rate_limit("fast"), InputError);
  EXPECT_THROW(parse_rate_limit("5/h"), InputError);
  EXPECT_THROW(parse_rate_limit("-1/s"), InputError);
}

// Random methods, paths, headers and bodies; the server answers each with a well-formed status
// (never a 5xx from a handler crash) and keeps serving.
TEST(ServerFuzz, RandomRequestsNeverBreakTheServer) {
  TestServer s;
  std::mt19937_64 rng(2023);
  auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> methods = {"GET",   "POST",    "PUT", "DELETE",
                                            "PATCH", "OPTIONS", "HEAD"};
  std::vector<std::string> paths;
  for (const auto& r : s.server->routes()) paths.push_back(r.path);
  const std::vector<std::string> fillers = {"1",
                                            "999999",
                                            "",
                                            "..",
                                            "%00",
                                            "a%2Fb",
                                            std::string(300, 'x'),
                                            "0123456789abcdef0123456789abcdef",
                                            "%ff%fe",
                                            "movies",
                                            "ä"};
  const std::vector<std::string> bodies = {
      "",
      "{}",
      "[]",
      "null",
      "{\"text\":\"hi\"}",
      "{\"text\":5}",
      "{\"user_id\":\"1\"}",
      "{\"user_id\":\"1\",\"domain\":\"movies\",\"item_id\":\"2\",\"rating\":1e308}",
      "{\"id\":\"q\",\"attributes\":{\"a\":[1,2,3]}}",
      "{\"items\":[{}]}",
      "{\"interactions\":\"x\"}",
      "{\"domain\":\"movies\",\"item_id\":\"2\",\"liked\":\"yes\"}",
      "\xff\xfe\xfd",
      "{\"text\":\"\\ud800\"}",
      std::string(5000, '{'),
      "{\"k\":" + std::string(50, '[') + "]}"};
  const std::vector<std::string> queries = {"",
                                            "?k=5",
                                            "?k=-1",
                                            "?k=99999999999999999999",
                                            "?domain=movies&genre=",
                                            "?limit=abc",
                                            "?q=%25",
                                            "?genre=Comedy&genre=Drama"};
  int answered = 0;
  for (int i = 0; i < 300; ++i) {
    std::string path = pick(paths);
    for (std::size_t p; (p = path.find('{')) != std::string::npos;) {
      path.replace(p, path.find('}', p) - p + 1, pick(fillers));
    }
    if (rng() % 5 == 0) path = std::string("/").append(std::to_string(rng()));
    path += pick(queries);
    httplib::Request req;
    req.method = pick(methods);
    req.path = path;
    req.body = pick(bodies);
    if (rng() % 2) req.set_header("Content-Type", "application/json");
    if (rng() % 3 == 0) req.set_header("Accept", "text/event-stream");
    if (rng() % 4 == 0) req.set_header("Authorization", "Bearer " + std::to_string(rng()));
    if (rng() % 7 == 0) req.set_header("X-API-Key", std::string(rng() % 500, 'k'));
    auto c = s.client();
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    if (c.send(req, res, error)) {
      ++answered;
      EXPECT_GE(res.status, 200) << req.method << " " << path;
      EXPECT_LT(res.status, 500) << req.method << " " << path << " -> " << res.body;
      if (res.status >= 400 && req.method != "HEAD") {
        json body = json::parse(res.body, nullptr, false);
        EXPECT_TRUE(body.is_object() && body.contains("error"))
            << req.method << " " << path << " -> " << res.body;
      }
    }
  }
  EXPECT_GE(answered, 280);

  // Raw bytes that are not HTTP at all.
  for (int i = 0; i < 20; ++i) {
    httplib::Client c("127.0.0.1", s.port);
    std::string garbage;
    for (int k = 0; k < 64; ++k) garbage += static_cast<char>(rng() % 256);
    httplib::Request req;
    req.method = garbage.substr(0, 8);
    req.path = "/" + garbage.substr(8);
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    c.send(req, res, error);
  }

  auto c = s.client();
  auto ok = c.Get("/api/users/1/recommendations?k=3");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(body_json(ok)["recommendations"].size(), 3u);
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// An anonymous log is imported under namespaced user ids: this deployment's user "196" does not
// inherit the games log's user "196".
TEST(ServerBootstrap, AnonymousLogsAreImportedUnderTheirNamespace) {
  chatrec::testing::TempDir dir;
  auto st = store::open_store("sqlite:" + (dir.path() / "db").string());
  data::Dataset games("games");
  const auto u = games.add_user({"196", {}});
  for (int i = 0; i < 3; ++i) {
    const auto item = games.add_item({std::to_string(i), "Game " + std::to_string(i), "games"});
    games.add_interaction({u, item, data::kNoRating, i});
  }
  const auto summary = import_dataset(*st, games, "games", /*with_users=*/false);
  EXPECT_EQ(summary.interactions, 3u);
  EXPECT_EQ(summary.users, 0u);
  EXPECT_TRUE(st->interactions_of("196").empty());
  EXPECT_EQ(st->interactions_of("games:196").size(), 3u);
}

TEST(HttpUtil, TextValidation) {
  EXPECT_NO_THROW(check_text("héllo\nworld ✓", "t"));
  EXPECT_THROW(check_text("a\x01", "t"), ApiError);
  EXPECT_THROW(check_text("\xc3", "t"), ApiError);
  EXPECT_THROW(check_text("\xc0\x80", "t"), ApiError);
  EXPECT_THROW(check_text("\xf5\x80\x80\x80", "t"), ApiError);
  EXPECT_NO_THROW(check_id("user-1_x.y@z", "id"));
  EXPECT_THROW(check_id("a/b", "id"), ApiError);
  EXPECT_THROW(check_domain("Movies", "d"), ApiError);
  EXPECT_EQ(sse_event("token", json{{"text", "a\nb"}}),
            "event: token\ndata: {\"text\":\"a\\nb\"}\n\n");
}

}  // namespace
}  // namespace chatrec::server::testing
