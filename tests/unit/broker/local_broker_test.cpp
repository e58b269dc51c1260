// LocalBroker: FIFO order, blocking claims, batches, leases (expiry, reclaim, extend),
// release to the front, close, and the delivery count.
#include "broker/local/local_broker.hpp"
#include "support/fake_clock.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace fetchd {
namespace {

using namespace std::chrono_literals;

using test::FakeClock;

Run run_of(TaskId id, std::int64_t attempt = 1) {
  return Run{id, from_unix_ms(1'000 * id), attempt, false};
}

class LocalBrokerTest : public ::testing::Test {
 protected:
  std::vector<Claim> claim(std::size_t max, Millis wait = 0ms, Millis lease = 30s) {
    auto claims = broker.claim(max, wait, lease);
    EXPECT_TRUE(claims.has_value());
    return claims ? *claims : std::vector<Claim>{};
  }

  FakeClock clock;
  LocalBroker broker{clock};
};

TEST_F(LocalBrokerTest, ClaimsInFifoOrder) {
  for (TaskId id = 1; id <= 5; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  EXPECT_EQ(broker.depth(), 5u);
  std::vector<TaskId> order;
  for (int i = 0; i < 5; ++i) {
    auto claims = claim(1);
    ASSERT_EQ(claims.size(), 1u);
    order.push_back(claims[0].run.task_id);
  }
  EXPECT_EQ(order, (std::vector<TaskId>{1, 2, 3, 4, 5}));
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(broker.leased(), 5u);
}

TEST_F(LocalBrokerTest, ClaimCarriesTheRunAndItsLease) {
  fetchd::Run run{7, from_unix_ms(123'456), 3, true};
  ASSERT_TRUE(broker.enqueue(run));
  auto claims = claim(1, 0ms, 5s);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].run, run);
  EXPECT_EQ(claims[0].lease_until, clock.now() + 5s);
  EXPECT_EQ(claims[0].deliveries, 1);
  EXPECT_FALSE(claims[0].receipt.empty());
}

TEST_F(LocalBrokerTest, ClaimTakesAtMostMax) {
  for (TaskId id = 1; id <= 5; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  auto first = claim(3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].run.task_id, 1);
  EXPECT_EQ(first[2].run.task_id, 3);
  EXPECT_EQ(broker.depth(), 2u);
  auto rest = claim(10);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].run.task_id, 4);
  EXPECT_EQ(rest[1].run.task_id, 5);
  EXPECT_TRUE(claim(0).empty());
}

TEST_F(LocalBrokerTest, ReceiptsAreDistinct) {
  for (TaskId id = 1; id <= 3; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  auto claims = claim(3);
  ASSERT_EQ(claims.size(), 3u);
  EXPECT_NE(claims[0].receipt, claims[1].receipt);
  EXPECT_NE(claims[1].receipt, claims[2].receipt);
}

TEST_F(LocalBrokerTest, ClaimTimesOutWhenEmpty) {
  auto start = std::chrono::steady_clock::now();
  auto claims = claim(1, 60ms);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(claims.empty());
  EXPECT_GE(waited, 55ms);
  EXPECT_LT(waited, 2s);
}

TEST_F(LocalBrokerTest, BlockingClaimWakesOnEnqueue) {
  auto start = std::chrono::steady_clock::now();
  auto waiter = std::async(std::launch::async, [&] { return claim(1, 10s); });
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(broker.enqueue(run_of(42)));
  auto claims = waiter.get();
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].run.task_id, 42);
  EXPECT_LT(waited, 5s);  // woken, not timed out
}

TEST_F(LocalBrokerTest, CloseWakesWaitersAndLaterClaimsReturnAtOnce) {
  auto waiter = std::async(std::launch::async, [&] { return claim(1, 10s); });
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  broker.close();
  EXPECT_TRUE(waiter.get().empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

  start = std::chrono::steady_clock::now();
  EXPECT_TRUE(claim(1, 10s).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  auto enqueued = broker.enqueue(run_of(1));
  ASSERT_FALSE(enqueued);
  EXPECT_EQ(enqueued.error().code, ErrorCode::kUnavailable);
}

TEST_F(LocalBrokerTest, CompleteForgetsTheRun) {
  ASSERT_TRUE(broker.enqueue(run_of(1)));
  auto claims = claim(1);
  ASSERT_EQ(claims.size(), 1u);
  ASSERT_TRUE(broker.complete(claims[0]));
  EXPECT_EQ(broker.leased(), 0u);
  EXPECT_EQ(broker.depth(), 0u);
  auto again = broker.complete(claims[0]);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  clock.advance(1h);
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 0u);
}

TEST_F(LocalBrokerTest, UnknownReceiptIsNotFound) {
  Claim bogus{run_of(1), "not-a-number", {}, 1};
  EXPECT_EQ(broker.complete(bogus).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(broker.release(bogus).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(broker.extend(bogus, 1s).error().code, ErrorCode::kNotFound);
  bogus.receipt = "999";
  EXPECT_EQ(broker.complete(bogus).error().code, ErrorCode::kNotFound);
}

TEST_F(LocalBrokerTest, ReleasePutsTheRunFirstInLine) {
  for (TaskId id = 1; id <= 3; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  auto first = claim(1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(broker.release(first[0]));
  EXPECT_EQ(broker.depth(), 3u);
  EXPECT_EQ(broker.leased(), 0u);
  auto again = claim(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].run.task_id, 1);
  EXPECT_EQ(again[0].deliveries, 1);  // given back unrun: not a delivery
  EXPECT_NE(again[0].receipt, first[0].receipt);
  // The old receipt no longer holds anything.
  EXPECT_FALSE(broker.complete(first[0]));
  EXPECT_TRUE(broker.complete(again[0]));
}

TEST_F(LocalBrokerTest, ReleaseWakesAWaiter) {
  ASSERT_TRUE(broker.enqueue(run_of(1)));
  auto held = claim(1);
  ASSERT_EQ(held.size(), 1u);
  auto waiter = std::async(std::launch::async, [&] { return claim(1, 10s); });
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(broker.release(held[0]));
  auto claims = waiter.get();
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].run.task_id, 1);
}

TEST_F(LocalBrokerTest, ExpiredLeasesAreReclaimedOnlyAfterTheirEnd) {
  ASSERT_TRUE(broker.enqueue(run_of(1)));
  auto claims = claim(1, 0ms, 10s);
  ASSERT_EQ(claims.size(), 1u);
  const TimePoint until = claims[0].lease_until;

  EXPECT_EQ(broker.reclaim_expired(until - 1ms).value(), 0u);
  EXPECT_EQ(broker.reclaim_expired(until).value(), 0u);  // expires *before* now only
  EXPECT_EQ(broker.depth(), 0u);
  EXPECT_EQ(broker.reclaim_expired(until + 1ms).value(), 1u);
  EXPECT_EQ(broker.depth(), 1u);
  EXPECT_EQ(broker.leased(), 0u);

  auto again = claim(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].run, claims[0].run);
  EXPECT_EQ(again[0].deliveries, 2);
  // The first worker's claim is gone: it cannot complete what another now holds.
  EXPECT_EQ(broker.complete(claims[0]).error().code, ErrorCode::kNotFound);
}

TEST_F(LocalBrokerTest, ReclaimedRunsGoFirstOldestClaimFirst) {
  for (TaskId id = 1; id <= 4; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  auto claims = claim(2, 0ms, 1s);  // tasks 1 and 2
  ASSERT_EQ(claims.size(), 2u);
  clock.advance(2s);
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 2u);
  std::vector<TaskId> order;
  for (const auto& c : claim(10)) order.push_back(c.run.task_id);
  EXPECT_EQ(order, (std::vector<TaskId>{1, 2, 3, 4}));
}

TEST_F(LocalBrokerTest, ExtendPushesTheLeaseForward) {
  ASSERT_TRUE(broker.enqueue(run_of(1)));
  auto claims = claim(1, 0ms, 10s);
  ASSERT_EQ(claims.size(), 1u);
  clock.advance(8s);
  ASSERT_TRUE(broker.extend(claims[0], 10s));  // now until start + 18 s
  clock.advance(5s);                           // start + 13 s: past the first lease
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 0u);
  clock.advance(5s + 1ms);  // start + 18 s + 1 ms
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 1u);
  EXPECT_EQ(broker.extend(claims[0], 10s).error().code, ErrorCode::kNotFound);
}

