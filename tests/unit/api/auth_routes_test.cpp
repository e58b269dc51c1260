// POST /register, /login, /logout and GET /me through the router, with the real AuthService
// (real Argon2id hashing) over the real SQLite store.
#include "api_fixture.hpp"

namespace fetchd::api::testing {
namespace {

using namespace std::chrono_literals;

std::string credentials(std::string_view username, std::string_view password) {
  return json{{"username", username}, {"password", password}}.dump();
}

TEST_F(ApiTest, RegisterLoginMeLogout) {
  Response r = call("POST", "/register", credentials("alice", "correct horse"));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json user = body_of(r);
  EXPECT_EQ(std::set<std::string>({"id", "username", "role", "disabled", "created_at"}), [&] {
    std::set<std::string> keys;
    for (const auto& [k, v] : user.items()) keys.insert(k);
    return keys;
  }());
  EXPECT_EQ(user["username"], "alice");
  EXPECT_EQ(user["role"], "user");
  EXPECT_EQ(user["created_at"], format_rfc3339(clock_.now()));
  EXPECT_TRUE(user["id"].is_number_integer());

  r = call("POST", "/login", credentials("alice", "correct horse"));
  ASSERT_EQ(r.status, 200) << r.body;
  const json token = body_of(r);
  EXPECT_EQ(token["token_type"], "Bearer");
  EXPECT_EQ(token["expires_in"], 24 * 3600);
  const std::string access = token["access_token"];
  EXPECT_FALSE(access.empty());

  r = call("GET", "/me", {}, access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r), user);

