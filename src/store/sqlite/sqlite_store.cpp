// The SQLite Store: one writer connection behind a mutex and a small pool of reader connections
// (WAL lets them read while the writer writes); a ":memory:" database is a single connection,
// since every in-memory connection is a separate database. Rows <-> domain types live here.

#include "store/sqlite/sqlite_store.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"
#include "store/sqlite/sqlite_connection.hpp"
#include "store/sqlite/sqlite_migrator.hpp"

namespace fetchd {

std::span<const EmbeddedFile> sqlite_migrations();  // src/store/CMakeLists.txt embeds them

namespace {

using sqlite::Connection;
using sqlite::ConnectionOptions;
using sqlite::Query;

// String literals so that each statement's text is one compile-time constant (the statement
// cache's key).
#define FETCHD_USER_COLUMNS "id, username, password_hash, role, disabled, created_at"
#define FETCHD_TASK_COLUMNS                                                                   \
  "id, owner_id, name, url, parameters, start_time, end_time, task_interval, "                \
  "max_execution_time, max_attempt, paused, consecutive_failures, next_run_at, last_job_id, " \
  "last_status, last_run_at, last_duration_ms, last_error, last_data_id, created_at, updated_at"

enum UserColumn : int { kUserId, kUserName, kUserHash, kUserRole, kUserDisabled, kUserCreated };

enum TaskColumn : int {
  kTaskId,
  kTaskOwner,
  kTaskName,
  kTaskUrl,
  kTaskParameters,
  kTaskStart,
  kTaskEnd,
  kTaskInterval,
  kTaskMaxExecution,
  kTaskMaxAttempt,
  kTaskPaused,
  kTaskFailures,
  kTaskNextRun,
  kTaskLastJob,
  kTaskLastStatus,
  kTaskLastRunAt,
  kTaskLastDuration,
  kTaskLastError,
  kTaskLastData,
  kTaskCreated,
  kTaskUpdated,
};

constexpr const char* kUserNotFound = "user not found";
constexpr const char* kTaskNotFound = "task not found";

template <typename T>
tl::unexpected<Error> propagate(const Result<T>& result) {
  return tl::unexpected(result.error());
}

Result<User> user_from_row(const Query& row) {
  User user;
  user.id = row.int64(kUserId);
  user.username = row.text(kUserName);
  user.password_hash = row.text(kUserHash);
  const std::string role = row.text(kUserRole);
  auto parsed = role_from_string(role);
  if (!parsed)
    return fail(ErrorCode::kInternal, "database error", "unknown role in users: " + role);
  user.role = *parsed;
  user.disabled = row.boolean(kUserDisabled);
  user.created_at = row.time(kUserCreated);
  return user;
}

Result<Task> task_from_row(const Query& row) {
  Task task;
  task.id = row.int64(kTaskId);
  task.owner_id = row.int64(kTaskOwner);
  task.spec.name = row.text(kTaskName);
  task.spec.url = row.text(kTaskUrl);
  try {
    task.spec.parameters = nlohmann::json::parse(row.text(kTaskParameters));
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::kInternal, "database error",
                "task " + std::to_string(task.id) + " has unreadable parameters: " + e.what());
  }
  task.spec.start_time = row.time(kTaskStart);
  task.spec.end_time = row.time(kTaskEnd);
  task.spec.task_interval = row.int64(kTaskInterval);
  task.spec.max_execution_time = row.int64(kTaskMaxExecution);
  task.spec.max_attempt = row.int64(kTaskMaxAttempt);
  task.paused = row.boolean(kTaskPaused);
  task.consecutive_failures = row.int64(kTaskFailures);
  task.next_run_at = row.opt_time(kTaskNextRun);
  task.last.job_id = row.opt_int64(kTaskLastJob);
  task.last.status = row.opt_text(kTaskLastStatus);
  task.last.at = row.opt_time(kTaskLastRunAt);
  task.last.duration_ms = row.opt_int64(kTaskLastDuration);
  task.last.error = row.opt_text(kTaskLastError);
  task.last.data_id = row.opt_int64(kTaskLastData);
  task.created_at = row.time(kTaskCreated);
  task.updated_at = row.time(kTaskUpdated);
  return task;
}

// The parameters as stored: compact JSON text, UTF-8 kept as is (not \u-escaped).
Result<std::string> parameters_text(const TaskSpec& spec) {
  const auto invalid = [](std::string message, std::string internal = {}) {
    Error error = Error::make(ErrorCode::kInvalid, "invalid task parameters", std::move(internal));
    error.fields.push_back({"parameters", std::move(message)});
    return tl::unexpected(std::move(error));
  };
  if (!spec.parameters.is_object()) return invalid("must be a JSON object");
  try {
    return spec.parameters.dump();
  } catch (const nlohmann::json::exception& e) {
    return invalid("must be valid UTF-8", e.what());
  }
}

// Steps a statement that returns exactly one row (or none: `absent`), maps it, then steps it
// to completion: an autocommit write commits only when it is done, and a commit can fail.
template <typename Map>
auto single_row(Query& query, const char* absent, Map map) -> decltype(map(query)) {
  auto row = query.step();
  if (!row) return propagate(row);
  if (!*row) return fail(ErrorCode::kNotFound, absent);
  auto mapped = map(query);
  if (!mapped) return mapped;
  auto done = query.step();
  if (!done) return propagate(done);
  return mapped;
}

// Readers share nothing but this free list; a caller waits only when every reader is busy.
class ReaderPool {
 public:
  explicit ReaderPool(std::vector<std::unique_ptr<Connection>> connections)
      : connections_(std::move(connections)) {
    for (auto& conn : connections_) free_.push_back(conn.get());
  }

