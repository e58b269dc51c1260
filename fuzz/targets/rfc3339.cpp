// Fuzz target: RFC 3339 parsing (core/time.hpp). Arbitrary text must never crash the parser,
// and whatever it accepts must survive a round trip: format(parse(x)) parses back to the same
// instant, and formatting is then stable. The first 8 bytes, read as Unix milliseconds, must
// also format to text that parses back (to the instant clamped into years 0000-9999).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/time.hpp"
#include "fuzz_check.hpp"

using fetchd::format_rfc3339;
using fetchd::parse_rfc3339;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (const auto parsed = parse_rfc3339(input)) {
    const std::string text = format_rfc3339(*parsed);
    const auto again = parse_rfc3339(text);
    FUZZ_CHECK(again.has_value(), "format(parse(x)) does not parse", input);
    FUZZ_CHECK(*again == *parsed, "format(parse(x)) parses to another instant than x", input);
    FUZZ_CHECK(format_rfc3339(*again) == text, "formatting is not stable", input);
  }

  if (size >= sizeof(std::int64_t)) {
    std::int64_t ms = 0;
    std::memcpy(&ms, data, sizeof ms);
    const auto text = format_rfc3339(fetchd::from_unix_ms(ms));
    const auto back = parse_rfc3339(text);
    FUZZ_CHECK(back.has_value(), "format(t) does not parse", input);
    // The writable range: 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
    constexpr std::int64_t kFirst = -62167219200000;
    constexpr std::int64_t kLast = 253402300799999;
    FUZZ_CHECK(fetchd::to_unix_ms(*back) == std::clamp(ms, kFirst, kLast),
               "parse(format(t)) is not t (clamped to years 0000-9999)", input);
  }
  return 0;
}
