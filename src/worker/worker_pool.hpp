// The workers: claim runs from the Broker, read their tasks, fetch them, classify and hash each
// response (on a small parse pool when it is large, on the fetcher's thread when it is a few
// KB), hand the outcome to the RunWriter, and once it is durable complete the claim, tell the
// scheduler, count and log.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "broker/broker.hpp"
#include "core/metrics.hpp"
#include "core/task_events.hpp"
#include "core/time.hpp"
#include "fetch/fetcher.hpp"
#include "store/run_writer.hpp"
#include "store/store.hpp"

namespace fetchd {

struct WorkerOptions {
  std::size_t concurrency = 512;  // fetches in flight at most
  // Runs claimed and not yet recorded (fetching, or fetched and awaiting their record) at most;
  // 0: 4 × concurrency. A run awaiting its record holds no fetch slot, so that a store that
  // stalls for a moment does not delay the next fetches; this bounds that backlog.
  std::size_t max_unrecorded = 0;
  // The bodies held by runs awaiting their record: past this, no run is claimed either.
  std::uint64_t max_unrecorded_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds default_timeout{30'000};  // for tasks with max_execution_time 0
  std::uint64_t max_response_bytes = 10 * 1024 * 1024;
  std::chrono::milliseconds lease{30'000};    // renewed within lease / 2 while a run is in flight
  std::string worker_id;                      // on every job row; empty: "<hostname>:<pid>"
  unsigned parse_threads = 2;                 // JSON validation and hashing of large bodies
  std::size_t claim_batch = 64;               // runs per Broker::claim at most
  std::chrono::milliseconds claim_wait{100};  // an idle claim's wait: bounds stop()'s latency
};

// What the pool did with the runs it claimed, by outcome (the job's status).
struct RunCounts {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t dropped = 0;     // the task was deleted before its run started
  std::uint64_t unrecorded = 0;  // the store refused the record for good (logged)

  std::uint64_t finished() const { return succeeded + failed + timed_out; }
  friend bool operator==(const RunCounts&, const RunCounts&) = default;
};

struct DrainReport {
  RunCounts counts;      // runs finished during drain()
  bool complete = true;  // false: the timeout came first (call stop() to put the rest back)
};

// "<hostname>:<pid>", the default worker id.
std::string default_worker_id();

class WorkerPool {
 public:
  // Every reference must outlive the pool. Outcomes already handed to the RunWriter finish
  // through its callback (Broker::complete, RunListener::run_finished) even after stop():
  // stop the RunWriter before destroying the Broker or the RunListener.
  WorkerPool(Store& store, Broker& broker, Fetcher& fetcher, RunWriter& writer,
             RunListener& listener, const Clock& clock, Metrics& metrics,
             std::shared_ptr<spdlog::logger> log, WorkerOptions options = {});
  ~WorkerPool();  // stop(0)
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts claiming on a thread of its own. Calling it twice is harmless; after stop() it
  // throws std::logic_error.
  void start();
  // Stops claiming, waits up to `grace` for the runs in flight, then releases to the broker
  // the runs whose fetch has not finished (they are claimed again later, or redone at the next
  // start since their task's next_run_at did not move). Idempotent.
  void stop(std::chrono::milliseconds grace);

  // `fetchd feed`: claims on the calling thread until the broker is empty and every run is
  // recorded (or `timeout` passes), and reports what finished meanwhile. The pool must not
  // have been start()ed (std::logic_error); stop() it afterwards.
  DrainReport drain(std::chrono::milliseconds timeout);

  std::size_t in_flight() const;
  RunCounts counts() const;  // since construction
  const std::string& worker_id() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the callbacks of fetches and writes in flight
};

}  // namespace fetchd
