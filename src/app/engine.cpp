#include "app/engine.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "app/remote_scheduler.hpp"

#include "core/thread_name.hpp"
#include "fetch/curl_fetcher.hpp"
#include "scheduler/scheduler.hpp"
#include "store/run_writer.hpp"
#include "worker/worker_pool.hpp"

namespace fetchd::app {

namespace {

// Deletes old jobs (and the data no job needs) in small batches, pausing between them so that
// the run writer is never held up for long.
class Pruner {
 public:
  Pruner(Store& store, const Config& config, const Clock& clock, spdlog::logger& log)
      : store_(store), config_(config), clock_(clock), log_(log) {}
  ~Pruner() { stop(); }

  void start() {
    thread_ = std::thread([this] {
      name_this_thread("fetchd-prune");
      loop();
    });
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr std::chrono::seconds kPeriod{60};
  static constexpr std::chrono::milliseconds kPause{50};

  bool sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, d, [&] { return stopping_; });
  }

  void loop() {
    while (sleep(kPeriod)) {
      RetentionPolicy policy;
      policy.jobs_per_task = config_.retention_jobs_per_task;
      policy.older_than = clock_.now() - config_.retention_max_age;
      std::int64_t total = 0;
      for (;;) {
        auto deleted = store_.prune(policy);
        if (!deleted) {
          log_.warn("pruner: {}", deleted.error().message);
          break;
        }
        total += *deleted;
        if (*deleted == 0 || !sleep(kPause)) break;
      }
      if (total > 0) log_.info("pruner: deleted {} old rows", total);
    }
  }

  Store& store_;
  const Config& config_;
  const Clock& clock_;
  spdlog::logger& log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

CurlFetcherOptions fetcher_options(const Config& config) {
  CurlFetcherOptions options;
  options.concurrency = config.fetch_concurrency;
  options.allow_private = config.fetch_allow_private;
  options.allowed_ranges = parse_ip_ranges(config.fetch_allow_cidrs).value();  // loader checked
  return options;
}

WorkerOptions worker_options(const Config& config) {
  WorkerOptions options;
  options.concurrency = config.fetch_concurrency;
  options.default_timeout = config.fetch_default_timeout;
  options.max_response_bytes = config.fetch_max_response_bytes;
  options.lease = config.worker_lease;
  return options;
}

}  // namespace

struct Engine::Impl {
  Impl(Store& store, std::unique_ptr<Broker> broker_in, const Config& config, const Clock& clock,
       Metrics& metrics, std::shared_ptr<spdlog::logger> log, EngineRoles roles,
       Coordinator* coordinator)
      : config(config),
        clock(clock),
        log(log),
        roles(roles),
        coordinator(coordinator),
        broker(std::move(broker_in)),
        writer(store, log) {
    if (roles.scheduler) {
      SchedulerOptions scheduling;
      // In one process nothing can lose a run or its end: the in-process broker goes down only
      // with the scheduler, and workers report to it directly. Only a shared broker needs the
      // periodic scan of runs in flight (it holds the scheduler's lock over every task).
      if (coordinator == nullptr) scheduling.repair_after = std::chrono::milliseconds(0);
      scheduler.emplace(store, *broker, writer, clock, metrics, log, scheduling);
      pruner.emplace(store, config, clock, *log);
      metrics.add_gauge("fetchd_scheduled_tasks", "Tasks with a next run planned.",
                        [this] { return static_cast<double>(scheduler->size()); });
      metrics.add_gauge("fetchd_runs_in_flight", "Tasks whose run is enqueued or running.",
                        [this] { return static_cast<double>(scheduler->in_flight()); });
      metrics.add_gauge("fetchd_scheduler_leader",
                        "1 while this process's scheduler leads (always, without Redis).",
                        [this] { return leading.load() ? 1.0 : 0.0; });
      metrics.add_gauge("fetchd_suspended_tasks", "Tasks suspended after max_attempt failures.",
                        [&store] {
                          auto n = store.count_suspended_tasks();
                          return n ? static_cast<double>(*n) : -1.0;
                        });
    }
    if (coordinator != nullptr) remote.emplace(store, *broker, *coordinator, clock, log);
    if (roles.workers) {
      fetcher = make_curl_fetcher(fetcher_options(config), log);
      RunListener& listener =
          remote ? static_cast<RunListener&>(*remote) : static_cast<RunListener&>(*scheduler);
      workers.emplace(store, *broker, *fetcher, writer, listener, clock, metrics, log,
                      worker_options(config));
      metrics.add_gauge("fetchd_fetches_in_flight", "Fetches in progress.",
                        [this] { return static_cast<double>(fetcher->in_flight()); });
    }
    metrics.add_gauge("fetchd_queue_depth", "Runs waiting for a worker.",
                      [this] { return static_cast<double>(broker->depth()); });
  }

