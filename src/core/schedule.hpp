// When a task runs (DESIGN.md §3): due times anchored at start_time + k * task_interval inside
// [start_time, end_time), prompt retries with capped exponential backoff, and what the next
// run of a task is after a run finished. Pure functions of the task and a time: the scheduler,
// the workers and the API all ask these, so that they can never disagree.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "core/task.hpp"
#include "core/time.hpp"

namespace fetchd {

// The first due time >= t: start_time + k * interval with k >= 0, before end_time.
// nullopt when there is none (t is past the last due time).
std::optional<TimePoint> first_due_at_or_after(const TaskSpec& spec, TimePoint t);

// The last due time <= t inside the window; nullopt when t < start_time.
std::optional<TimePoint> last_due_at_or_before(const TaskSpec& spec, TimePoint t);

// Delay before retry number `failures` (1 after the first failed try): 1 s, 2 s, 4 s, ...
// capped at the task interval, then scaled by `jitter` (a factor in [0.9, 1.1] the caller
// draws at random; 1.0 in tests).
std::chrono::milliseconds retry_delay(std::int64_t failures, std::int64_t task_interval_s,
                                      double jitter = 1.0);

// What kind of run finished.
enum class RunOutcome { kSucceeded, kFailed };

// The time of the task's next run after a run that was due at `scheduled_at` finished at
// `now` with `outcome`, leaving `failures_after` consecutive failures:
// - a failure below max_attempt: now + retry_delay, unless the next regular due time comes
//   first;
// - a failure reaching max_attempt: nullopt (suspended);
// - a success: the next regular due time after both scheduled_at and now (due times that
//   passed while the run was in flight were skipped);
// - nullopt as well when the task's window is over or it is paused.
std::optional<TimePoint> next_run_after(const Task& task, TimePoint scheduled_at, TimePoint now,
                                        RunOutcome outcome, std::int64_t failures_after,
                                        double jitter = 1.0);

// The next run of a task that is not running now, e.g. just created, updated, resumed or
// reset, or loaded at start after downtime: nullopt when paused, suspended or its window is
// over; `now` when `catch_up_from` (the persisted next_run_at) is <= now (missed runs coalesce
// into one catch-up run now); else the first due time >= now, or `catch_up_from` itself when it
// is inside the window and comes before that (a pending retry survives a restart).
std::optional<TimePoint> next_run_from(const Task& task, TimePoint now,
                                       std::optional<TimePoint> catch_up_from = std::nullopt);

}  // namespace fetchd
