// build_fetch_request: every parameter of DESIGN.md §3 applied to a URL, the original's seed
// tasks, and the invalid inputs it must refuse with a message saying why.
#include "fetch/request_builder.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace fetchd {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;

constexpr std::uint64_t kCap = 10 * 1024 * 1024;

Result<FetchRequest> build(const std::string& url, const json& parameters) {
  return build_fetch_request(url, parameters, 30'000ms, kCap);
}

FetchRequest ok(const std::string& url, const json& parameters) {
  auto request = build(url, parameters);
  EXPECT_TRUE(request.has_value()) << (request ? "" : request.error().message);
  return request ? *request : FetchRequest{};
}

std::string error_of(const std::string& url, const json& parameters) {
  auto request = build(url, parameters);
  EXPECT_FALSE(request.has_value()) << "built " << (request ? request->url : "");
  if (request) return {};
  EXPECT_EQ(request.error().code, ErrorCode::kInvalid);
  return request.error().message;
}

TEST(RequestBuilder, SeedTaskKeepsTheOriginalsUrlShape) {
  const auto request =
      ok("http://host/php-architecture/",
         {{"eventfile", "amazingexpo2020.json"}, {"token", "s3cr3t"}, {"apiuser", "demo"}});
  EXPECT_EQ(request.url, "http://host/php-architecture/amazingexpo2020.json");
  EXPECT_EQ(request.method, "GET");
  EXPECT_TRUE(request.headers.empty());
  EXPECT_TRUE(request.body.empty());
}

TEST(RequestBuilder, EmptyParametersLeaveTheUrlAlone) {
  EXPECT_EQ(ok("https://example.com/feed.json?x=1", json::object()).url,
            "https://example.com/feed.json?x=1");
  EXPECT_EQ(ok("https://example.com", json::object()).url, "https://example.com");
  EXPECT_EQ(ok("https://example.com/a", nullptr).url, "https://example.com/a");
}

TEST(RequestBuilder, ParametersAsAJsonEncodedString) {
  EXPECT_EQ(ok("http://h/p/", json("{\"path\": \"x.json\"}")).url, "http://h/p/x.json");
  EXPECT_EQ(ok("http://h/p/", json("{}")).url, "http://h/p/");
  EXPECT_THAT(error_of("http://h/", json("{not json")), HasSubstr("JSON object"));
  EXPECT_THAT(error_of("http://h/", json::array()), HasSubstr("JSON object"));
}

TEST(RequestBuilder, TimeoutAndCapPassThrough) {
  auto request = build_fetch_request("http://h/", json::object(), 1234ms, 99);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->timeout, 1234ms);
  EXPECT_EQ(request->max_response_bytes, 99u);
  auto zero = build_fetch_request("http://h/", json::object(), 0ms, 99);
  ASSERT_FALSE(zero);
  EXPECT_THAT(zero.error().message, HasSubstr("timeout"));
}

TEST(RequestBuilder, Method) {
  EXPECT_EQ(ok("http://h/", {{"method", "POST"}}).method, "POST");
  EXPECT_EQ(ok("http://h/", {{"method", "delete"}}).method, "DELETE");
  for (const char* method : {"GET", "PUT", "PATCH", "HEAD", "OPTIONS"})
    EXPECT_EQ(ok("http://h/", {{"method", method}}).method, method);
  EXPECT_THAT(error_of("http://h/", {{"method", "FETCH"}}), HasSubstr("method must be one of"));
  EXPECT_THAT(error_of("http://h/", {{"method", 1}}), HasSubstr("method must be one of"));
  EXPECT_THAT(error_of("http://h/", {{"method", "GET\r\nX: y"}}), HasSubstr("method"));
}

TEST(RequestBuilder, Headers) {
  const auto request =
      ok("http://h/",
         {{"headers", {{"Accept", "application/json"}, {"X-Api-Key", "k e y"}, {"X-Empty", ""}}}});
  EXPECT_THAT(request.headers,
              UnorderedElementsAre(Pair("Accept", "application/json"), Pair("X-Api-Key", "k e y"),
                                   Pair("X-Empty", "")));
  EXPECT_THAT(error_of("http://h/", {{"headers", {{"X-A", "a\r\nInjected: 1"}}}}),
              HasSubstr("line breaks"));
  EXPECT_THAT(error_of("http://h/", {{"headers", {{"Bad Name", "v"}}}}),
              HasSubstr("not a valid token"));
  EXPECT_THAT(error_of("http://h/", {{"headers", {{"X-A", 1}}}}), HasSubstr("string value"));
  EXPECT_THAT(error_of("http://h/", {{"headers", json::array({"X-A"})}}),
              HasSubstr("headers must be an object"));
}

