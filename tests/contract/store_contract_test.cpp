// The Store contract: one typed suite that knows only the Store interface (store/store.hpp),
// run against every backend in StoreBackends. A backend is a small factory that gives each
// test a fresh, empty database; adding one (PostgreSQL) means writing its factory and adding
// it to the list.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

#ifdef FETCHD_CONTRACT_POSTGRES
#include "postgres_backend.hpp"
#endif

namespace fetchd {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Backends. Each one provides:
//   static constexpr const char* kName;
//   static constexpr bool kPersistent;  // open() again reaches the same data
//   std::string skip_reason() const;    // non-empty: the backend cannot run here (no server...)
//   Result<std::unique_ptr<Store>> open();
// Its constructor creates a fresh database for one test and its destructor removes it.

// A fresh temporary directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    const auto base = fs::temp_directory_path();
    for (int tries = 0; tries < 100; ++tries) {
      auto candidate = base / ("fetchd-store-" + std::to_string(random()));
      if (fs::create_directory(candidate)) {
        path_ = candidate;
        return;
      }
    }
    throw std::runtime_error("cannot create a temporary directory");
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct SqliteFileBackend {
  static constexpr const char* kName = "sqlite_file";
  static constexpr bool kPersistent = true;
  std::string skip_reason() const { return {}; }
  Result<std::unique_ptr<Store>> open() { return open_sqlite_store(dir.path() / "fetchd.db"); }

  TempDir dir;
};

struct SqliteMemoryBackend {
  static constexpr const char* kName = "sqlite_memory";
  static constexpr bool kPersistent = false;
  std::string skip_reason() const { return {}; }
  Result<std::unique_ptr<Store>> open() { return open_sqlite_store(":memory:"); }
};

#ifdef FETCHD_CONTRACT_POSTGRES
// contract_pg_tests: the same suite on a real PostgreSQL server (CTest label pg).
using StoreBackends = ::testing::Types<pg_testing::PostgresBackend>;
#else
using StoreBackends = ::testing::Types<SqliteFileBackend, SqliteMemoryBackend>;
#endif

struct BackendNames {
  template <typename Backend>
  static std::string GetName(int) {
    return Backend::kName;
  }
};

// ---------------------------------------------------------------------------------------------
// Helpers.

constexpr std::int64_t kNowMs = 1'672'868'498'930;  // 2023-01-04T21:41:38.930Z
constexpr std::int64_t kYearMs = 365LL * 24 * 3600 * 1000;

TimePoint at(std::int64_t ms) {
  return from_unix_ms(ms);
}

std::string describe(const Error& error) {
  return std::string(to_string(error.code)) + ": " + error.message + " [" + error.internal + "]";
}

// The value of a call that must succeed; a failure ends the test with the error (GoogleTest
// reports the exception).
template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result) throw std::runtime_error(what + " failed: " + describe(result.error()));
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// "ok" or the error code's name, so that a mismatch prints readably.
template <typename T>
std::string outcome(const Result<T>& result) {
  return result ? "ok" : std::string(to_string(result.error().code));
}

TaskSpec sample_spec(const std::string& name = "amazingexpo") {
  TaskSpec spec;
  spec.name = name;
  spec.url = "https://example.com/php-architecture/";
  spec.parameters = {{"eventfile", "amazingexpo2020.json"}};
  spec.start_time = at(kNowMs);
  spec.end_time = at(kNowMs + 10 * kYearMs);
  spec.task_interval = 2;
  spec.max_execution_time = 0;
  spec.max_attempt = 3;
  return spec;
}

std::vector<TaskId> ids_of(const std::vector<Task>& tasks) {
  std::vector<TaskId> ids;
  for (const auto& task : tasks) ids.push_back(task.id);
  return ids;
}

// A finished run of `task` due at `due_ms`, as a worker hands it over: it started 5 ms late,
// took 100 ms, and plans the next run one interval (2 s) after its due time. A success carries
// `body`; its "hash" is derived from the body, which is all the store relies on.
RunRecord run_of(TaskId task, std::int64_t due_ms, JobStatus status,
                 const std::string& body = "[]") {
  RunRecord run;
  run.job.task_id = task;
  run.job.attempt = 1;
  run.job.scheduled_at = at(due_ms);
  run.job.started_at = at(due_ms + 5);
  run.job.finished_at = at(due_ms + 105);
  run.job.duration_ms = 100;
  run.job.status = status;
  run.job.worker_id = "worker-1";
  run.next_run_at = at(due_ms + 2000);
  switch (status) {
    case JobStatus::kSucceeded:
      run.job.http_status = 200;
      run.job.response_bytes = static_cast<std::int64_t>(body.size());
      run.body = body;
      run.content_hash = "sha256-of:" + body;
      break;
    case JobStatus::kFailed:
      run.job.http_status = 503;
      run.job.error = "HTTP 503 Service Unavailable";
      run.job.response_bytes = 19;
      break;
    case JobStatus::kTimedOut:
      run.job.error = "timed out after 30 s";
      break;
    case JobStatus::kSkipped:
      run.job.started_at.reset();
      run.job.duration_ms.reset();
      run.job.finished_at = at(due_ms);
      run.job.worker_id.reset();
      run.next_run_at.reset();
      run.update_task = false;
      break;
    default:
      break;
  }
  return run;
}

std::vector<JobId> job_ids_of(const std::vector<Job>& jobs) {
  std::vector<JobId> ids;
  for (const auto& job : jobs) ids.push_back(job.id);
  return ids;
}

template <typename Backend>
class StoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = backend_.skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
    store_ = must(backend_.open(), "open");
    // Kept for the migration test: what a fresh database reports, and what migrating it did.
    status_before_migrate_ = must(store_->migration_status(), "migration_status");
    applied_in_setup_ = must(store_->migrate(), "migrate");
  }

  Store& store() { return *store_; }

  User add_user(const std::string& name, Role role = Role::kUser) {
    return must(store().create_user({name, "hash-of-" + name, role}, at(kNowMs)), "create_user");
  }
  Task add_task(UserId owner, const std::string& name = "amazingexpo") {
    return must(store().create_task(owner, sample_spec(name), at(kNowMs)), "create_task");
  }
  void add_token(const std::string& hash, UserId user, std::int64_t expires_ms) {
    must(store().create_token({hash, user, at(kNowMs), at(expires_ms)}), "create_token");
  }
  bool token_valid(const std::string& hash, std::int64_t now_ms = kNowMs) {
    return store().find_token_user(hash, at(now_ms)).has_value();
  }
  std::vector<RecordedRun> record(const std::vector<RunRecord>& runs) {
    auto recorded = must(store().record_runs(runs), "record_runs");
    if (recorded.size() != runs.size()) throw std::runtime_error("one outcome per record expected");
    return recorded;
  }
  RecordedRun record(const RunRecord& run) { return record(std::vector<RunRecord>{run}).front(); }
  // Every job of the task, newest first, read page by page.
  std::vector<Job> all_jobs(TaskId task, std::optional<JobStatus> status = std::nullopt) {
    std::vector<Job> jobs;
    JobQuery query{task, status, std::nullopt, 7};
    for (int page = 0; page < 10'000; ++page) {
      auto got = must(store().list_jobs(query), "list_jobs");
      jobs.insert(jobs.end(), got.items.begin(), got.items.end());
      if (!got.next_after) return jobs;
      query.before = got.next_after;
    }
    throw std::runtime_error("list_jobs never ends");
  }
  // Prunes until nothing is left; returns the rows deleted and checks each call's bound.
  std::int64_t prune_all(const RetentionPolicy& policy) {
    std::int64_t total = 0;
    for (int call = 0; call < 10'000; ++call) {
      const auto deleted = must(store().prune(policy), "prune");
      // At most `batch` jobs, each of which may free one document.
      EXPECT_LE(deleted, 2 * static_cast<std::int64_t>(policy.batch));
      if (deleted == 0) return total;
      total += deleted;
    }
    throw std::runtime_error("prune never ends");
  }

  Backend backend_;
  std::unique_ptr<Store> store_;
  std::vector<std::pair<std::string, bool>> status_before_migrate_;
  std::vector<std::string> applied_in_setup_;
};

TYPED_TEST_SUITE(StoreContract, StoreBackends, BackendNames);

// --- schema -----------------------------------------------------------------------------------

TYPED_TEST(StoreContract, MigrateAppliesEveryMigrationOnceInOrder) {
  ASSERT_FALSE(this->status_before_migrate_.empty());
  EXPECT_EQ(this->status_before_migrate_.front().first, "0001_init");
  std::vector<std::string> known;
  for (const auto& [name, applied] : this->status_before_migrate_) {
    EXPECT_FALSE(applied) << name << " reported applied on a fresh database";
    known.push_back(name);
  }
  EXPECT_TRUE(std::is_sorted(known.begin(), known.end()));
  EXPECT_EQ(this->applied_in_setup_, known);

  // Idempotent: a second run applies nothing and everything reads as applied.
  EXPECT_EQ(must(this->store().migrate(), "migrate again"), std::vector<std::string>{});
  const auto after = must(this->store().migration_status(), "migration_status");
  ASSERT_EQ(after.size(), known.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].first, known[i]);
    EXPECT_TRUE(after[i].second) << after[i].first;
  }
}

TYPED_TEST(StoreContract, PingAnswers) {
  EXPECT_EQ(outcome(this->store().ping()), "ok");
}

// --- users ------------------------------------------------------------------------------------

