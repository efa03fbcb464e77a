#pragma once
// A real server on loopback over a SQLite temp store, a small synthetic movie catalogue with a
// popularity recommender, and the scripted MockModel.
#include <httplib.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/catalog.h"
#include "chat/engine.h"
#include "llm/mock_model.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"
#include "server/bootstrap.h"
#include "server/server.h"
#include "store/store.h"
#include "testing/test_env.h"

namespace chatrec::server::testing {

// 40 movies in four genres, 12 users; item i is rated by users (i % 12) .. so popularity decreases
// with i.
inline data::Dataset synthetic_movies() {
  data::Dataset ds("synthetic");
  const std::vector<std::string> genres = {"Comedy", "Drama", "Horror", "Sci-Fi"};
  for (int i = 0; i < 40; ++i) {
    data::Item item;
    item.id = std::to_string(i + 1);
    item.title = "Movie " + std::to_string(i + 1) + " (" + std::to_string(1980 + i) + ")";
    item.domain = "movies";
    item.year = 1980 + i;
    item.categories = {genres[i % 4]};
    ds.add_item(item);
  }
  for (int u = 0; u < 12; ++u) {
    data::User user;
    user.id = std::to_string(u + 1);
    user.attributes = {{"age", std::to_string(20 + u)},
                       {"occupation", u % 2 ? "student" : "engineer"}};
    ds.add_user(user);
  }
  std::int64_t t = 1000;
  for (int u = 0; u < 12; ++u) {
    for (int i = 0; i < 40; ++i) {
      // Popular items (low index) are rated by most users; each user leaves some unrated.
      if ((i + u) % 3 == 0 || i < 8 - u / 2) {
        if (i % 12 == u) continue;
        data::Interaction x;
        x.user = static_cast<data::UserIndex>(u);
        x.item = static_cast<data::ItemIndex>(i);
        x.rating = static_cast<float>(1 + (i + u) % 5);
        x.timestamp = t++;
        ds.add_interaction(x);
      }
    }
  }
  return ds;
}

struct TestServer {
  chatrec::testing::TempDir dir;
  std::shared_ptr<store::Store> store;
  std::shared_ptr<llm::MockModel> model;
  std::shared_ptr<chat::ChatEngine> engine;
  std::unique_ptr<Server> server;
  int port = 0;

  // `llm`: another backend for the engine (e.g. a pool); `model` stays the scripted mock.
  // `store_options`: appended to the store URL (e.g. "?max_size_mb=1").
  explicit TestServer(ServerConfig config = {}, std::shared_ptr<llm::LanguageModel> llm = nullptr,
                      const std::string& store_options = {}) {
    store = store::open_store("sqlite:" + (dir.path() / "test.db").string() + store_options);
    data::Dataset ds = synthetic_movies();
    import_dataset(*store, ds, "movies");
    auto catalog = std::make_shared<chat::Catalog>();
    recommend::FitOptions fit;
    fit.progress = false;
    catalog->add_domain("movies", std::move(ds), recommend::make_recommender("popularity"), fit,
                        true);
    model = std::make_shared<llm::MockModel>();
    model->set_responder([](const std::vector<llm::Message>&, const llm::GenerationOptions&) {
      return std::string("Here are a few films you may enjoy.");
    });
    chat::EngineOptions options;
    options.llm_timeout_seconds = 10;
    engine = std::make_shared<chat::ChatEngine>(
        catalog, llm ? llm : std::shared_ptr<llm::LanguageModel>(model), store, options);
    config.host = "127.0.0.1";
    config.port = 0;
    if (config.domains.empty()) config.domains = {"movies"};
    server = std::make_unique<Server>(config, engine, store);
    port = server->start();
  }
  ~TestServer() { server->stop(); }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }
};

inline nlohmann::json body_json(const httplib::Result& r) {
  if (!r) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

// Server-sent events of a response body, in order: (event, data).
inline std::vector<std::pair<std::string, nlohmann::json>> parse_sse(const std::string& body) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    std::string event = "message", data;
    std::size_t line_start = 0;
    while (line_start <= block.size()) {
      std::size_t nl = block.find('\n', line_start);
      std::string line =
          block.substr(line_start, nl == std::string::npos ? std::string::npos : nl - line_start);
      if (line.rfind("event: ", 0) == 0) event = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
      if (nl == std::string::npos) break;
      line_start = nl + 1;
    }
    out.emplace_back(event, nlohmann::json::parse(data, nullptr, false));
  }
  return out;
}

}  // namespace chatrec::server::testing
