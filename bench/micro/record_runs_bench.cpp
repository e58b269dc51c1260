// Google Benchmark: the store's part of a run, alone. Store::record_runs writes batches of
// finished small-feed runs, as the run writer does during a burst: 20 000 tasks, each run the
// same 1.5 KB document as the task's last one (found by its hash, not stored again), its job
// row, its task's run state.
//
// By default the embedded store: a SQLite file in a temp dir, WAL, the background
// checkpointer, what `fetchd serve` opens. With FETCHD_BENCH_DB=postgres://… the PostgreSQL
// store on that (scratch) database instead, where one_task_twice:1 puts one task in each batch
// twice, which makes the store record the batch run by run instead of in one statement.
// new_67KB:1 gives every run a new 67 KB document instead (scenario 1's changing feed), stored
// each time. Run: build/bench/micro/micro_record_runs
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "worker/fetch_outcome.hpp"

namespace {

using namespace fetchd;
namespace fs = std::filesystem;

constexpr int kTasks = 20'000;  // as bench/run's engine_throughput
constexpr std::int64_t kStartMs = 1'700'000'000'000;

template <typename T>
T must(Result<T> result, const char* what) {
  if (!result) throw std::runtime_error(std::string(what) + ": " + result.error().message);
  return std::move(*result);
}

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(FETCHD_FIXTURES_DIR) + "/" + name, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read fixture " + name);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A store with kTasks tasks in a fresh file; removed with its directory at the end.
class Fixture {
 public:
  Fixture() {
    if (const char* url = std::getenv("FETCHD_BENCH_DB"); url && *url) {
      store_ = must(open_postgres_store(url), "open");
    } else {
      char pattern[] = "/tmp/fetchd-record-runs-XXXXXX";
      if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
      dir_ = pattern;
      store_ = must(open_sqlite_store((dir_ / "bench.db").string()), "open");
    }
    must(store_->migrate(), "migrate");
    const auto now = from_unix_ms(kStartMs);
    const std::string name = "bench-" + std::to_string(getpid());  // the database may be reused
    const User user = must(store_->create_user({name, "h", Role::kUser}, now), "user");
    TaskSpec spec;
    spec.name = "small";
    spec.url = "http://127.0.0.1:8080/small/feed.json";
    spec.start_time = now;
    spec.end_time = from_unix_ms(kStartMs + 86'400'000LL * 365);
    spec.task_interval = 8;
    tasks_.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i)
      tasks_.push_back(must(store_->create_task(user.id, spec, now), "task").id);
    body_ = read_fixture("small.json");
    hash_ = sha256_hex(body_);
    large_ = read_fixture("amazingexpo2020.json");
    if (large_.empty() || large_[0] != '[')
      throw std::runtime_error("the 67 KB feed is not an array");
  }
  ~Fixture() {
    store_.reset();
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  // The next `size` runs, one per task in turn; each pass over the tasks is one interval later.
  // With `twice`, the batch's last run is its first task's next one instead. With `changing`,
  // each run brings a new 67 KB document (the feed with a record of its own in front).
  std::vector<RunRecord> next_batch(int size, bool twice, bool changing) {
    std::vector<RunRecord> batch;
    batch.reserve(static_cast<std::size_t>(size));
    for (int i = 0; i < size; ++i, ++cursor_) {
      const std::int64_t pass = cursor_ / kTasks;
      const TimePoint due = from_unix_ms(kStartMs + pass * 8'000);
      RunRecord run;
      run.job.task_id = tasks_[static_cast<std::size_t>(cursor_ % kTasks)];
      run.job.scheduled_at = due;
      run.job.started_at = due;
      run.job.finished_at = due;
      run.job.duration_ms = 1;
      run.job.status = JobStatus::kSucceeded;
      run.job.http_status = 200;
      if (changing) {
        run.body = "[{\"nonce\":" + std::to_string(cursor_) + "}," + large_.substr(1);
        run.content_hash = sha256_hex(*run.body);
      } else {
        run.body = body_;
        run.content_hash = hash_;
      }
      run.job.response_bytes = static_cast<std::int64_t>(run.body->size());
      run.job.records = 10;
      run.next_run_at = from_unix_ms(kStartMs + (pass + 1) * 8'000);
      batch.push_back(std::move(run));
    }
    if (twice && size > 1) {
      RunRecord& last = batch.back();
      last.job.task_id = batch.front().job.task_id;
      last.job.scheduled_at = *batch.front().next_run_at;
      last.next_run_at = last.job.scheduled_at + std::chrono::seconds(8);
    }
    return batch;
  }

  Store& store() { return *store_; }

 private:
  fs::path dir_;
  std::unique_ptr<Store> store_;
  std::vector<TaskId> tasks_;
  std::string body_;
  std::string hash_;
  std::string large_;
  std::int64_t cursor_ = 0;
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

void record_runs(benchmark::State& state) {
  Fixture& f = fixture();
  const int size = static_cast<int>(state.range(0));
  const bool twice = state.range(1) != 0;
  const bool changing = state.range(2) != 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto batch = f.next_batch(size, twice, changing);
    state.ResumeTiming();
    auto recorded = f.store().record_runs(batch);
    if (!recorded) {
      state.SkipWithError(recorded.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * size);
}

// 512: the writer's batch in a burst (fetch.concurrency runs finish together); 64: a light load.
BENCHMARK(record_runs)
    ->ArgNames({"batch", "one_task_twice", "new_67KB"})
    ->Args({512, 0, 0})
    ->Args({64, 0, 0})
    ->Args({512, 1, 0})
    ->Args({512, 0, 1})
    ->UseRealTime()
    ->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
