// The schedule arithmetic (src/core/schedule.cpp): anchored due times over long spans, both
// edges of the window, backoff and its cap, jitter, suspension at exactly max_attempt, catch-up
// coalescing after downtime, pause, reset, and values at the ends of the int64 range.
#include "core/schedule.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

namespace fetchd {
namespace {

using namespace std::chrono;
using std::chrono::milliseconds;

TimePoint utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
  return TimePoint(sys_days(year(y) / month(mo) / day(d)).time_since_epoch()) + hours(h) +
         minutes(mi) + seconds(s) + Millis(ms);
}

const TimePoint kStart = utc(2023, 1, 4, 21, 41, 38, 930);

TaskSpec spec(TimePoint start, TimePoint end, std::int64_t interval_s,
              std::int64_t max_attempt = 3) {
  TaskSpec s;
  s.name = "t";
  s.url = "http://127.0.0.1/";
  s.start_time = start;
  s.end_time = end;
  s.task_interval = interval_s;
  s.max_attempt = max_attempt;
  return s;
}

Task task(TimePoint start, TimePoint end, std::int64_t interval_s, std::int64_t max_attempt = 3) {
  Task t;
  t.id = 1;
  t.spec = spec(start, end, interval_s, max_attempt);
  return t;
}

// --- first_due_at_or_after ---------------------------------------------------------------

TEST(FirstDue, BeforeAndAtStartIsStart) {
  const auto s = spec(kStart, kStart + hours(1), 10);
  EXPECT_EQ(first_due_at_or_after(s, kStart - days(400)), kStart);
  EXPECT_EQ(first_due_at_or_after(s, kStart - Millis(1)), kStart);
  EXPECT_EQ(first_due_at_or_after(s, kStart), kStart);
  EXPECT_EQ(first_due_at_or_after(s, kStart + Millis(1)), kStart + seconds(10));
}

TEST(FirstDue, ExactDueTimeIsItselfAndOneMsLaterIsTheNext) {
  const auto s = spec(kStart, kStart + hours(1), 10);
  EXPECT_EQ(first_due_at_or_after(s, kStart + seconds(30)), kStart + seconds(30));
  EXPECT_EQ(first_due_at_or_after(s, kStart + seconds(30) - Millis(1)), kStart + seconds(30));
  EXPECT_EQ(first_due_at_or_after(s, kStart + seconds(30) + Millis(1)), kStart + seconds(40));
}

TEST(FirstDue, DueTimeExactlyAtEndDoesNotHappen) {
  // Window [start, start + 10 s), interval 5 s: due at +0 and +5 only.
  const auto s = spec(kStart, kStart + seconds(10), 5);
  EXPECT_EQ(first_due_at_or_after(s, kStart + seconds(5)), kStart + seconds(5));
  EXPECT_EQ(first_due_at_or_after(s, kStart + seconds(5) + Millis(1)), std::nullopt);
  EXPECT_EQ(first_due_at_or_after(s, kStart + seconds(10)), std::nullopt);
  // One millisecond more of window and +10 s is a due time.
  const auto longer = spec(kStart, kStart + seconds(10) + Millis(1), 5);
  EXPECT_EQ(first_due_at_or_after(longer, kStart + seconds(5) + Millis(1)), kStart + seconds(10));
}

TEST(FirstDue, EmptyOrInvertedWindowHasNoDueTime) {
  EXPECT_EQ(first_due_at_or_after(spec(kStart, kStart, 5), kStart - seconds(1)), std::nullopt);
  EXPECT_EQ(first_due_at_or_after(spec(kStart, kStart - seconds(1), 5), kStart), std::nullopt);
  // A window of 1 ms holds exactly the start.
  EXPECT_EQ(first_due_at_or_after(spec(kStart, kStart + Millis(1), 5), kStart), kStart);
}

TEST(FirstDue, TenYearsOfOneSecondIntervalsDoNotDrift) {
  const auto start = utc(2020, 1, 1, 0, 0, 0, 123);
  const auto s = spec(start, utc(2040, 1, 1), 1);
  const auto ten_years = utc(2030, 1, 1) - utc(2020, 1, 1);
  // Walk 10 years in uneven strides; every due time keeps the start's .123 and sits exactly
  // on the one-second grid, and consecutive due times are exactly one second apart.
  for (TimePoint t = start; t < start + ten_years; t += milliseconds(86'399'977)) {
    const auto due = first_due_at_or_after(s, t);
    ASSERT_TRUE(due.has_value());
    EXPECT_GE(*due, t);
    EXPECT_LT(*due - t, seconds(1));
    EXPECT_EQ((*due - start).count() % 1000, 0);
    EXPECT_EQ(first_due_at_or_after(s, *due + Millis(1)), *due + seconds(1));
  }
  EXPECT_EQ(first_due_at_or_after(s, start + ten_years), start + ten_years);
  EXPECT_EQ(first_due_at_or_after(s, start + ten_years + Millis(1)),
            start + ten_years + seconds(1));
}

TEST(FirstDue, IteratingDueTimesGivesExactMultiples) {
  const auto s = spec(kStart, kStart + days(1), 7);
  TimePoint t = kStart;
  for (int k = 0; k < 5000; ++k) {
    const auto due = first_due_at_or_after(s, t);
    ASSERT_EQ(due, kStart + seconds(7LL * k));
    t = *due + Millis(1);
  }
}

// --- last_due_at_or_before ---------------------------------------------------------------

TEST(LastDue, WindowEdges) {
  const auto s = spec(kStart, kStart + seconds(10), 5);
  EXPECT_EQ(last_due_at_or_before(s, kStart - Millis(1)), std::nullopt);
  EXPECT_EQ(last_due_at_or_before(s, kStart), kStart);
  EXPECT_EQ(last_due_at_or_before(s, kStart + seconds(5) - Millis(1)), kStart);
  EXPECT_EQ(last_due_at_or_before(s, kStart + seconds(5)), kStart + seconds(5));
  // +10 s is the end, not a due time: the last one stays +5 s however late we ask.
  EXPECT_EQ(last_due_at_or_before(s, kStart + seconds(10)), kStart + seconds(5));
  EXPECT_EQ(last_due_at_or_before(s, kStart + days(1000)), kStart + seconds(5));
  EXPECT_EQ(last_due_at_or_before(spec(kStart, kStart, 5), kStart), std::nullopt);
}

// --- retry_delay ---------------------------------------------------------------------------

TEST(RetryDelay, DoublesFromOneSecond) {
  EXPECT_EQ(retry_delay(1, 3600), seconds(1));
  EXPECT_EQ(retry_delay(2, 3600), seconds(2));
  EXPECT_EQ(retry_delay(3, 3600), seconds(4));
  EXPECT_EQ(retry_delay(4, 3600), seconds(8));
  EXPECT_EQ(retry_delay(12, 3600), seconds(2048));
  EXPECT_EQ(retry_delay(13, 3600), seconds(3600));  // 4096 s > the interval
}

TEST(RetryDelay, CappedAtTheInterval) {
  EXPECT_EQ(retry_delay(1, 5), seconds(1));
  EXPECT_EQ(retry_delay(2, 5), seconds(2));
  EXPECT_EQ(retry_delay(3, 5), seconds(4));
  EXPECT_EQ(retry_delay(4, 5), seconds(5));
  EXPECT_EQ(retry_delay(5, 5), seconds(5));
  EXPECT_EQ(retry_delay(1, 1), seconds(1));
  EXPECT_EQ(retry_delay(9, 1), seconds(1));
  EXPECT_EQ(retry_delay(3, 4), seconds(4));  // exactly at the cap
}

TEST(RetryDelay, NonPositiveFailureCountIsTheFirstRetry) {
  EXPECT_EQ(retry_delay(0, 60), seconds(1));
  EXPECT_EQ(retry_delay(-5, 60), seconds(1));
}

TEST(RetryDelay, JitterScalesWithinBounds) {
  EXPECT_EQ(retry_delay(3, 60, 0.9), milliseconds(3600));
  EXPECT_EQ(retry_delay(3, 60, 1.1), milliseconds(4400));
  EXPECT_EQ(retry_delay(1, 60, 0.95), milliseconds(950));
  // Jitter applies after the cap.
  EXPECT_EQ(retry_delay(10, 5, 1.1), milliseconds(5500));
  EXPECT_EQ(retry_delay(10, 5, 0.9), milliseconds(4500));
  // Nonsense jitter is ignored rather than producing negative or NaN delays.
  EXPECT_EQ(retry_delay(2, 60, std::nan("")), seconds(2));
  EXPECT_EQ(retry_delay(2, 60, -1.0), seconds(2));
  EXPECT_EQ(retry_delay(2, 60, 0.0), seconds(2));
}

TEST(RetryDelay, HugeValuesSaturate) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(retry_delay(1000, 60), seconds(60));
  EXPECT_EQ(retry_delay(kMax, 60), seconds(60));
  EXPECT_EQ(retry_delay(63, kMax), milliseconds(kMax));
  EXPECT_EQ(retry_delay(kMax, kMax, 1.1), milliseconds(kMax));
  EXPECT_EQ(retry_delay(40, kMax), seconds(1LL << 39));
}

