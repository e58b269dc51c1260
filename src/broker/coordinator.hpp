// What the processes of a scale-out deployment tell each other beside the run queue: which
// scheduler leads (a lease with a fencing token), and the engine events that an API or a worker
// process must get to the leading scheduler (a task changed, a run finished) without it polling
// the store. redis/ implements it; a single process (`fetchd serve` on the local broker) needs
// none of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

struct EngineEvent {
  enum class Kind : char {
    kTaskChanged = 'c',  // created, updated, paused, resumed, reset
    kTaskDeleted = 'd',
    kRunFinished = 'f',   // `at`: the task's next run as recorded (nullopt: none)
    kRunRequested = 'r',  // POST /tasks/{id}/run enqueued a run due `at`
  };
  Kind kind = Kind::kTaskChanged;
  TaskId task_id = 0;
  std::optional<TimePoint> at;
  std::int64_t failures = 0;  // kRunFinished: consecutive failures after the run

  friend bool operator==(const EngineEvent&, const EngineEvent&) = default;
};

// "<kind> <task_id> <at unix ms or -> <failures>"; decode gives nullopt for anything else.
std::string encode(const EngineEvent& event);
std::optional<EngineEvent> decode_event(std::string_view text);

class Coordinator {
 public:
  virtual ~Coordinator() = default;

  // Takes the scheduler lease for `ttl`, or renews it when this process holds it. Returns the
  // lease's fencing token while this process holds it, nullopt while another one does, and
  // kUnavailable when the backend cannot say (the caller must then stop leading once its last
  // renewal is `ttl` old).
  virtual Result<std::optional<std::string>> lead(std::chrono::milliseconds ttl) = 0;
  // Gives the lease up at once (graceful stop), if this process holds it.
  virtual void resign() = 0;

  // Fire and forget: an event published while nobody listens is lost, and subscribers repair
  // that in `resync` (below).
  virtual Result<void> publish(const EngineEvent& event) = 0;
  // Several events in one message where the backend can (a worker's batch of finished runs).
  virtual Result<void> publish_all(const std::vector<EngineEvent>& events) {
    for (const EngineEvent& event : events) {
      if (auto sent = publish(event); !sent) return sent;
    }
    return {};
  }
  // Delivers every event published from now on, on a thread of its own, until stop().
  // `resync` runs after each (re)subscription, since events may have been missed meanwhile.
  virtual void subscribe(std::function<void(const EngineEvent&)> on_event,
                         std::function<void()> resync) = 0;
  virtual void stop() = 0;
};

}  // namespace fetchd
