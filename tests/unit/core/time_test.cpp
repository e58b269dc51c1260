// RFC 3339 parsing and formatting (src/core/time.cpp): what is accepted, what is rejected on
// each side of every bound, offsets, truncation of fractions, and round trips.
#include "core/time.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace fetchd {
namespace {

using namespace std::chrono;

TimePoint utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
  return TimePoint(sys_days(year(y) / month(mo) / day(d)).time_since_epoch()) + hours(h) +
         minutes(mi) + seconds(s) + Millis(ms);
}

void expect_rejected(const std::string& text) {
  EXPECT_EQ(parse_rfc3339(text), std::nullopt) << "accepted: \"" << text << "\"";
}

TEST(ParseRfc3339, SeedExample) {
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.930Z"), utc(2023, 1, 4, 21, 41, 38, 930));
  EXPECT_EQ(parse_rfc3339("2033-01-04T21:41:38.930Z"), utc(2033, 1, 4, 21, 41, 38, 930));
}

TEST(ParseRfc3339, UnixEpochIsZero) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), from_unix_ms(0));
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.001Z"), from_unix_ms(1));
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59.999Z"), from_unix_ms(-1));
}

TEST(ParseRfc3339, LowercaseAndSpaceSeparatorAccepted) {
  const auto expected = utc(2023, 1, 4, 21, 41, 38);
  EXPECT_EQ(parse_rfc3339("2023-01-04t21:41:38z"), expected);
  EXPECT_EQ(parse_rfc3339("2023-01-04 21:41:38Z"), expected);
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38z"), expected);
}

TEST(ParseRfc3339, OffsetsConvertToUtc) {
  const auto expected = utc(2023, 1, 4, 21, 41, 38, 930);
  EXPECT_EQ(parse_rfc3339("2023-01-04T22:41:38.930+01:00"), expected);
  EXPECT_EQ(parse_rfc3339("2023-01-04T16:11:38.930-05:30"), expected);
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.930+00:00"), expected);
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.930-00:00"), expected);
  // Crossing a day, month and year boundary.
  EXPECT_EQ(parse_rfc3339("2023-01-01T00:30:00+01:00"), utc(2022, 12, 31, 23, 30));
  EXPECT_EQ(parse_rfc3339("2022-12-31T23:30:00-01:00"), utc(2023, 1, 1, 0, 30));
}

TEST(ParseRfc3339, OffsetsMayNotLeaveTheWritableYears) {
  // Found by the rfc3339 fuzz target: these name instants in year 10000 or -1 (UTC), which
  // have no RFC 3339 spelling, so they could not be written back.
  EXPECT_FALSE(parse_rfc3339("9999-12-31T23:59:59.39-05:30").has_value());
  EXPECT_FALSE(parse_rfc3339("0000-01-01T00:00:00+00:01").has_value());
  auto last = parse_rfc3339("9999-12-31T23:59:59.999Z");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(format_rfc3339(*last), "9999-12-31T23:59:59.999Z");
  auto first = parse_rfc3339("0000-01-01T00:00:00-00:01");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(parse_rfc3339(format_rfc3339(*first)), first);
}

TEST(ParseRfc3339, OffsetBounds) {
  EXPECT_EQ(parse_rfc3339("2023-01-04T23:59:00+23:59"), utc(2023, 1, 4));
  EXPECT_EQ(parse_rfc3339("2023-01-04T00:00:00-23:59"), utc(2023, 1, 4, 23, 59));
  expect_rejected("2023-01-04T00:00:00+24:00");
  expect_rejected("2023-01-04T00:00:00-24:00");
  expect_rejected("2023-01-04T00:00:00+00:60");
  expect_rejected("2023-01-04T00:00:00+01");
  expect_rejected("2023-01-04T00:00:00+0100");
  expect_rejected("2023-01-04T00:00:00+1:00");
  expect_rejected("2023-01-04T00:00:00+01:0");
  expect_rejected("2023-01-04T00:00:00 +01:00");
}

TEST(ParseRfc3339, OffsetRequired) {
  expect_rejected("2023-01-04T21:41:38.930");
  expect_rejected("2023-01-04T21:41:38");
}

