// The RunWriter's thread: takes what workers submitted off one queue, writes it in batches with
// Store::record_runs, retries while the store is unavailable and hands each record's outcome to
// its callback, outside the lock.

#include "store/run_writer.hpp"
#include "core/thread_name.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace fetchd {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kFirstBackoff{10};

Error shutting_down() {
  return Error::make(ErrorCode::kUnavailable, "shutting down",
                     "the run writer stopped before this run could be recorded");
}

}  // namespace

struct RunWriter::Impl {
  struct Pending {
    RunRecord record;
    Done done;
    SteadyClock::time_point submitted;
  };

  Impl(Store& store_in, std::shared_ptr<spdlog::logger> log_in, RunWriterOptions options_in)
      : store(store_in), log(std::move(log_in)), options(options_in) {
    if (!log) log = std::make_shared<spdlog::logger>("run_writer");  // no sinks: silent
    options.max_batch = std::max<std::size_t>(options.max_batch, 1);
    options.max_backoff = std::max(options.max_backoff, std::chrono::milliseconds(1));
  }

  void run() {
    for (;;) {
      std::vector<Pending> batch;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return !queue.empty() || stopping; });
        if (queue.empty()) return;  // stopping, and everything is written
        // Give the first record up to max_delay to gather company, unless the batch is full
        // already or we are shutting down (then nobody waits for company).
        const auto deadline = queue.front().submitted + options.max_delay;
        wake.wait_until(lock, deadline,
                        [&] { return queue.size() >= options.max_batch || stopping; });
        if (stopping && SteadyClock::now() >= stop_deadline) {
          // Out of grace: what is still queued is not written.
          batch.assign(std::make_move_iterator(queue.begin()),
                       std::make_move_iterator(queue.end()));
          queue.clear();
          in_flight = batch.size();
          lock.unlock();
          fail_all(batch, shutting_down());
          continue;
        }
        const std::size_t count = std::min(queue.size(), options.max_batch);
        batch.assign(std::make_move_iterator(queue.begin()),
                     std::make_move_iterator(queue.begin() + static_cast<std::ptrdiff_t>(count)));
        queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(count));
        in_flight = batch.size();
      }
      write(batch);
      std::function<void()> hook;
      {
        std::lock_guard lock(mutex);
        hook = batch_done;
      }
      if (!hook) continue;
      try {
        hook();
      } catch (const std::exception& e) {
        log->error("a run writer batch hook threw: {}", e.what());
      }
    }
  }

  // Writes one batch, retrying while the store is unavailable, until it is durable, fails for
  // good, or the stop grace runs out.
  void write(std::vector<Pending>& batch) {
    std::vector<RunRecord> records;
    records.reserve(batch.size());
    for (auto& pending : batch) records.push_back(std::move(pending.record));
    auto backoff = std::min(kFirstBackoff, options.max_backoff);
    for (;;) {
      auto result = store.record_runs(records);
      if (result && result->size() != records.size()) {
        result = fail(ErrorCode::kInternal, "internal store error",
                      "record_runs returned " + std::to_string(result->size()) + " outcomes for " +
                          std::to_string(records.size()) + " records");
      }
      if (result) {
        recovered();
        deliver(batch, std::move(*result));
        return;
      }
      const Error& error = result.error();
      if (error.code != ErrorCode::kUnavailable) {
        recovered();
        if (batch.size() > 1) {
          // One bad record must not cost the others their runs: write each alone, so that
          // only the culprit fails.
          log->warn("recording a batch of {} runs failed ({}: {}); retrying them one by one",
                    batch.size(), error.message, error.internal);
          isolate(batch, records);
          return;
        }
        log->error("recording the run of task {} at {} failed: {} ({})",
                   records.front().job.task_id, format_rfc3339(records.front().job.scheduled_at),
                   error.message, error.internal);
        fail_all(batch, error);
        return;
      }
      if (!outage) {
        outage = true;
        log->warn("the store is unavailable ({}; {}); retrying {} run records with backoff",
                  error.message, error.internal, records.size());
      }
      ++outage_retries;
      // Sleep for the backoff, but never past the end of a stop's grace (stop() wakes us).
      std::unique_lock lock(mutex);
      const auto until = SteadyClock::now() + backoff;
      for (;;) {
        const auto limit = stopping ? std::min(until, stop_deadline) : until;
        if (SteadyClock::now() >= limit) break;
        wake.wait_until(lock, limit);
      }
      if (stopping && SteadyClock::now() >= stop_deadline) {
        lock.unlock();
        log->warn("shutting down while the store is unavailable: {} run records not written",
                  records.size());
        fail_all(batch, shutting_down());
        return;
      }
      backoff = std::min(backoff * 2, options.max_backoff);
    }
  }

  void isolate(std::vector<Pending>& batch, std::vector<RunRecord>& records) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      std::vector<Pending> one;
      one.push_back(Pending{std::move(records[i]), std::move(batch[i].done), batch[i].submitted});
      write(one);
    }
  }

  void recovered() {
    if (!outage) return;
    log->info("the store is available again; run records are written (after {} retries)",
              outage_retries);
    outage = false;
    outage_retries = 0;
  }

  // Both answer every record of the batch; pending() stops counting them first, so that a
  // callback sees its own record as done.
  void deliver(std::vector<Pending>& batch, std::vector<RecordedRun> recorded) {
    answered(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) call(batch[i].done, std::move(recorded[i]));
  }

  void fail_all(std::vector<Pending>& batch, const Error& error) {
    answered(batch.size());
    for (auto& pending : batch) call(pending.done, tl::unexpected(error));
  }

  void answered(std::size_t count) {
    std::lock_guard lock(mutex);
    in_flight -= std::min(in_flight, count);
  }

  // A callback that throws is a bug in the caller; it must not take the writer down with it.
  void call(Done& done, Result<RecordedRun> result) {
    if (!done) return;
    try {
      done(std::move(result));
    } catch (const std::exception& e) {
      log->error("a run writer callback threw: {}", e.what());
    } catch (...) {
      log->error("a run writer callback threw a non-standard exception");
    }
  }

  Store& store;
  std::shared_ptr<spdlog::logger> log;
  RunWriterOptions options;

  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<Pending> queue;
  std::size_t in_flight = 0;  // records taken off the queue and not yet answered
  std::function<void()> batch_done;
  bool stopping = false;
  SteadyClock::time_point stop_deadline{};

  // Owned by the writer thread.
  bool outage = false;
  std::size_t outage_retries = 0;

  std::mutex stop_mutex;  // serialises stop() callers around the join
  std::thread thread;
};

