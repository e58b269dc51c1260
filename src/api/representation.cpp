// Task, status, job, data, user and token as JSON.
#include "api/representation.hpp"

namespace fetchd::api {

namespace {

template <typename T, typename F>
nlohmann::json or_null(const std::optional<T>& value, F convert) {
  return value ? nlohmann::json(convert(*value)) : nlohmann::json(nullptr);
}

nlohmann::json time_or_null(const std::optional<TimePoint>& t) {
  return or_null(t, [](TimePoint v) { return format_rfc3339(v); });
}

template <typename T>
nlohmann::json value_or_null(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// Seconds with millisecond precision, as the seed reported durations.
nlohmann::json seconds_or_null(const std::optional<std::int64_t>& ms) {
  return or_null(ms, [](std::int64_t v) { return static_cast<double>(v) / 1000.0; });
}

}  // namespace

nlohmann::json task_to_json(const Task& task) {
  const TaskSpec& s = task.spec;
  return {
      {"id", task.id},
      {"owner_id", task.owner_id},
      {"name", s.name},
      {"url", s.url},
      {"parameters", s.parameters.is_object() ? s.parameters : nlohmann::json::object()},
      {"start_time", format_rfc3339(s.start_time)},
      {"end_time", format_rfc3339(s.end_time)},
      {"task_interval", s.task_interval},
      {"max_execution_time", s.max_execution_time},
      {"max_attempt", s.max_attempt},
      {"paused", task.paused},
      {"suspended", task.suspended()},
      {"consecutive_failures", task.consecutive_failures},
      {"next_run_at", time_or_null(task.next_run_at)},
      {"last_execution_status", task.last.status.value_or("pending")},
      {"last_execute_time", time_or_null(task.last.at)},
      {"execution_time", seconds_or_null(task.last.duration_ms)},
      {"last_execution_error", value_or_null(task.last.error)},
      {"last_job_id", value_or_null(task.last.job_id)},
      {"created_at", format_rfc3339(task.created_at)},
      {"updated_at", format_rfc3339(task.updated_at)},
  };
}

nlohmann::json task_status_to_json(const Task& task) {
  return {
      {"id", task.id},
      {"execution_time", seconds_or_null(task.last.duration_ms)},
      {"last_execute_time", time_or_null(task.last.at)},
      {"last_execution_status", task.last.status.value_or("pending")},
      {"last_execution_error", value_or_null(task.last.error)},
      {"consecutive_failures", task.consecutive_failures},
      {"suspended", task.suspended()},
      {"next_run_at", time_or_null(task.next_run_at)},
  };
}

nlohmann::json job_to_json(const Job& job) {
  return {
      {"id", job.id},
      {"task_id", job.task_id},
      {"attempt", job.attempt},
      {"scheduled_at", format_rfc3339(job.scheduled_at)},
      {"started_at", time_or_null(job.started_at)},
      {"finished_at", time_or_null(job.finished_at)},
      {"duration_ms", value_or_null(job.duration_ms)},
      {"execution_time", seconds_or_null(job.duration_ms)},
      {"status", to_string(job.status)},
      {"http_status", value_or_null(job.http_status)},
      {"error", value_or_null(job.error)},
      {"response_bytes", value_or_null(job.response_bytes)},
      {"records", value_or_null(job.records)},
      {"changed", value_or_null(job.changed)},
      {"worker_id", value_or_null(job.worker_id)},
      {"data_id", value_or_null(job.data_id)},
  };
}

nlohmann::json latest_data_to_json(const Data& data, std::optional<JobId> job_id) {
  return {
      {"task_id", data.task_id},
      {"job_id", value_or_null(job_id)},
      {"data_id", data.id},
      {"content_hash", data.content_hash},
      {"created_at", format_rfc3339(data.created_at)},
      {"bytes", data.bytes},
      {"records", value_or_null(data.records)},
  };
}

nlohmann::json run_accepted_to_json(TaskId id, TimePoint scheduled_at) {
  return {{"task_id", id}, {"status", "queued"}, {"scheduled_at", format_rfc3339(scheduled_at)}};
}

Result<std::string> with_document(nlohmann::json object, std::string_view key,
                                  const std::optional<std::string>& document) {
  if (!document) {
    object[std::string(key)] = nullptr;
    return dump_json(object);
  }
  std::string_view text = *document;
  // A byte order mark is allowed before a document (and skipped by parsers), never inside one.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  // accept() drives the SAX parser, which keeps its nesting on a heap stack: no recursion.
  if (!nlohmann::json::accept(text))
    return fail(ErrorCode::kInternal, "a stored document is not valid JSON",
                "stored data of " + std::to_string(text.size()) + " bytes fails to parse");
  object.erase(std::string(key));
  std::string out = dump_json(object);
  out.pop_back();  // the closing brace
  out.reserve(out.size() + key.size() + text.size() + 8);
  if (!object.empty()) out += ',';
  out += dump_json(std::string(key));
  out += ':';
  out += text;
  out += '}';
  return out;
}

nlohmann::json user_to_json(const User& user) {
  return {{"id", user.id},
          {"username", user.username},
          {"role", to_string(user.role)},
          {"disabled", user.disabled},
          {"created_at", format_rfc3339(user.created_at)}};
}

nlohmann::json login_to_json(const auth::LoginResult& login) {
  return {{"access_token", login.access_token},
          {"token_type", login.token_type},
          {"expires_in", login.expires_in}};
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fetchd::api
