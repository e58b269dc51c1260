// The PostgreSQL Store: the SQLite store's semantics on a pool of libpq connections. Rows <->
// domain types, the SQL in PostgreSQL's dialect, the pool, and the one retry after a lost
// connection live here; libpq itself is wrapped in pg_connection.

#include "store/postgres/postgres_store.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"
#include "store/connection_pool.hpp"
#include "store/postgres/pg_connection.hpp"

namespace fetchd {

std::span<const EmbeddedFile> postgres_migrations();  // src/store/CMakeLists.txt embeds them

namespace {

using pg::Connection;
using pg::params;
using pg::Rows;

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

constexpr const char* kUserNotFound = "user not found";
constexpr const char* kTaskNotFound = "task not found";
constexpr const char* kJobNotFound = "job not found";
constexpr const char* kDataNotFound = "data not found";

constexpr auto kMaxLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() - 1);
constexpr std::int64_t kNoUpperId = std::numeric_limits<std::int64_t>::max();
// pg_advisory_xact_lock key of the migrator ("fetchd" in ASCII): one migrating process at a time.
constexpr std::int64_t kMigrationLockKey = 0x666574636864;

// record_set's statement: fetchd_record_run's steps (migration 0004_record_run) for a batch
// whose runs each have their own task, as set operations. $1..$17 are the runs' fields as
// arrays (run i is element i of each). One row per run, in order: job id (0 when not
// recorded), data id, changed, task missing. A body may be left out (NULL, its size still
// given) when the task's last document has its hash: the document is then found, not
// inserted. The batch holds its tasks' row locks (lock_tasks),
// so no other writer records a run of these tasks meanwhile: a (task, due time) found in jobs
// here is a duplicate, dropped whole, and the ON CONFLICT below is only a safety net (a
// document inserted for a run it dropped would wait for the pruner's orphan pass).
constexpr const char* kRecordSetSql = R"sql(
WITH r AS (
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                       $6::bigint[], $7::text[], $8::bigint[], $9::text[], $10::bigint[],
                       $11::bigint[], $12::text[], $13::text[], $14::text[], $15::bigint[],
                       $16::boolean[], $17::bigint[])
    WITH ORDINALITY AS r (task_id, attempt, scheduled_at, started_at, finished_at, duration_ms,
                          status, http_status, error, response_bytes, records, worker_id,
                          content_hash, body, body_bytes, update_task, next_run_at, ord)),
-- The runs whose task exists. Each lookup is a LATERAL ... LIMIT 1, which the planner keeps as
-- one index probe per run: it cannot know the batch's size, and with a join or an EXISTS it
-- may choose to hash a whole table instead.
live AS (
  SELECT r.ord, r.task_id, t.previous_data_id, dup.found IS NOT NULL AS duplicate,
         r.status = 'succeeded' AND r.body_bytes IS NOT NULL AND r.content_hash IS NOT NULL
           AS document
  FROM r
  CROSS JOIN LATERAL (SELECT coalesce(last_data_id, 0) AS previous_data_id FROM tasks
                      WHERE id = r.task_id LIMIT 1) t
  LEFT JOIN LATERAL (SELECT true AS found FROM jobs
                     WHERE jobs.task_id = r.task_id AND jobs.scheduled_at = r.scheduled_at
                     LIMIT 1) dup ON true),
documents AS (
  SELECT l.ord, l.task_id, d.id AS found_id
  FROM live l JOIN r ON r.ord = l.ord
  LEFT JOIN LATERAL (SELECT id FROM data
                     WHERE data.task_id = r.task_id AND data.content_hash = r.content_hash
                     LIMIT 1) d ON true
  WHERE l.document AND NOT l.duplicate),
new_data AS (
  INSERT INTO data (task_id, content_hash, body, bytes, records, created_at)
  SELECT r.task_id, r.content_hash, r.body::json, r.body_bytes, r.records,
         coalesce(r.finished_at, r.started_at, r.scheduled_at)
  FROM documents d JOIN r ON r.ord = d.ord WHERE d.found_id IS NULL AND r.body IS NOT NULL
  ORDER BY d.ord
  RETURNING id, task_id),
recorded AS (
  SELECT l.ord, l.task_id, coalesce(d.found_id, n.id) AS data_id,
         CASE WHEN d.ord IS NULL THEN NULL
              ELSE d.found_id IS NULL OR d.found_id <> l.previous_data_id END AS changed
  FROM live l LEFT JOIN documents d ON d.ord = l.ord LEFT JOIN new_data n ON n.task_id = d.task_id
  WHERE NOT l.duplicate),
new_jobs AS (
  INSERT INTO jobs (task_id, attempt, scheduled_at, started_at, finished_at, duration_ms, status,
                    http_status, error, response_bytes, records, changed, worker_id, data_id)
  SELECT r.task_id, r.attempt, r.scheduled_at, r.started_at, r.finished_at, r.duration_ms,
         r.status, r.http_status, r.error, r.response_bytes, r.records, rec.changed,
         r.worker_id, rec.data_id
  FROM recorded rec JOIN r ON r.ord = rec.ord ORDER BY rec.ord
  ON CONFLICT (task_id, scheduled_at) DO NOTHING
  RETURNING id, task_id),
done AS (
  SELECT rec.ord, rec.data_id, rec.changed, j.id AS job_id, r.task_id, r.status, r.started_at,
         r.duration_ms, r.error, r.update_task, r.next_run_at
  FROM recorded rec JOIN new_jobs j ON j.task_id = rec.task_id JOIN r ON r.ord = rec.ord),
