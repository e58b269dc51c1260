// A user account. Roles: a plain user sees only their own tasks; an admin sees all.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/ids.hpp"
#include "core/time.hpp"

namespace fetchd {

enum class Role { kUser, kAdmin };

std::string_view to_string(Role role);
std::optional<Role> role_from_string(std::string_view text);

struct User {
  UserId id = 0;
  std::string username;
  std::string password_hash;  // libsodium crypto_pwhash_str output (Argon2id)
  Role role = Role::kUser;
  bool disabled = false;
  TimePoint created_at{};

  bool is_admin() const { return role == Role::kAdmin; }
};

struct NewUser {
  std::string username;
  std::string password_hash;
  Role role = Role::kUser;
};

}  // namespace fetchd
