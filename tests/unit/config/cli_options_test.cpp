// The command-line flags: one per option, only given ones reported, bools as flags.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/cli_options.hpp"
#include "config/loader.hpp"
#include "config/options.hpp"

namespace fetchd {
namespace {

class CliOptions : public ::testing::Test {
 protected:
  CliOptions() { add_config_options(app_, flags_, config_file_); }

  // Parses the arguments; returns the CLI11 error text, or "" on success.
  std::string parse(std::vector<std::string> args) {
    std::vector<const char*> argv{"fetchd"};
    for (const auto& a : args) argv.push_back(a.c_str());
    try {
      app_.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }

  CLI::App app_{"fetchd"};
  std::map<std::string, std::string> flags_;
  std::optional<std::string> config_file_;
};

TEST_F(CliOptions, NothingGivenReportsNothing) {
  ASSERT_EQ(parse({}), "");
  EXPECT_TRUE(flags_.empty());
  EXPECT_FALSE(config_file_.has_value());
}

TEST_F(CliOptions, GivenOptionsAreReportedRaw) {
  ASSERT_EQ(parse({"--listen", "0.0.0.0:9000", "--auth-token-ttl=15m", "--config", "x.toml",
                   "--http-max-body-bytes", "2MiB", "--log-format", "json"}),
            "");
  EXPECT_EQ(flags_, (std::map<std::string, std::string>{{"listen", "0.0.0.0:9000"},
                                                        {"auth.token_ttl", "15m"},
                                                        {"http.max_body_bytes", "2MiB"},
                                                        {"log_format", "json"}}));
  EXPECT_EQ(config_file_, "x.toml");
}

TEST_F(CliOptions, EveryOptionHasAFlag) {
  for (const auto& spec : option_table()) {
    EXPECT_NE(app_.get_option_no_throw(flag_name(spec)), nullptr) << spec.name;
  }
}

TEST_F(CliOptions, BoolFlagBareMeansTrue) {
  ASSERT_EQ(parse({"--fetch-allow-private"}), "");
  EXPECT_EQ(flags_.at("fetch.allow_private"), "true");
}

TEST_F(CliOptions, BoolFlagTakesAnExplicitValue) {
  ASSERT_EQ(parse({"--fetch-allow-private=false", "--auth-open-registration=no"}), "");
  EXPECT_EQ(flags_.at("fetch.allow_private"), "false");
  EXPECT_EQ(flags_.at("auth.open_registration"), "no");
}

TEST_F(CliOptions, BadValuesPassThroughForTheLoaderToName) {
  ASSERT_EQ(parse({"--fetch-allow-private=maybe", "--http-threads", "lots"}), "");
  ConfigSources sources;
  sources.flags = flags_;
  sources.getenv = [](const char*) -> const char* { return nullptr; };
  auto config = load_config(sources);
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("(from flag --"), std::string::npos)
      << config.error().message;
}

TEST_F(CliOptions, LastOccurrenceWins) {
  ASSERT_EQ(parse({"--log-level", "debug", "--log-level", "warn"}), "");
  EXPECT_EQ(flags_.at("log_level"), "warn");
}

TEST_F(CliOptions, MissingValueIsACliError) {
  EXPECT_NE(parse({"--listen"}), "");
}

TEST_F(CliOptions, UnknownFlagIsACliError) {
  EXPECT_NE(parse({"--auth-token-tll", "1h"}), "");
}

TEST_F(CliOptions, HelpShowsHelpDefaultAndEnvironment) {
  std::string help = app_.help();
  EXPECT_NE(help.find("--auth-token-ttl DURATION=24h"), std::string::npos) << help;
  EXPECT_NE(help.find("How long an access token"), std::string::npos);
  EXPECT_NE(help.find("FETCHD_AUTH_TOKEN_TTL"), std::string::npos);
  EXPECT_NE(help.find("--fetch-allow-private=false"), std::string::npos) << help;
  EXPECT_NE(help.find("--config FILE"), std::string::npos);
  EXPECT_NE(help.find("--log-format text|json=text"), std::string::npos) << help;
}

TEST_F(CliOptions, WorksBeforeASubcommand) {
  app_.add_subcommand("serve");
  ASSERT_EQ(parse({"--listen", "127.0.0.1:0", "serve"}), "");
  EXPECT_EQ(flags_.at("listen"), "127.0.0.1:0");
  EXPECT_EQ(app_.get_subcommands().size(), 1u);
}

}  // namespace
}  // namespace fetchd
