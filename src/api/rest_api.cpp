// Builds the router of the REST API from its route groups.
#include "api/rest_api.hpp"

#include <utility>

#include "api/routes.hpp"

namespace fetchd::api {

RestApi::RestApi(Store& store, auth::AuthService& auth, const Clock& clock,
                 std::shared_ptr<spdlog::logger> log, TaskChangeListener* listener)
    : context_(store, auth, clock, log, listener), router_(std::move(log)) {
  add_system_routes(router_, context_);
  add_docs_routes(router_, context_);
  add_auth_routes(router_, context_);
  add_task_routes(router_, context_);
}

}  // namespace fetchd::api
