// load_config: precedence of the sources, and one clear line for every kind of bad input.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/loader.hpp"
#include "test_support.hpp"

namespace fetchd {
namespace {

using std::chrono::milliseconds;
using testing_support::env_of;
using testing_support::TempDir;

class LoadConfig : public ::testing::Test {
 protected:
  Result<Config> load() {
    ConfigSources sources;
    sources.flags = flags_;
    sources.config_file = config_file_;
    sources.getenv = env_of(env_);
    return load_config(sources);
  }
  // The error message of a load that must fail with kInvalid.
  std::string load_error() {
    auto r = load();
    if (r) return "<loaded fine>";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "not one line";
    return r.error().message;
  }

  TempDir dir_;
  std::map<std::string, std::string> flags_;
  std::map<std::string, std::string> env_;
  std::optional<std::string> config_file_;
};

TEST_F(LoadConfig, NothingGivenIsTheDefaults) {
  auto c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const Config d;
  EXPECT_EQ(c->listen, d.listen);
  EXPECT_EQ(c->db, d.db);
  EXPECT_EQ(c->auth_token_ttl, std::chrono::hours(24));
  EXPECT_TRUE(c->auth_open_registration);
  EXPECT_EQ(c->http_max_body_bytes, 1024u * 1024);
  EXPECT_FALSE(c->fetch_allow_private);
}

TEST_F(LoadConfig, TheRealEnvironmentIsTheDefaultGetenv) {
  ConfigSources sources;
  EXPECT_TRUE(static_cast<bool>(sources.getenv));
}

TEST_F(LoadConfig, PrecedenceFlagBeatsEnvBeatsFileBeatsDefault) {
  config_file_ = dir_.write("f.toml", R"(
listen = "10.0.0.1:1"
log_level = "warn"
log_format = "json"
[auth]
token_ttl = "2h"
open_registration = false
[http]
max_body_bytes = "2MiB"
threads = 2
idle_timeout = 5
[fetch]
allow_private = true
)");
  env_ = {{"FETCHD_LISTEN", "10.0.0.2:2"}, {"FETCHD_LOG_LEVEL", "error"},
          {"FETCHD_AUTH_TOKEN_TTL", "3h"}, {"FETCHD_HTTP_MAX_BODY_BYTES", "3MiB"},
          {"FETCHD_HTTP_THREADS", "3"},    {"FETCHD_FETCH_ALLOW_PRIVATE", "false"}};
  flags_ = {{"listen", "10.0.0.3:3"},
            {"auth.token_ttl", "4h"},
            {"http.threads", "4"},
            {"fetch.allow_private", "true"}};
  auto c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  // flag > env > file
  EXPECT_EQ(c->listen, "10.0.0.3:3");
  EXPECT_EQ(c->auth_token_ttl, std::chrono::hours(4));
  EXPECT_EQ(c->http_threads, 4u);
  EXPECT_TRUE(c->fetch_allow_private);
  // env > file
  EXPECT_EQ(c->log_level, "error");
  EXPECT_EQ(c->http_max_body_bytes, 3u * 1024 * 1024);
  // file > default
  EXPECT_EQ(c->log_format, "json");
  EXPECT_FALSE(c->auth_open_registration);
  EXPECT_EQ(c->http_idle_timeout, milliseconds(5000));
  // default
  EXPECT_EQ(c->db, "sqlite://./fetchd.db");
  EXPECT_EQ(c->http_max_header_bytes, 16u * 1024);
}

TEST_F(LoadConfig, EnvBeatsFileForABoolThatTheFileTurnsOn) {
  config_file_ = dir_.write("f.toml", "[fetch]\nallow_private = true\n");
  env_ = {{"FETCHD_FETCH_ALLOW_PRIVATE", "off"}};
  auto c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->fetch_allow_private);
  env_.clear();
  c = load();
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->fetch_allow_private);
}

TEST_F(LoadConfig, ConfigFileFromEnvironmentWhenNoFlag) {
  env_["FETCHD_CONFIG"] = dir_.write("env.toml", "db = \"sqlite://from-env.db\"\n");
  auto c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->db, "sqlite://from-env.db");

  config_file_ = dir_.write("flag.toml", "db = \"sqlite://from-flag.db\"\n");
  c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->db, "sqlite://from-flag.db");
}

