// A Clock that tests move by hand (thread-safe: the components under test read it from their
// own threads), so that nothing depends on the wall clock.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/time.hpp"

namespace fetchd::test {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = from_unix_ms(1'700'000'000'000))  // 2023-11-14T22:13:20Z
      : ms_(to_unix_ms(start)) {}
  TimePoint now() const override { return from_unix_ms(ms_.load()); }
  void set(TimePoint t) { ms_.store(to_unix_ms(t)); }
  void advance(Millis d) { ms_.fetch_add(d.count()); }

 private:
  std::atomic<std::int64_t> ms_;
};

}  // namespace fetchd::test
