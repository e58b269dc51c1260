// The Broker carries runs from the scheduler to the workers: enqueue a run, claim it with a
// lease, complete it, fail it (give it back), reclaim runs whose lease expired (their worker
// died). local/ is an in-process queue; redis/ (scale-out) uses Redis Streams with the same
// calls, so callers never know which one they talk to.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

// One run to do: the task and the due time it is for. The worker reads the task itself from
// the store, so that a run always uses the task's current definition.
struct Run {
  TaskId task_id = 0;
  TimePoint scheduled_at{};  // due time; (task_id, scheduled_at) identifies the run
  std::int64_t attempt = 1;  // consecutive_failures + 1 when it was enqueued
  bool manual = false;       // POST /tasks/{id}/run, outside the schedule

  friend bool operator==(const Run&, const Run&) = default;
};

struct Claim {
  Run run;
  std::string receipt;  // broker-specific handle (stream entry id, sequence number)
  TimePoint lease_until{};
  std::int64_t deliveries = 1;  // how many times this run was claimed, this one included
};

class Broker {
 public:
  virtual ~Broker() = default;

  virtual Result<void> enqueue(const Run& run) = 0;
  // Waits up to `wait` for runs and claims at most `max` of them, each leased for `lease`.
  // Returns an empty vector on time-out or after close().
  virtual Result<std::vector<Claim>> claim(std::size_t max, std::chrono::milliseconds wait,
                                           std::chrono::milliseconds lease) = 0;
  // The run is done (recorded in the store): forget it.
  virtual Result<void> complete(const Claim& claim) = 0;
  // The run could not be done now (shutdown, store down): make it claimable again at once.
  virtual Result<void> release(const Claim& claim) = 0;
  // A worker still working on a long run pushes its lease forward (heartbeat).
  virtual Result<void> extend(const Claim& claim, std::chrono::milliseconds lease) = 0;
  // Makes runs whose lease expired before `now` claimable again; returns how many.
  virtual Result<std::size_t> reclaim_expired(TimePoint now) = 0;
  // Runs waiting to be claimed (for metrics and /readyz).
  virtual std::size_t depth() const = 0;
  // Wakes every waiting claim() and makes later ones return at once.
  virtual void close() = 0;
};

}  // namespace fetchd
