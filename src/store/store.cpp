#include "store/store.h"

#include <array>
#include <random>
#include <regex>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace chatrec::store {

std::string random_id() {
  // random_device reads the kernel's CSPRNG on Linux; ids must not repeat across processes or restarts.
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

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// libpq key=value connection strings start with one of its keywords.
bool is_libpq_keyword_string(const std::string& url) {
  static const std::regex keyword_value(
      R"(^\s*(host|hostaddr|port|dbname|user|password|passfile|connect_timeout|sslmode|service|application_name|options)\s*=)");
  return std::regex_search(url, keyword_value);
}

}  // namespace

std::string mask_password(const std::string& url) {
  static const std::regex in_uri(R"(^(postgres(ql)?://[^:/@]*:)[^@]*@)");
  static const std::regex in_keywords(R"((password\s*=\s*)('[^']*'|\S+))");
  std::string masked = std::regex_replace(url, in_uri, "$1***@");
  return std::regex_replace(masked, in_keywords, "$1***");
}

std::unique_ptr<Store> open_store(const std::string& url) {
  if (url.empty()) throw StoreError("empty store URL; expected sqlite:PATH, a file path or postgresql://...");
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://") || is_libpq_keyword_string(url)) {
    return open_postgres_store(url, mask_password(url));
  }
  std::string path = url;
  if (starts_with(url, "sqlite://")) {
    path = url.substr(9);
  } else if (starts_with(url, "sqlite:")) {
    path = url.substr(7);
  } else {
    static const std::regex other_scheme(R"(^[A-Za-z][A-Za-z0-9+.-]*://)");
    if (std::regex_search(url, other_scheme)) {
      throw StoreError("unsupported store URL '" + mask_password(url) +
                       "': expected sqlite:PATH, a file path, postgresql://... or host=... dbname=...");
    }
  }
  if (path.empty()) throw StoreError("store URL '" + url + "' has an empty SQLite path");
  return open_sqlite_store(path);
}

}  // namespace chatrec::store
