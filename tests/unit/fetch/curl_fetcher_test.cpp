// The curl fetcher against the real fixture server on 127.0.0.1 (tests/fixtures/): responses
// of every shape, decoding, redirects, limits (time, size, concurrency), the address guard,
// connection reuse, the callback contract and shutdown.
#include "fetch/curl_fetcher.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fixture_server.hpp"

namespace fetchd {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kWait = 30s;  // far above any test's expectation: a hang fails, not blocks

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(FETCHD_SOURCE_DIR) + "/../shared/fixtures/" + name,
                   std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

FetchRequest get(std::string url, std::chrono::milliseconds timeout = 10s,
                 std::uint64_t cap = 10 * 1024 * 1024) {
  FetchRequest request;
  request.url = std::move(url);
  request.timeout = timeout;
  request.max_response_bytes = cap;
  return request;
}

// Collects the results of many fetches; each callback must come exactly once.
class Results {
 public:
  Fetcher::Callback callback(std::size_t index) {
    {
      std::lock_guard lock(mutex_);
      if (results_.size() <= index) results_.resize(index + 1);
    }
    return [this, index](FetchResult result) {
      std::lock_guard lock(mutex_);
      if (results_[index]) ++duplicates_;
      results_[index] = std::move(result);
      threads_.insert(std::this_thread::get_id());
      ++done_;
      changed_.notify_all();
    };
  }
  bool wait_for(std::size_t count, std::chrono::milliseconds limit = kWait) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return done_ >= count; });
  }
  const FetchResult& at(std::size_t index) {
    std::lock_guard lock(mutex_);
    return *results_.at(index);
  }
  std::size_t done() {
    std::lock_guard lock(mutex_);
    return done_;
  }
  int duplicates() {
    std::lock_guard lock(mutex_);
    return duplicates_;
  }
  std::set<std::thread::id> threads() {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::optional<FetchResult>> results_;
  std::set<std::thread::id> threads_;
  std::size_t done_ = 0;
  int duplicates_ = 0;
};

class CurlFetcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::FixtureServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static std::unique_ptr<Fetcher> make(CurlFetcherOptions options = local()) {
    return make_curl_fetcher(std::move(options), nullptr);
  }
  static CurlFetcherOptions local() {
    CurlFetcherOptions options;
    options.allow_private = true;  // the fixture server is on 127.0.0.1
    return options;
  }
  static std::string url(std::string_view path) { return server_->url(path); }

  static FetchResult fetch(Fetcher& fetcher, FetchRequest request) {
    auto promise = std::make_shared<std::promise<FetchResult>>();
    auto future = promise->get_future();
    fetcher.fetch(std::move(request),
                  [promise](FetchResult r) { promise->set_value(std::move(r)); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      ADD_FAILURE() << "no callback within " << kWait.count() << " s";
      return tl::unexpected(FetchError{FetchErrorKind::kNetwork, "test: no callback", {}});
    }
    return future.get();
  }
  FetchResult fetch(FetchRequest request) { return fetch(*fetcher_, std::move(request)); }

  static json stats(Fetcher& fetcher) {
    auto result = fetch(fetcher, get(url("/stats")));
    EXPECT_TRUE(result.has_value());
    return result ? json::parse(result->body) : json();
  }

  static std::string header(const FetchResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers)
      if (key == name) return value;
    return "<absent>";
  }

  static testing::FixtureServer* server_;
  std::unique_ptr<Fetcher> fetcher_ = make();
};

testing::FixtureServer* CurlFetcherTest::server_ = nullptr;

// A port nobody listens on: bound once to get a free number, then closed.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

long long elapsed_ms(SteadyClock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - since).count();
}