TYPED_TEST(StoreContract, CreatedUserCanBeReadByIdAndByName) {
  const auto alice = this->add_user("alice");
  const auto root = this->add_user("root", Role::kAdmin);
  EXPECT_GT(alice.id, 0);
  EXPECT_NE(alice.id, root.id);
  EXPECT_EQ(alice.username, "alice");
  EXPECT_EQ(alice.password_hash, "hash-of-alice");
  EXPECT_EQ(alice.role, Role::kUser);
  EXPECT_FALSE(alice.disabled);
  EXPECT_EQ(alice.created_at, at(kNowMs));
  EXPECT_EQ(root.role, Role::kAdmin);

  const auto by_id = must(this->store().get_user(alice.id), "get_user");
  EXPECT_EQ(by_id.username, "alice");
  EXPECT_EQ(by_id.password_hash, "hash-of-alice");
  EXPECT_EQ(by_id.role, Role::kUser);
  EXPECT_EQ(by_id.created_at, at(kNowMs));
  const auto by_name = must(this->store().find_user_by_name("root"), "find_user_by_name");
  EXPECT_EQ(by_name.id, root.id);
  EXPECT_TRUE(by_name.is_admin());

  EXPECT_EQ(outcome(this->store().get_user(root.id + 1000)), "not_found");
  EXPECT_EQ(outcome(this->store().find_user_by_name("nobody")), "not_found");
  EXPECT_EQ(outcome(this->store().find_user_by_name("alic")), "not_found");
}

TYPED_TEST(StoreContract, TakenUsernameIsAConflict) {
  const auto alice = this->add_user("alice");
  auto again = this->store().create_user({"alice", "other-hash", Role::kAdmin}, at(kNowMs + 1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().message, "username is already taken");
  // The first account is untouched, and the store still works after the conflict.
  const auto stored = must(this->store().find_user_by_name("alice"), "find_user_by_name");
  EXPECT_EQ(stored.id, alice.id);
  EXPECT_EQ(stored.password_hash, "hash-of-alice");
  EXPECT_EQ(stored.role, Role::kUser);
  EXPECT_EQ(outcome(this->store().create_user({"alice2", "h", Role::kUser}, at(kNowMs))), "ok");
}

TYPED_TEST(StoreContract, PasswordHashCanBeReplaced) {
  const auto alice = this->add_user("alice");
  must(this->store().set_password_hash(alice.id, "new-hash"), "set_password_hash");
  EXPECT_EQ(must(this->store().get_user(alice.id), "get_user").password_hash, "new-hash");
  EXPECT_EQ(outcome(this->store().set_password_hash(alice.id + 1000, "x")), "not_found");
}

TYPED_TEST(StoreContract, DeletingAUserDeletesTheirTasksTokensJobsAndData) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  const auto a1 = this->add_task(alice.id, "a1");
  const auto b1 = this->add_task(bob.id, "b1");
  const auto a2 = this->add_task(alice.id, "a2");
  this->add_token("alice-token", alice.id, kNowMs + kYearMs);
  this->add_token("bob-token", bob.id, kNowMs + kYearMs);
  const auto a1_run = this->record(run_of(a1.id, kNowMs, JobStatus::kSucceeded, "[1]"));
  const auto a2_run = this->record(run_of(a2.id, kNowMs, JobStatus::kFailed));
  const auto b1_run = this->record(run_of(b1.id, kNowMs, JobStatus::kSucceeded, "[1]"));
  ASSERT_TRUE(a1_run.data_id && b1_run.data_id);

  must(this->store().delete_user(alice.id), "delete_user");

  EXPECT_EQ(outcome(this->store().get_user(alice.id)), "not_found");
  EXPECT_EQ(outcome(this->store().find_user_by_name("alice")), "not_found");
  EXPECT_EQ(outcome(this->store().get_task(a1.id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_task(a2.id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_job(a1_run.job_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_job(a2_run.job_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*a1_run.data_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_job(b1_run.job_id)), "ok");
  EXPECT_EQ(outcome(this->store().get_data(*b1_run.data_id)), "ok");
  EXPECT_FALSE(this->token_valid("alice-token"));
  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count_tasks"), 0);
  // Bob is untouched.
  EXPECT_EQ(outcome(this->store().get_user(bob.id)), "ok");
  EXPECT_EQ(outcome(this->store().get_task(b1.id)), "ok");
  EXPECT_TRUE(this->token_valid("bob-token"));
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count_tasks"), 1);

  EXPECT_EQ(outcome(this->store().delete_user(alice.id)), "not_found");
  // The name is free again.
  EXPECT_EQ(outcome(this->store().create_user({"alice", "h", Role::kUser}, at(kNowMs))), "ok");
}

// --- tokens -----------------------------------------------------------------------------------

TYPED_TEST(StoreContract, TokenResolvesToItsUserUntilItExpires) {
  const auto alice = this->add_user("alice");
  const std::int64_t expires = kNowMs + 3'600'000;
  this->add_token("h-alice", alice.id, expires);

  const auto user = must(this->store().find_token_user("h-alice", at(kNowMs)), "find_token_user");
  EXPECT_EQ(user.id, alice.id);
  EXPECT_EQ(user.username, "alice");
  // The boundary: valid one millisecond before expires_at, expired at it and after.
  EXPECT_TRUE(this->token_valid("h-alice", expires - 1));
  EXPECT_EQ(outcome(this->store().find_token_user("h-alice", at(expires))), "not_found");
  EXPECT_EQ(outcome(this->store().find_token_user("h-alice", at(expires + 1))), "not_found");
  EXPECT_EQ(outcome(this->store().find_token_user("h-unknown", at(kNowMs))), "not_found");
}

TYPED_TEST(StoreContract, TokenHashIsUniqueAndNeedsAUser) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  this->add_token("h1", alice.id, kNowMs + 1000);
  EXPECT_EQ(outcome(this->store().create_token({"h1", bob.id, at(kNowMs), at(kNowMs + 5000)})),
            "conflict");
  // The original token still belongs to alice.
  EXPECT_EQ(must(this->store().find_token_user("h1", at(kNowMs)), "find").id, alice.id);
  EXPECT_EQ(
      outcome(this->store().create_token({"h2", bob.id + 1000, at(kNowMs), at(kNowMs + 5000)})),
      "not_found");
  EXPECT_FALSE(this->token_valid("h2"));
}

TYPED_TEST(StoreContract, DeletedTokenNoLongerResolves) {
  const auto alice = this->add_user("alice");
  this->add_token("h1", alice.id, kNowMs + 1000);
  this->add_token("h2", alice.id, kNowMs + 1000);
  must(this->store().delete_token("h1"), "delete_token");
  EXPECT_FALSE(this->token_valid("h1"));
  EXPECT_TRUE(this->token_valid("h2"));
  // Revoking twice (or an unknown token) is not an error.
  EXPECT_EQ(outcome(this->store().delete_token("h1")), "ok");
  EXPECT_EQ(outcome(this->store().delete_token("never-existed")), "ok");
}

TYPED_TEST(StoreContract, GetTasksReadsTheOnesThatExistInOneCall) {
  const auto alice = this->add_user("alice");
  std::vector<TaskId> ids;
  for (const char* name : {"t0", "t1", "t2"}) ids.push_back(this->add_task(alice.id, name).id);
  auto tasks = must(this->store().get_tasks({ids[2], ids[0] + 1000, ids[0]}), "get_tasks");
  std::sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.id < b.id; });
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].id, ids[0]);
  EXPECT_EQ(tasks[0].spec.name, "t0");
  EXPECT_EQ(tasks[1].id, ids[2]);
  EXPECT_EQ(tasks[1].spec.name, "t2");
  EXPECT_EQ(tasks[1].spec.parameters, sample_spec().parameters);
  EXPECT_TRUE(must(this->store().get_tasks({}), "get_tasks").empty());
}

TYPED_TEST(StoreContract, UsersAreListedByIdInPages) {
  std::vector<UserId> ids;
  for (const char* name : {"u1", "u2", "u3", "u4", "u5"}) ids.push_back(this->add_user(name).id);
  UserQuery query;
  query.limit = 2;
  std::vector<UserId> seen;
  for (int page_no = 0; page_no < 10; ++page_no) {
    auto page = must(this->store().list_users(query), "list_users");
    for (const User& user : page.items) seen.push_back(user.id);
    if (!page.next_after) break;
    EXPECT_EQ(page.items.size(), 2u);
    query.after = page.next_after;
  }
  EXPECT_EQ(seen, ids);
  query.limit = 0;
  auto bad = this->store().list_users(query);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalid);
}

TYPED_TEST(StoreContract, UpdateUserChangesOnlyWhatIsGiven) {
  const auto alice = this->add_user("alice");
  auto admin = must(this->store().update_user(alice.id, Role::kAdmin, std::nullopt), "update");
  EXPECT_EQ(admin.role, Role::kAdmin);
  EXPECT_FALSE(admin.disabled);
  auto disabled = must(this->store().update_user(alice.id, std::nullopt, true), "update");
  EXPECT_EQ(disabled.role, Role::kAdmin);
  EXPECT_TRUE(disabled.disabled);
  auto both = must(this->store().update_user(alice.id, Role::kUser, false), "update");
  EXPECT_EQ(both.role, Role::kUser);
  EXPECT_FALSE(both.disabled);
  EXPECT_EQ(must(this->store().get_user(alice.id), "get_user").role, Role::kUser);
  EXPECT_EQ(both.username, "alice");
  auto missing = this->store().update_user(alice.id + 100, Role::kAdmin, std::nullopt);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TYPED_TEST(StoreContract, DeleteUserTokensCanKeepOne) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  for (const char* hash : {"a1", "a2", "a3"}) this->add_token(hash, alice.id, kNowMs + 1000);
  this->add_token("b1", bob.id, kNowMs + 1000);

  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, "a2"), "delete_user_tokens"), 2);
  EXPECT_FALSE(this->token_valid("a1"));
  EXPECT_TRUE(this->token_valid("a2"));
  EXPECT_FALSE(this->token_valid("a3"));
  EXPECT_TRUE(this->token_valid("b1"));

  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, ""), "delete_user_tokens"), 1);
  EXPECT_FALSE(this->token_valid("a2"));
  EXPECT_TRUE(this->token_valid("b1"));
  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, ""), "delete_user_tokens"), 0);
}

