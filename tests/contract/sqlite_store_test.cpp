// What only the SQLite backend has, beyond the Store contract: URL parsing, open errors, WAL,
// the jobs/data schema the engine writes (cascades, unique run per due time, indexes, the
// job_count bookkeeping and its upgrade), error translation, per-migration transactions. Uses
// a second raw connection where the Store interface cannot reach.

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/embedded_file.hpp"
#include "store/sqlite/sqlite_connection.hpp"
#include "store/sqlite/sqlite_migrator.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace fetchd {

std::span<const EmbeddedFile> sqlite_migrations();  // src/store/CMakeLists.txt embeds them

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kNowMs = 1'672'868'498'930;

template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result) {
    throw std::runtime_error(what + " failed: " + result.error().message + " [" +
                             result.error().internal + "]");
  }
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// A second, plain connection to the same file, as another process would have.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      throw std::runtime_error("cannot open " + path.string());
    }
    db_.reset(db);
    exec("PRAGMA foreign_keys = ON");
  }

  // The extended result code of running `sql`.
  int try_exec(const std::string& sql) {
    const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? rc : sqlite3_extended_errcode(db_.get());
  }
  void exec(const std::string& sql) {
    if (try_exec(sql) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_.get()));
    }
  }
  // Every row's columns as text, joined with '|', rows with '\n'.
  std::string rows(const std::string& sql) {
    std::string out;
    auto append = [](void* target, int columns, char** values, char**) {
      auto& text = *static_cast<std::string*>(target);
      if (!text.empty()) text += "\n";
      for (int i = 0; i < columns; ++i) {
        if (i > 0) text += "|";
        text += values[i] != nullptr ? values[i] : "NULL";
      }
      return 0;
    };
    if (sqlite3_exec(db_.get(), sql.c_str(), append, &out, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_.get()));
    }
    return out;
  }

 private:
  sqlite::DbHandle db_;
};

