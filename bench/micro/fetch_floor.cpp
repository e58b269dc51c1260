// fetch_floor: how fast fetchd's own fetch layer alone fetches one URL, without the
// scheduler, the queue or the store. It keeps `in_flight` requests going through the same
// CurlFetcher (one libcurl multi handle on one thread) that `fetchd serve` uses, each one
// started again as soon as it completes, and counts completions. With --classify it also does
// to every response what fetchd's fetch thread does to a small body (classify_fetch: the JSON
// check, the record count, SHA-256).
//
// It bounds from above what the whole engine can reach on this machine: bench/run's
// engine_throughput puts its rate beside wrk's on the same URL (docs/benchmarks.md).
//
//   fetch_floor URL [--in-flight N] [--seconds S] [--warmup S] [--classify]
//
// Prints one JSON line: {"completed":…,"failed":…,"seconds":…,"rate":…,"cpu_seconds":…}.
// completed and rate count the measured window only (after the warm-up). Exit status 1 when
// any request failed (or a response did not classify as succeeded) or on bad arguments.
#include <sys/resource.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "fetch/curl_fetcher.hpp"
#include "worker/fetch_outcome.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  std::size_t in_flight = 64;
  double seconds = 10;
  double warmup = 1;
  bool classify = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "fetch_floor: %s\nusage: fetch_floor URL [--in-flight N] [--seconds S] "
               "[--warmup S] [--classify]\n",
               why);
  std::exit(1);
}

double number(std::string_view text, const char* flag) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || !(value >= 0)) {
    usage((std::string(flag) + " takes a non-negative number").c_str());
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](const char* flag) {
      if (i + 1 >= argc) usage((std::string(flag) + " needs a value").c_str());
      return number(argv[++i], flag);
    };
    if (arg == "--in-flight") {
      options.in_flight = static_cast<std::size_t>(value("--in-flight"));
    } else if (arg == "--seconds") {
      options.seconds = value("--seconds");
    } else if (arg == "--warmup") {
      options.warmup = value("--warmup");
    } else if (arg == "--classify") {
      options.classify = true;
    } else if (!arg.empty() && arg[0] != '-' && options.url.empty()) {
      options.url = arg;
    } else {
      usage(("unexpected argument " + std::string(arg)).c_str());
    }
  }
  if (options.url.empty()) usage("the URL is missing");
  if (options.in_flight < 1) usage("--in-flight must be at least 1");
  if (options.seconds <= 0) usage("--seconds must be above 0");
  return options;
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Keeps its requests going until told to stop; each completion starts the next one on the
// fetch engine's thread, as fetchd's claim loop keeps the engine full.
class Loop {
 public:
  Loop(fetchd::Fetcher& fetcher, const Options& options) : fetcher_(fetcher), options_(options) {}

  void start() {
    for (std::size_t i = 0; i < options_.in_flight; ++i) next();
  }
  void stop() { stopping_ = true; }
  std::uint64_t completed() const { return completed_.load(); }
  std::uint64_t failed() const { return failed_.load(); }

 private:
  void next() {
    if (stopping_) return;
    fetchd::FetchRequest request;
    request.url = options_.url;
    fetcher_.fetch(std::move(request), [this](fetchd::FetchResult result) { done(result); });
  }

  void done(fetchd::FetchResult& result) {
    if (stopping_) return;  // the tail after the window, cut short by stop(): not counted
    bool ok = result.has_value() && result->status < 400;
    if (ok && options_.classify) {
      const auto outcome = fetchd::classify_fetch(std::move(result), request_timeout_,
                                                  fetchd::FetchRequest{}.max_response_bytes);
      ok = outcome.status == fetchd::JobStatus::kSucceeded;
    }
    (ok ? completed_ : failed_).fetch_add(1, std::memory_order_relaxed);
    next();
  }

  fetchd::Fetcher& fetcher_;
  const Options& options_;
  const std::chrono::milliseconds request_timeout_ = fetchd::FetchRequest{}.timeout;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> failed_{0};
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  fetchd::CurlFetcherOptions fetch_options;
  fetch_options.concurrency = options.in_flight;
  fetch_options.allow_private = true;  // the target is on loopback
  std::unique_ptr<fetchd::Fetcher> fetcher;
  try {
    fetcher = fetchd::make_curl_fetcher(fetch_options, nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fetch_floor: %s\n", e.what());
    return 1;
  }
  Loop loop(*fetcher, options);
  loop.start();
  auto sleep = [](double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  };
  sleep(options.warmup);
  const auto completed_before = loop.completed();
  const double cpu_before = cpu_seconds();
  const auto started = Clock::now();
  sleep(options.seconds);
  const auto completed = loop.completed() - completed_before;
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  const double cpu = cpu_seconds() - cpu_before;
  loop.stop();
  fetcher->stop(std::chrono::milliseconds(2000));
  const auto failed = loop.failed();
  std::printf(
      "{\"completed\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"rate\":%.1f,\"cpu_seconds\":%.3f}\n",
      static_cast<unsigned long long>(completed), static_cast<unsigned long long>(failed), elapsed,
      static_cast<double>(completed) / elapsed, cpu);
  return failed == 0 ? 0 : 1;
}
