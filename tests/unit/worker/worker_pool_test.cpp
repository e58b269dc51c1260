// WorkerPool end to end inside the process: the real LocalBroker, SQLite store (in memory) and
// RunWriter, with a fake Fetcher (canned results delivered on its own thread, optionally held),
// a fake clock, a recording RunListener and a captured log.
#include "worker/worker_pool.hpp"
#include "support/forwarding_broker.hpp"
#include "support/forwarding_store.hpp"
#include "support/gate.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include "broker/local/local_broker.hpp"
#include "core/schedule.hpp"
#include "fetch/request_builder.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/fake_clock.hpp"
#include "worker/fetch_outcome.hpp"
#include "worker/json_check.hpp"

namespace fetchd {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!predicate()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(FETCHD_SOURCE_DIR) + "/../shared/fixtures/" + name,
                   std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

using test::FakeClock;

FetchResult ok_response(int status, std::string body) {
  FetchResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

FetchResult fetch_error(FetchErrorKind kind, std::string message) {
  return tl::unexpected(FetchError{kind, std::move(message), {}});
}

// A fetch engine that answers from a table (by URL) on a thread of its own, like the curl
// engine. While held, fetches wait until released; `elapsed` advances the fake clock before
// a result is delivered, as if the transfer had taken that long.
class FakeFetcher final : public Fetcher {
 public:
  explicit FakeFetcher(FakeClock& clock) : clock_(clock), thread_([this] { loop(); }) {}
  ~FakeFetcher() override { stop(0ms); }

  void reply(const std::string& url, FetchResult result, Millis elapsed = 0ms) {
    std::lock_guard lock(mutex_);
    replies_[url] = Reply{std::move(result), elapsed};
  }
  void hold(bool on) {
    std::lock_guard lock(mutex_);
    holding_ = on;
  }
  // Delivers up to `n` held fetches, oldest first.
  void release(std::size_t n = SIZE_MAX) {
    {
      std::lock_guard lock(mutex_);
      while (n-- > 0 && !held_.empty()) {
        ready_.push_back(std::move(held_.front()));
        held_.pop_front();
      }
    }
    wake_.notify_all();
  }
  bool wait_held(std::size_t n, Millis timeout = 10s) {
    return eventually([&] { return held() >= n; }, timeout);
  }
  std::size_t held() const {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  std::size_t max_outstanding() const {
    std::lock_guard lock(mutex_);
    return max_outstanding_;
  }
  std::vector<FetchRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::thread::id engine_thread() const { return thread_.get_id(); }
  static SteadyClock::duration thread_cpu_time() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                             std::chrono::nanoseconds(ts.tv_nsec));
  }
  // The most CPU time one callback took on the engine thread.
  SteadyClock::duration longest_callback() const {
    std::lock_guard lock(mutex_);
    return longest_callback_;
  }

  void fetch(FetchRequest request, Callback done) override {
    {
      std::unique_lock lock(mutex_);
      requests_.push_back(request);
      if (stopping_) {
        // Like the real engine: once stopped, a fetch fails with kShutdown at once.
        lock.unlock();
        done(fetch_error(FetchErrorKind::kShutdown, "stopped"));
        return;
      }
      Pending pending{std::move(request), std::move(done)};
      ++outstanding_;
      max_outstanding_ = std::max(max_outstanding_, outstanding_);
      if (holding_) {
        held_.push_back(std::move(pending));
      } else {
        ready_.push_back(std::move(pending));
      }
    }
    wake_.notify_all();
  }
  std::size_t in_flight() const override {
    std::lock_guard lock(mutex_);
    return outstanding_;
  }
  // Fails the held fetches with kShutdown, as the real engine does.
  void stop(Millis) override {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
      for (auto& pending : held_) {
        pending.shutdown = true;
        ready_.push_back(std::move(pending));
      }
      held_.clear();
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  struct Reply {
    FetchResult result;
    Millis elapsed{0};
  };
  struct Pending {
    FetchRequest request;
    Callback done;
    bool shutdown = false;
  };

  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
      if (ready_.empty()) return;  // stopping, all delivered
      Pending pending = std::move(ready_.front());
      ready_.pop_front();
      Reply reply{ok_response(200, "[]"), 0ms};
      if (auto it = replies_.find(pending.request.url); it != replies_.end()) reply = it->second;
      if (pending.shutdown) reply.result = fetch_error(FetchErrorKind::kShutdown, "stopped");
      --outstanding_;  // before the callback, as the real engine: it may start the next fetch
      lock.unlock();
      clock_.advance(reply.elapsed);
      // CPU time of this thread, not wall time: a loaded machine may deschedule the thread
      // in the middle of the callback, which says nothing about the work the callback did.
      const auto started = thread_cpu_time();
      pending.done(std::move(reply.result));
      const auto took = thread_cpu_time() - started;
      lock.lock();
      longest_callback_ = std::max(longest_callback_, took);
    }
  }

  FakeClock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Reply> replies_;
  std::deque<Pending> held_;
  std::deque<Pending> ready_;
  std::vector<FetchRequest> requests_;
  std::size_t outstanding_ = 0;
  std::size_t max_outstanding_ = 0;
  SteadyClock::duration longest_callback_{0};
  bool holding_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

struct Finished {
  TaskId id = 0;
  std::optional<TimePoint> next_run_at;
  std::int64_t failures = 0;
};

class RecordingListener final : public RunListener {
 public:
  void run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                    std::int64_t consecutive_failures) override {
    {
      std::lock_guard lock(mutex_);
      finished_.push_back(Finished{id, next_run_at, consecutive_failures});
    }
    changed_.notify_all();
  }
  void runs_finished(const std::vector<FinishedRun>& runs) override {
    {
      std::lock_guard lock(mutex_);
      batches_.push_back(runs.size());
    }
    RunListener::runs_finished(runs);
  }
  // The size of each runs_finished batch.
  std::vector<std::size_t> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  bool wait_for(std::size_t n, Millis timeout = 10s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return finished_.size() >= n; });
  }
  std::vector<Finished> finished() const {
    std::lock_guard lock(mutex_);
    return finished_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Finished> finished_;
  std::vector<std::size_t> batches_;
};