TEST_F(CurlFetcherTest, JsonOk) {
  const auto result = fetch(get(url("/json/small.json")));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, read_fixture("small.json"));
  EXPECT_EQ(header(*result, "content-type"), "application/json");
  EXPECT_EQ(header(*result, "content-length"), std::to_string(result->body.size()));
  EXPECT_EQ(result->effective_url, url("/json/small.json"));
  EXPECT_GT(result->timings.total.count(), 0);
  EXPECT_GT(result->timings.first_byte.count(), 0);
  EXPECT_LE(result->timings.first_byte, result->timings.total);
  EXPECT_EQ(result->timings.tls.count(), 0);  // plain http
  EXPECT_EQ(fetcher_->in_flight(), 0u);
}

TEST_F(CurlFetcherTest, SendsMethodHeadersBodyAndUserAgent) {
  FetchRequest request = get(url("/echo?a=1"));
  request.method = "POST";
  request.headers = {{"X-Test", "yes"}, {"Content-Type", "application/json"}};
  request.body = R"({"k":"v"})";
  const auto result = fetch(std::move(request));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const auto echo = json::parse(result->body);
  EXPECT_EQ(echo["method"], "POST");
  EXPECT_EQ(echo["path"], "/echo");
  EXPECT_EQ(echo["query"]["a"], "1");
  EXPECT_EQ(echo["body"], R"({"k":"v"})");
  EXPECT_EQ(echo["headers"]["x-test"], "yes");
  EXPECT_EQ(echo["headers"]["content-type"], "application/json");
  EXPECT_EQ(echo["headers"]["user-agent"], "fetchd/" FETCHD_VERSION);
  EXPECT_FALSE(echo["headers"].contains("expect"));
  EXPECT_THAT(echo["headers"].value("accept-encoding", ""), HasSubstr("gzip"));
}

TEST_F(CurlFetcherTest, OtherMethods) {
  for (const char* method : {"PUT", "PATCH", "DELETE", "OPTIONS", "GET"}) {
    FetchRequest request = get(url("/echo"));
    request.method = method;
    request.body = std::string(method) == "DELETE" ? "" : "payload";
    const auto result = fetch(std::move(request));
    ASSERT_TRUE(result.has_value()) << method << ": " << result.error().message;
    const auto echo = json::parse(result->body);
    EXPECT_EQ(echo["method"], method);
    EXPECT_EQ(echo["body"], std::string(method) == "DELETE" ? "" : "payload");
  }
  FetchRequest head = get(url("/json/small.json"));
  head.method = "HEAD";
  const auto result = fetch(std::move(head));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(result->body.empty());
  EXPECT_EQ(header(*result, "content-length"), std::to_string(read_fixture("small.json").size()));
}

TEST_F(CurlFetcherTest, UserAgentFromOptionsAndHeaderOverride) {
  auto options = local();
  options.user_agent = "custom-agent/1";
  auto fetcher = make(options);
  auto result = fetch(*fetcher, get(url("/echo")));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(json::parse(result->body)["headers"]["user-agent"], "custom-agent/1");
  FetchRequest request = get(url("/echo"));
  request.headers = {{"User-Agent", "task-agent"}};
  result = fetch(*fetcher, std::move(request));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(json::parse(result->body)["headers"]["user-agent"], "task-agent");
}

TEST_F(CurlFetcherTest, HttpErrorStatusIsAResponseNotAnError) {
  for (int status : {404, 500, 503}) {
    const auto result = fetch(get(url("/status/" + std::to_string(status))));
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(result->status, status);
    EXPECT_EQ(json::parse(result->body)["status"], status);
  }
}

TEST_F(CurlFetcherTest, NonJsonBodiesAreReturnedAsIs) {
  auto result = fetch(get(url("/text")));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->body, "hello");
  EXPECT_EQ(header(*result, "content-type"), "text/plain");
  result = fetch(get(url("/badjson")));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->body, R"({"a": [1, 2,})");
}