TEST_F(LocalBrokerTest, OnlyExpiredLeasesAreReclaimed) {
  for (TaskId id = 1; id <= 2; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  auto shortl = claim(1, 0ms, 1s);
  auto longl = claim(1, 0ms, 60s);
  clock.advance(2s);
  EXPECT_EQ(broker.reclaim_expired(clock.now()).value(), 1u);
  auto again = claim(5);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].run.task_id, 1);
  EXPECT_TRUE(broker.complete(longl[0]));
}

TEST_F(LocalBrokerTest, DeliveriesCountClaimsThatExpiredNotThoseReleased) {
  ASSERT_TRUE(broker.enqueue(run_of(1)));
  // Claim, expire, claim, release, claim, expire, claim, release: 1, 2, 2, 3.
  const std::int64_t expected[] = {1, 2, 2, 3};
  for (int i = 0; i < 4; ++i) {
    auto claims = claim(1, 0ms, 1s);
    ASSERT_EQ(claims.size(), 1u);
    EXPECT_EQ(claims[0].deliveries, expected[i]) << i;
    if (i % 2 == 1) {
      ASSERT_TRUE(broker.release(claims[0]));
    } else {
      clock.advance(2s);
      ASSERT_EQ(broker.reclaim_expired(clock.now()).value(), 1u);
    }
  }
  // A fresh enqueue of the same run is a new delivery history.
  auto claims = claim(1);
  ASSERT_TRUE(broker.complete(claims[0]));
  ASSERT_TRUE(broker.enqueue(run_of(1)));
  EXPECT_EQ(claim(1)[0].deliveries, 1);
}

TEST_F(LocalBrokerTest, ConcurrentClaimersGetEachRunOnce) {
  constexpr int kRuns = 2000;
  std::atomic<int> claimed{0};
  std::vector<std::atomic<int>> seen(kRuns + 1);
  auto consumer = [&] {
    while (claimed.load() < kRuns) {
      auto claims = broker.claim(7, 20ms, 30s);
      ASSERT_TRUE(claims);
      for (const auto& c : *claims) {
        seen[static_cast<std::size_t>(c.run.task_id)].fetch_add(1);
        ASSERT_TRUE(broker.complete(c));
        claimed.fetch_add(1);
      }
    }
  };
  std::thread a(consumer), b(consumer);
  for (TaskId id = 1; id <= kRuns; ++id) ASSERT_TRUE(broker.enqueue(run_of(id)));
  a.join();
  b.join();
  EXPECT_EQ(claimed.load(), kRuns);
  for (int id = 1; id <= kRuns; ++id) EXPECT_EQ(seen[static_cast<std::size_t>(id)].load(), 1) << id;
  EXPECT_EQ(broker.leased(), 0u);
}

}  // namespace
}  // namespace fetchd
