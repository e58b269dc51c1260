// The Scheduler (src/scheduler/scheduler.cpp) driven by a fake clock through advance(now): exact
// due times, overlap skip, retries, suspension, reset, pause/resume, re-anchoring on PATCH,
// deletion, manual runs, catch-up after downtime, feed's one pass, and the real thread.
#include "scheduler/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "scheduler_fixture.hpp"

namespace fetchd::scheduler_test {
namespace {

using namespace std::chrono;
using std::chrono::milliseconds;

// Steps the fake clock from `from` to `to` (exclusive) every `step`, advancing the scheduler
// and finishing every run it enqueues at once with `outcome`. Returns the runs, in order.
std::vector<fetchd::Run> drive(FakeClock& clock, RecordingBroker& broker, Scheduler& scheduler,
                               TimePoint from, TimePoint to, Millis step,
                               const std::function<void(const fetchd::Run&)>& on_run) {
  std::vector<fetchd::Run> all;
  for (TimePoint now = from; now < to; now += step) {
    clock.set(now);
    scheduler.advance(now);
    for (const fetchd::Run& run : broker.take()) {
      all.push_back(run);
      on_run(run);
    }
  }
  return all;
}

TEST_F(SchedulerTest, TwoSecondTaskOverTenSecondsEnqueuesFiveRunsAtExactDueTimes) {
  const TaskId id = add_task(t0_, t0_ + hours(1), 2);
  EXPECT_EQ(scheduler_->size(), 1u);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_);
  const auto runs = drive(clock_, broker_, *scheduler_, t0_, t0_ + seconds(10), milliseconds(50),
                          [&](const fetchd::Run& run) { finish(run, RunOutcome::kSucceeded); });
  ASSERT_EQ(runs.size(), 5u);
  for (std::size_t k = 0; k < runs.size(); ++k) {
    EXPECT_EQ(runs[k].task_id, id);
    EXPECT_EQ(runs[k].scheduled_at, t0_ + seconds(2 * k));
    EXPECT_EQ(runs[k].attempt, 1);
    EXPECT_FALSE(runs[k].manual);
  }
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(10));
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 0\n"));
  EXPECT_EQ(jobs(id).size(), 5u);
}

TEST_F(SchedulerTest, DueTimeIsHonouredToTheMillisecond) {
  add_task(t0_ + milliseconds(1500), t0_ + hours(1), 5);
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(1499)), 0u);
  EXPECT_TRUE(broker_.take().empty());
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(1500)), 1u);
  const auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].scheduled_at, t0_ + milliseconds(1500));
}

TEST_F(SchedulerTest, WindowEdgesRunAtStartButNotAtEnd) {
  // [t0, t0 + 4 s), interval 2 s: due at +0 and +2; +4 is the end and does not happen.
  const TaskId id = add_task(t0_, t0_ + seconds(4), 2);
  const auto runs = drive(clock_, broker_, *scheduler_, t0_, t0_ + seconds(20), milliseconds(100),
                          [&](const fetchd::Run& run) { finish(run, RunOutcome::kSucceeded); });
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].scheduled_at, t0_);
  EXPECT_EQ(runs[1].scheduled_at, t0_ + seconds(2));
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->next_wakeup(), std::nullopt);
  EXPECT_EQ(must(store_->get_task(id), "get").next_run_at, std::nullopt);
}

