// RedisBroker: runs as Redis Stream entries, leases as the consumer group's pending entries
// (see redis_broker.hpp). Two connections, each behind its own mutex: one for blocking
// XREADGROUP calls, one for everything else, so that a waiting claim never delays a heartbeat.
#include "broker/redis/redis_broker.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace fetchd {

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kConnectTimeout = 1s;
constexpr auto kCommandTimeout = 2s;
constexpr auto kBlockSlice = 100ms;  // how long one XREADGROUP blocks: bounds close() latency
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

// Atomic so that a run is never half-done: the ack and delete happen together or not at all.
constexpr const char* kCompleteScript = R"(
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if n == 1 then redis.call('XDEL', KEYS[1], ARGV[2]) end
return n)";

// The old entry goes and the new one comes in one step: the run is never lost nor doubled.
constexpr const char* kReleaseScript = R"(
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if n == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[1], '*', 'task_id', ARGV[3], 'scheduled_at', ARGV[4], 'attempt', ARGV[5],
           'manual', ARGV[6], 'deliveries', ARGV[7])
return 1)";

// XCLAIM would steal an entry another worker reclaimed; only the holder may extend.
constexpr const char* kExtendScript = R"(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1)";

struct Endpoint {
  std::string host;
  int port = 6379;
  int db = 0;
};

std::optional<long long> parse_int(std::string_view text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

Result<Endpoint> parse_url(const std::string& url) {
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

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

std::string text_of(const redisReply* reply) {
  if (reply == nullptr) return {};
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
      reply->type == REDIS_REPLY_ERROR) {
    return std::string(reply->str, reply->len);
  }
  return {};
}

bool is_error(const redisReply* reply, std::string_view prefix = {}) {
  return reply->type == REDIS_REPLY_ERROR &&
         std::string_view(reply->str, reply->len).starts_with(prefix);
}

std::string default_consumer() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "localhost") + ":" + std::to_string(getpid());
}

// One Redis connection that reconnects by itself with a capped backoff. Not thread-safe: its
// owner serialises calls with a mutex.
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
  Result<ReplyPtr> command(const std::vector<std::string>& args) {
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

  // The group vanishes when Redis restarts without persistence: create it (and the stream)
  // again. Reading from id 0 delivers runs enqueued before the group existed.
  Result<void> ensure_group() {
    auto reply = command({"XGROUP", "CREATE", stream_, group_, "0", "MKSTREAM"});
    if (!reply) return tl::unexpected(reply.error());
    if (is_error(reply->get()) && !is_error(reply->get(), "BUSYGROUP")) {
      return fail(ErrorCode::kInternal, "Redis broker error",
                  "XGROUP CREATE: " + text_of(reply->get()));
    }
    return {};
  }

 private:
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

struct Entry {
  std::string id;
  std::optional<Run> run;  // nullopt: the entry was deleted or is not a run
  std::int64_t prior_deliveries = 0;
};

Entry parse_entry(const redisReply* reply) {
  Entry entry;
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) return entry;
  entry.id = text_of(reply->element[0]);
  if (reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_ARRAY) return entry;
  const redisReply* fields = reply->element[1];
  std::optional<long long> task_id, scheduled_at, attempt, manual, deliveries;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const std::string key = text_of(fields->element[i]);
    auto value = parse_int(text_of(fields->element[i + 1]));
    if (key == "task_id") task_id = value;
    if (key == "scheduled_at") scheduled_at = value;
    if (key == "attempt") attempt = value;
    if (key == "manual") manual = value;
    if (key == "deliveries") deliveries = value;
  }
  if (!task_id || !scheduled_at || !attempt) return entry;
  entry.run = Run{*task_id, from_unix_ms(*scheduled_at), *attempt, manual.value_or(0) != 0};
  entry.prior_deliveries = deliveries.value_or(0);
  return entry;
}

// The entries of an XREADGROUP reply: [[stream, [entry...]]], or nil on time-out.
std::vector<Entry> read_entries(const redisReply* reply) {
  std::vector<Entry> entries;
  if (reply->type != REDIS_REPLY_ARRAY) return entries;
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
    const redisReply* list = stream->element[1];
    if (list->type != REDIS_REPLY_ARRAY) continue;
    for (size_t i = 0; i < list->elements; ++i) entries.push_back(parse_entry(list->element[i]));
  }
  return entries;
}

}  // namespace

