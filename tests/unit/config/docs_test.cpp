// The generated docs: the committed fetchd.example.toml and README table are what the option
// table produces, and the example, once uncommented, is a valid config equal to the defaults.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "config/docs.hpp"
#include "config/loader.hpp"
#include "config/options.hpp"
#include "test_support.hpp"

namespace fetchd {
namespace {

std::optional<std::string> read_source_file(const std::string& relative) {
  std::ifstream in(std::string(FETCHD_SOURCE_DIR) + "/" + relative, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

TEST(ExampleToml, CommittedFileMatchesTheTable) {
  auto committed = read_source_file("fetchd.example.toml");
  ASSERT_TRUE(committed.has_value()) << "fetchd.example.toml is missing";
  EXPECT_EQ(*committed, example_toml())
      << "fetchd.example.toml is stale: regenerate it from example_toml()";
}

TEST(ExampleToml, EveryLineIsCommentedOut) {
  std::istringstream lines(example_toml());
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(line.empty() || line.starts_with("#")) << line;
    EXPECT_LE(line.size(), 100u) << line;
  }
}

TEST(ExampleToml, MentionsEveryOptionWithFlagEnvAndHelp) {
  std::string text = example_toml();
  for (const auto& spec : option_table()) {
    EXPECT_NE(text.find(flag_name(spec)), std::string::npos) << spec.name;
    EXPECT_NE(text.find(env_name(spec)), std::string::npos) << spec.name;
    EXPECT_NE(text.find("# " + std::string(toml_key(spec)) + " = "), std::string::npos)
        << spec.name;
  }
  EXPECT_NE(text.find("# [auth]"), std::string::npos);
  EXPECT_NE(text.find("# Range: 1s to 365d."), std::string::npos);
  EXPECT_NE(text.find("# One of: \"text\", \"json\"."), std::string::npos);
}

TEST(ExampleToml, UncommentedItLoadsAsTheDefaults) {
  // Uncomment the settings and table headers (lines like "# key = value", "# [table]").
  std::istringstream lines(example_toml());
  std::string uncommented, line;
  int settings = 0;
  while (std::getline(lines, line)) {
    std::string body = line.starts_with("# ") ? line.substr(2) : line;
    bool is_table = body.starts_with("[") && body.ends_with("]");
    bool is_setting = body.find(" = ") != std::string::npos && body.find(' ') == body.find(" = ");
    if (is_table || is_setting) {
      uncommented += body + "\n";
      settings += is_setting;
    }
  }
  EXPECT_EQ(settings, static_cast<int>(option_table().size()));

  testing_support::TempDir dir;
  ConfigSources sources;
  sources.config_file = dir.write("example.toml", uncommented);
  sources.getenv = [](const char*) -> const char* { return nullptr; };
  auto c = load_config(sources);
  ASSERT_TRUE(c.has_value()) << c.error().message << "\n" << uncommented;
  const Config d;
  EXPECT_EQ(c->listen, d.listen);
  EXPECT_EQ(c->db, d.db);
  EXPECT_EQ(c->auth_token_ttl, d.auth_token_ttl);
  EXPECT_EQ(c->http_max_body_bytes, d.http_max_body_bytes);
  EXPECT_EQ(c->http_idle_timeout, d.http_idle_timeout);
  EXPECT_EQ(c->fetch_allow_private, d.fetch_allow_private);
}

TEST(MarkdownTable, OneRowPerOption) {
  std::string table = markdown_table();
  std::istringstream lines(table);
  std::string line;
  std::size_t rows = 0;
  while (std::getline(lines, line)) {
    ASSERT_TRUE(line.starts_with("| ") && line.ends_with(" |")) << line;
    ++rows;
  }
  EXPECT_EQ(rows, option_table().size() + 2);  // header and separator
  EXPECT_NE(table.find("| `auth.token_ttl` | `--auth-token-ttl` | `FETCHD_AUTH_TOKEN_TTL` | "
                       "`24h` | How long"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("One of: `text`, `json`."), std::string::npos);
}

TEST(MarkdownTable, ReadmeHoldsTheCurrentTable) {
  constexpr std::string_view kBegin = "<!-- config-table:begin -->\n";
  constexpr std::string_view kEnd = "<!-- config-table:end -->";
  auto readme = read_source_file("README.md");
  if (!readme) GTEST_SKIP() << "README.md does not exist yet";
  auto begin = readme->find(kBegin);
  auto end = readme->find(kEnd);
  if (begin == std::string::npos && end == std::string::npos) {
    GTEST_SKIP() << "README.md has no config-table markers yet";
  }
  ASSERT_NE(begin, std::string::npos) << "README.md has an end marker but no begin marker";
  ASSERT_NE(end, std::string::npos) << "README.md has a begin marker but no end marker";
  ASSERT_LT(begin, end);
  begin += kBegin.size();
  EXPECT_EQ(readme->substr(begin, end - begin), markdown_table())
      << "README.md's configuration table is stale: replace it with markdown_table()";
}

}  // namespace
}  // namespace fetchd
