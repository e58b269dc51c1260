// LocalBroker: the in-process FIFO with in-memory leases (see local_broker.hpp).
#include "broker/local/local_broker.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>

namespace fetchd {

namespace {

std::optional<std::uint64_t> parse_receipt(std::string_view receipt) {
  std::uint64_t value = 0;
  const char* end = receipt.data() + receipt.size();
  auto [ptr, ec] = std::from_chars(receipt.data(), end, value);
  if (ec != std::errc() || ptr != end || receipt.empty()) return std::nullopt;
  return value;
}

auto claim_not_held(const Claim& claim) {
  return fail(ErrorCode::kNotFound, "the claim on the run of task " +
                                        std::to_string(claim.run.task_id) +
                                        " is no longer held (completed, released or expired)");
}

}  // namespace

LocalBroker::LocalBroker(const Clock& clock) : clock_(clock) {}

Result<void> LocalBroker::enqueue(const Run& run) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return fail(ErrorCode::kUnavailable, "the broker is closed");
    if (!held_.insert(run.task_id).second) {
      return fail(ErrorCode::kConflict,
                  "a run of task " + std::to_string(run.task_id) + " is already queued or running");
    }
    queue_.push_back(Waiting{run, 0});
  }
  ready_.notify_one();
  return {};
}

Result<std::vector<Claim>> LocalBroker::claim(std::size_t max, std::chrono::milliseconds wait,
                                              std::chrono::milliseconds lease) {
  std::vector<Claim> claims;
  if (max == 0) return claims;
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, wait, [this] { return closed_ || !queue_.empty(); });
  if (closed_) return claims;
  const TimePoint lease_until = clock_.now() + lease;
  const std::size_t n = std::min(max, queue_.size());
  claims.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Waiting waiting = std::move(queue_.front());
    queue_.pop_front();
    const std::uint64_t receipt = next_receipt_++;
    const std::int64_t deliveries = waiting.deliveries + 1;
    leases_.emplace(receipt, Leased{waiting.run, deliveries, lease_until});
    claims.push_back(
        Claim{std::move(waiting.run), std::to_string(receipt), lease_until, deliveries});
  }
  // Another claimer may take what this one left.
  if (!queue_.empty()) ready_.notify_one();
  return claims;
}

LocalBroker::Leased* LocalBroker::find_locked(const Claim& claim) {
  auto receipt = parse_receipt(claim.receipt);
  if (!receipt) return nullptr;
  auto it = leases_.find(*receipt);
  return it == leases_.end() ? nullptr : &it->second;
}

Result<void> LocalBroker::complete(const Claim& claim) {
  std::lock_guard lock(mutex_);
  auto receipt = parse_receipt(claim.receipt);
  if (!receipt) return claim_not_held(claim);
  auto it = leases_.find(*receipt);
  if (it == leases_.end()) return claim_not_held(claim);
  held_.erase(it->second.run.task_id);
  leases_.erase(it);
  return {};
}

Result<void> LocalBroker::release(const Claim& claim) {
  {
    std::lock_guard lock(mutex_);
    auto receipt = parse_receipt(claim.receipt);
    if (!receipt) return claim_not_held(claim);
    auto it = leases_.find(*receipt);
    if (it == leases_.end()) return claim_not_held(claim);
    queue_.push_front(Waiting{std::move(it->second.run), it->second.deliveries - 1});
    leases_.erase(it);
  }
  ready_.notify_one();
  return {};
}

Result<void> LocalBroker::extend(const Claim& claim, std::chrono::milliseconds lease) {
  std::lock_guard lock(mutex_);
  Leased* leased = find_locked(claim);
  if (leased == nullptr) return claim_not_held(claim);
  leased->lease_until = clock_.now() + lease;
  return {};
}

Result<std::size_t> LocalBroker::reclaim_expired(TimePoint now) {
  std::size_t reclaimed = 0;
  {
    std::lock_guard lock(mutex_);
    // Walk newest claim first so that pushing each to the front leaves the oldest in front.
    for (auto it = leases_.rbegin(); it != leases_.rend();) {
      if (it->second.lease_until < now) {
        queue_.push_front(Waiting{std::move(it->second.run), it->second.deliveries});
        it = std::make_reverse_iterator(leases_.erase(std::next(it).base()));
        ++reclaimed;
      } else {
        ++it;
      }
    }
  }
  if (reclaimed > 0) ready_.notify_all();
  return reclaimed;
}

Result<std::vector<TaskId>> LocalBroker::holding(const std::vector<TaskId>& tasks) {
  std::vector<TaskId> held;
  std::lock_guard lock(mutex_);
  for (TaskId id : tasks) {
    if (held_.contains(id)) held.push_back(id);
  }
  return held;
}

std::size_t LocalBroker::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::size_t LocalBroker::leased() const {
  std::lock_guard lock(mutex_);
  return leases_.size();
}

void LocalBroker::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
}

}  // namespace fetchd
