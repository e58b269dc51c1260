// RedisCoordinator against a real redis-server: one leader at a time with fencing tokens that
// never repeat, takeover once the lease expires, resign, and events delivered to subscribers
// (with a resync after the connection comes back).

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "broker/redis/redis_coordinator.hpp"
#include "redis_server.hpp"

namespace fetchd {
namespace {

using namespace std::chrono_literals;
using test::redis_server;

class RedisCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!redis_server().running()) GTEST_SKIP() << "redis-server is not available";
    ASSERT_TRUE(redis_server().flush());
  }

  std::unique_ptr<Coordinator> open() {
    auto log =
        std::make_shared<spdlog::logger>("coord", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto opened = open_redis_coordinator(redis_server().url(), {}, log);
    EXPECT_TRUE(opened.has_value());
    return opened ? std::move(*opened) : nullptr;
  }
};

// Collects events; waits for them with a bound.
struct Inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<EngineEvent> events;
  int resyncs = 0;

  void add(const EngineEvent& e) {
    std::lock_guard lock(mutex);
    events.push_back(e);
    changed.notify_all();
  }
  void resync() {
    std::lock_guard lock(mutex);
    ++resyncs;
    changed.notify_all();
  }
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 5s, pred);
  }
};

TEST_F(RedisCoordinatorTest, OneLeaderAtATimeAndTakeoverAfterTheTtl) {
  auto a = open();
  auto b = open();
  auto lead_a = a->lead(300ms);
  ASSERT_TRUE(lead_a && *lead_a);
  auto lead_b = b->lead(300ms);
  ASSERT_TRUE(lead_b.has_value());
  EXPECT_FALSE(*lead_b);  // a holds it
  // a renews and keeps its token.
  std::this_thread::sleep_for(150ms);
  auto renewed = a->lead(300ms);
  ASSERT_TRUE(renewed && *renewed);
  EXPECT_EQ(**renewed, **lead_a);
  std::this_thread::sleep_for(150ms);
  EXPECT_FALSE(*b->lead(300ms));  // renewed: still a's
  // a stops renewing (dies): b takes over after the TTL, with another token.
  std::this_thread::sleep_for(400ms);
  auto taken = b->lead(300ms);
  ASSERT_TRUE(taken && *taken);
  EXPECT_NE(**taken, **lead_a);
  // a comes back: it is not the leader any more.
  auto back = a->lead(300ms);
  ASSERT_TRUE(back.has_value());
  EXPECT_FALSE(*back);
  EXPECT_EQ(redis_server().command({"GET", "fetchd:scheduler:leader"}), **taken);
}

TEST_F(RedisCoordinatorTest, ResignFreesTheLeaseAtOnce) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(*a->lead(30s));
  a->resign();
  auto taken = b->lead(30s);
  ASSERT_TRUE(taken && *taken);
  b->resign();
  b->resign();  // idempotent
  EXPECT_EQ(redis_server().command({"EXISTS", "fetchd:scheduler:leader"}), "0");
}

TEST_F(RedisCoordinatorTest, TokensStayUniqueWhenRedisLosesItsData) {
  auto a = open();
  auto first = a->lead(30s);
  ASSERT_TRUE(first && *first);
  ASSERT_TRUE(redis_server().flush());  // a restart without persistence
  auto b = open();
  auto second = b->lead(30s);
  ASSERT_TRUE(second && *second);
  EXPECT_NE(**first, **second);  // same epoch number, another instance
  EXPECT_FALSE(*a->lead(30s));
}

