// Roles and accounts: the admin's user routes, POST /password, login throttling over HTTP,
// the task quotas and the private-address policy — and, for every route of the API, that an
// anonymous caller gets 401 and a plain user 403 on the admin-only ones.
#include <algorithm>

#include "api_fixture.hpp"

namespace fetchd::api::testing {
namespace {

TEST_F(ApiTest, AdminListsUsersInPages) {
  const Account root = add_user("root", Role::kAdmin);
  for (const char* name : {"u1", "u2", "u3"}) add_user(name);
  Response r = call("GET", "/users", {}, root.token, "limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  json page = body_of(r);
  ASSERT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["items"][0]["username"], "root");
  EXPECT_EQ(page["items"][0]["role"], "admin");
  EXPECT_EQ(page["items"][0]["disabled"], false);
  EXPECT_FALSE(page["items"][0].contains("password_hash"));
  ASSERT_TRUE(page["next_cursor"].is_string());
  r = call("GET", "/users", {}, root.token,
           "limit=2&cursor=" + page["next_cursor"].get<std::string>());
  page = body_of(r);
  ASSERT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["items"][1]["username"], "u3");
  EXPECT_TRUE(page["next_cursor"].is_null());
  EXPECT_TRUE(is_problem(call("GET", "/users", {}, root.token, "limit=0"), 422, {{"limit"}}));
}

TEST_F(ApiTest, AdminChangesRolesAndDisablesUsersWhoseTokensStopAtOnce) {
  const Account root = add_user("root", Role::kAdmin);
  const Account alice = add_user("alice");
  const std::string path = "/users/" + std::to_string(alice.user.id);
  Response r = call("PATCH", path, R"({"role": "admin"})", root.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r)["role"], "admin");
  EXPECT_EQ(call("GET", "/tasks", {}, alice.token, "all=true").status, 200);  // admin now

  r = call("PATCH", path, R"({"disabled": true, "role": "user"})", root.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r)["disabled"], true);
  EXPECT_EQ(body_of(r)["role"], "user");
  EXPECT_TRUE(is_problem(call("GET", "/me", {}, alice.token), 401));

  r = call("PATCH", path, R"({"disabled": false})", root.token);
  EXPECT_EQ(body_of(r)["disabled"], false);
  EXPECT_TRUE(is_problem(call("GET", "/me", {}, alice.token), 401));  // revoked, not paused

  EXPECT_TRUE(is_problem(call("PATCH", path, R"({"role": "owner"})", root.token), 422, {{"role"}}));
  EXPECT_TRUE(
      is_problem(call("PATCH", path, R"({"disabled": "yes"})", root.token), 422, {{"disabled"}}));
  EXPECT_TRUE(is_problem(call("PATCH", path, "{}", root.token), 422, {{"role"}}));
  EXPECT_TRUE(is_problem(call("PATCH", "/users/999", R"({"role": "user"})", root.token), 404));
  EXPECT_TRUE(is_problem(call("PATCH", "/users/abc", R"({"role": "user"})", root.token), 404));
}

TEST_F(ApiTest, AnAdminCannotLockThemselvesOut) {
  const Account root = add_user("root", Role::kAdmin);
  const std::string self = "/users/" + std::to_string(root.user.id);
  EXPECT_TRUE(is_problem(call("PATCH", self, R"({"role": "user"})", root.token), 409));
  EXPECT_TRUE(is_problem(call("PATCH", self, R"({"disabled": true})", root.token), 409));
  EXPECT_TRUE(is_problem(call("DELETE", self, {}, root.token), 409));
  EXPECT_EQ(call("PATCH", self, R"({"role": "admin"})", root.token).status, 200);  // no-op
  EXPECT_EQ(call("GET", "/me", {}, root.token).status, 200);
}

