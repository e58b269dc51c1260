// RunWriter: batching of concurrent submits into few record_runs calls, the max_delay and
// max_batch bounds, retries with capped backoff while the store is unavailable, isolation of a
// bad record, and stop()'s flush and grace. Runs over the real in-memory SQLite store, wrapped
// by a Store that counts (and can delay or fail) record_runs calls.

#include "store/run_writer.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "store/sqlite/sqlite_store.hpp"
#include "support/forwarding_store.hpp"
#include "support/gate.hpp"

namespace fetchd {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr std::int64_t kNowMs = 1'700'000'000'000;

template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result) {
    throw std::runtime_error(what + " failed: " + result.error().message + " [" +
                             result.error().internal + "]");
  }
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// The real store, with a hook in front of record_runs that tests use to count, hold back or fail
// the writer's transactions.
class ProbeStore final : public test::ForwardingStore {
 public:
  using Hook = std::function<Result<void>(const std::vector<RunRecord>&)>;

  using ForwardingStore::ForwardingStore;

  void set_hook(Hook hook) {
    std::lock_guard lock(mutex_);
    hook_ = std::move(hook);
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(mutex_);
    return batch_sizes_;
  }
  std::size_t calls() const { return batch_sizes().size(); }

  Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>& runs) override {
    Hook hook;
    {
      std::lock_guard lock(mutex_);
      batch_sizes_.push_back(runs.size());
      hook = hook_;
    }
    if (hook) {
      if (auto allowed = hook(runs); !allowed) return tl::unexpected(allowed.error());
    }
    return ForwardingStore::record_runs(runs);
  }

 private:
  mutable std::mutex mutex_;
  Hook hook_;
  std::vector<std::size_t> batch_sizes_;
};

tl::unexpected<Error> unavailable() {
  return fail(ErrorCode::kUnavailable, "the database is unavailable", "disk I/O error (test)");
}

using test::Gate;  // a door the writer's first transaction waits at until the test opens it

// Every outcome the writer hands back, with the thread it came on.
class Outcomes {
 public:
  RunWriter::Done slot(std::size_t index) {
    return [this, index](Result<RecordedRun> result) {
      {
        std::lock_guard lock(mutex_);
        results_.emplace_back(index, std::move(result));
        threads_.insert(std::this_thread::get_id());
      }
      arrived_.notify_all();
    };
  }
  // Waits until `count` outcomes arrived (false on timeout).
  bool wait_for(std::size_t count, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, timeout, [&] { return results_.size() >= count; });
  }
  std::vector<std::pair<std::size_t, Result<RecordedRun>>> results() const {
    std::lock_guard lock(mutex_);
    return results_;
  }
  std::set<std::thread::id> threads() const {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::pair<std::size_t, Result<RecordedRun>>> results_;
  std::set<std::thread::id> threads_;
};

class RunWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<ProbeStore>(must(open_sqlite_store(":memory:"), "open"));
    must(store_->migrate(), "migrate");
    const auto user =
        must(store_->create_user({"alice", "h", Role::kUser}, from_unix_ms(kNowMs)), "user");
    for (int i = 0; i < 4; ++i) {
      TaskSpec spec;
      spec.name = "t" + std::to_string(i);
      spec.url = "https://example.com/feed.json";
      spec.start_time = from_unix_ms(kNowMs);
      spec.end_time = from_unix_ms(kNowMs + 1'000'000'000);
      spec.task_interval = 1;
      tasks_.push_back(must(store_->create_task(user.id, spec, from_unix_ms(kNowMs)), "task").id);
    }
    sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
    log_ = std::make_shared<spdlog::logger>("run_writer_test", sink_);
    log_->set_level(spdlog::level::trace);
  }

  // The n-th run of a task: a failure due n seconds after kNowMs (distinct per (task, n)).
  RunRecord run(std::size_t task_index, int n) const {
    RunRecord record;
    record.job.task_id = tasks_.at(task_index);
    record.job.scheduled_at = from_unix_ms(kNowMs + 1000LL * n);
    record.job.started_at = record.job.scheduled_at;
    record.job.finished_at = record.job.scheduled_at + Millis(20);
    record.job.duration_ms = 20;
    record.job.status = JobStatus::kFailed;
    record.job.error = "HTTP 500";
    record.next_run_at = record.job.scheduled_at + Millis(1000);
    return record;
  }

  std::size_t jobs_of(std::size_t task_index) {
    return must(store_->list_jobs({tasks_.at(task_index), std::nullopt, std::nullopt, 100'000}),
                "list_jobs")
        .items.size();
  }

  // How many messages of `level` were logged, and whether one contains `text`.
  std::size_t logged(spdlog::level::level_enum level) {
    std::size_t count = 0;
    for (const auto& message : sink_->last_raw()) count += message.level == level ? 1 : 0;
    return count;
  }
  bool logged_text(const std::string& text) {
    for (const auto& line : sink_->last_formatted()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::unique_ptr<ProbeStore> store_;
  std::vector<TaskId> tasks_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> log_;
};

TEST_F(RunWriterTest, ConcurrentSubmitsShareFewTransactions) {
  Gate gate;
  std::atomic<bool> first{true};
  store_->set_hook([&](const std::vector<RunRecord>&) -> Result<void> {
    // The first transaction is held until every record is queued, so that the rest must come
    // out in full batches, whatever the machine's speed.
    if (first.exchange(false)) gate.wait();
    return {};
  });
  Outcomes outcomes;
  RunWriter writer(*store_, log_);  // max_batch 512
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        writer.submit(run(static_cast<std::size_t>(t), i), outcomes.slot(t * kPerThread + i));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_GT(writer.pending(), 0u);
  gate.open();
  ASSERT_TRUE(outcomes.wait_for(kThreads * kPerThread));

  std::set<JobId> ids;
  std::set<std::size_t> indexes;
  for (const auto& [index, result] : outcomes.results()) {
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_GT(result->job_id, 0);
    EXPECT_FALSE(result->task_missing);
    ids.insert(result->job_id);
    indexes.insert(index);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(indexes.size(), 1000u);
  // One held transaction, then at most two full ones for the 999 or fewer left.
  const auto sizes = store_->batch_sizes();
  EXPECT_LE(sizes.size(), 3u);
  EXPECT_GE(sizes.size(), 2u);
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), std::size_t{0}), 1000u);
  for (const auto size : sizes) EXPECT_LE(size, 512u);
  for (std::size_t t = 0; t < kThreads; ++t) EXPECT_EQ(jobs_of(t), 250u);
  // Called back on the writer's thread, none of the submitters'.
  EXPECT_EQ(outcomes.threads().size(), 1u);
  EXPECT_EQ(outcomes.threads().count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(writer.pending(), 0u);
}

TEST_F(RunWriterTest, BatchesNeverExceedMaxBatch) {
  Gate gate;
  std::atomic<bool> first{true};
  store_->set_hook([&](const std::vector<RunRecord>&) -> Result<void> {
    if (first.exchange(false)) gate.wait();
    return {};
  });
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 10, .max_delay = 1ms});
  for (int i = 0; i < 101; ++i) writer.submit(run(0, i), outcomes.slot(i));
  gate.open();
  ASSERT_TRUE(outcomes.wait_for(101));
  const auto sizes = store_->batch_sizes();
  for (const auto size : sizes) EXPECT_LE(size, 10u);
  EXPECT_GE(sizes.size(), 11u);
  // The queue was full while the first was held: the rest came in batches of exactly 10.
  EXPECT_EQ(sizes[1], 10u);
  EXPECT_EQ(jobs_of(0), 101u);
}

TEST_F(RunWriterTest, TheBatchHookFollowsEachBatchsCallbacksOnTheWritersThread) {
  Gate gate;
  std::atomic<bool> first{true};
  store_->set_hook([&](const std::vector<RunRecord>&) -> Result<void> {
    if (first.exchange(false)) gate.wait();
    return {};
  });
  RunWriter writer(*store_, log_, {.max_batch = 4, .max_delay = 1ms});
  std::mutex mutex;
  std::vector<std::size_t> answered_per_batch;  // callbacks seen before each hook call
  std::size_t answered = 0;
  std::set<std::thread::id> threads;
  writer.on_batch_done([&] {
    std::lock_guard lock(mutex);
    answered_per_batch.push_back(answered);
    answered = 0;
    threads.insert(std::this_thread::get_id());
  });
  Outcomes outcomes;
  for (int i = 0; i < 9; ++i) {
    auto slot = outcomes.slot(i);
    writer.submit(run(0, i), [&, slot](Result<RecordedRun> result) mutable {
      {
        std::lock_guard lock(mutex);
        ++answered;
      }
      slot(std::move(result));
    });
  }
  gate.open();
  ASSERT_TRUE(outcomes.wait_for(9));
  writer.stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(answered, 0u);  // every callback was followed by its batch's hook
  EXPECT_EQ(answered_per_batch, store_->batch_sizes());
  EXPECT_EQ(std::accumulate(answered_per_batch.begin(), answered_per_batch.end(), std::size_t{0}),
            9u);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST_F(RunWriterTest, ARecordWaitsAtMostMaxDelayForCompany) {
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 512, .max_delay = 300ms});
  // Submitted well within the delay: one transaction.
  for (int i = 0; i < 3; ++i) writer.submit(run(0, i), outcomes.slot(i));
  ASSERT_TRUE(outcomes.wait_for(3));
  EXPECT_EQ(store_->batch_sizes(), std::vector<std::size_t>{3});

  // A lone record is written once its delay is over: not before, and not much after.
  const auto start = SteadyClock::now();
  writer.submit(run(0, 3), outcomes.slot(3));
  ASSERT_TRUE(outcomes.wait_for(4));
  const auto waited = SteadyClock::now() - start;
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(store_->batch_sizes(), (std::vector<std::size_t>{3, 1}));
}