run_state AS (
  UPDATE tasks t SET last_job_id = x.job_id, last_status = x.status, last_run_at = x.started_at,
                     last_duration_ms = x.duration_ms, last_error = x.error,
                     last_data_id = coalesce(x.data_id, t.last_data_id),
                     consecutive_failures = CASE WHEN x.status = 'succeeded' THEN 0
                       WHEN x.status IN ('failed', 'timed_out') THEN t.consecutive_failures + 1
                       ELSE t.consecutive_failures END,
                     -- A task paused while its run was in flight stays without a next run.
                     next_run_at = CASE WHEN t.paused THEN NULL ELSE x.next_run_at END,
                     job_count = t.job_count + 1
  FROM done x WHERE t.id = x.task_id AND x.update_task),
job_counts AS (
  UPDATE tasks t SET job_count = t.job_count + 1
  FROM done x WHERE t.id = x.task_id AND NOT x.update_task)
SELECT coalesce(x.job_id, 0), x.data_id, coalesce(x.changed, false), l.ord IS NULL
FROM r LEFT JOIN live l ON l.ord = r.ord LEFT JOIN done x ON x.ord = r.ord
ORDER BY r.ord
)sql";
constexpr std::string_view kSqlSuffix = ".sql";

template <typename T>
tl::unexpected<Error> propagate(const Result<T>& result) {
  return tl::unexpected(result.error());
}

Result<User> user_from_row(const Rows& rows, int r) {
  User user;
  user.id = rows.int64(r, 0);
  user.username = rows.text(r, 1);
  user.password_hash = rows.text(r, 2);
  const std::string role = rows.text(r, 3);
  auto parsed = role_from_string(role);
  if (!parsed)
    return fail(ErrorCode::kInternal, "database error", "unknown role in users: " + role);
  user.role = *parsed;
  user.disabled = rows.boolean(r, 4);
  user.created_at = rows.time(r, 5);
  return user;
}

Result<Task> task_from_row(const Rows& rows, int r) {
  Task task;
  task.id = rows.int64(r, 0);
  task.owner_id = rows.int64(r, 1);
  task.spec.name = rows.text(r, 2);
  task.spec.url = rows.text(r, 3);
  try {
    task.spec.parameters = nlohmann::json::parse(rows.text(r, 4));
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::kInternal, "database error",
                "task " + std::to_string(task.id) + " has unreadable parameters: " + e.what());
  }
  task.spec.start_time = rows.time(r, 5);
  task.spec.end_time = rows.time(r, 6);
  task.spec.task_interval = rows.int64(r, 7);
  task.spec.max_execution_time = rows.int64(r, 8);
  task.spec.max_attempt = rows.int64(r, 9);
  task.paused = rows.boolean(r, 10);
  task.consecutive_failures = rows.int64(r, 11);
  task.next_run_at = rows.opt_time(r, 12);
  task.last.job_id = rows.opt_int64(r, 13);
  task.last.status = rows.opt_text(r, 14);
  task.last.at = rows.opt_time(r, 15);
  task.last.duration_ms = rows.opt_int64(r, 16);
  task.last.error = rows.opt_text(r, 17);
  task.last.data_id = rows.opt_int64(r, 18);
  task.created_at = rows.time(r, 19);
  task.updated_at = rows.time(r, 20);
  return task;
}

Result<Job> job_from_row(const Rows& rows, int r) {
  Job job;
  job.id = rows.int64(r, 0);
  job.task_id = rows.int64(r, 1);
  job.attempt = static_cast<int>(rows.int64(r, 2));
  job.scheduled_at = rows.time(r, 3);
  job.started_at = rows.opt_time(r, 4);
  job.finished_at = rows.opt_time(r, 5);
  job.duration_ms = rows.opt_int64(r, 6);
  const std::string status = rows.text(r, 7);
  auto parsed = job_status_from_string(status);
  if (!parsed)
    return fail(ErrorCode::kInternal, "database error", "unknown status in jobs: " + status);
  job.status = *parsed;
  if (auto http = rows.opt_int64(r, 8)) job.http_status = static_cast<int>(*http);
  job.error = rows.opt_text(r, 9);
  job.response_bytes = rows.opt_int64(r, 10);
  job.records = rows.opt_int64(r, 11);
  if (!rows.is_null(r, 12)) job.changed = rows.boolean(r, 12);
  job.worker_id = rows.opt_text(r, 13);
  job.data_id = rows.opt_int64(r, 14);
  return job;
}

Result<Data> data_from_row(const Rows& rows, int r) {
  Data data;
  data.id = rows.int64(r, 0);
  data.task_id = rows.int64(r, 1);
  data.content_hash = rows.text(r, 2);
  data.body = rows.text(r, 3);
  data.bytes = rows.int64(r, 4);
  data.records = rows.opt_int64(r, 5);
  data.created_at = rows.time(r, 6);
  return data;
}

Result<ScheduleEntry> schedule_entry_from_row(const Rows& rows, int r) {
  ScheduleEntry entry;
  entry.id = rows.int64(r, 0);
  entry.start_time = rows.time(r, 1);
  entry.end_time = rows.time(r, 2);
  entry.task_interval = rows.int64(r, 3);
  entry.max_attempt = rows.int64(r, 4);
  entry.consecutive_failures = rows.int64(r, 5);
  entry.paused = rows.boolean(r, 6);
  entry.next_run_at = rows.opt_time(r, 7);
  return entry;
}

template <typename T, typename Map>
Result<void> collect_rows(const Rows& rows, std::vector<T>& out, Map map) {
  for (int r = 0; r < rows.size(); ++r) {
    auto item = map(rows, r);
    if (!item) return propagate(item);
    out.push_back(std::move(*item));
  }
  return {};
}

