// RedisBroker: runs as Redis Stream entries, leases as the consumer group's pending entries
// (see redis_broker.hpp). Two connections, each behind its own mutex: one for blocking
// XREADGROUP calls, one for everything else, so that a waiting claim never delays a heartbeat.
#include "broker/redis/redis_broker.hpp"

#include "broker/redis/redis_connection.hpp"

#include <spdlog/spdlog.h>

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

using namespace redis_detail;

constexpr auto kBlockSlice = 100ms;  // how long one XREADGROUP blocks: bounds close() latency

// KEYS: stream, the scheduler leader key, then each run's held key. ARGV: fencing token (''
// for none), then each run's task_id, scheduled_at, attempt, manual. The held key makes a
// second run of a task impossible while one is in the broker; the token makes a deposed
// leader's enqueue fail. Returns -1 (not the leader: nothing written), else 1 (enqueued) or 0
// (a run of the task is held) per run.
constexpr const char* kEnqueueScript = R"(
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local added = {}
for i = 3, #KEYS do
  local a = 4 * i - 10
  if redis.call('SET', KEYS[i], ARGV[a + 1], 'NX') then
    redis.call('XADD', KEYS[1], '*', 'task_id', ARGV[a], 'scheduled_at', ARGV[a + 1],
               'attempt', ARGV[a + 2], 'manual', ARGV[a + 3], 'deliveries', '0')
    added[i - 2] = 1
  else
    added[i - 2] = 0
  end
end
return added)";

// Runs per script call (enqueue, complete, extend): a call holds Redis for its duration, and
// every other client waits meanwhile.
constexpr std::size_t kRunsPerScript = 512;

// KEYS: stream, then the held key of each run. ARGV: group, then each run's entry id. Each run
// atomically, so that none is ever half-done: the ack, the delete and the end of the task's
// hold happen together or not at all. An entry still pending is the run its task's hold was
// taken for (only its completion ends the hold); one no longer pending was completed, or
// released and queued again under a new entry, still holding its task: its hold is left
// alone. Returns 1 (done) or 0 (no longer pending) per run.
constexpr const char* kCompleteScript = R"(
local acked = {}
for i = 2, #KEYS do
  local id = ARGV[i]
  local n = redis.call('XACK', KEYS[1], ARGV[1], id)
  if n == 1 then
    redis.call('XDEL', KEYS[1], id)
    redis.call('DEL', KEYS[i])
  end
  acked[i - 1] = n
end
return acked)";

// KEYS: stream. An entry that is not a run holds no task.
constexpr const char* kDropScript = R"(
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

// ARGV: group, consumer, then each run's entry id. XCLAIM would steal an entry another worker
// reclaimed; only the holder may extend. XCLAIM with JUSTID resets the idle time without
// counting a delivery. Returns 1 (extended) or 0 (not this consumer's) per run.
constexpr const char* kExtendScript = R"(
local extended = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    extended[i - 2] = 1
  else
    extended[i - 2] = 0
  end
