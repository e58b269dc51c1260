// GET /openapi.json, GET /swagger-ui and one GET route per Swagger UI file under /swagger-ui/.
// Swagger UI's files come from the npm package swagger-ui-dist and our page from swagger/,
// both compiled into the binary (src/api/CMakeLists.txt): nothing is read from disk at run time.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "api/openapi.hpp"
#include "api/representation.hpp"
#include "api/routes.hpp"
#include "core/embedded_file.hpp"

namespace fetchd {
std::span<const EmbeddedFile> swagger_ui_assets();  // swagger-ui-dist
std::span<const EmbeddedFile> swagger_ui_page();    // src/api/swagger
}  // namespace fetchd

namespace fetchd::api {

namespace {

constexpr std::string_view kPageName = "index.html";
constexpr std::string_view kAssetPrefix = "/swagger-ui/";

std::string content_type_of(std::string_view name) {
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".png")) return "image/png";
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  return "application/octet-stream";
}

// Every file served under /swagger-ui/; the page itself is served at /swagger-ui.
std::vector<EmbeddedFile> asset_files() {
  std::vector<EmbeddedFile> out;
  for (const auto& file : swagger_ui_assets()) out.push_back(file);
  for (const auto& file : swagger_ui_page())
    if (file.name != kPageName) out.push_back(file);
  return out;
}

EmbeddedFile page_file() {
  for (const auto& file : swagger_ui_page())
    if (file.name == kPageName) return file;
  return {};  // cannot happen: CMakeLists.txt embeds it
}

}  // namespace

std::vector<StaticAsset> swagger_assets() {
  std::vector<StaticAsset> out;
  for (const auto& file : asset_files())
    out.push_back({std::string(kAssetPrefix) + std::string(file.name), content_type_of(file.name)});
  return out;
}

void add_docs_routes(Router& router, const HandlerContext&,
                     const std::vector<StaticAsset>& extra_assets) {
  // Built once: the document depends on nothing that changes while the process runs.
  auto assets = swagger_assets();
  assets.insert(assets.end(), extra_assets.begin(), extra_assets.end());
  const auto spec = std::make_shared<const std::string>(dump_json(openapi_document(assets)));
  router.add("GET", "/openapi.json", [spec](const Request&, const RouteParams&) {
    Response r;
    r.content_type = "application/json";
    r.body = *spec;
    return r;
  });

  router.add("GET", "/swagger-ui", [page = page_file()](const Request&, const RouteParams&) {
    Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(page.data);
    // The page names the assets: revalidated, so that a new binary's page shows at once.
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  });

  // One literal route per file: a fixed set, so an unknown name is the router's plain 404 and
  // every route is described in /openapi.json.
  for (const auto& file : asset_files()) {
    router.add("GET", std::string(kAssetPrefix) + std::string(file.name),
               [file](const Request&, const RouteParams&) {
                 Response r;
                 r.content_type = content_type_of(file.name);
                 r.body = std::string(file.data);
                 r.headers.emplace_back("Cache-Control", "public, max-age=86400");
                 return r;
               });
  }
}

}  // namespace fetchd::api
