#include "app/engine.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

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
    thread_ = std::thread([this] { loop(); });
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
  Impl(Store& store, std::unique_ptr<Broker> broker, const Config& config, const Clock& clock,
       Metrics& metrics, std::shared_ptr<spdlog::logger> log)
      : config(config),
        clock(clock),
        log(log),
        fetcher(make_curl_fetcher(fetcher_options(config), log)),
        broker(std::move(broker)),
        writer(store, log),
        scheduler(store, *this->broker, writer, clock, metrics, log, SchedulerOptions{}),
        workers(store, *this->broker, *fetcher, writer, scheduler, clock, metrics, log,
                worker_options(config)),
        pruner(store, config, clock, *log) {
    metrics.add_gauge("fetchd_queue_depth", "Runs waiting for a worker.",
                      [this] { return static_cast<double>(this->broker->depth()); });
    metrics.add_gauge("fetchd_fetches_in_flight", "Fetches in progress.",
                      [this] { return static_cast<double>(fetcher->in_flight()); });
    metrics.add_gauge("fetchd_suspended_tasks", "Tasks suspended after max_attempt failures.",
                      [&store] {
                        auto n = store.count_suspended_tasks();
                        return n ? static_cast<double>(*n) : -1.0;
                      });
    metrics.add_gauge("fetchd_scheduled_tasks", "Tasks with a next run planned.",
                      [this] { return static_cast<double>(scheduler.size()); });
    metrics.add_gauge("fetchd_runs_in_flight", "Tasks whose run is enqueued or running.",
                      [this] { return static_cast<double>(scheduler.in_flight()); });
  }

  const Config& config;
  const Clock& clock;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<Fetcher> fetcher;
  std::unique_ptr<Broker> broker;
  RunWriter writer;
  Scheduler scheduler;
  WorkerPool workers;
  Pruner pruner;
  bool started = false;
  bool stopped = false;
};

Engine::Engine(Store& store, std::unique_ptr<Broker> broker, const Config& config,
               const Clock& clock, Metrics& metrics, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(store, std::move(broker), config, clock, metrics,
                                   std::move(log))) {}

Engine::~Engine() {
  stop();
}

Result<void> Engine::start() {
  if (auto loaded = impl_->scheduler.load(); !loaded) return loaded;
  impl_->workers.start();
  impl_->scheduler.start();
  impl_->pruner.start();
  impl_->started = true;
  impl_->log->info("engine: {} tasks scheduled, {} concurrent fetches at most",
                   impl_->scheduler.size(), impl_->config.fetch_concurrency);
  return {};
}

TaskChangeListener& Engine::task_listener() {
  return impl_->scheduler;
}

void Engine::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  const auto grace = impl_->config.shutdown_grace;
  impl_->pruner.stop();
  impl_->scheduler.stop();
  impl_->workers.stop(grace);  // in-flight runs finish or go back to the broker
  impl_->fetcher->stop(std::chrono::milliseconds(0));
  impl_->writer.stop(grace);
  impl_->broker->close();
}

Engine::FeedSummary Engine::feed() {
  auto& d = *impl_;
  const std::size_t runs = d.scheduler.run_due_once(d.clock.now());
  // Every run ends by its own timeout (at most a day, TaskLimits), so this wait is bounded.
  const auto report = d.workers.drain(std::chrono::hours(25));
  stop();
  return FeedSummary{runs, report.counts.succeeded,
                     report.counts.failed + report.counts.timed_out + report.counts.unrecorded};
}

}  // namespace fetchd::app
