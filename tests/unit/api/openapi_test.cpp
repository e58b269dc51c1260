// /openapi.json against the router (the same (method, path) set, both ways), against the
// behaviour (bearer security exactly on the routes that answer 401 without a token; the
// bounds it states are the bounds enforced), and Swagger UI's page and assets.
#include <regex>

#include "api/routes.hpp"
#include "api_fixture.hpp"

namespace fetchd::api::testing {
namespace {

using Operations = std::set<std::pair<std::string, std::string>>;  // (METHOD, path)

const std::set<std::string> kHttpMethods = {"get",     "put",  "post",  "delete",
                                            "options", "head", "patch", "trace"};

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Operations spec_operations(const json& spec) {
  Operations out;
  for (const auto& [path, item] : spec["paths"].items())
    for (const auto& [method, op] : item.items())
      if (kHttpMethods.contains(method)) out.emplace(upper(method), path);
  return out;
}

Operations route_operations(const std::vector<RouteInfo>& routes) {
  Operations out;
  for (const auto& r : routes) out.emplace(r.method, r.pattern);
  return out;
}

// "" when equal, else what each side lacks.
std::string difference(const Operations& spec, const Operations& routes) {
  std::string out;
  for (const auto& op : routes)
    if (!spec.contains(op))
      out += "served but not in the spec: " + op.first + " " + op.second + "\n";
  for (const auto& op : spec)
    if (!routes.contains(op))
      out += "in the spec but not served: " + op.first + " " + op.second + "\n";
  return out;
}

class OpenApiTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    const Response r = call("GET", "/openapi.json");
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.content_type, "application/json");
    spec_ = json::parse(r.body);
  }
  // The JSON a local $ref points at.
  json resolve(const json& value) const {
    if (!value.is_object() || !value.contains("$ref")) return value;
    const std::string ref = value["$ref"];
    EXPECT_TRUE(ref.starts_with("#/")) << ref;
    return spec_.at(json::json_pointer(ref.substr(1)));
  }
  json spec_;
};

TEST_F(OpenApiTest, IsOpenApi31WithOurVersion) {
  EXPECT_EQ(spec_["openapi"], "3.1.0");
  EXPECT_EQ(spec_["info"]["version"], FETCHD_VERSION);
  EXPECT_FALSE(spec_["info"]["title"].get<std::string>().empty());
}

TEST_F(OpenApiTest, DescribesExactlyTheRoutesTheRouterServes) {
  const Operations spec = spec_operations(spec_);
  const Operations routes = route_operations(api_->routes());
  EXPECT_EQ(difference(spec, routes), "");
  EXPECT_EQ(routes.size(), api_->routes().size()) << "a route is registered twice";
  // The contract's routes are all there (guards against both sides losing one together).
  for (const auto& op : Operations{{"GET", "/healthz"},
                                   {"GET", "/readyz"},
                                   {"GET", "/openapi.json"},
                                   {"GET", "/swagger-ui"},
                                   {"POST", "/register"},
                                   {"POST", "/login"},
                                   {"POST", "/logout"},
                                   {"GET", "/me"},
                                   {"POST", "/tasks"},
                                   {"GET", "/tasks"},
                                   {"GET", "/tasks/{task_id}"},
                                   {"PATCH", "/tasks/{task_id}"},
                                   {"DELETE", "/tasks/{task_id}"},
                                   {"GET", "/tasks/{task_id}/status"},
                                   {"POST", "/tasks/{task_id}/reset-attempt"},
                                   {"POST", "/tasks/{task_id}/run"},
                                   {"POST", "/tasks/{task_id}/pause"},
                                   {"POST", "/tasks/{task_id}/resume"},
                                   {"GET", "/tasks/{task_id}/jobs"},
                                   {"GET", "/tasks/{task_id}/data/latest"},
                                   {"GET", "/jobs/{job_id}"},
                                   {"GET", "/metrics"}})
    EXPECT_TRUE(spec.contains(op)) << op.first << " " << op.second;
}