Result<std::int64_t> first_column(const Rows& rows, int r) {
  return rows.int64(r, 0);
}

template <typename Map>
auto single_row(const Rows& rows, const char* absent, Map map) -> decltype(map(rows, 0)) {
  if (rows.empty()) return fail(ErrorCode::kNotFound, absent);
  return map(rows, 0);
}

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

struct Migration {
  std::string name;
  std::string_view sql;
};

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

using Pool = ConnectionPool<Connection>;

class PostgresStore final : public Store {
 public:
  PostgresStore(std::vector<std::unique_ptr<Connection>> connections, PostgresOptions options)
      : migrations_(migrations_from(postgres_migrations())),
        options_(options),
        pool_(std::move(connections)) {}

  Result<std::vector<std::string>> migrate() override {
    return run([&](Connection& conn) -> Result<std::vector<std::string>> {
      std::vector<std::string> applied_now;
      const auto now = to_unix_ms(SystemClock().now());
      for (const auto& migration : migrations_) {
        auto applied = apply_one(conn, migration, now);
        if (!applied) {
          Error error = applied.error();
          error.message = "migration " + migration.name + " failed: " + error.message;
          return tl::unexpected(std::move(error));
        }
        if (*applied) applied_now.push_back(migration.name);
      }
      return applied_now;
    });
  }

  Result<std::vector<std::pair<std::string, bool>>> migration_status() override {
    return run([&](Connection& conn) -> Result<std::vector<std::pair<std::string, bool>>> {
      std::unordered_set<std::string> applied;
      auto table = conn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
      if (!table) return propagate(table);
      if (table->boolean(0, 0)) {
        auto rows = conn.exec("SELECT name FROM schema_migrations");
        if (!rows) return propagate(rows);
        for (int r = 0; r < rows->size(); ++r) applied.insert(rows->text(r, 0));
      }
      std::vector<std::pair<std::string, bool>> status;
      for (const auto& migration : migrations_) {
        status.emplace_back(migration.name, applied.contains(migration.name));
      }
      return status;
    });
  }

  Result<void> ping() override {
    return run([](Connection& conn) -> Result<void> {
      auto rows = conn.exec("SELECT 1");
      if (!rows) return propagate(rows);
      return {};
    });
  }

  Result<User> create_user(const NewUser& user, TimePoint now) override {
    return run([&](Connection& conn) -> Result<User> {
      auto rows = conn.exec(
          "INSERT INTO users (username, password_hash, role, disabled, created_at) "
          "VALUES ($1, $2, $3, false, $4) RETURNING " FETCHD_USER_COLUMNS,
          params(user.username, user.password_hash, std::string(to_string(user.role)), now));
      if (!rows) {
        if (pg::is_unique_violation(conn.last_sqlstate())) {
          return fail(ErrorCode::kConflict, "username is already taken");
        }
        return propagate(rows);
      }
      return single_row(*rows, kUserNotFound, user_from_row);
    });
  }

  Result<User> get_user(UserId id) override {
    return select_one("SELECT " FETCHD_USER_COLUMNS " FROM users WHERE id = $1", params(id),
                      kUserNotFound, user_from_row);
  }

  Result<User> find_user_by_name(const std::string& name) override {
    return select_one("SELECT " FETCHD_USER_COLUMNS " FROM users WHERE username = $1", params(name),
                      kUserNotFound, user_from_row);
  }

  Result<Page<User>> list_users(const UserQuery& user_query) override {
    if (user_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(user_query.limit, kMaxLimit)) + 1;
    const std::int64_t after = user_query.after.value_or(std::numeric_limits<std::int64_t>::min());
    return run([&](Connection& conn) -> Result<Page<User>> {
      auto rows =
          conn.exec("SELECT " FETCHD_USER_COLUMNS " FROM users WHERE id > $1 ORDER BY id LIMIT $2",
                    params(after, fetch));
      if (!rows) return propagate(rows);
      Page<User> page;
      if (auto done = collect_rows(*rows, page.items, user_from_row); !done) return propagate(done);
      page.trim_to(user_query.limit);
      return page;
    });
  }

  Result<User> update_user(UserId id, std::optional<Role> role,
                           std::optional<bool> disabled) override {
    std::optional<std::string> role_text;
    if (role) role_text = std::string(to_string(*role));
    return select_one(
        "UPDATE users SET role = coalesce($1, role), disabled = coalesce($2::boolean, disabled) "
        "WHERE id = $3 RETURNING " FETCHD_USER_COLUMNS,
        params(role_text, disabled, id), kUserNotFound, user_from_row);
  }

  Result<void> set_password_hash(UserId id, const std::string& hash) override {
    return change_one("UPDATE users SET password_hash = $1 WHERE id = $2", params(hash, id),
                      kUserNotFound);
  }

  Result<void> delete_user(UserId id) override {
    return change_one("DELETE FROM users WHERE id = $1", params(id), kUserNotFound);
  }

  Result<void> create_token(const TokenRecord& token) override {
    return run([&](Connection& conn) -> Result<void> {
      auto rows = conn.exec(
          "INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
          params(token.hash, token.user_id, token.created_at, token.expires_at));
      if (!rows && pg::is_unique_violation(conn.last_sqlstate())) {
        return fail(ErrorCode::kConflict, "token already exists");
      }
      if (!rows && pg::is_foreign_key_violation(conn.last_sqlstate())) {
        return fail(ErrorCode::kNotFound, kUserNotFound);
      }
      if (!rows) return propagate(rows);
      return {};
    });
  }

