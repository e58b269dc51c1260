// The PostgreSQL Store, for running fetchd on several machines: a small connection pool over
// libpq, prepared statements, migrations embedded in the binary
// (store/postgres/migrations/*.sql) applied under an advisory lock.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace fetchd {

struct PostgresOptions {
  unsigned pool_size = 4;  // connections opened at start; callers wait when all are busy
  // Before the one retry of an operation whose connection was lost (after a reconnect).
  std::chrono::milliseconds retry_backoff{200};
};

// True for "postgres://..." and "postgresql://..." (libpq connection URIs), case-insensitive.
bool is_postgres_url(std::string_view url);

// Connects the pool to the database at `url` (a libpq URI, e.g.
// postgres://user@host:5432/dbname). kInvalid when the URL is not a PostgreSQL one,
// kUnavailable with libpq's message when the server cannot be reached. Does not migrate: call
// migrate().
Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url,
                                                   PostgresOptions options = {});

}  // namespace fetchd
