// GET /healthz (the process answers), GET /readyz (and its store and broker do too) and GET
// /metrics (Prometheus text format; unauthenticated, as scrapers expect).
#include "api/routes.hpp"

namespace fetchd::api {

void add_system_routes(Router& router, const HandlerContext& context) {
  router.add("GET", "/healthz", [](const Request&, const RouteParams&) {
    return json_response(200, {{"status", "ok"}});
  });
  router.add("GET", "/readyz", [&context](const Request& request, const RouteParams&) {
    if (auto ping = context.store().ping(); !ping) {
      context.log().warn("request {}: not ready: {} {}", request.request_id, ping.error().message,
                         ping.error().internal);
      return context.error(request, ErrorCode::kUnavailable, "the store is unreachable");
    }
    for (const auto& [component, check] : context.readiness_checks()) {
      if (auto ok = check(); !ok) {
        context.log().warn("request {}: not ready: {}: {} {}", request.request_id, component,
                           ok.error().message, ok.error().internal);
        return context.error(request, ErrorCode::kUnavailable,
                             "the " + component + " is unreachable");
      }
    }
    return json_response(200, {{"status", "ready"}});
  });
  router.add("GET", "/metrics", [&context](const Request&, const RouteParams&) {
    Response r;
    r.content_type = std::string(kMetricsContentType);
    r.body = context.metrics().render();
    // Every scrape must see fresh values.
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  });
}

}  // namespace fetchd::api
