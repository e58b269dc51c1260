// The execution engine's routes over the real store, with runs recorded through
// Store::record_runs as the workers do: a task's jobs (newest first, pages, status filter), a
// job with its document, the latest data, the status filled from a run, run now (202, 409,
// 503), pause and resume, when next_run_at is set by create, update, reset, pause and resume,
// ownership (another user's task or job is 404), and GET /metrics counting the requests.
#include <functional>

#include "api_fixture.hpp"

namespace fetchd::api::testing {
namespace {

using namespace std::chrono_literals;

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& [k, v] : object.items()) keys.insert(k);
  return keys;
}

const std::set<std::string> kJobKeys = {
    "id",          "task_id",        "attempt",   "scheduled_at", "started_at", "finished_at",
    "duration_ms", "execution_time", "status",    "http_status",  "error",      "response_bytes",
    "records",     "changed",        "worker_id", "data_id"};

const TimePoint kSeedStart = *parse_rfc3339("2023-01-04T21:41:38.930Z");

// The seed task's first due time at or after `t` (start + k * 2 s), computed here without
// core's schedule functions.
TimePoint seed_due_at_or_after(TimePoint t, std::int64_t interval_s = 2) {
  const std::int64_t step = interval_s * 1000;
  const std::int64_t elapsed = to_unix_ms(t) - to_unix_ms(kSeedStart);
  if (elapsed <= 0) return kSeedStart;
  return kSeedStart + Millis(((elapsed + step - 1) / step) * step);
}

constexpr std::string_view kAttendees =
    R"([{"id": "bdc3ab3979cb", "name_first": "Ada", "name_last": "Lovelace"},
        {"id": "0f1e2d3c4b5a", "name_first": "Alan", "name_last": "Turing"}])";

class EngineRoutesTest : public ApiTest {
 protected:
  // Records one finished run of `task` as a worker would; a success stores `body`.
  RecordedRun record_run(TaskId task, JobStatus status, TimePoint scheduled_at,
                         std::optional<std::string> body = std::nullopt,
                         std::optional<TimePoint> next_run_at = std::nullopt) {
    RunRecord r;
    r.job.task_id = task;
    r.job.attempt = 1;
    r.job.scheduled_at = scheduled_at;
    r.job.started_at = scheduled_at + 5ms;
    r.job.finished_at = scheduled_at + 130ms;
    r.job.duration_ms = 125;
    r.job.status = status;
    r.job.worker_id = "worker-1";
    if (status == JobStatus::kSucceeded) {
      const std::string document = body.value_or(std::string(kAttendees));
      r.job.http_status = 200;
      r.job.response_bytes = static_cast<std::int64_t>(document.size());
      r.job.records = 2;
      r.body = document;
      r.content_hash = std::to_string(std::hash<std::string>{}(document));
    } else if (status == JobStatus::kFailed) {
      r.job.http_status = 503;
      r.job.error = "HTTP 503 Service Unavailable";
    }
    r.next_run_at = next_run_at;
    r.update_task = status != JobStatus::kSkipped;
    auto recorded = store_->record_runs({r});
    EXPECT_TRUE(recorded) << recorded.error().message << " " << recorded.error().internal;
    EXPECT_EQ(recorded->size(), 1u);
    EXPECT_NE(recorded->front().job_id, 0);
    return recorded->front();
  }

  static std::string task_path(TaskId id) { return "/tasks/" + std::to_string(id); }
  static std::string job_path(JobId id) { return "/jobs/" + std::to_string(id); }

  TimePoint at(int seconds) const { return kSeedStart + std::chrono::seconds(seconds); }
};

// --- GET /tasks/{task_id}/jobs ---

