// Test doubles and a fixture for the Scheduler: a fake Clock the test moves by hand, a Broker
// that only records what was enqueued, and a real in-memory SQLite store and RunWriter, so that
// skipped runs and task state are checked where they really land.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.hpp"
#include "core/metrics.hpp"
#include "core/schedule.hpp"
#include "core/time.hpp"
#include "scheduler/scheduler.hpp"
#include "store/run_writer.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/fake_clock.hpp"

namespace fetchd::scheduler_test {

template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result) {
    throw std::runtime_error(what + " failed: " + result.error().message + " [" +
                             result.error().internal + "]");
  }
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

using test::FakeClock;

// Records enqueued runs (with the real time they arrived) and can be told to refuse them.
class RecordingBroker final : public Broker {
 public:
  struct Enqueued {
    fetchd::Run run;
    std::chrono::system_clock::time_point at;
  };

  Result<void> enqueue(const fetchd::Run& run) override {
    std::lock_guard lock(mu_);
    if (refuse_) return fail(ErrorCode::kUnavailable, "broker closed");
    if (busy_.contains(run.task_id)) return fail(ErrorCode::kConflict, "a run is held");
    runs_.push_back(Enqueued{run, std::chrono::system_clock::now()});
    return {};
  }
  // Every task asked about is held, except those forget() was told of.
  Result<std::vector<TaskId>> holding(const std::vector<TaskId>& tasks) override {
    std::lock_guard lock(mu_);
    std::vector<TaskId> held;
    for (TaskId id : tasks) {
      if (!forgotten_.contains(id)) held.push_back(id);
    }
    return held;
  }
  Result<void> ping() override { return {}; }
  Result<std::vector<Claim>> claim(std::size_t, std::chrono::milliseconds,
                                   std::chrono::milliseconds) override {
    return std::vector<Claim>{};
  }
  Result<void> complete(const Claim&) override { return {}; }
  Result<void> release(const Claim&) override { return {}; }
  Result<void> extend(const Claim&, std::chrono::milliseconds) override { return {}; }
  Result<std::size_t> reclaim_expired(TimePoint) override { return std::size_t{0}; }
  std::size_t depth() const override {
    std::lock_guard lock(mu_);
    return runs_.size();
  }
  void close() override {}

  void refuse(bool refuse) {
    std::lock_guard lock(mu_);
    refuse_ = refuse;
  }
  // The broker no longer holds a run of `id` (it finished unheard, or Redis lost it).
  void forget(TaskId id) {
    std::lock_guard lock(mu_);
    forgotten_.insert(id);
    busy_.erase(id);
  }
  // Enqueueing `id` answers kConflict (another process's run of it is held).
  void hold_elsewhere(TaskId id) {
    std::lock_guard lock(mu_);
    busy_.insert(id);
  }
  // The runs enqueued since the last take().
  std::vector<fetchd::Run> take() {
    std::lock_guard lock(mu_);
    std::vector<fetchd::Run> runs;
    for (auto& e : runs_) runs.push_back(e.run);
    runs_.clear();
    return runs;
  }
  std::vector<Enqueued> take_timed() {
    std::lock_guard lock(mu_);
    return std::exchange(runs_, {});
  }

 private:
  mutable std::mutex mu_;
  bool refuse_ = false;
  std::set<TaskId> forgotten_;
  std::set<TaskId> busy_;
  std::vector<Enqueued> runs_;
};

inline TimePoint utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  using namespace std::chrono;
  return TimePoint(sys_days(year(y) / month(mo) / day(d)).time_since_epoch()) + hours(h) +
         minutes(mi) + seconds(s);
}

class SchedulerTest : public ::testing::Test {
 protected:
  static constexpr auto kT0 = std::chrono::sys_days(std::chrono::year(2024) / 5 / 1);
  const TimePoint t0_ = TimePoint(kT0.time_since_epoch());

  void SetUp() override {
    store_ = must(open_sqlite_store(":memory:"), "open store");
    must(store_->migrate(), "migrate");
    owner_ = must(store_->create_user(NewUser{"alice", "x", Role::kUser}, t0_), "user").id;
    writer_ = std::make_unique<RunWriter>(*store_, nullptr);
    make_scheduler({});
  }

  void make_scheduler(SchedulerOptions options) {
    scheduler_.reset();
    scheduler_ =
        std::make_unique<Scheduler>(*store_, broker_, *writer_, clock_, metrics_, nullptr, options);
  }

  TaskSpec spec(TimePoint start, TimePoint end, std::int64_t interval_s,
                std::int64_t max_attempt = 3) const {
    TaskSpec s;
    s.name = "feed";
    s.url = "http://127.0.0.1:1/feed.json";
    s.start_time = start;
    s.end_time = end;
    s.task_interval = interval_s;
    s.max_attempt = max_attempt;
    return s;
  }

  // What the API does on create: store, persist next_run_from(task, now), notify.
  TaskId add_task(TimePoint start, TimePoint end, std::int64_t interval_s,
                  std::int64_t max_attempt = 3, bool notify = true) {
    auto task =
        must(store_->create_task(owner_, spec(start, end, interval_s, max_attempt), clock_.now()),
             "create_task");
    must(store_->set_next_run(task.id, next_run_from(task, clock_.now())), "set_next_run");
    if (notify) scheduler_->task_changed(task.id);
    return task.id;
  }

  // What a worker does when `run` ends at clock.now(): record it, then tell the scheduler.
  // Returns the persisted next run.
  std::optional<TimePoint> finish(const fetchd::Run& run, RunOutcome outcome) {
    const auto now = clock_.now();
    auto task = must(store_->get_task(run.task_id), "get_task");
    const bool ok = outcome == RunOutcome::kSucceeded;
    const std::int64_t failures = ok ? 0 : task.consecutive_failures + 1;
    const auto next = next_run_after(task, run.scheduled_at, now, outcome, failures);
    RunRecord record;
    record.job.task_id = run.task_id;
    record.job.attempt = static_cast<int>(run.attempt);
    record.job.scheduled_at = run.scheduled_at;
    record.job.started_at = now;
    record.job.finished_at = now;
    record.job.status = ok ? JobStatus::kSucceeded : JobStatus::kFailed;
    if (ok) {
      record.body = "[]";
      record.content_hash = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
    } else {
      record.job.error = "HTTP 503";
    }
    record.next_run_at = next;
    must(store_->record_runs({record}), "record_runs");
    scheduler_->run_finished(run.task_id, next, failures);
    return next;
  }

  std::vector<Job> jobs(TaskId id) {
    JobQuery query;
    query.task_id = id;
    return must(store_->list_jobs(query), "list_jobs").items;
  }

  // The RunWriter writes on its own thread: wait (bounded) until `count` jobs are there.
  std::vector<Job> wait_for_jobs(TaskId id, std::size_t count) {
    for (int i = 0; i < 500; ++i) {
      auto found = jobs(id);
      if (found.size() >= count) return found;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return jobs(id);
  }

  bool metrics_contain(const std::string& line) const {
    return metrics_.render().find(line) != std::string::npos;
  }

  FakeClock clock_{t0_};
  RecordingBroker broker_;
  Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RunWriter> writer_;
  std::unique_ptr<Scheduler> scheduler_;  // declared last: destroyed first
  UserId owner_ = 0;
};

}  // namespace fetchd::scheduler_test