TEST_F(SchedulerTest, RunInFlightAcrossTheNextDueIsSkippedOnce) {
  const TaskId id = add_task(t0_, t0_ + hours(1), 2);
  EXPECT_EQ(scheduler_->advance(t0_), 1u);
  const auto first = broker_.take();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(scheduler_->in_flight(), 1u);

  EXPECT_EQ(scheduler_->advance(t0_ + seconds(2) - milliseconds(1)), 0u);
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 0\n"));
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(2)), 0u);
  EXPECT_TRUE(broker_.take().empty());
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 1\n"));
  EXPECT_EQ(scheduler_->in_flight(), 1u);

  const auto recorded = wait_for_jobs(id, 1);
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].status, JobStatus::kSkipped);
  EXPECT_EQ(recorded[0].scheduled_at, t0_ + seconds(2));
  EXPECT_EQ(recorded[0].attempt, 1);
  // A skipped run leaves the task's state alone.
  const auto task = must(store_->get_task(id), "get");
  EXPECT_EQ(task.last.status, std::nullopt);

  clock_.set(t0_ + milliseconds(2500));
  EXPECT_EQ(finish(first[0], RunOutcome::kSucceeded), t0_ + seconds(4));
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(3)), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(4)), 1u);
  const auto next = broker_.take();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].scheduled_at, t0_ + seconds(4));
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 1\n"));
  EXPECT_EQ(wait_for_jobs(id, 2).size(), 2u);
}

TEST_F(SchedulerTest, EveryDueTimeDuringALongRunIsSkipped) {
  const TaskId id = add_task(t0_, t0_ + hours(1), 1);
  scheduler_->advance(t0_);
  ASSERT_EQ(broker_.take().size(), 1u);
  for (int s = 1; s <= 5; ++s) scheduler_->advance(t0_ + seconds(s));
  EXPECT_TRUE(broker_.take().empty());
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 5\n"));
  const auto recorded = wait_for_jobs(id, 5);
  ASSERT_EQ(recorded.size(), 5u);
  for (const Job& job : recorded) EXPECT_EQ(job.status, JobStatus::kSkipped);
}

TEST_F(SchedulerTest, FailureRetriesAfterOneSecondThenTwo) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60, 5);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);

  clock_.set(t0_ + milliseconds(100));
  EXPECT_EQ(finish(runs[0], RunOutcome::kFailed), t0_ + milliseconds(1100));
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + milliseconds(1100));
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(1099)), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(1100)), 1u);
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].scheduled_at, t0_ + milliseconds(1100));
  EXPECT_EQ(runs[0].attempt, 2);

  clock_.set(t0_ + milliseconds(1200));
  EXPECT_EQ(finish(runs[0], RunOutcome::kFailed), t0_ + milliseconds(3200));
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(3199)), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(3200)), 1u);
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].attempt, 3);

  // A success resets the count and returns to the anchored schedule.
  clock_.set(t0_ + milliseconds(3300));
  EXPECT_EQ(finish(runs[0], RunOutcome::kSucceeded), t0_ + seconds(60));
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(60));
  scheduler_->advance(t0_ + seconds(60));
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].attempt, 1);
  EXPECT_EQ(must(store_->get_task(id), "get").consecutive_failures, 0);
}

TEST_F(SchedulerTest, SuspensionAtMaxAttemptRemovesTheTaskUntilReset) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60, 2);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  clock_.set(t0_ + milliseconds(10));
  ASSERT_TRUE(finish(runs[0], RunOutcome::kFailed).has_value());  // 1 of 2: retry
  EXPECT_EQ(scheduler_->size(), 1u);
  scheduler_->advance(t0_ + seconds(2));
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].attempt, 2);
  clock_.set(t0_ + seconds(2));
  EXPECT_EQ(finish(runs[0], RunOutcome::kFailed), std::nullopt);  // 2 of 2: suspended
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  EXPECT_EQ(scheduler_->next_wakeup(), std::nullopt);
  EXPECT_EQ(scheduler_->advance(t0_ + hours(5)), 0u);
  EXPECT_TRUE(must(store_->get_task(id), "get").suspended());

  // reset-attempt: failures to 0 and next_run_at = now, then the API notifies.
  clock_.set(t0_ + hours(5));
  must(store_->reset_attempts(id, clock_.now()), "reset");
  must(store_->set_next_run(id, clock_.now()), "set_next_run");
  scheduler_->task_changed(id);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + hours(5));
  EXPECT_EQ(scheduler_->advance(t0_ + hours(5)), 1u);
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].scheduled_at, t0_ + hours(5));
  EXPECT_EQ(runs[0].attempt, 1);
}

