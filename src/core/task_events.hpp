// How the components that change tasks and run them tell each other, without knowing each
// other: the API tells the scheduler that a task changed (so that it never polls the store),
// and the workers tell it that a run finished.
#pragma once

#include <cstdint>
#include <optional>

#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

// Called on the request's thread after the change is committed. Implementations must not
// throw (the client would get a 500 for a change that happened) and should return quickly.
class TaskChangeListener {
 public:
  virtual ~TaskChangeListener() = default;
  // After a successful create, update, pause, resume or reset-attempt of the task.
  virtual void task_changed(TaskId id) = 0;
  // After a successful delete of the task.
  virtual void task_deleted(TaskId id) = 0;
  // POST /tasks/{id}/run: run it now, outside the schedule; returns the run's scheduled_at.
  // kConflict when a run of the task is in flight; kUnavailable when no scheduler can take it.
  virtual Result<TimePoint> request_run(TaskId /*id*/) {
    return fail(ErrorCode::kUnavailable, "no scheduler is running in this process");
  }
};

// Called by the workers once a run's outcome is recorded in the store.
class RunListener {
 public:
  virtual ~RunListener() = default;
  // `next_run_at` is what was persisted for the task (nullopt: suspended, paused, window
  // over); `consecutive_failures` its count after this run.
  virtual void run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                            std::int64_t consecutive_failures) = 0;
};

}  // namespace fetchd
