// RedisBroker beyond the shared contract: giving up on runs delivered too often, riding out a
// Redis restart, URL handling, and leases held by another consumer. Also this executable's
// main(), which starts the redis-server every test here uses.

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "broker/redis/redis_broker.hpp"
#include "redis_server.hpp"

namespace fetchd {
namespace {

using namespace std::chrono_literals;
using test::redis_server;

class RedisBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!redis_server().running()) GTEST_SKIP() << "redis-server is not available";
    ASSERT_TRUE(redis_server().flush());
    sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
    sink_->set_pattern("%v");
    logger_ = std::make_shared<spdlog::logger>("redis-test", sink_);
  }

  std::unique_ptr<Broker> open(RedisBrokerOptions options = {}) {
    auto opened = open_redis_broker(redis_server().url(), std::move(options), logger_);
    EXPECT_TRUE(opened.has_value());
    return opened ? std::move(*opened) : nullptr;
  }

  std::string log_text() const {
    std::string all;
    for (const auto& line : sink_->last_formatted()) all += line + "\n";
    return all;
  }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

Run run_of(TaskId id) {
  return Run{id, from_unix_ms(1'700'000'000'000), 1, false};
}

TEST_F(RedisBrokerTest, HandsOutARunDeliveredMoreThanMaxDeliveriesAsExhausted) {
  RedisBrokerOptions options;
  options.max_deliveries = 2;
  auto broker = open(options);
  ASSERT_TRUE(broker);
  auto* redis = dynamic_cast<RedisBroker*>(broker.get());
  ASSERT_NE(redis, nullptr);
  ASSERT_TRUE(broker->enqueue(run_of(9)));
  auto first = broker->claim(1, 0ms, 100ms);
  ASSERT_TRUE(first && first->size() == 1u);
  EXPECT_FALSE((*first)[0].exhausted);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(broker->reclaim_expired(SystemClock().now()).value_or(99), 1u);
  auto second = broker->claim(1, 0ms, 100ms);
  ASSERT_TRUE(second && second->size() == 1u);
  EXPECT_EQ((*second)[0].deliveries, 2);  // at the limit: still a normal run
  EXPECT_FALSE((*second)[0].exhausted);
  EXPECT_EQ(redis->given_up(), 0u);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(broker->reclaim_expired(SystemClock().now()).value_or(99), 1u);
  // Over the limit: handed out once more, flagged, for the worker to record as failed.
  auto third = broker->claim(1, 0ms, 100ms);
  ASSERT_TRUE(third && third->size() == 1u);
  EXPECT_EQ((*third)[0].deliveries, 3);
  EXPECT_TRUE((*third)[0].exhausted);
  EXPECT_EQ(redis->given_up(), 1u);
  EXPECT_NE(log_text().find("run of task 9 at 2023-11-14T22:13:20.000Z delivered 3 times; "
                            "giving up"),
            std::string::npos)
      << log_text();
  ASSERT_TRUE(broker->complete((*third)[0]));
  EXPECT_EQ(broker->depth(), 0u);
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "0");
  // Completing it ends the task's hold: the task can be enqueued again.
  EXPECT_TRUE(broker->enqueue(run_of(9)));
}

TEST_F(RedisBrokerTest, ReleasedRunsDoNotCountTowardsMaxDeliveries) {
  // A worker that cannot read the store gives its runs back, again and again while the
  // outage lasts: that must not turn them into abandoned runs.
  RedisBrokerOptions options;
  options.max_deliveries = 1;
  auto broker = open(options);
  ASSERT_TRUE(broker);
  ASSERT_TRUE(broker->enqueue(run_of(3)));
  for (int i = 0; i < 5; ++i) {
    auto claims = broker->claim(1, 0ms, 30s);
    ASSERT_TRUE(claims && claims->size() == 1u);
    EXPECT_EQ((*claims)[0].deliveries, 1);
    EXPECT_FALSE((*claims)[0].exhausted);
    ASSERT_TRUE(broker->release((*claims)[0]));
  }
  EXPECT_EQ(dynamic_cast<RedisBroker&>(*broker).given_up(), 0u);
}

TEST_F(RedisBrokerTest, AFencedEnqueueFailsOnceTheLeaseIsAnothers) {
  auto broker = open();
  ASSERT_TRUE(broker);
  ASSERT_TRUE(redis_server().command({"SET", "fetchd:scheduler:leader", "7"}) == "OK");
  broker->set_fencing_token("7");
  EXPECT_TRUE(broker->enqueue(run_of(1)));
  ASSERT_TRUE(redis_server().command({"SET", "fetchd:scheduler:leader", "8"}) == "OK");
  auto refused = broker->enqueue(run_of(2));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find("leader lease"), std::string::npos);
  // Nothing was written for the refused run.
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "1");
  EXPECT_EQ(redis_server().command({"EXISTS", "fetchd:runs:held:2"}), "0");
  // Unfenced brokers (API processes) are not concerned.
  auto api = open();
  ASSERT_TRUE(api);
  EXPECT_TRUE(api->enqueue(run_of(2)));
}