  bool empty() const { return connections_.empty(); }

  class Lease {
   public:
    Lease(ReaderPool& pool, Connection& conn) : pool_(pool), conn_(conn) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_.release(conn_); }
    Connection& connection() const { return conn_; }

   private:
    ReaderPool& pool_;
    Connection& conn_;
  };

  Lease acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !free_.empty(); });
    Connection* conn = free_.back();
    free_.pop_back();
    return Lease(*this, *conn);
  }

 private:
  void release(Connection& conn) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(&conn);
    }
    available_.notify_one();
  }

  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<Connection*> free_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : migrations_(sqlite::migrations_from(sqlite_migrations())),
        writer_(std::move(writer)),
        readers_(std::move(readers)) {}

  Result<std::vector<std::string>> migrate() override {
    return write([&](Connection& conn) { return sqlite::apply_migrations(conn, migrations_); });
  }

  Result<std::vector<std::pair<std::string, bool>>> migration_status() override {
    return read([&](Connection& conn) { return sqlite::migration_status(conn, migrations_); });
  }

  Result<void> ping() override {
    return read([](Connection& conn) -> Result<void> {
      // Reads the schema, so the file itself is touched (SELECT 1 would not be).
      auto query = conn.query("SELECT count(*) FROM sqlite_master");
      if (!query) return propagate(query);
      auto row = query->step();
      if (!row) return propagate(row);
      return {};
    });
  }

  Result<User> create_user(const NewUser& user, TimePoint now) override {
    return write([&](Connection& conn) -> Result<User> {
      auto query = conn.query(
          "INSERT INTO users (username, password_hash, role, disabled, created_at) "
          "VALUES (?, ?, ?, 0, ?) RETURNING " FETCHD_USER_COLUMNS);
      if (!query) return propagate(query);
      query->bind(user.username, user.password_hash, to_string(user.role), now);
      auto created = single_row(*query, kUserNotFound, user_from_row);
      if (!created && sqlite::is_unique_violation(query->last_code())) {
        return fail(ErrorCode::kConflict, "username is already taken");
      }
      return created;
    });
  }

  Result<User> get_user(UserId id) override {
    return read([&](Connection& conn) -> Result<User> {
      auto query = conn.query("SELECT " FETCHD_USER_COLUMNS " FROM users WHERE id = ?");
      if (!query) return propagate(query);
      query->bind(id);
      return single_row(*query, kUserNotFound, user_from_row);
    });
  }

  Result<User> find_user_by_name(const std::string& name) override {
    return read([&](Connection& conn) -> Result<User> {
      auto query = conn.query("SELECT " FETCHD_USER_COLUMNS " FROM users WHERE username = ?");
      if (!query) return propagate(query);
      query->bind(name);
      return single_row(*query, kUserNotFound, user_from_row);
    });
  }

  Result<void> set_password_hash(UserId id, const std::string& hash) override {
    return write([&](Connection& conn) -> Result<void> {
      return change_one(conn, "UPDATE users SET password_hash = ? WHERE id = ?", kUserNotFound,
                        hash, id);
    });
  }

  Result<void> delete_user(UserId id) override {
    return write([&](Connection& conn) -> Result<void> {
      return change_one(conn, "DELETE FROM users WHERE id = ?", kUserNotFound, id);
    });
  }

  Result<void> create_token(const TokenRecord& token) override {
    return write([&](Connection& conn) -> Result<void> {
      auto query = conn.query(
          "INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)");
      if (!query) return propagate(query);
      auto done = query->bind(token.hash, token.user_id, token.created_at, token.expires_at).run();
      if (!done && sqlite::is_unique_violation(query->last_code())) {
        return fail(ErrorCode::kConflict, "token already exists");
      }
      if (!done && sqlite::is_foreign_key_violation(query->last_code())) {
        return fail(ErrorCode::kNotFound, kUserNotFound);
      }
      return done;
    });
  }

  Result<User> find_token_user(const std::string& hash, TimePoint now) override {
    return read([&](Connection& conn) -> Result<User> {
      auto query = conn.query(
          "SELECT u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at "
          "FROM tokens t JOIN users u ON u.id = t.user_id "
          "WHERE t.hash = ? AND t.expires_at > ?");
      if (!query) return propagate(query);
      query->bind(hash, now);
      return single_row(*query, "token not found or expired", user_from_row);
    });
  }

  Result<void> delete_token(const std::string& hash) override {
    return write([&](Connection& conn) -> Result<void> {
      auto query = conn.query("DELETE FROM tokens WHERE hash = ?");
      if (!query) return propagate(query);
      return query->bind(hash).run();
    });
  }

  Result<std::int64_t> delete_user_tokens(UserId id, const std::string& keep_hash) override {
    return write([&](Connection& conn) {
      // A stored hash is never empty, so an empty keep_hash keeps nothing.
      return change_count(conn, "DELETE FROM tokens WHERE user_id = ? AND hash <> ?", id,
                          keep_hash);
    });
  }

  Result<std::int64_t> delete_expired_tokens(TimePoint now) override {
    return write([&](Connection& conn) {
      return change_count(conn, "DELETE FROM tokens WHERE expires_at <= ?", now);
    });
  }

  Result<Task> create_task(UserId owner, const TaskSpec& spec, TimePoint now) override {
    auto parameters = parameters_text(spec);
    if (!parameters) return propagate(parameters);
    return write([&](Connection& conn) -> Result<Task> {
      auto query = conn.query(
          "INSERT INTO tasks (owner_id, name, url, parameters, start_time, end_time, "
          "task_interval, max_execution_time, max_attempt, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING " FETCHD_TASK_COLUMNS);
      if (!query) return propagate(query);
      query->bind(owner, spec.name, spec.url, *parameters, spec.start_time, spec.end_time,
                  spec.task_interval, spec.max_execution_time, spec.max_attempt, now, now);
      auto created = single_row(*query, kTaskNotFound, task_from_row);
      if (!created && sqlite::is_foreign_key_violation(query->last_code())) {
        return fail(ErrorCode::kNotFound, kUserNotFound);
      }
      return created;
    });
  }

  Result<Task> get_task(TaskId id) override {
    return read([&](Connection& conn) -> Result<Task> {
      auto query = conn.query("SELECT " FETCHD_TASK_COLUMNS " FROM tasks WHERE id = ?");
      if (!query) return propagate(query);
      query->bind(id);
      return single_row(*query, kTaskNotFound, task_from_row);
    });
  }

  Result<Page<Task>> list_tasks(const TaskQuery& task_query) override {
    if (task_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    // One row more than asked tells whether another page exists without a count.
    constexpr auto kMaxLimit =
        static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() - 1);
    const auto fetch = static_cast<std::int64_t>(std::min(task_query.limit, kMaxLimit)) + 1;
    const std::int64_t after = task_query.after.value_or(std::numeric_limits<std::int64_t>::min());
    return read([&](Connection& conn) -> Result<Page<Task>> {
      auto query = task_query.owner
                       ? conn.query("SELECT " FETCHD_TASK_COLUMNS
                                    " FROM tasks WHERE owner_id = ? AND id > ? ORDER BY id LIMIT ?")
                       : conn.query("SELECT " FETCHD_TASK_COLUMNS
                                    " FROM tasks WHERE id > ? ORDER BY id LIMIT ?");
      if (!query) return propagate(query);
      if (task_query.owner) {
        query->bind(*task_query.owner, after, fetch);
      } else {
        query->bind(after, fetch);
      }
      Page<Task> page;
      for (;;) {
        auto row = query->step();
        if (!row) return propagate(row);
        if (!*row) break;
        auto task = task_from_row(*query);
        if (!task) return propagate(task);
        page.items.push_back(std::move(*task));
      }
      if (page.items.size() > task_query.limit) {
        page.items.pop_back();
        page.next_after = page.items.back().id;
      }
      return page;
    });
  }

  Result<Task> update_task(TaskId id, const TaskSpec& spec, TimePoint now) override {
    auto parameters = parameters_text(spec);
    if (!parameters) return propagate(parameters);
    return write([&](Connection& conn) -> Result<Task> {
      auto query = conn.query(
          "UPDATE tasks SET name = ?, url = ?, parameters = ?, start_time = ?, end_time = ?, "
          "task_interval = ?, max_execution_time = ?, max_attempt = ?, updated_at = ? "
          "WHERE id = ? RETURNING " FETCHD_TASK_COLUMNS);
      if (!query) return propagate(query);
      query->bind(spec.name, spec.url, *parameters, spec.start_time, spec.end_time,
                  spec.task_interval, spec.max_execution_time, spec.max_attempt, now, id);
      return single_row(*query, kTaskNotFound, task_from_row);
    });
  }

  Result<void> delete_task(TaskId id) override {
    return write([&](Connection& conn) -> Result<void> {
      // jobs and data go with it: ON DELETE CASCADE (foreign_keys is on for every connection).
      return change_one(conn, "DELETE FROM tasks WHERE id = ?", kTaskNotFound, id);
    });
  }

  Result<Task> reset_attempts(TaskId id, TimePoint now) override {
    return write([&](Connection& conn) -> Result<Task> {
      auto query = conn.query(
          "UPDATE tasks SET consecutive_failures = 0, updated_at = ? "
          "WHERE id = ? RETURNING " FETCHD_TASK_COLUMNS);
      if (!query) return propagate(query);
      query->bind(now, id);
      return single_row(*query, kTaskNotFound, task_from_row);
    });
  }

  Result<Task> set_paused(TaskId id, bool paused, TimePoint now) override {
    return write([&](Connection& conn) -> Result<Task> {
      auto query = conn.query(
          "UPDATE tasks SET paused = ?, updated_at = ? WHERE id = ? "
          "RETURNING " FETCHD_TASK_COLUMNS);
      if (!query) return propagate(query);
      query->bind(paused, now, id);
      return single_row(*query, kTaskNotFound, task_from_row);
    });
  }

  Result<std::int64_t> count_tasks(std::optional<UserId> owner) override {
    return read([&](Connection& conn) -> Result<std::int64_t> {
      auto query = owner ? conn.query("SELECT count(*) FROM tasks WHERE owner_id = ?")
                         : conn.query("SELECT count(*) FROM tasks");
      if (!query) return propagate(query);
      if (owner) query->bind(*owner);
      return single_row(*query, "no count",
                        [](const Query& row) -> Result<std::int64_t> { return row.int64(0); });
    });
  }

 private:
  // Runs `body` on the writer (serialised) or a reader; no exception leaves the store.
  template <typename Body>
  auto write(Body&& body) -> std::invoke_result_t<Body&, Connection&> {
    try {
      std::lock_guard lock(writer_mutex_);
      return body(*writer_);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInternal, "internal store error", e.what());
    }
  }

  template <typename Body>
  auto read(Body&& body) -> std::invoke_result_t<Body&, Connection&> {
    if (readers_.empty()) return write(std::forward<Body>(body));
    try {
      auto lease = readers_.acquire();
      return body(lease.connection());
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInternal, "internal store error", e.what());
    }
  }

  // A write that must touch exactly one row; none is `absent` (kNotFound).
  template <typename... Args>
  static Result<void> change_one(Connection& conn, std::string_view sql, const char* absent,
                                 const Args&... args) {
    auto changed = change_count(conn, sql, args...);
    if (!changed) return propagate(changed);
    if (*changed == 0) return fail(ErrorCode::kNotFound, absent);
    return {};
  }

  template <typename... Args>
  static Result<std::int64_t> change_count(Connection& conn, std::string_view sql,
                                           const Args&... args) {
    auto query = conn.query(sql);
    if (!query) return propagate(query);
    if (auto done = query->bind(args...).run(); !done) return propagate(done);
    return conn.changes();
  }

  const std::vector<sqlite::Migration> migrations_;
  std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;  // declared before readers_: closes last, checkpointing
  ReaderPool readers_;
};