TEST_F(EngineRoutesTest, JobsAreListedNewestFirstAcrossPages) {
  const Account a = add_user("alice");
  const Account b = add_user("bob");
  const TaskId mine = create_task(a)["id"];
  const TaskId theirs = create_task(b)["id"];
  std::vector<JobId> recorded;
  for (int i = 0; i < 7; ++i) {
    const auto status = i % 3 == 1 ? JobStatus::kFailed : JobStatus::kSucceeded;
    recorded.push_back(record_run(mine, status, at(2 * i)).job_id);
    record_run(theirs, JobStatus::kSucceeded, at(2 * i));  // interleaved ids of another task
  }
  const std::vector<JobId> newest_first(recorded.rbegin(), recorded.rend());

  std::vector<std::size_t> sizes;
  std::vector<JobId> seen;
  std::string cursor;
  for (int page = 0; page < 4; ++page) {  // one more than needed: a cursor that never ends fails
    const std::string query = "limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor);
    const Response r = call("GET", task_path(mine) + "/jobs", {}, a.token, query);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.route, "/tasks/{task_id}/jobs");
    const json body = body_of(r);
    EXPECT_EQ(keys_of(body), (std::set<std::string>{"items", "next_cursor"}));
    sizes.push_back(body["items"].size());
    for (const auto& job : body["items"]) {
      EXPECT_EQ(keys_of(job), kJobKeys);
      EXPECT_EQ(job["task_id"], mine);
      seen.push_back(job["id"]);
    }
    if (body["next_cursor"].is_null()) break;
    cursor = body["next_cursor"];
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
  EXPECT_EQ(seen, newest_first);

  const Response all = call("GET", task_path(mine) + "/jobs", {}, a.token);  // default 100
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(body_of(all)["items"].size(), 7u);
  EXPECT_TRUE(body_of(all)["next_cursor"].is_null());
  const Response one = call("GET", task_path(mine) + "/jobs", {}, a.token, "limit=1&cursor=");
  EXPECT_EQ(body_of(one)["items"].size(), 1u);
  EXPECT_EQ(body_of(one)["items"][0]["id"], newest_first.front());
  EXPECT_TRUE(body_of(one)["next_cursor"].is_string());
}

TEST_F(EngineRoutesTest, JobFieldsAreTheRecordedRun) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const RecordedRun ok = record_run(id, JobStatus::kSucceeded, at(0));
  const RecordedRun failed = record_run(id, JobStatus::kFailed, at(2));
  const json items = body_of(call("GET", task_path(id) + "/jobs", {}, a.token))["items"];
  ASSERT_EQ(items.size(), 2u);
  const json& f = items[0];
  EXPECT_EQ(f["id"], failed.job_id);
  EXPECT_EQ(f["status"], "failed");
  EXPECT_EQ(f["attempt"], 1);
  EXPECT_EQ(f["scheduled_at"], format_rfc3339(at(2)));
  EXPECT_EQ(f["started_at"], format_rfc3339(at(2) + 5ms));
  EXPECT_EQ(f["finished_at"], format_rfc3339(at(2) + 130ms));
  EXPECT_EQ(f["duration_ms"], 125);
  EXPECT_EQ(f["execution_time"], 0.125);
  EXPECT_EQ(f["http_status"], 503);
  EXPECT_EQ(f["error"], "HTTP 503 Service Unavailable");
  EXPECT_EQ(f["worker_id"], "worker-1");
  for (const char* key : {"response_bytes", "records", "data_id"})
    EXPECT_TRUE(f[key].is_null()) << key;
  const json& s = items[1];
  EXPECT_EQ(s["id"], ok.job_id);
  EXPECT_EQ(s["status"], "succeeded");
  EXPECT_EQ(s["http_status"], 200);
  EXPECT_TRUE(s["error"].is_null());
  EXPECT_EQ(s["response_bytes"], kAttendees.size());
  EXPECT_EQ(s["records"], 2);
  EXPECT_EQ(s["changed"], true);
  ASSERT_TRUE(ok.data_id.has_value());
  EXPECT_EQ(s["data_id"], *ok.data_id);
}

TEST_F(EngineRoutesTest, JobsFilterByStatus) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const JobId s1 = record_run(id, JobStatus::kSucceeded, at(0)).job_id;
  const JobId f1 = record_run(id, JobStatus::kFailed, at(2)).job_id;
  const JobId k1 = record_run(id, JobStatus::kSkipped, at(4)).job_id;
  const JobId s2 = record_run(id, JobStatus::kSucceeded, at(6), R"({"v": 2})").job_id;
  const auto ids_for = [&](const std::string& query) {
    const Response r = call("GET", task_path(id) + "/jobs", {}, a.token, query);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    std::vector<JobId> ids;
    const json body = body_of(r);
    for (const auto& job : body["items"]) ids.push_back(job["id"]);
    return ids;
  };
  EXPECT_EQ(ids_for("status=succeeded"), (std::vector<JobId>{s2, s1}));
  EXPECT_EQ(ids_for("status=failed"), std::vector<JobId>{f1});
  EXPECT_EQ(ids_for("status=skipped"), std::vector<JobId>{k1});
  EXPECT_EQ(ids_for("status=timed_out"), std::vector<JobId>{});
  EXPECT_EQ(ids_for("status="), (std::vector<JobId>{s2, k1, f1, s1}));  // blank: no filter
  // The filter holds across pages.
  const Response first =
      call("GET", task_path(id) + "/jobs", {}, a.token, "status=succeeded&limit=1");
  ASSERT_EQ(first.status, 200);
  const std::string cursor = body_of(first)["next_cursor"];
  EXPECT_EQ(ids_for("status=succeeded&limit=1&cursor=" + cursor), std::vector<JobId>{s1});
}

