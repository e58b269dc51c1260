// The task resource: create, list (keyset-paginated), read, update, delete, status,
// reset-attempt, run now, pause and resume. A plain user sees only their own tasks (another's
// is 404, as if absent); an admin sees every task. Parsing and value rules are core's
// (task_spec_from_json, validate_task_spec), when a task runs next is core's schedule
// (next_run_from): every change persists the task's next_run_at, then is reported to the
// TaskChangeListener.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include <cctype>
#include "api/query.hpp"
#include "api/representation.hpp"
#include "api/routes.hpp"
#include "core/schedule.hpp"

namespace fetchd::api {

namespace {

Result<Task> visible_task(const HandlerContext& context, const RouteParams& params,
                          const User& user) {
  return context.visible_task(params.get("task_id"), user);
}

// The deepest nesting of arrays and objects in a JSON text (strings skipped), by a scan that
// never recurses.
int json_nesting_depth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// The host of an http(s) URL as written ("[::1]" unbracketed), or empty.
std::string url_host(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    return close == std::string_view::npos ? std::string() : std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

// The ApiPolicy's checks of a valid spec: field errors naming the option that sets each limit.
std::vector<FieldError> policy_violations(const ApiPolicy& policy, const TaskSpec& spec) {
  std::vector<FieldError> fields;
  if (!policy.allow_private) {
    std::string host = url_host(spec.url);
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // IP literals are judged now; a name is judged on the addresses it resolves to, when the
    // run connects (they may change).
    const bool literal_private = is_private_literal(host);
    const bool allowed = std::any_of(policy.allowed.begin(), policy.allowed.end(),
                                     [&](const IpRange& range) { return range.contains(host); });
    if (literal_private && !allowed) {
      fields.push_back({"url",
                        "points at a loopback, private or link-local address, which tasks may "
                        "not fetch (fetch.allow_private or fetch.allow_cidrs allows it)"});
    }
  }
  if (spec.task_interval < policy.min_interval_s) {
    fields.push_back({"task_interval", "must be at least " + std::to_string(policy.min_interval_s) +
                                           " s (limits.min_interval)"});
  }
  if (policy.max_parameters_bytes > 0) {
    const std::size_t size = spec.parameters.dump().size();
    if (size > policy.max_parameters_bytes) {
      fields.push_back({"parameters", "is " + std::to_string(size) + " bytes as JSON; at most " +
                                          std::to_string(policy.max_parameters_bytes) +
                                          " (limits.max_parameters_bytes)"});
    }
  }
  return fields;
}

// The spec a body describes, parsed and validated; `base` for a partial update.
Result<TaskSpec> read_spec(const HandlerContext& context, const Request& request,
                           const TaskSpec* base) {
  auto body = HandlerContext::json_body(request);
  if (!body) return tl::unexpected(body.error());
  // `parameters` sent as a string escapes json_body's depth limit; serialising it again
  // would recurse as deep as it nests.
  if (const auto it = body->find("parameters");
      it != body->end() && it->is_string() &&
      json_nesting_depth(it->get_ref<const std::string&>()) > kMaxJsonDepth) {
    return tl::unexpected(invalid(
        "invalid task", {{"parameters", "nests deeper than " + std::to_string(kMaxJsonDepth) +
                                            " levels of arrays and objects"}}));
  }
  auto spec = task_spec_from_json(*body, base);
  if (!spec) return spec;
  auto fields = validate_task_spec(*spec);
  if (fields.empty()) fields = policy_violations(context.policy(), *spec);
  if (!fields.empty()) return tl::unexpected(invalid("invalid task", std::move(fields)));
  return spec;
}

struct ListOptions {
  TaskQuery query;
  bool all = false;
};

Result<ListOptions> read_list_options(const Request& request) {
  const auto params = parse_query(request.query);
  std::vector<FieldError> fields;
  ListOptions out;
  out.query.limit = read_page_limit(params, fields);
  out.query.after = read_cursor(params, fields);
  if (const auto all = query_value(params, "all")) {
    if (*all == "true" || *all == "1") {
      out.all = true;
    } else if (*all != "false" && *all != "0" && !all->empty()) {
      fields.push_back({"all", "must be true or false"});
    }
  }
  if (!fields.empty())
    return tl::unexpected(invalid("invalid query parameters", std::move(fields)));
  return out;
}

void notify_changed(const HandlerContext& context, TaskId id) {
  if (auto* listener = context.listener()) listener->task_changed(id);
}

// Persists when `task` (just changed) runs next, and tells the scheduler. The change itself is
// committed already, so the scheduler hears of it even when next_run_at could not be stored.
Result<Task> reschedule(const HandlerContext& context, Task task,
                        std::optional<TimePoint> next_run_at) {
  auto stored = context.store().set_next_run(task.id, next_run_at);
  notify_changed(context, task.id);
  if (!stored) return tl::unexpected(stored.error());
  task.next_run_at = next_run_at;
  return task;
}

// Reset-attempt "schedules it right away": a run now, unless the task may not run now
// (paused, or outside its window), which next_run_from then answers for.
std::optional<TimePoint> next_run_after_reset(const Task& task, TimePoint now) {
  if (!task.paused && task.active_at(now)) return now;
  return next_run_from(task, now);
}

Response task_response(const HandlerContext& context, const Request& request,
                       const Result<Task>& task) {
  if (!task) return context.error(request, task.error());
  return json_response(200, task_to_json(*task));
}

}  // namespace

void add_task_routes(Router& router, const HandlerContext& context) {
  router.add(
      "POST", "/tasks",
      context.with_user([&context](const Request& request, const RouteParams&, const User& user) {
        auto spec = read_spec(context, request, nullptr);
        if (!spec) return context.error(request, spec.error());
        if (const auto most = context.policy().max_tasks_per_user; most > 0) {
          auto owned = context.store().count_tasks(user.id);
          if (!owned) return context.error(request, owned.error());
          if (*owned >= most) {
            return context.error(request, ErrorCode::kThrottled,
                                 "you have " + std::to_string(*owned) +
                                     " tasks, the most allowed (limits.max_tasks_per_user); "
                                     "delete some first");
          }
        }
        const TimePoint now = context.now();
        auto task = context.store().create_task(user.id, *spec, now);
        if (!task) return context.error(request, task.error());
        auto scheduled = reschedule(context, *task, next_run_from(*task, now));
        if (scheduled) {
          task = std::move(scheduled);
        } else {
          // The task exists: an error would have the client create it a second time. The
          // scheduler computes the next run from the task itself when next_run_at is absent.
          context.log().error("request {}: task {} created, but storing its next run failed: {} {}",
                              request.request_id, task->id, scheduled.error().message,
                              scheduled.error().internal);
        }
        Response response = json_response(201, task_to_json(*task));
        response.headers.emplace_back("Location", "/tasks/" + std::to_string(task->id));
        return response;
      }));

  router.add(
      "GET", "/tasks",
      context.with_user([&context](const Request& request, const RouteParams&, const User& user) {
        auto options = read_list_options(request);
        if (!options) return context.error(request, options.error());
        if (options->all && !user.is_admin())
          return context.error(request, ErrorCode::kForbidden,
                               "only an admin may list every user's tasks (all=true)");
        if (!options->all) options->query.owner = user.id;
        auto page = context.store().list_tasks(options->query);
        if (!page) return context.error(request, page.error());
        nlohmann::json items = nlohmann::json::array();
        for (const auto& task : page->items) items.push_back(task_to_json(task));
        nlohmann::json next = nullptr;
        if (page->next_after) next = encode_cursor(*page->next_after);
        return json_response(200, {{"items", std::move(items)}, {"next_cursor", std::move(next)}});
      }));

  router.add("GET", "/tasks/{task_id}",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   return task_response(context, request, visible_task(context, params, user));
                 }));