TEST_F(CurlFetcherTest, GzipIsDecoded) {
  const auto result = fetch(get(url("/gzip/amazingexpo2020.json")));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(header(*result, "content-encoding"), "gzip");
  EXPECT_EQ(result->body, read_fixture("amazingexpo2020.json"));
}

TEST_F(CurlFetcherTest, BodyCapCountsDecodedBytes) {
  // ~11.5 kB on the wire, 68.5 kB decoded.
  const auto size = read_fixture("amazingexpo2020.json").size();
  auto result = fetch(get(url("/gzip/amazingexpo2020.json"), 10s, 30'000));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooLarge);
  EXPECT_EQ(result.error().message, "response larger than 30000 bytes");
  result = fetch(get(url("/gzip/amazingexpo2020.json"), 10s, size));
  EXPECT_TRUE(result.has_value());
}

TEST_F(CurlFetcherTest, BodyCapBothSidesOfTheBound) {
  auto result = fetch(get(url("/big?bytes=1000"), 10s, 1000));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->body.size(), 1000u);
  EXPECT_TRUE(json::accept(result->body));
  result = fetch(get(url("/big?bytes=1000"), 10s, 999));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooLarge);
  EXPECT_EQ(result.error().message, "response larger than 999 bytes");

  result = fetch(get(url("/big?bytes=3000000"), 10s, 1024 * 1024));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooLarge);
  EXPECT_EQ(result.error().message, "response larger than 1048576 bytes");
}

TEST_F(CurlFetcherTest, NeverEndingBodyHitsTheCapOrTheTimeout) {
  const auto started = SteadyClock::now();
  auto result = fetch(get(url("/never-ending?chunk=1024&interval_ms=5"), 10s, 8192));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooLarge);
  EXPECT_LT(elapsed_ms(started), 5000);

  result = fetch(get(url("/never-ending?chunk=16&interval_ms=20"), 400ms, 1 << 20));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTimeout);
  EXPECT_EQ(result.error().message, "timed out after 400 ms");
}

TEST_F(CurlFetcherTest, RedirectsFollowedUpToFive) {
  auto result = fetch(get(url("/redirect/5")));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->effective_url, url("/redirect/0"));
  EXPECT_EQ(json::parse(result->body)["redirected"], true);
  EXPECT_EQ(header(*result, "location"), "<absent>");  // the final response's headers only

  result = fetch(get(url("/redirect/6")));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooManyRedirects);
  EXPECT_THAT(result.error().message, StartsWith("more than 5 redirects"));

  result = fetch(get(url("/redirect-loop")));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooManyRedirects);
}

TEST_F(CurlFetcherTest, MaxRedirectsOption) {
  auto options = local();
  options.max_redirects = 1;
  auto fetcher = make(options);
  EXPECT_TRUE(fetch(*fetcher, get(url("/redirect/1"))).has_value());
  const auto result = fetch(*fetcher, get(url("/redirect/2")));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTooManyRedirects);
  EXPECT_THAT(result.error().message, StartsWith("more than 1 redirects"));
}

TEST_F(CurlFetcherTest, RedirectToAnotherSchemeIsRefused) {
  const auto result = fetch(get(url("/redirect-to?url=ftp://127.0.0.1/feed.json")));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kInvalidRequest);
  EXPECT_THAT(result.error().message, StartsWith("redirected to an unusable URL"));
}

TEST_F(CurlFetcherTest, TimeoutHonouredWithinTenPercent) {
  const auto started = SteadyClock::now();
  const auto result = fetch(get(url("/hang"), 800ms));
  const auto elapsed = elapsed_ms(started);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTimeout);
  EXPECT_EQ(result.error().message, "timed out after 800 ms");
  EXPECT_GE(elapsed, 790);  // curl's timer may round a millisecond down
  EXPECT_LE(elapsed, 880);
  EXPECT_GE(result.error().timings.total, 790ms);  // curl measures from a little later
}

