// Task, status, user and token as JSON.
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

nlohmann::json task_status_to_json(const Task& task,
                                   const std::optional<nlohmann::json>& last_data) {
  return {
      {"id", task.id},
      {"execution_time", seconds_or_null(task.last.duration_ms)},
      {"last_execute_time", time_or_null(task.last.at)},
      {"last_execution_status", task.last.status.value_or("pending")},
      {"last_execution_error", value_or_null(task.last.error)},
      {"last_execution_data", last_data ? *last_data : nlohmann::json(nullptr)},
      {"consecutive_failures", task.consecutive_failures},
      {"suspended", task.suspended()},
      {"next_run_at", time_or_null(task.next_run_at)},
  };
}

nlohmann::json user_to_json(const User& user) {
  return {{"id", user.id},
          {"username", user.username},
          {"role", to_string(user.role)},
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
