// Task input (src/core/task.cpp): reading a TaskSpec from an API body on create and on PATCH,
// and every value rule of DESIGN.md §3 on both sides of its bound.
#include "core/task.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace fetchd {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

// The body of the seed's README, exactly as the original client sends it.
constexpr const char* kSeedBody = R"({"name": "amazingexpo",
  "url": "https://example.com/php-architecture/",
  "parameters": "{}", "start_time": "2023-01-04T21:41:38.930Z",
  "end_time": "2033-01-04T21:41:38.930Z", "task_interval": 2,
  "max_execution_time": 0, "max_attempt": 3})";

json seed_body() {
  return json::parse(kSeedBody);
}

TimePoint at(const char* text) {
  return *parse_rfc3339(text);
}

TaskSpec valid_spec() {
  TaskSpec spec;
  spec.name = "feed";
  spec.url = "https://example.com/feed.json";
  spec.start_time = at("2024-01-01T00:00:00Z");
  spec.end_time = at("2025-01-01T00:00:00Z");
  spec.task_interval = 60;
  return spec;
}

// The field errors of a body that must be rejected as invalid (fails the test otherwise).
std::vector<FieldError> field_errors(const json& body, const TaskSpec* base = nullptr) {
  const auto result = task_spec_from_json(body, base);
  if (result) {
    ADD_FAILURE() << "accepted: " << body.dump();
    return {};
  }
  EXPECT_EQ(result.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(result.error().message, "the task has invalid fields");
  EXPECT_FALSE(result.error().fields.empty());
  return result.error().fields;
}

std::vector<std::string> fields_of(const std::vector<FieldError>& errors) {
  std::vector<std::string> names;
  for (const auto& e : errors) names.push_back(e.field);
  return names;
}

// The seed body with one field replaced.
json seed_with(const std::string& field, json value) {
  auto body = seed_body();
  body[field] = std::move(value);
  return body;
}

void expect_accepted(const json& body) {
  const auto result = task_spec_from_json(body);
  EXPECT_TRUE(result.has_value()) << body.dump() << " -> "
                                  << (result ? "" : json(fields_of(result.error().fields)).dump());
}

void expect_only_error(const json& body, const std::string& field) {
  const auto errors = field_errors(body);
  EXPECT_THAT(fields_of(errors), ElementsAre(field)) << body.dump();
}

// --- create ------------------------------------------------------------------------------

TEST(TaskSpecFromJson, SeedExampleAcceptedExactly) {
  const auto result = task_spec_from_json(seed_body());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->name, "amazingexpo");
  EXPECT_EQ(result->url, "https://example.com/php-architecture/");
  EXPECT_EQ(result->parameters, json::object());
  EXPECT_TRUE(result->parameters.is_object());
  EXPECT_EQ(format_rfc3339(result->start_time), "2023-01-04T21:41:38.930Z");
  EXPECT_EQ(format_rfc3339(result->end_time), "2033-01-04T21:41:38.930Z");
  EXPECT_EQ(result->task_interval, 2);
  EXPECT_EQ(result->max_execution_time, 0);
  EXPECT_EQ(result->max_attempt, 3);
}

TEST(TaskSpecFromJson, OptionalFieldsDefault) {
  json body = seed_body();
  body.erase("parameters");
  body.erase("max_execution_time");
  body.erase("max_attempt");
  const auto result = task_spec_from_json(body);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->parameters, json::object());
  EXPECT_EQ(result->max_execution_time, 0);
  EXPECT_EQ(result->max_attempt, 3);
}

TEST(TaskSpecFromJson, RequiredFieldsOnCreate) {
  const auto errors = field_errors(json::object());
  EXPECT_THAT(errors,
              ElementsAre(FieldError{"name", "required"}, FieldError{"url", "required"},
                          FieldError{"start_time", "required"}, FieldError{"end_time", "required"},
                          FieldError{"task_interval", "required"}));
  for (const char* field : {"name", "url", "start_time", "end_time", "task_interval"}) {
    json body = seed_body();
    body.erase(field);
    EXPECT_THAT(field_errors(body), ElementsAre(FieldError{field, "required"}));
  }
}

