// The JSON API: users, items, interactions, conversations and the recommender's fast path.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "chat/engine.h"
#include "common/clock.h"
#include "server/http_util.h"
#include "server/server_impl.h"
#include "store/store.h"

namespace chatrec::server {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxText = 4000;
constexpr std::size_t kMaxTitle = 512;
constexpr std::size_t kMaxBatch = 500;

json user_json(const data::User& user) {
  return json{{"id", user.id}, {"attributes", user.attributes}};
}

json item_json(const data::Item& item) {
  return json{{"id", item.id},     {"domain", item.domain},         {"title", item.title},
              {"year", item.year}, {"categories", item.categories}, {"text", item.text}};
}

// The engine's JSON forms (chat/types.h to_json, TurnResult::to_json) are the API's: one form of
// a recommendation and of a turn.

json item_refs_json(const std::vector<chat::ItemRef>& refs) {
  json out = json::array();
  for (const auto& r : refs) out.push_back(json{{"domain", r.domain}, {"item_id", r.item_id}});
  return out;
}

json interaction_json(const store::StoredInteraction& i) {
  json out{{"user_id", i.user_id},
           {"domain", i.domain},
           {"item_id", i.item_id},
           {"kind", i.kind},
           {"timestamp", i.timestamp}};
  out["rating"] = i.rating ? json(*i.rating) : json(nullptr);
  return out;
}

// A stored message with the structured part of its payload (recommendations, intent, ...)
// alongside.
json message_json(const store::StoredMessage& m) {
  json out{{"id", m.id}, {"role", m.role}, {"content", m.content}, {"created_at", m.created_at}};
  json payload = json::parse(m.payload_json, nullptr, false);
  if (!payload.is_object()) return out;
  if (auto it = payload.find("recommendations"); it != payload.end() && it->is_array()) {
    json recs = json::array();
    for (const auto& r : *it) {
      try {
        recs.push_back(r.get<chat::Recommendation>());
      } catch (const std::exception&) {
        // A payload written by an older engine: show what parses.
      }
    }
    out["recommendations"] = recs;
  }
  for (const char* key : {"intent", "degraded", "notes", "domain", "feedback", "item"}) {
    if (auto it = payload.find(key); it != payload.end()) out[key] = *it;
  }
  return out;
}

bool wants_stream(const httplib::Request& req) {
  return req.get_header_value("Accept").find("text/event-stream") != std::string::npos;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Runs `produce` (a chat turn) either into a JSON response or into a server-sent event stream:
// "token" events carry reply text as it is produced, then "recommendations", then "done" with the
// whole turn.
using TurnProducer = std::function<chat::TurnResult(const chat::TextCallback&)>;

void respond_turn(RequestContext& ctx, TurnProducer produce) {
  if (!wants_stream(ctx.req)) {
    ctx.json(200, produce({}).to_json());
    return;
  }
  ctx.res.status = 200;  // Cache-Control: no-store comes with every /api/ response
  ctx.res.set_header("X-Accel-Buffering", "no");
  auto shared = std::make_shared<TurnProducer>(std::move(produce));
  ctx.res.set_chunked_content_provider("text/event-stream", [shared](std::size_t,
                                                                     httplib::DataSink& sink) {
    // Runs after the handler returned, outside its try block: everything must be caught here.
    bool open = true;
    auto send = [&](const std::string& event) {
      if (open && !sink.write(event.data(), event.size())) open = false;
    };
    try {
      chat::TurnResult result = (*shared)([&](std::string_view text) {
        if (!text.empty()) send(sse_event("token", json{{"text", std::string(text)}}));
      });
      send(sse_event("recommendations", json{{"recommendations", json(result.recommendations)}}));
      send(sse_event("done", result.to_json()));
    } catch (const chat::ChatError& e) {
      const int status = chat_error_status(e);
      if (status >= 500) spdlog::error("streamed turn failed: {}", e.what());
      send(sse_event("error", error_body(code_for_status(status), e.what())));
    } catch (const std::exception& e) {
      spdlog::error("streamed turn failed: {}", e.what());
      send(sse_event("error", error_body("internal", "internal error")));
    } catch (...) {
      send(sse_event("error", error_body("internal", "internal error")));
    }
    sink.done();
    return true;
  });
}

}  // namespace

void Server::Impl::register_api() {
  auto need_store = [this]() -> store::Store& {
    if (!store) throw ApiError(503, "unavailable", "no store configured");
    return *store;
  };
  auto need_engine = [this]() -> chat::ChatEngine& {
    if (!engine) throw ApiError(503, "unavailable", "no chat engine configured");
    return *engine;
  };
  auto require_user = [need_store](const std::string& id) {
    check_id(id, "user_id");
    auto user = need_store().get_user(id);
    if (!user) throw not_found("user '" + id + "'");
    return *user;
  };
  auto default_domain = [this]() {
    if (engine) return engine->options().default_domain;
    return config.domains.empty() ? std::string("movies") : config.domains.front();
  };
  // The conversation's id, checked against the engine (which throws ChatError kNotFound) so that
  // unknown ids are 404 before any work.
  // A user key sees its own user's conversations only; another user's id answers exactly like an
  // unknown one, so ids cannot be probed.
  auto require_conversation = [need_engine](const RequestContext& ctx, const std::string& id) {
    if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
      throw not_found("conversation '" + id.substr(0, 64) + "'");
    }
    chat::ConversationState state = need_engine().conversation(id);
    if (auto own = ctx.own_user(); own && state.user_id != *own)
      throw chat::ChatError(chat::ChatError::Kind::kNotFound, "unknown conversation '" + id + "'");
    return state;
  };

