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
  // How many times this run was claimed, this one included, not counting claims given back by
  // release(): those never ran it. Only holders that vanished (expired leases) count.
  std::int64_t deliveries = 1;
  // Claimed more often than the broker allows (broker_max_deliveries): every holder so far died
  // on it. The worker records it as failed instead of running it again.
  bool exhausted = false;
};

class Broker {
 public:
  virtual ~Broker() = default;

  // At most one run of a task is in the broker at a time (waiting or claimed): kConflict when
  // one is, so that however many processes enqueue, a task never runs twice at once.
  virtual Result<void> enqueue(const Run& run) = 0;
  // enqueue() of each run, in one round trip where the broker has a server; one result per run,
  // in order. A task twice in `runs`: its second run is kConflict, as if enqueued after.
  virtual std::vector<Result<void>> enqueue_all(const std::vector<Run>& runs) {
    std::vector<Result<void>> results;
    results.reserve(runs.size());
    for (const Run& run : runs) results.push_back(enqueue(run));
    return results;
  }
  // Waits up to `wait` for runs and claims at most `max` of them, each leased for `lease`.
  // Returns an empty vector on time-out or after close().
  virtual Result<std::vector<Claim>> claim(std::size_t max, std::chrono::milliseconds wait,
                                           std::chrono::milliseconds lease) = 0;
  // The run is done (recorded in the store): forget it.
  virtual Result<void> complete(const Claim& claim) = 0;
  // complete() of each claim, in one round trip where the broker has a server; one result per
  // claim, in order.
  virtual std::vector<Result<void>> complete_all(const std::vector<Claim>& claims) {
    std::vector<Result<void>> results;
    results.reserve(claims.size());
    for (const Claim& claim : claims) results.push_back(complete(claim));
    return results;
  }
  // The run could not be done now (shutdown, store down): make it claimable again at once.
  // The claim does not count as a delivery.
  virtual Result<void> release(const Claim& claim) = 0;
  // A worker still working on a long run pushes its lease forward (heartbeat).
  virtual Result<void> extend(const Claim& claim, std::chrono::milliseconds lease) = 0;
  // extend() of each claim, in one round trip where the broker has a server; one result per
  // claim, in order.
  virtual std::vector<Result<void>> extend_all(const std::vector<Claim>& claims,
                                               std::chrono::milliseconds lease) {
    std::vector<Result<void>> results;
    results.reserve(claims.size());
    for (const Claim& claim : claims) results.push_back(extend(claim, lease));
    return results;
  }
  // Makes runs whose lease expired before `now` claimable again; returns how many.
  virtual Result<std::size_t> reclaim_expired(TimePoint now) = 0;
  // Which of `tasks` have a run in the broker (waiting or claimed), in no particular order.
  // The scheduler asks this of runs it has long thought in flight, to repair lost ones.
  virtual Result<std::vector<TaskId>> holding(const std::vector<TaskId>& tasks) = 0;
  // Runs waiting to be claimed (for metrics).
  virtual std::size_t depth() const = 0;
  // A round trip to the broker's server, for /readyz.
  virtual Result<void> ping() = 0;
  // The leading scheduler's lease token (Coordinator::lead): from then on enqueue() fails with
  // kUnavailable once the lease is another's. A broker of one process has no use for it.
  virtual void set_fencing_token(std::string /*token*/) {}
  // Wakes every waiting claim() and makes later ones return at once.
  virtual void close() = 0;
};

}  // namespace fetchd
