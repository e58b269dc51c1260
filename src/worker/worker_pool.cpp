// WorkerPool: the claim loop, the parse pool, the lease heartbeat and the completion of runs
// (see worker_pool.hpp). A run is "in flight" from its claim until its outcome is durable.
#include "worker/worker_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sodium.h>

#include "core/schedule.hpp"
#include "core/thread_name.hpp"
#include "fetch/request_builder.hpp"
#include "worker/fetch_outcome.hpp"

namespace fetchd {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// Bodies up to this size are classified on the fetch thread (see on_fetched).
constexpr std::size_t kInlineBodyBytes = 16 * 1024;

// For key="value" log fields: the formatter escapes control characters, quotes are ours.
std::string log_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

template <typename T>
std::string or_dash(const std::optional<T>& value) {
  return value ? std::to_string(*value) : std::string("-");
}

// One claimed run. `claim` and `id` never change once registered; the rest is written by one
// stage at a time (claim thread, then parse thread, then writer thread), each handing over
// through a queue's mutex.
struct InFlightRun {
  std::uint64_t id = 0;
  Claim claim;
  std::optional<Task> task;
  std::chrono::milliseconds timeout{0};
  TimePoint started_at{};
  bool writing = false;          // guarded by Impl::mutex_: handed to the RunWriter
  TimePoint leased_at{};         // guarded by Impl::mutex_: claimed or last extended (clock_)
  std::uint64_t body_bytes = 0;  // guarded by Impl::mutex_: what its record holds of the body
  Job job;
  std::optional<TimePoint> next_run_at;
  std::int64_t failures_after = 0;
};

using RunPtr = std::shared_ptr<InFlightRun>;

}  // namespace

std::string default_worker_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "localhost");
  }
  return std::string(host) + ":" + std::to_string(getpid());
}

