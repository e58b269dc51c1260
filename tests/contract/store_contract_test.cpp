// The Store contract: one typed suite that knows only the Store interface (store/store.hpp),
// run against every backend in StoreBackends. A backend is a small factory that gives each
// test a fresh, empty database; adding one (PostgreSQL) means writing its factory and adding
// it to the list.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace fetchd {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Backends. Each one provides:
//   static constexpr const char* kName;
//   static constexpr bool kPersistent;  // open() again reaches the same data
//   std::string skip_reason() const;    // non-empty: the backend cannot run here (no server...)
//   Result<std::unique_ptr<Store>> open();
// Its constructor creates a fresh database for one test and its destructor removes it.

// A fresh temporary directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    const auto base = fs::temp_directory_path();
    for (int tries = 0; tries < 100; ++tries) {
      auto candidate = base / ("fetchd-store-" + std::to_string(random()));
      if (fs::create_directory(candidate)) {
        path_ = candidate;
        return;
      }
    }
    throw std::runtime_error("cannot create a temporary directory");
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct SqliteFileBackend {
  static constexpr const char* kName = "sqlite_file";
  static constexpr bool kPersistent = true;
  std::string skip_reason() const { return {}; }
  Result<std::unique_ptr<Store>> open() { return open_sqlite_store(dir.path() / "fetchd.db"); }

  TempDir dir;
};

struct SqliteMemoryBackend {
  static constexpr const char* kName = "sqlite_memory";
  static constexpr bool kPersistent = false;
  std::string skip_reason() const { return {}; }
  Result<std::unique_ptr<Store>> open() { return open_sqlite_store(":memory:"); }
};

using StoreBackends = ::testing::Types<SqliteFileBackend, SqliteMemoryBackend>;

struct BackendNames {
  template <typename Backend>
  static std::string GetName(int) {
    return Backend::kName;
  }
};

// ---------------------------------------------------------------------------------------------
// Helpers.

constexpr std::int64_t kNowMs = 1'672'868'498'930;  // 2023-01-04T21:41:38.930Z
constexpr std::int64_t kYearMs = 365LL * 24 * 3600 * 1000;

TimePoint at(std::int64_t ms) {
  return from_unix_ms(ms);
}

std::string describe(const Error& error) {
  return std::string(to_string(error.code)) + ": " + error.message + " [" + error.internal + "]";
}

// The value of a call that must succeed; a failure ends the test with the error (GoogleTest
// reports the exception).
template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result) throw std::runtime_error(what + " failed: " + describe(result.error()));
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// "ok" or the error code's name, so that a mismatch prints readably.
template <typename T>
std::string outcome(const Result<T>& result) {
  return result ? "ok" : std::string(to_string(result.error().code));
}

TaskSpec sample_spec(const std::string& name = "amazingexpo") {
  TaskSpec spec;
  spec.name = name;
  spec.url = "https://example.com/php-architecture/";
  spec.parameters = {{"eventfile", "amazingexpo2020.json"}};
  spec.start_time = at(kNowMs);
  spec.end_time = at(kNowMs + 10 * kYearMs);
  spec.task_interval = 2;
  spec.max_execution_time = 0;
  spec.max_attempt = 3;
  return spec;
}

std::vector<TaskId> ids_of(const std::vector<Task>& tasks) {
  std::vector<TaskId> ids;
  for (const auto& task : tasks) ids.push_back(task.id);
  return ids;
}

template <typename Backend>
class StoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = backend_.skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
    store_ = must(backend_.open(), "open");
    // Kept for the migration test: what a fresh database reports, and what migrating it did.
    status_before_migrate_ = must(store_->migration_status(), "migration_status");
    applied_in_setup_ = must(store_->migrate(), "migrate");
  }

  Store& store() { return *store_; }

  User add_user(const std::string& name, Role role = Role::kUser) {
    return must(store().create_user({name, "hash-of-" + name, role}, at(kNowMs)), "create_user");
  }
  Task add_task(UserId owner, const std::string& name = "amazingexpo") {
    return must(store().create_task(owner, sample_spec(name), at(kNowMs)), "create_task");
  }
  void add_token(const std::string& hash, UserId user, std::int64_t expires_ms) {
    must(store().create_token({hash, user, at(kNowMs), at(expires_ms)}), "create_token");
  }
  bool token_valid(const std::string& hash, std::int64_t now_ms = kNowMs) {
    return store().find_token_user(hash, at(now_ms)).has_value();
  }

  Backend backend_;
  std::unique_ptr<Store> store_;
  std::vector<std::pair<std::string, bool>> status_before_migrate_;
  std::vector<std::string> applied_in_setup_;
};

