// The execution engine of one process, wired from the Config: the fetcher, the broker, the
// run writer, the scheduler, the workers and the pruner, started and stopped in the order
// that loses nothing (DESIGN.md §3, docs/ARCHITECTURE.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <spdlog/logger.h>

#include "broker/broker.hpp"
#include "broker/coordinator.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/task_events.hpp"
#include "core/time.hpp"
#include "store/store.hpp"

namespace fetchd::app {

// Which parts of the engine this process runs (`fetchd scheduler`, `fetchd worker`, or both).
struct EngineRoles {
  bool scheduler = true;
  bool workers = true;
};

class Engine {
 public:
  // `broker`: where runs go from the scheduler to the workers (app::open_broker).
  // `coordinator` (scale-out; may be null, and must then be null for every process): the
  // scheduler runs only while it holds the leader lease, learns of task changes and finished
  // runs through its events, and the workers announce finished runs there. Stopped by stop().
  Engine(Store& store, std::unique_ptr<Broker> broker, const Config& config, const Clock& clock,
         Metrics& metrics, std::shared_ptr<spdlog::logger> log, EngineRoles roles = {},
         Coordinator* coordinator = nullptr);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Loads the schedule from the store and starts every thread.
  Result<void> start();
  // What the API tells of task changes: the scheduler, without a coordinator. (With one, the
  // API publishes them: see RemoteScheduler.)
  TaskChangeListener& task_listener();
  // The broker answers (for /readyz).
  Result<void> ping();
  // SIGTERM: stop scheduling, let in-flight runs finish for up to shutdown_grace, put the
  // unfinished back (they are redone at the next start), flush the run writer.
  void stop();

  struct FeedSummary {
    std::size_t runs = 0;
    std::size_t succeeded = 0;
    std::size_t failed = 0;
  };
  // `fetchd feed`: enqueue every task due now, run them all to completion, stop.
  FeedSummary feed();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fetchd::app
