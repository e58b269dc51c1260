// Accounts and bearer tokens: registration, login, logout, and resolving a token to its user.
// Passwords are hashed with libsodium Argon2id; tokens are 256 random bits, handed out once
// and stored only as a SHA-256 hash.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/login_throttle.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "core/user.hpp"
#include "store/store.hpp"

namespace fetchd::auth {

struct AuthSettings {
  std::chrono::seconds token_ttl{24 * 3600};
  bool open_registration = true;
  ThrottleSettings login_throttle;
};

struct LoginResult {
  std::string access_token;  // shown to the client once
  std::string token_type = "Bearer";
  std::int64_t expires_in = 0;  // seconds
};

// Rules of the API: username 3–64 chars of [A-Za-z0-9_.-]; password 8–1024 bytes.
// Return the field errors (empty when valid).
std::vector<FieldError> validate_username(std::string_view username);
std::vector<FieldError> validate_password(std::string_view password);

// Argon2id via crypto_pwhash_str (interactive limits). hash_password fails only when out of
// memory (kInternal).
Result<std::string> hash_password(std::string_view password);
bool verify_password(std::string_view hash, std::string_view password);

// A new random token (base64url, 43 chars) and the hash under which it is stored.
struct NewToken {
  std::string token;
  std::string hash;
};
NewToken generate_token();
std::string hash_token(std::string_view token);  // hex SHA-256

class AuthService {
 public:
  AuthService(Store& store, const Clock& clock, AuthSettings settings);

  // kInvalid (field errors), kConflict (username taken), kForbidden when registration is
  // closed and `via_admin` is false.
  Result<User> register_user(std::string_view username, std::string_view password,
                             Role role = Role::kUser, bool via_admin = false);
  // kUnauthenticated with the same message whether or not the user exists; a disabled user
  // cannot log in. kThrottled (with retry_after_s) after too many failures for the username
  // or from `address` (the client's IP; empty: not known), before the password is even checked.
  Result<LoginResult> login(std::string_view username, std::string_view password,
                            std::string_view address = {});
  // POST /password: `current` must be the user's password; `replacement` follows the password
  // rules (kInvalid, field new_password). Every token of the user but `keep_token` (the one of
  // the request) is revoked.
  Result<void> change_password(const User& user, std::string_view current,
                               std::string_view replacement, std::string_view keep_token);
  // The user behind a bearer token: kUnauthenticated when unknown, expired or disabled.
  Result<User> authenticate(std::string_view token);
  Result<void> logout(std::string_view token);

 private:
  Store& store_;
  const Clock& clock_;
  AuthSettings settings_;
  LoginThrottle throttle_;
  // A real Argon2id hash of a throwaway password: login verifies against it when the user
  // does not exist, so that the answer takes as long as for a wrong password.
  std::string dummy_hash_;
};

}  // namespace fetchd::auth
