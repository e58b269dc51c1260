// Builds the router of the REST API from its route groups, and counts what it answers.
#include "api/rest_api.hpp"

#include <utility>

#include "api/routes.hpp"

namespace fetchd::api {

RestApi::RestApi(Store& store, auth::AuthService& auth, const Clock& clock, Metrics& metrics,
                 std::shared_ptr<spdlog::logger> log, TaskChangeListener* listener, bool serve_demo,
                 Routes routes)
    : context_(store, auth, clock, metrics, log, listener), router_(std::move(log)) {
  add_system_routes(router_, context_);
  if (routes == Routes::kSystem) return;
  add_docs_routes(router_, context_, serve_demo ? demo_assets() : std::vector<StaticAsset>{});
  if (serve_demo) add_demo_routes(router_);
  add_auth_routes(router_, context_);
  add_user_routes(router_, context_);
  add_task_routes(router_, context_);
  add_job_routes(router_, context_);
}

Response RestApi::handle(const Request& request) {
  Response response = router_.handle(request);
  // The route pattern, never the path: "/tasks/{task_id}" has one series, not one per task.
  context_.metrics().count_http(request.method, response.route, response.status);
  return response;
}

}  // namespace fetchd::api