TEST(TaskSpecFromJson, BodyNotAnObjectIsMalformed) {
  for (const auto& body : {json::array(), json("{}"), json(nullptr), json(3), json(true),
                           json::array({seed_body()})}) {
    const auto result = task_spec_from_json(body);
    ASSERT_FALSE(result.has_value()) << body.dump();
    EXPECT_EQ(result.error().code, ErrorCode::kMalformed);
    EXPECT_EQ(result.error().message, "request body must be a JSON object");
    EXPECT_THAT(result.error().fields, IsEmpty());
  }
  const TaskSpec base = valid_spec();
  const auto patched = task_spec_from_json(json::array(), &base);
  ASSERT_FALSE(patched.has_value());
  EXPECT_EQ(patched.error().code, ErrorCode::kMalformed);
}

TEST(TaskSpecFromJson, UnknownFieldsIgnored) {
  json body = seed_body();
  body["id"] = 99;
  body["owner_id"] = "someone";
  body["paused"] = true;
  body["extra"] = {{"nested", json::array()}};
  const auto result = task_spec_from_json(body);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, *task_spec_from_json(seed_body()));
}

TEST(TaskSpecFromJson, AllProblemsReportedAtOnceInFieldOrder) {
  const json body = {{"name", ""},
                     {"url", "ftp://example.com/"},
                     {"parameters", "[1]"},
                     {"start_time", "yesterday"},
                     {"end_time", "2023-01-04T21:41:38Z"},
                     {"task_interval", 0},
                     {"max_execution_time", -1},
                     {"max_attempt", 0}};
  const auto errors = field_errors(body);
  EXPECT_THAT(fields_of(errors), ElementsAre("name", "url", "parameters", "start_time",
                                             "task_interval", "max_execution_time", "max_attempt"));
  for (const auto& e : errors) EXPECT_FALSE(e.message.empty()) << e.field;
}

TEST(TaskSpecFromJson, OneErrorPerField) {
  // Wrong type: reported once, not also as "too short".
  EXPECT_THAT(field_errors(seed_with("name", 5)),
              ElementsAre(FieldError{"name", "must be a string"}));
  EXPECT_THAT(field_errors(seed_with("url", json::array())),
              ElementsAre(FieldError{"url", "must be a string"}));
  EXPECT_THAT(field_errors(seed_with("name", nullptr)),
              ElementsAre(FieldError{"name", "must be a string"}));
}

// --- name --------------------------------------------------------------------------------

TEST(TaskName, LengthCountsCodePoints) {
  expect_accepted(seed_with("name", "x"));
  expect_accepted(seed_with("name", std::string(200, 'a')));
  expect_only_error(seed_with("name", std::string(201, 'a')), "name");

  std::string e_acute_200;  // 200 code points, 400 bytes
  for (int i = 0; i < 200; ++i) e_acute_200 += "\xc3\xa9";
  expect_accepted(seed_with("name", e_acute_200));
  expect_only_error(seed_with("name", e_acute_200 + "\xc3\xa9"), "name");

  std::string emoji_200;  // 200 code points, 800 bytes
  for (int i = 0; i < 200; ++i) emoji_200 += "\xf0\x9f\x98\x80";
  expect_accepted(seed_with("name", emoji_200));
  expect_only_error(seed_with("name", emoji_200 + "a"), "name");

  EXPECT_THAT(field_errors(seed_with("name", std::string(201, 'a'))),
              ElementsAre(FieldError{"name", "must be from 1 to 200 characters"}));
}

TEST(TaskName, EmptyOrBlankRejected) {
  EXPECT_THAT(field_errors(seed_with("name", "")),
              ElementsAre(FieldError{"name", "must be from 1 to 200 characters"}));
  for (const char* blank : {" ", "   ", "\t\n", "\xe3\x80\x80" /* ideographic space */,
                            "\xc2\xa0" /* no-break space */}) {
    EXPECT_THAT(field_errors(seed_with("name", blank)),
                ElementsAre(FieldError{"name", "must not be blank"}))
        << blank;
  }
  expect_accepted(seed_with("name", " a "));
  expect_accepted(seed_with("name", "\xe3\x80\x80x"));
}

