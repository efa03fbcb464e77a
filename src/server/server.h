#pragma once
// The HTTP API and web chat page over a ChatEngine and a Store (see docs/api.md and
// assets/openapi.json). Every request is answered: handler exceptions become JSON errors, never a
// crash.
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace chatrec::chat {
class ChatEngine;
}
namespace chatrec::store {
class Store;
}

namespace chatrec::server {

enum class Scope { kUser, kAdmin };
const char* to_string(Scope scope);

// What a key may do: an admin key everything; a user key reads and writes its own user's profile,
// interactions, conversations and recommendations only (and the catalogue).
struct KeyGrant {
  Scope scope = Scope::kUser;
  std::string user_id;  // the user a user key acts for; empty for admin keys
  bool operator==(const KeyGrant&) const = default;
};

// API key -> grant. Empty: no keys configured; the server then answers every request (for a
// loopback-only deployment, see `chatrec serve --insecure`).
using ApiKeys = std::map<std::string, KeyGrant>;

// A keys file has one "KEY admin" or "KEY user USER_ID" per line; '#' starts a comment. Throws
// InputError naming the file and line on a malformed line.
ApiKeys load_api_keys_file(const std::string& path);
// "KEY:admin,KEY:user:USER_ID" (the CHATREC_API_KEYS environment variable). Throws InputError
// when malformed.
ApiKeys parse_api_keys(const std::string& spec);

// Whether `host` names only this machine (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (see Server::port())
  ApiKeys api_keys;
  double rate_limit_per_second = 0.0;  // per API key (or client address without one); 0 = unlimited
  double rate_limit_burst = 0.0;       // bucket size; 0 = max(1, rate)
  std::size_t max_body_bytes = 256 * 1024;
  int threads = 16;  // concurrent connections served (streamed chat turns hold one each)
  std::vector<std::string> domains;  // accepted domain names; empty = any well-formed name
};

// "N/s", "N/m" or a bare N (per second). Throws InputError when malformed.
double parse_rate_limit(const std::string& spec);

// One registered route, as OpenAPI spells its path ("/api/users/{id}").
struct RouteInfo {
  std::string method;
  std::string path;
};

class Server {
 public:
  // `engine` serves conversations, recommendations and cold-start items; `store` users, items and
  // interactions. Both must outlive the server.
  Server(ServerConfig config, std::shared_ptr<chat::ChatEngine> engine,
         std::shared_ptr<store::Store> store);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket (throws std::runtime_error when it cannot) and returns the port.
  int bind();
  // Serves until stop(); bind() first.
  void listen();
  // bind() + listen() on a background thread; returns the port.
  int start();
  void stop();
  int port() const { return port_; }

  const std::vector<RouteInfo>& routes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace chatrec::server
