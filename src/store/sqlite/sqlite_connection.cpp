// RAII over the SQLite C API: connections, cached statements, queries, error translation.
// The pragmas every connection of the store runs with are set here, in one place.

#include "store/sqlite/sqlite_connection.hpp"

#include <string>

namespace fetchd::sqlite {

namespace {

std::string describe(int code, std::string_view sqlite_message, std::string_view context) {
  std::string text(context);
  text += ": ";
  text += sqlite_message;
  text += " (";
  text += sqlite3_errstr(code);
  text += ", code ";
  text += std::to_string(code);
  text += ")";
  return text;
}

}  // namespace

Error error_from_code(int code, std::string_view sqlite_message, std::string_view context) {
  std::string internal = describe(code, sqlite_message, context);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error::make(ErrorCode::kUnavailable,
                         "the database is busy (locked by another writer); try again",
                         std::move(internal));
    case SQLITE_IOERR:
      return Error::make(ErrorCode::kUnavailable, "the database had an I/O error",
                         std::move(internal));
    case SQLITE_FULL:
      return Error::make(ErrorCode::kUnavailable, "the database or its disk is full",
                         std::move(internal));
    case SQLITE_READONLY:
      return Error::make(ErrorCode::kUnavailable, "the database is read-only", std::move(internal));
    case SQLITE_CANTOPEN:
      return Error::make(ErrorCode::kUnavailable, "the database file cannot be opened",
                         std::move(internal));
    default:
      return Error::make(ErrorCode::kInternal, "database error", std::move(internal));
  }
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path,
                                                     const ConnectionOptions& options) {
  sqlite3* raw = nullptr;
  // NOMUTEX: the store guarantees one thread per connection at a time, so SQLite's own
  // per-connection mutex would only cost.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbHandle db(raw);  // sqlite3_open_v2 may allocate a handle even when it fails
  if (rc != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return fail(ErrorCode::kUnavailable, "cannot open the database \"" + path + "\": " + message,
                describe(rc, message, "sqlite3_open_v2"));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), static_cast<int>(options.busy_timeout.count()));

  std::unique_ptr<Connection> conn(new Connection(std::move(db)));
  // foreign_keys is per connection and off by default: without it ON DELETE CASCADE is inert.
  // synchronous=NORMAL is durable across application crashes in WAL mode and much faster.
  // cache_size: SQLite's default 2 MB page cache thrashes once the tasks table outgrows it (a
  // million tasks: every run's task update read pages from the file again); 64 MB for the one
  // writer, 16 MB for each reader. The cache fills only as pages are used.
  std::string pragmas = "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";
  pragmas += options.query_only ? " PRAGMA query_only = ON; PRAGMA cache_size = -16384;"
                                : " PRAGMA cache_size = -65536;";
  if (auto done = conn->exec(pragmas); !done) {
    Error error = done.error();
    error.code = ErrorCode::kUnavailable;
    error.message = "cannot open the database \"" + path + "\": " + error.internal;
    return tl::unexpected(std::move(error));
  }
  return conn;
}

Connection::~Connection() {
  statements_.clear();
}

Error Connection::error(int code, std::string_view context) const {
  return error_from_code(code, sqlite3_errmsg(db_.get()), context);
}

Result<Query> Connection::query(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    std::string key(sql);
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtHandle stmt(raw);
    if (rc != SQLITE_OK) return tl::unexpected(error(rc, "prepare: " + key));
    if (!stmt) return fail(ErrorCode::kInternal, "database error", "empty statement: " + key);
    it = statements_.emplace(std::move(key), std::move(stmt)).first;
  }
  return Query(*this, it->second.get());
}

Result<void> Connection::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  const std::string text = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  const int code = sqlite3_extended_errcode(db_.get());
  return tl::unexpected(error_from_code(code != SQLITE_OK ? code : rc, text, "exec"));
}

Query::~Query() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Query::check_bind(int rc) {
  if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
}

void Query::bind_one(int index, std::int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_, index, value));
}

void Query::bind_one(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies, so the caller's string may die before step().
  check_bind(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

void Query::bind_one(int index, Null) {
  check_bind(sqlite3_bind_null(stmt_, index));
}

Result<bool> Query::step() {
  if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW && rc_ != SQLITE_DONE) {
    return tl::unexpected(conn_->error(rc_, std::string("bind: ") + sqlite3_sql(stmt_)));
  }
  rc_ = sqlite3_step(stmt_);
  if (rc_ == SQLITE_ROW) return true;
  if (rc_ == SQLITE_DONE) return false;
  return tl::unexpected(conn_->error(rc_, sqlite3_sql(stmt_)));
}

Result<void> Query::run() {
  auto row = step();
  if (!row) return tl::unexpected(row.error());
  return {};
}

std::string Query::text(int col) const {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<std::int64_t> Query::opt_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}

std::optional<std::string> Query::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

std::optional<TimePoint> Query::opt_time(int col) const {
  if (is_null(col)) return std::nullopt;
  return time(col);
}

Result<Transaction> Transaction::begin(Connection& conn) {
  if (auto begun = conn.exec("BEGIN IMMEDIATE"); !begun) return tl::unexpected(begun.error());
  return Transaction(conn);
}

Transaction::~Transaction() {
  // A failed ROLLBACK leaves nothing better to do; SQLite rolls back on close anyway.
  if (conn_ != nullptr) (void)conn_->exec("ROLLBACK");
}

Result<void> Transaction::commit() {
  auto done = conn_->exec("COMMIT");
  if (done) conn_ = nullptr;
  return done;
}

}  // namespace fetchd::sqlite
