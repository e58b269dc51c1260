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
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"
#include "store/connection_pool.hpp"
#include "store/sqlite/sqlite_checkpointer.hpp"
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

#define FETCHD_JOB_COLUMNS                                                             \
  "id, task_id, attempt, scheduled_at, started_at, finished_at, duration_ms, status, " \
  "http_status, error, response_bytes, records, changed, worker_id, data_id"
#define FETCHD_DATA_COLUMNS "id, task_id, content_hash, body, bytes, records, created_at"
#define FETCHD_SCHEDULE_COLUMNS                                                          \
  "id, start_time, end_time, task_interval, max_attempt, consecutive_failures, paused, " \
  "next_run_at"

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

enum JobColumn : int {
  kJobId,
  kJobTask,
  kJobAttempt,
  kJobScheduled,
  kJobStarted,
  kJobFinished,
  kJobDuration,
  kJobStatus,
  kJobHttpStatus,
  kJobError,
  kJobBytes,
  kJobRecords,
  kJobChanged,
  kJobWorker,
  kJobData,
};

enum DataColumn : int {
  kDataId,
  kDataTask,
  kDataHash,
  kDataBody,
  kDataBytes,
  kDataRecords,
  kDataCreated
};

enum ScheduleColumn : int {
  kScheduleId,
  kScheduleStart,
  kScheduleEnd,
  kScheduleInterval,
  kScheduleMaxAttempt,
  kScheduleFailures,
  kSchedulePaused,
  kScheduleNextRun,
};

constexpr const char* kUserNotFound = "user not found";
constexpr const char* kTaskNotFound = "task not found";
constexpr const char* kJobNotFound = "job not found";
constexpr const char* kDataNotFound = "data not found";

// SQLite integers are signed 64-bit: limits and counts from size_t are clamped to fit.
constexpr auto kMaxLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() - 1);
constexpr std::int64_t kNoUpperId = std::numeric_limits<std::int64_t>::max();

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

Result<Job> job_from_row(const Query& row) {
  Job job;
  job.id = row.int64(kJobId);
  job.task_id = row.int64(kJobTask);
  job.attempt = static_cast<int>(row.int64(kJobAttempt));
  job.scheduled_at = row.time(kJobScheduled);
  job.started_at = row.opt_time(kJobStarted);
  job.finished_at = row.opt_time(kJobFinished);
  job.duration_ms = row.opt_int64(kJobDuration);
  const std::string status = row.text(kJobStatus);
  auto parsed = job_status_from_string(status);
  if (!parsed)
    return fail(ErrorCode::kInternal, "database error", "unknown status in jobs: " + status);
  job.status = *parsed;
  if (auto http = row.opt_int64(kJobHttpStatus)) job.http_status = static_cast<int>(*http);
  job.error = row.opt_text(kJobError);
  job.response_bytes = row.opt_int64(kJobBytes);
  job.records = row.opt_int64(kJobRecords);
  if (auto changed = row.opt_int64(kJobChanged)) job.changed = *changed != 0;
  job.worker_id = row.opt_text(kJobWorker);
  job.data_id = row.opt_int64(kJobData);
  return job;
}

Result<Data> data_from_row(const Query& row) {
  Data data;
  data.id = row.int64(kDataId);
  data.task_id = row.int64(kDataTask);
  data.content_hash = row.text(kDataHash);
  data.body = row.text(kDataBody);
  data.bytes = row.int64(kDataBytes);
  data.records = row.opt_int64(kDataRecords);
  data.created_at = row.time(kDataCreated);
  return data;
}

Result<ScheduleEntry> schedule_entry_from_row(const Query& row) {
  ScheduleEntry entry;
  entry.id = row.int64(kScheduleId);
  entry.start_time = row.time(kScheduleStart);
  entry.end_time = row.time(kScheduleEnd);
  entry.task_interval = row.int64(kScheduleInterval);
  entry.max_attempt = row.int64(kScheduleMaxAttempt);
  entry.consecutive_failures = row.int64(kScheduleFailures);
  entry.paused = row.boolean(kSchedulePaused);
  entry.next_run_at = row.opt_time(kScheduleNextRun);
  return entry;
}

