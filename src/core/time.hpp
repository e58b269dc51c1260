// Instants are UTC milliseconds (DESIGN.md §4: RFC 3339, fractional seconds kept to the ms),
// and a Clock interface so that schedules, retries and token expiry can be tested with a fake.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fetchd {

using Millis = std::chrono::milliseconds;
using TimePoint = std::chrono::sys_time<Millis>;

inline std::int64_t to_unix_ms(TimePoint t) {
  return t.time_since_epoch().count();
}
inline TimePoint from_unix_ms(std::int64_t ms) {
  return TimePoint(Millis(ms));
}

// Parses an RFC 3339 date-time: "2023-01-04T21:41:38.930Z", "2023-01-04T22:41:38+01:00".
// The offset (or Z) is required; 't'/'z' and a space separator are accepted as RFC 3339
// allows; digits beyond milliseconds are truncated. Returns nullopt on anything else,
// including impossible dates (Feb 30) and leap seconds.
std::optional<TimePoint> parse_rfc3339(std::string_view text);

// Formats as UTC with exactly three fractional digits: "2023-01-04T21:41:38.930Z".
std::string format_rfc3339(TimePoint t);

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override {
    return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  }
};

}  // namespace fetchd