TEST_F(LoadConfig, DottedAndInlineTomlKeysWork) {
  config_file_ = dir_.write("f.toml", "auth.token_ttl = \"90m\"\nhttp = { max_connections = 7 }\n");
  auto c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->auth_token_ttl, std::chrono::minutes(90));
  EXPECT_EQ(c->http_max_connections, 7u);
}

TEST_F(LoadConfig, TomlIntegersForDurationsAndSizes) {
  config_file_ = dir_.write("f.toml", "[auth]\ntoken_ttl = 120\n[http]\nmax_body_bytes = 4096\n");
  auto c = load();
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->auth_token_ttl, std::chrono::seconds(120));
  EXPECT_EQ(c->http_max_body_bytes, 4096u);
}

TEST_F(LoadConfig, BadEnvValueNamesOptionAndVariable) {
  env_ = {{"FETCHD_AUTH_TOKEN_TTL", "abc"}};
  EXPECT_EQ(load_error(),
            "invalid value \"abc\" for auth.token_ttl (from environment FETCHD_AUTH_TOKEN_TTL): "
            "expected a duration like 30s, 15m, 24h");
}

TEST_F(LoadConfig, BadFlagValueNamesOptionAndFlag) {
  flags_ = {{"http.max_body_bytes", "1023"}};
  EXPECT_EQ(load_error(),
            "invalid value \"1023\" for http.max_body_bytes (from flag --http-max-body-bytes): "
            "must be between 1KiB and 1GiB");
  flags_ = {{"fetch.allow_private", "maybe"}};
  EXPECT_EQ(load_error(),
            "invalid value \"maybe\" for fetch.allow_private (from flag --fetch-allow-private): "
            "expected true or false (or 1/0, yes/no, on/off)");
  flags_ = {{"listen", "nope"}};
  EXPECT_EQ(load_error(),
            "invalid value \"nope\" for listen (from flag --listen): expected host:port like "
            "127.0.0.1:8000 or [::1]:8000");
}

TEST_F(LoadConfig, BadFileValueNamesOptionFileAndLine) {
  std::string path = dir_.write("f.toml", "# comment\nlog_level = \"loud\"\n");
  config_file_ = path;
  EXPECT_EQ(load_error(), "invalid value \"loud\" for log_level (from config file " + path +
                              ", line 2): expected one of trace, debug, info, warn, error, off");
}

TEST_F(LoadConfig, BadValueInFileIsAnErrorEvenWhenOverridden) {
  config_file_ = dir_.write("f.toml", "listen = \"oops\"\n");
  flags_ = {{"listen", "127.0.0.1:1"}};
  EXPECT_NE(load_error().find("for listen (from config file"), std::string::npos);
}

TEST_F(LoadConfig, ValueWithControlCharactersStaysOnOneLine) {
  env_ = {{"FETCHD_LISTEN", "a\nb\x01"}};
  EXPECT_EQ(load_error(),
            "invalid value \"a\\nb\\x01\" for listen (from environment FETCHD_LISTEN): expected "
            "host:port like 127.0.0.1:8000 or [::1]:8000");
}

TEST_F(LoadConfig, VeryLongValueIsCut) {
  env_ = {{"FETCHD_LOG_FORMAT", std::string(1000, 'x')}};
  std::string message = load_error();
  EXPECT_LT(message.size(), 250u);
  EXPECT_NE(message.find("xxx...\" for log_format"), std::string::npos) << message;
}

TEST_F(LoadConfig, EmptyEnvValueIsAValueNotAbsence) {
  env_ = {{"FETCHD_DB", ""}};
  EXPECT_NE(load_error().find("invalid value \"\" for db (from environment FETCHD_DB)"),
            std::string::npos);
}

TEST_F(LoadConfig, UnknownTomlKeyIsNamedWithASuggestion) {
  std::string path = dir_.write("f.toml", "[auth]\ntoken_tll = \"1h\"\n");
  config_file_ = path;
  EXPECT_EQ(load_error(), "unknown option \"auth.token_tll\" in config file " + path +
                              ", line 2; did you mean auth.token_ttl?");
}