TEST_F(OpenApiTest, TheComparisonFailsInBothDirections) {
  Operations routes = route_operations(api_->routes());
  const Operations spec = spec_operations(spec_);
  routes.emplace("GET", "/undocumented");
  EXPECT_NE(difference(spec, routes).find("served but not in the spec: GET /undocumented"),
            std::string::npos);
  routes = route_operations(api_->routes());
  routes.erase({"GET", "/me"});
  EXPECT_NE(difference(spec, routes).find("in the spec but not served: GET /me"),
            std::string::npos);
}

TEST_F(OpenApiTest, OperationIdsAreUnique) {
  std::set<std::string> ids;
  std::size_t operations = 0;
  for (const auto& [path, item] : spec_["paths"].items())
    for (const auto& [method, op] : item.items())
      if (kHttpMethods.contains(method)) {
        ++operations;
        ids.insert(op.at("operationId").get<std::string>());
      }
  EXPECT_EQ(ids.size(), operations);
}

TEST_F(OpenApiTest, EveryRefResolves) {
  std::vector<const json*> stack{&spec_};
  int refs = 0;
  while (!stack.empty()) {
    const json* node = stack.back();
    stack.pop_back();
    if (node->is_object() && node->contains("$ref")) {
      ++refs;
      const std::string ref = (*node)["$ref"];
      EXPECT_NO_THROW(spec_.at(json::json_pointer(ref.substr(1)))) << ref;
    }
    if (node->is_structured())
      for (const auto& child : *node) stack.push_back(&child);
  }
  EXPECT_GT(refs, 20);
}

TEST_F(OpenApiTest, BearerSecurityIsOnExactlyTheRoutesThatNeedAToken) {
  const auto& scheme = spec_["components"]["securitySchemes"]["bearerAuth"];
  EXPECT_EQ(scheme["type"], "http");
  EXPECT_EQ(scheme["scheme"], "bearer");
  EXPECT_FALSE(spec_.contains("security"));
  for (const auto& [path, item] : spec_["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      if (!kHttpMethods.contains(method)) continue;
      ASSERT_FALSE(op["responses"].empty()) << method << " " << path;
      // Call it without a token, with a path id that exists for no one.
      const std::string concrete = std::regex_replace(path, std::regex("\\{[^}]+\\}"), "1");
      const Response r = call(upper(method), concrete, std::string(kSeedTask));
      const bool needs_token = r.status == 401;
      EXPECT_EQ(op.contains("security"), needs_token) << method << " " << path;
      if (needs_token) {
        EXPECT_EQ(op["security"], json::parse(R"([{"bearerAuth": []}])"));
        EXPECT_TRUE(op["responses"].contains("401")) << method << " " << path;
      }
      // Every documented status is a string key of an object with a description.
      for (const auto& [status, response] : op["responses"].items())
        EXPECT_TRUE(resolve(response).contains("description"))
            << method << " " << path << " " << status;
    }
  }
}

TEST_F(OpenApiTest, ProblemAndResourceSchemasMatchTheRepresentations) {
  const auto& schemas = spec_["components"]["schemas"];
  const Account a = add_user("alice");
  const json task = create_task(a);
  const auto required = [&](const char* name) {
    std::set<std::string> keys;
    for (const auto& k : schemas[name]["required"]) keys.insert(k.get<std::string>());
    return keys;
  };
  const auto keys = [](const json& o) {
    std::set<std::string> out;
    for (const auto& [k, v] : o.items()) out.insert(k);
    return out;
  };
  EXPECT_EQ(required("Task"), keys(task));
  EXPECT_EQ(keys(schemas["Task"]["properties"]), keys(task));
  const Response status =
      call("GET", "/tasks/" + std::to_string(task["id"].get<TaskId>()) + "/status", {}, a.token);
  EXPECT_EQ(required("Status"), keys(body_of(status)));
  EXPECT_EQ(keys(schemas["Status"]["properties"]), keys(body_of(status)));
  EXPECT_EQ(required("User"), keys(body_of(call("GET", "/me", {}, a.token))));
  EXPECT_EQ(required("TaskList"), keys(body_of(call("GET", "/tasks", {}, a.token))));
  const json problem = body_of(call("GET", "/nope"));
  for (const auto& k : keys(problem))
    EXPECT_TRUE(schemas["Problem"]["properties"].contains(k)) << k;
}