TEST_F(SchedulerTest, WorkerSaysSuspendedButMaxAttemptWasRaisedMeanwhile) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60, 1);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  // While the run is in flight the user raises max_attempt to 3.
  clock_.set(t0_ + milliseconds(500));
  auto task = must(store_->get_task(id), "get");
  auto raised = task.spec;
  raised.max_attempt = 3;
  must(store_->update_task(id, raised, clock_.now()), "update");
  scheduler_->task_changed(id);
  // The worker read the task before the change: for it, 1 failure of 1 suspends.
  scheduler_->run_finished(id, std::nullopt, 1);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(60));
}

TEST_F(SchedulerTest, PauseAndResume) {
  const TaskId id = add_task(t0_, t0_ + days(1), 10);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);

  // Paused while the run is in flight: its completion does not bring it back.
  clock_.set(t0_ + seconds(1));
  must(store_->set_paused(id, true, clock_.now()), "pause");
  must(store_->set_next_run(id, std::nullopt), "set_next_run");
  scheduler_->task_changed(id);
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  scheduler_->run_finished(id, t0_ + seconds(10), 0);  // worker read it before the pause
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + minutes(5)), 0u);

  clock_.set(t0_ + minutes(5) + seconds(3));
  auto task = must(store_->set_paused(id, false, clock_.now()), "resume");
  must(store_->set_next_run(id, next_run_from(task, clock_.now())), "set_next_run");
  scheduler_->task_changed(id);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + minutes(5) + seconds(10));
  EXPECT_EQ(scheduler_->advance(t0_ + minutes(5) + seconds(10)), 1u);
  EXPECT_EQ(broker_.take().size(), 1u);
}

TEST_F(SchedulerTest, PatchOfTheIntervalReanchors) {
  const TaskId id = add_task(t0_, t0_ + days(1), 10);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  clock_.set(t0_ + milliseconds(200));
  finish(runs[0], RunOutcome::kSucceeded);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(10));

  // PATCH at +3 s: interval 4 s, and the start moved by half a second.
  clock_.set(t0_ + seconds(3));
  auto patched = must(store_->get_task(id), "get").spec;
  patched.task_interval = 4;
  patched.start_time = t0_ + milliseconds(500);
  auto task = must(store_->update_task(id, patched, clock_.now()), "update");
  must(store_->set_next_run(id, next_run_from(task, clock_.now())), "set_next_run");
  scheduler_->task_changed(id);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + milliseconds(4500));
  const auto after =
      drive(clock_, broker_, *scheduler_, t0_ + seconds(3), t0_ + seconds(17), milliseconds(100),
            [&](const fetchd::Run& run) { finish(run, RunOutcome::kSucceeded); });
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(after[0].scheduled_at, t0_ + milliseconds(4500));
  EXPECT_EQ(after[1].scheduled_at, t0_ + milliseconds(8500));
  EXPECT_EQ(after[2].scheduled_at, t0_ + milliseconds(12500));
  EXPECT_EQ(after[3].scheduled_at, t0_ + milliseconds(16500));
}

TEST_F(SchedulerTest, PatchWhileInFlightKeepsTheRunInFlight) {
  const TaskId id = add_task(t0_, t0_ + days(1), 10);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  clock_.set(t0_ + seconds(1));
  auto patched = must(store_->get_task(id), "get").spec;
  patched.task_interval = 2;
  must(store_->update_task(id, patched, clock_.now()), "update");
  scheduler_->task_changed(id);
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(2));
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(2)), 0u);  // still in flight: skipped
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 1\n"));
  EXPECT_EQ(scheduler_->request_run(id).error().code, ErrorCode::kConflict);
}

