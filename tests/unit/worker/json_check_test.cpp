// check_json: what is JSON (RFC 8259) and what is not, the parser's message and offset, the
// depth limit, record counting, and the sample feeds.
#include "worker/json_check.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace fetchd {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(FETCHD_SOURCE_DIR) + "/../shared/fixtures/" + name,
                   std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool valid_utf8(std::string_view s) {
  // Enough for the test: reject stray bytes >= 0x80 that do not form a sequence.
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(JsonCheck, AcceptsEveryKindOfDocument) {
  for (const char* body : {"{}", "[]", "0", "-1.5e3", "\"text\"", "true", "false", "null",
                           " \n\t{\"a\": [1, 2, {\"b\": null}]}\r\n ", "\"\\u00e9\\ud83d\\ude00\"",
                           "\"h\xc3\xa9llo\""}) {
    JsonCheck check = check_json(body);
    EXPECT_TRUE(check.ok) << body << ": " << check.error;
    EXPECT_TRUE(check.error.empty()) << body;
  }
}

TEST(JsonCheck, CountsRecordsOfATopLevelArrayOfObjects) {
  EXPECT_EQ(check_json("[{}, {\"a\": 1}, {\"b\": [1, {}]}]").records, 3);
  EXPECT_EQ(check_json("[{\"nested\": [{}, {}, {}]}]").records, 1);
  EXPECT_EQ(check_json("[]").records, 0);
}

TEST(JsonCheck, NoRecordsForOtherShapes) {
  for (const char* body : {"{}", "{\"items\": [{}, {}]}", "[1, 2]", "[{}, 1]", "[1, {}]",
                           "[{}, []]", "[[{}]]", "[{}, null]", "[\"a\"]", "42"}) {
    JsonCheck check = check_json(body);
    EXPECT_TRUE(check.ok) << body;
    EXPECT_FALSE(check.records.has_value()) << body;
  }
}

TEST(JsonCheck, ReportsTheParsersMessageAndOffset) {
  JsonCheck check = check_json("{\"a\": }");
  EXPECT_FALSE(check.ok);
  EXPECT_FALSE(check.records.has_value());
  EXPECT_EQ(check.error,
            "invalid JSON at byte 7: syntax error while parsing value - unexpected '}'; "
            "expected '[', '{', or a literal");

  EXPECT_EQ(check_json("[1, 2").error,
            "invalid JSON at byte 6: syntax error while parsing array - unexpected end of "
            "input; expected ']'");
  EXPECT_EQ(check_json("<html>").error.rfind("invalid JSON at byte 1: syntax error", 0), 0u)
      << check_json("<html>").error;
}

TEST(JsonCheck, RejectsWhatRfc8259Rejects) {
  for (const char* body :
       {"{} x",     "{}{}",       "[1,]",     "{\"a\":1,}", "{a: 1}",    "'a'", "01",
        "-",        "1.",         ".5",       "NaN",        "Infinity",  "nul", "tru",
        "// c\n{}", "/* c */ {}", "\"a\tb\"", "\"\\x\"",    "{\"a\" 1}", "   "}) {
    JsonCheck check = check_json(body);
    EXPECT_FALSE(check.ok) << body;
    EXPECT_EQ(check.error.rfind("invalid JSON at byte ", 0), 0u) << body << ": " << check.error;
  }
}

TEST(JsonCheck, EmptyBodyIsNotJson) {
  JsonCheck check = check_json("");
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.error, "empty body is not JSON");
}

TEST(JsonCheck, NumbersOutOfRangeAreErrors) {
  JsonCheck check = check_json("[1e400]");
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.error, "invalid JSON at byte 6: number overflow parsing '1e400'");
  EXPECT_TRUE(check_json("[1e300, 18446744073709551615, -9223372036854775808]").ok);
}

TEST(JsonCheck, NestingUpToTheLimitIsFine) {
  std::string arrays(kMaxJsonDepth, '[');
  arrays += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(check_json(arrays).ok);

  std::string objects;
  for (std::size_t i = 0; i < kMaxJsonDepth; ++i) objects += "{\"a\":";
  objects += "1";
  objects += std::string(kMaxJsonDepth, '}');
  EXPECT_TRUE(check_json(objects).ok) << check_json(objects).error;
}

TEST(JsonCheck, NestingBeyondTheLimitIsAnError) {
  std::string arrays(kMaxJsonDepth + 1, '[');
  arrays += std::string(kMaxJsonDepth + 1, ']');
  JsonCheck check = check_json(arrays);
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.error, "JSON nested deeper than 512 levels");

  std::string mixed = "[";
  for (std::size_t i = 0; i < kMaxJsonDepth; ++i) mixed += "{\"a\":";
  EXPECT_EQ(check_json(mixed).error, "JSON nested deeper than 512 levels");

  // Far deeper than any stack could recurse: still a value, not a crash.
  std::string huge(1'000'000, '[');
  EXPECT_EQ(check_json(huge).error, "JSON nested deeper than 512 levels");
}

TEST(JsonCheck, ErrorsAreValidUtf8WhateverTheBodyHeld) {
  JsonCheck check = check_json("[\"caf\xc3\xa9 \xff\xfe\"]");
  EXPECT_FALSE(check.ok);
  EXPECT_TRUE(valid_utf8(check.error)) << check.error;
  EXPECT_NE(check.error.find("\\xff"), std::string::npos) << check.error;
  EXPECT_NE(check.error.find("ill-formed UTF-8"), std::string::npos) << check.error;

  EXPECT_FALSE(check_json("\"\xed\xa0\x80\"").ok);  // an encoded surrogate is not UTF-8
  EXPECT_FALSE(check_json("\"\xc0\xaf\"").ok);      // nor an overlong form
}