class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines_with(std::string_view text) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& line : lines_) {
      if (line.find(text) != std::string::npos) out.push_back(line);
    }
    return out;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = open_sqlite_store(":memory:");
    ASSERT_TRUE(opened) << opened.error().message;
    store = std::move(*opened);
    ASSERT_TRUE(store->migrate());
    auto user = store->create_user(NewUser{"alice", "hash", Role::kUser}, clock.now());
    ASSERT_TRUE(user) << user.error().message;
    owner = user->id;
    log = std::make_shared<spdlog::logger>("test", sink);
    log->set_level(spdlog::level::debug);
    writer = std::make_unique<RunWriter>(*store, log);
  }

  void TearDown() override {
    // The order of Engine::stop: workers, fetch engine, writer.
    if (pool) pool->stop(0ms);
    fetcher.stop(0ms);
    writer->stop();
    pool.reset();
  }

  WorkerOptions options(std::size_t concurrency = 8) {
    WorkerOptions o;
    o.concurrency = concurrency;
    o.default_timeout = 5s;
    o.max_response_bytes = 1024 * 1024;
    o.worker_id = "test-worker:1";
    o.claim_wait = 20ms;
    return o;
  }

  WorkerPool& make_pool(WorkerOptions o) {
    pool = std::make_unique<WorkerPool>(*store, broker, fetcher, *writer, listener, clock, metrics,
                                        log, std::move(o));
    return *pool;
  }
  WorkerPool& make_pool() { return make_pool(options()); }

  // A task fetching http://feeds.test/<name>, due every minute since an hour ago.
  Task add_task(const std::string& name, std::int64_t max_execution_time = 0,
                std::int64_t max_attempt = 3, std::string url = {}) {
    TaskSpec spec;
    spec.name = name;
    spec.url = url.empty() ? "http://feeds.test/" + name : std::move(url);
    spec.start_time = clock.now() - 1h;
    spec.end_time = clock.now() + 24h;
    spec.task_interval = 60;
    spec.max_execution_time = max_execution_time;
    spec.max_attempt = max_attempt;
    auto task = store->create_task(owner, spec, clock.now());
    EXPECT_TRUE(task) << task.error().message;
    return *task;
  }

  // `n` tasks due now, each fetching `body`.
  void add_due_tasks(std::size_t n, const std::string& body) {
    for (std::size_t i = 0; i < n; ++i) {
      const Task task = add_task("t" + std::to_string(i));
      fetcher.reply(task.spec.url, ok_response(200, body));
      enqueue(task);
    }
  }

  void enqueue(const Task& task, std::int64_t attempt = 1, std::optional<TimePoint> due = {}) {
    ASSERT_TRUE(broker.enqueue(fetchd::Run{task.id, due.value_or(clock.now()), attempt, false}));
  }

  std::vector<Job> jobs_of(TaskId id) {
    JobQuery query;
    query.task_id = id;
    auto page = store->list_jobs(query);
    EXPECT_TRUE(page) << page.error().message;
    return page ? page->items : std::vector<Job>{};
  }

  Job only_job(TaskId id) {
    auto jobs = jobs_of(id);
    EXPECT_EQ(jobs.size(), 1u);
    return jobs.empty() ? Job{} : jobs.front();
  }

  Task task_now(TaskId id) {
    auto task = store->get_task(id);
    EXPECT_TRUE(task);
    return task ? *task : Task{};
  }

  FakeClock clock{from_unix_ms(1'700'000'040'000)};
  std::unique_ptr<Store> store;
  UserId owner = 0;
  LocalBroker broker{clock};
  FakeFetcher fetcher{clock};
  RecordingListener listener;
  Metrics metrics;
  std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>();
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<RunWriter> writer;
  std::unique_ptr<WorkerPool> pool;
};

TEST_F(WorkerPoolTest, SuccessRecordsJobDataAndSummary) {
  const std::string feed = fixture("amazingexpo2020.json");
  ASSERT_FALSE(feed.empty());
  Task task = add_task("expo");
  fetcher.reply("http://feeds.test/expo", ok_response(200, feed), 250ms);
  const TimePoint due = clock.now();
  enqueue(task);

  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));

  const TimePoint finished_at = due + 250ms;
  auto finished = listener.finished();
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].id, task.id);
  EXPECT_EQ(finished[0].failures, 0);
  EXPECT_EQ(finished[0].next_run_at,
            next_run_after(task, due, finished_at, RunOutcome::kSucceeded, 0));
  EXPECT_EQ(finished[0].next_run_at, due + 60s);

  Job job = only_job(task.id);
  EXPECT_EQ(job.status, JobStatus::kSucceeded);
  EXPECT_EQ(job.attempt, 1);
  EXPECT_EQ(job.scheduled_at, due);
  EXPECT_EQ(job.started_at, due);
  EXPECT_EQ(job.finished_at, finished_at);
  EXPECT_EQ(job.duration_ms, 250);
  EXPECT_EQ(job.http_status, 200);
  EXPECT_FALSE(job.error.has_value());
  EXPECT_EQ(job.response_bytes, static_cast<std::int64_t>(feed.size()));
  EXPECT_EQ(job.records, 180);
  EXPECT_EQ(job.changed, true);
  EXPECT_EQ(job.worker_id, "test-worker:1");
  ASSERT_TRUE(job.data_id.has_value());

  auto data = store->get_data(*job.data_id);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->body, feed);
  EXPECT_EQ(data->content_hash, sha256_hex(feed));
  EXPECT_EQ(data->records, 180);

  Task after = task_now(task.id);
  EXPECT_EQ(after.consecutive_failures, 0);
  EXPECT_EQ(after.next_run_at, due + 60s);
  EXPECT_EQ(after.last.job_id, job.id);
  EXPECT_EQ(after.last.status, "succeeded");
  EXPECT_EQ(after.last.data_id, job.data_id);

  EXPECT_TRUE(eventually([&] { return pool->in_flight() == 0; }));
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(pool->counts(), (RunCounts{1, 0, 0, 0, 0}));
  const std::string rendered = metrics.render();
  EXPECT_NE(rendered.find("fetchd_runs_total{status=\"succeeded\"} 1\n"), std::string::npos);
  EXPECT_NE(rendered.find("fetchd_runs_total{status=\"failed\"} 0\n"), std::string::npos);

  auto requests = fetcher.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].url, "http://feeds.test/expo");
  EXPECT_EQ(requests[0].method, "GET");
}

