// The Coordinator on Redis: the scheduler lease is a key holding a fencing token (an ever
// increasing number, so that a deposed leader's token never matches again) with a TTL; engine
// events travel on a pub/sub channel.
#pragma once

#include <memory>
#include <string>

#include "broker/coordinator.hpp"

namespace spdlog {
class logger;
}

namespace fetchd {

struct RedisCoordinatorOptions {
  std::string leader_key = "fetchd:scheduler:leader";  // RedisBrokerOptions::leader_key too
  std::string epoch_key = "fetchd:scheduler:epoch";
  std::string channel = "fetchd:events";
};

// url: redis://host[:port][/db] (kInvalid otherwise); an unreachable Redis is not an error here.
Result<std::unique_ptr<Coordinator>> open_redis_coordinator(const std::string& url,
                                                            RedisCoordinatorOptions options,
                                                            std::shared_ptr<spdlog::logger> logger);

}  // namespace fetchd
