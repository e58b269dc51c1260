// The route groups of the API, one file each: system (health, readiness, metrics), docs
// (OpenAPI and Swagger UI), auth (register, login, logout, me), users (password, and the
// admin's user management), tasks (and their run, pause
// and resume) and jobs (a task's runs and data). RestApi adds them all to its router; the
// handlers keep a reference to the context, which must outlive the router.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/handler_context.hpp"
#include "api/openapi.hpp"
#include "api/router.hpp"

namespace fetchd::api {

void add_system_routes(Router& router, const HandlerContext& context);
// `extra_assets`: further static routes to describe in /openapi.json (the demo feeds).
void add_docs_routes(Router& router, const HandlerContext& context,
                     const std::vector<StaticAsset>& extra_assets = {});
void add_auth_routes(Router& router, const HandlerContext& context);
void add_user_routes(Router& router, const HandlerContext& context);
void add_task_routes(Router& router, const HandlerContext& context);
void add_job_routes(Router& router, const HandlerContext& context);

// What GET /metrics answers with: the Prometheus text exposition format 0.0.4.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The Swagger UI files served under /swagger-ui/, one route each.
std::vector<StaticAsset> swagger_assets();

// The sample feeds served under /demo/ (option `demo`), one route each.
std::vector<StaticAsset> demo_assets();
void add_demo_routes(Router& router);

}  // namespace fetchd::api
