// The in-process Broker of `fetchd serve` and `fetchd feed`: a FIFO deque behind a mutex and a
// condition variable, with leases kept in memory. Nothing here is durable: a run lost with the
// process is redone at the next start because its task's next_run_at did not move.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "broker/broker.hpp"
#include "core/time.hpp"

namespace fetchd {

class LocalBroker final : public Broker {
 public:
  // `clock` stamps leases (claim, extend) and must outlive the broker. Waiting in claim() uses
  // real time: a fake clock only decides when leases expire.
  explicit LocalBroker(const Clock& clock);
  LocalBroker(const LocalBroker&) = delete;
  LocalBroker& operator=(const LocalBroker&) = delete;

  // kUnavailable after close(); kConflict while a run of the task is waiting or claimed.
  Result<void> enqueue(const Run& run) override;
  Result<std::vector<Claim>> claim(std::size_t max, std::chrono::milliseconds wait,
                                   std::chrono::milliseconds lease) override;
  // complete, release and extend answer kNotFound when the claim is no longer held (its lease
  // expired and reclaim_expired took it back, or it was already completed or released).
  Result<void> complete(const Claim& claim) override;
  // Puts the run at the FRONT of the queue, so that it is the next one claimed.
  Result<void> release(const Claim& claim) override;
  Result<void> extend(const Claim& claim, std::chrono::milliseconds lease) override;
  // Expired runs go back to the front of the queue, oldest claim first.
  Result<std::size_t> reclaim_expired(TimePoint now) override;
  Result<std::vector<TaskId>> holding(const std::vector<TaskId>& tasks) override;
  std::size_t depth() const override;
  Result<void> ping() override { return {}; }
  void close() override;

  // Runs claimed and not yet completed or released (for tests and metrics).
  std::size_t leased() const;

 private:
  struct Waiting {
    Run run;
    std::int64_t deliveries = 0;  // claims so far
  };
  struct Leased {
    Run run;
    std::int64_t deliveries = 0;
    TimePoint lease_until{};
  };

  // Finds the claim's lease; nullptr when its receipt is unknown.
  Leased* find_locked(const Claim& claim);

  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Waiting> queue_;
  std::map<std::uint64_t, Leased> leases_;  // by receipt: ascending = oldest claim first
  std::unordered_set<TaskId> held_;         // tasks with a run waiting or leased
  std::uint64_t next_receipt_ = 1;
  bool closed_ = false;
};

}  // namespace fetchd