TEST(JsonCheck, ErrorsStayShortForHugeTokens) {
  std::string body = "[\"" + std::string(1'000'000, 'x') + "\x01\"]";
  JsonCheck check = check_json(body);
  EXPECT_FALSE(check.ok);
  EXPECT_LT(check.error.size(), 400u) << check.error.substr(0, 400);
  EXPECT_EQ(check.error.rfind("invalid JSON at byte 1000003: ", 0), 0u) << check.error;
  EXPECT_NE(check.error.find("xxxx<U+0001>'"), std::string::npos) << check.error;
}

TEST(JsonCheck, SampleFeeds) {
  struct Feed {
    const char* file;
    std::int64_t records;
  };
  for (Feed feed : {Feed{"amazingexpo2020.json", 180}, Feed{"salesmeeting2020.json", 60},
                    Feed{"small.json", 4}}) {
    const std::string body = fixture(feed.file);
    ASSERT_FALSE(body.empty()) << feed.file;
    JsonCheck check = check_json(body);
    EXPECT_TRUE(check.ok) << feed.file << ": " << check.error;
    EXPECT_EQ(check.records, feed.records) << feed.file;

    // Cut anywhere, the same feed is not JSON any more.
    JsonCheck cut = check_json(std::string_view(body).substr(0, body.size() / 2));
    EXPECT_FALSE(cut.ok) << feed.file;
    EXPECT_FALSE(cut.records.has_value());
  }
}

// check_json takes a fast path for valid documents and asks nlohmann's parser about the rest;
// both must reach the same verdict (and record count) on everything.
void expect_same_verdict(std::string_view body) {
  const JsonCheck fast = check_json(body);
  const JsonCheck reference = check_json_reference(body);
  EXPECT_EQ(fast.ok, reference.ok) << "body: " << body.substr(0, 200) << "\n" << reference.error;
  EXPECT_EQ(fast.records, reference.records) << body.substr(0, 200);
  EXPECT_EQ(fast.error, reference.error) << body.substr(0, 200);
}

TEST(JsonCheck, FastPathAgreesWithTheParserOnEdgeCases) {
  for (const char* body : {"0",
                           "-0",
                           "-0.0e-0",
                           "1E5",
                           "1e+5",
                           "1e-400",
                           "1e400",
                           "-1e309",
                           "123.456e78",
                           "18446744073709551616",
                           "1.7976931348623157e308",
                           "1.8e308",
                           "true",
                           "false",
                           "null",
                           "\"\"",
                           "\"\\u0000\"",
                           "\"\\ud83d\\ude00\"",
                           "\"\\ud83d\"",
                           "\"\\ude00\"",
                           "\"\\ud83d\\u0041\"",
                           "\"\\uZZZZ\"",
                           "\"\\u12\"",
                           "\"\x7f\"",
                           "\"\xc3\xa9\"",
                           "\"\xe2\x82\xac\"",
                           "\"\xf0\x9f\x98\x80\"",
                           "\"\xf4\x90\x80\x80\"",
                           "\"\xc0\xaf\"",
                           "\"\xed\xa0\x80\"",
                           "\"\xe0\x80\xaf\"",
                           "\"a\x01\"",
                           "[]",
                           "{}",
                           "[{}]",
                           "[{},1]",
                           "[[]]",
                           " [ { } , { \"a\" : [ ] } ] ",
                           "[{\"a\":1},{\"b\":2}]",
                           "{\"a\":[1,{\"b\":null}]}",
                           "\xef\xbb\xbf[]",
                           "[1 2]",
                           "{\"a\" 1}",
                           "{\"a\":}",
                           "{,}",
                           "[,]",
                           "[1,]",
                           "{\"a\":1,}",
                           "\t\r\n[1]\n",
                           "[1]\v",
                           "01",
                           "-",
                           "+1",
                           ".1",
                           "1.",
                           "1.e5",
                           "1e",
                           "1e+",
                           "--1",
                           "[\"a\"]x",
                           "nul",
                           "truex",
                           "[true,false,null]",
                           "{\"\":\"\"}",
                           "\"\\/\\b\\f\\n\\r\\t\"",
                           "\"\\a\"",
                           "[\"\\\\\"]"}) {
    expect_same_verdict(body);
  }
  std::string long_integer(320, '9');
  expect_same_verdict(long_integer);
  expect_same_verdict(std::string(300, '9'));
  expect_same_verdict("[" + std::string(80, '1') + ".5]");
  std::string deep(kMaxJsonDepth, '[');
  expect_same_verdict(deep + std::string(kMaxJsonDepth, ']'));
  expect_same_verdict("[" + deep + std::string(kMaxJsonDepth, ']') + "]");
}

TEST(JsonCheck, FastPathAgreesWithTheParserOnMutatedFeeds) {
  const std::string feed = fixture("small.json");
  ASSERT_FALSE(feed.empty());
  expect_same_verdict(feed);
  std::uint64_t state = 42;  // a fixed LCG: the same mutations on every run
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  const char replacements[] = {'"', '\\', '{', '}', '[', ']',    ',',    ':',   '0',
                               '-', 'e',  '.', ' ', 'u', '\x01', '\xff', '\xc3'};
  for (int i = 0; i < 3000; ++i) {
    std::string body = feed;
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = next() % body.size();
      switch (next() % 3) {
        case 0:
          body[at] = replacements[next() % sizeof replacements];
          break;
        case 1:
          body.erase(at, 1);
          break;
        default:
          body.insert(at, 1, replacements[next() % sizeof replacements]);
          break;
      }
    }
    expect_same_verdict(body);
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace fetchd