TYPED_TEST_SUITE(StoreContract, StoreBackends, BackendNames);

// --- schema -----------------------------------------------------------------------------------

TYPED_TEST(StoreContract, MigrateAppliesEveryMigrationOnceInOrder) {
  ASSERT_FALSE(this->status_before_migrate_.empty());
  EXPECT_EQ(this->status_before_migrate_.front().first, "0001_init");
  std::vector<std::string> known;
  for (const auto& [name, applied] : this->status_before_migrate_) {
    EXPECT_FALSE(applied) << name << " reported applied on a fresh database";
    known.push_back(name);
  }
  EXPECT_TRUE(std::is_sorted(known.begin(), known.end()));
  EXPECT_EQ(this->applied_in_setup_, known);

  // Idempotent: a second run applies nothing and everything reads as applied.
  EXPECT_EQ(must(this->store().migrate(), "migrate again"), std::vector<std::string>{});
  const auto after = must(this->store().migration_status(), "migration_status");
  ASSERT_EQ(after.size(), known.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].first, known[i]);
    EXPECT_TRUE(after[i].second) << after[i].first;
  }
}

TYPED_TEST(StoreContract, PingAnswers) {
  EXPECT_EQ(outcome(this->store().ping()), "ok");
}

// --- users ------------------------------------------------------------------------------------

TYPED_TEST(StoreContract, CreatedUserCanBeReadByIdAndByName) {
  const auto alice = this->add_user("alice");
  const auto root = this->add_user("root", Role::kAdmin);
  EXPECT_GT(alice.id, 0);
  EXPECT_NE(alice.id, root.id);
  EXPECT_EQ(alice.username, "alice");
  EXPECT_EQ(alice.password_hash, "hash-of-alice");
  EXPECT_EQ(alice.role, Role::kUser);
  EXPECT_FALSE(alice.disabled);
  EXPECT_EQ(alice.created_at, at(kNowMs));
  EXPECT_EQ(root.role, Role::kAdmin);

  const auto by_id = must(this->store().get_user(alice.id), "get_user");
  EXPECT_EQ(by_id.username, "alice");
  EXPECT_EQ(by_id.password_hash, "hash-of-alice");
  EXPECT_EQ(by_id.role, Role::kUser);
  EXPECT_EQ(by_id.created_at, at(kNowMs));
  const auto by_name = must(this->store().find_user_by_name("root"), "find_user_by_name");
  EXPECT_EQ(by_name.id, root.id);
  EXPECT_TRUE(by_name.is_admin());

  EXPECT_EQ(outcome(this->store().get_user(root.id + 1000)), "not_found");
  EXPECT_EQ(outcome(this->store().find_user_by_name("nobody")), "not_found");
  EXPECT_EQ(outcome(this->store().find_user_by_name("alic")), "not_found");
}

TYPED_TEST(StoreContract, TakenUsernameIsAConflict) {
  const auto alice = this->add_user("alice");
  auto again = this->store().create_user({"alice", "other-hash", Role::kAdmin}, at(kNowMs + 1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().message, "username is already taken");
  // The first account is untouched, and the store still works after the conflict.
  const auto stored = must(this->store().find_user_by_name("alice"), "find_user_by_name");
  EXPECT_EQ(stored.id, alice.id);
  EXPECT_EQ(stored.password_hash, "hash-of-alice");
  EXPECT_EQ(stored.role, Role::kUser);
  EXPECT_EQ(outcome(this->store().create_user({"alice2", "h", Role::kUser}, at(kNowMs))), "ok");
}

TYPED_TEST(StoreContract, PasswordHashCanBeReplaced) {
  const auto alice = this->add_user("alice");
  must(this->store().set_password_hash(alice.id, "new-hash"), "set_password_hash");
  EXPECT_EQ(must(this->store().get_user(alice.id), "get_user").password_hash, "new-hash");
  EXPECT_EQ(outcome(this->store().set_password_hash(alice.id + 1000, "x")), "not_found");
}

TYPED_TEST(StoreContract, DeletingAUserDeletesTheirTasksAndTokens) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  const auto a1 = this->add_task(alice.id, "a1");
  const auto b1 = this->add_task(bob.id, "b1");
  const auto a2 = this->add_task(alice.id, "a2");
  this->add_token("alice-token", alice.id, kNowMs + kYearMs);
  this->add_token("bob-token", bob.id, kNowMs + kYearMs);

  must(this->store().delete_user(alice.id), "delete_user");

  EXPECT_EQ(outcome(this->store().get_user(alice.id)), "not_found");
  EXPECT_EQ(outcome(this->store().find_user_by_name("alice")), "not_found");
  EXPECT_EQ(outcome(this->store().get_task(a1.id)), "not_found");
  EXPECT_EQ(outcome(this->store().get_task(a2.id)), "not_found");
  EXPECT_FALSE(this->token_valid("alice-token"));
  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count_tasks"), 0);
  // Bob is untouched.
  EXPECT_EQ(outcome(this->store().get_user(bob.id)), "ok");
  EXPECT_EQ(outcome(this->store().get_task(b1.id)), "ok");
  EXPECT_TRUE(this->token_valid("bob-token"));
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count_tasks"), 1);

  EXPECT_EQ(outcome(this->store().delete_user(alice.id)), "not_found");
  // The name is free again.
  EXPECT_EQ(outcome(this->store().create_user({"alice", "h", Role::kUser}, at(kNowMs))), "ok");
}

