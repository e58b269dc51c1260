// RFC 3339 date-times <-> UTC millisecond instants. Parsed by hand (GCC 12 has the chrono
// calendar types but no chrono::parse); the calendar types decide which dates exist.
#include "core/time.hpp"

#include <cstdio>

namespace fetchd {

namespace {

using std::chrono::day;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::month;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::year;
using std::chrono::year_month_day;

// Reads characters left to right; every accessor fails (returns false) at the end of input
// rather than reading past it.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ == text_.size(); }
  std::optional<char> peek() const {
    if (at_end()) return std::nullopt;
    return text_[pos_];
  }

  // Exactly `count` ASCII digits (not std::isdigit: locale-dependent).
  bool digits(std::size_t count, int& out) {
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (at_end() || !is_digit(text_[pos_])) return false;
      value = value * 10 + (text_[pos_] - '0');
      ++pos_;
    }
    out = value;
    return true;
  }

  bool literal(char c) {
    if (at_end() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // One or more digits of a fraction of a second, as milliseconds; digits past the third are
  // truncated (the instant is floored to the millisecond, as the header promises).
  bool fraction_ms(int& out) {
    int value = 0;
    std::size_t count = 0;
    while (!at_end() && is_digit(text_[pos_])) {
      if (count < 3) value = value * 10 + (text_[pos_] - '0');
      ++count;
      ++pos_;
    }
    if (count == 0) return false;
    for (std::size_t i = count; i < 3; ++i) value *= 10;
    out = value;
    return true;
  }

  void advance() { ++pos_; }

 private:
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// The instants RFC 3339 can write (years 0000-9999, UTC).
constexpr TimePoint kFirstWritable =
    TimePoint(sys_days(year_month_day(year(0), month(1), day(1))).time_since_epoch());
constexpr TimePoint kLastWritable =
    TimePoint(sys_days(year_month_day(year(10000), month(1), day(1))).time_since_epoch()) -
    Millis(1);

}  // namespace

std::optional<TimePoint> parse_rfc3339(std::string_view text) {
  Cursor in(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (!in.digits(4, y) || !in.literal('-') || !in.digits(2, mo) || !in.literal('-') ||
      !in.digits(2, d))
    return std::nullopt;
  const auto separator = in.peek();
  if (separator != 'T' && separator != 't' && separator != ' ') return std::nullopt;
  in.advance();
  if (!in.digits(2, h) || !in.literal(':') || !in.digits(2, mi) || !in.literal(':') ||
      !in.digits(2, s))
    return std::nullopt;
  if (in.literal('.') && !in.fraction_ms(ms)) return std::nullopt;

  minutes offset{0};
  const auto zone = in.peek();
  if (zone == 'Z' || zone == 'z') {
    in.advance();
  } else if (zone == '+' || zone == '-') {
    in.advance();
    int oh = 0, om = 0;
    if (!in.digits(2, oh) || !in.literal(':') || !in.digits(2, om)) return std::nullopt;
    if (oh > 23 || om > 59) return std::nullopt;
    offset = hours(oh) + minutes(om);
    if (zone == '-') offset = -offset;
  } else {
    return std::nullopt;  // the offset is required: a local time names no instant
  }
  if (!in.at_end()) return std::nullopt;

  // Leap seconds (:60) are rejected: sys_time cannot represent them, and no clock we schedule
  // against produces them.
  if (h > 23 || mi > 59 || s > 59) return std::nullopt;
  const year_month_day date{year(y), month(static_cast<unsigned>(mo)),
                            day(static_cast<unsigned>(d))};
  if (!date.ok()) return std::nullopt;

  const auto local = sys_days(date) + hours(h) + minutes(mi) + seconds(s) + Millis(ms);
  const TimePoint instant(local - offset);
  // An offset can carry 9999-12-31T23:59-05:30 past the last writable instant (found by the
  // rfc3339 fuzz target): refuse it, so that every parsed time formats and parses back.
  if (instant < kFirstWritable || instant > kLastWritable) return std::nullopt;
  return instant;
}

std::string format_rfc3339(TimePoint t) {
  // Outside years 0000-9999 there is no RFC 3339 spelling (and the calendar conversion is not
  // meant for such days), so sentinels like TimePoint::max() are clamped to the nearest
  // writable instant. parse_rfc3339 never produces such values.
  if (t < kFirstWritable) t = kFirstWritable;
  if (t > kLastWritable) t = kLastWritable;

  const auto day_start = std::chrono::floor<days>(t);  // floor, not truncate: pre-1970 works
  const year_month_day date{day_start};
  const std::chrono::hh_mm_ss<Millis> clock_time{t - day_start};

  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(clock_time.hours().count()),
                static_cast<int>(clock_time.minutes().count()),
                static_cast<int>(clock_time.seconds().count()),
                static_cast<int>(clock_time.subseconds().count()));
  return buffer;
}

}  // namespace fetchd
