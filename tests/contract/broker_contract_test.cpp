// The Broker contract: one typed suite that knows only the Broker interface (broker/broker.hpp),
// run against every backend. Leases are short and real (a few hundred ms) because Redis measures
// them with its own clock; the local backend gets the system clock so both see the same time.
// Built twice: contract_broker_tests (local) and, with FETCHD_BROKER_CONTRACT_REDIS,
// contract_broker_redis_tests (a real redis-server, see redis_server.hpp).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "broker/broker.hpp"
#include "broker/local/local_broker.hpp"
#ifdef FETCHD_BROKER_CONTRACT_REDIS
#include "broker/redis/redis_broker.hpp"
#include "redis_server.hpp"
#endif

namespace fetchd {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Backends. Each one provides kName, skip_reason() (non-empty: cannot run here) and open(),
// which gives a fresh, empty broker for one test.

struct LocalBackend {
  static constexpr const char* kName = "local";
  std::string skip_reason() const { return {}; }
  Result<std::unique_ptr<Broker>> open() {
    return std::unique_ptr<Broker>(std::make_unique<LocalBroker>(clock));
  }
  SystemClock clock;
};

#ifdef FETCHD_BROKER_CONTRACT_REDIS
struct RedisBackend {
  static constexpr const char* kName = "redis";
  std::string skip_reason() const {
    if (test::RedisServer::binary().empty()) return "redis-server is not installed";
    if (!test::redis_server().running()) return "redis-server did not start";
    if (!test::redis_server().flush()) return "FLUSHALL failed";
    return {};
  }
  Result<std::unique_ptr<Broker>> open() {
    return open_redis_broker(test::redis_server().url(), RedisBrokerOptions{}, nullptr);
  }
};
using Backends = ::testing::Types<RedisBackend>;
#else
using Backends = ::testing::Types<LocalBackend>;
#endif

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

Run run_of(TaskId id, std::int64_t attempt = 1) {
  return Run{id, from_unix_ms(1'700'000'000'000 + 1'000 * id), attempt, false};
}

template <typename Backend>
class BrokerContract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = backend_.skip_reason(); !why.empty()) GTEST_SKIP() << why;
    auto opened = backend_.open();
    ASSERT_TRUE(opened.has_value()) << opened.error().message << " " << opened.error().internal;
    broker_ = std::move(*opened);
  }

  std::vector<Claim> claim(std::size_t max, Millis wait = 0ms, Millis lease = 30s) {
    auto claims = broker_->claim(max, wait, lease);
    EXPECT_TRUE(claims.has_value()) << claims.error().message;
    return claims ? *claims : std::vector<Claim>{};
  }

  void enqueue_ids(TaskId first, TaskId last) {
    for (TaskId id = first; id <= last; ++id) ASSERT_TRUE(broker_->enqueue(run_of(id)));
  }

  std::size_t reclaim() {
    auto n = broker_->reclaim_expired(SystemClock().now());
    EXPECT_TRUE(n.has_value());
    return n ? *n : 0;
  }

  Backend backend_;
  std::unique_ptr<Broker> broker_;
};

TYPED_TEST_SUITE(BrokerContract, Backends, BackendNames);

// One answer of complete_all or extend_all per claim: done, or kNotFound where `held` is false.
void expect_held(const std::vector<Result<void>>& results, const std::vector<bool>& held) {
  ASSERT_EQ(results.size(), held.size());
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (held[i]) {
      EXPECT_TRUE(results[i].has_value()) << i;
    } else {
      ASSERT_FALSE(results[i].has_value()) << i;
      EXPECT_EQ(results[i].error().code, ErrorCode::kNotFound) << i;
    }
  }
}

