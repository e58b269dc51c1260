// The credential primitives behind AuthService: the API's username/password rules, Argon2id
// password hashes and random bearer tokens with their stored SHA-256 form (all libsodium).
#include <sodium.h>

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>

#include "auth/auth_service.hpp"
#include "auth/sodium_init.hpp"

namespace fetchd::auth {

namespace {

constexpr std::size_t kUsernameMin = 3;
constexpr std::size_t kUsernameMax = 64;
constexpr std::size_t kPasswordMin = 8;
constexpr std::size_t kPasswordMax = 1024;
constexpr std::size_t kTokenBytes = 32;  // 256 bits

bool is_username_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

namespace detail {

void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; only -1 (no entropy source) is a failure, and
  // without randomness no token can be issued safely: a broken host, not an expected error.
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
}

}  // namespace detail

std::vector<FieldError> validate_username(std::string_view username) {
  std::vector<FieldError> errors;
  if (username.size() < kUsernameMin || username.size() > kUsernameMax) {
    errors.push_back({"username", "must be 3 to 64 characters long"});
  }
  for (char c : username) {
    if (!is_username_char(c)) {
      errors.push_back({"username", "may contain only letters, digits, '_', '.' and '-'"});
      break;
    }
  }
  return errors;
}

std::vector<FieldError> validate_password(std::string_view password) {
  std::vector<FieldError> errors;
  if (password.size() < kPasswordMin || password.size() > kPasswordMax) {
    errors.push_back({"password", "must be 8 to 1024 bytes long"});
  }
  return errors;
}

Result<std::string> hash_password(std::string_view password) {
  detail::ensure_sodium();
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str(out.data(), password.data(), password.size(),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return fail(ErrorCode::kInternal, "internal error", "crypto_pwhash_str: out of memory");
  }
  return std::string(out.data());
}

bool verify_password(std::string_view hash, std::string_view password) {
  detail::ensure_sodium();
  // crypto_pwhash_str_verify reads a NUL-terminated string of at most STRBYTES.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  std::string terminated(hash);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

NewToken generate_token() {
  detail::ensure_sodium();
  std::array<unsigned char, kTokenBytes> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  constexpr auto kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::array<char, sodium_base64_ENCODED_LEN(kTokenBytes, kVariant)> text{};
  sodium_bin2base64(text.data(), text.size(), bytes.data(), bytes.size(), kVariant);
  sodium_memzero(bytes.data(), bytes.size());
  NewToken token;
  token.token = std::string(text.data());
  token.hash = hash_token(token.token);
  return token;
}

std::string hash_token(std::string_view token) {
  detail::ensure_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data());
}

}  // namespace fetchd::auth