RunWriter::RunWriter(Store& store, std::shared_ptr<spdlog::logger> log, RunWriterOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(log), options)) {
  impl_->thread = std::thread([impl = impl_.get()] {
    name_this_thread("fetchd-writer");
    impl->run();
  });
}

RunWriter::~RunWriter() {
  stop();
}

void RunWriter::submit(RunRecord record, Done done) {
  std::unique_lock lock(impl_->mutex);
  if (impl_->stopping) {
    // No writer thread to call back on any more: answered here, on the caller's thread.
    lock.unlock();
    impl_->call(done, tl::unexpected(shutting_down()));
    return;
  }
  impl_->queue.push_back({std::move(record), std::move(done), SteadyClock::now()});
  const std::size_t size = impl_->queue.size();
  lock.unlock();
  // The writer only needs waking for a first record (it then waits max_delay) or a full batch.
  if (size == 1 || size >= impl_->options.max_batch) impl_->wake.notify_one();
}

void RunWriter::on_batch_done(std::function<void()> hook) {
  std::lock_guard lock(impl_->mutex);
  impl_->batch_done = std::move(hook);
}

std::size_t RunWriter::pending() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->queue.size() + impl_->in_flight;
}

void RunWriter::stop(std::chrono::milliseconds grace) {
  std::lock_guard stop_lock(impl_->stop_mutex);
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->stopping) {
      impl_->stopping = true;
      impl_->stop_deadline = SteadyClock::now() + grace;
    }
  }
  impl_->wake.notify_all();
  // Records failed here for want of time belong to runs whose task's next_run_at has not
  // moved: the scheduler redoes them at the next start, so nothing is lost, only repeated.
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace fetchd
