// The option table and its parsers: names derived for each source, every type's parser on both
// sides of its bounds, and the table's defaults agreeing with Config's.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "config/options.hpp"

namespace fetchd {
namespace {

using std::chrono::milliseconds;

const OptionSpec& spec(std::string_view name) {
  const OptionSpec* s = find_option(name);
  if (!s) throw std::logic_error("no option " + std::string(name));
  return *s;
}

// Sets one option on a default Config; returns the error message, or "" on success.
std::string set(Config& c, std::string_view name, std::string_view raw) {
  auto r = set_option(c, spec(name), raw);
  return r ? std::string() : r.error().message;
}

TEST(OptionNames, FlagEnvAndTomlDerivedFromTheDottedName) {
  const auto& ttl = spec("auth.token_ttl");
  EXPECT_EQ(flag_name(ttl), "--auth-token-ttl");
  EXPECT_EQ(env_name(ttl), "FETCHD_AUTH_TOKEN_TTL");
  EXPECT_EQ(toml_table(ttl), "auth");
  EXPECT_EQ(toml_key(ttl), "token_ttl");

  const auto& listen = spec("listen");
  EXPECT_EQ(flag_name(listen), "--listen");
  EXPECT_EQ(env_name(listen), "FETCHD_LISTEN");
  EXPECT_EQ(toml_table(listen), "");
  EXPECT_EQ(toml_key(listen), "listen");

  EXPECT_EQ(flag_name(spec("fetch.allow_private")), "--fetch-allow-private");
  EXPECT_EQ(env_name(spec("fetch.allow_private")), "FETCHD_FETCH_ALLOW_PRIVATE");
  EXPECT_EQ(flag_name(spec("log_level")), "--log-level");
  EXPECT_EQ(env_name(spec("log_level")), "FETCHD_LOG_LEVEL");
  EXPECT_EQ(find_option("auth.token_tll"), nullptr);
}

TEST(OptionTable, NamesFlagsAndEnvsAreUnique) {
  std::set<std::string> names, flags, envs;
  for (const auto& s : option_table()) {
    EXPECT_TRUE(names.insert(std::string(s.name)).second) << s.name;
    EXPECT_TRUE(flags.insert(flag_name(s)).second) << s.name;
    EXPECT_TRUE(envs.insert(env_name(s)).second) << s.name;
    EXPECT_FALSE(s.help.empty()) << s.name;
    EXPECT_NE(flag_name(s), "--config");
    EXPECT_NE(env_name(s), "FETCHD_CONFIG");
  }
  EXPECT_EQ(names.size(), option_table().size());
}

TEST(OptionTable, EveryRowHasAConfigFieldAndItsDefaultMatchesConfig) {
  const Config defaults;
  Config c;
  for (const auto& s : option_table()) {
    auto r = set_option(c, s, s.default_value);
    EXPECT_TRUE(r.has_value()) << s.name << ": " << r.error().message;
  }
  EXPECT_EQ(c.listen, defaults.listen);
  EXPECT_EQ(c.db, defaults.db);
  EXPECT_EQ(c.log_level, defaults.log_level);
  EXPECT_EQ(c.log_format, defaults.log_format);
  EXPECT_EQ(c.auth_token_ttl, defaults.auth_token_ttl);
  EXPECT_EQ(c.auth_open_registration, defaults.auth_open_registration);
  EXPECT_EQ(c.http_max_body_bytes, defaults.http_max_body_bytes);
  EXPECT_EQ(c.http_max_header_bytes, defaults.http_max_header_bytes);
  EXPECT_EQ(c.http_max_connections, defaults.http_max_connections);
  EXPECT_EQ(c.http_header_timeout, defaults.http_header_timeout);
  EXPECT_EQ(c.http_body_timeout, defaults.http_body_timeout);
  EXPECT_EQ(c.http_idle_timeout, defaults.http_idle_timeout);
  EXPECT_EQ(c.http_threads, defaults.http_threads);
  EXPECT_EQ(c.fetch_allow_private, defaults.fetch_allow_private);
}

TEST(OptionTable, EveryRowReachesItsOwnField) {
  // Setting a non-default value on one row changes exactly the matching field.
  Config c;
  ASSERT_EQ(set(c, "listen", "0.0.0.0:9"), "");
  EXPECT_EQ(c.listen, "0.0.0.0:9");
  ASSERT_EQ(set(c, "db", "sqlite:///tmp/x.db"), "");
  EXPECT_EQ(c.db, "sqlite:///tmp/x.db");
  ASSERT_EQ(set(c, "log_level", "debug"), "");
  EXPECT_EQ(c.log_level, "debug");
  ASSERT_EQ(set(c, "log_format", "json"), "");
  EXPECT_EQ(c.log_format, "json");
  ASSERT_EQ(set(c, "auth.token_ttl", "15m"), "");
  EXPECT_EQ(c.auth_token_ttl, std::chrono::minutes(15));
  ASSERT_EQ(set(c, "auth.open_registration", "off"), "");
  EXPECT_FALSE(c.auth_open_registration);
  ASSERT_EQ(set(c, "http.max_body_bytes", "2MiB"), "");
  EXPECT_EQ(c.http_max_body_bytes, 2u * 1024 * 1024);
  ASSERT_EQ(set(c, "http.max_header_bytes", "8KiB"), "");
  EXPECT_EQ(c.http_max_header_bytes, 8u * 1024);
  ASSERT_EQ(set(c, "http.max_connections", "42"), "");
  EXPECT_EQ(c.http_max_connections, 42u);
  ASSERT_EQ(set(c, "http.header_timeout", "1500ms"), "");
  EXPECT_EQ(c.http_header_timeout, milliseconds(1500));
  ASSERT_EQ(set(c, "http.body_timeout", "2m"), "");
  EXPECT_EQ(c.http_body_timeout, milliseconds(120'000));
  ASSERT_EQ(set(c, "http.idle_timeout", "5"), "");
  EXPECT_EQ(c.http_idle_timeout, milliseconds(5000));
  ASSERT_EQ(set(c, "http.threads", "3"), "");
  EXPECT_EQ(c.http_threads, 3u);
  ASSERT_EQ(set(c, "fetch.allow_private", "yes"), "");
  EXPECT_TRUE(c.fetch_allow_private);
}

TEST(ParseDuration, AcceptedForms) {
  EXPECT_EQ(parse_duration("90"), milliseconds(90'000));
  EXPECT_EQ(parse_duration("90s"), milliseconds(90'000));
  EXPECT_EQ(parse_duration("15m"), milliseconds(900'000));
  EXPECT_EQ(parse_duration("24h"), milliseconds(86'400'000));
  EXPECT_EQ(parse_duration("7d"), milliseconds(7 * 86'400'000LL));
  EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
}

TEST(ParseDuration, RejectedForms) {
  for (std::string_view bad :
       {"", "abc", "s", "-5s", "+5s", "1.5h", "5 s", " 5s", "5s ", "5S", "5sec", "1h30m", "5w",
        "99999999999999999999", "9223372036854775807d"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(ParseBytes, AcceptedAndRejectedForms) {
  EXPECT_EQ(parse_bytes("1048576"), 1048576u);
  EXPECT_EQ(parse_bytes("512B"), 512u);
  EXPECT_EQ(parse_bytes("512KiB"), 512u * 1024);
  EXPECT_EQ(parse_bytes("1MiB"), 1024u * 1024);
  EXPECT_EQ(parse_bytes("1GiB"), 1024u * 1024 * 1024);
  for (std::string_view bad :
       {"", "MiB", "1MB", "1mib", "1 MiB", "-1", "1.5MiB", "1TiB", "18446744073709551615GiB"}) {
    EXPECT_FALSE(parse_bytes(bad).has_value()) << bad;
  }
}

TEST(ParseBool, AcceptedAndRejectedForms) {
  for (std::string_view t : {"true", "TRUE", "True", "1", "yes", "on", "ON"}) {
    EXPECT_EQ(parse_bool(t), true) << t;
  }
  for (std::string_view f : {"false", "False", "0", "no", "off", "OFF"}) {
    EXPECT_EQ(parse_bool(f), false) << f;
  }
  for (std::string_view bad : {"", "2", "y", "n", "truee", "enabled", " true"}) {
    EXPECT_FALSE(parse_bool(bad).has_value()) << bad;
  }
}

TEST(ParseInt, AcceptedAndRejectedForms) {
  EXPECT_EQ(parse_int("0"), 0);
  EXPECT_EQ(parse_int("42"), 42);
  EXPECT_EQ(parse_int("-3"), -3);
  for (std::string_view bad :
       {"", "-", "+3", "3.0", "1e3", "0x10", "12a", "99999999999999999999"}) {
    EXPECT_FALSE(parse_int(bad).has_value()) << bad;
  }
}

TEST(FormatUnits, LargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds(86'400'000)), "1d");
  EXPECT_EQ(format_duration(milliseconds(3'600'000)), "1h");
  EXPECT_EQ(format_duration(milliseconds(60'000)), "1m");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "90s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
  EXPECT_EQ(format_bytes(1024), "1KiB");
  EXPECT_EQ(format_bytes(1536), "1536B");
  EXPECT_EQ(format_bytes(1024u * 1024 * 1024), "1GiB");
}

TEST(Bounds, TokenTtlBothSides) {
  Config c;
  EXPECT_EQ(set(c, "auth.token_ttl", "0s"), "must be between 1s and 365d");
  EXPECT_EQ(set(c, "auth.token_ttl", "999ms"), "must be between 1s and 365d");
  EXPECT_EQ(set(c, "auth.token_ttl", "1s"), "");
  EXPECT_EQ(set(c, "auth.token_ttl", "365d"), "");
  EXPECT_EQ(c.auth_token_ttl, std::chrono::hours(365 * 24));
  EXPECT_EQ(set(c, "auth.token_ttl", "366d"), "must be between 1s and 365d");
  EXPECT_EQ(set(c, "auth.token_ttl", "abc"), "expected a duration like 30s, 15m, 24h");
}

TEST(Bounds, TimeoutsBothSides) {
  Config c;
  for (std::string_view name : {"http.header_timeout", "http.body_timeout", "http.idle_timeout"}) {
    EXPECT_NE(set(c, name, "99ms"), "") << name;
    EXPECT_EQ(set(c, name, "100ms"), "") << name;
    EXPECT_EQ(set(c, name, "1h"), "") << name;
    EXPECT_NE(set(c, name, "3600001ms"), "") << name;
  }
}

TEST(Bounds, BodyAndHeaderBytesBothSides) {
  Config c;
  EXPECT_EQ(set(c, "http.max_body_bytes", "1023"), "must be between 1KiB and 1GiB");
  EXPECT_EQ(set(c, "http.max_body_bytes", "1024"), "");
  EXPECT_EQ(set(c, "http.max_body_bytes", "1GiB"), "");
  EXPECT_EQ(c.http_max_body_bytes, 1024u * 1024 * 1024);
  EXPECT_EQ(set(c, "http.max_body_bytes", "1073741825"), "must be between 1KiB and 1GiB");
  EXPECT_EQ(set(c, "http.max_body_bytes", "8589934592GiB"), "must be between 1KiB and 1GiB");
  EXPECT_EQ(set(c, "http.max_body_bytes", "1MB"),
            "expected a size like 1048576, 512KiB, 1MiB, 1GiB");

  EXPECT_NE(set(c, "http.max_header_bytes", "1023B"), "");
  EXPECT_EQ(set(c, "http.max_header_bytes", "1KiB"), "");
  EXPECT_EQ(set(c, "http.max_header_bytes", "1MiB"), "");
  EXPECT_EQ(set(c, "http.max_header_bytes", "1048577"), "must be between 1KiB and 1MiB");
}

TEST(Bounds, IntsBothSides) {
  Config c;
  EXPECT_EQ(set(c, "http.max_connections", "0"), "must be between 1 and 1000000");
  EXPECT_EQ(set(c, "http.max_connections", "1"), "");
  EXPECT_EQ(set(c, "http.max_connections", "1000000"), "");
  EXPECT_EQ(set(c, "http.max_connections", "1000001"), "must be between 1 and 1000000");
  EXPECT_EQ(set(c, "http.threads", "-1"), "must be between 0 and 256");
  EXPECT_EQ(set(c, "http.threads", "0"), "");
  EXPECT_EQ(set(c, "http.threads", "256"), "");
  EXPECT_EQ(set(c, "http.threads", "257"), "must be between 0 and 256");
  EXPECT_EQ(set(c, "http.threads", "two"), "expected an integer");
}

TEST(Enums, OnlyListedChoices) {
  Config c;
  for (std::string_view level : {"trace", "debug", "info", "warn", "error", "off"}) {
    EXPECT_EQ(set(c, "log_level", level), "") << level;
  }
  EXPECT_EQ(set(c, "log_level", "warning"), "expected one of trace, debug, info, warn, error, off");
  EXPECT_NE(set(c, "log_level", "INFO"), "");
  EXPECT_NE(set(c, "log_level", ""), "");
  EXPECT_EQ(set(c, "log_format", "json"), "");
  EXPECT_EQ(set(c, "log_format", "text"), "");
  EXPECT_EQ(set(c, "log_format", "xml"), "expected one of text, json");
  EXPECT_NE(set(c, "log_format", "tex"), "");
}

TEST(Bools, AllSpellings) {
  Config c;
  EXPECT_EQ(set(c, "fetch.allow_private", "on"), "");
  EXPECT_TRUE(c.fetch_allow_private);
  EXPECT_EQ(set(c, "fetch.allow_private", "0"), "");
  EXPECT_FALSE(c.fetch_allow_private);
  EXPECT_EQ(set(c, "fetch.allow_private", "maybe"),
            "expected true or false (or 1/0, yes/no, on/off)");
}

TEST(Listen, HostAndPort) {
  auto v4 = parse_listen("127.0.0.1:8000");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8000);
  auto v6 = parse_listen("[::1]:8000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8000);
  auto any6 = parse_listen("[::]:0");
  ASSERT_TRUE(any6);
  EXPECT_EQ(any6->host, "::");
  auto name = parse_listen("localhost:0");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "localhost");
  EXPECT_EQ(name->port, 0);
  EXPECT_EQ(parse_listen("0.0.0.0:65535")->port, 65535);
}

TEST(Listen, Rejected) {
  for (std::string_view bad :
       {"", "8000", ":8000", "localhost", "localhost:", "localhost:65536", "localhost:-1",
        "localhost:80x", "localhost:+80", "::1:8000", "[::1]8000", "[::1]:", "[]:80", "[::1:80",
        "local host:80", "host/x:80", "localhost:000065535"}) {
    EXPECT_FALSE(parse_listen(bad).has_value()) << bad;
  }
  Config c;
  EXPECT_EQ(set(c, "listen", "localhost:65536"),
            "expected host:port like 127.0.0.1:8000 or [::1]:8000");
  EXPECT_EQ(c.listen, Config().listen);
}

TEST(Db, SchemeRequired) {
  Config c;
  for (std::string_view ok : {"sqlite://./fetchd.db", "sqlite:///abs/path.db", "sqlite://rel/x",
                              "sqlite://:memory:", "postgres://u@h/db", "postgresql://h/db"}) {
    EXPECT_EQ(set(c, "db", ok), "") << ok;
    EXPECT_EQ(c.db, ok);
  }
  for (std::string_view bad :
       {"", "sqlite://", "./fetchd.db", "mysql://h/db", "SQLITE://x", "sqlite:/x", "postgres://"}) {
    EXPECT_NE(set(c, "db", bad), "") << bad;
  }
}

}  // namespace
}  // namespace fetchd

namespace fetchd {
namespace {

TEST(BrokerOption, AcceptsLocalAndRedisUrlsOnly) {
  const OptionSpec* spec = find_option("broker");
  ASSERT_NE(spec, nullptr);
  Config c;
  EXPECT_TRUE(set_option(c, *spec, "local").has_value());
  EXPECT_EQ(c.broker, "local");
  EXPECT_TRUE(set_option(c, *spec, "redis://127.0.0.1:6379/0").has_value());
  EXPECT_EQ(c.broker, "redis://127.0.0.1:6379/0");
  for (const char* bad : {"", "redis://", "amqp://x", "Local"}) {
    auto r = set_option(c, *spec, bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message.find("redis://"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace fetchd