TEST(TaskName, InvalidUtf8Rejected) {
  for (const char* bad : {"\xff", "abc\x80", "\xc3", "\xe2\x82", "\xc0\xaf" /* overlong */,
                          "\xe0\x80\xaf" /* overlong */, "\xed\xa0\x80" /* surrogate */,
                          "\xf4\x90\x80\x80" /* above U+10FFFF */, "\xf8\x88\x80\x80\x80"}) {
    EXPECT_THAT(field_errors(seed_with("name", std::string(bad))),
                ElementsAre(FieldError{"name", "must be valid UTF-8"}))
        << "bytes of length " << std::string(bad).size();
    TaskSpec spec = valid_spec();
    spec.name = bad;
    EXPECT_THAT(fields_of(validate_task_spec(spec)), ElementsAre("name"));
  }
  // The largest code point and the ones around the surrogates are fine.
  expect_accepted(seed_with("name", "\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80"));
}

// --- url ---------------------------------------------------------------------------------

TEST(TaskUrl, AbsoluteHttpOrHttpsAccepted) {
  for (const char* url : {
           "http://example.com",
           "https://example.com/php-architecture/",
           "HTTPS://EXAMPLE.COM/",
           "HtTp://example.com/a?b=c#d",
           "http://example.com:8080/x",
           "http://user:secret@example.com/",
           "http://127.0.0.1:65535/",
           "http://[::1]:8080/feed",
           "http://[2001:db8::1]/",
           "https://example.com/{eventfile}?token={token}",
           "http://example.com?q=1",
           "http://example.com#top",
       }) {
    expect_accepted(seed_with("url", url));
  }
}

TEST(TaskUrl, OthersRejected) {
  for (const char* url : {
           "",
           "example.com",
           "example.com/feed",
           "//example.com/",
           "/relative/path",
           "ftp://example.com/",
           "file:///etc/passwd",
           "mailto:someone@example.com",
           "javascript:alert(1)",
           "httpx://example.com/",
           "http:example.com",
           "http:/example.com",
           "http://",
           "http:///path",
           "http://?q=1",
           "http://user@/",
           "http://:8080/",
           "http://example.com:/",
           "http://example.com:0/",
           "http://example.com:65536/",
           "http://example.com:123456/",
           "http://example.com:8o/",
           "http://[]/",
           "http://[::1/",
           "http://exa<mple.com/",
           "http://exa mple.com/",
           "http://example.com/a b",
           " http://example.com/",
           "http://example.com/\t",
           "http://example.com/\r\nHost: evil",
           "http://example.com/\x7f",
           "http://ex\xc3\xa4mple.com/",
       }) {
    expect_only_error(seed_with("url", url), "url");
  }
}

TEST(TaskUrl, LengthBound) {
  const std::string prefix = "https://example.com/";
  expect_accepted(seed_with("url", prefix + std::string(2048 - prefix.size(), 'a')));
  const auto errors =
      field_errors(seed_with("url", prefix + std::string(2049 - prefix.size(), 'a')));
  EXPECT_THAT(errors, ElementsAre(FieldError{"url", "must be at most 2048 bytes"}));
}

// --- times -------------------------------------------------------------------------------

TEST(TaskTimes, EndMustBeAfterStart) {
  json body = seed_body();
  body["start_time"] = "2024-01-01T00:00:00.000Z";
  body["end_time"] = "2024-01-01T00:00:00.000Z";
  EXPECT_THAT(field_errors(body), ElementsAre(FieldError{"end_time", "must be after start_time"}));
  body["end_time"] = "2023-12-31T23:59:59.999Z";
  expect_only_error(body, "end_time");
  body["end_time"] = "2024-01-01T00:00:00.001Z";
  expect_accepted(body);
}