TYPED_TEST(BrokerContract, ClaimsInEnqueueOrder) {
  this->enqueue_ids(1, 5);
  EXPECT_EQ(this->broker_->depth(), 5u);
  std::vector<TaskId> order;
  for (int i = 0; i < 5; ++i) {
    auto claims = this->claim(1);
    ASSERT_EQ(claims.size(), 1u);
    order.push_back(claims[0].run.task_id);
  }
  EXPECT_EQ(order, (std::vector<TaskId>{1, 2, 3, 4, 5}));
  EXPECT_EQ(this->broker_->depth(), 0u);
  EXPECT_TRUE(this->claim(1).empty());
}

TYPED_TEST(BrokerContract, HoldsAtMostOneRunPerTaskUntilItCompletes) {
  const Run first{4, from_unix_ms(1'000), 1, false};
  const Run second{4, from_unix_ms(2'000), 1, true};
  ASSERT_TRUE(this->broker_->enqueue(first));
  auto waiting = this->broker_->enqueue(second);
  ASSERT_FALSE(waiting.has_value());
  EXPECT_EQ(waiting.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(this->broker_->enqueue(Run{5, from_unix_ms(1'000), 1, false}));  // other tasks

  auto held = this->broker_->holding({3, 4, 5, 6});
  ASSERT_TRUE(held.has_value());
  std::sort(held->begin(), held->end());
  EXPECT_EQ(*held, (std::vector<TaskId>{4, 5}));

  // Claimed, released and reclaimed runs stay held; only completion ends the hold.
  auto claims = this->claim(2, 0ms, 50ms);
  ASSERT_EQ(claims.size(), 2u);
  ASSERT_TRUE(this->broker_->release(claims[0]));
  std::this_thread::sleep_for(100ms);
  this->reclaim();
  EXPECT_EQ(this->broker_->enqueue(second).error().code, ErrorCode::kConflict);
  held = this->broker_->holding({4, 5});
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->size(), 2u);

  for (int round = 0; round < 2; ++round) {
    for (const Claim& claim : this->claim(2, 0ms, 30s)) ASSERT_TRUE(this->broker_->complete(claim));
  }
  held = this->broker_->holding({4, 5});
  ASSERT_TRUE(held.has_value());
  EXPECT_TRUE(held->empty());
  EXPECT_TRUE(this->broker_->enqueue(second));
  EXPECT_TRUE(this->broker_->ping());
}

TYPED_TEST(BrokerContract, EnqueueAllAnswersEachRunInOrder) {
  ASSERT_TRUE(this->broker_->enqueue(run_of(3)));  // held before the batch
  const Run again{1, from_unix_ms(5'000), 2, true};
  auto results = this->broker_->enqueue_all({run_of(1), run_of(2), again, run_of(3), run_of(4)});
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].has_value());
  EXPECT_TRUE(results[1].has_value());
  ASSERT_FALSE(results[2].has_value());  // the batch's own first run of task 1 holds it
  EXPECT_EQ(results[2].error().code, ErrorCode::kConflict);
  ASSERT_FALSE(results[3].has_value());
  EXPECT_EQ(results[3].error().code, ErrorCode::kConflict);
  EXPECT_TRUE(results[4].has_value());
  EXPECT_TRUE(this->broker_->enqueue_all({}).empty());

  std::vector<Run> claimed;
  for (const Claim& claim : this->claim(10)) claimed.push_back(claim.run);
  ASSERT_EQ(claimed.size(), 4u);  // in enqueue order, each run as enqueued
  EXPECT_EQ(claimed[0], run_of(3));
  EXPECT_EQ(claimed[1], run_of(1));
  EXPECT_EQ(claimed[2], run_of(2));
  EXPECT_EQ(claimed[3], run_of(4));
}

TYPED_TEST(BrokerContract, ClaimCarriesTheRunAndItsLease) {
  const Run run{7, from_unix_ms(123'456), 3, true};
  ASSERT_TRUE(this->broker_->enqueue(run));
  const TimePoint before = SystemClock().now();
  auto claims = this->claim(1, 0ms, 5s);
  const TimePoint after = SystemClock().now();
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].run, run);
  EXPECT_EQ(claims[0].deliveries, 1);
  EXPECT_FALSE(claims[0].receipt.empty());
  EXPECT_GE(claims[0].lease_until, before + 5s);
  EXPECT_LE(claims[0].lease_until, after + 5s);
}

TYPED_TEST(BrokerContract, ClaimTakesAtMostMax) {
  this->enqueue_ids(1, 5);
  auto first = this->claim(3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].run.task_id, 1);
  EXPECT_EQ(first[2].run.task_id, 3);
  EXPECT_EQ(this->broker_->depth(), 2u);
  auto rest = this->claim(10);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].run.task_id, 4);
  EXPECT_EQ(rest[1].run.task_id, 5);
  std::set<std::string> receipts;
  for (const auto& c : first) receipts.insert(c.receipt);
  for (const auto& c : rest) receipts.insert(c.receipt);
  EXPECT_EQ(receipts.size(), 5u);
  this->enqueue_ids(6, 6);
  EXPECT_TRUE(this->claim(0).empty());
  EXPECT_EQ(this->broker_->depth(), 1u);
}

TYPED_TEST(BrokerContract, ClaimWaitsUpToItsTimeOut) {
  auto start = Steady::now();
  EXPECT_TRUE(this->claim(1, 0ms).empty());
  EXPECT_LT(Steady::now() - start, 100ms);
  start = Steady::now();
  EXPECT_TRUE(this->claim(1, 250ms).empty());
  const auto waited = Steady::now() - start;
  EXPECT_GE(waited, 240ms);
  EXPECT_LT(waited, 1000ms);
}

TYPED_TEST(BrokerContract, EnqueueWakesAWaitingClaim) {
  auto waiter = std::async(std::launch::async, [&] {
    const auto start = Steady::now();
    auto claims = this->broker_->claim(1, 5s, 30s);
    return std::make_pair(std::move(claims), Steady::now() - start);
  });
  std::this_thread::sleep_for(150ms);
  ASSERT_TRUE(this->broker_->enqueue(run_of(42)));
  auto [claims, waited] = waiter.get();
  ASSERT_TRUE(claims.has_value());
  ASSERT_EQ(claims->size(), 1u);
  EXPECT_EQ((*claims)[0].run.task_id, 42);
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 1000ms);
}

TYPED_TEST(BrokerContract, CompleteForgetsTheRun) {
  this->enqueue_ids(1, 2);
  auto claims = this->claim(1, 0ms, 200ms);
  ASSERT_EQ(claims.size(), 1u);
  ASSERT_TRUE(this->broker_->complete(claims[0]));
  auto again = this->broker_->complete(claims[0]);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(this->broker_->depth(), 1u);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(this->reclaim(), 0u);  // a completed run never comes back
  auto rest = this->claim(5);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].run.task_id, 2);
  EXPECT_TRUE(this->claim(5).empty());
}

TYPED_TEST(BrokerContract, CompleteAllAnswersEachClaimInOrder) {
  this->enqueue_ids(1, 4);
  auto claims = this->claim(4, 0ms, 30s);
  ASSERT_EQ(claims.size(), 4u);
  ASSERT_TRUE(this->broker_->complete(claims[1]));  // done before: the batch's second is stale
  Claim bogus = claims[3];                          // a claim on a run the broker never had
  bogus.receipt = "999999999-0";
  bogus.run.scheduled_at += 1ms;
  expect_held(this->broker_->complete_all({claims[0], claims[1], claims[2], bogus}),
              {true, false, true, false});
  // Completed runs no longer hold their tasks; the one never completed still does.
  auto held = this->broker_->holding({1, 2, 3, 4});
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(*held, (std::vector<TaskId>{4}));
  EXPECT_TRUE(this->broker_->enqueue(Run{1, from_unix_ms(9'000), 1, false}));
  EXPECT_TRUE(this->broker_->complete_all({}).empty());
  EXPECT_TRUE(this->broker_->complete(claims[3]));
}

TYPED_TEST(BrokerContract, UnknownReceiptIsNotFound) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1);
  ASSERT_EQ(claims.size(), 1u);
  Claim bogus = claims[0];
  bogus.receipt = "999999999-0";
  for (auto result : {this->broker_->complete(bogus), this->broker_->release(bogus),
                      this->broker_->extend(bogus, 1s)}) {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
  }
  EXPECT_TRUE(this->broker_->complete(claims[0]));  // the real one still holds
}

TYPED_TEST(BrokerContract, ReleaseMakesTheRunClaimableAtOnce) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(this->broker_->depth(), 0u);
  ASSERT_TRUE(this->broker_->release(claims[0]));
  EXPECT_EQ(this->broker_->depth(), 1u);
  auto again = this->claim(1, 0ms);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].run, claims[0].run);
  EXPECT_EQ(again[0].deliveries, 1);  // a released claim never ran the run: not a delivery
  auto twice = this->broker_->release(claims[0]);  // the old claim is gone
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(this->broker_->complete(again[0]));
  EXPECT_EQ(this->broker_->depth(), 0u);
}

TYPED_TEST(BrokerContract, CompletingAReleasedClaimLeavesItsRunQueuedAndHeld) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1);
  ASSERT_EQ(claims.size(), 1u);
  ASSERT_TRUE(this->broker_->release(claims[0]));
  auto stale = this->broker_->complete(claims[0]);  // the old claim is gone, the run is not
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(this->broker_->holding({1}).value(), std::vector<TaskId>{1});
  auto refused = this->broker_->enqueue(Run{1, from_unix_ms(9'000), 1, false});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  auto again = this->claim(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].run, claims[0].run);
  ASSERT_TRUE(this->broker_->complete(again[0]));
  EXPECT_TRUE(this->broker_->holding({1}).value().empty());
}

TYPED_TEST(BrokerContract, ReleaseWakesAWaitingClaim) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1);
  ASSERT_EQ(claims.size(), 1u);
  auto waiter = std::async(std::launch::async, [&] { return this->broker_->claim(1, 5s, 30s); });
  std::this_thread::sleep_for(150ms);
  const auto start = Steady::now();
  ASSERT_TRUE(this->broker_->release(claims[0]));
  auto got = waiter.get();
  EXPECT_LT(Steady::now() - start, 1000ms);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].run.task_id, 1);
}

