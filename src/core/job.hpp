// A job is one run of a task (DESIGN.md §3); data is the JSON a successful run brought back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

enum class JobStatus { kQueued, kRunning, kSucceeded, kFailed, kTimedOut, kSkipped };

// The clean strings of the API and the database: "queued", "running", "succeeded", "failed",
// "timed_out", "skipped".
std::string_view to_string(JobStatus status);
std::optional<JobStatus> job_status_from_string(std::string_view text);

struct Job {
  JobId id = 0;
  TaskId task_id = 0;
  int attempt = 1;
  TimePoint scheduled_at{};
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
  std::optional<std::int64_t> duration_ms;
  JobStatus status = JobStatus::kQueued;
  std::optional<int> http_status;
  std::optional<std::string> error;
  std::optional<std::int64_t> response_bytes;
  std::optional<std::int64_t> records;  // when the document is an array of objects
  std::optional<bool> changed;          // false when the payload equals the previous one
  std::optional<std::string> worker_id;
  std::optional<DataId> data_id;
};

struct Data {
  DataId id = 0;
  TaskId task_id = 0;
  std::string content_hash;  // hex SHA-256 of the body, for deduplication
  std::string body;          // the JSON document as text
  std::int64_t bytes = 0;
  std::optional<std::int64_t> records;
  TimePoint created_at{};
};

}  // namespace fetchd