TEST_F(EngineRoutesTest, BadJobListParametersAre422OnTheirField) {
  const Account a = add_user("alice");
  const std::string path = task_path(create_task(a)["id"]) + "/jobs";
  for (const char* status : {"bogus", "SUCCEEDED", "pending", "succeeded,failed"}) {
    EXPECT_TRUE(is_problem(call("GET", path, {}, a.token, std::string("status=") + status), 422,
                           std::set<std::string>{"status"}))
        << status;
  }
  for (const char* limit : {"0", "501", "x", "-1"}) {
    EXPECT_TRUE(is_problem(call("GET", path, {}, a.token, std::string("limit=") + limit), 422,
                           std::set<std::string>{"limit"}))
        << limit;
  }
  EXPECT_EQ(call("GET", path, {}, a.token, "limit=1").status, 200);
  EXPECT_EQ(call("GET", path, {}, a.token, "limit=500").status, 200);
  EXPECT_TRUE(is_problem(call("GET", path, {}, a.token, "cursor=garbage!!"), 422,
                         std::set<std::string>{"cursor"}));
  EXPECT_TRUE(is_problem(call("GET", path, {}, a.token, "status=nope&limit=0&cursor=x!"), 422,
                         std::set<std::string>{"status", "limit", "cursor"}));
}

TEST_F(EngineRoutesTest, JobsOfAnotherUsersTaskAre404AndAnAdminSeesThem) {
  const Account owner = add_user("alice");
  const Account stranger = add_user("bob");
  const Account admin = add_user("root", Role::kAdmin);
  const TaskId id = create_task(owner)["id"];
  record_run(id, JobStatus::kSucceeded, at(0));
  const std::string path = task_path(id) + "/jobs";
  const Response r = call("GET", path, {}, stranger.token);
  ASSERT_TRUE(is_problem(r, 404));
  EXPECT_EQ(body_of(r)["detail"], "task not found");
  EXPECT_TRUE(is_problem(call("GET", path, {}, stranger.token, "status=bogus"), 404));
  EXPECT_TRUE(is_problem(call("GET", path), 401));
  EXPECT_TRUE(is_problem(call("GET", "/tasks/999999/jobs", {}, owner.token), 404));
  EXPECT_TRUE(is_problem(call("GET", "/tasks/abc/jobs", {}, owner.token), 404));
  const Response seen = call("GET", path, {}, admin.token);
  ASSERT_EQ(seen.status, 200);
  EXPECT_EQ(body_of(seen)["items"].size(), 1u);
}

// --- GET /jobs/{job_id} ---

TEST_F(EngineRoutesTest, AJobComesWithItsDocument) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const RecordedRun ok = record_run(id, JobStatus::kSucceeded, at(0));
  const RecordedRun failed = record_run(id, JobStatus::kFailed, at(2));

  const Response r = call("GET", job_path(ok.job_id), {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.route, "/jobs/{job_id}");
  json job = body_of(r);
  std::set<std::string> with_data = kJobKeys;
  with_data.insert("data");
  EXPECT_EQ(keys_of(job), with_data);
  EXPECT_EQ(job["data"], json::parse(kAttendees));
  EXPECT_EQ(job["data"][1]["name_last"], "Turing");
  // The same job as in the list, plus its data.
  job.erase("data");
  EXPECT_EQ(job, body_of(call("GET", task_path(id) + "/jobs", {}, a.token))["items"][1]);

  const Response f = call("GET", job_path(failed.job_id), {}, a.token);
  ASSERT_EQ(f.status, 200) << f.body;
  EXPECT_TRUE(body_of(f)["data"].is_null());
  EXPECT_EQ(body_of(f)["status"], "failed");
}