TEST_F(LoadConfig, UnknownTopLevelKeysAndTablesAreErrors) {
  config_file_ = dir_.write("a.toml", "colour = \"blue\"\n");
  EXPECT_NE(load_error().find("unknown option \"colour\""), std::string::npos);
  config_file_ = dir_.write("b.toml", "[server]\nlisten = \"127.0.0.1:1\"\n");
  EXPECT_NE(load_error().find("unknown option \"server\""), std::string::npos);
  config_file_ = dir_.write("c.toml", "[http.extra]\nx = 1\n");
  EXPECT_NE(load_error().find("unknown option \"http.extra\""), std::string::npos);
  config_file_ = dir_.write("d.toml", "token_ttl = \"1h\"\n");  // belongs in [auth]
  EXPECT_NE(load_error().find("unknown option \"token_ttl\""), std::string::npos);
}

TEST_F(LoadConfig, SectionThatIsNotATable) {
  config_file_ = dir_.write("f.toml", "auth = \"yes\"\n");
  EXPECT_NE(load_error().find("invalid value for auth (from config file"), std::string::npos);
}

TEST_F(LoadConfig, WrongTomlTypeNamesTheOption) {
  std::string path = dir_.write("f.toml", "[http]\nthreads = \"4\"\n");
  config_file_ = path;
  EXPECT_EQ(load_error(), "invalid value for http.threads (from config file " + path +
                              ", line 2): expected an integer, got a string");
  config_file_ = dir_.write("g.toml", "[auth]\nopen_registration = \"false\"\n");
  EXPECT_NE(load_error().find("for auth.open_registration"), std::string::npos);
  config_file_ = dir_.write("h.toml", "listen = 8000\n");
  EXPECT_NE(load_error().find("for listen (from config file"), std::string::npos);
  config_file_ = dir_.write("i.toml", "[auth]\ntoken_ttl = 1.5\n");
  EXPECT_NE(load_error().find("got a floating-point number"), std::string::npos);
  config_file_ = dir_.write("j.toml", "[auth]\ntoken_ttl = true\n");
  EXPECT_NE(load_error().find("for auth.token_ttl"), std::string::npos);
}

TEST_F(LoadConfig, NegativeTomlIntegerForDurationIsInvalid) {
  config_file_ = dir_.write("f.toml", "[auth]\ntoken_ttl = -60\n");
  EXPECT_NE(load_error().find("invalid value \"-60\" for auth.token_ttl"), std::string::npos);
}

TEST_F(LoadConfig, TomlSyntaxErrorNamesFileLineAndColumn) {
  std::string path = dir_.write("broken.toml", "listen = \"127.0.0.1:8000\"\n\nlog_level = \n");
  config_file_ = path;
  std::string message = load_error();
  EXPECT_EQ(message.rfind("syntax error in config file " + path + " at line 3, column ", 0), 0u)
      << message;
}

TEST_F(LoadConfig, DuplicateTomlKeyIsASyntaxError) {
  config_file_ = dir_.write("f.toml", "db = \"sqlite://a\"\ndb = \"sqlite://b\"\n");
  EXPECT_NE(load_error().find("syntax error in config file"), std::string::npos);
}

TEST_F(LoadConfig, MissingConfigFileIsAnError) {
  config_file_ = dir_.path() + "/absent.toml";
  EXPECT_EQ(load_error(),
            "cannot read config file \"" + *config_file_ + "\" (from flag --config): no such file");
  config_file_.reset();
  env_["FETCHD_CONFIG"] = dir_.path() + "/absent.toml";
  EXPECT_NE(load_error().find("(from environment FETCHD_CONFIG): no such file"), std::string::npos);
}

TEST_F(LoadConfig, DirectoryAsConfigFileIsAnError) {
  config_file_ = dir_.path();
  EXPECT_NE(load_error().find("is a directory"), std::string::npos);
}

TEST_F(LoadConfig, EmptyConfigFileIsFine) {
  config_file_ = dir_.write("empty.toml", "");
  EXPECT_TRUE(load().has_value());
}

TEST_F(LoadConfig, UnknownFlagNameIsAnError) {
  flags_ = {{"no.such", "1"}};
  EXPECT_NE(load_error().find("unknown option \"no.such\""), std::string::npos);
}

}  // namespace
}  // namespace fetchd
