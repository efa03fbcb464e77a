#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "store/store.h"

namespace chatrec::store {
// Opens (creating if needed) a SQLite database file and applies pending migrations. ":memory:"
// works too. `max_bytes` > 0 caps the database's size (a quota; writes past it fail as
// StoreError kUnavailable, as on a full disk, and nothing stored before is touched).
std::unique_ptr<Store> open_sqlite_store(const std::string& path, std::int64_t max_bytes = 0);
}  // namespace chatrec::store
