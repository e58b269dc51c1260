// Slows down password guessing: after `max_failures` failed logins within `window`, for one
// username or from one client address, further logins for it are refused (429 with
// Retry-After) until the oldest of those failures leaves the window. Counted in this process
// only (each API process of a scale-out deployment counts its own).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/time.hpp"

namespace fetchd::auth {

struct ThrottleSettings {
  int max_failures = 5;  // 0: no throttling
  std::chrono::milliseconds window{15 * 60 * 1000};
  std::size_t max_keys = 100'000;  // bounds the memory an attacker can make us spend
};

class LoginThrottle {
 public:
  LoginThrottle(const Clock& clock, ThrottleSettings settings);

  // How long until a login for `username` from `address` may be tried; nullopt: now.
  std::optional<std::chrono::seconds> retry_after(std::string_view username,
                                                  std::string_view address);
  void failed(std::string_view username, std::string_view address);
  // A correct password clears the username's failures (not the address's: an address that
  // guesses many names and owns one account does not get a fresh start from it).
  void succeeded(std::string_view username);

 private:
  using Failures = std::deque<TimePoint>;
  std::optional<std::chrono::seconds> retry_after_locked(const std::string& key, TimePoint now);
  void add_locked(const std::string& key, TimePoint now);
  void sweep_locked(TimePoint now);

  const Clock& clock_;
  ThrottleSettings settings_;
  std::mutex mutex_;
  std::unordered_map<std::string, Failures> failures_;  // "u:<name>" or "a:<address>"
};

}  // namespace fetchd::auth
