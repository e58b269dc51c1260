// The schedule arithmetic of DESIGN.md §3: anchored due times, capped exponential backoff and
// the next run of a task. Times are int64 milliseconds; products like k * interval are taken
// in 128 bits so that a 1 s task anchored in 1970 and asked about in 9999 (or any other
// extreme a store may hold) can never overflow.
#include "core/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fetchd {
namespace {

using Wide = __int128;

constexpr std::int64_t kMsPerSecond = 1000;
constexpr Wide kMaxMs = std::numeric_limits<std::int64_t>::max();
constexpr Wide kMinMs = std::numeric_limits<std::int64_t>::min();

Wide ms_of(TimePoint t) {
  return to_unix_ms(t);
}

// Validation keeps task_interval >= 1; a corrupt row must not divide by zero or run backwards.
Wide interval_ms(std::int64_t task_interval_s) {
  return Wide(std::max<std::int64_t>(task_interval_s, 1)) * kMsPerSecond;
}

std::optional<TimePoint> time_of(Wide ms) {
  if (ms > kMaxMs || ms < kMinMs) return std::nullopt;
  return from_unix_ms(static_cast<std::int64_t>(ms));
}

// t + 1 ms, or nullopt at the very end of time.
std::optional<TimePoint> just_after(TimePoint t) {
  return time_of(ms_of(t) + 1);
}

bool in_window(const TaskSpec& spec, Wide t) {
  return ms_of(spec.start_time) <= t && t < ms_of(spec.end_time);
}

}  // namespace

std::optional<TimePoint> first_due_at_or_after(const TaskSpec& spec, TimePoint t) {
  const Wide start = ms_of(spec.start_time);
  const Wide end = ms_of(spec.end_time);
  const Wide step = interval_ms(spec.task_interval);
  const Wide at = ms_of(t);
  const Wide k = at <= start ? 0 : (at - start + step - 1) / step;  // ceil
  const Wide due = start + k * step;
  if (due >= end) return std::nullopt;
  return time_of(due);
}

std::optional<TimePoint> last_due_at_or_before(const TaskSpec& spec, TimePoint t) {
  const Wide start = ms_of(spec.start_time);
  const Wide end = ms_of(spec.end_time);
  const Wide step = interval_ms(spec.task_interval);
  const Wide at = ms_of(t);
  if (at < start || start >= end) return std::nullopt;
  const Wide last_k_in_window = (end - 1 - start) / step;
  const Wide k = std::min((at - start) / step, last_k_in_window);
  return time_of(start + k * step);
}

std::chrono::milliseconds retry_delay(std::int64_t failures, std::int64_t task_interval_s,
                                      double jitter) {
  const std::int64_t retry = std::max<std::int64_t>(failures, 1);
  const Wide cap = interval_ms(task_interval_s);
  // 2^62 s is beyond any interval cap; stop doubling long before the shift overflows.
  const Wide doubled = retry - 1 >= 62 ? cap : Wide(kMsPerSecond) << (retry - 1);
  const Wide delay = std::min(doubled, cap);
  if (!std::isfinite(jitter) || jitter <= 0) jitter = 1.0;
  const double scaled = std::round(static_cast<double>(delay) * jitter);
  // 9.2e18 ms is ~292 million years: saturate rather than overflow the cast.
  if (scaled >= 9.2e18) return std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max());
  return std::chrono::milliseconds(static_cast<std::int64_t>(scaled));
}

std::optional<TimePoint> next_run_after(const Task& task, TimePoint scheduled_at, TimePoint now,
                                        RunOutcome outcome, std::int64_t failures_after,
                                        double jitter) {
  if (task.paused) return std::nullopt;
  const auto after = just_after(std::max(scheduled_at, now));
  const auto regular = after ? first_due_at_or_after(task.spec, *after) : std::nullopt;
  if (outcome == RunOutcome::kSucceeded) return regular;

  if (failures_after >= task.spec.max_attempt) return std::nullopt;  // suspended
  const Wide retry_ms =
      ms_of(now) + retry_delay(failures_after, task.spec.task_interval, jitter).count();
  // A retry outside the window would run while the task is not enabled.
  if (!in_window(task.spec, retry_ms)) return regular;
  const auto retry = time_of(retry_ms);
  if (!regular) return retry;
  return std::min(*regular, *retry);
}

std::optional<TimePoint> next_run_from(const Task& task, TimePoint now,
                                       std::optional<TimePoint> catch_up_from) {
  if (task.paused || task.suspended() || now >= task.spec.end_time) return std::nullopt;
  if (catch_up_from && *catch_up_from <= now && task.active_at(now)) return now;
  auto regular = first_due_at_or_after(task.spec, now);
  // A planned run still ahead (a pending retry after a restart) keeps its time when it comes
  // before the next regular due time: dropping it would delay the retry by up to an interval.
  if (catch_up_from && *catch_up_from > now && task.active_at(*catch_up_from) &&
      (!regular || *catch_up_from < *regular)) {
    return catch_up_from;
  }
  return regular;
}

}  // namespace fetchd