TEST_F(ApiTest, DeletingAUserTakesTheirTasksAndTellsTheScheduler) {
  const Account root = add_user("root", Role::kAdmin);
  const Account alice = add_user("alice");
  const Account bob = add_user("bob");
  const auto a1 = create_task(alice)["id"].get<TaskId>();
  const auto a2 = create_task(alice)["id"].get<TaskId>();
  const auto b1 = create_task(bob)["id"].get<TaskId>();
  EXPECT_EQ(call("DELETE", "/users/" + std::to_string(alice.user.id), {}, root.token).status, 204);
  std::vector<TaskId> deleted = listener_.deleted;
  std::sort(deleted.begin(), deleted.end());
  EXPECT_EQ(deleted, (std::vector<TaskId>{a1, a2}));
  EXPECT_TRUE(is_problem(call("GET", "/me", {}, alice.token), 401));
  EXPECT_EQ(call("GET", "/tasks/" + std::to_string(b1), {}, bob.token).status, 200);
  EXPECT_TRUE(is_problem(call("GET", "/tasks/" + std::to_string(a1), {}, root.token), 404));
  EXPECT_TRUE(
      is_problem(call("DELETE", "/users/" + std::to_string(alice.user.id), {}, root.token), 404));
}

TEST_F(ApiTest, PasswordChangeKeepsThisTokenAndRevokesTheOthers) {
  ASSERT_EQ(call("POST", "/register", R"({"username": "alice", "password": "password123"})").status,
            201);
  auto login = [&] {
    const Response r =
        call("POST", "/login", R"({"username": "alice", "password": "password123"})");
    EXPECT_EQ(r.status, 200) << r.body;
    return body_of(r)["access_token"].get<std::string>();
  };
  const std::string mine = login();
  const std::string other = login();
  EXPECT_TRUE(
      is_problem(call("POST", "/password",
                      R"({"current_password": "wrong-one!", "new_password": "abcdefgh1"})", mine),
                 422, {{"current_password"}}));
  EXPECT_TRUE(is_problem(call("POST", "/password", R"({"new_password": 5})", mine), 422,
                         {{"current_password", "new_password"}}));
  EXPECT_TRUE(is_problem(call("POST", "/password",
                              R"({"current_password": "password123", "new_password": "x"})", mine),
                         422, {{"new_password"}}));
  EXPECT_EQ(call("GET", "/me", {}, other).status, 200);
  const Response r =
      call("POST", "/password",
           R"({"current_password": "password123", "new_password": "a-new-password"})", mine);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(call("GET", "/me", {}, mine).status, 200);
  EXPECT_TRUE(is_problem(call("GET", "/me", {}, other), 401));
  EXPECT_TRUE(is_problem(
      call("POST", "/login", R"({"username": "alice", "password": "password123"})"), 401));
  EXPECT_EQ(call("POST", "/login", R"({"username": "alice", "password": "a-new-password"})").status,
            200);
}

TEST_F(ApiTest, RepeatedLoginFailuresAre429WithRetryAfter) {
  ASSERT_EQ(call("POST", "/register", R"({"username": "alice", "password": "password123"})").status,
            201);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(is_problem(
        call("POST", "/login", R"({"username": "alice", "password": "guess-guess"})"), 401));
  }
  const Response r = call("POST", "/login", R"({"username": "alice", "password": "password123"})");
  EXPECT_TRUE(is_problem(r, 429));
  EXPECT_EQ(header(r, "Retry-After"), "900");
  clock_.advance(std::chrono::minutes(15));
  EXPECT_EQ(call("POST", "/login", R"({"username": "alice", "password": "password123"})").status,
            200);
}