TYPED_TEST(BrokerContract, ExpiredLeaseIsReclaimedAndRedelivered) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1, 0ms, 200ms);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(this->reclaim(), 0u);  // still leased
  EXPECT_TRUE(this->claim(1).empty());
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(this->reclaim(), 1u);
  EXPECT_EQ(this->broker_->depth(), 1u);
  auto second = this->claim(1, 0ms, 200ms);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].run, claims[0].run);
  EXPECT_EQ(second[0].deliveries, 2);
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(this->reclaim(), 1u);
  auto third = this->claim(1, 0ms, 30s);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].deliveries, 3);
  ASSERT_TRUE(this->broker_->complete(third[0]));
  EXPECT_EQ(this->broker_->depth(), 0u);
}

TYPED_TEST(BrokerContract, ReclaimWithAnEarlierNowTakesNothingYet) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1, 0ms, 200ms);
  ASSERT_EQ(claims.size(), 1u);
  std::this_thread::sleep_for(350ms);
  // As of two seconds ago the lease had not started: nothing expired.
  auto n = this->broker_->reclaim_expired(SystemClock().now() - 2s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(this->reclaim(), 1u);
}

TYPED_TEST(BrokerContract, ExtendPushesTheLease) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1, 0ms, 400ms);
  ASSERT_EQ(claims.size(), 1u);
  std::this_thread::sleep_for(250ms);
  ASSERT_TRUE(this->broker_->extend(claims[0], 400ms));
  std::this_thread::sleep_for(250ms);  // 500 ms after the claim, 250 ms after the extension
  EXPECT_EQ(this->reclaim(), 0u);
  std::this_thread::sleep_for(300ms);  // 550 ms after the extension
  EXPECT_EQ(this->reclaim(), 1u);
  auto again = this->claim(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].deliveries, 2);  // a heartbeat is not a delivery
}

