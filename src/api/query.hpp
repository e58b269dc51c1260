// Reading what a request carries besides its body: query-string parameters
// (application/x-www-form-urlencoded) and the opaque pagination cursor of GET /tasks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fetchd::api {

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

// A strictly positive decimal integer without sign or leading zeros ("12"); nullopt otherwise
// (also beyond int64).
std::optional<std::int64_t> parse_positive_id(std::string_view text);

}  // namespace fetchd::api