TEST_F(EngineRoutesTest, AnyJsonDocumentComesBackAsSent) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const std::vector<std::string> documents = {R"("just a string")",
                                              "42",
                                              "null",
                                              "[]",
                                              "{}",
                                              " \n{\"k\": [1, 2.5, true, null]}\n ",
                                              "\xEF\xBB\xBF{\"bom\": 1}",
                                              R"({"uni": "\u00e9\ud83d\ude00 é"})"};
  for (std::size_t i = 0; i < documents.size(); ++i) {
    const JobId job =
        record_run(id, JobStatus::kSucceeded, at(2 * static_cast<int>(i)), documents[i]).job_id;
    const Response r = call("GET", job_path(job), {}, a.token);
    ASSERT_EQ(r.status, 200) << documents[i] << ": " << r.body;
    const json body = body_of(r);
    std::string_view text = documents[i];
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    EXPECT_EQ(body["data"], json::parse(text)) << documents[i];
    EXPECT_EQ(body["id"], job);
  }
}

TEST_F(EngineRoutesTest, ADeeplyNestedDocumentIsServedWithoutRecursing) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const JobId job = record_run(id, JobStatus::kSucceeded, at(0), deep).job_id;
  const Response r = call("GET", job_path(job), {}, a.token);
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(json::accept(r.body));
  EXPECT_TRUE(r.body.ends_with(",\"data\":" + deep + "}"));
}

TEST_F(EngineRoutesTest, ACorruptStoredDocumentIs500AndLogged) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const JobId job = record_run(id, JobStatus::kSucceeded, at(0)).job_id;
  store_->corrupt_data = true;
  const Response r = call("GET", job_path(job), {}, a.token);
  ASSERT_TRUE(is_problem(r, 500));
  EXPECT_NE(log_text().find("not valid JSON"), std::string::npos) << log_text();
  EXPECT_NE(log_text().find(body_of(r)["request_id"].get<std::string>()), std::string::npos);
  EXPECT_TRUE(is_problem(call("GET", task_path(id) + "/status", {}, a.token), 500));
  EXPECT_TRUE(is_problem(call("GET", task_path(id) + "/data/latest", {}, a.token), 500));
}

TEST_F(EngineRoutesTest, AnotherUsersJobIs404AndAnAdminSeesIt) {
  const Account owner = add_user("alice");
  const Account stranger = add_user("bob");
  const Account admin = add_user("root", Role::kAdmin);
  const TaskId id = create_task(owner)["id"];
  const JobId job = record_run(id, JobStatus::kSucceeded, at(0)).job_id;
  const Response r = call("GET", job_path(job), {}, stranger.token);
  ASSERT_TRUE(is_problem(r, 404));
  EXPECT_EQ(body_of(r)["detail"], "job not found");
  EXPECT_EQ(body_of(call("GET", job_path(job + 1000), {}, owner.token))["detail"],
            "job not found");  // the same answer as for an absent job
  for (const char* bad : {"0", "-1", "abc", "01", "1.5", "99999999999999999999999"})
    EXPECT_TRUE(is_problem(call("GET", std::string("/jobs/") + bad, {}, owner.token), 404)) << bad;
  EXPECT_TRUE(is_problem(call("GET", job_path(job)), 401));
  EXPECT_EQ(call("GET", job_path(job), {}, owner.token).status, 200);
  EXPECT_EQ(call("GET", job_path(job), {}, admin.token).status, 200);
  // A deleted task takes its jobs with it.
  ASSERT_EQ(call("DELETE", task_path(id), {}, owner.token).status, 204);
  EXPECT_TRUE(is_problem(call("GET", job_path(job), {}, owner.token), 404));
}

// --- GET /tasks/{task_id}/data/latest ---

TEST_F(EngineRoutesTest, LatestDataIs404BeforeAnySuccessfulRun) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const std::string path = task_path(id) + "/data/latest";
  Response r = call("GET", path, {}, a.token);
  ASSERT_TRUE(is_problem(r, 404));
  EXPECT_EQ(body_of(r)["detail"], "no successful run yet");
  record_run(id, JobStatus::kFailed, at(0));
  r = call("GET", path, {}, a.token);
  ASSERT_TRUE(is_problem(r, 404));
  EXPECT_EQ(body_of(r)["detail"], "no successful run yet");
  r = call("GET", "/tasks/999999/data/latest", {}, a.token);
  ASSERT_TRUE(is_problem(r, 404));
  EXPECT_EQ(body_of(r)["detail"], "task not found");
}

