#include "core/user.hpp"

namespace fetchd {

std::string_view to_string(Role role) {
  return role == Role::kAdmin ? "admin" : "user";
}

std::optional<Role> role_from_string(std::string_view text) {
  if (text == "admin") return Role::kAdmin;
  if (text == "user") return Role::kUser;
  return std::nullopt;
}

}  // namespace fetchd