TYPED_TEST(StoreContract, DeleteExpiredTokensRemovesThoseAtOrBeforeNow) {
  const auto alice = this->add_user("alice");
  this->add_token("past", alice.id, kNowMs - 1);
  this->add_token("exactly-now", alice.id, kNowMs);
  this->add_token("future", alice.id, kNowMs + 1);

  EXPECT_EQ(must(this->store().delete_expired_tokens(at(kNowMs)), "delete_expired_tokens"), 2);
  EXPECT_TRUE(this->token_valid("future", kNowMs));
  // The survivors are exactly the unexpired one: removing all of alice's tokens finds one.
  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, "future"), "delete_user_tokens"), 0);
  EXPECT_EQ(must(this->store().delete_expired_tokens(at(kNowMs)), "delete_expired_tokens"), 0);
  EXPECT_EQ(must(this->store().delete_expired_tokens(at(kNowMs + 1)), "delete_expired_tokens"), 1);
}

// --- tasks ------------------------------------------------------------------------------------

TYPED_TEST(StoreContract, CreatedTaskHasItsSpecAndAFreshState) {
  const auto alice = this->add_user("alice");
  const auto spec = sample_spec();
  const auto task = must(this->store().create_task(alice.id, spec, at(kNowMs)), "create_task");
  EXPECT_GT(task.id, 0);
  EXPECT_EQ(task.owner_id, alice.id);
  EXPECT_EQ(task.spec, spec);
  EXPECT_FALSE(task.paused);
  EXPECT_EQ(task.consecutive_failures, 0);
  EXPECT_FALSE(task.suspended());
  EXPECT_EQ(task.next_run_at, std::nullopt);
  EXPECT_EQ(task.last, LastRun{});
  EXPECT_EQ(task.created_at, at(kNowMs));
  EXPECT_EQ(task.updated_at, at(kNowMs));

  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.id, task.id);
  EXPECT_EQ(read.owner_id, alice.id);
  EXPECT_EQ(read.spec, spec);
  EXPECT_EQ(read.last, LastRun{});
  EXPECT_EQ(read.created_at, at(kNowMs));
  EXPECT_EQ(read.updated_at, at(kNowMs));

  EXPECT_EQ(outcome(this->store().get_task(task.id + 1000)), "not_found");
}

TYPED_TEST(StoreContract, TaskOfAnUnknownOwnerIsNotFound) {
  const auto alice = this->add_user("alice");
  EXPECT_EQ(outcome(this->store().create_task(alice.id + 1000, sample_spec(), at(kNowMs))),
            "not_found");
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count_tasks"), 0);
}

TYPED_TEST(StoreContract, ParametersThatAreNotAnObjectAreInvalid) {
  const auto alice = this->add_user("alice");
  auto spec = sample_spec();
  spec.parameters = nlohmann::json::array({1, 2});
  auto created = this->store().create_task(alice.id, spec, at(kNowMs));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kInvalid);
  ASSERT_EQ(created.error().fields.size(), 1u);
  EXPECT_EQ(created.error().fields[0].field, "parameters");
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count_tasks"), 0);
}

TYPED_TEST(StoreContract, UpdateReplacesTheSpecAndBumpsUpdatedAt) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  TaskSpec changed;
  changed.name = "renamed";
  changed.url = "http://other.example/feed.json";
  changed.parameters = {{"method", "POST"}, {"headers", {{"X-Key", "v"}}}};
  changed.start_time = at(kNowMs + 1000);
  changed.end_time = at(kNowMs + 2000);
  changed.task_interval = 3600;
  changed.max_execution_time = 60;
  changed.max_attempt = 7;
  const auto later = at(kNowMs + 5000);

  const auto updated = must(this->store().update_task(task.id, changed, later), "update_task");
  EXPECT_EQ(updated.id, task.id);
  EXPECT_EQ(updated.owner_id, alice.id);
  EXPECT_EQ(updated.spec, changed);
  EXPECT_EQ(updated.created_at, at(kNowMs));
  EXPECT_EQ(updated.updated_at, later);

  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec, changed);
  EXPECT_EQ(read.created_at, at(kNowMs));
  EXPECT_EQ(read.updated_at, later);

  EXPECT_EQ(outcome(this->store().update_task(task.id + 1000, changed, later)), "not_found");
}

TYPED_TEST(StoreContract, DeletedTaskIsGone) {
  const auto alice = this->add_user("alice");
  const auto doomed = this->add_task(alice.id, "doomed");
  const auto kept = this->add_task(alice.id, "kept");
  must(this->store().delete_task(doomed.id), "delete_task");
  EXPECT_EQ(outcome(this->store().get_task(doomed.id)), "not_found");
  EXPECT_EQ(outcome(this->store().delete_task(doomed.id)), "not_found");
  EXPECT_EQ(outcome(this->store().update_task(doomed.id, sample_spec(), at(kNowMs))), "not_found");
  EXPECT_EQ(must(this->store().get_task(kept.id), "get_task").spec.name, "kept");
  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count_tasks"), 1);
}

TYPED_TEST(StoreContract, TaskIdsAreNeverReused) {
  const auto alice = this->add_user("alice");
  this->add_task(alice.id, "first");
  const auto last = this->add_task(alice.id, "last");
  must(this->store().delete_task(last.id), "delete_task");
  const auto next = this->add_task(alice.id, "next");
  EXPECT_GT(next.id, last.id);
}

TYPED_TEST(StoreContract, ListPaginatesOverThreePagesByAscendingId) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  std::vector<TaskId> mine;
  for (int i = 0; i < 7; ++i) {
    mine.push_back(this->add_task(alice.id, "a" + std::to_string(i)).id);
    this->add_task(bob.id, "b" + std::to_string(i));  // interleaved ids that must be skipped
  }

  TaskQuery query{alice.id, std::nullopt, 3};
  auto page1 = must(this->store().list_tasks(query), "page 1");
  EXPECT_EQ(ids_of(page1.items), (std::vector<TaskId>{mine[0], mine[1], mine[2]}));
  ASSERT_TRUE(page1.next_after.has_value());
  EXPECT_EQ(*page1.next_after, mine[2]);

  query.after = page1.next_after;
  auto page2 = must(this->store().list_tasks(query), "page 2");
  EXPECT_EQ(ids_of(page2.items), (std::vector<TaskId>{mine[3], mine[4], mine[5]}));
  ASSERT_TRUE(page2.next_after.has_value());
  EXPECT_EQ(*page2.next_after, mine[5]);

  query.after = page2.next_after;
  auto page3 = must(this->store().list_tasks(query), "page 3");
  EXPECT_EQ(ids_of(page3.items), (std::vector<TaskId>{mine[6]}));
  EXPECT_FALSE(page3.next_after.has_value());
  for (const auto& task : page3.items) EXPECT_EQ(task.owner_id, alice.id);

  // Both sides of "more rows exist": a limit equal to the count has no next page, one less has.
  auto exact = must(this->store().list_tasks({alice.id, std::nullopt, 7}), "limit 7");
  EXPECT_EQ(ids_of(exact.items), mine);
  EXPECT_FALSE(exact.next_after.has_value());
  auto short_by_one = must(this->store().list_tasks({alice.id, std::nullopt, 6}), "limit 6");
  EXPECT_EQ(short_by_one.items.size(), 6u);
  EXPECT_EQ(short_by_one.next_after, std::optional<std::int64_t>(mine[5]));
  // Past the end.
  auto beyond = must(this->store().list_tasks({alice.id, mine[6], 3}), "after last");
  EXPECT_TRUE(beyond.items.empty());
  EXPECT_FALSE(beyond.next_after.has_value());
}

TYPED_TEST(StoreContract, ListFiltersByOwnerOrListsEveryone) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  const auto carol = this->add_user("carol");
  const auto a1 = this->add_task(alice.id, "a1");
  const auto b1 = this->add_task(bob.id, "b1");
  const auto a2 = this->add_task(alice.id, "a2");

  auto alices = must(this->store().list_tasks({alice.id, std::nullopt, 100}), "alice");
  EXPECT_EQ(ids_of(alices.items), (std::vector<TaskId>{a1.id, a2.id}));
  auto bobs = must(this->store().list_tasks({bob.id, std::nullopt, 100}), "bob");
  EXPECT_EQ(ids_of(bobs.items), (std::vector<TaskId>{b1.id}));
  auto carols = must(this->store().list_tasks({carol.id, std::nullopt, 100}), "carol");
  EXPECT_TRUE(carols.items.empty());
  EXPECT_FALSE(carols.next_after.has_value());
  auto everyone = must(this->store().list_tasks({std::nullopt, std::nullopt, 100}), "all");
  EXPECT_EQ(ids_of(everyone.items), (std::vector<TaskId>{a1.id, b1.id, a2.id}));
  auto all_paged = must(this->store().list_tasks({std::nullopt, a1.id, 1}), "all, paged");
  EXPECT_EQ(ids_of(all_paged.items), (std::vector<TaskId>{b1.id}));
  EXPECT_EQ(all_paged.next_after, std::optional<std::int64_t>(b1.id));

  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count alice"), 2);
  EXPECT_EQ(must(this->store().count_tasks(bob.id), "count bob"), 1);
  EXPECT_EQ(must(this->store().count_tasks(carol.id), "count carol"), 0);
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count all"), 3);
}

