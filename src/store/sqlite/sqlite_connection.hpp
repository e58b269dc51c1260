// RAII over the SQLite C API for the store's private use: a connection (sqlite3*) with its
// cache of prepared statements, a Query that binds, steps and reads one cached statement and
// resets it when done, and the translation of SQLite result codes into our ErrorCodes.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "core/error.hpp"
#include "core/time.hpp"

namespace fetchd::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// The Error for a failed call: BUSY/LOCKED/IOERR/FULL/READONLY/CANTOPEN become kUnavailable
// (the database, not the request, is the problem), anything else kInternal. `context` says
// what was being done, for the log (`internal`).
Error error_from_code(int code, std::string_view sqlite_message, std::string_view context);

inline bool is_unique_violation(int code) {
  return code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY;
}
inline bool is_foreign_key_violation(int code) {
  return code == SQLITE_CONSTRAINT_FOREIGNKEY;
}

struct ConnectionOptions {
  std::chrono::milliseconds busy_timeout{5000};
  bool query_only = false;  // readers: refuse writes, so a bug cannot write around the mutex
};

class Query;

// Lets the statement cache be searched with the caller's string_view, without a copy.
struct SqlHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
};

// One sqlite3 connection. Not thread-safe: the store serialises its use (writer mutex, reader
// pool). Statements are prepared once per connection and reused.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const std::string& path,
                                                  const ConnectionOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // A cached prepared statement for `sql` (one statement), ready to bind.
  Result<Query> query(std::string_view sql);
  // Runs a script of one or more statements without results (pragmas, migrations, BEGIN...).
  Result<void> exec(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const { return sqlite3_changes64(db_.get()); }

  sqlite3* handle() const { return db_.get(); }
  Error error(int code, std::string_view context) const;

 private:
  explicit Connection(DbHandle db) : db_(std::move(db)) {}

  DbHandle db_;
  // Declared after db_ so the statements are finalized before the connection closes.
  std::unordered_map<std::string, StmtHandle, SqlHash, std::equal_to<>> statements_;
};

// Explicit NULL for a bind.
struct Null {};

// One use of a cached statement: bind, step through the rows, read columns. Resets the
// statement (ending its implicit read transaction) and clears the bindings when destroyed, so
// a cached statement never holds a WAL snapshot between calls.
class Query {
 public:
  Query(const Connection& conn, sqlite3_stmt* stmt) : conn_(&conn), stmt_(stmt) {}
  Query(Query&& other) noexcept
      : conn_(other.conn_), stmt_(std::exchange(other.stmt_, nullptr)), rc_(other.rc_) {}
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  // Binds the arguments to parameters 1..N in order. A failed bind is reported by step().
  template <typename... Args>
  Query& bind(const Args&... args) {
    int index = 1;
    (bind_one(index++, args), ...);
    return *this;
  }

  // true: a row is available; false: done. On failure, last_code() holds the extended result
  // code (for constraint checks) and the Error says what went wrong.
  Result<bool> step();
  int last_code() const { return rc_; }

  // Runs a statement that returns no row we need (INSERT/UPDATE/DELETE without RETURNING).
  Result<void> run();

  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool boolean(int col) const { return int64(col) != 0; }
  std::string text(int col) const;
  TimePoint time(int col) const { return from_unix_ms(int64(col)); }
  std::optional<std::int64_t> opt_int64(int col) const;
  std::optional<std::string> opt_text(int col) const;
  std::optional<TimePoint> opt_time(int col) const;

 private:
  void bind_one(int index, std::int64_t value);
  void bind_one(int index, int value) { bind_one(index, static_cast<std::int64_t>(value)); }
  void bind_one(int index, bool value) { bind_one(index, static_cast<std::int64_t>(value)); }
  void bind_one(int index, TimePoint value) { bind_one(index, to_unix_ms(value)); }
  void bind_one(int index, std::string_view value);
  void bind_one(int index, const std::string& value) { bind_one(index, std::string_view(value)); }
  void bind_one(int index, const char* value) { bind_one(index, std::string_view(value)); }
  void bind_one(int index, Null);
  template <typename T>
  void bind_one(int index, const std::optional<T>& value) {
    if (value) {
      bind_one(index, *value);
    } else {
      bind_one(index, Null{});
    }
  }
  void check_bind(int rc);

  const Connection* conn_;
  sqlite3_stmt* stmt_;  // owned by the connection's cache
  int rc_ = SQLITE_OK;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed uncommitted. IMMEDIATE takes the write
// lock up front, so a competing writer waits for the busy timeout instead of failing at once
// when a deferred transaction tries to upgrade its read lock.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& conn);
  Transaction(Transaction&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<void> commit();

 private:
  explicit Transaction(Connection& conn) : conn_(&conn) {}

  Connection* conn_;  // null once committed or moved from
};

}  // namespace fetchd::sqlite