// --- next_run_after --------------------------------------------------------------------------

TEST(NextRunAfter, SuccessGoesToTheNextDueTime) {
  const auto t = task(kStart, kStart + hours(1), 10);
  const auto due = kStart + seconds(20);
  EXPECT_EQ(next_run_after(t, due, due + Millis(300), RunOutcome::kSucceeded, 0),
            kStart + seconds(30));
  // Finishing exactly on the next due time: that one was seen by the scheduler (skipped).
  EXPECT_EQ(next_run_after(t, due, kStart + seconds(30), RunOutcome::kSucceeded, 0),
            kStart + seconds(40));
  EXPECT_EQ(next_run_after(t, due, kStart + seconds(30) - Millis(1), RunOutcome::kSucceeded, 0),
            kStart + seconds(30));
}

TEST(NextRunAfter, LongRunSkipsDueTimesThatPassed) {
  const auto t = task(kStart, kStart + hours(1), 10);
  EXPECT_EQ(next_run_after(t, kStart, kStart + seconds(35), RunOutcome::kSucceeded, 0),
            kStart + seconds(40));
}

TEST(NextRunAfter, ManualRunBeforeTheWindowLeadsToItsStart) {
  const auto t = task(kStart, kStart + hours(1), 10);
  const auto now = kStart - hours(2);
  EXPECT_EQ(next_run_after(t, now, now + seconds(1), RunOutcome::kSucceeded, 0), kStart);
}