  // ---- who am I
  add("GET", "/api/me", Access::kKey, [this](RequestContext& ctx) {
    json out{{"keys_required", !config.api_keys.empty()}};
    if (ctx.grant) {
      out["scope"] = to_string(ctx.grant->scope);
      if (ctx.grant->scope == Scope::kUser) out["user_id"] = ctx.grant->user_id;
    } else {
      out["scope"] = "admin";  // no keys configured: every request is answered
    }
    ctx.json(200, out);
  });

  // ---- users
  add("GET", "/api/users", Access::kAdmin, [need_store](RequestContext& ctx) {
    auto limit = query_integer(ctx.req.get_param_value("limit"), "limit", 1, 1000).value_or(100);
    auto offset =
        query_integer(ctx.req.get_param_value("offset"), "offset", 0, 100000000).value_or(0);
    json users = json::array();
    for (const auto& u : need_store().list_users(limit, offset)) users.push_back(user_json(u));
    ctx.json(200, json{{"users", users}, {"limit", limit}, {"offset", offset}});
  });
  add("POST", "/api/users", Access::kAdmin, [need_store](RequestContext& ctx) {
    json body = parse_object(ctx.req.body, {"id", "attributes"});
    data::User user;
    user.id = required_string(body, "id", 128);
    check_id(user.id, "id");
    user.attributes = string_map(body, "attributes", 32, 64, 256);
    if (need_store().get_user(user.id))
      throw ApiError(409, "conflict", "user '" + user.id + "' exists");
    need_store().upsert_user(user);
    ctx.json(201, user_json(user));
  });
  add("GET", "/api/users/{id}", Access::kKey, [require_user](RequestContext& ctx) {
    ctx.check_acts_for(ctx.params[0]);
    ctx.json(200, user_json(require_user(ctx.params[0])));
  });
  add("PUT", "/api/users/{id}", Access::kAdmin, [need_store](RequestContext& ctx) {
    check_id(ctx.params[0], "id");
    json body = parse_object(ctx.req.body, {"attributes"});
    data::User user{ctx.params[0], string_map(body, "attributes", 32, 64, 256)};
    bool existed = need_store().get_user(user.id).has_value();
    need_store().upsert_user(user);
    ctx.json(existed ? 200 : 201, user_json(user));
  });
  add("GET", "/api/users/{id}/recommendations", Access::kKey,
      [this, need_engine, require_user, default_domain](RequestContext& ctx) {
        const std::string& user_id = ctx.params[0];
        ctx.check_acts_for(user_id);
        require_user(user_id);
        std::string domain =
            ctx.req.has_param("domain") ? ctx.req.get_param_value("domain") : default_domain();
        check_domain_known(domain);
        auto k = query_integer(ctx.req.get_param_value("k"), "k", 1, 100).value_or(10);
        chat::Constraints constraints;
        for (std::size_t i = 0; i < ctx.req.get_param_value_count("genre"); ++i) {
          std::string genre = ctx.req.get_param_value("genre", i);
          if (genre.empty() || genre.size() > 64)
            throw bad_request("query parameter 'genre' must have 1..64 bytes");
          check_text(genre, "genre");
          constraints.genres_wanted.push_back(genre);
        }
        if (constraints.genres_wanted.size() > 16)
          throw bad_request("at most 16 'genre' parameters");
        auto recs =
            need_engine().recommend_fast(user_id, domain, static_cast<std::size_t>(k), constraints);
        ctx.json(200,
                 json{{"user_id", user_id}, {"domain", domain}, {"recommendations", json(recs)}});
      });
  add("GET", "/api/users/{id}/interactions", Access::kKey,
      [need_store, require_user](RequestContext& ctx) {
        ctx.check_acts_for(ctx.params[0]);
        require_user(ctx.params[0]);
        std::string domain = ctx.req.get_param_value("domain");
        if (!domain.empty()) check_domain(domain, "domain");
        json out = json::array();
        for (const auto& i : need_store().interactions_of(ctx.params[0])) {
          if (domain.empty() || i.domain == domain) out.push_back(interaction_json(i));
        }
        ctx.json(200, json{{"user_id", ctx.params[0]}, {"interactions", out}});
      });
  add("GET", "/api/users/{id}/conversations", Access::kKey,
      [need_engine, require_user](RequestContext& ctx) {
        ctx.check_acts_for(ctx.params[0]);
        require_user(ctx.params[0]);
        json out = json::array();
        for (const auto& c : need_engine().conversations_of(ctx.params[0])) {
          out.push_back(
              json{{"id", c.id}, {"created_at", c.created_at}, {"updated_at", c.updated_at}});
        }
        ctx.json(200, json{{"user_id", ctx.params[0]}, {"conversations", out}});
      });

