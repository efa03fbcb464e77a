#pragma once
#include <memory>
#include <string>

#include "store/store.h"

namespace chatrec::store {
// Connects with a libpq connection string/URI and applies pending migrations. `display` is the
// password-masked form used in error messages. A server that is unreachable at first is retried
// with backoff for `wait_seconds` before the error.
std::unique_ptr<Store> open_postgres_store(const std::string& conninfo, const std::string& display,
                                           double wait_seconds);
// The URL with any password replaced by ***.
std::string mask_password(const std::string& url);
}  // namespace chatrec::store