struct RedisBroker::Impl {
  Impl(Endpoint endpoint, RedisBrokerOptions opts, std::shared_ptr<spdlog::logger> logger)
      : options(std::move(opts)),
        log(std::move(logger)),
        commands("command", endpoint, options.stream, options.group, kCommandTimeout, *log),
        blocking("claim", endpoint, options.stream, options.group, kCommandTimeout + kBlockSlice,
                 *log),
        lease_ms(options.lease.count()) {}

  Result<ReplyPtr> run_command(const std::vector<std::string>& args) {
    std::lock_guard lock(commands_mutex);
    return commands.command(args);
  }

  // Evaluates one of the scripts above; returns its integer answer.
  Result<long long> eval(const char* script, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"EVAL", script, "1", options.stream};
    argv.insert(argv.end(), args.begin(), args.end());
    auto reply = run_command(argv);
    if (!reply) return tl::unexpected(reply.error());
    if ((*reply)->type != REDIS_REPLY_INTEGER) {
      return fail(ErrorCode::kInternal, "Redis broker error", "EVAL: " + text_of(reply->get()));
    }
    return (*reply)->integer;
  }

  // Drops a run that keeps coming back (its worker dies on it, or it is unreadable).
  void give_up(const Entry& entry, std::int64_t deliveries) {
    (void)eval(kCompleteScript, {options.group, entry.id});
    given_up.fetch_add(1);
    if (entry.run) {
      log->error("run of task {} at {} delivered {} times; giving up", entry.run->task_id,
                 format_rfc3339(entry.run->scheduled_at), deliveries);
    } else {
      log->error("redis broker: dropping unreadable stream entry {}", entry.id);
    }
  }

  void forget_pending(const std::string& id) {
    std::lock_guard lock(pending_mutex);
    std::erase_if(pending, [&](const Claim& c) { return c.receipt == id; });
  }

  bool is_pending(const std::string& id) {
    std::lock_guard lock(pending_mutex);
    return std::any_of(pending.begin(), pending.end(),
                       [&](const Claim& c) { return c.receipt == id; });
  }

  Claim make_claim(const Entry& entry, std::int64_t deliveries, std::chrono::milliseconds lease) {
    return Claim{*entry.run, entry.id, SystemClock().now() + lease, deliveries};
  }

  // Hands out runs reclaim_expired() took back; their idle time restarts now (the lease).
  Result<std::vector<Claim>> take_pending(std::size_t max, std::chrono::milliseconds lease) {
    std::vector<Claim> taken;
    {
      std::lock_guard lock(pending_mutex);
      while (!pending.empty() && taken.size() < max) {
        taken.push_back(std::move(pending.front()));
        pending.pop_front();
      }
    }
    if (taken.empty()) return taken;
    std::vector<std::string> args{"XCLAIM", options.stream, options.group, options.consumer, "0"};
    const TimePoint lease_until = SystemClock().now() + lease;
    for (auto& claim : taken) {
      args.push_back(claim.receipt);
      claim.lease_until = lease_until;
    }
    args.push_back("JUSTID");
    lease_ms = lease.count();
    auto reply = run_command(args);
    if (!reply) {
      // Put them back: they are still this consumer's pending entries.
      std::lock_guard lock(pending_mutex);
      pending.insert(pending.begin(), taken.begin(), taken.end());
      return tl::unexpected(reply.error());
    }
    return taken;
  }

  RedisBrokerOptions options;
  std::shared_ptr<spdlog::logger> log;
  mutable std::mutex commands_mutex;
  Connection commands;
  std::mutex blocking_mutex;
  Connection blocking;
  std::mutex pending_mutex;
  std::deque<Claim> pending;  // reclaimed by this consumer, not yet handed out
  std::atomic<std::int64_t> lease_ms;
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> given_up{0};
};

RedisBroker::RedisBroker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisBroker::~RedisBroker() = default;

Result<void> RedisBroker::enqueue(const Run& run) {
  if (impl_->closed) return fail(ErrorCode::kUnavailable, "the broker is closed");
  auto reply = impl_->run_command(
      {"XADD", impl_->options.stream, "*", "task_id", std::to_string(run.task_id), "scheduled_at",
       std::to_string(to_unix_ms(run.scheduled_at)), "attempt", std::to_string(run.attempt),
       "manual", run.manual ? "1" : "0", "deliveries", "0"});
  if (!reply) return tl::unexpected(reply.error());
  if (is_error(reply->get())) {
    return fail(ErrorCode::kInternal, "Redis broker error", "XADD: " + text_of(reply->get()));
  }
  return {};
}

