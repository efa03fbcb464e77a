#pragma once
#include <memory>
#include <string>

#include "store/store.h"

namespace chatrec::store {
// Opens (creating if needed) a SQLite database file and applies pending migrations. ":memory:"
// works too.
std::unique_ptr<Store> open_sqlite_store(const std::string& path);
}  // namespace chatrec::store