TEST_F(CurlFetcherTest, SlowResponseWithinTheTimeoutSucceeds) {
  const auto result = fetch(get(url("/slow?ms=300"), 2s));
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_GE(result->timings.first_byte, 300ms);
  EXPECT_GE(result->timings.total, result->timings.first_byte);
}

TEST_F(CurlFetcherTest, ConnectionRefused) {
  const auto result =
      fetch(get("http://127.0.0.1:" + std::to_string(closed_port()) + "/json/small.json"));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kConnect);
  EXPECT_THAT(result.error().message, StartsWith("could not connect: "));
  EXPECT_THAT(result.error().message, HasSubstr("127.0.0.1"));  // curl's error buffer
}

TEST_F(CurlFetcherTest, InvalidRequestsAreAnsweredOnTheEngineThread) {
  Results results;
  FetchRequest zero = get(url("/json/small.json"));
  zero.timeout = 0ms;
  fetcher_->fetch(get("ftp://127.0.0.1/x"), results.callback(0));
  fetcher_->fetch(std::move(zero), results.callback(1));
  ASSERT_TRUE(results.wait_for(2));
  ASSERT_FALSE(results.at(0).has_value());
  EXPECT_EQ(results.at(0).error().kind, FetchErrorKind::kInvalidRequest);
  EXPECT_THAT(results.at(0).error().message, HasSubstr("only http and https"));
  ASSERT_FALSE(results.at(1).has_value());
  EXPECT_EQ(results.at(1).error().kind, FetchErrorKind::kInvalidRequest);
  EXPECT_EQ(results.threads().count(std::this_thread::get_id()), 0u);
}

TEST_F(CurlFetcherTest, ManyConcurrentRequestsUnderTheConcurrencyLimit) {
  auto options = local();
  options.concurrency = 64;
  auto fetcher = make(options);
  const int before = stats(*fetcher)["connections"];
  constexpr std::size_t kCount = 500;
  Results results;
  std::atomic<std::size_t> peak{0};
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      peak = std::max(peak.load(), fetcher->in_flight());
      std::this_thread::sleep_for(1ms);
    }
  });
  const auto started = SteadyClock::now();
  for (std::size_t i = 0; i < kCount; ++i)
    fetcher->fetch(get(url("/slow?ms=50"), 20s), results.callback(i));
  const bool all_done = results.wait_for(kCount);
  const auto elapsed = elapsed_ms(started);
  sampling = false;
  sampler.join();
  ASSERT_TRUE(all_done) << results.done() << " of " << kCount;
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(results.at(i).has_value()) << i << ": " << results.at(i).error().message;
    EXPECT_EQ(results.at(i)->status, 200);
  }
  EXPECT_EQ(results.duplicates(), 0);
  EXPECT_EQ(results.threads().size(), 1u);  // one engine thread
  EXPECT_EQ(fetcher->in_flight(), 0u);
  EXPECT_GE(peak.load(), 64u);  // in_flight counts queued requests too
  // 500 requests of >= 50 ms, 64 at a time: at least 8 rounds.
  EXPECT_GE(elapsed, 8 * 50);
  const int opened = stats(*fetcher)["connections"].get<int>() - before;
  EXPECT_LE(opened, 64 + 2);
  EXPECT_GE(opened, 32);  // and they did run side by side
}

TEST_F(CurlFetcherTest, QueuedRequestsTimeoutStartsWhenTheyStart) {
  // Two at a time, 300 ms each: the last two start at ~300 ms and end at ~600 ms, past their
  // 500 ms timeout counted from fetch() but well within it counted from their start.
  auto options = local();
  options.concurrency = 2;
  auto fetcher = make(options);
  Results results;
  const auto started = SteadyClock::now();
  for (std::size_t i = 0; i < 4; ++i)
    fetcher->fetch(get(url("/slow?ms=300"), 500ms), results.callback(i));
  ASSERT_TRUE(results.wait_for(4));
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(results.at(i).has_value()) << i << ": " << results.at(i).error().message;
  EXPECT_GE(elapsed_ms(started), 600);
}

