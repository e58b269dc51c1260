// The task routes through the router over the real store: create (the seed's body verbatim),
// read, list with pagination, update, delete, status, reset-attempt; ownership (another
// user's task is 404, an admin sees all); every error status; the change listener.
#include "api_fixture.hpp"

namespace fetchd::api::testing {
namespace {

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& [k, v] : object.items()) keys.insert(k);
  return keys;
}

const std::set<std::string> kTaskKeys = {"id",
                                         "owner_id",
                                         "name",
                                         "url",
                                         "parameters",
                                         "start_time",
                                         "end_time",
                                         "task_interval",
                                         "max_execution_time",
                                         "max_attempt",
                                         "paused",
                                         "suspended",
                                         "consecutive_failures",
                                         "next_run_at",
                                         "last_execution_status",
                                         "last_execute_time",
                                         "execution_time",
                                         "last_execution_error",
                                         "last_job_id",
                                         "created_at",
                                         "updated_at"};

const std::set<std::string> kStatusKeys = {"id",
                                           "execution_time",
                                           "last_execute_time",
                                           "last_execution_status",
                                           "last_execution_error",
                                           "last_execution_data",
                                           "consecutive_failures",
                                           "suspended",
                                           "next_run_at"};

TEST_F(ApiTest, CreatesTheSeedsExampleBodyVerbatim) {
  const Account a = add_user("alice");
  const Response r = call("POST", "/tasks", std::string(kSeedTask), a.token);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json t = body_of(r);
  EXPECT_EQ(header(r, "Location"), "/tasks/" + std::to_string(t["id"].get<TaskId>()));
  EXPECT_EQ(keys_of(t), kTaskKeys);
  EXPECT_EQ(t["owner_id"], a.user.id);
  EXPECT_EQ(t["name"], "amazingexpo");
  EXPECT_EQ(t["url"], "https://example.com/php-architecture/");
  EXPECT_EQ(t["parameters"], json::object());  // sent as the string "{}", returned as an object
  EXPECT_EQ(t["start_time"], "2023-01-04T21:41:38.930Z");
  EXPECT_EQ(t["end_time"], "2033-01-04T21:41:38.930Z");
  EXPECT_EQ(t["task_interval"], 2);
  EXPECT_EQ(t["max_execution_time"], 0);
  EXPECT_EQ(t["max_attempt"], 3);
  EXPECT_EQ(t["paused"], false);
  EXPECT_EQ(t["suspended"], false);
  EXPECT_EQ(t["consecutive_failures"], 0);
  EXPECT_EQ(t["last_execution_status"], "pending");
  for (const char* key :
       {"last_execute_time", "execution_time", "last_execution_error", "last_job_id"})
    EXPECT_TRUE(t.at(key).is_null()) << key;
  EXPECT_EQ(t["created_at"], format_rfc3339(clock_.now()));
  EXPECT_EQ(t["updated_at"], format_rfc3339(clock_.now()));

  const Response got = call("GET", header(r, "Location"), {}, a.token);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(body_of(got), t);
  EXPECT_EQ(got.route, "/tasks/{task_id}");
}

TEST_F(ApiTest, CreateAppliesDefaultsAndIgnoresUnknownFields) {
  const Account a = add_user("alice");
  json body = json::parse(kSeedTask);
  body.erase("parameters");
  body.erase("max_execution_time");
  body.erase("max_attempt");
  body["colour"] = "blue";
  const Response r = call("POST", "/tasks", body.dump(), a.token);
  ASSERT_EQ(r.status, 201) << r.body;
  const json t = body_of(r);
  EXPECT_EQ(t["parameters"], json::object());
  EXPECT_EQ(t["max_execution_time"], 0);
  EXPECT_EQ(t["max_attempt"], 3);
  EXPECT_FALSE(t.contains("colour"));
}

