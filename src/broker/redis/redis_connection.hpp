// Internal to the Redis backends (broker, coordinator): the URL, one self-healing connection
// and the small helpers around hiredis replies. Not part of any public interface.
#pragma once

#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/logger.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace fetchd::redis_detail {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kConnectTimeout = 1s;
constexpr auto kCommandTimeout = 2s;
constexpr auto kFirstBackoff = 50ms;
constexpr auto kMaxBackoff = 2s;

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct Endpoint {
  std::string host;
  int port = 6379;
  int db = 0;
};

inline std::optional<long long> parse_int(std::string_view text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

inline Result<Endpoint> parse_url(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::kInvalid, "bad Redis URL '" + url + "': " + why);
  };
  std::string_view rest(url);
  if (!rest.starts_with(kScheme)) return bad("expected redis://host:port/db");
  rest.remove_prefix(kScheme.size());
  Endpoint endpoint;
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.size() < rest.size()) {
    std::string_view db = rest.substr(authority.size() + 1);
    if (!db.empty()) {
      auto n = parse_int(db);
      if (!n || *n < 0 || *n > 1'000'000) return bad("the database must be a number");
      endpoint.db = static_cast<int>(*n);
    }
  }
  if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    auto n = parse_int(authority.substr(colon + 1));
    if (!n || *n < 1 || *n > 65535) return bad("the port must be in 1..65535");
    endpoint.port = static_cast<int>(*n);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return bad("no host");
  endpoint.host = std::string(authority);
  return endpoint;
}

inline timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

inline std::string text_of(const redisReply* reply) {
  if (reply == nullptr) return {};
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
      reply->type == REDIS_REPLY_ERROR) {
    return std::string(reply->str, reply->len);
  }
  return {};
}

inline bool is_error(const redisReply* reply, std::string_view prefix = {}) {
  return reply->type == REDIS_REPLY_ERROR &&
         std::string_view(reply->str, reply->len).starts_with(prefix);
}

inline std::string default_consumer() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "localhost") + ":" + std::to_string(getpid());
}

// One Redis connection that reconnects by itself with a capped backoff. Not thread-safe: its
// owner serialises calls with a mutex. With a group, (re)connecting also makes sure the stream's
// consumer group exists.
class Connection {
 public:
  Connection(std::string name, Endpoint endpoint, std::string stream, std::string group,
             std::chrono::milliseconds timeout, spdlog::logger& log)
      : name_(std::move(name)),
        endpoint_(std::move(endpoint)),
        stream_(std::move(stream)),
        group_(std::move(group)),
        timeout_(timeout),
        log_(log) {}

  // A null-free reply (possibly an error reply) or kUnavailable when Redis is unreachable.
  // A connection found broken by this command (Redis restarted since the last one) is
  // re-opened and the command sent once more at once: every command fetchd sends may be
  // repeated safely (scripts check before they change anything, events are idempotent).
  Result<ReplyPtr> command(const std::vector<std::string>& args) {
    const bool was_connected = context_ != nullptr;
    auto reply = send(args);
    if (reply || !was_connected) return reply;
    next_attempt_ = {};
    return send(args);
  }

  // The group vanishes when Redis restarts without persistence: create it (and the stream)
  // again. Reading from id 0 delivers runs enqueued before the group existed.
  Result<void> ensure_group() {
    if (group_.empty()) return {};
    auto reply = send({"XGROUP", "CREATE", stream_, group_, "0", "MKSTREAM"});
    if (!reply) return tl::unexpected(reply.error());
    if (is_error(reply->get()) && !is_error(reply->get(), "BUSYGROUP")) {
      return fail(ErrorCode::kInternal, "Redis broker error",
                  "XGROUP CREATE: " + text_of(reply->get()));
    }
    return {};
  }

 private:
  Result<ReplyPtr> send(const std::vector<std::string>& args) {
    if (auto connected = connect(); !connected) return tl::unexpected(connected.error());
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    ReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
        context_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (!reply) return lost();
    return reply;
  }

  Result<void> connect() {
    if (context_) return {};
    const auto now = SteadyClock::now();
    if (now < next_attempt_) {
      return fail(ErrorCode::kUnavailable, "the broker (Redis) is unreachable",
                  "reconnect backoff");
    }
    const timeval connect_tv = to_timeval(kConnectTimeout);
    ContextPtr context(redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, connect_tv));
    std::string why;
    if (!context) {
      why = "cannot allocate a Redis context";
    } else if (context->err != 0) {
      why = context->errstr;
    } else if (redisSetTimeout(context.get(), to_timeval(timeout_)) != REDIS_OK) {
      why = "cannot set the socket timeout";
    }
    if (why.empty() && endpoint_.db != 0) {
      ReplyPtr reply(
          static_cast<redisReply*>(redisCommand(context.get(), "SELECT %d", endpoint_.db)));
      if (!reply || is_error(reply.get())) why = "SELECT failed: " + text_of(reply.get());
    }
    if (!why.empty()) {
      next_attempt_ = now + backoff_;
      backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
      return fail(ErrorCode::kUnavailable, "the broker (Redis) is unreachable", why);
    }
    context_ = std::move(context);
    backoff_ = kFirstBackoff;
    if (was_lost_)
      log_.info("redis broker: {} connection to {}:{} restored", name_, endpoint_.host,
                endpoint_.port);
    was_lost_ = false;
    return ensure_group();
  }

 public:
  // For a subscriber connection: the next pushed message, waiting up to `wait` for it; nullopt
  // on time-out. kUnavailable when the connection is lost (call command() to reconnect).
  Result<std::optional<ReplyPtr>> next_push(std::chrono::milliseconds wait) {
    if (!context_) return fail(ErrorCode::kUnavailable, "the broker (Redis) is unreachable");
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_.get(), &raw) != REDIS_OK) return lost();
    if (raw != nullptr) return std::optional<ReplyPtr>(ReplyPtr(static_cast<redisReply*>(raw)));
    pollfd fd{context_->fd, POLLIN, 0};
    const int ready = ::poll(&fd, 1, static_cast<int>(wait.count()));
    if (ready == 0) return std::optional<ReplyPtr>();
    if (ready < 0) return std::optional<ReplyPtr>();  // EINTR: the caller loops
    if (redisBufferRead(context_.get()) != REDIS_OK) return lost();
    if (redisGetReplyFromReader(context_.get(), &raw) != REDIS_OK) return lost();
    if (raw == nullptr) return std::optional<ReplyPtr>();
    return std::optional<ReplyPtr>(ReplyPtr(static_cast<redisReply*>(raw)));
  }

  bool connected() const { return context_ != nullptr; }
  void drop() { context_.reset(); }

 private:
  tl::unexpected<Error> lost() {
    std::string why = context_ && context_->err != 0 ? context_->errstr : "no reply";
    if (!was_lost_) {
      log_.warn("redis broker: {} connection to {}:{} lost: {}", name_, endpoint_.host,
                endpoint_.port, why);
    }
    was_lost_ = true;
    context_.reset();
    next_attempt_ = SteadyClock::now() + backoff_;
    return fail(ErrorCode::kUnavailable, "the broker (Redis) is unreachable", why);
  }

  std::string name_;
  Endpoint endpoint_;
  std::string stream_;
  std::string group_;
  std::chrono::milliseconds timeout_;
  spdlog::logger& log_;
  ContextPtr context_;
  SteadyClock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  bool was_lost_ = false;
};

}  // namespace fetchd::redis_detail
