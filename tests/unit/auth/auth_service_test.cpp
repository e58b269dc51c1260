// AuthService flows (register, login, authenticate, logout, expiry) against the real SQLite
// store in memory and against a small in-memory fake that can also play a failing database
// or a disabled account, neither of which the Store interface can produce on demand.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "auth/auth_service.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/fake_clock.hpp"

namespace fetchd::auth {
namespace {

using namespace std::chrono_literals;

using test::FakeClock;

// Users and tokens only; the task methods are not used by AuthService.
class FakeStore final : public Store {
 public:
  bool unavailable = false;

  void disable(UserId id) { users_.at(id).disabled = true; }

  Result<std::vector<std::string>> migrate() override { return std::vector<std::string>{}; }
  Result<std::vector<std::pair<std::string, bool>>> migration_status() override {
    return std::vector<std::pair<std::string, bool>>{};
  }
  Result<void> ping() override { return check(); }

  Result<User> create_user(const NewUser& user, TimePoint now) override {
    if (auto ok = check(); !ok) return tl::unexpected(ok.error());
    for (const auto& [id, u] : users_) {
      if (u.username == user.username) return fail(ErrorCode::kConflict, "taken", "UNIQUE");
    }
    User u{next_id_++, user.username, user.password_hash, user.role, false, now};
    users_[u.id] = u;
    return u;
  }
  Result<User> get_user(UserId id) override {
    if (auto ok = check(); !ok) return tl::unexpected(ok.error());
    auto it = users_.find(id);
    if (it == users_.end()) return fail(ErrorCode::kNotFound, "no such user");
    return it->second;
  }
  Result<User> find_user_by_name(const std::string& name) override {
    if (auto ok = check(); !ok) return tl::unexpected(ok.error());
    for (const auto& [id, u] : users_) {
      if (u.username == name) return u;
    }
    return fail(ErrorCode::kNotFound, "no such user");
  }
  Result<void> set_password_hash(UserId id, const std::string& hash) override {
    users_.at(id).password_hash = hash;
    return {};
  }
  Result<void> create_token(const TokenRecord& token) override {
    if (auto ok = check(); !ok) return ok;
    tokens_[token.hash] = token;
    return {};
  }
  Result<User> find_token_user(const std::string& hash, TimePoint now) override {
    if (auto ok = check(); !ok) return tl::unexpected(ok.error());
    auto it = tokens_.find(hash);
    if (it == tokens_.end() || now >= it->second.expires_at) {
      return fail(ErrorCode::kNotFound, "no such token");
    }
    return users_.at(it->second.user_id);
  }
  Result<void> delete_token(const std::string& hash) override {
    if (auto ok = check(); !ok) return ok;
    tokens_.erase(hash);
    return {};
  }
  Result<std::int64_t> delete_user_tokens(UserId, const std::string&) override { return no(); }
  Result<std::int64_t> delete_expired_tokens(TimePoint) override { return no(); }
  Result<Task> create_task(UserId, const TaskSpec&, TimePoint) override { return no(); }
  Result<Task> get_task(TaskId) override { return no(); }
  Result<Page<Task>> list_tasks(const TaskQuery&) override { return no(); }
  Result<Task> update_task(TaskId, const TaskSpec&, TimePoint) override { return no(); }
  Result<void> delete_task(TaskId) override { return no(); }
  Result<Task> reset_attempts(TaskId, TimePoint) override { return no(); }
  Result<Task> set_paused(TaskId, bool, TimePoint) override { return no(); }
  Result<std::int64_t> count_tasks(std::optional<UserId>) override { return no(); }
  Result<std::int64_t> count_suspended_tasks() override { return no(); }
  Result<void> delete_user(UserId) override { return no(); }
  Result<Page<User>> list_users(const UserQuery&) override { return no(); }
  Result<std::vector<Task>> get_tasks(const std::vector<TaskId>&) override { return no(); }
  Result<User> update_user(UserId, std::optional<Role>, std::optional<bool>) override {
    return no();
  }
  Result<void> set_next_run(TaskId, std::optional<TimePoint>) override { return no(); }
  Result<Page<ScheduleEntry>> load_schedule(std::optional<TaskId>, std::size_t) override {
    return no();
  }
  Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>&) override {
    return no();
  }
  Result<Page<Job>> list_jobs(const JobQuery&) override { return no(); }
  Result<Job> get_job(JobId) override { return no(); }
  Result<Data> get_data(DataId) override { return no(); }
  Result<std::int64_t> prune(const RetentionPolicy&) override { return no(); }

  std::size_t token_count() const { return tokens_.size(); }
  const std::map<std::string, TokenRecord>& tokens() const { return tokens_; }