TEST_F(WorkerPoolTest, Http500FailsAndCountsTheFailure) {
  Task task = add_task("broken");
  fetcher.reply("http://feeds.test/broken", ok_response(500, "oops"), 40ms);
  const TimePoint due = clock.now();
  enqueue(task);

  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));

  Job job = only_job(task.id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error, "HTTP 500 Internal Server Error");
  EXPECT_EQ(job.http_status, 500);
  EXPECT_EQ(job.response_bytes, 4);
  EXPECT_FALSE(job.data_id.has_value());
  EXPECT_FALSE(job.records.has_value());

  // Retried after 1 s with ±10% jitter (the interval, 60 s, does not cap it).
  const TimePoint finished_at = due + 40ms;
  auto finished = listener.finished();
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].failures, 1);
  ASSERT_TRUE(finished[0].next_run_at.has_value());
  EXPECT_GE(*finished[0].next_run_at, finished_at + 900ms);
  EXPECT_LE(*finished[0].next_run_at, finished_at + 1100ms);

  Task after = task_now(task.id);
  EXPECT_EQ(after.consecutive_failures, 1);
  EXPECT_EQ(after.next_run_at, finished[0].next_run_at);
  EXPECT_EQ(after.last.status, "failed");
  EXPECT_EQ(after.last.error, "HTTP 500 Internal Server Error");
  EXPECT_FALSE(after.last.data_id.has_value());
  EXPECT_EQ(pool->counts().failed, 1u);
  EXPECT_NE(metrics.render().find("fetchd_runs_total{status=\"failed\"} 1\n"), std::string::npos);
}

TEST_F(WorkerPoolTest, FailuresUpToMaxAttemptSuspendTheTask) {
  Task task = add_task("flaky", 0, /*max_attempt=*/2);
  fetcher.reply("http://feeds.test/flaky", ok_response(503, ""));
  enqueue(task, 1);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  auto first = listener.finished()[0];
  EXPECT_EQ(first.failures, 1);
  ASSERT_TRUE(first.next_run_at.has_value());

  clock.advance(2s);
  enqueue(task, 2, *first.next_run_at);
  ASSERT_TRUE(listener.wait_for(2));
  auto second = listener.finished()[1];
  EXPECT_EQ(second.failures, 2);
  EXPECT_FALSE(second.next_run_at.has_value());  // suspended

  auto jobs = jobs_of(task.id);  // newest first
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].attempt, 2);
  EXPECT_EQ(jobs[1].attempt, 1);
  Task after = task_now(task.id);
  EXPECT_EQ(after.consecutive_failures, 2);
  EXPECT_TRUE(after.suspended());
  EXPECT_FALSE(after.next_run_at.has_value());
}

TEST_F(WorkerPoolTest, NonJsonBodyFailsWithTheOffset) {
  Task task = add_task("html");
  fetcher.reply("http://feeds.test/html", ok_response(200, "<html>hi</html>"));
  enqueue(task);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  Job job = only_job(task.id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.http_status, 200);
  EXPECT_EQ(job.response_bytes, 15);
  ASSERT_TRUE(job.error.has_value());
  EXPECT_EQ(job.error->rfind("invalid JSON at byte 1: syntax error while parsing value", 0), 0u)
      << *job.error;
  EXPECT_FALSE(job.data_id.has_value());
}

TEST_F(WorkerPoolTest, TimeoutIsTimedOutWithTheTasksLimit) {
  Task task = add_task("slow", /*max_execution_time=*/2);
  fetcher.reply("http://feeds.test/slow",
                fetch_error(FetchErrorKind::kTimeout, "Operation timed out after 2000 ms"), 2s);
  enqueue(task);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));

  Job job = only_job(task.id);
  EXPECT_EQ(job.status, JobStatus::kTimedOut);
  EXPECT_EQ(job.error, "timed out after 2000 ms");
  EXPECT_EQ(job.duration_ms, 2000);
  EXPECT_FALSE(job.http_status.has_value());
  EXPECT_EQ(listener.finished()[0].failures, 1);
  EXPECT_EQ(pool->counts().timed_out, 1u);

  auto requests = fetcher.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].timeout, 2000ms);
}

TEST_F(WorkerPoolTest, RequestsCarryTheDefaultTimeoutAndSizeLimit) {
  Task task = add_task("plain", /*max_execution_time=*/0);
  enqueue(task);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  auto requests = fetcher.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].timeout, 5s);  // options().default_timeout
  EXPECT_EQ(requests[0].max_response_bytes, 1024u * 1024u);
}

TEST_F(WorkerPoolTest, OversizeResponseFails) {
  Task task = add_task("huge");
  fetcher.reply("http://feeds.test/huge", fetch_error(FetchErrorKind::kTooLarge, "too large"));
  enqueue(task);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  Job job = only_job(task.id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error, "response larger than 1048576 bytes");
}