TEST_F(EngineRoutesTest, LatestDataIsTheLastSuccessfulRunsDocument) {
  const Account a = add_user("alice");
  const Account stranger = add_user("bob");
  const TaskId id = create_task(a)["id"];
  const std::string path = task_path(id) + "/data/latest";
  const RecordedRun first = record_run(id, JobStatus::kSucceeded, at(0), R"({"v": 1})");
  clock_.advance(1s);
  const RecordedRun second = record_run(id, JobStatus::kSucceeded, at(2));

  Response r = call("GET", path, {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.route, "/tasks/{task_id}/data/latest");
  json body = body_of(r);
  EXPECT_EQ(keys_of(body), (std::set<std::string>{"task_id", "job_id", "data_id", "content_hash",
                                                  "created_at", "bytes", "records", "data"}));
  EXPECT_EQ(body["task_id"], id);
  EXPECT_EQ(body["job_id"], second.job_id);
  EXPECT_EQ(body["data_id"], *second.data_id);
  EXPECT_NE(body["data_id"], *first.data_id);
  EXPECT_EQ(body["content_hash"],
            std::to_string(std::hash<std::string>{}(std::string(kAttendees))));
  EXPECT_EQ(body["bytes"], kAttendees.size());
  EXPECT_EQ(body["data"], json::parse(kAttendees));
  EXPECT_TRUE(parse_rfc3339(body["created_at"].get<std::string>()).has_value());

  // A later failure leaves the latest data, and still names the run that fetched it.
  const RecordedRun failed = record_run(id, JobStatus::kFailed, at(4));
  r = call("GET", path, {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  body = body_of(r);
  EXPECT_EQ(body["data_id"], *second.data_id);
  EXPECT_EQ(body["job_id"], second.job_id);
  EXPECT_NE(body["job_id"], failed.job_id);

  // The same payload again: stored once, the newer run named.
  const RecordedRun again = record_run(id, JobStatus::kSucceeded, at(6));
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.data_id, second.data_id);
  body = body_of(call("GET", path, {}, a.token));
  EXPECT_EQ(body["job_id"], again.job_id);
  EXPECT_EQ(body["data_id"], *second.data_id);

  EXPECT_TRUE(is_problem(call("GET", path, {}, stranger.token), 404));
  EXPECT_TRUE(is_problem(call("GET", path), 401));
}

// --- GET /tasks/{task_id}/status ---

TEST_F(EngineRoutesTest, StatusIsFilledFromTheRecordedRuns) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const std::string path = task_path(id) + "/status";
  const TimePoint next = at(2);
  record_run(id, JobStatus::kSucceeded, at(0), std::nullopt, next);
  Response r = call("GET", path, {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  json s = body_of(r);
  EXPECT_EQ(keys_of(s), (std::set<std::string>{"id", "execution_time", "last_execute_time",
                                               "last_execution_status", "last_execution_error",
                                               "last_execution_data", "consecutive_failures",
                                               "suspended", "next_run_at"}));
  EXPECT_EQ(s["id"], id);
  EXPECT_EQ(s["last_execution_status"], "succeeded");
  EXPECT_EQ(s["last_execution_data"], json::parse(kAttendees));
  EXPECT_EQ(s["execution_time"], 0.125);
  EXPECT_EQ(s["last_execute_time"], format_rfc3339(at(0) + 5ms));
  EXPECT_TRUE(s["last_execution_error"].is_null());
  EXPECT_EQ(s["consecutive_failures"], 0);
  EXPECT_EQ(s["suspended"], false);
  EXPECT_EQ(s["next_run_at"], format_rfc3339(next));

  // Failures up to max_attempt (3): the data stays the last success's, then suspension.
  record_run(id, JobStatus::kFailed, at(2), std::nullopt, at(3));
  record_run(id, JobStatus::kFailed, at(3), std::nullopt, at(5));
  s = body_of(call("GET", path, {}, a.token));
  EXPECT_EQ(s["last_execution_status"], "failed");
  EXPECT_EQ(s["last_execution_error"], "HTTP 503 Service Unavailable");
  EXPECT_EQ(s["last_execution_data"], json::parse(kAttendees));
  EXPECT_EQ(s["consecutive_failures"], 2);
  EXPECT_EQ(s["suspended"], false);
  EXPECT_EQ(s["next_run_at"], format_rfc3339(at(5)));
  record_run(id, JobStatus::kFailed, at(5));
  s = body_of(call("GET", path, {}, a.token));
  EXPECT_EQ(s["consecutive_failures"], 3);
  EXPECT_EQ(s["suspended"], true);
  EXPECT_TRUE(s["next_run_at"].is_null());
}

// --- POST /tasks/{task_id}/run ---

TEST_F(EngineRoutesTest, RunNowIsAcceptedAndHandedToTheScheduler) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const json before = body_of(call("GET", task_path(id), {}, a.token));
  const Response r = call("POST", task_path(id) + "/run", {}, a.token);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.route, "/tasks/{task_id}/run");
  EXPECT_EQ(
      body_of(r),
      (json{{"task_id", id}, {"status", "queued"}, {"scheduled_at", "2023-11-14T22:13:20.000Z"}}));
  EXPECT_EQ(listener_.run_requests, std::vector<TaskId>{id});
  // Outside the schedule: the task itself is unchanged.
  EXPECT_EQ(body_of(call("GET", task_path(id), {}, a.token)), before);
  EXPECT_EQ(listener_.changed, std::vector<TaskId>{id});  // the creation only
}

TEST_F(EngineRoutesTest, RunWhileARunIsInFlightIs409) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  listener_.run_error = Error::make(ErrorCode::kConflict, "task 1 has a run in flight");
  const Response r = call("POST", task_path(id) + "/run", {}, a.token);
  ASSERT_TRUE(is_problem(r, 409));
  EXPECT_EQ(body_of(r)["detail"], "a run of this task is in progress");
  listener_.run_error = Error::make(ErrorCode::kUnavailable, "the scheduler is stopping");
  const Response down = call("POST", task_path(id) + "/run", {}, a.token);
  ASSERT_TRUE(is_problem(down, 503));
  EXPECT_EQ(body_of(down)["detail"], "the scheduler is stopping");
  listener_.run_error.reset();
  EXPECT_EQ(call("POST", task_path(id) + "/run", {}, a.token).status, 202);
  EXPECT_EQ(listener_.run_requests, (std::vector<TaskId>{id, id, id}));
}