TEST(TaskTimes, ComparedAsInstantsAcrossOffsets) {
  json body = seed_body();
  body["start_time"] = "2024-01-01T01:00:00+01:00";  // 00:00Z
  body["end_time"] = "2024-01-01T00:00:00Z";
  expect_only_error(body, "end_time");
  body["end_time"] = "2023-12-31T23:00:00.001-01:00";  // 00:00:00.001Z
  const auto result = task_spec_from_json(body);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(format_rfc3339(result->start_time), "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(result->end_time), "2024-01-01T00:00:00.001Z");
}

TEST(TaskTimes, UnreadableTimesReportedOnTheirOwn) {
  for (const json& bad :
       {json("2023-01-04"), json("2023-01-04T21:41:38.930"), json("2023-02-30T00:00:00Z"),
        json("not a time"), json(1672868498930), json(nullptr), json::object()}) {
    EXPECT_THAT(fields_of(field_errors(seed_with("start_time", bad))), ElementsAre("start_time"))
        << bad.dump();
    // end_time unreadable: no extra "must be after start_time" either.
    EXPECT_THAT(fields_of(field_errors(seed_with("end_time", bad))), ElementsAre("end_time"))
        << bad.dump();
  }
  // With start_time unknown, an early end_time is not compared with anything.
  json body = seed_with("start_time", "x");
  body["end_time"] = "1960-01-01T00:00:00Z";
  EXPECT_THAT(fields_of(field_errors(body)), ElementsAre("start_time"));
  EXPECT_EQ(field_errors(seed_with("start_time", "x")).front().message,
            "must be an RFC 3339 date-time with an offset or Z, e.g. 2023-01-04T21:41:38.930Z");
}

// --- integers ----------------------------------------------------------------------------

struct IntegerField {
  const char* name;
  std::int64_t low;
  std::int64_t high;
};

class TaskIntegerField : public ::testing::TestWithParam<IntegerField> {};

TEST_P(TaskIntegerField, BothSidesOfBothBounds) {
  const auto& f = GetParam();
  const auto message =
      "must be an integer from " + std::to_string(f.low) + " to " + std::to_string(f.high);

  for (std::int64_t ok : {f.low, f.low + 1, f.high - 1, f.high}) {
    const auto result = task_spec_from_json(seed_with(f.name, ok));
    ASSERT_TRUE(result.has_value()) << f.name << " = " << ok;
    const std::string name = f.name;
    const auto value = name == "task_interval"        ? result->task_interval
                       : name == "max_execution_time" ? result->max_execution_time
                                                      : result->max_attempt;
    EXPECT_EQ(value, ok);
  }
  for (std::int64_t bad :
       {f.low - 1, f.high + 1, std::int64_t{-1000000}, std::numeric_limits<std::int64_t>::min(),
        std::numeric_limits<std::int64_t>::max()}) {
    EXPECT_THAT(field_errors(seed_with(f.name, bad)), ElementsAre(FieldError{f.name, message}))
        << f.name << " = " << bad;
  }
}

TEST_P(TaskIntegerField, OnlyIntegersAreIntegers) {
  const auto& f = GetParam();
  for (const json& bad : {json(2.5), json(f.low + 0.5), json("2"), json("1"), json(true),
                          json(false), json(nullptr), json::array({2}), json::object(), json(1e300),
                          json(std::numeric_limits<std::uint64_t>::max())}) {
    EXPECT_THAT(fields_of(field_errors(seed_with(f.name, bad))), ElementsAre(f.name))
        << f.name << " = " << bad.dump();
  }
  // JSON has one number type: 3.0 is the integer 3 (as JSON Schema's "integer" says).
  const auto result = task_spec_from_json(json::parse(
      std::string(R"({"name":"n","url":"http://a","start_time":"2024-01-01T00:00:00Z",)") +
      R"("end_time":"2025-01-01T00:00:00Z","task_interval":2,")" + f.name + R"(":)" +
      std::to_string(f.high) + ".0}"));
  EXPECT_TRUE(result.has_value()) << f.name;
}

INSTANTIATE_TEST_SUITE_P(Bounds, TaskIntegerField,
                         ::testing::Values(IntegerField{"task_interval", 1, 31622400},
                                           IntegerField{"max_execution_time", 0, 86400},
                                           IntegerField{"max_attempt", 1, 1000}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TaskLimitsTest, MatchTheDocumentedNumbers) {
  EXPECT_EQ(TaskLimits::kIntervalMax, 31622400);
  EXPECT_EQ(TaskLimits::kExecutionTimeMax, 86400);
  EXPECT_EQ(TaskLimits::kMaxAttemptMax, 1000);
  EXPECT_EQ(TaskLimits::kNameMaxChars, 200u);
  EXPECT_EQ(TaskLimits::kUrlMaxBytes, 2048u);
}

// --- parameters --------------------------------------------------------------------------

TEST(TaskParameters, ObjectOrStringHoldingAnObject) {
  const json object = {{"method", "POST"}, {"eventfile", "amazingexpo2020.json"}};
  auto result = task_spec_from_json(seed_with("parameters", object));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->parameters, object);

  result = task_spec_from_json(seed_with("parameters", object.dump()));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->parameters, object);

  result = task_spec_from_json(seed_with("parameters", " { } "));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->parameters, json::object());
}