// --- tokens -----------------------------------------------------------------------------------

TYPED_TEST(StoreContract, TokenResolvesToItsUserUntilItExpires) {
  const auto alice = this->add_user("alice");
  const std::int64_t expires = kNowMs + 3'600'000;
  this->add_token("h-alice", alice.id, expires);

  const auto user = must(this->store().find_token_user("h-alice", at(kNowMs)), "find_token_user");
  EXPECT_EQ(user.id, alice.id);
  EXPECT_EQ(user.username, "alice");
  // The boundary: valid one millisecond before expires_at, expired at it and after.
  EXPECT_TRUE(this->token_valid("h-alice", expires - 1));
  EXPECT_EQ(outcome(this->store().find_token_user("h-alice", at(expires))), "not_found");
  EXPECT_EQ(outcome(this->store().find_token_user("h-alice", at(expires + 1))), "not_found");
  EXPECT_EQ(outcome(this->store().find_token_user("h-unknown", at(kNowMs))), "not_found");
}

TYPED_TEST(StoreContract, TokenHashIsUniqueAndNeedsAUser) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  this->add_token("h1", alice.id, kNowMs + 1000);
  EXPECT_EQ(outcome(this->store().create_token({"h1", bob.id, at(kNowMs), at(kNowMs + 5000)})),
            "conflict");
  // The original token still belongs to alice.
  EXPECT_EQ(must(this->store().find_token_user("h1", at(kNowMs)), "find").id, alice.id);
  EXPECT_EQ(
      outcome(this->store().create_token({"h2", bob.id + 1000, at(kNowMs), at(kNowMs + 5000)})),
      "not_found");
  EXPECT_FALSE(this->token_valid("h2"));
}

TYPED_TEST(StoreContract, DeletedTokenNoLongerResolves) {
  const auto alice = this->add_user("alice");
  this->add_token("h1", alice.id, kNowMs + 1000);
  this->add_token("h2", alice.id, kNowMs + 1000);
  must(this->store().delete_token("h1"), "delete_token");
  EXPECT_FALSE(this->token_valid("h1"));
  EXPECT_TRUE(this->token_valid("h2"));
  // Revoking twice (or an unknown token) is not an error.
  EXPECT_EQ(outcome(this->store().delete_token("h1")), "ok");
  EXPECT_EQ(outcome(this->store().delete_token("never-existed")), "ok");
}

TYPED_TEST(StoreContract, DeleteUserTokensCanKeepOne) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  for (const char* hash : {"a1", "a2", "a3"}) this->add_token(hash, alice.id, kNowMs + 1000);
  this->add_token("b1", bob.id, kNowMs + 1000);

  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, "a2"), "delete_user_tokens"), 2);
  EXPECT_FALSE(this->token_valid("a1"));
  EXPECT_TRUE(this->token_valid("a2"));
  EXPECT_FALSE(this->token_valid("a3"));
  EXPECT_TRUE(this->token_valid("b1"));

  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, ""), "delete_user_tokens"), 1);
  EXPECT_FALSE(this->token_valid("a2"));
  EXPECT_TRUE(this->token_valid("b1"));
  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, ""), "delete_user_tokens"), 0);
}

