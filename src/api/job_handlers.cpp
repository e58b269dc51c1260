// A task's runs and what they brought back: GET /tasks/{task_id}/jobs (newest first,
// keyset-paginated, filtered by status), GET /jobs/{job_id} (with its document) and
// GET /tasks/{task_id}/data/latest. Visibility is the task's: another user's job is 404.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/query.hpp"
#include "api/representation.hpp"
#include "api/routes.hpp"

namespace fetchd::api {

namespace {

constexpr std::string_view kStatusChoices =
    "queued, running, succeeded, failed, timed_out or skipped";

Result<JobQuery> read_job_query(const Request& request, TaskId task_id) {
  const auto params = parse_query(request.query);
  std::vector<FieldError> fields;
  JobQuery query;
  query.task_id = task_id;
  query.limit = read_page_limit(params, fields);
  query.before = read_cursor(params, fields);
  // Blank, like an empty cursor, is no filter: forms send "status=" for an unset field.
  if (const auto status = query_value(params, "status"); status && !status->empty()) {
    query.status = job_status_from_string(*status);
    if (!query.status)
      fields.push_back({"status", "must be one of " + std::string(kStatusChoices)});
  }
  if (!fields.empty())
    return tl::unexpected(invalid("invalid query parameters", std::move(fields)));
  return query;
}

// The document of a data row; nullopt when the row is gone.
Result<std::optional<std::string>> document_of(const HandlerContext& context, DataId id) {
  auto data = context.store().get_data(id);
  if (data) return std::optional<std::string>(std::move(data->body));
  if (data.error().code == ErrorCode::kNotFound) return std::optional<std::string>();
  return tl::unexpected(data.error());
}

// The job that fetched the task's latest data: the latest run when it succeeded (the same
// transaction set both), else the newest successful job, if it is still kept and points there.
Result<std::optional<JobId>> job_of_latest_data(const HandlerContext& context, const Task& task) {
  if (task.last.status == to_string(JobStatus::kSucceeded) && task.last.job_id)
    return task.last.job_id;
  auto page = context.store().list_jobs(
      JobQuery{.task_id = task.id, .status = JobStatus::kSucceeded, .before = {}, .limit = 1});
  if (!page) return tl::unexpected(page.error());
  if (!page->items.empty() && page->items.front().data_id == task.last.data_id)
    return std::optional<JobId>(page->items.front().id);
  return std::optional<JobId>();
}

}  // namespace

void add_job_routes(Router& router, const HandlerContext& context) {
  router.add(
      "GET", "/tasks/{task_id}/jobs",
      context.with_user([&context](const Request& request, const RouteParams& params,
                                   const User& user) {
        auto task = context.visible_task(params.get("task_id"), user);
        if (!task) return context.error(request, task.error());
        auto query = read_job_query(request, task->id);
        if (!query) return context.error(request, query.error());
        auto page = context.store().list_jobs(*query);
        if (!page) return context.error(request, page.error());
        nlohmann::json items = nlohmann::json::array();
        for (const auto& job : page->items) items.push_back(job_to_json(job));
        nlohmann::json next = nullptr;
        if (page->next_after) next = encode_cursor(*page->next_after);
        return json_response(200, {{"items", std::move(items)}, {"next_cursor", std::move(next)}});
      }));

  router.add("GET", "/jobs/{job_id}",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   // One answer for "absent", "not an id" and "another user's".
                   const auto not_found = [&] {
                     return context.error(request, ErrorCode::kNotFound, "job not found");
                   };
                   const auto id = parse_positive_id(params.get("job_id"));
                   if (!id) return not_found();
                   auto job = context.store().get_job(*id);
                   if (!job) {
                     if (job.error().code == ErrorCode::kNotFound) return not_found();
                     return context.error(request, job.error());
                   }
                   auto task = context.visible_task(job->task_id, user);
                   if (!task) {
                     if (task.error().code == ErrorCode::kNotFound) return not_found();
                     return context.error(request, task.error());
                   }
                   std::optional<std::string> document;
                   if (job->data_id) {
                     auto found = document_of(context, *job->data_id);
                     if (!found) return context.error(request, found.error());
                     document = std::move(*found);
                   }
                   auto body = with_document(job_to_json(*job), "data", document);
                   if (!body) return context.error(request, body.error());
                   return json_text_response(200, std::move(*body));
                 }));

  router.add("GET", "/tasks/{task_id}/data/latest",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   auto task = context.visible_task(params.get("task_id"), user);
                   if (!task) return context.error(request, task.error());
                   const auto none = [&] {
                     return context.error(request, ErrorCode::kNotFound, "no successful run yet");
                   };
                   if (!task->last.data_id) return none();
                   auto data = context.store().get_data(*task->last.data_id);
                   if (!data) {
                     if (data.error().code == ErrorCode::kNotFound) return none();
                     return context.error(request, data.error());
                   }
                   auto job_id = job_of_latest_data(context, *task);
                   if (!job_id) return context.error(request, job_id.error());
                   nlohmann::json summary = latest_data_to_json(*data, *job_id);
                   auto body = with_document(std::move(summary), "data",
                                             std::optional<std::string>(std::move(data->body)));
                   if (!body) return context.error(request, body.error());
                   return json_text_response(200, std::move(*body));
                 }));
}

}  // namespace fetchd::api