 private:
  Result<void> check() const {
    if (unavailable) return fail(ErrorCode::kUnavailable, "database unavailable", "fake");
    return {};
  }
  static tl::unexpected<Error> no() { return fail(ErrorCode::kInternal, "not in the fake"); }

  UserId next_id_ = 1;
  std::map<UserId, User> users_;
  std::map<std::string, TokenRecord> tokens_;
};

std::unique_ptr<Store> make_sqlite_store() {
  auto store = open_sqlite_store(":memory:");
  if (!store) {
    ADD_FAILURE() << "open_sqlite_store: " << store.error().message << " "
                  << store.error().internal;
    return nullptr;
  }
  auto applied = (*store)->migrate();
  if (!applied) {
    ADD_FAILURE() << "migrate: " << applied.error().message << " " << applied.error().internal;
    return nullptr;
  }
  return std::move(*store);
}

// The same flows on every backend.
class AuthFlows : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "sqlite") {
      store_ = make_sqlite_store();
    } else {
      store_ = std::make_unique<FakeStore>();
    }
    ASSERT_NE(store_, nullptr);
    service_ = std::make_unique<AuthService>(*store_, clock_, settings_);
  }

  void reconfigure(AuthSettings settings) {
    settings_ = settings;
    service_ = std::make_unique<AuthService>(*store_, clock_, settings_);
  }

  FakeClock clock_;
  AuthSettings settings_{std::chrono::seconds(3600), true, {}};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuthService> service_;
};

TEST_P(AuthFlows, RegisterThenLoginThenAuthenticate) {
  auto user = service_->register_user("alice", "password123");
  ASSERT_TRUE(user.has_value()) << user.error().message;
  EXPECT_EQ(user->username, "alice");
  EXPECT_EQ(user->role, Role::kUser);
  EXPECT_EQ(user->created_at, clock_.now());
  EXPECT_TRUE(verify_password(user->password_hash, "password123"));

  auto login = service_->login("alice", "password123");
  ASSERT_TRUE(login.has_value()) << login.error().message;
  EXPECT_EQ(login->token_type, "Bearer");
  EXPECT_EQ(login->expires_in, 3600);
  EXPECT_EQ(login->access_token.size(), 43u);

  auto me = service_->authenticate(login->access_token);
  ASSERT_TRUE(me.has_value()) << me.error().message;
  EXPECT_EQ(me->id, user->id);
  EXPECT_EQ(me->username, "alice");
}

TEST_P(AuthFlows, EachLoginIssuesADistinctToken) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  auto a = service_->login("alice", "password123");
  auto b = service_->login("alice", "password123");
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->access_token, b->access_token);
  EXPECT_TRUE(service_->authenticate(a->access_token));
  EXPECT_TRUE(service_->authenticate(b->access_token));
}

TEST_P(AuthFlows, TokenValidUntilJustBeforeExpiry) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  TimePoint issued = clock_.now();
  auto login = service_->login("alice", "password123");
  ASSERT_TRUE(login.has_value());
  TimePoint expires_at = issued + std::chrono::seconds(3600);

  clock_.set(expires_at - 1ms);
  EXPECT_TRUE(service_->authenticate(login->access_token).has_value());

  clock_.set(expires_at);
  auto expired = service_->authenticate(login->access_token);
  ASSERT_FALSE(expired.has_value());
  EXPECT_EQ(expired.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(expired.error().message, "invalid or expired token");
}

TEST_P(AuthFlows, TtlComesFromSettings) {
  reconfigure({std::chrono::seconds(60), true, {}});
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  auto login = service_->login("alice", "password123");
  ASSERT_TRUE(login.has_value());
  EXPECT_EQ(login->expires_in, 60);
  clock_.advance(59'999ms);
  EXPECT_TRUE(service_->authenticate(login->access_token));
  clock_.advance(1ms);
  EXPECT_FALSE(service_->authenticate(login->access_token));
}

TEST_P(AuthFlows, LogoutRevokesOnlyThatToken) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  auto a = service_->login("alice", "password123");
  auto b = service_->login("alice", "password123");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(service_->logout(a->access_token).has_value());
  auto revoked = service_->authenticate(a->access_token);
  ASSERT_FALSE(revoked.has_value());
  EXPECT_EQ(revoked.error().code, ErrorCode::kUnauthenticated);
  EXPECT_TRUE(service_->authenticate(b->access_token).has_value());
}

TEST_P(AuthFlows, UnknownAndMalformedTokensAreUnauthenticated) {
  for (std::string token :
       {std::string(), std::string("nope"), generate_token().token, std::string(10000, 'x')}) {
    auto r = service_->authenticate(token);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(r.error().message, "invalid or expired token");
  }
}