TEST_F(WorkerPoolTest, ConnectionErrorsKeepTheEnginesMessage) {
  Task task = add_task("down");
  const std::string message = "Failed to connect to 127.0.0.1 port 9: Connection refused";
  fetcher.reply("http://feeds.test/down", fetch_error(FetchErrorKind::kConnect, message));
  enqueue(task);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  EXPECT_EQ(only_job(task.id).error, message);
}

TEST_F(WorkerPoolTest, ARequestThatCannotBeBuiltFailsTheRun) {
  Task task = add_task("templated", 0, 3, "http://feeds.test/{missing}");
  const std::string expected =
      build_fetch_request(task.spec.url, task.spec.parameters, 5s, 1024).error().message;
  enqueue(task);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  Job job = only_job(task.id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error, expected);
  EXPECT_TRUE(fetcher.requests().empty());
}

TEST_F(WorkerPoolTest, RunOfADeletedTaskIsDropped) {
  Task task = add_task("gone");
  enqueue(task);
  ASSERT_TRUE(store->delete_task(task.id));
  make_pool().start();
  ASSERT_TRUE(eventually([&] { return pool->counts().dropped == 1; }));
  EXPECT_TRUE(eventually([&] { return broker.leased() == 0; }));
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(pool->in_flight(), 0u);
  EXPECT_TRUE(fetcher.requests().empty());
  EXPECT_TRUE(listener.finished().empty());
  EXPECT_TRUE(sink->lines_with("run finished").empty());
}

TEST_F(WorkerPoolTest, IdenticalPayloadIsStoredOnce) {
  Task task = add_task("same");
  fetcher.reply("http://feeds.test/same", ok_response(200, fixture("small.json")));
  const TimePoint due = clock.now();
  enqueue(task, 1, due);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  enqueue(task, 1, due + 60s);  // the broker holds one run of a task at a time
  ASSERT_TRUE(listener.wait_for(2));

  auto jobs = jobs_of(task.id);  // newest first
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1].changed, true);
  EXPECT_EQ(jobs[0].changed, false);
  ASSERT_TRUE(jobs[0].data_id.has_value());
  EXPECT_EQ(jobs[0].data_id, jobs[1].data_id);
  EXPECT_EQ(jobs[0].records, 4);
}

TEST_F(WorkerPoolTest, ConcurrencyCapIsRespected) {
  constexpr std::size_t kCap = 3;
  constexpr std::size_t kRuns = 10;
  for (std::size_t i = 0; i < kRuns; ++i) enqueue(add_task("t" + std::to_string(i)));
  fetcher.hold(true);
  make_pool(options(kCap)).start();

  ASSERT_TRUE(fetcher.wait_held(kCap));
  std::this_thread::sleep_for(100ms);  // time to overshoot, if it would
  EXPECT_EQ(fetcher.held(), kCap);
  EXPECT_EQ(pool->in_flight(), kCap);
  EXPECT_EQ(broker.depth(), kRuns - kCap);

  for (std::size_t released = 0; released < kRuns; ++released) {
    ASSERT_TRUE(fetcher.wait_held(1)) << released;
    fetcher.release(1);
  }
  ASSERT_TRUE(listener.wait_for(kRuns));

  EXPECT_EQ(fetcher.max_outstanding(), kCap);
  EXPECT_EQ(pool->counts().succeeded, kRuns);
  EXPECT_EQ(broker.depth(), 0u);
}

// A fetch slot freed alone does not wake a claim: the claim thread waits for room for an
// eighth of the slots (one claim and one read of tasks per batch in a burst, not per run).
TEST_F(WorkerPoolTest, ClaimsWaitForRoomForAnEighthOfTheFetchSlots) {
  constexpr std::size_t kCap = 16;  // an eighth: 2
  constexpr std::size_t kRuns = 24;
  add_due_tasks(kRuns, "[]");
  fetcher.hold(true);
  make_pool(options(kCap)).start();
  ASSERT_TRUE(fetcher.wait_held(kCap));

  fetcher.release(1);
  ASSERT_TRUE(listener.wait_for(1));
  std::this_thread::sleep_for(100ms);  // time to claim, if it would
  EXPECT_EQ(fetcher.requests().size(), kCap);
  EXPECT_EQ(broker.depth(), kRuns - kCap);

  fetcher.release(1);
  ASSERT_TRUE(eventually([&] { return fetcher.requests().size() == kCap + 2; }));
  EXPECT_EQ(broker.depth(), kRuns - kCap - 2);
  fetcher.hold(false);
  fetcher.release();
  ASSERT_TRUE(listener.wait_for(kRuns));
}

// A store whose record_runs waits until opened: a writer stalled on a checkpoint or a commit.
class StalledWrites final : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>& runs) override {
    gate.wait();
    return ForwardingStore::record_runs(runs);
  }
  test::Gate gate;
};

// A RunWriter over StalledWrites. It opens the store before it stops, so that a failed ASSERT
// does not leave the writer waiting; declare the pool after it.
struct StalledRecording {
  StalledRecording(Store& inner, std::shared_ptr<spdlog::logger> log)
      : store(inner), writer(store, std::move(log)) {}
  ~StalledRecording() {
    store.gate.open();
    writer.stop();
  }
  StalledWrites store;
  RunWriter writer;
};