TEST_F(SchedulerTest, TaskDeletedDropsIt) {
  const TaskId a = add_task(t0_, t0_ + days(1), 10);
  const TaskId b = add_task(t0_, t0_ + days(1), 10);
  EXPECT_EQ(scheduler_->size(), 2u);
  must(store_->delete_task(a), "delete");
  scheduler_->task_deleted(a);
  EXPECT_EQ(scheduler_->size(), 1u);
  EXPECT_EQ(scheduler_->advance(t0_), 1u);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].task_id, b);

  // Deleted while in flight: the late completion is ignored.
  must(store_->delete_task(b), "delete");
  scheduler_->task_deleted(b);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  scheduler_->run_finished(b, t0_ + seconds(10), 0);
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + hours(1)), 0u);
  // A change notification for a task that no longer exists drops it too.
  scheduler_->task_changed(b);
  EXPECT_EQ(scheduler_->size(), 0u);
}

TEST_F(SchedulerTest, RequestRunConflictsWhileInFlight) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60);
  scheduler_->advance(t0_);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  auto conflict = scheduler_->request_run(id);
  ASSERT_FALSE(conflict.has_value());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(broker_.take().empty());

  clock_.set(t0_ + seconds(5));
  finish(runs[0], RunOutcome::kSucceeded);
  ASSERT_TRUE(scheduler_->request_run(id).has_value());
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], (fetchd::Run{id, t0_ + seconds(5), 1, true}));
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  EXPECT_EQ(scheduler_->request_run(id).error().code, ErrorCode::kConflict);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(60));  // the schedule is unchanged

  EXPECT_EQ(scheduler_->request_run(id + 1000).error().code, ErrorCode::kNotFound);
}

TEST_F(SchedulerTest, ManualRunAtADueTimeStandsForIt) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60);
  ASSERT_TRUE(scheduler_->request_run(id).has_value());  // now == t0, the first due time
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].scheduled_at, t0_);
  EXPECT_EQ(scheduler_->advance(t0_), 0u);
  EXPECT_TRUE(broker_.take().empty());
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 0\n"));
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(60));
}

TEST_F(SchedulerTest, ManualRunOfAPausedTaskDoesNotResumeIt) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60);
  must(store_->set_paused(id, true, clock_.now()), "pause");
  must(store_->set_next_run(id, std::nullopt), "set_next_run");
  scheduler_->task_changed(id);
  EXPECT_EQ(scheduler_->size(), 0u);
  ASSERT_TRUE(scheduler_->request_run(id).has_value());
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(runs[0].manual);
  clock_.set(t0_ + seconds(1));
  EXPECT_EQ(finish(runs[0], RunOutcome::kSucceeded), std::nullopt);
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
}

TEST_F(SchedulerTest, LoadAfterDowntimeGivesExactlyOneCatchUpRun) {
  // Persisted while "up": next run at +2 s. The process was down for an hour.
  const TaskId late = add_task(t0_, t0_ + days(1), 2, 3, /*notify=*/false);
  must(store_->set_next_run(late, t0_ + seconds(2)), "set_next_run");
  // Another task whose persisted next run is still ahead (a pending retry).
  const TaskId ahead = add_task(t0_, t0_ + days(1), 3600, 3, /*notify=*/false);
  // And a paused one, which is not loaded.
  const TaskId paused = add_task(t0_, t0_ + days(1), 2, 3, /*notify=*/false);
  must(store_->set_paused(paused, true, clock_.now()), "pause");
  must(store_->set_next_run(paused, std::nullopt), "set_next_run");

  const TimePoint now = t0_ + hours(1) + milliseconds(500);
  must(store_->set_next_run(ahead, now + seconds(2)), "set_next_run");
  clock_.set(now);
  make_scheduler(SchedulerOptions{.load_page = 2});  // several pages
  ASSERT_TRUE(scheduler_->load().has_value());
  EXPECT_EQ(scheduler_->size(), 2u);
  EXPECT_EQ(scheduler_->next_wakeup(), now);

  EXPECT_EQ(scheduler_->advance(now), 1u);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].task_id, late);
  EXPECT_EQ(runs[0].scheduled_at, now);
  clock_.set(now + milliseconds(100));
  EXPECT_EQ(finish(runs[0], RunOutcome::kSucceeded), t0_ + hours(1) + seconds(2));
  EXPECT_EQ(scheduler_->advance(now + milliseconds(1499)), 0u);
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 0\n"));

  EXPECT_EQ(scheduler_->advance(now + seconds(2)), 2u);
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].task_id, late);
  EXPECT_EQ(runs[0].scheduled_at, t0_ + hours(1) + seconds(2));
  EXPECT_EQ(runs[1].task_id, ahead);
  EXPECT_EQ(runs[1].scheduled_at, now + seconds(2));
}

