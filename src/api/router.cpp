// Route matching, 404/405 answers, and the last-resort catch around every handler.
#include "api/router.hpp"

#include <algorithm>
#include <exception>

#include "api/problem.hpp"

namespace fetchd::api {

namespace {

// "/tasks/12/status" -> {"tasks", "12", "status"}; "/" -> {""}.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path.front() != '/') return parts;
  path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

}  // namespace

// A logger without sinks discards everything: callers that do not care may pass nullptr.
Router::Router(std::shared_ptr<spdlog::logger> log)
    : log_(log ? std::move(log) : std::make_shared<spdlog::logger>("router")) {}

void Router::add(std::string method, std::string pattern, RouteHandler handler, bool blocking) {
  Route route;
  for (const auto part : split_path(pattern)) {
    Segment segment;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      segment.text = std::string(part.substr(1, part.size() - 2));
      segment.is_param = true;
    } else {
      segment.text = std::string(part);
    }
    route.segments.push_back(std::move(segment));
  }
  route.info = RouteInfo{std::move(method), std::move(pattern)};
  route.handler = std::move(handler);
  route.blocking = blocking;
  routes_.push_back(std::move(route));
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  const auto parts = split_path(path);
  Match result;
  std::size_t best_literals = 0;
  for (const auto& route : routes_) {
    if (route.segments.size() != parts.size()) continue;
    std::size_t literals = 0;
    bool matches = true;
    for (std::size_t i = 0; i < parts.size() && matches; ++i) {
      const auto& segment = route.segments[i];
      if (segment.is_param) {
        matches = !parts[i].empty();
      } else {
        matches = segment.text == parts[i];
        ++literals;
      }
    }
    if (!matches) continue;
    if (result.path_match == nullptr) result.path_match = &route;
    if (std::find(result.allowed.begin(), result.allowed.end(), route.info.method) ==
        result.allowed.end())
      result.allowed.push_back(route.info.method);
    // A literal segment beats a parameter, so "/a/b" wins over "/a/{x}" whatever the order.
    if (route.info.method == method && (result.route == nullptr || literals > best_literals)) {
      result.route = &route;
      best_literals = literals;
    }
  }
  if (result.route != nullptr) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto& segment = result.route->segments[i];
      if (segment.is_param) result.params.add(segment.text, std::string(parts[i]));
    }
  }
  return result;
}

Response Router::handle(const Request& request) {
  const Match m = match(request.method, request.path);
  if (m.route == nullptr) {
    if (m.path_match == nullptr) {
      Response r = problem(404, "no route for " + request.path, request.request_id);
      r.route = "unmatched";
      return r;
    }
    std::string allow;
    for (const auto& method : m.allowed) allow += (allow.empty() ? "" : ", ") + method;
    Response r =
        problem(405, "method " + request.method + " is not allowed here; allowed: " + allow,
                request.request_id);
    r.headers.emplace_back("Allow", allow);
    r.route = m.path_match->info.pattern;
    return r;
  }
  Response response;
  try {
    response = m.route->handler(request, m.params);
  } catch (const std::exception& e) {
    log_->error("request {}: {} {} failed: {}", request.request_id, request.method, request.path,
                e.what());
    response = problem(500, "internal error; the server log has the details", request.request_id);
  } catch (...) {
    log_->error("request {}: {} {} failed with an unknown exception", request.request_id,
                request.method, request.path);
    response = problem(500, "internal error; the server log has the details", request.request_id);
  }
  response.route = m.route->info.pattern;
  return response;
}

bool Router::is_blocking(const Request& request) const {
  const Route* route = match(request.method, request.path).route;
  return route != nullptr && route->blocking;
}

std::vector<RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const auto& route : routes_) out.push_back(route.info);
  return out;
}

}  // namespace fetchd::api