TYPED_TEST(StoreContract, DeleteExpiredTokensRemovesThoseAtOrBeforeNow) {
  const auto alice = this->add_user("alice");
  this->add_token("past", alice.id, kNowMs - 1);
  this->add_token("exactly-now", alice.id, kNowMs);
  this->add_token("future", alice.id, kNowMs + 1);

  EXPECT_EQ(must(this->store().delete_expired_tokens(at(kNowMs)), "delete_expired_tokens"), 2);
  EXPECT_TRUE(this->token_valid("future", kNowMs));
  // The survivors are exactly the unexpired one: removing all of alice's tokens finds one.
  EXPECT_EQ(must(this->store().delete_user_tokens(alice.id, "future"), "delete_user_tokens"), 0);
  EXPECT_EQ(must(this->store().delete_expired_tokens(at(kNowMs)), "delete_expired_tokens"), 0);
  EXPECT_EQ(must(this->store().delete_expired_tokens(at(kNowMs + 1)), "delete_expired_tokens"), 1);
}

// --- tasks ------------------------------------------------------------------------------------

TYPED_TEST(StoreContract, CreatedTaskHasItsSpecAndAFreshState) {
  const auto alice = this->add_user("alice");
  const auto spec = sample_spec();
  const auto task = must(this->store().create_task(alice.id, spec, at(kNowMs)), "create_task");
  EXPECT_GT(task.id, 0);
  EXPECT_EQ(task.owner_id, alice.id);
  EXPECT_EQ(task.spec, spec);
  EXPECT_FALSE(task.paused);
  EXPECT_EQ(task.consecutive_failures, 0);
  EXPECT_FALSE(task.suspended());
  EXPECT_EQ(task.next_run_at, std::nullopt);
  EXPECT_EQ(task.last, LastRun{});
  EXPECT_EQ(task.created_at, at(kNowMs));
  EXPECT_EQ(task.updated_at, at(kNowMs));

  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.id, task.id);
  EXPECT_EQ(read.owner_id, alice.id);
  EXPECT_EQ(read.spec, spec);
  EXPECT_EQ(read.last, LastRun{});
  EXPECT_EQ(read.created_at, at(kNowMs));
  EXPECT_EQ(read.updated_at, at(kNowMs));

  EXPECT_EQ(outcome(this->store().get_task(task.id + 1000)), "not_found");
}

TYPED_TEST(StoreContract, TaskOfAnUnknownOwnerIsNotFound) {
  const auto alice = this->add_user("alice");
  EXPECT_EQ(outcome(this->store().create_task(alice.id + 1000, sample_spec(), at(kNowMs))),
            "not_found");
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count_tasks"), 0);
}

TYPED_TEST(StoreContract, ParametersThatAreNotAnObjectAreInvalid) {
  const auto alice = this->add_user("alice");
  auto spec = sample_spec();
  spec.parameters = nlohmann::json::array({1, 2});
  auto created = this->store().create_task(alice.id, spec, at(kNowMs));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kInvalid);
  ASSERT_EQ(created.error().fields.size(), 1u);
  EXPECT_EQ(created.error().fields[0].field, "parameters");
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count_tasks"), 0);
}

TYPED_TEST(StoreContract, UpdateReplacesTheSpecAndBumpsUpdatedAt) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  TaskSpec changed;
  changed.name = "renamed";
  changed.url = "http://other.example/feed.json";
  changed.parameters = {{"method", "POST"}, {"headers", {{"X-Key", "v"}}}};
  changed.start_time = at(kNowMs + 1000);
  changed.end_time = at(kNowMs + 2000);
  changed.task_interval = 3600;
  changed.max_execution_time = 60;
  changed.max_attempt = 7;
  const auto later = at(kNowMs + 5000);

  const auto updated = must(this->store().update_task(task.id, changed, later), "update_task");
  EXPECT_EQ(updated.id, task.id);
  EXPECT_EQ(updated.owner_id, alice.id);
  EXPECT_EQ(updated.spec, changed);
  EXPECT_EQ(updated.created_at, at(kNowMs));
  EXPECT_EQ(updated.updated_at, later);

  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec, changed);
  EXPECT_EQ(read.created_at, at(kNowMs));
  EXPECT_EQ(read.updated_at, later);

  EXPECT_EQ(outcome(this->store().update_task(task.id + 1000, changed, later)), "not_found");
}