TEST_F(RedisBrokerTest, EnqueueAllGoesInChunksAndAFencedOneWritesNothing) {
  auto broker = open();
  ASSERT_TRUE(broker);
  ASSERT_TRUE(redis_server().command({"SET", "fetchd:scheduler:leader", "7"}) == "OK");
  broker->set_fencing_token("7");
  // More runs than one script call takes, task 1 twice across the chunks' border.
  std::vector<fetchd::Run> runs;
  for (TaskId id = 1; id <= 1200; ++id) runs.push_back(run_of(id));
  runs[600] = run_of(1);
  const auto results = broker->enqueue_all(runs);
  ASSERT_EQ(results.size(), runs.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 600) {
      ASSERT_FALSE(results[i].has_value());
      EXPECT_EQ(results[i].error().code, ErrorCode::kConflict);
    } else {
      EXPECT_TRUE(results[i].has_value()) << i;
    }
  }
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "1199");

  ASSERT_TRUE(redis_server().command({"SET", "fetchd:scheduler:leader", "8"}) == "OK");
  const auto refused = broker->enqueue_all({run_of(2000), run_of(2001)});
  ASSERT_EQ(refused.size(), 2u);
  for (const auto& result : refused) {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  }
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "1199");
  EXPECT_EQ(redis_server().command({"EXISTS", "fetchd:runs:held:2000"}), "0");
}

TEST_F(RedisBrokerTest, ExtendAllAndCompleteAllGoInChunks) {
  auto broker = open();
  ASSERT_TRUE(broker);
  std::vector<fetchd::Run> runs;
  for (TaskId id = 1; id <= 1200; ++id) runs.push_back(run_of(id));
  for (const auto& result : broker->enqueue_all(runs)) ASSERT_TRUE(result.has_value());
  auto claims = broker->claim(1200, 0ms, 30s);
  ASSERT_TRUE(claims.has_value());
  ASSERT_EQ(claims->size(), 1200u);
  // More claims than one script call takes, one of them stale in the second chunk.
  ASSERT_TRUE(broker->complete((*claims)[600]));
  const auto extended = broker->extend_all(*claims, 30s);
  ASSERT_EQ(extended.size(), claims->size());
  for (std::size_t i = 0; i < extended.size(); ++i) {
    if (i == 600) {
      ASSERT_FALSE(extended[i].has_value());
      EXPECT_EQ(extended[i].error().code, ErrorCode::kNotFound);
    } else {
      EXPECT_TRUE(extended[i].has_value()) << i;
    }
  }
  const auto completed = broker->complete_all(*claims);
  ASSERT_EQ(completed.size(), claims->size());
  for (std::size_t i = 0; i < completed.size(); ++i) {
    EXPECT_EQ(completed[i].has_value(), i != 600) << i;
  }
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "0");
  std::vector<TaskId> ids;
  for (const auto& run : runs) ids.push_back(run.task_id);
  EXPECT_EQ(broker->holding(ids).value(), std::vector<TaskId>{});
}

TEST_F(RedisBrokerTest, AnUnreadableEntryOfADeadConsumerIsDroppedWhenReclaimed) {
  auto broker = open();
  ASSERT_TRUE(broker);
  ASSERT_TRUE(broker->enqueue(run_of(1)));
  // Something else wrote an entry that is not a run; a consumer took it and died.
  ASSERT_NE(redis_server().command({"XADD", "fetchd:runs", "*", "garbage", "1"}), "");
  ASSERT_EQ(redis_server().command({"XREADGROUP", "GROUP", "workers", "dead", "COUNT", "2",
                                    "STREAMS", "fetchd:runs", ">"}),
            "<2>");  // an array: both entries taken
  auto reclaimed = broker->reclaim_expired(SystemClock().now() + std::chrono::hours(1));
  ASSERT_TRUE(reclaimed.has_value());
  EXPECT_EQ(*reclaimed, 1u);  // the run, not the garbage
  EXPECT_NE(log_text().find("dropping unreadable stream entry"), std::string::npos);
  auto claims = broker->claim(5, 0ms, 30s);
  ASSERT_TRUE(claims.has_value());
  ASSERT_EQ(claims->size(), 1u);
  EXPECT_EQ((*claims)[0].run, run_of(1));
  ASSERT_TRUE(broker->complete((*claims)[0]));
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "0");
}

