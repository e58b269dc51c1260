// The Scheduler: due times from core/schedule.hpp, kept in a TaskHeap, turned into Broker runs
// or skipped jobs by advance(now). All decisions take `now` as an argument so that tests drive
// them with a fake clock; only run_loop() waits for real time.
#include "scheduler/scheduler.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/sinks/null_sink.h>

#include "core/job.hpp"
#include "core/schedule.hpp"
#include "core/thread_name.hpp"

namespace fetchd {
namespace {

std::int32_t clamp32(std::int64_t value) {
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(
      value, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()));
}

// t + 1 ms, saturating at the end of time.
TimePoint just_after(TimePoint t) {
  return t == TimePoint::max() ? t : t + Millis(1);
}

std::shared_ptr<spdlog::logger> or_null_logger(std::shared_ptr<spdlog::logger> log) {
  if (log) return log;
  return std::make_shared<spdlog::logger>("scheduler",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace

Scheduler::Scheduler(Store& store, Broker& broker, RunWriter& writer, const Clock& clock,
                     Metrics& metrics, std::shared_ptr<spdlog::logger> log,
                     SchedulerOptions options)
    : store_(store),
      broker_(broker),
      writer_(writer),
      clock_(clock),
      metrics_(metrics),
      log_(or_null_logger(std::move(log))),
      options_(options) {
  options_.load_page = std::max<std::size_t>(options_.load_page, 1);
  options_.max_sleep = std::max(options_.max_sleep, Millis(1));
  // The scratch task is only ever read for its schedule fields; a null document spares the
  // allocation of an empty object.
  scratch_.spec.parameters = nullptr;
}

Scheduler::~Scheduler() {
  stop();
}

Result<void> Scheduler::load() {
  return load_at(clock_.now());
}

Result<void> Scheduler::load_at(TimePoint now) {
  std::lock_guard changes(changes_mu_);
  if (auto count = store_.count_tasks(std::nullopt); count && *count > 0) {
    std::lock_guard lock(mu_);
    heap_.reserve(static_cast<std::size_t>(*count));
  }
  {
    // Runs in flight stay known (their completion will be reported); everything else is
    // rebuilt from what the store says now.
    std::lock_guard lock(mu_);
    heap_.erase_if([](const ScheduledTask& entry) { return !entry.in_flight; });
  }
  std::optional<TaskId> after;
  std::size_t loaded = 0;
  do {
    auto page = store_.load_schedule(after, options_.load_page);
    if (!page) return tl::unexpected(page.error());
    std::lock_guard lock(mu_);
    for (const ScheduleEntry& stored : page->items) {
      scratch_.id = stored.id;
      scratch_.spec.start_time = stored.start_time;
      scratch_.spec.end_time = stored.end_time;
      scratch_.spec.task_interval = stored.task_interval;
      scratch_.spec.max_attempt = stored.max_attempt;
      scratch_.consecutive_failures = stored.consecutive_failures;
      scratch_.paused = stored.paused;
      scratch_.next_run_at = stored.next_run_at;
      forget_if_idle_locked(apply_locked(scratch_, now));
    }
    loaded += page->items.size();
    after = page->next_after;
  } while (after);

  std::lock_guard lock(mu_);
  log_->info("scheduler loaded {} tasks, {} scheduled, next due {}", loaded, heap_.queued(),
             heap_.next_due() ? format_rfc3339(*heap_.next_due()) : std::string("never"));
  woken_ = true;
  wake_.notify_one();
  return {};
}

std::size_t Scheduler::advance(TimePoint now) {
  struct Skip {
    TaskId id;
    TimePoint at;
    std::int64_t attempt;
  };
  std::vector<Run> runs;
  std::vector<Skip> skips;
  {
    std::lock_guard lock(mu_);
    while (ScheduledTask* entry = heap_.top()) {
      const TimePoint due = entry->due();
      if (due > now) break;
      const std::int64_t attempt = std::int64_t{entry->failures} + 1;
      if (entry->in_flight) {
        skips.push_back(Skip{entry->id, due, attempt});
      } else {
        runs.push_back(Run{entry->id, due, attempt, false});
        mark_in_flight_locked(*entry, now);
      }
      // The next regular due time stays queued while the run is in flight, so that one passing
      // meanwhile is seen (and skipped). Due times that passed while this thread itself was
      // late are coalesced instead: they were never due while a run was in flight.
      const TaskSpec& spec = as_task_locked(*entry).spec;
      auto next = first_due_at_or_after(spec, just_after(due));
      if (next && *next <= now) next = first_due_at_or_after(spec, just_after(now));
      heap_.set_due(*entry, next);
    }
  }

  for (const Skip& skip : skips) record_skipped(skip.id, skip.at, skip.attempt, now);

  std::size_t enqueued = 0;
  bool refused = false;
  auto results = broker_.enqueue_all(runs);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Run& run = runs[i];
    const auto& result = results[i];
    if (result) {
      ++enqueued;
      continue;
    }
    if (result.error().code == ErrorCode::kConflict) {
      // A run of this task that another process enqueued (POST /tasks/{id}/run on an API
      // process, or a scheduler that led before) is in the broker: it is the run in flight.
      log_->debug("task {}: a run is already in the broker; the one due at {} waits for it",
                  run.task_id, format_rfc3339(run.scheduled_at));
      continue;
    }
    refused = true;
    enqueue_failed(run, result.error(), now);
  }
  if (!refused && !runs.empty()) {
    std::lock_guard lock(mu_);
    if (enqueue_backoff_.count() > 0) log_->info("scheduler: the broker takes runs again");
    enqueue_backoff_ = Millis(0);
  }
  return enqueued;
}

void Scheduler::mark_in_flight_locked(ScheduledTask& entry, TimePoint now) {
  if (!entry.in_flight) ++in_flight_;
  entry.in_flight = true;
  entry.in_flight_since_ms = to_unix_ms(now);
}

void Scheduler::enqueue_failed(const Run& run, const Error& error, TimePoint now) {
  std::lock_guard lock(mu_);
  if (enqueue_backoff_.count() == 0) {
    log_->error(
        "scheduler could not enqueue the run of task {} due at {}: {} {}; retrying with "
        "backoff",
        run.task_id, format_rfc3339(run.scheduled_at), error.message, error.internal);
    enqueue_backoff_ = std::max(options_.first_enqueue_backoff, Millis(1));
  } else {
    log_->debug("scheduler could not enqueue the run of task {} due at {}: {}", run.task_id,
                format_rfc3339(run.scheduled_at), error.message);
    enqueue_backoff_ = std::min<Millis>(enqueue_backoff_ * 2, Millis(5000));
  }
  hold_until_ = now + enqueue_backoff_;
  ScheduledTask* entry = heap_.find(run.task_id);
  if (entry == nullptr || !entry->in_flight) return;
  entry->in_flight = false;
  --in_flight_;
  // The due time comes back (as a catch-up run once the broker answers again); the regular
  // ones that pass meanwhile coalesce into it.
  if (!entry->paused && !entry->suspended() &&
      (!entry->queued() || run.scheduled_at < entry->due())) {
    heap_.set_due(*entry, run.scheduled_at);
  }
  forget_if_idle_locked(*entry);
}

std::optional<TimePoint> Scheduler::next_wakeup() const {
  std::lock_guard lock(mu_);
  return heap_.next_due();
}

std::size_t Scheduler::run_due_once(TimePoint now) {
  if (auto loaded = load_at(now); !loaded) {
    log_->error("scheduler could not load the schedule: {} {}", loaded.error().message,
                loaded.error().internal);
    return 0;
  }
  return advance(now);
}

void Scheduler::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    name_this_thread("fetchd-sched");
    run_loop();
  });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::reset() {
  std::lock_guard changes(changes_mu_);
  std::lock_guard lock(mu_);
  heap_.erase_if([](const ScheduledTask&) { return true; });
  in_flight_ = 0;
  hold_until_ = {};
  enqueue_backoff_ = Millis(0);
}