TEST_F(RedisCoordinatorTest, EventsReachEverySubscriberAndResyncFollowsAReconnect) {
  auto publisher = open();
  auto subscriber = open();
  Inbox inbox;
  subscriber->subscribe([&](const EngineEvent& e) { inbox.add(e); }, [&] { inbox.resync(); });
  ASSERT_TRUE(inbox.wait([&] { return inbox.resyncs == 1; }));  // subscribed
  const EngineEvent changed{EngineEvent::Kind::kTaskChanged, 7, std::nullopt, 0};
  const EngineEvent finished{EngineEvent::Kind::kRunFinished, 7, from_unix_ms(1'700'000'000'000),
                             2};
  ASSERT_TRUE(publisher->publish(changed));
  ASSERT_TRUE(publisher->publish(finished));
  ASSERT_TRUE(inbox.wait([&] { return inbox.events.size() == 2; }));
  EXPECT_EQ(inbox.events[0], changed);
  EXPECT_EQ(inbox.events[1], finished);
  // Garbage on the channel is ignored.
  redis_server().command({"PUBLISH", "fetchd:events", "nonsense"});

  redis_server().stop();
  EXPECT_FALSE(publisher->publish(changed).has_value());
  ASSERT_TRUE(redis_server().start());
  ASSERT_TRUE(inbox.wait([&] { return inbox.resyncs == 2; }));  // events may have been missed
  bool sent = false;
  for (int i = 0; i < 50 && !sent; ++i) {
    sent = publisher->publish(changed).has_value();
    if (!sent) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(sent);
  ASSERT_TRUE(inbox.wait([&] { return inbox.events.size() == 3; }));
  subscriber->stop();
}

TEST_F(RedisCoordinatorTest, ABatchOfEventsTravelsAsOneMessageAndArrivesInOrder) {
  auto publisher = open();
  auto subscriber = open();
  Inbox inbox;
  subscriber->subscribe([&](const EngineEvent& e) { inbox.add(e); }, [&] { inbox.resync(); });
  ASSERT_TRUE(inbox.wait([&] { return inbox.resyncs == 1; }));
  std::vector<EngineEvent> batch;
  for (TaskId id = 1; id <= 3; ++id) {
    batch.push_back({EngineEvent::Kind::kRunFinished, id, from_unix_ms(1'000 * id), id - 1});
  }
  batch.push_back({EngineEvent::Kind::kRunFinished, 4, std::nullopt, 0});
  ASSERT_TRUE(publisher->publish_all(batch));
  ASSERT_TRUE(publisher->publish_all({}));  // nothing to say: nothing sent
  ASSERT_TRUE(inbox.wait([&] { return inbox.events.size() == batch.size(); }));
  EXPECT_EQ(inbox.events, batch);
  // A damaged line costs only itself.
  redis_server().command({"PUBLISH", "fetchd:events", "f 9 - 0\nnonsense\nd 10 - 0"});
  ASSERT_TRUE(inbox.wait([&] { return inbox.events.size() == batch.size() + 2; }));
  EXPECT_EQ(inbox.events[4], (EngineEvent{EngineEvent::Kind::kRunFinished, 9, std::nullopt, 0}));
  EXPECT_EQ(inbox.events[5], (EngineEvent{EngineEvent::Kind::kTaskDeleted, 10, std::nullopt, 0}));
  subscriber->stop();
}

TEST(EngineEventText, RoundTripsAndRejectsGarbage) {
  for (const EngineEvent& e :
       {EngineEvent{EngineEvent::Kind::kTaskChanged, 1, std::nullopt, 0},
        EngineEvent{EngineEvent::Kind::kTaskDeleted, 9'000'000'000, std::nullopt, 0},
        EngineEvent{EngineEvent::Kind::kRunFinished, 3, std::nullopt, 4},
        EngineEvent{EngineEvent::Kind::kRunRequested, 3, from_unix_ms(12), 0}}) {
    EXPECT_EQ(decode_event(encode(e)), e) << encode(e);
  }
  EXPECT_EQ(encode({EngineEvent::Kind::kRunFinished, 3, from_unix_ms(5), 1}), "f 3 5 1");
  for (const char* bad : {"", "x 1 - 0", "c", "c 1", "c 1 -", "c 0 - 0", "c -4 - 0", "c 1 - 0 x",
                          "c 1 z 0", "r 1 - 0", "cc 1 - 0"}) {
    EXPECT_FALSE(decode_event(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace fetchd