class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = fs::temp_directory_path() / ("fetchd-sqlite-" + std::to_string(random()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TaskSpec sample_spec() {
  TaskSpec spec;
  spec.name = "amazingexpo";
  spec.url = "https://example.com/php-architecture/";
  spec.start_time = from_unix_ms(kNowMs);
  spec.end_time = from_unix_ms(kNowMs + 1'000'000);
  spec.task_interval = 2;
  spec.max_attempt = 3;
  return spec;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = must(open_sqlite_store(path_.string()), "open");
    must(store_->migrate(), "migrate");
    user_ = must(store_->create_user({"alice", "h", Role::kUser}, from_unix_ms(kNowMs)), "user");
    task_ = must(store_->create_task(user_.id, sample_spec(), from_unix_ms(kNowMs)), "task");
  }

  TempDir dir_;
  fs::path path_ = dir_.path() / "fetchd.db";
  std::unique_ptr<Store> store_;
  User user_;
  Task task_;
};

// --- URLs and opening -------------------------------------------------------------------------

TEST(SqlitePathFromUrl, AcceptsTheDocumentedForms) {
  EXPECT_EQ(sqlite_path_from_url("sqlite://./fetchd.db"), "./fetchd.db");
  EXPECT_EQ(sqlite_path_from_url("sqlite:///abs/path.db"), "/abs/path.db");
  EXPECT_EQ(sqlite_path_from_url("sqlite://rel/path.db"), "rel/path.db");
  EXPECT_EQ(sqlite_path_from_url("sqlite://:memory:"), ":memory:");
  EXPECT_EQ(sqlite_path_from_url("SQLite://x.db"), "x.db");
}

TEST(SqlitePathFromUrl, RejectsOtherSchemesAndEmptyPaths) {
  EXPECT_EQ(sqlite_path_from_url("sqlite://"), std::nullopt);
  EXPECT_EQ(sqlite_path_from_url("sqlite:/x.db"), std::nullopt);
  EXPECT_EQ(sqlite_path_from_url("sqlite:x.db"), std::nullopt);
  EXPECT_EQ(sqlite_path_from_url("postgres://localhost/fetchd"), std::nullopt);
  EXPECT_EQ(sqlite_path_from_url("./fetchd.db"), std::nullopt);
  EXPECT_EQ(sqlite_path_from_url(""), std::nullopt);
}

TEST(SqliteOpen, MissingDirectoryIsUnavailableWithThePath) {
  TempDir dir;
  const auto path = (dir.path() / "no" / "such" / "dir" / "fetchd.db").string();
  auto store = open_sqlite_store(path);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(store.error().message.find(path), std::string::npos) << store.error().message;
}

TEST(SqliteOpen, FileThatIsNotADatabaseIsUnavailable) {
  TempDir dir;
  const auto path = dir.path() / "notes.txt";
  std::ofstream(path) << std::string(4096, 'x');
  auto store = open_sqlite_store(path.string());
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(store.error().message.find("not a database"), std::string::npos)
      << store.error().message;
}

TEST(SqliteOpen, EmptyPathIsRefused) {
  auto store = open_sqlite_store("");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
}

TEST(SqliteOpen, WorksWithoutReaderConnections) {
  TempDir dir;
  SqliteOptions options;
  options.read_connections = 0;
  auto store = must(open_sqlite_store((dir.path() / "f.db").string(), options), "open");
  must(store->migrate(), "migrate");
  const auto user = must(store->create_user({"u", "h", Role::kUser}, from_unix_ms(0)), "user");
  EXPECT_EQ(must(store->get_user(user.id), "get_user").username, "u");
}

TEST_F(SqliteStoreTest, CountingSuspendedTasksUsesThePartialIndex) {
  RawDb raw(path_);
  const std::string plan = raw.rows(
      "EXPLAIN QUERY PLAN SELECT count(*) FROM tasks WHERE consecutive_failures >= max_attempt");
  EXPECT_NE(plan.find("tasks_suspended"), std::string::npos) << plan;
}

TEST_F(SqliteStoreTest, FileIsInWalMode) {
  RawDb raw(path_);
  EXPECT_EQ(raw.rows("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.rows("SELECT name FROM schema_migrations ORDER BY name"),
            "0001_init\n0002_engine\n0003_suspended_index\n0004_drop_next_run_index");
  EXPECT_NE(raw.rows("SELECT applied_at FROM schema_migrations"), "");
}

// --- Read snapshots -----------------------------------------------------------------------------

// One reader connection, so that every read after a snapshot gets the reader it used.
std::unique_ptr<Store> one_reader_store(const fs::path& path) {
  SqliteOptions options;
  options.read_connections = 1;
  return must(open_sqlite_store(path.string(), options), "open");
}

TEST_F(SqliteStoreTest, ASnapshotsReadsSeeOneStateWhateverOthersWrite) {
  auto store = one_reader_store(path_);
  RawDb other_process(path_);
  const auto rename = [&](const std::string& task, const std::string& user) {
    other_process.exec("UPDATE tasks SET name = '" + task +
                       "' WHERE id = " + std::to_string(task_.id));
    other_process.exec("UPDATE users SET username = '" + user +
                       "' WHERE id = " + std::to_string(user_.id));
  };
  for (int round = 0; round < 2; ++round) {  // the second snapshot reuses the one reader
    const std::string before = must(store->get_task(task_.id), "get_task").spec.name;
    {
      const auto snapshot = store->read_snapshot();
      ASSERT_NE(snapshot, nullptr);
      EXPECT_EQ(must(store->get_task(task_.id), "get_task").spec.name, before);
      rename("renamed" + std::to_string(round), "alicia" + std::to_string(round));
      // Taken at the snapshot's first read, for every table.
      EXPECT_EQ(must(store->get_task(task_.id), "get_task").spec.name, before);
      EXPECT_EQ(must(store->get_user(user_.id), "get_user").username,
                round == 0 ? "alice" : "alicia0");
    }
    // Gone with its object: the reader is back in the pool with no transaction left open.
    EXPECT_EQ(must(store->get_task(task_.id), "get_task").spec.name,
              "renamed" + std::to_string(round));
  }
}

TEST_F(SqliteStoreTest, AWriteOnTheThreadEndsTheSnapshotSoLaterReadsSeeIt) {
  auto store = one_reader_store(path_);
  RawDb other_process(path_);
  const auto snapshot = store->read_snapshot();
  ASSERT_NE(snapshot, nullptr);
  EXPECT_EQ(must(store->get_task(task_.id), "get_task").spec.name, "amazingexpo");
  auto spec = sample_spec();
  spec.name = "updated";
  must(store->update_task(task_.id, spec, from_unix_ms(kNowMs + 1)), "update_task");
  EXPECT_EQ(must(store->get_task(task_.id), "get_task").spec.name, "updated");
  // And the next read began a snapshot of its own.
  other_process.exec("UPDATE tasks SET name = 'renamed' WHERE id = " + std::to_string(task_.id));
  EXPECT_EQ(must(store->get_task(task_.id), "get_task").spec.name, "updated");
}

// Each HTTP thread (one per core) holds a reader for a whole GET; the engine needs some too.
TEST(SqliteOpen, ByDefaultEveryCoreAndTwoMoreCanHoldASnapshotAtOnce) {
  TempDir dir;
  auto store = must(open_sqlite_store((dir.path() / "f.db").string()), "open");
  must(store->migrate(), "migrate");
  const unsigned holders = std::max(4U, std::thread::hardware_concurrency() + 2);
  std::mutex mutex;
  std::condition_variable changed;
  unsigned holding = 0;
  bool together = true;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < holders; ++i) {
    threads.emplace_back([&] {
      const auto snapshot = store->read_snapshot();  // waits while every reader is leased
      std::unique_lock lock(mutex);
      ++holding;
      changed.notify_all();
      // Too few readers: the first ones give up theirs after a while, and the test fails.
      if (!changed.wait_for(lock, std::chrono::seconds(5), [&] { return holding == holders; }))
        together = false;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(together);
}

TEST_F(SqliteStoreTest, SnapshotsNestPerStoreAndAMemoryStoreHasNone) {
  auto outer = store_->read_snapshot();
  ASSERT_NE(outer, nullptr);
  EXPECT_EQ(store_->read_snapshot(), nullptr);  // the outer one goes on serving this store

  // Another store's snapshot, taken inside, leaves this store's alone.
  TempDir other_dir;
  auto other = one_reader_store(other_dir.path() / "other.db");
  must(other->migrate(), "migrate");
  auto inner = other->read_snapshot();
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(must(store_->get_task(task_.id), "get_task").spec.name, "amazingexpo");
  RawDb(path_).exec("UPDATE tasks SET name = 'renamed' WHERE id = " + std::to_string(task_.id));
  EXPECT_EQ(must(store_->get_task(task_.id), "get_task").spec.name, "amazingexpo");
  inner.reset();
  outer.reset();
  EXPECT_EQ(must(store_->get_task(task_.id), "get_task").spec.name, "renamed");

  auto memory = must(open_sqlite_store(":memory:"), "open");
  EXPECT_EQ(memory->read_snapshot(), nullptr);
}

// --- Checkpoints --------------------------------------------------------------------------------

// Stores with the given checkpoint limits, the tasks created one commit each.
struct CheckpointCase {
  explicit CheckpointCase(CheckpointLimits limits) {
    SqliteOptions options;
    options.checkpoints = limits;
    store = must(open_sqlite_store(path.string(), options), "open");
    must(store->migrate(), "migrate");
    owner = must(store->create_user({"c", "h", Role::kUser}, from_unix_ms(kNowMs)), "user").id;
  }
  void create_tasks(int count) {
    for (int i = 0; i < count; ++i) {
      must(store->create_task(owner, sample_spec(), from_unix_ms(kNowMs)), "task");
    }
  }
  // How many tasks the database file itself holds, WAL aside: what checkpoints copied back.
  // Reads a copy of the file without its WAL (-1: no tasks table there yet, or a copy taken
  // mid-checkpoint and torn).
  long long tasks_in_file() const {
    const fs::path scratch = dir.path() / "copy.db";
    std::error_code ignored;
    fs::remove(scratch.string() + "-wal", ignored);
    if (!fs::copy_file(path, scratch, fs::copy_options::overwrite_existing, ignored)) return -1;
    try {
      return std::stoll(RawDb(scratch).rows("SELECT count(*) FROM tasks"));
    } catch (const std::exception&) {
      return -1;
    }
  }
  TempDir dir;
  fs::path path = dir.path() / "fetchd.db";
  std::unique_ptr<Store> store;
  UserId owner = 0;
};

TEST(SqliteCheckpoints, TheWalIsCopiedBackByTheCheckpointersThread) {
  // The writer itself would only checkpoint at a million frames (and SQLite's own
  // auto-checkpoint, which the checkpointer replaces, at 1000): 200 small commits stay far
  // below both, so only the checkpointer's thread can bring them into the file.
  CheckpointCase db(CheckpointLimits{4, 1'000'000});
  db.create_tasks(200);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  long long in_file = -1;
  while ((in_file = db.tasks_in_file()) < 200 && std::chrono::steady_clock::now() < deadline) {
    // A commit wakes the checkpointer; the tail of the last one needs another commit.
    db.create_tasks(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(in_file, 200);
}

TEST(SqliteCheckpoints, UnderALightLoadTheWalStartsOverAndStaysShort) {
  // 300 commits of 3 frames or so, a few milliseconds apart: with no complete checkpoint the
  // WAL would hold them all (about 3.6 MB); completed ones let it start over from its start.
  CheckpointCase db(CheckpointLimits{16, 1'000'000});
  for (int i = 0; i < 300; ++i) {
    db.create_tasks(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  const auto wal = fs::file_size(db.path.string() + "-wal");
  EXPECT_LT(wal, 1'500'000u) << "the WAL did not start over";
}

TEST(SqliteCheckpoints, OnceTheWalStartsOverItsFileIsCutBack) {
  // A reader's transaction pins the WAL: no checkpoint can complete and the file grows with
  // every commit. Once the reader is gone, the WAL starts over, and the writer cuts the file
  // back to `wal_file` frames (16 pages of 4 KB here) instead of keeping its largest size.
  CheckpointCase db(CheckpointLimits{16, 1'000'000, 16});
  RawDb reader(db.path);
  reader.exec("BEGIN");
  (void)reader.rows("SELECT count(*) FROM tasks");
  db.create_tasks(300);
  const auto pinned = fs::file_size(db.path.string() + "-wal");
  ASSERT_GT(pinned, 1'500'000u) << "the reader did not pin the WAL";
  reader.exec("COMMIT");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto wal = pinned;
  while ((wal = fs::file_size(db.path.string() + "-wal")) >= 300'000u &&
         std::chrono::steady_clock::now() < deadline) {
    db.create_tasks(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_LT(wal, 300'000u) << "the WAL file kept its size (" << pinned << " bytes pinned)";
}

TEST(SqliteCheckpoints, AtTheLimitTheWriterCheckpointsBeforeTheCommitReturns) {
  CheckpointCase db(CheckpointLimits{1, 1});  // every commit reaches the limit
  db.create_tasks(50);
  EXPECT_EQ(db.tasks_in_file(), 50);
}

TEST(SqliteCheckpoints, WithoutCheckpointsTheFileLagsTheWal) {
  // The control for the two tests above: a limit no test reaches and no background copy
  // leave the 50 tasks in the WAL only.
  CheckpointCase db(CheckpointLimits{1'000'000, 1'000'000});
  db.create_tasks(50);
  EXPECT_LT(db.tasks_in_file(), 1);
}

TEST(SqliteCheckpoints, NonsensicalLimitsAreRefused) {
  TempDir dir;
  SqliteOptions options;
  for (const CheckpointLimits limits :
       {CheckpointLimits{10, 5}, CheckpointLimits{0, 5}, CheckpointLimits{10, 20, -1}}) {
    options.checkpoints = limits;
    auto store = open_sqlite_store((dir.path() / "f.db").string(), options);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().code, ErrorCode::kInvalid);
  }
}

// --- the engine's tables ----------------------------------------------------------------------

TEST_F(SqliteStoreTest, DeletingATaskDeletesItsJobsAndData) {
  const auto other = must(store_->create_task(user_.id, sample_spec(), from_unix_ms(0)), "other");
  RawDb raw(path_);
  for (const auto id : {task_.id, other.id}) {
    const auto t = std::to_string(id);
    raw.exec("INSERT INTO data (task_id, content_hash, body, bytes, records, created_at) VALUES (" +
             t + ", 'h" + t + "', '[]', 2, 0, 1)");
    raw.exec("INSERT INTO jobs (task_id, attempt, scheduled_at, status, data_id) VALUES (" + t +
             ", 1, 1000, 'succeeded', (SELECT id FROM data WHERE task_id = " + t + "))");
    raw.exec("INSERT INTO jobs (task_id, attempt, scheduled_at, status) VALUES (" + t +
             ", 1, 3000, 'failed')");
  }
  must(store_->delete_task(task_.id), "delete_task");
  const auto gone = std::to_string(task_.id);
  EXPECT_EQ(raw.rows("SELECT count(*) FROM jobs WHERE task_id = " + gone), "0");
  EXPECT_EQ(raw.rows("SELECT count(*) FROM data WHERE task_id = " + gone), "0");
  const auto kept = std::to_string(other.id);
  EXPECT_EQ(raw.rows("SELECT count(*) FROM jobs WHERE task_id = " + kept), "2");
  EXPECT_EQ(raw.rows("SELECT count(*) FROM data WHERE task_id = " + kept), "1");

  // Pruning data leaves the job, without its data.
  raw.exec("DELETE FROM data WHERE task_id = " + kept);
  EXPECT_EQ(raw.rows("SELECT count(*) FROM jobs WHERE task_id = " + kept + " AND data_id IS NULL"),
            "2");
}

TEST_F(SqliteStoreTest, OneJobPerTaskAndDueTime) {
  RawDb raw(path_);
  const auto t = std::to_string(task_.id);
  raw.exec("INSERT INTO jobs (task_id, scheduled_at) VALUES (" + t + ", 1000)");
  EXPECT_EQ(raw.try_exec("INSERT INTO jobs (task_id, scheduled_at) VALUES (" + t + ", 1000)"),
            SQLITE_CONSTRAINT_UNIQUE);
  EXPECT_EQ(raw.try_exec("INSERT INTO jobs (task_id, scheduled_at) VALUES (" + t + ", 1001)"),
            SQLITE_OK);
  EXPECT_EQ(raw.try_exec("INSERT INTO jobs (task_id, scheduled_at, status) VALUES (" + t +
                         ", 2000, 'exploded')"),
            SQLITE_CONSTRAINT_CHECK);
  EXPECT_EQ(raw.try_exec("INSERT INTO jobs (task_id, scheduled_at) VALUES (999999, 5)"),
            SQLITE_CONSTRAINT_FOREIGNKEY);
  EXPECT_EQ(raw.rows("SELECT status FROM jobs WHERE task_id = " + t + " ORDER BY id"),
            "queued\nqueued");
  raw.exec("INSERT INTO data (task_id, content_hash, body, bytes, created_at) VALUES (" + t +
           ", 'same', '{}', 2, 1)");
  EXPECT_EQ(raw.try_exec("INSERT INTO data (task_id, content_hash, body, bytes, created_at) "
                         "VALUES (" +
                         t + ", 'same', '{}', 2, 2)"),
            SQLITE_CONSTRAINT_UNIQUE);
}

TEST_F(SqliteStoreTest, JobQueriesUseTheirIndexes) {
  RawDb raw(path_);
  EXPECT_NE(raw.rows("EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE task_id = 1 ORDER BY id DESC "
                     "LIMIT 1")
                .find("USING INDEX jobs_task_id_id"),
            std::string::npos);
  EXPECT_NE(raw.rows("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE status IN ('queued', "
                     "'running') AND scheduled_at < 5")
                .find("jobs_unfinished"),
            std::string::npos);
  EXPECT_NE(raw.rows("EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE owner_id = 1 AND id > 5 "
                     "ORDER BY id LIMIT 10")
                .find("tasks_owner_id"),
            std::string::npos);
}

TEST_F(SqliteStoreTest, EngineStateIsReadBackAndResetKeepsTheLastRun) {
  RawDb raw(path_);
  raw.exec(
      "UPDATE tasks SET consecutive_failures = 3, next_run_at = 1700000000123, last_job_id = 42, "
      "last_status = 'failed', last_run_at = 1700000000000, last_duration_ms = 1500, "
      "last_error = 'HTTP 503', last_data_id = 7 WHERE id = " +
      std::to_string(task_.id));
  const auto task = must(store_->get_task(task_.id), "get_task");
  EXPECT_EQ(task.consecutive_failures, 3);
  EXPECT_TRUE(task.suspended());
  EXPECT_EQ(task.next_run_at, from_unix_ms(1'700'000'000'123));
  EXPECT_EQ(task.last.job_id, 42);
  EXPECT_EQ(task.last.status, "failed");
  EXPECT_EQ(task.last.at, from_unix_ms(1'700'000'000'000));
  EXPECT_EQ(task.last.duration_ms, 1500);
  EXPECT_EQ(task.last.error, "HTTP 503");
  EXPECT_EQ(task.last.data_id, 7);

  const auto reset = must(store_->reset_attempts(task_.id, from_unix_ms(kNowMs + 1)), "reset");
  EXPECT_EQ(reset.consecutive_failures, 0);
  EXPECT_FALSE(reset.suspended());
  EXPECT_EQ(reset.last, task.last);
  EXPECT_EQ(reset.next_run_at, task.next_run_at);
  // An update of the spec keeps the engine's state too.
  const auto updated = must(store_->update_task(task_.id, sample_spec(), from_unix_ms(0)), "upd");
  EXPECT_EQ(updated.last, task.last);
}

TEST_F(SqliteStoreTest, EngineQueriesUseTheirIndexes) {
  RawDb raw(path_);
  const auto plan = [&](const std::string& sql) { return raw.rows("EXPLAIN QUERY PLAN " + sql); };
  // record_runs: the deduplication lookup.
  EXPECT_NE(plan("SELECT id FROM data WHERE task_id = 1 AND content_hash = 'h'")
                .find("INDEX sqlite_autoindex_data_1 (task_id=? AND content_hash=?)"),
            std::string::npos);
  // list_jobs, with and without a status: the index walk is already in order (no sort).
  for (const std::string filter : {"", " AND status = 'failed'"}) {
    const auto text = plan("SELECT * FROM jobs WHERE task_id = 1 AND id < 99" + filter +
                           " ORDER BY id DESC LIMIT 10");
    EXPECT_NE(text.find("jobs_task_id_id"), std::string::npos) << text;
    EXPECT_EQ(text.find("TEMP B-TREE"), std::string::npos) << text;
  }
  // prune: a task's excess jobs, and whether a document is still referenced.
  EXPECT_NE(plan("SELECT id FROM jobs WHERE task_id = 1 ORDER BY id DESC LIMIT 5 OFFSET 1000")
                .find("COVERING INDEX jobs_task_id_id"),
            std::string::npos);
  EXPECT_NE(plan("SELECT 1 FROM jobs WHERE data_id = 3").find("jobs_data_id"), std::string::npos);
}

// Runs of `task` due at 1000, 2000, ... as record_runs takes them.
std::vector<RunRecord> failed_runs(TaskId task, int count, std::int64_t first_due = 1000) {
  std::vector<RunRecord> runs;
  for (int i = 0; i < count; ++i) {
    RunRecord run;
    run.job.task_id = task;
    run.job.scheduled_at = from_unix_ms(first_due + 1000 * i);
    run.job.finished_at = from_unix_ms(first_due + 1000 * i + 10);
    run.job.status = JobStatus::kFailed;
    run.job.error = "HTTP 500";
    runs.push_back(std::move(run));
  }
  return runs;
}

TEST_F(SqliteStoreTest, JobCountFollowsRecordedAndPrunedJobs) {
  RawDb raw(path_);
  const auto t = std::to_string(task_.id);
  const auto job_count = [&] { return raw.rows("SELECT job_count FROM tasks WHERE id = " + t); };
  const auto real_count = [&] {
    return raw.rows("SELECT count(*) FROM jobs WHERE task_id = " + t);
  };
  EXPECT_EQ(job_count(), "0");

  auto runs = failed_runs(task_.id, 5);
  runs[4].update_task = false;  // a skipped run is counted too
  runs[4].job.status = JobStatus::kSkipped;
  runs.push_back(runs[0]);  // a duplicate is not
  auto gone = failed_runs(task_.id + 1000, 1);
  runs.push_back(gone[0]);  // nor a run of a missing task
  must(store_->record_runs(runs), "record_runs");
  EXPECT_EQ(job_count(), "5");
  EXPECT_EQ(real_count(), "5");

  EXPECT_EQ(must(store_->prune({2, from_unix_ms(0), 100}), "prune"), 3);
  EXPECT_EQ(job_count(), "2");
  EXPECT_EQ(real_count(), "2");
}

TEST(SqliteUpgrade, Migration0002CountsTheJobsAlreadyThere) {
  TempDir dir;
  const auto path = dir.path() / "old.db";
  {
    // A database of the previous release: 0001 only, with jobs written by hand.
    auto conn = must(sqlite::Connection::open(path.string(), {}), "open");
    auto migrations = sqlite::migrations_from(sqlite_migrations());
    ASSERT_GE(migrations.size(), 2u);
    migrations.resize(1);
    must(sqlite::apply_migrations(*conn, migrations), "apply 0001");
    must(conn->exec(
             "INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'u', 'h', 0);"
             "INSERT INTO tasks (id, owner_id, name, url, start_time, end_time, task_interval, "
             "created_at, updated_at) VALUES (1, 1, 'a', 'http://x/', 0, 10, 1, 0, 0), "
             "(2, 1, 'b', 'http://x/', 0, 10, 1, 0, 0);"
             "INSERT INTO jobs (task_id, scheduled_at, status) VALUES (1, 1, 'failed'), "
             "(1, 2, 'failed'), (1, 3, 'failed'), (2, 1, 'failed');"),
         "old rows");
  }
  auto store = must(open_sqlite_store(path.string()), "open");
  EXPECT_EQ(must(store->migrate(), "migrate"),
            (std::vector<std::string>{"0002_engine", "0003_suspended_index",
                                      "0004_drop_next_run_index"}));
  RawDb raw(path);
  EXPECT_EQ(raw.rows("SELECT id, job_count FROM tasks ORDER BY id"), "1|3\n2|1");
  // Retention works on the old jobs right away.
  EXPECT_EQ(must(store->prune({1, from_unix_ms(-1), 100}), "prune"), 2);
  EXPECT_EQ(raw.rows("SELECT task_id, scheduled_at FROM jobs ORDER BY id"), "1|3\n2|1");
}

// --- failures ---------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, RecordRunsWhileAnotherWriterHoldsTheLockIsUnavailable) {
  SqliteOptions options;
  options.busy_timeout = std::chrono::milliseconds(50);
  auto store = must(open_sqlite_store(path_.string(), options), "open");
  RawDb other_process(path_);
  other_process.exec("BEGIN IMMEDIATE");
  auto blocked = store->record_runs(failed_runs(task_.id, 3));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::kUnavailable);  // the RunWriter retries these
  other_process.exec("ROLLBACK");
  const auto recorded = must(store->record_runs(failed_runs(task_.id, 3)), "record_runs");
  ASSERT_EQ(recorded.size(), 3u);
  EXPECT_GT(recorded[0].job_id, 0);
  EXPECT_EQ(other_process.rows("SELECT count(*) FROM jobs"), "3");
}

TEST_F(SqliteStoreTest, LockedDatabaseIsUnavailableThenRecovers) {
  SqliteOptions options;
  options.busy_timeout = std::chrono::milliseconds(50);
  auto store = must(open_sqlite_store(path_.string(), options), "open");
  RawDb other_process(path_);
  other_process.exec("BEGIN IMMEDIATE");

  auto blocked = store->create_user({"bob", "h", Role::kUser}, from_unix_ms(kNowMs));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(blocked.error().message.find("busy"), std::string::npos) << blocked.error().message;
  // WAL: reads go on while another connection holds the write lock.
  EXPECT_EQ(must(store->get_user(user_.id), "get_user").username, "alice");

  other_process.exec("ROLLBACK");
  EXPECT_TRUE(store->create_user({"bob", "h", Role::kUser}, from_unix_ms(kNowMs)).has_value());
}

TEST_F(SqliteStoreTest, UnreadableStoredParametersAreAnErrorNotAnException) {
  RawDb raw(path_);
  raw.exec("PRAGMA ignore_check_constraints = ON");
  raw.exec("UPDATE tasks SET parameters = '{broken' WHERE id = " + std::to_string(task_.id));
  auto task = store_->get_task(task_.id);
  ASSERT_FALSE(task);
  EXPECT_EQ(task.error().code, ErrorCode::kInternal);
  EXPECT_FALSE(store_->list_tasks({std::nullopt, std::nullopt, 10}).has_value());
}

TEST_F(SqliteStoreTest, InvalidUtf8InParametersIsInvalidNotAnException) {
  auto spec = sample_spec();
  spec.parameters = {{"bad", std::string("\xff\xfe")}};
  auto created = store_->create_task(user_.id, spec, from_unix_ms(kNowMs));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kInvalid);
}

TEST(SqliteErrors, TranslateToOurCodes) {
  const auto code = [](int sqlite_code) {
    return sqlite::error_from_code(sqlite_code, "m", "c").code;
  };
  EXPECT_EQ(code(SQLITE_BUSY), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_BUSY_SNAPSHOT), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_LOCKED), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_IOERR_WRITE), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_FULL), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_READONLY), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_CANTOPEN), ErrorCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_CONSTRAINT_CHECK), ErrorCode::kInternal);
  EXPECT_EQ(code(SQLITE_ERROR), ErrorCode::kInternal);
  EXPECT_EQ(code(SQLITE_CORRUPT), ErrorCode::kInternal);
  const auto error = sqlite::error_from_code(SQLITE_ERROR, "no such table: x", "prepare");
  EXPECT_NE(error.internal.find("no such table: x"), std::string::npos);
  EXPECT_EQ(error.message.find("no such table"), std::string::npos);  // not shown to clients
}