std::size_t Scheduler::repair(TimePoint now) {
  if (options_.repair_after.count() <= 0) return 0;
  const std::int64_t cutoff = to_unix_ms(now - options_.repair_after);
  std::vector<TaskId> suspects;
  {
    std::lock_guard lock(mu_);
    if (in_flight_ == 0) return 0;
    heap_.for_each([&](const ScheduledTask& entry) {
      if (entry.in_flight && entry.in_flight_since_ms <= cutoff) suspects.push_back(entry.id);
    });
  }
  if (suspects.empty()) return 0;
  auto held = broker_.holding(suspects);
  if (!held) {
    log_->debug("scheduler cannot check its runs in flight: {}", held.error().message);
    return 0;
  }
  std::sort(held->begin(), held->end());
  std::size_t repaired = 0;
  for (TaskId id : suspects) {
    if (std::binary_search(held->begin(), held->end(), id)) continue;
    // The worker records a run before it completes its claim: the store already has it.
    std::lock_guard changes(changes_mu_);
    auto task = store_.get_task(id);
    if (!task && task.error().code != ErrorCode::kNotFound) continue;  // next time
    std::lock_guard lock(mu_);
    ScheduledTask* entry = heap_.find(id);
    if (entry == nullptr || !entry->in_flight || entry->in_flight_since_ms > cutoff) continue;
    if (!task) {
      erase_locked(id);
      continue;
    }
    entry->in_flight = false;
    --in_flight_;
    const auto before = heap_.next_due();
    forget_if_idle_locked(apply_locked(*task, now));
    wake_if_earlier_locked(before);
    ++repaired;
  }
  if (repaired > 0) {
    log_->warn(
        "scheduler: {} runs in flight were no longer in the broker (finished unheard, or "
        "lost with it); rescheduled them from the store",
        repaired);
  }
  return repaired;
}