TEST_F(ApiTest, ParametersAsObjectOrStringComeBackAsAnObject) {
  const Account a = add_user("alice");
  const json params = {{"method", "POST"}, {"headers", {{"X-A", "b"}}}, {"eventfile", "e.json"}};
  EXPECT_EQ(create_task(a, {{"parameters", params}})["parameters"], params);
  EXPECT_EQ(create_task(a, {{"parameters", params.dump()}})["parameters"], params);
}

TEST_F(ApiTest, CreateInvalidValuesAre422ListingEveryBadField) {
  const Account a = add_user("alice");
  json body = json::parse(kSeedTask);
  body.update({{"name", ""},
               {"url", "ftp://x"},
               {"start_time", "soon"},
               {"task_interval", 0},
               {"max_execution_time", -1},
               {"max_attempt", 0},
               {"parameters", {{"method", "FETCH"}}}});
  const Response r = call("POST", "/tasks", body.dump(), a.token);
  EXPECT_TRUE(is_problem(r, 422,
                         std::set<std::string>{"name", "url", "start_time", "task_interval",
                                               "max_execution_time", "max_attempt", "parameters"}));
  EXPECT_TRUE(listener_.changed.empty());
}

TEST_F(ApiTest, CreateMissingRequiredFieldsAre422) {
  const Account a = add_user("alice");
  const Response r = call("POST", "/tasks", "{}", a.token);
  ASSERT_EQ(r.status, 422) << r.body;
  std::set<std::string> listed;
  const json body = body_of(r);
  for (const auto& e : body["errors"]) listed.insert(e["field"].get<std::string>());
  EXPECT_EQ(listed,
            (std::set<std::string>{"name", "url", "start_time", "end_time", "task_interval"}));
}

TEST_F(ApiTest, CreateBoundsFromTaskLimits) {
  const Account a = add_user("alice");
  const auto status_with = [&](const json& overrides) {
    json body = json::parse(kSeedTask);
    body.update(overrides);
    return call("POST", "/tasks", body.dump(), a.token).status;
  };
  EXPECT_EQ(status_with({{"name", std::string(TaskLimits::kNameMaxChars, 'n')}}), 201);
  EXPECT_EQ(status_with({{"name", std::string(TaskLimits::kNameMaxChars + 1, 'n')}}), 422);
  EXPECT_EQ(status_with({{"task_interval", 1}}), 201);
  EXPECT_EQ(status_with({{"task_interval", TaskLimits::kIntervalMax}}), 201);
  EXPECT_EQ(status_with({{"task_interval", TaskLimits::kIntervalMax + 1}}), 422);
  EXPECT_EQ(status_with({{"max_execution_time", TaskLimits::kExecutionTimeMax}}), 201);
  EXPECT_EQ(status_with({{"max_execution_time", TaskLimits::kExecutionTimeMax + 1}}), 422);
  EXPECT_EQ(status_with({{"max_attempt", 1}}), 201);
  EXPECT_EQ(status_with({{"max_attempt", TaskLimits::kMaxAttemptMax}}), 201);
  EXPECT_EQ(status_with({{"max_attempt", TaskLimits::kMaxAttemptMax + 1}}), 422);
  EXPECT_EQ(status_with({{"end_time", "2023-01-04T21:41:38.930Z"}}), 422);  // == start_time
}

TEST_F(ApiTest, CreateMalformedBodyIs400) {
  const Account a = add_user("alice");
  for (const char* body : {"", "\n", "{\"name\": \"x\", ", "[]", "42", "null", "\"{}\""}) {
    EXPECT_TRUE(is_problem(call("POST", "/tasks", body, a.token), 400)) << body;
  }
  // Deep nesting is refused before anything recurses over it.
  std::string deep =
      R"({"name": "x", "parameters": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_TRUE(is_problem(call("POST", "/tasks", deep, a.token), 400));
  EXPECT_TRUE(listener_.changed.empty());
}

