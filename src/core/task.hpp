// A task: what to fetch, when, and how often (DESIGN.md §3), plus the state the engine keeps
// on it (failures, pause, the last run's summary). Validation of user input lives here too:
// it is pure domain logic, shared by the API and the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

// What a user sets on a task.
struct TaskSpec {
  std::string name;
  std::string url;
  nlohmann::json parameters = nlohmann::json::object();  // always a JSON object once valid
  TimePoint start_time{};
  TimePoint end_time{};
  std::int64_t task_interval = 0;       // seconds, >= 1
  std::int64_t max_execution_time = 0;  // seconds, 0 = the server default
  std::int64_t max_attempt = 3;         // consecutive failed tries before suspension, >= 1

  friend bool operator==(const TaskSpec&, const TaskSpec&) = default;
};

// Summary of the task's latest finished run, kept on the task row so that listing tasks
// never joins the jobs table. All empty before the first run.
struct LastRun {
  std::optional<JobId> job_id;
  std::optional<std::string> status;  // a JobStatus string
  std::optional<TimePoint> at;        // when the run started
  std::optional<std::int64_t> duration_ms;
  std::optional<std::string> error;
  std::optional<DataId> data_id;  // data of the latest *successful* run

  friend bool operator==(const LastRun&, const LastRun&) = default;
};

struct Task {
  TaskId id = 0;
  UserId owner_id = 0;
  TaskSpec spec;
  bool paused = false;
  std::int64_t consecutive_failures = 0;
  std::optional<TimePoint> next_run_at;  // kept by the scheduler
  LastRun last;
  TimePoint created_at{};
  TimePoint updated_at{};

  // Suspension is derived, never stored: raising max_attempt lifts it, reset-attempt clears it.
  bool suspended() const { return consecutive_failures >= spec.max_attempt; }
  // Inside its active window [start_time, end_time)?
  bool active_at(TimePoint t) const { return spec.start_time <= t && t < spec.end_time; }
};

// Bounds of the task fields, in one place for validation, the OpenAPI spec and the docs.
struct TaskLimits {
  static constexpr std::size_t kNameMaxChars = 200;
  static constexpr std::size_t kUrlMaxBytes = 2048;
  static constexpr std::int64_t kIntervalMax = 366LL * 24 * 3600;  // a year
  static constexpr std::int64_t kExecutionTimeMax = 24 * 3600;     // a day
  static constexpr std::int64_t kMaxAttemptMax = 1000;
};

// Reads a task from an API body. With `base == nullptr` this is a creation: name, url,
// start_time, end_time and task_interval are required, the rest default. With a base, it is a
// partial update (PATCH): absent fields keep the base's values. `parameters` may be a JSON
// object or a string holding one ("{}", as the original client sends). Unknown fields are
// ignored. Every problem is reported at once as a kInvalid error with one FieldError per
// field; a body that is not a JSON object is kMalformed.
Result<TaskSpec> task_spec_from_json(const nlohmann::json& body, const TaskSpec* base = nullptr);

// The value rules of DESIGN.md §3 on a complete spec: name 1–200 characters, url an absolute
// http(s) URL with a host, end_time > start_time, task_interval in [1, kIntervalMax],
// max_execution_time in [0, kExecutionTimeMax], max_attempt in [1, kMaxAttemptMax],
// parameters an object whose known keys have the right types (method, headers, query, path,
// eventfile). Returns an empty list when valid.
std::vector<FieldError> validate_task_spec(const TaskSpec& spec);

}  // namespace fetchd
