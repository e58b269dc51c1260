#include "core/job.hpp"

#include <array>
#include <utility>

namespace fetchd {

namespace {
constexpr std::array<std::pair<JobStatus, std::string_view>, 6> kNames{{
    {JobStatus::kQueued, "queued"},
    {JobStatus::kRunning, "running"},
    {JobStatus::kSucceeded, "succeeded"},
    {JobStatus::kFailed, "failed"},
    {JobStatus::kTimedOut, "timed_out"},
    {JobStatus::kSkipped, "skipped"},
}};
}  // namespace

std::string_view to_string(JobStatus status) {
  for (const auto& [s, name] : kNames)
    if (s == status) return name;
  return "failed";
}

std::optional<JobStatus> job_status_from_string(std::string_view text) {
  for (const auto& [s, name] : kNames)
    if (name == text) return s;
  return std::nullopt;
}

}  // namespace fetchd