TEST_F(EngineRoutesTest, RunOfAnotherUsersTaskIs404AndNeverRequested) {
  const Account owner = add_user("alice");
  const Account stranger = add_user("bob");
  const Account admin = add_user("root", Role::kAdmin);
  const TaskId id = create_task(owner)["id"];
  EXPECT_TRUE(is_problem(call("POST", task_path(id) + "/run", {}, stranger.token), 404));
  EXPECT_TRUE(is_problem(call("POST", "/tasks/999999/run", {}, owner.token), 404));
  EXPECT_TRUE(is_problem(call("POST", task_path(id) + "/run"), 401));
  EXPECT_TRUE(listener_.run_requests.empty());
  EXPECT_EQ(call("POST", task_path(id) + "/run", {}, admin.token).status, 202);
  EXPECT_EQ(listener_.run_requests, std::vector<TaskId>{id});
}

TEST_F(EngineRoutesTest, RunWithoutASchedulerIs503) {
  Metrics metrics;
  RestApi api(*store_, *auth_, clock_, metrics, log_, nullptr);
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  Request request;
  request.method = "POST";
  request.path = task_path(id) + "/run";
  request.request_id = "req-no-scheduler";
  request.headers.emplace_back("authorization", "Bearer " + a.token);
  const Response r = api.handle(request);
  ASSERT_TRUE(is_problem(r, 503));
  EXPECT_NE(body_of(r)["detail"].get<std::string>().find("no scheduler"), std::string::npos);
}

// --- next_run_at: create, update, pause, resume, reset ---

