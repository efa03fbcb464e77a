#include "store/store.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <random>
#include <set>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace chatrec::store {

std::string random_id() {
  // random_device reads the kernel's CSPRNG on Linux; ids must not repeat across processes or
  // restarts.
  static thread_local std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(32);
  for (int word = 0; word < 4; ++word) {
    std::uint32_t bits = device();
    for (int nibble = 0; nibble < 8; ++nibble, bits >>= 4) id.push_back(kHex[bits & 0xF]);
  }
  return id;
}

namespace {

// Hand-written parsing rather than std::regex: gcc 12 -O2 with sanitizers reports false
// -Wmaybe-uninitialized inside <regex>, and these checks are simple.

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n';
}

// libpq key=value connection strings start with one of its keywords.
bool is_libpq_keyword_string(const std::string& url) {
  static const std::set<std::string> keywords = {
      "host",    "hostaddr", "port",    "dbname",          "user",    "password",        "passfile",
      "sslmode", "service",  "options", "connect_timeout", "sslcert", "application_name"};
  std::size_t i = 0;
  while (i < url.size() && is_space(url[i])) ++i;
  const std::size_t word_start = i;
  while (i < url.size() && (std::islower(static_cast<unsigned char>(url[i])) || url[i] == '_')) ++i;
  const std::string word = url.substr(word_start, i - word_start);
  while (i < url.size() && is_space(url[i])) ++i;
  return i < url.size() && url[i] == '=' && keywords.count(word) > 0;
}

// "scheme://" with an RFC 3986 scheme.
bool has_uri_scheme(const std::string& url) {
  const auto colon = url.find("://");
  if (colon == std::string::npos || colon == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(url[0]))) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = url[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '.' && c != '-')
      return false;
  }
  return true;
}

}  // namespace

std::string mask_password(const std::string& url) {
  std::string masked = url;
  if (starts_with(masked, "postgresql://") || starts_with(masked, "postgres://")) {
    const std::size_t authority = masked.find("://") + 3;
    const std::size_t authority_end =
        std::min(masked.find('/', authority), masked.find('?', authority));
    const std::size_t at = masked.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority) {
      const std::size_t colon = masked.find(':', authority);
      if (colon != std::string::npos && colon < at)
        masked.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // Keyword form (also password=... in a URI query).
  for (std::size_t pos = masked.find("password"); pos != std::string::npos;
       pos = masked.find("password", pos + 1)) {
    std::size_t i = pos + 8;
    while (i < masked.size() && is_space(masked[i])) ++i;
    if (i >= masked.size() || masked[i] != '=') continue;
    ++i;
    while (i < masked.size() && is_space(masked[i])) ++i;
    std::size_t end = i;
    if (end < masked.size() && masked[end] == '\'') {
      end = masked.find('\'', end + 1);
      end = end == std::string::npos ? masked.size() : end + 1;
    } else {
      while (end < masked.size() && !is_space(masked[end]) && masked[end] != '&') ++end;
    }
    masked.replace(i, end - i, "***");
  }
  return masked;
}

std::unique_ptr<Store> open_store(const std::string& url) {
  if (url.empty())
    throw StoreError("empty store URL; expected sqlite:PATH, a file path or postgresql://...");
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://") ||
      is_libpq_keyword_string(url)) {
    double wait = 30.0;
    if (const char* env = std::getenv("CHATREC_STORE_CONNECT_SECONDS"); env && *env) {
      char* end = nullptr;
      wait = std::strtod(env, &end);
      if (end == env || *end != '\0' || !(wait >= 0) || wait > 86400) {
        throw StoreError(std::string("CHATREC_STORE_CONNECT_SECONDS must be a number of seconds "
                                     "between 0 and 86400, not '") +
                         env + "'");
      }
    }
    return open_postgres_store(url, mask_password(url), wait);
  }
  std::string path = url;
  if (starts_with(url, "sqlite://")) {
    path = url.substr(9);
  } else if (starts_with(url, "sqlite:")) {
    path = url.substr(7);
  } else {
    if (has_uri_scheme(url)) {
      throw StoreError(
          "unsupported store URL '" + mask_password(url) +
          "': expected sqlite:PATH, a file path, postgresql://... or host=... dbname=...");
    }
  }
  // sqlite:PATH?max_size_mb=N caps the database's size.
  std::int64_t max_bytes = 0;
  if (const auto q = path.rfind("?max_size_mb="); q != std::string::npos) {
    const std::string value = path.substr(q + 13);
    char* end = nullptr;
    const double mb = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(mb > 0) || mb > 1e9) {
      throw StoreError("store URL '" + url +
                       "': max_size_mb must be a positive number of MB, not '" + value + "'");
    }
    max_bytes = static_cast<std::int64_t>(mb * 1024 * 1024);
    path.resize(q);
  }
  if (path.empty()) throw StoreError("store URL '" + url + "' has an empty SQLite path");
  return open_sqlite_store(path, max_bytes);
}

}  // namespace chatrec::store