  Result<User> find_token_user(const std::string& hash, TimePoint now) override {
    return select_one(
        "SELECT u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at "
        "FROM tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.hash = $1 AND t.expires_at > $2",
        params(hash, now), "token not found or expired", user_from_row);
  }

  Result<void> delete_token(const std::string& hash) override {
    auto deleted = change_count("DELETE FROM tokens WHERE hash = $1", params(hash));
    if (!deleted) return propagate(deleted);
    return {};
  }

  Result<std::int64_t> delete_user_tokens(UserId id, const std::string& keep_hash) override {
    return change_count("DELETE FROM tokens WHERE user_id = $1 AND hash <> $2",
                        params(id, keep_hash));
  }

  Result<std::int64_t> delete_expired_tokens(TimePoint now) override {
    return change_count("DELETE FROM tokens WHERE expires_at <= $1", params(now));
  }

  Result<Task> create_task(UserId owner, const TaskSpec& spec, TimePoint now) override {
    auto parameters = parameters_text(spec);
    if (!parameters) return propagate(parameters);
    return run([&](Connection& conn) -> Result<Task> {
      auto rows = conn.exec(
          "INSERT INTO tasks (owner_id, name, url, parameters, start_time, end_time, "
          "task_interval, max_execution_time, max_attempt, created_at, updated_at) "
          "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11) "
          "RETURNING " FETCHD_TASK_COLUMNS,
          params(owner, spec.name, spec.url, *parameters, spec.start_time, spec.end_time,
                 spec.task_interval, spec.max_execution_time, spec.max_attempt, now, now));
      if (!rows && pg::is_foreign_key_violation(conn.last_sqlstate())) {
        return fail(ErrorCode::kNotFound, kUserNotFound);
      }
      if (!rows) return propagate(rows);
      return single_row(*rows, kTaskNotFound, task_from_row);
    });
  }

  Result<Task> get_task(TaskId id) override {
    return select_one("SELECT " FETCHD_TASK_COLUMNS " FROM tasks WHERE id = $1", params(id),
                      kTaskNotFound, task_from_row);
  }

  Result<std::vector<Task>> get_tasks(const std::vector<TaskId>& ids) override {
    std::vector<Task> tasks;
    if (ids.empty()) return tasks;
    std::string array = "{";
    for (TaskId id : ids) array += std::to_string(id) + ",";
    array.back() = '}';
    return run([&](Connection& conn) -> Result<std::vector<Task>> {
      auto rows = conn.exec(
          "SELECT " FETCHD_TASK_COLUMNS " FROM tasks WHERE id = ANY($1::bigint[])", params(array));
      if (!rows) return propagate(rows);
      if (auto done = collect_rows(*rows, tasks, task_from_row); !done) return propagate(done);
      return tasks;
    });
  }

  Result<Page<Task>> list_tasks(const TaskQuery& task_query) override {
    if (task_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(task_query.limit, kMaxLimit)) + 1;
    const std::int64_t after = task_query.after.value_or(std::numeric_limits<std::int64_t>::min());
    return run([&](Connection& conn) -> Result<Page<Task>> {
      auto rows = task_query.owner
                      ? conn.exec("SELECT " FETCHD_TASK_COLUMNS
                                  " FROM tasks WHERE owner_id = $1 AND id > $2 ORDER BY id "
                                  "LIMIT $3",
                                  params(*task_query.owner, after, fetch))
                      : conn.exec("SELECT " FETCHD_TASK_COLUMNS
                                  " FROM tasks WHERE id > $1 ORDER BY id LIMIT $2",
                                  params(after, fetch));
      if (!rows) return propagate(rows);
      Page<Task> page;
      if (auto done = collect_rows(*rows, page.items, task_from_row); !done) return propagate(done);
      page.trim_to(task_query.limit);
      return page;
    });
  }

  Result<Task> update_task(TaskId id, const TaskSpec& spec, TimePoint now) override {
    auto parameters = parameters_text(spec);
    if (!parameters) return propagate(parameters);
    return select_one(
        "UPDATE tasks SET name = $1, url = $2, parameters = $3::jsonb, start_time = $4, "
        "end_time = $5, task_interval = $6, max_execution_time = $7, max_attempt = $8, "
        "updated_at = $9 WHERE id = $10 RETURNING " FETCHD_TASK_COLUMNS,
        params(spec.name, spec.url, *parameters, spec.start_time, spec.end_time, spec.task_interval,
               spec.max_execution_time, spec.max_attempt, now, id),
        kTaskNotFound, task_from_row);
  }

  Result<void> delete_task(TaskId id) override {
    return change_one("DELETE FROM tasks WHERE id = $1", params(id), kTaskNotFound);
  }

  Result<Task> reset_attempts(TaskId id, TimePoint now) override {
    return select_one(
        "UPDATE tasks SET consecutive_failures = 0, updated_at = $1 "
        "WHERE id = $2 RETURNING " FETCHD_TASK_COLUMNS,
        params(now, id), kTaskNotFound, task_from_row);
  }

  Result<Task> set_paused(TaskId id, bool paused, TimePoint now) override {
    return select_one(
        "UPDATE tasks SET paused = $1, updated_at = $2 WHERE id = $3 "
        "RETURNING " FETCHD_TASK_COLUMNS,
        params(paused, now, id), kTaskNotFound, task_from_row);
  }

  Result<std::int64_t> count_suspended_tasks() override {
    return select_one("SELECT count(*) FROM tasks WHERE consecutive_failures >= max_attempt",
                      pg::Params{}, "no count", first_column);
  }

  Result<std::int64_t> count_tasks(std::optional<UserId> owner) override {
    if (owner) {
      return select_one("SELECT count(*) FROM tasks WHERE owner_id = $1", params(*owner),
                        "no count", first_column);
    }
    return select_one("SELECT count(*) FROM tasks", pg::Params{}, "no count", first_column);
  }