TYPED_TEST(StoreContract, ListLimitMustBePositive) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  EXPECT_EQ(outcome(this->store().list_tasks({alice.id, std::nullopt, 0})), "invalid");
  auto one = must(this->store().list_tasks({alice.id, std::nullopt, 1}), "limit 1");
  EXPECT_EQ(ids_of(one.items), std::vector<TaskId>{task.id});
  EXPECT_FALSE(one.next_after.has_value());
}

TYPED_TEST(StoreContract, ResetAttemptsClearsFailuresAndBumpsUpdatedAt) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto later = at(kNowMs + 42);
  const auto reset = must(this->store().reset_attempts(task.id, later), "reset_attempts");
  EXPECT_EQ(reset.id, task.id);
  EXPECT_EQ(reset.consecutive_failures, 0);
  EXPECT_FALSE(reset.suspended());
  EXPECT_EQ(reset.spec, task.spec);
  EXPECT_EQ(reset.updated_at, later);
  EXPECT_EQ(reset.created_at, at(kNowMs));
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").updated_at, later);
  EXPECT_EQ(outcome(this->store().reset_attempts(task.id + 1000, later)), "not_found");
}

TYPED_TEST(StoreContract, PauseAndResume) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto paused = must(this->store().set_paused(task.id, true, at(kNowMs + 1)), "pause");
  EXPECT_TRUE(paused.paused);
  EXPECT_EQ(paused.updated_at, at(kNowMs + 1));
  EXPECT_TRUE(must(this->store().get_task(task.id), "get_task").paused);
  // An update of the spec keeps the pause: it is state, not spec.
  must(this->store().update_task(task.id, sample_spec("renamed"), at(kNowMs + 2)), "update");
  EXPECT_TRUE(must(this->store().get_task(task.id), "get_task").paused);

  const auto resumed = must(this->store().set_paused(task.id, false, at(kNowMs + 3)), "resume");
  EXPECT_FALSE(resumed.paused);
  EXPECT_EQ(resumed.updated_at, at(kNowMs + 3));
  EXPECT_FALSE(must(this->store().get_task(task.id), "get_task").paused);
  EXPECT_EQ(outcome(this->store().set_paused(task.id + 1000, true, at(kNowMs))), "not_found");
}

// Every backend, whether a snapshot costs it anything or not: a thread reads its own writes.
TYPED_TEST(StoreContract, ReadsInASnapshotSeeTheThreadsOwnWrites) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto snapshot = this->store().read_snapshot();
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").spec.name, "amazingexpo");
  must(this->store().update_task(task.id, sample_spec("renamed"), at(kNowMs + 1)), "update");
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").spec.name, "renamed");
  must(this->store().set_paused(task.id, true, at(kNowMs + 2)), "pause");
  EXPECT_TRUE(must(this->store().get_task(task.id), "get_task").paused);
}

TYPED_TEST(StoreContract, ParametersRoundTripAsJson) {
  const auto alice = this->add_user("alice");
  auto spec = sample_spec();
  spec.parameters = nlohmann::json::parse(R"({
    "method": "POST",
    "headers": {"Accept": "application/json", "X-Empty": ""},
    "query": {"page": 2, "ratio": 0.25, "on": true, "big": 9007199254740993, "neg": -7},
    "body": {"nested": {"deeper": {"list": [1, "two", null, {"three": 3}]}}},
    "eventfile": "amazingexpo2020.json",
    "city": "Zürich", "kanji": "東京", "emoji": "🚀", "quote": "a \"b\" \\ c\n\t",
    "nothing": null, "empty_object": {}, "empty_array": []
  })");
  const auto task = must(this->store().create_task(alice.id, spec, at(kNowMs)), "create_task");
  EXPECT_EQ(task.spec.parameters, spec.parameters);
  const Task read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec.parameters, spec.parameters);
  EXPECT_EQ(read.spec.parameters.at("kanji").get<std::string>(), "東京");
  EXPECT_EQ(read.spec.parameters.at("query").at("big").get<std::int64_t>(), 9007199254740993);

  // The empty object is kept as an object, not null.
  auto empty = sample_spec();
  empty.parameters = nlohmann::json::object();
  const auto bare = must(this->store().create_task(alice.id, empty, at(kNowMs)), "create_task");
  const auto bare_read = must(this->store().get_task(bare.id), "get_task");
  EXPECT_TRUE(bare_read.spec.parameters.is_object());
  EXPECT_TRUE(bare_read.spec.parameters.empty());
}

TYPED_TEST(StoreContract, TimesRoundTripToTheMillisecondIncludingBefore1970) {
  const auto alice = this->add_user("alice");
  auto spec = sample_spec();
  spec.start_time = at(-1);                     // 1969-12-31T23:59:59.999Z
  spec.end_time = at(253'402'300'799'999);      // 9999-12-31T23:59:59.999Z
  const auto created_at = at(-86'400'000 - 7);  // 1969-12-30T23:59:59.993Z
  const auto task = must(this->store().create_task(alice.id, spec, created_at), "create_task");
  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec.start_time, at(-1));
  EXPECT_EQ(read.spec.end_time, at(253'402'300'799'999));
  EXPECT_EQ(read.created_at, created_at);
  EXPECT_EQ(read.updated_at, created_at);

  auto precise = sample_spec();
  precise.start_time = at(kNowMs + 1);  // ...38.931Z: one millisecond apart must stay apart
  precise.end_time = at(kNowMs + 2);
  const auto updated = must(this->store().update_task(task.id, precise, at(kNowMs + 999)), "up");
  EXPECT_EQ(updated.spec.start_time, at(kNowMs + 1));
  EXPECT_EQ(updated.spec.end_time, at(kNowMs + 2));
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").updated_at, at(kNowMs + 999));

  const auto user = must(this->store().create_user({"old", "h", Role::kUser}, at(-5)), "user");
  EXPECT_EQ(must(this->store().get_user(user.id), "get_user").created_at, at(-5));
  this->add_token("old-token", user.id, -3);
  EXPECT_TRUE(this->token_valid("old-token", -4));
  EXPECT_FALSE(this->token_valid("old-token", -3));
}

TYPED_TEST(StoreContract, ConcurrentWritersAllLand) {
  const auto alice = this->add_user("alice");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::vector<TaskId>> created(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto task = this->store().create_task(alice.id, sample_spec(name), at(kNowMs + i));
        if (!task) {
          ++failures;
          continue;
        }
        created[t].push_back(task->id);
        // A read right after the write sees it (another connection in a pooled backend).
        auto read = this->store().get_task(task->id);
        if (!read || read->spec.name != name) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  std::set<TaskId> unique;
  for (const auto& ids : created) unique.insert(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count_tasks"), kThreads * kPerThread);
  auto all = must(this->store().list_tasks({alice.id, std::nullopt, 500}), "list_tasks");
  EXPECT_EQ(ids_of(all.items), std::vector<TaskId>(unique.begin(), unique.end()));
}

TYPED_TEST(StoreContract, DataSurvivesCloseAndReopen) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << TypeParam::kName << " does not persist";
  const auto alice = this->add_user("alice", Role::kAdmin);
  const auto task = this->add_task(alice.id);
  must(this->store().set_paused(task.id, true, at(kNowMs + 1)), "set_paused");
  this->add_token("h-alice", alice.id, kNowMs + 1000);

  this->store_.reset();  // closes every connection
  this->store_ = must(this->backend_.open(), "reopen");
  EXPECT_EQ(must(this->store().migrate(), "migrate on reopen"), std::vector<std::string>{});

  const auto user = must(this->store().find_user_by_name("alice"), "find_user_by_name");
  EXPECT_EQ(user.id, alice.id);
  EXPECT_TRUE(user.is_admin());
  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec, task.spec);
  EXPECT_TRUE(read.paused);
  EXPECT_EQ(read.updated_at, at(kNowMs + 1));
  EXPECT_TRUE(this->token_valid("h-alice"));
  // Ids keep increasing across restarts.
  EXPECT_GT(this->add_task(alice.id, "after restart").id, task.id);
}

// --- engine: schedule state -------------------------------------------------------------------

TYPED_TEST(StoreContract, NextRunIsPersistedWithoutTouchingUpdatedAt) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  must(this->store().set_next_run(task.id, at(kNowMs + 2000)), "set_next_run");
  auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.next_run_at, at(kNowMs + 2000));
  EXPECT_EQ(read.updated_at, at(kNowMs));
  must(this->store().set_next_run(task.id, std::nullopt), "set_next_run none");
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").next_run_at, std::nullopt);
  EXPECT_EQ(outcome(this->store().set_next_run(task.id + 1000, at(kNowMs))), "not_found");
  // The spec's updates leave it alone.
  must(this->store().set_next_run(task.id, at(kNowMs + 7)), "set_next_run");
  must(this->store().update_task(task.id, sample_spec("renamed"), at(kNowMs + 1)), "update");
  must(this->store().set_paused(task.id, true, at(kNowMs + 2)), "pause");
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").next_run_at, at(kNowMs + 7));
}