std::size_t Scheduler::size() const {
  std::lock_guard lock(mu_);
  return heap_.queued();
}

std::size_t Scheduler::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

void Scheduler::task_changed(TaskId id) {
  try {
    std::lock_guard changes(changes_mu_);
    auto task = store_.get_task(id);
    std::lock_guard lock(mu_);
    if (!task) {
      if (task.error().code == ErrorCode::kNotFound) {
        erase_locked(id);
      } else {
        log_->warn("scheduler could not re-read task {}: {} {}", id, task.error().message,
                   task.error().internal);
      }
      return;
    }
    const auto before = heap_.next_due();
    forget_if_idle_locked(apply_locked(*task, clock_.now()));
    wake_if_earlier_locked(before);
  } catch (const std::exception& e) {
    log_->error("scheduler task_changed({}): {}", id, e.what());
  }
}

void Scheduler::task_deleted(TaskId id) {
  try {
    std::lock_guard changes(changes_mu_);
    std::lock_guard lock(mu_);
    erase_locked(id);
  } catch (const std::exception& e) {
    log_->error("scheduler task_deleted({}): {}", id, e.what());
  }
}

Result<TimePoint> Scheduler::request_run(TaskId id) {
  const auto in_flight_error = [] {
    return fail(ErrorCode::kConflict, "a run of this task is in flight; try again when it ends");
  };
  try {
    std::lock_guard changes(changes_mu_);
    {
      std::lock_guard lock(mu_);
      if (const ScheduledTask* entry = heap_.find(id); entry && entry->in_flight) {
        return in_flight_error();
      }
    }
    auto task = store_.get_task(id);
    if (!task) return tl::unexpected(task.error());
    const TimePoint now = clock_.now();
    Run run{id, now, 1, true};
    {
      std::lock_guard lock(mu_);
      ScheduledTask& entry = apply_locked(*task, now);
      if (entry.in_flight) return in_flight_error();  // advance() enqueued it meanwhile
      mark_in_flight_locked(entry, now);
      run.attempt = std::int64_t{entry.failures} + 1;
      // A due time that has arrived is served by this run rather than followed by a second one.
      if (entry.queued() && entry.due() <= now) {
        heap_.set_due(entry, first_due_at_or_after(as_task_locked(entry).spec, just_after(now)));
      }
    }
    auto result = broker_.enqueue(run);
    if (!result) {
      std::lock_guard lock(mu_);
      if (ScheduledTask* entry = heap_.find(id); entry && entry->in_flight) {
        entry->in_flight = false;
        --in_flight_;
        forget_if_idle_locked(*entry);
      }
      return tl::unexpected(result.error());
    }
    return run.scheduled_at;
  } catch (const std::exception& e) {
    log_->error("scheduler request_run({}): {}", id, e.what());
    return fail(ErrorCode::kInternal, "the run could not be requested", e.what());
  }
}

void Scheduler::run_requested(TaskId id, TimePoint scheduled_at) {
  try {
    std::lock_guard changes(changes_mu_);
    auto task = store_.get_task(id);
    if (!task) return;  // deleted meanwhile, or unreadable: repair() catches up
    const TimePoint now = clock_.now();
    std::lock_guard lock(mu_);
    ScheduledTask& entry = apply_locked(*task, now);
    mark_in_flight_locked(entry, now);
    if (entry.queued() && entry.due() <= scheduled_at) {
      heap_.set_due(entry, first_due_at_or_after(as_task_locked(entry).spec, just_after(now)));
    }
  } catch (const std::exception& e) {
    log_->error("scheduler run_requested({}): {}", id, e.what());
  }
}

void Scheduler::run_finished(TaskId id, std::optional<TimePoint> next_run_at,
                             std::int64_t consecutive_failures) {
  runs_finished({{id, next_run_at, consecutive_failures}});
}

void Scheduler::runs_finished(const std::vector<FinishedRun>& runs) {
  try {
    std::lock_guard lock(mu_);
    const auto before = heap_.next_due();
    for (const FinishedRun& run : runs) finish_locked(run);
    wake_if_earlier_locked(before);
  } catch (const std::exception& e) {
    log_->error("scheduler runs_finished ({} runs): {}", runs.size(), e.what());
  }
}

