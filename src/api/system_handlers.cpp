// GET /healthz (the process answers) and GET /readyz (and its store does too).
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
    return json_response(200, {{"status", "ready"}});
  });
}

}  // namespace fetchd::api
