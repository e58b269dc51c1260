// Maps (method, path) to the handler of a route. Patterns are literal segments and `{name}`
// parameters ("/tasks/{task_id}/status"); a known path with another method is 405 with
// `Allow`, an unknown path 404. It is also the last line of defence: an exception escaping a
// handler is logged with the request id and answered with a 500 problem.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "api/http.hpp"

namespace fetchd::api {

// The `{name}` values of a matched path.
class RouteParams {
 public:
  void add(std::string name, std::string value) {
    values_.emplace_back(std::move(name), std::move(value));
  }
  // The value of `{name}`, or "" when the pattern has no such parameter.
  std::string_view get(std::string_view name) const {
    for (const auto& [n, v] : values_)
      if (n == name) return v;
    return {};
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

using RouteHandler = std::function<Response(const Request&, const RouteParams&)>;

struct RouteInfo {
  std::string method;   // "GET"
  std::string pattern;  // "/tasks/{task_id}"

  friend bool operator==(const RouteInfo&, const RouteInfo&) = default;
  friend auto operator<=>(const RouteInfo&, const RouteInfo&) = default;
};

class Router final : public Handler {
 public:
  explicit Router(std::shared_ptr<spdlog::logger> log);

  // Adds a route. `blocking`: handling it takes long (password hashing), see
  // Handler::is_blocking. Patterns start with '/'; a parameter is a whole segment.
  void add(std::string method, std::string pattern, RouteHandler handler, bool blocking = false);

  Response handle(const Request& request) override;
  bool is_blocking(const Request& request) const override;

  // Every (method, pattern), in the order added: what /openapi.json must describe.
  std::vector<RouteInfo> routes() const;

 private:
  struct Segment {
    std::string text;  // the literal, or the parameter's name
    bool is_param = false;
  };
  struct Route {
    RouteInfo info;
    std::vector<Segment> segments;
    RouteHandler handler;
    bool blocking = false;
  };

  struct Match {
    const Route* route = nullptr;       // for this method and path; nullptr when none
    const Route* path_match = nullptr;  // the first route whose pattern matches the path
    std::vector<std::string> allowed;   // methods of the routes matching the path, for 405
    RouteParams params;
  };
  Match match(std::string_view method, std::string_view path) const;

  std::shared_ptr<spdlog::logger> log_;
  std::vector<Route> routes_;
};

}  // namespace fetchd::api