  Result<void> set_next_run(TaskId id, std::optional<TimePoint> next_run_at) override {
    // updated_at is not touched: it tracks the user's edits, not the engine's.
    return change_one("UPDATE tasks SET next_run_at = $1 WHERE id = $2", params(next_run_at, id),
                      kTaskNotFound);
  }

  Result<Page<ScheduleEntry>> load_schedule(std::optional<TaskId> after,
                                            std::size_t limit) override {
    if (limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(limit, kMaxLimit)) + 1;
    return run([&](Connection& conn) -> Result<Page<ScheduleEntry>> {
      auto rows = conn.exec(
          "SELECT " FETCHD_SCHEDULE_COLUMNS " FROM tasks WHERE id > $1 ORDER BY id LIMIT $2",
          params(after.value_or(std::numeric_limits<std::int64_t>::min()), fetch));
      if (!rows) return propagate(rows);
      Page<ScheduleEntry> page;
      if (auto done = collect_rows(*rows, page.items, schedule_entry_from_row); !done) {
        return propagate(done);
      }
      page.trim_to(limit);
      return page;
    });
  }

  Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>& runs) override {
    if (runs.empty()) return std::vector<RecordedRun>{};
    return run([&](Connection& conn) -> Result<std::vector<RecordedRun>> {
      auto recorded = record_batch(conn, runs, true);
      if (recorded && !*recorded) recorded = record_batch(conn, runs, false);  // every body
      if (!recorded) return propagate(recorded);
      return std::move(recorded->value());
    });
  }

  Result<Page<Job>> list_jobs(const JobQuery& job_query) override {
    if (job_query.limit == 0) return fail(ErrorCode::kInvalid, "limit must be at least 1");
    const auto fetch = static_cast<std::int64_t>(std::min(job_query.limit, kMaxLimit)) + 1;
    const std::int64_t before = job_query.before.value_or(kNoUpperId);
    return run([&](Connection& conn) -> Result<Page<Job>> {
      auto rows = job_query.status
                      ? conn.exec("SELECT " FETCHD_JOB_COLUMNS
                                  " FROM jobs WHERE task_id = $1 AND id < $2 AND status = $3 "
                                  "ORDER BY id DESC LIMIT $4",
                                  params(job_query.task_id, before,
                                         std::string(to_string(*job_query.status)), fetch))
                      : conn.exec("SELECT " FETCHD_JOB_COLUMNS
                                  " FROM jobs WHERE task_id = $1 AND id < $2 "
                                  "ORDER BY id DESC LIMIT $3",
                                  params(job_query.task_id, before, fetch));
      if (!rows) return propagate(rows);
      Page<Job> page;
      if (auto done = collect_rows(*rows, page.items, job_from_row); !done) return propagate(done);
      page.trim_to(job_query.limit);
      return page;
    });
  }

  Result<Job> get_job(JobId id) override {
    return select_one("SELECT " FETCHD_JOB_COLUMNS " FROM jobs WHERE id = $1", params(id),
                      kJobNotFound, job_from_row);
  }

  Result<Data> get_data(DataId id) override {
    return select_one("SELECT " FETCHD_DATA_COLUMNS " FROM data WHERE id = $1", params(id),
                      kDataNotFound, data_from_row);
  }

  Result<std::int64_t> prune(const RetentionPolicy& policy) override {
    if (policy.batch == 0) return fail(ErrorCode::kInvalid, "batch must be at least 1");
    if (policy.jobs_per_task < 0) {
      return fail(ErrorCode::kInvalid, "jobs_per_task must not be negative");
    }
    std::lock_guard lock(prune_mutex_);
    const auto batch = static_cast<std::int64_t>(std::min(policy.batch, kMaxLimit));
    auto doomed = run([&](Connection& conn) { return prunable_jobs(conn, policy, batch); });
    if (!doomed) return propagate(doomed);
    if (!doomed->empty()) {
      auto deleted = run([&](Connection& conn) { return delete_jobs(conn, *doomed); });
      if (!deleted || *deleted > 0) return deleted;
    }
    auto orphans = run([&](Connection& conn) { return orphan_data(conn, batch); });
    if (!orphans) return propagate(orphans);
    if (orphans->empty()) return 0;
    return run([&](Connection& conn) { return delete_data_if_orphan(conn, *orphans); });
  }

 private:
  // One migration in its own transaction, under a transaction-scoped advisory lock so that
  // processes starting together migrate once: the second waits, then sees it applied.
  static Result<bool> apply_one(Connection& conn, const Migration& migration, std::int64_t now) {
    auto tx = pg::Transaction::begin(conn);
    if (!tx) return propagate(tx);
    if (auto locked = conn.exec("SELECT pg_advisory_xact_lock($1)", params(kMigrationLockKey));
        !locked) {
      return propagate(locked);
    }
    if (auto made = conn.exec_script("CREATE TABLE IF NOT EXISTS schema_migrations ("
                                     "name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)");
        !made) {
      return propagate(made);
    }
    auto applied =
        conn.exec("SELECT 1 FROM schema_migrations WHERE name = $1", params(migration.name));
    if (!applied) return propagate(applied);
    if (!applied->empty()) return false;
    if (auto done = conn.exec_script(std::string(migration.sql)); !done) return propagate(done);
    if (auto done = conn.exec("INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)",
                              params(migration.name, now));
        !done) {
      return propagate(done);
    }
    if (auto done = tx->commit(); !done) return propagate(done);
    return true;
  }

  // One transaction for the whole batch: one commit (one WAL flush) per batch, not per run.
  // With `leave_out_known`, the bodies of documents their tasks already have are not sent.
  // nullopt (rolled back, nothing written): such a document was not found after all, and the
  // batch must be recorded again with every body. Holding the task's lock, it cannot be:
  // the pruner never deletes a task's last document, and a deleted task takes the lock.
  static Result<std::optional<std::vector<RecordedRun>>> record_batch(
      Connection& conn, const std::vector<RunRecord>& runs, bool leave_out_known) {
    auto tx = pg::Transaction::begin(conn);
    if (!tx) return propagate(tx);
    auto locked = lock_tasks(conn, runs);
    if (!locked) return propagate(locked);
    std::vector<bool> left_out(runs.size());
    if (locked->distinct && leave_out_known) {
      for (std::size_t i = 0; i < runs.size(); ++i) {
        const RunRecord& run = runs[i];
        auto last = locked->last_documents.find(run.job.task_id);
        left_out[i] = run.body && run.content_hash && last != locked->last_documents.end() &&
                      last->second == *run.content_hash;
      }
    }
    auto recorded = locked->distinct ? record_set(conn, runs, left_out) : record_each(conn, runs);
    if (!recorded) return propagate(recorded);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const RecordedRun& one = (*recorded)[i];
      if (left_out[i] && one.job_id != 0 && !one.data_id) return std::nullopt;
    }
    if (auto done = tx->commit(); !done) return propagate(done);
    return std::move(*recorded);
  }

  struct LockedTasks {
    bool distinct = false;  // every run of the batch has a task of its own
    std::unordered_map<TaskId, std::string> last_documents;  // task -> its last document's hash
  };

  // Locks the batch's task rows up front, in id order: concurrent writers (several worker
  // processes) then serialise per task, so that one sees the other's document and
  // last_data_id (no duplicate-key abort on data, a true "changed"), and two batches sharing
  // tasks cannot deadlock, whatever order their records come in. Also reads the hash of
  // each task's last document.
  static Result<LockedTasks> lock_tasks(Connection& conn, const std::vector<RunRecord>& runs) {
    std::vector<TaskId> ids;
    ids.reserve(runs.size());
    for (const auto& one : runs) ids.push_back(one.job.task_id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    pg::ArrayParam array;
    for (const TaskId id : ids) array.add(id);
    auto rows = conn.exec(
        "SELECT t.id, d.content_hash FROM tasks t LEFT JOIN data d ON d.id = t.last_data_id "
        "WHERE t.id = ANY($1::bigint[]) ORDER BY t.id FOR UPDATE OF t",
        params(array.text()));
    if (!rows) return propagate(rows);
    LockedTasks locked;
    locked.distinct = ids.size() == runs.size();
    for (int row = 0; row < rows->size(); ++row) {
      if (auto hash = rows->opt_text(row, 1)) {
        locked.last_documents.emplace(rows->int64(row, 0), std::move(*hash));
      }
    }
    return locked;
  }

  // One answer of either record statement: job id, data id, changed, task missing.
  static RecordedRun recorded_run(const Rows& rows, int row) {
    RecordedRun one;
    one.job_id = rows.int64(row, 0);
    one.data_id = rows.opt_int64(row, 1);
    one.changed = rows.boolean(row, 2);
    one.task_missing = rows.boolean(row, 3);
    return one;
  }

  // A run's fields in the order of fetchd_record_run's parameters and of record_set's arrays
  // ($1..$17 of both statements); the body NULL when `leave_out_body`.
  static constexpr std::size_t kRecordFields = 17;
  template <typename Sink>
  static void each_field(const RunRecord& run, Sink&& sink, bool leave_out_body = false) {
    const Job& job = run.job;
    std::optional<std::int64_t> http_status;
    if (job.http_status) http_status = *job.http_status;
    std::optional<std::int64_t> body_bytes;
    if (run.body) body_bytes = static_cast<std::int64_t>(run.body->size());
    sink(job.task_id);
    sink(job.attempt);
    sink(job.scheduled_at);
    sink(job.started_at);
    sink(job.finished_at);
    sink(job.duration_ms);
    sink(to_string(job.status));
    sink(http_status);
    sink(job.error);
    sink(job.response_bytes);
    sink(job.records);
    sink(job.worker_id);
    sink(run.content_hash);
    if (leave_out_body) {
      sink(std::optional<std::string>());
    } else {
      sink(run.body);
    }
    sink(body_bytes);
    sink(run.update_task);
    sink(run.next_run_at);
  }

  // A batch whose runs each have their own task, in one statement: the steps of
  // fetchd_record_run applied to every run at once, which costs the server less per run than
  // a call each (docs/benchmarks.md). Runs of one task depend on each other (the second finds
  // the first's document, counts its failures on), so a batch with a task twice goes through
  // record_each instead. The runs arrive as arrays, one per field; run i without its body
  // where `left_out[i]`.
  static Result<std::vector<RecordedRun>> record_set(Connection& conn,
                                                     const std::vector<RunRecord>& runs,
                                                     const std::vector<bool>& left_out) {
    std::array<pg::ArrayParam, kRecordFields> columns;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      std::size_t column = 0;
      each_field(
          runs[i], [&](const auto& value) { columns[column++].add(value); }, left_out[i]);
    }
    pg::Params args;
    for (const auto& column : columns) args.add(column.text());
    auto rows = conn.exec(kRecordSetSql, args);
    if (!rows) return propagate(rows);
    if (rows->size() != static_cast<int>(runs.size())) {
      return fail(ErrorCode::kInternal, "database error",
                  "the record statement did not return one row per run");
    }
    std::vector<RecordedRun> recorded;
    recorded.reserve(runs.size());
    for (int i = 0; i < rows->size(); ++i) recorded.push_back(recorded_run(*rows, i));
    return recorded;
  }

  // Every record of the batch through fetchd_record_run (migration 0004_record_run, the
  // SQLite store's record steps in PL/pgSQL), pipelined: one round trip for the whole batch.
  static Result<std::vector<RecordedRun>> record_each(Connection& conn,
                                                      const std::vector<RunRecord>& runs) {
    std::vector<pg::Params> calls(runs.size());
    for (std::size_t i = 0; i < runs.size(); ++i) {
      each_field(runs[i], [&](const auto& value) { calls[i].add(value); });
    }
    auto answers = conn.exec_each(
        "SELECT out_job_id, out_data_id, out_changed, out_task_missing FROM fetchd_record_run("
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        calls);
    if (!answers) return propagate(answers);
    std::vector<RecordedRun> recorded;
    recorded.reserve(answers->size());
    for (const Rows& rows : *answers) {
      if (rows.size() != 1) {
        return fail(ErrorCode::kInternal, "database error", "fetchd_record_run returned no row");
      }
      recorded.push_back(recorded_run(rows, 0));
    }
    return recorded;
  }

  // Mirrors the SQLite store's prunable_jobs: the oldest rows if they finished before
  // older_than, then the jobs of tasks over jobs_per_task, resuming where the last call stopped.
  Result<std::vector<JobId>> prunable_jobs(Connection& conn, const RetentionPolicy& policy,
                                           std::int64_t batch) {
    std::vector<JobId> ids;
    {
      auto rows = conn.exec(
          "SELECT id FROM (SELECT id, coalesce(finished_at, scheduled_at) AS done_at FROM jobs "
          "ORDER BY id LIMIT $1) AS oldest WHERE done_at < $2",
          params(batch, policy.older_than));
      if (!rows) return propagate(rows);
      if (auto done = collect_rows(*rows, ids, first_column); !done) return propagate(done);
    }
    constexpr std::int64_t kTasksPerScan = 32;
    const TaskId start = task_cursor_;
    bool wrapped = false;
    while (static_cast<std::int64_t>(ids.size()) < batch) {
      std::vector<TaskId> candidates;
      {
        auto rows = conn.exec(
            "SELECT id FROM tasks WHERE id > $1 AND id <= $2 AND job_count > $3 ORDER BY id "
            "LIMIT $4",
            params(task_cursor_, wrapped ? start : kNoUpperId, policy.jobs_per_task,
                   kTasksPerScan));
        if (!rows) return propagate(rows);
        if (auto done = collect_rows(*rows, candidates, first_column); !done) {
          return propagate(done);
        }
      }
      for (const TaskId task : candidates) {
        const auto room = batch - static_cast<std::int64_t>(ids.size());
        auto rows =
            conn.exec("SELECT id FROM jobs WHERE task_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
                      params(task, room, policy.jobs_per_task));
        if (!rows) return propagate(rows);
        const auto before = ids.size();
        if (auto done = collect_rows(*rows, ids, first_column); !done) return propagate(done);
        const auto excess = static_cast<std::int64_t>(ids.size() - before);
        task_cursor_ = excess == room ? task - 1 : task;
        if (static_cast<std::int64_t>(ids.size()) >= batch) break;
      }
      if (static_cast<std::int64_t>(ids.size()) >= batch) break;
      if (static_cast<std::int64_t>(candidates.size()) < kTasksPerScan) {
        task_cursor_ = 0;
        if (wrapped || start == 0) break;
        wrapped = true;
      }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  }

  static Result<std::int64_t> delete_jobs(Connection& conn, const std::vector<JobId>& ids) {
    auto tx = pg::Transaction::begin(conn);
    if (!tx) return propagate(tx);
    std::int64_t deleted = 0;
    std::vector<std::pair<TaskId, std::int64_t>> per_task;
    std::vector<DataId> data_ids;
    for (const JobId id : ids) {
      auto rows =
          conn.exec("DELETE FROM jobs WHERE id = $1 RETURNING task_id, data_id", params(id));
      if (!rows) return propagate(rows);
      if (rows->empty()) continue;  // gone meanwhile (its task was deleted)
      const TaskId task = rows->int64(0, 0);
      const auto data = rows->opt_int64(0, 1);
      ++deleted;
      if (data) data_ids.push_back(*data);
      auto it = std::lower_bound(per_task.begin(), per_task.end(), std::pair{task, std::int64_t{0}},
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
      if (it == per_task.end() || it->first != task) it = per_task.insert(it, {task, 0});
      ++it->second;
    }
    for (const auto& [task, count] : per_task) {
      auto rows =
          conn.exec("UPDATE tasks SET job_count = greatest(job_count - $1, 0) WHERE id = $2",
                    params(count, task));
      if (!rows) return propagate(rows);
    }
    // The job_count updates above hold the row locks of these documents' tasks, which
    // delete_data_if_orphan takes for the same reason.
    std::sort(data_ids.begin(), data_ids.end());
    data_ids.erase(std::unique(data_ids.begin(), data_ids.end()), data_ids.end());
    auto orphans = delete_orphans(conn, data_ids);
    if (!orphans) return propagate(orphans);
    if (auto done = tx->commit(); !done) return propagate(done);
    return deleted + *orphans;
  }

  static Result<std::int64_t> delete_orphans(Connection& conn, const std::vector<DataId>& ids) {
    std::int64_t deleted = 0;
    for (const DataId id : ids) {
      auto rows = conn.exec(
          "DELETE FROM data WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM jobs WHERE data_id = $1) "
          "AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.id = data.task_id AND "
          "tasks.last_data_id = $1)",
          params(id));
      if (!rows) return propagate(rows);
      deleted += rows->affected();
    }
    return deleted;
  }

  // Deletes the documents of `ids` that are still orphans. Their tasks' rows are locked
  // first, as record_runs locks them: a batch that is about to refer to one of these
  // documents (found by its content hash) either committed before, and its job is seen here,
  // or waits until this transaction is over and then finds the document gone. jobs.data_id
  // has no foreign key to do this (migration 0006).
  static Result<std::int64_t> delete_data_if_orphan(Connection& conn,
                                                    const std::vector<DataId>& ids) {
    auto tx = pg::Transaction::begin(conn);
    if (!tx) return propagate(tx);
    pg::ArrayParam array;
    for (const DataId id : ids) array.add(id);
    if (auto locked =
            conn.exec("SELECT id FROM tasks "
                      "WHERE id IN (SELECT task_id FROM data WHERE id = ANY($1::bigint[])) "
                      "ORDER BY id FOR UPDATE",
                      params(array.text()));
        !locked) {
      return propagate(locked);
    }
    auto deleted = delete_orphans(conn, ids);
    if (!deleted) return deleted;
    if (auto done = tx->commit(); !done) return propagate(done);
    return deleted;
  }

  Result<std::vector<DataId>> orphan_data(Connection& conn, std::int64_t batch) {
    std::vector<DataId> ids;
    const DataId start = data_cursor_;
    for (bool wrapped = false;;) {
      const auto room = batch - static_cast<std::int64_t>(ids.size());
      auto rows = conn.exec(
          "SELECT d.id FROM data d WHERE d.id > $1 AND d.id <= $2 "
          "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.data_id = d.id) "
          "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = d.task_id AND "
          "t.last_data_id = d.id) ORDER BY d.id LIMIT $3",
          params(data_cursor_, wrapped ? start : kNoUpperId, room));
      if (!rows) return propagate(rows);
      const auto before = ids.size();
      if (auto done = collect_rows(*rows, ids, first_column); !done) return propagate(done);
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

  // Runs `body` on a pooled connection; no exception leaves the store. A connection found
  // broken is reset first; when the body fails because the connection was lost, it is reset
  // and the body retried once after a short backoff (a transaction in flight was rolled back
  // by the server, so the retry starts it afresh), then the failure is kUnavailable.
  template <typename Body>
  auto run(Body&& body) -> std::invoke_result_t<Body&, Connection&> {
    try {
      auto lease = pool_.acquire();
      Connection& conn = lease.connection();
      if (!conn.healthy()) {
        if (auto reset = conn.reset(); !reset) return propagate(reset);
      }
      auto result = body(conn);
      if (result || result.error().code != ErrorCode::kUnavailable || conn.healthy()) {
        return result;
      }
      std::this_thread::sleep_for(options_.retry_backoff);
      if (auto reset = conn.reset(); !reset) return propagate(reset);
      return body(conn);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInternal, "internal store error", e.what());
    }
  }

  template <typename Map>
  auto select_one(const std::string& sql, const pg::Params& args, const char* absent, Map map)
      -> decltype(map(std::declval<const Rows&>(), 0)) {
    return run([&](Connection& conn) -> decltype(map(std::declval<const Rows&>(), 0)) {
      auto rows = conn.exec(sql, args);
      if (!rows) return propagate(rows);
      return single_row(*rows, absent, map);
    });
  }

  Result<std::int64_t> change_count(const std::string& sql, const pg::Params& args) {
    return run([&](Connection& conn) -> Result<std::int64_t> {
      auto rows = conn.exec(sql, args);
      if (!rows) return propagate(rows);
      return rows->affected();
    });
  }

  Result<void> change_one(const std::string& sql, const pg::Params& args, const char* absent) {
    auto changed = change_count(sql, args);
    if (!changed) return propagate(changed);
    if (*changed == 0) return fail(ErrorCode::kNotFound, absent);
    return {};
  }

  const std::vector<Migration> migrations_;
  const PostgresOptions options_;
  std::mutex prune_mutex_;
  TaskId task_cursor_ = 0;
  DataId data_cursor_ = 0;
  Pool pool_;
};

#undef FETCHD_USER_COLUMNS
#undef FETCHD_TASK_COLUMNS
#undef FETCHD_JOB_COLUMNS
#undef FETCHD_DATA_COLUMNS
#undef FETCHD_SCHEDULE_COLUMNS

Result<std::unique_ptr<Store>> open_store(const std::string& url, const PostgresOptions& options) {
  if (!is_postgres_url(url)) {
    return fail(ErrorCode::kInvalid, "not a PostgreSQL URL (postgres://user@host:port/dbname)");
  }
  const unsigned size = std::max(1u, options.pool_size);
  std::vector<std::unique_ptr<Connection>> connections;
  for (unsigned i = 0; i < size; ++i) {
    auto conn = Connection::open(url);
    if (!conn) return propagate(conn);
    connections.push_back(std::move(*conn));
  }
  return std::make_unique<PostgresStore>(std::move(connections), options);
}

}  // namespace

bool is_postgres_url(std::string_view url) {
  const auto has_scheme = [url](std::string_view scheme) {
    if (url.size() <= scheme.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != scheme[i]) return false;
    }
    return true;
  };
  return has_scheme("postgres://") || has_scheme("postgresql://");
}

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url,
                                                   PostgresOptions options) {
  try {
    return open_store(url, options);
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInternal, "internal store error", e.what());
  }
}

}  // namespace fetchd
