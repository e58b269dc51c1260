// The scheduler's in-memory table: one small ScheduledTask per task (never its parameters), and
// an indexed binary min-heap of the ones that have a next due time, so that finding the earliest,
// moving one task's due time and dropping a task are all O(log n), with no lazy garbage.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

// What the scheduler keeps per task: the window and interval to compute due times, what it
// needs to number attempts and notice suspension, and whether a run is in flight.
struct ScheduledTask {
  static constexpr std::uint32_t kNotQueued = std::numeric_limits<std::uint32_t>::max();

  TaskId id = 0;
  std::int64_t due_ms = 0;              // next due time (unix ms), meaningful while queued()
  std::int64_t in_flight_since_ms = 0;  // when the run in flight was enqueued (or learnt of)
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::int64_t interval_s = 1;
  std::int32_t max_attempt = 1;
  std::int32_t failures = 0;  // consecutive_failures
  std::uint32_t heap_pos = kNotQueued;
  bool paused = false;
  bool in_flight = false;

  bool queued() const { return heap_pos != kNotQueued; }
  bool suspended() const { return failures >= max_attempt; }
  TimePoint due() const { return from_unix_ms(due_ms); }
};

class TaskHeap {
 public:
  // References returned stay valid until the next insert (the table is a vector).
  ScheduledTask* find(TaskId id);
  const ScheduledTask* find(TaskId id) const;
  // The task's entry, created (not queued, not in flight) when absent.
  ScheduledTask& get_or_insert(TaskId id);
  void erase(TaskId id);
  // Queues the task at `due`, moves it there, or (nullopt) takes it out of the heap.
  void set_due(ScheduledTask& task, std::optional<TimePoint> due);
  // The queued task with the earliest due time (ties: lowest id); nullptr when none.
  ScheduledTask* top();
  std::optional<TimePoint> next_due() const;
  // Erases every entry for which pred(entry) is true.
  template <typename Pred>
  void erase_if(Pred pred) {
    std::vector<TaskId> doomed;
    for (const auto& [id, slot] : index_) {
      if (pred(slots_[slot])) doomed.push_back(id);
    }
    for (TaskId id : doomed) erase(id);
  }

  template <typename F>
  void for_each(F f) const {
    for (const auto& [id, slot] : index_) f(slots_[slot]);
  }

  std::size_t queued() const { return heap_.size(); }
  std::size_t tasks() const { return index_.size(); }
  void reserve(std::size_t tasks);

 private:
  bool before(std::uint32_t a, std::uint32_t b) const;
  void place(std::uint32_t pos, std::uint32_t slot);
  void sift_up(std::uint32_t pos);
  void sift_down(std::uint32_t pos);
  void remove_at(std::uint32_t pos);

  std::vector<ScheduledTask> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<TaskId, std::uint32_t> index_;  // task id -> slot
  std::vector<std::uint32_t> heap_;                  // slots, min-heap on (due_ms, id)
};

}  // namespace fetchd
