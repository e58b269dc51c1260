// The JSON shapes of the API's resources: a task, its status, a job, stored data, a user and a
// login's token (DESIGN.md §3-4; openapi.cpp describes them). Field names are the seed's; times
// are RFC 3339 UTC with milliseconds, durations seconds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "auth/auth_service.hpp"
#include "core/error.hpp"
#include "core/job.hpp"
#include "core/task.hpp"
#include "core/user.hpp"

namespace fetchd::api {

nlohmann::json task_to_json(const Task& task);
// The status without its document: id, execution_time, last_execute_time,
// last_execution_status, last_execution_error, consecutive_failures, suspended, next_run_at.
// with_document adds last_execution_data.
nlohmann::json task_status_to_json(const Task& task);
// Exactly: id, task_id, attempt, scheduled_at, started_at, finished_at, duration_ms,
// execution_time (seconds), status, http_status, error, response_bytes, records, changed,
// worker_id, data_id. GET /jobs/{id} adds "data" with with_document.
nlohmann::json job_to_json(const Job& job);
// GET /tasks/{id}/data/latest without its document: task_id, job_id (the run that fetched it,
// null when unknown), data_id, content_hash, created_at (when this content was first stored:
// identical payloads are stored once), bytes, records. with_document adds "data".
nlohmann::json latest_data_to_json(const Data& data, std::optional<JobId> job_id);
// 202 of POST /tasks/{id}/run: {"task_id", "status": "queued"}.
nlohmann::json run_accepted_to_json(TaskId id, TimePoint scheduled_at);

// The body of `object` with the member `key` set to `document`, a stored JSON document (null
// when nullopt). The document goes in as text, spliced into the serialised object: parsing a
// payload of megabytes into a DOM only to serialise it again would cost time and, nested
// deeply, stack. It is checked (without recursion) first: kInternal if it is not valid JSON.
Result<std::string> with_document(nlohmann::json object, std::string_view key,
                                  const std::optional<std::string>& document);
// {"id", "username", "role", "created_at"}: never the password hash.
nlohmann::json user_to_json(const User& user);
nlohmann::json login_to_json(const auth::LoginResult& login);

// A JSON body as sent: compact, invalid UTF-8 replaced rather than thrown on.
std::string dump_json(const nlohmann::json& value);

}  // namespace fetchd::api
