// A Store that hands every call to another one: test doubles derive from it and override only
// the calls they change (fail, count, delay), keeping the real store's behaviour for the rest.
#pragma once

#include <memory>
#include <utility>

#include "store/store.hpp"

namespace fetchd::test {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::unique_ptr<Store> inner)
      : owned_(std::move(inner)), inner_(owned_.get()) {}
  // Forwards to a store owned elsewhere, which must outlive this one.
  explicit ForwardingStore(Store& inner) : inner_(&inner) {}

  Result<std::vector<std::string>> migrate() override { return inner_->migrate(); }
  Result<std::vector<std::pair<std::string, bool>>> migration_status() override {
    return inner_->migration_status();
  }
  Result<void> ping() override { return inner_->ping(); }
  Result<User> create_user(const NewUser& user, TimePoint now) override {
    return inner_->create_user(user, now);
  }
  Result<User> get_user(UserId id) override { return inner_->get_user(id); }
  Result<User> find_user_by_name(const std::string& name) override {
    return inner_->find_user_by_name(name);
  }
  Result<void> set_password_hash(UserId id, const std::string& hash) override {
    return inner_->set_password_hash(id, hash);
  }
  Result<void> delete_user(UserId id) override { return inner_->delete_user(id); }
  Result<std::vector<Task>> get_tasks(const std::vector<TaskId>& ids) override {
    return inner_->get_tasks(ids);
  }
  Result<Page<User>> list_users(const UserQuery& query) override {
    return inner_->list_users(query);
  }
  Result<User> update_user(UserId id, std::optional<Role> role,
                           std::optional<bool> disabled) override {
    return inner_->update_user(id, role, disabled);
  }
  Result<void> create_token(const TokenRecord& token) override {
    return inner_->create_token(token);
  }
  Result<User> find_token_user(const std::string& hash, TimePoint now) override {
    return inner_->find_token_user(hash, now);
  }
  Result<void> delete_token(const std::string& hash) override { return inner_->delete_token(hash); }
  Result<std::int64_t> delete_user_tokens(UserId id, const std::string& keep_hash) override {
    return inner_->delete_user_tokens(id, keep_hash);
  }
  Result<std::int64_t> delete_expired_tokens(TimePoint now) override {
    return inner_->delete_expired_tokens(now);
  }
  Result<Task> create_task(UserId owner, const TaskSpec& spec, TimePoint now) override {
    return inner_->create_task(owner, spec, now);
  }
  Result<Task> get_task(TaskId id) override { return inner_->get_task(id); }
  Result<Page<Task>> list_tasks(const TaskQuery& query) override {
    return inner_->list_tasks(query);
  }
  Result<Task> update_task(TaskId id, const TaskSpec& spec, TimePoint now) override {
    return inner_->update_task(id, spec, now);
  }
  Result<void> delete_task(TaskId id) override { return inner_->delete_task(id); }
  Result<Task> reset_attempts(TaskId id, TimePoint now) override {
    return inner_->reset_attempts(id, now);
  }
  Result<Task> set_paused(TaskId id, bool paused, TimePoint now) override {
    return inner_->set_paused(id, paused, now);
  }
  Result<std::int64_t> count_suspended_tasks() override { return inner_->count_suspended_tasks(); }
  Result<std::int64_t> count_tasks(std::optional<UserId> owner) override {
    return inner_->count_tasks(owner);
  }
  Result<void> set_next_run(TaskId id, std::optional<TimePoint> next_run_at) override {
    return inner_->set_next_run(id, next_run_at);
  }
  Result<Page<ScheduleEntry>> load_schedule(std::optional<TaskId> after,
                                            std::size_t limit) override {
    return inner_->load_schedule(after, limit);
  }
  Result<std::vector<RecordedRun>> record_runs(const std::vector<RunRecord>& runs) override {
    return inner_->record_runs(runs);
  }
  Result<Page<Job>> list_jobs(const JobQuery& query) override { return inner_->list_jobs(query); }
  Result<Job> get_job(JobId id) override { return inner_->get_job(id); }
  Result<Data> get_data(DataId id) override { return inner_->get_data(id); }
  Result<std::int64_t> prune(const RetentionPolicy& policy) override {
    return inner_->prune(policy);
  }

 protected:
  Store& inner() { return *inner_; }

 private:
  std::unique_ptr<Store> owned_;
  Store* inner_;
};

}  // namespace fetchd::test
