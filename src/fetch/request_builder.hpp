// Turns a task's url + parameters (DESIGN.md §3) into the HTTP request the fetcher sends: a
// pure function, so that what a task will send can be tested (and previewed) without a
// network.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "fetch/fetcher.hpp"

namespace fetchd {

// `parameters` (a JSON object; a string holding one and null are accepted too):
//   method      GET (default), POST, PUT, PATCH, DELETE, HEAD or OPTIONS (any case)
//   headers     object of header name -> string value
//   query       object of name -> string/number/boolean, merged into the URL's query (a name
//               already in the URL takes the new value), percent-encoded
//   body        a string is sent as is; any other JSON value (null: no body) is serialised,
//               with Content-Type: application/json unless the headers give one
//   path, eventfile
//               appended to the URL's path with exactly one '/' between (percent-encoded
//               where needed; '/' and existing %XX escapes kept)
//   other keys  string/number/boolean values fill {key} placeholders in the URL
//               (percent-encoded); other keys are ignored (the original's token, apiuser)
// Errors are kInvalid with a message naming the problem: a scheme other than http/https, a
// malformed value, or a {placeholder} left without a value.
Result<FetchRequest> build_fetch_request(const std::string& url, const nlohmann::json& parameters,
                                         std::chrono::milliseconds timeout,
                                         std::uint64_t max_response_bytes);

// RFC 3986 percent-encoding of everything but the unreserved characters (and of '/' too
// unless `keep_slash`).
std::string percent_encode(std::string_view text, bool keep_slash = false);

}  // namespace fetchd
