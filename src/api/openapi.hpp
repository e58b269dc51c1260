// The OpenAPI 3.1 description of every route, built in C++ so that the bounds it states come
// from the same constants as the validation (TaskLimits) and cannot drift from them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fetchd::api {

// Bounds of the account fields (auth::validate_username / validate_password enforce them;
// a unit test checks that they agree).
struct AccountLimits {
  static constexpr std::size_t kUsernameMinChars = 3;
  static constexpr std::size_t kUsernameMaxChars = 64;
  static constexpr std::size_t kPasswordMinBytes = 8;
  static constexpr std::size_t kPasswordMaxBytes = 1024;
};

// Page sizes of GET /tasks.
struct PageLimits {
  static constexpr std::size_t kDefault = 100;
  static constexpr std::size_t kMax = 500;
};

// A static file served at a fixed path.
struct StaticAsset {
  std::string path;          // "/swagger-ui/swagger-ui.css"
  std::string content_type;  // "text/css; charset=utf-8"
};

// `assets`: the Swagger UI files, each its own route (and so its own path in the document).
nlohmann::json openapi_document(const std::vector<StaticAsset>& assets);

}  // namespace fetchd::api
