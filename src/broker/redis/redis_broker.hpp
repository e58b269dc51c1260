// The scale-out Broker: Redis Streams with one consumer group (hiredis). Entries carry the run;
// the group's pending list is the lease table (idle time = time since the last claim or
// heartbeat), XAUTOCLAIM recovers runs of dead workers, and XACK + XDEL forgets a done run.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "broker/broker.hpp"
#include "core/error.hpp"

namespace spdlog {
class logger;
}

namespace fetchd {

struct RedisBrokerOptions {
  std::string stream = "fetchd:runs";
  std::string group = "workers";
  std::string consumer;  // empty: "<hostname>:<pid>"
  // A run claimed more often than this is dropped with an error instead of looping forever.
  std::int64_t max_deliveries = 5;
  // Redis keeps no lease per entry, only idle times: reclaim_expired() takes the lease of the
  // last runs claim() handed out (or extend() pushed), and this one until then. Every worker
  // of a deployment uses the same worker.lease, so one value is enough.
  std::chrono::milliseconds lease{30'000};
  // Where the leading scheduler's fencing token lives (RedisCoordinator writes it).
  std::string leader_key = "fetchd:scheduler:leader";
};

class RedisBroker final : public Broker {
 public:
  struct Impl;
  explicit RedisBroker(std::unique_ptr<Impl> impl);
  ~RedisBroker() override;
  RedisBroker(const RedisBroker&) = delete;
  RedisBroker& operator=(const RedisBroker&) = delete;

  // Every call answers kUnavailable while Redis is unreachable (the connection is retried with
  // a capped backoff) and after close().
  // Also kConflict while a run of the task is held (a key per task beside the stream), and
  // kUnavailable once a fencing token is set that is no longer the leader's.
  Result<void> enqueue(const Run& run) override;
  std::vector<Result<void>> enqueue_all(const std::vector<Run>& runs) override;
  // Returns the runs reclaim_expired() took back first, then new ones (XREADGROUP, blocking in
  // short slices so that close() is honoured within ~100 ms).
  Result<std::vector<Claim>> claim(std::size_t max, std::chrono::milliseconds wait,
                                   std::chrono::milliseconds lease) override;
  // complete, release and extend answer kNotFound when the entry is no longer pending.
  Result<void> complete(const Claim& claim) override;
  // One script call per 512 claims.
  std::vector<Result<void>> complete_all(const std::vector<Claim>& claims) override;
  // Re-adds the run at the END of the stream (Redis cannot requeue in front) and forgets the old
  // entry, atomically; the delivery count carries over.
  Result<void> release(const Claim& claim) override;
  Result<void> extend(const Claim& claim, std::chrono::milliseconds lease) override;
  // One script call per 512 claims.
  std::vector<Result<void>> extend_all(const std::vector<Claim>& claims,
                                       std::chrono::milliseconds lease) override;
  Result<std::size_t> reclaim_expired(TimePoint now) override;
  Result<std::vector<TaskId>> holding(const std::vector<TaskId>& tasks) override;
  // 0 while Redis is unreachable.
  std::size_t depth() const override;
  Result<void> ping() override;
  void close() override;

  // The leading scheduler's enqueues carry its lease's token: a scheduler that lost the lease
  // (paused, partitioned) can no longer enqueue, even before it notices. Empty: unfenced.
  void set_fencing_token(std::string token) override;

  // Runs handed out as exhausted because they were delivered more than max_deliveries times.
  std::uint64_t given_up() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// url: redis://host[:port][/db]. Fails with kInvalid on a bad URL; an unreachable Redis is not
// an error here (every call retries it). `logger` may be null (spdlog's default logger).
Result<std::unique_ptr<Broker>> open_redis_broker(const std::string& url,
                                                  RedisBrokerOptions options,
                                                  std::shared_ptr<spdlog::logger> logger);

}  // namespace fetchd
