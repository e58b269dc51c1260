// The log line formats, captured through an ostream sink.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "config/logging.hpp"

namespace fetchd {
namespace {

class Logging : public ::testing::Test {
 protected:
  std::shared_ptr<spdlog::logger> make(std::string level, std::string format) {
    Config c;
    c.log_level = std::move(level);
    c.log_format = std::move(format);
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = make_logger_on(c, sink, "test");
    EXPECT_TRUE(logger.has_value()) << logger.error().message;
    return logger ? *logger : nullptr;
  }
  std::ostringstream out_;
};

TEST_F(Logging, TextLine) {
  auto log = make("info", "text");
  ASSERT_NE(log, nullptr);
  log->info("hello {}", "world");
  log->error("boom");
  std::string text = out_.str();
  std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  hello world
\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z error boom
)");
  EXPECT_TRUE(std::regex_match(text, line)) << text;
}

TEST_F(Logging, TextEscapesNewlinesSoLinesCannotBeForged) {
  auto log = make("info", "text");
  ASSERT_NE(log, nullptr);
  log->info("a\nb\r\x01");
  std::string text = out_.str();
  EXPECT_NE(text.find(" info  a\\nb\\r\\x01\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST_F(Logging, LevelFiltersLines) {
  auto log = make("warn", "text");
  ASSERT_NE(log, nullptr);
  log->info("hidden");
  log->warn("shown");
  EXPECT_EQ(out_.str().find("hidden"), std::string::npos);
  EXPECT_NE(out_.str().find(" warn  shown"), std::string::npos);
}

TEST_F(Logging, OffLogsNothing) {
  auto log = make("off", "json");
  ASSERT_NE(log, nullptr);
  log->error("nothing");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(Logging, JsonLineIsOneEscapedObject) {
  auto log = make("debug", "json");
  ASSERT_NE(log, nullptr);
  std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 unicode é";
  log->debug("{}", tricky);
  std::string text = out_.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find(R"(\")"), std::string::npos);
  EXPECT_NE(text.find(R"(\\)"), std::string::npos);
  EXPECT_NE(text.find(R"(\n)"), std::string::npos);
  EXPECT_NE(text.find(R"(\u0007)"), std::string::npos);

  auto parsed = nlohmann::json::parse(text);
  ASSERT_TRUE(parsed.is_object());
  EXPECT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed.at("level"), "debug");
  EXPECT_EQ(parsed.at("msg"), tricky);
  std::regex time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  EXPECT_TRUE(std::regex_match(parsed.at("time").get<std::string>(), time)) << text;
  EXPECT_EQ(text.rfind(R"({"time":")", 0), 0u) << "keys in the documented order: " << text;
}

TEST_F(Logging, JsonReplacesInvalidUtf8) {
  auto log = make("info", "json");
  ASSERT_NE(log, nullptr);
  log->info("bad \xff byte");
  auto parsed = nlohmann::json::parse(out_.str());
  EXPECT_EQ(parsed.at("msg"), "bad \xEF\xBF\xBD byte");
}

TEST_F(Logging, JsonLevelNames) {
  auto log = make("trace", "json");
  ASSERT_NE(log, nullptr);
  log->trace("t");
  log->warn("w");
  log->error("e");
  std::istringstream lines(out_.str());
  std::string line;
  std::vector<std::string> levels;
  while (std::getline(lines, line)) levels.push_back(nlohmann::json::parse(line).at("level"));
  EXPECT_EQ(levels, (std::vector<std::string>{"trace", "warn", "error"}));
}

TEST(MakeLogger, RejectsUnknownLevelAndFormat) {
  Config c;
  c.log_level = "loud";
  auto a = make_logger(c);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kInvalid);
  c.log_level = "info";
  c.log_format = "xml";
  EXPECT_FALSE(make_logger(c).has_value());
  c.log_format = "json";
  auto ok = make_logger(c, "named");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ((*ok)->name(), "named");
  EXPECT_EQ((*ok)->level(), spdlog::level::info);
}

TEST(ParseLogLevel, EveryChoice) {
  EXPECT_EQ(parse_log_level("trace"), spdlog::level::trace);
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
  EXPECT_FALSE(parse_log_level("warning").has_value());
  EXPECT_EQ(parse_log_format("json"), LogFormat::kJson);
  EXPECT_FALSE(parse_log_format("JSON").has_value());
}

}  // namespace
}  // namespace fetchd
