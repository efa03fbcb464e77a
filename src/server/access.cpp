#include "server/access.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "server/server.h"

namespace chatrec::server {

const char* to_string(Scope scope) {
  return scope == Scope::kAdmin ? "admin" : "user";
}

namespace {
Scope parse_scope(const std::string& name, const std::string& file, std::size_t line) {
  if (name == "user") return Scope::kUser;
  if (name == "admin") return Scope::kAdmin;
  throw InputError(file, line, "scope", "must be 'user' or 'admin', got '" + name + "'");
}

void check_key(const std::string& key, const std::string& file, std::size_t line) {
  if (key.size() < 8 || key.size() > 256)
    throw InputError(file, line, "key", "must have 8..256 characters");
  for (char c : key) {
    if (c <= 0x20 || c >= 0x7f)
      throw InputError(file, line, "key", "must be printable ASCII without spaces");
  }
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
    std::string key, scope, extra;
    if (!(fields >> key)) continue;
    if (!(fields >> scope))
      throw InputError(path, number, "scope", "missing (expected 'KEY user|admin')");
    if (fields >> extra) throw InputError(path, number, "line", "has more than two fields");
    check_key(key, path, number);
    keys[key] = parse_scope(scope, path, number);
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
    auto colon = entry.rfind(':');
    if (colon == std::string::npos) {
      throw InputError("CHATREC_API_KEYS", index, "entry", "expected KEY:SCOPE");
    }
    std::string key = entry.substr(0, colon);
    check_key(key, "CHATREC_API_KEYS", index);
    keys[key] = parse_scope(entry.substr(colon + 1), "CHATREC_API_KEYS", index);
  }
  return keys;
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
