// How whoever changes tasks (the API) tells whoever schedules them that a task changed, so that
// the scheduler learns of creations, updates, deletions and resets at once instead of polling.
#pragma once

#include "core/ids.hpp"

namespace fetchd {

// Called on the request's thread after the change is committed. Implementations must not
// throw (the client would get a 500 for a change that happened) and should return quickly.
class TaskChangeListener {
 public:
  virtual ~TaskChangeListener() = default;
  // After a successful create, update or reset-attempt of the task.
  virtual void task_changed(TaskId id) = 0;
  // After a successful delete of the task.
  virtual void task_deleted(TaskId id) = 0;
};

}  // namespace fetchd