TEST_F(ApiTest, ParametersStringNestedTooDeeplyIs422) {
  const Account a = add_user("alice");
  const auto nested = [](int levels) {
    // One object around levels - 1 arrays, with brackets inside a string that do not count.
    return "{\"s\": \"[[[\\\"\", \"a\": " + std::string(levels - 1, '[') +
           std::string(levels - 1, ']') + "}";
  };
  json body = json::parse(kSeedTask);
  body["parameters"] = nested(kMaxJsonDepth);
  EXPECT_EQ(call("POST", "/tasks", body.dump(), a.token).status, 201);
  body["parameters"] = nested(kMaxJsonDepth + 1);
  EXPECT_TRUE(is_problem(call("POST", "/tasks", body.dump(), a.token), 422,
                         std::set<std::string>{"parameters"}));
  body["parameters"] = nested(200000);
  EXPECT_TRUE(is_problem(call("POST", "/tasks", body.dump(), a.token), 422,
                         std::set<std::string>{"parameters"}));
}

TEST_F(ApiTest, ListingPaginatesAcrossThreePages) {
  const Account a = add_user("alice");
  const Account other = add_user("bob");
  std::vector<TaskId> created;
  for (int i = 0; i < 7; ++i) {
    created.push_back(create_task(a, {{"name", "t" + std::to_string(i)}})["id"]);
    create_task(other);  // interleaved ids of someone else
  }
  std::vector<std::size_t> sizes;
  std::vector<TaskId> seen;
  std::string cursor;
  for (int page = 0; page < 4; ++page) {  // one more than needed: a cursor that never ends fails
    const std::string query = "limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor);
    const Response r = call("GET", "/tasks", {}, a.token, query);
    ASSERT_EQ(r.status, 200) << r.body;
    const json body = body_of(r);
    EXPECT_EQ(keys_of(body), (std::set<std::string>{"items", "next_cursor"}));
    sizes.push_back(body["items"].size());
    for (const auto& t : body["items"]) {
      EXPECT_EQ(keys_of(t), kTaskKeys);
      seen.push_back(t["id"]);
    }
    if (body["next_cursor"].is_null()) break;
    cursor = body["next_cursor"];
    EXPECT_FALSE(cursor.empty());
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
  EXPECT_EQ(seen, created);

  Response r = call("GET", "/tasks", {}, a.token);  // default limit 100
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["items"].size(), 7u);
  EXPECT_TRUE(body_of(r)["next_cursor"].is_null());
  r = call("GET", "/tasks", {}, a.token, "limit=500&cursor=");
  EXPECT_EQ(body_of(r)["items"].size(), 7u);
  r = call("GET", "/tasks", {}, a.token, "limit=1");
  EXPECT_EQ(body_of(r)["items"].size(), 1u);
  EXPECT_TRUE(body_of(r)["next_cursor"].is_string());
}

TEST_F(ApiTest, EmptyListHasNullCursor) {
  const Account a = add_user("alice");
  const Response r = call("GET", "/tasks", {}, a.token);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), (json{{"items", json::array()}, {"next_cursor", nullptr}}));
}

TEST_F(ApiTest, BadListParametersAre422OnTheirField) {
  const Account a = add_user("alice");
  for (const char* limit : {"0", "501", "-1", "abc", "1.5", "", "1e2", "+5"}) {
    EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token, std::string("limit=") + limit), 422,
                           std::set<std::string>{"limit"}))
        << limit;
  }
  for (const char* cursor : {"garbage!!", "AAAA", "%25%25%25", "eyJ4IjoxfQ", "dDE6MA"}) {
    EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token, std::string("cursor=") + cursor), 422,
                           std::set<std::string>{"cursor"}))
        << cursor;
  }
  EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token, "all=maybe"), 422,
                         std::set<std::string>{"all"}));
  EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token, "limit=0&cursor=x!"), 422,
                         std::set<std::string>{"limit", "cursor"}));
}