TYPED_TEST(StoreContract, LoadSchedulePagesOverEveryTask) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  constexpr int kTasks = 2500;
  std::vector<TaskId> ids;
  for (int i = 0; i < kTasks; ++i) {
    auto spec = sample_spec("t" + std::to_string(i));
    spec.task_interval = 1 + i % 7;
    spec.max_attempt = 1 + i % 5;
    spec.start_time = at(kNowMs + i);
    const auto task =
        must(this->store().create_task(i % 2 ? alice.id : bob.id, spec, at(kNowMs)), "create_task");
    ids.push_back(task.id);
    if (i % 3 == 0) must(this->store().set_next_run(task.id, at(kNowMs + 10 * i)), "next");
    if (i % 11 == 0) must(this->store().set_paused(task.id, true, at(kNowMs)), "pause");
  }
  // Some engine state, written the engine's way.
  this->record(run_of(ids[4], kNowMs, JobStatus::kFailed));
  this->record(run_of(ids[4], kNowMs + 2000, JobStatus::kTimedOut));

  std::vector<ScheduleEntry> entries;
  std::optional<TaskId> after;
  std::vector<std::size_t> page_sizes;
  for (int page = 0; page < 10; ++page) {
    auto got = must(this->store().load_schedule(after, 1000), "load_schedule");
    page_sizes.push_back(got.items.size());
    entries.insert(entries.end(), got.items.begin(), got.items.end());
    if (!got.next_after) break;
    EXPECT_EQ(*got.next_after, got.items.back().id);
    after = got.next_after;
  }
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{1000, 1000, 500}));
  ASSERT_EQ(entries.size(), ids.size());
  for (int i = 0; i < kTasks; ++i) {
    const auto& entry = entries[i];
    ASSERT_EQ(entry.id, ids[i]) << i;
    EXPECT_EQ(entry.start_time, at(kNowMs + i));
    EXPECT_EQ(entry.end_time, at(kNowMs + 10 * kYearMs));
    EXPECT_EQ(entry.task_interval, 1 + i % 7);
    EXPECT_EQ(entry.max_attempt, 1 + i % 5);
    EXPECT_EQ(entry.paused, i % 11 == 0) << i;
    if (i == 4) {
      EXPECT_EQ(entry.consecutive_failures, 2);
      EXPECT_EQ(entry.next_run_at, at(kNowMs + 4000));  // the last run's plan
    } else {
      EXPECT_EQ(entry.consecutive_failures, 0);
      EXPECT_EQ(entry.next_run_at,
                i % 3 == 0 ? std::optional<TimePoint>(at(kNowMs + 10 * i)) : std::nullopt);
    }
  }
  // Both sides of the page bound, and the end.
  auto exact = must(this->store().load_schedule(ids[kTasks - 11], 10), "last ten");
  EXPECT_EQ(exact.items.size(), 10u);
  EXPECT_FALSE(exact.next_after.has_value());
  auto short_by_one = must(this->store().load_schedule(ids[kTasks - 11], 9), "nine of ten");
  EXPECT_EQ(short_by_one.next_after, std::optional<std::int64_t>(ids[kTasks - 2]));
  auto beyond = must(this->store().load_schedule(ids.back(), 10), "beyond");
  EXPECT_TRUE(beyond.items.empty());
  EXPECT_FALSE(beyond.next_after.has_value());
  EXPECT_EQ(outcome(this->store().load_schedule(std::nullopt, 0)), "invalid");
  // Deleted tasks leave the schedule.
  must(this->store().delete_task(ids[0]), "delete_task");
  EXPECT_EQ(must(this->store().load_schedule(std::nullopt, 1), "first").items.front().id, ids[1]);
}

// --- engine: recording runs -------------------------------------------------------------------

TYPED_TEST(StoreContract, RecordRunsHandlesEveryOutcomeInOneBatch) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto doomed = this->add_task(alice.id, "doomed");
  must(this->store().delete_task(doomed.id), "delete_task");
  const std::string body = R"([ {"id": "bdc3ab3979cb", "name_first": "Zoë"} ])";

  auto success = run_of(task.id, kNowMs, JobStatus::kSucceeded, body);
  success.job.records = 1;
  auto failure = run_of(task.id, kNowMs + 2000, JobStatus::kFailed);
  failure.job.attempt = 1;
  const auto skipped = run_of(task.id, kNowMs + 4000, JobStatus::kSkipped);
  // The same due time as the success: a second run of (task, due time) is dropped whole, even
  // with another body.
  const auto duplicate = run_of(task.id, kNowMs, JobStatus::kSucceeded, "[\"other\"]");
  const auto orphan = run_of(doomed.id, kNowMs, JobStatus::kSucceeded, body);

  const auto recorded = this->record({success, failure, skipped, duplicate, orphan});

  EXPECT_GT(recorded[0].job_id, 0);
  ASSERT_TRUE(recorded[0].data_id.has_value());
  EXPECT_TRUE(recorded[0].changed);
  EXPECT_FALSE(recorded[0].task_missing);
  EXPECT_GT(recorded[1].job_id, recorded[0].job_id);
  EXPECT_EQ(recorded[1].data_id, std::nullopt);
  EXPECT_FALSE(recorded[1].changed);
  EXPECT_GT(recorded[2].job_id, recorded[1].job_id);
  EXPECT_EQ(recorded[2].data_id, std::nullopt);
  EXPECT_EQ(recorded[3].job_id, 0);
  EXPECT_EQ(recorded[3].data_id, std::nullopt);
  EXPECT_FALSE(recorded[3].task_missing);
  EXPECT_EQ(recorded[4].job_id, 0);
  EXPECT_EQ(recorded[4].data_id, std::nullopt);
  EXPECT_TRUE(recorded[4].task_missing);

  // Every field of the jobs reads back.
  const auto ok = must(this->store().get_job(recorded[0].job_id), "get_job success");
  EXPECT_EQ(ok.task_id, task.id);
  EXPECT_EQ(ok.attempt, 1);
  EXPECT_EQ(ok.scheduled_at, at(kNowMs));
  EXPECT_EQ(ok.started_at, at(kNowMs + 5));
  EXPECT_EQ(ok.finished_at, at(kNowMs + 105));
  EXPECT_EQ(ok.duration_ms, 100);
  EXPECT_EQ(ok.status, JobStatus::kSucceeded);
  EXPECT_EQ(ok.http_status, 200);
  EXPECT_EQ(ok.error, std::nullopt);
  EXPECT_EQ(ok.response_bytes, static_cast<std::int64_t>(body.size()));
  EXPECT_EQ(ok.records, 1);
  EXPECT_EQ(ok.changed, true);
  EXPECT_EQ(ok.worker_id, "worker-1");
  EXPECT_EQ(ok.data_id, recorded[0].data_id);
  const auto failed = must(this->store().get_job(recorded[1].job_id), "get_job failure");
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.http_status, 503);
  EXPECT_EQ(failed.error, "HTTP 503 Service Unavailable");
  EXPECT_EQ(failed.changed, std::nullopt);
  EXPECT_EQ(failed.data_id, std::nullopt);
  EXPECT_EQ(failed.records, std::nullopt);
  const auto skip = must(this->store().get_job(recorded[2].job_id), "get_job skipped");
  EXPECT_EQ(skip.status, JobStatus::kSkipped);
  EXPECT_EQ(skip.started_at, std::nullopt);
  EXPECT_EQ(skip.duration_ms, std::nullopt);
  EXPECT_EQ(skip.worker_id, std::nullopt);

  // The document, as sent (whitespace and all).
  const auto data = must(this->store().get_data(*recorded[0].data_id), "get_data");
  EXPECT_EQ(data.id, *recorded[0].data_id);
  EXPECT_EQ(data.task_id, task.id);
  EXPECT_EQ(data.body, body);
  EXPECT_EQ(data.content_hash, "sha256-of:" + body);
  EXPECT_EQ(data.bytes, static_cast<std::int64_t>(body.size()));
  EXPECT_EQ(data.records, 1);

  // The task's summary is the failure's (the skipped run does not touch it), but its data is
  // still the last success's.
  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.last.job_id, recorded[1].job_id);
  EXPECT_EQ(read.last.status, "failed");
  EXPECT_EQ(read.last.at, at(kNowMs + 2005));
  EXPECT_EQ(read.last.duration_ms, 100);
  EXPECT_EQ(read.last.error, "HTTP 503 Service Unavailable");
  EXPECT_EQ(read.last.data_id, recorded[0].data_id);
  EXPECT_EQ(read.consecutive_failures, 1);
  EXPECT_EQ(read.next_run_at, at(kNowMs + 4000));
  EXPECT_EQ(read.updated_at, at(kNowMs));  // user edits only
  EXPECT_EQ(read.spec, task.spec);

  EXPECT_EQ(job_ids_of(this->all_jobs(task.id)),
            (std::vector<JobId>{recorded[2].job_id, recorded[1].job_id, recorded[0].job_id}));
  EXPECT_TRUE(this->all_jobs(doomed.id).empty());

  // The duplicate's document was not kept: that body is new the next time it comes.
  const auto later =
      this->record(run_of(task.id, kNowMs + 6000, JobStatus::kSucceeded, "[\"other\"]"));
  EXPECT_TRUE(later.changed);
  EXPECT_NE(later.data_id, recorded[0].data_id);
  // And a duplicate alone, in its own batch, changes nothing either.
  const auto again = this->record(run_of(task.id, kNowMs + 2000, JobStatus::kSucceeded));
  EXPECT_EQ(again.job_id, 0);
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").last.job_id, later.job_id);

  EXPECT_TRUE(must(this->store().record_runs({}), "empty batch").empty());
}

