// The clean strings of roles, job statuses and error codes (src/core/{user,job,error}.cpp):
// they are stored in the database and shown by the API, so they must round-trip exactly.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "core/job.hpp"
#include "core/user.hpp"

namespace fetchd {
namespace {

TEST(RoleStrings, RoundTrip) {
  EXPECT_EQ(to_string(Role::kUser), "user");
  EXPECT_EQ(to_string(Role::kAdmin), "admin");
  for (Role role : {Role::kUser, Role::kAdmin}) EXPECT_EQ(role_from_string(to_string(role)), role);
}

TEST(RoleStrings, UnknownRejected) {
  for (const char* text : {"", "Admin", "ADMIN", "users", "root", " user", "admin "})
    EXPECT_EQ(role_from_string(text), std::nullopt) << text;
}

TEST(UserTest, IsAdminFollowsRole) {
  User user;
  EXPECT_FALSE(user.is_admin());
  user.role = Role::kAdmin;
  EXPECT_TRUE(user.is_admin());
}

TEST(JobStatusStrings, ExactNames) {
  EXPECT_EQ(to_string(JobStatus::kQueued), "queued");
  EXPECT_EQ(to_string(JobStatus::kRunning), "running");
  EXPECT_EQ(to_string(JobStatus::kSucceeded), "succeeded");
  EXPECT_EQ(to_string(JobStatus::kFailed), "failed");
  EXPECT_EQ(to_string(JobStatus::kTimedOut), "timed_out");
  EXPECT_EQ(to_string(JobStatus::kSkipped), "skipped");
}

TEST(JobStatusStrings, RoundTrip) {
  for (JobStatus status : {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSucceeded,
                           JobStatus::kFailed, JobStatus::kTimedOut, JobStatus::kSkipped}) {
    EXPECT_EQ(job_status_from_string(to_string(status)), status) << to_string(status);
  }
}

TEST(JobStatusStrings, UnknownRejected) {
  for (const char* text : {"", "pending", "Succeeded", "SUCCESS", "timed-out", "timedout",
                           "JobStatus::kFailed", "failed "})
    EXPECT_EQ(job_status_from_string(text), std::nullopt) << text;
}

TEST(ErrorCodeStrings, DistinctAndClean) {
  const ErrorCode codes[] = {ErrorCode::kMalformed,       ErrorCode::kInvalid,
                             ErrorCode::kUnauthenticated, ErrorCode::kForbidden,
                             ErrorCode::kNotFound,        ErrorCode::kConflict,
                             ErrorCode::kTooLarge,        ErrorCode::kThrottled,
                             ErrorCode::kUnavailable,     ErrorCode::kInternal};
  for (auto a : codes) {
    const std::string name(to_string(a));
    EXPECT_FALSE(name.empty());
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos) << name;
    for (auto b : codes) {
      if (a != b) {
        EXPECT_NE(to_string(a), to_string(b));
      }
    }
  }
  EXPECT_EQ(to_string(ErrorCode::kNotFound), "not_found");
}

TEST(ErrorTest, FailCarriesCodeAndMessages) {
  const Result<int> result = fail(ErrorCode::kConflict, "username taken", "UNIQUE constraint");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kConflict);
  EXPECT_EQ(result.error().message, "username taken");
  EXPECT_EQ(result.error().internal, "UNIQUE constraint");
  EXPECT_TRUE(result.error().fields.empty());
}

}  // namespace
}  // namespace fetchd
