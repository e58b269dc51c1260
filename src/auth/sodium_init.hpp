// Internal to auth/: libsodium must be initialised before its random generator is used.
#pragma once

namespace fetchd::auth::detail {

// Calls sodium_init() (idempotent, thread-safe); throws std::runtime_error if it fails, which
// only happens on a host without an entropy source.
void ensure_sodium();

}  // namespace fetchd::auth::detail
