// Applies the embedded migrations of the SQLite store and reports their status.

#include "store/sqlite/sqlite_migrator.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "core/time.hpp"

namespace fetchd::sqlite {

namespace {

constexpr std::string_view kSqlSuffix = ".sql";

Result<void> ensure_migrations_table(Connection& conn) {
  return conn.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
}

Result<bool> is_applied(Connection& conn, const std::string& name) {
  auto query = conn.query("SELECT 1 FROM schema_migrations WHERE name = ?");
  if (!query) return tl::unexpected(query.error());
  query->bind(name);
  return query->step();
}

Error migration_error(const std::string& name, Error error) {
  error.message = "migration " + name + " failed: " + error.message;
  return error;
}

Result<bool> apply_one(Connection& conn, const Migration& migration, TimePoint now) {
  auto tx = Transaction::begin(conn);
  if (!tx) return tl::unexpected(tx.error());
  // Checked inside the write transaction: another process may have applied it meanwhile.
  auto applied = is_applied(conn, migration.name);
  if (!applied) return tl::unexpected(applied.error());
  if (*applied) return false;
  if (auto done = conn.exec(std::string(migration.sql)); !done) {
    return tl::unexpected(done.error());
  }
  {
    auto record = conn.query("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)");
    if (!record) return tl::unexpected(record.error());
    if (auto done = record->bind(migration.name, now).run(); !done) {
      return tl::unexpected(done.error());
    }
  }
  if (auto done = tx->commit(); !done) return tl::unexpected(done.error());
  return true;
}

}  // namespace

std::vector<Migration> migrations_from(std::span<const EmbeddedFile> files) {
  std::vector<Migration> migrations;
  for (const auto& file : files) {
    if (!file.name.ends_with(kSqlSuffix)) continue;
    migrations.push_back(
        {std::string(file.name.substr(0, file.name.size() - kSqlSuffix.size())), file.data});
  }
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) { return a.name < b.name; });
  return migrations;
}

Result<std::vector<std::string>> apply_migrations(Connection& conn,
                                                  const std::vector<Migration>& migrations) {
  if (auto done = ensure_migrations_table(conn); !done) return tl::unexpected(done.error());
  const TimePoint now = SystemClock().now();
  std::vector<std::string> applied_now;
  for (const auto& migration : migrations) {
    auto applied = apply_one(conn, migration, now);
    if (!applied) return tl::unexpected(migration_error(migration.name, applied.error()));
    if (*applied) applied_now.push_back(migration.name);
  }
  return applied_now;
}

Result<std::vector<std::pair<std::string, bool>>> migration_status(
    Connection& conn, const std::vector<Migration>& migrations) {
  std::unordered_set<std::string> applied;
  bool has_table = false;
  {
    auto query = conn.query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!query) return tl::unexpected(query.error());
    auto row = query->step();
    if (!row) return tl::unexpected(row.error());
    has_table = *row;
  }
  if (has_table) {
    auto query = conn.query("SELECT name FROM schema_migrations");
    if (!query) return tl::unexpected(query.error());
    for (;;) {
      auto row = query->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      applied.insert(query->text(0));
    }
  }
  std::vector<std::pair<std::string, bool>> status;
  status.reserve(migrations.size());
  for (const auto& migration : migrations) {
    status.emplace_back(migration.name, applied.contains(migration.name));
  }
  return status;
}

}  // namespace fetchd::sqlite
