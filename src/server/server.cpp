#include "server/server.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <regex>
#include <sstream>

#include "chat/engine.h"
#include "server/assets.h"
#include "server/http_util.h"
#include "server/server_impl.h"
#include "store/store.h"

namespace chatrec::server {

using nlohmann::json;

namespace {

// The route a request matched and when routing started, for the access logger that httplib calls on
// the same thread once the response is written (streamed bodies included).
struct RequestTrace {
  bool active = false;
  std::string route;
  std::chrono::steady_clock::time_point start;
};
thread_local RequestTrace trace;

std::string path_regex(const std::string& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '{') {
      i = path.find('}', i);
      out += "([^/]+)";
    } else if (c == '.' || c == '+' || c == '(' || c == ')' || c == '*' || c == '?' || c == '[' ||
               c == ']' || c == '^' || c == '$' || c == '|' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

std::string content_type_for(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "application/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".json")) return "application/json";
  if (ends_with(".yaml")) return "application/yaml";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

const EmbeddedAsset* find_asset(std::string_view name) {
  for (const auto& asset : embedded_assets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

std::string bearer_key(const httplib::Request& req) {
  std::string key = req.get_header_value("X-API-Key");
  if (!key.empty()) return key;
  std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0)
    return auth.substr(prefix.size());
  return "";
}

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message) {
  res.status = status;
  res.set_content(error_body(code, message).dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

}  // namespace

void RequestContext::json(int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

Server::Impl::Impl(ServerConfig cfg, std::shared_ptr<chat::ChatEngine> eng,
                   std::shared_ptr<store::Store> st)
    : config(std::move(cfg)),
      engine(std::move(eng)),
      store(std::move(st)),
      limiter(config.rate_limit_per_second, config.rate_limit_burst) {}

int chat_error_status(const chat::ChatError& e) {
  switch (e.kind()) {
    case chat::ChatError::Kind::kNotFound:
      return 404;
    case chat::ChatError::Kind::kUnavailable:
      return 503;
    case chat::ChatError::Kind::kBadRequest:
      break;
  }
  return 400;
}

void RequestContext::check_acts_for(const std::string& user_id) const {
  if (auto own = own_user(); own && *own != user_id)
    throw ApiError(403, "forbidden", "this API key acts for user '" + grant->user_id + "' only");
}

std::optional<std::string> RequestContext::own_user() const {
  if (grant && grant->scope == Scope::kUser) return grant->user_id;
  return std::nullopt;
}

void Server::Impl::add(const std::string& method, const std::string& path, Access access,
                       Handler handler) {
  if (access == Access::kOpen && path.rfind("/api/", 0) == 0)
    throw std::logic_error("API route " + path + " must not be open");
  routes.push_back(Route{RouteInfo{method, path}, access, std::move(handler)});
  route_infos.push_back(RouteInfo{method, path});
}

void Server::Impl::check_domain_known(const std::string& domain) const {
  check_domain(domain, "domain");
  if (config.domains.empty()) return;
  for (const auto& d : config.domains) {
    if (d == domain) return;
  }
  throw ApiError(404, "not_found", "unknown domain '" + domain + "'");
}

void Server::Impl::dispatch(const Route& route, const httplib::Request& req,
                            httplib::Response& res) {
  trace.route = route.info.path;
  try {
    RequestContext ctx{req, res, {}, bearer_key(req)};
    for (std::size_t i = 1; i < req.matches.size(); ++i) ctx.params.push_back(req.matches[i].str());

    if (!ctx.api_key.empty()) {
      auto it = config.api_keys.find(ctx.api_key);
      if (it == config.api_keys.end()) throw ApiError(401, "unauthorized", "unknown API key");
      ctx.grant = &it->second;
    }
    if (route.info.path.rfind("/api/", 0) == 0) {
      double retry_after = 0.0;
      std::string client = ctx.grant ? "key:" + ctx.api_key : "addr:" + req.remote_addr;
      if (!limiter.take(client, &retry_after)) {
        res.set_header("Retry-After",
                       std::to_string(std::max(1, static_cast<int>(std::ceil(retry_after)))));
        throw ApiError(429, "rate_limited", "rate limit exceeded; retry later");
      }
    }
    if (!config.api_keys.empty() && route.access != Access::kOpen) {
      if (!ctx.grant) {
        throw ApiError(401, "unauthorized",
                       "this request needs an API key (Authorization: Bearer KEY)");
      }
      if (route.access == Access::kAdmin && ctx.grant->scope != Scope::kAdmin) {
        throw ApiError(403, "forbidden", "this request needs an admin API key");
      }
    }
    // API responses carry users' data: never kept by a browser or a shared cache.
    if (route.info.path.rfind("/api/", 0) == 0) res.set_header("Cache-Control", "no-store");
    route.handler(ctx);
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.code(), e.what());
  } catch (const chat::ChatError& e) {
    const int status = chat_error_status(e);
    if (status >= 500) spdlog::error("{} {}: {}", req.method, req.path, e.what());
    if (status == 503) res.set_header("Retry-After", "5");
    send_error(res, status, code_for_status(status), e.what());
  } catch (const store::StoreError& e) {
    spdlog::error("{} {}: store error: {}", req.method, req.path, e.what());
    if (e.unavailable()) {
      // The request changed nothing (a failed store call writes nothing); the client may retry.
      res.set_header("Retry-After", "5");
      send_error(res, 503, "unavailable", "storage unavailable, nothing was saved: " + e.reason());
    } else {
      send_error(res, 500, "internal", "storage error");
    }
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", req.method, req.path, e.what());
    send_error(res, 500, "internal", "internal error");
  } catch (...) {
    spdlog::error("{} {}: unknown exception", req.method, req.path);
    send_error(res, 500, "internal", "internal error");
  }
}

void Server::Impl::register_static() {
  auto serve = [](RequestContext& ctx, std::string_view name) {
    const EmbeddedAsset* asset = find_asset(name);
    if (!asset) throw not_found("file '" + std::string(name) + "'");
    ctx.res.status = 200;
    ctx.res.set_header("Cache-Control", "no-cache");
    ctx.res.set_content(std::string(asset->bytes), content_type_for(name).c_str());
  };
  add("GET", "/", Access::kOpen, [serve](RequestContext& ctx) { serve(ctx, "index.html"); });
  add("GET", "/openapi.json", Access::kOpen,
      [serve](RequestContext& ctx) { serve(ctx, "openapi.json"); });
  add("GET", "/static/{file}", Access::kOpen, [serve](RequestContext& ctx) {
    const std::string& file = ctx.params.at(0);
    if (file == "openapi.json" || file == "index.html") throw not_found("file '" + file + "'");
    serve(ctx, file);
  });
  add("GET", "/healthz", Access::kOpen, [this](RequestContext& ctx) {
    json body{{"status", "ok"}};
    if (engine) {
      body["llm"] = engine->llm_name();
      // The server answers without its LLM (classic rankings, flagged); say so here.
      const chat::ChatEngine::LlmHealth h = engine->llm_health();
      body["llm_answering"] = h.answered ? json(*h.answered) : json(nullptr);
      body["cold_start_pending"] = h.cold_start_pending;
      if (h.answered == false) body["status"] = "degraded";
    }
    if (const auto* pool =
            engine ? dynamic_cast<const llm::LanguageModelPool*>(engine->llm()) : nullptr) {
      json backends = json::array();
      for (const llm::BackendStats& b : pool->stats())
        backends.push_back(
            {{"name", b.name}, {"available", b.available}, {"in_flight", b.in_flight}});
      body["llm_backends"] = backends;
    }
    ctx.json(200, body);
  });
  add("GET", "/metrics", Access::kOpen, [this](RequestContext& ctx) {
    ctx.res.status = 200;
    ctx.res.set_content(render_metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

std::string Server::Impl::render_metrics() {
  std::ostringstream out;
  out << metrics.render();
  if (engine) {
    chat::Stats s = engine->stats();
    out << "# HELP chatrec_llm_calls_total LLM calls made by the chat engine.\n"
           "# TYPE chatrec_llm_calls_total counter\n"
        << "chatrec_llm_calls_total " << s.llm_calls << "\n"
        << "# HELP chatrec_llm_tokens_total LLM tokens by direction.\n"
           "# TYPE chatrec_llm_tokens_total counter\n"
        << "chatrec_llm_tokens_total{direction=\"in\"} " << s.tokens_in << "\n"
        << "chatrec_llm_tokens_total{direction=\"out\"} " << s.tokens_out << "\n"
        << "# HELP chatrec_llm_failures_total LLM failures by kind (each answered by a classic "
           "fallback).\n"
           "# TYPE chatrec_llm_failures_total counter\n";
    for (const auto& [kind, n] : s.failures) {
      out << "chatrec_llm_failures_total{kind=\"" << prometheus_label(kind) << "\"} " << n << "\n";
    }
    out << "# HELP chatrec_llm_fallbacks_total How LLM failures were resolved, by kind and "
           "resolution.\n"
           "# TYPE chatrec_llm_fallbacks_total counter\n";
    for (const auto& [key, n] : s.resolutions) {
      auto colon = key.find(':');
      out << "chatrec_llm_fallbacks_total{kind=\"" << prometheus_label(key.substr(0, colon))
          << "\",resolution=\""
          << prometheus_label(colon == std::string::npos ? "" : key.substr(colon + 1)) << "\"} "
          << n << "\n";
    }
    if (const auto* pool = dynamic_cast<const llm::LanguageModelPool*>(engine->llm()))
      render_backend_metrics(out, pool->stats());
  }
  return out.str();
}

// One series per server of an LLM pool (--llm openai:URL1,URL2,...).
void Server::Impl::render_backend_metrics(std::ostream& out,
                                          const std::vector<llm::BackendStats>& backends) {
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    for (const llm::BackendStats& b : backends)
      out << name << "{backend=\"" << prometheus_label(b.name) << "\"} " << value(b) << "\n";
  };
  family("chatrec_llm_backend_requests_total", "counter", "LLM calls routed to each server.",
         [](const llm::BackendStats& b) { return b.requests; });
  family("chatrec_llm_backend_failures_total", "counter", "LLM calls that failed on each server.",
         [](const llm::BackendStats& b) { return b.failures; });
  family("chatrec_llm_backend_failovers_total", "counter",
         "Failed calls that another server then took over.",
         [](const llm::BackendStats& b) { return b.failovers; });
  family("chatrec_llm_backend_seconds_total", "counter", "Time spent in calls to each server.",
         [](const llm::BackendStats& b) { return b.seconds_total; });
  family("chatrec_llm_backend_in_flight", "gauge", "Calls in flight on each server.",
         [](const llm::BackendStats& b) { return b.in_flight; });
  family("chatrec_llm_backend_available", "gauge",
         "1 while a server is in service, 0 while its circuit breaker holds it out.",
         [](const llm::BackendStats& b) { return b.available ? 1 : 0; });
}

Server::Server(ServerConfig config, std::shared_ptr<chat::ChatEngine> engine,
               std::shared_ptr<store::Store> store)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(engine), std::move(store))) {
  Impl& s = *impl_;
  s.register_static();
  s.register_api();

  for (const Route& route : s.routes) {
    const Route* r = &route;
    auto handler = [&s, r](const httplib::Request& req, httplib::Response& res) {
      s.dispatch(*r, req, res);
    };
    std::string pattern = path_regex(route.info.path);
    if (route.info.method == "GET")
      s.http.Get(pattern, handler);
    else if (route.info.method == "POST")
      s.http.Post(pattern, handler);
    else if (route.info.method == "PUT")
      s.http.Put(pattern, handler);
    else if (route.info.method == "DELETE")
      s.http.Delete(pattern, handler);
  }

  const int threads = std::max(2, s.config.threads);
  s.http.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(threads));
  };
  s.http.set_payload_max_length(s.config.max_body_bytes);
  // Headers and body go out in separate writes: without this, Nagle plus delayed ACKs add 40 ms per
  // response.
  s.http.set_tcp_nodelay(true);
  s.http.set_read_timeout(10, 0);
  s.http.set_write_timeout(30, 0);
  s.http.set_keep_alive_timeout(5);
  // On every response, errors included: the page runs only its own script and style files, cannot
  // be framed, and nothing is sniffed into another type.
  s.http.set_default_headers({
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
  });
  s.http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    trace.active = true;
    trace.route = "unmatched";
    trace.start = std::chrono::steady_clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        // Statuses httplib decides itself (404 no route, 413 too large, 400 unparsable) get a JSON
        // body too.
        if (!res.body.empty() || res.has_header("Content-Type"))
          return httplib::Server::HandlerResponse::Unhandled;
        std::string message = res.status == 404   ? "no such route"
                              : res.status == 413 ? "request body too large"
                              : res.status == 400
                                  ? "malformed request"
                                  : "request failed with status " + std::to_string(res.status);
        send_error(res, res.status, code_for_status(res.status), message);
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, 500, "internal", "internal error");
      });
  s.http.set_logger([&s](const httplib::Request& req, const httplib::Response& res) {
    double seconds = 0.0;
    std::string route = "invalid";
    if (trace.active) {
      seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - trace.start).count();
      route = trace.route;
    }
    trace.active = false;
    // Methods are client-chosen strings: fold the unknown ones so the label set stays bounded.
    static const std::vector<std::string> known = {"GET",    "HEAD",  "POST",   "PUT",
                                                   "DELETE", "PATCH", "OPTIONS"};
    std::string method =
        std::find(known.begin(), known.end(), req.method) != known.end() ? req.method : "OTHER";
    s.metrics.observe(method, route, res.status, seconds);
  });
}

Server::~Server() {
  stop();
}

const std::vector<RouteInfo>& Server::routes() const {
  return impl_->route_infos;
}

int Server::bind() {
  if (port_ > 0) return port_;
  int port = impl_->config.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(impl_->config.host);
    if (port < 0) throw std::runtime_error("cannot bind " + impl_->config.host + " to a free port");
  } else if (!impl_->http.bind_to_port(impl_->config.host, port)) {
    throw std::runtime_error("cannot bind " + impl_->config.host + ":" + std::to_string(port) +
                             " (in use, or not an address of this machine)");
  }
  port_ = port;
  return port_;
}

void Server::listen() {
  bind();
  impl_->http.listen_after_bind();
}

int Server::start() {
  bind();
  impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
  // stop() before the accept loop has started would be lost, so wait for it.
  for (int i = 0; i < 5000 && !impl_->http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return port_;
}

void Server::stop() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace chatrec::server