  router.add("PATCH", "/tasks/{task_id}",
             context.with_user([&context](const Request& request, const RouteParams& params,
                                          const User& user) {
               auto task = visible_task(context, params, user);
               if (!task) return context.error(request, task.error());
               auto spec = read_spec(context, request, &task->spec);
               if (!spec) return context.error(request, spec.error());
               const TimePoint now = context.now();
               auto updated = context.store().update_task(task->id, *spec, now);
               if (!updated) return context.error(request, updated.error());
               return task_response(context, request,
                                    reschedule(context, *updated, next_run_from(*updated, now)));
             }));

  router.add("DELETE", "/tasks/{task_id}",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   auto task = visible_task(context, params, user);
                   if (!task) return context.error(request, task.error());
                   if (auto done = context.store().delete_task(task->id); !done)
                     return context.error(request, done.error());
                   if (auto* listener = context.listener()) listener->task_deleted(task->id);
                   return no_content();
                 }));

  router.add("GET", "/tasks/{task_id}/status",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   auto task = visible_task(context, params, user);
                   if (!task) return context.error(request, task.error());
                   std::optional<std::string> document;
                   if (task->last.data_id) {
                     auto data = context.store().get_data(*task->last.data_id);
                     if (data) {
                       document = std::move(data->body);
                     } else if (data.error().code != ErrorCode::kNotFound) {
                       return context.error(request, data.error());
                     }
                   }
                   auto body =
                       with_document(task_status_to_json(*task), "last_execution_data", document);
                   if (!body) return context.error(request, body.error());
                   return json_text_response(200, std::move(*body));
                 }));

  router.add("POST", "/tasks/{task_id}/reset-attempt",
             context.with_user([&context](const Request& request, const RouteParams& params,
                                          const User& user) {
               auto task = visible_task(context, params, user);
               if (!task) return context.error(request, task.error());
               const TimePoint now = context.now();
               auto reset = context.store().reset_attempts(task->id, now);
               if (!reset) return context.error(request, reset.error());
               return task_response(context, request,
                                    reschedule(context, *reset, next_run_after_reset(*reset, now)));
             }));

  router.add("POST", "/tasks/{task_id}/run",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   auto task = visible_task(context, params, user);
                   if (!task) return context.error(request, task.error());
                   auto* listener = context.listener();
                   if (listener == nullptr)
                     return context.error(request, ErrorCode::kUnavailable,
                                          "no scheduler runs in this process to take the run");
                   auto queued = listener->request_run(task->id);
                   if (!queued) {
                     if (queued.error().code == ErrorCode::kConflict)
                       return context.error(request, ErrorCode::kConflict,
                                            "a run of this task is in progress");
                     return context.error(request, queued.error());
                   }
                   return json_response(202, run_accepted_to_json(task->id, *queued));
                 }));

  router.add("POST", "/tasks/{task_id}/pause",
             context.with_user([&context](const Request& request, const RouteParams& params,
                                          const User& user) {
               auto task = visible_task(context, params, user);
               if (!task) return context.error(request, task.error());
               // Already paused with nothing planned: nothing to change.
               if (task->paused && !task->next_run_at)
                 return json_response(200, task_to_json(*task));
               auto paused = context.store().set_paused(task->id, true, context.now());
               if (!paused) return context.error(request, paused.error());
               return task_response(context, request, reschedule(context, *paused, std::nullopt));
             }));

  router.add("POST", "/tasks/{task_id}/resume",
             context.with_user([&context](const Request& request, const RouteParams& params,
                                          const User& user) {
               auto task = visible_task(context, params, user);
               if (!task) return context.error(request, task.error());
               // Not paused and a run planned (perhaps a retry): keep that plan.
               if (!task->paused && task->next_run_at)
                 return json_response(200, task_to_json(*task));
               const TimePoint now = context.now();
               auto resumed = context.store().set_paused(task->id, false, now);
               if (!resumed) return context.error(request, resumed.error());
               return task_response(context, request,
                                    reschedule(context, *resumed, next_run_from(*resumed, now)));
             }));
}

}  // namespace fetchd::api
