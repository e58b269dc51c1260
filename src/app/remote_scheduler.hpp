// How the API and the workers of a scale-out process reach the leading scheduler, wherever it
// runs: task changes and finished runs become Coordinator events, and a run asked for through
// the API is enqueued here directly (the broker refuses a second run of a task in flight) and
// then announced.
#pragma once

#include <memory>

#include <spdlog/logger.h>

#include "broker/broker.hpp"
#include "broker/coordinator.hpp"
#include "core/task_events.hpp"
#include "core/time.hpp"
#include "store/store.hpp"

namespace fetchd::app {

class RemoteScheduler final : public TaskChangeListener, public RunListener {
 public:
  // Every reference must outlive this object. `broker` is only used to enqueue manual runs.
  RemoteScheduler(Store& store, Broker& broker, Coordinator& coordinator, const Clock& clock,
                  std::shared_ptr<spdlog::logger> log);

  void task_changed(TaskId id) override;
  void task_deleted(TaskId id) override;
  // kConflict while a run of the task is in the broker; kUnavailable when it is down.
  Result<TimePoint> request_run(TaskId id) override;
  void run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                    std::int64_t consecutive_failures) override;
  // One event message for the batch.
  void runs_finished(const std::vector<FinishedRun>& runs) override;

 private:
  // A lost event is repaired by the scheduler (its reload on resubscription, its repair of runs
  // in flight); here it is only logged.
  void publish(const EngineEvent& event);

  Store& store_;
  Broker& broker_;
  Coordinator& coordinator_;
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace fetchd::app