Result<std::vector<Claim>> RedisBroker::claim(std::size_t max, std::chrono::milliseconds wait,
                                              std::chrono::milliseconds lease) {
  Impl& s = *impl_;
  std::vector<Claim> claims;
  if (max == 0 || s.closed) return claims;
  if (auto taken = s.take_pending(max, lease); !taken || !taken->empty()) return taken;

  const auto deadline = SteadyClock::now() + wait;
  std::lock_guard lock(s.blocking_mutex);
  for (;;) {
    if (s.closed) return claims;
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    const bool last = remaining < 1ms;
    std::vector<std::string> args{"XREADGROUP",       "GROUP", s.options.group,
                                  s.options.consumer, "COUNT", std::to_string(max)};
    if (!last) {
      args.push_back("BLOCK");
      args.push_back(
          std::to_string(std::min<std::chrono::milliseconds>(remaining, kBlockSlice).count()));
    }
    args.insert(args.end(), {"STREAMS", s.options.stream, ">"});
    auto reply = s.blocking.command(args);
    if (!reply) return tl::unexpected(reply.error());
    if (is_error(reply->get(), "NOGROUP")) {
      if (auto made = s.blocking.ensure_group(); !made) return tl::unexpected(made.error());
      continue;
    }
    if (is_error(reply->get())) {
      return fail(ErrorCode::kInternal, "Redis broker error",
                  "XREADGROUP: " + text_of(reply->get()));
    }
    for (const Entry& entry : read_entries(reply->get())) {
      const std::int64_t deliveries = entry.prior_deliveries + 1;
      if (!entry.run || deliveries > s.options.max_deliveries) {
        s.give_up(entry, deliveries);
        continue;
      }
      claims.push_back(s.make_claim(entry, deliveries, lease));
    }
    if (!claims.empty()) {
      s.lease_ms = lease.count();
      return claims;
    }
    // Runs reclaim_expired() took back while this claim waited.
    if (auto taken = s.take_pending(max, lease); !taken || !taken->empty()) return taken;
    if (last) return claims;
  }
}

Result<void> RedisBroker::complete(const Claim& claim) {
  auto acked = impl_->eval(kCompleteScript, {impl_->options.group, claim.receipt});
  if (!acked) return tl::unexpected(acked.error());
  // Done by its first holder after all: do not hand it out again.
  impl_->forget_pending(claim.receipt);
  if (*acked == 0) {
    return fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                          std::to_string(claim.run.task_id) +
                                          " is no longer held (completed or released)");
  }
  return {};
}

Result<void> RedisBroker::release(const Claim& claim) {
  const Run& run = claim.run;
  if (impl_->is_pending(claim.receipt)) {
    return fail(ErrorCode::kNotFound,
                "the claim on the run of task " + std::to_string(run.task_id) + " expired");
  }
  auto moved = impl_->eval(
      kReleaseScript, {impl_->options.group, claim.receipt, std::to_string(run.task_id),
                       std::to_string(to_unix_ms(run.scheduled_at)), std::to_string(run.attempt),
                       run.manual ? "1" : "0", std::to_string(claim.deliveries)});
  if (!moved) return tl::unexpected(moved.error());
  if (*moved == 0) {
    return fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                          std::to_string(run.task_id) +
                                          " is no longer held (completed or released)");
  }
  return {};
}

Result<void> RedisBroker::extend(const Claim& claim, std::chrono::milliseconds lease) {
  if (impl_->is_pending(claim.receipt)) {
    return fail(ErrorCode::kNotFound,
                "the claim on the run of task " + std::to_string(claim.run.task_id) + " expired");
  }
  impl_->lease_ms = lease.count();
  auto extended =
      impl_->eval(kExtendScript, {impl_->options.group, impl_->options.consumer, claim.receipt});
  if (!extended) return tl::unexpected(extended.error());
  if (*extended == 0) {
    return fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                          std::to_string(claim.run.task_id) +
                                          " is no longer held (completed, released or expired)");
  }
  return {};
}

