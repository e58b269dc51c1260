// classify_fetch: the status and the precise error text of every kind of fetch result.
#include "worker/fetch_outcome.hpp"

#include <sodium.h>

#include <gtest/gtest.h>

namespace fetchd {
namespace {

using namespace std::chrono_literals;

FetchResult response(int status, std::string body) {
  FetchResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

FetchResult error(FetchErrorKind kind, std::string message) {
  return tl::unexpected(FetchError{kind, std::move(message), {}});
}

class FetchOutcomeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_GE(sodium_init(), 0); }
};

TEST_F(FetchOutcomeTest, JsonResponseSucceeds) {
  const std::string body = R"([{"id": "a"}, {"id": "b"}])";
  FetchOutcome outcome = classify_fetch(response(200, body), 30s, 1024);
  EXPECT_EQ(outcome.status, JobStatus::kSucceeded);
  EXPECT_FALSE(outcome.interrupted);
  EXPECT_EQ(outcome.http_status, 200);
  EXPECT_FALSE(outcome.error.has_value());
  EXPECT_EQ(outcome.response_bytes, static_cast<std::int64_t>(body.size()));
  EXPECT_EQ(outcome.records, 2);
  EXPECT_EQ(outcome.body, body);
  EXPECT_EQ(outcome.content_hash, sha256_hex(body));
}

TEST_F(FetchOutcomeTest, Sha256IsLowerCaseHex) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(FetchOutcomeTest, StatusesFrom400FailWithTheirReasonPhrase) {
  FetchOutcome outcome = classify_fetch(response(404, R"({"detail": "nope"})"), 30s, 1024);
  EXPECT_EQ(outcome.status, JobStatus::kFailed);
  EXPECT_EQ(outcome.error, "HTTP 404 Not Found");
  EXPECT_EQ(outcome.http_status, 404);
  EXPECT_EQ(outcome.response_bytes, 18);
  EXPECT_FALSE(outcome.body.has_value());
  EXPECT_FALSE(outcome.content_hash.has_value());

  EXPECT_EQ(classify_fetch(response(400, "{}"), 30s, 1024).error, "HTTP 400 Bad Request");
  EXPECT_EQ(classify_fetch(response(500, ""), 30s, 1024).error, "HTTP 500 Internal Server Error");
  EXPECT_EQ(classify_fetch(response(503, "{}"), 30s, 1024).error, "HTTP 503 Service Unavailable");
  EXPECT_EQ(classify_fetch(response(599, "{}"), 30s, 1024).error, "HTTP 599");
}

TEST_F(FetchOutcomeTest, StatusesBelow400WithJsonSucceed) {
  EXPECT_EQ(classify_fetch(response(399, "{}"), 30s, 1024).status, JobStatus::kSucceeded);
  EXPECT_EQ(classify_fetch(response(201, "{}"), 30s, 1024).status, JobStatus::kSucceeded);
}

TEST_F(FetchOutcomeTest, NonJsonBodyFailsWithTheParsersWords) {
  FetchOutcome outcome = classify_fetch(response(200, "{\"a\": }"), 30s, 1024);
  EXPECT_EQ(outcome.status, JobStatus::kFailed);
  EXPECT_EQ(outcome.http_status, 200);
  EXPECT_EQ(outcome.response_bytes, 7);
  EXPECT_EQ(outcome.error,
            "invalid JSON at byte 7: syntax error while parsing value - unexpected '}'; "
            "expected '[', '{', or a literal");
  EXPECT_FALSE(outcome.body.has_value());

  EXPECT_EQ(classify_fetch(response(204, ""), 30s, 1024).error, "empty body is not JSON");
}

TEST_F(FetchOutcomeTest, TimeoutIsTimedOut) {
  FetchOutcome outcome = classify_fetch(
      error(FetchErrorKind::kTimeout, "Operation timed out after 2001 milliseconds"), 2000ms, 1024);
  EXPECT_EQ(outcome.status, JobStatus::kTimedOut);
  EXPECT_EQ(outcome.error, "timed out after 2000 ms");
  EXPECT_FALSE(outcome.http_status.has_value());
  EXPECT_FALSE(outcome.interrupted);
}

TEST_F(FetchOutcomeTest, OversizeFailsWithTheLimit) {
  FetchOutcome outcome = classify_fetch(error(FetchErrorKind::kTooLarge, "too big"), 30s, 10485760);
  EXPECT_EQ(outcome.status, JobStatus::kFailed);
  EXPECT_EQ(outcome.error, "response larger than 10485760 bytes");
}

TEST_F(FetchOutcomeTest, NetworkErrorsKeepTheEnginesMessage) {
  const std::string refused = "Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect";
  FetchOutcome outcome = classify_fetch(error(FetchErrorKind::kConnect, refused), 30s, 1024);
  EXPECT_EQ(outcome.status, JobStatus::kFailed);
  EXPECT_EQ(outcome.error, refused);
  EXPECT_EQ(
      classify_fetch(error(FetchErrorKind::kDns, "Could not resolve host: nowhere.test"), 30s, 1024)
          .error,
      "Could not resolve host: nowhere.test");
  // Without a message, the kind still says what happened.
  EXPECT_EQ(classify_fetch(error(FetchErrorKind::kTls, ""), 30s, 1024).error, "tls");
}

TEST_F(FetchOutcomeTest, ShutdownInterruptsInsteadOfFailing) {
  FetchOutcome outcome = classify_fetch(error(FetchErrorKind::kShutdown, "stopped"), 30s, 1024);
  EXPECT_TRUE(outcome.interrupted);
  EXPECT_FALSE(classify_fetch(error(FetchErrorKind::kNetwork, "reset"), 30s, 1024).interrupted);
}

TEST_F(FetchOutcomeTest, ReasonPhrases) {
  EXPECT_EQ(http_reason_phrase(200), "OK");
  EXPECT_EQ(http_reason_phrase(429), "Too Many Requests");
  EXPECT_EQ(http_reason_phrase(502), "Bad Gateway");
  EXPECT_EQ(http_reason_phrase(299), "");
}

}  // namespace
}  // namespace fetchd