TEST_F(SchedulerTest, ReloadKeepsRunsInFlight) {
  const TaskId id = add_task(t0_, t0_ + days(1), 2);
  scheduler_->advance(t0_);
  ASSERT_EQ(broker_.take().size(), 1u);
  clock_.set(t0_ + seconds(1));
  ASSERT_TRUE(scheduler_->load().has_value());
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  // The persisted next_run_at is still the in-flight run's due time: no catch-up for it.
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(2));
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(2)), 0u);
  EXPECT_EQ(scheduler_->request_run(id).error().code, ErrorCode::kConflict);
}

TEST_F(SchedulerTest, RunDueOnceEnqueuesWhatIsDueNowOnly) {
  const TaskId due = add_task(t0_, t0_ + days(1), 60, 3, false);
  const TaskId missed = add_task(t0_ - hours(2), t0_ + days(1), 60, 3, false);
  must(store_->set_next_run(missed, t0_ - hours(1)), "set_next_run");
  add_task(t0_ + seconds(1), t0_ + days(1), 60, 3, false);  // not yet
  const auto enqueued = scheduler_->run_due_once(t0_);
  EXPECT_EQ(enqueued, 2u);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 2u);
  std::sort(runs.begin(), runs.end(),
            [](const fetchd::Run& a, const fetchd::Run& b) { return a.task_id < b.task_id; });
  EXPECT_EQ(runs[0], (fetchd::Run{due, t0_, 1, false}));
  EXPECT_EQ(runs[1], (fetchd::Run{missed, t0_, 1, false}));
  EXPECT_EQ(scheduler_->in_flight(), 2u);
}

TEST_F(SchedulerTest, BrokerRefusalLeavesNothingInFlight) {
  add_task(t0_, t0_ + days(1), 2);
  broker_.refuse(true);
  EXPECT_EQ(scheduler_->advance(t0_), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  broker_.refuse(false);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(2)), 1u);
  EXPECT_EQ(broker_.take().size(), 1u);
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 0\n"));
}

TEST_F(SchedulerTest, BrokerRefusalBringsTheDueTimeBackAsACatchUpRun) {
  const TaskId id = add_task(t0_, t0_ + days(1), 2);
  broker_.refuse(true);
  EXPECT_EQ(scheduler_->advance(t0_), 0u);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_);  // still due: nothing was lost
  broker_.refuse(false);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(3)), 1u);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], (fetchd::Run{id, t0_, 1, false}));    // the due time that was refused
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(4));  // t0+2 s coalesced into it
}

