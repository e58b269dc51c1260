// Reading what a request carries besides its body: query-string parameters
// (application/x-www-form-urlencoded), the page size and the opaque pagination cursor of the
// lists (GET /tasks, GET /tasks/{id}/jobs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace fetchd::api {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// "a=1&b=x%20y&c" -> {{"a","1"}, {"b","x y"}, {"c",""}}; '+' is a space. Malformed escapes
// are kept literally: the values are then rejected by whoever validates them.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// The first value of `name`, nullopt when absent.
std::optional<std::string> query_value(
    const std::vector<std::pair<std::string, std::string>>& params, std::string_view name);

// The cursor is base64url (no padding) of "t1:<last id>": opaque to clients, versioned so
// that its content can change without breaking the cursors they hold.
std::string encode_cursor(std::int64_t last_id);
// nullopt for anything encode_cursor cannot have produced.
std::optional<std::int64_t> decode_cursor(std::string_view cursor);

// `limit`: an integer from 1 to PageLimits::kMax, PageLimits::kDefault when absent. Otherwise a
// field error on "limit" is appended and the default returned.
std::size_t read_page_limit(const QueryParams& params, std::vector<FieldError>& fields);
// `cursor`: the id a next_cursor encodes; nullopt when absent or empty (forms send "cursor="
// for a blank field: the first page). Otherwise a field error on "cursor" is appended.
std::optional<std::int64_t> read_cursor(const QueryParams& params, std::vector<FieldError>& fields);

// A strictly positive decimal integer without sign or leading zeros ("12"); nullopt otherwise
// (also beyond int64).
std::optional<std::int64_t> parse_positive_id(std::string_view text);

}  // namespace fetchd::api
