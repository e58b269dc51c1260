// The indexed min-heap behind the scheduler: each entry knows its heap position, so a task's
// due time is moved or removed in place instead of leaving stale copies to skip later.
#include "scheduler/task_heap.hpp"

#include <utility>

namespace fetchd {

ScheduledTask* TaskHeap::find(TaskId id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &slots_[it->second];
}

const ScheduledTask* TaskHeap::find(TaskId id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &slots_[it->second];
}

ScheduledTask& TaskHeap::get_or_insert(TaskId id) {
  if (auto* found = find(id)) return *found;
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[slot] = ScheduledTask{};
  slots_[slot].id = id;
  index_.emplace(id, slot);
  return slots_[slot];
}

void TaskHeap::erase(TaskId id) {
  auto it = index_.find(id);
  if (it == index_.end()) return;
  const std::uint32_t slot = it->second;
  if (slots_[slot].queued()) remove_at(slots_[slot].heap_pos);
  slots_[slot] = ScheduledTask{};
  index_.erase(it);
  free_slots_.push_back(slot);
}

void TaskHeap::set_due(ScheduledTask& task, std::optional<TimePoint> due) {
  const auto slot = static_cast<std::uint32_t>(&task - slots_.data());
  if (!due) {
    if (task.queued()) remove_at(task.heap_pos);
    return;
  }
  const std::int64_t old_due = task.due_ms;
  task.due_ms = to_unix_ms(*due);
  if (!task.queued()) {
    heap_.push_back(slot);
    task.heap_pos = static_cast<std::uint32_t>(heap_.size() - 1);
    sift_up(task.heap_pos);
  } else if (task.due_ms < old_due) {
    sift_up(task.heap_pos);
  } else {
    sift_down(task.heap_pos);
  }
}

ScheduledTask* TaskHeap::top() {
  return heap_.empty() ? nullptr : &slots_[heap_.front()];
}

std::optional<TimePoint> TaskHeap::next_due() const {
  if (heap_.empty()) return std::nullopt;
  return slots_[heap_.front()].due();
}

void TaskHeap::reserve(std::size_t tasks) {
  slots_.reserve(tasks);
  index_.reserve(tasks);
  heap_.reserve(tasks);
}

bool TaskHeap::before(std::uint32_t a, std::uint32_t b) const {
  const auto& x = slots_[a];
  const auto& y = slots_[b];
  return x.due_ms != y.due_ms ? x.due_ms < y.due_ms : x.id < y.id;
}

void TaskHeap::place(std::uint32_t pos, std::uint32_t slot) {
  heap_[pos] = slot;
  slots_[slot].heap_pos = pos;
}

void TaskHeap::sift_up(std::uint32_t pos) {
  const std::uint32_t slot = heap_[pos];
  while (pos > 0) {
    const std::uint32_t parent = (pos - 1) / 2;
    if (!before(slot, heap_[parent])) break;
    place(pos, heap_[parent]);
    pos = parent;
  }
  place(pos, slot);
}

void TaskHeap::sift_down(std::uint32_t pos) {
  const std::uint32_t slot = heap_[pos];
  const auto size = static_cast<std::uint32_t>(heap_.size());
  while (true) {
    const std::uint64_t left = 2ULL * pos + 1;
    if (left >= size) break;
    auto child = static_cast<std::uint32_t>(left);
    if (child + 1 < size && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], slot)) break;
    place(pos, heap_[child]);
    pos = child;
  }
  place(pos, slot);
}

void TaskHeap::remove_at(std::uint32_t pos) {
  const std::uint32_t removed = heap_[pos];
  const std::uint32_t last = heap_.back();
  heap_.pop_back();
  slots_[removed].heap_pos = ScheduledTask::kNotQueued;
  if (pos == heap_.size()) return;  // it was the last one
  place(pos, last);
  // The moved element may belong above or below its new position.
  if (pos > 0 && before(last, heap_[(pos - 1) / 2])) {
    sift_up(pos);
  } else {
    sift_down(pos);
  }
}

}  // namespace fetchd