  // Scale-out: lead while the lease is ours, follow otherwise (see Coordinator::lead).
  void lead_loop() {
    using SteadyClock = std::chrono::steady_clock;
    const auto ttl = config.scheduler_lease_ttl;
    const auto period = std::max<std::chrono::milliseconds>(ttl / 3, std::chrono::milliseconds(50));
    SteadyClock::time_point renewed{};
    std::string token;
    bool warned = false;
    std::unique_lock lock(lead_mutex);
    while (!lead_stop) {
      lock.unlock();
      auto lease = coordinator->lead(ttl);
      const auto now = SteadyClock::now();
      if (lease && *lease) {
        renewed = now;
        warned = false;
        // A new token while leading: Redis lost the lease (a restart without its data), and
        // with it perhaps runs and events; start over as a new leader.
        if (!leading || **lease != token) {
          if (leading) scheduler->stop();
          leading = false;
          token = **lease;
          take_lead(token);
        }
      } else {
        if (!lease && !warned) {
          log->warn("scheduler: cannot reach the lease: {}", lease.error().message);
          warned = true;
        }
        if (leading && (lease || now - renewed >= ttl)) {
          scheduler->stop();
          leading = false;
          log->warn("scheduler: lost the leader lease; following");
        }
      }
      lock.lock();
      lead_wake.wait_for(lock, leading ? period : std::min(period, std::chrono::milliseconds(1000)),
                         [this] { return lead_stop; });
    }
    lock.unlock();
    if (leading) {
      scheduler->stop();
      leading = false;
      coordinator->resign();
    }
  }

  void take_lead(const std::string& token) {
    // Events from now on apply (load() serialises them after itself): none is missed between
    // the load and the start.
    accept_events = true;
    broker->set_fencing_token(token);
    scheduler->reset();
    if (auto loaded = scheduler->load(); !loaded) {
      log->error("scheduler: leading, but the schedule cannot be loaded: {} {}; retrying",
                 loaded.error().message, loaded.error().internal);
      accept_events = false;
      return;
    }
    scheduler->start();
    leading = true;
    log->info("scheduler: leading (lease token {}), {} tasks scheduled", token, scheduler->size());
  }

  void on_event(const EngineEvent& event) {
    if (!accept_events) return;
    switch (event.kind) {
      case EngineEvent::Kind::kTaskChanged:
        scheduler->task_changed(event.task_id);
        break;
      case EngineEvent::Kind::kTaskDeleted:
        scheduler->task_deleted(event.task_id);
        break;
      case EngineEvent::Kind::kRunFinished:
        scheduler->run_finished(event.task_id, event.at, event.failures);
        break;
      case EngineEvent::Kind::kRunRequested:
        scheduler->run_requested(event.task_id, event.at.value_or(clock.now()));
        break;
    }
  }

