// The route groups of the API, one file each: system (health, readiness), docs (OpenAPI and
// Swagger UI), auth (register, login, logout, me) and tasks. RestApi adds them all to its
// router; the handlers keep a reference to the context, which must outlive the router.
#pragma once

#include <string>
#include <vector>

#include "api/handler_context.hpp"
#include "api/openapi.hpp"
#include "api/router.hpp"

namespace fetchd::api {

void add_system_routes(Router& router, const HandlerContext& context);
void add_docs_routes(Router& router, const HandlerContext& context);
void add_auth_routes(Router& router, const HandlerContext& context);
void add_task_routes(Router& router, const HandlerContext& context);

// The Swagger UI files served under /swagger-ui/, one route each.
std::vector<StaticAsset> swagger_assets();

}  // namespace fetchd::api
