// A property a fuzz target checks: when it does not hold, the input is printed and the process
// aborts, which libFuzzer records as a crash (and the replay test as a failure).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fetchd::fuzz {

[[noreturn]] inline void property_failed(std::string_view what, std::string_view input) {
  std::fprintf(stderr, "fuzz property violated: %.*s\ninput (%zu bytes): \"", int(what.size()),
               what.data(), input.size());
  for (unsigned char c : input.substr(0, 2048)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      std::fputc(c, stderr);
    else
      std::fprintf(stderr, "\\x%02x", c);
  }
  std::fprintf(stderr, "\"%s\n", input.size() > 2048 ? "..." : "");
  std::abort();
}

}  // namespace fetchd::fuzz

#define FUZZ_CHECK(condition, what, input)                          \
  do {                                                              \
    if (!(condition)) ::fetchd::fuzz::property_failed(what, input); \
  } while (false)