TYPED_TEST(BrokerContract, ExtendAllAnswersEachClaimInOrder) {
  this->enqueue_ids(1, 3);
  auto claims = this->claim(3, 0ms, 400ms);
  ASSERT_EQ(claims.size(), 3u);
  ASSERT_TRUE(this->broker_->complete(claims[1]));  // done: the batch's second is stale
  Claim bogus = claims[2];                          // a claim on a run the broker never had
  bogus.receipt = "999999999-0";
  std::this_thread::sleep_for(250ms);
  expect_held(this->broker_->extend_all({claims[0], claims[1], claims[2], bogus}, 400ms),
              {true, false, true, false});
  EXPECT_TRUE(this->broker_->extend_all({}, 400ms).empty());
  std::this_thread::sleep_for(250ms);  // 500 ms after the claim, 250 ms after the extension
  EXPECT_EQ(this->reclaim(), 0u);
  std::this_thread::sleep_for(300ms);  // 550 ms after the extension
  EXPECT_EQ(this->reclaim(), 2u);
  auto again = this->claim(3);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].deliveries, 2);  // a heartbeat is not a delivery
  EXPECT_EQ(again[1].deliveries, 2);
}

TYPED_TEST(BrokerContract, ExtendOfACompletedClaimIsNotFound) {
  this->enqueue_ids(1, 1);
  auto claims = this->claim(1);
  ASSERT_EQ(claims.size(), 1u);
  ASSERT_TRUE(this->broker_->complete(claims[0]));
  auto extended = this->broker_->extend(claims[0], 1s);
  ASSERT_FALSE(extended.has_value());
  EXPECT_EQ(extended.error().code, ErrorCode::kNotFound);
}