// While the store stalls, fetches go on (a run awaiting its record holds no fetch slot) up to
// max_unrecorded runs claimed and not recorded; then claiming waits for the store.
TEST_F(WorkerPoolTest, RunsAwaitingTheirRecordLeaveTheirFetchSlotUpToABound) {
  constexpr std::size_t kRuns = 12;
  const std::string body = fixture("small.json");
  add_due_tasks(kRuns, body);
  StalledRecording stalled(*store, log);
  auto o = options(2);
  o.max_unrecorded = 5;
  WorkerPool workers(stalled.store, broker, fetcher, stalled.writer, listener, clock, metrics, log,
                     o);
  workers.start();
  ASSERT_TRUE(eventually([&] { return fetcher.requests().size() >= 5; }));
  std::this_thread::sleep_for(100ms);  // time to overshoot, if it would
  EXPECT_EQ(fetcher.requests().size(), 5u);
  EXPECT_EQ(workers.in_flight(), 5u);
  EXPECT_LE(fetcher.max_outstanding(), 2u);
  EXPECT_EQ(broker.depth(), kRuns - 5);
  stalled.store.gate.open();
  ASSERT_TRUE(listener.wait_for(kRuns, 5s));
  workers.stop(0ms);
  EXPECT_EQ(workers.counts().succeeded, kRuns);
}

// A bound on unrecorded runs below an eighth of the fetch slots still lets runs be claimed.
TEST_F(WorkerPoolTest, ASmallBoundOnUnrecordedRunsStillClaims) {
  constexpr std::size_t kRuns = 6;
  add_due_tasks(kRuns, "[]");
  auto o = options(64);  // an eighth: 8
  o.max_unrecorded = 3;
  make_pool(o).start();
  ASSERT_TRUE(listener.wait_for(kRuns, 5s));
  EXPECT_EQ(pool->counts().succeeded, kRuns);
}

// The same bound in bytes: past max_unrecorded_bytes of bodies awaiting their record, no run
// is claimed until the store catches up.
TEST_F(WorkerPoolTest, BodiesAwaitingTheirRecordAreBoundedInBytes) {
  constexpr std::size_t kRuns = 6;
  const std::string body = fixture("small.json");
  add_due_tasks(kRuns, body);
  StalledRecording stalled(*store, log);
  auto o = options(1);
  o.max_unrecorded_bytes = body.size() * 5 / 2;  // the third body goes past it
  WorkerPool workers(stalled.store, broker, fetcher, stalled.writer, listener, clock, metrics, log,
                     o);
  workers.start();
  ASSERT_TRUE(eventually([&] { return fetcher.requests().size() >= 3; }));
  std::this_thread::sleep_for(100ms);  // time to overshoot, if it would
  EXPECT_EQ(fetcher.requests().size(), 3u);
  EXPECT_EQ(broker.depth(), kRuns - 3);
  stalled.store.gate.open();
  ASSERT_TRUE(listener.wait_for(kRuns, 5s));
  workers.stop(0ms);
  EXPECT_EQ(workers.counts().succeeded, kRuns);
}

TEST_F(WorkerPoolTest, StopReleasesUnfinishedClaimsToTheBroker) {
  std::vector<TaskId> ids;
  for (int i = 0; i < 3; ++i) {
    Task task = add_task("held" + std::to_string(i));
    ids.push_back(task.id);
    enqueue(task);
  }
  fetcher.hold(true);
  make_pool().start();
  ASSERT_TRUE(fetcher.wait_held(3));
  EXPECT_EQ(broker.leased(), 3u);

  const auto started = SteadyClock::now();
  pool->stop(100ms);
  const auto took = SteadyClock::now() - started;
  EXPECT_GE(took, 100ms);  // it did wait for the grace
  EXPECT_LT(took, 5s);
  EXPECT_EQ(pool->in_flight(), 0u);
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(broker.depth(), 3u);

  // The fetches end late (the engine stops): nothing is recorded for them.
  fetcher.stop(0ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(listener.finished().empty());
  for (TaskId id : ids) EXPECT_TRUE(jobs_of(id).empty());
  EXPECT_EQ(broker.depth(), 3u);

  // Put back in claim order, first in line.
  auto claims = broker.claim(10, 0ms, 30s);
  ASSERT_TRUE(claims);
  ASSERT_EQ(claims->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*claims)[i].run.task_id, ids[i]);
    EXPECT_EQ((*claims)[i].deliveries, 1);  // released unrun: not a delivery
  }
  pool->stop(0ms);  // idempotent
}

TEST_F(WorkerPoolTest, StopWaitsForRunsThatFinishWithinTheGrace) {
  Task task = add_task("finishing");
  enqueue(task);
  fetcher.hold(true);
  make_pool().start();
  ASSERT_TRUE(fetcher.wait_held(1));
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    fetcher.release();
  });
  pool->stop(10s);
  releaser.join();
  EXPECT_TRUE(listener.wait_for(1, 0ms));
  EXPECT_EQ(only_job(task.id).status, JobStatus::kSucceeded);
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(pool->in_flight(), 0u);
}

TEST_F(WorkerPoolTest, ShutdownOfTheFetchEngineGivesTheRunBack) {
  Task task = add_task("interrupted");
  enqueue(task);
  fetcher.hold(true);
  make_pool().start();
  ASSERT_TRUE(fetcher.wait_held(1));
  fetcher.stop(0ms);  // kShutdown for the held fetch
  ASSERT_TRUE(eventually([&] { return pool->in_flight() == 0; }));
  EXPECT_TRUE(eventually([&] { return broker.depth() == 1; }));
  // Not claimed again: with the engine gone that would only spin.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(broker.depth(), 1u);
  EXPECT_EQ(pool->in_flight(), 0u);
  EXPECT_LE(fetcher.requests().size(), 2u);  // at most one claim raced with the stop
  EXPECT_TRUE(jobs_of(task.id).empty());
  EXPECT_TRUE(listener.finished().empty());
  EXPECT_EQ(sink->lines_with("the fetch engine stopped").size(), 1u);
}