  const Config& config;
  const Clock& clock;
  std::shared_ptr<spdlog::logger> log;
  EngineRoles roles;
  Coordinator* coordinator;
  std::unique_ptr<Broker> broker;
  RunWriter writer;
  std::optional<Scheduler> scheduler;
  std::optional<RemoteScheduler> remote;
  std::unique_ptr<Fetcher> fetcher;
  std::optional<WorkerPool> workers;
  std::optional<Pruner> pruner;
  std::atomic<bool> leading{false};
  std::atomic<bool> accept_events{false};
  std::mutex lead_mutex;
  std::condition_variable lead_wake;
  bool lead_stop = false;
  std::thread lead_thread;
  bool started = false;
  bool stopped = false;
};

Engine::Engine(Store& store, std::unique_ptr<Broker> broker, const Config& config,
               const Clock& clock, Metrics& metrics, std::shared_ptr<spdlog::logger> log,
               EngineRoles roles, Coordinator* coordinator)
    : impl_(std::make_unique<Impl>(store, std::move(broker), config, clock, metrics, std::move(log),
                                   roles, coordinator)) {}

Engine::~Engine() {
  stop();
}

Result<void> Engine::start() {
  Impl& d = *impl_;
  if (d.scheduler && d.coordinator == nullptr) {
    if (auto loaded = d.scheduler->load(); !loaded) return loaded;
  }
  if (d.workers) d.workers->start();
  if (d.scheduler) {
    if (d.coordinator != nullptr) {
      d.coordinator->subscribe([&d](const EngineEvent& event) { d.on_event(event); },
                               [&d] {
                                 if (!d.accept_events) return;
                                 // Events were missed, and runs perhaps lost with Redis: start
                                 // from the store; the broker's holds say which runs are still
                                 // in flight (enqueue answers kConflict for them).
                                 d.scheduler->reset();
                                 if (auto loaded = d.scheduler->load(); !loaded) {
                                   d.log->warn("scheduler: reload after missed events failed: {}",
                                               loaded.error().message);
                                 }
                               });
      d.lead_thread = std::thread([&d] {
        name_this_thread("fetchd-lead");
        d.lead_loop();
      });
    } else {
      d.scheduler->start();
      d.leading = true;
    }
    d.pruner->start();
  }
  d.started = true;
  if (d.scheduler && d.coordinator == nullptr) {
    d.log->info("engine: {} tasks scheduled, {} concurrent fetches at most", d.scheduler->size(),
                d.config.fetch_concurrency);
  } else {
    d.log->info("engine: {}{}{}", d.scheduler ? "scheduler (leads while it holds the lease)" : "",
                d.scheduler && d.workers ? ", " : "",
                d.workers ? "workers (" + std::to_string(d.config.fetch_concurrency) +
                                " concurrent fetches at most)"
                          : "");
  }
  return {};
}

TaskChangeListener& Engine::task_listener() {
  if (impl_->remote) return *impl_->remote;
  return *impl_->scheduler;
}

Result<void> Engine::ping() {
  return impl_->broker->ping();
}

void Engine::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  const auto grace = d.config.shutdown_grace;
  if (d.pruner) d.pruner->stop();
  if (d.lead_thread.joinable()) {
    {
      std::lock_guard lock(d.lead_mutex);
      d.lead_stop = true;
    }
    d.lead_wake.notify_all();
    d.lead_thread.join();
  }
  if (d.coordinator != nullptr) d.coordinator->stop();
  d.accept_events = false;
  if (d.scheduler) d.scheduler->stop();
  if (d.workers) d.workers->stop(grace);  // in-flight runs finish or go back to the broker
  if (d.fetcher) d.fetcher->stop(std::chrono::milliseconds(0));
  d.writer.stop(grace);
  d.broker->close();
}

Engine::FeedSummary Engine::feed() {
  auto& d = *impl_;
  const std::size_t runs = d.scheduler->run_due_once(d.clock.now());
  // Every run ends by its own timeout (at most a day, TaskLimits), so this wait is bounded.
  const auto report = d.workers->drain(std::chrono::hours(25));
  stop();
  return FeedSummary{runs, report.counts.succeeded,
                     report.counts.failed + report.counts.timed_out + report.counts.unrecorded};
}

}  // namespace fetchd::app
