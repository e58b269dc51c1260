// Unit tests of the credential primitives: validation bounds, Argon2id hashing, token format.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "auth/auth_service.hpp"

namespace fetchd::auth {
namespace {

bool is_base64url(const std::string& s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

TEST(ValidateUsername, LengthBoundsBothSides) {
  EXPECT_FALSE(validate_username(std::string(2, 'a')).empty());
  EXPECT_TRUE(validate_username(std::string(3, 'a')).empty());
  EXPECT_TRUE(validate_username(std::string(64, 'a')).empty());
  EXPECT_FALSE(validate_username(std::string(65, 'a')).empty());
  EXPECT_FALSE(validate_username("").empty());
}

TEST(ValidateUsername, AllowedAndForbiddenCharacters) {
  EXPECT_TRUE(validate_username("Alice_01.b-c").empty());
  const std::vector<std::string> bad_names = {
      "al ice", "alice!", "al/ice", "al@ice", "alicé", "al\nice", std::string("al\0ce", 5)};
  for (const std::string& bad : bad_names) {
    auto errors = validate_username(bad);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_EQ(errors[0].field, "username");
    EXPECT_NE(errors[0].message.find("letters"), std::string::npos);
  }
}

TEST(ValidateUsername, ReportsLengthAndCharactersTogether) {
  auto errors = validate_username("a!");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].field, "username");
  EXPECT_EQ(errors[1].field, "username");
}

TEST(ValidatePassword, LengthBoundsBothSides) {
  EXPECT_FALSE(validate_password(std::string(7, 'p')).empty());
  EXPECT_TRUE(validate_password(std::string(8, 'p')).empty());
  EXPECT_TRUE(validate_password(std::string(1024, 'p')).empty());
  auto errors = validate_password(std::string(1025, 'p'));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "password");
  EXPECT_FALSE(validate_password("").empty());
}

TEST(ValidatePassword, CountsBytesNotCharacters) {
  // "é" is two bytes in UTF-8: four of them are 8 bytes.
  EXPECT_TRUE(validate_password("éééé").empty());
  EXPECT_FALSE(validate_password("ééé").empty());
}

TEST(PasswordHash, RoundTripAndWrongPassword) {
  auto hash = hash_password("correct horse battery staple");
  ASSERT_TRUE(hash.has_value());
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u) << *hash;
  EXPECT_TRUE(verify_password(*hash, "correct horse battery staple"));
  EXPECT_FALSE(verify_password(*hash, "correct horse battery stapl"));
  EXPECT_FALSE(verify_password(*hash, "Correct horse battery staple"));
  EXPECT_FALSE(verify_password(*hash, ""));
}

TEST(PasswordHash, SaltedSoTwoHashesDiffer) {
  auto a = hash_password("same password");
  auto b = hash_password("same password");
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(verify_password(*b, "same password"));
}

TEST(PasswordHash, GarbageHashNeverVerifies) {
  EXPECT_FALSE(verify_password("", "password"));
  EXPECT_FALSE(verify_password("not a hash", "not a hash"));
  EXPECT_FALSE(verify_password(std::string(1000, '$'), "password"));
}

TEST(PasswordHash, EmbeddedNulIsPartOfThePassword) {
  std::string with_nul("pass\0word", 9);
  auto hash = hash_password(with_nul);
  ASSERT_TRUE(hash.has_value());
  EXPECT_TRUE(verify_password(*hash, with_nul));
  EXPECT_FALSE(verify_password(*hash, "pass"));
}

TEST(Token, FormatIs43CharsBase64Url) {
  NewToken t = generate_token();
  EXPECT_EQ(t.token.size(), 43u);
  EXPECT_TRUE(is_base64url(t.token)) << t.token;
  EXPECT_EQ(t.hash, hash_token(t.token));
}

TEST(Token, Unique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(generate_token().token);
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Token, HashIsDeterministicHexSha256) {
  // SHA-256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hash_token("token"), hash_token("token"));
  EXPECT_NE(hash_token("token"), hash_token("token2"));
  EXPECT_EQ(hash_token("").size(), 64u);
}

}  // namespace
}  // namespace fetchd::auth