TEST(ParseRfc3339, FractionTruncatedToMilliseconds) {
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.9Z"), utc(2023, 1, 4, 21, 41, 38, 900));
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.93Z"), utc(2023, 1, 4, 21, 41, 38, 930));
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.930Z"), utc(2023, 1, 4, 21, 41, 38, 930));
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.9309Z"), utc(2023, 1, 4, 21, 41, 38, 930));
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.999999999Z"), utc(2023, 1, 4, 21, 41, 38, 999));
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38.000000001Z"), utc(2023, 1, 4, 21, 41, 38));
  // Far more digits than any integer type holds.
  EXPECT_EQ(parse_rfc3339("2023-01-04T21:41:38." + std::string(100, '7') + "Z"),
            utc(2023, 1, 4, 21, 41, 38, 777));
  // Truncation floors the instant, also before 1970.
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59.9999Z"), from_unix_ms(-1));
  EXPECT_EQ(parse_rfc3339("2023-01-04T22:41:38.1239+01:00"), utc(2023, 1, 4, 21, 41, 38, 123));
}

TEST(ParseRfc3339, MalformedFraction) {
  expect_rejected("2023-01-04T21:41:38.Z");
  expect_rejected("2023-01-04T21:41:38,930Z");
  expect_rejected("2023-01-04T21:41:38.93aZ");
  expect_rejected("2023-01-04T21:41:38..930Z");
}

TEST(ParseRfc3339, DatesThatDoNotExist) {
  EXPECT_NE(parse_rfc3339("2024-02-29T00:00:00Z"), std::nullopt);  // leap year
  EXPECT_NE(parse_rfc3339("2000-02-29T00:00:00Z"), std::nullopt);  // divisible by 400
  expect_rejected("2023-02-29T00:00:00Z");
  expect_rejected("2100-02-29T00:00:00Z");  // divisible by 100, not 400
  expect_rejected("2024-02-30T00:00:00Z");
  EXPECT_NE(parse_rfc3339("2023-04-30T00:00:00Z"), std::nullopt);
  expect_rejected("2023-04-31T00:00:00Z");
  EXPECT_NE(parse_rfc3339("2023-12-31T00:00:00Z"), std::nullopt);
  expect_rejected("2023-12-32T00:00:00Z");
  expect_rejected("2023-01-00T00:00:00Z");
  expect_rejected("2023-00-10T00:00:00Z");
  expect_rejected("2023-13-10T00:00:00Z");
}

TEST(ParseRfc3339, TimeOfDayBounds) {
  EXPECT_EQ(parse_rfc3339("2023-01-04T23:59:59.999Z"), utc(2023, 1, 4, 23, 59, 59, 999));
  expect_rejected("2023-01-04T24:00:00Z");
  expect_rejected("2023-01-04T23:60:00Z");
  expect_rejected("2023-01-04T23:59:60Z");  // leap second
  expect_rejected("2016-12-31T23:59:60Z");  // a real one, still rejected
}

TEST(ParseRfc3339, YearBounds) {
  EXPECT_EQ(parse_rfc3339("0000-01-01T00:00:00Z"), utc(0, 1, 1));
  EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59.999Z"), utc(9999, 12, 31, 23, 59, 59, 999));
  // Year -1 in UTC has no RFC 3339 spelling to write it back with: refused.
  expect_rejected("0000-01-01T00:30:00+01:00");
  expect_rejected("10000-01-01T00:00:00Z");
  expect_rejected("-0001-01-01T00:00:00Z");
  expect_rejected("+2023-01-01T00:00:00Z");
  expect_rejected("023-01-01T00:00:00Z");
}

TEST(ParseRfc3339, MissingParts) {
  expect_rejected("");
  expect_rejected("2023");
  expect_rejected("2023-01-04");
  expect_rejected("2023-01-04T");
  expect_rejected("2023-01-04TZ");
  expect_rejected("2023-01-04T21Z");
  expect_rejected("2023-01-04T21:41Z");
  expect_rejected("2023-01-04T21:41:Z");
  expect_rejected("2023-01-04T21:41:38+");
  expect_rejected("2023-01-04T21:41:38+01:");
  expect_rejected("21:41:38Z");
}

