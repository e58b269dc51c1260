// The JSON shapes of the API's resources: a task, its status, a user and a login's token
// (DESIGN.md §3-4; openapi.cpp describes them). Field names are the seed's; times are RFC 3339 UTC
// with milliseconds.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "auth/auth_service.hpp"
#include "core/task.hpp"
#include "core/user.hpp"

namespace fetchd::api {

nlohmann::json task_to_json(const Task& task);
// Exactly: id, execution_time, last_execute_time, last_execution_status,
// last_execution_error, last_execution_data, consecutive_failures, suspended, next_run_at.
// `last_data` is the document of the last successful run, when there is one.
nlohmann::json task_status_to_json(const Task& task,
                                   const std::optional<nlohmann::json>& last_data);
// {"id", "username", "role", "created_at"}: never the password hash.
nlohmann::json user_to_json(const User& user);
nlohmann::json login_to_json(const auth::LoginResult& login);

// A JSON body as sent: compact, invalid UTF-8 replaced rather than thrown on.
std::string dump_json(const nlohmann::json& value);

}  // namespace fetchd::api