TEST_F(RunWriterTest, AFullBatchDoesNotWaitForItsDelay) {
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 4, .max_delay = 10s});
  const auto start = SteadyClock::now();
  for (int i = 0; i < 4; ++i) writer.submit(run(0, i), outcomes.slot(i));
  ASSERT_TRUE(outcomes.wait_for(4, 5s));
  EXPECT_LT(SteadyClock::now() - start, 5s);
  EXPECT_EQ(store_->batch_sizes(), std::vector<std::size_t>{4});
}

TEST_F(RunWriterTest, RetriesTheSameBatchWhileTheStoreIsUnavailable) {
  std::atomic<int> failures_left{3};
  store_->set_hook([&](const std::vector<RunRecord>&) -> Result<void> {
    if (failures_left.fetch_sub(1) > 0) return unavailable();
    return {};
  });
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 512, .max_delay = 200ms, .max_backoff = 40ms});
  const auto start = SteadyClock::now();
  for (int i = 0; i < 5; ++i) writer.submit(run(1, i), outcomes.slot(i));
  ASSERT_TRUE(outcomes.wait_for(5));
  const auto took = SteadyClock::now() - start;
  for (const auto& [index, result] : outcomes.results()) {
    ASSERT_TRUE(result.has_value()) << index << ": " << result.error().message;
    EXPECT_GT(result->job_id, 0);
  }
  // Three refusals, then the same five records went through; nothing was written twice.
  EXPECT_EQ(store_->batch_sizes(), (std::vector<std::size_t>{5, 5, 5, 5}));
  EXPECT_EQ(jobs_of(1), 5u);
  // Backoff 10 + 20 + 40 ms.
  EXPECT_GE(took, 70ms);
  // One warning for the outage, one note when it is over.
  EXPECT_EQ(logged(spdlog::level::warn), 1u);
  EXPECT_EQ(logged(spdlog::level::info), 1u);
  EXPECT_TRUE(logged_text("available again"));

  // A second outage is reported again.
  failures_left = 1;
  writer.submit(run(1, 5), outcomes.slot(5));
  ASSERT_TRUE(outcomes.wait_for(6));
  EXPECT_EQ(logged(spdlog::level::warn), 2u);
  EXPECT_EQ(logged(spdlog::level::info), 2u);
}

TEST_F(RunWriterTest, BackoffIsCappedAtMaxBackoff) {
  std::atomic<int> failures_left{8};
  store_->set_hook([&](const std::vector<RunRecord>&) -> Result<void> {
    if (failures_left.fetch_sub(1) > 0) return unavailable();
    return {};
  });
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 512, .max_delay = 1ms, .max_backoff = 20ms});
  const auto start = SteadyClock::now();
  writer.submit(run(0, 0), outcomes.slot(0));
  ASSERT_TRUE(outcomes.wait_for(1));
  const auto took = SteadyClock::now() - start;
  ASSERT_TRUE(outcomes.results().front().second.has_value());
  EXPECT_EQ(store_->calls(), 9u);
  // 10 ms, then 20 ms seven times; uncapped doubling would take 10 + 20 + ... + 1280 = 2550 ms.
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 1500ms);
}