// Steps a bound query to the end, mapping every row.
template <typename T, typename Map>
Result<void> collect_rows(Query& query, std::vector<T>& out, Map map) {
  for (;;) {
    auto row = query.step();
    if (!row) return propagate(row);
    if (!*row) return {};
    auto item = map(query);
    if (!item) return propagate(item);
    out.push_back(std::move(*item));
  }
}

Result<std::int64_t> first_column(const Query& row) {
  return row.int64(0);
}

// The first column of the first row, if any, stepping the statement to completion (a write with
// RETURNING commits its changes only when stepped to the end).
Result<std::optional<std::int64_t>> first_int64(Query& query) {
  std::optional<std::int64_t> value;
  for (;;) {
    auto row = query.step();
    if (!row) return propagate(row);
    if (!*row) return value;
    if (!value) value = query.int64(0);
  }
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

// Readers share nothing but the pool's free list.
using ReaderPool = ConnectionPool<Connection>;

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : migrations_(sqlite::migrations_from(sqlite_migrations())),
        writer_(std::move(writer)),
        readers_(std::move(readers)) {}

  // From here on the WAL is checkpointed by a thread of its own (a file database only).
  Result<void> checkpoint_in_background(const std::string& path, CheckpointLimits limits) {
    auto started = sqlite::Checkpointer::start(path, *writer_, writer_mutex_, limits);
    if (!started) return propagate(started);
    checkpointer_ = std::move(*started);
    return {};
  }

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

  std::unique_ptr<ReadSnapshot> read_snapshot() override {
    if (readers_.empty() || own_snapshot() != nullptr) return nullptr;
    return std::make_unique<Snapshot>(*this);
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

  Result<Page<User>> list_users(const UserQuery& user_query) override {
    if (user_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(user_query.limit, kMaxLimit)) + 1;
    const std::int64_t after = user_query.after.value_or(std::numeric_limits<std::int64_t>::min());
    return read([&](Connection& conn) -> Result<Page<User>> {
      auto query =
          conn.query("SELECT " FETCHD_USER_COLUMNS " FROM users WHERE id > ? ORDER BY id LIMIT ?");
      if (!query) return propagate(query);
      query->bind(after, fetch);
      Page<User> page;
      if (auto done = collect_rows(*query, page.items, user_from_row); !done)
        return propagate(done);
      page.trim_to(user_query.limit);
      return page;
    });
  }

  Result<User> update_user(UserId id, std::optional<Role> role,
                           std::optional<bool> disabled) override {
    std::optional<std::string> role_text;
    if (role) role_text = std::string(to_string(*role));
    std::optional<std::int64_t> disabled_flag;
    if (disabled) disabled_flag = *disabled ? 1 : 0;
    return write([&](Connection& conn) -> Result<User> {
      auto query = conn.query(
          "UPDATE users SET role = coalesce(?, role), disabled = coalesce(?, disabled) "
          "WHERE id = ? RETURNING " FETCHD_USER_COLUMNS);
      if (!query) return propagate(query);
      query->bind(role_text, disabled_flag, id);
      return single_row(*query, kUserNotFound, user_from_row);
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

  Result<std::vector<Task>> get_tasks(const std::vector<TaskId>& ids) override {
    std::vector<Task> tasks;
    if (ids.empty()) return tasks;
    // One statement whatever the count: the ids travel as a JSON array.
    std::string list = "[";
    for (TaskId id : ids) list += std::to_string(id) + ",";
    list.back() = ']';
    return read([&](Connection& conn) -> Result<std::vector<Task>> {
      auto query = conn.query("SELECT " FETCHD_TASK_COLUMNS
                              " FROM tasks WHERE id IN (SELECT value FROM json_each(?))");
      if (!query) return propagate(query);
      query->bind(list);
      if (auto done = collect_rows(*query, tasks, task_from_row); !done) return propagate(done);
      return tasks;
    });
  }

  Result<Page<Task>> list_tasks(const TaskQuery& task_query) override {
    if (task_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    // One row more than asked tells whether another page exists without a count.
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
      if (auto done = collect_rows(*query, page.items, task_from_row); !done)
        return propagate(done);
      page.trim_to(task_query.limit);
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

  Result<std::int64_t> count_suspended_tasks() override {
    return read([&](Connection& conn) -> Result<std::int64_t> {
      auto query =
          conn.query("SELECT count(*) FROM tasks WHERE consecutive_failures >= max_attempt");
      if (!query) return propagate(query);
      return single_row(*query, "no count",
                        [](const Query& row) -> Result<std::int64_t> { return row.int64(0); });
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

  Result<void> set_next_run(TaskId id, std::optional<TimePoint> next_run_at) override {
    return write([&](Connection& conn) -> Result<void> {
      // updated_at is not touched: it tracks the user's edits, not the engine's.
      return change_one(conn, "UPDATE tasks SET next_run_at = ? WHERE id = ?", kTaskNotFound,
                        next_run_at, id);
    });
  }

  Result<Page<ScheduleEntry>> load_schedule(std::optional<TaskId> after,
                                            std::size_t limit) override {
    if (limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(limit, kMaxLimit)) + 1;
    return read([&](Connection& conn) -> Result<Page<ScheduleEntry>> {
      auto query = conn.query("SELECT " FETCHD_SCHEDULE_COLUMNS
                              " FROM tasks WHERE id > ? ORDER BY id LIMIT ?");
      if (!query) return propagate(query);
      query->bind(after.value_or(std::numeric_limits<std::int64_t>::min()), fetch);
      Page<ScheduleEntry> page;
      if (auto done = collect_rows(*query, page.items, schedule_entry_from_row); !done) {
        return propagate(done);
      }
      page.trim_to(limit);
      return page;
    });
  }

  Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>& runs) override {
    if (runs.empty()) return std::vector<RecordedRun>{};
    return write([&](Connection& conn) -> Result<std::vector<RecordedRun>> {
      // One transaction for the whole batch: a commit (a WAL append and, with
      // synchronous=NORMAL, no fsync) is what a run would otherwise cost.
      auto tx = sqlite::Transaction::begin(conn);
      if (!tx) return propagate(tx);
      std::vector<RecordedRun> recorded;
      recorded.reserve(runs.size());
      for (const auto& run : runs) {
        auto one = record_run(conn, run);
        if (!one) return propagate(one);
        recorded.push_back(*one);
      }
      if (auto done = tx->commit(); !done) return propagate(done);
      return recorded;
    });
  }

  Result<Page<Job>> list_jobs(const JobQuery& job_query) override {
    if (job_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(job_query.limit, kMaxLimit)) + 1;
    const std::int64_t before = job_query.before.value_or(kNoUpperId);
    return read([&](Connection& conn) -> Result<Page<Job>> {
      // Both walk jobs_task_id_id backwards from `before`; a status filter reads the rows it
      // skips, at most the task's retained jobs (retention.jobs_per_task), which is why it
      // has no index of its own: every run would pay for one.
      auto query = job_query.status
                       ? conn.query("SELECT " FETCHD_JOB_COLUMNS
                                    " FROM jobs WHERE task_id = ? AND id < ? AND status = ? "
                                    "ORDER BY id DESC LIMIT ?")
                       : conn.query("SELECT " FETCHD_JOB_COLUMNS
                                    " FROM jobs WHERE task_id = ? AND id < ? "
                                    "ORDER BY id DESC LIMIT ?");
      if (!query) return propagate(query);
      if (job_query.status) {
        query->bind(job_query.task_id, before, to_string(*job_query.status), fetch);
      } else {
        query->bind(job_query.task_id, before, fetch);
      }
      Page<Job> page;
      if (auto done = collect_rows(*query, page.items, job_from_row); !done) {
        return propagate(done);
      }
      page.trim_to(job_query.limit);
      return page;
    });
  }

  Result<Job> get_job(JobId id) override {
    return read([&](Connection& conn) -> Result<Job> {
      auto query = conn.query("SELECT " FETCHD_JOB_COLUMNS " FROM jobs WHERE id = ?");
      if (!query) return propagate(query);
      query->bind(id);
      return single_row(*query, kJobNotFound, job_from_row);
    });
  }

  Result<Data> get_data(DataId id) override {
    return read([&](Connection& conn) -> Result<Data> {
      auto query = conn.query("SELECT " FETCHD_DATA_COLUMNS " FROM data WHERE id = ?");
      if (!query) return propagate(query);
      query->bind(id);
      return single_row(*query, kDataNotFound, data_from_row);
    });
  }

  Result<std::int64_t> prune(const RetentionPolicy& policy) override {
    if (policy.batch == 0) return fail(ErrorCode::kInvalid, "batch must be at least 1");
    if (policy.jobs_per_task < 0) {
      return fail(ErrorCode::kInvalid, "jobs_per_task must not be negative");
    }
    // The cursors below are the pruner's; one prune at a time.
    std::lock_guard lock(prune_mutex_);
    const auto batch = static_cast<std::int64_t>(std::min(policy.batch, kMaxLimit));
    // Candidates are found on a reader (no lock held against the writer); the write
    // transaction only deletes, re-checking what a concurrent run may have changed.
    auto doomed = read([&](Connection& conn) { return prunable_jobs(conn, policy, batch); });
    if (!doomed) return propagate(doomed);
    if (!doomed->empty()) {
      auto deleted = write([&](Connection& conn) { return delete_jobs(conn, *doomed); });
      if (!deleted || *deleted > 0) return deleted;
    }
    auto orphans = read([&](Connection& conn) { return orphan_data(conn, batch); });
    if (!orphans) return propagate(orphans);
    if (orphans->empty()) return 0;
    return write([&](Connection& conn) { return delete_data_if_orphan(conn, *orphans); });
  }

 private:
  // One record of record_runs, inside its transaction. Every step but the task lookup is a
  // write whose failure aborts the batch; an expected situation (deleted task, duplicate due
  // time) is an outcome instead.
  static Result<RecordedRun> record_run(Connection& conn, const RunRecord& run) {
    const Job& job = run.job;
    RecordedRun recorded;
    std::int64_t previous_data_id = 0;  // the task's latest document, 0 before any
    {
      // Checked first so that a deleted task is an outcome, not a foreign key error.
      auto query = conn.query("SELECT coalesce(last_data_id, 0) FROM tasks WHERE id = ?");
      if (!query) return propagate(query);
      auto found = first_int64(query->bind(job.task_id));
      if (!found) return propagate(found);
      if (!*found) {
        recorded.task_missing = true;
        return recorded;
      }
      previous_data_id = **found;
    }
    const bool succeeded = job.status == JobStatus::kSucceeded;
    bool inserted_data = false;
    if (succeeded && run.body && run.content_hash) {
      auto existing = find_data(conn, job.task_id, *run.content_hash);
      if (!existing) return propagate(existing);
      if (*existing) {
        // Stored once per task; "changed" compares with the previous successful run only, so
        // a feed going A -> B -> A reports the second A as a change.
        recorded.data_id = **existing;
        recorded.changed = **existing != previous_data_id;
      } else {
        auto query = conn.query(
            "INSERT INTO data (task_id, content_hash, body, bytes, records, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id");
        if (!query) return propagate(query);
        const TimePoint created =
            job.finished_at.value_or(job.started_at.value_or(job.scheduled_at));
        query->bind(job.task_id, *run.content_hash, *run.body,
                    static_cast<std::int64_t>(run.body->size()), job.records, created);
        auto id = first_int64(*query);
        if (!id) return propagate(id);
        if (!*id) return fail(ErrorCode::kInternal, "database error", "data insert returned no id");
        recorded.data_id = **id;
        recorded.changed = true;
        inserted_data = true;
      }
    }
    {
      auto query = conn.query(
          "INSERT INTO jobs (task_id, attempt, scheduled_at, started_at, finished_at, "
          "duration_ms, status, http_status, error, response_bytes, records, changed, worker_id, "
          "data_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (task_id, scheduled_at) DO NOTHING RETURNING id");
      if (!query) return propagate(query);
      // Only a job with a document says whether it changed. (An int, not an optional<bool>:
      // GCC 12 -O3 sees the latter as maybe-uninitialized.)
      std::optional<std::int64_t> changed;
      if (recorded.data_id) changed = recorded.changed ? 1 : 0;
      query->bind(job.task_id, job.attempt, job.scheduled_at, job.started_at, job.finished_at,
                  job.duration_ms, to_string(job.status), job.http_status, job.error,
                  job.response_bytes, job.records, changed, job.worker_id, recorded.data_id);
      auto id = first_int64(*query);
      if (!id) return propagate(id);
      if (!*id) {
        // Another run of this (task, due time) was recorded first: this one is dropped whole,
        // including a document only it would have referenced.
        if (inserted_data) {
          auto drop = conn.query("DELETE FROM data WHERE id = ?");
          if (!drop) return propagate(drop);
          if (auto done = drop->bind(*recorded.data_id).run(); !done) return propagate(done);
        }
        return RecordedRun{};
      }
      recorded.job_id = **id;
    }
    if (run.update_task) {
      const bool failed = job.status == JobStatus::kFailed || job.status == JobStatus::kTimedOut;
      auto query = conn.query(
          "UPDATE tasks SET last_job_id = ?, last_status = ?, last_run_at = ?, "
          "last_duration_ms = ?, last_error = ?, last_data_id = coalesce(?, last_data_id), "
          "consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures + ? END, "
          // A task paused while its run was in flight stays without a next run.
          "next_run_at = CASE WHEN paused THEN NULL ELSE ? END, job_count = job_count + 1 "
          "WHERE id = ?");
      if (!query) return propagate(query);
      query->bind(recorded.job_id, to_string(job.status), job.started_at, job.duration_ms,
                  job.error, recorded.data_id, succeeded, failed ? 1 : 0, run.next_run_at,
                  job.task_id);
      if (auto done = query->run(); !done) return propagate(done);
    } else {
      auto query = conn.query("UPDATE tasks SET job_count = job_count + 1 WHERE id = ?");
      if (!query) return propagate(query);
      if (auto done = query->bind(job.task_id).run(); !done) return propagate(done);
    }
    return recorded;
  }

  static Result<std::optional<DataId>> find_data(Connection& conn, TaskId task,
                                                 const std::string& hash) {
    auto query = conn.query("SELECT id FROM data WHERE task_id = ? AND content_hash = ?");
    if (!query) return propagate(query);
    return first_int64(query->bind(task, hash));
  }

  // Up to `batch` ids of jobs past retention: the oldest rows first if they finished before
  // older_than, then the jobs of tasks over jobs_per_task, resuming the scan of tasks where the
  // previous call stopped (so that one call costs at most a pass over the tasks).
  Result<std::vector<JobId>> prunable_jobs(Connection& conn, const RetentionPolicy& policy,
                                           std::int64_t batch) {
    std::vector<JobId> ids;
    {
      // Ids follow the order runs were recorded, which is the order they finished give or take
      // the writer's batching; so the old jobs are at the low ids and looking at the first
      // `batch` rows finds them without an index on finished_at (which every run would pay
      // for). A row recorded out of order waits until the rows around it age too.
      auto query = conn.query(
          "SELECT id FROM (SELECT id, coalesce(finished_at, scheduled_at) AS done_at FROM jobs "
          "ORDER BY id LIMIT ?) WHERE done_at < ?");
      if (!query) return propagate(query);
      query->bind(batch, policy.older_than);
      if (auto done = collect_rows(*query, ids, first_column); !done) return propagate(done);
    }
    // Tasks over the count, scanned from the cursor to the end, then from the start up to where
    // this call began: a full circle at most.
    constexpr std::int64_t kTasksPerScan = 32;
    const TaskId start = task_cursor_;
    bool wrapped = false;
    while (static_cast<std::int64_t>(ids.size()) < batch) {
      std::vector<TaskId> candidates;
      {
        auto query = conn.query(
            "SELECT id FROM tasks WHERE id > ? AND id <= ? AND job_count > ? ORDER BY id LIMIT ?");
        if (!query) return propagate(query);
        query->bind(task_cursor_, wrapped ? start : kNoUpperId, policy.jobs_per_task,
                    kTasksPerScan);
        if (auto done = collect_rows(*query, candidates, first_column); !done) {
          return propagate(done);
        }
      }
      for (const TaskId task : candidates) {
        const auto room = batch - static_cast<std::int64_t>(ids.size());
        auto query =
            conn.query("SELECT id FROM jobs WHERE task_id = ? ORDER BY id DESC LIMIT ? OFFSET ?");
        if (!query) return propagate(query);
        query->bind(task, room, policy.jobs_per_task);
        const auto before = ids.size();
        if (auto done = collect_rows(*query, ids, first_column); !done) return propagate(done);
        const auto excess = static_cast<std::int64_t>(ids.size() - before);
        // A task whose excess did not fit is visited again by the next call.
        task_cursor_ = excess == room ? task - 1 : task;
        if (static_cast<std::int64_t>(ids.size()) >= batch) break;
      }
      if (static_cast<std::int64_t>(ids.size()) >= batch) break;
      if (static_cast<std::int64_t>(candidates.size()) < kTasksPerScan) {
        // This segment is exhausted: the circle is complete, or its second half starts.
        task_cursor_ = 0;
        if (wrapped || start == 0) break;
        wrapped = true;
      }
    }
    // A job both old and over the count was found twice.
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  }

  // Deletes the jobs, keeps each task's job_count, then drops the documents only they
  // referenced, all in one short transaction. Returns the rows deleted.
  static Result<std::int64_t> delete_jobs(Connection& conn, const std::vector<JobId>& ids) {
    auto tx = sqlite::Transaction::begin(conn);
    if (!tx) return propagate(tx);
    std::int64_t deleted = 0;
    std::vector<std::pair<TaskId, std::int64_t>> per_task;  // (task, jobs deleted), task-sorted
    std::vector<DataId> data_ids;
    for (const JobId id : ids) {
      auto query = conn.query("DELETE FROM jobs WHERE id = ? RETURNING task_id, data_id");
      if (!query) return propagate(query);
      query->bind(id);
      auto row = query->step();
      if (!row) return propagate(row);
      if (!*row) continue;  // gone meanwhile (its task was deleted)
      const TaskId task = query->int64(0);
      const auto data = query->opt_int64(1);
      if (auto done = query->step(); !done) return propagate(done);
      ++deleted;
      if (data) data_ids.push_back(*data);
      auto it = std::lower_bound(per_task.begin(), per_task.end(), std::pair{task, std::int64_t{0}},
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
      if (it == per_task.end() || it->first != task) it = per_task.insert(it, {task, 0});
      ++it->second;
    }
    for (const auto& [task, count] : per_task) {
      auto query = conn.query("UPDATE tasks SET job_count = max(job_count - ?, 0) WHERE id = ?");
      if (!query) return propagate(query);
      if (auto done = query->bind(count, task).run(); !done) return propagate(done);
    }
    std::sort(data_ids.begin(), data_ids.end());
    data_ids.erase(std::unique(data_ids.begin(), data_ids.end()), data_ids.end());
    auto orphans = delete_orphans(conn, data_ids);
    if (!orphans) return propagate(orphans);
    if (auto done = tx->commit(); !done) return propagate(done);
    return deleted + *orphans;
  }

  // Deletes each document that no job and not its task's last_data_id references (checked
  // here, inside the write transaction, whatever the caller saw). Returns how many went.
  static Result<std::int64_t> delete_orphans(Connection& conn, const std::vector<DataId>& ids) {
    std::int64_t deleted = 0;
    for (const DataId id : ids) {
      auto query = conn.query(
          "DELETE FROM data WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM jobs WHERE data_id = ?1) "
          "AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.id = data.task_id AND "
          "tasks.last_data_id = ?1)");
      if (!query) return propagate(query);
      if (auto done = query->bind(id).run(); !done) return propagate(done);
      deleted += conn.changes();
    }
    return deleted;
  }

  static Result<std::int64_t> delete_data_if_orphan(Connection& conn,
                                                    const std::vector<DataId>& ids) {
    auto tx = sqlite::Transaction::begin(conn);
    if (!tx) return propagate(tx);
    auto deleted = delete_orphans(conn, ids);
    if (!deleted) return deleted;
    if (auto done = tx->commit(); !done) return propagate(done);
    return deleted;
  }

  // Up to `batch` documents that nothing references any more. They appear when a task's
  // last_data_id moves on from a document whose jobs were already pruned; the documents of
  // pruned jobs themselves go in delete_jobs. Resumes where the previous call stopped.
  Result<std::vector<DataId>> orphan_data(Connection& conn, std::int64_t batch) {
    std::vector<DataId> ids;
    const DataId start = data_cursor_;
    for (bool wrapped = false;;) {
      auto query = conn.query(
          "SELECT d.id FROM data d WHERE d.id > ? AND d.id <= ? "
          "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.data_id = d.id) "
          "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = d.task_id AND "
          "t.last_data_id = d.id) ORDER BY d.id LIMIT ?");
      if (!query) return propagate(query);
      const auto room = batch - static_cast<std::int64_t>(ids.size());
      query->bind(data_cursor_, wrapped ? start : kNoUpperId, room);
      const auto before = ids.size();
      if (auto done = collect_rows(*query, ids, first_column); !done) return propagate(done);
      const auto found = static_cast<std::int64_t>(ids.size() - before);
      if (found == room) {
        data_cursor_ = ids.back();
        break;
      }
      if (wrapped || start == 0) {
        data_cursor_ = 0;
        break;
      }
      wrapped = true;
      data_cursor_ = 0;
    }
    return ids;
  }

  // read_snapshot's object: one reader, leased for its whole life, in one read transaction
  // from the first read to a write on the thread or the end. A thread's snapshots (of several
  // stores) are destroyed in the reverse order of their creation, as scopes are.
  class Snapshot final : public ReadSnapshot {
   public:
    explicit Snapshot(SqliteStore& store)
        : store_(store), outer_(current_), lease_(store.readers_.acquire()) {
      current_ = this;
    }
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    ~Snapshot() override {
      end();
      current_ = outer_;
    }

    // The reader, in the snapshot's transaction.
    Result<Connection*> connection() {
      Connection& conn = lease_.connection();
      if (!open_) {
        auto begin = conn.query("BEGIN");
        if (!begin) return propagate(begin);
        if (auto begun = begin->run(); !begun) return propagate(begun);
        open_ = true;
      }
      return &conn;
    }

    // Ends the transaction (the next read begins another). A read transaction has nothing to
    // keep, but must not outlive the lease: a reader left in one would pin that snapshot.
    void end() {
      if (!open_) return;
      open_ = false;
      Connection& conn = lease_.connection();
      auto commit = conn.query("COMMIT");
      if (!commit || !commit->run()) (void)conn.exec("ROLLBACK");
    }

    SqliteStore& store_;
    Snapshot* const outer_;

   private:
    ReaderPool::Lease lease_;
    bool open_ = false;
  };

  // This thread's innermost snapshot, of whichever store; outer_ links the others.
  static inline thread_local Snapshot* current_ = nullptr;

  Snapshot* own_snapshot() const {
    for (Snapshot* s = current_; s != nullptr; s = s->outer_)
      if (&s->store_ == this) return s;
    return nullptr;
  }

  // Runs `body` on the writer (serialised) or a reader; no exception leaves the store.
  template <typename Body>
  auto write(Body&& body) -> std::invoke_result_t<Body&, Connection&> {
    try {
      if (auto* snapshot = own_snapshot()) snapshot->end();  // later reads see this write
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
      if (auto* snapshot = own_snapshot()) {
        auto conn = snapshot->connection();
        if (!conn) return propagate(conn);
        return body(**conn);
      }
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
  std::mutex prune_mutex_;
  TaskId task_cursor_ = 0;  // prune: tasks with ids up to here were checked this round
  DataId data_cursor_ = 0;  // prune: documents with ids up to here were checked this round
  std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;  // before checkpointer_ and readers_: closes last
  std::unique_ptr<sqlite::Checkpointer> checkpointer_;  // null for ":memory:"
  ReaderPool readers_;
};

#undef FETCHD_USER_COLUMNS
#undef FETCHD_TASK_COLUMNS
#undef FETCHD_JOB_COLUMNS
#undef FETCHD_DATA_COLUMNS
#undef FETCHD_SCHEDULE_COLUMNS

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
  const unsigned reader_count = in_memory ? 0
                                          : options.read_connections.value_or(std::max(
                                                4U, std::thread::hardware_concurrency() + 2));
  for (unsigned i = 0; i < reader_count; ++i) {
    auto reader = Connection::open(path, ConnectionOptions{options.busy_timeout, true});
    if (!reader) return propagate(reader);
    readers.push_back(std::move(*reader));
  }
  auto store = std::make_unique<SqliteStore>(std::move(*writer), std::move(readers));
  if (!in_memory) {
    if (auto started = store->checkpoint_in_background(path, options.checkpoints); !started) {
      return propagate(started);
    }
  }
  return store;
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
