// The Store owns all persistent state: users, tokens, tasks, jobs and data. One interface,
// several backends (sqlite/ now, postgres/ later); every backend passes the same contract
// suite (tests/contract/store_contract_test.cpp). Backends translate their own errors at this
// boundary: a unique violation is kConflict, a lost or busy database is kUnavailable.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/job.hpp"
#include "core/task.hpp"
#include "core/time.hpp"
#include "core/user.hpp"

namespace fetchd {

// A token as stored: only a hash of the secret the client holds.
struct TokenRecord {
  std::string hash;  // hex SHA-256 of the bearer token
  UserId user_id = 0;
  TimePoint created_at{};
  TimePoint expires_at{};
};

struct UserQuery {
  std::optional<UserId> after;  // keyset pagination: ids strictly greater than this
  std::size_t limit = 100;
};

struct TaskQuery {
  std::optional<UserId> owner;  // nullopt: every user's tasks (admin)
  std::optional<TaskId> after;  // keyset pagination: ids strictly greater than this
  std::size_t limit = 100;
};

// The little the scheduler keeps per task (it holds every active task in memory).
struct ScheduleEntry {
  TaskId id = 0;
  TimePoint start_time{};
  TimePoint end_time{};
  std::int64_t task_interval = 1;
  std::int64_t max_attempt = 1;
  std::int64_t consecutive_failures = 0;
  bool paused = false;
  std::optional<TimePoint> next_run_at;
};

// One finished (or skipped) run, as the workers hand it to the store. record_runs writes a
// batch of them in ONE transaction: per record, the job row; for a success, the data row
// (deduplicated by (task_id, content_hash): an identical payload reuses the existing row; the
// job says changed = false when its document is the previous successful run's); and the task row's
// last-run summary, consecutive_failures (0 after a success, +1 after a failure, unchanged for a
// skipped run) and next_run_at.
struct RunRecord {
  Job job;                          // id ignored; data_id and changed are filled by the store
  std::optional<std::string> body;  // the JSON document of a successful run
  std::optional<std::string> content_hash;  // hex SHA-256 of body
  std::optional<TimePoint> next_run_at;     // the task's next run (nullopt: none planned)
  bool update_task = true;                  // false for skipped runs: only the job row is written
};

// What record_runs did with each record, in order.
struct RecordedRun {
  JobId job_id = 0;  // 0 when the job was a duplicate of (task_id, scheduled_at) and dropped
  std::optional<DataId> data_id;
  bool changed = false;
  bool task_missing = false;  // the task was deleted meanwhile: nothing was written
};

struct JobQuery {
  TaskId task_id = 0;
  std::optional<JobStatus> status;
  std::optional<JobId> before;  // keyset pagination, newest first: ids strictly below this
  std::size_t limit = 100;
};

struct RetentionPolicy {
  std::int64_t jobs_per_task = 1000;  // keep the newest N jobs of each task
  TimePoint older_than{};             // delete jobs that finished before this
  std::size_t batch = 500;            // delete at most this many rows per call
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::optional<std::int64_t> next_after;  // pass as `after` to get the next page; none at end

  // Backends read one row more than `limit`: its presence says another page exists. Drops it
  // and sets next_after to the last id kept.
  void trim_to(std::size_t limit) {
    if (items.size() <= limit) return;
    items.resize(limit);
    next_after = items.back().id;
  }
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies the migrations not yet recorded in schema_migrations, in order, each in its own
  // transaction. Returns the names of those applied now (empty when up to date).
  virtual Result<std::vector<std::string>> migrate() = 0;
  // Names of every migration the binary knows and whether it is applied.
  virtual Result<std::vector<std::pair<std::string, bool>>> migration_status() = 0;
  // Cheap round trip, for /readyz.
  virtual Result<void> ping() = 0;

  // Until the returned object is destroyed, the reads this thread makes on this store share one
  // snapshot: they see the same state, and cost one read transaction instead of one each. A
  // write on the thread ends the snapshot first, so that reads after it see it. Null when the
  // backend gains nothing from it (the default). The API takes one around each GET.
  class ReadSnapshot {
   public:
    virtual ~ReadSnapshot() = default;
  };
  virtual std::unique_ptr<ReadSnapshot> read_snapshot() { return nullptr; }