TYPED_TEST(StoreContract, DeletedTaskIsGone) {
  const auto alice = this->add_user("alice");
  const auto doomed = this->add_task(alice.id, "doomed");
  const auto kept = this->add_task(alice.id, "kept");
  must(this->store().delete_task(doomed.id), "delete_task");
  EXPECT_EQ(outcome(this->store().get_task(doomed.id)), "not_found");
  EXPECT_EQ(outcome(this->store().delete_task(doomed.id)), "not_found");
  EXPECT_EQ(outcome(this->store().update_task(doomed.id, sample_spec(), at(kNowMs))), "not_found");
  EXPECT_EQ(must(this->store().get_task(kept.id), "get_task").spec.name, "kept");
  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count_tasks"), 1);
}

TYPED_TEST(StoreContract, TaskIdsAreNeverReused) {
  const auto alice = this->add_user("alice");
  this->add_task(alice.id, "first");
  const auto last = this->add_task(alice.id, "last");
  must(this->store().delete_task(last.id), "delete_task");
  const auto next = this->add_task(alice.id, "next");
  EXPECT_GT(next.id, last.id);
}

TYPED_TEST(StoreContract, ListPaginatesOverThreePagesByAscendingId) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  std::vector<TaskId> mine;
  for (int i = 0; i < 7; ++i) {
    mine.push_back(this->add_task(alice.id, "a" + std::to_string(i)).id);
    this->add_task(bob.id, "b" + std::to_string(i));  // interleaved ids that must be skipped
  }

  TaskQuery query{alice.id, std::nullopt, 3};
  auto page1 = must(this->store().list_tasks(query), "page 1");
  EXPECT_EQ(ids_of(page1.items), (std::vector<TaskId>{mine[0], mine[1], mine[2]}));
  ASSERT_TRUE(page1.next_after.has_value());
  EXPECT_EQ(*page1.next_after, mine[2]);

  query.after = page1.next_after;
  auto page2 = must(this->store().list_tasks(query), "page 2");
  EXPECT_EQ(ids_of(page2.items), (std::vector<TaskId>{mine[3], mine[4], mine[5]}));
  ASSERT_TRUE(page2.next_after.has_value());
  EXPECT_EQ(*page2.next_after, mine[5]);

  query.after = page2.next_after;
  auto page3 = must(this->store().list_tasks(query), "page 3");
  EXPECT_EQ(ids_of(page3.items), (std::vector<TaskId>{mine[6]}));
  EXPECT_FALSE(page3.next_after.has_value());
  for (const auto& task : page3.items) EXPECT_EQ(task.owner_id, alice.id);

  // Both sides of "more rows exist": a limit equal to the count has no next page, one less has.
  auto exact = must(this->store().list_tasks({alice.id, std::nullopt, 7}), "limit 7");
  EXPECT_EQ(ids_of(exact.items), mine);
  EXPECT_FALSE(exact.next_after.has_value());
  auto short_by_one = must(this->store().list_tasks({alice.id, std::nullopt, 6}), "limit 6");
  EXPECT_EQ(short_by_one.items.size(), 6u);
  EXPECT_EQ(short_by_one.next_after, std::optional<std::int64_t>(mine[5]));
  // Past the end.
  auto beyond = must(this->store().list_tasks({alice.id, mine[6], 3}), "after last");
  EXPECT_TRUE(beyond.items.empty());
  EXPECT_FALSE(beyond.next_after.has_value());
}

TYPED_TEST(StoreContract, ListFiltersByOwnerOrListsEveryone) {
  const auto alice = this->add_user("alice");
  const auto bob = this->add_user("bob");
  const auto carol = this->add_user("carol");
  const auto a1 = this->add_task(alice.id, "a1");
  const auto b1 = this->add_task(bob.id, "b1");
  const auto a2 = this->add_task(alice.id, "a2");

  auto alices = must(this->store().list_tasks({alice.id, std::nullopt, 100}), "alice");
  EXPECT_EQ(ids_of(alices.items), (std::vector<TaskId>{a1.id, a2.id}));
  auto bobs = must(this->store().list_tasks({bob.id, std::nullopt, 100}), "bob");
  EXPECT_EQ(ids_of(bobs.items), (std::vector<TaskId>{b1.id}));
  auto carols = must(this->store().list_tasks({carol.id, std::nullopt, 100}), "carol");
  EXPECT_TRUE(carols.items.empty());
  EXPECT_FALSE(carols.next_after.has_value());
  auto everyone = must(this->store().list_tasks({std::nullopt, std::nullopt, 100}), "all");
  EXPECT_EQ(ids_of(everyone.items), (std::vector<TaskId>{a1.id, b1.id, a2.id}));
  auto all_paged = must(this->store().list_tasks({std::nullopt, a1.id, 1}), "all, paged");
  EXPECT_EQ(ids_of(all_paged.items), (std::vector<TaskId>{b1.id}));
  EXPECT_EQ(all_paged.next_after, std::optional<std::int64_t>(b1.id));

  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count alice"), 2);
  EXPECT_EQ(must(this->store().count_tasks(bob.id), "count bob"), 1);
  EXPECT_EQ(must(this->store().count_tasks(carol.id), "count carol"), 0);
  EXPECT_EQ(must(this->store().count_tasks(std::nullopt), "count all"), 3);
}