  // ---- items
  add("GET", "/api/items", Access::kKey, [this, need_store, default_domain](RequestContext& ctx) {
    std::string domain =
        ctx.req.has_param("domain") ? ctx.req.get_param_value("domain") : default_domain();
    check_domain_known(domain);
    auto limit = query_integer(ctx.req.get_param_value("limit"), "limit", 1, 1000).value_or(50);
    auto offset =
        query_integer(ctx.req.get_param_value("offset"), "offset", 0, 100000000).value_or(0);
    std::string q = ctx.req.get_param_value("q");
    if (q.size() > 200) throw bad_request("query parameter 'q' is longer than 200 bytes");
    check_text(q, "q");
    q = lower(q);
    json items = json::array();
    std::int64_t matched = 0;
    for (const auto& item : need_store().list_items(domain)) {
      if (!q.empty() && lower(item.title).find(q) == std::string::npos) continue;
      if (matched++ < offset) continue;
      if (static_cast<std::int64_t>(items.size()) < limit) items.push_back(item_json(item));
    }
    ctx.json(200, json{{"domain", domain},
                       {"items", items},
                       {"total", matched},
                       {"limit", limit},
                       {"offset", offset}});
  });
  add("GET", "/api/items/{domain}/{id}", Access::kKey, [this, need_store](RequestContext& ctx) {
    check_domain_known(ctx.params[0]);
    check_id(ctx.params[1], "id");
    auto item = need_store().get_item(ctx.params[0], ctx.params[1]);
    if (!item) throw not_found("item '" + ctx.params[0] + "/" + ctx.params[1] + "'");
    ctx.json(200, item_json(*item));
  });
  add("POST", "/api/items", Access::kAdmin, [this, need_store](RequestContext& ctx) {
    json body = parse_object(ctx.req.body,
                             {"items", "domain", "id", "title", "year", "categories", "text"});
    json list = json::array();
    if (body.contains("items")) {
      if (body.size() != 1)
        throw bad_request("send either one item or {\"items\": [...]}, not both");
      if (!body["items"].is_array() || body["items"].empty() || body["items"].size() > kMaxBatch) {
        throw bad_request("field 'items' must be an array of 1.." + std::to_string(kMaxBatch) +
                          " items");
      }
      list = body["items"];
    } else {
      list.push_back(body);
    }
    std::map<std::string, std::vector<data::Item>> by_domain;
    json created = json::array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const json& entry = list[i];
      check_object(entry, {"domain", "id", "title", "year", "categories", "text"},
                   "items[" + std::to_string(i) + "]");
      data::Item item;
      item.domain = required_string(entry, "domain", 32);
      check_domain_known(item.domain);
      item.id = required_string(entry, "id", 128);
      check_id(item.id, "id");
      item.title = required_string(entry, "title", kMaxTitle);
      item.year = static_cast<int>(optional_integer(entry, "year", 0, 3000).value_or(0));
      item.categories = string_list(entry, "categories", 32, 64);
      item.text = string_map(entry, "text", 16, 64, kMaxText);
      data::decode_item_text(item);
      created.push_back(item_json(item));
      by_domain[item.domain].push_back(std::move(item));
    }
    std::size_t added = 0;
    for (auto& [domain, items] : by_domain) {
      if (engine) {
        added += engine->add_items(domain, items);
      } else {
        need_store().upsert_items(items);
        added += items.size();
      }
    }
    ctx.json(201, json{{"added", added}, {"items", created}});
  });

  // ---- interactions
  add("POST", "/api/interactions", Access::kKey,
      [this, need_store, require_conversation](RequestContext& ctx) {
        static const std::vector<std::string> fields = {
            "user_id", "domain", "item_id", "kind", "rating", "timestamp", "conversation_id"};
        std::vector<std::string> top = fields;
        top.push_back("interactions");
        json body = parse_object(ctx.req.body, top);
        json list = json::array();
        if (body.contains("interactions")) {
          if (body.size() != 1)
            throw bad_request("send either one interaction or {\"interactions\": [...]}");
          if (!body["interactions"].is_array() || body["interactions"].empty() ||
              body["interactions"].size() > kMaxBatch) {
            throw bad_request("field 'interactions' must be an array of 1.." +
                              std::to_string(kMaxBatch) + " entries");
          }
          list = body["interactions"];
        } else {
          list.push_back(body);
        }
        std::vector<store::StoredInteraction> batch;
        std::vector<std::pair<std::string, std::pair<chat::ItemRef, bool>>> feedback;
        std::size_t recorded = 0;
        for (std::size_t i = 0; i < list.size(); ++i) {
          const json& entry = list[i];
          check_object(entry, fields, "interactions[" + std::to_string(i) + "]");
          store::StoredInteraction x;
          x.user_id = required_string(entry, "user_id", 128);
          check_id(x.user_id, "user_id");
          ctx.check_acts_for(x.user_id);
          x.domain = required_string(entry, "domain", 32);
          check_domain_known(x.domain);
          x.item_id = required_string(entry, "item_id", 128);
          check_id(x.item_id, "item_id");
          x.kind = optional_string(entry, "kind", 16).value_or("rating");
          if (x.kind != "rating" && x.kind != "like" && x.kind != "dislike" && x.kind != "view") {
            throw bad_request("field 'kind' must be one of rating, like, dislike, view");
          }
          if (auto r = optional_number(entry, "rating", 0.0, 5.0))
            x.rating = static_cast<float>(*r);
          if (x.kind == "rating" && !x.rating)
            throw bad_request("field 'rating' is required when kind is 'rating'");
          x.timestamp =
              optional_integer(entry, "timestamp", 0, 32503680000).value_or(clock::unix_seconds());
          if (!need_store().get_user(x.user_id)) throw not_found("user '" + x.user_id + "'");
          if (!need_store().get_item(x.domain, x.item_id))
            throw not_found("item '" + x.domain + "/" + x.item_id + "'");
          if (auto conversation = optional_string(entry, "conversation_id", 64)) {
            if (x.kind != "like" && x.kind != "dislike") {
              throw bad_request("'conversation_id' is only meaningful for like and dislike");
            }
            chat::ConversationState state = require_conversation(ctx, *conversation);
            if (state.user_id != x.user_id)
              throw bad_request("the conversation belongs to another user");
            // The engine records conversation feedback itself (once).
            feedback.push_back(
                {*conversation, {chat::ItemRef{x.domain, x.item_id}, x.kind == "like"}});
            ++recorded;
            continue;
          }
          batch.push_back(std::move(x));
        }
        if (!batch.empty()) need_store().add_interactions(batch);
        json turns = json::array();
        for (const auto& [conversation, fb] : feedback) {
          turns.push_back(engine->feedback(conversation, fb.first, fb.second).to_json());
        }
        json out{{"recorded", batch.size() + recorded}};
        if (!turns.empty()) out["feedback"] = turns;
        ctx.json(201, out);
      });

  // ---- conversations
  add("POST", "/api/conversations", Access::kKey, [need_engine, require_user](RequestContext& ctx) {
    json body = parse_object(ctx.req.body, {"user_id"});
    // A user key may leave the user out: it acts for one.
    const auto own = ctx.own_user();
    std::string user_id =
        own && !body.contains("user_id") ? *own : required_string(body, "user_id", 128);
    check_id(user_id, "user_id");
    ctx.check_acts_for(user_id);
    require_user(user_id);
    std::string id = need_engine().create_conversation(user_id);
    ctx.json(201, json{{"id", id}, {"user_id", user_id}, {"created_at", clock::unix_seconds()}});
  });
  add("GET", "/api/conversations/{id}", Access::kKey,
      [this, require_conversation](RequestContext& ctx) {
        chat::ConversationState state = require_conversation(ctx, ctx.params[0]);
        json out{{"id", ctx.params[0]},
                 {"user_id", state.user_id},
                 {"domain", state.domain},
                 {"turns", state.turns},
                 {"liked", item_refs_json(state.liked)},
                 {"disliked", item_refs_json(state.disliked)}};
        json messages = json::array();
        std::optional<store::Conversation> stored =
            store ? store->get_conversation(ctx.params[0]) : std::nullopt;
        if (stored) {
          out["created_at"] = stored->created_at;
          out["updated_at"] = stored->updated_at;
          for (const auto& m : store->messages(ctx.params[0])) messages.push_back(message_json(m));
        } else {
          std::int64_t n = 0;
          for (const auto& turn : engine->messages(ctx.params[0])) {
            messages.push_back(json{{"id", ++n}, {"role", turn.role}, {"content", turn.content}});
          }
        }
        out["messages"] = messages;
        ctx.json(200, out);
      });
  add("POST", "/api/conversations/{id}/messages", Access::kKey,
      [this, require_conversation](RequestContext& ctx) {
        require_conversation(ctx, ctx.params[0]);
        json body = parse_object(ctx.req.body, {"text"});
        std::string text = required_string(body, "text", kMaxText);
        auto engine_ptr = engine;
        std::string id = ctx.params[0];
        respond_turn(ctx, [engine_ptr, id, text](const chat::TextCallback& on_text) {
          return engine_ptr->turn(id, text, on_text);
        });
      });
  auto read_item_ref = [this](const json& body) {
    chat::ItemRef ref;
    ref.domain = required_string(body, "domain", 32);
    check_domain_known(ref.domain);
    ref.item_id = required_string(body, "item_id", 128);
    check_id(ref.item_id, "item_id");
    return ref;
  };
  add("POST", "/api/conversations/{id}/explain", Access::kKey,
      [this, require_conversation, read_item_ref](RequestContext& ctx) {
        require_conversation(ctx, ctx.params[0]);
        json body = parse_object(ctx.req.body, {"domain", "item_id"});
        chat::ItemRef ref = read_item_ref(body);
        if (store && !store->get_item(ref.domain, ref.item_id)) {
          throw not_found("item '" + ref.domain + "/" + ref.item_id + "'");
        }
        auto engine_ptr = engine;
        std::string id = ctx.params[0];
        respond_turn(ctx, [engine_ptr, id, ref](const chat::TextCallback& on_text) {
          return engine_ptr->explain(id, ref, on_text);
        });
      });
  add("POST", "/api/conversations/{id}/feedback", Access::kKey,
      [this, require_conversation, read_item_ref](RequestContext& ctx) {
        require_conversation(ctx, ctx.params[0]);
        json body = parse_object(ctx.req.body, {"domain", "item_id", "liked"});
        chat::ItemRef ref = read_item_ref(body);
        auto liked = optional_bool(body, "liked");
        if (!liked) throw bad_request("field 'liked' (boolean) is required");
        if (store && !store->get_item(ref.domain, ref.item_id))
          throw not_found("item '" + ref.domain + "/" + ref.item_id + "'");
        // The engine stores the interaction with the feedback.
        ctx.json(200, engine->feedback(ctx.params[0], ref, *liked).to_json());
      });
}

}  // namespace chatrec::server