TEST_F(CurlFetcherTest, ConnectionsAreReused) {
  const int before = stats(*fetcher_)["connections"];
  for (int i = 0; i < 30; ++i) {
    const auto result = fetch(get(url(i % 2 ? "/json/small.json" : "/counter/reuse")));
    ASSERT_TRUE(result.has_value()) << result.error().message;
  }
  const int opened = stats(*fetcher_)["connections"].get<int>() - before;
  EXPECT_LE(opened, 1);
  const auto counter = fetch(get(url("/counter/reuse/value")));
  ASSERT_TRUE(counter.has_value());
  EXPECT_EQ(json::parse(counter->body)["count"], 15);
}

TEST_F(CurlFetcherTest, GuardBlocksLoopback) {
  auto fetcher = make(CurlFetcherOptions{});
  auto result = fetch(*fetcher, get(url("/json/small.json")));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kBlocked);
  EXPECT_EQ(result.error().message,
            "address 127.0.0.1 is private; set fetch.allow_private to allow it");

  result = fetch(*fetcher, get("http://localhost:" + std::to_string(server_->port()) +
                               "/json/"
                               "small.json"));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kBlocked);
  EXPECT_THAT(result.error().message, HasSubstr("is private"));
}

TEST_F(CurlFetcherTest, GuardChecksEveryRedirect) {
  // 127.0.0.1 is exempted, so the first hop reaches the fixture server; its redirect to
  // another loopback address must be refused.
  CurlFetcherOptions options;
  options.allowed_ranges = {*IpRange::parse("127.0.0.1")};
  auto fetcher = make(options);
  auto result = fetch(*fetcher, get(url("/json/small.json")));
  ASSERT_TRUE(result.has_value()) << result.error().message;

  const std::string target =
      "http://127.0.0.2:" + std::to_string(server_->port()) + "/json/small.json";
  result = fetch(*fetcher, get(url("/redirect-to?url=" + target)));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kBlocked);
  EXPECT_EQ(result.error().message,
            "address 127.0.0.2 is private; set fetch.allow_private to allow it");
}

TEST_F(CurlFetcherTest, CallbacksRunOnOneEngineThread) {
  Results results;
  for (std::size_t i = 0; i < 10; ++i)
    fetcher_->fetch(get(url(i % 2 ? "/text" : "/status/404")), results.callback(i));
  ASSERT_TRUE(results.wait_for(10));
  const auto threads = results.threads();
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_NE(*threads.begin(), std::this_thread::get_id());
}

TEST_F(CurlFetcherTest, CallbackMayFetchAgainAndMayThrow) {
  auto promise = std::make_shared<std::promise<FetchResult>>();
  auto future = promise->get_future();
  Fetcher* fetcher = fetcher_.get();
  const std::string second = url("/counter/chain");
  fetcher_->fetch(get(url("/text")), [fetcher, second, promise](FetchResult first) {
    EXPECT_TRUE(first.has_value());
    fetcher->fetch(get(second), [promise](FetchResult r) { promise->set_value(std::move(r)); });
    throw std::runtime_error("a careless callback");
  });
  ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  const auto result = future.get();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(json::parse(result->body)["count"], 1);
  // The engine survived the throw.
  EXPECT_TRUE(fetch(get(url("/text"))).has_value());
}