TYPED_TEST(StoreContract, ListLimitMustBePositive) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  EXPECT_EQ(outcome(this->store().list_tasks({alice.id, std::nullopt, 0})), "invalid");
  auto one = must(this->store().list_tasks({alice.id, std::nullopt, 1}), "limit 1");
  EXPECT_EQ(ids_of(one.items), std::vector<TaskId>{task.id});
  EXPECT_FALSE(one.next_after.has_value());
}

TYPED_TEST(StoreContract, ResetAttemptsClearsFailuresAndBumpsUpdatedAt) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto later = at(kNowMs + 42);
  const auto reset = must(this->store().reset_attempts(task.id, later), "reset_attempts");
  EXPECT_EQ(reset.id, task.id);
  EXPECT_EQ(reset.consecutive_failures, 0);
  EXPECT_FALSE(reset.suspended());
  EXPECT_EQ(reset.spec, task.spec);
  EXPECT_EQ(reset.updated_at, later);
  EXPECT_EQ(reset.created_at, at(kNowMs));
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").updated_at, later);
  EXPECT_EQ(outcome(this->store().reset_attempts(task.id + 1000, later)), "not_found");
}

TYPED_TEST(StoreContract, PauseAndResume) {
  const auto alice = this->add_user("alice");
  const auto task = this->add_task(alice.id);
  const auto paused = must(this->store().set_paused(task.id, true, at(kNowMs + 1)), "pause");
  EXPECT_TRUE(paused.paused);
  EXPECT_EQ(paused.updated_at, at(kNowMs + 1));
  EXPECT_TRUE(must(this->store().get_task(task.id), "get_task").paused);
  // An update of the spec keeps the pause: it is state, not spec.
  must(this->store().update_task(task.id, sample_spec("renamed"), at(kNowMs + 2)), "update");
  EXPECT_TRUE(must(this->store().get_task(task.id), "get_task").paused);

  const auto resumed = must(this->store().set_paused(task.id, false, at(kNowMs + 3)), "resume");
  EXPECT_FALSE(resumed.paused);
  EXPECT_EQ(resumed.updated_at, at(kNowMs + 3));
  EXPECT_FALSE(must(this->store().get_task(task.id), "get_task").paused);
  EXPECT_EQ(outcome(this->store().set_paused(task.id + 1000, true, at(kNowMs))), "not_found");
}

TYPED_TEST(StoreContract, ParametersRoundTripAsJson) {
  const auto alice = this->add_user("alice");
  auto spec = sample_spec();
  spec.parameters = nlohmann::json::parse(R"({
    "method": "POST",
    "headers": {"Accept": "application/json", "X-Empty": ""},
    "query": {"page": 2, "ratio": 0.25, "on": true, "big": 9007199254740993, "neg": -7},
    "body": {"nested": {"deeper": {"list": [1, "two", null, {"three": 3}]}}},
    "eventfile": "amazingexpo2020.json",
    "city": "Zürich", "kanji": "東京", "emoji": "🚀", "quote": "a \"b\" \\ c\n\t",
    "nothing": null, "empty_object": {}, "empty_array": []
  })");
  const auto task = must(this->store().create_task(alice.id, spec, at(kNowMs)), "create_task");
  EXPECT_EQ(task.spec.parameters, spec.parameters);
  const Task read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec.parameters, spec.parameters);
  EXPECT_EQ(read.spec.parameters.at("kanji").get<std::string>(), "東京");
  EXPECT_EQ(read.spec.parameters.at("query").at("big").get<std::int64_t>(), 9007199254740993);

  // The empty object is kept as an object, not null.
  auto empty = sample_spec();
  empty.parameters = nlohmann::json::object();
  const auto bare = must(this->store().create_task(alice.id, empty, at(kNowMs)), "create_task");
  const auto bare_read = must(this->store().get_task(bare.id), "get_task");
  EXPECT_TRUE(bare_read.spec.parameters.is_object());
  EXPECT_TRUE(bare_read.spec.parameters.empty());
}