TEST(TaskParameters, AnythingElseRejected) {
  const std::string message = "must be a JSON object, or a string holding a JSON object";
  for (const json& bad : {json(""), json("[]"), json("null"), json("\"{}\""), json("{"),
                          json("not json"), json("{} {}"), json(nullptr), json(1), json(true),
                          json::array(), json::array({json::object()})}) {
    EXPECT_THAT(field_errors(seed_with("parameters", bad)),
                ElementsAre(FieldError{"parameters", message}))
        << bad.dump();
  }
}

TEST(TaskParameters, KnownKeysChecked) {
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
    expect_accepted(seed_with("parameters", {{"method", method}}));
  for (const json& method : {json("get"), json("FETCH"), json(""), json(1), json(nullptr)})
    expect_only_error(seed_with("parameters", {{"method", method}}), "parameters");

  expect_accepted(seed_with("parameters", {{"headers", json::object()}}));
  expect_accepted(seed_with("parameters", {{"headers", {{"X-Api-Key", "k"}, {"Accept", ""}}}}));
  expect_accepted(seed_with("parameters", {{"headers", {{"X-A", "tab\tinside"}}}}));
  for (const json& headers :
       {json::array(), json("X-A: b"), json({{"X-A", 1}}), json({{"X-A", nullptr}}),
        json({{"X-A", "b\r\nX-Injected: 1"}}), json({{"X-A", "b\nc"}}), json({{"Bad Name", "v"}}),
        json({{"", "v"}}), json({{"X-A:", "v"}})}) {
    expect_only_error(seed_with("parameters", {{"headers", headers}}), "parameters");
  }

  expect_accepted(seed_with("parameters", {{"query", {{"a", "b"}, {"n", 1}, {"f", true}}}}));
  for (const json& query : {json::array(), json("a=b"), json({{"a", nullptr}}),
                            json({{"a", json::array({1})}}), json({{"a", json::object()}})}) {
    expect_only_error(seed_with("parameters", {{"query", query}}), "parameters");
  }

  for (const char* key : {"path", "eventfile"}) {
    expect_accepted(seed_with("parameters", {{key, "amazingexpo2020.json"}}));
    expect_only_error(seed_with("parameters", {{key, 1}}), "parameters");
    expect_only_error(seed_with("parameters", {{key, nullptr}}), "parameters");
  }
}

TEST(TaskParameters, OtherKeysKeptAsGiven) {
  const json parameters = {{"token", "abc"},
                           {"apiuser", 7},
                           {"body", {{"a", json::array({1, 2})}}},
                           {"eventfile", "amazingexpo2020.json"}};
  const auto result = task_spec_from_json(seed_with("parameters", parameters.dump()));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->parameters, parameters);
}

TEST(TaskParameters, AllProblemsInOneFieldError) {
  const auto errors = field_errors(
      seed_with("parameters", {{"method", "FETCH"}, {"headers", 1}, {"query", 1}, {"path", 1}}));
  ASSERT_THAT(fields_of(errors), ElementsAre("parameters"));
  for (const char* key : {"method", "headers", "query", "path"})
    EXPECT_NE(errors.front().message.find(key), std::string::npos) << errors.front().message;
}

// --- PATCH -------------------------------------------------------------------------------

TEST(TaskPatch, EmptyBodyKeepsEverything) {
  TaskSpec base = valid_spec();
  base.parameters = {{"method", "POST"}};
  base.max_execution_time = 10;
  base.max_attempt = 7;
  const auto result = task_spec_from_json(json::object(), &base);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, base);
}