TEST(RequestBuilder, QueryAddedAndEncoded) {
  const auto request =
      ok("http://h/feed", {{"query", {{"q", "a b&c=d/é"}, {"n", 5}, {"f", 1.5}, {"on", true}}}});
  // Object keys come out sorted (nlohmann::json objects are ordered maps).
  EXPECT_EQ(request.url, "http://h/feed?f=1.5&n=5&on=true&q=a%20b%26c%3Dd%2F%C3%A9");
}

TEST(RequestBuilder, QueryMergedWithTheUrlsQuery) {
  EXPECT_EQ(ok("http://h/feed?a=1&b=2", {{"query", {{"b", "3"}, {"c", "4"}}}}).url,
            "http://h/feed?a=1&b=3&c=4");
  // A repeated name in the URL is replaced as a whole; percent-encoded names match too.
  EXPECT_EQ(ok("http://h/f?x=1&x=2&my%20key=0&y", {{"query", {{"x", 9}, {"my key", 1}}}}).url,
            "http://h/f?y&my%20key=1&x=9");
  EXPECT_EQ(ok("http://h/f?", {{"query", {{"a", "b"}}}}).url, "http://h/f?a=b");
  EXPECT_EQ(ok("http://h/f#top", {{"query", {{"a", "b"}}}}).url, "http://h/f?a=b#top");
  EXPECT_EQ(ok("http://h/f?a=1", {{"query", json::object()}}).url, "http://h/f?a=1");
  EXPECT_THAT(error_of("http://h/", {{"query", {{"a", json::array({1})}}}}),
              HasSubstr("query value of \"a\""));
  EXPECT_THAT(error_of("http://h/", {{"query", {{"a", nullptr}}}}), HasSubstr("\"a\""));
  EXPECT_THAT(error_of("http://h/", {{"query", "a=b"}}), HasSubstr("query must be an object"));
}

TEST(RequestBuilder, PathAppendedWithOneSlash) {
  EXPECT_EQ(ok("http://h/base/", {{"path", "feed.json"}}).url, "http://h/base/feed.json");
  EXPECT_EQ(ok("http://h/base", {{"path", "feed.json"}}).url, "http://h/base/feed.json");
  EXPECT_EQ(ok("http://h/base/", {{"path", "/feed.json"}}).url, "http://h/base/feed.json");
  EXPECT_EQ(ok("http://h", {{"path", "feed.json"}}).url, "http://h/feed.json");
  EXPECT_EQ(ok("http://h/base/", {{"path", "a/b c.json"}}).url, "http://h/base/a/b%20c.json");
  EXPECT_EQ(ok("http://h/base/", {{"path", "a%20b?.json"}}).url, "http://h/base/a%20b%3F.json");
  EXPECT_EQ(ok("http://h/base/", {{"path", "50%.json"}}).url, "http://h/base/50%25.json");
  EXPECT_EQ(ok("http://h/base/?k=v#f", {{"path", "x.json"}}).url, "http://h/base/x.json?k=v#f");
  EXPECT_EQ(ok("http://h/base/", {{"path", ""}}).url, "http://h/base/");
  EXPECT_EQ(ok("http://h/b/", {{"path", "p"}, {"eventfile", "e.json"}}).url, "http://h/b/p/e.json");
  EXPECT_THAT(error_of("http://h/", {{"path", 3}}), HasSubstr("path must be a string"));
  EXPECT_THAT(error_of("http://h/", {{"eventfile", false}}),
              HasSubstr("eventfile must be a string"));
}