TEST_F(RunWriterTest, ABadRecordFailsAloneAndTheOthersAreWritten) {
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 512, .max_delay = 100ms});
  for (int i = 0; i < 5; ++i) {
    auto record = run(2, i);
    if (i == 2) record.job.attempt = 0;  // violates the schema: the batch's transaction fails
    writer.submit(std::move(record), outcomes.slot(i));
  }
  ASSERT_TRUE(outcomes.wait_for(5));
  for (const auto& [index, result] : outcomes.results()) {
    if (index == 2) {
      ASSERT_FALSE(result.has_value());
      EXPECT_EQ(result.error().code, ErrorCode::kInternal);
    } else {
      ASSERT_TRUE(result.has_value()) << index << ": " << result.error().message;
      EXPECT_GT(result->job_id, 0);
    }
  }
  // The batch, then each record alone.
  EXPECT_EQ(store_->batch_sizes(), (std::vector<std::size_t>{5, 1, 1, 1, 1, 1}));
  EXPECT_EQ(jobs_of(2), 4u);
  EXPECT_EQ(logged(spdlog::level::err), 1u);
}

TEST_F(RunWriterTest, ADeletedTaskIsAnOutcomeNotAnError) {
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 512, .max_delay = 50ms});
  must(store_->delete_task(tasks_[3]), "delete_task");
  writer.submit(run(3, 0), outcomes.slot(0));
  writer.submit(run(0, 0), outcomes.slot(1));
  ASSERT_TRUE(outcomes.wait_for(2));
  for (const auto& [index, result] : outcomes.results()) {
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->task_missing, index == 0);
    EXPECT_EQ(result->job_id > 0, index == 1);
  }
}

TEST_F(RunWriterTest, StopWritesEverythingSubmittedWithoutWaitingForTheDelay) {
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 16, .max_delay = 30s});
  for (int i = 0; i < 100; ++i) writer.submit(run(i % 4, i), outcomes.slot(i));
  const auto start = SteadyClock::now();
  writer.stop(5s);
  EXPECT_LT(SteadyClock::now() - start, 5s);
  // Every callback has run by the time stop() returns.
  const auto results = outcomes.results();
  ASSERT_EQ(results.size(), 100u);
  for (const auto& [index, result] : results) {
    ASSERT_TRUE(result.has_value()) << index << ": " << result.error().message;
  }
  EXPECT_EQ(jobs_of(0) + jobs_of(1) + jobs_of(2) + jobs_of(3), 100u);
  EXPECT_EQ(writer.pending(), 0u);
  writer.stop();  // again: a no-op
}

TEST_F(RunWriterTest, StopGivesUpAfterItsGraceWhileTheStoreIsDown) {
  store_->set_hook([](const std::vector<RunRecord>&) -> Result<void> { return unavailable(); });
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 4, .max_delay = 1ms, .max_backoff = 5s});
  for (int i = 0; i < 10; ++i) writer.submit(run(0, i), outcomes.slot(i));
  std::this_thread::sleep_for(50ms);  // the writer is in its backoff by now
  const auto start = SteadyClock::now();
  writer.stop(300ms);
  const auto took = SteadyClock::now() - start;
  EXPECT_GE(took, 250ms);  // it kept trying for its grace...
  EXPECT_LT(took, 3s);     // ...and did not sleep out its 5 s backoff
  const auto results = outcomes.results();
  ASSERT_EQ(results.size(), 10u);
  for (const auto& [index, result] : results) {
    ASSERT_FALSE(result.has_value()) << index;
    EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(result.error().message, "shutting down");
  }
  EXPECT_EQ(writer.pending(), 0u);
  EXPECT_EQ(jobs_of(0), 0u);

  // After stop, a submit is answered at once, on the caller's thread.
  std::optional<Result<RecordedRun>> late;
  std::thread::id answered_on;
  writer.submit(run(0, 99), [&](Result<RecordedRun> result) {
    late = std::move(result);
    answered_on = std::this_thread::get_id();
  });
  ASSERT_TRUE(late.has_value());
  ASSERT_FALSE(late->has_value());
  EXPECT_EQ(late->error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(answered_on, std::this_thread::get_id());
}

TEST_F(RunWriterTest, AThrowingCallbackDoesNotStopTheWriter) {
  Outcomes outcomes;
  RunWriter writer(*store_, log_, {.max_batch = 512, .max_delay = 1ms});
  writer.submit(run(0, 0), [](Result<RecordedRun>) { throw std::runtime_error("careless"); });
  writer.submit(run(0, 1), outcomes.slot(1));
  ASSERT_TRUE(outcomes.wait_for(1));
  EXPECT_TRUE(outcomes.results().front().second.has_value());
  writer.stop();
  EXPECT_EQ(jobs_of(0), 2u);
  EXPECT_TRUE(logged_text("careless"));
}

}  // namespace
}  // namespace fetchd