TEST(TaskPatch, PresentFieldsReplaceAbsentKeep) {
  TaskSpec base = valid_spec();
  base.parameters = {{"method", "POST"}, {"path", "a"}};
  const auto result = task_spec_from_json(
      {{"name", "renamed"}, {"parameters", R"({"path":"b"})"}, {"max_attempt", 9}}, &base);
  ASSERT_TRUE(result.has_value());
  TaskSpec expected = base;
  expected.name = "renamed";
  expected.parameters = {{"path", "b"}};  // replaced as a whole, not merged
  expected.max_attempt = 9;
  EXPECT_EQ(*result, expected);
}

TEST(TaskPatch, NothingIsRequired) {
  const TaskSpec base = valid_spec();
  const auto result = task_spec_from_json({{"task_interval", 5}}, &base);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->task_interval, 5);
  EXPECT_EQ(result->name, base.name);
}

TEST(TaskPatch, ValidatedAsAWhole) {
  const TaskSpec base = valid_spec();  // 2024-01-01 .. 2025-01-01
  EXPECT_THAT(field_errors({{"end_time", "2024-01-01T00:00:00Z"}}, &base),
              ElementsAre(FieldError{"end_time", "must be after start_time"}));
  EXPECT_THAT(field_errors({{"end_time", "2023-06-01T00:00:00Z"}}, &base),
              ElementsAre(FieldError{"end_time", "must be after start_time"}));
  EXPECT_THAT(fields_of(field_errors({{"start_time", "2025-01-01T00:00:00Z"}}, &base)),
              ElementsAre("end_time"));
  EXPECT_TRUE(task_spec_from_json({{"end_time", "2024-01-01T00:00:00.001Z"}}, &base));
  EXPECT_TRUE(task_spec_from_json({{"start_time", "2024-12-31T23:59:59.999Z"}}, &base));
}

TEST(TaskPatch, PresentFieldsValidatedLikeOnCreate) {
  const TaskSpec base = valid_spec();
  EXPECT_THAT(
      fields_of(field_errors(
          {{"name", ""}, {"url", "ftp://x"}, {"task_interval", 0}, {"max_attempt", 1.5}}, &base)),
      ElementsAre("name", "url", "task_interval", "max_attempt"));
  EXPECT_THAT(fields_of(field_errors({{"name", nullptr}}, &base)), ElementsAre("name"));
  EXPECT_THAT(fields_of(field_errors({{"parameters", "nope"}}, &base)), ElementsAre("parameters"));
}

TEST(TaskPatch, AnInvalidBaseIsReportedUnlessFixed) {
  TaskSpec base = valid_spec();
  base.task_interval = 0;  // e.g. written before a rule tightened
  EXPECT_THAT(fields_of(field_errors({{"name", "x"}}, &base)), ElementsAre("task_interval"));
  EXPECT_TRUE(task_spec_from_json({{"task_interval", 1}}, &base));
}

// --- validate_task_spec on its own ---------------------------------------------------------

TEST(ValidateTaskSpec, ValidSpecHasNoErrors) {
  EXPECT_THAT(validate_task_spec(valid_spec()), IsEmpty());
}

TEST(ValidateTaskSpec, EveryRuleOnADefaultSpec) {
  TaskSpec spec;  // empty name and url, zero interval, start == end
  spec.parameters = json::array();
  spec.max_execution_time = -1;
  spec.max_attempt = 0;
  EXPECT_THAT(fields_of(validate_task_spec(spec)),
              ElementsAre("name", "url", "parameters", "end_time", "task_interval",
                          "max_execution_time", "max_attempt"));
}

TEST(ValidateTaskSpec, MessagesForAPerson) {
  TaskSpec spec = valid_spec();
  spec.task_interval = TaskLimits::kIntervalMax + 1;
  spec.end_time = spec.start_time;
  EXPECT_THAT(validate_task_spec(spec),
              ElementsAre(Field(&FieldError::message, "must be after start_time"),
                          Field(&FieldError::message, "must be an integer from 1 to 31622400")));
}

}  // namespace
}  // namespace fetchd