  r = call("POST", "/logout", {}, access);
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(r.content_type.empty());
  // The token is revoked: the very next use is 401.
  r = call("GET", "/me", {}, access);
  EXPECT_TRUE(is_problem(r, 401));
  EXPECT_EQ(header(r, "WWW-Authenticate"), "Bearer");
  EXPECT_TRUE(is_problem(call("POST", "/logout", {}, access), 401));
}

TEST_F(ApiTest, RegisterTakenUsernameIs409) {
  ASSERT_EQ(call("POST", "/register", credentials("bob", "password1")).status, 201);
  EXPECT_TRUE(is_problem(call("POST", "/register", credentials("bob", "password2")), 409));
}

TEST_F(ApiTest, RegisterInvalidFieldsAre422ListingEachField) {
  EXPECT_TRUE(is_problem(call("POST", "/register", credentials("x!", "short")), 422,
                         std::set<std::string>{"username", "password"}));
  EXPECT_TRUE(is_problem(call("POST", "/register", credentials("ab", "password1")), 422,
                         std::set<std::string>{"username"}));
  EXPECT_TRUE(is_problem(call("POST", "/register", credentials("abc", "1234567")), 422,
                         std::set<std::string>{"password"}));
  EXPECT_TRUE(is_problem(call("POST", "/register", R"({"username": "carol"})"), 422,
                         std::set<std::string>{"password"}));
  EXPECT_TRUE(is_problem(call("POST", "/register", R"({"username": 5, "password": null})"), 422,
                         std::set<std::string>{"username", "password"}));
  EXPECT_TRUE(is_problem(call("POST", "/register", "{}"), 422,
                         std::set<std::string>{"username", "password"}));
}

TEST_F(ApiTest, RegisterAcceptsBothBounds) {
  EXPECT_EQ(call("POST", "/register", credentials("abc", "12345678")).status, 201);
  EXPECT_EQ(
      call("POST", "/register", credentials(std::string(64, 'u'), std::string(1024, 'p'))).status,
      201);
  EXPECT_TRUE(is_problem(
      call("POST", "/register", credentials(std::string(65, 'v'), std::string(1025, 'p'))), 422,
      std::set<std::string>{"username", "password"}));
}

TEST_F(ApiTest, RegisterMalformedBodyIs400) {
  for (const char* body : {"", "   ", "{\"username\": ", "[]", "\"x\"", "null", "42"}) {
    const Response r = call("POST", "/register", body);
    EXPECT_TRUE(is_problem(r, 400)) << body;
  }
  const Response r = call("POST", "/register", "{\"a\": x}");
  ASSERT_TRUE(is_problem(r, 400));
  const std::string detail = body_of(r)["detail"];
  EXPECT_TRUE(detail.starts_with("malformed JSON: ")) << detail;
  EXPECT_NE(detail.find("line 1, column 7"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("json.exception"), std::string::npos) << detail;
}

TEST_F(ApiTest, NumbersNoDoubleHoldsAre400NotA500) {
  // Found by the http_server fuzz target: nlohmann throws out_of_range, not parse_error.
  const Account alice = add_user("alice");
  for (const char* body :
       {R"({"username": "abc", "password": 1e400})", R"({"task_interval": -1e999})"}) {
    const Response r = call("POST", "/register", body);
    EXPECT_TRUE(is_problem(r, 400)) << body;
    EXPECT_NE(body_of(r)["detail"].get<std::string>().find("number overflow"), std::string::npos)
        << r.body;
    EXPECT_TRUE(is_problem(call("POST", "/tasks", body, alice.token), 400)) << body;
  }
  const auto id = create_task(alice)["id"].get<TaskId>();
  EXPECT_TRUE(is_problem(
      call("PATCH", "/tasks/" + std::to_string(id), R"({"task_interval": 1e400})", alice.token),
      400));
}

TEST_F(ApiTest, RegisterIsForbiddenWhenRegistrationIsClosed) {
  build(auth::AuthSettings{
      .token_ttl = std::chrono::seconds(60), .open_registration = false, .login_throttle = {}});
  EXPECT_TRUE(is_problem(call("POST", "/register", credentials("dave", "password1")), 403));
  // Login of an existing account still works, with the configured lifetime.
  ASSERT_TRUE(auth_->register_user("erin", "password1", Role::kUser, /*via_admin=*/true));
  const Response r = call("POST", "/login", credentials("erin", "password1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r)["expires_in"], 60);
}

TEST_F(ApiTest, LoginFailureIs401WithOneMessageWhetherOrNotTheUserExists) {
  ASSERT_EQ(call("POST", "/register", credentials("frank", "password1")).status, 201);
  const Response wrong = call("POST", "/login", credentials("frank", "password2"));
  const Response absent = call("POST", "/login", credentials("nobody", "password1"));
  ASSERT_TRUE(is_problem(wrong, 401));
  ASSERT_TRUE(is_problem(absent, 401));
  EXPECT_EQ(body_of(wrong)["detail"], "invalid username or password");
  EXPECT_EQ(body_of(absent)["detail"], "invalid username or password");
  EXPECT_TRUE(is_problem(call("POST", "/login", R"({"username": "frank"})"), 422,
                         std::set<std::string>{"password"}));
  EXPECT_TRUE(is_problem(call("POST", "/login", "{oops"), 400));
}

TEST_F(ApiTest, BearerRoutesWithoutAValidTokenAre401) {
  const Account a = add_user("gina");
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/me"},         {"POST", "/logout"},        {"POST", "/tasks"},
      {"GET", "/tasks"},      {"GET", "/tasks/1"},        {"PATCH", "/tasks/1"},
      {"DELETE", "/tasks/1"}, {"GET", "/tasks/1/status"}, {"POST", "/tasks/1/reset-attempt"}};
  for (const auto& [method, path] : routes) {
    Response r = call(method, path, std::string(kSeedTask));
    EXPECT_TRUE(is_problem(r, 401)) << method << " " << path;
    EXPECT_EQ(header(r, "WWW-Authenticate"), "Bearer");
    r = call(method, path, std::string(kSeedTask), "not-a-token");
    EXPECT_TRUE(is_problem(r, 401)) << method << " " << path;
  }
  // Other schemes, or a scheme without a token, are 401 too.
  for (const char* value : {"Basic Z2luYTpwYXNzd29yZA==", "Bearer", "Bearer ", a.token.c_str()}) {
    Request request;
    request.method = "GET";
    request.path = "/me";
    request.request_id = "req-x";
    request.headers.emplace_back("authorization", value);
    EXPECT_EQ(api_->handle(request).status, 401) << value;
  }
}

TEST_F(ApiTest, BearerSchemeIsCaseInsensitive) {
  const Account a = add_user("hank");
  for (const std::string scheme : {"Bearer", "bearer", "BEARER", "bEaReR"}) {
    Request request;
    request.method = "GET";
    request.path = "/me";
    request.headers.emplace_back("authorization", scheme + "  " + a.token + " ");
    const Response r = api_->handle(request);
    EXPECT_EQ(r.status, 200) << scheme << ": " << r.body;
  }
}

TEST_F(ApiTest, ExpiredTokenIs401) {
  const Account a = add_user("ivy");  // its token lives an hour
  EXPECT_EQ(call("GET", "/me", {}, a.token).status, 200);
  clock_.advance(1h);
  EXPECT_TRUE(is_problem(call("GET", "/me", {}, a.token), 401));
}

TEST_F(ApiTest, LogoutRevokesOnlyThePresentedToken) {
  const Account a = add_user("jack");
  const auto second = auth::generate_token();
  ASSERT_TRUE(store_->create_token(
      TokenRecord{second.hash, a.user.id, clock_.now(), clock_.now() + std::chrono::hours(1)}));
  EXPECT_EQ(call("POST", "/logout", {}, a.token).status, 204);
  EXPECT_EQ(call("GET", "/me", {}, a.token).status, 401);
  EXPECT_EQ(call("GET", "/me", {}, second.token).status, 200);
}

TEST_F(ApiTest, OnlyRegisterAndLoginAreBlocking) {
  const auto blocking = [&](std::string method, std::string path) {
    Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    return api_->is_blocking(r);
  };
  EXPECT_TRUE(blocking("POST", "/register"));
  EXPECT_TRUE(blocking("POST", "/login"));
  EXPECT_FALSE(blocking("GET", "/register"));
  EXPECT_FALSE(blocking("POST", "/logout"));
  EXPECT_FALSE(blocking("POST", "/tasks"));
  EXPECT_FALSE(blocking("GET", "/healthz"));
  EXPECT_FALSE(blocking("POST", "/nope"));
}

TEST_F(ApiTest, StoreUnavailableIs503) {
  const Account a = add_user("kate");
  store_->unavailable = true;
  EXPECT_TRUE(is_problem(call("GET", "/me", {}, a.token), 503));
  EXPECT_TRUE(is_problem(call("POST", "/register", credentials("lena", "password1")), 503));
}

}  // namespace
}  // namespace fetchd::api::testing
