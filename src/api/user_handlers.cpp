// Accounts beyond one's own: POST /password (change it, revoking one's other tokens) and the
// admin's GET /users, PATCH /users/{user_id} (role, disabled) and DELETE /users/{user_id}
// (with their tasks). A plain user is 403 on the admin routes; an admin may not demote,
// disable or delete themselves, so that an installation never locks its last admin out.
#include <string>
#include <vector>

#include "api/query.hpp"
#include "api/representation.hpp"
#include "api/routes.hpp"

namespace fetchd::api {

namespace {

Result<UserId> user_id_of(const RouteParams& params) {
  auto id = parse_positive_id(params.get("user_id"));
  if (!id) return fail(ErrorCode::kNotFound, "no such user");
  return *id;
}

// The admin routes' gate: the handler runs for admins only.
HandlerContext::UserHandler admin_only(const HandlerContext& context,
                                       HandlerContext::UserHandler handler) {
  return [&context, handler = std::move(handler)](const Request& request, const RouteParams& params,
                                                  const User& user) {
    if (!user.is_admin()) {
      return context.error(request, ErrorCode::kForbidden, "only an admin may manage users");
    }
    return handler(request, params, user);
  };
}

struct UserChange {
  std::optional<Role> role;
  std::optional<bool> disabled;
};

Result<UserChange> read_user_change(const Request& request) {
  auto body = HandlerContext::json_body(request);
  if (!body) return tl::unexpected(body.error());
  UserChange change;
  std::vector<FieldError> fields;
  if (const auto it = body->find("role"); it != body->end()) {
    if (it->is_string()) change.role = role_from_string(it->get<std::string>());
    if (!change.role) fields.push_back({"role", "must be \"user\" or \"admin\""});
  }
  if (const auto it = body->find("disabled"); it != body->end()) {
    if (it->is_boolean()) {
      change.disabled = it->get<bool>();
    } else {
      fields.push_back({"disabled", "must be true or false"});
    }
  }
  if (fields.empty() && !change.role && !change.disabled) {
    fields.push_back({"role", "give role or disabled (or both)"});
  }
  if (!fields.empty()) return tl::unexpected(invalid("invalid user change", std::move(fields)));
  return change;
}

}  // namespace

void add_user_routes(Router& router, const HandlerContext& context) {
  router.add(
      "POST", "/password",
      context.with_user([&context](const Request& request, const RouteParams&, const User& user) {
        auto values = HandlerContext::string_fields(request, {"current_password", "new_password"},
                                                    "invalid password change");
        if (!values) return context.error(request, values.error());
        auto changed = context.auth().change_password(user, (*values)[0], (*values)[1],
                                                      bearer_token(request).value_or(""));
        if (!changed) return context.error(request, changed.error());
        return no_content();
      }),
      /*blocking=*/true);

  router.add(
      "GET", "/users",
      context.with_user(
          admin_only(context, [&context](const Request& request, const RouteParams&, const User&) {
            const auto params = parse_query(request.query);
            std::vector<FieldError> fields;
            UserQuery query;
            query.limit = read_page_limit(params, fields);
            query.after = read_cursor(params, fields);
            if (!fields.empty())
              return context.error(request, invalid("invalid query parameters", std::move(fields)));
            auto page = context.store().list_users(query);
            if (!page) return context.error(request, page.error());
            nlohmann::json items = nlohmann::json::array();
            for (const auto& user : page->items) items.push_back(user_to_json(user));
            nlohmann::json next = nullptr;
            if (page->next_after) next = encode_cursor(*page->next_after);
            return json_response(200, {{"items", std::move(items)}, {"next_cursor", next}});
          })));

  router.add("PATCH", "/users/{user_id}",
             context.with_user(admin_only(context, [&context](const Request& request,
                                                              const RouteParams& params,
                                                              const User& admin) {
               auto id = user_id_of(params);
               if (!id) return context.error(request, id.error());
               auto change = read_user_change(request);
               if (!change) return context.error(request, change.error());
               if (*id == admin.id && (change->role == Role::kUser || change->disabled == true)) {
                 return context.error(request, ErrorCode::kConflict,
                                      "an admin may not demote or disable themselves");
               }
               auto user = context.store().update_user(*id, change->role, change->disabled);
               if (!user) return context.error(request, user.error());
               if (user->disabled) {
                 // A disabled account's tokens stop working at once (authenticate refuses them
                 // too).
                 if (auto revoked = context.store().delete_user_tokens(user->id, ""); !revoked)
                   return context.error(request, revoked.error());
               }
               return json_response(200, user_to_json(*user));
             })));

  router.add("DELETE", "/users/{user_id}",
             context.with_user(admin_only(
                 context,
                 [&context](const Request& request, const RouteParams& params, const User& admin) {
                   auto id = user_id_of(params);
                   if (!id) return context.error(request, id.error());
                   if (*id == admin.id) {
                     return context.error(request, ErrorCode::kConflict,
                                          "an admin may not delete themselves");
                   }
                   // Their tasks go with them: the scheduler must forget each one.
                   std::vector<TaskId> tasks;
                   TaskQuery query;
                   query.owner = *id;
                   query.limit = 1000;
                   for (;;) {
                     auto page = context.store().list_tasks(query);
                     if (!page) return context.error(request, page.error());
                     for (const auto& task : page->items) tasks.push_back(task.id);
                     if (!page->next_after) break;
                     query.after = page->next_after;
                   }
                   if (auto done = context.store().delete_user(*id); !done)
                     return context.error(request, done.error());
                   if (auto* listener = context.listener()) {
                     for (TaskId task : tasks) listener->task_deleted(task);
                   }
                   return no_content();
                 })));
}

}  // namespace fetchd::api
