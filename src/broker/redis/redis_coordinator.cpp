// RedisCoordinator: a lease key renewed by Lua (only by its holder), PUBLISH for events and one
// subscriber connection read on its own thread (see redis_coordinator.hpp).
#include "broker/redis/redis_coordinator.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "broker/redis/redis_connection.hpp"
#include "core/thread_name.hpp"

namespace fetchd {

namespace {

using namespace redis_detail;

// KEYS: leader, epoch. ARGV: the caller's token ('' when it holds none), ttl ms, the caller's
// instance id. The holder renews; anyone takes a free lease with a new token; nil while another
// holds it. The instance id keeps tokens unique even if Redis loses the epoch counter.
constexpr const char* kLeadScript = R"(
local current = redis.call('GET', KEYS[1])
if current and current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
if current then return false end
local token = tostring(redis.call('INCR', KEYS[2])) .. '-' .. ARGV[3]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token)";

constexpr const char* kResignScript = R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)";

constexpr auto kPollSlice = 200ms;  // bounds stop()'s latency

class RedisCoordinator final : public Coordinator {
 public:
  RedisCoordinator(Endpoint endpoint, RedisCoordinatorOptions options,
                   std::shared_ptr<spdlog::logger> log)
      : options_(std::move(options)),
        log_(std::move(log)),
        commands_("coordinator", endpoint, "", "", kCommandTimeout, *log_),
        subscriber_("events", endpoint, "", "", kCommandTimeout, *log_) {}

  ~RedisCoordinator() override { stop(); }

  Result<std::optional<std::string>> lead(std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mutex_);
    auto reply =
        commands_.command({"EVAL", kLeadScript, "2", options_.leader_key, options_.epoch_key,
                           token_, std::to_string(ttl.count()), instance_});
    if (!reply) return tl::unexpected(reply.error());
    const redisReply* r = reply->get();
    if (r->type == REDIS_REPLY_NIL) {
      token_.clear();
      return std::optional<std::string>();
    }
    if (r->type != REDIS_REPLY_STRING) {
      return fail(ErrorCode::kInternal, "Redis coordinator error", "lease: " + text_of(r));
    }
    token_ = text_of(r);
    return std::optional<std::string>(token_);
  }

  void resign() override {
    std::lock_guard lock(mutex_);
    if (token_.empty()) return;
    (void)commands_.command({"EVAL", kResignScript, "1", options_.leader_key, token_});
    token_.clear();
  }

  Result<void> publish(const EngineEvent& event) override { return publish_all({event}); }

  // One message, one event a line.
  Result<void> publish_all(const std::vector<EngineEvent>& events) override {
    if (events.empty()) return {};
    std::string payload;
    for (const EngineEvent& event : events) {
      if (!payload.empty()) payload += '\n';
      payload += encode(event);
    }
    std::lock_guard lock(mutex_);
    auto reply = commands_.command({"PUBLISH", options_.channel, payload});
    if (!reply) return tl::unexpected(reply.error());
    if (is_error(reply->get())) {
      return fail(ErrorCode::kInternal, "Redis coordinator error", text_of(reply->get()));
    }
    return {};
  }

  void subscribe(std::function<void(const EngineEvent&)> on_event,
                 std::function<void()> resync) override {
    if (thread_.joinable()) return;
    thread_ = std::thread([this, on_event = std::move(on_event), resync = std::move(resync)] {
      name_this_thread("fetchd-events");
      listen(on_event, resync);
    });
  }

  void stop() override {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void listen(const std::function<void(const EngineEvent&)>& on_event,
              const std::function<void()>& resync) {
    while (!stopping_) {
      if (!subscriber_.connected()) {
        auto reply = subscriber_.command({"SUBSCRIBE", options_.channel});
        if (!reply || is_error(reply->get())) {
          subscriber_.drop();
          std::this_thread::sleep_for(kPollSlice);
          continue;
        }
        try {
          resync();
        } catch (const std::exception& e) {
          log_->error("coordinator: resync failed: {}", e.what());
        }
      }
      auto push = subscriber_.next_push(kPollSlice);
      if (!push || !*push) continue;
      const redisReply* r = (*push)->get();
      // ["message", channel, payload]
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || text_of(r->element[0]) != "message") {
        continue;
      }
      const std::string payload = text_of(r->element[2]);
      std::string_view rest(payload);
      while (!rest.empty()) {
        const auto end = rest.find('\n');
        deliver(rest.substr(0, end), on_event);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      }
    }
  }

  void deliver(std::string_view line, const std::function<void(const EngineEvent&)>& on_event) {
    auto event = decode_event(line);
    if (!event) {
      log_->warn("coordinator: ignoring a malformed event \"{}\"", line);
      return;
    }
    try {
      on_event(*event);
    } catch (const std::exception& e) {
      log_->error("coordinator: handling event \"{}\" failed: {}", line, e.what());
    }
  }

  RedisCoordinatorOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;  // commands_, token_
  Connection commands_;
  std::string token_;
  const std::string instance_ = default_consumer() + ":" + std::to_string(std::random_device{}());
  Connection subscriber_;  // the listening thread's only
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Coordinator>> open_redis_coordinator(
    const std::string& url, RedisCoordinatorOptions options,
    std::shared_ptr<spdlog::logger> logger) {
  auto endpoint = parse_url(url);
  if (!endpoint) return tl::unexpected(endpoint.error());
  if (!logger) logger = spdlog::default_logger();
  return std::unique_ptr<Coordinator>(
      std::make_unique<RedisCoordinator>(*endpoint, std::move(options), std::move(logger)));
}

}  // namespace fetchd
