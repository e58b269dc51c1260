// What the PostgreSQL store promises beyond the Store contract: URL recognition, a concurrent
// start migrating once (advisory lock), a lost connection retried once, an unreachable
// database reported as kUnavailable. Compiled into contract_pg_tests only (it needs the server
// postgres_backend.hpp starts); in contract_tests this file is empty.

#ifdef FETCHD_CONTRACT_POSTGRES

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "postgres_backend.hpp"
#include "store/postgres/postgres_store.hpp"

namespace fetchd::pg_testing {
namespace {

TEST(PostgresUrl, RecognisesBothSchemesCaseInsensitively) {
  EXPECT_TRUE(is_postgres_url("postgres://fetchd@127.0.0.1:5432/fetchd"));
  EXPECT_TRUE(is_postgres_url("postgresql://fetchd@db/fetchd"));
  EXPECT_TRUE(is_postgres_url("PostgreSQL://db/fetchd"));
  EXPECT_FALSE(is_postgres_url("postgres://"));  // nothing after the scheme
  EXPECT_FALSE(is_postgres_url("postgres:/db"));
  EXPECT_FALSE(is_postgres_url("sqlite://./fetchd.db"));
  EXPECT_FALSE(is_postgres_url("redis://127.0.0.1:6379/0"));
  EXPECT_FALSE(is_postgres_url(""));
}

TEST(PostgresOpen, NonPostgresUrlIsInvalid) {
  auto store = open_postgres_store("sqlite://./fetchd.db");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInvalid);
}

TEST(PostgresOpen, NoServerIsUnavailable) {
  const int port = free_loopback_port();
  ASSERT_NE(port, 0);
  auto store =
      open_postgres_store("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/none");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(store.error().message.find("cannot connect"), std::string::npos);
}

// A libpq connection of the test's own, outside the store: to change the schema behind the
// store's back or to hold a transaction open.
class RawConnection {
 public:
  explicit RawConnection(const std::string& url) : conn_(PQconnectdb(url.c_str()), &PQfinish) {}
  // "" when the statement succeeded, else the server's message.
  std::string exec(const std::string& sql) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) return PQerrorMessage(conn_.get());
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn_.get(), sql.c_str()),
                                                         &PQclear);
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return "";
    return PQresultErrorMessage(result.get());
  }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = backend_.skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
    ASSERT_FALSE(backend_.database.empty()) << backend_.error;
  }
  std::string url() const { return postgres_server().url(backend_.database); }

  static Result<Task> add_task(Store& store, UserId owner, const std::string& name) {
    TaskSpec spec;
    spec.name = name;
    spec.url = "https://example.com/feed.json";
    spec.parameters = nlohmann::json::object();
    spec.start_time = from_unix_ms(0);
    spec.end_time = from_unix_ms(1'000'000'000);
    spec.task_interval = 1;
    spec.max_attempt = 3;
    return store.create_task(owner, spec, from_unix_ms(0));
  }

  PostgresBackend backend_;
};

TEST_F(PostgresStoreTest, ConcurrentMigrationsApplyEachMigrationOnce) {
  constexpr int kProcesses = 4;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kProcesses; ++i) {
    auto store = open_postgres_store(url(), {.pool_size = 1});
    ASSERT_TRUE(store) << store.error().message;
    stores.push_back(std::move(*store));
  }
  std::vector<Result<std::vector<std::string>>> results(kProcesses);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kProcesses; ++i) {
      threads.emplace_back([&, i] { results[i] = stores[i]->migrate(); });
    }
  }
  std::map<std::string, int> applied;
  for (const auto& result : results) {
    ASSERT_TRUE(result) << result.error().message << " " << result.error().internal;
    for (const auto& name : *result) ++applied[name];
  }
  const std::map<std::string, int> once{{"0001_init", 1},
                                        {"0002_engine", 1},
                                        {"0003_suspended_index", 1},
                                        {"0004_record_run", 1},
                                        {"0005_drop_next_run_index", 1},
                                        {"0006_jobs_without_foreign_keys", 1}};
  EXPECT_EQ(applied, once);
  auto status = stores[0]->migration_status();
  ASSERT_TRUE(status);
  for (const auto& [name, done] : *status) EXPECT_TRUE(done) << name;
}

