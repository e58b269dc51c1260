// GET /healthz and GET /readyz.
#include "api_fixture.hpp"

namespace fetchd::api::testing {
namespace {

TEST_F(ApiTest, HealthzIsOkWithoutAuth) {
  const Response r = call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(body_of(r), (json{{"status", "ok"}}));
  EXPECT_EQ(r.route, "/healthz");
}

TEST_F(ApiTest, HealthzStaysOkWhenTheStoreIsDown) {
  store_->unavailable = true;
  EXPECT_EQ(call("GET", "/healthz").status, 200);
}

TEST_F(ApiTest, ReadyzFollowsTheStore) {
  Response r = call("GET", "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), (json{{"status", "ready"}}));
  store_->unavailable = true;
  r = call("GET", "/readyz");
  EXPECT_TRUE(is_problem(r, 503));
  EXPECT_NE(log_text().find("disk I/O error (test)"), std::string::npos) << log_text();
  store_->unavailable = false;
  EXPECT_EQ(call("GET", "/readyz").status, 200);
}

TEST_F(ApiTest, ReadyzFollowsTheBrokerToo) {
  bool broker_up = true;
  api_->add_readiness_check("broker", [&broker_up]() -> Result<void> {
    if (broker_up) return {};
    return fail(ErrorCode::kUnavailable, "the broker (Redis) is unreachable", "refused (test)");
  });
  EXPECT_EQ(call("GET", "/readyz").status, 200);
  broker_up = false;
  const Response r = call("GET", "/readyz");
  EXPECT_TRUE(is_problem(r, 503));
  EXPECT_EQ(body_of(r)["detail"], "the broker is unreachable");
  EXPECT_NE(log_text().find("refused (test)"), std::string::npos) << log_text();
  broker_up = true;
  EXPECT_EQ(call("GET", "/readyz").status, 200);
}

TEST(SystemRoutesOnly, ServeHealthReadinessAndMetricsAndNothingElse) {
  auto store = open_sqlite_store(":memory:");
  ASSERT_TRUE(store && (*store)->migrate());
  FakeClock clock;
  Metrics metrics;
  auth::AuthService auth(**store, clock, {});
  RestApi api(**store, auth, clock, metrics, nullptr, nullptr, true, RestApi::Routes::kSystem);
  std::vector<std::string> paths;
  for (const auto& route : api.routes()) paths.push_back(route.method + " " + route.pattern);
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"GET /healthz", "GET /metrics", "GET /readyz"}));
}

TEST_F(ApiTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  EXPECT_TRUE(is_problem(call("GET", "/nope"), 404));
  EXPECT_TRUE(is_problem(call("GET", "/tasks/1/nope"), 404));
  Response r = call("PUT", "/tasks/1");
  EXPECT_TRUE(is_problem(r, 405));
  EXPECT_EQ(header(r, "Allow"), "GET, PATCH, DELETE");
  r = call("DELETE", "/tasks");
  EXPECT_TRUE(is_problem(r, 405));
  EXPECT_EQ(header(r, "Allow"), "POST, GET");
  r = call("GET", "/login");
  EXPECT_TRUE(is_problem(r, 405));
  EXPECT_EQ(header(r, "Allow"), "POST");
  r = call("POST", "/healthz");
  EXPECT_EQ(header(r, "Allow"), "GET");
}

}  // namespace
}  // namespace fetchd::api::testing