TEST_F(CurlFetcherTest, StopFailsInFlightAndQueuedWithShutdown) {
  auto options = local();
  options.concurrency = 2;
  auto fetcher = make(options);
  Results results;
  for (std::size_t i = 0; i < 5; ++i) fetcher->fetch(get(url("/hang"), 20s), results.callback(i));
  EXPECT_EQ(fetcher->in_flight(), 5u);
  std::this_thread::sleep_for(200ms);  // two transfers connected, three queued
  EXPECT_EQ(results.done(), 0u);
  const auto started = SteadyClock::now();
  fetcher->stop(300ms);
  const auto elapsed = elapsed_ms(started);
  EXPECT_EQ(results.done(), 5u);  // all answered before stop() returned
  EXPECT_GE(elapsed, 290);        // the in-flight ones had their grace
  EXPECT_LT(elapsed, 2000);
  for (std::size_t i = 0; i < 5; ++i) {
    ASSERT_FALSE(results.at(i).has_value());
    EXPECT_EQ(results.at(i).error().kind, FetchErrorKind::kShutdown);
  }
  EXPECT_EQ(fetcher->in_flight(), 0u);
  EXPECT_EQ(results.duplicates(), 0);

  // After stop: answered at once, with kShutdown.
  const auto after = fetch(*fetcher, get(url("/text")));
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().kind, FetchErrorKind::kShutdown);
  fetcher->stop(0ms);  // idempotent
}

TEST_F(CurlFetcherTest, StopLetsInFlightTransfersFinishWithinTheGrace) {
  Results results;
  for (std::size_t i = 0; i < 3; ++i)
    fetcher_->fetch(get(url("/slow?ms=300"), 10s), results.callback(i));
  std::this_thread::sleep_for(100ms);
  const auto started = SteadyClock::now();
  fetcher_->stop(5s);
  EXPECT_LT(elapsed_ms(started), 2000);  // returns as soon as they are done
  ASSERT_EQ(results.done(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(results.at(i).has_value()) << results.at(i).error().message;
    EXPECT_EQ(results.at(i)->status, 200);
  }
}

TEST_F(CurlFetcherTest, DestroyingAnswersEverythingInFlight) {
  Results results;
  {
    auto fetcher = make();
    for (std::size_t i = 0; i < 3; ++i) fetcher->fetch(get(url("/hang"), 20s), results.callback(i));
  }
  ASSERT_EQ(results.done(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_FALSE(results.at(i).has_value());
    EXPECT_EQ(results.at(i).error().kind, FetchErrorKind::kShutdown);
  }
}

// A loopback listener whose accept queue is full: further SYNs are dropped, so a connect to
// it hangs (on loopback, without sending anything anywhere else).
class FullListener {
 public:
  FullListener() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    listen(listener_, 0);
    socklen_t length = sizeof address;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    for (int& fd : fillers_) {
      fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    }
    std::this_thread::sleep_for(50ms);
  }
  ~FullListener() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int fillers_[3] = {-1, -1, -1};
  int port_ = 0;
};

TEST_F(CurlFetcherTest, ConnectTimeoutIsAConnectError) {
  FullListener full;
  const std::string target = "http://127.0.0.1:" + std::to_string(full.port()) + "/";
  auto options = local();
  options.connect_timeout = 300ms;
  auto fetcher = make(options);
  auto started = SteadyClock::now();
  auto result = fetch(*fetcher, get(target, 5s));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kConnect) << result.error().message;
  EXPECT_THAT(result.error().message, StartsWith("could not connect within 300 ms"));
  EXPECT_GE(elapsed_ms(started), 290);
  EXPECT_LT(elapsed_ms(started), 2000);

  // Without a connect limit, the request's own timeout is what ends it.
  started = SteadyClock::now();
  result = fetch(get(target, 300ms));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, FetchErrorKind::kTimeout);
  EXPECT_GE(elapsed_ms(started), 290);
}

TEST(FetchErrorKind, Names) {
  EXPECT_EQ(to_string(FetchErrorKind::kTimeout), "timeout");
  EXPECT_EQ(to_string(FetchErrorKind::kTooLarge), "too_large");
  EXPECT_EQ(to_string(FetchErrorKind::kBlocked), "blocked");
  EXPECT_EQ(to_string(FetchErrorKind::kShutdown), "shutdown");
}

}  // namespace
}  // namespace fetchd