std::vector<TaskId> ids_of(const Response& r) {
  std::vector<TaskId> ids;
  const json body = json::parse(r.body);
  for (const auto& t : body["items"]) ids.push_back(t["id"]);
  return ids;
}

TEST_F(ApiTest, AllTrueIsForAdminsOnly) {
  const Account a = add_user("alice");
  const Account b = add_user("bob");
  const Account admin = add_user("root", Role::kAdmin);
  const TaskId ta = create_task(a)["id"];
  const TaskId tb = create_task(b)["id"];
  const TaskId tr = create_task(admin)["id"];

  Response r = call("GET", "/tasks", {}, admin.token, "all=true");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids_of(r), (std::vector<TaskId>{ta, tb, tr}));

  r = call("GET", "/tasks", {}, admin.token);  // without all=true: their own
  EXPECT_EQ(ids_of(r), std::vector<TaskId>{tr});

  r = call("GET", "/tasks", {}, admin.token, "all=false");
  EXPECT_EQ(body_of(r)["items"].size(), 1u);

  r = call("GET", "/tasks", {}, a.token);
  EXPECT_EQ(ids_of(r), std::vector<TaskId>{ta});
  EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token, "all=true"), 403));
  EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token, "all=1"), 403));
}

TEST_F(ApiTest, AnotherUsersTaskIs404AndUntouched) {
  const Account owner = add_user("alice");
  const Account stranger = add_user("bob");
  const json task = create_task(owner);
  const std::string path = "/tasks/" + std::to_string(task["id"].get<TaskId>());
  const Response r1 = call("GET", path, {}, stranger.token);
  ASSERT_TRUE(is_problem(r1, 404));
  EXPECT_EQ(body_of(r1)["detail"], "task not found");
  EXPECT_TRUE(is_problem(call("PATCH", path, R"({"name": "stolen"})", stranger.token), 404));
  EXPECT_TRUE(is_problem(call("DELETE", path, {}, stranger.token), 404));
  EXPECT_TRUE(is_problem(call("GET", path + "/status", {}, stranger.token), 404));
  EXPECT_TRUE(is_problem(call("POST", path + "/reset-attempt", {}, stranger.token), 404));
  const Response after = call("GET", path, {}, owner.token);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(body_of(after), task);
  EXPECT_EQ(listener_.changed.size(), 1u);  // the creation only
  EXPECT_TRUE(listener_.deleted.empty());
}

TEST_F(ApiTest, IdsThatAreNotPositiveIntegersOrAbsentAre404) {
  const Account a = add_user("alice");
  create_task(a);
  for (const char* id : {"0", "-1", "abc", "1.5", "01", "999999999", "99999999999999999999999"}) {
    const std::string path = std::string("/tasks/") + id;
    EXPECT_TRUE(is_problem(call("GET", path, {}, a.token), 404)) << id;
    EXPECT_TRUE(is_problem(call("PATCH", path, R"({"name": "x"})", a.token), 404)) << id;
    EXPECT_TRUE(is_problem(call("DELETE", path, {}, a.token), 404)) << id;
    EXPECT_TRUE(is_problem(call("GET", path + "/status", {}, a.token), 404)) << id;
    EXPECT_TRUE(is_problem(call("POST", path + "/reset-attempt", {}, a.token), 404)) << id;
    for (const char* action : {"/run", "/pause", "/resume"})
      EXPECT_TRUE(is_problem(call("POST", path + action, {}, a.token), 404)) << id << action;
    for (const char* read : {"/jobs", "/data/latest"})
      EXPECT_TRUE(is_problem(call("GET", path + read, {}, a.token), 404)) << id << read;
  }
  EXPECT_TRUE(listener_.run_requests.empty());
}