TEST_F(ApiTest, QuotasNameTheLimitTheyEnforce) {
  ApiPolicy policy;
  policy.max_tasks_per_user = 2;
  policy.min_interval_s = 10;
  policy.max_parameters_bytes = 300;
  api_->set_policy(policy);
  const Account alice = add_user("alice");
  create_task(alice, {{"task_interval", 10}});
  create_task(alice, {{"task_interval", 60}});
  Response r = call("POST", "/tasks", json::parse(kSeedTask).dump(), alice.token);
  // The interval (2 s) is checked with the body, before the count.
  EXPECT_TRUE(is_problem(r, 422, {{"task_interval"}}));
  EXPECT_NE(r.body.find("limits.min_interval"), std::string::npos) << r.body;
  json body = json::parse(kSeedTask);
  body["task_interval"] = 30;
  r = call("POST", "/tasks", body.dump(), alice.token);
  EXPECT_TRUE(is_problem(r, 429));
  EXPECT_NE(r.body.find("limits.max_tasks_per_user"), std::string::npos) << r.body;
  EXPECT_EQ(header(r, "Retry-After"), "");

  const Account bob = add_user("bob");
  body["parameters"] = {{"padding", std::string(400, 'x')}};
  r = call("POST", "/tasks", body.dump(), bob.token);
  EXPECT_TRUE(is_problem(r, 422, {{"parameters"}}));
  EXPECT_NE(r.body.find("limits.max_parameters_bytes"), std::string::npos) << r.body;
  // PATCH is held to the same rules.
  const auto id = create_task(bob, {{"task_interval", 30}})["id"].get<TaskId>();
  EXPECT_TRUE(is_problem(
      call("PATCH", "/tasks/" + std::to_string(id), R"({"task_interval": 5})", bob.token), 422,
      {{"task_interval"}}));
}

TEST_F(ApiTest, LiteralPrivateUrlsAreRefusedUnlessAllowed) {
  ApiPolicy policy;
  policy.allow_private = false;
  policy.allowed = parse_ip_ranges("10.20.0.0/16").value();
  api_->set_policy(policy);
  const Account alice = add_user("alice");
  for (const char* url :
       {"http://127.0.0.1:8000/feed", "http://[::1]/x", "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/", "http://192.168.1.1/", "http://user:pw@127.0.0.1/",
        "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://127.1/", "http://0x7f.1/"}) {
    json body = json::parse(kSeedTask);
    body["url"] = url;
    EXPECT_TRUE(is_problem(call("POST", "/tasks", body.dump(), alice.token), 422, {{"url"}}))
        << url;
  }
  json body = json::parse(kSeedTask);
  body["url"] = "http://10.20.3.4:8080/feed";  // in fetch.allow_cidrs
  EXPECT_EQ(call("POST", "/tasks", body.dump(), alice.token).status, 201);
  // Names are judged when fetched, on the addresses they resolve to.
  for (const char* url : {"https://feeds.example.org/x", "http://localhost:8000/"}) {
    body["url"] = url;
    EXPECT_EQ(call("POST", "/tasks", body.dump(), alice.token).status, 201) << url;
  }
}

// For every route of the API: anonymous callers get 401 where a token is needed, and a plain
// user gets 403 on the admin-only ones (404 is the answer for other users' tasks, tested with
// the task routes).
TEST_F(ApiTest, EveryRouteRefusesAnonymousAndPlainCallersAsItShould) {
  const Account alice = add_user("alice");
  const std::set<std::string> admin_only = {"GET /users", "PATCH /users/{user_id}",
                                            "DELETE /users/{user_id}"};
  const std::set<std::string> open = {"GET /healthz",      "GET /readyz",     "GET /metrics",
                                      "GET /openapi.json", "GET /swagger-ui", "POST /register",
                                      "POST /login"};
  std::size_t checked = 0;
  for (const auto& route : api_->routes()) {
    const std::string key = route.method + " " + route.pattern;
    if (open.contains(key) || route.pattern.starts_with("/swagger-ui/") ||
        route.pattern.starts_with("/demo/")) {
      continue;
    }
    std::string path = route.pattern;
    for (const char* param : {"{task_id}", "{job_id}", "{user_id}"}) {
      if (auto at = path.find(param); at != std::string::npos) {
        path.replace(at, std::string_view(param).size(), std::to_string(alice.user.id));
      }
    }
    EXPECT_TRUE(is_problem(call(route.method, path, "{}"), 401)) << key;
    if (admin_only.contains(key)) {
      EXPECT_TRUE(is_problem(call(route.method, path, R"({"role": "admin"})", alice.token), 403))
          << key;
    }
    ++checked;
  }
  EXPECT_GE(checked, 17u);
}

}  // namespace
}  // namespace fetchd::api::testing
