// The OpenAPI 3.1 document served at /openapi.json. Every route the router serves appears
// here (tests/unit/api/openapi_test.cpp fails otherwise); its schemas are the representations of
// representation.cpp.
#include "api/openapi.hpp"

#include <cctype>
#include <string_view>

#include "core/task.hpp"

namespace fetchd::api {

namespace {

using nlohmann::json;

json schema_ref(std::string_view name) {
  return {{"$ref", "#/components/schemas/" + std::string(name)}};
}

json response_ref(std::string_view name) {
  return {{"$ref", "#/components/responses/" + std::string(name)}};
}

json nullable(std::string_view type, json extra = json::object()) {
  extra["type"] = json::array({type, "null"});
  return extra;
}

const json kDateTime = {{"type", "string"},
                        {"format", "date-time"},
                        {"examples", json::array({"2023-01-04T21:41:38.930Z"})}};

json json_content(json schema) {
  return {{"application/json", {{"schema", std::move(schema)}}}};
}

json json_response(std::string_view description, std::string_view schema) {
  return {{"description", description}, {"content", json_content(schema_ref(schema))}};
}

json task_id_parameter() {
  return {{"name", "task_id"},
          {"in", "path"},
          {"required", true},
          {"description", "Id of a task (a positive integer); another user's task is 404."},
          {"schema", {{"type", "integer"}, {"format", "int64"}, {"minimum", 1}}}};
}

json job_id_parameter() {
  return {{"name", "job_id"},
          {"in", "path"},
          {"required", true},
          {"description", "Id of a job (a positive integer); another user's job is 404."},
          {"schema", {{"type", "integer"}, {"format", "int64"}, {"minimum", 1}}}};
}

// The query parameters of a keyset-paginated list.
json page_parameters() {
  return json::array({{{"name", "limit"},
                       {"in", "query"},
                       {"schema",
                        {{"type", "integer"},
                         {"minimum", 1},
                         {"maximum", PageLimits::kMax},
                         {"default", PageLimits::kDefault}}}},
                      {{"name", "cursor"},
                       {"in", "query"},
                       {"description", "next_cursor of the previous page"},
                       {"schema", {{"type", "string"}}}}});
}

json task_parameters_schema() {
  return {
      {"description",
       "How to prepare the request. A JSON object, or a string holding one (\"{}\"). Other keys "
       "fill {placeholders} in the URL."},
      {"oneOf",
       json::array(
           {{{"type", "object"},
             {"additionalProperties", true},
             {"properties",
              {{"method",
                {{"type", "string"},
                 {"enum", {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}},
                 {"default", "GET"}}},
               {"headers", {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}}},
               {"query",
                {{"type", "object"},
                 {"additionalProperties",
                  {{"type", json::array({"string", "number", "boolean"})}}}}},
               {"body", {{"description", "a string, or any JSON sent as JSON"}}},
               {"path", {{"type", "string"}, {"description", "appended to the URL"}}},
               {"eventfile", {{"type", "string"}, {"description", "the same as path"}}}}}},
            {{"type", "string"}, {"description", "a JSON-encoded object"}}})},
  };
}

// The writable task fields, with the bounds validate_task_spec enforces.
json task_input_properties() {
  return {
      {"name",
       {{"type", "string"},
        {"minLength", 1},
        {"maxLength", TaskLimits::kNameMaxChars},
        {"examples", json::array({"amazingexpo"})}}},
      {"url",
       {{"type", "string"},
        {"format", "uri"},
        {"maxLength", TaskLimits::kUrlMaxBytes},
        {"description", "absolute http or https URL with a host (at most that many bytes)"},
        {"examples", json::array({"https://example.com/php-architecture/"})}}},
      {"parameters", task_parameters_schema()},
      {"start_time", kDateTime},
      {"end_time",
       {{"type", "string"}, {"format", "date-time"}, {"description", "after start_time"}}},
      {"task_interval",
       {{"type", "integer"},
        {"minimum", 1},
        {"maximum", TaskLimits::kIntervalMax},
        {"description", "seconds between runs"}}},
      {"max_execution_time",
       {{"type", "integer"},
        {"minimum", 0},
        {"maximum", TaskLimits::kExecutionTimeMax},
        {"default", 0},
        {"description", "seconds a run may take; 0 = the server default"}}},
      {"max_attempt",
       {{"type", "integer"},
        {"minimum", 1},
        {"maximum", TaskLimits::kMaxAttemptMax},
        {"default", 3},
        {"description", "consecutive failed tries before the task is suspended"}}},
  };
}

json schemas() {
  json s;
  s["Problem"] = {{"type", "object"},
                  {"description", "RFC 9457 problem details"},
                  {"required", {"type", "title", "status", "detail"}},
                  {"properties",
                   {{"type", {{"type", "string"}, {"examples", json::array({"about:blank"})}}},
                    {"title", {{"type", "string"}}},
                    {"status", {{"type", "integer"}}},
                    {"detail", {{"type", "string"}}},
                    {"errors",
                     {{"type", "array"},
                      {"description", "one entry per invalid field (422 only)"},
                      {"items",
                       {{"type", "object"},
                        {"required", {"field", "message"}},
                        {"properties",
                         {{"field", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}},
                    {"request_id", {{"type", "string"}}}}}};
  s["Credentials"] = {{"type", "object"},
                      {"required", {"username", "password"}},
                      {"properties",
                       {{"username",
                         {{"type", "string"},
                          {"minLength", AccountLimits::kUsernameMinChars},
                          {"maxLength", AccountLimits::kUsernameMaxChars},
                          {"pattern", "^[A-Za-z0-9_.-]+$"}}},
                        {"password",
                         {{"type", "string"},
                          {"format", "password"},
                          {"minLength", AccountLimits::kPasswordMinBytes},
                          {"maxLength", AccountLimits::kPasswordMaxBytes},
                          {"description", "the bounds count bytes (UTF-8)"}}}}}};
  s["User"] = {{"type", "object"},
               {"required", {"id", "username", "role", "disabled", "created_at"}},
               {"properties",
                {{"id", {{"type", "integer"}, {"format", "int64"}}},
                 {"username", {{"type", "string"}}},
                 {"role", {{"type", "string"}, {"enum", {"user", "admin"}}}},
                 {"disabled", {{"type", "boolean"}}},
                 {"created_at", kDateTime}}}};
  s["UserList"] = {
      {"type", "object"},
      {"required", {"items", "next_cursor"}},
      {"properties",
       {{"items", {{"type", "array"}, {"items", schema_ref("User")}}},
        {"next_cursor",
         nullable("string",
                  {{"description", "pass as cursor for the next page; null at the end"}})}}}};
  s["UserChange"] = {
      {"type", "object"},
      {"description", "At least one of the two."},
      {"properties",
       {{"role", {{"type", "string"}, {"enum", {"user", "admin"}}}},
        {"disabled",
         {{"type", "boolean"}, {"description", "true also revokes every token of the user"}}}}}};
  s["PasswordChange"] = {{"type", "object"},
                         {"required", {"current_password", "new_password"}},
                         {"properties",
                          {{"current_password", {{"type", "string"}, {"format", "password"}}},
                           {"new_password",
                            {{"type", "string"},
                             {"format", "password"},
                             {"minLength", AccountLimits::kPasswordMinBytes},
                             {"maxLength", AccountLimits::kPasswordMaxBytes}}}}}};
  s["Token"] = {{"type", "object"},
                {"required", {"access_token", "token_type", "expires_in"}},
                {"properties",
                 {{"access_token", {{"type", "string"}}},
                  {"token_type", {{"type", "string"}, {"enum", {"Bearer"}}}},
                  {"expires_in", {{"type", "integer"}, {"description", "seconds"}}}}}};
  s["TaskInput"] = {{"type", "object"},
                    {"description", "Unknown fields are ignored."},
                    {"required", {"name", "url", "start_time", "end_time", "task_interval"}},
                    {"properties", task_input_properties()},
                    {"examples", json::array({{{"name", "amazingexpo"},
                                               {"url", "https://example.com/php-architecture/"},
                                               {"parameters", "{}"},
                                               {"start_time", "2023-01-04T21:41:38.930Z"},
                                               {"end_time", "2033-01-04T21:41:38.930Z"},
                                               {"task_interval", 2},
                                               {"max_execution_time", 0},
                                               {"max_attempt", 3}}})}};
  s["TaskUpdate"] = {{"type", "object"},
                     {"description", "Partial update: absent fields keep their values."},
                     {"properties", task_input_properties()}};
  const json nullable_time = nullable("string", {{"format", "date-time"}});
  const json last_status = {
      {"type", "string"},
      {"enum", {"pending", "queued", "running", "succeeded", "failed", "timed_out", "skipped"}},
      {"description", "\"pending\" before the first run"}};
  const json execution_time =
      nullable("number", {{"description", "seconds the last run took (ms precision)"}});
  s["Task"] = {{"type", "object"},
               {"required",
                {"id",
                 "owner_id",
                 "name",
                 "url",
                 "parameters",
                 "start_time",
                 "end_time",
                 "task_interval",
                 "max_execution_time",
                 "max_attempt",
                 "paused",
                 "suspended",
                 "consecutive_failures",
                 "next_run_at",
                 "last_execution_status",
                 "last_execute_time",
                 "execution_time",
                 "last_execution_error",
                 "last_job_id",
                 "created_at",
                 "updated_at"}},
               {"properties",
                {{"id", {{"type", "integer"}, {"format", "int64"}}},
                 {"owner_id", {{"type", "integer"}, {"format", "int64"}}},
                 {"name", {{"type", "string"}}},
                 {"url", {{"type", "string"}}},
                 {"parameters", {{"type", "object"}, {"description", "always an object"}}},
                 {"start_time", kDateTime},
                 {"end_time", kDateTime},
                 {"task_interval", {{"type", "integer"}}},
                 {"max_execution_time", {{"type", "integer"}}},
                 {"max_attempt", {{"type", "integer"}}},
                 {"paused", {{"type", "boolean"}}},
                 {"suspended", {{"type", "boolean"}}},
                 {"consecutive_failures", {{"type", "integer"}}},
                 {"next_run_at", nullable_time},
                 {"last_execution_status", last_status},
                 {"last_execute_time", nullable_time},
                 {"execution_time", execution_time},
                 {"last_execution_error", nullable("string")},
                 {"last_job_id", nullable("integer")},
                 {"created_at", kDateTime},
                 {"updated_at", kDateTime}}}};
  s["TaskList"] = {
      {"type", "object"},
      {"required", {"items", "next_cursor"}},
      {"properties",
       {{"items", {{"type", "array"}, {"items", schema_ref("Task")}}},
        {"next_cursor",
         nullable("string",
                  {{"description", "pass as cursor for the next page; null at the end"}})}}}};
  s["Status"] = {
      {"type", "object"},
      {"required",
       {"id", "execution_time", "last_execute_time", "last_execution_status",
        "last_execution_error", "last_execution_data", "consecutive_failures", "suspended",
        "next_run_at"}},
      {"additionalProperties", false},
      {"properties",
       {{"id", {{"type", "integer"}, {"format", "int64"}}},
        {"execution_time", execution_time},
        {"last_execute_time", nullable_time},
        {"last_execution_status", last_status},
        {"last_execution_error", nullable("string")},
        {"last_execution_data", {{"description", "the JSON of the last successful run, or null"}}},
        {"consecutive_failures", {{"type", "integer"}}},
        {"suspended", {{"type", "boolean"}}},
        {"next_run_at", nullable_time}}}};
  const json nullable_int = nullable("integer", {{"format", "int64"}});
  const json job_status = {
      {"type", "string"},
      {"enum", {"queued", "running", "succeeded", "failed", "timed_out", "skipped"}}};
  const json job_properties = {
      {"id", {{"type", "integer"}, {"format", "int64"}}},
      {"task_id", {{"type", "integer"}, {"format", "int64"}}},
      {"attempt",
       {{"type", "integer"},
        {"minimum", 1},
        {"description", "1, or the number of the retry after consecutive failures plus one"}}},
      {"scheduled_at", {{"type", "string"}, {"format", "date-time"}, {"description", "due time"}}},
      {"started_at", nullable_time},
      {"finished_at", nullable_time},
      {"duration_ms", nullable_int},
      {"execution_time", nullable("number", {{"description", "duration_ms in seconds"}})},
      {"status", job_status},
      {"http_status", nullable("integer")},
      {"error", nullable("string", {{"description", "why the run failed, precisely"}})},
      {"response_bytes", nullable_int},
      {"records",
       nullable("integer", {{"description", "items, when the document is an array of objects"}})},
      {"changed",
       nullable("boolean", {{"description",
                             "false when the payload equals one stored before (stored once)"}})},
      {"worker_id", nullable("string")},
      {"data_id", nullable_int}};
  json job_required = json::array();
  for (const auto& [key, value] : job_properties.items()) job_required.push_back(key);
  s["Job"] = {{"type", "object"},
              {"description", "One run of a task."},
              {"required", job_required},
              {"properties", job_properties}};
  json with_data_properties = job_properties;
  with_data_properties["data"] = {
      {"description", "the JSON document the run brought back; null unless it succeeded"}};
  json with_data_required = job_required;
  with_data_required.push_back("data");
  s["JobWithData"] = {{"type", "object"},
                      {"description", "A job with its document."},
                      {"required", with_data_required},
                      {"properties", with_data_properties}};
  s["JobList"] = {
      {"type", "object"},
      {"required", {"items", "next_cursor"}},
      {"properties",
       {{"items", {{"type", "array"}, {"items", schema_ref("Job")}}},
        {"next_cursor",
         nullable("string", {{"description",
                              "pass as cursor for the next (older) page; null at the end"}})}}}};
  s["LatestData"] = {
      {"type", "object"},
      {"description", "The document of the task's last successful run."},
      {"required",
       {"task_id", "job_id", "data_id", "content_hash", "created_at", "bytes", "records", "data"}},
      {"properties",
       {{"task_id", {{"type", "integer"}, {"format", "int64"}}},
        {"job_id",
         nullable("integer", {{"format", "int64"},
                              {"description", "the run that fetched it; null once pruned"}})},
        {"data_id", {{"type", "integer"}, {"format", "int64"}}},
        {"content_hash", {{"type", "string"}, {"description", "hex SHA-256 of the document"}}},
        {"created_at",
         {{"type", "string"},
          {"format", "date-time"},
          {"description",
           "when this content was first stored (identical payloads are stored once)"}}},
        {"bytes", {{"type", "integer"}}},
        {"records",
         nullable("integer", {{"description", "items, when the document is an array of objects"}})},
        {"data", {{"description", "the JSON document, as fetched"}}}}}};
  s["RunAccepted"] = {{"type", "object"},
                      {"required", {"task_id", "status", "scheduled_at"}},
                      {"properties",
                       {{"task_id", {{"type", "integer"}, {"format", "int64"}}},
                        {"status", {{"type", "string"}, {"enum", {"queued"}}}},
                        {"scheduled_at", {{"type", "string"}, {"format", "date-time"}}}}}};
  s["Health"] = {{"type", "object"},
                 {"required", {"status"}},
                 {"properties", {{"status", {{"type", "string"}, {"enum", {"ok", "ready"}}}}}}};
  return s;
}

json problem_response(std::string_view description) {
  return {{"description", description},
          {"content", {{"application/problem+json", {{"schema", schema_ref("Problem")}}}}}};
}

json responses() {
  json r;
  r["BadRequest"] = problem_response("Malformed JSON, or a body that is not a JSON object.");
  r["Unauthorized"] = problem_response("Missing, invalid, expired or revoked bearer token.");
  r["Unauthorized"]["headers"] = {
      {"WWW-Authenticate", {{"schema", {{"type", "string"}, {"const", "Bearer"}}}}}};
  r["Forbidden"] = problem_response("Not allowed.");
  r["NotFound"] = problem_response("Absent, or another user's task (or job).");
  r["Conflict"] = problem_response("The username is taken, or the change is not allowed now.");
  r["Throttled"] = problem_response("Too many attempts or over a quota; see Retry-After.");
  r["TooLarge"] = problem_response("The body is over the server's limit (http.max_body_bytes).");
  r["Unprocessable"] = problem_response("Invalid values; `errors` lists each bad field.");
  r["Unavailable"] = problem_response("The store is unreachable; retry later.");
  r["RunInProgress"] = problem_response("A run of this task is in progress.");
  return r;
}

// An operation; `secured`: needs a bearer token. Every operation may answer 503 (store down)
// except the ones that touch nothing; those pass `store = false`.
json operation(const std::string& id, std::string_view tag, std::string_view summary, json success,
               bool secured, bool store = true) {
  json op = {{"operationId", id}, {"tags", {tag}}, {"summary", summary}, {"responses", success}};
  if (secured) {
    op["security"] = json::array({{{"bearerAuth", json::array()}}});
    op["responses"]["401"] = response_ref("Unauthorized");
  }
  if (store) op["responses"]["503"] = response_ref("Unavailable");
  return op;
}

void with_body(json& op, std::string_view schema) {
  op["requestBody"] = {{"required", true}, {"content", json_content(schema_ref(schema))}};
  op["responses"]["400"] = response_ref("BadRequest");
  op["responses"]["413"] = response_ref("TooLarge");
  op["responses"]["422"] = response_ref("Unprocessable");
}

json paths(const std::vector<StaticAsset>& assets) {
  json p;
  p["/healthz"]["get"] = operation("healthz", "system", "Liveness: the process answers",
                                   {{"200", json_response("Up", "Health")}}, false, false);
  p["/readyz"]["get"] =
      operation("readyz", "system", "Readiness: the store and the broker answer too",
                {{"200", json_response("Ready", "Health")}}, false);
  p["/openapi.json"]["get"] = operation(
      "openapi", "docs", "This document",
      {{"200", {{"description", "OpenAPI 3.1"}, {"content", json_content({{"type", "object"}})}}}},
      false, false);
  p["/metrics"]["get"] = operation(
      "metrics", "system", "Prometheus metrics (text exposition format 0.0.4)",
      {{"200",
        {{"description", "runs, durations, schedule lag, skipped runs, HTTP requests, gauges"},
         {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}}}},
      false, false);
  p["/swagger-ui"]["get"] = operation(
      "swaggerUi", "docs", "Swagger UI for this document",
      {{"200", {{"description", "HTML page"}, {"content", {{"text/html", json::object()}}}}}},
      false, false);
  // Each asset is a route of its own (a fixed set, known at build time), so every documented
  // path answers 200.
  for (const auto& asset : assets) {
    const std::string media_type = asset.content_type.substr(0, asset.content_type.find(';'));
    // "swagger-ui-bundle.js" -> "swaggerUiAsset_swagger_ui_bundle_js": a code generator's name.
    std::string id = "swaggerUiAsset_" + asset.path.substr(asset.path.rfind('/') + 1);
    for (auto& c : id)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    p[asset.path]["get"] = operation(
        id, "docs", "A Swagger UI asset (cached for a day)",
        {{"200", {{"description", "the file"}, {"content", {{media_type, json::object()}}}}}},
        false, false);
  }

  auto reg = operation("register", "accounts", "Create an account",
                       {{"201", json_response("The new user", "User")},
                        {"403", response_ref("Forbidden")},
                        {"409", response_ref("Conflict")}},
                       false);
  reg["description"] = "403 when the server's auth.open_registration is false.";
  with_body(reg, "Credentials");
  p["/register"]["post"] = reg;

  auto login = operation("login", "accounts", "Get a bearer token",
                         {{"200", json_response("A token", "Token")},
                          {"401", response_ref("Unauthorized")},
                          {"429", response_ref("Throttled")}},
                         false);
  login["description"] =
      "401 \"invalid username or password\", whether or not the user exists. 429 with "
      "Retry-After after auth.login_max_failures failures within auth.login_window for the "
      "username or from the client address.";
  with_body(login, "Credentials");
  p["/login"]["post"] = login;

  p["/logout"]["post"] = operation("logout", "accounts", "Revoke the presented token",
                                   {{"204", {{"description", "Revoked"}}}}, true);
  p["/me"]["get"] = operation("me", "accounts", "The caller's account",
                              {{"200", json_response("The user", "User")}}, true);
  auto password = operation("changePassword", "accounts",
                            "Change the caller's password; revokes their other tokens",
                            {{"204", {{"description", "Changed"}}}}, true);
  with_body(password, "PasswordChange");
  p["/password"]["post"] = password;

  const json forbidden = response_ref("Forbidden");
  auto users = operation("listUsers", "users", "Every account, by id (admin only)",
                         {{"200", json_response("A page", "UserList")},
                          {"403", forbidden},
                          {"422", response_ref("Unprocessable")}},
                         true);
  users["parameters"] = page_parameters();
  p["/users"]["get"] = users;
  const json user_id = {{"name", "user_id"},
                        {"in", "path"},
                        {"required", true},
                        {"description", "Id of a user (a positive integer)."},
                        {"schema", {{"type", "integer"}, {"format", "int64"}, {"minimum", 1}}}};
  p["/users/{user_id}"]["parameters"] = json::array({user_id});
  auto patch_user =
      operation("updateUser", "users", "Change a user's role or disable them (admin only)",
                {{"200", json_response("The user", "User")},
                 {"403", forbidden},
                 {"404", response_ref("NotFound")},
                 {"409", response_ref("Conflict")}},
                true);
  patch_user["description"] = "409 when an admin would demote or disable themselves.";
  with_body(patch_user, "UserChange");
  p["/users/{user_id}"]["patch"] = patch_user;
  auto delete_user =
      operation("deleteUser", "users", "Delete a user with their tasks, jobs and data (admin only)",
                {{"204", {{"description", "Deleted"}}},
                 {"403", forbidden},
                 {"404", response_ref("NotFound")},
                 {"409", response_ref("Conflict")}},
                true);
  delete_user["description"] = "409 when an admin would delete themselves.";
  p["/users/{user_id}"]["delete"] = delete_user;

  auto create = operation(
      "createTask", "tasks", "Create a task",
      {{"201",
        {{"description", "The new task"},
         {"headers",
          {{"Location", {{"description", "/tasks/{id}"}, {"schema", {{"type", "string"}}}}}}},
         {"content", json_content(schema_ref("Task"))}}}},
      true);
  with_body(create, "TaskInput");
  create["responses"]["429"] = response_ref("Throttled");
  create["description"] =
      "422 also for a URL at a literal private address (unless fetch.allow_private or "
      "fetch.allow_cidrs allows it), an interval under limits.min_interval or parameters over "
      "limits.max_parameters_bytes; 429 when the caller owns limits.max_tasks_per_user tasks.";
  p["/tasks"]["post"] = create;

  auto list = operation("listTasks", "tasks",
                        "The caller's tasks (all=true: every user's, admin only), by id",
                        {{"200", json_response("A page", "TaskList")},
                         {"403", response_ref("Forbidden")},
                         {"422", response_ref("Unprocessable")}},
                        true);
  list["parameters"] = page_parameters();
  list["parameters"].push_back({{"name", "all"},
                                {"in", "query"},
                                {"description", "every user's tasks (admin only; 403 otherwise)"},
                                {"schema", {{"type", "boolean"}, {"default", false}}}});
  p["/tasks"]["get"] = list;

  const json not_found = response_ref("NotFound");
  p["/tasks/{task_id}"]["parameters"] = json::array({task_id_parameter()});
  p["/tasks/{task_id}"]["get"] =
      operation("getTask", "tasks", "A task",
                {{"200", json_response("The task", "Task")}, {"404", not_found}}, true);
  auto patch =
      operation("updateTask", "tasks", "Change some fields of a task (same rules as create)",
                {{"200", json_response("The updated task", "Task")}, {"404", not_found}}, true);
  with_body(patch, "TaskUpdate");
  p["/tasks/{task_id}"]["patch"] = patch;
  p["/tasks/{task_id}"]["delete"] =
      operation("deleteTask", "tasks", "Delete a task with its jobs and data",
                {{"204", {{"description", "Deleted"}}}, {"404", not_found}}, true);

  p["/tasks/{task_id}/status"]["parameters"] = json::array({task_id_parameter()});
  p["/tasks/{task_id}/status"]["get"] =
      operation("getTaskStatus", "tasks", "What happened last time, and what it brought",
                {{"200", json_response("The status", "Status")}, {"404", not_found}}, true);

  p["/tasks/{task_id}/reset-attempt"]["parameters"] = json::array({task_id_parameter()});
  auto reset =
      operation("resetTaskAttempts", "tasks", "Set consecutive_failures to 0, lifting a suspension",
                {{"200", json_response("The task", "Task")}, {"404", not_found}}, true);
  reset["description"] =
      "Also schedules the task right away: next_run_at becomes now, unless the task is paused "
      "or outside its window.";
  p["/tasks/{task_id}/reset-attempt"]["post"] = reset;

  p["/tasks/{task_id}/run"]["parameters"] = json::array({task_id_parameter()});
  auto run = operation("runTask", "tasks", "Run the task now, outside its schedule",
                       {{"202", json_response("Queued", "RunAccepted")},
                        {"404", not_found},
                        {"409", response_ref("RunInProgress")}},
                       true);
  run["description"] =
      "Queues one run now, even when the task is paused, suspended or outside its window; its "
      "schedule does not move. 409 while a run of the task is in flight; 503 when no scheduler "
      "runs in this process.";
  p["/tasks/{task_id}/run"]["post"] = run;

  p["/tasks/{task_id}/pause"]["parameters"] = json::array({task_id_parameter()});
  auto pause = operation("pauseTask", "tasks", "Stop scheduling the task",
                         {{"200", json_response("The task", "Task")}, {"404", not_found}}, true);
  pause["description"] = "next_run_at becomes null; a run in flight finishes. Idempotent.";
  p["/tasks/{task_id}/pause"]["post"] = pause;

  p["/tasks/{task_id}/resume"]["parameters"] = json::array({task_id_parameter()});
  auto resume = operation("resumeTask", "tasks", "Schedule a paused task again",
                          {{"200", json_response("The task", "Task")}, {"404", not_found}}, true);
  resume["description"] =
      "next_run_at becomes the first due time from now (null when suspended or the window is "
      "over). Idempotent.";
  p["/tasks/{task_id}/resume"]["post"] = resume;

  p["/tasks/{task_id}/jobs"]["parameters"] = json::array({task_id_parameter()});
  auto jobs = operation("listTaskJobs", "jobs", "The task's runs, newest first",
                        {{"200", json_response("A page", "JobList")},
                         {"404", not_found},
                         {"422", response_ref("Unprocessable")}},
                        true);
  jobs["parameters"] = page_parameters();
  jobs["parameters"].push_back(
      {{"name", "status"},
       {"in", "query"},
       {"description", "only the jobs with this status"},
       {"schema",
        {{"type", "string"},
         {"enum", {"queued", "running", "succeeded", "failed", "timed_out", "skipped"}}}}});
  p["/tasks/{task_id}/jobs"]["get"] = jobs;

  p["/jobs/{job_id}"]["parameters"] = json::array({job_id_parameter()});
  p["/jobs/{job_id}"]["get"] =
      operation("getJob", "jobs", "A job, with the document it brought back",
                {{"200", json_response("The job", "JobWithData")}, {"404", not_found}}, true);

  p["/tasks/{task_id}/data/latest"]["parameters"] = json::array({task_id_parameter()});
  auto latest = operation("getLatestData", "jobs", "The document of the last successful run",
                          {{"200", json_response("The document", "LatestData")},
                           {"404", problem_response("Absent, another user's task, or no "
                                                    "successful run yet.")}},
                          true);
  p["/tasks/{task_id}/data/latest"]["get"] = latest;
  return p;
}

}  // namespace

nlohmann::json openapi_document(const std::vector<StaticAsset>& assets) {
  return {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "fetchd"},
        {"version", FETCHD_VERSION},
        {"description",
         "Runs HTTP fetch tasks on schedules and keeps what each run brought back. Log in "
         "(POST /login), then use Authorize with the access_token."}}},
      {"tags", json::array({{{"name", "accounts"}},
                            {{"name", "tasks"}},
                            {{"name", "jobs"}},
                            {{"name", "system"}},
                            {{"name", "docs"}}})},
      {"paths", paths(assets)},
      {"components",
       {{"schemas", schemas()},
        {"responses", responses()},
        {"securitySchemes", {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}}}}}}},
  };
}

}  // namespace fetchd::api
