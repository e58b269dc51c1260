// Fuzz target: the parameters -> request builder (fetch/request_builder.hpp). Input: the task's
// URL on the first line, its `parameters` after it (JSON; text that is not JSON is passed as a
// JSON string, the form the original client sends). Properties of every request built: an
// allowed method, an http(s) URL without spaces or control characters (so nothing a user
// writes can split the request line), header names that are tokens and values without line
// breaks (no header injection).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fetch/request_builder.hpp"
#include "fuzz_check.hpp"

namespace {

using nlohmann::json;

// Parameters reach the builder through the API, which refuses JSON nested deeper than this.
constexpr int kMaxDepth = 64;

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char p, char c) {
           return p == (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
         });
}

bool is_token_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_control(char c, bool tab_allowed) {
  const auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && !(tab_allowed && byte == '\t')) || byte == 0x7F;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string url(input.substr(0, newline));
  const std::string_view rest =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  json parameters;
  try {
    parameters = json::parse(rest, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw std::length_error("too deep");
      return true;
    });
  } catch (const json::exception&) {
    // Not JSON (parse_error), or a number out of range (out_of_range): passed as a string,
    // also how a JSON-encoded string of parameters arrives.
    parameters = std::string(rest);
  } catch (const std::length_error&) {
    return 0;
  }

  const auto request =
      fetchd::build_fetch_request(url, parameters, std::chrono::seconds(5), 1024 * 1024);
  if (!request) {
    FUZZ_CHECK(!request.error().message.empty(), "an error without a message", input);
    return 0;
  }

  static constexpr std::string_view kMethods[] = {"GET",    "POST", "PUT",    "PATCH",
                                                  "DELETE", "HEAD", "OPTIONS"};
  FUZZ_CHECK(
      std::find(std::begin(kMethods), std::end(kMethods), request->method) != std::end(kMethods),
      "a method outside the allowed ones", input);
  FUZZ_CHECK(starts_with_ignoring_case(request->url, "http://") ||
                 starts_with_ignoring_case(request->url, "https://"),
             "a URL that is not http(s)", input);
  FUZZ_CHECK(std::none_of(request->url.begin(), request->url.end(),
                          [](char c) { return c == ' ' || is_control(c, false); }),
             "a URL with a space or a control character", input);
  for (const auto& [name, value] : request->headers) {
    FUZZ_CHECK(!name.empty() && std::all_of(name.begin(), name.end(), is_token_char),
               "a header name that is not a token", input);
    FUZZ_CHECK(std::none_of(value.begin(), value.end(), [](char c) { return is_control(c, true); }),
               "a header value with a line break or a control character", input);
  }
  return 0;
}
