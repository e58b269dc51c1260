// The task resource: create, list (keyset-paginated), read, update, delete, status and
// reset-attempt. A plain user sees only their own tasks (another's is 404, as if absent); an
// admin sees every task. Parsing and value rules are core's (task_spec_from_json,
// validate_task_spec); every committed change is reported to the TaskChangeListener.
#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "api/openapi.hpp"
#include "api/query.hpp"
#include "api/representation.hpp"
#include "api/routes.hpp"

namespace fetchd::api {

namespace {

Error invalid(std::string message, std::vector<FieldError> fields) {
  Error error = Error::make(ErrorCode::kInvalid, std::move(message));
  error.fields = std::move(fields);
  return error;
}

// The task of `{task_id}` if the user may see it; kNotFound otherwise, with one message for
// "absent", "not a valid id" and "someone else's", so that ids of others leak nothing.
Result<Task> visible_task(const HandlerContext& context, const RouteParams& params,
                          const User& user) {
  const auto not_found = [] { return fail(ErrorCode::kNotFound, "task not found"); };
  const auto id = parse_positive_id(params.get("task_id"));
  if (!id) return not_found();
  auto task = context.store().get_task(*id);
  if (!task) {
    if (task.error().code == ErrorCode::kNotFound) return not_found();
    return task;
  }
  if (!user.is_admin() && task->owner_id != user.id) return not_found();
  return task;
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

// The spec a body describes, parsed and validated; `base` for a partial update.
Result<TaskSpec> read_spec(const Request& request, const TaskSpec* base) {
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
  if (auto fields = validate_task_spec(*spec); !fields.empty())
    return tl::unexpected(invalid("invalid task", std::move(fields)));
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
  out.query.limit = PageLimits::kDefault;
  if (const auto limit = query_value(params, "limit")) {
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (limit->empty() || ec != std::errc() || end != limit->data() + limit->size() || value < 1 ||
        value > PageLimits::kMax) {
      fields.push_back(
          {"limit", "must be an integer from 1 to " + std::to_string(PageLimits::kMax)});
    } else {
      out.query.limit = value;
    }
  }
  // An empty cursor is the first page, as if absent: forms send "cursor=" for a blank field.
  if (const auto cursor = query_value(params, "cursor"); cursor && !cursor->empty()) {
    if (const auto after = decode_cursor(*cursor)) {
      out.query.after = *after;
    } else {
      fields.push_back({"cursor", "is not a cursor this server returned in next_cursor"});
    }
  }
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

}  // namespace

void add_task_routes(Router& router, const HandlerContext& context) {
  router.add(
      "POST", "/tasks",
      context.with_user([&context](const Request& request, const RouteParams&, const User& user) {
        auto spec = read_spec(request, nullptr);
        if (!spec) return context.error(request, spec.error());
        auto task = context.store().create_task(user.id, *spec, context.now());
        if (!task) return context.error(request, task.error());
        notify_changed(context, task->id);
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
                   auto task = visible_task(context, params, user);
                   if (!task) return context.error(request, task.error());
                   return json_response(200, task_to_json(*task));
                 }));

  router.add("PATCH", "/tasks/{task_id}",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   auto task = visible_task(context, params, user);
                   if (!task) return context.error(request, task.error());
                   auto spec = read_spec(request, &task->spec);
                   if (!spec) return context.error(request, spec.error());
                   auto updated = context.store().update_task(task->id, *spec, context.now());
                   if (!updated) return context.error(request, updated.error());
                   notify_changed(context, updated->id);
                   return json_response(200, task_to_json(*updated));
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
                   // The Store has no reader for run data until part 2 records runs; until then
                   // there is never a last successful run, hence null.
                   return json_response(200, task_status_to_json(*task, std::nullopt));
                 }));

  router.add("POST", "/tasks/{task_id}/reset-attempt",
             context.with_user(
                 [&context](const Request& request, const RouteParams& params, const User& user) {
                   auto task = visible_task(context, params, user);
                   if (!task) return context.error(request, task.error());
                   auto reset = context.store().reset_attempts(task->id, context.now());
                   if (!reset) return context.error(request, reset.error());
                   notify_changed(context, reset->id);
                   return json_response(200, task_to_json(*reset));
                 }));
}

}  // namespace fetchd::api