// The same outcomes with each run of the batch on a task of its own (the PostgreSQL store
// writes such a batch as one set-based statement, a batch with a task twice run by run).
TYPED_TEST(StoreContract, ABatchOfDistinctTasksHandlesEveryOutcome) {
  const auto alice = this->add_user("alice");
  std::vector<Task> t;
  for (int i = 0; i < 8; ++i) t.push_back(this->add_task(alice.id, "t" + std::to_string(i)));
  must(this->store().delete_task(t[6].id), "delete_task");
  must(this->store().set_paused(t[7].id, true, at(kNowMs)), "pause");
  // Earlier batches: t1 and t2 fetched [1], t3 failed once, t5 ran at kNowMs.
  const auto earlier = this->record({run_of(t[1].id, kNowMs - 2000, JobStatus::kSucceeded, "[1]"),
                                     run_of(t[2].id, kNowMs - 2000, JobStatus::kSucceeded, "[1]"),
                                     run_of(t[3].id, kNowMs - 2000, JobStatus::kFailed)});
  const auto before = this->record(run_of(t[5].id, kNowMs, JobStatus::kSucceeded, "[5]"));

  // Quotes, backslashes, braces, commas, NULL-looking text and non-ASCII, as sent.
  const std::string body = "[ {\"a\": \"q\\\"uote\\\\ {x}, NULL\", \"b\": \"Zo\u00eb \u2603\"} ]\n";
  auto fresh = run_of(t[0].id, kNowMs, JobStatus::kSucceeded, body);
  fresh.job.records = 1;
  const auto recorded = this->record(
      {fresh, run_of(t[1].id, kNowMs, JobStatus::kSucceeded, "[1]"),
       run_of(t[2].id, kNowMs, JobStatus::kSucceeded, "[2]"),
       run_of(t[3].id, kNowMs, JobStatus::kTimedOut), run_of(t[4].id, kNowMs, JobStatus::kSkipped),
       run_of(t[5].id, kNowMs, JobStatus::kSucceeded, "[other]"),  // duplicate
       run_of(t[6].id, kNowMs, JobStatus::kSucceeded, "[6]"),      // task deleted
       run_of(t[7].id, kNowMs, JobStatus::kSucceeded, "[7]")});    // task paused

  // Recorded ones get ids in the batch's order.
  for (const std::size_t i : {0u, 1u, 2u, 3u, 4u, 7u}) {
    EXPECT_GT(recorded[i].job_id, before.job_id) << i;
    EXPECT_FALSE(recorded[i].task_missing) << i;
  }
  EXPECT_LT(recorded[0].job_id, recorded[1].job_id);
  EXPECT_LT(recorded[4].job_id, recorded[7].job_id);
  // A new document; the same one as the task's last (stored once, not changed); another.
  ASSERT_TRUE(recorded[0].data_id.has_value());
  EXPECT_TRUE(recorded[0].changed);
  const auto data = must(this->store().get_data(*recorded[0].data_id), "get_data");
  EXPECT_EQ(data.body, body);
  EXPECT_EQ(data.task_id, t[0].id);
  EXPECT_EQ(data.records, 1);
  EXPECT_EQ(data.bytes, static_cast<std::int64_t>(body.size()));
  EXPECT_EQ(recorded[1].data_id, earlier[0].data_id);
  EXPECT_FALSE(recorded[1].changed);
  EXPECT_EQ(must(this->store().get_job(recorded[1].job_id), "get_job").changed, false);
  ASSERT_TRUE(recorded[2].data_id.has_value());
  EXPECT_NE(recorded[2].data_id, earlier[1].data_id);
  EXPECT_TRUE(recorded[2].changed);
  // No document for a timeout or a skip.
  EXPECT_EQ(recorded[3].data_id, std::nullopt);
  EXPECT_FALSE(recorded[3].changed);
  EXPECT_EQ(must(this->store().get_job(recorded[3].job_id), "get_job").changed, std::nullopt);
  EXPECT_EQ(recorded[4].data_id, std::nullopt);
  // The duplicate of (t5, kNowMs) is dropped whole: no job, no document stored.
  EXPECT_EQ(recorded[5].job_id, 0);
  EXPECT_EQ(recorded[5].data_id, std::nullopt);
  EXPECT_FALSE(recorded[5].task_missing);
  EXPECT_EQ(this->all_jobs(t[5].id).size(), 1u);
  EXPECT_EQ(this->all_jobs(t[5].id).front().data_id, before.data_id);
  // The deleted task's run is an outcome, not an error.
  EXPECT_EQ(recorded[6].job_id, 0);
  EXPECT_TRUE(recorded[6].task_missing);

  // The tasks' run state.
  const auto task0 = must(this->store().get_task(t[0].id), "get_task");
  EXPECT_EQ(task0.last.job_id, recorded[0].job_id);
  EXPECT_EQ(task0.last.status, "succeeded");
  EXPECT_EQ(task0.last.at, at(kNowMs + 5));
  EXPECT_EQ(task0.last.data_id, recorded[0].data_id);
  EXPECT_EQ(task0.next_run_at, at(kNowMs + 2000));
  EXPECT_EQ(must(this->store().get_task(t[2].id), "get_task").last.data_id, recorded[2].data_id);
  const auto task3 = must(this->store().get_task(t[3].id), "get_task");
  EXPECT_EQ(task3.consecutive_failures, 2);  // failed, then timed out
  EXPECT_EQ(task3.last.status, "timed_out");
  EXPECT_EQ(task3.last.error, "timed out after 30 s");
  const auto task4 = must(this->store().get_task(t[4].id), "get_task");
  EXPECT_EQ(task4.last.job_id, std::nullopt);  // a skipped run leaves the summary alone
  EXPECT_EQ(this->all_jobs(t[4].id).size(), 1u);
  const auto task5 = must(this->store().get_task(t[5].id), "get_task");
  EXPECT_EQ(task5.last.job_id, before.job_id);
  EXPECT_EQ(task5.last.data_id, before.data_id);
  const auto task7 = must(this->store().get_task(t[7].id), "get_task");
  EXPECT_EQ(task7.last.status, "succeeded");
  EXPECT_EQ(task7.next_run_at, std::nullopt);
}

TYPED_TEST(StoreContract, ABatchIsWrittenWholeOrNotAtAll) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  auto bad = run_of(task.id, kNowMs + 2000, JobStatus::kFailed);
  bad.job.attempt = 0;  // attempts count from 1
  auto failed =
      this->store().record_runs({run_of(task.id, kNowMs, JobStatus::kSucceeded, "[1]"), bad,
                                 run_of(task.id, kNowMs + 4000, JobStatus::kFailed)});
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().code, ErrorCode::kUnavailable);  // not worth retrying as is
  EXPECT_TRUE(this->all_jobs(task.id).empty());
  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.last, LastRun{});
  EXPECT_EQ(read.consecutive_failures, 0);
  // The good records alone go through, and the payload is new: the failed batch left nothing.
  const auto ok = this->record(run_of(task.id, kNowMs, JobStatus::kSucceeded, "[1]"));
  EXPECT_GT(ok.job_id, 0);
  EXPECT_TRUE(ok.changed);
}

TYPED_TEST(StoreContract, IdenticalPayloadsOfATaskAreStoredOnce) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto other = this->add_task(alice.id, "other");
  const std::string x = R"({"attendees": [1, 2, 3]})";
  const std::string y = R"({"attendees": [1, 2]})";

  const auto first = this->record(run_of(task.id, kNowMs, JobStatus::kSucceeded, x));
  const auto second = this->record(run_of(task.id, kNowMs + 2000, JobStatus::kSucceeded, x));
  ASSERT_TRUE(first.data_id.has_value());
  EXPECT_TRUE(first.changed);
  EXPECT_EQ(second.data_id, first.data_id);
  EXPECT_FALSE(second.changed);
  EXPECT_NE(second.job_id, first.job_id);
  const auto job = must(this->store().get_job(second.job_id), "get_job");
  EXPECT_EQ(job.changed, false);
  EXPECT_EQ(job.data_id, first.data_id);

  // A new payload is a new row; the same one twice in one batch is one row.
  const auto batch = this->record({run_of(task.id, kNowMs + 4000, JobStatus::kSucceeded, y),
                                   run_of(task.id, kNowMs + 6000, JobStatus::kSucceeded, y)});
  ASSERT_TRUE(batch[0].data_id.has_value());
  EXPECT_NE(batch[0].data_id, first.data_id);
  EXPECT_TRUE(batch[0].changed);
  EXPECT_EQ(batch[1].data_id, batch[0].data_id);
  EXPECT_FALSE(batch[1].changed);
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").last.data_id, batch[0].data_id);

  // Deduplication is per task: another task's identical payload has its own row.
  const auto elsewhere = this->record(run_of(other.id, kNowMs, JobStatus::kSucceeded, x));
  ASSERT_TRUE(elsewhere.data_id.has_value());
  EXPECT_NE(elsewhere.data_id, first.data_id);
  EXPECT_TRUE(elsewhere.changed);
  EXPECT_EQ(must(this->store().get_data(*elsewhere.data_id), "get_data").task_id, other.id);
  EXPECT_EQ(must(this->store().get_data(*first.data_id), "get_data").body, x);
}