Result<std::size_t> RedisBroker::reclaim_expired(TimePoint now) {
  Impl& s = *impl_;
  // Redis knows idle times, not deadlines: a lease ran out before `now` when the entry has
  // been idle longer than the lease plus however far `now` lies in the past.
  const auto behind = (SystemClock().now() - now).count();
  const long long min_idle = std::max<long long>(0, s.lease_ms.load() + behind);
  std::size_t reclaimed = 0;
  std::string cursor = "0-0";
  std::lock_guard lock(s.commands_mutex);
  do {
    auto reply =
        s.commands.command({"XAUTOCLAIM", s.options.stream, s.options.group, s.options.consumer,
                            std::to_string(min_idle), cursor, "COUNT", "100"});
    if (!reply) return tl::unexpected(reply.error());
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      return fail(ErrorCode::kInternal, "Redis broker error", "XAUTOCLAIM: " + text_of(r));
    }
    cursor = text_of(r->element[0]);
    for (size_t i = 0; i < r->element[1]->elements; ++i) {
      const Entry entry = parse_entry(r->element[1]->element[i]);
      auto count = s.commands.command(
          {"XPENDING", s.options.stream, s.options.group, entry.id, entry.id, "1"});
      if (!count) return tl::unexpected(count.error());
      std::int64_t times = 1;
      const redisReply* p = count->get();
      if (p->type == REDIS_REPLY_ARRAY && p->elements == 1 &&
          p->element[0]->type == REDIS_REPLY_ARRAY && p->element[0]->elements == 4) {
        times = p->element[0]->element[3]->integer;
      }
      const std::int64_t deliveries = entry.prior_deliveries + times;
      if (!entry.run || deliveries > s.options.max_deliveries) {
        // Inline give_up: the commands mutex is already held.
        auto acked = s.commands.command(
            {"EVAL", kCompleteScript, "1", s.options.stream, s.options.group, entry.id});
        if (!acked) return tl::unexpected(acked.error());
        s.given_up.fetch_add(1);
        if (entry.run) {
          s.log->error("run of task {} at {} delivered {} times; giving up", entry.run->task_id,
                       format_rfc3339(entry.run->scheduled_at), deliveries);
        } else {
          s.log->error("redis broker: dropping unreadable stream entry {}", entry.id);
        }
        continue;
      }
      std::lock_guard pending_lock(s.pending_mutex);
      auto it = std::find_if(s.pending.begin(), s.pending.end(),
                             [&](const Claim& c) { return c.receipt == entry.id; });
      if (it != s.pending.end()) {
        it->deliveries = deliveries;
        continue;
      }
      s.pending.push_back(Claim{*entry.run, entry.id, {}, deliveries});
      ++reclaimed;
    }
  } while (cursor != "0-0" && !cursor.empty());
  return reclaimed;
}

std::size_t RedisBroker::depth() const {
  Impl& s = *impl_;
  std::lock_guard lock(s.commands_mutex);
  auto length = s.commands.command({"XLEN", s.options.stream});
  if (!length || (*length)->type != REDIS_REPLY_INTEGER) return 0;
  auto summary = s.commands.command({"XPENDING", s.options.stream, s.options.group});
  if (!summary || (*summary)->type != REDIS_REPLY_ARRAY || (*summary)->elements < 1 ||
      (*summary)->element[0]->type != REDIS_REPLY_INTEGER) {
    return 0;
  }
  long long waiting = (*length)->integer - (*summary)->element[0]->integer;
  std::lock_guard pending_lock(s.pending_mutex);
  waiting += static_cast<long long>(s.pending.size());
  return static_cast<std::size_t>(std::max(0LL, waiting));
}

void RedisBroker::close() {
  impl_->closed = true;
}

std::uint64_t RedisBroker::given_up() const {
  return impl_->given_up.load();
}

Result<std::unique_ptr<Broker>> open_redis_broker(const std::string& url,
                                                  RedisBrokerOptions options,
                                                  std::shared_ptr<spdlog::logger> logger) {
  auto endpoint = parse_url(url);
  if (!endpoint) return tl::unexpected(endpoint.error());
  if (options.max_deliveries < 1) {
    return fail(ErrorCode::kInvalid, "broker.max_deliveries must be at least 1");
  }
  if (options.consumer.empty()) options.consumer = default_consumer();
  if (!logger) logger = spdlog::default_logger();
  auto impl = std::make_unique<RedisBroker::Impl>(*endpoint, std::move(options), logger);
  // An unreachable Redis is not fatal: every call retries, so the process rides it out.
  {
    std::lock_guard lock(impl->commands_mutex);
    if (auto group = impl->commands.ensure_group(); !group) {
      impl->log->warn("redis broker: {} ({}); retrying in the background", group.error().message,
                      group.error().internal);
    }
  }
  return std::unique_ptr<Broker>(std::make_unique<RedisBroker>(std::move(impl)));
}

}  // namespace fetchd
