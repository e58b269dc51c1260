// Plain HTTP request/response types between the server (http_server.cpp, the only file that
// knows Beast) and the router and handlers, which can therefore be unit-tested without a
// socket.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fetchd::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path without the query: "/tasks/12"
  std::string query;   // raw query string without '?': "limit=10&cursor=abc"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string request_id;      // also sent back as X-Request-Id
  std::string remote_address;  // client IP, for throttling and logs

  // The first header with this lower-case name, or "" when absent.
  std::string_view header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers)
      if (name == lower_name) return value;
    return {};
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // A label for metrics and the access log: the route pattern ("/tasks/{task_id}"), not the
  // path, so that it has few values.
  std::string route;
};

// What the server calls for each request.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual Response handle(const Request& request) = 0;
  // True for requests whose handling blocks for long (password hashing): the server runs
  // those off its I/O threads.
  virtual bool is_blocking(const Request& request) const = 0;
};

}  // namespace fetchd::api