TEST_F(PostgresStoreTest, ALostConnectionIsReopenedAndTheCallRetried) {
  auto store =
      open_postgres_store(url(), {.pool_size = 1, .retry_backoff = std::chrono::milliseconds(10)});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->migrate());
  // The server ends the store's only session, as a restart or a failover would.
  std::string error;
  ASSERT_TRUE(postgres_server().admin(
      "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '" +
          backend_.database + "' AND pid <> pg_backend_pid()",
      error))
      << error;
  auto user = (*store)->create_user({"alice", "hash", Role::kUser}, from_unix_ms(0));
  ASSERT_TRUE(user) << user.error().message << " " << user.error().internal;
  EXPECT_EQ(user->username, "alice");
  EXPECT_TRUE((*store)->find_user_by_name("alice"));
}

TEST_F(PostgresStoreTest, AGoneDatabaseIsUnavailableNotInternal) {
  auto store =
      open_postgres_store(url(), {.pool_size = 2, .retry_backoff = std::chrono::milliseconds(10)});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->ping());
  // FORCE ends the sessions; reconnecting then fails (the database does not exist).
  postgres_server().drop_database(backend_.database);
  auto ping = (*store)->ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kUnavailable);
  auto user = (*store)->get_user(1);
  ASSERT_FALSE(user);
  EXPECT_EQ(user.error().code, ErrorCode::kUnavailable);
}

TEST_F(PostgresStoreTest, AConstraintViolationIsNotRetriedAndNotUnavailable) {
  auto store = open_postgres_store(url(), {.pool_size = 1});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->migrate());
  ASSERT_TRUE((*store)->create_user({"alice", "hash", Role::kUser}, from_unix_ms(0)));
  auto again = (*store)->create_user({"alice", "other", Role::kUser}, from_unix_ms(0));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  // The connection is still usable afterwards.
  EXPECT_TRUE((*store)->ping());
}

// A worker started with --no-migrate on a schema without 0004_record_run: its records that
// need fetchd_record_run (a batch with a task twice; a batch of distinct tasks is one
// statement on the tables) wait (kUnavailable, which the RunWriter retries) instead of
// failing for good, and go through once the schema is migrated.
TEST_F(PostgresStoreTest, ASchemaOlderThanTheBinaryIsUnavailableUntilMigrated) {
  auto store = open_postgres_store(url(), {.pool_size = 1});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->migrate());
  const auto user = (*store)->create_user({"alice", "hash", Role::kUser}, from_unix_ms(0));
  ASSERT_TRUE(user);
  auto task = add_task(**store, user->id, "t");
  ASSERT_TRUE(task);
  RawConnection raw(url());
  ASSERT_EQ(raw.exec("DROP FUNCTION fetchd_record_run"), "");
  ASSERT_EQ(raw.exec("DELETE FROM schema_migrations WHERE name = '0004_record_run'"), "");
  RunRecord run;
  run.job.task_id = task->id;
  run.job.scheduled_at = from_unix_ms(1000);
  run.job.started_at = run.job.scheduled_at;
  run.job.finished_at = from_unix_ms(1010);
  run.job.status = JobStatus::kFailed;
  run.job.error = "HTTP 500";
  run.next_run_at = from_unix_ms(2000);
  RunRecord next = run;
  next.job.scheduled_at = from_unix_ms(2000);
  next.next_run_at = from_unix_ms(3000);
  auto waiting = (*store)->record_runs({run, next});
  ASSERT_FALSE(waiting);
  EXPECT_EQ(waiting.error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE((*store)->migrate());
  auto recorded = (*store)->record_runs({run, next});
  ASSERT_TRUE(recorded) << recorded.error().message << " " << recorded.error().internal;
  ASSERT_EQ(recorded->size(), 2u);
  EXPECT_GT((*recorded)[0].job_id, 0);
  EXPECT_GT((*recorded)[1].job_id, (*recorded)[0].job_id);
}