TEST_F(RedisBrokerTest, AnswersPing) {
  auto broker = open();
  ASSERT_TRUE(broker);
  EXPECT_TRUE(broker->ping());
  redis_server().stop();
  auto down = broker->ping();
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(redis_server().start());
}

TEST_F(RedisBrokerTest, RidesOutARedisRestart) {
  auto broker = open();
  ASSERT_TRUE(broker);
  ASSERT_TRUE(broker->enqueue(run_of(1)));
  redis_server().stop();
  auto down = broker->enqueue(run_of(2));
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  auto claim_down = broker->claim(1, 0ms, 30s);
  ASSERT_FALSE(claim_down.has_value());
  EXPECT_EQ(claim_down.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(broker->depth(), 0u);
  EXPECT_NE(log_text().find("connection to 127.0.0.1"), std::string::npos) << log_text();

  ASSERT_TRUE(redis_server().start());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  Result<void> up = fail(ErrorCode::kUnavailable, "not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    up = broker->enqueue(run_of(3));
    if (up) break;
    EXPECT_EQ(up.error().code, ErrorCode::kUnavailable);
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(up.has_value()) << up.error().internal;
  // The restarted server has no group: the broker creates it again and claims work.
  std::vector<Claim> claims;
  while (claims.empty() && std::chrono::steady_clock::now() < deadline + 3s) {
    auto got = broker->claim(1, 200ms, 30s);
    if (got) claims = *got;
  }
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].run.task_id, 3);
  EXPECT_TRUE(broker->complete(claims[0]));
  EXPECT_NE(log_text().find("restored"), std::string::npos) << log_text();
}

TEST_F(RedisBrokerTest, RejectsBadUrlsAndToleratesAnUnreachableServer) {
  for (const char* url : {"http://127.0.0.1:6379", "redis://", "redis://host:0",
                          "redis://host:70000", "redis://host:12/x"}) {
    auto opened = open_redis_broker(url, {}, logger_);
    ASSERT_FALSE(opened.has_value()) << url;
    EXPECT_EQ(opened.error().code, ErrorCode::kInvalid) << url;
  }
  RedisBrokerOptions zero;
  zero.max_deliveries = 0;
  EXPECT_FALSE(open_redis_broker(redis_server().url(), zero, logger_).has_value());

  auto unreachable = open_redis_broker("redis://127.0.0.1:1/0", {}, logger_);
  ASSERT_TRUE(unreachable.has_value());
  auto enqueued = (*unreachable)->enqueue(run_of(1));
  ASSERT_FALSE(enqueued.has_value());
  EXPECT_EQ(enqueued.error().code, ErrorCode::kUnavailable);
}

TEST_F(RedisBrokerTest, UsesTheDatabaseOfTheUrl) {
  auto opened = open_redis_broker(redis_server().url(3), {}, logger_);
  ASSERT_TRUE(opened.has_value());
  ASSERT_TRUE((*opened)->enqueue(run_of(1)));
  EXPECT_EQ(redis_server().command({"XLEN", "fetchd:runs"}), "0");  // db 0 is untouched
  EXPECT_EQ((*opened)->depth(), 1u);
}

TEST_F(RedisBrokerTest, ARunReclaimedByAnotherWorkerIsNoLongerTheFirstOnes) {
  RedisBrokerOptions a_options, b_options;
  a_options.consumer = "worker-a";
  b_options.consumer = "worker-b";
  b_options.lease = 100ms;  // b has handed out nothing yet: reclaim uses this lease
  auto a = open(a_options);
  auto b = open(b_options);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->enqueue(run_of(5)));
  auto held = a->claim(1, 0ms, 100ms);
  ASSERT_TRUE(held && held->size() == 1u);
  auto nothing = b->claim(1, 0ms, 100ms);
  ASSERT_TRUE(nothing && nothing->empty());
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(b->reclaim_expired(SystemClock().now()).value_or(99), 1u);
  auto extended = a->extend((*held)[0], 30s);  // worker a woke up too late
  ASSERT_FALSE(extended.has_value());
  EXPECT_EQ(extended.error().code, ErrorCode::kNotFound);
  auto taken = b->claim(1, 0ms, 30s);
  ASSERT_TRUE(taken && taken->size() == 1u);
  EXPECT_EQ((*taken)[0].run.task_id, 5);
  EXPECT_EQ((*taken)[0].deliveries, 2);
  EXPECT_TRUE(b->extend((*taken)[0], 30s));
  EXPECT_TRUE(b->complete((*taken)[0]));
  EXPECT_EQ(a->depth(), 0u);
}

}  // namespace
}  // namespace fetchd

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new fetchd::test::RedisEnvironment);
  return RUN_ALL_TESTS();
}
