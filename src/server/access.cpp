#include "server/access.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "server/server.h"

namespace chatrec::server {

const char* to_string(Scope scope) {
  return scope == Scope::kAdmin ? "admin" : "user";
}

namespace {
void check_user_id(const std::string& id, const std::string& file, std::size_t line) {
  if (id.size() > 128) throw InputError(file, line, "user_id", "must have at most 128 characters");
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f || c == ':')
      throw InputError(file, line, "user_id", "must be printable ASCII without spaces or ':'");
  }
}

void check_key(const std::string& key, const std::string& file, std::size_t line) {
  if (key.size() < 8 || key.size() > 256)
    throw InputError(file, line, "key", "must have 8..256 characters");
  for (char c : key) {
    if (c <= 0x20 || c >= 0x7f)
      throw InputError(file, line, "key", "must be printable ASCII without spaces");
  }
}
KeyGrant parse_grant(const std::string& scope, const std::optional<std::string>& user_id,
                     const std::string& file, std::size_t line) {
  if (scope == "admin") {
    if (user_id)
      throw InputError(file, line, "user_id",
                       "an admin key acts for every user; drop '" + *user_id + "'");
    return {Scope::kAdmin, ""};
  }
  if (scope != "user")
    throw InputError(file, line, "scope", "must be 'user' or 'admin', got '" + scope + "'");
  if (!user_id || user_id->empty())
    throw InputError(file, line, "user_id",
                     "a user key names the one user it acts for ('KEY user USER_ID')");
  check_user_id(*user_id, file, line);
  return {Scope::kUser, *user_id};
}

}  // namespace

ApiKeys load_api_keys_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, 0, "file", "cannot be read");
  ApiKeys keys;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string key, scope, user_id, extra;
    if (!(fields >> key)) continue;
    if (!(fields >> scope))
      throw InputError(path, number, "scope", "missing (expected 'KEY admin' or 'KEY user ID')");
    std::optional<std::string> user;
    if (fields >> user_id) user = user_id;
    if (fields >> extra) throw InputError(path, number, "line", "has more than three fields");
    check_key(key, path, number);
    if (keys.contains(key)) throw InputError(path, number, "key", "is listed twice");
    keys[key] = parse_grant(scope, user, path, number);
  }
  return keys;
}

ApiKeys parse_api_keys(const std::string& spec) {
  ApiKeys keys;
  std::stringstream entries(spec);
  std::string entry;
  std::size_t index = 0;
  while (std::getline(entries, entry, ',')) {
    ++index;
    if (entry.empty()) continue;
    // Keys are printable ASCII and may hold ':'; the scope and user id never do.
    const std::string user_marker = ":user:";
    std::string key, scope;
    std::optional<std::string> user;
    if (auto at = entry.rfind(user_marker); at != std::string::npos) {
      key = entry.substr(0, at);
      scope = "user";
      user = entry.substr(at + user_marker.size());
    } else if (auto colon = entry.rfind(':'); colon != std::string::npos) {
      key = entry.substr(0, colon);
      scope = entry.substr(colon + 1);
    } else {
      throw InputError("CHATREC_API_KEYS", index, "entry", "expected KEY:admin or KEY:user:ID");
    }
    check_key(key, "CHATREC_API_KEYS", index);
    keys[key] = parse_grant(scope, user, "CHATREC_API_KEYS", index);
  }
  return keys;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  // 127.0.0.0/8, written as a dotted quad.
  unsigned a = 0, b = 0, c = 0, d = 0;
  char tail = 0;
  return std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 &&
         b < 256 && c < 256 && d < 256;
}

double parse_rate_limit(const std::string& spec) {
  std::string number = spec;
  double per = 1.0;
  if (auto slash = spec.find('/'); slash != std::string::npos) {
    number = spec.substr(0, slash);
    std::string unit = spec.substr(slash + 1);
    if (unit == "s")
      per = 1.0;
    else if (unit == "m")
      per = 60.0;
    else
      throw InputError("--rate-limit", 0, "unit", "must be /s or /m, got '/" + unit + "'");
  }
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != number.size() || !(value >= 0.0) || value > 1e6) {
    throw InputError("--rate-limit", 0, "rate",
                     "expected N/s with 0 <= N <= 1e6, got '" + spec + "'");
  }
  return value / per;
}

RateLimiter::RateLimiter(double rate, double burst)
    : rate_(rate), burst_(burst > 0 ? burst : std::max(1.0, rate)) {}

bool RateLimiter::take(const std::string& client, double* retry_after_seconds) {
  if (rate_ <= 0) return true;
  auto now = Clock::now();
  std::lock_guard lock(mutex_);
  // Idle clients are forgotten once the map grows, so spoofed keys cannot exhaust memory.
  if (buckets_.size() > 100000) {
    std::erase_if(buckets_, [&](const auto& entry) {
      return std::chrono::duration<double>(now - entry.second.updated).count() * rate_ >= burst_;
    });
  }
  auto [it, inserted] = buckets_.try_emplace(client, Bucket{burst_, now});
  Bucket& bucket = it->second;
  if (!inserted) {
    double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
    bucket.tokens = std::min(burst_, bucket.tokens + elapsed * rate_);
    bucket.updated = now;
  }
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return true;
  }
  if (retry_after_seconds) *retry_after_seconds = (1.0 - bucket.tokens) / rate_;
  return false;
}

}  // namespace chatrec::server