TEST_F(WorkerPoolTest, ParsingHappensOffTheFetchersThread) {
  // A feed big enough that parsing and hashing it takes a while.
  std::string body = "[";
  for (int i = 0; i < 20'000; ++i) {
    if (i > 0) body += ',';
    body += R"({"id":")" + std::to_string(i) + R"(","name_first":"Mia","name_last":"Patel",)" +
            R"("decription":"Party single-origin vinyl meditation party kale letterpress"})";
  }
  body += "]";
  const auto parse_started = FakeFetcher::thread_cpu_time();
  ASSERT_EQ(check_json(body).records, 20'000);
  (void)sha256_hex(body);
  const auto parse_time = FakeFetcher::thread_cpu_time() - parse_started;

  Task task = add_task("big");
  fetcher.reply("http://feeds.test/big", ok_response(200, body));
  enqueue(task);
  auto o = options();
  o.max_response_bytes = 64 * 1024 * 1024;
  make_pool(o).start();
  ASSERT_TRUE(listener.wait_for(1));
  EXPECT_EQ(only_job(task.id).records, 20'000);
  // The fetcher's callback only handed the result over: a small part of the CPU time that
  // checking and hashing the 2 MB body takes.
  EXPECT_LT(fetcher.longest_callback(), parse_time / 4)
      << std::chrono::duration_cast<std::chrono::microseconds>(fetcher.longest_callback()).count()
      << " us vs parse "
      << std::chrono::duration_cast<std::chrono::microseconds>(parse_time).count() << " us";
}

TEST_F(WorkerPoolTest, OneLogLinePerFinishedRun) {
  Task good = add_task("good");
  Task bad = add_task("bad");
  Task slow = add_task("slow", 3);
  fetcher.reply("http://feeds.test/good", ok_response(200, fixture("small.json")));
  fetcher.reply("http://feeds.test/bad", ok_response(500, "x"));
  fetcher.reply("http://feeds.test/slow", fetch_error(FetchErrorKind::kTimeout, "t"));
  enqueue(good);
  enqueue(bad);
  enqueue(slow);
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(3));
  ASSERT_TRUE(eventually([&] { return pool->in_flight() == 0; }));

  auto lines = sink->lines_with("run finished");
  ASSERT_EQ(lines.size(), 3u);
  auto line_of = [&](TaskId id) {
    std::string needle = "task=" + std::to_string(id) + " ";
    for (const auto& line : lines) {
      if (line.find(needle) != std::string::npos) return line;
    }
    return std::string();
  };
  const Job good_job = only_job(good.id);
  EXPECT_EQ(line_of(good.id), "run finished task=" + std::to_string(good.id) +
                                  " job=" + std::to_string(good_job.id) +
                                  " attempt=1 status=succeeded http=200 duration_ms=0 " +
                                  "bytes=" + std::to_string(*good_job.response_bytes) + " error=-");
  const Job bad_job = only_job(bad.id);
  EXPECT_EQ(line_of(bad.id), "run finished task=" + std::to_string(bad.id) +
                                 " job=" + std::to_string(bad_job.id) +
                                 " attempt=1 status=failed http=500 duration_ms=0 bytes=1 " +
                                 "error=\"HTTP 500 Internal Server Error\"");
  EXPECT_NE(line_of(slow.id).find("status=timed_out http=- "), std::string::npos);
  EXPECT_NE(line_of(slow.id).find("error=\"timed out after 3000 ms\""), std::string::npos);
}

TEST_F(WorkerPoolTest, HeartbeatKeepsLongRunsLeased) {
  Task task = add_task("long");
  enqueue(task);
  fetcher.hold(true);
  auto o = options();
  o.lease = 90ms;  // heartbeat every 30 ms of real time
  make_pool(o).start();
  ASSERT_TRUE(fetcher.wait_held(1));
  // Fake time moves well past the first lease, in steps shorter than one lease.
  for (int i = 0; i < 5; ++i) {
    clock.advance(60ms);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 0u);
  EXPECT_EQ(broker.leased(), 1u);
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(fetcher.requests().size(), 1u);  // never claimed twice
  fetcher.release();
  ASSERT_TRUE(listener.wait_for(1));
  EXPECT_EQ(only_job(task.id).status, JobStatus::kSucceeded);
}

// Counts the lease extensions that reach a LocalBroker, one by one and in batches.
class ExtensionCountingBroker final : public test::ForwardingBroker {
 public:
  using ForwardingBroker::ForwardingBroker;
  Result<void> extend(const Claim& claim, Millis lease) override {
    ++singles;
    return ForwardingBroker::extend(claim, lease);
  }
  std::vector<Result<void>> extend_all(const std::vector<Claim>& claims, Millis lease) override {
    std::lock_guard lock(mutex);
    batches.push_back(claims.size());
    return ForwardingBroker::extend_all(claims, lease);
  }
  std::vector<std::size_t> batches_so_far() {
    std::lock_guard lock(mutex);
    return batches;
  }

  std::atomic<int> singles{0};
  std::mutex mutex;
  std::vector<std::size_t> batches;
};

TEST_F(WorkerPoolTest, HeartbeatExtendsLeasesHalfAPeriodOldInOneCall) {
  for (const char* name : {"a", "b", "c"}) enqueue(add_task(name));
  fetcher.hold(true);
  auto o = options();
  o.lease = 90ms;  // heartbeat every 30 ms of real time; a lease is due after 15 ms
  ExtensionCountingBroker counting(broker);
  WorkerPool workers(*store, counting, fetcher, *writer, listener, clock, metrics, log, o);
  workers.start();
  ASSERT_TRUE(fetcher.wait_held(3));
  std::this_thread::sleep_for(150ms);  // five heartbeats; no lease is older than 0 ms
  EXPECT_TRUE(counting.batches_so_far().empty());
  clock.advance(20ms);
  ASSERT_TRUE(eventually([&] { return !counting.batches_so_far().empty(); }, 5s));
  EXPECT_EQ(counting.batches_so_far(), std::vector<std::size_t>{3});
  std::this_thread::sleep_for(150ms);  // just extended: not again until time moves on
  EXPECT_EQ(counting.batches_so_far(), std::vector<std::size_t>{3});
  EXPECT_EQ(counting.singles.load(), 0);
  fetcher.release();
  ASSERT_TRUE(listener.wait_for(3));
  workers.stop(0ms);
}

TEST_F(WorkerPoolTest, WithoutHeartbeatsALeaseExpires) {
  // The other side of the heartbeat test: a claim nobody extends is reclaimed.
  Task task = add_task("orphan");
  enqueue(task);
  auto claims = broker.claim(1, 0ms, 90ms);
  ASSERT_TRUE(claims && claims->size() == 1);
  clock.advance(300ms);
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 1u);
}

