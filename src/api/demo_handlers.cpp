// GET /demo/<feed>.json: the sample event feeds compiled into the binary (data/demo/), so that
// `fetchd db seed` tasks have something to fetch on a machine with no internet.
#include <span>

#include "api/routes.hpp"
#include "core/embedded_file.hpp"

namespace fetchd {
std::span<const EmbeddedFile> demo_feeds();  // data/demo, embedded by src/api/CMakeLists.txt
}  // namespace fetchd

namespace fetchd::api {

namespace {
constexpr std::string_view kDemoPrefix = "/demo/";
constexpr std::string_view kJson = "application/json";
}  // namespace

std::vector<StaticAsset> demo_assets() {
  std::vector<StaticAsset> out;
  for (const auto& file : demo_feeds())
    out.push_back({std::string(kDemoPrefix) + std::string(file.name), std::string(kJson)});
  return out;
}

void add_demo_routes(Router& router) {
  for (const auto& file : demo_feeds()) {
    router.add("GET", std::string(kDemoPrefix) + std::string(file.name),
               [data = file.data](const Request&, const RouteParams&) {
                 Response r;
                 r.content_type = std::string(kJson);
                 r.body = std::string(data);
                 return r;
               });
  }
}

}  // namespace fetchd::api