TEST_P(AuthFlows, SameErrorForUnknownUserAndWrongPassword) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  auto wrong_password = service_->login("alice", "password124");
  auto unknown_user = service_->login("bob", "password123");
  auto empty = service_->login("", "");
  for (const auto* r : {&wrong_password, &unknown_user, &empty}) {
    ASSERT_FALSE(r->has_value());
    EXPECT_EQ(r->error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(r->error().message, "invalid username or password");
    EXPECT_TRUE(r->error().fields.empty());
  }
}

TEST_P(AuthFlows, UsernameIsCaseSensitive) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  EXPECT_FALSE(service_->login("Alice", "password123"));
}

TEST_P(AuthFlows, DuplicateUsernameIsConflict) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  auto again = service_->register_user("alice", "other-password");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().message, "username is already taken");
  // The first account is untouched.
  EXPECT_TRUE(service_->login("alice", "password123"));
  EXPECT_FALSE(service_->login("alice", "other-password"));
}

TEST_P(AuthFlows, InvalidFieldsReportedTogether) {
  auto r = service_->register_user("a!", "short");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  bool username = false, password = false;
  for (const auto& f : r.error().fields) {
    username |= f.field == "username";
    password |= f.field == "password";
  }
  EXPECT_TRUE(username);
  EXPECT_TRUE(password);
  EXPECT_FALSE(service_->login("a!", "short"));
}

TEST_P(AuthFlows, OnlyPasswordInvalid) {
  auto r = service_->register_user("alice", std::string(1025, 'p'));
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.error().fields.size(), 1u);
  EXPECT_EQ(r.error().fields[0].field, "password");
  EXPECT_TRUE(service_->register_user("alice", std::string(1024, 'p')));
}

TEST_P(AuthFlows, ClosedRegistrationForbiddenUnlessViaAdmin) {
  reconfigure({std::chrono::seconds(3600), false, {}});
  auto r = service_->register_user("alice", "password123");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kForbidden);
  EXPECT_EQ(r.error().message, "registration is closed");

  auto admin = service_->register_user("root", "password123", Role::kAdmin, true);
  ASSERT_TRUE(admin.has_value()) << admin.error().message;
  EXPECT_TRUE(admin->is_admin());
  EXPECT_TRUE(service_->register_user("bob", "password123", Role::kUser, true));
  EXPECT_TRUE(service_->login("bob", "password123"));
}

TEST_P(AuthFlows, AdminRoleOnlyViaAdmin) {
  auto r = service_->register_user("root", "password123", Role::kAdmin, false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kForbidden);
}

TEST_P(AuthFlows, FiveFailuresForAUsernameThrottleItsLoginsForTheWindow) {
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  for (int i = 0; i < 5; ++i) {
    auto wrong = service_->login("alice", "wrong-password", "10.0.0." + std::to_string(i));
    ASSERT_FALSE(wrong.has_value());
    EXPECT_EQ(wrong.error().code, ErrorCode::kUnauthenticated) << i;
  }
  // Even the right password, from an address never seen, waits: the username is throttled.
  clock_.advance(60s);
  auto throttled = service_->login("alice", "password123", "10.9.9.9");
  ASSERT_FALSE(throttled.has_value());
  EXPECT_EQ(throttled.error().code, ErrorCode::kThrottled);
  ASSERT_TRUE(throttled.error().retry_after_s.has_value());
  EXPECT_EQ(*throttled.error().retry_after_s, 15 * 60 - 60);
  EXPECT_NE(throttled.error().message.find("try again in 840 s"), std::string::npos);
  // Another user is not concerned.
  ASSERT_TRUE(service_->register_user("bob", "password123"));
  EXPECT_TRUE(service_->login("bob", "password123", "10.9.9.9").has_value());
  // Once the first failure leaves the window, one more try is allowed; it succeeds and clears.
  clock_.advance(14min);
  EXPECT_TRUE(service_->login("alice", "password123", "10.9.9.9").has_value());
  EXPECT_TRUE(service_->login("alice", "password123", "10.9.9.9").has_value());
}

TEST_P(AuthFlows, FiveFailuresFromOneAddressThrottleIt) {
  for (int i = 0; i < 5; ++i) {
    auto wrong = service_->login("user" + std::to_string(i), "whatever-pass", "192.0.2.7");
    ASSERT_FALSE(wrong.has_value());
    EXPECT_EQ(wrong.error().code, ErrorCode::kUnauthenticated) << i;
  }
  ASSERT_TRUE(service_->register_user("carol", "password123"));
  auto throttled = service_->login("carol", "password123", "192.0.2.7");
  ASSERT_FALSE(throttled.has_value());
  EXPECT_EQ(throttled.error().code, ErrorCode::kThrottled);
  EXPECT_TRUE(service_->login("carol", "password123", "192.0.2.8").has_value());
}

