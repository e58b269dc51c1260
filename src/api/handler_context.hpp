// What every route handler shares: the dependencies the API was built with, and the few steps
// each handler repeats (authenticate the bearer token, read a JSON body, answer JSON or a
// problem), so that each of them is written once.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>
#include <nlohmann/json.hpp>

#include "api/http.hpp"
#include "api/router.hpp"
#include "auth/auth_service.hpp"
#include "core/address_guard.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/task.hpp"
#include "core/task_events.hpp"
#include "core/time.hpp"
#include "core/user.hpp"
#include "store/store.hpp"

namespace fetchd::api {

// Nesting deeper than this in a request body is refused (400): serialising it again would
// recurse that deep, and no task needs more.
inline constexpr int kMaxJsonDepth = 64;

// What the task routes enforce beyond the task rules (the limits.* and fetch.* options). The
// defaults enforce nothing, for tests of other things; the app sets the configured values.
struct ApiPolicy {
  bool allow_private = true;     // fetch.allow_private: else a literal private URL is refused
  std::vector<IpRange> allowed;  // fetch.allow_cidrs: literal addresses allowed anyway
  std::int64_t max_tasks_per_user = 0;     // 0: no limit
  std::int64_t min_interval_s = 1;         // task_interval at least this
  std::uint64_t max_parameters_bytes = 0;  // serialised parameters at most this; 0: no limit
};

class HandlerContext {
 public:
  HandlerContext(Store& store, auth::AuthService& auth, const Clock& clock, Metrics& metrics,
                 std::shared_ptr<spdlog::logger> log, TaskChangeListener* listener);

  Store& store() const { return store_; }
  auth::AuthService& auth() const { return auth_; }
  TimePoint now() const { return clock_.now(); }
  Metrics& metrics() const { return metrics_; }
  spdlog::logger& log() const { return *log_; }
  // May be null (no scheduler in this process).
  TaskChangeListener* listener() const { return listener_; }
  const ApiPolicy& policy() const { return policy_; }
  void set_policy(ApiPolicy policy) { policy_ = std::move(policy); }

  // What /readyz checks beside the store (the broker): a name for the message, and the check.
  struct ReadinessCheck {
    std::string component;
    std::function<Result<void>()> check;
  };
  void add_readiness_check(ReadinessCheck check) { readiness_.push_back(std::move(check)); }
  const std::vector<ReadinessCheck>& readiness_checks() const { return readiness_; }

  // The problem response for an error; 5xx ones are logged with their internal detail first.
  Response error(const Request& request, const Error& error) const;
  Response error(const Request& request, ErrorCode code, std::string message) const;

  // The user behind `Authorization: Bearer <token>`: kUnauthenticated when the header is
  // absent, not a bearer token, or the token is unknown, expired or revoked.
  Result<User> authenticate(const Request& request) const;

  // The task whose id is `id_text` if `user` may see it (their own, or any for an admin);
  // kNotFound otherwise, with one message for "absent", "not a valid id" and "someone
  // else's", so that ids of others leak nothing.
  Result<Task> visible_task(std::string_view id_text, const User& user) const;
  Result<Task> visible_task(TaskId id, const User& user) const;

  // A handler of a route that needs a bearer token: it runs only once the user is known. A GET's
  // token check and handler read one snapshot of the store (Store::read_snapshot).
  using UserHandler = std::function<Response(const Request&, const RouteParams&, const User&)>;
  RouteHandler with_user(UserHandler handler) const;

  // The request body as a JSON object: kMalformed (400) when empty, not JSON (with the
  // parser's message and position), too deep, or not an object.
  static Result<nlohmann::json> json_body(const Request& request);

  // The named members of a JSON object body, all required strings, in the order named; a body
  // that lacks one or holds another type is kInvalid `what`, with one field error each.
  static Result<std::vector<std::string>> string_fields(const Request& request,
                                                        std::initializer_list<const char*> names,
                                                        std::string what);

 private:
  Store& store_;
  auth::AuthService& auth_;
  const Clock& clock_;
  Metrics& metrics_;
  std::shared_ptr<spdlog::logger> log_;
  TaskChangeListener* listener_;
  ApiPolicy policy_;
  std::vector<ReadinessCheck> readiness_;
};

// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or
// nullopt when there is none.
std::optional<std::string_view> bearer_token(const Request& request);

// A kInvalid error (422) listing each bad field.
Error invalid(std::string message, std::vector<FieldError> fields);

Response json_response(int status, const nlohmann::json& body);
// A JSON body serialised already (see with_document).
Response json_text_response(int status, std::string body);
// 204: no body and no content type.
Response no_content();

}  // namespace fetchd::api