TEST_F(SchedulerTest, ARunHeldByTheBrokerElsewhereCountsAsInFlight) {
  const TaskId id = add_task(t0_, t0_ + days(1), 2);
  broker_.hold_elsewhere(id);  // e.g. POST /tasks/{id}/run on an API process
  EXPECT_EQ(scheduler_->advance(t0_), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(2)), 0u);  // skipped: the run is in flight
  EXPECT_EQ(wait_for_jobs(id, 1).front().status, JobStatus::kSkipped);
  // It finished but the event never came: the broker no longer holds it, so repair() re-reads
  // the task from the store, whose next_run_at (t0) never moved: it runs again at once.
  broker_.forget(id);
  EXPECT_EQ(scheduler_->repair(t0_ + seconds(4)), 0u);  // in flight for less than 5 s
  EXPECT_EQ(scheduler_->repair(t0_ + seconds(6)), 1u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(6)), 1u);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].task_id, id);
}

TEST_F(SchedulerTest, RepairTakesWhatTheStoreRecordedForARunFinishedUnheard) {
  const TaskId id = add_task(t0_, t0_ + days(1), 10);
  EXPECT_EQ(scheduler_->advance(t0_), 1u);
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  // Recorded by a worker elsewhere (next run t0+10 s); its run_finished event is lost.
  clock_.set(t0_ + seconds(1));
  must(store_->record_runs({[&] {
    RunRecord record;
    record.job.task_id = id;
    record.job.attempt = 1;
    record.job.scheduled_at = t0_;
    record.job.status = JobStatus::kFailed;
    record.job.error = "HTTP 503";
    record.next_run_at = t0_ + seconds(2);  // a retry
    return record;
  }()}),
       "record_runs");
  // Still held: nothing to repair, whatever its age.
  EXPECT_EQ(scheduler_->repair(t0_ + seconds(8)), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  broker_.forget(id);
  EXPECT_EQ(scheduler_->repair(t0_ + seconds(8)), 1u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  // The retry the store planned is overdue: one run, now.
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(8)), 1u);
  runs = broker_.take();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].attempt, 2);  // consecutive_failures came from the store too
}

TEST_F(SchedulerTest, RunRequestedElsewhereIsInFlightHere) {
  const TaskId id = add_task(t0_, t0_ + days(1), 60);
  scheduler_->run_requested(id, t0_);
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  EXPECT_EQ(scheduler_->advance(t0_), 0u);  // the manual run at t0 stands for the due time
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(60));
  EXPECT_TRUE(broker_.take().empty());
}

TEST_F(SchedulerTest, ResetForgetsEvenRunsInFlight) {
  add_task(t0_, t0_ + days(1), 60);
  EXPECT_EQ(scheduler_->advance(t0_), 1u);
  scheduler_->reset();
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  ASSERT_TRUE(scheduler_->load().has_value());
  EXPECT_EQ(scheduler_->size(), 1u);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
}

TEST_F(SchedulerTest, LateAdvanceCoalescesInsteadOfFloodingSkips) {
  add_task(t0_, t0_ + days(1), 1);
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(3600)), 1u);  // an hour late: one run
  EXPECT_TRUE(metrics_contain("fetchd_skipped_runs_total 0\n"));
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(3601));
}

TEST_F(SchedulerTest, HundredThousandTasksLoadAndAdvance) {
  constexpr int kTasks = 100'000;
  for (int i = 0; i < kTasks; ++i) {
    // No persisted next_run_at (one write per task keeps the test short): first due >= now.
    must(store_->create_task(owner_, spec(t0_ + milliseconds(i % 1000), t0_ + days(1), 1 + i % 7),
                             clock_.now()),
         "create_task");
  }
  ASSERT_TRUE(scheduler_->load().has_value());
  EXPECT_EQ(scheduler_->size(), static_cast<std::size_t>(kTasks));
  EXPECT_EQ(scheduler_->next_wakeup(), t0_);
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(499)), static_cast<std::size_t>(kTasks / 2));
  EXPECT_EQ(scheduler_->advance(t0_ + milliseconds(999)), static_cast<std::size_t>(kTasks / 2));
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(kTasks));
  EXPECT_TRUE(std::is_sorted(
      runs.begin(), runs.end(),
      [](const fetchd::Run& a, const fetchd::Run& b) { return a.scheduled_at < b.scheduled_at; }));
  EXPECT_EQ(scheduler_->in_flight(), static_cast<std::size_t>(kTasks));
  for (const fetchd::Run& run : runs) scheduler_->run_finished(run.task_id, std::nullopt, 0);
  EXPECT_EQ(scheduler_->in_flight(), 0u);
  EXPECT_EQ(scheduler_->size(), static_cast<std::size_t>(kTasks));
}

