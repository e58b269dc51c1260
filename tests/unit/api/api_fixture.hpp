// The fixture of the handler tests: the real RestApi over the real SQLite store (in memory)
// and the real AuthService, driven with api::Request objects (no sockets). Users and tokens
// are made directly in the store, skipping Argon2 where the test is not about passwords.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

#include "api/rest_api.hpp"
#include "auth/auth_service.hpp"
#include "core/metrics.hpp"
#include "core/task_events.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/fake_clock.hpp"
#include "support/forwarding_store.hpp"

namespace fetchd::api::testing {

using nlohmann::json;

using test::FakeClock;

class RecordingListener final : public TaskChangeListener {
 public:
  void task_changed(TaskId id) override { changed.push_back(id); }
  void task_deleted(TaskId id) override { deleted.push_back(id); }
  // Accepts every run, unless told to answer with `run_error` (kConflict: one in flight).
  Result<TimePoint> request_run(TaskId id) override {
    run_requests.push_back(id);
    if (run_error) return tl::unexpected(*run_error);
    return run_at;
  }
  std::vector<TaskId> changed;
  std::vector<TaskId> deleted;
  std::vector<TaskId> run_requests;
  std::optional<Error> run_error;
  TimePoint run_at = from_unix_ms(1'700'000'000'000);
};

// The real store, which can be told to play a lost database (kUnavailable) or to break an
// invariant (throw), neither of which SQLite does on demand.
class SwitchableStore final : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool unavailable = false;
  bool throw_on_get_task = false;
  bool fail_set_next_run = false;  // only set_next_run answers kUnavailable
  bool corrupt_data = false;       // get_data returns a body that is not JSON

  Result<void> ping() override {
    if (unavailable) return down();
    return ForwardingStore::ping();
  }
  Result<User> create_user(const NewUser& user, TimePoint now) override {
    if (unavailable) return down();
    return ForwardingStore::create_user(user, now);
  }
  Result<User> find_user_by_name(const std::string& name) override {
    if (unavailable) return down();
    return ForwardingStore::find_user_by_name(name);
  }
  Result<User> find_token_user(const std::string& hash, TimePoint now) override {
    if (unavailable) return down();
    return ForwardingStore::find_token_user(hash, now);
  }
  Result<Task> create_task(UserId owner, const TaskSpec& spec, TimePoint now) override {
    if (unavailable) return down();
    return ForwardingStore::create_task(owner, spec, now);
  }
  Result<Task> get_task(TaskId id) override {
    if (throw_on_get_task) throw std::logic_error("broken invariant in get_task");
    if (unavailable) return down();
    return ForwardingStore::get_task(id);
  }
  Result<Page<Task>> list_tasks(const TaskQuery& query) override {
    if (unavailable) return down();
    return ForwardingStore::list_tasks(query);
  }
  Result<void> set_next_run(TaskId id, std::optional<TimePoint> next_run_at) override {
    if (fail_set_next_run) return down();
    return ForwardingStore::set_next_run(id, next_run_at);
  }
  Result<Page<Job>> list_jobs(const JobQuery& query) override {
    if (unavailable) return down();
    return ForwardingStore::list_jobs(query);
  }
  Result<Job> get_job(JobId id) override {
    if (unavailable) return down();
    return ForwardingStore::get_job(id);
  }
  Result<Data> get_data(DataId id) override {
    if (unavailable) return down();
    if (corrupt_data) {
      auto data = ForwardingStore::get_data(id);
      if (data) data->body = "{\"truncated\": [1, 2";
      return data;
    }
    return ForwardingStore::get_data(id);
  }

 private:
  static tl::unexpected<Error> down() {
    return fail(ErrorCode::kUnavailable, "the database is unavailable", "disk I/O error (test)");
  }
};

struct Account {
  User user;
  std::string token;
};

