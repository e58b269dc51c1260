#include "auth/login_throttle.hpp"

#include <algorithm>

namespace fetchd::auth {

namespace {

std::string user_key(std::string_view username) {
  return "u:" + std::string(username);
}
std::string address_key(std::string_view address) {
  return "a:" + std::string(address);
}

}  // namespace

LoginThrottle::LoginThrottle(const Clock& clock, ThrottleSettings settings)
    : clock_(clock), settings_(settings) {}

std::optional<std::chrono::seconds> LoginThrottle::retry_after(std::string_view username,
                                                               std::string_view address) {
  if (settings_.max_failures <= 0) return std::nullopt;
  const TimePoint now = clock_.now();
  std::lock_guard lock(mutex_);
  auto by_user = retry_after_locked(user_key(username), now);
  auto by_address = address.empty() ? std::nullopt : retry_after_locked(address_key(address), now);
  if (by_user && by_address) return std::max(*by_user, *by_address);
  return by_user ? by_user : by_address;
}

void LoginThrottle::failed(std::string_view username, std::string_view address) {
  if (settings_.max_failures <= 0) return;
  const TimePoint now = clock_.now();
  std::lock_guard lock(mutex_);
  if (failures_.size() >= settings_.max_keys) sweep_locked(now);
  add_locked(user_key(username), now);
  if (!address.empty()) add_locked(address_key(address), now);
}

void LoginThrottle::succeeded(std::string_view username) {
  std::lock_guard lock(mutex_);
  failures_.erase(user_key(username));
}

std::optional<std::chrono::seconds> LoginThrottle::retry_after_locked(const std::string& key,
                                                                      TimePoint now) {
  auto it = failures_.find(key);
  if (it == failures_.end()) return std::nullopt;
  Failures& times = it->second;
  while (!times.empty() && times.front() + settings_.window <= now) times.pop_front();
  if (times.empty()) {
    failures_.erase(it);
    return std::nullopt;
  }
  if (static_cast<int>(times.size()) < settings_.max_failures) return std::nullopt;
  // Allowed again once enough failures have left the window; rounded up to whole seconds.
  const TimePoint free_at =
      times[times.size() - static_cast<std::size_t>(settings_.max_failures)] + settings_.window;
  const auto wait = std::chrono::ceil<std::chrono::seconds>(free_at - now);
  return std::max(wait, std::chrono::seconds(1));
}

void LoginThrottle::add_locked(const std::string& key, TimePoint now) {
  if (failures_.size() >= settings_.max_keys && !failures_.contains(key)) return;
  Failures& times = failures_[key];
  times.push_back(now);
  // Only the last max_failures matter for the decision.
  while (times.size() > static_cast<std::size_t>(settings_.max_failures)) times.pop_front();
}

void LoginThrottle::sweep_locked(TimePoint now) {
  std::erase_if(failures_, [&](const auto& entry) {
    return entry.second.empty() || entry.second.back() + settings_.window <= now;
  });
}

}  // namespace fetchd::auth