TYPED_TEST(StoreContract, ConsecutiveFailuresCountFailedTriesAndResetOnSuccess) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);  // max_attempt 3
  const auto failures = [&] {
    return must(this->store().get_task(task.id), "get_task").consecutive_failures;
  };
  std::int64_t due = kNowMs;
  const auto run = [&](JobStatus status) {
    this->record(run_of(task.id, due, status));
    due += 2000;
  };
  run(JobStatus::kFailed);
  EXPECT_EQ(failures(), 1);
  run(JobStatus::kTimedOut);
  EXPECT_EQ(failures(), 2);
  run(JobStatus::kSkipped);
  EXPECT_EQ(failures(), 2);
  EXPECT_FALSE(must(this->store().get_task(task.id), "get_task").suspended());
  run(JobStatus::kFailed);
  EXPECT_EQ(failures(), 3);
  EXPECT_TRUE(must(this->store().get_task(task.id), "get_task").suspended());
  run(JobStatus::kSucceeded);
  EXPECT_EQ(failures(), 0);
  run(JobStatus::kFailed);
  EXPECT_EQ(failures(), 1);
  // In one batch too: the increments add up, a success in the middle resets.
  std::vector<RunRecord> batch;
  for (const auto status : {JobStatus::kFailed, JobStatus::kFailed, JobStatus::kSucceeded,
                            JobStatus::kTimedOut, JobStatus::kFailed}) {
    batch.push_back(run_of(task.id, due, status));
    due += 2000;
  }
  this->record(batch);
  EXPECT_EQ(failures(), 2);
  must(this->store().reset_attempts(task.id, at(kNowMs)), "reset_attempts");
  EXPECT_EQ(failures(), 0);
  // A retry records its attempt number; a plan of "no next run" (suspension) is persisted.
  auto retry = run_of(task.id, due, JobStatus::kFailed);
  retry.job.attempt = 3;
  retry.next_run_at.reset();
  const auto recorded = this->record(retry);
  EXPECT_EQ(must(this->store().get_job(recorded.job_id), "get_job").attempt, 3);
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").next_run_at, std::nullopt);
}

TYPED_TEST(StoreContract, RecordsAThousandRunsInOneCall) {
  const auto alice = this->add_user("alice");
  std::vector<TaskId> tasks;
  for (int t = 0; t < 10; ++t)
    tasks.push_back(this->add_task(alice.id, "t" + std::to_string(t)).id);
  std::vector<RunRecord> runs;
  for (int i = 0; i < 100; ++i) {
    for (int t = 0; t < 10; ++t) {
      const auto status = (i + t) % 4 == 0 ? JobStatus::kFailed : JobStatus::kSucceeded;
      runs.push_back(
          run_of(tasks[t], kNowMs + 2000 * i, status, "[" + std::to_string(i % 5) + "]"));
    }
  }
  const auto recorded = this->record(runs);
  std::set<JobId> ids;
  for (const auto& r : recorded) {
    EXPECT_FALSE(r.task_missing);
    ids.insert(r.job_id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(ids.count(0), 0u);
  // Five distinct payloads per task, each stored once; as the payload differs from one run to
  // the next, every success reports a change.
  std::set<DataId> data_ids;
  int changed = 0;
  int succeeded = 0;
  for (std::size_t i = 0; i < recorded.size(); ++i) {
    if (recorded[i].data_id) data_ids.insert(*recorded[i].data_id);
    changed += recorded[i].changed ? 1 : 0;
    succeeded += runs[i].job.status == JobStatus::kSucceeded ? 1 : 0;
  }
  EXPECT_EQ(data_ids.size(), 50u);
  EXPECT_EQ(changed, succeeded);
  for (int t = 0; t < 10; ++t) {
    EXPECT_EQ(this->all_jobs(tasks[t]).size(), 100u);
    const auto task = must(this->store().get_task(tasks[t]), "get_task");
    EXPECT_EQ(task.last.job_id, recorded[990 + t].job_id);
    EXPECT_EQ(task.next_run_at, at(kNowMs + 2000 * 99 + 2000));
  }
}

// --- engine: reading jobs and data ------------------------------------------------------------

TYPED_TEST(StoreContract, ListJobsNewestFirstPagedAndFilteredByStatus) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto other = this->add_task(alice.id, "other");
  std::vector<JobId> all;     // oldest first
  std::vector<JobId> failed;  // oldest first
  for (int i = 0; i < 9; ++i) {
    const auto status = i % 3 == 1 ? JobStatus::kFailed : JobStatus::kSucceeded;
    const auto r = this->record(run_of(task.id, kNowMs + 2000 * i, status));
    all.push_back(r.job_id);
    if (status == JobStatus::kFailed) failed.push_back(r.job_id);
    this->record(run_of(other.id, kNowMs + 2000 * i, JobStatus::kFailed));  // interleaved
  }
  const std::vector<JobId> newest_first(all.rbegin(), all.rend());

  JobQuery query{task.id, std::nullopt, std::nullopt, 4};
  auto page1 = must(this->store().list_jobs(query), "page 1");
  EXPECT_EQ(job_ids_of(page1.items), (std::vector<JobId>{newest_first[0], newest_first[1],
                                                         newest_first[2], newest_first[3]}));
  EXPECT_EQ(page1.next_after, std::optional<std::int64_t>(newest_first[3]));
  query.before = page1.next_after;
  auto page2 = must(this->store().list_jobs(query), "page 2");
  EXPECT_EQ(job_ids_of(page2.items), (std::vector<JobId>{newest_first[4], newest_first[5],
                                                         newest_first[6], newest_first[7]}));
  query.before = page2.next_after;
  auto page3 = must(this->store().list_jobs(query), "page 3");
  EXPECT_EQ(job_ids_of(page3.items), (std::vector<JobId>{newest_first[8]}));
  EXPECT_FALSE(page3.next_after.has_value());
  for (const auto& job : page1.items) EXPECT_EQ(job.task_id, task.id);

  // Both sides of "more rows exist".
  EXPECT_FALSE(must(this->store().list_jobs({task.id, std::nullopt, std::nullopt, 9}), "9")
                   .next_after.has_value());
  EXPECT_TRUE(must(this->store().list_jobs({task.id, std::nullopt, std::nullopt, 8}), "8")
                  .next_after.has_value());

  // The status filter, paged with the same cursor.
  auto f1 = must(this->store().list_jobs({task.id, JobStatus::kFailed, std::nullopt, 2}), "f1");
  EXPECT_EQ(job_ids_of(f1.items), (std::vector<JobId>{failed[2], failed[1]}));
  ASSERT_TRUE(f1.next_after.has_value());
  auto f2 = must(this->store().list_jobs({task.id, JobStatus::kFailed, f1.next_after, 2}), "f2");
  EXPECT_EQ(job_ids_of(f2.items), (std::vector<JobId>{failed[0]}));
  EXPECT_FALSE(f2.next_after.has_value());
  for (const auto& job : this->all_jobs(task.id, JobStatus::kSucceeded)) {
    EXPECT_EQ(job.status, JobStatus::kSucceeded);
  }
  EXPECT_EQ(this->all_jobs(task.id, JobStatus::kSucceeded).size(), 6u);
  EXPECT_TRUE(this->all_jobs(task.id, JobStatus::kTimedOut).empty());

  // `before` is exclusive; an unknown task has no jobs; a zero limit is refused.
  auto below = must(this->store().list_jobs({task.id, std::nullopt, all[1], 10}), "below");
  EXPECT_EQ(job_ids_of(below.items), std::vector<JobId>{all[0]});
  EXPECT_TRUE(
      must(this->store().list_jobs({task.id, std::nullopt, all[0], 10}), "none").items.empty());
  EXPECT_TRUE(
      must(this->store().list_jobs({other.id + 1000, std::nullopt, std::nullopt, 10}), "unknown")
          .items.empty());
  EXPECT_EQ(outcome(this->store().list_jobs({task.id, std::nullopt, std::nullopt, 0})), "invalid");
}

TYPED_TEST(StoreContract, UnknownJobAndDataAreNotFound) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto r = this->record(run_of(task.id, kNowMs, JobStatus::kSucceeded, "{}"));
  ASSERT_TRUE(r.data_id.has_value());
  EXPECT_EQ(outcome(this->store().get_job(r.job_id)), "ok");
  EXPECT_EQ(outcome(this->store().get_data(*r.data_id)), "ok");
  EXPECT_EQ(outcome(this->store().get_job(r.job_id + 1000)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*r.data_id + 1000)), "not_found");
  EXPECT_EQ(outcome(this->store().get_job(0)), "not_found");
  // A deleted task takes its jobs and data with it.
  must(this->store().delete_task(task.id), "delete_task");
  EXPECT_EQ(outcome(this->store().get_job(r.job_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*r.data_id)), "not_found");
}

// --- engine: retention ------------------------------------------------------------------------

TYPED_TEST(StoreContract, PruneKeepsTheNewestJobsOfEachTask) {
  const auto alice = this->add_user("alice");
  const auto busy = this->add_task(alice.id, "busy");
  const auto quiet = this->add_task(alice.id, "quiet");
  std::vector<RecordedRun> busy_runs;
  for (int i = 0; i < 10; ++i) {
    busy_runs.push_back(this->record(
        run_of(busy.id, kNowMs + 2000 * i, JobStatus::kSucceeded, "[" + std::to_string(i) + "]")));
    if (i < 3) this->record(run_of(quiet.id, kNowMs + 2000 * i, JobStatus::kFailed));
  }
  // Nothing to do while under the count.
  EXPECT_EQ(must(this->store().prune({10, at(0), 500}), "prune at the count"), 0);

  RetentionPolicy policy{4, at(0), 3};
  // Six jobs go, each with the one document only it referenced.
  EXPECT_EQ(this->prune_all(policy), 12);
  std::vector<JobId> newest;
  for (int i = 9; i >= 6; --i) newest.push_back(busy_runs[i].job_id);
  EXPECT_EQ(job_ids_of(this->all_jobs(busy.id)), newest);
  EXPECT_EQ(this->all_jobs(quiet.id).size(), 3u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(outcome(this->store().get_data(*busy_runs[i].data_id)), i < 6 ? "not_found" : "ok")
        << i;
  }
  // Pruning again finds nothing; new runs are counted from what is left.
  EXPECT_EQ(must(this->store().prune(policy), "prune again"), 0);
  this->record(run_of(busy.id, kNowMs + 2000 * 10, JobStatus::kFailed));
  EXPECT_EQ(this->prune_all(policy), 2);  // run 6's job and document
  EXPECT_EQ(outcome(this->store().get_data(*busy_runs[6].data_id)), "not_found");
  EXPECT_EQ(this->all_jobs(busy.id).size(), 4u);
  EXPECT_EQ(this->all_jobs(busy.id).back().id, busy_runs[7].job_id);
  // jobs_per_task 0 keeps none; a negative count or a zero batch is refused.
  EXPECT_EQ(outcome(this->store().prune({-1, at(0), 10})), "invalid");
  EXPECT_EQ(outcome(this->store().prune({4, at(0), 0})), "invalid");
  this->prune_all({0, at(0), 2});
  EXPECT_TRUE(this->all_jobs(busy.id).empty());
  EXPECT_TRUE(this->all_jobs(quiet.id).empty());
  // The last successful run's document stays: the task's status shows it.
  const auto task = must(this->store().get_task(busy.id), "get_task");
  ASSERT_TRUE(task.last.data_id.has_value());
  EXPECT_EQ(must(this->store().get_data(*task.last.data_id), "last data").body, "[9]");
}

