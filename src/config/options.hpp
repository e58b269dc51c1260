// The option table: every setting of fetchd in one row (name, type, default, bounds, help),
// from which the command-line flags, the FETCHD_* environment variables, the TOML keys and the
// docs are all derived. Also the value parsers shared by every source.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/error.hpp"

namespace fetchd {

enum class OptionType { kString, kBool, kInt, kDuration, kBytes, kEnum };

struct OptionSpec {
  std::string_view name;  // dotted: "listen", "auth.token_ttl"
  OptionType type;
  std::string_view default_value;  // as a user would write it: "24h", "1MiB", "true"
  std::int64_t min, max;           // kInt: the value; kDuration: milliseconds; kBytes: bytes
  std::string_view choices;        // kEnum only: "text|json"
  std::string_view help;
};

// Every option, in the order the docs list them.
std::span<const OptionSpec> option_table();
// The row named `name` ("auth.token_ttl"), or nullptr.
const OptionSpec* find_option(std::string_view name);

std::string flag_name(const OptionSpec& spec);  // "auth.token_ttl" -> "--auth-token-ttl"
std::string env_name(const OptionSpec& spec);   // "auth.token_ttl" -> "FETCHD_AUTH_TOKEN_TTL"
// TOML: the dotted name is the key path ([auth] table, key token_ttl); these split it.
std::string_view toml_table(const OptionSpec& spec);  // "auth", or "" for a top-level key
std::string_view toml_key(const OptionSpec& spec);    // "token_ttl"

// What a value of the option's type looks like, for error messages and docs:
// "a duration like 30s, 15m, 24h".
std::string expected_text(const OptionSpec& spec);

// Parsers of the raw text forms (every source funnels through them).
// Durations: "90" (seconds), "90s", "15m", "24h", "7d", "500ms"; non-negative integers only.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// Sizes: "1048576", "512B", "512KiB", "1MiB", "1GiB" (powers of 1024).
std::optional<std::uint64_t> parse_bytes(std::string_view text);
// true/false/1/0/yes/no/on/off, any case.
std::optional<bool> parse_bool(std::string_view text);
std::optional<std::int64_t> parse_int(std::string_view text);

// The largest unit that is exact: 86400000 -> "1d", 90000 -> "90s", 1500 -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);
// 1048576 -> "1MiB", 1536 -> "1536B"... only exact units: 1536 -> "1536B".
std::string format_bytes(std::uint64_t bytes);

// `listen` as host and port: "127.0.0.1:8000", "localhost:0", "[::1]:8000" (host "::1").
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<HostPort> parse_listen(std::string_view text);

// Parses `raw` as the option's type, checks its bounds and stores it in the matching field of
// `config`. On failure: kInvalid whose message says what was expected ("expected a duration
// like 30s, 15m, 24h", "must be between 1m and 365d"); the caller adds the option and source.
Result<void> set_option(Config& config, const OptionSpec& spec, std::string_view raw);

}  // namespace fetchd
