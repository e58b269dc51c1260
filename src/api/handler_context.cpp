// Authentication, JSON bodies and responses shared by the handlers.
#include "api/handler_context.hpp"

#include <cctype>
#include <stdexcept>

#include "api/problem.hpp"
#include "api/query.hpp"
#include "api/representation.hpp"

namespace fetchd::api {

namespace {

struct TooDeep : std::runtime_error {
  TooDeep() : std::runtime_error("too deep") {}
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; the client needs the rest.
std::string_view without_exception_tag(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    const auto end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  return what;
}

}  // namespace

HandlerContext::HandlerContext(Store& store, auth::AuthService& auth, const Clock& clock,
                               Metrics& metrics, std::shared_ptr<spdlog::logger> log,
                               TaskChangeListener* listener)
    : store_(store),
      auth_(auth),
      clock_(clock),
      metrics_(metrics),
      log_(log ? std::move(log) : std::make_shared<spdlog::logger>("api")),
      listener_(listener) {}

Response HandlerContext::error(const Request& request, const Error& error) const {
  const int status = http_status(error.code);
  if (status >= 500) {
    log_->error("request {}: {} {}: {}: {}{}{}", request.request_id, request.method, request.path,
                to_string(error.code), error.message, error.internal.empty() ? "" : ": ",
                error.internal);
  }
  return problem(error, request.request_id);
}

Response HandlerContext::error(const Request& request, ErrorCode code, std::string message) const {
  return error(request, Error::make(code, std::move(message)));
}

Error invalid(std::string message, std::vector<FieldError> fields) {
  Error error = Error::make(ErrorCode::kInvalid, std::move(message));
  error.fields = std::move(fields);
  return error;
}

std::optional<std::string_view> bearer_token(const Request& request) {
  const std::string_view value = trim(request.header("authorization"));
  const auto space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "bearer"))
    return std::nullopt;
  const std::string_view token = trim(value.substr(space + 1));
  if (token.empty()) return std::nullopt;
  return token;
}

Result<User> HandlerContext::authenticate(const Request& request) const {
  if (request.header("authorization").empty())
    return fail(
        ErrorCode::kUnauthenticated,
        "missing bearer token: send 'Authorization: Bearer <token>' (POST /login gives one)");
  const auto token = bearer_token(request);
  if (!token)
    return fail(ErrorCode::kUnauthenticated, "the Authorization header must be 'Bearer <token>'");
  return auth_.authenticate(*token);
}

Result<Task> HandlerContext::visible_task(std::string_view id_text, const User& user) const {
  const auto id = parse_positive_id(id_text);
  if (!id) return fail(ErrorCode::kNotFound, "task not found");
  return visible_task(*id, user);
}

Result<Task> HandlerContext::visible_task(TaskId id, const User& user) const {
  const auto not_found = [] { return fail(ErrorCode::kNotFound, "task not found"); };
  auto task = store_.get_task(id);
  if (!task) {
    if (task.error().code == ErrorCode::kNotFound) return not_found();
    return task;
  }
  if (!user.is_admin() && task->owner_id != user.id) return not_found();
  return task;
}

RouteHandler HandlerContext::with_user(UserHandler handler) const {
  return [this, handler = std::move(handler)](const Request& request, const RouteParams& params) {
    // A GET reads only: the token and what it shows come from one snapshot, one transaction.
    const auto snapshot = request.method == "GET" ? store_.read_snapshot() : nullptr;
    auto user = authenticate(request);
    if (!user) return error(request, user.error());
    return handler(request, params, *user);
  };
}

Result<nlohmann::json> HandlerContext::json_body(const Request& request) {
  if (trim(request.body).empty())
    return fail(ErrorCode::kMalformed, "the request body is empty; expected a JSON object");
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(request.body,
                                 [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                                   if (depth > kMaxJsonDepth) throw TooDeep();
                                   return true;
                                 });
  } catch (const nlohmann::json::parse_error& e) {
    return fail(ErrorCode::kMalformed,
                "malformed JSON: " + std::string(without_exception_tag(e.what())));
  } catch (const TooDeep&) {
    return fail(ErrorCode::kMalformed,
                "malformed JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } catch (const nlohmann::json::exception& e) {
    // out_of_range.406 for a number no double holds (1e400, found by the http_server fuzz
    // target): the body is at fault, not the server.
    return fail(ErrorCode::kMalformed,
                "malformed JSON: " + std::string(without_exception_tag(e.what())));
  }
  if (!body.is_object())
    return fail(ErrorCode::kMalformed, "the request body must be a JSON object");
  return body;
}

Result<std::vector<std::string>> HandlerContext::string_fields(
    const Request& request, std::initializer_list<const char*> names, std::string what) {
  auto body = json_body(request);
  if (!body) return tl::unexpected(body.error());
  std::vector<FieldError> fields;
  std::vector<std::string> values;
  for (const char* name : names) {
    const auto it = body->find(name);
    if (it == body->end()) {
      fields.push_back({name, "is required"});
    } else if (!it->is_string()) {
      fields.push_back({name, "must be a string"});
    } else {
      values.push_back(it->get<std::string>());
    }
  }
  if (!fields.empty()) return tl::unexpected(invalid(std::move(what), std::move(fields)));
  return values;
}

Response json_response(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = dump_json(body);
  return r;
}

Response json_text_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

}  // namespace fetchd::api