  // Users. create_user: kConflict when the username is taken.
  virtual Result<User> create_user(const NewUser& user, TimePoint now) = 0;
  virtual Result<User> get_user(UserId id) = 0;                                    // kNotFound
  virtual Result<User> find_user_by_name(const std::string& name) = 0;             // kNotFound
  virtual Result<void> set_password_hash(UserId id, const std::string& hash) = 0;  // kNotFound
  // Deletes the user with their tokens and tasks (and so the tasks' jobs and data). kNotFound.
  virtual Result<void> delete_user(UserId id) = 0;
  // Ascending id; at most query.limit items (kInvalid when 0); next_after only when more exist.
  virtual Result<Page<User>> list_users(const UserQuery& query) = 0;
  // Sets the role and/or the disabled flag (nullopt: unchanged). kNotFound.
  virtual Result<User> update_user(UserId id, std::optional<Role> role,
                                   std::optional<bool> disabled) = 0;

  // Tokens. find_token_user: the user of an unexpired token, else kNotFound.
  // create_token: kConflict when the hash exists, kNotFound when the user does not.
  virtual Result<void> create_token(const TokenRecord& token) = 0;
  virtual Result<User> find_token_user(const std::string& hash, TimePoint now) = 0;
  virtual Result<void> delete_token(const std::string& hash) = 0;  // idempotent
  // Revokes every token of a user except `keep_hash` (empty: all). Returns how many went.
  virtual Result<std::int64_t> delete_user_tokens(UserId id, const std::string& keep_hash) = 0;
  // Deletes the tokens with expires_at <= now (the ones find_token_user no longer accepts).
  virtual Result<std::int64_t> delete_expired_tokens(TimePoint now) = 0;

  // Tasks. Ownership is checked by the caller (the API); the store only stores.
  // create_task: kNotFound when the owner does not exist.
  virtual Result<Task> create_task(UserId owner, const TaskSpec& spec, TimePoint now) = 0;
  virtual Result<Task> get_task(TaskId id) = 0;  // kNotFound
  // The tasks of `ids` that exist, in no particular order (one round trip: the workers read
  // every task of a claimed batch at once).
  virtual Result<std::vector<Task>> get_tasks(const std::vector<TaskId>& ids) = 0;
  // Ascending id; at most query.limit items (kInvalid when 0); next_after only when more exist.
  virtual Result<Page<Task>> list_tasks(const TaskQuery& query) = 0;
  // Replaces the spec and sets updated_at = now; the engine's state is kept. kNotFound.
  virtual Result<Task> update_task(TaskId id, const TaskSpec& spec, TimePoint now) = 0;
  // Deletes the task with its jobs and data. kNotFound when absent.
  virtual Result<void> delete_task(TaskId id) = 0;
  // consecutive_failures = 0 (lifts suspension). Returns the updated task.
  virtual Result<Task> reset_attempts(TaskId id, TimePoint now) = 0;
  virtual Result<Task> set_paused(TaskId id, bool paused, TimePoint now) = 0;
  virtual Result<std::int64_t> count_tasks(std::optional<UserId> owner) = 0;
  // Tasks whose consecutive_failures reached max_attempt (for the metrics).
  virtual Result<std::int64_t> count_suspended_tasks() = 0;
  // Sets the persisted next run (create/update/reset/resume and the scheduler's own moves).
  virtual Result<void> set_next_run(TaskId id, std::optional<TimePoint> next_run_at) = 0;

  // Execution engine.
  // Every task's schedule state, for the scheduler's start (ascending id, streamed in pages
  // of `limit` after `after`, so that a million tasks do not need one huge vector).
  virtual Result<Page<ScheduleEntry>> load_schedule(std::optional<TaskId> after,
                                                    std::size_t limit) = 0;
  virtual Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>& runs) = 0;
  virtual Result<Page<Job>> list_jobs(const JobQuery& query) = 0;  // newest first
  virtual Result<Job> get_job(JobId id) = 0;                       // kNotFound
  virtual Result<Data> get_data(DataId id) = 0;                    // kNotFound
  // Deletes, in one small transaction, up to policy.batch jobs beyond the per-task count or
  // older than policy.older_than, then data rows that no job and no task's last_data_id
  // references. Returns rows deleted (0: nothing left to prune).
  virtual Result<std::int64_t> prune(const RetentionPolicy& policy) = 0;
};

}  // namespace fetchd
