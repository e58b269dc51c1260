// The TaskHeap (src/scheduler/task_heap.cpp): ordering by (due, id), moving and removing entries
// in place, slot reuse, and a long random sequence of operations checked against std::set.
#include "scheduler/task_heap.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <utility>

namespace fetchd {
namespace {

TimePoint at(std::int64_t ms) {
  return from_unix_ms(ms);
}

// Small enough that a million tasks stay far below 1 KiB each, index and heap included.
static_assert(sizeof(ScheduledTask) <= 64);

TEST(TaskHeap, EmptyHasNoTop) {
  TaskHeap heap;
  EXPECT_EQ(heap.top(), nullptr);
  EXPECT_EQ(heap.next_due(), std::nullopt);
  EXPECT_EQ(heap.queued(), 0u);
  EXPECT_EQ(heap.tasks(), 0u);
  heap.erase(42);  // absent: no effect
  EXPECT_EQ(heap.tasks(), 0u);
}

TEST(TaskHeap, OrdersByDueThenId) {
  TaskHeap heap;
  for (TaskId id : {5, 3, 9, 1}) heap.set_due(heap.get_or_insert(id), at(100));
  heap.set_due(heap.get_or_insert(7), at(50));
  EXPECT_EQ(heap.top()->id, 7);
  heap.set_due(*heap.top(), std::nullopt);
  for (TaskId expected : {1, 3, 5, 9}) {
    ASSERT_NE(heap.top(), nullptr);
    EXPECT_EQ(heap.top()->id, expected);
    heap.set_due(*heap.top(), std::nullopt);
  }
  EXPECT_EQ(heap.top(), nullptr);
  EXPECT_EQ(heap.tasks(), 5u);  // unqueued entries stay until erased
}

TEST(TaskHeap, MovingAndErasingInPlace) {
  TaskHeap heap;
  heap.set_due(heap.get_or_insert(1), at(10));
  heap.set_due(heap.get_or_insert(2), at(20));
  heap.set_due(heap.get_or_insert(3), at(30));
  heap.set_due(*heap.find(3), at(5));  // earlier
  EXPECT_EQ(heap.top()->id, 3);
  heap.set_due(*heap.find(3), at(40));  // later
  EXPECT_EQ(heap.top()->id, 1);
  heap.erase(1);
  EXPECT_EQ(heap.find(1), nullptr);
  EXPECT_EQ(heap.top()->id, 2);
  EXPECT_EQ(heap.next_due(), at(20));
  EXPECT_EQ(heap.queued(), 2u);
  // A new task reuses the freed slot and starts fresh.
  auto& fresh = heap.get_or_insert(4);
  EXPECT_FALSE(fresh.queued());
  EXPECT_FALSE(fresh.in_flight);
  EXPECT_EQ(heap.tasks(), 3u);
  EXPECT_EQ(&heap.get_or_insert(4), &fresh);
}

TEST(TaskHeap, EraseIf) {
  TaskHeap heap;
  for (TaskId id = 1; id <= 10; ++id) {
    auto& task = heap.get_or_insert(id);
    task.in_flight = id % 2 == 0;
    heap.set_due(task, at(id));
  }
  heap.erase_if([](const ScheduledTask& task) { return !task.in_flight; });
  EXPECT_EQ(heap.tasks(), 5u);
  EXPECT_EQ(heap.queued(), 5u);
  EXPECT_EQ(heap.top()->id, 2);
}

TEST(TaskHeap, RandomOperationsMatchAReferenceSet) {
  TaskHeap heap;
  std::map<TaskId, std::int64_t> due;               // queued tasks
  std::set<std::pair<std::int64_t, TaskId>> order;  // reference
  std::set<TaskId> present;
  std::mt19937_64 rng(12345);
  for (int step = 0; step < 200'000; ++step) {
    const TaskId id = static_cast<TaskId>(rng() % 2000);
    const auto op = rng() % 10;
    if (op < 5) {  // queue or move
      const auto when = static_cast<std::int64_t>(rng() % 10'000);
      heap.set_due(heap.get_or_insert(id), at(when));
      present.insert(id);
      if (auto it = due.find(id); it != due.end()) order.erase({it->second, id});
      due[id] = when;
      order.insert({when, id});
    } else if (op < 7) {  // unqueue
      if (auto* task = heap.find(id)) heap.set_due(*task, std::nullopt);
      if (auto it = due.find(id); it != due.end()) {
        order.erase({it->second, id});
        due.erase(it);
      }
    } else if (op < 8) {  // erase
      heap.erase(id);
      present.erase(id);
      if (auto it = due.find(id); it != due.end()) {
        order.erase({it->second, id});
        due.erase(it);
      }
    } else {  // pop the top
      ASSERT_EQ(heap.top() == nullptr, order.empty());
      if (!order.empty()) {
        ASSERT_EQ(heap.top()->id, order.begin()->second) << "step " << step;
        ASSERT_EQ(heap.next_due(), at(order.begin()->first));
        heap.set_due(*heap.top(), std::nullopt);
        due.erase(order.begin()->second);
        order.erase(order.begin());
      }
    }
    ASSERT_EQ(heap.queued(), order.size());
    ASSERT_EQ(heap.tasks(), present.size());
  }
}

}  // namespace
}  // namespace fetchd