TEST_F(SchedulerTest, ABatchOfFinishedRunsActsAsEachOneDid) {
  const TaskId a = add_task(t0_, t0_ + days(1), 10);
  const TaskId b = add_task(t0_, t0_ + days(1), 10);
  add_task(t0_, t0_ + days(1), 10);  // c
  EXPECT_EQ(scheduler_->advance(t0_), 3u);
  ASSERT_EQ(broker_.take().size(), 3u);
  EXPECT_EQ(scheduler_->in_flight(), 3u);
  // a: next run as recorded; b: suspended by the worker's count (nullopt); an unknown task is
  // ignored; c stays in flight.
  scheduler_->runs_finished({{a, t0_ + seconds(10), 0}, {b, std::nullopt, 0}, {999, t0_, 0}});
  EXPECT_EQ(scheduler_->in_flight(), 1u);
  EXPECT_EQ(scheduler_->next_wakeup(), t0_ + seconds(10));
  EXPECT_EQ(scheduler_->advance(t0_ + seconds(10)), 2u);  // a, and b from its own schedule
  auto runs = broker_.take();
  ASSERT_EQ(runs.size(), 2u);
  std::set<TaskId> ids{runs[0].task_id, runs[1].task_id};
  EXPECT_EQ(ids, (std::set<TaskId>{a, b}));
  EXPECT_EQ(scheduler_->in_flight(), 3u);  // c's run is still out
  scheduler_->runs_finished({});
  EXPECT_EQ(scheduler_->in_flight(), 3u);
}

// --- the thread --------------------------------------------------------------------------

TEST_F(SchedulerTest, ThreadEnqueuesWhenTheFakeClockReachesTheDueTime) {
  make_scheduler(SchedulerOptions{.max_sleep = milliseconds(5)});
  const TaskId id = add_task(t0_ + seconds(1), t0_ + days(1), 60);
  scheduler_->start();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_TRUE(broker_.take().empty());
  clock_.set(t0_ + seconds(1));
  std::vector<fetchd::Run> runs;
  for (int i = 0; i < 400 && runs.empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    runs = broker_.take();
  }
  scheduler_->stop();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], (fetchd::Run{id, t0_ + seconds(1), 1, false}));
  scheduler_->stop();  // idempotent
}

TEST_F(SchedulerTest, ThreadWithTheRealClockRunsOnTimeNeverEarly) {
  SystemClock real;
  scheduler_.reset();
  scheduler_ = std::make_unique<Scheduler>(*store_, broker_, *writer_, real, metrics_, nullptr,
                                           SchedulerOptions{});
  scheduler_->start();
  const TimePoint start = real.now() + milliseconds(300);
  auto task = must(store_->create_task(owner_, spec(start, start + hours(1), 1), real.now()),
                   "create_task");
  must(store_->set_next_run(task.id, next_run_from(task, real.now())), "set_next_run");
  scheduler_->task_changed(task.id);  // wakes the thread, which was sleeping with nothing due
  std::vector<RecordingBroker::Enqueued> seen;
  for (int i = 0; i < 300 && seen.empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    seen = broker_.take_timed();
  }
  scheduler_->stop();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].run.scheduled_at, start);
  const auto at = time_point_cast<Millis>(seen[0].at);
  EXPECT_GE(at, start);
  EXPECT_LT(at - start, milliseconds(250));  // generous: 2 shared cores under sanitizers
}

}  // namespace
}  // namespace fetchd::scheduler_test