// --- migrations -------------------------------------------------------------------------------

TEST(SqliteMigrations, SortedByNameAndOnlySqlFiles) {
  const EmbeddedFile files[] = {
      {"0002_more.sql", "SELECT 2"}, {"README.md", "#"}, {"0001_init.sql", "SELECT 1"}};
  const auto migrations = sqlite::migrations_from(files);
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_EQ(migrations[0].name, "0001_init");
  EXPECT_EQ(migrations[0].sql, "SELECT 1");
  EXPECT_EQ(migrations[1].name, "0002_more");
}

TEST(SqliteMigrations, AFailedMigrationLeavesNoTraceAndTheNextRunResumes) {
  auto conn = must(sqlite::Connection::open(":memory:", {}), "open");
  std::vector<sqlite::Migration> migrations = {
      {"0001_ok", "CREATE TABLE a (x INTEGER)"},
      {"0002_bad", "CREATE TABLE b (x INTEGER); INSERT INTO missing VALUES (1);"},
  };
  auto failed = sqlite::apply_migrations(*conn, migrations);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("0002_bad"), std::string::npos) << failed.error().message;
  auto status = must(sqlite::migration_status(*conn, migrations), "status");
  EXPECT_EQ(status,
            (std::vector<std::pair<std::string, bool>>{{"0001_ok", true}, {"0002_bad", false}}));
  // Table b was rolled back with its migration.
  EXPECT_TRUE(conn->exec("CREATE TABLE b (y INTEGER); DROP TABLE b;").has_value());

  migrations[1].sql = "CREATE TABLE b (x INTEGER);";
  EXPECT_EQ(must(sqlite::apply_migrations(*conn, migrations), "apply"),
            std::vector<std::string>{"0002_bad"});
  EXPECT_EQ(must(sqlite::apply_migrations(*conn, migrations), "apply"), std::vector<std::string>{});
}

}  // namespace
}  // namespace fetchd
