// RFC 9457 problem+json responses, and the one mapping from our error codes to HTTP statuses.
#pragma once

#include <string_view>

#include "api/http.hpp"
#include "core/error.hpp"

namespace fetchd::api {

int http_status(ErrorCode code);

// {"type": "about:blank", "title": <status reason>, "status": N, "detail": message,
//  "errors": [{"field", "message"}...] (when any), "request_id": ...}
Response problem(const Error& error, std::string_view request_id = {});
Response problem(int status, std::string_view detail, std::string_view request_id = {});

}  // namespace fetchd::api