TEST(ParseRfc3339, WrongShape) {
  expect_rejected("2023-1-04T21:41:38Z");
  expect_rejected("2023-01-4T21:41:38Z");
  expect_rejected("2023-01-04T1:41:38Z");
  expect_rejected("2023/01/04T21:41:38Z");
  expect_rejected("2023-01-04_21:41:38Z");
  expect_rejected("2023-01-04T21:41:38 Z");
  expect_rejected("2023-01-04T21-41-38Z");
  expect_rejected("20230104T214138Z");
  expect_rejected("2023-01-04T21:41:38UTC");
  expect_rejected("2023-01-04T21:41:+8Z");
  expect_rejected("\xef\xbc\x92\x30\x32\x33-01-04T21:41:38Z");  // a full-width digit
}

TEST(ParseRfc3339, TrailingOrLeadingGarbage) {
  expect_rejected(" 2023-01-04T21:41:38Z");
  expect_rejected("2023-01-04T21:41:38Z ");
  expect_rejected("2023-01-04T21:41:38Zx");
  expect_rejected("2023-01-04T21:41:38ZZ");
  expect_rejected("2023-01-04T21:41:38+01:00:00");
  expect_rejected("2023-01-04T21:41:38+01:00Z");
  expect_rejected(std::string("2023-01-04T21:41:38Z\0", 21));
}

TEST(FormatRfc3339, UtcWithThreeFractionalDigits) {
  EXPECT_EQ(format_rfc3339(utc(2023, 1, 4, 21, 41, 38, 930)), "2023-01-04T21:41:38.930Z");
  EXPECT_EQ(format_rfc3339(utc(2023, 1, 4, 21, 41, 38)), "2023-01-04T21:41:38.000Z");
  EXPECT_EQ(format_rfc3339(utc(2023, 1, 4, 21, 41, 38, 5)), "2023-01-04T21:41:38.005Z");
  EXPECT_EQ(format_rfc3339(from_unix_ms(0)), "1970-01-01T00:00:00.000Z");
}

TEST(FormatRfc3339, BeforeUnixEpoch) {
  EXPECT_EQ(format_rfc3339(from_unix_ms(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(from_unix_ms(-86'400'000)), "1969-12-31T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(from_unix_ms(-86'400'001)), "1969-12-30T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(utc(1900, 2, 28, 12, 0, 0, 1)), "1900-02-28T12:00:00.001Z");
}

TEST(FormatRfc3339, YearsArePaddedToFourDigits) {
  EXPECT_EQ(format_rfc3339(utc(0, 1, 1)), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(utc(7, 3, 9, 1, 2, 3, 4)), "0007-03-09T01:02:03.004Z");
  EXPECT_EQ(format_rfc3339(utc(9999, 12, 31, 23, 59, 59, 999)), "9999-12-31T23:59:59.999Z");
}

TEST(FormatRfc3339, InstantsOutsideYears0To9999AreClamped) {
  EXPECT_EQ(format_rfc3339(utc(0, 1, 1) - Millis(1)), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(utc(10000, 1, 1)), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(TimePoint::min()), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(TimePoint::max()), "9999-12-31T23:59:59.999Z");
}

TEST(Rfc3339RoundTrip, ParseOfFormatIsIdentity) {
  // Instants spread over the whole writable range, with irregular milliseconds.
  const std::int64_t first = to_unix_ms(utc(0, 1, 1));
  const std::int64_t last = to_unix_ms(utc(9999, 12, 31, 23, 59, 59, 999));
  const std::int64_t step = (last - first) / 9973;
  for (std::int64_t ms = first; ms <= last; ms += step + 7) {
    const auto t = from_unix_ms(ms);
    const auto text = format_rfc3339(t);
    ASSERT_EQ(parse_rfc3339(text), t) << text;
  }
  for (std::int64_t ms : {first, last, std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(from_unix_ms(ms))), from_unix_ms(ms));
  }
}

TEST(Rfc3339RoundTrip, FormatOfParseIsCanonicalUtc) {
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2023-01-04T22:41:38.93+01:00")),
            "2023-01-04T21:41:38.930Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2023-01-04t21:41:38z")), "2023-01-04T21:41:38.000Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2024-02-29 23:00:00.123456-02:00")),
            "2024-03-01T01:00:00.123Z");
}

TEST(SystemClock, NowIsWholeMillisecondsNearTheSystemClock) {
  const SystemClock clock;
  const auto before = floor<Millis>(system_clock::now());
  const auto now = clock.now();
  const auto after = system_clock::now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

}  // namespace
}  // namespace fetchd