TEST_F(EngineRoutesTest, CreateSetsNextRunAtToTheFirstDueTimeFromNow) {
  const Account a = add_user("alice");
  const json task = create_task(a);
  const TimePoint expected = seed_due_at_or_after(clock_.now());
  EXPECT_GE(expected, clock_.now());
  EXPECT_LT(expected, clock_.now() + 2s);
  EXPECT_EQ(task["next_run_at"], format_rfc3339(expected));
  EXPECT_EQ(body_of(call("GET", task_path(task["id"]), {}, a.token))["next_run_at"],
            format_rfc3339(expected));
  EXPECT_EQ(store_->get_task(task["id"])->next_run_at, expected);

  // A window that opens later: its start.
  const TimePoint later = clock_.now() + 1h;
  const json future = create_task(a, {{"start_time", format_rfc3339(later)}});
  EXPECT_EQ(future["next_run_at"], format_rfc3339(later));
  // On a due time exactly: that due time.
  const json exact = create_task(a, {{"start_time", format_rfc3339(clock_.now() - 10s)}});
  EXPECT_EQ(exact["next_run_at"], format_rfc3339(clock_.now()));
  // A window that is over: never.
  const json over = create_task(a, {{"end_time", format_rfc3339(clock_.now())}});
  EXPECT_TRUE(over["next_run_at"].is_null());
}

TEST_F(EngineRoutesTest, UpdateRecomputesNextRunAt) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  clock_.advance(61s);
  const Response r = call("PATCH", task_path(id), R"({"task_interval": 60})", a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  const TimePoint expected = seed_due_at_or_after(clock_.now(), 60);
  EXPECT_EQ(body_of(r)["next_run_at"], format_rfc3339(expected));
  EXPECT_EQ(store_->get_task(id)->next_run_at, expected);
  EXPECT_EQ(listener_.changed, (std::vector<TaskId>{id, id}));
}

TEST_F(EngineRoutesTest, PauseClearsNextRunAtAndResumeRestoresIt) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  const std::string path = task_path(id);

  Response r = call("POST", path + "/pause", {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.route, "/tasks/{task_id}/pause");
  EXPECT_EQ(body_of(r)["paused"], true);
  EXPECT_TRUE(body_of(r)["next_run_at"].is_null());
  EXPECT_EQ(body_of(r), body_of(call("GET", path, {}, a.token)));
  EXPECT_FALSE(store_->get_task(id)->next_run_at.has_value());
  EXPECT_TRUE(body_of(call("GET", path + "/status", {}, a.token))["next_run_at"].is_null());
  // Pausing again changes nothing.
  EXPECT_EQ(body_of(call("POST", path + "/pause", {}, a.token)), body_of(r));
  EXPECT_EQ(listener_.changed, (std::vector<TaskId>{id, id}));

  clock_.advance(7500ms);
  r = call("POST", path + "/resume", {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r)["paused"], false);
  const TimePoint expected = seed_due_at_or_after(clock_.now());
  EXPECT_EQ(body_of(r)["next_run_at"], format_rfc3339(expected));
  EXPECT_EQ(store_->get_task(id)->next_run_at, expected);
  EXPECT_EQ(listener_.changed, (std::vector<TaskId>{id, id, id}));
  // Resuming a running task keeps what is planned (perhaps a retry).
  ASSERT_TRUE(store_->set_next_run(id, clock_.now() + 1s));
  r = call("POST", path + "/resume", {}, a.token);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["next_run_at"], format_rfc3339(clock_.now() + 1s));
  EXPECT_EQ(listener_.changed.size(), 3u);
}

TEST_F(EngineRoutesTest, PauseAndResumeOfAnotherUsersTaskAre404) {
  const Account owner = add_user("alice");
  const Account stranger = add_user("bob");
  const TaskId id = create_task(owner)["id"];
  for (const char* action : {"/pause", "/resume"}) {
    EXPECT_TRUE(is_problem(call("POST", task_path(id) + action, {}, stranger.token), 404));
    EXPECT_TRUE(is_problem(call("POST", std::string("/tasks/0") + action, {}, owner.token), 404));
    EXPECT_TRUE(is_problem(call("POST", task_path(id) + action), 401));
  }
  EXPECT_EQ(body_of(call("GET", task_path(id), {}, owner.token))["paused"], false);
  EXPECT_EQ(listener_.changed.size(), 1u);
}

