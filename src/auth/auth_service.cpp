// AuthService: registration, login, logout and token resolution on top of the Store, with the
// same answer (and roughly the same time) for an unknown user as for a wrong password.
#include "auth/auth_service.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "auth/sodium_init.hpp"

namespace fetchd::auth {

namespace {

constexpr std::string_view kBadCredentials = "invalid username or password";
constexpr std::string_view kBadToken = "invalid or expired token";

tl::unexpected<Error> bad_credentials() {
  return fail(ErrorCode::kUnauthenticated, std::string(kBadCredentials));
}

tl::unexpected<Error> bad_token(std::string internal = {}) {
  return fail(ErrorCode::kUnauthenticated, std::string(kBadToken), std::move(internal));
}

}  // namespace

AuthService::AuthService(Store& store, const Clock& clock, AuthSettings settings)
    : store_(store), clock_(clock), settings_(settings), throttle_(clock, settings.login_throttle) {
  detail::ensure_sodium();
  auto dummy = hash_password("fetchd-dummy-password-for-timing");
  // Only out-of-memory gets here, at start-up: not an expected runtime failure.
  if (!dummy) throw std::runtime_error("cannot compute the dummy password hash: out of memory");
  dummy_hash_ = std::move(*dummy);
}

Result<User> AuthService::register_user(std::string_view username, std::string_view password,
                                        Role role, bool via_admin) {
  // Policy before content: when registration is closed the fields do not matter.
  if (!via_admin && !settings_.open_registration) {
    return fail(ErrorCode::kForbidden, "registration is closed");
  }
  if (!via_admin && role == Role::kAdmin) {
    return fail(ErrorCode::kForbidden, "only an administrator can create an admin account");
  }
  auto fields = validate_username(username);
  auto password_fields = validate_password(password);
  fields.insert(fields.end(), password_fields.begin(), password_fields.end());
  if (!fields.empty()) {
    Error error = Error::make(ErrorCode::kInvalid, "invalid username or password");
    error.fields = std::move(fields);
    return tl::unexpected(std::move(error));
  }

  auto hash = hash_password(password);
  if (!hash) return tl::unexpected(hash.error());

  NewUser user{std::string(username), std::move(*hash), role};
  auto created = store_.create_user(user, clock_.now());
  if (!created && created.error().code == ErrorCode::kConflict) {
    return fail(ErrorCode::kConflict, "username is already taken", created.error().internal);
  }
  return created;
}

Result<LoginResult> AuthService::login(std::string_view username, std::string_view password,
                                       std::string_view address) {
  if (auto wait = throttle_.retry_after(username, address)) {
    Error error = Error::make(ErrorCode::kThrottled, "too many failed logins; try again in " +
                                                         std::to_string(wait->count()) + " s");
    error.retry_after_s = wait->count();
    return tl::unexpected(std::move(error));
  }
  auto user = store_.find_user_by_name(std::string(username));
  if (!user) {
    if (user.error().code != ErrorCode::kNotFound) return tl::unexpected(user.error());
    (void)verify_password(dummy_hash_, password);
    throttle_.failed(username, address);
    return bad_credentials();
  }
  // Verify even for a disabled account so that its answer takes the usual time.
  bool password_ok = verify_password(user->password_hash, password);
  if (!password_ok || user->disabled) {
    throttle_.failed(username, address);
    return bad_credentials();
  }
  throttle_.succeeded(username);

  NewToken token = generate_token();
  TimePoint now = clock_.now();
  TokenRecord record{token.hash, user->id, now, now + settings_.token_ttl};
  if (auto stored = store_.create_token(record); !stored) return tl::unexpected(stored.error());

  LoginResult result;
  result.access_token = std::move(token.token);
  result.expires_in = settings_.token_ttl.count();
  return result;
}

Result<User> AuthService::authenticate(std::string_view token) {
  if (token.empty()) return bad_token();
  auto user = store_.find_token_user(hash_token(token), clock_.now());
  if (!user) {
    if (user.error().code == ErrorCode::kNotFound) return bad_token();
    return tl::unexpected(user.error());
  }
  if (user->disabled) return bad_token("user " + std::to_string(user->id) + " is disabled");
  return user;
}

Result<void> AuthService::change_password(const User& user, std::string_view current,
                                          std::string_view replacement,
                                          std::string_view keep_token) {
  // The stored hash, not the one the caller may hold from before a concurrent change.
  auto stored = store_.get_user(user.id);
  if (!stored) return tl::unexpected(stored.error());
  if (!verify_password(stored->password_hash, current)) {
    Error error = Error::make(ErrorCode::kInvalid, "the current password is wrong");
    error.fields.push_back({"current_password", "is not the account's password"});
    return tl::unexpected(std::move(error));
  }
  if (auto invalid = validate_password(replacement); !invalid.empty()) {
    Error error = Error::make(ErrorCode::kInvalid, "invalid new password");
    for (auto& field : invalid) error.fields.push_back({"new_password", std::move(field.message)});
    return tl::unexpected(std::move(error));
  }
  auto hash = hash_password(replacement);
  if (!hash) return tl::unexpected(hash.error());
  if (auto set = store_.set_password_hash(user.id, *hash); !set) return set;
  auto revoked = store_.delete_user_tokens(
      user.id, keep_token.empty() ? std::string() : hash_token(keep_token));
  if (!revoked) return tl::unexpected(revoked.error());
  return {};
}

Result<void> AuthService::logout(std::string_view token) {
  if (token.empty()) return bad_token();
  auto deleted = store_.delete_token(hash_token(token));
  if (!deleted && deleted.error().code == ErrorCode::kNotFound) return bad_token();
  return deleted;
}

}  // namespace fetchd::auth