// The seed's example body, verbatim.
inline constexpr std::string_view kSeedTask = R"({"name": "amazingexpo",
 "url": "https://example.com/php-architecture/",
 "parameters": "{}", "start_time": "2023-01-04T21:41:38.930Z",
 "end_time": "2033-01-04T21:41:38.930Z", "task_interval": 2,
 "max_execution_time": 0, "max_attempt": 3})";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { build(auth::AuthSettings{}); }

  // (Re)builds the API with these auth settings over a fresh database.
  void build(auth::AuthSettings settings) {
    api_.reset();
    auth_.reset();
    auto opened = open_sqlite_store(":memory:");
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::make_unique<SwitchableStore>(std::move(*opened));
    auto migrated = store_->migrate();
    ASSERT_TRUE(migrated) << migrated.error().message << " " << migrated.error().internal;
    auth_ = std::make_unique<auth::AuthService>(*store_, clock_, settings);
    log_stream_ = std::make_shared<std::ostringstream>();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_stream_);
    log_ = std::make_shared<spdlog::logger>("api-test", sink);
    metrics_ = std::make_unique<Metrics>();
    api_ = std::make_unique<RestApi>(*store_, *auth_, clock_, *metrics_, log_, &listener_);
  }

  // A user with a valid token, made in the store directly (no password hashing).
  Account add_user(const std::string& name, Role role = Role::kUser) {
    auto user = store_->create_user(NewUser{name, "$argon2id$unused", role}, clock_.now());
    EXPECT_TRUE(user) << user.error().message;
    const auto token = auth::generate_token();
    auto stored = store_->create_token(
        TokenRecord{token.hash, user->id, clock_.now(), clock_.now() + std::chrono::hours(1)});
    EXPECT_TRUE(stored) << stored.error().message;
    return Account{*user, token.token};
  }

  Response call(std::string method, std::string path, std::string body = {},
                const std::string& token = {}, std::string query = {}) {
    Request request;
    request.method = std::move(method);
    request.path = std::move(path);
    request.query = std::move(query);
    request.body = std::move(body);
    request.request_id = "req-" + std::to_string(++request_count_);
    if (!token.empty()) request.headers.emplace_back("authorization", "Bearer " + token);
    return api_->handle(request);
  }

  // Creates the seed's task (with overrides) as `who`; fails the test unless 201.
  json create_task(const Account& who, const json& overrides = json::object()) {
    json body = json::parse(kSeedTask);
    body.update(overrides);
    const Response r = call("POST", "/tasks", body.dump(), who.token);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body);
  }

  static json body_of(const Response& r) { return json::parse(r.body); }

  static std::string header(const Response& r, std::string_view name) {
    for (const auto& [n, v] : r.headers)
      if (n == name) return v;
    return {};
  }

  std::string log_text() const {
    log_->flush();
    return log_stream_->str();
  }

  FakeClock clock_;
  RecordingListener listener_;
  std::unique_ptr<SwitchableStore> store_;
  std::unique_ptr<auth::AuthService> auth_;
  std::shared_ptr<std::ostringstream> log_stream_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<RestApi> api_;
  int request_count_ = 0;
};

// A problem+json answer with this status and a request id; with `fields`, `errors` lists
// exactly those fields, each with a message.
inline ::testing::AssertionResult is_problem(
    const Response& r, int status, const std::optional<std::set<std::string>>& fields = {}) {
  if (r.status != status)
    return ::testing::AssertionFailure()
           << "status " << r.status << ", not " << status << ": " << r.body;
  if (r.content_type != "application/problem+json")
    return ::testing::AssertionFailure() << "content type " << r.content_type;
  const json body = json::parse(r.body, nullptr, false);
  if (!body.is_object() || body.value("status", 0) != status ||
      body.value("type", "") != "about:blank" || !body.contains("title") ||
      !body["detail"].is_string() || !body.value("request_id", "").starts_with("req-"))
    return ::testing::AssertionFailure() << "not a problem body: " << r.body;
  if (fields) {
    std::set<std::string> listed;
    for (const auto& e : body.value("errors", json::array())) {
      if (!e["message"].is_string() || e["message"].get<std::string>().empty())
        return ::testing::AssertionFailure() << "error without a message: " << r.body;
      listed.insert(e["field"].get<std::string>());
    }
    if (listed != *fields) return ::testing::AssertionFailure() << "fields differ: " << r.body;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace fetchd::api::testing