TEST_F(EngineRoutesTest, ResetAttemptSchedulesTheTaskRightAway) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  for (int i = 0; i < 3; ++i) record_run(id, JobStatus::kFailed, at(2 * i));
  ASSERT_TRUE(store_->get_task(id)->suspended());
  ASSERT_FALSE(store_->get_task(id)->next_run_at.has_value());
  clock_.advance(3s);
  const Response r = call("POST", task_path(id) + "/reset-attempt", {}, a.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r)["consecutive_failures"], 0);
  EXPECT_EQ(body_of(r)["suspended"], false);
  EXPECT_EQ(body_of(r)["next_run_at"], format_rfc3339(clock_.now()));
  EXPECT_EQ(store_->get_task(id)->next_run_at, clock_.now());

  // Paused: reset lifts the suspension, but nothing runs until resume.
  ASSERT_EQ(call("POST", task_path(id) + "/pause", {}, a.token).status, 200);
  const Response paused = call("POST", task_path(id) + "/reset-attempt", {}, a.token);
  ASSERT_EQ(paused.status, 200);
  EXPECT_TRUE(body_of(paused)["next_run_at"].is_null());
  // Before its window: at its start, not before.
  const TimePoint later = clock_.now() + 1h;
  const TaskId future = create_task(a, {{"start_time", format_rfc3339(later)}})["id"];
  const Response early = call("POST", task_path(future) + "/reset-attempt", {}, a.token);
  EXPECT_EQ(body_of(early)["next_run_at"], format_rfc3339(later));
}

TEST_F(EngineRoutesTest, AFailedNextRunWriteIsReported) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  store_->fail_set_next_run = true;
  // Retrying a PATCH is harmless: 503, and the scheduler still hears of the committed change.
  const Response r = call("PATCH", task_path(id), R"({"name": "renamed"})", a.token);
  EXPECT_TRUE(is_problem(r, 503));
  EXPECT_EQ(listener_.changed, (std::vector<TaskId>{id, id}));
  EXPECT_EQ(store_->get_task(id)->spec.name, "renamed");
  // Retrying a POST /tasks would create the task twice: 201, and the log says what failed.
  const Response created = call("POST", "/tasks", std::string(kSeedTask), a.token);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_TRUE(body_of(created)["next_run_at"].is_null());
  EXPECT_NE(log_text().find("storing its next run failed"), std::string::npos) << log_text();
  EXPECT_TRUE(is_problem(call("POST", task_path(id) + "/pause", {}, a.token), 503));
}

// --- GET /metrics ---

TEST_F(EngineRoutesTest, MetricsCountEveryRequestByRoute) {
  const Account a = add_user("alice");
  const TaskId id = create_task(a)["id"];
  call("GET", task_path(id), {}, a.token);
  call("GET", task_path(id), {}, a.token);
  call("GET", task_path(id + 1000), {}, a.token);
  call("GET", "/no/such/route");
  call("DELETE", "/healthz");
  call("BREW", "/tasks");

  Response r = call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  const auto has_line = [](const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
  };
  for (const std::string line :
       {"# TYPE fetchd_http_requests_total counter",
        R"(fetchd_http_requests_total{method="POST",route="/tasks",status="201"} 1)",
        R"(fetchd_http_requests_total{method="GET",route="/tasks/{task_id}",status="200"} 2)",
        R"(fetchd_http_requests_total{method="GET",route="/tasks/{task_id}",status="404"} 1)",
        R"(fetchd_http_requests_total{method="GET",route="unmatched",status="404"} 1)",
        R"(fetchd_http_requests_total{method="DELETE",route="/healthz",status="405"} 1)",
        R"(fetchd_http_requests_total{method="other",route="/tasks",status="405"} 1)",
        "# TYPE fetchd_runs_total counter", "# TYPE fetchd_run_duration_seconds histogram"})
    EXPECT_TRUE(has_line(r.body, line)) << line << "\n" << r.body;
  // A scrape is counted once it is answered: the next one sees it.
  EXPECT_EQ(r.body.find("route=\"/metrics\""), std::string::npos);
  r = call("GET", "/metrics");
  EXPECT_TRUE(has_line(
      r.body, R"(fetchd_http_requests_total{method="GET",route="/metrics",status="200"} 1)"))
      << r.body;
  // What the engine counts shows too: the same Metrics object.
  metrics_->count_run("succeeded", 0.2);
  r = call("GET", "/metrics");
  EXPECT_TRUE(has_line(r.body, R"(fetchd_runs_total{status="succeeded"} 1)")) << r.body;
}

}  // namespace
}  // namespace fetchd::api::testing