TEST_F(ApiTest, AdminReadsAndChangesAnyTask) {
  const Account owner = add_user("alice");
  const Account admin = add_user("root", Role::kAdmin);
  const TaskId id = create_task(owner)["id"];
  const std::string path = "/tasks/" + std::to_string(id);
  EXPECT_EQ(call("GET", path, {}, admin.token).status, 200);
  EXPECT_EQ(call("GET", path + "/status", {}, admin.token).status, 200);
  const Response r = call("PATCH", path, R"({"name": "renamed by admin"})", admin.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r)["name"], "renamed by admin");
  EXPECT_EQ(body_of(r)["owner_id"], owner.user.id);
  EXPECT_EQ(call("POST", path + "/reset-attempt", {}, admin.token).status, 200);
  EXPECT_EQ(call("DELETE", path, {}, admin.token).status, 204);
  EXPECT_TRUE(is_problem(call("GET", path, {}, owner.token), 404));
}

TEST_F(ApiTest, PatchIsAPartialUpdate) {
  const Account a = add_user("alice");
  const json task = create_task(a);
  const std::string path = "/tasks/" + std::to_string(task["id"].get<TaskId>());
  clock_.advance(std::chrono::seconds(5));
  const Response r =
      call("PATCH", path,
           R"({"name": "renamed", "task_interval": 60, "parameters": "{\"a\": \"b\"}"})", a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  const json t = body_of(r);
  EXPECT_EQ(t["name"], "renamed");
  EXPECT_EQ(t["task_interval"], 60);
  EXPECT_EQ(t["parameters"], (json{{"a", "b"}}));
  EXPECT_EQ(t["updated_at"], format_rfc3339(clock_.now()));
  for (const char* same : {"id", "owner_id", "url", "start_time", "end_time", "max_attempt",
                           "max_execution_time", "created_at"})
    EXPECT_EQ(t.at(same), task.at(same)) << same;
  EXPECT_EQ(body_of(call("GET", path, {}, a.token)), t);
  // An empty object changes nothing but is accepted.
  EXPECT_EQ(call("PATCH", path, "{}", a.token).status, 200);
}

TEST_F(ApiTest, InvalidPatchIs422AndChangesNothing) {
  const Account a = add_user("alice");
  const json task = create_task(a);
  const std::string path = "/tasks/" + std::to_string(task["id"].get<TaskId>());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"task_interval": 0})", "task_interval"},
      {R"({"name": ""})", "name"},
      {R"({"url": "mailto:a@b.c"})", "url"},
      {R"({"end_time": "2022-01-01T00:00:00Z"})", "end_time"},  // before the stored start_time
      {R"({"max_attempt": 1001})", "max_attempt"}};
  for (const auto& [patch, field] : cases) {
    EXPECT_TRUE(is_problem(call("PATCH", path, patch, a.token), 422, std::set<std::string>{field}))
        << patch;
  }
  EXPECT_TRUE(is_problem(call("PATCH", path, "{oops", a.token), 400));
  EXPECT_TRUE(is_problem(call("PATCH", path, "", a.token), 400));
  EXPECT_EQ(body_of(call("GET", path, {}, a.token)), task);
  EXPECT_EQ(listener_.changed, std::vector<TaskId>{task["id"].get<TaskId>()});  // creation only
}

TEST_F(ApiTest, DeleteThen404) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const std::string path = "/tasks/" + std::to_string(id);
  const Response r = call("DELETE", path, {}, a.token);
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(is_problem(call("GET", path, {}, a.token), 404));
  EXPECT_TRUE(is_problem(call("DELETE", path, {}, a.token), 404));
  EXPECT_TRUE(is_problem(call("GET", path + "/status", {}, a.token), 404));
  EXPECT_TRUE(body_of(call("GET", "/tasks", {}, a.token))["items"].empty());
}

