// Query strings, the opaque pagination cursor and ids in paths.
#include <gtest/gtest.h>

#include <limits>

#include "api/query.hpp"

namespace fetchd::api {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

TEST(ParseQuery, SplitsAndDecodes) {
  EXPECT_EQ(parse_query("a=1&b=x%20y&c&d=&e=a+b"),
            (Params{{"a", "1"}, {"b", "x y"}, {"c", ""}, {"d", ""}, {"e", "a b"}}));
  EXPECT_EQ(parse_query(""), Params{});
  EXPECT_EQ(parse_query("&&a=1&"), (Params{{"a", "1"}}));
  EXPECT_EQ(parse_query("k%3D=v%3d%26"), (Params{{"k=", "v=&"}}));
  EXPECT_EQ(parse_query("a=b=c"), (Params{{"a", "b=c"}}));
}

TEST(ParseQuery, KeepsMalformedEscapesLiterally) {
  EXPECT_EQ(parse_query("c=%%%"), (Params{{"c", "%%%"}}));
  EXPECT_EQ(parse_query("c=%4"), (Params{{"c", "%4"}}));
  EXPECT_EQ(parse_query("c=%zz1"), (Params{{"c", "%zz1"}}));
}

TEST(QueryValue, FirstValueOrNone) {
  const Params p{{"a", "1"}, {"a", "2"}};
  EXPECT_EQ(query_value(p, "a"), "1");
  EXPECT_EQ(query_value(p, "b"), std::nullopt);
}

TEST(Cursor, RoundTrips) {
  for (const std::int64_t id : {std::int64_t{1}, std::int64_t{42}, std::int64_t{1000000007},
                                std::numeric_limits<std::int64_t>::max()}) {
    const auto cursor = encode_cursor(id);
    EXPECT_EQ(cursor.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos)
        << cursor;
    EXPECT_EQ(decode_cursor(cursor), id) << cursor;
  }
}

TEST(Cursor, IsOpaque) {
  EXPECT_EQ(encode_cursor(1), "dDE6MQ");  // base64url("t1:1"), no padding
  EXPECT_NE(encode_cursor(12), "12");
}

TEST(Cursor, RejectsAnythingWeDidNotIssue) {
  for (const char* bad : {"", "garbage!!", "AAAA", "%%%", "eyJ4IjoxfQ", "dDE6MQ==", "dDE6MA",
                          "dDI6MQ" /* t2:1 */, "dDE6", "dDE6LTE" /* t1:-1 */, "MQ" /* 1 */,
                          "dDE6MQx", "dDE6MR" /* non-zero padding bits */}) {
    EXPECT_EQ(decode_cursor(bad), std::nullopt) << bad;
  }
}

TEST(ParsePositiveId, AcceptsOnlyCanonicalPositiveIntegers) {
  EXPECT_EQ(parse_positive_id("1"), 1);
  EXPECT_EQ(parse_positive_id("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
  for (const char* bad : {"", "0", "-1", "+1", "01", "1.5", "abc", "1a", " 1",
                          "9223372036854775808", "99999999999999999999999"}) {
    EXPECT_EQ(parse_positive_id(bad), std::nullopt) << bad;
  }
}

TEST(ReadPageLimit, DefaultBoundsAndFieldErrors) {
  std::vector<FieldError> fields;
  EXPECT_EQ(read_page_limit({}, fields), 100u);
  EXPECT_EQ(read_page_limit({{"limit", "1"}}, fields), 1u);
  EXPECT_EQ(read_page_limit({{"limit", "500"}}, fields), 500u);
  EXPECT_TRUE(fields.empty());
  for (const char* bad : {"0", "501", "", "-1", "+1", "1.0", "1e2", "x"}) {
    std::vector<FieldError> errors;
    EXPECT_EQ(read_page_limit({{"limit", bad}}, errors), 100u) << bad;
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_EQ(errors[0].field, "limit");
  }
}

TEST(ReadCursor, AbsentBlankValidAndGarbage) {
  std::vector<FieldError> fields;
  EXPECT_EQ(read_cursor({}, fields), std::nullopt);
  EXPECT_EQ(read_cursor({{"cursor", ""}}, fields), std::nullopt);
  EXPECT_EQ(read_cursor({{"cursor", encode_cursor(42)}}, fields), 42);
  EXPECT_TRUE(fields.empty());
  EXPECT_EQ(read_cursor({{"cursor", "not!base64"}}, fields), std::nullopt);
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].field, "cursor");
}

}  // namespace
}  // namespace fetchd::api
