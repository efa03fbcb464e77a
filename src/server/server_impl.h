#pragma once
// Internal to the server: the state shared by the HTTP plumbing (server.cpp) and the API handlers
// (handlers.cpp).
#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/access.h"
#include "server/metrics.h"
#include "server/server.h"

namespace chatrec::server {

// Who may call a route. Reads are open; when keys are configured writes need one, and some need
// admin.
enum class Access { kOpen, kKey, kAdmin };

struct RequestContext {
  const httplib::Request& req;
  httplib::Response& res;
  std::vector<std::string> params;  // path parameters in template order
  std::string api_key;              // "" when none was sent

  void json(int status, const nlohmann::json& body);
};

using Handler = std::function<void(RequestContext&)>;

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
  void check_domain_known(const std::string& domain) const;
};

}  // namespace chatrec::server