TEST_F(OpenApiTest, EngineSchemasMatchTheRepresentations) {
  const auto& schemas = spec_["components"]["schemas"];
  const auto required = [&](const char* name) {
    std::set<std::string> keys;
    for (const auto& k : schemas[name]["required"]) keys.insert(k.get<std::string>());
    return keys;
  };
  const auto properties = [&](const char* name) {
    std::set<std::string> keys;
    for (const auto& [k, v] : schemas[name]["properties"].items()) keys.insert(k);
    return keys;
  };
  const auto keys = [](const json& o) {
    std::set<std::string> out;
    for (const auto& [k, v] : o.items()) out.insert(k);
    return out;
  };
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  RunRecord run;
  run.job.task_id = id;
  run.job.scheduled_at = clock_.now();
  run.job.status = JobStatus::kSucceeded;
  run.body = R"([{"id": "x"}])";
  run.content_hash = "abc";
  auto recorded = store_->record_runs({run});
  ASSERT_TRUE(recorded) << recorded.error().message;
  const std::string task = "/tasks/" + std::to_string(id);

  const json list = body_of(call("GET", task + "/jobs", {}, a.token));
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(required("JobList"), keys(list));
  EXPECT_EQ(required("Job"), keys(list["items"][0]));
  EXPECT_EQ(properties("Job"), keys(list["items"][0]));
  const json job =
      body_of(call("GET", "/jobs/" + std::to_string(recorded->front().job_id), {}, a.token));
  EXPECT_EQ(required("JobWithData"), keys(job));
  EXPECT_EQ(properties("JobWithData"), keys(job));
  const json latest = body_of(call("GET", task + "/data/latest", {}, a.token));
  EXPECT_EQ(required("LatestData"), keys(latest));
  EXPECT_EQ(properties("LatestData"), keys(latest));
  const Response accepted = call("POST", task + "/run", {}, a.token);
  ASSERT_EQ(accepted.status, 202);
  EXPECT_TRUE(spec_["paths"]["/tasks/{task_id}/run"]["post"]["responses"].contains("202"));
  EXPECT_EQ(required("RunAccepted"), keys(body_of(accepted)));
  EXPECT_EQ(properties("RunAccepted"), keys(body_of(accepted)));
  // The status values a job has are the ones the filter accepts.
  std::set<std::string> statuses;
  for (const auto& v : schemas["Job"]["properties"]["status"]["enum"]) statuses.insert(v);
  json filter;
  for (const auto& p : spec_["paths"]["/tasks/{task_id}/jobs"]["get"]["parameters"])
    if (p["name"] == "status") filter = p["schema"];
  std::set<std::string> filter_values;
  for (const auto& v : filter["enum"]) filter_values.insert(v);
  EXPECT_EQ(filter_values, statuses);
  EXPECT_EQ(statuses.size(), 6u);
  for (const auto& status : statuses) {
    EXPECT_EQ(call("GET", task + "/jobs", {}, a.token, "status=" + status).status, 200) << status;
    EXPECT_TRUE(job_status_from_string(status).has_value()) << status;
  }
  EXPECT_EQ(call("GET", task + "/jobs", {}, a.token, "status=pending").status, 422);
}

TEST_F(OpenApiTest, MetricsIsDocumentedAsPrometheusText) {
  const auto& op = spec_["paths"]["/metrics"]["get"];
  EXPECT_FALSE(op.contains("security"));
  EXPECT_TRUE(op["responses"]["200"]["content"].contains("text/plain"));
  const Response r = call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.content_type.starts_with("text/plain")) << r.content_type;
}

