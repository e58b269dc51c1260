// Schema migrations of the SQLite store: the embedded .sql files, applied in name order, each
// in its own transaction and recorded in schema_migrations, so that running them again (or
// from two processes at once) applies nothing twice.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/embedded_file.hpp"
#include "core/error.hpp"
#include "store/sqlite/sqlite_connection.hpp"

namespace fetchd::sqlite {

struct Migration {
  std::string name;  // the file name without ".sql", e.g. "0001_init"
  std::string_view sql;
};

// The .sql files among `files`, sorted by name (the numeric prefix orders them).
std::vector<Migration> migrations_from(std::span<const EmbeddedFile> files);

// Applies what is not yet recorded; returns the names applied now. Needs a writable connection.
Result<std::vector<std::string>> apply_migrations(Connection& conn,
                                                  const std::vector<Migration>& migrations);

// Every known migration and whether it is applied (all false on a fresh database).
Result<std::vector<std::pair<std::string, bool>>> migration_status(
    Connection& conn, const std::vector<Migration>& migrations);

}  // namespace fetchd::sqlite