TEST_F(WorkerPoolTest, DrainRunsEverythingAndReports) {
  Task a = add_task("a");
  Task b = add_task("b");
  Task c = add_task("c");
  Task d = add_task("d");
  fetcher.reply("http://feeds.test/c", ok_response(404, "{}"));
  fetcher.reply("http://feeds.test/d", fetch_error(FetchErrorKind::kTimeout, "t"));
  for (const Task& t : {a, b, c, d}) enqueue(t);
  make_pool();

  DrainReport report = pool->drain(10s);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.counts, (RunCounts{2, 1, 1, 0, 0}));
  EXPECT_EQ(pool->in_flight(), 0u);
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(listener.finished().size(), 4u);
  for (const Task& t : {a, b, c, d}) EXPECT_EQ(jobs_of(t.id).size(), 1u);

  // A second pass counts only its own runs.
  enqueue(a, 1, clock.now() + 60s);
  report = pool->drain(10s);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.counts, (RunCounts{1, 0, 0, 0, 0}));
}

TEST_F(WorkerPoolTest, DrainStopsAtItsTimeout) {
  Task task = add_task("stuck");
  enqueue(task);
  fetcher.hold(true);
  make_pool();
  const auto started = SteadyClock::now();
  DrainReport report = pool->drain(150ms);
  EXPECT_GE(SteadyClock::now() - started, 150ms);
  EXPECT_FALSE(report.complete);
  EXPECT_EQ(report.counts.finished(), 0u);
  EXPECT_EQ(pool->in_flight(), 1u);
  pool->stop(0ms);
  EXPECT_EQ(broker.depth(), 1u);  // given back
}

TEST_F(WorkerPoolTest, DrainOfAnEmptyBrokerReturnsAtOnce) {
  make_pool();
  const auto started = SteadyClock::now();
  DrainReport report = pool->drain(10s);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.counts.finished(), 0u);
  EXPECT_LT(SteadyClock::now() - started, 2s);
}

TEST_F(WorkerPoolTest, LifecycleMisuseIsABug) {
  make_pool().start();
  pool->start();  // twice: harmless
  EXPECT_THROW(pool->drain(1s), std::logic_error);
  pool->stop(0ms);
  EXPECT_THROW(pool->start(), std::logic_error);
  EXPECT_THROW(pool->drain(1s), std::logic_error);
}