#undef FETCHD_USER_COLUMNS
#undef FETCHD_TASK_COLUMNS

// WAL: readers do not block the writer nor the writer the readers. The mode is persistent in
// the file; the PRAGMA also forces the first read, so a file that is not a database fails here.
Result<void> enable_wal(Connection& conn, const std::string& path) {
  auto query = conn.query("PRAGMA journal_mode = WAL");
  if (!query) return propagate(query);
  auto row = query->step();
  if (!row) return propagate(row);
  const std::string mode = *row ? query->text(0) : std::string();
  if (mode != "wal") {
    return fail(ErrorCode::kUnavailable, "cannot put the database \"" + path +
                                             "\" in WAL mode (journal_mode is " + mode + ")");
  }
  return {};
}

// Errors while opening are the database's fault whatever SQLite calls them (a file that is not
// a database, a directory...): kUnavailable, with SQLite's words in the public message.
Error open_error(const std::string& path, const Connection& conn, Error error) {
  error.code = ErrorCode::kUnavailable;
  error.message = "cannot open the database \"" + path + "\": " + sqlite3_errmsg(conn.handle());
  return error;
}

Result<std::unique_ptr<Store>> open_store(const std::string& path, const SqliteOptions& options) {
  if (path.empty()) return fail(ErrorCode::kUnavailable, "the database path is empty");
  const bool in_memory = path == ":memory:";
  auto writer = Connection::open(path, ConnectionOptions{options.busy_timeout, false});
  if (!writer) return propagate(writer);
  if (!in_memory) {
    if (auto wal = enable_wal(**writer, path); !wal) {
      if (wal.error().code == ErrorCode::kUnavailable) return propagate(wal);
      return tl::unexpected(open_error(path, **writer, wal.error()));
    }
  }
  std::vector<std::unique_ptr<Connection>> readers;
  const unsigned reader_count = in_memory ? 0 : options.read_connections;
  for (unsigned i = 0; i < reader_count; ++i) {
    auto reader = Connection::open(path, ConnectionOptions{options.busy_timeout, true});
    if (!reader) return propagate(reader);
    readers.push_back(std::move(*reader));
  }
  return std::make_unique<SqliteStore>(std::move(*writer), std::move(readers));
}

}  // namespace

std::optional<std::string> sqlite_path_from_url(std::string_view url) {
  constexpr std::string_view kScheme = "sqlite://";
  if (url.size() <= kScheme.size()) return std::nullopt;
  // Schemes are case-insensitive (RFC 3986 §3.1).
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(url[i])) != kScheme[i]) return std::nullopt;
  }
  return std::string(url.substr(kScheme.size()));
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, SqliteOptions options) {
  try {
    return open_store(path, options);
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInternal, "internal store error", e.what());
  }
}

}  // namespace fetchd