TEST(NextRunAfter, NothingAfterTheWindowOrWhenPaused) {
  auto t = task(kStart, kStart + seconds(30), 10);
  const auto last = kStart + seconds(20);
  EXPECT_EQ(next_run_after(t, last, last + Millis(5), RunOutcome::kSucceeded, 0), std::nullopt);
  // A retry still fits before the end; one that would not is dropped.
  EXPECT_EQ(next_run_after(t, last, last + Millis(5), RunOutcome::kFailed, 1), last + Millis(1005));
  EXPECT_EQ(next_run_after(t, last, last + Millis(9000), RunOutcome::kFailed, 1), std::nullopt);
  t.paused = true;
  EXPECT_EQ(next_run_after(t, kStart, kStart + Millis(5), RunOutcome::kSucceeded, 0), std::nullopt);
  EXPECT_EQ(next_run_after(t, kStart, kStart + Millis(5), RunOutcome::kFailed, 1), std::nullopt);
}

TEST(NextRunAfter, FailureRetriesWithBackoffFromNow) {
  const auto t = task(kStart, kStart + days(1), 3600, 10);
  const auto now = kStart + Millis(250);
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 1), now + seconds(1));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 2), now + seconds(2));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 3), now + seconds(4));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 4), now + seconds(8));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 2, 1.1), now + Millis(2200));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 2, 0.9), now + Millis(1800));
}

TEST(NextRunAfter, RegularDueTimeWinsWhenItComesFirst) {
  const auto t = task(kStart, kStart + days(1), 5, 10);
  // Third retry would be now + 4 s, but the next regular due time is 1 s away.
  const auto now = kStart + seconds(4);
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 3), kStart + seconds(5));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 1), kStart + seconds(5));
  const auto earlier = kStart + seconds(1);
  EXPECT_EQ(next_run_after(t, kStart, earlier, RunOutcome::kFailed, 1), earlier + seconds(1));
}