end
return extended)";

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

  std::string held_key(TaskId id) const { return options.stream + ":held:" + std::to_string(id); }

  // Evaluates one of the scripts above on the stream (and `keys`); returns its integer answer.
  Result<long long> eval(const char* script, const std::vector<std::string>& args,
                         const std::vector<std::string>& keys = {}) {
    std::vector<std::string> argv{"EVAL", script, std::to_string(keys.size() + 1), options.stream};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    auto reply = run_command(argv);
    if (!reply) return tl::unexpected(reply.error());
    if ((*reply)->type != REDIS_REPLY_INTEGER) {
      return fail(ErrorCode::kInternal, "Redis broker error", "EVAL: " + text_of(reply->get()));
    }
    return (*reply)->integer;
  }

  // Runs a script that answers an array with one integer per item (`count` of them); true
  // where it answered 1.
  Result<std::vector<bool>> eval_each(const std::vector<std::string>& argv, std::size_t count) {
    auto reply = run_command(argv);
    if (!reply) return tl::unexpected(reply.error());
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != count) {
      return fail(ErrorCode::kInternal, "Redis broker error", "EVAL: " + text_of(r));
    }
    std::vector<bool> done(count);
    for (std::size_t i = 0; i < count; ++i) {
      done[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
    }
    return done;
  }

  // Applies a per-claim script to `claims` in chunks: `call` makes a chunk's argv. A claim the
  // script answered 0 for, or that reclaim_expired() took back, is kNotFound (`gone` says
  // why); a failed call fails its chunk and the ones after it.
  template <typename MakeArgv>
  std::vector<Result<void>> each_claim(const std::vector<Claim>& claims, MakeArgv&& call,
                                       std::string_view gone) {
    std::vector<Result<void>> results;
    results.reserve(claims.size());
    for (std::size_t first = 0; first < claims.size(); first += kRunsPerScript) {
      const std::size_t count = std::min(kRunsPerScript, claims.size() - first);
      auto done = eval_each(call(first, count), count);
      if (!done) {  // this chunk and the ones after it: the next would most likely fail alike
        results.resize(claims.size(), tl::unexpected(done.error()));
        break;
      }
      for (std::size_t i = 0; i < count; ++i) {
        if ((*done)[i]) {
          results.emplace_back();
        } else {
          results.emplace_back(
              fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                             std::to_string(claims[first + i].run.task_id) + " " +
                                             std::string(gone)));
        }
      }
    }
    return results;
  }

  // Drops an entry that is not a run (written by something else, or damaged).
  void drop_unreadable(const Entry& entry) {
    (void)eval(kDropScript, {options.group, entry.id});
    log->error("redis broker: dropping unreadable stream entry {}", entry.id);
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
    Claim claim{*entry.run, entry.id, SystemClock().now() + lease, deliveries, false};
    mark_if_exhausted(claim);
    return claim;
  }

  // A run claimed more often than max_deliveries goes to the worker once more, flagged, so that
  // it is recorded as failed rather than run (and lost) again.
  void mark_if_exhausted(Claim& claim) {
    if (claim.deliveries <= options.max_deliveries) return;
    claim.exhausted = true;
    given_up.fetch_add(1);
    log->error("run of task {} at {} delivered {} times; giving up", claim.run.task_id,
               format_rfc3339(claim.run.scheduled_at), claim.deliveries);
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
      mark_if_exhausted(claim);
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
  std::mutex fence_mutex;
  std::string fence;  // the scheduler's leader token; empty: enqueue unfenced
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> given_up{0};
};

RedisBroker::RedisBroker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisBroker::~RedisBroker() = default;

Result<void> RedisBroker::enqueue(const Run& run) {
  return std::move(enqueue_all({run}).front());
}

std::vector<Result<void>> RedisBroker::enqueue_all(const std::vector<Run>& runs) {
  Impl& s = *impl_;
  std::vector<Result<void>> results;
  results.reserve(runs.size());
  if (s.closed) {
    results.resize(runs.size(), fail(ErrorCode::kUnavailable, "the broker is closed"));
    return results;
  }
  std::string fence;
  {
    std::lock_guard lock(s.fence_mutex);
    fence = s.fence;
  }
  for (std::size_t first = 0; first < runs.size(); first += kRunsPerScript) {
    const std::size_t count = std::min(kRunsPerScript, runs.size() - first);
    std::vector<std::string> argv{"EVAL", kEnqueueScript, std::to_string(count + 2),
                                  s.options.stream, s.options.leader_key};
    argv.reserve(argv.size() + 5 * count + 1);
    for (std::size_t i = first; i < first + count; ++i) argv.push_back(s.held_key(runs[i].task_id));
    argv.push_back(fence);
    for (std::size_t i = first; i < first + count; ++i) {
      const Run& run = runs[i];
      argv.push_back(std::to_string(run.task_id));
      argv.push_back(std::to_string(to_unix_ms(run.scheduled_at)));
      argv.push_back(std::to_string(run.attempt));
      argv.push_back(run.manual ? "1" : "0");
    }
    auto reply = s.run_command(argv);
    const redisReply* r = reply ? reply->get() : nullptr;
    std::optional<Error> error;
    if (!reply) {
      error = reply.error();
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
      error =
          Error::make(ErrorCode::kUnavailable, "this scheduler no longer holds the leader lease");
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != count) {
      error = Error::make(ErrorCode::kInternal, "Redis broker error", "EVAL: " + text_of(r));
    }
    if (error) {  // this chunk and the ones after it: the next would most likely fail alike
      results.resize(runs.size(), tl::unexpected(*error));
      break;
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1) {
        results.emplace_back();
      } else {
        results.emplace_back(
            fail(ErrorCode::kConflict, "a run of task " + std::to_string(runs[first + i].task_id) +
                                           " is already queued or running"));
      }
    }
  }
  return results;
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
      if (!entry.run) {
        s.drop_unreadable(entry);
        continue;
      }
      claims.push_back(s.make_claim(entry, entry.prior_deliveries + 1, lease));
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
  return std::move(complete_all({claim}).front());
}