TYPED_TEST(StoreContract, TimesRoundTripToTheMillisecondIncludingBefore1970) {
  const auto alice = this->add_user("alice");
  auto spec = sample_spec();
  spec.start_time = at(-1);                     // 1969-12-31T23:59:59.999Z
  spec.end_time = at(253'402'300'799'999);      // 9999-12-31T23:59:59.999Z
  const auto created_at = at(-86'400'000 - 7);  // 1969-12-30T23:59:59.993Z
  const auto task = must(this->store().create_task(alice.id, spec, created_at), "create_task");
  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec.start_time, at(-1));
  EXPECT_EQ(read.spec.end_time, at(253'402'300'799'999));
  EXPECT_EQ(read.created_at, created_at);
  EXPECT_EQ(read.updated_at, created_at);

  auto precise = sample_spec();
  precise.start_time = at(kNowMs + 1);  // ...38.931Z: one millisecond apart must stay apart
  precise.end_time = at(kNowMs + 2);
  const auto updated = must(this->store().update_task(task.id, precise, at(kNowMs + 999)), "up");
  EXPECT_EQ(updated.spec.start_time, at(kNowMs + 1));
  EXPECT_EQ(updated.spec.end_time, at(kNowMs + 2));
  EXPECT_EQ(must(this->store().get_task(task.id), "get_task").updated_at, at(kNowMs + 999));

  const auto user = must(this->store().create_user({"old", "h", Role::kUser}, at(-5)), "user");
  EXPECT_EQ(must(this->store().get_user(user.id), "get_user").created_at, at(-5));
  this->add_token("old-token", user.id, -3);
  EXPECT_TRUE(this->token_valid("old-token", -4));
  EXPECT_FALSE(this->token_valid("old-token", -3));
}

TYPED_TEST(StoreContract, ConcurrentWritersAllLand) {
  const auto alice = this->add_user("alice");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::vector<TaskId>> created(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto task = this->store().create_task(alice.id, sample_spec(name), at(kNowMs + i));
        if (!task) {
          ++failures;
          continue;
        }
        created[t].push_back(task->id);
        // A read right after the write sees it (another connection in a pooled backend).
        auto read = this->store().get_task(task->id);
        if (!read || read->spec.name != name) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  std::set<TaskId> unique;
  for (const auto& ids : created) unique.insert(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(must(this->store().count_tasks(alice.id), "count_tasks"), kThreads * kPerThread);
  auto all = must(this->store().list_tasks({alice.id, std::nullopt, 500}), "list_tasks");
  EXPECT_EQ(ids_of(all.items), std::vector<TaskId>(unique.begin(), unique.end()));
}

TYPED_TEST(StoreContract, DataSurvivesCloseAndReopen) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << TypeParam::kName << " does not persist";
  const auto alice = this->add_user("alice", Role::kAdmin);
  const auto task = this->add_task(alice.id);
  must(this->store().set_paused(task.id, true, at(kNowMs + 1)), "set_paused");
  this->add_token("h-alice", alice.id, kNowMs + 1000);

  this->store_.reset();  // closes every connection
  this->store_ = must(this->backend_.open(), "reopen");
  EXPECT_EQ(must(this->store().migrate(), "migrate on reopen"), std::vector<std::string>{});

  const auto user = must(this->store().find_user_by_name("alice"), "find_user_by_name");
  EXPECT_EQ(user.id, alice.id);
  EXPECT_TRUE(user.is_admin());
  const auto read = must(this->store().get_task(task.id), "get_task");
  EXPECT_EQ(read.spec, task.spec);
  EXPECT_TRUE(read.paused);
  EXPECT_EQ(read.updated_at, at(kNowMs + 1));
  EXPECT_TRUE(this->token_valid("h-alice"));
  // Ids keep increasing across restarts.
  EXPECT_GT(this->add_task(alice.id, "after restart").id, task.id);
}

}  // namespace
}  // namespace fetchd