TYPED_TEST(StoreContract, PruneDeletesJobsThatFinishedBeforeTheCutoff) {
  const auto alice = this->add_user("alice");
  const auto a = this->add_task(alice.id, "a");
  const auto b = this->add_task(alice.id, "b");
  const std::int64_t hour = 3'600'000;
  std::vector<RecordedRun> runs;  // finished at kNowMs + 105 + i hours, alternating tasks
  for (int i = 0; i < 8; ++i) {
    runs.push_back(this->record(run_of(i % 2 ? b.id : a.id, kNowMs + i * hour,
                                       i == 5 ? JobStatus::kFailed : JobStatus::kSucceeded,
                                       "[" + std::to_string(i) + "]")));
  }
  // The cutoff is exclusive: the job that finished exactly at it stays.
  const auto cutoff = at(kNowMs + 3 * hour + 105);
  RetentionPolicy policy{1000, cutoff, 2};
  EXPECT_EQ(this->prune_all(policy), 3 + 3);  // three jobs and their documents
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(outcome(this->store().get_job(runs[i].job_id)), i < 3 ? "not_found" : "ok") << i;
  }
  EXPECT_EQ(outcome(this->store().get_data(*runs[0].data_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*runs[1].data_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*runs[2].data_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*runs[3].data_id)), "ok");
  // One millisecond later, the next one goes too, with its document.
  EXPECT_EQ(this->prune_all({1000, at(kNowMs + 3 * hour + 106), 500}), 2);
  EXPECT_EQ(outcome(this->store().get_job(runs[3].job_id)), "not_found");
  // b's last successful document (run 7's) survives even when every job is gone.
  EXPECT_GT(this->prune_all({1000, at(kNowMs + 100 * hour), 500}), 0);
  EXPECT_TRUE(this->all_jobs(a.id).empty());
  EXPECT_TRUE(this->all_jobs(b.id).empty());
  EXPECT_EQ(must(this->store().get_data(*runs[7].data_id), "b's last").body, "[7]");
  EXPECT_EQ(must(this->store().get_data(*runs[6].data_id), "a's last").body, "[6]");
  EXPECT_EQ(outcome(this->store().get_data(*runs[4].data_id)), "not_found");
}

TYPED_TEST(StoreContract, PruneRemovesDocumentsNothingReferencesAnyMore) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto first = this->record(run_of(task.id, kNowMs, JobStatus::kSucceeded, "[\"v1\"]"));
  for (int i = 1; i <= 3; ++i) this->record(run_of(task.id, kNowMs + 2000 * i, JobStatus::kFailed));
  // The success's job is pruned, but its document is the task's latest: kept.
  EXPECT_EQ(this->prune_all({2, at(0), 10}), 2);
  EXPECT_EQ(outcome(this->store().get_data(*first.data_id)), "ok");
  // A new success moves last_data_id on: the old document is now referenced by nothing.
  const auto second =
      this->record(run_of(task.id, kNowMs + 8000, JobStatus::kSucceeded, "[\"v2\"]"));
  EXPECT_EQ(this->prune_all({1000, at(0), 10}), 1);
  EXPECT_EQ(outcome(this->store().get_data(*first.data_id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_data(*second.data_id)), "ok");
  // A document still referenced by a job stays even when it is no longer the latest.
  const auto third =
      this->record(run_of(task.id, kNowMs + 10000, JobStatus::kSucceeded, "[\"v3\"]"));
  EXPECT_EQ(this->prune_all({1000, at(0), 10}), 0);
  EXPECT_EQ(outcome(this->store().get_data(*second.data_id)), "ok");
  EXPECT_EQ(outcome(this->store().get_data(*third.data_id)), "ok");
  // And a payload seen again after its document was pruned is new again.
  const auto again =
      this->record(run_of(task.id, kNowMs + 12000, JobStatus::kSucceeded, "[\"v1\"]"));
  EXPECT_TRUE(again.changed);
}

TYPED_TEST(StoreContract, PruneSaysNothingIsLeftOnlyWhenNothingIsLeft) {
  const auto alice = this->add_user("alice");
  const auto early = this->add_task(alice.id, "early");
  const auto late = this->add_task(alice.id, "late");
  std::vector<RunRecord> runs;
  for (int i = 0; i < 5; ++i)
    runs.push_back(run_of(late.id, kNowMs + 2000 * i, JobStatus::kFailed));
  this->record(runs);
  // The batch runs out exactly on the later task.
  EXPECT_EQ(must(this->store().prune({2, at(0), 3}), "prune"), 3);
  // Meanwhile an earlier task goes over the count: the next call must find it, wherever the
  // previous one stopped.
  runs.clear();
  for (int i = 0; i < 3; ++i)
    runs.push_back(run_of(early.id, kNowMs + 2000 * i, JobStatus::kFailed));
  this->record(runs);
  EXPECT_EQ(must(this->store().prune({2, at(0), 3}), "prune"), 1);
  EXPECT_EQ(must(this->store().prune({2, at(0), 3}), "prune"), 0);
  EXPECT_EQ(this->all_jobs(early.id).size(), 2u);
  EXPECT_EQ(this->all_jobs(late.id).size(), 2u);
}

TYPED_TEST(StoreContract, PruneWorksThroughManyTasksInSmallBatches) {
  const auto alice = this->add_user("alice");
  std::vector<TaskId> tasks;
  std::vector<RunRecord> runs;
  for (int t = 0; t < 120; ++t) {
    tasks.push_back(this->add_task(alice.id, "t" + std::to_string(t)).id);
    for (int i = 0; i < 3 + t % 4; ++i) {
      runs.push_back(run_of(tasks.back(), kNowMs + 2000 * i, JobStatus::kFailed));
    }
  }
  this->record(runs);
  // Tasks with 3, 4, 5, 6 jobs keep 3: 0 + 1 + 2 + 3 per four tasks.
  EXPECT_EQ(this->prune_all({3, at(0), 7}), 30 * 6);
  for (const auto task : tasks) EXPECT_EQ(this->all_jobs(task).size(), 3u) << task;
}

}  // namespace
}  // namespace fetchd

namespace fetchd {
namespace {

TYPED_TEST(StoreContract, SuspendedTasksAreCountedAtMaxAttempt) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);  // max_attempt 3
  this->add_task(alice.id, "healthy");
  for (int i = 0; i < 2; ++i)
    this->record({run_of(task.id, kNowMs + i * 2000, JobStatus::kFailed)});
  EXPECT_EQ(must(this->store().count_suspended_tasks(), "count"), 0);
  this->record({run_of(task.id, kNowMs + 4000, JobStatus::kFailed)});
  EXPECT_EQ(must(this->store().count_suspended_tasks(), "count"), 1);
  must(this->store().reset_attempts(task.id, at(kNowMs + 5000)), "reset");
  EXPECT_EQ(must(this->store().count_suspended_tasks(), "count"), 0);
}

TYPED_TEST(StoreContract, ARunFinishingAfterAPauseLeavesNoNextRun) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  must(this->store().set_paused(task.id, true, at(kNowMs)), "pause");
  must(this->store().set_next_run(task.id, std::nullopt), "set_next_run");
  this->record({run_of(task.id, kNowMs, JobStatus::kSucceeded)});  // plans kNowMs + 2000
  const auto after = must(this->store().get_task(task.id), "get_task");
  EXPECT_TRUE(after.paused);
  EXPECT_EQ(after.next_run_at, std::nullopt);
  EXPECT_EQ(after.last.status, "succeeded");
}

}  // namespace
}  // namespace fetchd

namespace fetchd {
namespace {

TYPED_TEST(StoreContract, ChangedComparesWithThePreviousSuccessfulRun) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto a1 = this->record({run_of(task.id, kNowMs, JobStatus::kSucceeded, "[1]")});
  const auto a2 = this->record({run_of(task.id, kNowMs + 2000, JobStatus::kSucceeded, "[1]")});
  const auto b = this->record({run_of(task.id, kNowMs + 4000, JobStatus::kSucceeded, "[2]")});
  const auto a3 = this->record({run_of(task.id, kNowMs + 6000, JobStatus::kSucceeded, "[1]")});
  EXPECT_TRUE(a1.changed);
  EXPECT_FALSE(a2.changed);
  EXPECT_EQ(a2.data_id, a1.data_id);
  EXPECT_TRUE(b.changed);
  EXPECT_TRUE(a3.changed);            // differs from the run before it ...
  EXPECT_EQ(a3.data_id, a1.data_id);  // ... but the document is stored once
  EXPECT_EQ(must(this->store().get_job(a3.job_id), "get_job").changed, true);
}

}  // namespace
}  // namespace fetchd
