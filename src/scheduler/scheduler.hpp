// The Scheduler turns tasks into runs (DESIGN.md §3, docs in notes/engine.md): it keeps every
// schedulable task's next due time in a TaskHeap, enqueues a Run on the Broker when one comes
// due, records a `skipped` job when the task's previous run is still in flight, and is kept
// current by the API (TaskChangeListener) and the workers (RunListener) instead of polling.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/logger.h>

#include "broker/broker.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/task.hpp"
#include "core/task_events.hpp"
#include "core/time.hpp"
#include "scheduler/task_heap.hpp"
#include "store/run_writer.hpp"
#include "store/store.hpp"

namespace fetchd {

struct SchedulerOptions {
  std::size_t load_page = 1000;                  // Store::load_schedule page size
  std::chrono::milliseconds max_sleep{1000};     // the thread re-reads the Clock at least this
                                                 // often (wall-clock jumps, fake clocks in tests)
  std::chrono::milliseconds late_log_after{20};  // waking later than this is logged (debug)
  // Runs thought in flight for longer than this are checked against the broker every
  // `repair_after` (see repair()); 0 turns the check off.
  std::chrono::milliseconds repair_after{5000};
  // While the broker refuses runs, advance() is retried after this, doubling up to 5 s.
  std::chrono::milliseconds first_enqueue_backoff{100};
};

class Scheduler final : public TaskChangeListener, public RunListener {
 public:
  Scheduler(Store& store, Broker& broker, RunWriter& writer, const Clock& clock, Metrics& metrics,
            std::shared_ptr<spdlog::logger> log, SchedulerOptions options = {});
  ~Scheduler() override;  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // (Re)builds the heap from the store at clock.now(): a persisted next_run_at <= now gives one
  // catch-up run now. Keeps what it knows of runs in flight. Call before start().
  Result<void> load();
  // Everything due at or before `now`: enqueues runs and records skipped ones. Returns how many
  // runs it enqueued. The deterministic core; the thread calls it with clock.now().
  std::size_t advance(TimePoint now);
  // The earliest due time in the heap.
  std::optional<TimePoint> next_wakeup() const;
  // `fetchd feed`: load at `now`, then enqueue everything due at `now`, once, without a thread.
  // Returns the runs enqueued (0 as well when the store cannot be read: it is logged).
  std::size_t run_due_once(TimePoint now);

  // A thread that sleeps until the next due time or a change, then calls advance(clock.now()),
  // and calls repair() every repair_after. start() after stop() starts it again.
  void start();
  void stop();  // idempotent; joins the thread
  // Forgets everything, runs in flight included (a scheduler that starts to lead: what it knew
  // is stale). Call load() next.
  void reset();

  // Runs this scheduler thinks in flight for longer than repair_after and that the broker no
  // longer holds either finished without run_finished reaching it (the event was lost) or
  // were lost with the broker (Redis restarted without its data): either way the store now
  // tells the truth, so each such task is re-read and rescheduled from it — a lost run's
  // next_run_at never moved, so it runs again at once. Returns how many were repaired.
  std::size_t repair(TimePoint now);

  std::size_t size() const;       // tasks with a next due time
  std::size_t in_flight() const;  // tasks with a run enqueued and not finished

  // TaskChangeListener: called by the API after its change is committed (thread-safe).
  void task_changed(TaskId id) override;
  void task_deleted(TaskId id) override;
  Result<TimePoint> request_run(TaskId id) override;
  // Another process enqueued a run of the task (POST /tasks/{id}/run on an API process).
  void run_requested(TaskId id, TimePoint scheduled_at);
  // RunListener: called by the workers once a run's outcome is durable (thread-safe).
  void run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                    std::int64_t consecutive_failures) override;
  // A batch of them under one lock.
  void runs_finished(const std::vector<FinishedRun>& runs) override;

 private:
  Result<void> load_at(TimePoint now);
  // The entry's next due time after its run. mu_ held.
  void finish_locked(const FinishedRun& run);
  // Stores the task's fields in its entry and gives it its next due time; the caller then
  // forgets the entry if it is idle. mu_ held.
  ScheduledTask& apply_locked(const Task& task, TimePoint now);
  // A Task holding the entry's schedule fields, for the core/schedule.hpp functions. mu_ held.
  const Task& as_task_locked(const ScheduledTask& entry);
  void erase_locked(TaskId id);
  void forget_if_idle_locked(ScheduledTask& entry);
  // Wakes the thread when a change made the earliest due time earlier. mu_ held.
  void wake_if_earlier_locked(std::optional<TimePoint> before);
  void record_skipped(TaskId id, TimePoint scheduled_at, std::int64_t attempt, TimePoint now);
  void run_loop();
  void mark_in_flight_locked(ScheduledTask& entry, TimePoint now);
  // advance() could not enqueue `run` (the broker is down): its due time comes back, to be
  // retried after a backoff.
  void enqueue_failed(const Run& run, const Error& error, TimePoint now);

  Store& store_;
  Broker& broker_;
  RunWriter& writer_;
  const Clock& clock_;
  Metrics& metrics_;
  std::shared_ptr<spdlog::logger> log_;
  SchedulerOptions options_;

  // Serialises task_changed/task_deleted/request_run/load, each of which reads the store and
  // then applies what it read: without it a slow read of a task could be applied after the
  // task's deletion and bring it back.
  std::mutex changes_mu_;
  mutable std::mutex mu_;  // everything below
  std::condition_variable wake_;
  TaskHeap heap_;
  std::size_t in_flight_ = 0;
  Task scratch_;  // see as_task_locked: no allocation per due time
  bool woken_ = false;
  TimePoint hold_until_{};  // advance() waits for this after the broker refused a run
  std::chrono::milliseconds enqueue_backoff_{0};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fetchd
