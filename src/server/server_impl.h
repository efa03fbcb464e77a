#pragma once
// Internal to the server: the state shared by the HTTP plumbing (server.cpp) and the API handlers
// (handlers.cpp).
#include <httplib.h>

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "llm/pool.h"
#include "server/access.h"
#include "server/metrics.h"
#include "server/server.h"

namespace chatrec::chat {
class ChatError;
}

namespace chatrec::server {

// Who may call a route when keys are configured: kOpen needs none (the page, /healthz, /metrics,
// /openapi.json; never an /api route), kKey any key (a user key then only for its own user, which
// the handler checks), kAdmin an admin key.
enum class Access { kOpen, kKey, kAdmin };

struct RequestContext {
  const httplib::Request& req;
  httplib::Response& res;
  std::vector<std::string> params;  // path parameters in template order
  std::string api_key;              // "" when none was sent
  const KeyGrant* grant = nullptr;  // the key's grant; null when no keys are configured

  void json(int status, const nlohmann::json& body);
  // A user key acts for its own user only: 403 for anyone else.
  void check_acts_for(const std::string& user_id) const;
  // The one user the key acts for, or nullopt (admin key, or no keys configured).
  std::optional<std::string> own_user() const;
};

using Handler = std::function<void(RequestContext&)>;

// The HTTP status of a chat error: 404 not found, 400 a bad request, 503 the server's own store
// failing.
int chat_error_status(const chat::ChatError& e);

struct Route {
  RouteInfo info;
  Access access;
  Handler handler;
};

struct Server::Impl {
  Impl(ServerConfig config, std::shared_ptr<chat::ChatEngine> engine,
       std::shared_ptr<store::Store> store);

  ServerConfig config;
  std::shared_ptr<chat::ChatEngine> engine;
  std::shared_ptr<store::Store> store;
  httplib::Server http;
  RequestMetrics metrics;
  RateLimiter limiter;
  std::vector<Route> routes;
  std::vector<RouteInfo> route_infos;
  std::thread thread;

  void add(const std::string& method, const std::string& path, Access access, Handler handler);
  void dispatch(const Route& route, const httplib::Request& req, httplib::Response& res);
  void register_api();     // handlers.cpp
  void register_static();  // server.cpp
  std::string render_metrics();
  static void render_backend_metrics(std::ostream& out,
                                     const std::vector<llm::BackendStats>& backends);
  void check_domain_known(const std::string& domain) const;
};

}  // namespace chatrec::server
