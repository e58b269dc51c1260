// The REST API as one Handler for the HTTP server: the router with every route (DESIGN.md §4,
// described in /openapi.json), built from the components it needs, counting every request it
// answers in Metrics. The composition root (app/) makes one per process and hands it to
// HttpServer.
#pragma once

#include <memory>
#include <vector>

#include <spdlog/logger.h>

#include "api/handler_context.hpp"
#include "api/http.hpp"
#include "api/router.hpp"
#include "auth/auth_service.hpp"
#include "core/metrics.hpp"
#include "core/task_events.hpp"
#include "core/time.hpp"
#include "store/store.hpp"

namespace fetchd::api {

class RestApi final : public Handler {
 public:
  // kSystem: /healthz, /readyz and /metrics only, for processes without the API (`fetchd
  // scheduler`, `fetchd worker`).
  enum class Routes { kAll, kSystem };

  // Every reference must outlive the RestApi. `metrics` counts the requests and is what
  // GET /metrics renders. `listener` may be null (no scheduler in this process: POST
  // /tasks/{id}/run is then 503); `log` may be null (nothing is logged).
  RestApi(Store& store, auth::AuthService& auth, const Clock& clock, Metrics& metrics,
          std::shared_ptr<spdlog::logger> log, TaskChangeListener* listener = nullptr,
          bool serve_demo = true,  // GET /demo/<feed>.json (option `demo`)
          Routes routes = Routes::kAll);
  // The routes hold a pointer to context_: the object stays where it was built.
  RestApi(const RestApi&) = delete;
  RestApi& operator=(const RestApi&) = delete;

  // Routes the request and counts it by method, route pattern and status.
  Response handle(const Request& request) override;
  bool is_blocking(const Request& request) const override { return router_.is_blocking(request); }

  std::vector<RouteInfo> routes() const { return router_.routes(); }

  // Before serving: the limits and guards of the task routes.
  void set_policy(ApiPolicy policy) { context_.set_policy(std::move(policy)); }

  // /readyz also answers 503 while `check` fails ("the <component> is unreachable").
  void add_readiness_check(std::string component, std::function<Result<void>()> check) {
    context_.add_readiness_check({std::move(component), std::move(check)});
  }

 private:
  HandlerContext context_;
  Router router_;
};

}  // namespace fetchd::api