// Two processes' run writers recording overlapping batches (the same due times of the same
// tasks, in opposite orders, with the same documents): no batch fails (no deadlock, no
// duplicate-key abort on the shared document), each (task, due time) lands once, and each
// task's document is stored once.
TEST_F(PostgresStoreTest, ConcurrentWritersOfTheSameRunsNeitherFailNorDuplicate) {
  constexpr int kTasks = 8;
  constexpr int kDueTimes = 25;
  auto first = open_postgres_store(url(), {.pool_size = 1});
  auto second = open_postgres_store(url(), {.pool_size = 1});
  ASSERT_TRUE(first && second);
  ASSERT_TRUE((*first)->migrate());
  const auto user = (*first)->create_user({"alice", "hash", Role::kUser}, from_unix_ms(0));
  ASSERT_TRUE(user);
  std::vector<TaskId> tasks;
  for (int t = 0; t < kTasks; ++t) {
    auto task = add_task(**first, user->id, "t" + std::to_string(t));
    ASSERT_TRUE(task);
    tasks.push_back(task->id);
  }
  const auto batch_for = [&](int due, bool reversed) {
    std::vector<RunRecord> batch;
    for (int i = 0; i < kTasks; ++i) {
      const TaskId task = tasks[reversed ? kTasks - 1 - i : i];
      RunRecord run;
      run.job.task_id = task;
      run.job.scheduled_at = from_unix_ms(1000 * due);
      run.job.started_at = run.job.scheduled_at;
      run.job.finished_at = from_unix_ms(1000 * due + 10);
      run.job.status = JobStatus::kSucceeded;
      run.body = "{\"task\": " + std::to_string(task) + "}";
      run.content_hash = "hash-" + std::to_string(task);
      run.next_run_at = from_unix_ms(1000 * (due + 1));
      batch.push_back(std::move(run));
    }
    return batch;
  };
  std::vector<std::string> errors[2];
  std::int64_t recorded[2] = {0, 0};
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < 2; ++w) {
      writers.emplace_back([&, w] {
        Store& store = w == 0 ? **first : **second;
        for (int due = 0; due < kDueTimes; ++due) {
          auto done = store.record_runs(batch_for(due, w == 1));
          if (!done) {
            errors[w].push_back(done.error().message + " " + done.error().internal);
            continue;
          }
          for (const auto& one : *done) recorded[w] += one.job_id != 0 ? 1 : 0;
        }
      });
    }
  }
  EXPECT_TRUE(errors[0].empty()) << errors[0].front();
  EXPECT_TRUE(errors[1].empty()) << errors[1].front();
  EXPECT_EQ(recorded[0] + recorded[1], kTasks * kDueTimes);
  for (const TaskId task : tasks) {
    auto jobs = (*first)->list_jobs({task, std::nullopt, std::nullopt, 1000});
    ASSERT_TRUE(jobs);
    ASSERT_EQ(jobs->items.size(), static_cast<std::size_t>(kDueTimes));
    for (const auto& job : jobs->items) EXPECT_EQ(job.data_id, jobs->items.front().data_id);
  }
}

