#include "api/problem.hpp"

#include <nlohmann/json.hpp>

#include "core/http_reason.hpp"

namespace fetchd::api {

namespace {

std::string_view reason(int status) {
  if (auto phrase = http_reason_phrase(status); !phrase.empty()) return phrase;
  return status >= 500 ? "Internal Server Error" : "Error";
}

Response make(int status, std::string_view detail, const std::vector<FieldError>& fields,
              std::string_view request_id) {
  nlohmann::json body = {
      {"type", "about:blank"}, {"title", reason(status)}, {"status", status}, {"detail", detail}};
  if (!fields.empty()) {
    auto& errors = body["errors"] = nlohmann::json::array();
    for (const auto& f : fields) errors.push_back({{"field", f.field}, {"message", f.message}});
  }
  if (!request_id.empty()) body["request_id"] = request_id;
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
      return 400;
    case ErrorCode::kInvalid:
      return 422;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kThrottled:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

Response problem(const Error& error, std::string_view request_id) {
  const int status = http_status(error.code);
  // Internal errors never leak their text to the client; the log has it.
  std::string_view detail = status == 500 ? "internal error; the server log has the details"
                                          : std::string_view(error.message);
  Response response = make(status, detail, error.fields, request_id);
  if (error.retry_after_s) {
    response.headers.emplace_back("Retry-After", std::to_string(*error.retry_after_s));
  }
  return response;
}

Response problem(int status, std::string_view detail, std::string_view request_id) {
  return make(status, detail, {}, request_id);
}

}  // namespace fetchd::api