TEST(NextRunAfter, SuspendedAtExactlyMaxAttempt) {
  const auto t = task(kStart, kStart + days(1), 60, 3);
  const auto now = kStart + seconds(1);
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 2), now + seconds(2));
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 3), std::nullopt);
  EXPECT_EQ(next_run_after(t, kStart, now, RunOutcome::kFailed, 4), std::nullopt);
  const auto once = task(kStart, kStart + days(1), 60, 1);
  EXPECT_EQ(next_run_after(once, kStart, now, RunOutcome::kFailed, 1), std::nullopt);
}

TEST(NextRunAfter, RetryPastTheWindowFallsBackToNothing) {
  const auto t = task(kStart, kStart + seconds(10), 60, 5);
  // Retry at +10.5 s would be outside [start, start + 10 s).
  EXPECT_EQ(next_run_after(t, kStart, kStart + Millis(9500), RunOutcome::kFailed, 1), std::nullopt);
  EXPECT_EQ(next_run_after(t, kStart, kStart + Millis(8999), RunOutcome::kFailed, 1),
            kStart + Millis(9999));
}

// --- next_run_from ---------------------------------------------------------------------------

TEST(NextRunFrom, FreshTaskRunsAtTheFirstDueTime) {
  const auto t = task(kStart, kStart + hours(1), 10);
  EXPECT_EQ(next_run_from(t, kStart - hours(1)), kStart);
  EXPECT_EQ(next_run_from(t, kStart), kStart);
  EXPECT_EQ(next_run_from(t, kStart + Millis(1)), kStart + seconds(10));
  EXPECT_EQ(next_run_from(t, kStart + seconds(10)), kStart + seconds(10));
}

TEST(NextRunFrom, WindowOverOrPausedOrSuspendedIsNever) {
  auto t = task(kStart, kStart + seconds(30), 10, 3);
  EXPECT_EQ(next_run_from(t, kStart + seconds(30)), std::nullopt);
  EXPECT_EQ(next_run_from(t, kStart + seconds(30), kStart), std::nullopt);
  EXPECT_EQ(next_run_from(t, kStart + seconds(20) + Millis(1)), std::nullopt);  // no due left
  t.paused = true;
  EXPECT_EQ(next_run_from(t, kStart), std::nullopt);
  t.paused = false;
  t.consecutive_failures = 3;
  EXPECT_EQ(next_run_from(t, kStart), std::nullopt);
  EXPECT_EQ(next_run_from(t, kStart + seconds(5), kStart), std::nullopt);
  t.consecutive_failures = 2;
  EXPECT_EQ(next_run_from(t, kStart + Millis(1)), kStart + seconds(10));
}

TEST(NextRunFrom, MissedRunsCoalesceIntoOneCatchUpRunNow) {
  const auto t = task(kStart, kStart + days(1), 2);
  const auto now = kStart + hours(3) + Millis(777);  // thousands of due times were missed
  EXPECT_EQ(next_run_from(t, now, kStart + seconds(4)), now);
  EXPECT_EQ(next_run_from(t, now, now), now);  // due exactly now
  // Without a persisted next run (never scheduled) nothing is caught up.
  EXPECT_EQ(next_run_from(t, now, std::nullopt), kStart + hours(3) + seconds(2));
  // Missed runs of a task whose window is over are not caught up.
  EXPECT_EQ(next_run_from(t, kStart + days(1), kStart + seconds(4)), std::nullopt);
  // ...nor before the window opens (a reset before start_time): it runs at start.
  EXPECT_EQ(next_run_from(t, kStart - seconds(5), kStart - seconds(10)), kStart);
}

TEST(NextRunFrom, PendingRetryAheadKeepsItsTime) {
  const auto t = task(kStart, kStart + days(1), 3600, 5);
  const auto now = kStart + seconds(100);
  EXPECT_EQ(next_run_from(t, now, now + seconds(2)), now + seconds(2));
  // A persisted time beyond the next due time (a stale plan) yields to the schedule.
  EXPECT_EQ(next_run_from(t, now, kStart + hours(2)), kStart + hours(1));
  // A persisted time outside the window is ignored.
  const auto ending = task(kStart, kStart + seconds(150), 3600, 5);
  EXPECT_EQ(next_run_from(ending, now, kStart + seconds(200)), std::nullopt);
}