TEST(RequestBuilder, PlaceholdersFilledAndEncoded) {
  EXPECT_EQ(ok("http://h/events/{event}/feed?user={user}",
               {{"event", "expo 2020/b"}, {"user", 42}, {"token", "t"}})
                .url,
            "http://h/events/expo%202020%2Fb/feed?user=42");
  EXPECT_EQ(ok("http://{sub}.example.com/", {{"sub", "api"}}).url, "http://api.example.com/");
  // Braces that are not a placeholder are left alone.
  EXPECT_EQ(ok("http://h/a{}/b{x+y}", json::object()).url, "http://h/a{}/b{x+y}");
  // A placeholder's value is not scanned again.
  EXPECT_EQ(ok("http://h/{a}", {{"a", "{b}"}, {"b", "no"}}).url, "http://h/%7Bb%7D");
}

TEST(RequestBuilder, PlaceholderWithoutValueIsAnError) {
  EXPECT_EQ(error_of("http://h/{missing}/x", {{"token", "t"}}),
            "URL placeholder {missing} has no value in parameters");
  // Request-shaping keys and non-scalar values never fill placeholders.
  EXPECT_EQ(error_of("http://h/{method}", {{"method", "GET"}}),
            "URL placeholder {method} has no value in parameters");
  EXPECT_EQ(error_of("http://h/{obj}", {{"obj", {{"a", 1}}}}),
            "URL placeholder {obj} has no value in parameters");
}

TEST(RequestBuilder, PathPlaceholderIsNotAlsoAppended) {
  EXPECT_EQ(ok("http://h/{eventfile}?v=1", {{"eventfile", "a.json"}}).url, "http://h/a.json?v=1");
}

TEST(RequestBuilder, StringBodySentAsIs) {
  const auto request = ok("http://h/", {{"method", "POST"}, {"body", "a=1&b=2"}});
  EXPECT_EQ(request.body, "a=1&b=2");
  EXPECT_TRUE(request.headers.empty());
}

TEST(RequestBuilder, JsonBodySerialisedWithContentType) {
  const auto request = ok("http://h/", {{"method", "POST"}, {"body", {{"a", 1}, {"b", {1, 2}}}}});
  EXPECT_EQ(request.body, R"({"a":1,"b":[1,2]})");
  EXPECT_THAT(request.headers, UnorderedElementsAre(Pair("Content-Type", "application/json")));

  const auto typed = ok("http://h/", {{"body", json::array({1})},
                                      {"headers", {{"content-type", "application/x-ndjson"}}}});
  EXPECT_EQ(typed.body, "[1]");
  EXPECT_THAT(typed.headers, UnorderedElementsAre(Pair("content-type", "application/x-ndjson")));

  EXPECT_EQ(ok("http://h/", {{"body", 12}}).body, "12");
  EXPECT_EQ(ok("http://h/", {{"body", false}}).body, "false");
  const auto none = ok("http://h/", {{"body", nullptr}});
  EXPECT_TRUE(none.body.empty());
  EXPECT_TRUE(none.headers.empty());
}

TEST(RequestBuilder, OnlyHttpAndHttps) {
  EXPECT_EQ(ok("HTTPS://h/x", json::object()).url, "HTTPS://h/x");
  EXPECT_THAT(error_of("ftp://h/feed.json", json::object()),
              HasSubstr("scheme must be http or https"));
  EXPECT_THAT(error_of("file:///etc/passwd", json::object()),
              HasSubstr("scheme must be http or https"));
  EXPECT_THAT(error_of("h/feed.json", json::object()), HasSubstr("absolute http or https URL"));
  EXPECT_THAT(error_of("http:/h", json::object()), HasSubstr("absolute http or https URL"));
  EXPECT_THAT(error_of("http:///path", json::object()), HasSubstr("absolute http or https URL"));
  EXPECT_THAT(error_of("http://h/a b", json::object()), HasSubstr("spaces"));
  // The scheme is checked after placeholders are filled.
  EXPECT_THAT(error_of("{scheme}://h/", {{"scheme", "ftp"}}), HasSubstr("http or https"));
  EXPECT_EQ(ok("{scheme}://h/", {{"scheme", "https"}}).url, "https://h/");
}

TEST(RequestBuilder, PercentEncode) {
  EXPECT_EQ(percent_encode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(percent_encode("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(percent_encode("a/b c", true), "a/b%20c");
  EXPECT_EQ(percent_encode("\xff"), "%FF");
}

}  // namespace
}  // namespace fetchd