TEST_F(WorkerPoolTest, LagAndDurationReachTheMetrics) {
  Task task = add_task("late");
  const TimePoint due = clock.now();
  enqueue(task, 1, due);
  clock.advance(1500ms);  // the run starts 1.5 s after its due time
  make_pool().start();
  ASSERT_TRUE(listener.wait_for(1));
  Job job = only_job(task.id);
  EXPECT_EQ(job.started_at, due + 1500ms);
  const std::string rendered = metrics.render();
  EXPECT_NE(rendered.find("fetchd_schedule_lag_seconds_count 1\n"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("fetchd_schedule_lag_seconds_sum 1.5"), std::string::npos) << rendered;
}

// Counts the claims that reach a LocalBroker.
class CountingBroker final : public test::ForwardingBroker {
 public:
  using ForwardingBroker::ForwardingBroker;
  Result<std::vector<Claim>> claim(std::size_t max, Millis wait, Millis lease) override {
    ++claims;
    return ForwardingBroker::claim(max, wait, lease);
  }

  std::atomic<int> claims{0};
};

// Counts the completions that reach a LocalBroker, one by one and in batches.
class CompletionCountingBroker final : public test::ForwardingBroker {
 public:
  using ForwardingBroker::ForwardingBroker;
  Result<void> complete(const Claim& claim) override {
    ++singles;
    return ForwardingBroker::complete(claim);
  }
  std::vector<Result<void>> complete_all(const std::vector<Claim>& claims) override {
    std::lock_guard lock(mutex);
    batches.push_back(claims.size());
    return ForwardingBroker::complete_all(claims);
  }

  std::atomic<int> singles{0};
  std::mutex mutex;
  std::vector<std::size_t> batches;
};

TEST_F(WorkerPoolTest, AWrittenBatchIsCompletedAndAnnouncedTogether) {
  std::vector<Task> tasks;
  for (int i = 0; i < 6; ++i) tasks.push_back(add_task("batch" + std::to_string(i)));
  for (const Task& t : tasks) enqueue(t);
  // A writer that waits long enough for all six outcomes to share one transaction.
  RunWriter batching(*store, log, {.max_batch = 512, .max_delay = 1s});
  CompletionCountingBroker counting(broker);
  WorkerPool workers(*store, counting, fetcher, batching, listener, clock, metrics, log, options());
  workers.start();
  ASSERT_TRUE(listener.wait_for(6));
  workers.stop(0ms);
  batching.stop();
  EXPECT_EQ(counting.singles.load(), 0);
  {
    std::lock_guard lock(counting.mutex);
    EXPECT_EQ(counting.batches, std::vector<std::size_t>{6});
  }
  EXPECT_EQ(listener.batches(), std::vector<std::size_t>{6});
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(workers.counts().succeeded, 6u);
  EXPECT_EQ(workers.in_flight(), 0u);
  for (const Task& t : tasks) EXPECT_EQ(jobs_of(t.id).size(), 1u);
}

// Holds the first complete_all at a gate.
class StalledCompletionBroker final : public test::ForwardingBroker {
 public:
  using ForwardingBroker::ForwardingBroker;
  std::vector<Result<void>> complete_all(const std::vector<Claim>& claims) override {
    if (calls.fetch_add(1) == 0) gate.wait();
    return ForwardingBroker::complete_all(claims);
  }

  std::atomic<int> calls{0};
  test::Gate gate;
};

TEST_F(WorkerPoolTest, TheWriterRecordsTheNextBatchWhileOneIsBeingCompleted) {
  const Task first = add_task("first");
  const Task second = add_task("second");
  enqueue(first);
  // A batch of one run each: the second run's is written while the first's claim waits at
  // the broker.
  RunWriter single(*store, log, {.max_batch = 1, .max_delay = 0ms});
  StalledCompletionBroker stalled(broker);
  fetcher.hold(true);
  WorkerPool workers(*store, stalled, fetcher, single, listener, clock, metrics, log, options());
  workers.start();
  ASSERT_TRUE(fetcher.wait_held(1));
  fetcher.release();
  ASSERT_TRUE(eventually([&] { return stalled.calls.load() == 1; }, 5s));
  enqueue(second);
  ASSERT_TRUE(fetcher.wait_held(1));
  fetcher.release();
  EXPECT_TRUE(eventually([&] { return jobs_of(second.id).size() == 1; }, 5s));
  EXPECT_TRUE(listener.finished().empty());  // neither is finished before its claim completes
  stalled.gate.open();
  ASSERT_TRUE(listener.wait_for(2));
  workers.stop(0ms);
  single.stop();
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(workers.counts().succeeded, 2u);
}

// Flags every claim as exhausted, as the Redis broker does past broker_max_deliveries.
class ExhaustingBroker final : public test::ForwardingBroker {
 public:
  using ForwardingBroker::ForwardingBroker;
  Result<std::vector<Claim>> claim(std::size_t max, Millis wait, Millis lease) override {
    auto claims = ForwardingBroker::claim(max, wait, lease);
    if (claims) {
      for (Claim& c : *claims) {
        c.exhausted = true;
        c.deliveries = 6;
      }
    }
    return claims;
  }
};

TEST_F(WorkerPoolTest, AnExhaustedRunIsRecordedAsFailedWithoutFetching) {
  Task task = add_task("doomed");
  fetcher.reply("http://feeds.test/doomed", ok_response(200, fixture("small.json")));
  ExhaustingBroker exhausting(broker);
  WorkerPool workers(*store, exhausting, fetcher, *writer, listener, clock, metrics, log,
                     options());
  enqueue(task);
  workers.start();
  ASSERT_TRUE(listener.wait_for(1));
  workers.stop(0ms);
  EXPECT_TRUE(fetcher.requests().empty());
  auto jobs = jobs_of(task.id);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].status, JobStatus::kFailed);
  EXPECT_EQ(jobs[0].error,
            "abandoned after 5 deliveries: each worker that took this run stopped "
            "before finishing it");
  EXPECT_EQ(listener.finished()[0].failures, 1);
  EXPECT_EQ(broker.leased(), 0u);  // completed
}

// The store answers kUnavailable to task reads until told otherwise.
class FlakyReads final : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> down{true};
  std::atomic<int> reads{0};
  Result<std::vector<Task>> get_tasks(const std::vector<TaskId>& ids) override {
    ++reads;
    if (down) return fail(ErrorCode::kUnavailable, "the database is unavailable", "test");
    return ForwardingStore::get_tasks(ids);
  }
};

TEST_F(WorkerPoolTest, RunsWaitOutAStoreOutageWithoutCountingDeliveries) {
  Task task = add_task("patient");
  fetcher.reply("http://feeds.test/patient", ok_response(200, fixture("small.json")));
  FlakyReads flaky(*store);
  log->set_level(spdlog::level::info);  // the repeats are at debug level
  WorkerPool workers(flaky, broker, fetcher, *writer, listener, clock, metrics, log, options());
  enqueue(task);
  workers.start();
  std::this_thread::sleep_for(500ms);
  // Backing off: a few reads in half a second, not one every claim_wait (20 ms).
  EXPECT_GE(flaky.reads.load(), 2);
  EXPECT_LE(flaky.reads.load(), 8);
  EXPECT_TRUE(fetcher.requests().empty());
  EXPECT_EQ(sink->lines_with("cannot read the tasks of 1 runs").size(), 1u);  // once, at warn
  flaky.down = false;
  ASSERT_TRUE(listener.wait_for(1, 5s));
  workers.stop(0ms);
  auto jobs = jobs_of(task.id);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].status, JobStatus::kSucceeded);
  EXPECT_EQ(workers.counts().dropped, 0u);
}

TEST_F(WorkerPoolTest, AClosedBrokerIsNotPolledInATightLoop) {
  CountingBroker counting(broker);
  WorkerPool workers(*store, counting, fetcher, *writer, listener, clock, metrics, log, options());
  broker.close();  // every claim now returns at once, empty
  workers.start();
  std::this_thread::sleep_for(300ms);
  workers.stop(0ms);
  // claim_wait is 20 ms: about 15 claims in 300 ms, not thousands.
  EXPECT_GE(counting.claims.load(), 2);
  EXPECT_LE(counting.claims.load(), 40);
}

TEST(WorkerId, DefaultsToHostAndPid) {
  const std::string id = default_worker_id();
  const std::string pid = ":" + std::to_string(getpid());
  ASSERT_GT(id.size(), pid.size());
  EXPECT_EQ(id.substr(id.size() - pid.size()), pid);
}

}  // namespace
}  // namespace fetchd