TEST_P(AuthFlows, ThrottlingCanBeTurnedOff) {
  AuthSettings settings = settings_;
  settings.login_throttle.max_failures = 0;
  reconfigure(settings);
  ASSERT_TRUE(service_->register_user("alice", "password123"));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(service_->login("alice", "nope-nope", "192.0.2.1").error().code,
              ErrorCode::kUnauthenticated);
  }
  EXPECT_TRUE(service_->login("alice", "password123", "192.0.2.1").has_value());
}

TEST_P(AuthFlows, ChangePasswordChecksTheOldOneAndRevokesOtherTokens) {
  if (std::string(GetParam()) != "sqlite") GTEST_SKIP() << "needs token revocation";
  auto alice = service_->register_user("alice", "password123");
  ASSERT_TRUE(alice.has_value());
  auto kept = service_->login("alice", "password123");
  auto other = service_->login("alice", "password123");
  ASSERT_TRUE(kept && other);

  auto wrong =
      service_->change_password(*alice, "not-it-at-all", "new-password-1", kept->access_token);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalid);
  ASSERT_EQ(wrong.error().fields.size(), 1u);
  EXPECT_EQ(wrong.error().fields[0].field, "current_password");
  auto weak = service_->change_password(*alice, "password123", "short", kept->access_token);
  ASSERT_FALSE(weak.has_value());
  ASSERT_FALSE(weak.error().fields.empty());
  EXPECT_EQ(weak.error().fields[0].field, "new_password");
  EXPECT_TRUE(service_->authenticate(other->access_token).has_value());  // nothing changed

  ASSERT_TRUE(
      service_->change_password(*alice, "password123", "new-password-1", kept->access_token));
  EXPECT_TRUE(service_->authenticate(kept->access_token).has_value());
  EXPECT_FALSE(service_->authenticate(other->access_token).has_value());
  EXPECT_FALSE(service_->login("alice", "password123").has_value());
  EXPECT_TRUE(service_->login("alice", "new-password-1").has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, AuthFlows, ::testing::Values("fake", "sqlite"),
                         [](const auto& info) { return std::string(info.param); });

// What only the fake can show: disabled accounts and an unavailable database.
class AuthWithFake : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeStore store_;
  AuthService service_{store_, clock_, AuthSettings{}};
};

TEST_F(AuthWithFake, DisabledUserCannotLoginNorUseOldTokens) {
  auto user = service_.register_user("alice", "password123");
  ASSERT_TRUE(user.has_value());
  auto login = service_.login("alice", "password123");
  ASSERT_TRUE(login.has_value());
  store_.disable(user->id);

  auto again = service_.login("alice", "password123");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(again.error().message, "invalid username or password");

  auto me = service_.authenticate(login->access_token);
  ASSERT_FALSE(me.has_value());
  EXPECT_EQ(me.error().code, ErrorCode::kUnauthenticated);
}

TEST_F(AuthWithFake, StoredTokenIsOnlyTheHashWithTtl) {
  ASSERT_TRUE(service_.register_user("alice", "password123"));
  auto login = service_.login("alice", "password123");
  ASSERT_TRUE(login.has_value());
  ASSERT_EQ(store_.token_count(), 1u);
  const TokenRecord& record = store_.tokens().begin()->second;
  EXPECT_EQ(record.hash, hash_token(login->access_token));
  EXPECT_EQ(record.created_at, clock_.now());
  EXPECT_EQ(record.expires_at, clock_.now() + std::chrono::hours(24));
}

TEST_F(AuthWithFake, UnavailableStoreStaysUnavailable) {
  ASSERT_TRUE(service_.register_user("alice", "password123"));
  auto login = service_.login("alice", "password123");
  ASSERT_TRUE(login.has_value());
  store_.unavailable = true;

  auto me = service_.authenticate(login->access_token);
  ASSERT_FALSE(me.has_value());
  EXPECT_EQ(me.error().code, ErrorCode::kUnavailable);

  auto again = service_.login("alice", "password123");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);

  auto reg = service_.register_user("bob", "password123");
  ASSERT_FALSE(reg.has_value());
  EXPECT_EQ(reg.error().code, ErrorCode::kUnavailable);

  auto out = service_.logout(login->access_token);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace fetchd::auth
