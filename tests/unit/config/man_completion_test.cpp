// The manual page and the completion scripts: the committed docs/fetchd.1 holds the option
// table's current OPTIONS and ENVIRONMENT sections, and both generators follow the CLI11 app
// they are given (subcommands, flags, value names, choices) with correct escaping.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "config/cli_options.hpp"
#include "config/docs.hpp"
#include "config/options.hpp"

namespace fetchd {
namespace {

std::optional<std::string> read_source_file(const std::string& relative) {
  std::ifstream in(std::string(FETCHD_SOURCE_DIR) + "/" + relative, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The real configuration flags plus a small tree of subcommands, like main.cpp's.
class Docs : public ::testing::Test {
 protected:
  Docs() {
    add_config_options(app_, flags_, config_file_);
    app_.require_subcommand(1);
    auto* serve = app_.add_subcommand("serve", "Run it all. In one process.");
    serve->add_flag("--no-migrate", no_migrate_, "Do not migrate.");
    auto* db = app_.add_subcommand("db", "Database commands.");
    db->add_subcommand("init", ".init starts with a dot and has a back\\slash");
    auto* seed = db->add_subcommand("seed", "Add demo tasks.");
    seed->add_option("--count", count_, "How many.")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    auto* user = app_.add_subcommand("user", "Users.");
    user->add_subcommand("add", "Add one.")->add_option("NAME", name_, "User name")->required();
  }

  CLI::App app_{"A test app.", "toy"};
  std::map<std::string, std::string> flags_;
  std::optional<std::string> config_file_;
  int count_ = 10;
  bool no_migrate_ = false;
  std::string name_;
};

TEST_F(Docs, CommittedManPageHoldsTheCurrentOptionTable) {
  auto committed = read_source_file("docs/fetchd.1");
  ASSERT_TRUE(committed.has_value()) << "docs/fetchd.1 is missing";
  EXPECT_NE(committed->find(man_options(app_)), std::string::npos)
      << "docs/fetchd.1 is stale: run `make docs` (fetchd config man > docs/fetchd.1)";
  EXPECT_TRUE(committed->starts_with(".\\\" fetchd(1)")) << committed->substr(0, 80);
}

TEST_F(Docs, ManOptionsDescribeEveryOptionOnce) {
  const std::string text = man_options(app_);
  for (const auto& spec : option_table()) {
    std::string flag;
    for (char c : flag_name(spec)) flag += c == '-' ? std::string("\\-") : std::string(1, c);
    // Once under OPTIONS (the flag leads its entry), once as "See" under ENVIRONMENT.
    EXPECT_EQ(count(text, ".TP\n\\fB" + flag + "\\fR"), 1u) << spec.name;
    EXPECT_EQ(count(text, "See \\fB" + flag + "\\fR."), 1u) << spec.name;
    EXPECT_EQ(count(text, ".TP\n\\fB" + env_name(spec) + "\\fR\n"), 1u) << spec.name;
  }
  // Value names from the CLI (HOST:PORT survives; validators' text does not leak in).
  EXPECT_NE(text.find("\\fB\\-\\-listen\\fR \\fIHOST:PORT\\fR"), std::string::npos);
  EXPECT_NE(text.find("\\fB\\-\\-log\\-format\\fR \\fItext|json\\fR"), std::string::npos);
  EXPECT_NE(text.find("\\fB\\-\\-demo\\fR[=\\fIBOOL\\fR]"), std::string::npos);
  EXPECT_NE(text.find("Range: 1s to 365d. Default: \\fB24h\\fR."), std::string::npos);
  EXPECT_NE(text.find("configuration file: \\fBtoken_ttl\\fR in \\fB[auth]\\fR."),
            std::string::npos);
  EXPECT_NE(text.find(".SH ENVIRONMENT\n.TP\n\\fBFETCHD_CONFIG\\fR\n"), std::string::npos);
}

TEST_F(Docs, ManPageListsTheRunnableCommandsWithTheirFlags) {
  const std::string page = man_page(app_);
  EXPECT_TRUE(page.find(".TH FETCHD 1 \"\" \"fetchd " FETCHD_VERSION "\"") != std::string::npos);
  // Leaves only: "db" is not a command of its own, "db init" and "db seed" are.
  EXPECT_NE(page.find(".TP\n\\fBtoy serve\\fR [\\fB\\-\\-no\\-migrate\\fR]\nRun it all."),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("\\fBtoy db seed\\fR [\\fB\\-\\-count\\fR \\fIINT\\fR]\n"), std::string::npos)
      << page;
  EXPECT_NE(page.find("How many. Default: 10."), std::string::npos);
  EXPECT_NE(page.find("\\fBtoy user add\\fR \\fINAME\\fR\n"), std::string::npos) << page;
  EXPECT_EQ(page.find("\\fBtoy db\\fR\n"), std::string::npos);
  EXPECT_EQ(page.find("\\fBtoy user\\fR\n"), std::string::npos);
  // A line starting with a dot would be a request: made literal; backslashes escaped.
  EXPECT_NE(page.find("\n\\&.init starts with a dot and has a back\\eslash\n"), std::string::npos);
  EXPECT_NE(page.find(man_options(app_)), std::string::npos);
  // Every line is a request, a comment or text; no line is left starting with a quote.
  std::istringstream lines(page);
  std::string line;
  while (std::getline(lines, line)) EXPECT_FALSE(line.starts_with("'")) << line;
}

TEST_F(Docs, BashCompletionFollowsTheApp) {
  const std::string script = bash_completion(app_);
  EXPECT_NE(script.find("complete -F _toy toy\n"), std::string::npos);
  EXPECT_NE(script.find("    '') echo 'serve db user' ;;\n"), std::string::npos) << script;
  EXPECT_NE(script.find("    'db') echo 'init seed' ;;\n"), std::string::npos);
  EXPECT_NE(script.find("    'db seed') echo '-h --help --count' ;;\n"), std::string::npos);
  EXPECT_NE(script.find("    'serve') echo '-h --help --no-migrate' ;;\n"), std::string::npos);
  EXPECT_NE(script.find("--log-format) echo 'text json' ;;"), std::string::npos);
  // Flags with a value are skipped when walking the words; flags without one are not.
  EXPECT_NE(script.find("--config|--listen|"), std::string::npos);
  EXPECT_NE(script.find("|--count) return 0 ;;"), std::string::npos);
  EXPECT_EQ(script.find("--no-migrate|"), std::string::npos);
  EXPECT_EQ(script.find("|--demo|"), std::string::npos);
}

TEST_F(Docs, ZshCompletionFollowsTheApp) {
  const std::string script = zsh_completion(app_);
  EXPECT_TRUE(script.starts_with("#compdef toy\n"));
  EXPECT_NE(script.find("    ('') reply=('serve:Run it all' 'db:Database commands' "
                        "'user:Users') ;;\n"),
            std::string::npos)
      << script;
  // The "(env FETCHD_...)" suffix is left out of the menu.
  EXPECT_NE(script.find("'--listen:Address the HTTP API listens on, as host:port (IPv6 as "
                        "[::1]:8000)'"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("    (--log-level) reply=(trace debug info warn error off) ;;\n"),
            std::string::npos);
  EXPECT_NE(script.find("compdef _toy toy\n"), std::string::npos);
}

TEST_F(Docs, QuotesInHelpTextsStayInsideTheirShellStrings) {
  app_.add_subcommand("quote", "It's quoted.");
  EXPECT_NE(bash_completion(app_).find("echo 'serve db user quote'"), std::string::npos);
  EXPECT_NE(zsh_completion(app_).find("'quote:It'\\''s quoted'"), std::string::npos);
}

}  // namespace
}  // namespace fetchd