struct WorkerPool::Impl : std::enable_shared_from_this<Impl> {
  Impl(Store& store, Broker& broker, Fetcher& fetcher, RunWriter& writer, RunListener& listener,
       const Clock& clock, Metrics& metrics, std::shared_ptr<spdlog::logger> log,
       WorkerOptions options)
      : store_(store),
        broker_(broker),
        fetcher_(fetcher),
        writer_(writer),
        listener_(listener),
        clock_(clock),
        metrics_(metrics),
        log_(std::move(log)),
        options_(std::move(options)),
        rng_(std::random_device{}()) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    if (options_.worker_id.empty()) options_.worker_id = default_worker_id();
    options_.concurrency = std::max<std::size_t>(options_.concurrency, 1);
    if (options_.max_unrecorded == 0) options_.max_unrecorded = 4 * options_.concurrency;
    options_.claim_batch = std::max<std::size_t>(options_.claim_batch, 1);
    claim_min_ = std::clamp<std::size_t>(options_.concurrency / 8, 1, options_.claim_batch);
    claim_min_ = std::min(claim_min_, options_.max_unrecorded);  // else it could never claim
    options_.parse_threads = std::max(options_.parse_threads, 1u);
  }

  // --- lifecycle -------------------------------------------------------------------------

  void start() {
    std::lock_guard lock(mutex_);
    if (stopped_) throw std::logic_error("WorkerPool::start() after stop()");
    if (draining_) throw std::logic_error("WorkerPool::start() during drain()");
    if (claim_thread_.joinable()) return;
    start_workers_locked();
    claiming_ = true;
    claim_thread_ = std::thread([this] {
      name_this_thread("fetchd-claim");
      claim_loop(false, {});
    });
  }

  DrainReport drain(std::chrono::milliseconds timeout) {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) throw std::logic_error("WorkerPool::drain() after stop()");
      if (claim_thread_.joinable() || draining_) {
        throw std::logic_error("WorkerPool::drain() on a started pool");
      }
      start_workers_locked();
      claiming_ = true;
      draining_ = true;
    }
    const RunCounts before = counts();
    const bool complete = claim_loop(true, std::chrono::steady_clock::now() + timeout);
    {
      std::lock_guard lock(mutex_);
      claiming_ = false;
      draining_ = false;
    }
    const RunCounts after = counts();
    DrainReport report;
    report.complete = complete;
    report.counts = RunCounts{after.succeeded - before.succeeded, after.failed - before.failed,
                              after.timed_out - before.timed_out, after.dropped - before.dropped,
                              after.unrecorded - before.unrecorded};
    return report;
  }

  void stop(std::chrono::milliseconds grace) {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      claiming_ = false;
    }
    changed_.notify_all();
    if (claim_thread_.joinable()) claim_thread_.join();

    std::vector<RunPtr> unfinished;
    {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, grace, [&] { return runs_.empty(); });
      // Runs already handed to the RunWriter finish through its callback; the others go back.
      for (auto it = runs_.begin(); it != runs_.end();) {
        if (it->second->writing) {
          ++it;
        } else {
          unfinished.push_back(it->second);
          it = runs_.erase(it);
        }
      }
    }
    changed_.notify_all();
    // Each release goes to the front of the queue: newest first keeps the claim order there.
    std::sort(unfinished.begin(), unfinished.end(),
              [](const RunPtr& a, const RunPtr& b) { return a->id > b->id; });
    for (const RunPtr& run : unfinished) release_claim(*run);
    if (!unfinished.empty()) {
      log_->info("workers: {} unfinished runs put back in the queue", unfinished.size());
    }

    {
      std::lock_guard lock(finishing_mutex_);
      finish_stop_ = true;
    }
    finish_wake_.notify_all();
    if (finish_thread_.joinable()) finish_thread_.join();
    {
      std::lock_guard lock(mutex_);
      heartbeat_stop_ = true;
    }
    heartbeat_wake_.notify_all();
    if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
    {
      std::lock_guard lock(work_mutex_);
      work_stop_ = true;
      work_.clear();
    }
    work_ready_.notify_all();
    for (auto& t : parse_threads_) t.join();
    parse_threads_.clear();
  }

  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return runs_.size();
  }

  RunCounts counts() const {
    std::lock_guard lock(counts_mutex_);
    return counts_;
  }

  const std::string& worker_id() const { return options_.worker_id; }

 private:
  void start_workers_locked() {
    if (workers_started_) return;
    workers_started_ = true;
    writer_.on_batch_done([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->batch_done();
    });
    {
      std::lock_guard lock(finishing_mutex_);
      finisher_running_ = true;
    }
    finish_thread_ = std::thread([this] {
      name_this_thread("fetchd-finish");
      finish_loop();
    });
    for (unsigned i = 0; i < options_.parse_threads; ++i) {
      parse_threads_.emplace_back([this] {
        name_this_thread("fetchd-parse");
        work_loop();
      });
    }
    heartbeat_thread_ = std::thread([this] {
      name_this_thread("fetchd-lease");
      heartbeat_loop();
    });
  }

  // --- claiming --------------------------------------------------------------------------

  // Claims while there is room. With `until_idle`, returns true once the broker is empty and
  // nothing is in flight, false at `deadline`; else runs until stop().
  bool claim_loop(bool until_idle, SteadyTime deadline) {
    for (;;) {
      std::size_t room = 0;
      {
        std::unique_lock lock(mutex_);
        auto can_claim = [&] { return !claiming_ || room_locked() >= claim_min_; };
        if (until_idle) {
          if (!changed_.wait_until(lock, deadline, can_claim)) return false;
        } else {
          changed_.wait(lock, can_claim);
        }
        if (!claiming_) return false;
        room = room_locked();
      }
      if (until_idle && std::chrono::steady_clock::now() >= deadline) return false;

      const auto wait = until_idle ? std::chrono::milliseconds(0) : options_.claim_wait;
      const auto claim_started = std::chrono::steady_clock::now();
      auto claims = broker_.claim(std::min(room, options_.claim_batch), wait, options_.lease);
      if (!claims) {
        // Once per outage at warn level: a broker down for minutes must not flood the log.
        if (!claim_failing_) {
          log_->warn("workers: cannot claim runs: {}; retrying", claims.error().message);
        } else {
          log_->debug("workers: cannot claim runs: {}", claims.error().message);
        }
        claim_failing_ = true;
        pause(options_.claim_wait);
        continue;
      }
      const TimePoint claimed_at = clock_.now();
      if (claim_failing_) {
        log_->info("workers: claiming runs again");
        claim_failing_ = false;
      }
      if (claims->empty()) {
        if (!until_idle) {
          // A closed broker answers at once: do not spin on it.
          if (std::chrono::steady_clock::now() - claim_started < wait / 2) pause(wait);
          continue;
        }
        if (in_flight() == 0 && broker_.depth() == 0) return true;
        std::unique_lock lock(mutex_);
        changed_.wait_until(
            lock, std::min(deadline, std::chrono::steady_clock::now() + options_.claim_wait));
        continue;
      }
      bool stopped_meanwhile = false;
      {
        std::lock_guard lock(mutex_);
        stopped_meanwhile = !claiming_;
      }
      // Every task of the batch in one round trip (a remote database would otherwise cost
      // one round trip per run before its fetch can start).
      std::unordered_map<TaskId, Task> tasks;
      bool store_trouble = false;
      if (!stopped_meanwhile) {
        std::vector<TaskId> ids;
        ids.reserve(claims->size());
        for (const Claim& claim : *claims) ids.push_back(claim.run.task_id);
        auto read = store_.get_tasks(ids);
        if (read) {
          for (Task& task : *read) {
            const TaskId id = task.id;
            tasks.emplace(id, std::move(task));
          }
        } else {
          store_trouble = true;
          const bool first = store_backoff_.count() == 0;  // once per outage at warn level
          log_->log(first ? spdlog::level::warn : spdlog::level::debug,
                    "workers: cannot read the tasks of {} runs: {}{}; they go back to the queue",
                    claims->size(), read.error().message,
                    read.error().internal.empty() ? "" : " (" + read.error().internal + ")");
        }
      }
      for (Claim& claim : *claims) {
        if (store_trouble || stopped_meanwhile) {
          // Give the rest back at once rather than start them or fail them.
          if (auto released = broker_.release(claim); !released) {
            log_->warn("workers: cannot release a claim: {}", released.error().message);
          }
          continue;
        }
        auto task = tasks.find(claim.run.task_id);
        // Moved out: the broker holds one run per task, so no other claim needs it.
        begin_run(
            std::move(claim), claimed_at,
            task == tasks.end() ? std::nullopt : std::optional<Task>(std::move(task->second)));
      }
      if (store_trouble) {
        // The store is down: wait longer each time (up to 2 s) instead of cycling the queue.
        store_backoff_ = std::min(std::max(store_backoff_ * 2, options_.claim_wait),
                                  std::chrono::milliseconds(2000));
        pause(store_backoff_);
      } else if (store_backoff_.count() > 0) {
        log_->info("workers: the store answers again");
        store_backoff_ = std::chrono::milliseconds(0);
      }
    }
  }

  // Waits `d`, or less if the pool stops.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, d, [&] { return !claiming_; });
  }

  // Starts the fetch of a claimed run whose task was read (nullopt: the task is gone).
  void begin_run(Claim claim, TimePoint claimed_at, std::optional<Task> task) {
    auto run = std::make_shared<InFlightRun>();
    run->claim = std::move(claim);
    {
      std::lock_guard lock(mutex_);
      run->id = next_run_id_++;
      run->leased_at = claimed_at;
      runs_.emplace(run->id, run);
    }
    if (!task) {
      log_->debug("workers: task {} no longer exists; its run is dropped", run->claim.run.task_id);
      if (take(run->id)) complete_claim(*run);
      count(&RunCounts::dropped);
      return;
    }
    run->task = std::move(*task);
    const TaskSpec& spec = run->task->spec;
    run->timeout = spec.max_execution_time > 0
                       ? std::chrono::milliseconds(spec.max_execution_time * 1000)
                       : options_.default_timeout;
    run->started_at = clock_.now();
    if (run->claim.exhausted) {
      // Every worker that took this run before died on it: record a failure instead of being
      // the next one (the task's retries and suspension then apply as to any failure).
      FetchOutcome outcome;
      outcome.error = "abandoned after " + std::to_string(run->claim.deliveries - 1) +
                      " deliveries: each worker that took this run stopped before finishing it";
      record_run(run, std::move(outcome), run->started_at);
      return;
    }
    auto request =
        build_fetch_request(spec.url, spec.parameters, run->timeout, options_.max_response_bytes);
    if (!request) {
      FetchOutcome outcome;
      outcome.error = request.error().message;
      record_run(run, std::move(outcome), run->started_at);
      return;
    }
    fetcher_.fetch(std::move(*request), [weak = weak_from_this(), run](FetchResult result) mutable {
      if (auto self = weak.lock()) self->on_fetched(run, std::move(result));
    });
  }

  // On the fetcher's thread: note the time, and leave the work to the parse pool.
  void on_fetched(const RunPtr& run, FetchResult result) {
    const TimePoint finished_at = clock_.now();
    // A small body is checked and hashed in a few microseconds: cheaper here than the hand-over
    // to the parse pool (a wake-up and a context switch per run, the largest cost of small runs
    // in the engine's profile). Large ones go to the pool so that the fetch thread keeps moving.
    if (!result || result->body.size() <= kInlineBodyBytes) {
      FetchOutcome outcome =
          classify_fetch(std::move(result), run->timeout, options_.max_response_bytes);
      record_run(run, std::move(outcome), finished_at);
      return;
    }
    // Held by a shared_ptr: std::function copies what it wraps, and a copy of the lambda would
    // copy the whole body.
    auto fetched = std::make_shared<FetchResult>(std::move(result));
    post([this, run, fetched, finished_at] {
      FetchOutcome outcome =
          classify_fetch(std::move(*fetched), run->timeout, options_.max_response_bytes);
      record_run(run, std::move(outcome), finished_at);
    });
  }

  // --- recording -------------------------------------------------------------------------

  void record_run(const RunPtr& run, FetchOutcome outcome, TimePoint finished_at) {
    if (outcome.interrupted) {
      // The fetch engine is gone: claiming more would only spin claim -> fetch -> release.
      bool first = false;
      {
        std::lock_guard lock(mutex_);
        first = claiming_;
        claiming_ = false;
      }
      changed_.notify_all();
      if (first) log_->warn("workers: the fetch engine stopped; no more runs are claimed");
      if (take(run->id)) release_claim(*run);
      return;
    }
    const Task& task = *run->task;
    const bool ok = outcome.status == JobStatus::kSucceeded;
    run->failures_after = ok ? 0 : task.consecutive_failures + 1;
    run->next_run_at = next_run_after(task, run->claim.run.scheduled_at, finished_at,
                                      ok ? RunOutcome::kSucceeded : RunOutcome::kFailed,
                                      run->failures_after, draw_jitter());

    Job& job = run->job;
    job.task_id = task.id;
    job.attempt = static_cast<int>(run->claim.run.attempt);
    job.scheduled_at = run->claim.run.scheduled_at;
    job.started_at = run->started_at;
    job.finished_at = finished_at;
    job.duration_ms = std::max<std::int64_t>(0, (finished_at - run->started_at).count());
    job.status = outcome.status;
    job.http_status = outcome.http_status;
    job.error = std::move(outcome.error);
    job.response_bytes = outcome.response_bytes;
    job.records = outcome.records;
    job.worker_id = options_.worker_id;

    RunRecord record;
    record.job = job;
    record.body = std::move(outcome.body);
    record.content_hash = std::move(outcome.content_hash);
    record.next_run_at = run->next_run_at;
    record.update_task = true;
    bool wake_claimer = false;
    {
      std::lock_guard lock(mutex_);
      if (runs_.find(run->id) == runs_.end()) return;  // stop() gave it back meanwhile
      run->writing = true;
      run->body_bytes = record.body ? record.body->size() : 0;
      ++writing_;
      writing_bytes_ += run->body_bytes;
      // Its fetch slot is free. The room grows by one slot at a time: wake the claim thread
      // once, when there is room for a claim, not at every run.
      wake_claimer = room_locked() == claim_min_;
    }
    if (wake_claimer) changed_.notify_all();
    writer_.submit(std::move(record),
                   [weak = weak_from_this(), run](Result<RecordedRun> recorded) mutable {
                     if (auto self = weak.lock()) self->on_recorded(run, std::move(recorded));
                   });
  }

  // On the RunWriter's thread, once the outcome is durable (or refused).
  void on_recorded(const RunPtr& run, Result<RecordedRun> recorded) {
    const Job& job = run->job;
    if (!recorded) {
      const Error& error = recorded.error();
      if (error.code == ErrorCode::kUnavailable) {
        // Not written: the run is redone later, as if it had never been claimed.
        log_->warn("workers: run of task {} due {} not recorded ({}); back in the queue",
                   job.task_id, format_rfc3339(job.scheduled_at), error.message);
        release_claim(*run);
        take(run->id);
        return;
      }
      log_->error("workers: run of task {} due {} could not be recorded: {}{}", job.task_id,
                  format_rfc3339(job.scheduled_at), error.message,
                  error.internal.empty() ? "" : " (" + error.internal + ")");
      complete_claim(*run);
      count(&RunCounts::unrecorded);
      listener_.run_finished(job.task_id, run->next_run_at, run->failures_after);
      take(run->id);
      return;
    }

    // Finished with the rest of the writer's batch, in finish_batch().
    std::lock_guard lock(finishing_mutex_);
    finishing_.push_back({run, *recorded});
  }

  // On the RunWriter's thread after each batch: hands the batch to the finish thread, so that
  // the writer records the next batch while this one's claims are completed (a broker round
  // trip, a fifth of the writer's time with Redis). Once that thread stopped (batches the
  // writer flushes after stop()), on this thread.
  void batch_done() {
    {
      std::lock_guard lock(finishing_mutex_);
      if (finisher_running_) {
        finish_pending_ = true;
        finish_wake_.notify_one();
        return;
      }
    }
    finish_batch();
  }

  void finish_loop() {
    std::unique_lock lock(finishing_mutex_);
    for (;;) {
      finish_wake_.wait(lock, [&] { return finish_pending_ || finish_stop_; });
      if (!finish_pending_) {
        finisher_running_ = false;  // under the lock: later batches finish on the writer's thread
        return;
      }
      finish_pending_ = false;
      lock.unlock();
      finish_batch();
      lock.lock();
    }
  }

  // Completes the recorded runs' claims in one broker call, counts and logs each run, and
  // tells the scheduler of them in one event.
  void finish_batch() {
    std::vector<Finishing> batch;
    {
      std::lock_guard lock(finishing_mutex_);
      batch.swap(finishing_);
    }
    if (batch.empty()) return;
    std::vector<Claim> claims;
    claims.reserve(batch.size());
    for (const Finishing& one : batch) claims.push_back(one.run->claim);
    auto completed = broker_.complete_all(claims);
    std::vector<FinishedRun> finished;
    finished.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const InFlightRun& run = *batch[i].run;
      if (i < completed.size() && !completed[i]) {
        log_->warn("workers: cannot complete the claim on task {}'s run: {}", run.claim.run.task_id,
                   completed[i].error().message);
      }
      const RecordedRun& recorded = batch[i].recorded;
      const Job& job = run.job;
      const auto status = to_string(job.status);
      metrics_.count_run(status, static_cast<double>(job.duration_ms.value_or(0)) / 1000.0);
      const auto lag = std::max(Millis(0), run.started_at - job.scheduled_at);
      metrics_.observe_lag(static_cast<double>(lag.count()) / 1000.0);
      if (log_->should_log(spdlog::level::info)) {  // else its fields are not worth formatting
        log_->info(
            "run finished task={} job={} attempt={} status={} http={} duration_ms={} bytes={} "
            "error={}",
            job.task_id, recorded.job_id != 0 ? std::to_string(recorded.job_id) : "-", job.attempt,
            status, or_dash(job.http_status), job.duration_ms.value_or(0),
            or_dash(job.response_bytes), job.error ? log_quoted(*job.error) : "-");
      }
      switch (job.status) {
        case JobStatus::kSucceeded:
          count(&RunCounts::succeeded);
          break;
        case JobStatus::kTimedOut:
          count(&RunCounts::timed_out);
          break;
        default:
          count(&RunCounts::failed);
          break;
      }
      finished.push_back({job.task_id, recorded.task_missing ? std::nullopt : run.next_run_at,
                          run.failures_after});
    }
    // Last, so that whoever the listener wakes sees the runs counted and logged.
    listener_.runs_finished(finished);
    bool taken = false;
    {
      std::lock_guard lock(mutex_);
      for (const Finishing& one : batch) taken = erase_locked(one.run->id) || taken;
    }
    if (taken) changed_.notify_all();
  }

  // --- helpers ---------------------------------------------------------------------------

  // How many more runs may be claimed: as many as there are free fetch slots, within the
  // bounds on runs not yet recorded. A run awaiting its record holds no fetch slot: when the
  // store stalls for a moment (a checkpoint, a slow commit), fetches go on starting on time
  // while the backlog absorbs the stall.
  std::size_t room_locked() const {
    const std::size_t fetching = runs_.size() - writing_;
    if (fetching >= options_.concurrency || runs_.size() >= options_.max_unrecorded ||
        writing_bytes_ >= options_.max_unrecorded_bytes) {
      return 0;
    }
    return std::min(options_.concurrency - fetching, options_.max_unrecorded - runs_.size());
  }

  // Unregisters a run under mutex_; false when it was not registered.
  bool erase_locked(std::uint64_t id) {
    auto it = runs_.find(id);
    if (it == runs_.end()) return false;
    if (it->second->writing) {
      --writing_;
      writing_bytes_ -= it->second->body_bytes;
    }
    runs_.erase(it);
    return true;
  }

  // Unregisters a run; false when it was not registered (stop() took it first).
  bool take(std::uint64_t id) {
    bool taken = false;
    {
      std::lock_guard lock(mutex_);
      taken = erase_locked(id);
    }
    if (taken) changed_.notify_all();
    return taken;
  }

  void complete_claim(const InFlightRun& run) {
    if (auto done = broker_.complete(run.claim); !done) {
      log_->warn("workers: cannot complete the claim on task {}'s run: {}", run.claim.run.task_id,
                 done.error().message);
    }
  }

  void release_claim(const InFlightRun& run) {
    if (auto released = broker_.release(run.claim); !released) {
      log_->warn("workers: cannot release the claim on task {}'s run: {}", run.claim.run.task_id,
                 released.error().message);
    }
  }

  void count(std::uint64_t RunCounts::*field) {
    std::lock_guard lock(counts_mutex_);
    ++(counts_.*field);
  }

  double draw_jitter() {
    std::lock_guard lock(rng_mutex_);
    return std::uniform_real_distribution<double>(0.9, 1.1)(rng_);
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(work_mutex_);
      if (work_stop_) return;  // stopping: the run was (or is being) given back
      work_.push_back(std::move(job));
    }
    work_ready_.notify_one();
  }

  void work_loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(work_mutex_);
        work_ready_.wait(lock, [&] { return work_stop_ || !work_.empty(); });
        if (work_stop_) return;
        job = std::move(work_.front());
        work_.pop_front();
      }
      try {
        job();
      } catch (const std::exception& e) {
        log_->error("workers: a run's completion failed: {}", e.what());
      }
    }
  }

  // Keeps the leases of long runs alive, and gives back runs whose lease expired anyway
  // (a claim lost track of: they are redone rather than forgotten). Only leases taken half a
  // period ago or more are extended, all in one broker call: in a burst of short runs most
  // finish before their first heartbeat, and each is renewed within 1.5 periods (half the
  // lease) of its last renewal.
  void heartbeat_loop() {
    const auto period = std::max(options_.lease / 3, std::chrono::milliseconds(1));
    std::unique_lock lock(mutex_);
    for (;;) {
      if (heartbeat_wake_.wait_for(lock, period, [&] { return heartbeat_stop_; })) return;
      const TimePoint now = clock_.now();
      std::vector<RunPtr> due;
      std::vector<Claim> claims;
      for (const auto& [id, run] : runs_) {
        const auto age = now - run->leased_at;
        if (age >= period / 2 || age < Millis(0)) {  // < 0: the clock was set back
          due.push_back(run);
          claims.push_back(run->claim);
        }
      }
      lock.unlock();
      if (!claims.empty()) {
        auto extended = broker_.extend_all(claims, options_.lease);
        const std::size_t answered = std::min(extended.size(), due.size());
        lock.lock();
        for (std::size_t i = 0; i < answered; ++i) {
          if (extended[i]) due[i]->leased_at = now;
        }
        lock.unlock();
        for (std::size_t i = 0; i < answered; ++i) {
          if (!extended[i]) {
            log_->debug("workers: cannot extend the lease of task {}'s run: {}",
                        claims[i].run.task_id, extended[i].error().message);
          }
        }
      }
      if (auto reclaimed = broker_.reclaim_expired(clock_.now()); reclaimed && *reclaimed > 0) {
        log_->warn("workers: {} runs whose lease expired are back in the queue", *reclaimed);
      }
      lock.lock();
    }
  }

  Store& store_;
  Broker& broker_;
  Fetcher& fetcher_;
  RunWriter& writer_;
  RunListener& listener_;
  const Clock& clock_;
  Metrics& metrics_;
  std::shared_ptr<spdlog::logger> log_;
  WorkerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a run left, or claiming stopped
  std::unordered_map<std::uint64_t, RunPtr> runs_;
  // The claim thread waits for room for this many runs (an eighth of the fetch slots, at
  // most a claim batch): in a burst, one claim and one read of tasks per batch, not per run.
  std::size_t claim_min_ = 1;
  std::size_t writing_ = 0;          // runs_ handed to the RunWriter
  std::uint64_t writing_bytes_ = 0;  // the bodies of those
  std::uint64_t next_run_id_ = 1;
  bool claiming_ = false;
  bool claim_failing_ = false;                  // the claim thread's only
  std::chrono::milliseconds store_backoff_{0};  // the claim thread's only
  bool draining_ = false;
  bool stopped_ = false;
  bool workers_started_ = false;
  bool heartbeat_stop_ = false;
  std::condition_variable heartbeat_wake_;
  std::thread claim_thread_;
  std::thread heartbeat_thread_;

  std::mutex work_mutex_;
  std::condition_variable work_ready_;
  std::deque<std::function<void()>> work_;
  bool work_stop_ = false;
  std::vector<std::thread> parse_threads_;

  // Runs recorded by the writer's current batch, finished together after it.
  struct Finishing {
    RunPtr run;
    RecordedRun recorded;
  };
  std::mutex finishing_mutex_;  // guards the four below
  std::vector<Finishing> finishing_;
  bool finish_pending_ = false;    // a batch is done: finish it
  bool finisher_running_ = false;  // finish_thread_ takes the batches
  bool finish_stop_ = false;
  std::condition_variable finish_wake_;
  std::thread finish_thread_;

  mutable std::mutex counts_mutex_;
  RunCounts counts_;

  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

WorkerPool::WorkerPool(Store& store, Broker& broker, Fetcher& fetcher, RunWriter& writer,
                       RunListener& listener, const Clock& clock, Metrics& metrics,
                       std::shared_ptr<spdlog::logger> log, WorkerOptions options)
    : impl_(std::make_shared<Impl>(store, broker, fetcher, writer, listener, clock, metrics,
                                   std::move(log), std::move(options))) {}

WorkerPool::~WorkerPool() {
  impl_->stop(std::chrono::milliseconds(0));
}

void WorkerPool::start() {
  impl_->start();
}
void WorkerPool::stop(std::chrono::milliseconds grace) {
  impl_->stop(grace);
}
DrainReport WorkerPool::drain(std::chrono::milliseconds timeout) {
  return impl_->drain(timeout);
}
std::size_t WorkerPool::in_flight() const {
  return impl_->in_flight();
}
RunCounts WorkerPool::counts() const {
  return impl_->counts();
}
const std::string& WorkerPool::worker_id() const {
  return impl_->worker_id();
}

}  // namespace fetchd
