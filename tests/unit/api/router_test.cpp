// The router on its own: pattern matching and parameters, literal-over-parameter precedence,
// 404 and 405 (with Allow), route labels, is_blocking, and the last-resort catch.
#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

#include "api/router.hpp"

namespace fetchd::api {
namespace {

Response text(std::string body) {
  Response r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

Request request(std::string method, std::string path) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.request_id = "rid-1";
  return r;
}

std::string header(const Response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return {};
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : log_(std::make_shared<spdlog::logger>("t", sink_)), router_(log_) {
    router_.add("GET", "/tasks", [](const Request&, const RouteParams&) { return text("list"); });
    router_.add(
        "POST", "/tasks", [](const Request&, const RouteParams&) { return text("create"); },
        /*blocking=*/true);
    router_.add("GET", "/tasks/{task_id}", [](const Request&, const RouteParams& p) {
      return text("get " + std::string(p.get("task_id")));
    });
    router_.add("DELETE", "/tasks/{task_id}", [](const Request&, const RouteParams& p) {
      return text("delete " + std::string(p.get("task_id")));
    });
    router_.add("GET", "/tasks/{task_id}/runs/{run}", [](const Request&, const RouteParams& p) {
      return text(std::string(p.get("task_id")) + "/" + std::string(p.get("run")) + "/" +
                  std::string(p.get("absent")));
    });
    router_.add("GET", "/tasks/special",
                [](const Request&, const RouteParams&) { return text("special"); });
    router_.add("GET", "/boom", [](const Request&, const RouteParams&) -> Response {
      throw std::runtime_error("kaput");
    });
    router_.add("GET", "/boom-int",
                [](const Request&, const RouteParams&) -> Response { throw 42; });
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
  std::shared_ptr<spdlog::logger> log_;
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralRoutesByMethod) {
  EXPECT_EQ(router_.handle(request("GET", "/tasks")).body, "list");
  EXPECT_EQ(router_.handle(request("POST", "/tasks")).body, "create");
}

TEST_F(RouterTest, ExtractsParameters) {
  const Response r = router_.handle(request("GET", "/tasks/17"));
  EXPECT_EQ(r.body, "get 17");
  EXPECT_EQ(r.route, "/tasks/{task_id}");
  EXPECT_EQ(router_.handle(request("GET", "/tasks/3/runs/x9")).body, "3/x9/");
  EXPECT_EQ(router_.handle(request("DELETE", "/tasks/abc")).body, "delete abc");
}

TEST_F(RouterTest, LiteralSegmentWinsOverParameterWhateverTheOrder) {
  EXPECT_EQ(router_.handle(request("GET", "/tasks/special")).body, "special");
  EXPECT_EQ(router_.handle(request("GET", "/tasks/special")).route, "/tasks/special");
}

TEST_F(RouterTest, UnknownPathIs404Problem) {
  for (const char* path :
       {"/nope", "/tasks/1/2", "/tasks/", "//tasks", "", "tasks", "/tasks//runs/1", "/TASKS"}) {
    const Response r = router_.handle(request("GET", path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.content_type, "application/problem+json") << path;
    EXPECT_EQ(nlohmann::json::parse(r.body)["request_id"], "rid-1");
    EXPECT_EQ(r.route, "unmatched");
  }
}

TEST_F(RouterTest, KnownPathWithOtherMethodIs405WithAllow) {
  Response r = router_.handle(request("PUT", "/tasks"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET, POST");
  EXPECT_EQ(r.route, "/tasks");
  r = router_.handle(request("PATCH", "/tasks/5"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET, DELETE");
  EXPECT_EQ(r.content_type, "application/problem+json");
  // "/tasks/special" also matches "/tasks/{task_id}": both patterns' methods are allowed.
  r = router_.handle(request("POST", "/tasks/special"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET, DELETE");
  EXPECT_EQ(router_.handle(request("HEAD", "/tasks/1/runs/2")).status, 405);
}

TEST_F(RouterTest, MethodsAreCaseSensitive) {
  EXPECT_EQ(router_.handle(request("get", "/tasks")).status, 405);
}

TEST_F(RouterTest, ExceptionBecomes500AndIsLoggedWithTheRequestId) {
  Response r = router_.handle(request("GET", "/boom"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_EQ(r.route, "/boom");
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["request_id"], "rid-1");
  EXPECT_EQ(body["detail"].get<std::string>().find("kaput"), std::string::npos)
      << "internal text leaked to the client";
  log_->flush();
  EXPECT_NE(out_.str().find("rid-1"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("kaput"), std::string::npos) << out_.str();

  r = router_.handle(request("GET", "/boom-int"));
  EXPECT_EQ(r.status, 500);
}

TEST_F(RouterTest, IsBlockingOnlyForRoutesMarkedSo) {
  EXPECT_TRUE(router_.is_blocking(request("POST", "/tasks")));
  EXPECT_FALSE(router_.is_blocking(request("GET", "/tasks")));
  EXPECT_FALSE(router_.is_blocking(request("POST", "/nope")));
  EXPECT_FALSE(router_.is_blocking(request("PUT", "/tasks")));
}

TEST_F(RouterTest, RoutesListsEveryRouteInOrder) {
  const auto routes = router_.routes();
  ASSERT_EQ(routes.size(), 8u);
  EXPECT_EQ(routes[0], (RouteInfo{"GET", "/tasks"}));
  EXPECT_EQ(routes[2], (RouteInfo{"GET", "/tasks/{task_id}"}));
  EXPECT_EQ(routes[4], (RouteInfo{"GET", "/tasks/{task_id}/runs/{run}"}));
}

TEST(RouterWithoutLogger, StillAnswers500) {
  Router router(nullptr);
  router.add("GET", "/boom",
             [](const Request&, const RouteParams&) -> Response { throw std::runtime_error("x"); });
  EXPECT_EQ(router.handle(request("GET", "/boom")).status, 500);
}

}  // namespace
}  // namespace fetchd::api