TEST(NextRunFrom, ResetRunsNow) {
  auto t = task(kStart, kStart + days(1), 3600, 3);
  t.consecutive_failures = 3;
  const auto now = kStart + minutes(30);
  EXPECT_EQ(next_run_from(t, now, now), std::nullopt);  // still suspended
  t.consecutive_failures = 0;  // reset-attempt; the API persists next_run_at = now
  EXPECT_EQ(next_run_from(t, now, now), now);
  EXPECT_EQ(next_run_from(t, now + Millis(3), now), now + Millis(3));  // read a little later
}

TEST(NextRunFrom, PauseThenResume) {
  auto t = task(kStart, kStart + days(1), 10);
  t.paused = true;
  EXPECT_EQ(next_run_from(t, kStart + seconds(15), kStart + seconds(10)), std::nullopt);
  t.paused = false;  // resume: the API computes without catch-up
  EXPECT_EQ(next_run_from(t, kStart + seconds(15)), kStart + seconds(20));
}

// --- extremes --------------------------------------------------------------------------------

TEST(ScheduleExtremes, EpochStartOneSecondIntervalYear9999) {
  const auto start = from_unix_ms(0);
  const auto end = utc(9999, 12, 31, 23, 59, 59, 999);
  const auto s = spec(start, end, 1);
  const auto late = utc(9999, 12, 31, 23, 59, 58, 1);
  EXPECT_EQ(first_due_at_or_after(s, late), utc(9999, 12, 31, 23, 59, 59));
  EXPECT_EQ(first_due_at_or_after(s, utc(9999, 12, 31, 23, 59, 59, 1)), std::nullopt);
  EXPECT_EQ(last_due_at_or_before(s, utc(9999, 12, 31, 23, 59, 59, 998)),
            utc(9999, 12, 31, 23, 59, 59));
  const auto t = task(start, end, 1);
  EXPECT_EQ(next_run_from(t, late, start), late);
  EXPECT_EQ(next_run_after(t, late, late, RunOutcome::kSucceeded, 0),
            utc(9999, 12, 31, 23, 59, 59));
}

TEST(ScheduleExtremes, Int64EndsDoNotOverflow) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  const auto lo = from_unix_ms(kMin);
  const auto hi = from_unix_ms(kMax);
  const auto s = spec(lo, hi, 1);
  EXPECT_EQ(first_due_at_or_after(s, hi), std::nullopt);
  EXPECT_EQ(first_due_at_or_after(s, lo), lo);
  EXPECT_EQ(first_due_at_or_after(s, from_unix_ms(0)), from_unix_ms(0 + 192));  // kMin % 1000
  const auto last = last_due_at_or_before(s, hi);
  ASSERT_TRUE(last.has_value());
  EXPECT_LE(hi - *last, seconds(1));
  const auto huge_interval = spec(lo, hi, kMax);
  EXPECT_EQ(first_due_at_or_after(huge_interval, lo + Millis(1)), std::nullopt);
  const auto t = task(lo, hi, kMax, 100);
  EXPECT_EQ(next_run_after(t, hi, hi, RunOutcome::kSucceeded, 0), std::nullopt);
  // A saturated backoff (max ms) from the start of time still lands inside the window.
  EXPECT_EQ(next_run_after(t, lo, lo, RunOutcome::kFailed, 80), from_unix_ms(-1));
  EXPECT_EQ(next_run_after(t, lo, lo, RunOutcome::kFailed, 1), lo + seconds(1));
  EXPECT_EQ(next_run_from(t, hi - Millis(1), lo), hi - Millis(1));
}

TEST(ScheduleExtremes, NonPositiveIntervalIsTreatedAsOneSecond) {
  const auto s = spec(kStart, kStart + minutes(1), 0);
  EXPECT_EQ(first_due_at_or_after(s, kStart + Millis(1)), kStart + seconds(1));
  EXPECT_EQ(retry_delay(5, 0), seconds(1));
}

}  // namespace
}  // namespace fetchd