TYPED_TEST(BrokerContract, CloseWakesWaitersAndLaterClaimsReturnAtOnce) {
  auto waiter = std::async(std::launch::async, [&] {
    const auto start = Steady::now();
    auto claims = this->broker_->claim(1, 10s, 30s);
    return std::make_pair(std::move(claims), Steady::now() - start);
  });
  std::this_thread::sleep_for(150ms);
  this->broker_->close();
  auto [claims, waited] = waiter.get();
  ASSERT_TRUE(claims.has_value());
  EXPECT_TRUE(claims->empty());
  EXPECT_LT(waited, 1000ms);
  const auto start = Steady::now();
  EXPECT_TRUE(this->claim(1, 5s).empty());
  EXPECT_LT(Steady::now() - start, 200ms);
  auto enqueued = this->broker_->enqueue(run_of(1));
  ASSERT_FALSE(enqueued.has_value());
  EXPECT_EQ(enqueued.error().code, ErrorCode::kUnavailable);
}

TYPED_TEST(BrokerContract, ConcurrentClaimersShareTheRunsWithoutDuplicates) {
  constexpr TaskId kRuns = 40;
  std::mutex mutex;
  std::vector<TaskId> seen;
  auto worker = [&] {
    for (;;) {
      auto claims = this->broker_->claim(3, 300ms, 30s);
      if (!claims || claims->empty()) return;
      for (const auto& c : *claims) {
        EXPECT_TRUE(this->broker_->complete(c));
        std::lock_guard lock(mutex);
        seen.push_back(c.run.task_id);
      }
    }
  };
  std::thread a(worker), b(worker);
  this->enqueue_ids(1, kRuns);
  a.join();
  b.join();
  std::sort(seen.begin(), seen.end());
  std::vector<TaskId> expected;
  for (TaskId id = 1; id <= kRuns; ++id) expected.push_back(id);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(this->broker_->depth(), 0u);
}

}  // namespace
}  // namespace fetchd