// jobs.data_id has no foreign key (migration 0006). A document the pruner finds orphaned
// while a batch that refers to it is being recorded (the batch holds its task's row lock) must
// outlive that batch: the pruner waits for the lock, then sees the batch's job.
TEST_F(PostgresStoreTest, ThePrunerKeepsADocumentThatABatchInFlightRefersTo) {
  auto store = open_postgres_store(url(), {.pool_size = 2});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->migrate());
  const auto user = (*store)->create_user({"alice", "hash", Role::kUser}, from_unix_ms(0));
  ASSERT_TRUE(user);
  const auto task = add_task(**store, user->id, "t");
  ASSERT_TRUE(task);
  const auto run = [&](std::int64_t due_ms, const std::string& body) {
    RunRecord one;
    one.job.task_id = task->id;
    one.job.scheduled_at = from_unix_ms(due_ms);
    one.job.started_at = one.job.scheduled_at;
    one.job.finished_at = from_unix_ms(due_ms + 10);
    one.job.status = JobStatus::kSucceeded;
    one.body = body;
    one.content_hash = "hash of " + body;
    one.next_run_at = from_unix_ms(due_ms + 1000);
    return one;
  };
  auto recorded = (*store)->record_runs({run(1000, "[\"a\"]"), run(2000, "[\"b\"]")});
  ASSERT_TRUE(recorded) << recorded.error().message;
  const JobId first_job = (*recorded)[0].job_id;
  const DataId first_document = *(*recorded)[0].data_id;
  // The first document has no job left: an orphan (the task's last document is the second).
  RawConnection other(url());
  ASSERT_EQ(other.exec("DELETE FROM jobs WHERE id = " + std::to_string(first_job)), "");
  // A batch in flight, as record_runs writes it: the task's row locked, then a job that found
  // the first document again by its content.
  RawConnection batch(url());
  ASSERT_EQ(batch.exec("BEGIN"), "");
  ASSERT_EQ(
      batch.exec("SELECT id FROM tasks WHERE id = " + std::to_string(task->id) + " FOR UPDATE"),
      "");
  ASSERT_EQ(batch.exec("INSERT INTO jobs (task_id, scheduled_at, status, data_id) VALUES (" +
                       std::to_string(task->id) + ", 3000, 'succeeded', " +
                       std::to_string(first_document) + ")"),
            "");
  Result<std::int64_t> pruned = 0;
  {
    std::jthread pruner(
        [&] { pruned = (*store)->prune({.jobs_per_task = 1000, .older_than = {}, .batch = 100}); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(batch.exec("COMMIT"), "");  // not ASSERT: the pruner may be waiting for it
  }
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 0);
  EXPECT_TRUE((*store)->get_data(first_document));
}

// A batch leaves out the bodies of documents their tasks already have (the hash of the task's
// last document, read with its lock). Should such a document not be found after all, the
// batch is recorded again with every body: a run is never recorded without its document.
TEST_F(PostgresStoreTest, ABodyLeftOutIsSentAfterAllWhenItsDocumentIsNotFound) {
  auto store = open_postgres_store(url(), {.pool_size = 1});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->migrate());
  const auto user = (*store)->create_user({"alice", "hash", Role::kUser}, from_unix_ms(0));
  ASSERT_TRUE(user);
  const auto a = add_task(**store, user->id, "a");
  const auto b = add_task(**store, user->id, "b");
  ASSERT_TRUE(a && b);
  const std::string body = R"(["same"])";
  const auto run = [&](TaskId task, std::int64_t due_ms) {
    RunRecord one;
    one.job.task_id = task;
    one.job.scheduled_at = from_unix_ms(due_ms);
    one.job.started_at = one.job.scheduled_at;
    one.job.finished_at = from_unix_ms(due_ms + 10);
    one.job.status = JobStatus::kSucceeded;
    one.body = body;
    one.content_hash = "hash of the same body";
    one.next_run_at = from_unix_ms(due_ms + 1000);
    return one;
  };
  auto first = (*store)->record_runs({run(b->id, 1000)});
  ASSERT_TRUE(first) << first.error().message;
  const DataId b_document = *(*first)[0].data_id;
  // Task a's last document is b's (no path of fetchd's does this): a's lock reads the hash
  // of its next run's document, but the document is not a's.
  RawConnection raw(url());
  ASSERT_EQ(raw.exec("UPDATE tasks SET last_data_id = " + std::to_string(b_document) +
                     " WHERE id = " + std::to_string(a->id)),
            "");
  auto recorded = (*store)->record_runs({run(a->id, 2000), run(b->id, 2000)});
  ASSERT_TRUE(recorded) << recorded.error().message;
  ASSERT_EQ(recorded->size(), 2u);
  ASSERT_TRUE((*recorded)[0].data_id);
  EXPECT_NE(*(*recorded)[0].data_id, b_document);
  const auto a_document = (*store)->get_data(*(*recorded)[0].data_id);
  ASSERT_TRUE(a_document);
  EXPECT_EQ(a_document->task_id, a->id);
  EXPECT_EQ(a_document->body, body);
  EXPECT_EQ((*recorded)[1].data_id, b_document);  // b's own, found again
  EXPECT_FALSE((*recorded)[1].changed);
}

}  // namespace
}  // namespace fetchd::pg_testing

#endif  // FETCHD_CONTRACT_POSTGRES