std::vector<Result<void>> RedisBroker::complete_all(const std::vector<Claim>& claims) {
  Impl& s = *impl_;
  auto results = s.each_claim(
      claims,
      [&](std::size_t first, std::size_t count) {
        std::vector<std::string> argv{"EVAL", kCompleteScript, std::to_string(count + 1),
                                      s.options.stream};
        argv.reserve(4 + 2 * count + 1);
        for (std::size_t i = first; i < first + count; ++i) {
          argv.push_back(s.held_key(claims[i].run.task_id));
        }
        argv.push_back(s.options.group);
        for (std::size_t i = first; i < first + count; ++i) argv.push_back(claims[i].receipt);
        return argv;
      },
      "is no longer held (completed or released)");
  // Done by its first holder after all: do not hand it out again.
  for (std::size_t i = 0; i < claims.size(); ++i) {
    if (results[i] || results[i].error().code == ErrorCode::kNotFound) {
      s.forget_pending(claims[i].receipt);
    }
  }
  return results;
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
                       run.manual ? "1" : "0", std::to_string(claim.deliveries - 1)});
  if (!moved) return tl::unexpected(moved.error());
  if (*moved == 0) {
    return fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                          std::to_string(run.task_id) +
                                          " is no longer held (completed or released)");
  }
  return {};
}

Result<void> RedisBroker::extend(const Claim& claim, std::chrono::milliseconds lease) {
  return std::move(extend_all({claim}, lease).front());
}

std::vector<Result<void>> RedisBroker::extend_all(const std::vector<Claim>& claims,
                                                  std::chrono::milliseconds lease) {
  Impl& s = *impl_;
  s.lease_ms = lease.count();
  // Runs reclaim_expired() took back expired here, whatever Redis says: it is not asked.
  std::vector<Claim> held;
  std::vector<std::size_t> where;  // held[k] is claims[where[k]]
  std::vector<Result<void>> results(claims.size());
  for (std::size_t i = 0; i < claims.size(); ++i) {
    if (s.is_pending(claims[i].receipt)) {
      results[i] =
          fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                         std::to_string(claims[i].run.task_id) + " expired");
    } else {
      held.push_back(claims[i]);
      where.push_back(i);
    }
  }
  auto extended = s.each_claim(
      held,
      [&](std::size_t first, std::size_t count) {
        std::vector<std::string> argv{"EVAL",           kExtendScript,   "1",
                                      s.options.stream, s.options.group, s.options.consumer};
        argv.reserve(6 + count);
        for (std::size_t i = first; i < first + count; ++i) argv.push_back(held[i].receipt);
        return argv;
      },
      "is no longer held (completed, released or expired)");
  for (std::size_t k = 0; k < held.size(); ++k) results[where[k]] = std::move(extended[k]);
  return results;
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
      if (!entry.run) {
        // Inline drop_unreadable: the commands mutex is already held.
        auto acked = s.commands.command(
            {"EVAL", kDropScript, "1", s.options.stream, s.options.group, entry.id});
        if (!acked) return tl::unexpected(acked.error());
        s.log->error("redis broker: dropping unreadable stream entry {}", entry.id);
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

Result<std::vector<TaskId>> RedisBroker::holding(const std::vector<TaskId>& tasks) {
  constexpr std::size_t kBatch = 1000;
  std::vector<TaskId> held;
  for (std::size_t first = 0; first < tasks.size(); first += kBatch) {
    const std::size_t last = std::min(tasks.size(), first + kBatch);
    std::vector<std::string> args{"MGET"};
    for (std::size_t i = first; i < last; ++i) args.push_back(impl_->held_key(tasks[i]));
    auto reply = impl_->run_command(args);
    if (!reply) return tl::unexpected(reply.error());
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != last - first) {
      return fail(ErrorCode::kInternal, "Redis broker error", "MGET: " + text_of(r));
    }
    for (std::size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->type != REDIS_REPLY_NIL) held.push_back(tasks[first + i]);
    }
  }
  return held;
}

Result<void> RedisBroker::ping() {
  auto reply = impl_->run_command({"PING"});
  if (!reply) return tl::unexpected(reply.error());
  if (is_error(reply->get())) {
    return fail(ErrorCode::kUnavailable, "the broker (Redis) is not ready", text_of(reply->get()));
  }
  return {};
}

void RedisBroker::set_fencing_token(std::string token) {
  std::lock_guard lock(impl_->fence_mutex);
  impl_->fence = std::move(token);
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