// The integer bounds the spec states for a task are the ones the API enforces: at each bound
// 201, one step beyond 422.
TEST_F(OpenApiTest, TaskBoundsInTheSpecAreTheEnforcedOnes) {
  const Account a = add_user("alice");
  const auto& properties = spec_["components"]["schemas"]["TaskInput"]["properties"];
  const auto status_with = [&](const std::string& field, const json& value) {
    json body = json::parse(kSeedTask);
    body[field] = value;
    return call("POST", "/tasks", body.dump(), a.token).status;
  };
  int checked = 0;
  for (const auto& [field, schema] : properties.items()) {
    if (schema.contains("minimum")) {
      const std::int64_t min = schema["minimum"];
      EXPECT_EQ(status_with(field, min), 201) << field;
      EXPECT_EQ(status_with(field, min - 1), 422) << field;
      ++checked;
    }
    if (schema.contains("maximum")) {
      const std::int64_t max = schema["maximum"];
      EXPECT_EQ(status_with(field, max), 201) << field;
      EXPECT_EQ(status_with(field, max + 1), 422) << field;
      ++checked;
    }
    if (schema.contains("maxLength") && field == "name") {
      const std::size_t max = schema["maxLength"];
      EXPECT_EQ(status_with(field, std::string(max, 'n')), 201);
      EXPECT_EQ(status_with(field, std::string(max + 1, 'n')), 422);
      EXPECT_EQ(status_with(field, std::string(schema["minLength"].get<std::size_t>() - 1, 'n')),
                422);
      ++checked;
    }
    if (schema.contains("maxLength") && field == "url") {
      const std::size_t max = schema["maxLength"];
      const std::string base = "https://example.com/";
      EXPECT_EQ(status_with(field, base + std::string(max - base.size(), 'p')), 201);
      EXPECT_EQ(status_with(field, base + std::string(max + 1 - base.size(), 'p')), 422);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8);  // task_interval, max_execution_time, max_attempt (x2), name, url
}

TEST_F(OpenApiTest, AccountBoundsInTheSpecAreTheEnforcedOnes) {
  const auto& properties = spec_["components"]["schemas"]["Credentials"]["properties"];
  const std::size_t user_min = properties["username"]["minLength"];
  const std::size_t user_max = properties["username"]["maxLength"];
  const std::size_t pass_min = properties["password"]["minLength"];
  const std::size_t pass_max = properties["password"]["maxLength"];
  EXPECT_TRUE(auth::validate_username(std::string(user_min, 'u')).empty());
  EXPECT_TRUE(auth::validate_username(std::string(user_max, 'u')).empty());
  EXPECT_FALSE(auth::validate_username(std::string(user_min - 1, 'u')).empty());
  EXPECT_FALSE(auth::validate_username(std::string(user_max + 1, 'u')).empty());
  EXPECT_TRUE(auth::validate_password(std::string(pass_min, 'p')).empty());
  EXPECT_TRUE(auth::validate_password(std::string(pass_max, 'p')).empty());
  EXPECT_FALSE(auth::validate_password(std::string(pass_min - 1, 'p')).empty());
  EXPECT_FALSE(auth::validate_password(std::string(pass_max + 1, 'p')).empty());
  const std::regex pattern(properties["username"]["pattern"].get<std::string>());
  EXPECT_TRUE(std::regex_match("a.b-c_D9", pattern));
  EXPECT_TRUE(auth::validate_username("a.b-c_D9").empty());
  EXPECT_FALSE(std::regex_match("a b", pattern));
  EXPECT_FALSE(auth::validate_username("a b!").empty());
}

TEST_F(OpenApiTest, ListLimitBoundsAreTheEnforcedOnes) {
  const Account a = add_user("alice");
  const std::string jobs = "/tasks/" + std::to_string(create_task(a)["id"].get<TaskId>()) + "/jobs";
  for (const auto& [documented, path] :
       {std::pair<std::string, std::string>{"/tasks", "/tasks"},
        std::pair<std::string, std::string>{"/tasks/{task_id}/jobs", jobs}}) {
    json limit;
    for (const auto& p : spec_["paths"][documented]["get"]["parameters"])
      if (p["name"] == "limit") limit = p["schema"];
    ASSERT_TRUE(limit.is_object()) << documented;
    const std::int64_t min = limit["minimum"], max = limit["maximum"];
    EXPECT_EQ(call("GET", path, {}, a.token, "limit=" + std::to_string(min)).status, 200);
    EXPECT_EQ(call("GET", path, {}, a.token, "limit=" + std::to_string(max)).status, 200);
    EXPECT_EQ(call("GET", path, {}, a.token, "limit=" + std::to_string(min - 1)).status, 422);
    EXPECT_EQ(call("GET", path, {}, a.token, "limit=" + std::to_string(max + 1)).status, 422);
  }
}

TEST_F(OpenApiTest, SwaggerUiPageLoadsLocalAssetsAndOurSpec) {
  const Response page = call("GET", "/swagger-ui");
  ASSERT_EQ(page.status, 200);
  EXPECT_TRUE(page.content_type.starts_with("text/html")) << page.content_type;
  const std::regex ref(R"re((?:src|href)="([^"]+)")re");
  std::vector<std::string> refs;
  for (auto it = std::sregex_iterator(page.body.begin(), page.body.end(), ref);
       it != std::sregex_iterator(); ++it)
    refs.push_back((*it)[1]);
  ASSERT_GE(refs.size(), 4u);
  std::string scripts;
  for (const auto& path : refs) {
    EXPECT_TRUE(path.starts_with("/swagger-ui/")) << path;
    const Response r = call("GET", path);
    ASSERT_EQ(r.status, 200) << path;
    if (path.ends_with(".js") && !path.ends_with("bundle.js")) scripts += r.body;
  }
  EXPECT_NE(scripts.find("url: \"/openapi.json\""), std::string::npos) << scripts;
  EXPECT_NE(scripts.find("persistAuthorization: true"), std::string::npos) << scripts;
  EXPECT_EQ(scripts.find("petstore"), std::string::npos);
}

TEST_F(OpenApiTest, EverySwaggerAssetIsServedWithItsTypeAndCached) {
  const auto assets = swagger_assets();
  std::set<std::string> names;
  for (const auto& asset : assets) {
    names.insert(asset.path);
    const Response r = call("GET", asset.path);
    ASSERT_EQ(r.status, 200) << asset.path;
    EXPECT_FALSE(r.body.empty()) << asset.path;
    EXPECT_EQ(r.content_type, asset.content_type);
    EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=86400") << asset.path;
    EXPECT_EQ(r.route, asset.path);
    if (asset.path.ends_with(".css")) {
      EXPECT_EQ(r.content_type, "text/css; charset=utf-8");
    }
    if (asset.path.ends_with(".js")) {
      EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
    }
    if (asset.path.ends_with(".png")) {
      EXPECT_EQ(r.content_type, "image/png");
      EXPECT_TRUE(r.body.starts_with("\x89PNG"));
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{
                       "/swagger-ui/swagger-ui.css", "/swagger-ui/swagger-ui-bundle.js",
                       "/swagger-ui/swagger-ui-standalone-preset.js",
                       "/swagger-ui/favicon-32x32.png", "/swagger-ui/swagger-initializer.js"}));
  EXPECT_GT(call("GET", "/swagger-ui/swagger-ui-bundle.js").body.size(), 100'000u);
  EXPECT_TRUE(is_problem(call("GET", "/swagger-ui/no-such-file.js"), 404));
  EXPECT_TRUE(is_problem(call("GET", "/swagger-ui/index.html"), 404));
}

}  // namespace
}  // namespace fetchd::api::testing
