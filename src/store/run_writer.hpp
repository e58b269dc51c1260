// The single writer of run outcomes: many workers submit RunRecords concurrently; one thread
// writes them in batches (Store::record_runs, one transaction per batch), so that the store
// sustains thousands of runs per second. A batch that fails because the store is unavailable
// is retried with capped backoff, never dropped.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <spdlog/logger.h>

#include "core/error.hpp"
#include "store/store.hpp"

namespace fetchd {

struct RunWriterOptions {
  std::size_t max_batch = 512;                  // records per transaction at most
  std::chrono::milliseconds max_delay{2};       // how long a record may wait for company
  std::chrono::milliseconds max_backoff{5000};  // retry ceiling while the store is down
};

class RunWriter {
 public:
  // Called on the writer's thread once the record is durable (or failed for good: kInvalid
  // and the like are not retried).
  using Done = std::function<void(Result<RecordedRun>)>;

  RunWriter(Store& store, std::shared_ptr<spdlog::logger> log, RunWriterOptions options = {});
  ~RunWriter();  // stop()
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;

  void submit(RunRecord record, Done done);
  // Called on the writer's thread after the callbacks of each batch, so that their owner can
  // finish the batch's runs together (one broker call, one event) rather than one by one.
  // One hook per writer: a second call replaces the first.
  void on_batch_done(std::function<void()> hook);
  std::size_t pending() const;
  // Writes what was submitted (retrying while the store is down, up to `grace`), then joins.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fetchd