void Scheduler::finish_locked(const FinishedRun& run) {
  ScheduledTask* entry = heap_.find(run.task_id);
  if (!entry) return;  // deleted meanwhile
  if (entry->in_flight) {
    entry->in_flight = false;
    --in_flight_;
  }
  entry->failures = clamp32(run.consecutive_failures);
  std::optional<TimePoint> due;
  // The entry knows of pauses and max_attempt changes that the worker's copy of the task,
  // read when the run started, may have missed.
  if (!entry->paused && !entry->suspended()) {
    due = run.next_run_at
              ? run.next_run_at
              : first_due_at_or_after(as_task_locked(*entry).spec, just_after(clock_.now()));
  }
  heap_.set_due(*entry, due);
  forget_if_idle_locked(*entry);
}

ScheduledTask& Scheduler::apply_locked(const Task& task, TimePoint now) {
  ScheduledTask& entry = heap_.get_or_insert(task.id);
  entry.start_ms = to_unix_ms(task.spec.start_time);
  entry.end_ms = to_unix_ms(task.spec.end_time);
  entry.interval_s = task.spec.task_interval;
  entry.max_attempt = clamp32(task.spec.max_attempt);
  entry.failures = clamp32(task.consecutive_failures);
  entry.paused = task.paused;
  // While a run is in flight its completion decides what follows it; until then only the
  // regular due times matter (to be skipped if they come), not the persisted next_run_at,
  // which is still the due time of the run in flight.
  heap_.set_due(entry, entry.in_flight ? next_run_from(task, just_after(now))
                                       : next_run_from(task, now, task.next_run_at));
  return entry;
}

const Task& Scheduler::as_task_locked(const ScheduledTask& entry) {
  scratch_.id = entry.id;
  scratch_.spec.start_time = from_unix_ms(entry.start_ms);
  scratch_.spec.end_time = from_unix_ms(entry.end_ms);
  scratch_.spec.task_interval = entry.interval_s;
  scratch_.spec.max_attempt = entry.max_attempt;
  scratch_.consecutive_failures = entry.failures;
  scratch_.paused = entry.paused;
  scratch_.next_run_at.reset();
  return scratch_;
}

void Scheduler::erase_locked(TaskId id) {
  if (const ScheduledTask* entry = heap_.find(id); entry && entry->in_flight) --in_flight_;
  heap_.erase(id);
}

void Scheduler::forget_if_idle_locked(ScheduledTask& entry) {
  // Paused, suspended and finished tasks cost no memory: a change brings them back.
  if (!entry.queued() && !entry.in_flight) heap_.erase(entry.id);
}

void Scheduler::wake_if_earlier_locked(std::optional<TimePoint> before) {
  const auto after = heap_.next_due();
  if (after && (!before || *after < *before)) {
    woken_ = true;
    wake_.notify_one();
  }
}

void Scheduler::record_skipped(TaskId id, TimePoint scheduled_at, std::int64_t attempt,
                               TimePoint now) {
  RunRecord record;
  record.job.task_id = id;
  record.job.attempt = clamp32(attempt);
  record.job.scheduled_at = scheduled_at;
  record.job.finished_at = now;  // so that retention by age applies to skipped jobs too
  record.job.status = JobStatus::kSkipped;
  record.job.error = "skipped: the previous run of this task was still in flight";
  record.update_task = false;
  metrics_.count_skipped();
  log_->debug("task {}: run due at {} skipped, the previous one is in flight", id,
              format_rfc3339(scheduled_at));
  writer_.submit(std::move(record), [log = log_, id, scheduled_at](Result<RecordedRun> done) {
    if (!done) {
      log->warn("task {}: the skipped run due at {} could not be recorded: {} {}", id,
                format_rfc3339(scheduled_at), done.error().message, done.error().internal);
    }
  });
}

void Scheduler::run_loop() {
  std::unique_lock lock(mu_);
  TimePoint next_repair = clock_.now() + options_.repair_after;
  while (!stopping_) {
    auto due = heap_.next_due();
    const TimePoint now = clock_.now();
    if (options_.repair_after.count() > 0 && now >= next_repair) {
      lock.unlock();
      repair(now);
      lock.lock();
      next_repair = now + options_.repair_after;
      continue;
    }
    if (due && *due < hold_until_) due = hold_until_;  // the broker refused runs: back off
    if (!due || *due > now) {
      auto wait = options_.max_sleep;
      if (due) wait = std::min(wait, std::chrono::duration_cast<Millis>(*due - now));
      woken_ = false;
      wake_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
      continue;
    }
    lock.unlock();
    if (now - *due > options_.late_log_after) {
      log_->debug("scheduler woke {} ms after a due time", (now - *due).count());
    }
    advance(now);
    lock.lock();
  }
}

}  // namespace fetchd
