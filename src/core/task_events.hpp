// How the components that change tasks and run them tell each other, without knowing each
// other: the API tells the scheduler that a task changed (so that it never polls the store),
// and the workers tell it that a run finished.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

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

// A run whose outcome is recorded: `next_run_at` is what was persisted for the task (nullopt:
// suspended, paused, window over); `consecutive_failures` its count after this run.
struct FinishedRun {
  TaskId task_id = 0;
  std::optional<TimePoint> next_run_at;
  std::int64_t consecutive_failures = 0;
};

// Called by the workers once a run's outcome is recorded in the store.
class RunListener {
 public:
  virtual ~RunListener() = default;
  virtual void run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                            std::int64_t consecutive_failures) = 0;
  // The runs of one written batch, in order; an implementation may take them in one step.
  virtual void runs_finished(const std::vector<FinishedRun>& runs) {
    for (const FinishedRun& run : runs) {
      run_finished(run.task_id, run.next_run_at, run.consecutive_failures);
    }
  }
};

}  // namespace fetchd
