#include "app/remote_scheduler.hpp"

namespace fetchd::app {

RemoteScheduler::RemoteScheduler(Store& store, Broker& broker, Coordinator& coordinator,
                                 const Clock& clock, std::shared_ptr<spdlog::logger> log)
    : store_(store),
      broker_(broker),
      coordinator_(coordinator),
      clock_(clock),
      log_(std::move(log)) {}

void RemoteScheduler::task_changed(TaskId id) {
  publish({EngineEvent::Kind::kTaskChanged, id, std::nullopt, 0});
}

void RemoteScheduler::task_deleted(TaskId id) {
  publish({EngineEvent::Kind::kTaskDeleted, id, std::nullopt, 0});
}

Result<TimePoint> RemoteScheduler::request_run(TaskId id) {
  auto task = store_.get_task(id);
  if (!task) return tl::unexpected(task.error());
  const Run run{id, clock_.now(), task->consecutive_failures + 1, true};
  if (auto enqueued = broker_.enqueue(run); !enqueued) {
    if (enqueued.error().code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict, "a run of this task is in flight; try again when it ends");
    }
    return tl::unexpected(enqueued.error());
  }
  publish({EngineEvent::Kind::kRunRequested, id, run.scheduled_at, 0});
  return run.scheduled_at;
}

void RemoteScheduler::run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                                   std::int64_t consecutive_failures) {
  publish({EngineEvent::Kind::kRunFinished, id, next_run_at, consecutive_failures});
}

void RemoteScheduler::runs_finished(const std::vector<FinishedRun>& runs) {
  std::vector<EngineEvent> events;
  events.reserve(runs.size());
  for (const FinishedRun& run : runs) {
    events.push_back(
        {EngineEvent::Kind::kRunFinished, run.task_id, run.next_run_at, run.consecutive_failures});
  }
  if (auto sent = coordinator_.publish_all(events); !sent) {
    log_->warn("cannot tell the scheduler of {} finished runs: {}; it catches up by itself",
               events.size(), sent.error().message);
  }
}

void RemoteScheduler::publish(const EngineEvent& event) {
  if (auto sent = coordinator_.publish(event); !sent) {
    log_->warn("cannot tell the scheduler of {}: {}; it catches up by itself", encode(event),
               sent.error().message);
  }
}

}  // namespace fetchd::app