TEST_F(ApiTest, StatusHasExactlyTheContractFields) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const Response r = call("GET", "/tasks/" + std::to_string(id) + "/status", {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.route, "/tasks/{task_id}/status");
  const json s = body_of(r);
  EXPECT_EQ(keys_of(s), kStatusKeys);
  EXPECT_EQ(s["id"], id);
  EXPECT_EQ(s["last_execution_status"], "pending");
  for (const char* key :
       {"execution_time", "last_execute_time", "last_execution_error", "last_execution_data"})
    EXPECT_TRUE(s.at(key).is_null()) << key;
  EXPECT_EQ(s["consecutive_failures"], 0);
  EXPECT_EQ(s["suspended"], false);
  // Planned at creation (job_routes_test.cpp checks the value).
  EXPECT_TRUE(s["next_run_at"].is_string()) << s;
}

TEST_F(ApiTest, ResetAttemptReturnsTheTask) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  clock_.advance(std::chrono::seconds(1));
  const Response r = call("POST", "/tasks/" + std::to_string(id) + "/reset-attempt", {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  const json t = body_of(r);
  EXPECT_EQ(keys_of(t), kTaskKeys);
  EXPECT_EQ(t["id"], id);
  EXPECT_EQ(t["consecutive_failures"], 0);
  EXPECT_EQ(t["suspended"], false);
}

TEST_F(ApiTest, ListenerHearsOfEveryCommittedChange) {
  const Account a = add_user("alice");
  const TaskId one = create_task(a)["id"];
  const TaskId two = create_task(a)["id"];
  const std::string path = "/tasks/" + std::to_string(one);
  ASSERT_EQ(call("PATCH", path, R"({"name": "x"})", a.token).status, 200);
  ASSERT_EQ(call("POST", path + "/reset-attempt", {}, a.token).status, 200);
  ASSERT_EQ(call("GET", path, {}, a.token).status, 200);  // reads are not changes
  ASSERT_EQ(call("DELETE", "/tasks/" + std::to_string(two), {}, a.token).status, 204);
  EXPECT_EQ(listener_.changed, (std::vector<TaskId>{one, two, one, one}));
  EXPECT_EQ(listener_.deleted, std::vector<TaskId>{two});
}

TEST_F(ApiTest, WorksWithoutAListener) {
  Metrics metrics;
  RestApi api(*store_, *auth_, clock_, metrics, nullptr, nullptr);
  const Account a = add_user("alice");
  Request request;
  request.method = "POST";
  request.path = "/tasks";
  request.body = std::string(kSeedTask);
  request.headers.emplace_back("authorization", "Bearer " + a.token);
  const Response created = api.handle(request);
  ASSERT_EQ(created.status, 201) << created.body;
  request.method = "DELETE";
  request.path = header(created, "Location");
  request.body.clear();
  EXPECT_EQ(api.handle(request).status, 204);
}

TEST_F(ApiTest, StoreUnavailableIs503AndLogged) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  store_->unavailable = true;
  const Response r = call("GET", "/tasks/" + std::to_string(id), {}, a.token);
  ASSERT_TRUE(is_problem(r, 503));
  EXPECT_NE(log_text().find(body_of(r)["request_id"].get<std::string>()), std::string::npos)
      << log_text();
  EXPECT_TRUE(is_problem(call("GET", "/tasks", {}, a.token), 503));
  EXPECT_TRUE(is_problem(call("POST", "/tasks", std::string(kSeedTask), a.token), 503));
}

TEST_F(ApiTest, ExceptionInAHandlerIs500WithTheRequestIdLogged) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  store_->throw_on_get_task = true;
  const Response r = call("GET", "/tasks/" + std::to_string(id), {}, a.token);
  ASSERT_TRUE(is_problem(r, 500));
  const std::string request_id = body_of(r)["request_id"];
  EXPECT_NE(log_text().find(request_id), std::string::npos) << log_text();
  EXPECT_NE(log_text().find("broken invariant"), std::string::npos) << log_text();
  EXPECT_EQ(r.body.find("broken invariant"), std::string::npos);
}

}  // namespace
}  // namespace fetchd::api::testing
